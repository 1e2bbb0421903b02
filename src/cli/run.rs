//! `waferscope run`: one wafer, headless, on the machine the configuration
//! names (the simulated tool by default), with a progress bar; Ctrl-C
//! stops, a second Ctrl-C aborts.

use crate::machine::MachineConfig;
use crate::monitor::alarm_defs;
use crate::run::{recipe, ExitStatus, RunCommand, RunSnapshot, RunState};
use crate::station::data_dir::DataDir;
use crate::station::{Station, StationConfig};
use crate::store::dirs::ensure_writable_dir;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct RunArgs {
    /// Which driver serves each subsystem.
    pub machine: MachineConfig,
    pub recipe: PathBuf,
    pub lot: String,
    /// One wafer, or a lot from the carrier.
    pub what: RunWhat,
    pub operator: String,
    pub db: PathBuf,
    pub klarf_dir: Option<PathBuf>,
    pub thumbnail_dir: PathBuf,
    /// Taught golden dies, one per recipe (default: `golden/` beside the
    /// database).
    pub golden_dir: Option<PathBuf>,
    pub alarms: PathBuf,
    pub log_dir: PathBuf,
    /// The data directory, if some of the paths above came from it: it is
    /// created and given the shipped alarms and recipes before the checks.
    pub data_dir: Option<DataDir>,
    pub seed: u64,
    /// No stage or camera pacing (benchmarks).
    pub fast: bool,
    /// The simulated camera's frame rate when paced.
    pub sim_fps: f64,
    /// Daily logs and thumbnail directories older than this many days are
    /// deleted (0 keeps everything).
    pub keep_days: u32,
    /// Serve Prometheus metrics here while the run lasts (`--metrics`).
    pub metrics: Option<std::net::SocketAddr>,
}

/// What `waferscope run` runs.
#[derive(Debug, Clone, PartialEq)]
pub enum RunWhat {
    /// The wafer on the chuck, with the ids given (`--wafer`, `--slot`).
    Wafer { wafer: String, slot: u32 },
    /// A lot from the carrier the simulated load port docks (`--carrier
    /// sim`): these slots, or (`None`) every slot holding one wafer.
    Lot { slots: Option<Vec<u32>> },
}

/// Where taught golden dies are kept: `--golden-dir`, or `golden/` beside
/// the database (the station's data stays together).
pub fn golden_dir(args: &RunArgs) -> PathBuf {
    args.golden_dir.clone().unwrap_or_else(|| {
        args.db
            .parent()
            .unwrap_or(std::path::Path::new(""))
            .join("golden")
    })
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
    /// Standard output was closed (`| head`) or could not be written.
    pub const OUTPUT_FAILED: i32 = 8;
    /// `audit --verify`: the audit trail's hash chain is broken.
    pub const AUDIT_BROKEN: i32 = 9;
    /// `gui --fail-on-stall-ms`: the UI went longer than that between two
    /// frames.
    pub const UI_STALLED: i32 = 10;
}

/// How long a running wafer may go without a single snapshot from the run
/// engine before the progress line says the engine is not responding.
/// Generous: a die takes milliseconds, a camera retry a second or two.
pub const ENGINE_SILENT_AFTER: Duration = Duration::from_secs(10);

/// Watches the run snapshots the progress loop reads, so a frozen bar is
/// never shown as live: while the run is RUNNING the engine publishes on
/// every die; no new revision for [`ENGINE_SILENT_AFTER`] means it is not
/// responding. (Paused and suspended runs are legitimately quiet.)
#[derive(Debug)]
pub struct EngineWatch {
    revision: u64,
    changed_at: Instant,
}

impl EngineWatch {
    pub fn new(now: Instant) -> Self {
        Self {
            revision: 0,
            changed_at: now,
        }
    }

    /// Feeds one snapshot read at `now`; returns how long the engine has
    /// been silent while it should not be, if that is over the limit.
    pub fn silent_for(&mut self, snap: &RunSnapshot, now: Instant) -> Option<Duration> {
        if snap.revision != self.revision || snap.state != RunState::Running {
            self.revision = snap.revision;
            self.changed_at = now;
            return None;
        }
        let quiet = now.saturating_duration_since(self.changed_at);
        (quiet >= ENGINE_SILENT_AFTER).then_some(quiet)
    }
}

/// Runs one wafer; returns the exit code. Errors are bad input (exit 2),
/// except a closed standard output ([`crate::cli::out::OutputFailed`]).
///
/// Everything that can be wrong with the input (ids, recipe, alarm file,
/// log, KLARF and thumbnail directories, database) is checked before the
/// run header is printed and before anything is started.
pub fn run(args: &RunArgs) -> Result<i32> {
    // A lot's wafer ids are read at the pre-aligner: only the lot and
    // operator ids are checked here.
    let (wafer, slot) = match &args.what {
        RunWhat::Wafer { wafer, slot } => (wafer.as_str(), *slot),
        RunWhat::Lot { .. } => ("wafer", 1),
    };
    let ids = crate::run::ids::check_identity(&args.lot, wafer, slot, &args.operator)
        .map_err(anyhow::Error::msg)?;
    anyhow::ensure!(
        args.sim_fps > 0.0 && args.sim_fps <= 10_000.0,
        "--sim-fps must be above 0 and at most 10000 frames/s, got {}",
        args.sim_fps
    );
    let recipe = recipe::load(&args.recipe)?;
    // Before the alarms are checked: they may be the shipped ones, copied
    // into the data directory now.
    let created = match &args.data_dir {
        Some(d) => d.prepare()?,
        None => Vec::new(),
    };
    // Checked before anything starts (the station loads it again).
    alarm_defs::load(&args.alarms)?;
    let _log = crate::logging::init(&args.log_dir, false, args.keep_days)?;
    crate::station::data_dir::report_created(&created);
    if let Some(dir) = &args.klarf_dir {
        anyhow::ensure!(
            dir.is_dir(),
            "--klarf-dir {}: no such directory",
            dir.display()
        );
        ensure_writable_dir(dir, "--klarf-dir")?;
    }
    ensure_writable_dir(&args.thumbnail_dir, "--thumbnail-dir")?;
    ensure_writable_dir(&golden_dir(args), "--golden-dir")?;
    // A taught golden that no longer fits the recipe is bad input now, not
    // a fault after the run has started.
    crate::store::golden::load_golden(
        &golden_dir(args),
        &recipe.recipe.id,
        recipe.image_px,
        recipe.image_px,
    )?;
    // Thumbnails are kept per run (run-<id>/) and age out as a whole.
    crate::store::retention::keep_days(&args.thumbnail_dir, "run-", args.keep_days).with_context(
        || {
            format!(
                "--thumbnail-dir {}: cannot start its retention",
                args.thumbnail_dir.display()
            )
        },
    )?;
    for warning in &ids.warnings {
        crate::errln!("warning: {warning}");
        tracing::warn!("{warning}");
    }
    let station = Station::start(StationConfig {
        machine: args.machine.clone(),
        db: args.db.clone(),
        alarms: args.alarms.clone(),
        thumbnails: args.thumbnail_dir.clone(),
        golden_dir: Some(golden_dir(args)),
        klarf_dir: args.klarf_dir.clone(),
        read_history: false,
        wafer_seed: args.seed,
        paced: !args.fast,
        camera_fps: args.sim_fps,
        ..StationConfig::default()
    })?;
    if let Some(addr) = args.metrics {
        let local = station.serve_metrics(addr)?;
        crate::errln!("metrics: http://{local}/metrics");
    }
    let (monitor, handle, rt) = (&station.monitor, &station.engine, station.runtime());
    let engine_task = &station.engine_task;
    for id in &station.recovered_runs {
        crate::errln!("note: run {id} was interrupted (the program stopped mid-run); closed as aborted, its results kept");
    }

    // Give the monitor a moment to see every heartbeat.
    let mut machine_view = monitor.snapshots.reader().context("monitor readers")?;
    let t0 = Instant::now();
    while !machine_view.read().value.all_live() && t0.elapsed() < Duration::from_secs(3) {
        std::thread::sleep(Duration::from_millis(10));
    }
    if let RunWhat::Lot { slots } = &args.what {
        return super::lot::run_lot(&station, recipe, ids.identity, slots.clone(), &args.db);
    }
    let identity = ids.identity;
    let console = crate::access::Actor::console();
    // Ctrl-C: first Stop, then Abort. Each press is sent at once and its
    // answer awaited on a task of its own: waiting here for the Stop's
    // answer (which comes only at the next die boundary, after the pipeline
    // is built) let the Stop finish before a second press was even sent.
    let ctrl_handle = handle.clone();
    let (ctrl_guard, ctrl_actor) = (station.guard.clone(), console.clone());
    rt.spawn(async move {
        let mut presses = 0;
        while tokio::signal::ctrl_c().await.is_ok() {
            presses += 1;
            let (cmd, what) = if presses == 1 {
                crate::errln!("\nCtrl-C: stopping after the current die (press again to abort)");
                (RunCommand::Stop, "Stop")
            } else {
                crate::errln!("\nCtrl-C again: aborting");
                (
                    RunCommand::Abort {
                        reason: "operator pressed Ctrl-C twice".into(),
                    },
                    "Abort",
                )
            };
            let answer = ctrl_handle.command_nowait(cmd);
            let (guard, actor) = (ctrl_guard.clone(), ctrl_actor.clone());
            tokio::spawn(async move {
                let outcome = answer
                    .recv_async()
                    .await
                    .unwrap_or_else(|_| Err("the run engine has stopped".into()));
                guard.record(
                    &actor,
                    &format!("run_{}", what.to_lowercase()),
                    "Ctrl-C",
                    &outcome,
                );
                if let Err(why) = outcome {
                    crate::errln!("{what} refused: {why}");
                }
            });
        }
    });

    let dies = recipe.plan.len() as u64;
    // Nothing is started yet: a closed stdout ends here (exit 8).
    crate::outln!(
        "{} ({}): lot {} wafer {} slot {}, {} dies",
        recipe.recipe.name,
        recipe.recipe.id,
        identity.lot,
        identity.wafer,
        identity.slot,
        dies
    )?;
    if let Some(note) = recipe.reference_note() {
        crate::errln!("note: {note}");
    }
    let params = format!(
        "recipe={} lot={} wafer={} slot={} operator={}",
        recipe.recipe.id, identity.lot, identity.wafer, identity.slot, identity.operator
    );
    let started = handle
        .load(recipe, identity)
        .and_then(|_| handle.command(RunCommand::Start));
    station
        .guard
        .record(&console, "run_start", &params, &started);
    if let Err(why) = started {
        crate::errln!("cannot start: {why}");
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
    let mut watch = EngineWatch::new(Instant::now());
    let end = loop {
        let s = view.read().value;
        if s.run_id > 0 && run_id.is_none() {
            run_id = Some(s.run_id);
        }
        bar.set_position(s.dies_done as u64);
        let state = if engine_task.is_finished() {
            // The engine task ended without a final state: it panicked.
            "RUN ENGINE STOPPED (see the log)".to_owned()
        } else if let Some(quiet) = watch.silent_for(&s, Instant::now()) {
            format!(
                "run engine not responding (no update for {:.0} s)",
                quiet.as_secs_f64()
            )
        } else if s.state == RunState::Suspended {
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
        if engine_task.is_finished() {
            bar.abandon();
            crate::errln!("error: the run engine stopped without ending the run (see the log)");
            return Ok(exit_code::FAULTED);
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    // The last line shows the dies really inspected: `finish()` would jump
    // the bar to the end after a stop or abort.
    bar.set_position(end.dies_done as u64);
    bar.abandon();
    let secs = start.elapsed().as_secs_f64();
    let status = end.exit.unwrap_or(ExitStatus::Faulted);
    // The run has ended and is recorded: a closed stdout from here on only
    // loses the console copy, and the exit code still tells how it ended.
    let summary = crate::outln!(
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
    )
    .and_then(|()| match run_id {
        Some(id) => crate::outln!("run {id} recorded in {}", args.db.display()),
        None => Ok(()),
    });
    if let Err(e) = summary {
        crate::errln!("warning: {e}");
    }
    // Dropping the station stops the alarm service (its journal written
    // out) and drops the runtime, the engine and with it the store, which
    // commits and closes the database.
    drop(station);
    // The engine's end state says whether the exports were written; the
    // database is not read again (a read could fail for a run that did
    // happen, and would leave -wal/-shm behind).
    let not_exported = end.not_exported.as_str();
    if !not_exported.is_empty() {
        crate::errln!("warning: results not exported: {not_exported} (the run is recorded; repeat with `waferscope export`)");
    }
    Ok(match status {
        ExitStatus::Complete if !not_exported.is_empty() => exit_code::NOT_EXPORTED,
        ExitStatus::Complete => exit_code::COMPLETE,
        ExitStatus::Stopped => exit_code::STOPPED,
        ExitStatus::Aborted => exit_code::ABORTED,
        ExitStatus::Faulted => exit_code::FAULTED,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_wafer_without_updates_reads_not_responding() {
        let t0 = Instant::now();
        let mut watch = EngineWatch::new(t0);
        let mut snap = RunSnapshot {
            state: RunState::Running,
            revision: 5,
            ..RunSnapshot::default()
        };
        assert_eq!(watch.silent_for(&snap, t0), None);
        let later = t0 + ENGINE_SILENT_AFTER + Duration::from_secs(1);
        assert_eq!(
            watch.silent_for(&snap, later),
            Some(ENGINE_SILENT_AFTER + Duration::from_secs(1))
        );
        // A new revision is life.
        snap.revision = 6;
        assert_eq!(watch.silent_for(&snap, later), None);
        // A paused or suspended run is quiet by design.
        snap.state = RunState::Suspended;
        let much_later = later + 3 * ENGINE_SILENT_AFTER;
        assert_eq!(watch.silent_for(&snap, much_later), None);
    }
}
