//! `waferscope run`: one wafer, headless, on the simulated tool, with a
//! progress bar; Ctrl-C stops, a second Ctrl-C aborts.

use crate::machine::sim::{SimIo, SimIoFaults};
use crate::monitor::alarm_defs;
use crate::monitor::{content_hash, AlarmService, Journal, Monitor, MonitorConfig};
use crate::run::{
    recipe, EngineConfig, ExitStatus, RunCommand, RunEngine, RunIdentity, RunState, SimMachine,
};
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct RunArgs {
    pub recipe: PathBuf,
    pub lot: String,
    pub wafer: String,
    pub slot: u32,
    pub operator: String,
    pub db: PathBuf,
    pub klarf_dir: Option<PathBuf>,
    pub thumbnail_dir: PathBuf,
    pub alarms: PathBuf,
    pub log_dir: PathBuf,
    pub seed: u64,
    /// No stage or camera pacing (benchmarks).
    pub fast: bool,
}

/// Process exit codes of `waferscope run`.
pub mod exit_code {
    pub const COMPLETE: i32 = 0;
    pub const BAD_INPUT: i32 = 2;
    pub const STOPPED: i32 = 3;
    pub const ABORTED: i32 = 4;
    pub const FAULTED: i32 = 5;
    pub const NOT_READY: i32 = 6;
    /// The run completed and is recorded, but its KLARF or thumbnails could
    /// not be written (repeat with `waferscope export`).
    pub const NOT_EXPORTED: i32 = 7;
}

/// Runs one wafer; returns the exit code. Errors are bad input.
pub fn run(args: &RunArgs) -> Result<i32> {
    let recipe = recipe::load(&args.recipe)?;
    let defs: Arc<[_]> = alarm_defs::load(&args.alarms)?.into();
    let defs_hash = content_hash(&std::fs::read_to_string(&args.alarms).unwrap_or_default());
    let _log = crate::logging::init(&args.log_dir, false)?;
    let mut store = crate::store::SqliteStore::open(&args.db)?;
    for id in &store.recovered {
        eprintln!("note: run {id} was interrupted (the program stopped mid-run); closed as aborted, its results kept");
    }
    if let Some(dir) = &args.klarf_dir {
        anyhow::ensure!(
            dir.is_dir(),
            "--klarf-dir {}: no such directory",
            dir.display()
        );
        store.klarf_dir = Some(dir.clone());
    }
    let journal = Journal::open(&args.db)?;

    let io = SimIoFaults::new();
    let monitor = Monitor::start(Box::new(SimIo::new(io)), MonitorConfig::default());
    let alarms = AlarmService::start(
        defs.clone(),
        &defs_hash,
        journal,
        monitor.snapshots.reader().context("monitor readers")?,
        monitor.epoch,
        Duration::from_millis(5),
    )?;
    let machine = if args.fast {
        SimMachine::fast(args.seed)
    } else {
        SimMachine::new(args.seed)
    };
    let (engine, handle) = RunEngine::new(
        Box::new(machine),
        monitor.snapshots.reader().context("monitor readers")?,
        alarms.snapshots.reader().context("alarm readers")?,
        defs,
        Box::new(store),
        EngineConfig {
            thumbnail_root: Some(args.thumbnail_dir.clone()),
            ..EngineConfig::default()
        },
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.spawn(engine.serve());

    // Give the monitor a moment to see every heartbeat.
    let mut machine_view = monitor.snapshots.reader().context("monitor readers")?;
    let t0 = Instant::now();
    while !machine_view.read().value.all_live() && t0.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let identity = RunIdentity {
        lot: args.lot.clone(),
        wafer: args.wafer.clone(),
        slot: args.slot,
        operator: args.operator.clone(),
    };
    // Ctrl-C: first Stop, then Abort.
    let ctrl_handle = handle.clone();
    rt.spawn(async move {
        let mut presses = 0;
        while tokio::signal::ctrl_c().await.is_ok() {
            presses += 1;
            if presses == 1 {
                eprintln!("\nCtrl-C: stopping after the current die (press again to abort)");
                let _ = ctrl_handle.command_async(RunCommand::Stop).await;
            } else {
                eprintln!("\nCtrl-C again: aborting");
                let _ = ctrl_handle
                    .command_async(RunCommand::Abort {
                        reason: "operator pressed Ctrl-C twice".into(),
                    })
                    .await;
            }
        }
    });

    let dies = recipe.plan.len() as u64;
    println!(
        "{} ({}): lot {} wafer {} slot {}, {} dies",
        recipe.recipe.name, recipe.recipe.id, args.lot, args.wafer, args.slot, dies
    );
    if let Err(why) = handle
        .load(recipe, identity)
        .and_then(|_| handle.command(RunCommand::Start))
    {
        eprintln!("cannot start: {why}");
        return Ok(exit_code::NOT_READY);
    }

    let bar = ProgressBar::new(dies);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} dies  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut view = handle.snapshots.reader().context("run readers")?;
    let start = Instant::now();
    let mut run_id = None;
    let end = loop {
        let s = view.read().value;
        if s.run_id > 0 && run_id.is_none() {
            run_id = Some(s.run_id);
        }
        bar.set_position(s.dies_done as u64);
        let state = if s.state == RunState::Suspended {
            format!("SUSPENDED: {}", s.cause)
        } else {
            s.state.label().to_owned()
        };
        bar.set_message(format!(
            "{} defects  ETA {:.0} s  {state}",
            s.defects,
            s.eta_ms as f64 / 1e3
        ));
        if matches!(
            s.state,
            RunState::Complete | RunState::Aborted | RunState::Faulted
        ) {
            break s;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    bar.finish();
    let secs = start.elapsed().as_secs_f64();
    let status = end.exit.unwrap_or(ExitStatus::Faulted);
    println!(
        "{}: {} of {} dies in {secs:.1} s ({:.1} dies/s), {} defects{}",
        status.name(),
        end.dies_done,
        end.dies_total,
        end.dies_done as f64 / secs,
        end.defects,
        if end.cause.as_str().is_empty() {
            String::new()
        } else {
            format!(" — {}", end.cause)
        }
    );
    if let Some(id) = run_id {
        println!("run {id} recorded in {}", args.db.display());
    }
    alarms.stop();
    // Dropping the runtime drops the engine and with it the store, which
    // commits and closes the database.
    drop(rt);
    // The run record is the truth about exports: the engine wrote there why
    // they failed.
    let not_exported = match run_id {
        Some(id) => crate::store::query::export_error(&args.db, id as i64)?,
        None => None,
    };
    if let Some(why) = &not_exported {
        eprintln!("warning: results not exported: {why} (the run is recorded; repeat with `waferscope export`)");
    }
    Ok(match status {
        ExitStatus::Complete if not_exported.is_some() => exit_code::NOT_EXPORTED,
        ExitStatus::Complete => exit_code::COMPLETE,
        ExitStatus::Stopped => exit_code::STOPPED,
        ExitStatus::Aborted => exit_code::ABORTED,
        ExitStatus::Faulted => exit_code::FAULTED,
    })
}
