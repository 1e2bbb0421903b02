"""Independent Modbus TCP server peer (pymodbus 3.16.1) for the I/O driver tests.

Serves the same register map as io_server.c (libmodbus) plus a PLC-driven
XY stage, and takes fault-injection commands on stdin so a test can make
the device misbehave on cue.

Run:  PYTHON pymodbus_server.py PORT [--move-ms MS]
      (PYTHON from scripts/peers-venv.sh; PORT 0 lets the kernel pick)
Prints "ready PORT" (the real port) once it accepts connections on
127.0.0.1, then reads one command a line and prints "ok" once it has taken
effect ("error ..." for a line it cannot use):
  exception [hr|ir] ADDR CODE
                        reads (FC3/FC4) covering ADDR in that table (both
                        when none is named) answer with Modbus exception
                        CODE (1-8, 10, 11) until clear
  delay MS              every reply is sent MS ms late, until clear
  clear                 no exceptions, no delay
  drop                  close every client connection (keeps listening)
  set_hr|set_ir ADDR VALUE, set_di ADDR 0|1, set_f32 ADDR VALUE,
  following_error VALUE (HR 14, 0.01 um), move_ms MS (stage move time)
  moves                 prints "ok N": stage moves started so far
  overlaps              prints "ok N": moves started while one was still
                        running (a client that did not wait for in-position)
  quit                  prints ok and exits 0; EOF on stdin exits 0 too
"""

import asyncio
import struct
import sys

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu import ExceptionResponse
from pymodbus.server import ModbusTcpServer
from pymodbus.server.requesthandler import ServerRequestHandler
from pymodbus.simulator import DataType, SimData, SimDevice

# Function codes for the peer's own reads and writes through the server's
# datastore API. They only pick the table (pymodbus maps 16 -> holding, 4 ->
# input, 2 -> discrete inputs, 1 -> coils); the action below reacts to client
# reads (3, 4) and coil writes (5, 15) only, so these never count a
# heartbeat, raise an injected exception or start a move.
HR, IR, DI, CO = 16, 4, 2, 1
STAGE_TARGET, STAGE_ACTUAL = 100, 104  # f32 x, y each (HR)
MOVE_COIL, IN_POSITION = 0, 1  # coil, DI


def f32_regs(value):
    """An f32 as two registers, high word first."""
    return list(struct.unpack(">HH", struct.pack(">f", value)))


def initial_device(action):
    hr, ir = [0] * 200, [0] * 100
    hr[10:12], hr[12:14], hr[14] = f32_regs(12.5), f32_regs(-3.25), 120
    ir[0:6] = [1000, 0, 812, 80, 360, 99]
    di = [False] * 16
    di[0] = True  # camera.link
    di[IN_POSITION] = True  # the stage starts at rest at (0, 0)
    # A tuple of four lists = separate tables for coils, discrete inputs,
    # holding and input registers (pymodbus's "non-shared" layout). Device
    # id 0 answers every unit id.
    return SimDevice(
        0,
        simdata=(
            [SimData(0, values=[False] * 16, datatype=DataType.BITS)],
            [SimData(0, values=di, datatype=DataType.BITS)],
            [SimData(0, values=hr, datatype=DataType.REGISTERS)],
            [SimData(0, values=ir, datatype=DataType.REGISTERS)],
        ),
        action=action,
    )


class Peer:
    def __init__(self, port, move_ms):
        self.move_ms = move_ms
        self.exception = None  # (function codes, address, ExcCodes)
        self.delay = 0.0  # seconds
        self.move = None  # the pending stage move, if any
        self.moves = 0  # stage moves started (the "moves" command reports it)
        self.overlaps = 0  # moves started while the previous one was running
        self.server = PeerServer(self, initial_device(self.action), port)

    async def action(self, fc, start, address, count, registers, values):
        """pymodbus calls this on every datastore access, before it reads or
        writes; `registers` is the live table, `values` None on a read."""
        if fc in (3, 4) and values is None:
            if self.exception and fc in self.exception[0]:
                if address <= self.exception[1] < address + count:
                    return self.exception[2]
            if fc == 3:  # heartbeats: HR 0..4 count the reads that cover them
                for i in range(max(address, 0), min(address + count, 5)):
                    registers[i - start] = (registers[i - start] + 1) & 0xFFFF
        elif fc in (5, 15) and values and address == MOVE_COIL and values[0]:
            await self.set(DI, IN_POSITION, [False])
            self.moves += 1
            if self.move and not self.move.done():
                self.overlaps += 1
            if self.move:
                self.move.cancel()  # a new target supersedes the pending move
            self.move = asyncio.create_task(self.finish_move())
        return None

    async def finish_move(self):
        await asyncio.sleep(self.move_ms / 1000)
        target = await self.server.async_getValues(0, HR, STAGE_TARGET, 4)
        await self.set(HR, STAGE_ACTUAL, target)
        await self.set(DI, IN_POSITION, [True])
        await self.set(CO, MOVE_COIL, [False])

    async def set(self, fc, address, values):
        await self.server.async_setValues(0, fc, address, values)

    async def command(self, words):
        name, args = words[0], words[1:]
        if name == "exception":
            tables = {"hr": (3,), "ir": (4,)}
            fcs = tables.get(args[0], (3, 4))
            if args[0] in tables:
                args = args[1:]
            self.exception = (fcs, int(args[0]), ExcCodes(int(args[1])))
        elif name == "delay":
            self.delay = int(args[0]) / 1000
        elif name == "clear":
            self.exception, self.delay = None, 0.0
        elif name == "drop":
            for conn in list(self.server.active_connections.values()):
                conn.close()
            # close() only schedules the socket's close: yield so it is done
            # before "ok" is printed.
            await asyncio.sleep(0)
            await asyncio.sleep(0)
        elif name in ("set_hr", "set_ir", "set_di"):
            fc = {"set_hr": HR, "set_ir": IR, "set_di": DI}[name]
            value = int(args[1])
            await self.set(fc, int(args[0]), [bool(value)] if fc == DI else [value & 0xFFFF])
        elif name == "set_f32":
            await self.set(HR, int(args[0]), f32_regs(float(args[1])))
        elif name == "following_error":
            await self.set(HR, 14, [int(args[0]) & 0xFFFF])
        elif name == "move_ms":
            self.move_ms = int(args[0])
        elif name == "moves":
            return f"ok {self.moves}"
        elif name == "overlaps":
            return f"ok {self.overlaps}"
        elif name != "quit":
            raise ValueError(f"unknown command {name}")


class PeerServer(ModbusTcpServer):
    def __init__(self, peer, device, port):
        super().__init__(device, address=("127.0.0.1", port))
        self.peer = peer

    def callback_new_connection(self):
        return InOrderHandler(self, self.trace_packet, self.trace_pdu, self.trace_connect)


class InOrderHandler(ServerRequestHandler):
    """Answers each request of a connection in arrival order, with its own
    transaction id, like a real device. pymodbus 3.16.1's own handler keeps
    only the latest request: a request that arrives while a slow one is in
    the datastore makes the slow one's reply carry the new transaction id."""

    def __init__(self, *args):
        super().__init__(*args)
        self.turn = asyncio.Lock()  # FIFO: one request at a time
        self.tasks = set()  # the loop keeps only weak references to tasks

    def callback_data(self, data, addr=None):
        used = 0
        while used < len(data):
            try:
                n, pdu = self.framer.handleFrame(data[used:], 0, 0)
            except ModbusIOException as exc:  # unknown function code
                # pymodbus's handler answers function code 0x80 here (it does not
                # know the code); a device echoes the code | 0x80 (byte 7).
                fc = data[used + 7] if len(data) > used + 7 else 0
                reply = ExceptionResponse(fc, ExcCodes.ILLEGAL_FUNCTION,
                                          device_id=exc.dev_id, transaction=exc.transaction_id)
                self.server_send(reply, None)
                return len(data)
            if not n:
                break  # the rest is an incomplete frame
            used += n
            if pdu:
                task = self.loop.create_task(self.answer(pdu))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        return used

    async def answer(self, pdu):
        async with self.turn:
            if self.server.peer.delay:
                await asyncio.sleep(self.server.peer.delay)
            try:
                response = await pdu.datastore_update(self.server.context, pdu.dev_id)
            except Exception:  # as pymodbus's own handler does
                response = ExceptionResponse(pdu.function_code, ExcCodes.DEVICE_FAILURE)
            response.transaction_id, response.dev_id = pdu.transaction_id, pdu.dev_id
            partial = self.recv_buffer  # send() empties it; keep a half-read request
            self.server_send(response, None)
            self.recv_buffer = partial


def say(line):
    print(line, flush=True)


async def main():
    args = sys.argv[1:]
    port = int(args[0])
    move_ms = int(args[args.index("--move-ms") + 1]) if "--move-ms" in args else 5
    peer = Peer(port, move_ms)
    await peer.server.serve_forever(background=True)
    say(f"ready {peer.server.transport.sockets[0].getsockname()[1]}")
    loop = asyncio.get_running_loop()
    while line := await loop.run_in_executor(None, sys.stdin.readline):
        words = line.split()
        if not words:
            continue
        try:
            answer = await peer.command(words)
        except (ValueError, IndexError, TypeError) as exc:  # TypeError: address out of range
            say(f"error {exc}")
            continue
        say(answer or "ok")
        if words[0] == "quit":
            break
    await peer.server.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
