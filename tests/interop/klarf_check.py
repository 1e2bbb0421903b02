"""Reads waferscope's KLARF files with two independent readers and checks
them against the waferscope database they came from.

klarf-reader 0.4.3 (KLARF 1.1/1.2) and klarfio 0.9.1 (1.2 and 1.8). Every
check compares numbers: klarf-reader silently returns 0 defects when data
rows do not start with a space, so "it parsed" proves nothing.

usage: klarf_check.py DB RUN KLARF12 KLARF18
"""
import math
import sqlite3
import sys
from pathlib import Path

from klarf_reader.klarf import Klarf
from klarfio.klarfio import klarf as klarfio_read

TOL_UM = 0.5
failures = []
passes = 0


def check(ok, what):
    global passes
    if ok:
        passes += 1
    else:
        failures.append(what)
        print("FAIL:", what)


def expected(db, run):
    """Defects in export order with wafer-absolute positions (µm, y up)."""
    c = sqlite3.connect(db)
    r = c.execute(
        "SELECT pitch_x_um, pitch_y_um, die_x_um, die_y_um, offset_x_um, offset_y_um FROM runs WHERE id = ?",
        (run,),
    ).fetchone()
    px, py, sx, sy, ox, oy = r
    rows = c.execute(
        """SELECT f.defect_no, d.col, d.row, f.x_um, f.y_um, f.class_number
           FROM defects f JOIN dies d ON d.run = f.run AND d.die_index = f.die_index
           WHERE f.run = ? ORDER BY d.plan_pos, f.defect_no""",
        (run,),
    ).fetchall()
    defects = [
        {
            "x": col * px - sx / 2 + ox + x,
            "y": row * py - sy / 2 + oy + y,
            "class": cls,
        }
        for (_, col, row, x, y, cls) in rows
    ]
    ndie = c.execute("SELECT COUNT(*) FROM dies WHERE run = ? AND status = 'inspected'", (run,)).fetchone()[0]
    ndefdie = c.execute(
        "SELECT COUNT(*) FROM dies WHERE run = ? AND status = 'inspected' AND defect_count > 0", (run,)
    ).fetchone()[0]
    lot, wafer, slot = c.execute(
        """SELECT l.lot_id, w.wafer_id, w.slot FROM runs r JOIN wafers w ON w.id = r.wafer
           JOIN lots l ON l.id = w.lot WHERE r.id = ?""",
        (run,),
    ).fetchone()
    area = ndie * sx * sy
    cmin, rmin = c.execute("SELECT MIN(col), MIN(row) FROM dies WHERE run = ?", (run,)).fetchone()
    truncated = sorted(
        [col - cmin, row - rmin, n]
        for (col, row, n) in c.execute(
            "SELECT col, row, not_listed FROM dies WHERE run = ? AND not_listed > 0", (run,)
        )
    )
    # Repeaters: (DEFECTID in export order, dies of the group).
    repeaters = [
        [i + 1, n]
        for i, (n,) in enumerate(
            c.execute(
                """SELECT f.repeater FROM defects f JOIN dies d ON d.run = f.run AND d.die_index = f.die_index
                   WHERE f.run = ? ORDER BY d.plan_pos, f.defect_no""",
                (run,),
            ).fetchall()
        )
        if n > 0
    ]
    return {
        "repeaters": repeaters,
        "truncated": truncated,
        "defects": defects,
        "ndie": ndie,
        "ndefdie": ndefdie,
        "density": len(defects) / (area / 1e8) if area else 0.0,
        "lot": lot,
        "wafer": wafer,
        "slot": slot,
    }


def compare(label, exp, got):
    """got: list of (id, x_um, y_um, class_number)."""
    check(len(got) == len(exp["defects"]), f"{label}: {len(got)} defects, database has {len(exp['defects'])}")
    check(len(got) > 0, f"{label}: read no defects at all")
    check([g[0] for g in got] == list(range(1, len(got) + 1)), f"{label}: defect ids are not 1..N")
    worst = 0.0
    for g, e in zip(got, exp["defects"]):
        worst = max(worst, abs(g[1] - e["x"]), abs(g[2] - e["y"]))
        if g[3] != e["class"]:
            check(False, f"{label}: defect {g[0]} class {g[3]} != {e['class']}")
    check(worst <= TOL_UM, f"{label}: worst wafer-position error {worst:.3f} µm > {TOL_UM}")
    print(f"{label}: {len(got)} defects, worst position error {worst:.4f} µm")


def main():
    db, run, k12, k18 = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    exp = expected(db, run)

    # klarf-reader, KLARF 1.2
    content = Klarf.load_from_file(k12)
    check(len(content.wafers) == 1, "klarf-reader: expected one wafer")
    w = content.wafers[0]
    check(content.lot_id == exp["lot"] and w.id == exp["wafer"] and w.slot == exp["slot"], "klarf-reader: lot/wafer/slot")
    got = [(d.id, d.point[0], d.point[1], d.class_number) for d in w.defects]
    compare("klarf-reader 1.2", exp, got)
    s = w.summary
    check(s.number_of_defects == len(exp["defects"]), f"klarf-reader: summary NDEFECT {s.number_of_defects}")
    check(s.number_of_dies == exp["ndie"], f"klarf-reader: summary NDIE {s.number_of_dies} != {exp['ndie']}")
    check(s.number_of_def_dies == exp["ndefdie"], f"klarf-reader: summary NDEFDIE {s.number_of_def_dies}")
    check(math.isclose(s.defect_density, exp["density"], rel_tol=1e-4), f"klarf-reader: DEFDENSITY {s.defect_density} != {exp['density']}")
    check(len(content.sample_plan_test.x) == exp["ndie"], "klarf-reader: SampleTestPlan lists the inspected dies")

    # klarfio, KLARF 1.2
    k = klarfio_read(str(k12))
    data = k.data["FileRecord_1.2"]
    check(data["FileVersion"] == [1, 2], f"klarfio 1.2: FileVersion {data['FileVersion']}")
    cols = [c["Column"] for c in data["DefectList"]["Columns"]]
    pitch, center = data["DiePitch"], data["SampleCenterLocation"]
    ix = {name: cols.index(name) for name in ("DEFECTID", "XREL", "YREL", "XINDEX", "YINDEX", "CLASSNUMBER")}
    got = [
        (
            int(r[ix["DEFECTID"]]),
            r[ix["XINDEX"]] * pitch[0] + r[ix["XREL"]] - center[0],
            r[ix["YINDEX"]] * pitch[1] + r[ix["YREL"]] - center[1],
            int(r[ix["CLASSNUMBER"]]),
        )
        for r in data["DefectList"]["Data"]
    ]
    compare("klarfio 1.2", exp, got)
    # Truncated dies: listed with the count found but not listed (klarfio
    # files a single row under ...ShortList, as it does for defects).
    rows = data.get("TruncatedDieList", {}).get("Data", [])
    if "TruncatedDieShortList" in data:
        rows = rows + [data["TruncatedDieShortList"]]
    check(sorted([int(v) for v in r] for r in rows) == exp["truncated"], f"klarfio 1.2: truncated dies {rows} != {exp['truncated']}")
    rows = data.get("RepeaterList", {}).get("Data", [])
    if "RepeaterShortList" in data:
        rows = rows + [data["RepeaterShortList"]]
    check(sorted([int(v) for v in r] for r in rows) == exp["repeaters"], f"klarfio 1.2: repeaters {rows} != {exp['repeaters']}")
    summary = data["SummaryShortList"]
    check(summary[1] == len(exp["defects"]) and summary[3] == exp["ndie"] and summary[4] == exp["ndefdie"], f"klarfio 1.2: summary {summary}")

    # klarfio, KLARF 1.8 (integer nm)
    k = klarfio_read(str(k18))
    f = k.data["FileRecord_1.8"]
    lot = f[f"LotRecord_{exp['lot']}"]
    wr = lot[f"WaferRecord_{exp['wafer']}"]
    dl = wr["DefectList"]
    cols = [c["Column"] for c in dl["Columns"]]
    ix = {name: cols.index(name) for name in ("DEFECTID", "XREL", "YREL", "XINDEX", "YINDEX", "CLASSNUMBER")}
    pitch, center = f["DiePitch"], wr["SampleCenterLocation"]
    got = [
        (
            int(r[ix["DEFECTID"]]),
            (r[ix["XINDEX"]] * pitch[0] + r[ix["XREL"]] - center[0]) / 1000.0,
            (r[ix["YINDEX"]] * pitch[1] + r[ix["YREL"]] - center[1]) / 1000.0,
            int(r[ix["CLASSNUMBER"]]),
        )
        for r in dl["Data"]
    ]
    compare("klarfio 1.8", exp, got)
    rows = wr.get("TruncatedDieList", {}).get("Data", [])
    check(sorted([int(v) for v in r] for r in rows) == exp["truncated"], f"klarfio 1.8: truncated dies {rows} != {exp['truncated']}")
    rows = wr.get("RepeaterList", {}).get("Data", [])
    check(sorted([int(v) for v in r] for r in rows) == exp["repeaters"], f"klarfio 1.8: repeaters {rows} != {exp['repeaters']}")
    srow = wr["SummaryList"]["Data"][0]
    check(srow[1] == len(exp["defects"]) and srow[3] == exp["ndie"] and srow[4] == exp["ndefdie"], f"klarfio 1.8: summary {srow}")
    check(wr["SlotNumber"] == [exp["slot"]], "klarfio 1.8: slot")
    check(len(wr["SampleTestPlan"]["Data"]) == exp["ndie"], "klarfio 1.8: SampleTestPlan lists the inspected dies")

    print(f"klarf interop: {passes} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
