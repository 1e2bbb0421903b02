//! Acquisition + detection + hand-offs allocate nothing once warm, in the
//! production configuration: a stage, two detection workers, thumbnail
//! cutting, the live-view display buffer and live-view triggers between the
//! dies, with the watched threads beating. 2,000+ frames of 1024² after a
//! warm-up pass, counted per hot thread. (Its own test binary, so no other
//! test's threads register under the same names.)

mod independent_images;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use waferscope::hot::{alloc_count, FrameGeometry};
use waferscope::machine::sim::{SimCamera, SimStage, SimWafer};
use waferscope::machine::{Notch, SimFaults, WaferGeometry};
use waferscope::pipeline::{DisplayFrame, Pipeline, PipelineConfig};

#[global_allocator]
static ALLOC: waferscope::hot::CountingAlloc = waferscope::hot::CountingAlloc;

fn hot_counts() -> Vec<(&'static str, u64)> {
    let mut v: Vec<_> = alloc_count::hot_threads()
        .into_iter()
        .map(|(name, allocs, _)| (name, allocs))
        .collect();
    v.sort();
    v
}

fn wait_for(count: &AtomicU64, target: u64) {
    let deadline = Instant::now() + Duration::from_secs(300);
    while count.load(Ordering::Acquire) < target {
        assert!(
            Instant::now() < deadline,
            "pipeline stalled at {count:?} of {target}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The 200 mm wafer both tests image.
fn wafer_200mm() -> WaferGeometry {
    WaferGeometry {
        diameter_mm: 200.0,
        die_pitch_um: (16_000.0, 16_000.0),
        die_size_um: (15_800.0, 15_800.0),
        edge_exclusion_mm: 3.0,
        notch: Notch::Down,
    }
}

#[test]
fn acquisition_detection_and_handoffs_allocate_nothing_after_warm_up() {
    let geometry = wafer_200mm();
    let wafer = Arc::new(SimWafer::new(geometry, FrameGeometry::gray8(1024, 1024), 7));
    let dies = wafer.sites.len() as u64;
    let faults = Arc::new(SimFaults::default());
    let camera = SimCamera::new(wafer.clone(), 2.0, faults.clone());
    // As the station builds it: an instantaneous sim stage, and the display
    // buffer the workers feed for the live view.
    let stage = SimStage::new(400.0, Duration::from_millis(2), 0.0, faults.clone());
    let display = Arc::new(DisplayFrame::new(1024, 1024, 512, 1000.0));
    let golden = camera.golden();
    let results = Arc::new(AtomicU64::new(0));
    let defects = Arc::new(AtomicU64::new(0));
    let (r2, d2) = (results.clone(), defects.clone());
    // Thumbnails on: the worker cuts crops into pooled buffers; a writer
    // (here: one that only recycles them) drains them off the hot path.
    let (tap, feed) = waferscope::pipeline::thumbnail_channel(64, 16);
    let taken = tap.taken.clone();
    let drain = std::thread::spawn(move || {
        while let Ok(c) = feed.filled.recv() {
            feed.recycle(c);
        }
    });
    let pipeline = Pipeline::start_with_thumbnails(
        PipelineConfig {
            workers: 2,
            pool_frames: 3 * 2 + 4,
            display: Some(display.clone()),
            faults: Some(faults),
            ..PipelineConfig::default()
        },
        Box::new(camera),
        Some(Box::new(stage)),
        wafer.sites.clone().into(),
        golden,
        Box::new(move |r| {
            assert!(!r.capture_failed);
            d2.fetch_add(r.count as u64, Ordering::Relaxed);
            r2.fetch_add(1, Ordering::Release);
        }),
        Some(tap),
    );

    // One pass over the wafer, with a live-view frame asked for (and the
    // newest taken, as the UI does) every few dies.
    let pass = |pipeline: &Pipeline| {
        for i in 0..dies as u32 {
            pipeline.inspect(i);
            if i % 4 == 0 {
                pipeline.live(i);
                drop(pipeline.take_live_frame());
            }
        }
        pipeline.end_of_plan();
    };
    // Warm-up.
    pass(&pipeline);
    wait_for(&results, dies);
    let before = hot_counts();
    assert_eq!(
        before.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        ["acquisition", "detect-0", "detect-1"],
        "every hot thread registered"
    );

    let passes = 2_000u64.div_ceil(dies);
    for _ in 0..passes {
        pass(&pipeline);
    }
    let measured = passes * dies;
    wait_for(&results, dies + measured);
    let after = hot_counts();
    let t = pipeline.telemetry();
    println!(
        "{measured} frames after warm-up; hot-thread allocations before {before:?} after {after:?}; \
         handoff p50 {} ns p99 {} ns; stall {} ms",
        t.handoff_latency.quantile(0.5),
        t.handoff_latency.quantile(0.99),
        t.stall_ns.get() / 1_000_000
    );
    assert!(measured >= 2_000);
    assert_eq!(before, after, "a hot thread allocated after warm-up");
    assert!(
        t.frames_acquired.get() > dies + measured,
        "every die imaged, and live-view frames besides"
    );
    assert!(
        display.with(|img| img.sequence) > 0,
        "the display buffer was fed"
    );
    assert!(defects.load(Ordering::Relaxed) > 0);
    assert!(taken.get() > 0, "thumbnails were cut");
    let pool = pipeline.pool().clone();
    pipeline.finish().unwrap();
    drain.join().unwrap();
    assert_eq!(pool.in_use(), 0, "every frame returned to the pool");
}

/// The per-die steps issue 11 added allocate nothing either, once the
/// detector exists: on realistic dies (stage error of tens of pixels,
/// gain and offset, grain), the coarse alignment search, normalisation,
/// the k·σ noise estimate, the 2×2 box, edge tolerance and care areas
/// (a don't-care and a k·σ area), against both neighbours and against a
/// single reference (`inspect_against`), counted on this thread.
#[test]
fn the_detectors_new_steps_allocate_nothing() {
    use waferscope::hot::FramePool;
    use waferscope::machine::sim::{RealisticImaging, SimRealism};
    use waferscope::pipeline::care::{CareArea, CareAreas, CareRule};
    use waferscope::pipeline::{
        DetectParams, Detector, DieResult, Profiles, Reference, ThresholdMode,
    };

    let size = 512u32;
    let geometry = wafer_200mm();
    let wafer = Arc::new(SimWafer::new(geometry, FrameGeometry::gray8(size, size), 3));
    let imaging = RealisticImaging {
        stage_repeat_px: 24.0,
        ..RealisticImaging::default()
    };
    let mut camera = SimCamera::with_realism(
        wafer.clone(),
        SimRealism::Realistic(imaging),
        Arc::new(SimFaults::default()),
    );
    let row = wafer.row_of_three(|_| true).expect("a row of three dies");
    let pool = FramePool::new(3, FrameGeometry::gray8(size, size));
    let mut frames: Vec<_> = (0..3).map(|_| pool.try_lease().unwrap()).collect();
    let mut profiles: Vec<Profiles> = (0..3).map(|_| Profiles::new(size, size)).collect();
    for k in 0..3 {
        camera
            .capture(wafer.sites[row + k].index, &mut frames[k])
            .unwrap();
        profiles[k].compute(frames[k].data());
    }
    let mut areas = CareAreas::default();
    let area = |x0, y0, rule| CareArea {
        x0,
        y0,
        x1: x0 + 100,
        y1: y0 + 80,
        rule,
    };
    areas.push(area(40, 40, CareRule::DontCare)).unwrap();
    areas.push(area(250, 300, CareRule::Sigma(7.0))).unwrap();
    let mut det = Detector::new(
        size,
        size,
        DetectParams {
            threshold_mode: ThresholdMode::Sigma,
            edge_tolerance: 0.15,
            care_areas: areas,
            ..DetectParams::default()
        },
    );
    let mut out = DieResult::default();
    let mut test_profiles = Profiles::new(size, size);
    let mut work = |out: &mut DieResult| {
        let (l, t, r) = (frames[0].data(), frames[1].data(), frames[2].data());
        test_profiles.compute(t);
        out.clear(1);
        det.inspect(
            Reference::die(t, &test_profiles),
            Reference::die(l, &profiles[0]),
            Reference::die(r, &profiles[2]),
            Some(Reference::golden(l, &profiles[0])),
            out,
        );
        assert!(!out.alignment_untrusted, "{out:?}");
        assert!(out.noise_sigma > 0.0, "the k·σ estimate ran");
        assert!(out.die_registered, "registered against the golden die");
        assert!(
            out.count as u32 + out.arbitrated > 0,
            "components were labelled and judged"
        );
        out.clear(1);
        det.inspect_against(
            Reference::die(t, &test_profiles),
            Reference::die(r, &profiles[2]),
            out,
        );
        assert!(!out.alignment_untrusted, "{out:?}");
    };
    work(&mut out);
    let before = alloc_count::thread_allocations();
    for _ in 0..20 {
        work(&mut out);
    }
    assert_eq!(alloc_count::thread_allocations() - before, 0);
}

/// Merging a faint scratch's pieces (a dash, dots on its axis, three
/// directionless dots on one line) works in the fixed-size `DieResult`
/// and allocates nothing.
#[test]
fn scratch_merging_of_dashes_and_dots_allocates_nothing() {
    use waferscope::pipeline::scratch_merge::{merge_scratch_fragments, ScratchMergeRules};
    use waferscope::pipeline::{
        ClassRules, Defect, DefectClass, DieResult, PixelMoments, Polarity,
    };

    // A 2-px-thick piece of the line through (x0, 100) at 30°, along a..b.
    let piece = |x0: f32, a: i32, b: i32| {
        let (s, c) = 30f32.to_radians().sin_cos();
        let mut m = PixelMoments::default();
        for t in a..b {
            for w in 0..2 {
                let x = (x0 + t as f32 * c - w as f32 * s).round() as u16;
                let y = (100.0 + t as f32 * s + w as f32 * c).round() as u16;
                m.add_run(y, x, x + 1);
            }
        }
        let n = m.n as f32;
        Defect {
            x_px: m.sum_x as f32 / n,
            y_px: m.sum_y as f32 / n,
            bbox: [0, 0, 1, 1],
            area_px: m.n as u32,
            peak_diff: 40,
            mean_diff: 30.0,
            polarity: Polarity::Dark,
            class: DefectClass::Unknown,
            moments: m.central(),
        }
    };
    let mut template = DieResult::default();
    // A 14-px dash with a 3-px dot beyond its end; elsewhere three 3-px dots.
    template.push(piece(100.0, 0, 14));
    template.push(piece(100.0, 20, 23));
    for k in 0..3 {
        template.push(piece(300.0, k * 8, k * 8 + 3));
    }
    let (rules, class_rules) = (ScratchMergeRules::default(), ClassRules::default());
    let mut out = template;
    assert_eq!(merge_scratch_fragments(&mut out, &rules, &class_rules), 3);
    assert_eq!(out.count, 2);
    let before = alloc_count::thread_allocations();
    for _ in 0..100 {
        out = template;
        merge_scratch_fragments(&mut out, &rules, &class_rules);
    }
    assert_eq!(alloc_count::thread_allocations() - before, 0);
    assert_eq!(out.count, 2);
}

/// The reference consulted for compact defects (`pattern_context`) and
/// the merging of a scratch's pieces allocate nothing on the images of
/// the second generator at full difficulty, where both happen: some
/// defects come out Pattern by the reference, some scratches merged.
#[test]
fn classifying_with_the_reference_allocates_nothing() {
    use waferscope::pipeline::{
        DefectClass, DetectParams, Detector, DieResult, Profiles, Reference, ThresholdMode,
    };
    let p = independent_images::GenParams {
        size: 512,
        max_shift_px: 64.0,
        gain_drift: 0.10,
        offset_drift: 15.0,
        read_noise: 6.0,
        electrons_per_grey: 6.0,
        full_well_electrons: 2_000.0,
        psf_sigma: 0.8,
        contrast: (40.0, 160.0),
        max_defects: 3,
        neighbour_defect_chance: 0.5,
    };
    let n = p.size as u32;
    let profiles = |img: &[u8]| {
        let mut pr = Profiles::new(n, n);
        pr.compute(img);
        pr
    };
    let dies: Vec<_> = (100..112)
        .map(|seed| {
            let (t, l, r, _) = independent_images::die_triplet(seed, &p);
            let (pt, pl, pr) = (profiles(&t), profiles(&l), profiles(&r));
            (t, l, r, pt, pl, pr)
        })
        .collect();
    let mut det = Detector::new(
        n,
        n,
        DetectParams {
            threshold_mode: ThresholdMode::Sigma,
            max_shift_px: 128,
            edge_tolerance: 0.15,
            box_threshold_ratio: 0.36,
            ..DetectParams::default()
        },
    );
    let mut out = DieResult::default();
    let pass = |det: &mut Detector, out: &mut DieResult| {
        let mut classes = [0u32; 2];
        for (k, (t, l, r, pt, pl, pr)) in dies.iter().enumerate() {
            out.clear(k as u32);
            det.inspect(
                Reference::die(t, pt),
                Reference::die(l, pl),
                Reference::die(r, pr),
                None,
                out,
            );
            for d in out.defects() {
                classes[0] += (d.class == DefectClass::Pattern) as u32;
                classes[1] += (d.class == DefectClass::Scratch) as u32;
            }
        }
        classes
    };
    let warm = pass(&mut det, &mut out);
    assert!(
        warm[0] > 0 && warm[1] > 0,
        "pattern and scratch seen: {warm:?}"
    );
    let before = alloc_count::thread_allocations();
    let again = pass(&mut det, &mut out);
    assert_eq!(alloc_count::thread_allocations() - before, 0);
    assert_eq!(again, warm);
}
