//! Everything the operator station runs behind its window: the simulated
//! tool's monitor and alarms, the run engine and its store, and background
//! readers of the database (so the UI thread never touches it).

use crate::machine::sim::{SimIo, SimIoFaults};
use crate::machine::SimFaults;
use crate::monitor::{
    alarm_defs, content_hash, AlarmDef, AlarmService, Journal, JournalRow, Monitor, MonitorConfig,
};
use crate::run::{EngineConfig, EngineHandle, LivePipeline, RunEngine, SimMachine};
use crate::store::query::{list_runs, RunRow};
use crate::store::SqliteStore;
use anyhow::{Context, Result};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Clone)]
pub struct StationConfig {
    pub db: PathBuf,
    pub alarms: PathBuf,
    pub recipes: PathBuf,
    pub thumbnails: PathBuf,
    pub wafer_seed: u64,
    /// Pace the simulated stage and camera like the real tool.
    pub paced: bool,
    /// Camera frame rate when paced.
    pub camera_fps: f64,
    pub resume_after: Duration,
}

impl Default for StationConfig {
    fn default() -> Self {
        Self {
            db: "waferscope.db".into(),
            alarms: "assets/alarms.toml".into(),
            recipes: "assets/recipes".into(),
            thumbnails: "thumbnails".into(),
            wafer_seed: 1,
            paced: true,
            camera_fps: 60.0,
            resume_after: Duration::from_secs(3),
        }
    }
}

pub struct Station {
    pub cfg: StationConfig,
    pub engine: EngineHandle,
    pub monitor: Monitor,
    pub alarms: AlarmService,
    pub alarm_defs: Arc<[AlarmDef]>,
    pub io_faults: Arc<SimIoFaults>,
    pub device_faults: Arc<SimFaults>,
    pub tool_safe: Arc<AtomicBool>,
    pub live: Arc<Mutex<Option<LivePipeline>>>,
    /// Newest alarm journal rows (refreshed in the background).
    pub journal: Arc<Mutex<Vec<JournalRow>>>,
    /// Recorded runs, newest first (refreshed in the background).
    pub history: Arc<Mutex<Vec<RunRow>>>,
    stop: Arc<AtomicBool>,
    // Declared last: dropped last, after everything that uses it.
    _rt: tokio::runtime::Runtime,
}

impl Station {
    pub fn start(cfg: StationConfig) -> Result<Self> {
        let defs: Arc<[AlarmDef]> = alarm_defs::load(&cfg.alarms)?.into();
        let hash = content_hash(&std::fs::read_to_string(&cfg.alarms).unwrap_or_default());
        let store = SqliteStore::open(&cfg.db)?;
        for id in &store.recovered {
            tracing::warn!(
                run = id,
                "run interrupted by a previous stop of the program: closed as aborted"
            );
        }
        let journal = Journal::open(&cfg.db)?;
        let io_faults = SimIoFaults::new();
        let monitor = Monitor::start(
            Box::new(SimIo::new(io_faults.clone())),
            MonitorConfig::default(),
        );
        let alarms = AlarmService::start(
            defs.clone(),
            &hash,
            journal,
            monitor.snapshots.reader().context("monitor readers")?,
            monitor.epoch,
            Duration::from_millis(5),
        )?;
        let mut machine = if cfg.paced {
            SimMachine::new(cfg.wafer_seed)
        } else {
            SimMachine::fast(cfg.wafer_seed)
        };
        if cfg.paced {
            machine.camera_fps = Some(cfg.camera_fps);
        }
        let (device_faults, tool_safe, live) = (
            machine.device_faults.clone(),
            machine.safe.clone(),
            machine.current.clone(),
        );
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
        rt.spawn(engine.serve());
        let stop = Arc::new(AtomicBool::new(false));
        let journal_rows = Arc::new(Mutex::new(Vec::new()));
        let history = Arc::new(Mutex::new(Vec::new()));
        spawn_db_reader(
            cfg.db.clone(),
            journal_rows.clone(),
            history.clone(),
            stop.clone(),
        );
        Ok(Self {
            cfg,
            engine: handle,
            monitor,
            alarms,
            alarm_defs: defs,
            io_faults,
            device_faults,
            tool_safe,
            live,
            journal: journal_rows,
            history,
            stop,
            _rt: rt,
        })
    }

    /// The pipeline of the run in progress, if any.
    pub fn live_pipeline(&self) -> Option<LivePipeline> {
        self.live.lock().unwrap_or_else(|e| e.into_inner()).clone()
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

/// Re-reads the journal and the run list every 2 s on its own thread and
/// connection.
fn spawn_db_reader(
    db: PathBuf,
    journal: Arc<Mutex<Vec<JournalRow>>>,
    history: Arc<Mutex<Vec<RunRow>>>,
    stop: Arc<AtomicBool>,
) {
    let _ = std::thread::Builder::new()
        .name("ui-db-reader".into())
        .spawn(move || {
            let Ok(j) = Journal::open(&db) else { return };
            let Ok(conn) = crate::store::db::open(&db) else {
                return;
            };
            while !stop.load(Ordering::Relaxed) {
                if let Ok(rows) = j.rows(None, 500) {
                    *journal.lock().unwrap_or_else(|e| e.into_inner()) = rows;
                }
                if let Ok(runs) = list_runs(&conn) {
                    *history.lock().unwrap_or_else(|e| e.into_inner()) = runs;
                }
                for _ in 0..20 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
}
