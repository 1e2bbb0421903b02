//! Acquisition + detection + hand-offs allocate nothing once warm, in the
//! production configuration: a stage, two detection workers, thumbnail
//! cutting, the live-view display buffer and live-view triggers between the
//! dies, with the watched threads beating. 2,000+ frames of 1024² after a
//! warm-up pass, counted per hot thread. (Its own test binary, so no other
//! test's threads register under the same names.)

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

#[test]
fn acquisition_detection_and_handoffs_allocate_nothing_after_warm_up() {
    let geometry = WaferGeometry {
        diameter_mm: 200.0,
        die_pitch_um: (16_000.0, 16_000.0),
        die_size_um: (15_800.0, 15_800.0),
        edge_exclusion_mm: 3.0,
        notch: Notch::Down,
    };
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
