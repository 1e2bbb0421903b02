//! `waferscope bench station`: the station as `waferscope run` composes it
//! (`Station::start`: run engine, simulated stage and camera, detection
//! workers, the results thread, the SQLite store, the display frame and
//! defect thumbnails written to disk, the device monitor and the alarm
//! evaluator), unpaced, inspecting whole wafers of a recipe. One wafer warms
//! it up (and teaches the golden die if the recipe needs one); the next are
//! timed from Start to the run's COMPLETE, so the figure includes building
//! and ending each wafer's pipeline and writing its results. Beside it, in
//! the same process: the detection-only figure and memcpy of the same frame
//! size, both rotating through frames beyond the cache.
//!
//! Not in it: the window (see the GUI check) and KLARF export.

use super::thread_cpu::{CpuSampler, ThreadCpu};
use super::Report;
use crate::hot::alloc_count;
use crate::run::{recipe, RunCommand, RunState};
use crate::station::{Station, StationConfig};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct StationBenchConfig {
    pub recipe: PathBuf,
    /// Images each die at this many pixels square instead of the recipe's
    /// own (its optics' pixel size changed to fit): one recipe, every size.
    pub image_px: Option<u32>,
    pub alarms: PathBuf,
    /// Wafers timed after the warm-up wafer.
    pub wafers: usize,
    /// Detection workers (None: as the station picks).
    pub workers: Option<usize>,
    /// A hazy wafer: this percentage of each timed die's 8×8 patches imaged
    /// 90 grey levels brighter (a different set per die; the warm-up wafer,
    /// which teaches the golden die, stays clean).
    pub haze_percent: f64,
}

/// Dies of a timed wafer before the allocation window opens (the pipeline's
/// threads prime their buffers at start) and before its end at which it
/// closes (the threads end with the wafer).
const WINDOW_MARGIN_DIES: u32 = 32;
/// Longest a wafer may take before the bench gives up.
const WAFER_TIMEOUT: Duration = Duration::from_secs(600);

/// What one timed wafer measured.
#[derive(Default)]
struct Wafer {
    dies: u32,
    seconds: f64,
    /// Hot thread → its allocations inside the window.
    allocations: BTreeMap<&'static str, u64>,
    window_dies: u32,
    capture_ns: u64,
    detect_ns: u64,
    stall_ns: u64,
    handoff_p99_ns: u64,
    drops: u64,
    results_lost: u64,
    workers: usize,
    defects: u32,
    pixels_flagged: u64,
    pixels_inspected: u64,
    dies_over_capacity: u64,
    dies_not_compared: u64,
    /// CPU by thread name from the Start command to COMPLETE.
    cpu: ThreadCpu,
}

pub fn run(cfg: StationBenchConfig) -> Result<Report> {
    anyhow::ensure!(cfg.wafers >= 1, "--wafers must be at least 1");
    anyhow::ensure!(
        (0.0..=100.0).contains(&cfg.haze_percent),
        "--haze-percent must be 0 to 100, got {}",
        cfg.haze_percent
    );
    let recipe = match cfg.image_px {
        None => recipe::load(&cfg.recipe)?,
        Some(px) => at_image_size(&cfg.recipe, px)?,
    };
    let size = recipe.image_px;
    let mut r = Report::new("station");
    r.add_text("recipe", &recipe.recipe.id);
    r.add("frame_size", size as f64, "px");
    r.add("dies_per_wafer", recipe.plan.len() as f64, "");

    let (detection, memcpy) = super::pipeline::detection_and_memcpy_per_core(size)?;

    let dir = std::env::temp_dir().join(format!("waferscope-bench-station-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = measure(&cfg, recipe, &dir);
    // The data directory goes whatever happened; failing to remove it does
    // not void the figures (the station's threads may still be closing
    // files in it), but it is said.
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        crate::errln!("warning: cannot remove {}: {e}", dir.display());
    }
    let wafers = result?;

    let dies: u32 = wafers.iter().map(|w| w.dies).sum();
    let seconds: f64 = wafers.iter().map(|w| w.seconds).sum();
    let pixels = size as f64 * size as f64;
    let workers = wafers[0].workers;
    r.add("detection_workers", workers as f64, "");
    r.add("haze", cfg.haze_percent, "percent_of_patches");
    r.add("wafers_timed", wafers.len() as f64, "");
    r.add("station", dies as f64 / seconds, "dies_per_s");
    r.add(
        "station_per_core",
        dies as f64 * pixels / seconds / 1e6 / cores(),
        "MPix_per_s",
    );
    // The classic die with default (grey-level) thresholds, not the
    // recipe's settings: the pipeline bench's `detection_per_core`.
    r.add("detection_only_per_core", detection, "MPix_per_s");
    r.add("memcpy_rotating_frames", memcpy, "MPix_per_s");
    let window_dies: u32 = wafers.iter().map(|w| w.window_dies).sum();
    let mut per_thread: BTreeMap<&str, u64> = BTreeMap::new();
    for w in &wafers {
        for (name, a) in &w.allocations {
            *per_thread.entry(name).or_default() += a;
        }
    }
    for (name, a) in &per_thread {
        r.add(
            &format!("allocations_per_die_{name}"),
            *a as f64 / window_dies.max(1) as f64,
            "",
        );
    }
    let share = |ns: u64| 100.0 * ns as f64 / (seconds * 1e9);
    let sum = |f: fn(&Wafer) -> u64| wafers.iter().map(f).sum::<u64>();
    r.add(
        "acquisition_capturing",
        share(sum(|w| w.capture_ns)),
        "percent_of_wall",
    );
    r.add(
        "acquisition_waiting_for_a_free_buffer",
        share(sum(|w| w.stall_ns)),
        "percent_of_wall",
    );
    r.add(
        "detection_busy_per_worker",
        share(sum(|w| w.detect_ns)) / workers.max(1) as f64,
        "percent_of_wall",
    );
    // Every thread's CPU over the timed wafers, by name, as a share of
    // one core: the station's time outside the hot threads (run engine,
    // results and store, thumbnails, tokio) as well as in them.
    let mut cpu = ThreadCpu::default();
    for w in &wafers {
        cpu.add(&w.cpu);
    }
    let of_a_core = |s: f64| 100.0 * s / cpu.wall_s.max(1e-9);
    r.add("cpu_process", of_a_core(cpu.process_s), "percent_of_a_core");
    let mut by_cpu: Vec<_> = cpu.by_name.iter().collect();
    by_cpu.sort_by(|a, b| b.1.total_cmp(a.1));
    for (name, s) in by_cpu {
        r.add(
            &format!("cpu_thread_{name}"),
            of_a_core(*s),
            "percent_of_a_core",
        );
    }
    r.add(
        "cpu_not_attributed",
        of_a_core(cpu.not_attributed_s()),
        "percent_of_a_core",
    );
    r.add(
        "handoff_latency_p99_worst_wafer",
        wafers.iter().map(|w| w.handoff_p99_ns).max().unwrap_or(0) as f64 / 1e3,
        "us",
    );
    r.add(
        "flagged",
        100.0 * sum(|w| w.pixels_flagged) as f64 / sum(|w| w.pixels_inspected).max(1) as f64,
        "percent_of_pixels",
    );
    r.add(
        "dies_over_capacity",
        sum(|w| w.dies_over_capacity) as f64,
        "",
    );
    r.add("dies_not_compared", sum(|w| w.dies_not_compared) as f64, "");
    r.add("time_per_die", seconds * 1e3 / dies as f64, "ms");
    r.add("drops", sum(|w| w.drops) as f64, "");
    r.add("results_lost", sum(|w| w.results_lost) as f64, "");
    r.add(
        "defects_found_per_wafer",
        wafers.iter().map(|w| w.defects as f64).sum::<f64>() / wafers.len() as f64,
        "",
    );
    Ok(r)
}

/// The recipe at `path` with its pixel size set so that a die images at
/// `px`² pixels (checked like any recipe).
fn at_image_size(path: &std::path::Path, px: u32) -> Result<recipe::ValidRecipe> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut doc: toml::Table = toml::from_str(&text)
        .with_context(|| format!("{}: not a recipe (TOML)", path.display()))?;
    let die_um = doc
        .get("wafer")
        .and_then(|w| w.get("die_size_um"))
        .and_then(|d| d.get(0))
        .and_then(|v| v.as_float().or_else(|| v.as_integer().map(|i| i as f64)))
        .with_context(|| format!("{}: wafer.die_size_um is missing", path.display()))?;
    let optics = doc
        .entry("optics")
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .with_context(|| format!("{}: optics is not a table", path.display()))?;
    optics.insert("pixel_um".into(), toml::Value::Float(die_um / px as f64));
    let dir = path.parent().unwrap_or(std::path::Path::new("."));
    recipe::parse_in(&toml::to_string(&doc)?, dir)
        .with_context(|| format!("{} at {px}² px", path.display()))
}

/// Cores this process may run on.
fn cores() -> f64 {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1) as f64
}

fn measure(
    cfg: &StationBenchConfig,
    recipe: crate::run::recipe::ValidRecipe,
    dir: &std::path::Path,
) -> Result<Vec<Wafer>> {
    let station = Station::start(StationConfig {
        db: dir.join("station.db"),
        alarms: cfg.alarms.clone(),
        recipes: dir.to_path_buf(),
        thumbnails: dir.join("thumbnails"),
        golden_dir: Some(dir.join("golden")),
        read_history: false,
        paced: false,
        detection_workers: cfg.workers,
        ..StationConfig::default()
    })?;
    // The interlocks want every subsystem's heartbeat seen, as `run` waits.
    let mut machine_view = station
        .monitor
        .snapshots
        .reader()
        .context("monitor readers")?;
    let t0 = Instant::now();
    while !machine_view.read().value.all_live() {
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(10),
            "the simulated tool's subsystems did not all report within 10 s"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut wafers = Vec::new();
    for k in 0..=cfg.wafers {
        if k == 1 {
            station.device_faults.set_haze(cfg.haze_percent / 100.0);
        }
        let w = wafer(&station, &recipe, k as u32 + 1)?;
        if k > 0 {
            wafers.push(w);
        }
    }
    Ok(wafers)
}

/// Runs wafer `slot` to COMPLETE and measures it.
fn wafer(station: &Station, recipe: &recipe::ValidRecipe, slot: u32) -> Result<Wafer> {
    let handle = &station.engine;
    let ids = crate::run::ids::check_identity("BENCH", &format!("W{slot:02}"), slot, "bench")
        .map_err(anyhow::Error::msg)?;
    let mut view = handle.snapshots.reader().context("run readers")?;
    handle
        .load(recipe.clone(), ids.identity)
        .map_err(|e| anyhow::anyhow!("wafer {slot}: cannot load the recipe: {e}"))?;
    // Timed from the Start command (the recipe load and its checks are
    // not part of inspecting a wafer) to the snapshot that shows COMPLETE,
    // read every 2 ms.
    let start = Instant::now();
    let sampler = CpuSampler::start()?;
    handle
        .command(RunCommand::Start)
        .map_err(|e| anyhow::anyhow!("wafer {slot}: cannot start: {e}"))?;
    let mut w = Wafer::default();
    // Dies done and each hot thread's (name, allocations, bytes) when the
    // allocation window opened.
    type Opened = (u32, Vec<(&'static str, u64, u64)>);
    let mut opened: Option<Opened> = None;
    let mut closed = false;
    let mut live = None;
    loop {
        let s = view.read().value;
        anyhow::ensure!(
            start.elapsed() < WAFER_TIMEOUT,
            "wafer {slot}: not complete after {} s ({} of {} dies, {})",
            WAFER_TIMEOUT.as_secs(),
            s.dies_done,
            s.dies_total,
            s.state.label()
        );
        let total = s.dies_total;
        if opened.is_none() && s.state == RunState::Running && s.dies_done >= WINDOW_MARGIN_DIES {
            opened = Some((s.dies_done, alloc_count::hot_threads()));
            // This wafer's pipeline: dies are done, so it is built (the
            // station keeps the last one until the next replaces it).
            live = station.live_pipeline();
        }
        if let (Some((from, before)), false) = (&opened, closed) {
            if s.dies_done + WINDOW_MARGIN_DIES >= total && s.dies_done > *from {
                let after = alloc_count::hot_threads();
                for (name, b, _) in before {
                    // A thread gone by now would hide its allocations.
                    let (_, a, _) =
                        after.iter().find(|(n, _, _)| n == name).with_context(|| {
                            format!(
                                "wafer {slot}: hot thread {name} ended before the window closed"
                            )
                        })?;
                    w.allocations.insert(name, a.saturating_sub(*b));
                }
                w.window_dies = s.dies_done - from;
                closed = true;
            }
        }
        match s.state {
            RunState::Complete => {
                w.seconds = start.elapsed().as_secs_f64();
                w.cpu = sampler.finish()?;
                w.dies = s.dies_done;
                w.defects = s.defects;
                // Back to IDLE for the next wafer, as the lot runner does.
                handle
                    .command(RunCommand::Acknowledge)
                    .map_err(|e| anyhow::anyhow!("wafer {slot}: acknowledging: {e}"))?;
                break;
            }
            RunState::Aborted | RunState::Faulted => {
                anyhow::bail!("wafer {slot} ended {}: {}", s.state.label(), s.cause)
            }
            _ => std::thread::sleep(Duration::from_millis(2)),
        }
    }
    anyhow::ensure!(
        closed,
        "wafer {slot}: too few dies ({}) to measure allocations between its first and last {WINDOW_MARGIN_DIES}",
        w.dies
    );
    let live = live.context("the station showed no pipeline during the wafer")?;
    let t = &live.telemetry;
    let total = |h: &crate::hot::LatencyHistogram| {
        let s = h.summary();
        s.mean.saturating_mul(s.count)
    };
    w.capture_ns = total(&t.capture_time);
    w.detect_ns = total(&t.detect_time);
    w.stall_ns = t.stall_ns.get();
    w.handoff_p99_ns = t.handoff_latency.summary().p99;
    w.drops = t.drops.get();
    w.results_lost = t.results_lost.get();
    w.workers = live.workers;
    w.pixels_flagged = t.pixels_flagged.get();
    w.pixels_inspected = t.pixels_inspected.get();
    w.dies_over_capacity = t.dies_over_capacity.get();
    w.dies_not_compared = t.dies_not_compared.get();
    Ok(w)
}
