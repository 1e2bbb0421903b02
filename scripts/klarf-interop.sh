#!/usr/bin/env bash
# KLARF interoperability: record two simulated runs, export KLARF 1.2 and
# 1.8, and read them back with two independent Python readers (pinned, in
# a virtualenv this script makes), comparing against our database.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BIN=${WAFERSCOPE_BIN:-$ROOT/target/debug/waferscope}
[ -x "$BIN" ] || cargo build --quiet
VENV=$ROOT/target/interop-venv
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps klarf-reader==0.4.3 klarfio==0.9.1
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
mkdir klarf
# The station's database, logs and thumbnails in $WORK (waferscope.db here),
# not in the XDG data directory under HOME.
"$BIN" --data-dir "$WORK" run --fast --recipe "$ROOT/assets/recipes/sampled-200mm.toml" --alarms "$ROOT/assets/alarms.toml" \
  --lot LOT-IO --wafer W11 --slot 11 --klarf-dir klarf --seed 5 > /dev/null
"$BIN" --data-dir "$WORK" run --fast --recipe "$ROOT/assets/recipes/full-300mm.toml" --alarms "$ROOT/assets/alarms.toml" \
  --lot LOT-IO --wafer W12 --slot 12 --klarf-dir klarf --seed 6 > /dev/null
"$VENV/bin/python" "$ROOT/tests/interop/klarf_check.py" waferscope.db 1 klarf/LOT-IO_W11_slot11_run1.klarf klarf/LOT-IO_W11_slot11_run1_v18.klarf
"$VENV/bin/python" "$ROOT/tests/interop/klarf_check.py" waferscope.db 2 klarf/LOT-IO_W12_slot12_run2.klarf klarf/LOT-IO_W12_slot12_run2_v18.klarf
# A truncated die (more defects found than the per-die capacity lists):
# marked in a copy of run 2's record, exported again and read back; NDEFECT
# still matches the rows listed and both readers see the marked die.
cp waferscope.db truncated.db
"$VENV/bin/python" - <<'PY'
import sqlite3
c = sqlite3.connect("truncated.db")
c.execute("""UPDATE dies SET not_listed = 6 WHERE run = 2 AND die_index =
             (SELECT die_index FROM dies WHERE run = 2 AND defect_count > 0 ORDER BY plan_pos LIMIT 1)""")
c.commit()
PY
"$BIN" export --db truncated.db --run 2 --format klarf12 --out klarf/truncated.klarf > /dev/null
"$BIN" export --db truncated.db --run 2 --format klarf18 --out klarf/truncated_v18.klarf > /dev/null
grep -q "^TruncatedDieList" klarf/truncated.klarf
"$VENV/bin/python" "$ROOT/tests/interop/klarf_check.py" truncated.db 2 klarf/truncated.klarf klarf/truncated_v18.klarf
# Repeaters (a defect at one in-die position on many dies): marked in a
# copy of run 2's record (its first defect on each of three dies),
# exported again and read back; the extra RepeaterList record is skipped by
# klarf-reader and read by klarfio, and the defect rows are unchanged.
cp waferscope.db repeaters.db
"$VENV/bin/python" - <<'PY'
import sqlite3
c = sqlite3.connect("repeaters.db")
c.execute("""UPDATE defects SET repeater = 3 WHERE run = 2 AND defect_no = 1 AND die_index IN
             (SELECT die_index FROM dies WHERE run = 2 AND defect_count > 0 ORDER BY plan_pos LIMIT 3)""")
c.commit()
PY
"$BIN" export --db repeaters.db --run 2 --format klarf12 --out klarf/repeaters.klarf > /dev/null
"$BIN" export --db repeaters.db --run 2 --format klarf18 --out klarf/repeaters_v18.klarf > /dev/null
grep -q "^RepeaterList" klarf/repeaters.klarf
"$VENV/bin/python" "$ROOT/tests/interop/klarf_check.py" repeaters.db 2 klarf/repeaters.klarf klarf/repeaters_v18.klarf
# A lot as one KLARF 1.8 file (`export --lot`): three wafers of one recipe,
# the first inspected twice (the lot file takes each wafer's newest run).
# klarfio reads it; walking its dict (not get_WaferIDs, which crashes),
# each wafer's defect count equals the database's.
for wafer_slot_seed in "W21 1 21" "W22 2 22" "W23 3 23" "W21 1 24"; do
  read -r wafer slot seed <<< "$wafer_slot_seed"
  "$BIN" --data-dir "$WORK" run --fast --recipe "$ROOT/assets/recipes/sampled-200mm.toml" --alarms "$ROOT/assets/alarms.toml" \
    --lot LOT-18 --wafer "$wafer" --slot "$slot" --seed "$seed" > /dev/null
done
"$BIN" export --db waferscope.db --lot LOT-18 --out klarf > /dev/null
"$VENV/bin/python" "$ROOT/tests/interop/klarf_lot_check.py" waferscope.db LOT-18 klarf/LOT-18_lot_v18.klarf
# A lot from the simulated carrier (slots 1-6, slot 4 double-slotted and
# skipped): one KLARF 1.2 and 1.8 per wafer, each read by both readers with
# the database's counts, and the lot file by klarfio.
mkdir klarf-lot
"$BIN" --data-dir "$WORK" run --fast --carrier sim --slots 1-6 --db carrier.db --recipe "$ROOT/assets/recipes/sampled-200mm.toml" \
  --alarms "$ROOT/assets/alarms.toml" --lot LOT-C --klarf-dir klarf-lot > /dev/null
[ "$(ls klarf-lot | grep -c -v '_v18.klarf$')" -eq 5 ] || { echo "klarf interop: the carrier lot did not write 5 KLARF 1.2 files" >&2; ls klarf-lot >&2; exit 1; }
for run in 1 2 3 4 5; do
  "$VENV/bin/python" "$ROOT/tests/interop/klarf_check.py" carrier.db "$run" klarf-lot/LOT-C_*_run"$run".klarf klarf-lot/LOT-C_*_run"$run"_v18.klarf
done
"$BIN" export --db carrier.db --lot LOT-C --out klarf-lot > /dev/null
"$VENV/bin/python" "$ROOT/tests/interop/klarf_lot_check.py" carrier.db LOT-C klarf-lot/LOT-C_lot_v18.klarf
# Negative control: the same KLARF with the leading space of every data row
# removed must fail the check (klarf-reader then silently reads 0 defects).
sed 's/^ //' klarf/LOT-IO_W11_slot11_run1.klarf > klarf/broken.klarf
if "$VENV/bin/python" "$ROOT/tests/interop/klarf_check.py" waferscope.db 1 klarf/broken.klarf klarf/LOT-IO_W11_slot11_run1_v18.klarf > broken.log 2>&1; then
  echo "klarf interop: the checker did not catch a broken file" >&2
  exit 1
fi
grep -q "klarf-reader 1.2: 0 defects, database has" broken.log
echo "klarf interop: negative control caught (rows without a leading space read as 0 defects)"
