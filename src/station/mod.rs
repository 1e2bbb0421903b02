//! The one composition root: everything a station runs (the machine's
//! I/O driver and its monitor, the alarms, the run engine with its store,
//! and for the window a background reader of the database), built from a
//! machine configuration. The window, `waferscope run` and the tests all
//! start a station here, so there is one place that decides which driver
//! serves which subsystem.

pub mod commands;
pub mod data_dir;
pub mod db_reader;
pub mod history_query;

use crate::machine::modbus::{LinkStatus, ModbusIo};
use crate::machine::sim::{
    HandlingFaults, HandlingTimes, SimCarrier, SimIo, SimIoFaults, SimLoadPort,
};
use crate::machine::{Io, IoDriver, MachineConfig, SimFaults};
use crate::monitor::{
    alarm_defs, content_hash, AlarmDef, AlarmService, Journal, JournalRow, Monitor, MonitorConfig,
};
use crate::run::lot::CarrierHandle;
use crate::run::{EngineConfig, EngineHandle, LivePipeline, RunEngine, SimMachine};
use crate::store::query::RunRow;
use crate::store::SqliteStore;
use anyhow::{Context, Result};
use db_reader::spawn_db_reader;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct StationConfig {
    /// Which driver serves each subsystem.
    pub machine: MachineConfig,
    pub db: PathBuf,
    pub alarms: PathBuf,
    pub recipes: PathBuf,
    pub thumbnails: PathBuf,
    /// Taught golden dies, one per recipe; `None`: `golden/` beside the
    /// database (the station's data stays together).
    pub golden_dir: Option<PathBuf>,
    /// Where each run's KLARF is written when it ends (`None`: not written).
    pub klarf_dir: Option<PathBuf>,
    /// Keep the alarm journal and run history fresh for the window (a
    /// thread of its own with its own connection).
    pub read_history: bool,
    pub wafer_seed: u64,
    /// Pace the simulated stage and camera like the real tool.
    pub paced: bool,
    /// Camera frame rate when paced.
    pub camera_fps: f64,
    pub resume_after: Duration,
    /// The carrier the simulated load port docks (the load port, robot and
    /// pre-aligner are simulated on every machine configuration).
    pub carrier: SimCarrier,
    /// Who may do what, sign-in lock-out and idle sign-out.
    pub policy: crate::access::Policy,
    pub access: crate::access::AccessConfig,
    /// Detection workers of each run's pipeline (None: one per core but
    /// one, at least one).
    pub detection_workers: Option<usize>,
}

/// Runs shown in the window's history: a bounded query, so months of runs
/// cost the UI no more than a day's.
pub const HISTORY_LIMIT: usize = 200;

/// The newest runs, newest first, and how many are recorded in all.
#[derive(Debug, Clone, Default)]
pub struct RunHistory {
    pub runs: Vec<RunRow>,
    pub total: u64,
}

impl RunHistory {
    /// "showing 200 of 5312 runs" when not all are shown.
    pub fn note(&self) -> Option<String> {
        (self.total > self.runs.len() as u64).then(|| {
            format!(
                "showing the newest {} of {} runs",
                self.runs.len(),
                self.total
            )
        })
    }
}

impl StationConfig {
    /// Where exports the operator asks for go by default: the KLARF
    /// directory if there is one, else `exports/` beside the database.
    pub fn export_dir(&self) -> PathBuf {
        self.klarf_dir.clone().unwrap_or_else(|| {
            self.db
                .parent()
                .unwrap_or(std::path::Path::new(""))
                .join("exports")
        })
    }

    /// Where taught golden dies are kept: `golden_dir`, or `golden/`
    /// beside the database.
    pub fn golden_dir(&self) -> PathBuf {
        self.golden_dir.clone().unwrap_or_else(|| {
            self.db
                .parent()
                .unwrap_or(std::path::Path::new(""))
                .join("golden")
        })
    }
}

/// Paths relative to the working directory, for tests and tools that set
/// their own: the program takes them from a
/// [`data_dir::DataDir`] (`--data-dir`, or the XDG default).
impl Default for StationConfig {
    fn default() -> Self {
        Self {
            machine: MachineConfig::sim(),
            db: "waferscope.db".into(),
            alarms: "assets/alarms.toml".into(),
            recipes: "assets/recipes".into(),
            thumbnails: "thumbnails".into(),
            golden_dir: None,
            klarf_dir: None,
            read_history: true,
            wafer_seed: 1,
            paced: true,
            camera_fps: 60.0,
            resume_after: Duration::from_secs(3),
            carrier: SimCarrier::demo(1_000),
            policy: crate::access::Policy::default(),
            access: crate::access::AccessConfig::default(),
            detection_workers: None,
        }
    }
}

pub struct Station {
    pub cfg: StationConfig,
    pub engine: EngineHandle,
    // Dropped before the monitor (fields drop in order): a monitor that
    // stops first would be journaled as "monitor stopped" on every exit.
    pub alarms: AlarmService,
    pub monitor: Monitor,
    pub alarm_defs: Arc<[AlarmDef]>,
    /// The simulated I/O's fault switchboard (`None` on real I/O).
    pub io_faults: Option<Arc<SimIoFaults>>,
    /// Each Modbus server's link, by name (empty on simulated I/O).
    pub io_links: Vec<(String, Arc<LinkStatus>)>,
    /// A GigE camera's control-port heartbeat (its thread runs while this
    /// lives).
    #[cfg(feature = "gige")]
    pub camera_link: Option<crate::machine::gige::CameraLinkProbe>,
    pub device_faults: Arc<SimFaults>,
    /// The load port: carrier, slot map, lots.
    pub carrier: CarrierHandle,
    /// Checks every command against the actor's role and audits it
    /// (`commands.rs`); users and sign-in.
    pub guard: Arc<crate::access::Guard>,
    /// The simulated robot's, pre-aligner's and id reader's faults.
    pub handling_faults: Arc<HandlingFaults>,
    pub tool_safe: Arc<AtomicBool>,
    pub live: Arc<Mutex<Option<LivePipeline>>>,
    /// Newest alarm journal rows (refreshed in the background).
    pub journal: Arc<Mutex<Vec<JournalRow>>>,
    /// The newest recorded runs (refreshed in the background).
    pub history: Arc<Mutex<RunHistory>>,
    /// Why the background database reader is not reading, if it is not
    /// (shown in the window; also logged).
    pub db_reader_error: Arc<Mutex<Option<String>>>,
    /// The run engine's task: finished before the station is dropped only
    /// if the engine panicked.
    pub engine_task: tokio::task::JoinHandle<()>,
    /// Runs a previous stop of the program interrupted, closed as aborted
    /// when the store opened (their results kept).
    pub recovered_runs: Vec<i64>,
    /// Moves a real stage confirmed in position at their target.
    pub stage_moves_confirmed: Arc<crate::hot::Counter>,
    /// The host link's control and communication state for the metrics:
    /// the GEM layer sets its source here when it starts (before or after
    /// `serve_metrics`); empty, no `waferscope_gem_*` series.
    pub host_link_metrics: crate::metrics::HostLinkSlot,
    stop: Arc<AtomicBool>,
    // Declared last: dropped last, after everything that uses it.
    rt: tokio::runtime::Runtime,
}

/// The station's export directory (`exports/` beside the database unless
/// one is configured), created if missing. One that cannot be created now
/// is still the one used: a run's KLARF then waits there, retried with its
/// alarm raised, rather than the station refusing to start.
pub fn exports_ready(cfg: &StationConfig) -> PathBuf {
    let dir = cfg.export_dir();
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::warn!(
            "the export directory {} cannot be created now ({e}); KLARF files will be retried there",
            dir.display()
        );
    }
    dir
}

impl Station {
    pub fn start(cfg: StationConfig) -> Result<Self> {
        let defs: Arc<[AlarmDef]> = alarm_defs::load(&cfg.alarms)?.into();
        let hash = content_hash(&std::fs::read_to_string(&cfg.alarms).unwrap_or_default());
        let mut store = SqliteStore::open(&cfg.db)?;
        for id in &store.recovered {
            tracing::warn!(
                run = id,
                "run interrupted by a previous stop of the program: closed as aborted"
            );
        }
        let recovered_runs = store.recovered.clone();
        store.klarf_dir = cfg.klarf_dir.clone();
        let journal = Journal::open(&cfg.db)?;
        let guard = Arc::new(crate::access::Guard::open(
            &cfg.db,
            cfg.policy.clone(),
            cfg.access,
        )?);
        for line in cfg.machine.describe() {
            tracing::info!("machine: {line}");
        }
        tracing::info!(
            "machine: load port, robot, pre-aligner and id reader: simulated (carrier {})",
            cfg.carrier.carrier_id
        );
        let (io, io_faults, io_links, monitor_cfg): (Box<dyn Io>, _, _, _) = match &cfg.machine.io {
            IoDriver::Sim => {
                let faults = SimIoFaults::new();
                (
                    Box::new(SimIo::new(faults.clone())),
                    Some(faults),
                    Vec::new(),
                    MonitorConfig::default(),
                )
            }
            IoDriver::Modbus(m) => {
                let io = ModbusIo::new(m);
                let links = io.statuses();
                (
                    Box::new(io),
                    None,
                    links,
                    MonitorConfig::with_periods(m.periods),
                )
            }
        };
        // A GigE camera's heartbeat comes from the camera itself (its
        // control port answering), whatever the I/O is.
        #[cfg(feature = "gige")]
        let mut monitor_cfg = monitor_cfg;
        #[cfg(feature = "gige")]
        let (io, camera_link): (Box<dyn Io>, _) = match &cfg.machine.camera {
            crate::machine::config::CameraDriver::Gige(g) => {
                let probe =
                    crate::machine::gige::CameraLinkProbe::start(g.address, g.heartbeat_period)
                        .context("opening a UDP socket for the camera's heartbeat")?;
                let link = probe.link();
                monitor_cfg.heartbeat_periods[crate::machine::Subsystem::Camera.index()] =
                    Some(g.heartbeat_period);
                (
                    Box::new(crate::machine::gige::CameraHeartbeatIo::new(io, link)),
                    Some(probe),
                )
            }
            crate::machine::config::CameraDriver::Sim => (io, None),
        };
        let monitor = Monitor::start(io, monitor_cfg);
        let alarms = AlarmService::start(
            defs.clone(),
            &hash,
            journal,
            monitor.snapshots.reader().context("monitor readers")?,
            monitor.epoch,
            Duration::from_millis(5),
        )?;
        // Camera and stage as configured (a GigE camera needs the `gige`
        // feature: without it a run says so when it starts).
        let mut machine = if cfg.paced {
            SimMachine::new(cfg.wafer_seed)
        } else {
            SimMachine::fast(cfg.wafer_seed)
        };
        machine.camera_driver = cfg.machine.camera.clone();
        #[cfg(feature = "gige")]
        {
            machine.camera_link = camera_link.as_ref().map(|p| p.link());
        }
        machine.stage_driver = cfg.machine.stage.clone();
        machine.workers = cfg.detection_workers;
        let stage_moves_confirmed = machine.stage_moves_confirmed.clone();
        if cfg.paced {
            machine.camera_fps = Some(cfg.camera_fps);
        }
        machine.golden_dir = Some(cfg.golden_dir());
        let load_port = SimLoadPort::new(
            cfg.carrier.clone(),
            if cfg.paced {
                HandlingTimes::REAL_TOOL
            } else {
                HandlingTimes::INSTANT
            },
            machine.chuck.clone(),
        );
        let handling_faults = load_port.faults.clone();
        let (device_faults, tool_safe, live) = (
            machine.device_faults.clone(),
            machine.safe.clone(),
            machine.current.clone(),
        );
        // A KLARF that cannot be written raises the "export failing" alarm
        // while the store retries it.
        store.software = Some(alarms.software.clone());
        let (engine, handle) = RunEngine::new(
            Box::new(machine),
            monitor.snapshots.reader().context("monitor readers")?,
            alarms.snapshots.reader().context("alarm readers")?,
            defs.clone(),
            Box::new(store),
            EngineConfig {
                resume_after: cfg.resume_after,
                thumbnail_root: Some(cfg.thumbnails.clone()),
                ..EngineConfig::default()
            },
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("run-engine")
            .enable_all()
            .build()
            .context("starting the async runtime")?;
        let engine_task = rt.spawn(engine.serve());
        let mut carrier =
            CarrierHandle::new(Box::new(load_port), handle.clone(), rt.handle().clone());
        if let Some(dir) = &cfg.klarf_dir {
            carrier = carrier.with_lot_file(cfg.db.clone(), dir.clone());
        }
        let mut carrier = carrier.with_excursion_check(cfg.db.clone(), alarms.software.clone());
        if cfg.machine.camera != crate::machine::config::CameraDriver::Sim {
            carrier = carrier.refusing_lots(
                "the load port is simulated: lots run only with the simulated camera (a real camera would image the one wafer on its chuck under every simulated wafer id)".into(),
            );
        }
        let stop = Arc::new(AtomicBool::new(false));
        let journal_rows = Arc::new(Mutex::new(Vec::new()));
        let history = Arc::new(Mutex::new(RunHistory::default()));
        let db_reader_error = Arc::new(Mutex::new(None));
        if cfg.read_history {
            if let Err(e) = spawn_db_reader(
                cfg.db.clone(),
                journal_rows.clone(),
                history.clone(),
                db_reader_error.clone(),
                stop.clone(),
            ) {
                let why = format!("cannot start the database reader thread: {e}");
                tracing::error!("{why}");
                *db_reader_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
            }
        }
        Ok(Self {
            cfg,
            engine: handle,
            monitor,
            alarms,
            alarm_defs: defs,
            io_faults,
            io_links,
            #[cfg(feature = "gige")]
            camera_link,
            device_faults,
            carrier,
            guard,
            handling_faults,
            tool_safe,
            live,
            journal: journal_rows,
            history,
            db_reader_error,
            engine_task,
            recovered_runs,
            stage_moves_confirmed,
            host_link_metrics: Default::default(),
            stop,
            rt,
        })
    }

    /// The async runtime the run engine runs on (for tasks beside it, such
    /// as the console's Ctrl-C handler).
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        &self.rt
    }

    /// What the metrics read of this station: its snapshots (readers of
    /// their own), counters and the host link slot.
    pub fn metrics_sources(&self) -> Result<crate::metrics::MetricsSources> {
        Ok(crate::metrics::MetricsSources {
            run: self.engine.snapshots.reader().context("run readers")?,
            machine: self.monitor.snapshots.reader().context("monitor readers")?,
            alarms: self.alarms.snapshots.reader().context("alarm readers")?,
            alarm_defs: self.alarm_defs.clone(),
            live: self.live.clone(),
            io_links: self.io_links.clone(),
            alarm_journal_drops: self.alarms.journal_drops.clone(),
            alarm_commands_refused: self.alarms.commands_refused.clone(),
            host_link: self.host_link_metrics.clone(),
        })
    }

    /// Serves the Prometheus metrics at `http://addr/metrics` on this
    /// station's runtime for as long as the station lives (`--metrics`;
    /// the window, `run` and `serve` all start it here). Returns the
    /// address listened on; a port in use is an error naming `--metrics`
    /// and the address.
    pub fn serve_metrics(&self, addr: std::net::SocketAddr) -> Result<std::net::SocketAddr> {
        crate::metrics::serve(&self.rt, addr, self.metrics_sources()?)
    }

    /// The pipeline of the run in progress, if any.
    pub fn live_pipeline(&self) -> Option<LivePipeline> {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Starts the link to the fab's host (GEM over HSMS, `src/host/gem`)
    /// on this station's runtime, reading the station's snapshots and
    /// commanding its run engine. The window and `waferscope serve` both
    /// start it here. Passive: listening when this returns.
    pub fn start_gem(
        &self,
        cfg: crate::host::gem::GemConfig,
    ) -> Result<crate::host::gem::GemHandle> {
        let variables = Arc::new(crate::host::gem::StationVariables::new(
            self.engine.snapshots.reader().context("run readers")?,
            self.monitor.snapshots.reader().context("monitor readers")?,
            self.alarms.snapshots.reader().context("alarm readers")?,
            self.alarm_defs.clone(),
            Arc::new(crate::host::gem::GemStatus::default()),
        ));
        let engine = self.engine.clone();
        let alarm_view = self.alarms.snapshots.reader().context("alarm readers")?;
        let gem = self.rt.block_on(crate::host::gem::service::start(
            cfg,
            engine,
            variables,
            alarm_view,
            self.alarm_defs.clone(),
            Some(self.guard.clone()),
        ))?;
        // The metrics endpoint (if any, now or later) exposes its states.
        if self
            .host_link_metrics
            .set(Arc::new(gem.clone()) as Arc<dyn crate::metrics::HostLinkSource>)
            .is_err()
        {
            tracing::warn!("a second GEM link: the metrics show the first one's states");
        }
        Ok(gem)
    }

    /// Recipe files offered in the run control.
    pub fn recipe_files(&self) -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&self.cfg.recipes)
            .map(|d| {
                d.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }
}

impl Drop for Station {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
