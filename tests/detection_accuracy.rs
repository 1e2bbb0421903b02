//! Detection accuracy on seeded simulated wafers, scored against the
//! simulator's ground truth: recall and precision ≥ 0.95 (a detection
//! matches a defect when within 3 px of it), per-class accuracy reported,
//! and no defect of a neighbour ever reported in the die under test.

use std::collections::HashMap;
use std::sync::Arc;
use waferscope::hot::{FrameGeometry, FramePool};
use waferscope::machine::sim::{SimCamera, SimDefectKind, SimWafer};
use waferscope::machine::{Notch, SimFaults, WaferGeometry};
use waferscope::pipeline::{DefectClass, DetectParams, Detector, DieResult, Profiles, Reference};

const SIZE: u32 = 512;
const MATCH_PX: f32 = 3.0;

fn wafer(seed: u64) -> SimWafer {
    let g = WaferGeometry {
        diameter_mm: 200.0,
        die_pitch_um: (16_000.0, 16_000.0),
        die_size_um: (15_800.0, 15_800.0),
        edge_exclusion_mm: 3.0,
        notch: Notch::Down,
    };
    SimWafer::new(g, FrameGeometry::gray8(SIZE, SIZE), seed)
}

fn near(b: [f32; 4], d: &waferscope::pipeline::Defect) -> bool {
    let (x0, y0, x1, y1) = (
        d.bbox[0] as f32,
        d.bbox[1] as f32,
        d.bbox[2] as f32,
        d.bbox[3] as f32,
    );
    x0 - MATCH_PX <= b[2] && b[0] <= x1 + MATCH_PX && y0 - MATCH_PX <= b[3] && b[1] <= y1 + MATCH_PX
}

fn expected_class(k: SimDefectKind) -> DefectClass {
    match k {
        SimDefectKind::Particle => DefectClass::Particle,
        SimDefectKind::Scratch => DefectClass::Scratch,
        SimDefectKind::Residue => DefectClass::Residue,
        SimDefectKind::Pattern => DefectClass::Pattern,
    }
}

#[derive(Default, Debug)]
struct Score {
    truths: usize,
    found: usize,
    detections: usize,
    true_detections: usize,
    neighbour_leaks: usize,
    /// kind → (matched, correctly classified)
    per_class: HashMap<&'static str, (usize, usize)>,
}

fn score_wafer(seed: u64, score: &mut Score) {
    let wafer = Arc::new(wafer(seed));
    assert!(wafer.sites.len() >= 50, "{} dies", wafer.sites.len());
    let mut cam = SimCamera::new(wafer.clone(), 2.0, Arc::new(SimFaults::default()));
    // The golden die is taught from dies of the wafer (the median of 5),
    // as on the tool: never the simulator's noise-free render.
    let plan: Vec<u32> = wafer.sites.iter().map(|s| s.index).collect();
    let golden = waferscope::run::machine::teach_on(&wafer, &plan, 5)
        .unwrap()
        .pixels;
    let mut golden_prof = Profiles::new(SIZE, SIZE);
    golden_prof.compute(&golden);
    let pool = FramePool::new(wafer.sites.len(), FrameGeometry::gray8(SIZE, SIZE));
    let mut frames = Vec::new();
    let mut profs = Vec::new();
    for s in &wafer.sites {
        let mut f = pool.try_lease().unwrap();
        cam.capture(s.index, &mut f).unwrap();
        let mut p = Profiles::new(SIZE, SIZE);
        p.compute(f.data());
        frames.push(f);
        profs.push(p);
    }
    let mut det = Detector::new(SIZE, SIZE, DetectParams::default());
    let find = |col: i32, row: i32| {
        wafer
            .sites
            .iter()
            .position(|s| s.col == col && s.row == row)
    };
    for (i, s) in wafer.sites.iter().enumerate() {
        let side = |j: Option<usize>| match j {
            Some(j) => Reference::die(frames[j].data(), &profs[j]),
            None => Reference::golden(&golden, &golden_prof),
        };
        let (li, ri) = (find(s.col - 1, s.row), find(s.col + 1, s.row));
        let mut out = DieResult::default();
        out.clear(s.index);
        det.inspect(
            Reference::die(frames[i].data(), &profs[i]),
            side(li),
            side(ri),
            Some(Reference::golden(&golden, &golden_prof)),
            &mut out,
        );
        let shift = cam.shift_of(s.index);
        let truth: Vec<([f32; 4], SimDefectKind)> = cam
            .truth_of(s.index)
            .iter()
            .map(|d| {
                let b = d.bbox();
                (
                    [
                        b[0] + shift.0,
                        b[1] + shift.1,
                        b[2] + shift.0,
                        b[3] + shift.1,
                    ],
                    d.kind,
                )
            })
            .collect();
        score.truths += truth.len();
        score.detections += out.defects().len();
        for d in out.defects() {
            if truth.iter().any(|(b, _)| near(*b, d)) {
                score.true_detections += 1;
            } else {
                eprintln!(
                    "seed {seed} die {} ({},{}) L={:?} R={:?} false detection {:?}",
                    s.index, s.col, s.row, li, ri, d
                );
                for j in [li, ri].into_iter().flatten() {
                    eprintln!(
                        "   nb {j} shift {:?} truth {:?}",
                        cam.shift_of(j as u32),
                        cam.truth_of(j as u32)
                    );
                }
                eprintln!(
                    "   own shift {:?} truth {:?}",
                    cam.shift_of(s.index),
                    cam.truth_of(s.index)
                );
                for j in [li, ri].into_iter().flatten() {
                    let sh = cam.shift_of(j as u32);
                    if cam.truth_of(j as u32).iter().any(|n| {
                        let b = n.bbox();
                        near([b[0] + sh.0, b[1] + sh.1, b[2] + sh.0, b[3] + sh.1], d)
                    }) {
                        score.neighbour_leaks += 1;
                    }
                }
            }
        }
        for (b, kind) in &truth {
            let hits: Vec<_> = out.defects().iter().filter(|d| near(*b, d)).collect();
            if hits.is_empty() {
                eprintln!("seed {seed} die {} missed {:?} at {:?}", s.index, kind, b);
                continue;
            }
            score.found += 1;
            let e = score.per_class.entry(kind.name()).or_default();
            e.0 += 1;
            let biggest = hits.iter().max_by_key(|d| d.area_px).unwrap();
            if biggest.class == expected_class(*kind) {
                e.1 += 1;
            }
        }
    }
}

#[test]
fn recall_and_precision_on_three_seeded_wafers() {
    let mut score = Score::default();
    for seed in [11, 22, 33] {
        score_wafer(seed, &mut score);
    }
    let recall = score.found as f64 / score.truths as f64;
    let precision = score.true_detections as f64 / score.detections as f64;
    println!(
        "truths {} found {} detections {} true {} recall {recall:.4} precision {precision:.4}",
        score.truths, score.found, score.detections, score.true_detections
    );
    let mut classes: Vec<_> = score.per_class.iter().collect();
    classes.sort();
    for (name, (matched, correct)) in classes {
        println!(
            "class {name:<9} matched {matched:>4} classified correctly {correct:>4} ({:.1} %)",
            100.0 * *correct as f64 / *matched as f64
        );
    }
    assert!(
        score.truths > 150,
        "too few defects to score: {}",
        score.truths
    );
    assert!(recall >= 0.95, "recall {recall}");
    assert!(precision >= 0.95, "precision {precision}");
    assert_eq!(
        score.neighbour_leaks, 0,
        "a neighbour's defect was reported in the die under test"
    );
}
