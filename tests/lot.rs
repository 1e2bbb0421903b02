//! Lots on the simulated station: a carrier of 25 slots with empty and
//! double-slotted slots, slots picked, wafers run one after another, each
//! its own run record in the database; "stop after this wafer"; a wafer
//! that faults does not lose the others; handling faults stop the lot with
//! the wafer's whereabouts said.

use std::path::{Path, PathBuf};
use std::time::Duration;
use waferscope::machine::load_port::SlotState;
use waferscope::machine::sim::SimCarrier;
use waferscope::run::lot::{parse_slots, LotEnd, LotPlan, LotReport, OnWaferFault, SlotProgress};
use waferscope::run::RunState;
use waferscope::station::{Station, StationConfig};
use waferscope::store::query::list_runs;

fn station(name: &str, carrier: SimCarrier) -> (Station, PathBuf) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let d = std::env::temp_dir().join(format!("waferscope-lot-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("klarf")).unwrap();
    let station = Station::start(StationConfig {
        db: d.join("station.db"),
        alarms: root.join("assets/alarms.toml"),
        recipes: root.join("assets/recipes"),
        thumbnails: d.join("thumbnails"),
        klarf_dir: Some(d.join("klarf")),
        read_history: false,
        paced: false,
        resume_after: Duration::from_millis(200),
        carrier,
        ..StationConfig::default()
    })
    .unwrap();
    (station, d)
}

/// The acceptance carrier: 25 slots, 2 empty, slot 4 double-slotted.
fn acceptance_carrier() -> SimCarrier {
    SimCarrier::with("FOUP-7", 500, &[10, 20], &[4], &[])
}

fn recipe() -> waferscope::run::ValidRecipe {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    waferscope::run::recipe::load(&root.join("assets/recipes/sampled-200mm.toml")).unwrap()
}

fn plan(lot: &str, slots: &str, on_fault: OnWaferFault) -> LotPlan {
    LotPlan {
        lot: lot.into(),
        recipe: recipe(),
        slots: parse_slots(slots).unwrap(),
        operator: "op1".into(),
        typed_ids: Vec::new(),
        on_wafer_fault: on_fault,
    }
}

fn dock(station: &Station) {
    // The monitor needs a moment to see every heartbeat before a load's
    // interlocks hold.
    let mut m = station.monitor.snapshots.reader().unwrap();
    let t0 = std::time::Instant::now();
    while !m.read().value.all_live() {
        assert!(t0.elapsed() < Duration::from_secs(10), "heartbeats live");
        std::thread::sleep(Duration::from_millis(10));
    }
    station
        .carrier
        .load_carrier_nowait()
        .recv_timeout(Duration::from_secs(10))
        .unwrap()
        .unwrap();
}

fn run(station: &Station, plan: LotPlan) -> LotReport {
    let rx = station.carrier.start_lot(plan).unwrap();
    station
        .runtime()
        .block_on(async { tokio::time::timeout(Duration::from_secs(300), rx).await })
        .expect("the lot ends within 5 minutes")
        .expect("the lot reports")
}

fn runs_in(db: &Path) -> Vec<waferscope::store::query::RunRow> {
    let conn = waferscope::store::export::open_existing(db).unwrap();
    let mut runs = list_runs(&conn).unwrap();
    runs.reverse();
    runs
}

#[test]
fn slots_1_to_6_run_five_wafers_and_skip_the_double_slotted_one_saying_so() {
    let (station, d) = station("accept", acceptance_carrier());
    dock(&station);
    let map = station.carrier.current();
    assert!(map.docked);
    assert_eq!(map.slots[3].state, SlotState::DoubleSlotted);
    assert_eq!(map.slots[9].state, SlotState::Empty);
    assert_eq!(station.carrier.pickable().len(), 22);

    let report = run(&station, plan("LOT-A", "1-6", OnWaferFault::EndLot));
    assert_eq!(report.end, LotEnd::Complete, "{report:?}");
    let by_slot = |s: u32| report.wafers.iter().find(|w| w.slot == s).unwrap();
    for s in [1, 2, 3, 5, 6] {
        let w = by_slot(s);
        assert_eq!(w.progress, SlotProgress::Complete, "slot {s}: {w:?}");
        assert_eq!(
            w.wafer,
            format!("FOUP-7-{s:02}"),
            "the id read at the aligner"
        );
        assert!(w.run_id > 0);
    }
    let skipped = by_slot(4);
    assert_eq!(skipped.progress, SlotProgress::Skipped);
    assert!(skipped.note.contains("double-slotted"), "{}", skipped.note);
    assert_eq!(skipped.run_id, 0, "never run, no record");

    // Every wafer its own record, with its lot, wafer id and slot, and the
    // defect count the lot reported.
    let runs = runs_in(&d.join("station.db"));
    assert_eq!(runs.len(), 5);
    for (r, s) in runs.iter().zip([1, 2, 3, 5, 6]) {
        assert_eq!((r.lot.as_str(), r.slot), ("LOT-A", s));
        assert_eq!(r.wafer, format!("FOUP-7-{s:02}"));
        assert_eq!(r.exit_status.as_deref(), Some("complete"));
        assert_eq!(r.defects as u32, by_slot(s as u32).defects);
    }
    // One KLARF 1.2 file per wafer in the export directory, each naming
    // its wafer (read back by independent readers in the interop test).
    let mut klarf_12: Vec<String> = std::fs::read_dir(d.join("klarf"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "klarf"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .filter(|t| t.contains("FileVersion 1 2;"))
        .collect();
    klarf_12.sort();
    assert_eq!(klarf_12.len(), 5);
    // And the lot file, one WaferRecord per wafer run.
    let lot_file = report.lot_file.clone().expect("asked for").unwrap();
    assert_eq!(lot_file, d.join("klarf").join("LOT-A_lot_v18.klarf"));
    let text = std::fs::read_to_string(&lot_file).unwrap();
    assert_eq!(text.matches("WaferRecord ").count(), 5, "{text}");
    for s in [1, 2, 3, 5, 6] {
        let id = format!("WaferID \"FOUP-7-{s:02}\";");
        assert_eq!(
            klarf_12.iter().filter(|t| t.contains(&id)).count(),
            1,
            "{id}"
        );
    }
    // Each wafer is its own simulated wafer (seeded by its slot), not one
    // wafer imaged five times.
    let counts: std::collections::HashSet<i64> = runs.iter().map(|r| r.defects).collect();
    assert!(counts.len() > 1, "defect counts {counts:?}");
    // The tool is idle, the chuck empty, for the next lot.
    let mut run_view = station.engine.snapshots.reader().unwrap();
    assert_eq!(run_view.read().value.state, RunState::Idle);
    let lot = station.carrier.current();
    assert!(!lot.running);
    assert_eq!(lot.end, Some(LotEnd::Complete));
    assert!(lot.message.as_str().contains("LOT-A complete"));
}

#[test]
fn stop_after_this_wafer_ends_the_lot_cleanly_after_the_wafer_in_hand() {
    let (station, d) = station("stop", acceptance_carrier());
    dock(&station);
    let rx = station
        .carrier
        .start_lot(plan("LOT-S", "1-3,5-9", OnWaferFault::EndLot))
        .unwrap();
    // Ask while the second wafer is being inspected.
    let t0 = std::time::Instant::now();
    loop {
        let s = station.carrier.current();
        if s.slots[1].progress == SlotProgress::Inspecting {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "slot 2 inspecting");
        std::thread::sleep(Duration::from_millis(2));
    }
    station.carrier.stop_after_wafer();
    let report = station.runtime().block_on(rx).unwrap();
    assert_eq!(report.end, LotEnd::Stopped, "{report:?}");
    let progress: Vec<_> = report.wafers.iter().map(|w| (w.slot, w.progress)).collect();
    assert_eq!(
        progress[..2],
        [(1, SlotProgress::Complete), (2, SlotProgress::Complete)],
        "the wafer in hand finished: {progress:?}"
    );
    assert!(
        progress[2..]
            .iter()
            .all(|(_, p)| *p == SlotProgress::NotRun),
        "the rest untouched: {progress:?}"
    );
    assert_eq!(runs_in(&d.join("station.db")).len(), 2);
}

#[test]
fn a_wafer_that_faults_ends_a_headless_lot_and_keeps_the_wafers_before_it() {
    let (station, d) = station("fault", acceptance_carrier());
    dock(&station);
    let rx = station
        .carrier
        .start_lot(plan("LOT-F", "1-3", OnWaferFault::EndLot))
        .unwrap();
    let t0 = std::time::Instant::now();
    while station.carrier.current().slots[1].progress != SlotProgress::Inspecting {
        assert!(t0.elapsed() < Duration::from_secs(120), "slot 2 inspecting");
        std::thread::sleep(Duration::from_millis(1));
    }
    // The camera stops answering: three dies in a row fail, the run faults.
    station.device_faults.camera_timeout_next(1_000);
    let report = station.runtime().block_on(rx).unwrap();
    station.device_faults.camera_timeout_next(0);
    assert_eq!(report.end, LotEnd::Faulted, "{report:?}");
    let p: Vec<_> = report.wafers.iter().map(|w| w.progress).collect();
    assert_eq!(
        p,
        [
            SlotProgress::Complete,
            SlotProgress::Faulted,
            SlotProgress::NotRun
        ],
        "{report:?}"
    );
    let runs = runs_in(&d.join("station.db"));
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0].exit_status.as_deref(), Some("complete"));
    assert_eq!(runs[1].exit_status.as_deref(), Some("faulted"));
    // The faulted wafer went back to its slot: the load port can undock.
    assert!(report.message.contains("faulted"), "{}", report.message);
}

#[test]
fn a_robot_fault_stops_the_lot_and_says_where_the_wafer_is() {
    let (station, d) = station("robot", acceptance_carrier());
    dock(&station);
    station.handling_faults.fail_robot_moves(1);
    let report = run(&station, plan("LOT-R", "1-2", OnWaferFault::EndLot));
    assert_eq!(report.end, LotEnd::Faulted);
    let w = &report.wafers[0];
    assert_eq!(w.progress, SlotProgress::HandlingFault);
    assert!(
        w.note.contains("robot fault") && w.note.contains("in its slot"),
        "{}",
        w.note
    );
    assert_eq!(report.wafers[1].progress, SlotProgress::NotRun);
    assert!(runs_in(&d.join("station.db")).is_empty());
}

#[test]
fn an_unreadable_wafer_id_skips_the_wafer_unless_the_operator_typed_it() {
    let (station, d) = station("ocr", acceptance_carrier());
    dock(&station);
    station.handling_faults.make_id_unreadable(1);
    station.handling_faults.make_id_unreadable(2);
    let mut p = plan("LOT-O", "1-3", OnWaferFault::EndLot);
    p.typed_ids = vec![(2, "TYPED-02".into())];
    let report = run(&station, p);
    assert_eq!(report.end, LotEnd::Complete);
    assert_eq!(report.wafers[0].progress, SlotProgress::Skipped);
    assert!(report.wafers[0].note.contains("wafer id not read"));
    assert_eq!(report.wafers[1].wafer, "TYPED-02");
    assert_eq!(report.wafers[1].progress, SlotProgress::Complete);
    let runs = runs_in(&d.join("station.db"));
    let ids: Vec<_> = runs.iter().map(|r| r.wafer.as_str()).collect();
    assert_eq!(ids, ["TYPED-02", "FOUP-7-03"]);
}

#[test]
fn a_lot_is_refused_without_a_carrier_or_while_another_runs() {
    let (station, _d) = station("refuse", acceptance_carrier());
    let e = station
        .carrier
        .start_lot(plan("LOT-X", "1", OnWaferFault::EndLot))
        .unwrap_err();
    assert!(e.contains("load a carrier first"), "{e}");
    dock(&station);
    let first = station
        .carrier
        .start_lot(plan("LOT-1", "1-2", OnWaferFault::EndLot))
        .unwrap();
    let e = station
        .carrier
        .start_lot(plan("LOT-2", "3", OnWaferFault::EndLot))
        .unwrap_err();
    assert!(e.contains("busy"), "{e}");
    let e = station
        .carrier
        .load_carrier_nowait()
        .recv()
        .unwrap()
        .unwrap_err();
    assert!(e.contains("busy"), "{e}");
    assert_eq!(
        station.runtime().block_on(first).unwrap().end,
        LotEnd::Complete
    );
    for (slots, says) in [
        (vec![0], "slot 0 is not in 1..=25"),
        (vec![2, 3, 2], "slot 2 is picked twice"),
    ] {
        let mut p = plan("LOT-3", "1", OnWaferFault::EndLot);
        p.slots = slots;
        let e = station.carrier.start_lot(p).unwrap_err();
        assert!(e.contains(says), "{e}");
    }
    let e = station
        .carrier
        .start_lot(plan("bad\u{7}lot", "1", OnWaferFault::EndLot))
        .unwrap_err();
    assert!(e.contains("lot"), "{e}");
}

#[test]
fn the_lot_overview_has_each_wafer_the_stack_map_and_limits_from_the_wafers_before() {
    let (station, d) = station("overview", acceptance_carrier());
    dock(&station);
    let first = run(&station, plan("LOT-P", "1-3,5-6", OnWaferFault::EndLot));
    assert_eq!(first.end, LotEnd::Complete);
    let second = run(&station, plan("LOT-Q", "7-8", OnWaferFault::EndLot));
    assert_eq!(second.end, LotEnd::Complete);
    let conn = waferscope::store::export::open_existing(&d.join("station.db")).unwrap();
    use waferscope::store::lot_query::{lot_overview, ControlLimits};
    let p = lot_overview(&conn, "LOT-P").unwrap();
    assert_eq!(p.wafers.len(), 5);
    assert_eq!(p.limits, None, "nothing of the recipe before the first lot");
    let counts: Vec<i64> = first
        .wafers
        .iter()
        .filter(|w| w.run_id > 0)
        .map(|w| w.defects as i64)
        .collect();
    assert_eq!(
        p.wafers.iter().map(|w| w.defects).collect::<Vec<_>>(),
        counts
    );
    assert_eq!(p.stack.len() as i64, counts.iter().sum::<i64>());
    // Every stacked defect lies on the 200 mm wafer.
    assert!(p.stack.iter().all(|[x, y]| x.hypot(*y) <= 100_000.0));
    let q = lot_overview(&conn, "LOT-Q").unwrap();
    assert_eq!(q.wafers.len(), 2);
    // Limits from the five wafers run before it, newest first.
    assert_eq!(
        q.limits,
        ControlLimits::from_counts(&counts.iter().rev().copied().collect::<Vec<_>>())
    );
    let e = lot_overview(&conn, "NO-SUCH").unwrap_err().to_string();
    assert!(e.contains("NO-SUCH"), "{e}");
}

#[test]
fn in_the_window_a_faulted_wafer_waits_for_acknowledge_and_reset_then_the_lot_goes_on() {
    use waferscope::run::RunCommand;
    let (station, d) = station("reset", acceptance_carrier());
    dock(&station);
    let rx = station
        .carrier
        .start_lot(plan("LOT-W", "1-3", OnWaferFault::WaitForReset))
        .unwrap();
    let t0 = std::time::Instant::now();
    let wait = |what: &str, cond: &dyn Fn() -> bool| {
        while !cond() {
            assert!(t0.elapsed() < Duration::from_secs(120), "{what}");
            std::thread::sleep(Duration::from_millis(1));
        }
    };
    wait("slot 2 inspecting", &|| {
        station.carrier.current().slots[1].progress == SlotProgress::Inspecting
    });
    station.device_faults.camera_timeout_next(1_000);
    wait("slot 2 faulted", &|| {
        station.carrier.current().slots[1].progress == SlotProgress::Faulted
    });
    wait("the lot asks for the operator", &|| {
        station
            .carrier
            .current()
            .message
            .as_str()
            .contains("acknowledge and reset")
    });
    // The lot waits: nothing else is picked meanwhile.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        station.carrier.current().slots[2].progress,
        SlotProgress::Waiting
    );
    assert!(station.carrier.current().running);
    // The cause is cleared (the camera answers again), the operator
    // acknowledges and resets: the lot goes on with slot 3.
    // (Drains the injected timeouts still armed.)
    while station.device_faults.camera_result().is_err() {}
    station.engine.command(RunCommand::Acknowledge).unwrap();
    station.engine.command(RunCommand::Reset).unwrap();
    let report = station.runtime().block_on(rx).unwrap();
    assert_eq!(report.end, LotEnd::Complete, "{report:?}");
    let p: Vec<_> = report.wafers.iter().map(|w| w.progress).collect();
    assert_eq!(
        p,
        [
            SlotProgress::Complete,
            SlotProgress::Faulted,
            SlotProgress::Complete
        ]
    );
    assert_eq!(runs_in(&d.join("station.db")).len(), 3);
}

#[test]
fn a_wafer_outside_the_recipes_control_limits_raises_the_lot_excursion_alarm() {
    use waferscope::store::{RunIdentity, RunLayout, RunStart, RunStore, SqliteStore};
    const EXCURSION: u32 = 1094;
    // Five earlier complete wafers of the recipe without a defect: limits
    // 0 to 0, so the simulated wafers (each with defects) are outside.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let d = std::env::temp_dir().join(format!("waferscope-lot-{}-excursion", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    {
        let mut store = SqliteStore::open(&d.join("station.db")).unwrap();
        for n in 0..5 {
            let id = store
                .begin(&RunStart {
                    identity: RunIdentity {
                        lot: "EARLIER".into(),
                        wafer: format!("E{n}"),
                        slot: n + 1,
                        operator: "op".into(),
                    },
                    recipe_id: recipe().recipe.id.clone(),
                    recipe_hash: "h".into(),
                    plan: Vec::new(),
                    started_unix_ms: 1_700_000_000_000 + n as i64,
                    layout: RunLayout::default(),
                })
                .unwrap();
            store
                .end(
                    id,
                    waferscope::store::ExitStatus::Complete,
                    "",
                    1_700_000_001_000,
                )
                .unwrap();
        }
    }
    let station = Station::start(StationConfig {
        db: d.join("station.db"),
        alarms: root.join("assets/alarms.toml"),
        recipes: root.join("assets/recipes"),
        thumbnails: d.join("thumbnails"),
        read_history: false,
        paced: false,
        carrier: acceptance_carrier(),
        ..StationConfig::default()
    })
    .unwrap();
    dock(&station);
    let mut alarms = station.alarms.snapshots.reader().unwrap();
    assert!(alarms
        .read()
        .value
        .entry(EXCURSION)
        .is_none_or(|e| !e.condition));
    let report = run(&station, plan("LOT-X", "1-2", OnWaferFault::EndLot));
    assert_eq!(report.end, LotEnd::Complete);
    assert!(report.wafers.iter().all(|w| w.defects > 0), "{report:?}");
    let t0 = std::time::Instant::now();
    while !alarms
        .read()
        .value
        .entry(EXCURSION)
        .is_some_and(|e| e.condition)
    {
        assert!(t0.elapsed() < Duration::from_secs(10), "alarm 1094 raised");
        std::thread::sleep(Duration::from_millis(5));
    }
    let message = station.carrier.current().message;
    assert!(
        message.as_str().contains("excursion: FOUP-7-01 (")
            && message
                .as_str()
                .contains("outside the control limits 0.0 to 0.0"),
        "{message}"
    );
}
