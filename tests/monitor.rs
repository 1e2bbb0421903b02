//! The running monitor against the simulated machine: staleness from a
//! frozen heartbeat, invalid readings, trends; and the alarm service's
//! journal surviving a restart.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use waferscope::machine::sim::{SimIo, SimIoFaults};
use waferscope::machine::{Signal, Subsystem};
use waferscope::monitor::alarm_defs::load;
use waferscope::monitor::{
    content_hash, AlarmCommand, AlarmService, AlarmState, Journal, MachineSnapshot, Monitor,
    MonitorConfig, Quality,
};

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_frozen_heartbeat_goes_stale_then_lost_and_recovers() {
    let faults = SimIoFaults::new();
    let monitor = Monitor::start(
        Box::new(SimIo::new(faults.clone())),
        MonitorConfig::uniform(Duration::from_millis(5)),
    );
    let mut r = monitor.snapshots.reader().unwrap();
    let snap = |r: &mut waferscope::hot::LatestReader<MachineSnapshot>| r.read().value;
    wait_until("all live", || snap(&mut r).all_live());
    // A value that never changes is still live while the heartbeat runs.
    faults.set_value(Signal::LampHours, 812.0);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        snap(&mut r).signal(Signal::LampHours).quality,
        Quality::Live
    );

    faults.freeze_heartbeat(Subsystem::Camera, true);
    let frozen_at = Instant::now();
    wait_until("stale", || {
        snap(&mut r).heartbeat(Subsystem::Camera).quality == Quality::Stale
    });
    let to_stale = frozen_at.elapsed();
    wait_until("lost", || {
        snap(&mut r).heartbeat(Subsystem::Camera).quality == Quality::Lost
    });
    let to_lost = frozen_at.elapsed();
    let s = snap(&mut r);
    assert_eq!(
        s.signal(Signal::CameraTemperature).quality,
        Quality::Lost,
        "its signals follow"
    );
    assert_eq!(
        s.heartbeat(Subsystem::Stage).quality,
        Quality::Live,
        "other subsystems unaffected"
    );
    assert!(
        s.signal(Signal::CameraTemperature).updated_ns > 0,
        "the last value and its time are kept"
    );
    assert!(to_stale >= Duration::from_millis(15) && to_lost >= Duration::from_millis(50));
    println!("5 ms period: stale after {to_stale:?}, lost after {to_lost:?}");

    faults.freeze_heartbeat(Subsystem::Camera, false);
    wait_until("recovered", || {
        snap(&mut r).heartbeat(Subsystem::Camera).quality == Quality::Live
    });
}

#[test]
fn errors_and_impossible_values_are_invalid_and_a_dropped_link_is_lost() {
    let faults = SimIoFaults::new();
    let monitor = Monitor::start(
        Box::new(SimIo::new(faults.clone())),
        MonitorConfig::uniform(Duration::from_millis(2)),
    );
    let mut r = monitor.snapshots.reader().unwrap();
    wait_until("all live", || r.read().value.all_live());
    faults.signal_error(Signal::CameraTemperature, true);
    faults.set_value(Signal::ChuckVacuum, 500.0);
    wait_until("invalid", || {
        let s = r.read().value;
        s.signal(Signal::CameraTemperature).quality == Quality::Invalid
            && s.signal(Signal::ChuckVacuum).quality == Quality::Invalid
    });
    assert_eq!(
        r.read().value.signal(Signal::ChuckVacuum).value,
        500.0,
        "shown, but never as valid"
    );
    faults.drop_link(Subsystem::Encoder, true);
    wait_until("lost", || {
        r.read().value.heartbeat(Subsystem::Encoder).quality == Quality::Lost
    });
}

#[test]
fn trends_arrive_as_100ms_min_max_buckets() {
    let faults = SimIoFaults::new();
    let monitor = Monitor::start(
        Box::new(SimIo::new(faults.clone())),
        MonitorConfig::uniform(Duration::from_millis(1)),
    );
    faults.chatter(
        Signal::IlluminationIntensity,
        100.0,
        5.0,
        Duration::from_millis(20),
    );
    let mut ring = waferscope::monitor::TrendRing::default();
    let deadline = Instant::now() + Duration::from_secs(5);
    while ring.len() < 3 && Instant::now() < deadline {
        if let Ok(p) = monitor.trends.recv_timeout(Duration::from_millis(100)) {
            if p.signal as usize == Signal::IlluminationIntensity.index() {
                ring.push(p);
            }
        }
    }
    let pts: Vec<_> = ring.iter().copied().collect();
    assert!(pts.len() >= 3);
    let last = pts.last().unwrap();
    assert_eq!(
        (last.min, last.max),
        (95.0, 105.0),
        "min/max of a chattering signal"
    );
    assert_eq!(pts[1].t_ns - pts[0].t_ns, 100_000_000);
}

fn temp_db(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("waferscope-monitor-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d.join("journal.db")
}

#[test]
fn acknowledged_and_active_alarms_survive_a_restart() {
    let db = temp_db("restart");
    let defs_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/alarms.toml");
    let defs: Arc<[_]> = load(&defs_path).unwrap().into();
    let hash = content_hash(&std::fs::read_to_string(&defs_path).unwrap());
    let faults = SimIoFaults::new();
    let monitor = Monitor::start(
        Box::new(SimIo::new(faults.clone())),
        MonitorConfig::uniform(Duration::from_millis(2)),
    );
    let journal = Journal::open(&db).unwrap();
    let alarms = AlarmService::start(
        defs.clone(),
        &hash,
        journal,
        monitor.snapshots.reader().unwrap(),
        monitor.epoch,
        Duration::from_millis(2),
    )
    .unwrap();
    let mut view = alarms.snapshots.reader().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        view.read().value.count,
        0,
        "in normal operation the alarm list is empty"
    );

    faults.freeze_heartbeat(Subsystem::Camera, true); // raises 1031 then 1032
    faults.set_value(Signal::ChuckVacuum, 60.0); // latching 2021
    wait_until("alarms raised", || {
        let s = view.read().value;
        s.entry(1032).is_some() && s.entry(2021).is_some()
    });
    alarms.command(AlarmCommand::Acknowledge {
        alid: 1032,
        operator: "Ana Ruiz".into(),
    });
    alarms.command(AlarmCommand::Shelve {
        alid: 1031,
        duration_ns: 600_000_000_000,
        operator: "Ana Ruiz".into(),
        reason: "sensor under repair".into(),
    });
    wait_until("acknowledged", || {
        view.read().value.entry(1032).unwrap().state == AlarmState::AckActive
    });
    alarms.stop();
    drop(monitor);

    // Restart: a new monitor whose camera is healthy again, same journal.
    let faults2 = SimIoFaults::new();
    faults2.freeze_heartbeat(Subsystem::Camera, true);
    faults2.set_value(Signal::ChuckVacuum, 60.0);
    let monitor2 = Monitor::start(
        Box::new(SimIo::new(faults2)),
        MonitorConfig::uniform(Duration::from_millis(2)),
    );
    let journal2 = Journal::open(&db).unwrap();
    let alarms2 = AlarmService::start(
        defs,
        &hash,
        journal2,
        monitor2.snapshots.reader().unwrap(),
        monitor2.epoch,
        Duration::from_millis(2),
    )
    .unwrap();
    let mut view2 = alarms2.snapshots.reader().unwrap();
    let s = view2.read().value;
    assert_eq!(
        s.entry(1032).map(|e| e.state),
        Some(AlarmState::AckActive),
        "ack survived"
    );
    assert_eq!(
        s.entry(2021).map(|e| e.state),
        Some(AlarmState::UnackActive),
        "active survived"
    );
    assert!(
        matches!(
            s.entry(1031).map(|e| e.shelving),
            Some(waferscope::monitor::Shelving::Timed { .. })
        ),
        "shelve survived"
    );
    alarms2.stop();

    let j = Journal::open(&db).unwrap();
    let rows = j.rows(None, 1000).unwrap();
    let ack = rows
        .iter()
        .find(|r| r.alid == 1032 && r.event == "acknowledge")
        .unwrap();
    assert_eq!(ack.operator.as_deref(), Some("Ana Ruiz"));
    assert!(rows.iter().any(|r| r.alid == 1031 && r.event == "shelve"));
    assert!(rows.iter().any(|r| r.alid == 0
        && r.event == "definitions changed"
        && r.detail == "first definitions"));
    assert_eq!(
        rows.iter()
            .filter(|r| r.event == "definitions changed")
            .count(),
        1,
        "same file, no second entry"
    );
    std::fs::remove_dir_all(db.parent().unwrap()).ok();
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let db = temp_db("notdb");
    std::fs::write(&db, b"operator notes, not a database").unwrap();
    let e = format!("{:#}", Journal::open(&db).err().unwrap());
    assert!(
        e.starts_with(&format!("{}: not a usable SQLite database", db.display())),
        "{e}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        b"operator notes, not a database"
    );
    std::fs::remove_dir_all(db.parent().unwrap()).ok();
}
