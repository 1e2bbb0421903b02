//! `waferscope bench pipeline`: the simulated inspection pipeline end to
//! end, with its parts measured alone beside memcpy of the same bytes.

use super::{median_ns_per_op, Report};
use crate::hot::{alloc_count, Frame, FrameGeometry, FramePool};
use crate::machine::sim::{RealisticImaging, SimCamera, SimRealism, SimWafer};
use crate::machine::{Notch, SimFaults, WaferGeometry};
use crate::pipeline::{
    DetectParams, Detector, DieResult, Pipeline, PipelineConfig, Profiles, Reference,
};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The per-die work on dies imaged like a real tool's (independent noise,
/// ±10 % gain, ±15 grey levels offset, ±32 px stage repeat error, grain;
/// see `SimRealism::realistic`), with the sensitivity table's recipe
/// (thresholds at k·σ, 2×2 box, edge tolerance) and the taught golden die
/// (registration and arbitration): what a die costs
/// when the alignment search and the noise estimate have real work to do.
fn realistic_per_die_work(r: &mut Report, size: u32) -> anyhow::Result<()> {
    let wafer = Arc::new(bench_wafer(size, 2));
    // Stage error ±32 px per die: neighbours up to ±64 px apart, the
    // detector's default search.
    let imaging = RealisticImaging {
        stage_repeat_px: 32.0,
        ..RealisticImaging::default()
    };
    let mut camera = SimCamera::with_realism(
        wafer.clone(),
        SimRealism::Realistic(imaging),
        Arc::new(SimFaults::default()),
    );
    let row = wafer
        .row_of_three(|_| true)
        .ok_or_else(|| anyhow::anyhow!("no row of three dies on the bench wafer"))?;
    let pool = FramePool::new(3, FrameGeometry::gray8(size, size));
    let frames3 = capture_row(&mut camera, &pool, &wafer, row)?;
    let profiles = profiles_of(&frames3, size);
    // The recipe of the sensitivity table (k·σ thresholds, the 2×2 box,
    // edge tolerance): the settings whose recall and nuisance rate
    // BENCHMARKS.md reports are the ones timed here.
    let mut det = Detector::new(size, size, super::sensitivity::detector_params());
    let mut out = DieResult::default();
    // With the taught golden die, as the station passes it: it registers
    // the die (care areas and positions in die coordinates) and arbitrates.
    let (golden, golden_profiles) = golden_of(&camera, size);
    let ns = per_die_work_ns(
        size,
        &mut det,
        &frames3,
        &profiles,
        Some(Reference::golden(&golden, &golden_profiles)),
        &mut out,
    );
    // A die not compared would time the alignment alone.
    anyhow::ensure!(
        out.die_registered,
        "the realistic timed die was not registered against the golden die"
    );
    anyhow::ensure!(
        !out.alignment_untrusted,
        "the realistic timed die's alignment is untrusted (confidence {:.2}/{:.2}): \
         the figure would not include the comparison",
        out.align_confidence_left,
        out.align_confidence_right
    );
    let pixels = size as f64 * size as f64;
    r.add(
        "realistic_sigma_per_die_work_per_core",
        pixels / ns * 1e3,
        "MPix_per_s",
    );
    r.add(
        "realistic_sigma_flagged_pixels",
        100.0 * out.flagged_pixels as f64 / pixels,
        "percent",
    );
    r.add(
        "realistic_sigma_align_confidence",
        out.align_confidence_left.min(out.align_confidence_right) as f64,
        "",
    );
    r.add(
        "realistic_sigma_threshold",
        out.threshold_used as f64,
        "grey_levels",
    );
    Ok(())
}

/// The three dies of the row starting at `sites[row]`, imaged into frames
/// leased from `pool` (left, middle, right).
fn capture_row(
    camera: &mut SimCamera,
    pool: &FramePool,
    wafer: &SimWafer,
    row: usize,
) -> anyhow::Result<Vec<Frame>> {
    let mut frames: Vec<_> = (0..3)
        .map(|_| pool.try_lease().expect("3 buffers"))
        .collect();
    for (k, f) in frames.iter_mut().enumerate() {
        camera.capture(wafer.sites[row + k].index, f)?;
    }
    Ok(frames)
}

/// The camera's golden die with its profiles.
fn golden_of(camera: &SimCamera, size: u32) -> (Arc<[u8]>, Profiles) {
    let golden = camera.golden();
    let mut profiles = Profiles::new(size, size);
    profiles.compute(&golden);
    (golden, profiles)
}

/// Each frame's profiles, computed once (as the acquisition does).
fn profiles_of(frames: &[Frame], size: u32) -> Vec<Profiles> {
    frames
        .iter()
        .map(|f| {
            let mut p = Profiles::new(size, size);
            p.compute(f.data());
            p
        })
        .collect()
}

/// Median ns of the die's whole share of the per-die work on the middle
/// of `frames` (left, test, right): the profiles of the die under test
/// (each frame's are computed once, on arrival), then everything
/// `inspect` does against both neighbours (and `golden`, if given).
fn per_die_work_ns(
    size: u32,
    det: &mut Detector,
    frames: &[Frame],
    profiles: &[Profiles],
    golden: Option<Reference>,
    out: &mut DieResult,
) -> f64 {
    let mut test_profiles = Profiles::new(size, size);
    median_ns_per_op(7, 50.0, || {
        out.clear(0);
        test_profiles.compute(black_box(frames[1].data()));
        det.inspect(
            Reference::die(frames[1].data(), &test_profiles),
            Reference::die(frames[0].data(), &profiles[0]),
            Reference::die(frames[2].data(), &profiles[2]),
            golden,
            out,
        );
    })
}

/// A 300 mm wafer whose dies image at `size`² pixels of 5 µm.
pub fn bench_wafer(size: u32, seed: u64) -> SimWafer {
    let die_um = size as f64 * 5.0;
    let g = WaferGeometry {
        diameter_mm: 300.0,
        die_pitch_um: (die_um + 100.0, die_um + 100.0),
        die_size_um: (die_um, die_um),
        edge_exclusion_mm: 3.0,
        notch: Notch::Down,
    };
    SimWafer::new(g, FrameGeometry::gray8(size, size), seed)
}

pub fn run(frames: u64, size: u32) -> anyhow::Result<Report> {
    let mut r = Report::new("pipeline");
    let t0 = Instant::now();
    let wafer = Arc::new(bench_wafer(size, 1));
    let mut camera = SimCamera::new(wafer.clone(), 2.0, Arc::new(SimFaults::default()));
    r.add("frame_size", size as f64, "px");
    r.add("dies_on_wafer", wafer.sites.len() as f64, "");
    r.add("setup_prerender", t0.elapsed().as_secs_f64() * 1e3, "ms");
    let pixels = (size as f64) * (size as f64);

    // Parts alone, on this thread.
    let pool = FramePool::new(3, FrameGeometry::gray8(size, size));
    // A die with defects between two neighbours, so the labeller and
    // classifier are part of what is timed.
    let row = wafer
        .row_of_three(|die| wafer.defects_of(die).len() >= 2)
        .ok_or_else(|| anyhow::anyhow!("no row of three dies on the bench wafer"))?;
    let mut frames3 = capture_row(&mut camera, &pool, &wafer, row)?;
    let render_ns = median_ns_per_op(7, 50.0, || {
        camera.capture(wafer.sites[row].index, &mut frames3[0]).ok();
    });
    r.add("render_per_frame", render_ns / 1e6, "ms");
    let profiles = profiles_of(&frames3, size);
    let (golden, golden_profiles) = golden_of(&camera, size);
    let mut det = Detector::new(size, size, DetectParams::default());
    r.add_text("kernel_isa", det.kernel_isa());
    let mut out = DieResult::default();
    // The die's whole share of the per-die work (see `per_die_work_ns`).
    let per_die_ns = per_die_work_ns(
        size,
        &mut det,
        &frames3,
        &profiles,
        Some(Reference::golden(&golden, &golden_profiles)),
        &mut out,
    );
    // The same without the profiles (precomputed outside the timer).
    let detect_ns = median_ns_per_op(7, 50.0, || {
        out.clear(0);
        det.inspect(
            Reference::die(frames3[1].data(), &profiles[1]),
            Reference::die(frames3[0].data(), &profiles[0]),
            Reference::die(frames3[2].data(), &profiles[2]),
            Some(Reference::golden(&golden, &golden_profiles)),
            &mut out,
        );
    });
    let mut scratch = Profiles::new(size, size);
    let profile_ns = median_ns_per_op(7, 50.0, || scratch.compute(black_box(frames3[0].data())));
    r.add("defects_in_timed_die", out.count as f64, "");
    r.add("flagged_pixels_in_timed_die", out.flagged_pixels as f64, "");
    r.add(
        "flagged_pixels",
        100.0 * out.flagged_pixels as f64 / pixels,
        "percent",
    );
    r.add(
        "per_die_work_per_core",
        pixels / per_die_ns * 1e3,
        "MPix_per_s",
    );
    r.add(
        "detect_excluding_profiles_per_core",
        pixels / detect_ns * 1e3,
        "MPix_per_s",
    );
    r.add("profiles_per_core", pixels / profile_ns * 1e3, "MPix_per_s");
    realistic_per_die_work(&mut r, size)?;
    let src = frames3[1].data().to_vec();
    let mut dst = vec![0u8; src.len()];
    let memcpy_ns = median_ns_per_op(7, 50.0, || {
        dst.copy_from_slice(black_box(&src));
        black_box(&mut dst);
    });
    r.add(
        "memcpy_same_bytes",
        src.len() as f64 / memcpy_ns,
        "GB_per_s",
    );
    r.add("memcpy_same_bytes", pixels / memcpy_ns * 1e3, "MPix_per_s");
    drop(frames3);

    // End to end.
    let done = Arc::new(AtomicU64::new(0));
    let done2 = done.clone();
    let golden = camera.golden();
    let pipeline = Pipeline::start(
        PipelineConfig::default(),
        Box::new(camera),
        None,
        wafer.sites.clone().into(),
        golden,
        Box::new(move |_| {
            done2.fetch_add(1, Ordering::Release);
        }),
    );
    let dies = wafer.sites.len() as u32;
    let wait = |target: u64| {
        while done.load(Ordering::Acquire) < target {
            std::thread::sleep(Duration::from_micros(200));
        }
    };
    let warm = (dies as u64).min(64);
    for i in 0..warm as u32 {
        pipeline.inspect(i);
    }
    pipeline.end_of_plan();
    wait(warm);
    let allocs_before = alloc_count::hot_allocations();
    let t = pipeline.telemetry().clone();
    t.handoff_latency.reset();
    let stall_before = t.stall_ns.get();
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < frames {
        for i in 0..dies {
            if sent == frames {
                break;
            }
            pipeline.inspect(i);
            sent += 1;
        }
        pipeline.end_of_plan();
    }
    wait(warm + frames);
    let secs = start.elapsed().as_secs_f64();
    let allocs = alloc_count::hot_allocations() - allocs_before;
    r.add("frames", frames as f64, "");
    r.add("workers", PipelineConfig::default().workers as f64, "");
    r.add("end_to_end", frames as f64 / secs, "frames_per_s");
    r.add(
        "end_to_end",
        frames as f64 * pixels / secs / 1e6,
        "MPix_per_s",
    );
    r.add(
        "allocations_per_frame_after_warm_up",
        allocs as f64 / frames as f64,
        "",
    );
    r.add(
        "handoff_latency_p50",
        t.handoff_latency.quantile(0.5) as f64 / 1e3,
        "us",
    );
    r.add(
        "handoff_latency_p99",
        t.handoff_latency.quantile(0.99) as f64 / 1e3,
        "us",
    );
    r.add("drops", t.drops.get() as f64, "");
    r.add(
        "stall_time",
        (t.stall_ns.get() - stall_before) as f64 / 1e6,
        "ms",
    );
    r.add("defects_found", t.defects_found.get() as f64, "");
    pipeline.finish().map_err(anyhow::Error::msg)?;
    Ok(r)
}
