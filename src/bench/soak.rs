//! `waferscope soak`: a day of running, accelerated. The pipeline as a run
//! builds it (`SimMachine::build_pipeline`: simulated camera and stage,
//! detection workers, the results hand-off, the display frame; the recipe's
//! detector settings and reference) inspects the recipe's plan over and
//! over, as fast as the machine allows, for `--frames` dies. Every interval
//! it logs the process's resident memory, each hot thread's allocations, the
//! frame pool's occupancy, the detection queue and the hand-off latency of
//! that interval to a CSV, and at the end draws RSS and latency over frames
//! (PNG, `soak_plot`).
//!
//! Not in it: the results store (SQLite), defect thumbnails on disk and the
//! window. Those grow with what they record, by design; this is the part
//! that must not grow at all.

use crate::hot::alloc_count;
use crate::run::machine::{MachineControl, SimMachine};
use crate::run::recipe::ValidRecipe;
use anyhow::{Context, Result};
use serde_json::{json, Value};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct SoakConfig {
    pub recipe: ValidRecipe,
    pub frames: u64,
    /// Frames between two samples.
    pub interval: u64,
    /// Detection workers (None: as a run picks).
    pub workers: Option<usize>,
    pub csv: PathBuf,
    pub plot: Option<PathBuf>,
}

impl SoakConfig {
    /// A sample every `frames / 200` frames, at least every 1,000.
    pub fn default_interval(frames: u64) -> u64 {
        (frames / 200).max(1_000).min(frames.max(1))
    }
}

/// One line of the CSV.
#[derive(Debug, Clone)]
pub struct Sample {
    pub frames: u64,
    pub elapsed_s: f64,
    /// Dies per second over the interval.
    pub dies_per_s: f64,
    pub rss_kib: u64,
    /// Allocations of each hot thread during the interval, in the order of
    /// `Soak::hot_threads`.
    pub hot_allocations: Vec<u64>,
    pub pool_in_use: usize,
    pub pool_capacity: usize,
    pub queue_depth: u64,
    pub handoff_p50_us: f64,
    pub handoff_p99_us: f64,
    pub handoff_max_us: f64,
    pub detect_p99_us: f64,
    pub drops: u64,
}

pub struct Soak {
    pub frames: u64,
    pub image_px: u32,
    pub workers: usize,
    /// Names of the hot threads, as the CSV's columns.
    pub hot_threads: Vec<&'static str>,
    pub samples: Vec<Sample>,
    /// Samples before this index are the warm-up (see `WARM_UP_FRACTION`).
    pub warm_up_samples: usize,
    pub defects_found: u64,
}

/// Longest the soak waits for the next die's result.
const NO_PROGRESS_LIMIT: Duration = Duration::from_secs(30);

/// The first twentieth of the frames (at least one interval) is warm-up:
/// buffers, channels and caches reach their size there.
const WARM_UP_FRACTION: f64 = 0.05;

/// Resident memory of this process, KiB (Linux: `/proc/self/statm`).
pub fn rss_kib() -> Result<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").context("/proc/self/statm")?;
    let resident: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .context("/proc/self/statm: no resident page count")?;
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    Ok(resident * page.max(1) as u64 / 1024)
}

/// Runs the soak, writing the CSV as it goes (a soak that dies keeps what it
/// logged) and the plot at the end.
pub fn run(cfg: SoakConfig) -> Result<Soak> {
    anyhow::ensure!(cfg.frames > 0, "--frames must be at least 1");
    anyhow::ensure!(cfg.interval > 0, "--interval must be at least 1");
    let recipe = &cfg.recipe;
    let mut machine = SimMachine::fast(1);
    machine.workers = cfg.workers;
    let done = Arc::new(AtomicU64::new(0));
    let defects = Arc::new(AtomicU64::new(0));
    let (done_in_sink, defects_in_sink) = (done.clone(), defects.clone());
    let pipeline = machine.build_pipeline(
        recipe,
        Box::new(move |r| {
            defects_in_sink.fetch_add(r.count as u64, Ordering::Relaxed);
            done_in_sink.fetch_add(1, Ordering::Release);
        }),
        None,
    )?;
    // The plan's dies (site indices), as the run engine sends them: a
    // sampled plan inspects its dies against the golden die.
    let plan: Arc<[u32]> = recipe.plan.iter().copied().collect();
    anyhow::ensure!(
        !plan.is_empty(),
        "recipe {}: its plan has no die",
        recipe.recipe.id
    );
    let telemetry = pipeline.telemetry().clone();
    let pool = pipeline.pool().clone();

    let file = std::fs::File::create(&cfg.csv)
        .with_context(|| format!("cannot create {}", cfg.csv.display()))?;
    let mut csv = std::io::BufWriter::new(file);
    let mut soak = Soak {
        frames: cfg.frames,
        image_px: recipe.image_px,
        workers: 0,
        hot_threads: Vec::new(),
        samples: Vec::new(),
        warm_up_samples: 0,
        defects_found: 0,
    };
    let warm_up_frames = ((cfg.frames as f64 * WARM_UP_FRACTION) as u64).max(cfg.interval);

    // The feeder: the plan's dies in order, wafer after wafer, as the run
    // engine sends them; `inspect` blocks while 64 are queued.
    let pipeline = Arc::new(pipeline);
    let feeder = {
        let pipeline = pipeline.clone();
        let plan = plan.clone();
        let frames = cfg.frames;
        std::thread::Builder::new()
            .name("soak-feeder".into())
            .spawn(move || {
                let mut sent = 0u64;
                while sent < frames && pipeline.fault().is_none() {
                    for &i in plan.iter() {
                        if sent == frames {
                            break;
                        }
                        pipeline.inspect(i);
                        sent += 1;
                    }
                    pipeline.end_of_plan();
                }
                sent
            })
            .context("cannot start the soak's feeder thread")?
    };

    let start = Instant::now();
    let mut next = cfg.interval.min(cfg.frames);
    let (mut last_frames, mut last_t) = (0u64, 0f64);
    let mut last_allocations: Vec<u64> = Vec::new();
    // A pipeline that stops handing results over without a fault (or a
    // feeder stuck in `inspect`) ends the soak with an error, not a hang.
    let (mut progress_at, mut progress) = (Instant::now(), 0u64);
    loop {
        let now_done = done.load(Ordering::Acquire);
        if let Some(fault) = pipeline.fault() {
            anyhow::bail!("the pipeline faulted after {now_done} dies: {fault}");
        }
        if now_done != progress {
            (progress_at, progress) = (Instant::now(), now_done);
        }
        anyhow::ensure!(
            progress_at.elapsed() < NO_PROGRESS_LIMIT,
            "no die inspected for {} s, at {now_done} of {} dies{}",
            NO_PROGRESS_LIMIT.as_secs(),
            cfg.frames,
            if feeder.is_finished() {
                " (every die sent)"
            } else {
                ""
            }
        );
        if now_done < next {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let t = start.elapsed().as_secs_f64();
        let threads = alloc_count::hot_threads();
        if soak.hot_threads.is_empty() {
            soak.hot_threads = threads.iter().map(|(n, _, _)| *n).collect();
            soak.hot_threads.sort_unstable();
            soak.workers = soak
                .hot_threads
                .iter()
                .filter(|n| n.starts_with("detect"))
                .count();
            write!(
                csv,
                "frames,elapsed_s,dies_per_s,rss_kib,pool_in_use,pool_capacity,queue_depth,\
                 handoff_p50_us,handoff_p99_us,handoff_max_us,detect_p99_us,drops"
            )?;
            for name in &soak.hot_threads {
                write!(csv, ",allocations_{name}")?;
            }
            writeln!(csv)?;
            last_allocations = vec![0; soak.hot_threads.len()];
        }
        let totals: Vec<u64> = soak
            .hot_threads
            .iter()
            .map(|name| {
                threads
                    .iter()
                    .find(|(n, _, _)| n == name)
                    .map(|(_, a, _)| *a)
                    .unwrap_or(0)
            })
            .collect();
        let handoff = telemetry.handoff_latency.summary();
        let detect = telemetry.detect_time.summary();
        telemetry.handoff_latency.reset();
        telemetry.detect_time.reset();
        let sample = Sample {
            frames: now_done,
            elapsed_s: t,
            dies_per_s: (now_done - last_frames) as f64 / (t - last_t).max(1e-9),
            rss_kib: rss_kib()?,
            hot_allocations: totals
                .iter()
                .zip(&last_allocations)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
            pool_in_use: pool.in_use(),
            pool_capacity: pool.capacity(),
            queue_depth: telemetry.queue_depth.get(),
            handoff_p50_us: handoff.p50 as f64 / 1e3,
            handoff_p99_us: handoff.p99 as f64 / 1e3,
            handoff_max_us: handoff.max as f64 / 1e3,
            detect_p99_us: detect.p99 as f64 / 1e3,
            drops: telemetry.drops.get(),
        };
        last_allocations = totals;
        (last_frames, last_t) = (now_done, t);
        write_row(&mut csv, &sample)?;
        // Flushed each interval: a soak that dies keeps what it logged.
        csv.flush()
            .with_context(|| format!("cannot write {}", cfg.csv.display()))?;
        if now_done < warm_up_frames {
            soak.warm_up_samples = soak.samples.len() + 1;
        }
        soak.samples.push(sample);
        if now_done >= cfg.frames {
            break;
        }
        next = (now_done / cfg.interval + 1) * cfg.interval;
        next = next.min(cfg.frames);
    }
    let sent = feeder
        .join()
        .map_err(|e| anyhow::anyhow!("the soak's feeder thread panicked: {e:?}"))?;
    anyhow::ensure!(
        sent == cfg.frames,
        "only {sent} of {} dies were sent",
        cfg.frames
    );
    soak.defects_found = defects.load(Ordering::Relaxed);
    let pipeline = Arc::try_unwrap(pipeline)
        .map_err(|_| anyhow::anyhow!("the pipeline is still shared at the end of the soak"))?;
    pipeline
        .finish()
        .map_err(|e| anyhow::anyhow!("the pipeline did not end cleanly: {e}"))?;
    // The figures compare steady samples with the first of them.
    anyhow::ensure!(
        soak.steady().len() >= 2,
        "{} samples after the warm-up are too few to judge memory and allocations: \
         raise --frames or lower --interval",
        soak.steady().len()
    );
    if let Some(plot) = &cfg.plot {
        super::soak_plot::draw(&soak, plot)?;
    }
    Ok(soak)
}

fn write_row(csv: &mut impl Write, s: &Sample) -> std::io::Result<()> {
    write!(
        csv,
        "{},{:.3},{:.1},{},{},{},{},{:.1},{:.1},{:.1},{:.1},{}",
        s.frames,
        s.elapsed_s,
        s.dies_per_s,
        s.rss_kib,
        s.pool_in_use,
        s.pool_capacity,
        s.queue_depth,
        s.handoff_p50_us,
        s.handoff_p99_us,
        s.handoff_max_us,
        s.detect_p99_us,
        s.drops
    )?;
    for a in &s.hot_allocations {
        write!(csv, ",{a}")?;
    }
    writeln!(csv)
}

impl Soak {
    /// The samples after warm-up.
    pub fn steady(&self) -> &[Sample] {
        &self.samples[self.warm_up_samples.min(self.samples.len())..]
    }

    /// RSS at the first sample after warm-up, KiB.
    pub fn rss_after_warm_up_kib(&self) -> u64 {
        self.steady().first().map(|s| s.rss_kib).unwrap_or(0)
    }

    /// The largest RSS departure from `rss_after_warm_up_kib`, percent.
    pub fn rss_drift_percent(&self) -> f64 {
        let base = self.rss_after_warm_up_kib().max(1) as f64;
        self.steady()
            .iter()
            .map(|s| (s.rss_kib as f64 - base).abs() / base * 100.0)
            .fold(0.0, f64::max)
    }

    /// Hot-thread allocations after warm-up: every steady interval but the
    /// first, which began during the warm-up.
    pub fn hot_allocations_after_warm_up(&self) -> u64 {
        self.steady()
            .iter()
            .skip(1)
            .flat_map(|s| s.hot_allocations.iter())
            .sum()
    }

    /// p99 hand-off latency of the first and last steady intervals, µs.
    pub fn handoff_p99_first_last_us(&self) -> (f64, f64) {
        let s = self.steady();
        (
            s.first().map(|s| s.handoff_p99_us).unwrap_or(0.0),
            s.last().map(|s| s.handoff_p99_us).unwrap_or(0.0),
        )
    }

    pub fn to_text(&self) -> String {
        let (p99_first, p99_last) = self.handoff_p99_first_last_us();
        let last = self.samples.last();
        format!(
            "soak: {} dies of {px}×{px} px, {} detection workers, {} samples ({} of warm-up)\n\
             \x20 dies_per_s (whole run)             {:>12.1}\n\
             \x20 rss_after_warm_up                  {:>12} KiB\n\
             \x20 rss_end                            {:>12} KiB\n\
             \x20 rss_largest_drift_after_warm_up    {:>12.2} %\n\
             \x20 hot_allocations_after_warm_up      {:>12}\n\
             \x20 handoff_p99_first_steady_interval  {:>12.1} us\n\
             \x20 handoff_p99_last_interval          {:>12.1} us\n\
             \x20 drops                              {:>12}\n\
             \x20 defects_found                      {:>12}",
            self.frames,
            self.workers,
            self.samples.len(),
            self.warm_up_samples,
            last.map(|s| s.frames as f64 / s.elapsed_s.max(1e-9))
                .unwrap_or(0.0),
            self.rss_after_warm_up_kib(),
            last.map(|s| s.rss_kib).unwrap_or(0),
            self.rss_drift_percent(),
            self.hot_allocations_after_warm_up(),
            p99_first,
            p99_last,
            last.map(|s| s.drops).unwrap_or(0),
            self.defects_found,
            px = self.image_px,
        )
    }

    pub fn to_json(&self) -> Value {
        let (p99_first, p99_last) = self.handoff_p99_first_last_us();
        let last = self.samples.last();
        json!({
            "benchmark": "soak",
            "frames": self.frames,
            "image_px": self.image_px,
            "workers": self.workers,
            "samples": self.samples.len(),
            "warm_up_samples": self.warm_up_samples,
            "dies_per_s": last.map(|s| s.frames as f64 / s.elapsed_s.max(1e-9)).unwrap_or(0.0),
            "rss_after_warm_up_kib": self.rss_after_warm_up_kib(),
            "rss_end_kib": last.map(|s| s.rss_kib).unwrap_or(0),
            "rss_largest_drift_after_warm_up_percent": self.rss_drift_percent(),
            "hot_allocations_after_warm_up": self.hot_allocations_after_warm_up(),
            "handoff_p99_first_steady_interval_us": p99_first,
            "handoff_p99_last_interval_us": p99_last,
            "drops": last.map(|s| s.drops).unwrap_or(0),
            "defects_found": self.defects_found,
        })
    }

    pub fn print(&self, json_only: bool) -> Result<(), crate::cli::out::OutputFailed> {
        if !json_only {
            crate::outln!("{}", self.to_text())?;
        }
        crate::outln!("{}", self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(frames: u64, rss_kib: u64, allocations: u64) -> Sample {
        Sample {
            frames,
            elapsed_s: frames as f64 / 1000.0,
            dies_per_s: 1000.0,
            rss_kib,
            hot_allocations: vec![allocations, 0],
            pool_in_use: 0,
            pool_capacity: 8,
            queue_depth: 0,
            handoff_p50_us: 100.0,
            handoff_p99_us: 200.0 + frames as f64 / 1000.0,
            handoff_max_us: 300.0,
            detect_p99_us: 50.0,
            drops: 0,
        }
    }

    fn soak(samples: Vec<Sample>, warm_up_samples: usize) -> Soak {
        Soak {
            frames: samples.last().map(|s| s.frames).unwrap_or(0),
            image_px: 512,
            workers: 1,
            hot_threads: vec!["acquisition", "detect-0"],
            samples,
            warm_up_samples,
            defects_found: 0,
        }
    }

    /// The warm-up's growth and allocations are not counted; a leak after
    /// it is, as is an allocation in any steady interval but the first
    /// (which began during the warm-up).
    #[test]
    fn drift_and_allocations_count_from_the_end_of_the_warm_up() {
        let flat = soak(
            vec![
                sample(1000, 9000, 40),
                sample(2000, 10_000, 3),
                sample(3000, 10_000, 0),
                sample(4000, 10_050, 0),
            ],
            1,
        );
        assert_eq!(flat.rss_after_warm_up_kib(), 10_000);
        assert!((flat.rss_drift_percent() - 0.5).abs() < 1e-9);
        assert_eq!(flat.hot_allocations_after_warm_up(), 0);
        assert_eq!(flat.handoff_p99_first_last_us(), (202.0, 204.0));

        let leaking = soak(
            vec![
                sample(1000, 9000, 40),
                sample(2000, 10_000, 0),
                sample(3000, 10_100, 1),
                sample(4000, 10_200, 0),
            ],
            1,
        );
        assert!((leaking.rss_drift_percent() - 2.0).abs() < 1e-9);
        assert_eq!(leaking.hot_allocations_after_warm_up(), 1);
    }

    #[test]
    fn rss_is_read_from_the_kernel() {
        let before = rss_kib().unwrap();
        let block = vec![1u8; 64 << 20];
        let after = rss_kib().unwrap();
        // Half the block: other tests of this binary run beside it.
        assert!(after >= before + 32 * 1024, "{before} → {after} KiB");
        drop(std::hint::black_box(block));
    }
}
