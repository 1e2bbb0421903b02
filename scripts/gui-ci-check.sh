#!/usr/bin/env bash
# The GUI check as CI runs it (scripts/test.sh, after `cargo test`): the real
# operator window under Xvfb for ~12 s, inspecting 2048² px dies back to back
# at full pipeline rate, with the test build's binary (no release build: it
# would cost CI many minutes). Fails if a frame after the window's 3 s
# start-up grace came more than STALL_MS (250) later than the repaint it
# asked for (`--fail-on-stall-ms`, judged by the app itself, exit code 10),
# or if no wafer got going; prints the frame figures either way.
#
# Why 250 ms here and 100 ms in gui-check.sh: on a shared 2-core CI machine
# the test build's pipeline threads and Mesa's software rasteriser keep both
# cores busy, and preemption alone made frames 75-87 ms late on this
# project's machine (CI's is slower). A stall, work that blocks the UI
# thread, is what this must catch: the HMI watchdog calls 500 ms frozen, and
# tests/gui_stall.rs shows a 400 ms one failing. The release build's check
# (gui-check.sh, BENCHMARKS.md) keeps the 100 ms limit.
#
# The frame-time goal (whole frame p99 < 8 ms) is judged on a release build
# (scripts/gui-check.sh, BENCHMARKS.md): the test profile builds our own
# code at opt-level 1, so its frame times are reported here, not judged.
#
# Needs: xvfb-run, xauth, Mesa's GL (CI installs them in .ci/run).
# Usage: scripts/gui-ci-check.sh [seconds]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SECS=${1:-12}
STALL_MS=250
BIN=${CARGO_TARGET_DIR:-target}/debug/waferscope
case "$BIN" in /*) ;; *) BIN="$ROOT/$BIN" ;; esac
if [ ! -x "$BIN" ]; then
  echo "gui ci check: $BIN is missing (built by cargo test --all-targets)" >&2
  exit 1
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# A 10 mm die on 2048 px: the shipped full-wafer recipe with a finer pixel.
sed -E 's/^pixel_um = [0-9.]+/pixel_um = 4.8828125/' assets/recipes/full-300mm.toml >"$WORK/full-300mm-2048.toml"
grep -q '^pixel_um = 4.8828125' "$WORK/full-300mm-2048.toml" || {
  echo "gui ci check: could not set pixel_um in the recipe copy" >&2
  exit 1
}
cd "$WORK"
status=0
xvfb-run -a -s "-screen 0 1600x1000x24" "$BIN" gui --data-dir "$WORK/data" --db "$WORK/load.db" \
  --alarms "$ROOT/assets/alarms.toml" --recipes "$ROOT/assets/recipes" \
  --autostart "$WORK/full-300mm-2048.toml" --fast --demo --exit-after "$SECS" \
  --fail-on-stall-ms "$STALL_MS" >load.log 2>&1 || status=$?
grep -E "^(running|exit): UI frame|UI stall" load.log || true
LINE=$(grep -E "^exit: UI frame" load.log | tail -1 || true)
if [ -z "$LINE" ]; then
  echo "gui ci check: 0 passed, 1 failed (no exit line; exit code $status)"
  tail -20 load.log
  exit 1
fi
DIES=$(echo "$LINE" | sed -E 's/.*pipeline ([0-9]+) dies\/s.*/\1/')
WAFERS=$(echo "$LINE" | sed -E 's/.* ([0-9]+) wafers$/\1/')
if [ "$status" -ne 0 ]; then
  echo "gui ci check: 0 passed, 1 failed (exit code $status: $(grep -Eo 'UI stall: .*' load.log | tail -1))"
  exit 1
fi
if [ "$WAFERS" -lt 1 ] || [ "$DIES" -le 0 ]; then
  echo "gui ci check: 0 passed, 1 failed (the run did not get going: $WAFERS wafers, $DIES dies/s)"
  exit 1
fi
echo "gui ci check: 1 passed, 0 failed (no frame more than $STALL_MS ms late after start-up; $DIES dies/s at 2048² px, $WAFERS wafers started)"
