#!/usr/bin/env bash
# Launches the real operator window under Xvfb twice:
#  1. paced like the real tool, inspecting a 300 mm wafer: a screenshot of
#     what the operator sees (docs/screenshot.png);
#  2. at full pipeline rate, wafers back to back for ~22 s: the app logs its
#     own UI frame CPU time, which must stay under 8 ms at p99.
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

cd "$WORK"
xvfb-run -a -s "-screen 0 1600x1000x24" "$ROOT/target/release/waferscope" gui --db load.db --fast --demo --exit-after 22 $COMMON > load.log 2>&1
grep -E "^(running|exit): UI frame" load.log | tail -3
LINE=$(grep -E "^exit: UI frame" load.log | tail -1)
P99=$(echo "$LINE" | sed -E 's/.*p99 ([0-9.]+) ms.*/\1/')
WAFERS=$(echo "$LINE" | sed -E 's/.* ([0-9]+) wafers$/\1/')
if awk "BEGIN {exit !($P99 < 8.0)}" && [ "$WAFERS" -ge 3 ]; then
  echo "gui check: 1 passed, 0 failed (UI frame CPU p99 $P99 ms < 8 ms over $WAFERS wafers at full rate)"
else
  echo "gui check: 0 passed, 1 failed (UI frame CPU p99 $P99 ms, $WAFERS wafers)"
  exit 1
fi
