//! Everything the operator station runs behind its window: the simulated
//! tool's monitor and alarms, the run engine and its store, and background
//! readers of the database (so the UI thread never touches it).

use crate::machine::sim::{SimIo, SimIoFaults};
use crate::machine::SimFaults;
use crate::monitor::{
    alarm_defs, content_hash, AlarmDef, AlarmService, Journal, JournalRow, Monitor, MonitorConfig,
};
use crate::run::{EngineConfig, EngineHandle, LivePipeline, RunEngine, SimMachine};
use crate::store::query::{recent_runs, RunRow};
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
    /// The newest recorded runs (refreshed in the background).
    pub history: Arc<Mutex<RunHistory>>,
    /// Why the background database reader is not reading, if it is not
    /// (shown in the window; also logged).
    pub db_reader_error: Arc<Mutex<Option<String>>>,
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
        // Taught golden dies live beside the database, as with `run`.
        machine.golden_dir = Some(
            cfg.db
                .parent()
                .unwrap_or(std::path::Path::new(""))
                .join("golden"),
        );
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
        let history = Arc::new(Mutex::new(RunHistory::default()));
        let db_reader_error = Arc::new(Mutex::new(None));
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
            db_reader_error,
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

/// Re-reads the journal and the newest runs on its own thread and
/// connection, every 2 s but only when the database changed (SQLite's
/// `data_version`). A database it cannot open or read is logged and put in
/// `error` for the window, never silently ignored.
fn spawn_db_reader(
    db: PathBuf,
    journal: Arc<Mutex<Vec<JournalRow>>>,
    history: Arc<Mutex<RunHistory>>,
    error: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let report = move |why: Option<String>| {
        let mut e = error.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = &why {
            if e.as_ref() != Some(w) {
                tracing::error!("{w}");
            }
        }
        *e = why;
    };
    crate::hot::liveness::spawn_watched("ui-db-reader", Duration::from_secs(30), move |health| {
        let opened = Journal::open(&db).and_then(|j| crate::store::db::open(&db).map(|c| (j, c)));
        let (j, conn) = match opened {
            Ok(x) => x,
            Err(e) => {
                report(Some(format!(
                    "{}: the run history and alarm journal cannot be shown: {e:#}",
                    db.display()
                )));
                return;
            }
        };
        let mut seen_version = None;
        while !stop.load(Ordering::Relaxed) {
            health.beat();
            let version: rusqlite::Result<i64> =
                conn.query_row("PRAGMA data_version", [], |r| r.get(0));
            let changed = match version {
                Ok(v) => seen_version.replace(v) != Some(v),
                // Unknown: read anyway.
                Err(_) => true,
            };
            if changed {
                let read = j.rows(None, 500).and_then(|rows| {
                    let runs = recent_runs(&conn, HISTORY_LIMIT)?;
                    Ok((rows, runs))
                });
                match read {
                    Ok((rows, (runs, total))) => {
                        *journal.lock().unwrap_or_else(|e| e.into_inner()) = rows;
                        *history.lock().unwrap_or_else(|e| e.into_inner()) =
                            RunHistory { runs, total };
                        report(None);
                    }
                    Err(e) => {
                        // Read again next time, even if nothing changed.
                        seen_version = None;
                        report(Some(format!(
                            "{}: cannot read the run history and alarm journal: {e:#}",
                            db.display()
                        )));
                    }
                }
            }
            health.idle();
            for _ in 0..20 {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    })
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_the_reader_cannot_open_is_reported_not_ignored() {
        let db = std::env::temp_dir()
            .join(format!("waferscope-no-such-dir-{}", std::process::id()))
            .join("station.db");
        let error = Arc::new(Mutex::new(None));
        spawn_db_reader(
            db.clone(),
            Arc::default(),
            Arc::default(),
            error.clone(),
            Arc::new(AtomicBool::new(false)),
        )
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let why = loop {
            if let Some(why) = error.lock().unwrap().clone() {
                break why;
            }
            assert!(std::time::Instant::now() < deadline, "no error reported");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(why.contains(&db.display().to_string()), "{why}");
        assert!(why.contains("cannot be shown"), "{why}");
    }
}
