//! `waferscope serve`: the station without a window, for a host-driven
//! tool and for tests. The same composition root as the window
//! ([`Station::start`], then [`Station::start_gem`]); runs until SIGINT or
//! SIGTERM. A run in progress then is aborted (its results kept) before the
//! station stops, so the record is closed with the reason.

use crate::host::gem::{CommState, GemConfig};
use crate::host::hsms::HsmsMode;
use crate::machine::MachineConfig;
use crate::monitor::alarm_defs;
use crate::run::{RunCommand, RunState};
use crate::station::data_dir::DataDir;
use crate::station::{Station, StationConfig};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct ServeArgs {
    pub machine: MachineConfig,
    /// Passive (listen) or active (connect).
    pub mode: HsmsMode,
    /// HSMS device id.
    pub session_id: u16,
    /// HSMS T3 and T5 instead of the persisted equipment constants.
    pub t3: Option<Duration>,
    pub t5: Option<Duration>,
    pub db: PathBuf,
    pub alarms: PathBuf,
    pub recipes: PathBuf,
    pub thumbnail_dir: PathBuf,
    pub log_dir: PathBuf,
    /// Created and given the shipped alarms and recipes first, if some
    /// paths came from it.
    pub data_dir: Option<DataDir>,
    pub seed: u64,
    /// No stage or camera pacing.
    pub fast: bool,
    pub keep_days: u32,
    /// Set the control switch to REMOTE at start (`--remote`).
    pub remote: bool,
    /// Serve Prometheus metrics here (`--metrics`).
    pub metrics: Option<SocketAddr>,
}

/// The address options of `serve`, as one mode: `--gem` and
/// `--gem-active` exclude each other (clap checks); neither is passive on
/// HSMS's customary 127.0.0.1:5000.
pub fn mode(gem: Option<SocketAddr>, gem_active: Option<SocketAddr>) -> HsmsMode {
    match (gem, gem_active) {
        (_, Some(connect)) => HsmsMode::Active { connect },
        (Some(listen), None) => HsmsMode::Passive { listen },
        (None, None) => HsmsMode::default(),
    }
}

/// How long a run in progress may take to abort when the program is asked
/// to stop (it finishes the die in hand).
const ABORT_LIMIT: Duration = Duration::from_secs(15);

pub fn run(args: &ServeArgs) -> Result<()> {
    let created = match &args.data_dir {
        Some(d) => d.prepare()?,
        None => Vec::new(),
    };
    alarm_defs::load(&args.alarms)?;
    let _log = crate::logging::init(&args.log_dir, false, args.keep_days)?;
    crate::station::data_dir::report_created(&created);
    let mut cfg = StationConfig {
        machine: args.machine.clone(),
        db: args.db.clone(),
        alarms: args.alarms.clone(),
        recipes: args.recipes.clone(),
        thumbnails: args.thumbnail_dir.clone(),
        read_history: false,
        wafer_seed: args.seed,
        paced: !args.fast,
        ..StationConfig::default()
    };
    cfg.klarf_dir = Some(crate::station::exports_ready(&cfg));
    let station = Station::start(cfg)?;
    for id in &station.recovered_runs {
        crate::errln!("note: run {id} was interrupted (the program stopped mid-run); closed as aborted, its results kept");
    }
    // The state file lives beside the database, with the rest of the
    // station's data.
    let data = args
        .db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let mut cfg = GemConfig::new(args.mode, data, &args.log_dir, args.recipes.clone());
    cfg.session_id = args.session_id;
    cfg.t3 = args.t3;
    cfg.t5 = args.t5;
    let gem = station.start_gem(cfg)?;
    if let Some(addr) = args.metrics {
        let bound = station.serve_metrics(addr)?;
        crate::outln!("metrics: http://{bound}/metrics")?;
    }
    if args.remote {
        gem.set_remote(true)
            .map_err(|why| anyhow::anyhow!("--remote: {why}"))?;
    }
    match (args.mode, gem.local_addr()) {
        (HsmsMode::Passive { .. }, Some(addr)) => {
            crate::outln!("GEM: listening on {addr} (HSMS passive)")?
        }
        (HsmsMode::Active { connect }, _) => {
            crate::outln!("GEM: connecting to {connect} (HSMS active)")?
        }
        (HsmsMode::Passive { listen }, None) => crate::outln!("GEM: listening on {listen}")?,
    }
    if let Some(path) = gem.secs_log().path() {
        crate::outln!("SECS log: {}", path.display())?;
    }
    crate::outln!(
        "control state {}, communication {}; Ctrl-C or SIGTERM stops",
        gem.control_state().name(),
        CommState::NotCommunicating.name()
    )?;

    let signal = station.runtime().block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        // The GEM task's end is watched too: a task that died (a panic)
        // must end the headless station with an error, not leave a tool
        // that looks up but answers no host.
        let gem_ended = async {
            while !gem.task_ended() {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C").map(|()| "SIGINT"),
            _ = term.recv() => Ok("SIGTERM"),
            () = gem_ended => Err(anyhow::anyhow!("the GEM task has stopped (see the log); the station stops")),
        }
    })?;
    crate::errln!("{signal}: stopping");
    tracing::info!("serve: {signal}, stopping");
    let mut view = station.engine.snapshots.reader().context("run readers")?;
    if view.read().value.state.in_run() {
        let reason = format!("the station was stopped ({signal})");
        let aborted = station.engine.command(RunCommand::Abort {
            reason: reason.clone(),
        });
        station.guard.record(
            &crate::access::Actor::console(),
            "run_abort",
            &format!("reason={reason}"),
            &aborted,
        );
        if let Err(why) = aborted {
            crate::errln!("abort refused: {why}");
        }
        let t0 = Instant::now();
        while view.read().value.state.in_run() && t0.elapsed() < ABORT_LIMIT {
            std::thread::sleep(Duration::from_millis(50));
        }
        let state = view.read().value.state;
        if state.in_run() {
            crate::errln!("the run did not end within {ABORT_LIMIT:?}; it is closed as aborted at the next start");
        } else if state != RunState::Idle {
            crate::errln!("run ended: {}", state.label());
        }
    }
    station.runtime().block_on(gem.shutdown());
    drop(station);
    Ok(())
}
