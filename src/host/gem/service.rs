//! The GEM task: owns the HSMS session, keeps the communication and control
//! states, answers the host's primary messages, sends the equipment's own
//! (S1F13, S1F1, S9, S10F1), follows the run engine's events, and writes
//! every message to the SECS log. One task on the station's tokio runtime;
//! the window and tests talk to it through a [`GemHandle`].
//!
//! Order of checks for a host primary (E5, E30):
//! 1. a body that does not decode → S9F7; a wrong device id → S9F1;
//! 2. a stream we do not handle → S9F3;
//! 3. NOT COMMUNICATING: only S1F13 is answered, any other primary with
//!    the W-bit gets SxF0 (transaction aborted);
//! 4. OFF-LINE: only S1F13 and S1F17 are answered, others get SxF0;
//! 5. a function we do not handle → S9F5; a body without the structure its
//!    function requires → S9F7; else the handler's reply.
//!
//! Requests the equipment sends run on tasks of their own and report back
//! here, so a host that is slow to answer never holds up the dispatcher; a
//! request with no reply within T3 is reported to the host with S9F9 once
//! communication is established.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::host::hsms::{
    ConnectionState, DataMessage, Hsms, HsmsConfig, HsmsError, HsmsEvent, HsmsHandle, HsmsMode,
    HsmsTimers,
};
use crate::host::secs2::{decode_body_with, encode_body, DecodeLimits, Item};
use crate::hot::LatestReader;
use crate::monitor::{AlarmDef, AlarmSnapshot};
use crate::run::{recipe, EngineHandle, RunCommand, RunEvent, RunSnapshot, RunState};

use super::alarms::GemAlarms;
use super::atomic_file::{set_aside, write_atomically};
use super::communication::{self, CommState};
use super::control::{Control, ControlState, Switches};
use super::equipment_constants::{self as ec, EquipmentConstants};
use super::events::{self, CollectionEvent, ControlStateReached, EventData, RunEventMapper};
use super::persisted::{self, Persisted};
use super::process_programs::ProcessPrograms;
use super::remote_commands::{self as rc, Refusal, RemoteCommand};
use super::reports::EventReports;
use super::secs_log::{Direction, SecsLog, SecsLogLine};
use super::terminal::{self, Terminal, TerminalMessage};
use super::trace::{TraceLimits, TraceReports, Tracer};
use super::variables::{self, GemStatus, StationVariables};
use super::{clock, s9, IllegalData, VariableSource};

/// How the station's GEM link is set up.
#[derive(Debug, Clone)]
pub struct GemConfig {
    /// Passive (listen) or active (connect).
    pub mode: HsmsMode,
    /// The device id of our messages; a host message with another is
    /// answered S9F1.
    pub session_id: u16,
    /// The persisted switches and equipment constants
    /// (`persisted::FILE_NAME` in the data directory).
    pub state_file: PathBuf,
    /// `secs.log` in the log directory; `None`: kept in memory only.
    pub secs_log: Option<PathBuf>,
    /// Where START's RECIPE is looked up and where process programs (S7)
    /// are kept: the run control's recipes directory.
    pub recipes: PathBuf,
    /// The host's report definitions, links and enabled events (E30 keeps
    /// them across power-off): `gem-reports.toml` beside the state file.
    pub reports_file: PathBuf,
    /// T3 and T5 to use instead of the persisted equipment constants
    /// (`serve --t3/--t5`, tests): they become the constants' values.
    pub t3: Option<Duration>,
    pub t5: Option<Duration>,
}

impl GemConfig {
    /// Passive on `listen` with the state file and SECS log in the
    /// station's directories.
    pub fn new(
        mode: HsmsMode,
        data_dir: &std::path::Path,
        log_dir: &std::path::Path,
        recipes: PathBuf,
    ) -> GemConfig {
        GemConfig {
            mode,
            session_id: 0,
            state_file: data_dir.join(persisted::FILE_NAME),
            reports_file: data_dir.join(REPORTS_FILE),
            secs_log: Some(log_dir.join("secs.log")),
            recipes,
            t3: None,
            t5: None,
        }
    }
}

/// The report definitions' file name in the data directory.
pub const REPORTS_FILE: &str = "gem-reports.toml";

/// How often the alarm picture is compared for S5F1 edges: the alarm
/// evaluator's debounce is coarser than this.
const ALARM_POLL: Duration = Duration::from_millis(50);

enum Command {
    Online(bool),
    Remote(bool),
    TerminalAcknowledged(TerminalMessage),
    SendTerminal(String),
    Shutdown(oneshot::Sender<()>),
}

/// Results of the equipment's own requests, back to the task.
enum Internal {
    S1F13Answered {
        connection: u64,
        commack: Option<u8>,
    },
    AttemptOnline {
        host_answered: bool,
    },
    /// Our request had no reply within T3: its header, for S9F9.
    T3Timeout([u8; 10]),
}

struct Shared {
    status: Arc<GemStatus>,
    variables: Arc<StationVariables>,
    log: Arc<SecsLog>,
    terminal: Mutex<Terminal>,
    switches: Mutex<Switches>,
    local_addr: Mutex<Option<SocketAddr>>,
}

/// The station's side of GEM, for the window and tests. Cheap to clone.
#[derive(Clone)]
pub struct GemHandle {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl GemHandle {
    /// When the GEM task last ran its 50 ms tick (`hot::now_ns`; 0: not
    /// yet). Readers judge its age: the states below are only current
    /// while the task runs.
    pub fn alive_ns(&self) -> u64 {
        self.shared.status.alive_ns.load(Ordering::Relaxed)
    }

    /// Whether the GEM task has ended (asked to, or by a panic).
    pub fn task_ended(&self) -> bool {
        lock(&self.task).as_ref().is_none_or(|t| t.is_finished())
    }

    pub fn communication_state(&self) -> CommState {
        CommState::from_code(self.shared.status.communication.load(Ordering::Relaxed))
    }

    pub fn control_state(&self) -> ControlState {
        ControlState::from_code(self.shared.status.control.load(Ordering::Relaxed))
            .unwrap_or(ControlState::EquipmentOffline)
    }

    /// The operator's switches as last set (persisted).
    pub fn switches(&self) -> Switches {
        *lock(&self.shared.switches)
    }

    /// The operator's ON-LINE / OFF-LINE switch. Switching on-line from
    /// EQUIPMENT OFF-LINE asks the host (S1F1) first.
    pub fn set_online(&self, online: bool) -> Result<(), String> {
        self.command(Command::Online(online))
    }

    /// The operator's REMOTE / LOCAL switch.
    pub fn set_remote(&self, remote: bool) -> Result<(), String> {
        self.command(Command::Remote(remote))
    }

    /// The host's messages waiting for the operator, oldest first.
    pub fn terminal_messages(&self) -> Vec<TerminalMessage> {
        lock(&self.shared.terminal).messages()
    }

    /// The operator has read the oldest host message.
    pub fn acknowledge_terminal(&self) -> Option<TerminalMessage> {
        let message = lock(&self.shared.terminal).acknowledge()?;
        if let Err(why) = self.command(Command::TerminalAcknowledged(message.clone())) {
            tracing::warn!("terminal acknowledgement not reported to the GEM task: {why}");
        }
        Some(message)
    }

    /// Sends the operator's text to the host (S10F1).
    pub fn send_terminal(&self, text: &str) -> Result<(), String> {
        self.command(Command::SendTerminal(text.to_owned()))
    }

    /// The newest `n` lines of the SECS log, oldest first.
    pub fn secs_log_tail(&self, n: usize) -> Vec<SecsLogLine> {
        self.shared.log.tail(n)
    }

    pub fn secs_log(&self) -> &SecsLog {
        &self.shared.log
    }

    /// The status variables (also what reports and trace read).
    pub fn variables(&self) -> Arc<StationVariables> {
        self.shared.variables.clone()
    }

    /// Passive: the address listened on (port 0 resolved).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        *lock(&self.shared.local_addr)
    }

    /// Separates from the host and ends the task.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(tx)).await.is_ok() && rx.await.is_err() {
            tracing::warn!("GEM task ended during shutdown");
        }
        let task = lock(&self.task).take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!("GEM task failed: {e}");
            }
        }
    }

    fn command(&self, c: Command) -> Result<(), String> {
        self.commands.try_send(c).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => "the GEM task is busy: try again".to_owned(),
            mpsc::error::TrySendError::Closed(_) => "GEM has stopped".to_owned(),
        })
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Every critical section is a single call: a panic leaves it whole.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts GEM on the current tokio runtime: restores the persisted state,
/// opens the SECS log, starts the HSMS session (passive: bound when this
/// returns) and the task.
pub async fn start(
    mut cfg: GemConfig,
    engine: EngineHandle,
    variables: Arc<StationVariables>,
    alarm_view: LatestReader<AlarmSnapshot>,
    alarm_defs: Arc<[AlarmDef]>,
    guard: Option<Arc<crate::access::Guard>>,
) -> Result<GemHandle> {
    let (saved, mut ecs, reports) = load_state(&cfg)?;
    apply_serve_timers(&cfg, &saved, &mut ecs)?;
    let log = Arc::new(match &cfg.secs_log {
        Some(path) => SecsLog::open(path)?,
        None => SecsLog::in_memory(),
    });
    let source: Arc<dyn VariableSource> = variables.clone();
    let (tracer, traces) = Tracer::start(source, variables.status.clone(), TraceLimits::default())
        .context("starting the trace sampler")?;
    let control = Control::new(saved.switches);
    let status = variables.status.clone();
    status
        .control
        .store(control.state.code(), Ordering::Relaxed);
    status
        .communication
        .store(CommState::NotCommunicating.code(), Ordering::Relaxed);
    status
        .time_format
        .store(ecs.time_format(), Ordering::Relaxed);
    let timers = ecs.timers();
    let (hsms, hsms_events) = Hsms::start(hsms_config(&cfg, timers))
        .await
        .with_context(|| format!("starting HSMS ({})", describe(&cfg.mode)))?;
    // A restarted session (new timers) listens where this one does, also
    // when port 0 asked for any free port.
    if let (HsmsMode::Passive { .. }, Some(listen)) = (cfg.mode, hsms.local_addr()) {
        cfg.mode = HsmsMode::Passive { listen };
    }
    let shared = Arc::new(Shared {
        status,
        variables,
        log,
        terminal: Mutex::new(Terminal::default()),
        switches: Mutex::new(saved.switches),
        local_addr: Mutex::new(hsms.local_addr()),
    });
    let (commands_tx, commands) = mpsc::channel(16);
    let (internal_tx, internal) = mpsc::channel(64);
    let run_view = engine
        .snapshots
        .reader()
        .context("a run snapshot reader for GEM")?;
    let run_events = Some(engine.events.subscribe());
    tracing::info!(
        "GEM: {}, control state {}",
        describe(&cfg.mode),
        control.state.name()
    );
    let pps = ProcessPrograms::new(cfg.recipes.clone());
    let task = Task {
        reports,
        mapper: RunEventMapper::new(),
        alarms: GemAlarms::new(&alarm_defs),
        alarm_view,
        alarm_defs,
        pps,
        tracer,
        traces,
        cfg,
        shared: shared.clone(),
        hsms,
        hsms_events: Some(hsms_events),
        active_timers: timers,
        control,
        ecs,
        engine,
        guard,
        run_view,
        run_events,
        commands,
        internal_tx,
        internal,
        connection: 0,
        selected: false,
        comm: CommState::NotCommunicating,
        s1f13_in_flight: false,
        next_s1f13: None,
        restart_at: None,
        limits: DecodeLimits::default(),
    };
    let join = tokio::spawn(task.run());
    Ok(GemHandle {
        shared,
        commands: commands_tx,
        task: Arc::new(Mutex::new(Some(join))),
    })
}

fn hsms_config(cfg: &GemConfig, timers: HsmsTimers) -> HsmsConfig {
    HsmsConfig {
        mode: cfg.mode,
        session_id: cfg.session_id,
        timers,
        ..HsmsConfig::default()
    }
}

fn describe(mode: &HsmsMode) -> String {
    match mode {
        HsmsMode::Passive { listen } => format!("passive, listening on {listen}"),
        HsmsMode::Active { connect } => format!("active, connecting to {connect}"),
    }
}

fn encode(item: Option<&Item>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Err(e) = encode_body(item, &mut out) {
        // Our own items are built within E5's limits; say so loudly if not.
        tracing::error!("GEM: cannot encode a message body: {e}");
        out.clear();
    }
    out
}

fn summary(item: Option<&Item>) -> String {
    item.map_or_else(|| "(no body)".to_owned(), Item::summary)
}

struct Task {
    reports: EventReports,
    mapper: RunEventMapper,
    alarms: GemAlarms,
    alarm_view: LatestReader<AlarmSnapshot>,
    alarm_defs: Arc<[AlarmDef]>,
    pps: ProcessPrograms,
    tracer: Tracer,
    traces: TraceReports,
    cfg: GemConfig,
    shared: Arc<Shared>,
    hsms: HsmsHandle,
    /// `None` after the session ended by itself, until it is restarted.
    hsms_events: Option<mpsc::Receiver<HsmsEvent>>,
    /// The timers the current HSMS session runs with.
    active_timers: HsmsTimers,
    control: Control,
    ecs: EquipmentConstants,
    engine: EngineHandle,
    /// The audit trail host commands are written to (source "host").
    guard: Option<Arc<crate::access::Guard>>,
    run_view: LatestReader<RunSnapshot>,
    run_events: Option<broadcast::Receiver<RunEvent>>,
    commands: mpsc::Receiver<Command>,
    internal_tx: mpsc::Sender<Internal>,
    internal: mpsc::Receiver<Internal>,
    /// Counts SELECTED connections, so an answer to an S1F13 of an earlier
    /// connection is not taken for this one.
    connection: u64,
    selected: bool,
    comm: CommState,
    s1f13_in_flight: bool,
    /// When to send S1F13 again (WAIT DELAY).
    next_s1f13: Option<Instant>,
    /// When to restart the HSMS session with changed timers.
    restart_at: Option<Instant>,
    limits: DecodeLimits,
}

impl Task {
    async fn run(mut self) {
        let mut alarm_poll = tokio::time::interval(ALARM_POLL);
        alarm_poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let retry = self.next_s1f13;
            let restart = self.restart_at;
            tokio::select! {
                event = recv_hsms(&mut self.hsms_events) => match event {
                    Some(HsmsEvent::Primary(m)) => self.on_primary(m).await,
                    Some(HsmsEvent::State(s)) => self.on_connection(s),
                    None => {
                        // The session ended without being asked to (it
                        // only ends on shutdown or restart): start again.
                        tracing::error!("GEM: the HSMS session ended; restarting it");
                        self.restart_at = Some(Instant::now() + Duration::from_secs(1));
                        self.hsms_events = None;
                    }
                },
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown(done)) => {
                        self.hsms.shutdown().await;
                        self.set_comm(CommState::Disabled);
                        // The caller may have stopped waiting: nothing lost.
                        let _ignored = done.send(());
                        return;
                    }
                    Some(c) => self.on_command(c),
                    None => {
                        self.hsms.shutdown().await;
                        return;
                    }
                },
                Some(internal) = self.internal.recv() => self.on_internal(internal),
                event = recv_run_event(&mut self.run_events) => self.on_run_event(event),
                _ = alarm_poll.tick() => {
                    self.shared
                        .status
                        .alive_ns
                        .store(crate::hot::now_ns(), Ordering::Relaxed);
                    self.poll_alarms()
                }
                Some(body) = self.traces.next_s6f1() => self.send_trace(body),
                _ = sleep_until(retry) => {
                    self.next_s1f13 = None;
                    self.send_s1f13();
                }
                _ = sleep_until(restart) => {
                    self.restart_at = None;
                    self.restart_session().await;
                }
            }
        }
    }

    // ---- communication state -------------------------------------------

    fn set_comm(&mut self, new: CommState) {
        if self.comm != new {
            tracing::info!("GEM communication: {} -> {}", self.comm.name(), new.name());
            self.comm = new;
            self.shared
                .status
                .communication
                .store(new.code(), Ordering::Relaxed);
        }
    }

    fn on_connection(&mut self, state: ConnectionState) {
        let selected = state == ConnectionState::Selected;
        if selected && !self.selected {
            self.connection += 1;
            self.selected = true;
            self.set_comm(CommState::NotCommunicating);
            // E30: on entering ENABLED / NOT COMMUNICATING the equipment
            // asks at once (a host that asks too is answered as well).
            self.next_s1f13 = None;
            self.send_s1f13();
        } else if !selected {
            self.selected = false;
            self.next_s1f13 = None;
            self.set_comm(CommState::NotCommunicating);
            if state == ConnectionState::NotConnected && self.ecs.timers() != self.active_timers {
                self.restart_at = Some(Instant::now());
            }
        }
    }

    fn send_s1f13(&mut self) {
        if self.s1f13_in_flight || !self.selected || self.comm == CommState::Communicating {
            return;
        }
        self.s1f13_in_flight = true;
        let connection = self.connection;
        self.request(1, 13, communication::mdln_softrev(), false, move |reply| {
            let commack = reply
                .ok()
                .and_then(|(m, item)| (m.function == 14).then_some(item))
                .and_then(|item| communication::commack_of_s1f14(item.as_ref()));
            Some(Internal::S1F13Answered {
                connection,
                commack,
            })
        });
    }

    fn on_internal(&mut self, internal: Internal) {
        match internal {
            Internal::S1F13Answered {
                connection,
                commack,
            } => {
                self.s1f13_in_flight = false;
                if connection != self.connection || !self.selected {
                    return;
                }
                if commack == Some(communication::COMMACK_ACCEPTED) {
                    self.set_comm(CommState::Communicating);
                } else if self.comm != CommState::Communicating {
                    // WAIT DELAY: ask again after EstablishCommunicationsTimeout.
                    self.next_s1f13 = Some(Instant::now() + self.ecs.establish_timeout());
                }
            }
            Internal::AttemptOnline { host_answered } => {
                self.control.attempt_finished(host_answered);
                self.control_changed();
            }
            Internal::T3Timeout(header) => {
                if self.comm == CommState::Communicating {
                    self.send(9, s9::TRANSACTION_TIMEOUT, Item::binary(header.to_vec()));
                }
            }
        }
    }

    // ---- control state and operator -------------------------------------

    fn control_changed(&mut self) {
        let code = self.control.state.code();
        let old = self.shared.status.control.swap(code, Ordering::Relaxed);
        if old != code {
            tracing::info!(
                "GEM control: {} -> {}",
                ControlState::from_code(old).map_or("?", |s| s.name()),
                self.control.state.name()
            );
            let reached = match self.control.state {
                ControlState::OnlineLocal => Some(ControlStateReached::OnlineLocal),
                ControlState::OnlineRemote => Some(ControlStateReached::OnlineRemote),
                ControlState::EquipmentOffline | ControlState::HostOffline => {
                    Some(ControlStateReached::Offline)
                }
                ControlState::AttemptOnline => None,
            };
            if let Some(reached) = reached {
                let (ce, data) = events::control_state_event(reached);
                self.emit(ce, &data);
            }
        }
    }

    fn persist(&self) {
        let state = Persisted::new(self.control.switches, &self.ecs);
        if let Err(e) = blocking(|| persisted::save(&self.cfg.state_file, &state)) {
            tracing::error!("GEM state not saved (it is in effect until the program stops): {e:#}");
        }
        *lock(&self.shared.switches) = self.control.switches;
    }

    fn on_command(&mut self, c: Command) {
        match c {
            Command::Online(online) => {
                if self.control.operator_online(online) {
                    self.attempt_online();
                }
                self.control_changed();
                self.persist();
            }
            Command::Remote(remote) => {
                self.control.operator_remote(remote);
                self.control_changed();
                self.persist();
            }
            Command::TerminalAcknowledged(m) => {
                tracing::info!("operator acknowledged the host's message: {:?}", m.text);
                let (ce, data) = events::message_recognition_event();
                self.emit(ce, &data);
            }
            Command::SendTerminal(text) => {
                if self.comm == CommState::Communicating && self.control.state.is_online() {
                    self.request(10, 1, terminal::s10f1(&text), true, |_| None);
                } else {
                    tracing::warn!(
                        "operator's message not sent: the host is not on-line: {text:?}"
                    );
                }
            }
            Command::Shutdown(_) => unreachable!("handled in run"),
        }
    }

    /// ATTEMPT ON-LINE: S1F1 to the host; S1F2 → on-line.
    fn attempt_online(&mut self) {
        if self.comm != CommState::Communicating {
            self.control.attempt_finished(false);
            return;
        }
        self.request(1, 1, Item::empty_list(), false, |reply| {
            Some(Internal::AttemptOnline {
                host_answered: matches!(reply, Ok((m, _)) if m.function == 2),
            })
        });
    }

    // ---- run engine ------------------------------------------------------

    fn on_run_event(&mut self, event: Option<RunEvent>) {
        let Some(event) = event else { return };
        if let RunEvent::Ended {
            status: crate::run::ExitStatus::Complete,
            ..
        } = event
        {
            self.shared
                .status
                .wafer_count
                .fetch_add(1, Ordering::Relaxed);
        }
        for (ce, data) in self.mapper.map(&event) {
            self.emit(ce, &data);
        }
    }

    /// A collection event happened: remembered for S6F15/S6F19 and, when
    /// the host enabled it and can hear it (communicating, on-line), sent
    /// as S6F11. E30 sends no events off-line; there is no spooling.
    fn emit(&mut self, ce: CollectionEvent, data: &EventData) {
        let vars: &dyn VariableSource = &*self.shared.variables;
        let Some(body) = self.reports.event_report(ce, data, vars) else {
            return;
        };
        if self.comm == CommState::Communicating && self.control.state.is_online() {
            self.request(6, 11, body, true, |_| None);
        } else {
            tracing::info!(
                "GEM: event {} not sent: {} / {}",
                ce.ceid(),
                self.comm.name(),
                self.control.state.name()
            );
        }
    }

    /// Alarm edges since the last look: S5F1 (alarms the host enabled)
    /// and the AlarmSet / AlarmCleared events.
    fn poll_alarms(&mut self) {
        if !self.alarm_view.has_fresh() {
            return;
        }
        let seen = self
            .alarm_view
            .read()
            .value
            .as_seen_at(crate::hot::now_ns(), &self.alarm_defs);
        for (edge, s5f1) in self.alarms.edges(&seen) {
            if let Some(body) = s5f1 {
                if self.comm == CommState::Communicating && self.control.state.is_online() {
                    self.request(5, 1, body, true, |_| None);
                } else {
                    tracing::info!(
                        "GEM: S5F1 for alarm {} not sent: the host is not on-line",
                        edge.alid
                    );
                }
            }
            let (ce, data) = edge.collection_event();
            self.emit(ce, &data);
        }
    }

    /// S6F1 trace data (sent with the W-bit: E5 lets the equipment ask
    /// for S6F2, and secsgem answers it either way).
    fn send_trace(&mut self, body: Item) {
        if self.comm == CommState::Communicating && self.control.state.is_online() {
            self.request(6, 1, body, true, |_| None);
        } else {
            tracing::warn!("GEM: trace sample group not sent: the host is not on-line");
        }
    }

    // ---- sending -----------------------------------------------------------

    /// Sends a primary without the W-bit (S9, or what needs no answer).
    fn send(&self, stream: u8, function: u8, item: Item) {
        let system = self.hsms.new_system();
        self.shared.log.record(
            Direction::Out,
            stream,
            function,
            false,
            system,
            item.summary(),
        );
        if let Err(e) = self
            .hsms
            .send_with_system(stream, function, encode(Some(&item)), system)
        {
            tracing::warn!("GEM: S{stream}F{function} not sent: {e}");
        }
    }

    /// Sends a primary with the W-bit on a task of its own; `then` turns
    /// the outcome into a report back to this task. With `s9f9`, a T3
    /// timeout is reported to the host (not for S1F13: while not
    /// communicating nothing but S1F13 may be sent).
    fn request(
        &self,
        stream: u8,
        function: u8,
        item: Item,
        s9f9: bool,
        then: impl FnOnce(Result<(DataMessage, Option<Item>), HsmsError>) -> Option<Internal>
            + Send
            + 'static,
    ) {
        let hsms = &self.hsms;
        let log = self.shared.log.clone();
        let internal = self.internal_tx.clone();
        let limits = self.limits;
        let session_id = self.cfg.session_id;
        let system = hsms.new_system();
        log.record(
            Direction::Out,
            stream,
            function,
            true,
            system,
            item.summary(),
        );
        // Queued now, in the order requests are made (S6F11s must reach
        // the host in the order their events happened); only the wait for
        // the reply runs on a task of its own.
        let started = hsms.begin_request(stream, function, encode(Some(&item)), system);
        tokio::spawn(async move {
            let result = match started {
                Ok(pending) => pending.reply().await,
                Err(e) => Err(e),
            };
            let result = result.map(|m| {
                let decoded = decode_body_with(&m.body, &limits);
                let text = match &decoded {
                    Ok(item) => summary(item.as_ref()),
                    Err(e) => format!("(undecodable: {e})"),
                };
                log.record(Direction::In, m.stream, m.function, m.w_bit, m.system, text);
                let item = decoded.ok().flatten();
                (m, item)
            });
            if let Err(e) = &result {
                tracing::warn!("GEM: S{stream}F{function} got no reply: {e}");
            }
            let timeout = matches!(result, Err(HsmsError::T3Timeout { .. }));
            let mut reports = Vec::with_capacity(2);
            reports.extend(then(result));
            if timeout && s9f9 {
                let header = DataMessage {
                    session_id,
                    stream,
                    function,
                    w_bit: true,
                    system,
                    body: Vec::new(),
                }
                .header_bytes();
                reports.push(Internal::T3Timeout(header));
            }
            for r in reports {
                if internal.send(r).await.is_err() {
                    // The task has ended (shutdown): nothing waits for it.
                    break;
                }
            }
        });
    }

    /// Answers `primary` (only if it asked, with the W-bit; S10F3/S10F5
    /// always: secsgem 0.3.0, a common host library, sends its terminal
    /// display without the W-bit yet waits T3 for the S10F4, and an answer
    /// nobody waits for is dropped harmlessly by the host's HSMS layer).
    fn reply(&self, primary: &DataMessage, function: u8, item: Option<&Item>) {
        let terminal = primary.stream == 10 && matches!(primary.function, 3 | 5) && function != 0;
        if !primary.w_bit && !terminal {
            return;
        }
        self.shared.log.record(
            Direction::Out,
            primary.stream,
            function,
            false,
            primary.system,
            summary(item),
        );
        if let Err(e) = self.hsms.reply(primary, function, encode(item)) {
            tracing::warn!("GEM: reply to {primary} not sent: {e}");
        }
    }

    fn s9(&self, function: u8, primary: &DataMessage, why: &str) {
        tracing::warn!("GEM: S9F{function} for {primary}: {why}");
        self.send(9, function, s9::header_body(primary));
    }

    // ---- dispatch ------------------------------------------------------------

    async fn on_primary(&mut self, m: DataMessage) {
        let decoded = decode_body_with(&m.body, &self.limits);
        let text = match &decoded {
            Ok(item) => summary(item.as_ref()),
            Err(e) => format!("(undecodable: {e})"),
        };
        self.shared
            .log
            .record(Direction::In, m.stream, m.function, m.w_bit, m.system, text);
        let body = match decoded {
            Ok(body) => body,
            Err(e) => return self.s9(s9::ILLEGAL_DATA, &m, &e.to_string()),
        };
        if m.session_id != self.cfg.session_id {
            return self.s9(
                s9::UNRECOGNIZED_DEVICE_ID,
                &m,
                &format!(
                    "device id {} (ours is {})",
                    m.session_id, self.cfg.session_id
                ),
            );
        }
        if !s9::known_stream(m.stream) {
            return self.s9(s9::UNRECOGNIZED_STREAM, &m, "stream not handled");
        }
        let sf = (m.stream, m.function);
        if self.comm != CommState::Communicating && sf != (1, 13) {
            tracing::warn!("GEM: {m} while not communicating: aborted");
            return self.reply(&m, 0, None);
        }
        if !self.control.state.is_online() && sf != (1, 13) && sf != (1, 17) {
            tracing::warn!("GEM: {m} while {}: aborted", self.control.state.name());
            return self.reply(&m, 0, None);
        }
        let body = body.as_ref();
        let result: Option<Result<Item, IllegalData>> = match sf {
            (1, 1) => Some(Ok(communication::mdln_softrev())),
            (1, 3) => Some(variables::s1f3(
                body,
                &*self.shared.variables as &dyn VariableSource,
            )),
            (1, 11) => Some(variables::s1f11(body)),
            (1, 13) => Some(match communication::check_s1f13(body) {
                Ok(()) => {
                    // Also when we wait for the host's answer to our own
                    // S1F13: both asked, both are answered, and we are
                    // communicating either way.
                    self.set_comm(CommState::Communicating);
                    self.next_s1f13 = None;
                    Ok(communication::s1f14(communication::COMMACK_ACCEPTED))
                }
                Err(e) => Err(e),
            }),
            (1, 15) => Some(match body {
                None => {
                    let a = self.control.host_offline();
                    self.control_changed();
                    self.audit_host("host_offline", "", ack_outcome(a));
                    Ok(Item::binary_byte(a))
                }
                Some(_) => Err(IllegalData::new("S1F15 has no body")),
            }),
            (1, 17) => Some(match body {
                None => {
                    let a = self.control.host_online();
                    self.control_changed();
                    self.audit_host("host_online", "", ack_outcome(a));
                    Ok(Item::binary_byte(a))
                }
                Some(_) => Err(IllegalData::new("S1F17 has no body")),
            }),
            (2, 13) => Some(ec::s2f13(body, &self.ecs)),
            (2, 15) => Some(self.audited("host_set_constants", body, |t| t.set_constants(body))),
            (2, 17) => Some(match body {
                None => Ok(clock::s2f18(
                    &self.shared.status.clock,
                    self.ecs.time_format(),
                )),
                Some(_) => Err(IllegalData::new("S2F17 has no body")),
            }),
            (2, 29) => Some(ec::s2f29(body)),
            (2, 31) => Some(clock::s2f31(body, &self.shared.status.clock)),
            (2, 41) => Some(self.remote_command(body).await),
            (2, 23) => Some(with_body(body, "S2F23", |b| self.tracer.initialize(b))),
            (2, 33) => {
                Some(self.audited("host_define_reports", body, |t| t.change_reports(body, 33)))
            }
            (2, 35) => Some(self.audited("host_link_events", body, |t| t.change_reports(body, 35))),
            (2, 37) => {
                Some(self.audited("host_enable_events", body, |t| t.change_reports(body, 37)))
            }
            (5, 3) => Some(self.audited("host_enable_alarms", body, |t| {
                with_body(body, "S5F3", |b| t.alarms.enable(b))
            })),
            (5, 5) => Some(with_body(body, "S5F5", |b| self.alarms.list(b))),
            (5, 7) => Some(Ok(self.alarms.list_enabled())),
            (6, 15) => Some(with_body(body, "S6F15", |b| {
                self.reports
                    .event_report_request(b, &*self.shared.variables as &dyn VariableSource)
            })),
            (6, 19) => Some(with_body(body, "S6F19", |b| {
                self.reports
                    .individual_report_request(b, &*self.shared.variables as &dyn VariableSource)
            })),
            (7, 1) => Some(with_body(body, "S7F1", |b| self.pps.load_inquire(b))),
            (7, 3) => Some(self.change_programs(body, 3)),
            (7, 5) => Some(with_body(body, "S7F5", |b| blocking(|| self.pps.upload(b)))),
            (7, 17) => Some(self.change_programs(body, 17)),
            (7, 19) => Some(Ok(blocking(|| self.pps.list()))),
            (10, 3) => Some(self.audited("host_terminal_message", body, |t| {
                lock(&t.shared.terminal).s10f3(body)
            })),
            (10, 5) => Some(lock(&self.shared.terminal).s10f5(body)),
            _ => None,
        };
        match result {
            Some(Ok(item)) => self.reply(&m, m.function + 1, Some(&item)),
            Some(Err(why)) => self.s9(s9::ILLEGAL_DATA, &m, &why.0),
            None => self.s9(s9::UNRECOGNIZED_FUNCTION, &m, "function not handled"),
        }
    }

    /// S2F33/35/37: the report set changes; kept across restarts.
    fn change_reports(&mut self, body: Option<&Item>, function: u8) -> Result<Item, IllegalData> {
        let body = body.ok_or_else(|| IllegalData::new(format!("S2F{function} needs a body")))?;
        let vars: &dyn VariableSource = &*self.shared.variables;
        let reply = match function {
            33 => self.reports.define_reports(body, vars)?,
            35 => self.reports.link_reports(body)?,
            _ => self.reports.enable_events(body)?,
        };
        if reply.as_binary_byte() == Some(0) {
            let path = &self.cfg.reports_file;
            let text = self.reports.to_toml();
            let saved = blocking(|| write_atomically(path, text.as_bytes()));
            if let Err(e) = saved {
                tracing::error!(
                    "GEM: reports not saved to {} (in effect until the program stops): {e}",
                    path.display()
                );
            }
        }
        Ok(reply)
    }

    /// S7F3 download / S7F17 delete, then the process program change
    /// events they made.
    /// Runs a host message that changes the station and writes it to the
    /// audit trail: its body (the start of it) and its acknowledge code.
    fn audited(
        &mut self,
        what: &str,
        body: Option<&Item>,
        handle: impl FnOnce(&mut Self) -> Result<Item, IllegalData>,
    ) -> Result<Item, IllegalData> {
        let reply = handle(self);
        let outcome = match &reply {
            Ok(item) => ack_outcome(item.as_binary_byte().unwrap_or(u8::MAX)),
            Err(e) => Err(format!("illegal data: {e:?}")),
        };
        let params: String = body.map_or_else(String::new, |b| {
            format!("{b:?}").chars().take(200).collect()
        });
        self.audit_host(what, &params, outcome);
        reply
    }

    /// Writes a host command and its outcome to the audit trail.
    fn audit_host(&self, what: &str, params: &str, outcome: Result<(), String>) {
        if let Some(guard) = &self.guard {
            guard.record(&crate::access::Actor::host(), what, params, &outcome);
        }
    }

    fn change_programs(&mut self, body: Option<&Item>, function: u8) -> Result<Item, IllegalData> {
        // Read before the change: the recipe's old contents' hash.
        let params = match (function, body) {
            (3, Some(b)) => blocking(|| self.pps.describe_download(b)),
            (_, Some(b)) => format!("{b:?}").chars().take(200).collect(),
            (_, None) => String::new(),
        };
        let reply = self.change_programs_unaudited(body, function);
        let what = if function == 3 {
            "host_recipe_download"
        } else {
            "host_recipe_delete"
        };
        let outcome = match &reply {
            Ok(item) => ack_outcome(item.as_binary_byte().unwrap_or(u8::MAX)),
            Err(e) => Err(format!("illegal data: {e:?}")),
        };
        self.audit_host(what, &params, outcome);
        reply
    }

    fn change_programs_unaudited(
        &mut self,
        body: Option<&Item>,
        function: u8,
    ) -> Result<Item, IllegalData> {
        let body = body.ok_or_else(|| IllegalData::new(format!("S7F{function} needs a body")))?;
        // Parsing the recipe (maybe decoding its reference image), fsync
        // and directory I/O: off the shared worker (see `blocking`).
        let reply = blocking(|| {
            if function == 3 {
                self.pps.download(body)
            } else {
                self.pps.delete(body)
            }
        })?;
        for (ce, data) in self.pps.take_changes() {
            self.emit(ce, &data);
        }
        Ok(reply)
    }

    fn set_constants(&mut self, body: Option<&Item>) -> Result<Item, IllegalData> {
        let reply = ec::s2f15(body, &mut self.ecs)?;
        if reply.as_binary_byte() == Some(ec::EAC_OK) {
            self.shared
                .status
                .time_format
                .store(self.ecs.time_format(), Ordering::Relaxed);
            self.persist();
            if self.ecs.timers() != self.active_timers {
                tracing::info!("GEM: HSMS timers changed; in effect from the next connection");
                if !self.selected && self.hsms.state() == ConnectionState::NotConnected {
                    self.restart_at = Some(Instant::now());
                }
            }
        }
        Ok(reply)
    }

    /// Starts the HSMS session again with the timers now set (only while
    /// there is no connection).
    async fn restart_session(&mut self) {
        // A session that ended by itself has no connection either.
        if self.hsms_events.is_some() && self.hsms.state() != ConnectionState::NotConnected {
            return;
        }
        self.hsms.shutdown().await;
        let timers = self.ecs.timers();
        match Hsms::start(hsms_config(&self.cfg, timers)).await {
            Ok((hsms, events)) => {
                tracing::info!("GEM: HSMS session restarted with the new timers");
                *lock(&self.shared.local_addr) = hsms.local_addr();
                self.hsms = hsms;
                self.hsms_events = Some(events);
                self.active_timers = timers;
                self.selected = false;
            }
            Err(e) => {
                tracing::error!(
                    "GEM: restarting HSMS ({}) failed, retrying in 1 s: {e}",
                    describe(&self.cfg.mode)
                );
                self.restart_at = Some(Instant::now() + Duration::from_secs(1));
            }
        }
    }

    // ---- remote commands ---------------------------------------------------

    async fn remote_command(&mut self, body: Option<&Item>) -> Result<Item, IllegalData> {
        let parsed = rc::parse(body)?;
        let what = match &parsed {
            Ok(cmd) => format!("{cmd:?}"),
            Err(_) => "unknown or malformed command".to_owned(),
        };
        let mut local = false;
        let outcome = match parsed {
            Err(refusal) => Err(refusal),
            // E30: in ONLINE LOCAL the operator keeps control.
            Ok(_) if self.control.state != ControlState::OnlineRemote => {
                local = true;
                Err(Refusal::new(rc::HCACK_CANNOT_NOW))
            }
            Ok(cmd) => self.execute(cmd).await,
        };
        let audited = match &outcome {
            Ok(()) => Ok(()),
            Err(_) if local => Err("ONLINE LOCAL: the operator keeps control".to_owned()),
            Err(r) => Err(format!("HCACK {}", r.hcack)),
        };
        self.audit_host("host_remote_command", &what, audited);
        Ok(match outcome {
            Ok(()) => rc::s2f42(rc::HCACK_OK, &[]),
            Err(r) => rc::s2f42(r.hcack, &r.params),
        })
    }

    async fn execute(&mut self, cmd: RemoteCommand) -> Result<(), Refusal> {
        let state = self.run_view.read().value.state;
        let engine = self.engine.clone();
        let refused = |what: &str, why: String| {
            tracing::warn!("GEM: remote {what} refused by the run engine: {why}");
            Refusal::new(rc::HCACK_CANNOT_NOW)
        };
        let (run_cmd, already) = match cmd {
            RemoteCommand::Start { lot, wafer, recipe } => {
                return self.start(state, &lot, &wafer, &recipe).await;
            }
            RemoteCommand::Pause => (
                RunCommand::Pause,
                matches!(state, RunState::Pausing | RunState::Paused),
            ),
            RemoteCommand::Resume => (RunCommand::Resume, state == RunState::Running),
            RemoteCommand::Stop => (RunCommand::Stop, state == RunState::Stopping),
            RemoteCommand::Abort => (
                RunCommand::Abort {
                    reason: "host remote command ABORT".into(),
                },
                state == RunState::Aborting,
            ),
        };
        if already {
            return Err(Refusal::new(rc::HCACK_ALREADY));
        }
        let what = format!("{:?}", run_cmd.kind());
        engine
            .command_async(run_cmd)
            .await
            .map_err(|why| refused(&what, why))
    }

    async fn start(
        &mut self,
        state: RunState,
        lot: &str,
        wafer: &str,
        recipe_name: &str,
    ) -> Result<(), Refusal> {
        // The same id rules as the window's run control and `waferscope run`.
        let mut bad = Refusal::new(rc::HCACK_BAD_PARAMETER);
        let lot_ok = crate::run::ids::check_identity(lot, "W", 1, "host");
        let wafer_ok = crate::run::ids::check_identity("L", wafer, 1, "host");
        for (name, r) in [("LOTID", &lot_ok), ("WAFERID", &wafer_ok)] {
            if let Err(why) = r {
                tracing::warn!("GEM: START {name}: {why}");
                bad.params.push((name.to_owned(), rc::CPACK_ILLEGAL_VALUE));
            }
        }
        // Refused before the recipe is looked for: finding it may parse
        // every recipe file, work a host repeating START mid-run should not
        // cause.
        if state.in_run() {
            return Err(Refusal::new(rc::HCACK_CANNOT_NOW));
        }
        let recipes = &self.cfg.recipes;
        let (path, loaded) = blocking(|| {
            let path = rc::find_recipe(recipes, recipe_name);
            let loaded = path.as_deref().map(recipe::load);
            (path, loaded)
        });
        let recipe = match (&path, loaded) {
            (None, _) | (_, None) => {
                tracing::warn!(
                    "GEM: START RECIPE {recipe_name:?}: no such recipe in {}",
                    self.cfg.recipes.display()
                );
                None
            }
            (Some(_), Some(Ok(r))) => Some(r),
            (Some(_), Some(Err(e))) => {
                tracing::warn!("GEM: START RECIPE {recipe_name:?}: {e:#}");
                None
            }
        };
        if recipe.is_none() {
            bad.params
                .push(("RECIPE".to_owned(), rc::CPACK_ILLEGAL_VALUE));
        }
        let (Some(recipe), Ok(_), Ok(_)) = (recipe, &lot_ok, &wafer_ok) else {
            return Err(bad);
        };
        let identity = crate::run::ids::check_identity(lot, wafer, 1, "host")
            .map_err(|_| bad)?
            .identity;
        let refused = |what: &str, why: String| {
            tracing::warn!("GEM: remote START refused ({what}): {why}");
            Refusal::new(rc::HCACK_CANNOT_NOW)
        };
        // A host-driven tool: the previous run's end was reported to the
        // host, which starting the next wafer acknowledges (a fault still
        // needs the operator).
        if matches!(state, RunState::Complete | RunState::Aborted) {
            self.engine
                .command_async(RunCommand::Acknowledge)
                .await
                .map_err(|why| refused("acknowledging the previous run", why))?;
        }
        self.engine
            .load_async(recipe, identity)
            .await
            .map_err(|why| refused("loading the recipe", why))?;
        self.engine
            .command_async(RunCommand::Start)
            .await
            .map_err(|why| refused("start", why))
    }
}

/// What GEM kept from before: switches, constants and report definitions;
/// the defaults for a missing file or one set aside as damaged.
fn load_state(cfg: &GemConfig) -> Result<(persisted::Persisted, EquipmentConstants, EventReports)> {
    // A damaged state file must not keep the station from starting: it is
    // set aside for the operator and GEM starts with the defaults.
    let (saved, ecs) = match persisted::load(&cfg.state_file).and_then(|saved| {
        let ecs = saved.constants(&cfg.state_file)?;
        Ok((saved, ecs))
    }) {
        Ok(ok) => ok,
        Err(e) => {
            set_aside_damaged(&cfg.state_file, &e)?;
            (
                persisted::Persisted::default(),
                EquipmentConstants::default(),
            )
        }
    };
    let reports = match std::fs::read_to_string(&cfg.reports_file) {
        Ok(text) => match EventReports::from_toml(&text)
            .with_context(|| format!("{}: not a GEM reports file", cfg.reports_file.display()))
        {
            Ok(r) => r,
            Err(e) => {
                set_aside_damaged(&cfg.reports_file, &e)?;
                EventReports::new()
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => EventReports::new(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", cfg.reports_file.display())),
    };
    Ok((saved, ecs, reports))
}

/// `serve --t3/--t5`: set over the saved constants and saved with them
/// (docs/gem.md says so); a failed save is logged, the values still apply.
fn apply_serve_timers(
    cfg: &GemConfig,
    saved: &persisted::Persisted,
    ecs: &mut EquipmentConstants,
) -> Result<()> {
    let mut changed = false;
    for (id, t) in [(ec::EC_T3, cfg.t3), (ec::EC_T5, cfg.t5)] {
        if let Some(t) = t {
            ecs.set(id, t.as_secs_f64())
                .map_err(|e| anyhow::anyhow!("GEM timers: {e}"))?;
            changed = true;
        }
    }
    if changed {
        let state = persisted::Persisted::new(saved.switches, ecs);
        if let Err(e) = persisted::save(&cfg.state_file, &state) {
            tracing::error!("GEM: --t3/--t5 not saved (in effect until the program stops): {e:#}");
        }
    }
    Ok(())
}

/// A state file GEM cannot read: renamed to `<name>.bad-<unix-secs>`
/// (never lost) and logged with the parse error. Only failing to move it is
/// an error, since the defaults would otherwise overwrite it on next save.
fn set_aside_damaged(path: &std::path::Path, why: &anyhow::Error) -> Result<()> {
    let aside = set_aside(path).with_context(|| {
        format!(
            "{} is damaged ({why:#}) and cannot be set aside",
            path.display()
        )
    })?;
    tracing::error!(
        "GEM: {} is damaged ({why:#}); kept as {}, starting with the defaults",
        path.display(),
        aside.display()
    );
    Ok(())
}

/// Runs file I/O or parsing from the GEM task. The station's runtime has
/// ONE worker, shared with the run engine: blocking it would stall the run.
/// `block_in_place` hands the worker's other tasks to another thread while
/// `f` runs, and the dispatcher still waits for `f`, so messages are handled
/// in order as before. It needs the multi-thread runtime, which is the only
/// one GEM runs on (`Station::start_gem`; test hosts on `current_thread`
/// runtimes are the other side of the link).
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    tokio::task::block_in_place(f)
}

/// The session's next event; never, while there is no session.
async fn recv_hsms(rx: &mut Option<mpsc::Receiver<HsmsEvent>>) -> Option<HsmsEvent> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Runs `f` on the body, or says the message needs one.
fn with_body(
    body: Option<&Item>,
    what: &str,
    f: impl FnOnce(&Item) -> Result<Item, IllegalData>,
) -> Result<Item, IllegalData> {
    f(body.ok_or_else(|| IllegalData::new(format!("{what} needs a body")))?)
}

async fn recv_run_event(rx: &mut Option<broadcast::Receiver<RunEvent>>) -> Option<RunEvent> {
    let Some(r) = rx else {
        return std::future::pending().await;
    };
    match r.recv().await {
        Ok(e) => Some(e),
        Err(broadcast::error::RecvError::Lagged(n)) => {
            tracing::error!("GEM: {n} run events missed (GEM task behind)");
            None
        }
        Err(broadcast::error::RecvError::Closed) => {
            tracing::warn!("GEM: the run engine's events ended");
            *rx = None;
            None
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// A SECS acknowledge code as an audited outcome: 0 accepted, anything
/// else refused with the code.
fn ack_outcome(code: u8) -> Result<(), String> {
    if code == 0 {
        Ok(())
    } else {
        Err(format!("acknowledge code {code}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_state_files_are_set_aside_and_gem_starts_with_defaults() {
        let dir = std::env::temp_dir().join(format!("gem-load-state-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cfg = GemConfig::new(
            HsmsMode::Passive {
                listen: "127.0.0.1:0".parse().unwrap(),
            },
            &dir,
            &dir,
            dir.clone(),
        );
        // Truncated mid-write (the old non-atomic save could leave this).
        let state = "[switches]\nonline = true\nremo";
        let reports = "[[report]]\nrptid = ";
        std::fs::write(&cfg.state_file, state).unwrap();
        std::fs::write(&cfg.reports_file, reports).unwrap();
        let (saved, ecs, _reports) = load_state(&cfg).unwrap();
        assert_eq!(saved, persisted::Persisted::default());
        assert_eq!(ecs, EquipmentConstants::default());
        assert!(!cfg.state_file.exists());
        assert!(!cfg.reports_file.exists());
        let mut aside: Vec<(String, String)> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read_to_string(e.path()).unwrap())
            })
            .collect();
        aside.sort();
        assert_eq!(aside.len(), 2, "{aside:?}");
        assert!(aside[0].0.starts_with("gem-reports.toml.bad-"), "{aside:?}");
        assert_eq!(aside[0].1, reports);
        assert!(aside[1].0.starts_with("gem.toml.bad-"), "{aside:?}");
        assert_eq!(aside[1].1, state);
        // A constant out of range is damage too, not a refusal to start.
        std::fs::write(
            &cfg.state_file,
            "[switches]\nonline = true\nremote = false\n[equipment_constants]\n\"2003\" = 900.0\n",
        )
        .unwrap();
        let (saved, _, _) = load_state(&cfg).unwrap();
        assert_eq!(saved, persisted::Persisted::default());
        assert!(!cfg.state_file.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn serve_timers_are_saved_at_start() {
        let dir = std::env::temp_dir().join(format!("gem-serve-timers-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut cfg = GemConfig::new(
            HsmsMode::Passive {
                listen: "127.0.0.1:0".parse().unwrap(),
            },
            &dir,
            &dir,
            dir.clone(),
        );
        cfg.t3 = Some(Duration::from_secs(17));
        cfg.t5 = Some(Duration::from_secs(4));
        let (saved, mut ecs, _) = load_state(&cfg).unwrap();
        apply_serve_timers(&cfg, &saved, &mut ecs).unwrap();
        // What the next start reads back.
        let (_, back, _) = load_state(&cfg).unwrap();
        assert_eq!(back.get(ec::EC_T3), Some(17.0));
        assert_eq!(back.get(ec::EC_T5), Some(4.0));
        assert_eq!(back, ecs);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
