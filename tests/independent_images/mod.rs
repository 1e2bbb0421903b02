//! A second image generator, written apart from `src/machine/sim` and
//! sharing none of its code, so detection is judged on images the
//! simulator did not make.
//!
//! - **Layout**: Manhattan metal lines of varied width and pitch (horizontal
//!   in the top half, vertical bottom left, some cut into segments) and an
//!   array of square contacts (bottom right), inside a dark street. The die
//!   tiles at its own size, so a stage shift brings in the neighbouring
//!   die's street and edge, as on a wafer.
//! - **Optics**: rectangles are rendered with exact area coverage
//!   (anti-aliased edges), then blurred by a Gaussian point-spread function.
//! - **Sensor**: the blurred signal times a per-die gain becomes
//!   photo-electrons (clipped at the full well), drawn Poisson; plus
//!   Gaussian read noise and a per-die offset; quantised to 8 bits.
//! - **Stage**: every die lands at its own integer + fractional shift.
//! - **Defects**: bright/dark particles (r 1.5–6 px), scratch segments,
//!   missing contacts and bridges between lines, with exact ground truth;
//!   sometimes a neighbour gets defects of its own, which must never be
//!   reported in the die under test.

#![allow(dead_code)] // each test binary uses a different part

/// How hard the images are.
#[derive(Debug, Clone, Copy)]
pub struct GenParams {
    pub size: usize,
    /// Stage error: each die lands at up to ± this many pixels (x and y).
    pub max_shift_px: f64,
    /// Per-die gain 1 ± this fraction.
    pub gain_drift: f64,
    /// Per-die offset ± this many grey levels.
    pub offset_drift: f64,
    /// Gaussian read noise σ, grey levels.
    pub read_noise: f64,
    /// Photo-electrons per grey level (the shot-noise scale).
    pub electrons_per_grey: f64,
    pub full_well_electrons: f64,
    /// Point-spread function σ, pixels.
    pub psf_sigma: f64,
    /// Particle and scratch contrast range, grey levels (magnitude).
    pub contrast: (f64, f64),
    /// Defects in the die under test: 1 to this many.
    pub max_defects: usize,
    /// Chance that a neighbour carries defects of its own.
    pub neighbour_defect_chance: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BrightParticle,
    DarkParticle,
    Scratch,
    MissingContact,
    Bridge,
}

/// One injected defect: where it is in the image of the die it was put
/// on (pixel bbox [x0, y0, x1, y1], shift included), and in die
/// coordinates (before any stage shift).
#[derive(Debug, Clone, Copy)]
pub struct Truth {
    pub kind: Kind,
    pub bbox_in_image: [f64; 4],
    pub bbox_on_die: [f64; 4],
    pub contrast: f64,
}

/// Ground truth of a triplet.
#[derive(Debug, Clone, Default)]
pub struct TripletTruth {
    /// Defects of the die under test, in its image.
    pub test: Vec<Truth>,
    /// Defects of the neighbours, mapped into the test image (where they
    /// would show if wrongly reported there).
    pub neighbours_in_test: Vec<Truth>,
    pub shifts: [(f64, f64); 3],
}

/// A die image, row-major 8-bit.
pub type Image = Vec<u8>;

/// xoshiro256** seeded by SplitMix64 (Blackman & Vigna), with Gaussian
/// (polar Box–Muller) and Poisson draws.
pub struct Xoshiro([u64; 4]);

impl Xoshiro {
    pub fn new(seed: u64) -> Self {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        };
        Self([next(), next(), next(), next()])
    }
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.0;
        let out = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        out
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn between(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }
    pub fn gaussian(&mut self) -> f64 {
        loop {
            let (u, v) = (self.between(-1.0, 1.0), self.between(-1.0, 1.0));
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return u * (-2.0 * s.ln() / s).sqrt();
            }
        }
    }
    /// Poisson: Knuth's product method for small means, the normal
    /// approximation (error < 1 % of σ) above 50 electrons.
    pub fn poisson(&mut self, mean: f64) -> f64 {
        if mean <= 0.0 {
            return 0.0;
        }
        if mean > 50.0 {
            return (mean + mean.sqrt() * self.gaussian()).round().max(0.0);
        }
        let limit = (-mean).exp();
        let (mut k, mut p) = (0.0, self.uniform());
        while p > limit {
            k += 1.0;
            p *= self.uniform();
        }
        k
    }
}

/// Signal levels of the materials (grey levels at gain 1).
const STREET: f64 = 25.0;
const OXIDE: f64 = 55.0;
const METAL: f64 = 160.0;
const CONTACT: f64 = 215.0;
const STREET_PX: f64 = 8.0;

#[derive(Debug, Clone, Copy)]
struct Rect {
    x0: f64,
    y0: f64,
    x1: f64,
    y1: f64,
    level: f64,
}

/// The die design: the same on every die (the layout seed is fixed).
struct Layout {
    rects: Vec<Rect>,
    contacts: Vec<Rect>,
    hlines: Vec<Rect>,
}

fn layout(size: f64) -> Layout {
    let mut rng = Xoshiro::new(0x1A70);
    let (inner0, inner1) = (STREET_PX, size - STREET_PX);
    let mid = (size / 2.0).floor();
    let mut rects = vec![Rect {
        x0: inner0,
        y0: inner0,
        x1: inner1,
        y1: inner1,
        level: OXIDE,
    }];
    // Horizontal lines, top half: width 3–9 px, gaps 4–11 px, some cut.
    let mut hlines = Vec::new();
    let mut y = inner0 + 6.0;
    while y < mid - 12.0 {
        let width = rng.between(3.0, 9.0).round();
        let mut x = inner0 + 6.0;
        while x < inner1 - 6.0 {
            let len = rng.between(60.0, 260.0).round();
            let end = (x + len).min(inner1 - 6.0);
            hlines.push(Rect {
                x0: x,
                y0: y,
                x1: end,
                y1: y + width,
                level: METAL,
            });
            x = end + rng.between(6.0, 14.0).round();
        }
        y += width + rng.between(4.0, 11.0).round();
    }
    rects.extend(&hlines);
    // Vertical lines, bottom left.
    let mut x = inner0 + 6.0;
    while x < mid - 12.0 {
        let width = rng.between(3.0, 8.0).round();
        rects.push(Rect {
            x0: x,
            y0: mid + 6.0,
            x1: x + width,
            y1: inner1 - 6.0,
            level: METAL,
        });
        x += width + rng.between(5.0, 12.0).round();
    }
    // Contacts, bottom right: 4 px squares at a 10 px pitch.
    let mut contacts = Vec::new();
    let mut cy = mid + 8.0;
    while cy + 4.0 < inner1 - 6.0 {
        let mut cx = mid + 8.0;
        while cx + 4.0 < inner1 - 6.0 {
            contacts.push(Rect {
                x0: cx,
                y0: cy,
                x1: cx + 4.0,
                y1: cy + 4.0,
                level: CONTACT,
            });
            cx += 10.0;
        }
        cy += 10.0;
    }
    rects.extend(&contacts);
    Layout {
        rects,
        contacts,
        hlines,
    }
}

/// What a defect does to the signal (die coordinates).
#[derive(Debug, Clone, Copy)]
enum Paint {
    Disc {
        cx: f64,
        cy: f64,
        r: f64,
        delta: f64,
    },
    Segment {
        a: (f64, f64),
        b: (f64, f64),
        half_width: f64,
        delta: f64,
    },
    Fill(Rect),
}

fn overlap(a0: f64, a1: f64, b0: f64, b1: f64) -> f64 {
    (a1.min(b1) - a0.max(b0)).max(0.0)
}

/// Composites a rectangle with exact pixel-area coverage.
fn fill(signal: &mut [f64], size: usize, r: Rect, dx: f64, dy: f64) {
    let (x0, x1) = (r.x0 + dx, r.x1 + dx);
    let (y0, y1) = (r.y0 + dy, r.y1 + dy);
    let px0 = x0.floor().max(0.0) as usize;
    let px1 = (x1.ceil().max(0.0) as usize).min(size);
    let py0 = y0.floor().max(0.0) as usize;
    let py1 = (y1.ceil().max(0.0) as usize).min(size);
    for py in py0..py1 {
        let cy = overlap(py as f64, py as f64 + 1.0, y0, y1);
        for px in px0..px1 {
            let c = cy * overlap(px as f64, px as f64 + 1.0, x0, x1);
            let v = &mut signal[py * size + px];
            *v += (r.level - *v) * c;
        }
    }
}

/// Whether a die-coordinate point lies inside a defect's footprint.
type Inside = Box<dyn Fn(f64, f64) -> bool>;

/// Adds a defect, coverage by 5×5 supersampling.
fn paint(signal: &mut [f64], size: usize, p: Paint, dx: f64, dy: f64) {
    let (delta, bbox, inside): (f64, [f64; 4], Inside) = match p {
        Paint::Fill(r) => return fill(signal, size, r, dx, dy),
        Paint::Disc { cx, cy, r, delta } => (
            delta,
            [cx - r, cy - r, cx + r, cy + r],
            Box::new(move |x, y| (x - cx).powi(2) + (y - cy).powi(2) <= r * r),
        ),
        Paint::Segment {
            a,
            b,
            half_width,
            delta,
        } => (
            delta,
            [
                a.0.min(b.0) - half_width,
                a.1.min(b.1) - half_width,
                a.0.max(b.0) + half_width,
                a.1.max(b.1) + half_width,
            ],
            Box::new(move |x, y| {
                let (vx, vy) = (b.0 - a.0, b.1 - a.1);
                let t = (((x - a.0) * vx + (y - a.1) * vy) / (vx * vx + vy * vy)).clamp(0.0, 1.0);
                (x - a.0 - t * vx).hypot(y - a.1 - t * vy) <= half_width
            }),
        ),
    };
    let lo = |v: f64| (v.floor() as i64 - 1).clamp(0, size as i64) as usize;
    let hi = |v: f64| (v.ceil() as i64 + 1).clamp(0, size as i64) as usize;
    for py in lo(bbox[1] + dy)..hi(bbox[3] + dy) {
        for px in lo(bbox[0] + dx)..hi(bbox[2] + dx) {
            let mut n = 0;
            for sy in 0..5 {
                for sx in 0..5 {
                    let x = px as f64 + (sx as f64 + 0.5) / 5.0 - dx;
                    let y = py as f64 + (sy as f64 + 0.5) / 5.0 - dy;
                    n += inside(x, y) as u32;
                }
            }
            signal[py * size + px] += delta * n as f64 / 25.0;
        }
    }
}

/// One defect drawn on die coordinates, with its footprint.
fn random_defect(
    rng: &mut Xoshiro,
    lay: &Layout,
    p: &GenParams,
    margin: f64,
) -> (Kind, Paint, [f64; 4], f64) {
    let size = p.size as f64;
    let contrast = rng.between(p.contrast.0, p.contrast.1);
    let pick = rng.uniform();
    let at = |rng: &mut Xoshiro| {
        (
            rng.between(margin, size - margin),
            rng.between(margin, size - margin),
        )
    };
    if pick < 0.45 {
        let (cx, cy) = at(rng);
        let r = rng.between(1.5, 6.0);
        let bright = rng.uniform() < 0.5;
        let kind = if bright {
            Kind::BrightParticle
        } else {
            Kind::DarkParticle
        };
        let delta = if bright { contrast } else { -contrast };
        let paint = Paint::Disc { cx, cy, r, delta };
        (kind, paint, [cx - r, cy - r, cx + r, cy + r], contrast)
    } else if pick < 0.7 {
        let a = at(rng);
        let len = rng.between(20.0, 120.0);
        let ang = rng.between(0.0, std::f64::consts::PI);
        let b = (
            (a.0 + len * ang.cos()).clamp(margin, size - margin),
            (a.1 + len * ang.sin()).clamp(margin, size - margin),
        );
        let half_width = rng.between(0.8, 1.4);
        let delta = if rng.uniform() < 0.5 {
            contrast
        } else {
            -contrast
        };
        let bbox = [
            a.0.min(b.0) - half_width,
            a.1.min(b.1) - half_width,
            a.0.max(b.0) + half_width,
            a.1.max(b.1) + half_width,
        ];
        let paint = Paint::Segment {
            a,
            b,
            half_width,
            delta,
        };
        (Kind::Scratch, paint, bbox, contrast)
    } else {
        let inside = |r: &Rect| {
            r.x0 >= margin && r.y0 >= margin && r.x1 <= size - margin && r.y1 <= size - margin
        };
        let contact = pick < 0.85;
        let candidates: Vec<&Rect> = if contact {
            lay.contacts.iter().filter(|r| inside(r)).collect()
        } else {
            lay.hlines.iter().filter(|r| inside(r)).collect()
        };
        let r = *candidates[(rng.uniform() * candidates.len() as f64) as usize];
        if contact {
            let gone = Rect { level: OXIDE, ..r };
            let bbox = [r.x0, r.y0, r.x1, r.y1];
            (
                Kind::MissingContact,
                Paint::Fill(gone),
                bbox,
                CONTACT - OXIDE,
            )
        } else {
            // Metal from this line down across the gap below it, 4–8 px wide.
            let x0 = rng.between(r.x0, (r.x1 - 8.0).max(r.x0)).round();
            let below = lay
                .hlines
                .iter()
                .filter(|o| o.y0 >= r.y1 && o.x0 <= x0 && o.x1 >= x0 + 8.0)
                .map(|o| o.y0)
                .fold(r.y1 + 8.0, f64::min);
            let bridge = Rect {
                x0,
                y0: r.y1,
                x1: x0 + rng.between(4.0, 8.0).round(),
                y1: below,
                level: METAL,
            };
            let bbox = [bridge.x0, bridge.y0, bridge.x1, bridge.y1];
            (Kind::Bridge, Paint::Fill(bridge), bbox, METAL - OXIDE)
        }
    }
}

fn apart(a: &[f64; 4], b: &[f64; 4], gap: f64) -> bool {
    a[2] + gap < b[0] || b[2] + gap < a[0] || a[3] + gap < b[1] || b[3] + gap < a[1]
}

/// Images one die: layout (tiled, so neighbours' edges enter a shifted
/// frame) and defects at `shift`, PSF, gain, Poisson electrons, read noise,
/// offset, 8-bit.
fn image_die(
    lay: &Layout,
    defects: &[Paint],
    p: &GenParams,
    shift: (f64, f64),
    rng: &mut Xoshiro,
) -> Image {
    let n = p.size;
    let size = n as f64;
    let mut signal = vec![STREET; n * n];
    for ty in -1..=1 {
        for tx in -1..=1 {
            let (dx, dy) = (shift.0 + tx as f64 * size, shift.1 + ty as f64 * size);
            for r in &lay.rects {
                fill(&mut signal, n, *r, dx, dy);
            }
        }
    }
    for d in defects {
        paint(&mut signal, n, *d, shift.0, shift.1);
    }
    let signal = blur(&signal, n, p.psf_sigma);
    let gain = 1.0 + rng.between(-p.gain_drift, p.gain_drift);
    let offset = rng.between(-p.offset_drift, p.offset_drift);
    signal
        .iter()
        .map(|&s| {
            let electrons = (s * gain * p.electrons_per_grey).clamp(0.0, p.full_well_electrons);
            let grey = rng.poisson(electrons) / p.electrons_per_grey
                + offset
                + p.read_noise * rng.gaussian();
            grey.round().clamp(0.0, 255.0) as u8
        })
        .collect()
}

/// Separable Gaussian blur, edges clamped.
fn blur(img: &[f64], n: usize, sigma: f64) -> Vec<f64> {
    if sigma <= 0.0 {
        return img.to_vec();
    }
    let r = (3.0 * sigma).ceil() as i64;
    let k: Vec<f64> = (-r..=r)
        .map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp())
        .collect();
    let sum: f64 = k.iter().sum();
    let k: Vec<f64> = k.iter().map(|v| v / sum).collect();
    let at = |i: i64| i.clamp(0, n as i64 - 1) as usize;
    let mut tmp = vec![0.0; n * n];
    for y in 0..n {
        for x in 0..n {
            tmp[y * n + x] = (-r..=r)
                .map(|i| k[(i + r) as usize] * img[y * n + at(x as i64 + i)])
                .sum();
        }
    }
    let mut out = vec![0.0; n * n];
    for y in 0..n {
        for x in 0..n {
            out[y * n + x] = (-r..=r)
                .map(|i| k[(i + r) as usize] * tmp[at(y as i64 + i) * n + x])
                .sum();
        }
    }
    out
}

/// Three neighbouring dies (test, left, right), each at its own stage
/// shift, gain and noise, with the exact ground truth.
pub fn die_triplet(seed: u64, p: &GenParams) -> (Image, Image, Image, TripletTruth) {
    let lay = layout(p.size as f64);
    let mut rng = Xoshiro::new(seed);
    // Defects stay where all three images overlap after alignment.
    let margin = p.max_shift_px + 10.0;
    let mut shift = || {
        (
            rng.between(-p.max_shift_px, p.max_shift_px),
            rng.between(-p.max_shift_px, p.max_shift_px),
        )
    };
    let shifts = [shift(), shift(), shift()];
    // (die: 0 test, 1 left, 2 right; kind; paint; bbox on die; contrast)
    type Placed = (usize, Kind, Paint, [f64; 4], f64);
    let mut placed: Vec<Placed> = Vec::new();
    let place = |die: usize, rng: &mut Xoshiro, placed: &mut Vec<Placed>| {
        for _ in 0..50 {
            let (kind, paint, bbox, contrast) = random_defect(rng, &lay, p, margin);
            // Apart from every other defect, neighbours' included, so each
            // detection has one ground truth to match.
            if placed.iter().all(|o| apart(&o.3, &bbox, 16.0)) {
                placed.push((die, kind, paint, bbox, contrast));
                return;
            }
        }
    };
    let in_test = 1 + (rng.uniform() * p.max_defects as f64) as usize;
    for _ in 0..in_test.min(p.max_defects) {
        place(0, &mut rng, &mut placed);
    }
    for die in [1, 2] {
        if rng.uniform() < p.neighbour_defect_chance {
            for _ in 0..1 + (rng.uniform() * 2.0) as usize {
                place(die, &mut rng, &mut placed);
            }
        }
    }
    let images: Vec<Image> = (0..3)
        .map(|die| {
            let paints: Vec<Paint> = placed.iter().filter(|d| d.0 == die).map(|d| d.2).collect();
            image_die(&lay, &paints, p, shifts[die], &mut rng)
        })
        .collect();
    let moved = |b: [f64; 4], s: (f64, f64)| [b[0] + s.0, b[1] + s.1, b[2] + s.0, b[3] + s.1];
    let mut truth = TripletTruth {
        shifts,
        ..Default::default()
    };
    for &(die, kind, _, bbox, contrast) in &placed {
        let t = Truth {
            kind,
            bbox_in_image: moved(bbox, shifts[0]),
            bbox_on_die: bbox,
            contrast,
        };
        if die == 0 {
            truth.test.push(t);
        } else {
            truth.neighbours_in_test.push(t);
        }
    }
    let mut it = images.into_iter();
    let (t, l, r) = (it.next().unwrap(), it.next().unwrap(), it.next().unwrap());
    (t, l, r, truth)
}
