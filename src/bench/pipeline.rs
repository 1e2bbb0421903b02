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
    let n = rotating_frames(size, wafer.sites.len())?;
    let pool = FramePool::new(n, FrameGeometry::gray8(size, size));
    let frames = capture_sites(&mut camera, &pool, &wafer, central_first(&wafer, n), n)?;
    let profiles = profiles_of(&frames, size);
    // The recipe of the sensitivity table (k·σ thresholds, the 2×2 box,
    // edge tolerance): the settings whose recall and nuisance rate
    // BENCHMARKS.md reports are the ones timed here.
    let mut det = Detector::new(size, size, super::sensitivity::detector_params());
    let mut out = DieResult::default();
    // With the taught golden die, as the station passes it: it registers
    // the die (care areas and positions in die coordinates) and arbitrates.
    let (golden, golden_profiles) = golden_of(&camera, size);
    let golden = Some(Reference::golden(&golden, &golden_profiles));
    // A die not compared would time the alignment alone: every test die of
    // the rotation must be trusted. (One the golden die does not register
    // is still compared, with care areas placed in its image: counted.)
    let (mut unregistered, mut flagged, mut confidence, mut threshold) = (0, 0u64, 1f32, 0f32);
    for k in 1..n - 1 {
        inspect_in_row(&mut det, &frames, &profiles, k, golden, &mut out);
        flagged += out.flagged_pixels as u64;
        confidence = confidence.min(out.align_confidence_left.min(out.align_confidence_right));
        threshold += out.threshold_used;
        anyhow::ensure!(
            !out.alignment_untrusted,
            "realistic die {k} of the rotation: alignment confidence {:.2}/{:.2} is \
             untrusted: the figure would not include the comparison",
            out.align_confidence_left,
            out.align_confidence_right
        );
        unregistered += !out.die_registered as usize;
    }
    r.add("realistic_sigma_unregistered_dies", unregistered as f64, "");
    let ns = per_die_work_ns(size, &mut det, &frames, &profiles, golden, &mut out);
    let pixels = size as f64 * size as f64;
    r.add(
        "detection_realistic_sigma_per_core",
        pixels / ns * 1e3,
        "MPix_per_s",
    );
    let tests = (n - 2) as f64;
    r.add(
        "realistic_sigma_flagged_pixels",
        100.0 * flagged as f64 / (pixels * tests),
        "percent",
    );
    r.add(
        "realistic_sigma_lowest_align_confidence",
        confidence as f64,
        "",
    );
    r.add(
        "realistic_sigma_mean_threshold",
        threshold as f64 / tests,
        "grey_levels",
    );
    Ok(())
}

/// Working set the detection figures rotate through: larger than the
/// last-level cache of the machines measured (32 MiB of L3 here). Each
/// timed die reads one frame from memory (its right neighbour; the test
/// die and its left neighbour were read by the two before), as in the
/// station, where each die's image arrives once and is compared with its
/// neighbours, not from cache.
const ROTATING_SET_BYTES: usize = 128 << 20;

/// Frames of `size`² in the rotation: at least `ROTATING_SET_BYTES`, at
/// least 3, at most the wafer's dies.
fn rotating_frames(size: u32, dies: usize) -> anyhow::Result<usize> {
    let n = (ROTATING_SET_BYTES / (size as usize * size as usize))
        .max(3)
        .min(dies);
    anyhow::ensure!(
        n >= 3,
        "the bench wafer has {dies} dies: a rotation needs 3"
    );
    Ok(n)
}

/// The first of `n` consecutive sites around the wafer's middle: whole
/// dies, away from the edge dies (partly off the wafer) the first rows hold.
fn central_first(wafer: &SimWafer, n: usize) -> usize {
    (wafer.sites.len() / 2).saturating_sub(n / 2)
}

/// Dies `sites[first..first + n]`, imaged into frames leased from `pool`.
fn capture_sites(
    camera: &mut SimCamera,
    pool: &FramePool,
    wafer: &SimWafer,
    first: usize,
    n: usize,
) -> anyhow::Result<Vec<Frame>> {
    let mut frames: Vec<_> = (0..n)
        .map(|_| pool.try_lease().expect("a buffer per die"))
        .collect();
    for (k, f) in frames.iter_mut().enumerate() {
        camera.capture(wafer.sites[first + k].index, f)?;
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

/// Median ns of a die's whole share of the per-die work, rotating through
/// `frames` (each test die `k` between `k − 1` and `k + 1`): the profiles of
/// the die under test (each frame's are computed once, on arrival), then
/// everything `inspect` does against both neighbours (and `golden`, if
/// given): alignment search, normalisation, noise estimate, comparison,
/// labelling, arbitration, classification.
fn per_die_work_ns(
    size: u32,
    det: &mut Detector,
    frames: &[Frame],
    profiles: &[Profiles],
    golden: Option<Reference>,
    out: &mut DieResult,
) -> f64 {
    let mut test_profiles = Profiles::new(size, size);
    let tests = frames.len() - 2;
    let mut k = 0;
    median_ns_per_op(7, 50.0, || {
        let t = 1 + k % tests;
        k += 1;
        out.clear(0);
        test_profiles.compute(black_box(frames[t].data()));
        det.inspect(
            Reference::die(frames[t].data(), &test_profiles),
            Reference::die(frames[t - 1].data(), &profiles[t - 1]),
            Reference::die(frames[t + 1].data(), &profiles[t + 1]),
            golden,
            out,
        );
    })
}

/// Fractions of each die's pixels a hazy or mis-coated wafer flags, from a
/// clean die's few to half the die.
pub const BAD_WAFER_FRACTIONS: [f64; 4] = [0.0001, 0.01, 0.10, 0.50];
/// `img` (size² px) with a deterministic `fraction` of its 8×8 patches
/// raised as the simulated camera hazes a die (`haze_patches`, salted as
/// die `die`): haze on the die under test alone, so the flagged share is
/// the haze's, not halved by haze on a neighbour.
fn hazed(img: &[u8], size: usize, fraction: f64, die: u64, out: &mut [u8]) {
    out.copy_from_slice(img);
    crate::machine::faults::haze_patches(out, size, fraction, die << 40);
}

/// Bad wafers: the whole per-die work (as `detection_per_core`, rotating;
/// the hazed test images are a second set, so each die reads two frames
/// from memory) with the die under test hazed over each of
/// `BAD_WAFER_FRACTIONS`; per level the time per die, its ratio to the
/// clean die's (timed the same way), the share flagged, the dies whose
/// labeller capacity overflowed (each reported as such, not silently cut)
/// and the allocations of an untimed pass over the rotation. Every die
/// must be compared (a die whose alignment is untrusted would time the
/// alignment alone).
fn bad_wafers(
    r: &mut Report,
    size: u32,
    det: &mut Detector,
    rotation: &[Frame],
    profiles: &[Profiles],
    golden: Option<Reference>,
) -> anyhow::Result<()> {
    let n = rotation.len();
    let px = size as usize * size as usize;
    let mut out = DieResult::default();
    let mut test_profiles = Profiles::new(size, size);
    let mut images: Vec<Vec<u8>> = (0..n).map(|_| vec![0u8; px]).collect();
    for (img, f) in images.iter_mut().zip(rotation) {
        img.copy_from_slice(f.data());
    }
    let clean_ns = hazed_ns(
        det,
        &mut test_profiles,
        &images,
        rotation,
        profiles,
        golden,
        &mut out,
    );
    r.add("bad_wafer_clean_per_die", clean_ns / 1e6, "ms");
    for fraction in BAD_WAFER_FRACTIONS {
        for (k, (img, f)) in images.iter_mut().zip(rotation).enumerate() {
            hazed(f.data(), size as usize, fraction, k as u64 + 1, img);
        }
        let ns = hazed_ns(
            det,
            &mut test_profiles,
            &images,
            rotation,
            profiles,
            golden,
            &mut out,
        );
        // What the level does to each die, untimed (the timing's own sample
        // list would count as an allocation there).
        let (mut flagged, mut overflowed) = (0u64, 0usize);
        let before = alloc_count::thread_allocations();
        for t in 1..n - 1 {
            out.clear(0);
            test_profiles.compute(&images[t]);
            det.inspect(
                Reference::die(&images[t], &test_profiles),
                Reference::die(rotation[t - 1].data(), &profiles[t - 1]),
                Reference::die(rotation[t + 1].data(), &profiles[t + 1]),
                golden,
                &mut out,
            );
            flagged += out.flagged_pixels as u64;
            overflowed += (out.runs_overflowed || out.dropped > 0) as usize;
            anyhow::ensure!(
                !out.alignment_untrusted,
                "bad wafer at {} %: die {t}'s alignment is untrusted: the figure would not \
                 include the comparison",
                fraction * 100.0
            );
        }
        let allocations = alloc_count::thread_allocations() - before;
        let name = format!("bad_wafer_{}_percent", fraction * 100.0);
        r.add(&format!("{name}_per_die"), ns / 1e6, "ms");
        r.add(&format!("{name}_vs_clean"), ns / clean_ns, "x");
        r.add(
            &format!("{name}_flagged"),
            100.0 * flagged as f64 / (px as f64 * (n - 2) as f64),
            "percent",
        );
        r.add(&format!("{name}_dies_over_capacity"), overflowed as f64, "");
        r.add(
            &format!("{name}_allocations_in_{}_dies", n - 2),
            allocations as f64,
            "",
        );
    }
    Ok(())
}

/// Median ns of the whole per-die work on `images` (test dies) between the
/// clean `rotation`'s neighbours.
fn hazed_ns(
    det: &mut Detector,
    test_profiles: &mut Profiles,
    images: &[Vec<u8>],
    rotation: &[Frame],
    profiles: &[Profiles],
    golden: Option<Reference>,
    out: &mut DieResult,
) -> f64 {
    let n = rotation.len();
    let mut k = 0;
    median_ns_per_op(5, 50.0, || {
        let t = 1 + k % (n - 2);
        k += 1;
        out.clear(0);
        test_profiles.compute(black_box(&images[t]));
        det.inspect(
            Reference::die(&images[t], test_profiles),
            Reference::die(rotation[t - 1].data(), &profiles[t - 1]),
            Reference::die(rotation[t + 1].data(), &profiles[t + 1]),
            golden,
            out,
        );
    })
}

/// Test die `t` of `frames` against its neighbours, untimed.
fn inspect_in_row(
    det: &mut Detector,
    frames: &[Frame],
    profiles: &[Profiles],
    t: usize,
    golden: Option<Reference>,
    out: &mut DieResult,
) {
    out.clear(0);
    det.inspect(
        Reference::die(frames[t].data(), &profiles[t]),
        Reference::die(frames[t - 1].data(), &profiles[t - 1]),
        Reference::die(frames[t + 1].data(), &profiles[t + 1]),
        golden,
        out,
    );
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

    // Parts alone, on this thread, rotating through more frames than the
    // cache holds (see `ROTATING_SET_BYTES`).
    let n = rotating_frames(size, wafer.sites.len())?;
    let pool = FramePool::new(n, FrameGeometry::gray8(size, size));
    let mut rotation = capture_sites(&mut camera, &pool, &wafer, central_first(&wafer, n), n)?;
    r.add("rotating_frames", n as f64, "");
    r.add(
        "rotating_set",
        (n * size as usize * size as usize) as f64 / (1 << 20) as f64,
        "MiB",
    );
    let render_ns = median_ns_per_op(7, 50.0, || {
        camera
            .capture(
                wafer.sites[central_first(&wafer, n)].index,
                &mut rotation[0],
            )
            .ok();
    });
    r.add("render_per_frame", render_ns / 1e6, "ms");
    let profiles = profiles_of(&rotation, size);
    let (golden, golden_profiles) = golden_of(&camera, size);
    let golden = Some(Reference::golden(&golden, &golden_profiles));
    let mut det = Detector::new(size, size, DetectParams::default());
    r.add_text("kernel_isa", det.kernel_isa());
    let mut out = DieResult::default();
    // What the rotation's dies hold, untimed: defects so that the labeller
    // and classifier are part of what is timed.
    let (mut defects, mut flagged) = (0u64, 0u64);
    for k in 1..n - 1 {
        inspect_in_row(&mut det, &rotation, &profiles, k, golden, &mut out);
        defects += out.count as u64;
        flagged += out.flagged_pixels as u64;
    }
    let tests = (n - 2) as f64;
    r.add("defects_per_timed_die", defects as f64 / tests, "");
    r.add(
        "flagged_pixels",
        100.0 * flagged as f64 / (pixels * tests),
        "percent",
    );
    // The die's whole share of the per-die work (see `per_die_work_ns`).
    let per_die_ns = per_die_work_ns(size, &mut det, &rotation, &profiles, golden, &mut out);
    r.add(
        "detection_per_core",
        pixels / per_die_ns * 1e3,
        "MPix_per_s",
    );
    // Breakdown, on one row of three frames the cache keeps warm: the
    // inspection with the profiles computed outside the timer, and the
    // profiles alone.
    let detect_ns = median_ns_per_op(7, 50.0, || {
        inspect_in_row(&mut det, &rotation, &profiles, 1, golden, &mut out);
    });
    let mut scratch = Profiles::new(size, size);
    let profile_ns = median_ns_per_op(7, 50.0, || scratch.compute(black_box(rotation[0].data())));
    r.add(
        "inspect_excluding_profiles_3_frames_cache_warm_per_core",
        pixels / detect_ns * 1e3,
        "MPix_per_s",
    );
    r.add(
        "profiles_1_frame_cache_warm_per_core",
        pixels / profile_ns * 1e3,
        "MPix_per_s",
    );
    realistic_per_die_work(&mut r, size)?;
    bad_wafers(&mut r, size, &mut det, &rotation, &profiles, golden)?;
    // The baseline: copying each frame of the same rotation once.
    let mut dst = vec![0u8; rotation[0].data().len()];
    let mut k = 0;
    let memcpy_ns = median_ns_per_op(7, 50.0, || {
        dst.copy_from_slice(black_box(rotation[k % n].data()));
        black_box(&mut dst);
        k += 1;
    });
    r.add(
        "memcpy_rotating_frames",
        dst.len() as f64 / memcpy_ns,
        "GB_per_s",
    );
    r.add(
        "memcpy_rotating_frames",
        pixels / memcpy_ns * 1e3,
        "MPix_per_s",
    );
    drop(rotation);

    // The pipeline alone, end to end: camera thread, detection workers and
    // the result hand-off, without the stage, store, display, live view or
    // thumbnails (see `bench station` for the station composed as it runs).
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
    r.add(
        "pipeline_only_end_to_end",
        frames as f64 / secs,
        "frames_per_s",
    );
    r.add(
        "pipeline_only_end_to_end",
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

/// The classic die's whole per-die work per core and memcpy, both rotating
/// through the same frames beyond the cache (as `run` measures them): the
/// baselines `bench station` prints beside its own figures. MPix/s.
pub fn detection_and_memcpy_per_core(size: u32) -> anyhow::Result<(f64, f64)> {
    let wafer = Arc::new(bench_wafer(size, 1));
    let mut camera = SimCamera::new(wafer.clone(), 2.0, Arc::new(SimFaults::default()));
    let n = rotating_frames(size, wafer.sites.len())?;
    let pool = FramePool::new(n, FrameGeometry::gray8(size, size));
    let rotation = capture_sites(&mut camera, &pool, &wafer, central_first(&wafer, n), n)?;
    let profiles = profiles_of(&rotation, size);
    let (golden, golden_profiles) = golden_of(&camera, size);
    let mut det = Detector::new(size, size, DetectParams::default());
    let mut out = DieResult::default();
    let ns = per_die_work_ns(
        size,
        &mut det,
        &rotation,
        &profiles,
        Some(Reference::golden(&golden, &golden_profiles)),
        &mut out,
    );
    let mut dst = vec![0u8; rotation[0].data().len()];
    let mut k = 0;
    let memcpy_ns = median_ns_per_op(7, 50.0, || {
        dst.copy_from_slice(black_box(rotation[k % n].data()));
        black_box(&mut dst);
        k += 1;
    });
    let pixels = size as f64 * size as f64;
    Ok((pixels / ns * 1e3, pixels / memcpy_ns * 1e3))
}
