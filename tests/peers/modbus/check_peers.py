"""Smoke test of the two Modbus TCP server peers, with pymodbus's client.

Usage: PYTHON check_peers.py IO_SERVER_BINARY
  PYTHON: the peers' venv python (scripts/peers-venv.sh prints it)
  IO_SERVER_BINARY: io_server.c built (see its header for the command)
Starts both peers on kernel-chosen 127.0.0.1 ports, checks the register map,
the heartbeats, and every stdin command of pymodbus_server.py, ends them by
PID, and exits 1 if any check failed. A failing peer would make the driver
tests fail for the wrong reason; this tells which side is wrong.
"""

import os
import signal
import socket
import struct
import subprocess
import sys
import time

from pymodbus.client import ModbusTcpClient
from pymodbus.exceptions import ModbusException

HERE = os.path.dirname(os.path.abspath(__file__))
failures = []
started = []  # every peer process, ended in main() whatever happens


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def start(argv, word):
    """Start a peer; returns (process, port) once it said it is listening."""
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    started.append(proc)
    line = proc.stdout.readline().split()
    if line[:1] != [word]:
        proc.kill()
        sys.exit(f"{argv[0]} did not start: {line}")
    return proc, int(line[1])


def command(proc, line):
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    return proc.stdout.readline().strip()


def stop(proc):
    proc.kill()  # Popen.kill signals this process's own PID
    proc.wait()


def client(port):
    # retries=0: a slow or failing reply must show, not be retried away.
    c = ModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    assert c.connect(), f"cannot connect to {port}"
    return c


def hr(c, addr, n=1, unit=1):
    r = c.read_holding_registers(addr, count=n, device_id=unit)
    return None if r.isError() else r.registers


def ir(c, addr, n=1, unit=1):
    r = c.read_input_registers(addr, count=n, device_id=unit)
    return None if r.isError() else r.registers


def di(c, addr, n=1):
    r = c.read_discrete_inputs(addr, count=n)
    return None if r.isError() else r.bits[:n]


def coil(c, addr):
    r = c.read_coils(addr, count=1)
    return None if r.isError() else r.bits[0]


def exc_code(r):
    return r.exception_code if r.isError() else None


def f32(regs):
    return struct.unpack(">f", struct.pack(">HH", *regs))[0]


def f32_regs(value):
    return list(struct.unpack(">HH", struct.pack(">f", value)))


def check_map(name, c, in_position):
    """The map both peers serve; call on a fresh peer (heartbeats at 0)."""
    check(hr(c, 0, 5) == [1] * 5, f"{name}: first read of HR 0..4 sees 1 each")
    t0 = time.perf_counter()
    seen = [hr(c, 0)[0] for _ in range(1000)]
    rate = 1000 / (time.perf_counter() - t0)
    check(seen == list(range(2, 1002)), f"{name}: 1000 reads of HR 0 see 2..1001, no gap or repeat ({rate:.0f} reads/s)")
    check(hr(c, 1, 4) == [2] * 4, f"{name}: HR 1..4 count only their own reads")
    check(hr(c, 4, 2) == [3, 0], f"{name}: a read covering HR 4..5 bumps HR 4 only")
    regs = hr(c, 10, 5)
    check(regs is not None and (f32(regs[0:2]), f32(regs[2:4]), regs[4]) == (12.5, -3.25, 120),
          f"{name}: HR 10..14 = 12.5, -3.25, 120")
    check(ir(c, 0, 6) == [1000, 0, 812, 80, 360, 99], f"{name}: IR 0..5 = 1000, lamp 812, 80, 360, 99")
    check(di(c, 0, 2) == [True, in_position], f"{name}: DI 0 camera.link = 1, DI 1 = {int(in_position)}")
    check(ir(c, 0, unit=7) == [1000], f"{name}: unit id 7 answered too")
    check(None not in (hr(c, 199), ir(c, 99), di(c, 15), coil(c, 15)), f"{name}: HR 199, IR 99, DI 15, coil 15 exist")
    check(exc_code(c.read_holding_registers(200, count=1)) == 2, f"{name}: HR 200 -> exception 2")
    c.write_register(0, 65535)
    check(hr(c, 0) == [0], f"{name}: heartbeat wraps 65535 -> 0")


def check_io_server(binary):
    proc, port = start([binary, "0"], "listening")
    c = client(port)
    check_map("io_server", c, in_position=False)
    c.close()
    c = client(port)
    check(ir(c, 0) == [1000], "io_server: serves the next client after a disconnect")
    stop(proc)  # killed with the client still connected: its port is in TIME_WAIT
    c.close()
    proc, port2 = start([binary, str(port)], "listening")
    c = client(port)
    check(port2 == port and ir(c, 0) == [1000], "io_server: restarts on the same port at once")
    c.close()
    stop(proc)


def timed(f):
    t0 = time.perf_counter()
    result = f()
    return result, time.perf_counter() - t0


def raw_request(tid, fc, addr, n):
    return struct.pack(">HHHBBHH", tid, 0, 6, 1, fc, addr, n)


def recv_exact(s, n):
    """n bytes, or fewer if the peer closes or is silent for the socket's timeout."""
    data = b""
    try:
        while len(data) < n and (chunk := s.recv(n - len(data))):
            data += chunk
    except TimeoutError:
        pass
    return data


def move(c, x, y):
    """Command a stage move; returns (seconds until in_position, DI 1 right after the command)."""
    c.write_registers(100, f32_regs(x) + f32_regs(y))
    t0 = time.perf_counter()
    c.write_coil(0, True)
    during = di(c, 1)[0]
    while not di(c, 1)[0] and time.perf_counter() - t0 < 2:
        time.sleep(0.001)
    return time.perf_counter() - t0, during


def check_pymodbus_server():
    server = [sys.executable, os.path.join(HERE, "pymodbus_server.py")]
    proc, port = start(server + ["0"], "ready")
    c = client(port)
    check_map("pymodbus", c, in_position=True)
    say = lambda line: command(proc, line)

    before = hr(c, 0)[0]
    check(say("exception 3 4") == "ok", "pymodbus: 'exception 3 4' acknowledged")
    check(exc_code(c.read_holding_registers(0, count=5)) == 4, "pymodbus: HR 0..4 read -> exception 4")
    check(exc_code(c.read_holding_registers(3, count=1)) == 4, "pymodbus: HR 3 read -> exception 4")
    check(exc_code(c.read_input_registers(2, count=3)) == 4, "pymodbus: IR 2..4 read -> exception 4")
    check(hr(c, 4) is not None and ir(c, 4) == [360], "pymodbus: reads not covering 3 still answer")
    check(hr(c, 0) == [before + 1], "pymodbus: a read answered with an exception counts no heartbeat")
    say("exception 3 2")
    check(exc_code(c.read_holding_registers(3, count=1)) == 2, "pymodbus: 'exception 3 2' -> exception 2")
    check(say("exception 3 99").startswith("error"), "pymodbus: exception code 99 refused")
    say("clear")
    check(hr(c, 3) is not None, "pymodbus: 'clear' ends the exception")
    check(say("exception ir 3 4") == "ok", "pymodbus: 'exception ir 3 4' acknowledged")
    check(exc_code(c.read_input_registers(3, count=1)) == 4, "pymodbus: IR 3 read -> exception 4")
    check(hr(c, 3) is not None, "pymodbus: 'exception ir' leaves HR 3 answering")
    say("clear")

    say("delay 200")
    values, slow = timed(lambda: ir(c, 0))
    check(values == [1000] and 0.2 <= slow < 0.5, f"pymodbus: 'delay 200' -> reply after {slow * 1000:.0f} ms")
    # Two requests in one segment while slow: each answered, in order, with
    # its own transaction id (pymodbus's stock handler gets this wrong).
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        t0 = time.perf_counter()
        s.sendall(raw_request(7, 4, 0, 1) + raw_request(8, 4, 5, 1))
        replies = [recv_exact(s, 11), recv_exact(s, 11)]
        both = time.perf_counter() - t0
    got = [(struct.unpack(">H", r[:2])[0], struct.unpack(">H", r[9:11])[0]) for r in replies if len(r) == 11]
    check(got == [(7, 1000), (8, 99)] and both >= 0.4,
          f"pymodbus: pipelined requests answered in order with their own tids ({both * 1000:.0f} ms)")
    say("clear")
    _, fast = timed(lambda: ir(c, 0))
    check(fast < 0.05, f"pymodbus: 'clear' ends the delay ({fast * 1000:.1f} ms)")

    with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
        s.sendall(raw_request(1, 4, 0, 1))
        recv_exact(s, 11)
        check(say("drop") == "ok", "pymodbus: 'drop' acknowledged")
        try:
            eof = s.recv(1) == b""
        except ConnectionResetError:  # a reset is a disconnect too
            eof = True
        except TimeoutError:  # still open after 1 s
            eof = False
        check(eof, "pymodbus: 'drop' closes an open connection")
    try:
        lost = c.read_input_registers(0, count=1).isError()
    except ModbusException:
        lost = True
    check(lost, "pymodbus: the pymodbus client's next read after 'drop' fails")
    c.close()
    c = client(port)
    check(ir(c, 0) == [1000], "pymodbus: a new connection after 'drop' is served")

    say("move_ms 200")
    took, during = move(c, 10.0, -20.0)
    actual = hr(c, 104, 4)
    check(not during and 0.2 <= took < 0.6, f"pymodbus: move clears in_position, sets it after {took * 1000:.0f} ms (move_ms 200)")
    check((f32(actual[0:2]), f32(actual[2:4])) == (10.0, -20.0), "pymodbus: actual HR 104..107 = target (10, -20)")
    check(coil(c, 0) is False and hr(c, 14) == [120], "pymodbus: coil 0 cleared after the move, HR 14 kept")
    say("move_ms 5")
    took, _ = move(c, 1.5, 2.5)
    actual = hr(c, 104, 4)
    check(took < 0.2 and (f32(actual[0:2]), f32(actual[2:4])) == (1.5, 2.5),
          f"pymodbus: default-speed move done in {took * 1000:.1f} ms")

    say("following_error 345")
    check(hr(c, 14) == [345], "pymodbus: 'following_error 345' -> HR 14 = 345")
    say("set_ir 4 -50")
    check(ir(c, 4) == [65536 - 50], "pymodbus: 'set_ir 4 -50' -> IR 4 = -50 as i16")
    say("set_di 0 0")
    check(di(c, 0) == [False], "pymodbus: 'set_di 0 0' -> DI 0 = 0")
    say("set_f32 10 1.5")
    check(f32(hr(c, 10, 2)) == 1.5, "pymodbus: 'set_f32 10 1.5' -> HR 10..11 = 1.5")
    say("set_hr 50 7")
    check(hr(c, 50) == [7], "pymodbus: 'set_hr 50 7' -> HR 50 = 7")
    check(say("bogus").startswith("error"), "pymodbus: unknown command answered with error")
    c.close()

    check(say("quit") == "ok" and proc.wait(timeout=5) == 0, "pymodbus: 'quit' exits 0")
    proc, _ = start(server + ["0"], "ready")
    proc.stdin.close()
    check(proc.wait(timeout=5) == 0, "pymodbus: EOF on stdin exits 0")


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    def too_slow(*_):
        raise TimeoutError("check_peers: over 60 s, a peer hangs")

    signal.signal(signal.SIGALRM, too_slow)
    signal.alarm(60)  # a smoke test must end, even when a peer hangs
    try:
        check_io_server(os.path.abspath(sys.argv[1]))
        check_pymodbus_server()
    finally:
        for proc in started:
            if proc.poll() is None:
                stop(proc)
    print(f"{len(failures)} failed" if failures else "all peer checks passed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
