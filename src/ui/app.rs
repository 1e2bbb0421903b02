//! The app shell: reads the snapshots once per frame (numbers once a
//! second), drains run events and trends within a time budget, lays out
//! the fixed regions, and applies the panels' commands after the UI pass.

use super::alarms::AlarmPanel;
use super::command::UiCommand;
use super::heartbeat::HeartbeatPanel;
use super::history::HistoryPanel;
use super::live_view::LiveView;
use super::run_control::RunControl;
use super::view::{Health, LinkRow, View};
use super::wafer_map::WaferMapState;
use super::{health, look, simulator, status_strip, thread_time, wafer_map};
use crate::hot::{alloc_count, LatencyHistogram, LatestReader};
use crate::monitor::trend::TrendRings;
use crate::monitor::{AlarmSnapshot, MachineSnapshot};
use crate::run::{RunEvent, RunSnapshot, RunState};
use crate::station::commands::SimulatorFault;
use crate::station::Station;
use std::time::{Duration, Instant};
use tokio::sync::broadcast;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Overview,
    History,
    Heartbeat,
    Alarms,
    Carrier,
    Lots,
    Health,
    Host,
    Recipes,
    Users,
    Simulator,
}

pub struct StationApp {
    pub station: Station,
    machine: LatestReader<MachineSnapshot>,
    alarms: LatestReader<AlarmSnapshot>,
    run: LatestReader<RunSnapshot>,
    lot: LatestReader<crate::run::lot::LotSnapshot>,
    events: broadcast::Receiver<RunEvent>,
    pub tab: Tab,
    pub run_control: RunControl,
    pub carrier_panel: super::carrier::CarrierPanel,
    pub lot_view: super::lot_view::LotView,
    /// A lot was running at the last frame (its end opens the lot view).
    lot_was_running: bool,
    alarm_panel: AlarmPanel,
    live_view: LiveView,
    pub map: WaferMapState,
    pub heartbeat: HeartbeatPanel,
    pub history: HistoryPanel,
    trends: Box<TrendRings>,
    machine_slow: MachineSnapshot,
    run_slow: RunSnapshot,
    health: Health,
    last_slow: Option<Instant>,
    last_counts: (u64, u64, Vec<(&'static str, u64)>, Instant),
    /// The wall-clock second this frame shows (clock and liveness tick).
    shown_second: super::clock::WallSecond,
    /// Wakes the idle window on an alarm or run change (started with the
    /// first frame, which brings egui's context).
    waker: Option<super::waker::Waker>,
    /// Our own `show()` only: thread CPU time of each call (not egui's
    /// tessellation, texture upload or painting; see `frame_stats`).
    pub frame_time: LatencyHistogram,
    /// The whole frame as eframe runs it, and the gaps between frames
    /// (recorded by the `eframe::App` wrappers, which see `Frame::info`).
    pub frame_stats: super::frame_stats::FrameStats,
    /// The repaint delay the last pass asked egui for (0: at once): a
    /// frame is late only beyond it.
    pub repaint_asked: Duration,
    pending: Vec<(String, flume::Receiver<Result<(), String>>)>,
    /// Recipe loaded into the engine (its map is shown).
    loaded: Option<crate::run::ValidRecipe>,
    gallery: super::gallery::Gallery,
    /// Logs UI thread stalls over 0.5 s (HMI rule 11).
    watchdog: super::watchdog::UiWatchdog,
    /// The fab host's link, when the station has one (`--gem`).
    gem: Option<crate::host::gem::GemHandle>,
    /// The overview's "export a recorded run".
    pub export_picker: super::export_run::ExportPicker,
    /// Exports under way, each answering with its path or why not.
    exports: Vec<flume::Receiver<Result<String, String>>>,
    /// Who is signed in, and what they may do.
    pub session: super::session::Session,
    pub recipe_editor: super::recipe_editor::RecipeEditor,
    pub users_panel: super::users_panel::UsersPanel,
}

impl StationApp {
    pub fn new(station: Station) -> anyhow::Result<Self> {
        let recipes = station.recipe_files();
        let history = HistoryPanel::new(station.cfg.db.clone(), station.cfg.thumbnails.clone());
        Ok(Self {
            machine: reader(station.monitor.snapshots.reader())?,
            alarms: reader(station.alarms.snapshots.reader())?,
            run: reader(station.engine.snapshots.reader())?,
            lot: reader(station.carrier.snapshots.reader())?,
            events: station.engine.events.subscribe(),
            station,
            tab: Tab::Overview,
            run_control: RunControl::new(recipes),
            carrier_panel: Default::default(),
            lot_view: Default::default(),
            lot_was_running: false,
            alarm_panel: AlarmPanel::default(),
            live_view: LiveView::default(),
            map: WaferMapState::default(),
            heartbeat: HeartbeatPanel::default(),
            history,
            trends: Box::default(),
            machine_slow: MachineSnapshot::default(),
            run_slow: RunSnapshot::default(),
            health: Health::default(),
            last_slow: None,
            last_counts: (0, 0, Vec::new(), Instant::now()),
            shown_second: super::clock::WallSecond::now(),
            waker: None,
            frame_time: LatencyHistogram::new(),
            frame_stats: Default::default(),
            repaint_asked: Duration::ZERO,
            pending: Vec::new(),
            loaded: None,
            gallery: Default::default(),
            watchdog: super::watchdog::UiWatchdog::start(super::watchdog::STALL_THRESHOLD),
            gem: None,
            export_picker: Default::default(),
            exports: Vec::new(),
            session: Default::default(),
            recipe_editor: Default::default(),
            users_panel: Default::default(),
        })
    }

    /// The window with the station's host link (its Host panel and the
    /// host's states in the status strip).
    pub fn with_gem(mut self, gem: crate::host::gem::GemHandle) -> Self {
        self.gem = Some(gem);
        self
    }

    /// What the Host panel and the status strip show of GEM this frame.
    /// The log tail is read only while the Host panel is open.
    fn host_view(&self, now_ns: u64) -> Option<super::host::HostView> {
        let g = self.gem.as_ref()?;
        let alive = g.alive_ns();
        Some(super::host::HostView {
            communication: g.communication_state(),
            control: g.control_state(),
            switches: g.switches(),
            age_ns: if alive == 0 {
                0
            } else {
                now_ns.saturating_sub(alive)
            },
            terminal: g.terminal_messages(),
            log: if self.tab == Tab::Host {
                g.secs_log_tail(super::host::LOG_LINES)
            } else {
                Vec::new()
            },
            log_not_written: g.secs_log().dropped() + g.secs_log().write_failures(),
            listening: g.local_addr(),
        })
    }

    /// Work between frames: run events and trends, drained within a time
    /// budget so a burst never stalls the UI.
    pub fn logic(&mut self, ctx: &egui::Context) {
        let budget = Instant::now() + Duration::from_millis(3);
        loop {
            match self.events.try_recv() {
                Ok(RunEvent::Started { run_id, .. }) => self.map.restart(run_id),
                Ok(RunEvent::DieDone { result, .. }) => self.map.apply(&result),
                Ok(RunEvent::Repeaters { marks }) => self.map.apply_repeaters(&marks),
                Ok(RunEvent::Ended { .. }) => self.map.finish(),
                Ok(_) => {}
                Err(broadcast::error::TryRecvError::Lagged(n)) => {
                    tracing::warn!("UI missed {n} run events")
                }
                Err(_) => break,
            }
            if Instant::now() > budget {
                ctx.request_repaint();
                self.repaint_asked = Duration::ZERO;
                break;
            }
        }
        while let Ok(p) = self.station.monitor.trends.try_recv() {
            if let Some(r) = self.trends.get_mut(p.signal as usize) {
                r.push(p);
            }
            if Instant::now() > budget {
                break;
            }
        }
        self.pending.retain(|(what, rx)| match rx.try_recv() {
            Ok(r) => {
                // `what` is the sentence for the request's success.
                self.run_control.message = Some(r.map(|_| what.clone()));
                false
            }
            Err(flume::TryRecvError::Empty) => true,
            Err(_) => false,
        });
        self.lot_view.poll();
        self.exports.retain(|rx| match rx.try_recv() {
            Ok(answer) => {
                self.run_control.message = Some(answer);
                false
            }
            Err(flume::TryRecvError::Empty) => true,
            Err(flume::TryRecvError::Disconnected) => {
                self.run_control.message = Some(Err("an export ended without an answer".into()));
                false
            }
        });
        let live = self.station.live_pipeline();
        if let Some(l) = &live {
            self.live_view.refresh(ctx, &l.display);
        }
        self.gallery.poll(ctx);
        self.history.poll(ctx);
    }

    fn view(&mut self) -> View {
        // Every picture is taken as it is now: a poller or evaluator that
        // stopped shows LOST rows and the "stopped" alarm, never its last
        // good state.
        let now_ns = crate::hot::now_ns();
        let machine = self.machine.read().value.as_seen_at(now_ns);
        let alarms = self
            .alarms
            .read()
            .value
            .as_seen_at(now_ns, &self.station.alarm_defs);
        let run = self.run.read().value;
        let now = Instant::now();
        if self
            .last_slow
            .is_none_or(|t| now - t >= Duration::from_secs(1))
        {
            self.last_slow = Some(now);
            self.machine_slow = machine;
            self.run_slow = run;
            self.refresh_health(now);
        }
        // The tick and the clock turn on the same second, the one the idle
        // window's next frame is timed from (one reading of the clock).
        self.shown_second = super::clock::WallSecond::now();
        let unix_s = self.shown_second.unix_s;
        View {
            now_ns,
            clock: super::clock::local_clock_text(unix_s),
            tick: unix_s % 2 == 0,
            machine,
            machine_slow: self.machine_slow,
            alarms,
            run,
            run_slow: self.run_slow,
            defs: self.station.alarm_defs.clone(),
            health: self.health.clone(),
            host: self.host_view(now_ns),
            lot: self.lot.read().value,
            permits: self.session.permits.clone(),
            signed_in: self
                .session
                .user
                .as_ref()
                .map(|u| format!("{} ({})", u.name, u.role)),
        }
    }

    fn refresh_health(&mut self, now: Instant) {
        let live = self.station.live_pipeline();
        let threads = alloc_count::hot_threads();
        let dt = (now - self.last_counts.3).as_secs_f64().max(1e-3);
        let mut h = Health {
            ui_frame_p50_ms: self.frame_time.quantile(0.5) as f64 / 1e6,
            ui_frame_p99_ms: self.frame_time.quantile(0.99) as f64 / 1e6,
            ui_whole_frame_p99_ms: self.frame_stats.eframe_frame.quantile(0.99) as f64 / 1e6,
            ui_late_max_ms: self
                .frame_stats
                .latest()
                .map_or(0.0, |w| w.late.as_secs_f64() * 1e3),
            ui_stalls: self.watchdog.figures(),
            ui_watchdog_running: self.watchdog.is_running(),
            links: self
                .station
                .io_links
                .iter()
                .map(|(name, l)| LinkRow {
                    name: name.clone(),
                    connected: l.connected.load(std::sync::atomic::Ordering::Relaxed),
                    connects: l.connects.get(),
                    timeouts: l.timeouts.get(),
                    drops: l.drops.get(),
                    exceptions: l.exceptions.get(),
                })
                .collect(),
            ..Health::default()
        };
        h.allocs_per_s = threads
            .iter()
            .map(|(name, a, _)| {
                let before = self
                    .last_counts
                    .2
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|x| x.1)
                    .unwrap_or(*a);
                (*name, (a - before.min(*a)) as f64 / dt)
            })
            .collect();
        if let Some(l) = live {
            let t = &l.telemetry;
            let frames = t.dies_inspected.get();
            let px = t.pixels_inspected.get();
            // A new wafer starts a new pipeline whose counters start at 0.
            let (f0, p0) = if frames < self.last_counts.0 {
                (0, 0)
            } else {
                (self.last_counts.0, self.last_counts.1)
            };
            h.frames_per_s = (frames - f0) as f64 / dt;
            h.mpix_per_s = px.saturating_sub(p0) as f64 / dt / 1e6;
            h.queue_depth = t.queue_depth.get();
            h.pool_in_use = l.pool.in_use();
            h.pool_capacity = l.pool.capacity();
            h.drops = t.drops.get();
            h.stall_ms = t.stall_ns.get() as f64 / 1e6;
            h.handoff_p50_us = t.handoff_latency.quantile(0.5) as f64 / 1e3;
            h.handoff_p99_us = t.handoff_latency.quantile(0.99) as f64 / 1e3;
            h.detect_p50_ms = t.detect_time.quantile(0.5) as f64 / 1e6;
            h.thumbnails_skipped = l.thumbnails_missing();
            self.last_counts.0 = frames;
            self.last_counts.1 = px;
        }
        self.last_counts.2 = threads.iter().map(|(n, a, _)| (*n, *a)).collect();
        self.last_counts.3 = now;
        h.threads = crate::hot::liveness::threads();
        h.alarm_journal_drops = self.station.alarms.journal_drops.get();
        h.alarm_commands_refused = self.station.alarms.commands_refused.get();
        h.audit_failures = self.station.guard.audit_failures();
        self.health = h;
    }

    /// The pipeline health figures of the last second.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Whether a load or command is still waiting for the engine's answer.
    pub fn busy(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Whether an export is still being written.
    pub fn exporting(&self) -> bool {
        !self.exports.is_empty()
    }

    /// An operator switch of the host link; a refusal is shown where the
    /// run control shows answers.
    fn host_switch(
        &mut self,
        actor: &crate::access::Actor,
        what: &str,
        on: bool,
        set: impl FnOnce(&crate::host::gem::GemHandle) -> Result<(), String>,
    ) {
        let Some(g) = &self.gem else {
            return;
        };
        let r = self.station.guard.guarded(
            actor,
            crate::access::Action::HostOnlineOffline,
            what,
            &format!("on={on}"),
            || set(g),
        );
        if let Err(why) = r {
            tracing::warn!("host switch not applied: {why}");
            self.run_control.message = Some(Err(format!("host switch not applied: {why}")));
        }
    }

    /// One UI pass (called by eframe, and by the UI tests directly).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        let start = thread_time::cpu_ns();
        // Before the frame asked for: input, or another thread's repaint.
        let woken_early = self.watchdog.begin();
        if self.waker.is_none() {
            self.start_waker(ui.ctx());
        }
        // What this pass asks for; `logic` lowers it to 0 for a backlog.
        self.repaint_asked = Duration::MAX;
        self.session.tick(ui.ctx(), &self.station.guard);
        self.logic(ui.ctx());
        let view = self.view();
        let mut out = Vec::new();
        // A lot that has just ended is read for the lot view.
        if self.lot_was_running && !view.lot.running && !view.lot.lot.as_str().is_empty() {
            out.push(UiCommand::ShowLot(view.lot.lot.as_str().to_owned()));
        }
        self.lot_was_running = view.lot.running;
        egui::Panel::top("status_strip")
            .resizable(false)
            .show(ui, |ui| status_strip::ui(ui, &view));
        egui::Panel::left("commands")
            .resizable(false)
            .exact_size(290.0)
            .show(ui, |ui| {
                ui.horizontal_wrapped(|ui| {
                    for (t, label) in [
                        (Tab::Overview, "Overview"),
                        (Tab::History, "History"),
                        (Tab::Heartbeat, "Heartbeat"),
                        (Tab::Alarms, "Alarms"),
                        (Tab::Carrier, "Carrier"),
                        (Tab::Lots, "Lot view"),
                        (Tab::Health, "Health"),
                        (Tab::Host, "Host"),
                        (Tab::Recipes, "Recipes"),
                        (Tab::Users, "Users"),
                        (Tab::Simulator, "Simulator"),
                    ] {
                        ui.selectable_value(&mut self.tab, t, label);
                    }
                });
                ui.separator();
                self.session.ui(ui, &self.station.guard);
                if self.session.user.is_none() && self.recipe_editor.path.is_some() {
                    self.recipe_editor.close();
                }
                ui.separator();
                self.run_control.ui(ui, &view, &mut out);
            });
        egui::CentralPanel::default().show(ui, |ui| match self.tab {
            Tab::Overview => self.overview(ui, &mut out),
            Tab::History => self.history.ui(ui, &mut out),
            Tab::Heartbeat => self.heartbeat.ui(ui, &view, &self.trends),
            Tab::Alarms => {
                let journal = self
                    .station
                    .journal
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                self.alarm_panel.ui(ui, &view, &journal, &mut out);
            }
            Tab::Carrier => {
                let recipe = self
                    .run_control
                    .recipe
                    .as_ref()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned());
                self.carrier_panel
                    .ui(ui, &view, recipe.as_deref(), &mut out)
            }
            Tab::Lots => {
                if let Some(lot) = self.lot_view.ui(ui) {
                    out.push(UiCommand::ShowLot(lot));
                }
            }
            Tab::Health => health::ui(ui, &view),
            Tab::Host => super::host::ui(ui, view.host.as_ref(), &view.permits, &mut out),
            Tab::Recipes => self
                .recipe_editor
                .ui(ui, &view, &self.run_control.recipes, &mut out),
            Tab::Users => self
                .users_panel
                .ui(ui, &view, &self.station.guard, &mut out),
            Tab::Simulator => simulator::ui(ui, &view, self.station.io_faults.is_some(), &mut out),
        });
        for c in out {
            self.apply(c);
        }
        // Repaint: camera-rate while a run moves, slowly when idle.
        let moving = matches!(
            view.run.state,
            RunState::Running | RunState::Pausing | RunState::Stopping | RunState::Aborting
        );
        let after = if moving {
            Duration::from_millis(33)
        } else {
            // Just after the clock's next second, when the clock and the
            // liveness tick change: the one thing an idle window must show.
            let next_second =
                (self.shown_second.until_next() + IDLE_REPAINT_PAST_THE_SECOND).min(IDLE_REPAINT);
            if woken_early {
                // Someone is using the window (or news woke it): look
                // again soon, so that a stall in this frame's painting is
                // seen by the watchdog as the next frame being late.
                next_second.min(AFTER_INPUT_REPAINT)
            } else {
                next_second
            }
        };
        ui.ctx().request_repaint_after(after);
        self.repaint_asked = self.repaint_asked.min(after);
        self.frame_time
            .record(thread_time::cpu_ns().saturating_sub(start));
        let minimised = ui.ctx().input(|i| i.viewport().minimized.unwrap_or(false));
        self.watchdog.end(self.repaint_asked, minimised);
    }

    fn start_waker(&mut self, ctx: &egui::Context) {
        let readers = (
            self.station.alarms.snapshots.reader(),
            self.station.engine.snapshots.reader(),
        );
        match readers {
            (Some(alarms), Some(run)) => {
                let ctx = ctx.clone();
                self.waker = Some(super::waker::Waker::start(alarms, run, move || {
                    ctx.request_repaint()
                }));
            }
            _ => {
                // Shown once: the window still runs, a second slower to
                // show news while idle.
                tracing::error!(
                    "too many snapshot readers: the idle window is not woken by alarms"
                );
                self.waker = Some(super::waker::Waker::none());
            }
        }
    }

    fn overview(&mut self, ui: &mut egui::Ui, out: &mut Vec<UiCommand>) {
        // Borrowed, not cloned: the list is bounded (HISTORY_LIMIT) and the
        // reader thread holds the lock only to swap in a new one.
        let history = self
            .station
            .history
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let reader_error = self
            .station
            .db_reader_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        ui.columns(2, |cols| {
            cols[0].heading("Wafer map");
            wafer_map::ui(&mut cols[0], &mut self.map, out);
            cols[1].heading("Live camera");
            egui::Frame::new().show(&mut cols[1], |ui| {
                ui.set_max_height(ui.available_height() * 0.55);
                self.live_view.ui(ui);
            });
            cols[1].separator();
            self.gallery.ui(&mut cols[1]);
            cols[1].separator();
            cols[1].label("Defects per wafer, recent runs");
            if let Some(why) = &reader_error {
                // A data fault, not an alarm: icon and text, no alarm colour.
                cols[1].label(egui::RichText::new(format!("✖ {why}")).strong());
            }
            wafer_map::history_ui(&mut cols[1], &history.runs);
            if let Some(note) = history.note() {
                cols[1].label(note);
            }
            cols[1].separator();
            self.export_picker.ui(&mut cols[1], &history.runs, out);
        });
    }

    /// Signs in at the window (the sign-in form does this; tests too).
    pub fn sign_in(&mut self, name: &str, password: &str) -> Result<(), String> {
        self.session.sign_in(&self.station.guard, name, password)
    }

    pub fn apply(&mut self, c: UiCommand) {
        // What only changes what the window shows needs no one signed in.
        match c {
            UiCommand::ShowLot(lot) => {
                return self.lot_view.request(self.station.cfg.db.clone(), lot)
            }
            UiCommand::OpenTab(tab) => {
                self.tab = tab;
                return;
            }
            UiCommand::SelectDie(d) => {
                self.map.selected = d;
                if let Some(d) = d {
                    let dir = self
                        .station
                        .cfg
                        .thumbnails
                        .join(format!("run-{}", self.map.run_id));
                    self.gallery.open(dir, d, self.map.die_details(d));
                }
                return;
            }
            _ => {}
        }
        // Everything else acts on the station: the station's guard checks
        // the signed-in user's role again and audits it.
        let Some(actor) = self.session.actor() else {
            self.run_control.message = Some(Err("sign in first".into()));
            return;
        };
        let station = &self.station;
        match c {
            UiCommand::LoadRecipe {
                path,
                lot,
                wafer,
                slot,
            } => {
                // The same id rules as `waferscope run`; the operator is
                // the signed-in user.
                let ids = match crate::run::ids::check_identity(&lot, &wafer, slot, &actor.user) {
                    Ok(ids) => ids,
                    Err(e) => {
                        self.run_control.message = Some(Err(e));
                        return;
                    }
                };
                self.run_control.id_warnings = ids.warnings;
                match crate::run::recipe::load(&path) {
                    Err(e) => self.run_control.message = Some(Err(format!("{e:#}"))),
                    Ok(recipe) => {
                        let id = recipe.recipe.id.clone();
                        let map = WaferMapState::for_recipe(&recipe);
                        let rx = station.load_recipe(&actor, recipe.clone(), ids.identity);
                        self.map = map;
                        self.loaded = Some(recipe);
                        self.pending.push((format!("Recipe {id} loaded"), rx));
                    }
                }
            }
            UiCommand::LoadCarrier => {
                let rx = station.load_carrier(&actor);
                self.pending.push(("Carrier docked and mapped".into(), rx));
            }
            UiCommand::StartLot {
                lot,
                slots,
                typed_ids,
            } => self.start_lot(&actor, lot, slots, typed_ids),
            UiCommand::StopLotAfterWafer => {
                self.run_control.message = Some(
                    station
                        .stop_lot_after_wafer(&actor)
                        .map(|()| "The lot stops after the wafer in hand".into()),
                );
            }
            UiCommand::AbortLot => {
                self.run_control.message = Some(
                    station
                        .abort_lot(&actor)
                        .map(|()| "Aborting the lot".into()),
                );
            }
            UiCommand::ExportRun { run, format } => {
                match station.guard.authorize(
                    &actor,
                    crate::access::Action::Export,
                    "export",
                    &format!("run={} format={format:?}", run.id),
                ) {
                    Ok(now) => self.export_run(&now, &run, format),
                    Err(why) => self.run_control.message = Some(Err(why)),
                }
            }
            UiCommand::HostOnline(on) => {
                self.host_switch(&actor, "host_online", on, |g| g.set_online(on))
            }
            UiCommand::HostRemote(remote) => {
                self.host_switch(&actor, "host_remote", remote, |g| g.set_remote(remote))
            }
            UiCommand::AckHostMessage => {
                if let Some(g) = &self.gem {
                    if let Some(m) = g.acknowledge_terminal() {
                        tracing::info!(
                            "{} acknowledged the host's message: {}",
                            actor.user,
                            m.text
                        );
                        station.guard.record(
                            &actor,
                            "host_message_acknowledge",
                            &m.text.chars().take(200).collect::<String>(),
                            &Ok(()),
                        );
                    }
                }
            }
            UiCommand::AddUser {
                name,
                role,
                password,
            } => {
                let r = station.guard.add_user(&actor, &name, role, &password.0);
                if r.is_ok() {
                    self.users_panel.added();
                }
                self.users_panel.message = Some(r.map(|()| format!("User {name} added ({role})")));
            }
            UiCommand::SetUserRole { name, role } => {
                let r = station.guard.set_user_role(&actor, &name, role);
                self.users_panel.stale();
                self.users_panel.message = Some(r.map(|()| format!("{name} is now {role}")));
            }
            UiCommand::SetUserDisabled { name, disabled } => {
                let r = station.guard.set_user_disabled(&actor, &name, disabled);
                self.users_panel.stale();
                let how = if disabled { "disabled" } else { "enabled" };
                self.users_panel.message = Some(r.map(|()| format!("{name} {how}")));
            }
            UiCommand::SetUserPassword { name, password } => {
                let r = station.guard.set_user_password(&actor, &name, &password.0);
                self.users_panel.stale();
                self.users_panel.message = Some(r.map(|()| format!("New password set for {name}")));
            }
            UiCommand::SaveRecipe { path, opened, text } => {
                let saved = station.save_recipe(&actor, &path, &opened, &text);
                self.recipe_editor.message = Some(match saved {
                    Ok(()) => {
                        self.recipe_editor.saved(text);
                        Ok(format!("Recipe saved: {}", path.display()))
                    }
                    Err(why) => Err(why),
                });
            }
            UiCommand::TeachGolden => {
                let rx = station.teach_golden(&actor, crate::run::machine::DEFAULT_TEACH_DIES);
                self.pending.push(("Golden die taught".into(), rx));
            }
            UiCommand::Run(cmd) => {
                use crate::run::state::CommandKind as K;
                let what = match cmd.kind() {
                    K::Start => "Run started",
                    K::Pause => "Pausing at the next die",
                    K::Resume => "Run resumed",
                    K::Stop => "Stopping after the die in hand",
                    K::Abort => "Run aborted",
                    K::Acknowledge => "Acknowledged",
                    K::Reset => "Tool reset to idle",
                }
                .to_owned();
                let rx = station.run_command(&actor, cmd);
                self.pending.push((what, rx));
            }
            UiCommand::AckAlarm(alid) => {
                let r = station.acknowledge_alarm(&actor, Some(alid));
                self.say_if_refused(r);
            }
            UiCommand::AckAllAlarms => {
                let r = station.acknowledge_alarm(&actor, None);
                self.say_if_refused(r);
            }
            UiCommand::ShelveAlarm {
                alid,
                duration,
                reason,
            } => {
                let r = station.shelve_alarm(&actor, alid, duration, &reason);
                self.say_if_refused(r);
            }
            UiCommand::UnshelveAlarm(alid) => {
                let r = station.unshelve_alarm(&actor, alid);
                self.say_if_refused(r);
            }
            UiCommand::FreezeHeartbeat(s, on) => {
                let r = station.simulator_fault(&actor, SimulatorFault::FreezeHeartbeat(s, on));
                self.say_if_refused(r);
            }
            UiCommand::VacuumLoss(on) => {
                let r = station.simulator_fault(&actor, SimulatorFault::VacuumLoss(on));
                self.say_if_refused(r);
            }
            UiCommand::ShowLot(_) | UiCommand::OpenTab(_) | UiCommand::SelectDie(_) => {}
        }
    }

    /// A refusal is said on the run control's message line (alarm panel
    /// and simulator answers included: one place for answers).
    fn say_if_refused(&mut self, r: Result<(), String>) {
        if let Err(why) = r {
            self.run_control.message = Some(Err(why));
        }
    }
}

impl StationApp {
    /// Starts a lot with the recipe chosen in Run control; the answer is
    /// shown where run answers are, the progress on the Carrier panel.
    fn start_lot(
        &mut self,
        actor: &crate::access::Actor,
        lot: String,
        slots: Vec<u32>,
        typed_ids: Vec<(u32, String)>,
    ) {
        let Some(path) = self.run_control.recipe.clone() else {
            self.run_control.message = Some(Err("choose a recipe in Run control first".into()));
            return;
        };
        let recipe = match crate::run::recipe::load(&path) {
            Ok(r) => r,
            Err(e) => {
                self.run_control.message = Some(Err(format!("{e:#}")));
                return;
            }
        };
        self.map = WaferMapState::for_recipe(&recipe);
        self.loaded = Some(recipe.clone());
        let n = slots.len();
        let plan = crate::run::lot::LotPlan {
            lot: lot.clone(),
            recipe,
            slots,
            operator: actor.user.clone(),
            typed_ids,
            on_wafer_fault: crate::run::lot::OnWaferFault::WaitForReset,
        };
        // The report also lands in the lot snapshot: the receiver is not
        // kept.
        self.run_control.message = Some(
            self.station
                .start_lot(actor, plan)
                .map(|()| format!("Started lot {lot}: {n} slots")),
        );
    }

    /// Starts writing a recorded run's export off the UI thread; the
    /// answer shows on the run control's message line.
    fn export_run(
        &mut self,
        actor: &crate::access::Actor,
        row: &crate::store::query::RunRow,
        format: crate::store::export::Format,
    ) {
        // Whether the file was written is the operator's answer; the
        // trail records who asked for which run.
        self.station.guard.record(
            actor,
            "export",
            &format!("run={} format={format:?}", row.id),
            &Ok(()),
        );
        self.run_control.message = Some(Ok(format!("exporting run {}…", row.id)));
        self.exports.push(super::export_run::start_export(
            self.station.cfg.db.clone(),
            row,
            format,
            self.station.cfg.export_dir(),
        ));
    }
}

fn reader<T: Copy + Send>(r: Option<LatestReader<T>>) -> anyhow::Result<LatestReader<T>> {
    r.ok_or_else(|| anyhow::anyhow!("too many snapshot readers"))
}

impl eframe::App for StationApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        self.frame_stats
            .frame(Instant::now(), frame.info().cpu_usage, self.repaint_asked);
        self.show(ui);
    }
}

/// How often an idle window redraws at most: once a second, when its clock
/// and liveness tick change (HMI rules 8 and 11); no number the operator
/// reads changes faster. Each idle frame costs a whole window's painting
/// (most of it Mesa's rasteriser without a GPU), so redrawing more often
/// only to prove the UI alive cost the idle window five times its CPU; the
/// watchdog now judges frames against what the window asked for.
pub const IDLE_REPAINT: Duration =
    Duration::from_secs(1).saturating_add(IDLE_REPAINT_PAST_THE_SECOND);

/// After a frame woken before it was due (input, news from another thread),
/// an idle window asks for the next within this, so that the watchdog sees
/// a stall in that frame's painting (HMI rule 11: 0.5 s) as the next frame
/// coming late. Once frames come when asked, it is a frame a second again.
pub const AFTER_INPUT_REPAINT: Duration = Duration::from_millis(250);

/// How far past the clock's second an idle frame is timed, so that it
/// shows the new second despite timer slack.
const IDLE_REPAINT_PAST_THE_SECOND: Duration = Duration::from_millis(10);

/// Sets the look once.
pub fn setup(ctx: &egui::Context) {
    look::apply(ctx);
}
