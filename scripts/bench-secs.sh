#!/usr/bin/env bash
# S1F3/S1F4 round trips per second against the station's GEM layer: our
# own HSMS host and secsgem 0.3.0 (in the peers' virtualenv) polling the
# same equipment in one run, beside Linktest round trips. Release build.
# Extra arguments go to `waferscope bench secs` (e.g. --seconds 10, --json).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$(./scripts/peers-venv.sh | tail -1)
cargo build --release --quiet
exec ./target/release/waferscope bench secs --secsgem "$PY" "$@"
