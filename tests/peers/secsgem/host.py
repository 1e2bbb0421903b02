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
  quit                         prints ok and exits 0; EOF exits 0 too
Logs go to stderr; stdout carries only the lines above.
"""

import logging
import sys

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
    if command == "quit":
        return "ok"
    return f"error unknown command {command}"


if __name__ == "__main__":
    main()
