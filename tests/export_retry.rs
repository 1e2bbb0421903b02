//! Results out automatically, even when the export directory is gone: an
//! export directory that disappears mid-lot raises the "KLARF export
//! failing" alarm, the lot goes on, and the KLARF of every wafer is written
//! once the directory is back; the alarm then clears and the run records
//! no longer say "not exported". Nothing is lost.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use waferscope::hot::LatestReader;
use waferscope::monitor::{AlarmEntry, AlarmSnapshot, AlarmState};
use waferscope::run::lot::{LotEnd, SlotProgress};
use waferscope::run::recipe;
use waferscope::station::{Station, StationConfig};

/// "KLARF export failing" in assets/alarms.toml.
const EXPORT_ALARM: u32 = 1093;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("waferscope-export-{}-{name}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs slots 1 and 2 of the docked carrier as lot LOT-R to the end.
fn run_lot(station: &Station) -> waferscope::run::lot::LotReport {
    use waferscope::run::lot::{parse_slots, LotPlan, OnWaferFault};
    let recipe = recipe::load(&root().join("assets/recipes/sampled-200mm.toml")).unwrap();
    let rx = station
        .carrier
        .start_lot(LotPlan {
            lot: "LOT-R".into(),
            recipe,
            slots: parse_slots("1-2").unwrap(),
            operator: "Ana".into(),
            typed_ids: Vec::new(),
            on_wafer_fault: OnWaferFault::EndLot,
        })
        .unwrap();
    station.runtime().block_on(rx).unwrap()
}

/// The export alarm's entry in the alarm picture, if it is listed.
fn export_alarm(alarms: &mut LatestReader<AlarmSnapshot>) -> Option<AlarmEntry> {
    alarms.read().value.entry(EXPORT_ALARM).copied()
}

/// (run id, exit status, export error) of every recorded run.
fn records(db: &Path) -> Vec<(i64, String, Option<String>)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut st = c
        .prepare("SELECT id, exit_status, export_error FROM runs ORDER BY id")
        .unwrap();
    st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap()
}

#[test]
fn an_export_directory_that_disappears_mid_lot_is_retried_and_nothing_is_lost() {
    let d = temp_dir("gone");
    let klarf = d.join("klarf");
    std::fs::create_dir_all(&klarf).unwrap();
    let db = d.join("station.db");
    let station = Station::start(StationConfig {
        db: db.clone(),
        alarms: root().join("assets/alarms.toml"),
        recipes: root().join("assets/recipes"),
        thumbnails: d.join("thumbnails"),
        klarf_dir: Some(klarf.clone()),
        read_history: false,
        paced: false,
        ..StationConfig::default()
    })
    .unwrap();
    let mut machine = station.monitor.snapshots.reader().unwrap();
    wait_for("every heartbeat live", Duration::from_secs(30), || {
        machine.read().value.all_live()
    });
    let mut alarms = station.alarms.snapshots.reader().unwrap();
    assert_eq!(export_alarm(&mut alarms), None, "no alarm before the lot");

    station
        .carrier
        .load_carrier_nowait()
        .recv()
        .unwrap()
        .unwrap();

    // The directory disappears; the lot goes on: both wafers complete.
    std::fs::remove_dir_all(&klarf).unwrap();
    let report = run_lot(&station);
    assert_eq!(report.end, LotEnd::Complete, "{report:?}");
    assert!(report
        .wafers
        .iter()
        .all(|w| w.progress == SlotProgress::Complete && w.not_exported));
    // The lot file could not be written either (said, with how to repeat
    // it); each wafer's KLARF is retried.
    assert!(
        matches!(&report.lot_file, Some(Err(_))),
        "{:?}",
        report.lot_file
    );
    wait_for("the export alarm active", Duration::from_secs(10), || {
        export_alarm(&mut alarms).is_some_and(|e| e.condition && e.state == AlarmState::UnackActive)
    });
    let recorded = records(&db);
    assert_eq!(recorded.len(), 2, "{recorded:?}");
    for (id, status, export_error) in &recorded {
        assert_eq!(status, "complete", "run {id}");
        let why = export_error.as_deref().unwrap_or("");
        assert!(
            why.starts_with("KLARF: ") && why.contains("does not exist"),
            "run {id}: {why}"
        );
    }
    assert!(
        !klarf.exists(),
        "no file was written in the directory's place"
    );

    // The directory is back: every waiting KLARF is written, the records
    // updated and the alarm returns to normal.
    std::fs::create_dir_all(&klarf).unwrap();
    let expected = [
        "LOT-R_SIM-FOUP-01-01_slot01_run1.klarf",
        "LOT-R_SIM-FOUP-01-01_slot01_run1_v18.klarf",
        "LOT-R_SIM-FOUP-01-02_slot02_run2.klarf",
        "LOT-R_SIM-FOUP-01-02_slot02_run2_v18.klarf",
    ];
    wait_for(
        "both wafers' KLARF written",
        Duration::from_secs(60),
        || expected.iter().all(|f| klarf.join(f).is_file()),
    );
    for (f, wafer, slot) in [
        (expected[0], "SIM-FOUP-01-01", 1),
        (expected[2], "SIM-FOUP-01-02", 2),
    ] {
        let text = std::fs::read_to_string(klarf.join(f)).unwrap();
        assert!(
            text.contains(&format!("WaferID \"{wafer}\";\nSlot {slot};"))
                && text.ends_with("EndOfFile;\n"),
            "{f}: {text}"
        );
    }
    wait_for("the export alarm cleared", Duration::from_secs(10), || {
        export_alarm(&mut alarms).is_none_or(|e| {
            !e.condition && matches!(e.state, AlarmState::ReturnedUnack | AlarmState::Normal)
        })
    });
    wait_for("the records say exported", Duration::from_secs(10), || {
        records(&db).iter().all(|r| r.2.is_none())
    });
    drop(station);
    std::fs::remove_dir_all(d).ok();
}
