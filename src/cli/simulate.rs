//! `waferscope simulate` (and `waferscope` with no arguments, until the
//! operator GUI lands): inspects a whole simulated wafer headless, paced
//! like the real machine, printing progress once a second and a summary.

use crate::hot::FrameGeometry;
use crate::machine::sim::{SimCamera, SimStage, SimWafer};
use crate::machine::{Notch, SimFaults, WaferGeometry};
use crate::pipeline::{DefectClass, Pipeline, PipelineConfig};
use anyhow::{ensure, Result};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct SimulateArgs {
    pub wafer_mm: f64,
    pub die_mm: f64,
    pub size: u32,
    pub seed: u64,
    pub fps: f64,
}

impl Default for SimulateArgs {
    fn default() -> Self {
        Self {
            wafer_mm: 300.0,
            die_mm: 10.0,
            size: 1024,
            seed: 1,
            fps: 60.0,
        }
    }
}

#[derive(Default)]
struct Tally {
    dies: u64,
    failed: u64,
    defective_dies: u64,
    by_class: [u64; 5],
}

pub fn run(args: &SimulateArgs) -> Result<()> {
    ensure!(
        args.wafer_mm == 200.0 || args.wafer_mm == 300.0,
        "--wafer-mm must be 200 or 300, got {}",
        args.wafer_mm
    );
    ensure!(
        (1.0..=50.0).contains(&args.die_mm),
        "--die-mm must be 1 to 50 mm, got {}",
        args.die_mm
    );
    ensure!(
        (320..=4096).contains(&args.size),
        "--size must be 320 to 4096 pixels, got {}",
        args.size
    );
    let die_um = args.die_mm * 1000.0;
    let geometry = WaferGeometry {
        diameter_mm: args.wafer_mm,
        die_pitch_um: (die_um + 100.0, die_um + 100.0),
        die_size_um: (die_um, die_um),
        edge_exclusion_mm: 3.0,
        notch: Notch::Down,
    };
    crate::outln!(
        "waferscope simulator: {} mm wafer, {} mm dies, {}×{} px images, seed {}",
        args.wafer_mm,
        args.die_mm,
        args.size,
        args.size,
        args.seed
    )?;
    let wafer = Arc::new(SimWafer::new(
        geometry,
        FrameGeometry::gray8(args.size, args.size),
        args.seed,
    ));
    let faults = Arc::new(SimFaults::default());
    let camera = SimCamera::new(wafer.clone(), 2.0, faults.clone()).with_frame_rate(args.fps);
    // Taught from dies of this wafer, as the tool would (never the
    // simulator's own noise-free render).
    let plan: Vec<u32> = wafer.sites.iter().map(|s| s.index).collect();
    let golden =
        crate::run::machine::teach_on(&wafer, &plan, crate::run::machine::DEFAULT_TEACH_DIES)?
            .pixels
            .into();
    let stage = SimStage::new(400.0, Duration::from_millis(2), 1.0, faults);
    let tally = Arc::new(Mutex::new(Tally::default()));
    let sink_tally = tally.clone();
    let pipeline = Pipeline::start(
        PipelineConfig::default(),
        Box::new(camera),
        Some(Box::new(stage)),
        wafer.sites.clone().into(),
        golden,
        Box::new(move |r| {
            let mut t = sink_tally.lock().unwrap_or_else(|e| e.into_inner());
            t.dies += 1;
            t.failed += r.capture_failed as u64;
            t.defective_dies += (r.count > 0) as u64;
            for d in r.defects() {
                t.by_class[DefectClass::ALL
                    .iter()
                    .position(|c| *c == d.class)
                    .unwrap_or(4)] += 1;
            }
        }),
    );
    let total = wafer.sites.len() as u64;
    crate::outln!("{total} dies in the plan; inspecting…")?;
    // A closed stdout mid-wafer stops the printing, not the wafer (the
    // pipeline is finished cleanly); the error is returned at the end.
    let mut output_failed = None;
    let start = Instant::now();
    let feeder_sites = wafer.sites.len() as u32;
    let telemetry = pipeline.telemetry().clone();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..feeder_sites {
                pipeline.inspect(i);
            }
            pipeline.end_of_plan();
        });
        loop {
            std::thread::sleep(Duration::from_millis(250));
            let done = tally.lock().unwrap_or_else(|e| e.into_inner()).dies;
            let secs = start.elapsed().as_secs_f64();
            if output_failed.is_none() && ((secs * 4.0).round() as u64 % 4 == 0 || done == total) {
                let rate = done as f64 / secs.max(1e-9);
                let eta = (total - done) as f64 / rate.max(1e-9);
                if let Err(e) = crate::outln!(
                    "  {done:>5}/{total} dies  {:>5} defects  {rate:>6.1} dies/s  ETA {eta:>5.1} s",
                    telemetry.defects_found.get()
                ) {
                    output_failed = Some(e);
                }
            }
            if done == total {
                break;
            }
        }
    });
    let secs = start.elapsed().as_secs_f64();
    pipeline.finish().map_err(anyhow::Error::msg)?;
    if let Some(e) = output_failed {
        return Err(e.into());
    }
    let t = tally.lock().unwrap_or_else(|e| e.into_inner());
    crate::outln!(
        "done in {secs:.1} s ({:.1} dies/s): {} dies inspected, {} not inspected, {} with defects",
        t.dies as f64 / secs,
        t.dies - t.failed,
        t.failed,
        t.defective_dies
    )?;
    for (class, n) in DefectClass::ALL.iter().zip(t.by_class) {
        crate::outln!("  {:<9} {n}", class.name())?;
    }
    Ok(())
}
