//! Classification measured on shapes drawn here, independently of the
//! simulator: a labelled feature data set (tests/data/defect_features.csv)
//! and the per-class accuracy of the class rules on it.
//!
//! The generator draws each defect class the way it looks in a difference
//! image (any orientation and size, soft edges, noise, contrast relative to
//! a k·σ threshold at several noise levels), thresholds it, labels it with
//! the detector's own labeller and records the features of the defect's
//! component. `WAFERSCOPE_WRITE_FEATURES=1 cargo test --test
//! classify_features` rewrites the file after a change to the generator or
//! to the features.

use waferscope::pipeline::classify::{classify, ClassRules};
use waferscope::pipeline::label::Labeler;
use waferscope::pipeline::{CentralMoments, DefectClass, DefectFeatures, Polarity};

const SIZE: usize = 160;
const PER_CLASS: usize = 60;
const DATA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/defect_features.csv"
);

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40) as f32 / (1u64 << 24) as f32
    }
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next()
    }
    /// Approximately normal (sum of 12 uniforms − 6).
    fn normal(&mut self) -> f32 {
        (0..12).map(|_| self.next()).sum::<f32>() - 6.0
    }
}

/// Fraction of a pixel covered by a shape whose boundary is `signed_depth`
/// px inside (negative: outside), for a 1-px soft edge.
fn coverage(signed_depth: f32) -> f32 {
    (signed_depth + 0.5).clamp(0.0, 1.0)
}

/// How deep (px) the pixel centre (x, y) lies inside one defect of `class`
/// drawn with the parameters in `p`, centred at (cx, cy).
fn depth(class: DefectClass, p: &[f32; 6], cx: f32, cy: f32, x: f32, y: f32) -> f32 {
    let (dx, dy) = (x - cx, y - cy);
    match class {
        // p: length, thickness, angle, curvature (1/px)
        DefectClass::Scratch => {
            let (s, c) = p[2].sin_cos();
            let along = dx * c + dy * s;
            let across = -dx * s + dy * c - p[3] * along * along / 2.0;
            (p[1] / 2.0 - across.abs()).min(p[0] / 2.0 - along.abs())
        }
        // p: radius, roughness amplitude, lobes, phase
        DefectClass::Particle => {
            let r = p[0] * (1.0 + p[1] * (p[2] * dy.atan2(dx) + p[3]).sin());
            r - dx.hypot(dy)
        }
        // p: radius, axis ratio, angle, roughness, lobes
        DefectClass::Residue => {
            let (s, c) = p[2].sin_cos();
            let (u, v) = (dx * c + dy * s, -dx * s + dy * c);
            let (a, b) = (p[0] * p[1].sqrt(), p[0] / p[1].sqrt());
            let rough = 1.0 + p[3] * (p[4] * v.atan2(u)).sin();
            let scaled = (u / a).hypot(v / b);
            (rough - scaled) * b
        }
        // p: width, height (axis-aligned, as the layout is)
        _ => (p[0] / 2.0 - dx.abs()).min(p[1] / 2.0 - dy.abs()),
    }
}

/// Draws one defect of `class` into a difference image, thresholds it at
/// k·σ and returns the features of its largest component.
fn draw(class: DefectClass, rng: &mut Rng) -> DefectFeatures {
    let sigma = [2.0, 4.0, 8.0][(rng.next() * 3.0) as usize % 3];
    let threshold = (rng.range(3.5, 5.0) * sigma).round().min(250.0);
    let tau = std::f32::consts::PI;
    let (params, contrast) = match class {
        DefectClass::Scratch => (
            [
                rng.range(28.0, 120.0),
                rng.range(1.0, 4.0),
                rng.range(0.0, tau),
                rng.range(-0.004, 0.004),
                0.0,
                0.0,
            ],
            rng.range(2.0, 6.0),
        ),
        DefectClass::Particle => (
            [
                rng.range(1.5, 7.0),
                rng.range(0.0, 0.25),
                [2.0, 3.0, 5.0][(rng.next() * 3.0) as usize % 3],
                rng.range(0.0, tau * 2.0),
                0.0,
                0.0,
            ],
            rng.range(2.5, 10.0),
        ),
        DefectClass::Residue => (
            [
                rng.range(8.0, 22.0),
                rng.range(1.0, 2.0),
                rng.range(0.0, tau),
                rng.range(0.0, 0.3),
                [2.0, 3.0, 5.0][(rng.next() * 3.0) as usize % 3],
                0.0,
            ],
            rng.range(1.2, 1.8),
        ),
        _ => {
            let w = rng.range(4.0, 14.0);
            (
                [
                    w,
                    (w * rng.range(0.4, 2.5)).clamp(4.0, 20.0),
                    0.0,
                    0.0,
                    0.0,
                    0.0,
                ],
                rng.range(3.0, 10.0),
            )
        }
    };
    let (cx, cy) = (80.0 + rng.range(-5.0, 5.0), 80.0 + rng.range(-5.0, 5.0));
    let peak = (contrast * threshold).min(255.0);
    let mut labeler = Labeler::new(SIZE * SIZE / 2, 1024);
    let mut row = vec![0u8; SIZE];
    for y in 0..SIZE {
        for (x, v) in row.iter_mut().enumerate() {
            let inside = coverage(depth(class, &params, cx, cy, x as f32, y as f32));
            *v = (peak * inside + sigma * rng.normal())
                .abs()
                .round()
                .min(255.0) as u8;
        }
        labeler.add_row(y as u16, 0, &row, threshold as u8);
    }
    let c = *labeler
        .finish()
        .iter()
        .max_by_key(|c| c.area)
        .expect("the defect crosses the threshold");
    DefectFeatures {
        area_px: c.area,
        bbox_w: (c.bbox[2] - c.bbox[0]) as u32,
        bbox_h: (c.bbox[3] - c.bbox[1]) as u32,
        moments: c.moments.central(),
        polarity: if rng.next() < 0.5 {
            Polarity::Bright
        } else {
            Polarity::Dark
        },
        mean_diff: c.sum as f32 / c.area as f32,
        peak_diff: c.peak,
        threshold,
    }
}

const CLASSES: [DefectClass; 4] = [
    DefectClass::Scratch,
    DefectClass::Particle,
    DefectClass::Residue,
    DefectClass::Pattern,
];

fn generate() -> Vec<(DefectClass, DefectFeatures)> {
    let mut rng = Rng(0x5EED_CAFE_F00D_0001);
    CLASSES
        .iter()
        .flat_map(|&class| (0..PER_CLASS).map(move |_| class))
        .map(|class| (class, draw(class, &mut rng)))
        .collect()
}

const HEADER: &str = "class,area_px,bbox_w,bbox_h,moment_xx,moment_yy,moment_xy,polarity,mean_diff,peak_diff,threshold,length_px,elongation,orientation_deg,box_fill,solidity,relative_contrast";

fn to_csv(rows: &[(DefectClass, DefectFeatures)]) -> String {
    let mut s = String::from(HEADER);
    s.push('\n');
    for (class, f) in rows {
        s.push_str(&format!(
            "{},{},{},{},{:.4},{:.4},{:.4},{},{:.3},{},{},{:.2},{:.3},{:.1},{:.3},{:.3},{:.3}\n",
            class.name(),
            f.area_px,
            f.bbox_w,
            f.bbox_h,
            f.moments.xx,
            f.moments.yy,
            f.moments.xy,
            if f.polarity == Polarity::Bright {
                "bright"
            } else {
                "dark"
            },
            f.mean_diff,
            f.peak_diff,
            f.threshold,
            f.length_px(),
            f.elongation(),
            f.orientation_deg(),
            f.box_fill(),
            f.solidity(),
            f.relative_contrast(),
        ));
    }
    s
}

/// The labelled features stored in the repository (the derived columns are
/// for reading; the features are rebuilt from the raw ones).
fn read_data_set() -> Vec<(DefectClass, DefectFeatures)> {
    let text = std::fs::read_to_string(DATA).expect("tests/data/defect_features.csv");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(HEADER));
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let num = |i: usize| f[i].parse::<f32>().unwrap();
            let class = *DefectClass::ALL.iter().find(|c| c.name() == f[0]).unwrap();
            (
                class,
                DefectFeatures {
                    area_px: num(1) as u32,
                    bbox_w: num(2) as u32,
                    bbox_h: num(3) as u32,
                    moments: CentralMoments {
                        xx: num(4),
                        yy: num(5),
                        xy: num(6),
                    },
                    polarity: if f[7] == "bright" {
                        Polarity::Bright
                    } else {
                        Polarity::Dark
                    },
                    mean_diff: num(8),
                    peak_diff: num(9) as u8,
                    threshold: num(10),
                },
            )
        })
        .collect()
}

#[test]
fn the_data_set_in_the_repository_is_what_the_generator_draws() {
    let fresh = to_csv(&generate());
    if std::env::var_os("WAFERSCOPE_WRITE_FEATURES").is_some() {
        std::fs::write(DATA, &fresh).unwrap();
    }
    let stored = std::fs::read_to_string(DATA).unwrap_or_default();
    let (fresh_rows, stored_rows): (Vec<&str>, Vec<&str>) =
        (fresh.lines().collect(), stored.lines().collect());
    assert_eq!(
        fresh_rows.len(),
        stored_rows.len(),
        "rerun with WAFERSCOPE_WRITE_FEATURES=1"
    );
    // Integer columns exactly, decimals to their last printed digit (float
    // formatting may round the last digit differently on another target).
    for (a, b) in fresh_rows.iter().zip(&stored_rows) {
        for (x, y) in a.split(',').zip(b.split(',')) {
            match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(x), Ok(y)) => assert!((x - y).abs() <= 0.011 * x.abs().max(1.0), "{a}\n{b}"),
                _ => assert_eq!(x, y, "{a}\n{b}"),
            }
        }
    }
}

#[test]
fn per_class_accuracy_on_the_independent_data_set() {
    let rows = read_data_set();
    assert_eq!(rows.len(), CLASSES.len() * PER_CLASS);
    let rules = ClassRules::default();
    let mut report = String::from("class     accuracy  (n)   confused with\n");
    let mut worst = 1.0f32;
    for &class in &CLASSES {
        let of_class: Vec<_> = rows.iter().filter(|(c, _)| *c == class).collect();
        let mut confusions = std::collections::BTreeMap::new();
        let right = of_class
            .iter()
            .filter(|(_, f)| {
                let got = classify(f, &rules);
                if got != class {
                    *confusions.entry(got.name()).or_insert(0) += 1;
                }
                got == class
            })
            .count();
        let accuracy = right as f32 / of_class.len() as f32;
        report.push_str(&format!(
            "{:<9} {:>6.1} %  ({})  {confusions:?}\n",
            class.name(),
            accuracy * 100.0,
            of_class.len()
        ));
        if class == DefectClass::Scratch {
            assert!(accuracy >= 0.95, "scratch accuracy below 95 %:\n{report}");
        }
        worst = worst.min(accuracy);
    }
    eprintln!("{report}");
    assert!(worst >= 0.9, "a class below 90 %:\n{report}");
}
