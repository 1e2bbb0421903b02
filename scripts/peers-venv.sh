#!/usr/bin/env bash
# Python for the independent protocol peers the tests run against (the
# pymodbus Modbus server in tests/peers/modbus, the secsgem SECS/GEM host in
# tests/peers/secsgem): makes target/peers-venv if
# missing and pins the peers into it. A no-op when already in place, so a
# test may call it every run. Prints the venv's python as its last line.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=$(pwd)/target/peers-venv
PY=$VENV/bin/python
[ -x "$PY" ] || python3 -m venv "$VENV"
if [ "$("$PY" -c 'import importlib.metadata as m; print(m.version("pymodbus"))' 2>/dev/null)" != 3.16.1 ]; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check pymodbus==3.16.1
fi
if [ "$("$PY" -c 'import importlib.metadata as m; print(m.version("secsgem"))' 2>/dev/null)" != 0.3.0 ]; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check secsgem==0.3.0
fi
echo "$PY"
