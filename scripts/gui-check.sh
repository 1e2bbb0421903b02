#!/usr/bin/env bash
# Launches the real operator window under Xvfb twice:
#  1. paced like the real tool, inspecting a 300 mm wafer: a screenshot of
#     what the operator sees (docs/screenshot.png);
#  2. at full pipeline rate, 2048² px dies, wafers back to back for ~22 s: the app logs the
#     whole UI frame: the UI thread's CPU per frame cycle (our code, egui's
#     layout and tessellation, texture upload, the GL calls and swap) must
#     stay under 8 ms at p99 (eframe's wall-time figure is printed beside
#     it), and no frame after the 3 s start-up grace may come
#     more than 100 ms later than the repaint it asked for (the app judges
#     it: --fail-on-stall-ms).
#
# Needs (Debian): apt-get install -y xvfb xauth imagemagick libgl1-mesa-dri libegl-mesa0
# Usage: scripts/gui-check.sh [screenshot.png]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
SHOT=${1:-$ROOT/docs/screenshot.png}
cargo build --release --quiet
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
# --data-dir: the logs and thumbnails in $WORK, not under HOME.
COMMON="--data-dir $WORK --autostart $ROOT/assets/recipes/full-300mm.toml --alarms $ROOT/assets/alarms.toml --recipes $ROOT/assets/recipes"

cat > "$WORK/shot.sh" <<INSIDE
set -eu
cd "$WORK"
"$ROOT/target/release/waferscope" gui --db shot.db --exit-after 14 $COMMON > shot.log 2>&1 &
APP=\$!
sleep 12
import -window root "$SHOT"
wait \$APP
INSIDE
xvfb-run -a -s "-screen 0 1600x1000x24" bash "$WORK/shot.sh"
echo "screenshot: $SHOT"

# Full load at 2048² px (issue 16): the shipped recipe with a finer pixel.
sed -E 's/^pixel_um = [0-9.]+/pixel_um = 4.8828125/' "$ROOT/assets/recipes/full-300mm.toml" >"$WORK/full-300mm-2048.toml"
grep -q '^pixel_um = 4.8828125' "$WORK/full-300mm-2048.toml"
# Its own data directory and database (golden dies are kept beside the
# database): the screenshot run taught the recipe's golden die at the
# shipped pixel size, and a 2048² run refuses that golden (faults, naming
# it) rather than compare against the wrong size.
LOAD="--data-dir $WORK/load --autostart $WORK/full-300mm-2048.toml --alarms $ROOT/assets/alarms.toml --recipes $ROOT/assets/recipes"
cd "$WORK"
status=0
xvfb-run -a -s "-screen 0 1600x1000x24" "$ROOT/target/release/waferscope" gui --fast --demo --exit-after 22 --fail-on-stall-ms 100 $LOAD > load.log 2>&1 || status=$?
grep -E "^(running|exit): UI frame|UI stall" load.log | tail -4
LINE=$(grep -E "^exit: UI frame" load.log | tail -1)
# The goal is the whole frame's CPU: the UI thread's CPU per frame cycle
# (our code, egui's layout and tessellation, the GL calls, swap). eframe's
# own figure is wall time, which on a 2-core machine under full load also
# counts the time the pipeline and Mesa's rasteriser threads held the CPU:
# it is printed, not judged, beside the UI thread's run-queue wait per
# frame cycle (the kernel's schedstat; the cycle includes the wake-up and
# swap, which eframe's timer leaves out).
CPU_P99=$(echo "$LINE" | sed -E 's/.*UI thread CPU per frame p50 [0-9.]+ ms, p99 ([0-9.]+) ms.*/\1/')
P99=$(echo "$LINE" | sed -E 's/.*whole frame \(eframe, wall\) p50 [0-9.]+ ms, p99 ([0-9.]+) ms.*/\1/')
WAFERS=$(echo "$LINE" | sed -E 's/.* ([0-9]+) wafers$/\1/')
WAIT_P99=$(echo "$LINE" | grep -oE 'waiting for a core per frame p50 [0-9.]+ ms, p99 [0-9.]+' | sed -E 's/.* //' || true)
WAIT_P99=${WAIT_P99:-n/a}
if [ "$status" -eq 0 ] && awk "BEGIN {exit !($CPU_P99 < 8.0)}" && [ "$WAFERS" -ge 3 ]; then
  echo "gui check: 1 passed, 0 failed (whole UI frame CPU p99 $CPU_P99 ms < 8 ms; eframe wall p99 $P99 ms, UI thread waiting for a core per frame cycle p99 $WAIT_P99 ms; no frame over 100 ms late, $WAFERS wafers at full rate)"
else
  echo "gui check: 0 passed, 1 failed (exit code $status, whole UI frame CPU p99 $CPU_P99 ms, eframe wall p99 $P99 ms, $WAFERS wafers)"
  exit 1
fi
