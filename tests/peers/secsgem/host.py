"""Independent SECS/GEM host peer (secsgem 0.3.0) for the HSMS tests.

A secsgem GemHostHandler on 127.0.0.1, driven by line commands on stdin.

Run:  PYTHON host.py active|passive PORT [T3] [T5]
      (PYTHON from scripts/peers-venv.sh)
active:  connects to our passive equipment on 127.0.0.1:PORT, again T5
         after a disconnect.
passive: listens on 127.0.0.1:PORT for our active equipment.
Prints "ready PORT" once enabled, then reads one command a line and prints
one answer line ("ok ..." or "error ..."):
  wait_communicating SECONDS   "ok" once GEM communication is established
                               (select, then S1F13/S1F14), else "error"
  state                        "ok HSMS_STATE GEM_STATE" (enum names)
  linktest                     sends Linktest.req: "ok" on the response
  are_you_there                sends S1F1: "ok S1F2 <body hex>"
  disable                      ends the connection (Separate.req), "ok"
  enable                       connects / listens again, "ok"
  online                       S1F17: "ok ONLACK"
  offline                      S1F15: "ok OFLACK"
  svs ID...                    S1F3 (no ids: all): "ok JSON-LIST" of values,
                               a zero-length item as []
  svnames ID...                S1F11: "ok JSON-LIST" of {SVID, SVNAME, UNITS}
  ecs ID...                    S2F13: "ok JSON-LIST"
  set_ec ID VALUE              S2F15 (VALUE as JSON: 3 is U4-ish, 2.5 F8):
                               "ok EAC"
  time                         S2F17: "ok TIME"
  set_time TIME                S2F31 (secsgem 0.3.0 does not define it: the
                               body <A TIME> is built here): "ok TIACK"
  rcmd NAME [CPNAME=CPVAL...]  S2F41: "ok HCACK JSON-LIST" of [CPNAME, CPACK]
  terminal TEXT...             S10F3 to terminal 0: "ok ACKC10"
  raw S F W|- HEX|none [DEVICE]
                               a data message built by hand (W: with the
                               W-bit, waits T3 for the reply: "ok SxFy HEX"
                               or "ok none"; -: "ok sent"; none: no body)
  s9 SECONDS                   waits up to SECONDS for S9 messages from the
                               equipment: "ok JSON-LIST" of [F, HEADER-HEX]
                               (those received so far, then forgotten)
  subscribe CEID RPTID DVID... S2F33/35/37: define a report, link it, enable
                               the event: "ok"
  mute S F                     stop answering SxFy from the equipment (so its
                               request times out: S9F9): "ok"
  pp_send PPID HEX             S7F3 with PPBODY the UTF-8 text HEX encodes:
                               "ok ACKC7"
  trace TRID DSPER TOTSMP REPGSZ SVID...
                               S2F23: "ok TIAACK"
  traces                       "ok JSON-LIST" of the S6F1s received so far,
                               each [TRID, SMPLN, SECONDS, [values...]]
                               (SECONDS: when it arrived, monotonic)
  events                       "ok JSON-LIST" of the S6F11s received so far,
                               each [CEID, RPTID, [values...]], in order
  alarms                       "ok JSON-LIST" of S5F1s, [ALID, ALCD, ALTX]
  quit                         prints ok and exits 0; EOF exits 0 too
Logs go to stderr; stdout carries only the lines above. Replies secsgem
does not define (S2F32) still reach `raw` (see tolerate_undefined_functions).
"""

import json
import logging
import queue
import sys
import threading
import time

import secsgem.common
import secsgem.gem
import secsgem.hsms


def main():
    mode, port = sys.argv[1], int(sys.argv[2])
    t3 = float(sys.argv[3]) if len(sys.argv) > 3 else 5.0
    t5 = float(sys.argv[4]) if len(sys.argv) > 4 else 1.0
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    connect_mode = {
        "active": secsgem.hsms.HsmsConnectMode.ACTIVE,
        "passive": secsgem.hsms.HsmsConnectMode.PASSIVE,
    }[mode]
    settings = secsgem.hsms.HsmsSettings(
        address="127.0.0.1",
        port=port,
        connect_mode=connect_mode,
        device_type=secsgem.common.DeviceType.HOST,
        t3=t3,
        t5=t5,
        # Retry S1F13 soon after an unanswered one (default 10 s).
        establish_communication_timeout=1,
    )
    host = secsgem.gem.GemHostHandler(settings)
    tolerate_undefined_functions(settings)
    received = Received()
    received.attach(host)
    host.received = received
    host.enable()
    print(f"ready {port}", flush=True)

    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        command, args = words[0], words[1:]
        try:
            answer = run(host, command, args)
        except Exception as exc:  # the test reads the reason
            answer = f"error {type(exc).__name__}: {exc}"
        print(answer, flush=True)
        if command == "quit":
            break
    host.disable()


def tolerate_undefined_functions(settings):
    """secsgem 0.3.0 decodes every data message before it routes a reply to
    its waiter, and raises for a function it does not define (S2F31/S2F32:
    KeyError or ValueError), so that reply would be lost. Undefined ones decode to None here
    and reach `raw` as bytes; defined ones are decoded as before."""
    functions = settings.streams_functions
    decode = functions.decode

    def tolerant(message):
        try:
            return decode(message)
        except (KeyError, ValueError):
            return None

    functions.decode = tolerant


class Received:
    """What the equipment sent on its own: S9, S6F11 and S5F1, in order."""

    def __init__(self):
        self.lock = threading.Lock()
        self.s9 = []
        self.s9_arrived = threading.Condition(self.lock)
        self.events = []
        self.alarms = []
        self.traces = []
        self.host = None

    def attach(self, host):
        self.host = host
        host.register_stream_function(6, 1, self.on_s6f1)
        for function in (1, 3, 5, 7, 9, 11):
            host.register_stream_function(9, function, self.on_s9)
        host.events.collection_event_received += self.on_event
        host.events.alarm_received += self.on_alarm

    def on_s9(self, handler, message):
        del handler
        with self.lock:
            self.s9.append([message.header.function, message.data.hex()])
            self.s9_arrived.notify_all()
        # S9 messages are not answered.
        return None

    def on_s6f1(self, handler, message):
        del handler
        s6f1 = self.host.settings.streams_functions.decode(message)
        with self.lock:
            self.traces.append(
                [plain(s6f1.TRID), plain(s6f1.SMPLN), time.monotonic(), plain(s6f1.SV)]
            )
        return self.host.stream_function(6, 2)(0)

    def on_event(self, data):
        with self.lock:
            values = [plain(v["value"]) for v in data["values"]]
            self.events.append([plain(data["ceid"]), plain(data["rptid"]), values])

    def on_alarm(self, data):
        with self.lock:
            self.alarms.append([plain(data["alid"]), plain(data["code"]), plain(data["text"])])


def plain(value):
    """A secsgem value (or data item) as JSON-friendly Python."""
    if not isinstance(value, (dict, list, tuple, bytes, str, int, float, bool)) and hasattr(value, "get"):
        value = value.get()
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def decoded(host, message):
    if message is None:
        raise RuntimeError("no reply within T3")
    if message.header.function == 0:
        raise RuntimeError(f"S{message.header.stream}F0 (transaction aborted)")
    return host.settings.streams_functions.decode(message)


def ask(host, stream, function, data=None):
    make = host.stream_function(stream, function)
    request = make() if data is None else make(data)
    return decoded(host, host.send_and_waitfor_response(request))


def raw(host, stream, function, wait, body, device):
    protocol = host.protocol
    system = protocol.get_next_system_counter()
    header = secsgem.hsms.HsmsStreamFunctionHeader(system, stream, function, wait, device)
    message = secsgem.hsms.HsmsMessage(header, body)
    if not wait:
        return "ok sent" if protocol.send_message(message) else "error not sent"
    replies = protocol._get_queue_for_system(system)  # pylint: disable=protected-access
    try:
        if not protocol.send_message(message):
            return "error not sent"
        reply = replies.get(True, host.settings.timeouts.t3)
    except queue.Empty:
        return "ok none"
    finally:
        protocol._remove_queue(system)  # pylint: disable=protected-access
    return f"ok S{reply.header.stream}F{reply.header.function} {reply.data.hex()}"


def run(host, command, args):
    if command == "wait_communicating":
        ok = host.waitfor_communicating(float(args[0]))
        return "ok" if ok else "error not communicating"
    if command == "state":
        hsms = host.protocol.connection_state.current.name
        gem = host.communication_state.current.name
        return f"ok {hsms} {gem}"
    if command == "linktest":
        response = host.protocol.send_linktest_req()
        return "ok" if response is not None else "error no Linktest.rsp"
    if command == "are_you_there":
        reply = host.are_you_there()
        if reply is None:
            return "error no reply"
        header = reply.header
        return f"ok S{header.stream}F{header.function} {reply.data.hex()}"
    if command == "disable":
        host.disable()
        return "ok"
    if command == "enable":
        host.enable()
        return "ok"
    if command == "online":
        return f"ok {plain(ask(host, 1, 17))}"
    if command == "offline":
        return f"ok {plain(ask(host, 1, 15))}"
    if command == "svs":
        return "ok " + json.dumps(plain(ask(host, 1, 3, [int(a) for a in args])))
    if command == "svnames":
        return "ok " + json.dumps(plain(ask(host, 1, 11, [int(a) for a in args])))
    if command == "ecs":
        return "ok " + json.dumps(plain(ask(host, 2, 13, [int(a) for a in args])))
    if command == "set_ec":
        value = json.loads(args[1])
        return f"ok {plain(ask(host, 2, 15, [{'ECID': int(args[0]), 'ECV': value}]))}"
    if command == "time":
        return f"ok {plain(ask(host, 2, 17))}"
    if command == "set_time":
        text = args[0].encode("ascii")
        answer = raw(host, 2, 31, True, bytes([0x41, len(text)]) + text, host.settings.session_id)
        # <B TIACK> is 21 01 xx.
        if not answer.startswith("ok S2F32 2101"):
            return f"error {answer}"
        return f"ok {int(answer[-2:], 16)}"
    if command == "rcmd":
        params = [a.split("=", 1) for a in args[1:]]
        reply = decoded(host, host.send_and_waitfor_response(rcmd_message(host, args[0], params)))
        cpacks = [[plain(p.CPNAME), plain(p.CPACK)] for p in reply.PARAMS]
        return f"ok {plain(reply.HCACK)} {json.dumps(cpacks)}"
    if command == "terminal":
        return f"ok {plain(ask(host, 10, 3, {'TID': 0, 'TEXT': ' '.join(args)}))}"
    if command == "raw":
        device = int(args[4]) if len(args) > 4 else host.settings.session_id
        body = b"" if args[3] == "none" else bytes.fromhex(args[3])
        return raw(host, int(args[0]), int(args[1]), args[2] == "W", body, device)
    if command == "s9":
        deadline = time.monotonic() + float(args[0])
        with host.received.lock:
            while not host.received.s9 and time.monotonic() < deadline:
                host.received.s9_arrived.wait(max(0.0, deadline - time.monotonic()))
            got, host.received.s9 = host.received.s9, []
        return "ok " + json.dumps(got)
    if command == "subscribe":
        ceid, rptid, dvids = int(args[0]), int(args[1]), [int(a) for a in args[2:]]
        host.subscribe_collection_event(ceid, dvids, rptid)
        return "ok"
    if command == "mute":
        host.register_stream_function(int(args[0]), int(args[1]), lambda handler, message: None)
        return "ok"
    if command == "pp_send":
        return f"ok {plain(host.send_process_program(args[0], bytes.fromhex(args[1]).decode()))}"
    if command == "trace":
        request = {
            "TRID": int(args[0]),
            "DSPER": args[1],
            "TOTSMP": int(args[2]),
            "REPGSZ": int(args[3]),
            "SVID": [int(a) for a in args[4:]],
        }
        return f"ok {plain(ask(host, 2, 23, request))}"
    if command == "traces":
        with host.received.lock:
            return "ok " + json.dumps(host.received.traces)
    if command == "events":
        with host.received.lock:
            return "ok " + json.dumps(host.received.events)
    if command == "alarms":
        with host.received.lock:
            return "ok " + json.dumps(host.received.alarms)
    if command == "quit":
        return "ok"
    return f"error unknown command {command}"


def rcmd_message(host, name, params):
    """S2F41 as GemHostHandler.send_remote_command builds it, without its
    decoding (which would hide HCACK's CPACK list)."""
    s2f41 = host.stream_function(2, 41)()
    s2f41.RCMD = name
    for cpname, cpval in params:
        s2f41.PARAMS.append({"CPNAME": cpname, "CPVAL": cpval})
    return s2f41


if __name__ == "__main__":
    main()
