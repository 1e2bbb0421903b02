#!/usr/bin/env bash
# Where the operator window's CPU goes: runs the release window under Xvfb
# and prints the process's and each thread's CPU (share of one core, summed
# by thread name) and its minor page faults a second, between FROM and TO
# seconds after start, then the app's own frame figures.
#
# Usage: scripts/gui-cpu.sh EXIT_AFTER FROM TO [gui arguments...]
#   idle:       scripts/gui-cpu.sh 24 5 21
#   full load:  scripts/gui-cpu.sh 24 5 22 --autostart R --fast --demo
# Needs: xvfb-run, xauth, Mesa's GL; a release build (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
EXIT=$1 FROM=$2 TO=$3
shift 3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
xvfb-run -a -s "-screen 0 1600x1000x24" "$ROOT/target/release/waferscope" gui \
  --data-dir "$WORK/data" --alarms "$ROOT/assets/alarms.toml" --recipes "$ROOT/assets/recipes" \
  --exit-after "$EXIT" "$@" >"$WORK/log" 2>&1 &
XVFB=$!
P=
for _ in $(seq 100); do
  # The program itself, not xvfb-run (whose arguments hold the same line).
  P=$(pgrep -f "^$ROOT/target/release/waferscope gui --data-dir $WORK/data" | head -1 || true)
  [ -n "$P" ] && break
  sleep 0.1
done
[ -n "$P" ] || { echo "gui-cpu: the window did not start" >&2; cat "$WORK/log" >&2; exit 1; }
# name ticks, per thread name; then the process's ticks and minor faults.
snap() {
  for t in /proc/"$P"/task/*; do
    # A thread may end between the listing and the reads: skipped.
    # utime and stime are fields 14 and 15, counted after the ")" that
    # closes the thread's name (which may hold spaces).
    echo "$(tr ' ' _ 2>/dev/null <"$t/comm") $(sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{print $12+$13}')"
  done | awk 'NF==2 {a[$1]+=$2} END {for (k in a) print k, a[k]}'
  sed 's/.*) //' /proc/"$P"/stat | awk '{print "=process", $12+$13; print "=minor_faults", $8}'
}
sleep "$FROM"; snap | LC_ALL=C sort >"$WORK/s0"
sleep $((TO - FROM)); snap | LC_ALL=C sort >"$WORK/s1"
wait "$XVFB" || true
HZ=$(getconf CLK_TCK)
LC_ALL=C join -a2 "$WORK/s0" "$WORK/s1" | awk -v d=$((TO - FROM)) -v hz="$HZ" '
  { b = (NF == 3) ? $2 : 0; e = $NF
    if ($1 == "=minor_faults") faults = (e - b) / d
    else if (e > b) printf "%-20s %9.2f %% of a core\n", $1, 100 * (e - b) / hz / d }
  END { printf "%-20s %9.0f /s\n", "minor faults", faults }' | sort -k2 -nr -s | awk '/minor faults/ {m = $0; next} {print} END {print m}'

grep -E "^exit: UI frame" "$WORK/log" | tail -1
