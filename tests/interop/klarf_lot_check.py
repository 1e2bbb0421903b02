"""Reads waferscope's KLARF 1.8 lot file with klarfio 0.9.1 and checks it
against the database: one LotRecord, one WaferRecord per wafer of the lot
(its newest finished run), and per wafer the defect count, NDEFECT and
slot the database has. Walks klarfio's dict: its get_WaferIDs() crashes.

usage: klarf_lot_check.py DB LOT KLARF18
"""
import sqlite3
import sys

from klarfio.klarfio import klarf as klarfio_read

failures = []
passes = 0


def check(ok, what):
    global passes
    if ok:
        passes += 1
    else:
        failures.append(what)
        print("FAIL:", what)


def expected(db, lot):
    """{wafer id: (run, slot, defects)} of each wafer's newest finished run."""
    c = sqlite3.connect(db)
    rows = c.execute(
        """SELECT w.wafer_id, w.slot, MAX(r.id) FROM runs r JOIN wafers w ON w.id = r.wafer
           JOIN lots l ON l.id = w.lot WHERE l.lot_id = ? AND r.state = 'closed' GROUP BY w.id""",
        (lot,),
    ).fetchall()
    return {
        wafer: (run, slot, c.execute("SELECT COUNT(*) FROM defects WHERE run = ?", (run,)).fetchone()[0])
        for (wafer, slot, run) in rows
    }


def main():
    db, lot, path = sys.argv[1], sys.argv[2], sys.argv[3]
    exp = expected(db, lot)
    check(len(exp) >= 2, f"the database has {len(exp)} wafers of lot {lot}: not a lot")
    f = klarfio_read(path).data["FileRecord_1.8"]
    lots = [key for key in f if key.startswith("LotRecord_")]
    check(lots == [f"LotRecord_{lot}"], f"klarfio lot file: lot records {lots}")
    if not lots:
        sys.exit(1)
    record = f[lots[0]]
    wafers = {key[len("WaferRecord_"):]: val for key, val in record.items() if key.startswith("WaferRecord_")}
    check(sorted(wafers) == sorted(exp), f"klarfio lot file: wafers {sorted(wafers)} != database {sorted(exp)}")
    total = 0
    for wafer, (run, slot, defects) in sorted(exp.items()):
        wr = wafers.get(wafer)
        if wr is None:
            continue
        rows = wr["DefectList"]["Data"]
        ndefect = wr["SummaryList"]["Data"][0][1]
        check(len(rows) == defects, f"klarfio lot file: wafer {wafer} has {len(rows)} defects, run {run} in the database {defects}")
        check(ndefect == defects, f"klarfio lot file: wafer {wafer} NDEFECT {ndefect} != {defects}")
        check(wr["SlotNumber"] == [slot], f"klarfio lot file: wafer {wafer} slot {wr['SlotNumber']} != {slot}")
        print(f"klarfio lot file: wafer {wafer} (run {run}, slot {slot}): {len(rows)} defects, database {defects}")
        total += defects
    check(total > 0, "klarfio lot file: the lot has no defects at all, nothing was compared")
    print(f"klarf lot interop: {passes} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
