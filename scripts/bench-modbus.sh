#!/usr/bin/env bash
# Modbus I/O benchmark: compiles the libmodbus server peer, starts it on
# 127.0.0.1, points the sample machine configuration at it, runs
# `waferscope bench modbus` (1 kHz, every point, driver then tokio-modbus
# alone) and ends the server by its PID. Extra arguments go to the bench
# (e.g. --json, --seconds 10).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
# Built every time (a no-op when current), so the figures are this tree's.
if [ -z "${WAFERSCOPE_BIN:-}" ]; then cargo build --release --quiet; fi
BIN=${WAFERSCOPE_BIN:-$ROOT/target/release/waferscope}
WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
cc -O2 -o "$WORK/io_server" tests/peers/modbus/io_server.c $(pkg-config --cflags --libs libmodbus)
# Port 0: the server takes a free port and prints it.
coproc SERVER { exec "$WORK/io_server" 0; }
SERVER_PID=$SERVER_PID
read -r word PORT <&"${SERVER[0]}"
[ "$word" = listening ] || { echo "the libmodbus server did not start" >&2; exit 1; }
sed -e "s/^address = \"127.0.0.1:5020\"/address = \"127.0.0.1:$PORT\"/" \
    -e "s/^period_ms = .*/period_ms = 1/" assets/machines/modbus-io.toml > "$WORK/machine.toml"
"$BIN" --machine "$WORK/machine.toml" bench modbus "$@"
