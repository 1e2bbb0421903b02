//! The run engine: plain async code on tokio. It waits for requests while
//! idle; during a run it walks the die plan, keeps a few dies in flight in
//! the pipeline, and between dies handles operator commands, interlocks and
//! suspenders.

use super::machine::MachineControl;
use super::recipe::ValidRecipe;
use super::safety::{abort_cause, interlock_failures_at, suspend_cause, SafetyLimits};
use super::snapshot::{RunEvent, RunSnapshot};
use super::state::{transition, CommandKind, RunCommand, RunState};
use super::text::FixedText;
use crate::hot::{latest_cell, LatestReader, LatestSubscriber, LatestWriter, ThreadState};
use crate::monitor::alarm_engine::unix_ms_now;
use crate::monitor::{AlarmDef, AlarmSnapshot, MachineSnapshot};
use crate::pipeline::{DieResult, Pipeline};
use crate::store::record::{ExitStatus, RunIdentity, RunStart, RunStore};

use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{broadcast, mpsc};

#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// How long a suspension's cause must stay healthy before the run
    /// resumes by itself.
    pub resume_after: Duration,
    pub limits: SafetyLimits,
    /// Dies handed to the pipeline ahead of their results (≥ 2: a die is
    /// inspected once its right-hand neighbour has been imaged).
    pub max_in_flight: usize,
    /// Dies in a row the camera or stage may fail before the run faults.
    pub max_consecutive_failures: u32,
    /// Defect thumbnails go to `<root>/run-<id>/`; none if `None`.
    pub thumbnail_root: Option<std::path::PathBuf>,
    /// A die handed to the pipeline must have its result within this, or
    /// the run faults naming the die and the pipeline threads that are not
    /// healthy (a camera blocked mid-die, a stuck worker). Also bounds the
    /// wait for the die in hand when the tool is made safe.
    pub die_deadline: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            resume_after: Duration::from_secs(3),
            limits: SafetyLimits::default(),
            max_in_flight: 4,
            max_consecutive_failures: 3,
            thumbnail_root: None,
            die_deadline: Duration::from_secs(10),
        }
    }
}

/// How long a one-shot interlock check waits for a fresh picture from a
/// producer whose last one is late by age (see `Engine::interlocks`).
const FRESH_PICTURE_WAIT: Duration = Duration::from_secs(1);

type Reply = Option<flume::Sender<Result<(), String>>>;

enum Request {
    Load {
        recipe: Box<ValidRecipe>,
        identity: RunIdentity,
        reply: Reply,
    },
    Command {
        cmd: RunCommand,
        reply: Reply,
    },
    /// Forget the loaded recipe and wafer (READY → IDLE): the wafer it
    /// names is no longer on the chuck.
    Unload {
        reply: Reply,
    },
    /// Teach the loaded recipe's golden die from this many dies.
    Teach {
        dies: usize,
        reply: Reply,
    },
}

/// How the UI, the CLI and tests talk to the engine. Cheap to clone.
#[derive(Clone)]
pub struct EngineHandle {
    tx: flume::Sender<Request>,
    pub snapshots: LatestSubscriber<RunSnapshot>,
    pub events: broadcast::Sender<RunEvent>,
}

impl EngineHandle {
    fn ask(&self, make: impl FnOnce(Reply) -> Request) -> flume::Receiver<Result<(), String>> {
        let (tx, rx) = flume::bounded(1);
        if self.tx.send(make(Some(tx))).is_err() {
            let (dead_tx, dead_rx) = flume::bounded(1);
            let _ = dead_tx.send(Err("the run engine has stopped".into()));
            return dead_rx;
        }
        rx
    }

    /// Loads a recipe for the next wafer (Idle/Ready → Ready if the
    /// interlocks hold). Waits for the answer: not for the UI thread.
    pub fn load(&self, recipe: ValidRecipe, identity: RunIdentity) -> Result<(), String> {
        answer(self.load_nowait(recipe, identity).recv())
    }

    pub async fn load_async(
        &self,
        recipe: ValidRecipe,
        identity: RunIdentity,
    ) -> Result<(), String> {
        answer(self.load_nowait(recipe, identity).recv_async().await)
    }

    /// Sends a command and waits for acceptance or the refusal reason.
    pub fn command(&self, cmd: RunCommand) -> Result<(), String> {
        answer(self.command_nowait(cmd).recv())
    }

    pub async fn command_async(&self, cmd: RunCommand) -> Result<(), String> {
        answer(self.command_nowait(cmd).recv_async().await)
    }

    /// Loads without waiting: the answer arrives on the returned channel
    /// (for the UI thread, which must not block).
    pub fn load_nowait(
        &self,
        recipe: ValidRecipe,
        identity: RunIdentity,
    ) -> flume::Receiver<Result<(), String>> {
        self.ask(|reply| Request::Load {
            recipe: Box::new(recipe),
            identity,
            reply,
        })
    }

    /// Teaches the loaded recipe's golden die (median of `dies` dies of
    /// its plan) without waiting: only while no run is in progress.
    pub fn teach_nowait(&self, dies: usize) -> flume::Receiver<Result<(), String>> {
        self.ask(|reply| Request::Teach { dies, reply })
    }

    /// Commands without waiting: the answer arrives on the returned channel.
    pub fn command_nowait(&self, cmd: RunCommand) -> flume::Receiver<Result<(), String>> {
        self.ask(|reply| Request::Command { cmd, reply })
    }

    /// Forgets the loaded recipe and wafer (READY → IDLE), e.g. when the
    /// wafer it names went back to its carrier without being run.
    pub async fn unload_async(&self) -> Result<(), String> {
        answer(
            self.ask(|reply| Request::Unload { reply })
                .recv_async()
                .await,
        )
    }

    /// Whether the engine still takes requests (false once its task has
    /// ended, a panic included).
    pub fn is_serving(&self) -> bool {
        !self.tx.is_disconnected()
    }

    /// Fire and forget (the UI): a refusal shows in the run snapshot.
    pub fn send(&self, cmd: RunCommand) {
        let _ = self.tx.send(Request::Command { cmd, reply: None });
    }
}

/// The engine's reply, or why there is none.
fn answer<E>(r: Result<Result<(), String>, E>) -> Result<(), String> {
    r.unwrap_or_else(|_| Err("the run engine has stopped".into()))
}

pub struct RunEngine {
    machine: Box<dyn MachineControl>,
    monitor: LatestReader<MachineSnapshot>,
    alarms: LatestReader<AlarmSnapshot>,
    alarm_defs: Arc<[AlarmDef]>,
    store: Box<dyn RunStore>,
    cfg: EngineConfig,
    snap: RunSnapshot,
    writer: LatestWriter<RunSnapshot>,
    events: broadcast::Sender<RunEvent>,
    requests: flume::Receiver<Request>,
    loaded: Option<(ValidRecipe, RunIdentity)>,
}

impl RunEngine {
    pub fn new(
        machine: Box<dyn MachineControl>,
        monitor: LatestReader<MachineSnapshot>,
        alarms: LatestReader<AlarmSnapshot>,
        alarm_defs: Arc<[AlarmDef]>,
        store: Box<dyn RunStore>,
        cfg: EngineConfig,
    ) -> (Self, EngineHandle) {
        let (tx, requests) = flume::unbounded();
        let (writer, snapshots) = latest_cell(RunSnapshot::default());
        let (events, _) = broadcast::channel(4096);
        let handle = EngineHandle {
            tx,
            snapshots,
            events: events.clone(),
        };
        (
            Self {
                machine,
                monitor,
                alarms,
                alarm_defs,
                store,
                cfg,
                snap: RunSnapshot::default(),
                writer,
                events,
                requests,
                loaded: None,
            },
            handle,
        )
    }

    /// Serves requests until every handle is dropped.
    pub async fn serve(mut self) {
        self.publish();
        while let Ok(req) = self.requests.recv_async().await {
            match req {
                Request::Load {
                    recipe,
                    identity,
                    reply,
                } => {
                    let r = self.load(*recipe, identity).await;
                    self.answer(reply, r);
                }
                Request::Teach { dies, reply } => {
                    let r = self.teach(dies).await;
                    self.answer(reply, r);
                }
                Request::Unload { reply } => {
                    let r = match self.snap.state {
                        RunState::Idle | RunState::Ready => {
                            self.loaded = None;
                            self.set_state(RunState::Idle);
                            Ok(())
                        }
                        other => Err(format!("cannot unload while {}", other.label())),
                    };
                    self.answer(reply, r);
                }
                Request::Command { cmd, reply } => {
                    let kind = cmd.kind();
                    match transition(self.snap.state, kind) {
                        Err(why) => self.answer(reply, Err(why.to_string())),
                        Ok(_) if kind == CommandKind::Start => match self.interlocks().await {
                            Err(why) => self.answer(reply, Err(why)),
                            Ok(()) => {
                                self.answer(reply, Ok(()));
                                self.run_wafer().await;
                            }
                        },
                        Ok(next) => {
                            self.set_state(next);
                            self.answer(reply, Ok(()));
                        }
                    }
                }
            }
        }
    }

    fn answer(&mut self, reply: Reply, r: Result<(), String>) {
        if let Err(why) = &r {
            tracing::info!("refused: {why}");
            self.snap.refusal = FixedText::new(why);
            self.publish();
        }
        if let Some(reply) = reply {
            let _ = reply.send(r);
        }
    }

    async fn load(&mut self, recipe: ValidRecipe, identity: RunIdentity) -> Result<(), String> {
        if !matches!(
            self.snap.state,
            super::state::RunState::Idle | super::state::RunState::Ready
        ) {
            return Err(format!(
                "cannot load a recipe while {}: finish or acknowledge the run first",
                self.snap.state.label()
            ));
        }
        if identity.lot.trim().is_empty() || identity.wafer.trim().is_empty() {
            return Err("lot and wafer ids are required".into());
        }
        self.snap.recipe_id = FixedText::new(&recipe.recipe.id);
        self.snap.lot = FixedText::new(&identity.lot);
        self.snap.wafer = FixedText::new(&identity.wafer);
        self.snap.slot = identity.slot;
        self.snap.operator = FixedText::new(&identity.operator);
        self.snap.dies_total = recipe.plan.len() as u32;
        self.snap.dies_done = 0;
        self.snap.defects = 0;
        self.snap.exit = None;
        self.snap.cause = FixedText::default();
        self.snap.not_exported = FixedText::default();
        // A sampled plan does not switch to the golden die silently.
        if let Some(note) = recipe.reference_note() {
            tracing::warn!(recipe = %recipe.recipe.id, "{note}");
        }
        self.loaded = Some((recipe, identity));
        match self.interlocks().await {
            Ok(()) => {
                self.set_state(RunState::Ready);
                Ok(())
            }
            Err(why) => {
                self.set_state(RunState::Idle);
                Err(format!("recipe loaded, but not ready: {why}"))
            }
        }
    }

    /// Teaches only when READY: the recipe is loaded and the interlocks
    /// hold (a wafer is held, illumination at its setpoint), as for a run;
    /// a golden imaged from an empty chuck would be kept for every run.
    async fn teach(&mut self, dies: usize) -> Result<(), String> {
        if self.snap.state != RunState::Ready {
            return Err(format!(
                "cannot teach a golden die while {}: load the recipe (READY) first",
                self.snap.state.label()
            ));
        }
        self.interlocks().await?;
        let Some((recipe, _)) = &self.loaded else {
            return Err("load the recipe to teach its golden die first".into());
        };
        let golden = self
            .machine
            .teach_golden(recipe, dies)
            .map_err(|e| format!("teaching the golden die: {e:#}"))?;
        tracing::info!(
            recipe = %recipe.recipe.id,
            dies = golden.dies,
            "golden die taught"
        );
        Ok(())
    }

    /// The start interlocks, checked once (load, Start). A picture only
    /// late by age (its producer not ended) may be a scheduler hiccup on a
    /// loaded station rather than a hung poller: before refusing for that
    /// alone, wait up to `FRESH_PICTURE_WAIT` for the producers' next
    /// snapshot. Any other failure refuses at once.
    async fn interlocks(&mut self) -> Result<(), String> {
        let Some((recipe, _)) = &self.loaded else {
            return Err("no recipe is loaded".into());
        };
        let setpoint = recipe.recipe.optics.illumination_setpoint_pct;
        let give_up = Instant::now() + FRESH_PICTURE_WAIT;
        loop {
            let m = self.monitor.read().value;
            let a = self.alarms.read().value;
            let now = crate::hot::now_ns();
            let why =
                interlock_failures_at(&m, &a, &self.alarm_defs, &self.cfg.limits, setpoint, now);
            if why.is_empty() {
                return Ok(());
            }
            let late_by_age =
                (!m.ended && m.is_out_of_date(now)) || (!a.ended && a.is_out_of_date(now));
            if !late_by_age || Instant::now() >= give_up {
                return Err(format!("interlocks not satisfied: {}", why.join("; ")));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn set_state(&mut self, to: RunState) {
        let from = self.snap.state;
        if from != to {
            tracing::info!(from = from.label(), to = to.label(), "run state");
            self.snap.state = to;
            let _ = self.events.send(RunEvent::StateChanged { from, to });
        }
        self.publish();
    }

    fn publish(&mut self) {
        self.snap.revision += 1;
        self.snap.taken_ns = crate::hot::now_ns();
        self.writer.publish(self.snap);
    }

    /// One wafer, start to end.
    async fn run_wafer(&mut self) {
        let Some((recipe, identity)) = self.loaded.clone() else {
            return;
        };
        // Accepted: the run is on from now (the pipeline takes a moment to
        // build; commands sent meanwhile are handled at the first die).
        self.snap.dies_done = 0;
        self.snap.defects = 0;
        self.snap.next_die = 0;
        // The previous run's id must not be shown as this run's while its
        // record opens: none until the store has given one.
        self.snap.run_id = 0;
        self.set_state(RunState::Running);
        let start = RunStart {
            identity,
            recipe_id: recipe.recipe.id.clone(),
            recipe_hash: recipe.hash.clone(),
            plan: recipe.plan.clone(),
            started_unix_ms: unix_ms_now(),
            layout: recipe.layout(),
        };
        let run_id = match self.store.begin(&start) {
            Ok(id) => id,
            Err(e) => return self.fault(None, &format!("cannot open the run record: {e:#}")),
        };
        self.snap.run_id = run_id;
        self.publish();
        let (res_tx, res_rx) = mpsc::channel::<DieResult>(1024);
        let thumbs = self
            .cfg
            .thumbnail_root
            .as_ref()
            .map(|root| root.join(format!("run-{run_id}")));
        let pipeline = match self.machine.build_pipeline(
            &recipe,
            Box::new(move |r| {
                // Fails only once the engine has stopped listening (the run
                // ended, e.g. faulted): the die is then marked not inspected
                // in the record; say so in the log.
                if res_tx.blocking_send(*r).is_err() {
                    tracing::warn!(
                        die = r.die_index,
                        "die result arrived after the run ended; not recorded"
                    );
                }
            }),
            thumbs,
        ) {
            Ok(p) => p,
            Err(e) => {
                return self.fault(Some(run_id), &format!("cannot start the pipeline: {e:#}"))
            }
        };
        self.snap.run_id = run_id;
        self.snap.started_unix_ms = start.started_unix_ms;
        self.snap.dies_done = 0;
        self.snap.defects = 0;
        self.snap.next_die = 0;
        self.snap.refusal = FixedText::default();
        tracing::info!(run_id, lot = %self.snap.lot, wafer = %self.snap.wafer, recipe = %self.snap.recipe_id, dies = recipe.plan.len(), "run started");
        let _ = self.events.send(RunEvent::Started {
            run_id,
            dies: recipe.plan.len() as u32,
        });
        self.publish();
        let mut walk = Walk {
            plan: recipe.plan.clone(),
            next: 0,
            in_flight: 0,
            got: vec![false; recipe.sites.len()],
            started: Instant::now(),
            consecutive_failures: 0,
            suspended_at: None,
            healthy_since: None,
            thumbnails_failed_before: self.machine.thumbnails_failed(),
            issued: Vec::new(),
        };
        let mut results = res_rx;
        let outcome = self.walk(&pipeline, &mut results, &mut walk, run_id).await;
        self.finish_run(pipeline, results, walk, run_id, outcome)
            .await;
    }

    fn fault(&mut self, run_id: Option<u64>, reason: &str) {
        tracing::error!("run faulted: {reason}");
        if let Some(id) = run_id {
            if let Err(e) = self
                .store
                .end(id, ExitStatus::Faulted, reason, unix_ms_now())
            {
                tracing::error!("closing the run record: {e:#}");
            }
        }
        self.snap.cause = FixedText::new(reason);
        self.snap.exit = Some(ExitStatus::Faulted);
        self.snap.totals.count_end(ExitStatus::Faulted);
        let _ = self.events.send(RunEvent::Ended {
            status: ExitStatus::Faulted,
            reason: reason.to_owned(),
        });
        self.set_state(RunState::Faulted);
    }
}

/// Progress through one wafer's plan.
struct Walk {
    plan: Vec<u32>,
    next: usize,
    in_flight: usize,
    /// Results received, by die index.
    got: Vec<bool>,
    started: Instant,
    consecutive_failures: u32,
    suspended_at: Option<Instant>,
    healthy_since: Option<Instant>,
    /// The machine's count of unwritten thumbnails when the run began.
    thumbnails_failed_before: u64,
    /// Dies handed to the pipeline and not yet back, with when.
    issued: Vec<(u32, Instant)>,
}

impl Walk {
    /// A die came back (result or cancellation).
    fn returned(&mut self, die: u32) {
        if let Some(i) = self.issued.iter().position(|(d, _)| *d == die) {
            self.issued.swap_remove(i);
        }
    }

    /// The die waiting longest for its result, and since when.
    fn oldest(&self) -> Option<(u32, Instant)> {
        self.issued.iter().copied().min_by_key(|(_, t)| *t)
    }

    /// A queued die was cancelled by a halt: it was never imaged, so the
    /// plan rewinds to it. Cancellations are the tail of what was queued
    /// (acquisition serves triggers in order and a halt cancels every later
    /// one until a resume, which the engine sends only after they are all
    /// back), so rewinding to the earliest re-queues exactly those.
    fn cancelled(&mut self, die: u32) {
        self.returned(die);
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(pos) = self.plan[..self.next].iter().rposition(|&d| d == die) {
            self.next = self.next.min(pos);
        }
    }
}

enum Outcome {
    Complete,
    Stopped,
    Aborted(String),
    Faulted(String),
}

impl RunEngine {
    /// The die loop: runs until the plan is done or the run is stopped,
    /// aborted or faulted.
    async fn walk(
        &mut self,
        pipeline: &Pipeline,
        results: &mut mpsc::Receiver<DieResult>,
        w: &mut Walk,
        run_id: u64,
    ) -> Outcome {
        loop {
            while let Ok(r) = results.try_recv() {
                w.returned(r.die_index);
                if let Some(o) = self.on_result(w, run_id, r) {
                    pipeline.halt();
                    return o;
                }
            }
            while let Some(die) = pipeline.take_cancelled() {
                w.cancelled(die);
                self.snap.next_die = w.next as u32;
            }
            if let Some(why) = self.missing_result(pipeline, w) {
                pipeline.halt();
                self.machine.make_safe();
                return Outcome::Faulted(why);
            }
            while let Ok(req) = self.requests.try_recv() {
                self.run_request(req, pipeline);
            }
            let m = self.monitor.read().value;
            let a = self.alarms.read().value;
            if self.snap.state.in_run() && self.snap.state != RunState::Aborting {
                if let Some(reason) = abort_cause(&m, &self.cfg.limits) {
                    pipeline.halt();
                    self.machine.make_safe();
                    self.snap.cause = FixedText::new(&reason);
                    self.set_state(RunState::Aborting);
                    return Outcome::Aborted(reason);
                }
            }
            let cause = suspend_cause(&m, &a, &self.alarm_defs, &self.cfg.limits);
            match self.snap.state {
                RunState::Running | RunState::Pausing => {
                    if let Some(cause) = cause {
                        self.suspend(pipeline, w, cause).await;
                        continue;
                    }
                }
                RunState::Suspended => {
                    if cause.is_none() {
                        let since = *w.healthy_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= self.cfg.resume_after {
                            self.resume(w);
                        }
                    } else {
                        w.healthy_since = None;
                    }
                }
                _ => {}
            }
            // After a halt (suspension, or an operator pause that took one
            // over), no die is queued until acquisition has handed back
            // every cancelled die and verified the stage position.
            let reopened = match self.snap.state {
                RunState::Running if pipeline.is_halted() => {
                    if pipeline.resume_settled() {
                        pipeline.resume();
                    }
                    false
                }
                RunState::Running => pipeline.resume_settled(),
                _ => false,
            };
            match self.snap.state {
                RunState::Running
                    if reopened
                        && w.next < w.plan.len()
                        && w.in_flight < self.cfg.max_in_flight.max(2) =>
                {
                    let die = w.plan[w.next];
                    pipeline.inspect(die);
                    w.issued.push((die, Instant::now()));
                    w.next += 1;
                    w.in_flight += 1;
                    self.snap.next_die = w.next as u32;
                    if w.next == w.plan.len() {
                        pipeline.end_of_plan();
                    }
                    continue;
                }
                RunState::Running if w.next == w.plan.len() && w.in_flight == 0 => {
                    return Outcome::Complete
                }
                RunState::Pausing if w.in_flight == 0 => self.set_state(RunState::Paused),
                RunState::Stopping if w.in_flight == 0 => return Outcome::Stopped,
                RunState::Aborting => {
                    let reason = self.snap.cause.as_str().to_owned();
                    return Outcome::Aborted(if reason.is_empty() {
                        "aborted by the operator".into()
                    } else {
                        reason
                    });
                }
                _ => {}
            }
            // Nothing to do this instant: wait for a result or a request,
            // or a short tick to re-check the machine.
            tokio::select! {
                r = results.recv() => {
                    if let Some(r) = r {
                        w.returned(r.die_index);
                        if let Some(o) = self.on_result(w, run_id, r) {
                            pipeline.halt();
                            return o;
                        }
                    }
                }
                req = self.requests.recv_async() => match req {
                    Ok(req) => self.run_request(req, pipeline),
                    // Every handle is gone: the station is closing.
                    Err(_) => {
                        pipeline.halt();
                        self.machine.make_safe();
                        return Outcome::Aborted("the operator station was closed".into());
                    }
                },
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    }

    fn on_result(&mut self, w: &mut Walk, run_id: u64, r: DieResult) -> Option<Outcome> {
        w.in_flight = w.in_flight.saturating_sub(1);
        if let Some(g) = w.got.get_mut(r.die_index as usize) {
            *g = true;
        }
        if let Err(e) = self.store.record_die(run_id, &r) {
            return Some(Outcome::Faulted(format!(
                "die {} not stored: {e:#}",
                r.die_index
            )));
        }
        if r.capture_failed {
            w.consecutive_failures += 1;
            tracing::warn!(die = r.die_index, "die not imaged (camera or stage fault)");
            if w.consecutive_failures >= self.cfg.max_consecutive_failures {
                return Some(Outcome::Faulted(format!(
                    "camera or stage failed on {} dies in a row",
                    w.consecutive_failures
                )));
            }
        } else {
            w.consecutive_failures = 0;
        }
        self.snap.dies_done += 1;
        self.snap.defects += r.count as u32 + r.dropped;
        if !r.capture_failed {
            self.snap.totals.dies_inspected += 1;
        }
        self.snap.totals.defects += u64::from(r.count as u32 + r.dropped);
        let elapsed = w.started.elapsed();
        self.snap.elapsed_ms = elapsed.as_millis() as u64;
        let done = self.snap.dies_done.max(1) as f64;
        let left = self.snap.dies_total.saturating_sub(self.snap.dies_done) as f64;
        self.snap.eta_ms = (elapsed.as_millis() as f64 / done * left) as u64;
        let _ = self.events.send(RunEvent::DieDone {
            result: Box::new(r),
            done: self.snap.dies_done,
            total: self.snap.dies_total,
        });
        self.publish();
        None
    }

    /// A command during a run.
    fn run_request(&mut self, req: Request, pipeline: &Pipeline) {
        match req {
            Request::Load { reply, .. } => self.answer(
                reply,
                Err("a run is in progress: finish it before loading a recipe".into()),
            ),
            Request::Teach { reply, .. } => self.answer(
                reply,
                Err("a run is in progress: finish it before teaching a golden die".into()),
            ),
            Request::Unload { reply } => self.answer(
                reply,
                Err("a run is in progress: its wafer is on the chuck".into()),
            ),
            Request::Command { cmd, reply } => match transition(self.snap.state, cmd.kind()) {
                Err(why) => self.answer(reply, Err(why.to_string())),
                Ok(next) => {
                    if let RunCommand::Abort { reason } = &cmd {
                        let reason = if reason.trim().is_empty() {
                            "aborted by the operator"
                        } else {
                            reason.trim()
                        };
                        self.snap.cause = FixedText::new(reason);
                    }
                    if matches!(next, RunState::Stopping | RunState::Aborting) {
                        // Nothing more is imaged; queued dies come back as
                        // cancelled (not inspected), and a trigger waiting
                        // for a free buffer gives up instead of hanging.
                        pipeline.halt();
                    }
                    if matches!(
                        next,
                        RunState::Pausing | RunState::Stopping | RunState::Paused
                    ) {
                        // Let the workers finish the dies they hold, so the
                        // pause or stop lands on a die boundary.
                        pipeline.end_of_plan();
                    }
                    if next == RunState::Running && self.snap.state == RunState::Paused {
                        tracing::info!("run resumed by the operator");
                    }
                    self.set_state(next);
                    self.answer(reply, Ok(()));
                }
            },
        }
    }

    /// Makes the tool safe: the gate closes (queued dies are cancelled and
    /// come back to be queued again on resume), the die in hand ends, then
    /// the stage is stopped and the illumination goes to standby. Nothing
    /// is imaged after `make_safe`.
    async fn suspend(&mut self, pipeline: &Pipeline, w: &mut Walk, cause: String) {
        pipeline.halt();
        let since = Instant::now();
        while pipeline.busy() && since.elapsed() < self.cfg.die_deadline {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // Let the workers finish the dies already imaged.
        pipeline.end_of_plan();
        self.machine.make_safe();
        tracing::warn!(cause = %cause, die = w.next, "run suspended");
        w.suspended_at = Some(Instant::now());
        w.healthy_since = None;
        self.snap.cause = FixedText::new(&cause);
        let _ = self.events.send(RunEvent::Suspended { cause });
        self.set_state(RunState::Suspended);
    }

    /// Back to operating conditions. The pipeline reopens (after checking
    /// the stage is where it was left) before the next die is queued: see
    /// the `reopened` step of `walk`.
    fn resume(&mut self, w: &mut Walk) {
        self.machine.restore_operation();
        let after_ms = w
            .suspended_at
            .map(|t| t.elapsed().as_millis() as u64)
            .unwrap_or(0);
        tracing::info!(after_ms, die = w.next, "run resumed: cause healthy");
        w.suspended_at = None;
        w.healthy_since = None;
        self.snap.cause = FixedText::default();
        let _ = self.events.send(RunEvent::Resumed { after_ms });
        self.set_state(RunState::Running);
    }

    /// Why the run cannot wait any longer for a result, if so: a pipeline
    /// thread died or reported a fault (naming the die), or the oldest die
    /// in flight is past the deadline (naming it and every pipeline thread
    /// that is not healthy, e.g. "acquisition stalled").
    fn missing_result(&self, pipeline: &Pipeline, w: &Walk) -> Option<String> {
        if let Some(why) = pipeline.fault() {
            let dies: Vec<String> = w.issued.iter().map(|(d, _)| d.to_string()).collect();
            return Some(if dies.is_empty() {
                why
            } else {
                format!("{why} (dies {} not inspected)", dies.join(", "))
            });
        }
        let (oldest, since) = w.oldest()?;
        if since.elapsed() < self.cfg.die_deadline {
            return None;
        }
        // The die that holds the others up: the one acquisition is stuck on
        // (a neighbour waiting for it is only its victim), else the oldest.
        let in_hand = pipeline
            .die_in_hand()
            .filter(|d| w.issued.iter().any(|(i, _)| i == d));
        let die = in_hand.unwrap_or(oldest);
        let mut threads: Vec<String> = pipeline
            .thread_states()
            .into_iter()
            .filter(|(_, s)| !s.is_healthy())
            .map(|(name, s)| match s {
                ThreadState::Stalled { since_beat_ms } => {
                    format!("thread {name} stalled for {since_beat_ms} ms")
                }
                s => format!("thread {name} {}", s.label()),
            })
            .collect();
        if let Some(d) = in_hand {
            if !threads.iter().any(|t| t.starts_with("thread acquisition")) {
                threads.push(format!("thread acquisition is still on die {d}"));
            }
        }
        Some(format!(
            "die {die}: no result within {} ms; {}",
            self.cfg.die_deadline.as_millis(),
            if threads.is_empty() {
                "every pipeline thread reads healthy".to_owned()
            } else {
                threads.join(", ")
            }
        ))
    }

    async fn finish_run(
        &mut self,
        pipeline: Pipeline,
        mut results: mpsc::Receiver<DieResult>,
        mut w: Walk,
        run_id: u64,
        outcome: Outcome,
    ) {
        // Joining the pipeline finishes the dies already in it; their
        // results are kept, even on abort.
        let finished = tokio::task::spawn_blocking(move || pipeline.finish()).await;
        let mut outcome = outcome;
        if let Some(why) = pipeline_end_problem(finished) {
            tracing::error!("ending the pipeline: {why}");
            if !matches!(outcome, Outcome::Faulted(_)) {
                outcome = Outcome::Faulted(why);
            }
        }
        while let Ok(r) = results.try_recv() {
            if let Some(Outcome::Faulted(why)) = self.on_result(&mut w, run_id, r) {
                if !matches!(outcome, Outcome::Faulted(_)) {
                    outcome = Outcome::Faulted(why);
                }
            }
        }
        // Nothing is declared done before the store confirms every result
        // handed to it is committed; if one is not, the run faults with the
        // store's reason (results committed before stay).
        if let Err(e) = self.store.confirm(run_id) {
            let why = format!("results not stored: {e:#}");
            tracing::error!(run_id, "{why}");
            outcome = Outcome::Faulted(match outcome {
                Outcome::Faulted(first) if first.contains(&why) => first,
                Outcome::Faulted(first) => format!("{first}; {why}"),
                _ => why,
            });
        }
        let (mut status, mut reason, mut state) = match outcome {
            Outcome::Complete => (ExitStatus::Complete, String::new(), RunState::Complete),
            Outcome::Stopped => (
                ExitStatus::Stopped,
                "stopped by the operator".to_owned(),
                RunState::Complete,
            ),
            Outcome::Aborted(r) => (ExitStatus::Aborted, r, RunState::Aborted),
            Outcome::Faulted(r) => (ExitStatus::Faulted, r, RunState::Faulted),
        };
        // Repeaters (reticle defects) over the whole run, once its results
        // are committed and before the record is closed and exported, so
        // the KLARF carries them. A failure is reported with the exports:
        // the results themselves are recorded. Not for a faulted run, whose
        // record may be incomplete (or its store unwritable).
        let mut repeaters_failed = None;
        if let (Some((recipe, _)), false) = (&self.loaded, status == ExitStatus::Faulted) {
            let pixel_um = recipe.recipe.optics.pixel_um;
            match super::repeaters::mark_run_repeaters(&mut *self.store, run_id, pixel_um) {
                Ok(marks) => {
                    if !marks.is_empty() {
                        tracing::info!(
                            run_id,
                            defects = marks.len(),
                            "repeaters: defects at the same in-die position on many dies"
                        );
                    }
                    let _ = self.events.send(RunEvent::Repeaters { marks });
                }
                Err(e) => repeaters_failed = Some(format!("repeater analysis: {e:#}")),
            }
        }
        let not_inspected: Vec<u32> = w
            .plan
            .iter()
            .copied()
            .filter(|&d| !w.got[d as usize])
            .collect();
        let result = self
            .store
            .mark_not_inspected(run_id, &not_inspected)
            .and_then(|_| self.store.end(run_id, status, &reason, unix_ms_now()));
        if let Err(e) = result {
            // The record could not be closed as it ended: the run is not
            // complete as far as anyone reading the record can tell.
            tracing::error!("closing run {run_id}: {e:#}");
            if status != ExitStatus::Faulted {
                status = ExitStatus::Faulted;
                state = RunState::Faulted;
                reason = format!("cannot close the run record: {e:#}");
            }
        }
        // Exports: the results are recorded either way; a failure is the
        // operator's to know (console, run record, exit code, and for the
        // KLARF an alarm while the store retries it in the background),
        // and can be repeated with `waferscope export`.
        let klarf_failed = match self.store.finalize(run_id) {
            Ok(files) => {
                for f in files {
                    tracing::info!(run_id, file = %f.display(), "exported");
                }
                None
            }
            Err(e) => Some(format!("KLARF: {e:#}")),
        };
        // What else was not exported: still so once the KLARF is written.
        let mut not_exported_else: Vec<String> = repeaters_failed.into_iter().collect();
        let thumbs_failed = self
            .machine
            .thumbnails_failed()
            .saturating_sub(w.thumbnails_failed_before);
        if thumbs_failed > 0 {
            not_exported_else.push(format!("{thumbs_failed} defect thumbnails not written"));
        }
        let not_exported: Vec<String> = klarf_failed
            .iter()
            .chain(&not_exported_else)
            .cloned()
            .collect();
        let mut not_exported_why = String::new();
        if !not_exported.is_empty() {
            let why = not_exported.join("; ");
            tracing::error!(run_id, "results not exported: {why}");
            // Even when this cannot be recorded (the export and the database
            // on the same full disk), the snapshot below still says so.
            if let Err(e) = self.store.export_failed(run_id, &why) {
                tracing::error!("recording the export failure of run {run_id}: {e:#}");
            }
            if klarf_failed.is_some() {
                let remaining =
                    (!not_exported_else.is_empty()).then(|| not_exported_else.join("; "));
                if let Err(e) = self.store.retry_export(run_id, remaining) {
                    tracing::error!("run {run_id}: the KLARF will not be retried: {e:#}");
                }
            }
            not_exported_why = why.clone();
            let note = format!("results not exported: {why}");
            reason = if reason.is_empty() {
                note
            } else {
                format!("{reason}; {note}")
            };
        }
        tracing::info!(run_id, status = status.name(), reason = %reason, not_inspected = not_inspected.len(), "run ended");
        self.snap.exit = Some(status);
        self.snap.totals.count_end(status);
        if status == ExitStatus::Complete {
            self.snap.totals.last_complete_wafer_ms = w.started.elapsed().as_millis() as u64;
        }
        self.snap.cause = FixedText::new(&reason);
        self.snap.not_exported = FixedText::new(&not_exported_why);
        let _ = self.events.send(RunEvent::Ended { status, reason });
        self.set_state(state);
    }
}

/// What went wrong ending a pipeline (a thread panicked or was left
/// stuck), if anything.
fn pipeline_end_problem(
    finished: Result<Result<(), String>, tokio::task::JoinError>,
) -> Option<String> {
    match finished {
        Ok(Ok(())) => None,
        Ok(Err(why)) => Some(why),
        Err(e) => Some(format!("joining the pipeline: {e}")),
    }
}
