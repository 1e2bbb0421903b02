//! Pipeline behaviour: every die inspected once, against the right
//! neighbours; live view drops instead of stalling; device faults are
//! retried and a die that still fails is reported as not inspected.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use waferscope::hot::FrameGeometry;
use waferscope::machine::sim::{SimCamera, SimStage, SimWafer};
use waferscope::machine::{Notch, SimFaults, WaferGeometry};
use waferscope::pipeline::{
    DetectParams, Detector, DieResult, Pipeline, PipelineConfig, Profiles, Reference,
    ReferenceMode, ReferenceSource,
};

const SIZE: u32 = 384;

fn wafer(seed: u64) -> Arc<SimWafer> {
    let g = WaferGeometry {
        diameter_mm: 150.0,
        die_pitch_um: (16_000.0, 16_000.0),
        die_size_um: (15_800.0, 15_800.0),
        edge_exclusion_mm: 3.0,
        notch: Notch::Down,
    };
    Arc::new(SimWafer::new(g, FrameGeometry::gray8(SIZE, SIZE), seed))
}

type Collected = Arc<Mutex<Vec<DieResult>>>;

fn start(
    wafer: &Arc<SimWafer>,
    faults: Arc<SimFaults>,
    workers: usize,
    stage: bool,
) -> (Pipeline, Collected, SimCamera) {
    let camera = SimCamera::new(wafer.clone(), 2.0, faults.clone());
    let reference_camera = SimCamera::new(wafer.clone(), 2.0, Arc::new(SimFaults::default()));
    let golden = camera.golden();
    let results: Collected = Arc::default();
    let sink = results.clone();
    let stage = stage.then(|| {
        Box::new(SimStage::new(300.0, Duration::from_millis(1), 0.0, faults))
            as Box<dyn waferscope::machine::Stage>
    });
    let p = Pipeline::start(
        PipelineConfig {
            workers,
            pool_frames: 3 * workers + 3,
            params: DetectParams::default(),
            ..PipelineConfig::default()
        },
        Box::new(camera),
        stage,
        wafer.sites.clone().into(),
        golden,
        Box::new(move |r| sink.lock().unwrap().push(*r)),
    );
    (p, results, reference_camera)
}

#[test]
fn every_die_once_with_the_same_result_as_direct_detection() {
    let w = wafer(3);
    for workers in [1, 2] {
        let (p, results, mut cam) = start(&w, Arc::new(SimFaults::default()), workers, true);
        for s in w.sites.iter() {
            p.inspect(s.index);
        }
        p.finish().unwrap();
        let mut got = results.lock().unwrap().clone();
        got.sort_by_key(|r| r.die_index);
        assert_eq!(got.len(), w.sites.len(), "{workers} workers");
        // Direct detection of each die against its physical neighbours.
        let pool = waferscope::hot::FramePool::new(w.sites.len(), FrameGeometry::gray8(SIZE, SIZE));
        let frames: Vec<_> = w
            .sites
            .iter()
            .map(|s| {
                let mut f = pool.try_lease().unwrap();
                cam.capture(s.index, &mut f).unwrap();
                let mut pr = Profiles::new(SIZE, SIZE);
                pr.compute(f.data());
                (f, pr)
            })
            .collect();
        let golden = cam.golden();
        let mut gp = Profiles::new(SIZE, SIZE);
        gp.compute(&golden);
        let mut det = Detector::new(SIZE, SIZE, DetectParams::default());
        let find = |c: i32, r: i32| w.sites.iter().position(|s| s.col == c && s.row == r);
        for (s, r) in w.sites.iter().zip(&got) {
            assert_eq!(r.die_index, s.index);
            let side = |j: Option<usize>| match j {
                Some(j) => Reference::die(frames[j].0.data(), &frames[j].1),
                None => Reference::golden(&golden, &gp),
            };
            let mut expect = DieResult::default();
            expect.clear(s.index);
            det.inspect(
                Reference::die(
                    frames[s.index as usize].0.data(),
                    &frames[s.index as usize].1,
                ),
                side(find(s.col - 1, s.row)),
                side(find(s.col + 1, s.row)),
                Some(Reference::golden(&golden, &gp)),
                &mut expect,
            );
            assert_eq!(
                r.defects(),
                expect.defects(),
                "die {} with {workers} workers",
                s.index
            );
            assert_eq!((r.golden_left, r.golden_right), (!s.has_left, !s.has_right));
        }
    }
}

#[test]
fn live_view_drops_and_counts_instead_of_stalling() {
    let w = wafer(4);
    let (p, _results, _) = start(&w, Arc::new(SimFaults::default()), 1, false);
    // Nobody takes live frames: the one-deep viewer slot fills, then every
    // further frame is dropped and counted; nothing blocks.
    for _ in 0..50 {
        p.live(0);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while p.telemetry().frames_acquired.get() < 50 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let t = p.telemetry();
    assert_eq!(
        t.frames_acquired.get(),
        50,
        "the pool never ran dry: every trigger imaged"
    );
    assert_eq!(
        t.drops.get(),
        49,
        "all but the first frame found the viewer slot full"
    );
    let frame = p
        .take_live_frame()
        .expect("the newest frame that fit is waiting");
    assert_eq!(frame.meta.die_index, 0);
    drop(frame);
    assert_eq!(t.stall_ns.get(), 0, "live view never waits for a buffer");
    p.finish().unwrap();
}

#[test]
fn faults_are_retried_and_a_die_that_still_fails_is_reported() {
    let w = wafer(5);
    let faults = Arc::new(SimFaults::default());
    let (p, results, _) = start(&w, faults.clone(), 1, true);
    let telemetry = p.telemetry().clone();
    faults.camera_timeout_next(2); // die 0: two timeouts, the third try works
    p.inspect(0);
    while telemetry.frames_acquired.get() < 1 {
        std::thread::sleep(Duration::from_millis(1));
    }
    faults.lose_next_frames(3); // die 1: every try lost
    p.inspect(1);
    while telemetry.capture_failures.get() < 1 {
        std::thread::sleep(Duration::from_millis(1));
    }
    faults.following_error_next(1); // die 2: the stage move is retried once
    p.inspect(2);
    p.finish().unwrap();
    let got = results.lock().unwrap().clone();
    let by_die = |i: u32| got.iter().find(|r| r.die_index == i).copied().unwrap();
    assert_eq!(got.len(), 3);
    assert!(!by_die(0).capture_failed);
    assert!(by_die(1).capture_failed, "three lost frames fail the die");
    assert!(!by_die(2).capture_failed);
    assert_eq!(telemetry.camera_errors.get(), 5);
    assert_eq!(telemetry.stage_errors.get(), 1);
    assert_eq!(telemetry.capture_failures.get(), 1);
    assert_eq!(telemetry.dies_inspected.get(), 2);
}

#[test]
fn detection_never_waits_for_thumbnails() {
    let w = wafer(6);
    let camera = SimCamera::new(w.clone(), 2.0, Arc::new(SimFaults::default()));
    let golden = camera.golden();
    // Two crop buffers and nobody writing them: the queue fills at once.
    let (tap, _feed) = waferscope::pipeline::thumbnail_channel(2, 16);
    let (taken, skipped) = (tap.taken.clone(), tap.skipped.clone());
    let results: Collected = Arc::default();
    let sink = results.clone();
    let p = Pipeline::start_with_thumbnails(
        PipelineConfig {
            workers: 1,
            pool_frames: 6,
            params: DetectParams::default(),
            ..PipelineConfig::default()
        },
        Box::new(camera),
        None,
        w.sites.clone().into(),
        golden,
        Box::new(move |r| sink.lock().unwrap().push(*r)),
        Some(tap),
    );
    for s in w.sites.iter() {
        p.inspect(s.index);
    }
    p.finish().unwrap();
    let got = results.lock().unwrap();
    assert_eq!(got.len(), w.sites.len(), "every die inspected");
    let defects: u64 = got.iter().map(|r| r.count as u64).sum();
    assert_eq!(taken.get(), 2);
    assert_eq!(
        taken.get() + skipped.get(),
        defects,
        "every defect's thumbnail taken or counted as skipped"
    );
}

#[test]
fn a_halt_cancels_a_die_waiting_for_a_free_buffer() {
    let w = wafer(7);
    let (p, results, _) = start(&w, Arc::new(SimFaults::default()), 1, false);
    // Every buffer held elsewhere: the next die waits for one.
    let pool = p.pool().clone();
    let held: Vec<_> = std::iter::from_fn(|| pool.try_lease()).collect();
    p.inspect(0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !p.busy() {
        assert!(Instant::now() < deadline, "die 0 never taken in hand");
        std::thread::sleep(Duration::from_millis(1));
    }
    p.halt();
    let cancelled = loop {
        if let Some(d) = p.take_cancelled() {
            break d;
        }
        assert!(Instant::now() < deadline, "the halt was not honoured");
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(cancelled, 0);
    assert!(!p.busy());
    drop(held);
    p.finish().unwrap();
    assert!(results.lock().unwrap().is_empty(), "die 0 was never imaged");
}

#[test]
fn an_unknown_die_is_a_fault_naming_it() {
    let w = wafer(8);
    let (p, _, _) = start(&w, Arc::new(SimFaults::default()), 1, false);
    p.inspect(100_000);
    let deadline = Instant::now() + Duration::from_secs(30);
    let why = loop {
        if let Some(why) = p.fault() {
            break why;
        }
        assert!(Instant::now() < deadline, "no fault for an unknown die");
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(
        why.starts_with("acquisition: die 100000 is not on the wafer map"),
        "{why}"
    );
    p.finish().unwrap();
}

#[test]
fn a_panicking_worker_reads_dead_and_finish_reports_it() {
    let w = wafer(9);
    let faults = Arc::new(SimFaults::default());
    faults.panic_worker_at(1);
    let camera = SimCamera::new(w.clone(), 2.0, faults.clone());
    let golden = camera.golden();
    let p = Pipeline::start(
        PipelineConfig {
            workers: 1,
            faults: Some(faults),
            stop_deadline: Duration::from_millis(500),
            ..PipelineConfig::default()
        },
        Box::new(camera),
        None,
        w.sites.clone().into(),
        golden,
        Box::new(|_| {}),
    );
    for i in 0..4 {
        p.inspect(i);
    }
    p.end_of_plan();
    let deadline = Instant::now() + Duration::from_secs(30);
    let why = loop {
        if let Some(why) = p.fault() {
            break why;
        }
        assert!(Instant::now() < deadline, "a dead worker went unnoticed");
        std::thread::sleep(Duration::from_millis(1));
    };
    assert_eq!(
        why,
        "thread detect-0 died: injected fault: detection worker panics at die 1"
    );
    assert!(p
        .thread_states()
        .iter()
        .any(|(n, s)| n == "detect-0" && s.label() == "dead"));
    let pool = p.pool().clone();
    let err = p.finish().unwrap_err();
    assert!(
        err.contains("thread detect-0 died: injected fault"),
        "{err}"
    );
    assert_eq!(pool.in_use(), 0, "the dead worker's frames went back");
}

/// Die-to-golden and die-to-reference: every die is inspected, as it
/// arrives, against that one image alone (the same result as
/// `inspect_against` directly), and says so in its result.
#[test]
fn a_single_reference_recipe_compares_every_die_with_that_image() {
    let w = wafer(5);
    let mut cam = SimCamera::new(w.clone(), 2.0, Arc::new(SimFaults::default()));
    let golden = cam.golden();
    // A reference image that is not the golden die: die 0 as imaged.
    let pool = waferscope::hot::FramePool::new(w.sites.len() + 1, FrameGeometry::gray8(SIZE, SIZE));
    let mut f = pool.try_lease().unwrap();
    cam.capture(w.sites[0].index, &mut f).unwrap();
    let reference: Arc<[u8]> = f.data().to_vec().into();
    drop(f);
    let dies: Vec<u32> = w.sites.iter().map(|s| s.index).take(12).collect();
    for (source, mode) in [
        (ReferenceSource::DieToGolden, ReferenceMode::DieToGolden),
        (
            ReferenceSource::DieToReference(reference.clone()),
            ReferenceMode::DieToReference,
        ),
    ] {
        let results: Collected = Arc::default();
        let sink = results.clone();
        let p = Pipeline::start(
            PipelineConfig {
                workers: 2,
                pool_frames: 9,
                reference: source.clone(),
                ..PipelineConfig::default()
            },
            Box::new(SimCamera::new(
                w.clone(),
                2.0,
                Arc::new(SimFaults::default()),
            )),
            None,
            w.sites.clone().into(),
            golden.clone(),
            Box::new(move |r| sink.lock().unwrap().push(*r)),
        );
        for &d in &dies {
            p.inspect(d);
        }
        p.finish().unwrap();
        let mut got = results.lock().unwrap().clone();
        got.sort_by_key(|r| r.die_index);
        assert_eq!(got.len(), dies.len(), "{source:?}");
        let image: &[u8] = match &source {
            ReferenceSource::DieToReference(px) => &px[..],
            _ => &golden[..],
        };
        let mut rp = Profiles::new(SIZE, SIZE);
        rp.compute(image);
        let r = if mode == ReferenceMode::DieToGolden {
            Reference::golden(image, &rp)
        } else {
            Reference::die(image, &rp)
        };
        let mut det = Detector::new(SIZE, SIZE, DetectParams::default());
        for res in &got {
            assert_eq!(res.reference_mode, mode, "die {}", res.die_index);
            let mut f = pool.try_lease().unwrap();
            cam.capture(res.die_index, &mut f).unwrap();
            let mut tp = Profiles::new(SIZE, SIZE);
            tp.compute(f.data());
            let mut expect = DieResult::default();
            expect.clear(res.die_index);
            det.inspect_against(Reference::die(f.data(), &tp), r, &mut expect);
            assert_eq!(
                res.defects(),
                expect.defects(),
                "die {} {source:?}",
                res.die_index
            );
        }
    }
}
