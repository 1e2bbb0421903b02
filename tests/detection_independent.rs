//! Detection judged on images the simulator did not make: the independent
//! generator in `independent_images` (Manhattan lines and contacts, PSF,
//! Poisson shot noise, per-die gain and stage shift). Issue 11's
//! acceptance: recall ≥ 0.9 and precision ≥ 0.9 (a detection matches a
//! defect when its bbox is within 3 px of the defect's), and a neighbour's
//! defect is never reported in the die under test.

mod independent_images;

use independent_images::{die_triplet, GenParams, Kind, Truth};
use waferscope::pipeline::{
    Defect, DefectClass, DetectParams, Detector, DieResult, Profiles, Reference,
};

const MATCH_PX: f64 = 3.0;

fn near(b: &[f64; 4], d: &Defect) -> bool {
    let [x0, y0, x1, y1] = d.bbox.map(f64::from);
    x0 - MATCH_PX <= b[2] && b[0] <= x1 + MATCH_PX && y0 - MATCH_PX <= b[3] && b[1] <= y1 + MATCH_PX
}

#[derive(Debug, Default)]
struct Score {
    truths: usize,
    found: usize,
    detections: usize,
    true_detections: usize,
    neighbour_reported: usize,
    /// Per expected class: (defects found, classified as that class) by
    /// the largest detection matching each.
    classes: std::collections::BTreeMap<&'static str, (usize, usize)>,
}

/// The class the detector should give each kind of defect.
fn expected_class(kind: Kind) -> DefectClass {
    match kind {
        Kind::BrightParticle | Kind::DarkParticle => DefectClass::Particle,
        Kind::Scratch => DefectClass::Scratch,
        Kind::MissingContact | Kind::Bridge => DefectClass::Pattern,
    }
}

impl Score {
    fn class_accuracy(&self, class: DefectClass) -> Option<f64> {
        let (found, right) = *self.classes.get(class.name())?;
        Some(right as f64 / found.max(1) as f64)
    }
    fn recall(&self) -> f64 {
        self.found as f64 / self.truths.max(1) as f64
    }
    fn precision(&self) -> f64 {
        // No detections at all is no evidence of precision.
        if self.detections == 0 {
            return 0.0;
        }
        self.true_detections as f64 / self.detections as f64
    }
}

fn score_triplets(p: &GenParams, params: DetectParams, seeds: std::ops::Range<u64>) -> Score {
    let n = p.size as u32;
    let mut det = Detector::new(n, n, params);
    let mut score = Score::default();
    for seed in seeds {
        let (t, l, r, truth) = die_triplet(seed, p);
        let profiles = |img: &[u8]| {
            let mut pr = Profiles::new(n, n);
            pr.compute(img);
            pr
        };
        let (pt, pl, pr) = (profiles(&t), profiles(&l), profiles(&r));
        let mut out = DieResult::default();
        out.clear(seed as u32);
        det.inspect(
            Reference::die(&t, &pt),
            Reference::die(&l, &pl),
            Reference::die(&r, &pr),
            None,
            &mut out,
        );
        if out.alignment_untrusted {
            eprintln!(
                "seed {seed}: alignment untrusted (confidence {:.2} / {:.2}), shifts {:?}",
                out.align_confidence_left, out.align_confidence_right, truth.shifts
            );
        }
        score.truths += truth.test.len();
        score.detections += out.defects().len();
        let matches = |d: &Defect, list: &[Truth]| list.iter().any(|g| near(&g.bbox_in_image, d));
        for d in out.defects() {
            if matches(d, &truth.test) {
                score.true_detections += 1;
            } else if matches(d, &truth.neighbours_in_test) {
                score.neighbour_reported += 1;
                eprintln!("seed {seed}: neighbour's defect reported in T: {d:?}");
            } else {
                eprintln!(
                    "seed {seed}: false detection {:?} area {} peak {}, shifts {:?}",
                    d.bbox, d.area_px, d.peak_diff, truth.shifts
                );
            }
        }
        for g in &truth.test {
            let largest = out
                .defects()
                .iter()
                .filter(|d| near(&g.bbox_in_image, d))
                .max_by_key(|d| d.area_px);
            if let Some(d) = largest {
                score.found += 1;
                let want = expected_class(g.kind);
                let entry = score.classes.entry(want.name()).or_default();
                entry.0 += 1;
                if d.class == want {
                    entry.1 += 1;
                } else {
                    eprintln!("seed {seed}: {:?} classified {:?}", g.kind, d.class);
                }
            } else {
                eprintln!(
                    "seed {seed}: missed {:?} contrast {:.0} at {:?}",
                    g.kind, g.contrast, g.bbox_in_image
                );
            }
        }
    }
    println!(
        "recall {:.3} ({}/{}), precision {:.3} ({}/{}), neighbour defects reported in T: {}",
        score.recall(),
        score.found,
        score.truths,
        score.precision(),
        score.true_detections,
        score.detections,
        score.neighbour_reported
    );
    for (class, (found, right)) in &score.classes {
        println!(
            "class {class:<8} found {found:>3} classified correctly {right:>3} ({:.1} %)",
            100.0 * *right as f64 / (*found).max(1) as f64
        );
    }
    score
}

fn assert_acceptance(s: &Score) {
    assert!(s.truths >= 40, "too few defects to judge: {s:?}");
    assert!(s.recall() >= 0.9, "recall {:.3}: {s:?}", s.recall());
    assert!(
        s.precision() >= 0.9,
        "precision {:.3}: {s:?}",
        s.precision()
    );
    assert_eq!(s.neighbour_reported, 0, "{s:?}");
}

/// What today's detector (±8 px alignment, fixed threshold, no gain
/// normalisation) is built for: small shifts, equal gain, moderate noise,
/// clear defects.
fn moderate() -> GenParams {
    GenParams {
        size: 384,
        // Each die ±3 px, so neighbours differ by ≤ 6 px (today aligns ±8).
        max_shift_px: 3.0,
        gain_drift: 0.0,
        offset_drift: 0.0,
        // Total σ ≈ 3 on metal: read 2 plus shot 160/60 = 2.7 grey² .
        read_noise: 2.0,
        electrons_per_grey: 60.0,
        full_well_electrons: 20_000.0,
        psf_sigma: 0.7,
        contrast: (40.0, 120.0),
        max_defects: 3,
        neighbour_defect_chance: 0.5,
    }
}

#[test]
fn todays_detector_meets_issue_11_on_moderate_independent_images() {
    let s = score_triplets(&moderate(), DetectParams::default(), 0..30);
    assert_acceptance(&s);
    // Issue 11: scratch ≥ 95 %. (Pattern defects — missing contacts and
    // bridges — are mostly called particles: see BENCHMARKS.md.)
    let scratch = s.class_accuracy(DefectClass::Scratch).unwrap_or(0.0);
    assert!(scratch >= 0.95, "scratch {scratch:.3}: {s:?}");
}

/// Issue 11's full difficulty: ±64 px stage error, ±10 % gain, ±15 offset,
/// noise σ ≈ 8, contrast from 5σ.
fn full_difficulty() -> GenParams {
    GenParams {
        size: 512,
        max_shift_px: 64.0,
        gain_drift: 0.10,
        offset_drift: 15.0,
        // σ ≈ 8 on metal: read 6 plus shot 160/6 = 27 grey².
        read_noise: 6.0,
        electrons_per_grey: 6.0,
        full_well_electrons: 2_000.0,
        psf_sigma: 0.8,
        contrast: (40.0, 160.0),
        max_defects: 3,
        neighbour_defect_chance: 0.5,
    }
}

/// Each die ±64 px, so neighbours differ by up to ±128 px: the recipe
/// searches ±128 (a stage whose repeat error is ±64 px per die needs
/// twice that between two dies). Thresholds at 5σ with the 2×2 box and
/// edge tolerance, as the sensitivity table's recipe.
///
/// 240 die triplets. The scratch merging was developed against seeds
/// 100..140 (17 of 18 scratches right there: the one left is a scratch the
/// generator clipped at the image margin to a 7 × 2.4 px mark); seeds
/// 140..340 were not looked at until it was done (76 of 78 right), so the
/// figure is mostly held out.
#[test]
fn detector_meets_issue_11_on_full_difficulty_independent_images() {
    let params = DetectParams {
        threshold_mode: waferscope::pipeline::ThresholdMode::Sigma,
        max_shift_px: 128,
        edge_tolerance: 0.15,
        box_threshold_ratio: 0.36,
        ..DetectParams::default()
    };
    let s = score_triplets(&full_difficulty(), params, 100..340);
    assert_acceptance(&s);
    // Issue 11: scratch ≥ 95 %.
    let scratch = s.class_accuracy(DefectClass::Scratch).unwrap_or(0.0);
    assert!(scratch >= 0.95, "scratch {scratch:.3}: {s:?}");
}

/// The scorer can fail: a detector blind to everything (threshold 255)
/// finds nothing, so recall and precision are 0.
#[test]
fn a_blind_detector_fails_the_acceptance() {
    let blind = DetectParams {
        threshold: 255,
        ..DetectParams::default()
    };
    let s = score_triplets(&moderate(), blind, 0..3);
    assert!(s.truths > 0);
    assert_eq!(s.found, 0, "{s:?}");
    assert!(s.recall() < 0.9 && s.precision() < 0.9);
}

/// The generator itself: same seed same images; neighbours differ; the
/// noise is about what the parameters say; truth lies inside the frame.
#[test]
fn the_independent_generator_is_seeded_and_noisy_as_specified() {
    let p = moderate();
    let (t, l, _, truth) = die_triplet(7, &p);
    let (t2, _, _, _) = die_triplet(7, &p);
    assert_eq!(t, t2);
    assert_ne!(t, l);
    let n = p.size as f64;
    for g in &truth.test {
        let b = g.bbox_in_image;
        assert!(
            b[0] >= 0.0 && b[1] >= 0.0 && b[2] <= n && b[3] <= n,
            "{g:?}"
        );
    }
    // Two dies at the same shift with no defects and no gain drift differ
    // only by noise: σ of one image = σ of the difference / √2.
    let flat = GenParams {
        max_shift_px: 0.0,
        max_defects: 0,
        neighbour_defect_chance: 0.0,
        ..p
    };
    let (a, b, _, _) = die_triplet(11, &flat);
    let diffs: Vec<f64> = a
        .iter()
        .zip(&b)
        .map(|(&x, &y)| x as f64 - y as f64)
        .collect();
    let mean = diffs.iter().sum::<f64>() / diffs.len() as f64;
    let sd = (diffs.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / diffs.len() as f64).sqrt()
        / 2f64.sqrt();
    assert!((1.8..4.0).contains(&sd), "per-image noise σ {sd:.2}");
}
