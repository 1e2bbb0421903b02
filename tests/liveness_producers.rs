//! A poller or alarm evaluator killed mid-run (fault injection): every
//! signal it owns reads LOST, the "stopped" alarm is raised and journaled,
//! the thread reads dead with its panic message, and the running inspection
//! is SUSPENDED. "Within 3 periods" is the decision rule itself, checked on
//! the dead producer's own last snapshot: it says it ended, so a reader
//! suspends at once; a producer that hangs instead is caught by the age of
//! its last snapshot (3 periods, with a scheduling allowance). The engine
//! applies the rule at every loop of its die walk.

mod common;
use common::monitor_and_alarms;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use waferscope::hot::{LatestReader, ThreadState};
use waferscope::monitor::quality::out_of_date_after_ns;
use waferscope::monitor::{
    AlarmDef, AlarmService, AlarmSnapshot, AlarmState, Journal, MachineSnapshot, Monitor, Quality,
};
use waferscope::run::safety::{interlock_failures_at, suspend_cause_at, SafetyLimits};
use waferscope::run::{
    EngineConfig, EngineHandle, MemoryStore, RunCommand, RunEngine, RunIdentity, RunSnapshot,
    RunState, SimMachine,
};

const RECIPE: &str = r#"
id = "TEST-200"
name = "test wafer"
[wafer]
diameter_mm = 200
die_pitch_um = [16100.0, 16100.0]
die_size_um = [16000.0, 16000.0]
notch = "down"
edge_exclusion_mm = 3.0
[plan]
mode = "all"
[inspection]
threshold = 24
min_defect_px = 2
[optics]
pixel_um = 31.25
illumination_setpoint_pct = 100.0
exposure_us = 100.0
"#;

/// ALIDs of the shipped "Monitor stopped" and "Alarm evaluator stopped".
const MONITOR_STOPPED: u32 = 1091;
const EVALUATOR_STOPPED: u32 = 1092;

struct Tool {
    engine: EngineHandle,
    run: Mutex<LatestReader<RunSnapshot>>,
    machine: Mutex<LatestReader<MachineSnapshot>>,
    alarm_view: Mutex<LatestReader<AlarmSnapshot>>,
    defs: Arc<[AlarmDef]>,
    monitor: Monitor,
    alarms: AlarmService,
    _rt: tokio::runtime::Runtime,
    dir: PathBuf,
}

impl Drop for Tool {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn tool(name: &str) -> Tool {
    let dir = std::env::temp_dir().join(format!("waferscope-live-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_io, monitor, defs, alarms) = monitor_and_alarms(&dir);
    let mut machine = SimMachine::fast(9);
    // Paced, so the run is still going when the producer is killed.
    machine.camera_fps = Some(100.0);
    machine.workers = Some(1);
    let (engine, handle) = RunEngine::new(
        Box::new(machine),
        monitor.snapshots.reader().unwrap(),
        alarms.snapshots.reader().unwrap(),
        defs.clone(),
        Box::new(Arc::new(Mutex::new(MemoryStore::default()))),
        EngineConfig {
            resume_after: Duration::from_millis(200),
            ..EngineConfig::default()
        },
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.spawn(engine.serve());
    let mut m = monitor.snapshots.reader().unwrap();
    wait("monitor live", || m.read().value.all_live());
    Tool {
        run: Mutex::new(handle.snapshots.reader().unwrap()),
        machine: Mutex::new(monitor.snapshots.reader().unwrap()),
        alarm_view: Mutex::new(alarms.snapshots.reader().unwrap()),
        engine: handle,
        defs,
        monitor,
        alarms,
        _rt: rt,
        dir,
    }
}

fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

impl Tool {
    fn snap(&self) -> RunSnapshot {
        self.run.lock().unwrap().read().value
    }
    fn machine(&self) -> MachineSnapshot {
        self.machine.lock().unwrap().read().value
    }
    fn alarms(&self) -> AlarmSnapshot {
        self.alarm_view.lock().unwrap().read().value
    }
    /// Starts a run and waits until a few dies are done.
    fn start_and_get_going(&self) {
        let recipe = waferscope::run::recipe::parse(RECIPE).unwrap();
        let who = RunIdentity {
            lot: "LOT-42".into(),
            wafer: "W07".into(),
            slot: 7,
            operator: "Ana".into(),
        };
        self.engine.load(recipe, who).unwrap();
        self.engine.command(RunCommand::Start).unwrap();
        wait("dies under way", || {
            let s = self.snap();
            s.state == RunState::Running && s.dies_done >= 3
        });
        assert!(self.snap().dies_done < self.snap().dies_total);
    }
    fn journal_rows(&self, alid: u32) -> Vec<waferscope::monitor::JournalRow> {
        Journal::open(&self.dir.join("journal.db"))
            .unwrap()
            .rows(Some(alid), 20)
            .unwrap()
    }
}

#[test]
fn a_poller_killed_mid_run_reads_lost_raises_monitor_stopped_and_suspends_the_run() {
    let t = tool("poller");
    t.start_and_get_going();

    t.monitor.panic_switch.trip();
    wait("run suspended", || t.snap().state == RunState::Suspended);
    let cause = t.snap().cause.to_string();
    assert!(cause.starts_with("monitor stopped"), "cause: {cause}");

    // The thread says it died, and why (once its panic has unwound).
    wait("monitor thread dead", || t.monitor.health.ended());
    match t.monitor.health.state() {
        ThreadState::Dead { message } => assert!(message.contains("injected fault"), "{message}"),
        other => panic!("monitor thread reads {other:?}"),
    }
    // Every signal and heartbeat it owned reads LOST to any reader now.
    let last = t.machine();
    let now = waferscope::hot::now_ns();
    let seen = last.as_seen_at(now);
    assert!(seen.heartbeats.iter().all(|h| h.quality == Quality::Lost));
    assert!(seen.signals.iter().all(|s| s.quality == Quality::Lost));

    // "Monitor stopped" is raised by the evaluator and journaled.
    wait("monitor-stopped alarm", || {
        t.alarms()
            .entry(MONITOR_STOPPED)
            .is_some_and(|e| e.state == AlarmState::UnackActive)
    });
    wait("monitor-stopped journaled", || {
        t.journal_rows(MONITOR_STOPPED)
            .iter()
            .any(|r| r.event == "raise")
    });
    // Not a flood of "heartbeat lost" for devices that may be fine.
    for alid in [1002, 1012, 1022, 1032, 1042] {
        assert!(t.alarms().entry(alid).is_none(), "alarm {alid} raised");
    }

    // Within 3 periods: a poller that ends says so in its last snapshot,
    // so any reader takes it as stopped at once (0 periods).
    let a = t.alarms();
    assert!(last.ended, "the dead poller's last snapshot says it ended");
    let at_once = suspend_cause_at(&last, &a, &t.defs, &SafetyLimits::default(), last.taken_ns);
    assert!(at_once.unwrap().starts_with("monitor stopped"));
    let why = interlock_failures_at(&last, &a, &t.defs, &SafetyLimits::default(), 100.0, now);
    assert!(
        why.iter().any(|w| w.starts_with("monitor stopped")),
        "{why:?}"
    );
    // One that hangs instead is caught by age: 3 periods, with the
    // scheduling allowance for fast pollers.
    let p = last.period_ns;
    assert_eq!(p, 2_000_000, "the poller's period is stamped");
    let hung = MachineSnapshot {
        ended: false,
        ..last
    };
    let limit = out_of_date_after_ns(p);
    let at_limit = suspend_cause_at(
        &hung,
        &a,
        &t.defs,
        &SafetyLimits::default(),
        hung.taken_ns + limit,
    );
    assert!(
        !at_limit
            .as_deref()
            .unwrap_or("")
            .starts_with("monitor stopped"),
        "{at_limit:?}"
    );
    let past = suspend_cause_at(
        &hung,
        &a,
        &t.defs,
        &SafetyLimits::default(),
        hung.taken_ns + limit + 1,
    );
    assert!(past.unwrap().starts_with("monitor stopped"));

    // It stays suspended (the cause never heals): longer than resume_after.
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(t.snap().state, RunState::Suspended);
    t.engine
        .command(RunCommand::Abort {
            reason: "monitor died".into(),
        })
        .unwrap();
    wait("aborted", || t.snap().state == RunState::Aborted);
}

#[test]
fn an_alarm_evaluator_killed_mid_run_shows_evaluator_stopped_is_journaled_and_suspends_the_run() {
    let t = tool("evaluator");
    t.start_and_get_going();

    t.alarms.panic_switch.trip();
    wait("run suspended", || t.snap().state == RunState::Suspended);
    let cause = t.snap().cause.to_string();
    assert!(
        cause.starts_with("alarm evaluator stopped"),
        "cause: {cause}"
    );

    wait("evaluator thread dead", || {
        t.alarms.evaluator_health.ended()
    });
    match t.alarms.evaluator_health.state() {
        ThreadState::Dead { message } => assert!(message.contains("injected fault"), "{message}"),
        other => panic!("evaluator thread reads {other:?}"),
    }
    // Every reader sees the "evaluator stopped" alarm on top of the frozen
    // list, from the picture's age.
    let last = t.alarms();
    let now = waferscope::hot::now_ns();
    let seen = last.as_seen_at(now, &t.defs);
    assert!(seen.evaluator_stopped);
    let top = seen.entries()[0];
    assert_eq!(
        (top.alid, top.state, top.priority),
        (EVALUATOR_STOPPED, AlarmState::UnackActive, 3)
    );
    assert_eq!(seen.active[2], last.active[2] + 1);
    // The journal thread (its watchdog) journals the death with the message.
    wait("evaluator death journaled", || {
        t.journal_rows(EVALUATOR_STOPPED)
            .iter()
            .any(|r| r.event == "raise" && r.detail.contains("died: injected fault"))
    });

    // Within 3 periods: the evaluator's last picture says it ended, so
    // it counts as stopped at once; one that hangs is caught by age.
    let m = t.machine();
    assert!(last.ended);
    let at_once = suspend_cause_at(&m, &last, &t.defs, &SafetyLimits::default(), last.taken_ns);
    assert!(at_once.unwrap().starts_with("alarm evaluator stopped"));
    let p = last.period_ns;
    assert_eq!(p, 2_000_000, "the evaluator's period is stamped");
    let hung = AlarmSnapshot {
        ended: false,
        ..last
    };
    let limit = out_of_date_after_ns(p);
    assert!(
        !hung
            .as_seen_at(hung.taken_ns + limit, &t.defs)
            .evaluator_stopped
    );
    assert!(
        hung.as_seen_at(hung.taken_ns + limit + 1, &t.defs)
            .evaluator_stopped
    );

    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(t.snap().state, RunState::Suspended);
    t.engine
        .command(RunCommand::Abort {
            reason: "evaluator died".into(),
        })
        .unwrap();
    wait("aborted", || t.snap().state == RunState::Aborted);
}
