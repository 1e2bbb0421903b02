//! The run engine on the simulated tool: a complete run; pause and resume;
//! a suspension from a frozen heartbeat that resumes at the right die;
//! vacuum loss → Aborted with partial results; Stop keeps every result;
//! faults; interlocks; refusals.

mod common;
use common::monitor_and_alarms;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use waferscope::machine::sim::SimIoFaults;
use waferscope::machine::{Signal, Subsystem};
use waferscope::monitor::{AlarmService, Monitor};
use waferscope::run::record::MemoryRun;
use waferscope::run::{
    EngineConfig, EngineHandle, ExitStatus, MemoryStore, RunCommand, RunEngine, RunIdentity,
    RunState, RunStore, SimMachine,
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

struct Tool {
    io: Arc<SimIoFaults>,
    device: Arc<waferscope::machine::SimFaults>,
    safe: Arc<std::sync::atomic::AtomicBool>,
    /// Captures the sim camera began, and their count when the tool was
    /// last made safe.
    captures: Arc<waferscope::hot::Counter>,
    captures_at_safe: Arc<std::sync::atomic::AtomicU64>,
    current: Arc<Mutex<Option<waferscope::run::machine::LivePipeline>>>,
    engine: EngineHandle,
    view: Mutex<waferscope::hot::LatestReader<waferscope::run::RunSnapshot>>,
    store: Arc<Mutex<MemoryStore>>,
    _monitor: Monitor,
    _alarms: AlarmService,
    _rt: tokio::runtime::Runtime,
    dir: PathBuf,
}

impl Drop for Tool {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.dir).ok();
    }
}

fn tool(name: &str, fps: Option<f64>) -> Tool {
    tool_with(name, fps, |_, _| {})
}

/// A tool whose machine and engine settings `adjust` may change.
fn tool_with(
    name: &str,
    fps: Option<f64>,
    adjust: impl FnOnce(&mut SimMachine, &mut EngineConfig),
) -> Tool {
    tool_with_store(name, fps, adjust, |store| Box::new(store))
}

/// As [`tool_with`], with the engine's store wrapped by `wrap` (the
/// memory store stays readable through `Tool::run`).
fn tool_with_store(
    name: &str,
    fps: Option<f64>,
    adjust: impl FnOnce(&mut SimMachine, &mut EngineConfig),
    wrap: impl FnOnce(Arc<Mutex<MemoryStore>>) -> Box<dyn RunStore>,
) -> Tool {
    let dir = std::env::temp_dir().join(format!("waferscope-run-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (io, monitor, defs, alarms) = monitor_and_alarms(&dir);
    let mut machine = SimMachine::fast(9);
    machine.camera_fps = fps;
    machine.workers = Some(1);
    let mut cfg = EngineConfig {
        resume_after: Duration::from_millis(200),
        ..EngineConfig::default()
    };
    adjust(&mut machine, &mut cfg);
    let (device, safe) = (machine.device_faults.clone(), machine.safe.clone());
    let (captures, captures_at_safe, current) = (
        machine.captures.clone(),
        machine.captures_at_safe.clone(),
        machine.current.clone(),
    );
    let store = Arc::new(Mutex::new(MemoryStore::default()));
    let (engine, handle) = RunEngine::new(
        Box::new(machine),
        monitor.snapshots.reader().unwrap(),
        alarms.snapshots.reader().unwrap(),
        defs,
        wrap(store.clone()),
        cfg,
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.spawn(engine.serve());
    // Let the monitor see every heartbeat live.
    let mut m = monitor.snapshots.reader().unwrap();
    wait("monitor live", || m.read().value.all_live());
    Tool {
        io,
        device,
        safe,
        captures,
        captures_at_safe,
        current,
        view: Mutex::new(handle.snapshots.reader().unwrap()),
        engine: handle,
        store,
        _monitor: monitor,
        _alarms: alarms,
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

fn identity() -> RunIdentity {
    RunIdentity {
        lot: "LOT-42".into(),
        wafer: "W07".into(),
        slot: 7,
        operator: "Ana".into(),
    }
}

impl Tool {
    fn snap(&self) -> waferscope::run::RunSnapshot {
        self.view.lock().unwrap().read().value
    }
    fn wait_state(&self, s: RunState) {
        wait(s.label(), || self.snap().state == s);
    }
    fn start(&self) {
        let recipe = waferscope::run::recipe::parse(RECIPE).unwrap();
        self.engine.load(recipe, identity()).unwrap();
        assert_eq!(self.snap().state, RunState::Ready);
        self.engine.command(RunCommand::Start).unwrap();
    }
    fn run(&self) -> MemoryRun {
        self.store.lock().unwrap().runs.last().unwrap().clone()
    }
}

/// Every planned die appears exactly once in the record.
fn each_die_once(run: &MemoryRun) {
    let mut seen: Vec<u32> = run.dies.iter().map(|d| d.die_index).collect();
    seen.sort_unstable();
    let mut plan = run.start.plan.clone();
    plan.sort_unstable();
    assert_eq!(seen, plan, "every die of the plan recorded exactly once");
}

#[test]
fn a_complete_run() {
    let t = tool("complete", None);
    let mut events = t.engine.events.subscribe();
    t.start();
    t.wait_state(RunState::Complete);
    let s = t.snap();
    assert_eq!(s.exit, Some(ExitStatus::Complete));
    assert_eq!(s.dies_done, s.dies_total);
    assert!(s.dies_total > 50);
    let run = t.run();
    each_die_once(&run);
    assert!(run.dies.iter().all(|d| d.inspected));
    assert_eq!(run.end, Some((ExitStatus::Complete, String::new())));
    assert_eq!(run.start.identity.lot, "LOT-42");
    assert!(run.dies.iter().map(|d| d.defects.len()).sum::<usize>() > 20);
    // The totals since the engine started (what the metrics count).
    assert_eq!(s.totals.ended(ExitStatus::Complete), 1);
    assert_eq!(s.totals.ended(ExitStatus::Stopped), 0);
    assert_eq!(s.totals.dies_inspected, u64::from(s.dies_done));
    assert_eq!(s.totals.defects, u64::from(s.defects));
    assert!(s.totals.last_complete_wafer_ms > 0);
    let mut kinds = Vec::new();
    while let Ok(e) = events.try_recv() {
        kinds.push(match e {
            waferscope::run::RunEvent::Started { .. } => "started",
            waferscope::run::RunEvent::StateChanged { .. } => "state",
            waferscope::run::RunEvent::DieDone { .. } => "die",
            waferscope::run::RunEvent::Ended { .. } => "ended",
            _ => "other",
        });
    }
    assert_eq!(kinds.first(), Some(&"state")); // Idle → Ready
    assert!(
        kinds.contains(&"started")
            && kinds.iter().filter(|k| **k == "die").count() == s.dies_total as usize
    );
    assert_eq!(kinds[kinds.len() - 2..], ["ended", "state"]);
    // Acknowledge the summary: back to Idle.
    t.engine.command(RunCommand::Acknowledge).unwrap();
    assert_eq!(t.snap().state, RunState::Idle);
}

/// A store whose note of a failed export cannot be written (the export
/// and the database on the same full disk).
struct CannotNoteExports(Arc<Mutex<MemoryStore>>);

impl RunStore for CannotNoteExports {
    fn begin(&mut self, start: &waferscope::run::record::RunStart) -> anyhow::Result<u64> {
        self.0.begin(start)
    }
    fn record_die(
        &mut self,
        run: u64,
        result: &waferscope::pipeline::DieResult,
    ) -> anyhow::Result<()> {
        self.0.record_die(run, result)
    }
    fn mark_not_inspected(&mut self, run: u64, dies: &[u32]) -> anyhow::Result<()> {
        self.0.mark_not_inspected(run, dies)
    }
    fn end(&mut self, run: u64, status: ExitStatus, reason: &str, at: i64) -> anyhow::Result<()> {
        self.0.end(run, status, reason, at)
    }
    fn export_failed(&mut self, _run: u64, _why: &str) -> anyhow::Result<()> {
        anyhow::bail!("disk full")
    }
}

#[test]
fn exports_that_fail_are_in_the_end_state_even_when_the_record_cannot_say_so() {
    let thumbs = std::env::temp_dir().join(format!(
        "waferscope-run-{}-thumbs-are-a-file",
        std::process::id()
    ));
    // A regular file where the thumbnail directory should be: no thumbnail
    // of the run can be written.
    std::fs::write(&thumbs, "not a directory").unwrap();
    let root = thumbs.clone();
    let t = tool_with_store(
        "not-exported",
        None,
        |_, cfg| cfg.thumbnail_root = Some(root),
        |store| Box::new(CannotNoteExports(store)),
    );
    t.start();
    t.wait_state(RunState::Complete);
    let s = t.snap();
    std::fs::remove_file(&thumbs).ok();
    assert_eq!(s.exit, Some(ExitStatus::Complete));
    assert!(
        s.not_exported
            .as_str()
            .contains("defect thumbnails not written"),
        "{:?}",
        s.not_exported
    );
    // The record could not take the note; the end state is what tells.
    assert_eq!(t.run().export_error, None);
    // A complete run whose exports were written says nothing.
    let ok = tool("exported", None);
    ok.start();
    ok.wait_state(RunState::Complete);
    assert_eq!(ok.snap().not_exported.as_str(), "");
}

#[test]
fn pause_at_a_die_boundary_then_resume() {
    let t = tool("pause", Some(100.0));
    t.start();
    wait("some dies", || t.snap().dies_done >= 5);
    t.engine.command(RunCommand::Pause).unwrap();
    t.wait_state(RunState::Paused);
    let held = t.snap().dies_done;
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(t.snap().dies_done, held, "nothing moves while paused");
    assert_eq!(
        t.snap().next_die,
        held,
        "paused on a die boundary: every imaged die is done"
    );
    assert_eq!(
        t.engine.command(RunCommand::Start),
        Err("a run is already in progress".into())
    );
    t.engine.command(RunCommand::Resume).unwrap();
    t.wait_state(RunState::Complete);
    each_die_once(&t.run());
    assert!(t.run().dies.iter().all(|d| d.inspected));
}

#[test]
fn a_frozen_heartbeat_suspends_and_the_run_resumes_at_the_right_die() {
    let t = tool("suspend", Some(100.0));
    t.start();
    wait("some dies", || t.snap().dies_done >= 5);
    t.io.freeze_heartbeat(Subsystem::Camera, true);
    t.wait_state(RunState::Suspended);
    let s = t.snap();
    assert!(
        s.cause.as_str().starts_with("camera heartbeat"),
        "{}",
        s.cause
    );
    assert!(
        t.safe.load(std::sync::atomic::Ordering::Acquire),
        "tool made safe"
    );
    // The die in hand still ends (its result may take a while on a loaded
    // machine); after that nothing is in flight while suspended.
    wait("nothing left in flight while suspended", || {
        let held = t.snap();
        held.dies_done == held.next_die
    });
    assert_eq!(t.snap().state, RunState::Suspended);
    assert_eq!(
        t.engine.command(RunCommand::Resume),
        Err("a suspended run resumes by itself once the cause has been healthy; Pause takes it over".into())
    );
    t.io.freeze_heartbeat(Subsystem::Camera, false);
    t.wait_state(RunState::Running);
    assert!(!t.safe.load(std::sync::atomic::Ordering::Acquire));
    t.wait_state(RunState::Complete);
    let run = t.run();
    each_die_once(&run);
    assert!(
        run.dies.iter().all(|d| d.inspected),
        "resumed from the die it stopped at, none skipped"
    );
}

#[test]
fn operator_takes_over_a_suspension_then_aborts() {
    let t = tool("takeover", Some(100.0));
    t.start();
    wait("some dies", || t.snap().dies_done >= 3);
    t.io.freeze_heartbeat(Subsystem::Encoder, true);
    t.wait_state(RunState::Suspended);
    t.engine.command(RunCommand::Pause).unwrap();
    t.wait_state(RunState::Paused);
    t.io.freeze_heartbeat(Subsystem::Encoder, false);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        t.snap().state,
        RunState::Paused,
        "an operator pause does not resume by itself"
    );
    t.engine
        .command(RunCommand::Abort {
            reason: "wafer handling check".into(),
        })
        .unwrap();
    t.wait_state(RunState::Aborted);
    let run = t.run();
    assert_eq!(
        run.end,
        Some((ExitStatus::Aborted, "wafer handling check".into()))
    );
    each_die_once(&run);
}

#[test]
fn vacuum_loss_aborts_keeping_partial_results() {
    let t = tool("vacuum", Some(100.0));
    t.start();
    wait("some dies", || t.snap().dies_done >= 8);
    t.io.set_value(Signal::ChuckVacuum, 60.0);
    t.wait_state(RunState::Aborted);
    let s = t.snap();
    assert_eq!(s.exit, Some(ExitStatus::Aborted));
    assert_eq!(
        s.cause.as_str(),
        "vacuum lost: chuck pressure 60.0 kPa above 30.0 kPa"
    );
    let run = t.run();
    each_die_once(&run);
    let inspected = run.dies.iter().filter(|d| d.inspected).count();
    let skipped = run.dies.iter().filter(|d| !d.inspected).count();
    assert!(
        inspected >= 8,
        "results found before the loss are kept: {inspected}"
    );
    assert!(skipped > 0, "remaining dies marked not inspected");
    assert!(run
        .dies
        .iter()
        .filter(|d| !d.inspected)
        .all(|d| d.defects.is_empty()));
    assert_eq!(run.end.as_ref().unwrap().1, s.cause.as_str());
    // The next wafer cannot start while the vacuum is bad.
    t.engine.command(RunCommand::Acknowledge).unwrap();
    let recipe = waferscope::run::recipe::parse(RECIPE).unwrap();
    let e = t.engine.load(recipe, identity()).unwrap_err();
    assert!(e.contains("chuck vacuum 60.0 kPa is above 20.0 kPa"), "{e}");
    assert_eq!(
        t.engine.command(RunCommand::Start).unwrap_err(),
        "no recipe is loaded, or the interlocks are not satisfied"
    );
}

#[test]
fn stop_mid_run_keeps_every_result_so_far() {
    let t = tool("stop", Some(100.0));
    t.start();
    wait("some dies", || t.snap().dies_done >= 10);
    t.engine.command(RunCommand::Stop).unwrap();
    t.wait_state(RunState::Complete);
    let s = t.snap();
    assert_eq!(s.exit, Some(ExitStatus::Stopped));
    let run = t.run();
    each_die_once(&run);
    let inspected: Vec<_> = run.dies.iter().filter(|d| d.inspected).collect();
    assert_eq!(
        inspected.len() as u32,
        s.dies_done,
        "every die imaged before the stop was inspected and kept"
    );
    assert!(inspected.len() >= 10 && inspected.len() < run.start.plan.len());
    assert_eq!(
        run.end,
        Some((ExitStatus::Stopped, "stopped by the operator".into()))
    );
    // A stopped wafer is not a completed one.
    assert_eq!(s.totals.ended(ExitStatus::Stopped), 1);
    assert_eq!(s.totals.ended(ExitStatus::Complete), 0);
    assert_eq!(s.totals.last_complete_wafer_ms, 0);
    assert_eq!(s.totals.dies_inspected, inspected.len() as u64);
}

#[test]
fn a_failing_camera_faults_the_run_and_reset_clears_it() {
    let t = tool("fault", Some(200.0));
    t.start();
    wait("some dies", || t.snap().dies_done >= 3);
    t.device.lose_next_frames(1_000);
    t.wait_state(RunState::Faulted);
    assert_eq!(
        t.snap().cause.as_str(),
        "camera or stage failed on 3 dies in a row"
    );
    assert_eq!(t.run().end.as_ref().unwrap().0, ExitStatus::Faulted);
    // Dies the camera failed to image are done but not inspected.
    let s = t.snap();
    assert_eq!(s.totals.ended(ExitStatus::Faulted), 1);
    assert_eq!(
        s.totals.dies_inspected,
        t.run().dies.iter().filter(|d| d.inspected).count() as u64
    );
    assert!(s.totals.dies_inspected < u64::from(s.dies_done));
    assert_eq!(
        t.engine.command(RunCommand::Start),
        Err("the tool is faulted: acknowledge and reset first".into())
    );
    assert_eq!(
        t.engine.command(RunCommand::Reset),
        Err("acknowledge the fault first, then reset".into())
    );
    t.engine.command(RunCommand::Acknowledge).unwrap();
    assert_eq!(t.snap().state, RunState::FaultAcknowledged);
    t.engine.command(RunCommand::Reset).unwrap();
    assert_eq!(t.snap().state, RunState::Idle);
}

#[test]
fn commands_that_do_not_fit_are_refused_with_a_reason() {
    let t = tool("refuse", None);
    // Teaching images dies: only READY (recipe loaded, interlocks hold).
    let why = t.engine.teach_nowait(5).recv().unwrap().unwrap_err();
    assert!(
        why.contains("cannot teach a golden die while IDLE"),
        "{why}"
    );
    for (cmd, why) in [
        (
            RunCommand::Start,
            "no recipe is loaded, or the interlocks are not satisfied",
        ),
        (
            RunCommand::Pause,
            "only a running or suspended run can be paused",
        ),
        (RunCommand::Resume, "only a paused run can be resumed"),
        (RunCommand::Stop, "there is no run to stop"),
        (
            RunCommand::Abort { reason: "x".into() },
            "there is no run to abort",
        ),
        (RunCommand::Acknowledge, "there is nothing to acknowledge"),
        (RunCommand::Reset, "there is no fault to reset"),
    ] {
        assert_eq!(t.engine.command(cmd), Err(why.into()));
        assert_eq!(
            t.snap().refusal.as_str(),
            why,
            "the refusal shows in the snapshot"
        );
    }
    let recipe = waferscope::run::recipe::parse(RECIPE).unwrap();
    let bad = RunIdentity {
        lot: " ".into(),
        ..identity()
    };
    assert_eq!(
        t.engine.load(recipe, bad),
        Err("lot and wafer ids are required".into())
    );
}

/// The plan's dies before `die`, in plan order.
fn plan_before(run: &MemoryRun, die: u32) -> Vec<u32> {
    let pos = run.start.plan.iter().position(|&d| d == die).unwrap();
    run.start.plan[..pos].to_vec()
}

fn inspected(run: &MemoryRun, die: u32) -> bool {
    run.dies.iter().any(|d| d.die_index == die && d.inspected)
}

#[test]
fn a_suspension_with_triggers_queued_images_nothing_after_the_trip() {
    // A slow camera keeps dies queued in the trigger channel at the trip:
    // at 10 frames/s the camera, not a detection worker slowed by a loaded
    // machine, is the bottleneck (at 40 it was not, on a loaded CI box).
    let t = tool("trip", Some(10.0));
    t.start();
    wait("some dies", || t.snap().dies_done >= 5);
    t.io.freeze_heartbeat(Subsystem::Camera, true);
    t.wait_state(RunState::Suspended);
    let at_trip = t
        .captures_at_safe
        .load(std::sync::atomic::Ordering::Acquire);
    assert!(at_trip > 0);
    // Long enough for every queued die to have been imaged if it were.
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(
        t.captures.get(),
        at_trip,
        "a die was imaged after the tool was made safe"
    );
    let cancelled = t
        .current
        .lock()
        .unwrap()
        .as_ref()
        .unwrap()
        .telemetry
        .dies_cancelled
        .get();
    assert!(cancelled > 0, "dies were queued at the trip, and cancelled");
    let held = t.snap();
    assert_eq!(held.dies_done, held.next_die, "cancelled dies queued again");
    t.io.freeze_heartbeat(Subsystem::Camera, false);
    t.wait_state(RunState::Complete);
    let run = t.run();
    each_die_once(&run);
    assert!(
        run.dies.iter().all(|d| d.inspected),
        "the cancelled dies were imaged after the resume"
    );
}

#[test]
fn a_stage_moved_while_suspended_faults_before_the_next_die() {
    let t = tool("moved", Some(100.0));
    t.start();
    wait("some dies", || t.snap().dies_done >= 5);
    t.io.freeze_heartbeat(Subsystem::Encoder, true);
    t.wait_state(RunState::Suspended);
    let at_trip = t
        .captures_at_safe
        .load(std::sync::atomic::Ordering::Acquire);
    t.device.bump_stage(40.0, 0.0);
    t.io.freeze_heartbeat(Subsystem::Encoder, false);
    t.wait_state(RunState::Faulted);
    let cause = t.snap().cause;
    assert!(
        cause.as_str().contains("stage position after resume"),
        "{cause}"
    );
    assert_eq!(t.captures.get(), at_trip, "nothing imaged after the resume");
    assert_eq!(t.run().end.as_ref().unwrap().0, ExitStatus::Faulted);
    each_die_once(&t.run());
}

/// A stage that cannot say where it is after a suspension (a real
/// controller that does not answer: its driver reports NaN) is a fault,
/// never taken as "still in place" (NaN compares false with everything).
#[test]
fn a_stage_position_that_cannot_be_read_after_a_suspension_faults() {
    let t = tool("unreadable", Some(100.0));
    t.start();
    wait("some dies", || t.snap().dies_done >= 5);
    t.io.freeze_heartbeat(Subsystem::Encoder, true);
    t.wait_state(RunState::Suspended);
    t.device.bump_stage(f64::NAN, 0.0);
    t.io.freeze_heartbeat(Subsystem::Encoder, false);
    t.wait_state(RunState::Faulted);
    let cause = t.snap().cause;
    assert!(
        cause.as_str().contains("stage position after resume"),
        "{cause}"
    );
}

#[test]
fn invalid_vacuum_mid_run_aborts_and_never_resumes() {
    let t = tool("vacuum-invalid", Some(100.0));
    t.start();
    wait("some dies", || t.snap().dies_done >= 5);
    t.io.signal_error(Signal::ChuckVacuum, true);
    t.wait_state(RunState::Aborted);
    assert!(
        t.snap().cause.as_str().starts_with("vacuum invalid"),
        "{}",
        t.snap().cause
    );
    // The reading comes back good: the run stays ended.
    t.io.signal_error(Signal::ChuckVacuum, false);
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(t.snap().state, RunState::Aborted);
    let run = t.run();
    assert_eq!(run.end.as_ref().unwrap().0, ExitStatus::Aborted);
    each_die_once(&run);
}

#[test]
fn vacuum_lost_while_suspended_aborts_instead_of_resuming() {
    let t = tool("vacuum-suspended", Some(100.0));
    t.start();
    wait("some dies", || t.snap().dies_done >= 5);
    t.io.freeze_heartbeat(Subsystem::Camera, true);
    t.wait_state(RunState::Suspended);
    t.io.set_value(Signal::ChuckVacuum, 60.0);
    t.io.freeze_heartbeat(Subsystem::Camera, false);
    t.wait_state(RunState::Aborted);
    assert!(t.snap().cause.as_str().starts_with("vacuum lost"));
}

#[test]
fn a_panicking_detection_worker_faults_the_run_naming_it_and_keeps_earlier_results() {
    const DIE: u32 = 12;
    // The deadline leaves room for the panic hook: with RUST_BACKTRACE=1
    // (CI has it) it symbolises a backtrace before the unwind records the
    // death, which took over 2 s on the loaded 2-core machine; until then
    // the worker reads "stalled", not "died".
    let t = tool_with("worker-panic", Some(200.0), |m, cfg| {
        m.stop_deadline = Duration::from_millis(500);
        cfg.die_deadline = Duration::from_secs(15);
    });
    t.device.panic_worker_at(DIE);
    let began = Instant::now();
    t.start();
    t.wait_state(RunState::Faulted);
    assert!(began.elapsed() < Duration::from_secs(30), "no hang");
    let cause = t.snap().cause;
    assert!(
        cause
            .as_str()
            .contains("thread detect-0 died: injected fault: detection worker panics at die 12"),
        "{cause}"
    );
    let run = t.run();
    assert_eq!(run.end.as_ref().unwrap().0, ExitStatus::Faulted);
    each_die_once(&run);
    for d in plan_before(&run, DIE) {
        assert!(inspected(&run, d), "die {d}, before the panic, was kept");
    }
    assert!(!inspected(&run, DIE));
}

#[test]
fn a_camera_that_stops_mid_die_faults_the_run_naming_die_and_thread() {
    const DIE: u32 = 12;
    let t = tool_with("camera-stuck", Some(200.0), |m, cfg| {
        m.stop_deadline = Duration::from_millis(500);
        cfg.die_deadline = Duration::from_secs(1);
    });
    t.device.block_camera_at(DIE);
    let began = Instant::now();
    t.start();
    t.wait_state(RunState::Faulted);
    assert!(began.elapsed() < Duration::from_secs(30), "no hang");
    let cause = t.snap().cause;
    assert!(
        cause
            .as_str()
            .starts_with("die 12: no result within 1000 ms")
            && cause.as_str().contains("acquisition"),
        "{cause}"
    );
    let run = t.run();
    each_die_once(&run);
    for d in plan_before(&run, DIE) {
        assert!(
            inspected(&run, d),
            "die {d}, before the stuck one, was kept"
        );
    }
    assert!(!inspected(&run, DIE));
    // The station is usable again after Acknowledge + Reset.
    t.engine.command(RunCommand::Acknowledge).unwrap();
    t.engine.command(RunCommand::Reset).unwrap();
    assert_eq!(t.snap().state, RunState::Idle);
    t.device.release_camera();
}

/// A start interlock reads a picture that a loaded station's scheduler
/// left late (its producer alive, not ended): the engine waits, bounded,
/// for the producer's next picture before refusing. CI once refused a
/// start on an alarm picture 189 ms old on a busy 2-core machine.
#[test]
fn a_picture_late_by_a_scheduler_hiccup_waits_for_the_next_and_a_hung_one_refuses() {
    let dir = std::env::temp_dir().join(format!("waferscope-run-{}-late", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (_io, monitor, defs, alarms) = monitor_and_alarms(&dir);
    let mut real = monitor.snapshots.reader().unwrap();
    wait("monitor live", || real.read().value.all_live());
    // The engine reads the machine through a cell this test publishes to:
    // the last live picture, then nothing (a producer that hangs).
    let live = real.read().value;
    let (mut cell, subscriber) = waferscope::hot::latest_cell(live);
    let (engine, handle) = RunEngine::new(
        Box::new(SimMachine::fast(9)),
        subscriber.reader().unwrap(),
        alarms.snapshots.reader().unwrap(),
        defs,
        Box::new(Arc::new(Mutex::new(MemoryStore::default()))),
        EngineConfig::default(),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.spawn(engine.serve());
    let limit = waferscope::monitor::quality::out_of_date_after_ns(live.period_ns);
    wait("the picture is out of date", || {
        live.age_ns(waferscope::hot::now_ns()) > limit
    });
    let recipe = || waferscope::run::recipe::parse(RECIPE).unwrap();

    // Hung: no picture comes; the load refuses, naming the age.
    let t0 = Instant::now();
    let why = handle.load(recipe(), identity()).unwrap_err();
    assert!(why.contains("monitor stopped: machine data is"), "{why}");
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "it waited first"
    );

    // Late: the next picture arrives while the engine waits for it.
    let republish = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        let mut fresh = real.read().value;
        fresh.taken_ns = waferscope::hot::now_ns();
        cell.publish(fresh);
        cell
    });
    handle.load(recipe(), identity()).unwrap();
    let view = handle.snapshots.reader().unwrap().read().value;
    assert_eq!(view.state, RunState::Ready);
    drop(republish.join().unwrap());
    drop(rt);
    std::fs::remove_dir_all(&dir).ok();
}

/// A defect of the reticle, on every 7th die at one in-die spot, is found
/// as a repeater when the run ends: stored with its die count, and sent to
/// whoever follows the run (the wafer map) before the run's end.
#[test]
fn a_reticle_defect_is_marked_as_a_repeater_when_the_run_ends() {
    let t = tool_with("repeaters", None, |m, _| {
        m.reticle_defect = Some((200.0, 300.0, 3.0, 7));
    });
    let mut events = t.engine.events.subscribe();
    t.start();
    t.wait_state(RunState::Complete);
    let run = t.run();
    let reticle_dies = run
        .dies
        .iter()
        .filter(|d| d.inspected && d.die_index % 7 == 0)
        .count();
    assert!(reticle_dies >= 5, "{reticle_dies}");
    // Each repeater is a reticle die's defect near the spot; the group
    // spans most of those dies (a die's stage error moves its defect by a
    // pixel or two, which may put one outside the tolerance).
    assert!(
        run.repeaters.len() * 4 >= reticle_dies * 3,
        "{} of {reticle_dies}: {:?}",
        run.repeaters.len(),
        run.repeaters
    );
    for m in &run.repeaters {
        assert_eq!(m.die_index % 7, 0, "{m:?}");
        assert!(m.dies as usize >= run.repeaters.len() / 2, "{m:?}");
        let d = &run
            .dies
            .iter()
            .find(|d| d.die_index == m.die_index)
            .unwrap()
            .defects[m.defect_no as usize - 1];
        assert!(
            (d.x_px - 200.0).abs() < 4.0 && (d.y_px - 300.0).abs() < 4.0,
            "{d:?}"
        );
    }
    let mut sent = None;
    let mut ended_after = false;
    while let Ok(e) = events.try_recv() {
        match e {
            waferscope::run::RunEvent::Repeaters { marks } => sent = Some(marks),
            waferscope::run::RunEvent::Ended { .. } => ended_after = sent.is_some(),
            _ => {}
        }
    }
    assert_eq!(sent.as_ref(), Some(&run.repeaters));
    assert!(ended_after, "repeaters are sent before the run's end");
}
