//! The results database: what a run records, recovery of a run a crash
//! left open, refusal of files that are not ours, and exports that either
//! complete or leave nothing behind.

use std::path::{Path, PathBuf};
use std::process::Command;
use waferscope::pipeline::{Defect, DefectClass, DieResult, ReferenceMode};
use waferscope::store::export::{export_lot, export_run, Format};
use waferscope::store::query::{list_runs, load_run, lot_runs};
use waferscope::store::{db, ExitStatus, RunIdentity, RunLayout, RunStart, RunStore, SqliteStore};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("waferscope-store-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn start() -> RunStart {
    RunStart {
        identity: RunIdentity {
            lot: "LOT-9".into(),
            wafer: "W03".into(),
            slot: 3,
            operator: "Ana".into(),
        },
        recipe_id: "R1".into(),
        recipe_hash: "abc".into(),
        plan: vec![0, 1, 2],
        started_unix_ms: 1_795_690_619_000,
        layout: RunLayout {
            diameter_mm: 200.0,
            die_pitch_um: (10_100.0, 10_100.0),
            die_size_um: (10_000.0, 10_000.0),
            grid_offset_um: (0.0, 0.0),
            notch: "down".into(),
            pixel_um: 10.0,
            image_px: 1000,
            plan_dies: vec![(0, -1, 0), (1, 0, 0), (2, 1, 0)],
        },
    }
}

fn die(index: u32, defects: usize) -> DieResult {
    let mut r = DieResult::default();
    r.clear(index);
    for k in 0..defects {
        r.push(Defect {
            x_px: 100.0 + k as f32 * 10.0,
            y_px: 900.0,
            bbox: [95, 895, 105, 905],
            area_px: 60,
            peak_diff: 80,
            mean_diff: 60.0,
            class: DefectClass::Particle,
            ..Defect::default()
        });
    }
    r
}

#[test]
fn a_run_is_recorded_in_full() {
    let d = dir("full");
    let path = d.join("results.db");
    let mut store = SqliteStore::open(&path).unwrap();
    let id = store.begin(&start()).unwrap();
    store.record_die(id, &die(0, 2)).unwrap();
    store.record_die(id, &die(1, 0)).unwrap();
    store.mark_not_inspected(id, &[2]).unwrap();
    store
        .end(
            id,
            ExitStatus::Stopped,
            "stopped by the operator",
            1_795_690_700_000,
        )
        .unwrap();
    drop(store);

    let conn = db::open(&path).unwrap();
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, db::schema_version());
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let e = load_run(&conn, id as i64).unwrap();
    assert_eq!(
        (e.run.lot.as_str(), e.run.wafer.as_str(), e.run.slot),
        ("LOT-9", "W03", 3)
    );
    assert_eq!(e.run.exit_status.as_deref(), Some("stopped"));
    assert_eq!(e.run.reason.as_deref(), Some("stopped by the operator"));
    let statuses: Vec<_> = e
        .dies
        .iter()
        .map(|d| (d.die_index, d.status.as_str(), d.defect_count))
        .collect();
    assert_eq!(
        statuses,
        [
            (0, "inspected", 2),
            (1, "inspected", 0),
            (2, "not inspected", 0)
        ]
    );
    assert_eq!(e.defects.len(), 2);
    let f = &e.defects[0];
    // 1000 px image of 10 µm pixels: y = (1000 − 900) · 10 µm from the bottom.
    assert_eq!(
        (f.x_um, f.y_um, f.area_um2, f.class.as_str()),
        (1000.0, 1000.0, 6000.0, "particle")
    );
    assert_eq!(list_runs(&conn).unwrap().len(), 1);
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn a_run_left_open_is_recovered_as_interrupted_keeping_its_defects() {
    let d = dir("recover");
    let path = d.join("results.db");
    let mut store = SqliteStore::open(&path).unwrap();
    let id = store.begin(&start()).unwrap();
    store.record_die(id, &die(0, 3)).unwrap();
    store.flush().unwrap();
    // The program dies here: no end(). The run's owner is made a process
    // that has exited, as a killed one would be (tests/kill_recovery.rs
    // kills a real one).
    drop(store);
    let mut gone = std::process::Command::new("true").spawn().unwrap();
    gone.wait().unwrap();
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute("UPDATE runs SET owner_pid = ?1", [gone.id()])
        .unwrap();

    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.recovered, [id as i64]);
    drop(store);
    let conn = db::open(&path).unwrap();
    let e = load_run(&conn, id as i64).unwrap();
    assert_eq!(e.run.exit_status.as_deref(), Some("aborted"));
    assert_eq!(e.run.reason.as_deref(), Some("interrupted"));
    assert_eq!(e.run.state, "closed");
    assert_eq!(e.defects.len(), 3, "recorded defects are kept");
    assert_eq!(
        e.dies
            .iter()
            .filter(|d| d.status == "not inspected")
            .count(),
        2
    );
    assert_eq!(db::integrity(&conn).unwrap(), "ok");
    // Recovering again finds nothing.
    assert!(SqliteStore::open(&path).unwrap().recovered.is_empty());
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn files_that_are_not_ours_are_refused_and_left_untouched() {
    let d = dir("foreign");
    let notes = d.join("notes.db");
    std::fs::write(&notes, "shift notes: not a database at all\n".repeat(100)).unwrap();
    let before = std::fs::read(&notes).unwrap();
    let e = format!("{:#}", SqliteStore::open(&notes).err().unwrap());
    assert_eq!(
        e,
        format!(
            "{}: not a waferscope database (file is not a database)",
            notes.display()
        )
    );
    assert_eq!(std::fs::read(&notes).unwrap(), before);

    let other = d.join("crm.db");
    {
        let c = rusqlite::Connection::open(&other).unwrap();
        c.execute_batch("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO customers (name) VALUES ('x');")
            .unwrap();
    }
    let before = std::fs::read(&other).unwrap();
    let e = format!("{:#}", SqliteStore::open(&other).err().unwrap());
    assert_eq!(
        e,
        format!(
            "{}: not a waferscope database (it has a table \"customers\" of another application); refusing to change it",
            other.display()
        )
    );
    assert_eq!(std::fs::read(&other).unwrap(), before);

    let newer = d.join("newer.db");
    {
        let c = rusqlite::Connection::open(&newer).unwrap();
        c.execute_batch("PRAGMA user_version = 99;").unwrap();
    }
    let e = format!("{:#}", SqliteStore::open(&newer).err().unwrap());
    assert!(
        e.ends_with(
            "database schema version 99 is newer than this program's 3; use a newer waferscope"
        ),
        "{e}"
    );
    // No station lock is left beside a file that was refused.
    let mut left: Vec<String> = std::fs::read_dir(&d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".lock"))
        .collect();
    left.sort();
    assert!(left.is_empty(), "{left:?}");
    std::fs::remove_dir_all(d).ok();
}

fn recorded(d: &Path) -> PathBuf {
    let path = d.join("results.db");
    let mut store = SqliteStore::open(&path).unwrap();
    let id = store.begin(&start()).unwrap();
    for i in 0..3 {
        store.record_die(id, &die(i, 60)).unwrap();
    }
    store
        .end(id, ExitStatus::Complete, "", 1_795_690_700_000)
        .unwrap();
    path
}

#[test]
fn export_errors_name_the_problem_and_leave_no_partial_file() {
    let d = dir("export");
    let db = recorded(&d);
    let e = format!(
        "{:#}",
        export_run(&db, 7, Format::Klarf12, Some(&d)).unwrap_err()
    );
    assert_eq!(
        e,
        format!("{}: run 7 is not recorded in this database", db.display())
    );
    let missing = d.join("no-such-dir").join("x.klarf");
    let e = format!(
        "{:#}",
        export_run(&db, 1, Format::Klarf12, Some(&missing)).unwrap_err()
    );
    assert!(e.contains("does not exist"), "{e}");
    let e = format!(
        "{:#}",
        export_run(&d.join("absent.db"), 1, Format::Csv, Some(&d)).unwrap_err()
    );
    assert_eq!(
        e,
        format!(
            "{}: no such results database",
            d.join("absent.db").display()
        )
    );
    assert!(
        !d.join("absent.db").exists(),
        "a missing database is not created by an export"
    );
    // Into a directory: one file per wafer, named by lot, wafer and slot.
    let per_wafer = export_run(&db, 1, Format::Klarf12, Some(&d)).unwrap();
    assert_eq!(per_wafer, d.join("LOT-9_W03_slot03_run1.klarf"));
    let ok = export_run(&db, 1, Format::Klarf18, Some(&d)).unwrap();
    assert_eq!(ok, d.join("LOT-9_W03_slot03_run1_v18.klarf"));
    assert!(std::fs::read_to_string(ok)
        .unwrap()
        .ends_with("}\nEndOfFile;\n"));
    std::fs::remove_dir_all(d).ok();
}

/// A lot as one KLARF 1.8 file: one LotRecord, and for each run the very
/// WaferRecord its own 1.8 file has; runs of another lot are refused,
/// naming the run; the lot's runs are the newest of each wafer.
#[test]
fn a_lot_file_holds_one_wafer_record_per_run_and_refuses_another_lot() {
    let d = dir("lot");
    let path = d.join("results.db");
    let mut store = SqliteStore::open(&path).unwrap();
    let mut ids = Vec::new();
    for (lot, wafer, slot, defects) in [
        ("LOT-9", "W03", 3, 4),
        ("LOT-9", "W04", 4, 1),
        ("LOT-7", "W01", 1, 2),
        ("LOT-9", "W03", 3, 2),
    ] {
        let mut s = start();
        s.identity.lot = lot.into();
        s.identity.wafer = wafer.into();
        s.identity.slot = slot;
        let id = store.begin(&s).unwrap();
        for i in 0..3 {
            store.record_die(id, &die(i, defects)).unwrap();
        }
        store
            .end(id, ExitStatus::Complete, "", 1_795_690_700_000 + id as i64)
            .unwrap();
        ids.push(id as i64);
    }
    drop(store);
    let conn = db::open(&path).unwrap();
    assert_eq!(
        lot_runs(&conn, "LOT-9").unwrap(),
        [4, 2],
        "each wafer's newest run, by slot"
    );
    assert_eq!(
        format!("{:#}", lot_runs(&conn, "LOT-0").unwrap_err()),
        "lot \"LOT-0\" has no finished run in this database"
    );
    let lot = export_lot(&path, &[4, 2], &d).unwrap();
    assert_eq!(lot, d.join("LOT-9_lot_v18.klarf"));
    let text = std::fs::read_to_string(&lot).unwrap();
    assert_eq!(text.matches("Record LotRecord").count(), 1);
    assert_eq!(text.matches("Record WaferRecord").count(), 2);
    for run in [4, 2] {
        let single = export_run(&path, run, Format::Klarf18, Some(&d)).unwrap();
        let single = std::fs::read_to_string(single).unwrap();
        let from = single.find("    Record WaferRecord").unwrap();
        let to = single.find("  }\n  List ClassLookupList").unwrap();
        assert!(
            text.contains(&single[from..to]),
            "run {run}'s wafer record is not in the lot file"
        );
    }
    let e = format!("{:#}", export_lot(&path, &[1, 2, 3], &d).unwrap_err());
    assert_eq!(
        e,
        format!(
            "{}: run 3 cannot go in the lot file of run 1: it has lot \"LOT-7\", not \"LOT-9\"; \
             a KLARF lot file holds one lot, recipe and layout, one record per wafer",
            path.display()
        )
    );
    let e = format!("{:#}", export_lot(&path, &[1, 4], &d).unwrap_err());
    assert!(
        e.contains(
            "run 4 cannot go in the lot file of run 1: it has wafer \"W03\" again (run 1 has it)"
        ),
        "{e}"
    );
    std::fs::remove_dir_all(d).ok();
}

/// Runs `waferscope export` into a directory mounted read-only or nearly
/// full, inside a private mount namespace (nothing outlives the command).
fn export_into_mount(db: &Path, mount_opts: &str) -> (i32, String, String) {
    let target = db
        .parent()
        .unwrap()
        .join(format!("mnt-{}", mount_opts.replace([',', '='], "_")));
    std::fs::create_dir_all(&target).unwrap();
    let script = format!(
        "mount -t tmpfs -o {mount_opts} tmpfs '{t}' || exit 97; '{bin}' export --run 1 --format klarf12 --db '{db}' --out '{t}/run.klarf'; rc=$?; echo \"rc=$rc\"; ls -A '{t}'",
        t = target.display(),
        bin = env!("CARGO_BIN_EXE_waferscope"),
        db = db.display()
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(97),
        "tmpfs mount failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let rc = stdout
        .lines()
        .find_map(|l| l.strip_prefix("rc="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1);
    let listing = stdout
        .lines()
        .filter(|l| !l.starts_with("rc="))
        .collect::<Vec<_>>()
        .join("\n");
    (
        rc,
        listing,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn export_to_a_read_only_or_full_directory_fails_cleanly() {
    let d = dir("mounts");
    let db = recorded(&d);
    let (rc, listing, err) = export_into_mount(&db, "ro,size=64k");
    assert_eq!(rc, 2, "{err}");
    assert!(
        err.contains("run.klarf: cannot write the export: Read-only file system"),
        "{err}"
    );
    assert_eq!(listing, "", "nothing left behind");

    let (rc, listing, err) = export_into_mount(&db, "size=8k");
    assert_eq!(rc, 2, "{err}");
    assert!(
        err.contains("run.klarf: cannot write the export: No space left on device"),
        "{err}"
    );
    assert_eq!(listing, "", "no partial file");
    // The database is intact.
    let conn = db::open(&db).unwrap();
    assert_eq!(load_run(&conn, 1).unwrap().defects.len(), 180);
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn each_die_keeps_how_it_was_inspected() {
    let d = dir("how");
    let path = d.join("results.db");
    let mut store = SqliteStore::open(&path).unwrap();
    let id = store.begin(&start()).unwrap();
    let mut golden = die(0, 1);
    golden.reference_mode = ReferenceMode::DieToGolden;
    golden.align_confidence_left = 0.8;
    golden.align_confidence_right = 0.6;
    golden.noise_sigma = 2.5;
    golden.threshold_used = 24.0;
    store.record_die(id, &golden).unwrap();
    let mut untrusted = die(1, 0);
    untrusted.reference_mode = ReferenceMode::DieToDieGoldenArbitrated;
    untrusted.alignment_untrusted = true;
    untrusted.align_confidence_left = 0.1;
    untrusted.align_confidence_right = 0.9;
    store.record_die(id, &untrusted).unwrap();
    store.mark_not_inspected(id, &[2]).unwrap();
    store
        .end(id, ExitStatus::Complete, "", 1_795_690_700_000)
        .unwrap();
    drop(store);
    let e = load_run(&db::open(&path).unwrap(), id as i64).unwrap();
    let how: Vec<_> = e
        .dies
        .iter()
        .map(|d| {
            (
                d.reference_mode.as_deref(),
                d.align_confidence.map(|c| (c * 100.0).round() / 100.0),
                d.alignment_untrusted,
                d.noise_sigma,
                d.threshold_used,
            )
        })
        .collect();
    assert_eq!(
        how,
        [
            (
                Some("die-to-golden"),
                Some(0.6),
                Some(false),
                Some(2.5),
                Some(24.0)
            ),
            (
                Some("die-to-die+golden"),
                Some(0.1),
                Some(true),
                Some(0.0),
                Some(0.0)
            ),
            (None, None, None, None, None),
        ]
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn repeaters_of_a_run_are_stored_with_their_count_and_exported() {
    use waferscope::run::repeaters::mark_run_repeaters;
    let d = dir("repeaters");
    let path = d.join("results.db");
    let mut store = SqliteStore::open(&path).unwrap();
    let id = store.begin(&start()).unwrap();
    // Every die has a defect at the same spot (100, 900) px; die 2 one more
    // 100 µm away, on that die alone.
    store.record_die(id, &die(0, 1)).unwrap();
    store.record_die(id, &die(1, 1)).unwrap();
    store.record_die(id, &die(2, 2)).unwrap();
    store.confirm(id).unwrap();
    let marks = mark_run_repeaters(&mut store, id, 10.0).unwrap();
    assert_eq!(marks.len(), 3, "{marks:?}");
    assert!(marks.iter().all(|m| m.defect_no == 1 && m.dies == 3));
    store
        .end(id, ExitStatus::Complete, "", 1_795_690_700_000)
        .unwrap();
    drop(store);
    let conn = db::open(&path).unwrap();
    let e = load_run(&conn, id as i64).unwrap();
    let repeaters: Vec<_> = e
        .defects
        .iter()
        .map(|f| (f.die_index, f.defect_no, f.repeater))
        .collect();
    assert_eq!(repeaters, [(0, 1, 3), (1, 1, 3), (2, 1, 3), (2, 2, 0)]);
    // KLARF: DEFECTIDs 1..3 are the repeater rows, in both versions; the
    // defect rows keep their 17 columns.
    let k12 = export_run(&path, id as i64, Format::Klarf12, Some(&d)).unwrap();
    let text = std::fs::read_to_string(k12).unwrap();
    assert!(
        text.contains("RepeaterSpec 2 DEFECTID NDIES;\nRepeaterList\n 1 3\n 2 3\n 3 3;\n"),
        "{text}"
    );
    assert!(text.contains("DefectRecordSpec 17 "));
    let k18 = export_run(&path, id as i64, Format::Klarf18, Some(&d)).unwrap();
    let text = std::fs::read_to_string(k18).unwrap();
    assert!(text.contains("List RepeaterList"), "{text}");
    assert!(text.contains("          3 3;\n"), "{text}");
    let csv = export_run(&path, id as i64, Format::Csv, Some(&d)).unwrap();
    let csv = std::fs::read_to_string(csv).unwrap();
    assert!(csv
        .lines()
        .next()
        .unwrap()
        .ends_with(",class,repeater_dies,reference_mode"));
    assert!(
        csv.lines()
            .nth(1)
            .unwrap()
            .ends_with(",particle,3,die-to-die"),
        "{csv}"
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn a_run_without_repeaters_writes_no_repeater_record() {
    let d = dir("no-repeaters");
    let path = recorded(&d);
    let text =
        std::fs::read_to_string(export_run(&path, 1, Format::Klarf12, Some(&d)).unwrap()).unwrap();
    assert!(!text.contains("Repeater"));
    std::fs::remove_dir_all(d).ok();
}

/// The History screen's query: runs whose lot contains the text (any
/// case), started within the age asked for, newest first, at most the
/// limit, with the count of all that match.
#[test]
fn runs_are_found_by_lot_and_age_bounded_with_the_matching_total() {
    use std::time::Duration;
    use waferscope::store::query::{find_runs, RunFilter};
    let d = dir("find-runs");
    let path = d.join("station.db");
    let mut store = SqliteStore::open(&path).unwrap();
    let hour_ms = 3_600_000;
    let now = 1_795_690_619_000;
    // (lot, started hours ago)
    let runs = [
        ("LOT-A", 50),
        ("lot-a2", 30),
        ("LOT-B", 2),
        ("LOT-A", 1),
        ("LOT-A", 0),
    ];
    for (n, (lot, ago)) in runs.iter().enumerate() {
        let mut s = start();
        s.identity.lot = (*lot).into();
        s.identity.wafer = format!("W{n}");
        s.started_unix_ms = now - ago * hour_ms;
        let id = store.begin(&s).unwrap();
        store
            .end(id, ExitStatus::Complete, "", s.started_unix_ms + 1000)
            .unwrap();
    }
    drop(store);
    let conn = db::open(&path).unwrap();
    let find = |lot: &str, hours: Option<u64>, limit| {
        let filter = RunFilter {
            lot_contains: lot.into(),
            max_age: hours.map(|h| Duration::from_secs(h * 3600)),
        };
        let (rows, total) = find_runs(&conn, &filter, now, limit).unwrap();
        (
            rows.iter().map(|r| r.wafer.clone()).collect::<Vec<_>>(),
            total,
        )
    };
    assert_eq!(
        find("", None, 10),
        (
            vec!["W4", "W3", "W2", "W1", "W0"]
                .into_iter()
                .map(String::from)
                .collect(),
            5
        )
    );
    let (rows, total) = find("lot-a", None, 10);
    assert_eq!(
        (rows, total),
        (vec!["W4".into(), "W3".into(), "W1".into(), "W0".into()], 4),
        "any case, contained"
    );
    let (rows, total) = find("lot-a", Some(24), 10);
    assert_eq!(
        (rows, total),
        (vec!["W4".into(), "W3".into()], 2),
        "within 24 h"
    );
    let (rows, total) = find("", None, 2);
    assert_eq!((rows.len(), total), (2, 5), "bounded, with the total");
    let (rows, total) = find("%", None, 10);
    assert_eq!(
        (rows.len(), total),
        (0, 0),
        "the text is matched as typed, not as a pattern"
    );
    std::fs::remove_dir_all(d).ok();
}
