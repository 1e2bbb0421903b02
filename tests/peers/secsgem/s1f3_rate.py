"""S1F3/S1F4 round trips per second, secsgem 0.3.0 as the host.

Run:  PYTHON s1f3_rate.py PORT SECONDS   (PYTHON from scripts/peers-venv.sh)
Connects (active) to our equipment on 127.0.0.1:PORT, establishes
communication, goes on-line (S1F17), then asks S1F3 for every status
variable (an empty list), one request at a time, each awaited: 200 to warm
up, then as many as fit in SECONDS. Prints one line:
    round_trips N seconds S
Used by `waferscope bench secs --secsgem PYTHON` beside our own host.
"""

import logging
import sys
import time

import secsgem.common
import secsgem.gem
import secsgem.hsms


def main():
    port, seconds = int(sys.argv[1]), float(sys.argv[2])
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    settings = secsgem.hsms.HsmsSettings(
        address="127.0.0.1",
        port=port,
        connect_mode=secsgem.hsms.HsmsConnectMode.ACTIVE,
        device_type=secsgem.common.DeviceType.HOST,
        t3=5.0,
        t5=0.5,
        establish_communication_timeout=1,
    )
    host = secsgem.gem.GemHostHandler(settings)
    host.enable()
    try:
        if not host.waitfor_communicating(10):
            sys.exit("error: not communicating within 10 s")
        online = host.send_and_waitfor_response(host.stream_function(1, 17)())
        if online is None:
            sys.exit("error: no answer to S1F17")
        s1f3 = host.stream_function(1, 3)

        def one():
            reply = host.send_and_waitfor_response(s1f3([]))
            if reply is None or reply.header.function != 4:
                sys.exit(f"error: S1F3 answered with {reply and reply.header}")

        for _ in range(200):
            one()
        n = 0
        start = time.monotonic()
        while time.monotonic() - start < seconds:
            one()
            n += 1
        print(f"round_trips {n} seconds {time.monotonic() - start:.6f}", flush=True)
    finally:
        host.disable()


if __name__ == "__main__":
    main()
