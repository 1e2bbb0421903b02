//! Injected defects with ground truth: their shapes, how they are painted
//! into a die image, and their bounding boxes for scoring the detector.

use super::pattern::{
    self, HLINE, HLINE_PERIOD, HLINE_WIDTH, VIA_OFFSET_X, VIA_PERIOD_X, VIA_SIZE,
};

/// What the simulator injected (the ground-truth class).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SimDefectKind {
    Particle,
    Scratch,
    Residue,
    Pattern,
}

impl SimDefectKind {
    pub const ALL: [SimDefectKind; 4] =
        [Self::Particle, Self::Scratch, Self::Residue, Self::Pattern];

    pub fn name(self) -> &'static str {
        match self {
            Self::Particle => "particle",
            Self::Scratch => "scratch",
            Self::Residue => "residue",
            Self::Pattern => "pattern",
        }
    }
}

/// A defect's footprint, in die-pattern pixel coordinates (before the
/// die's misalignment shift).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Shape {
    /// A particle: a disc that replaces the surface with `value`.
    Disc {
        cx: f32,
        cy: f32,
        r: f32,
        value: f32,
    },
    /// A scratch: a thin line that brightens or darkens by `delta`.
    Segment {
        x0: f32,
        y0: f32,
        x1: f32,
        y1: f32,
        half_width: f32,
        delta: f32,
    },
    /// Residue: a soft elliptical film changing brightness by `delta`.
    Blob {
        cx: f32,
        cy: f32,
        rx: f32,
        ry: f32,
        delta: f32,
    },
    /// A particle of set contrast: a disc that brightens or darkens the
    /// surface by `delta` (a `Disc` after `SimWafer::set_defect_contrast`).
    Spot {
        cx: f32,
        cy: f32,
        r: f32,
        delta: f32,
    },
    /// A pattern defect of set contrast: a rectangle brightened or darkened
    /// by `delta` (a `Rect` after `SimWafer::set_defect_contrast`).
    Patch {
        x0: f32,
        y0: f32,
        x1: f32,
        y1: f32,
        delta: f32,
    },
    /// A pattern defect: a rectangle of the wrong material (missing via,
    /// bridged lines).
    Rect {
        x0: f32,
        y0: f32,
        x1: f32,
        y1: f32,
        value: f32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GtDefect {
    pub kind: SimDefectKind,
    pub shape: Shape,
}

impl GtDefect {
    /// A compact defect of set contrast (a `Spot` or a `Patch`): its centre
    /// in pattern pixels and its signed contrast.
    pub fn compact_contrast(&self) -> Option<((f32, f32), f32)> {
        match self.shape {
            Shape::Spot { cx, cy, delta, .. } => Some(((cx, cy), delta)),
            Shape::Patch {
                x0,
                y0,
                x1,
                y1,
                delta,
            } => Some((((x0 + x1) / 2.0, (y0 + y1) / 2.0), delta)),
            _ => None,
        }
    }

    /// Bounding box [x0, y0, x1, y1] in pattern pixels.
    pub fn bbox(&self) -> [f32; 4] {
        match self.shape {
            Shape::Disc { cx, cy, r, .. } | Shape::Spot { cx, cy, r, .. } => {
                [cx - r, cy - r, cx + r, cy + r]
            }
            Shape::Segment {
                x0,
                y0,
                x1,
                y1,
                half_width: hw,
                ..
            } => [
                x0.min(x1) - hw,
                y0.min(y1) - hw,
                x0.max(x1) + hw,
                y0.max(y1) + hw,
            ],
            Shape::Blob { cx, cy, rx, ry, .. } => [cx - rx, cy - ry, cx + rx, cy + ry],
            Shape::Rect { x0, y0, x1, y1, .. } | Shape::Patch { x0, y0, x1, y1, .. } => {
                [x0, y0, x1, y1]
            }
        }
    }

    /// The same defect with contrast `delta` grey levels (signed): shapes
    /// that set a value (`Disc`, `Rect`) become their delta forms.
    pub fn with_contrast(self, delta: f32) -> Self {
        let shape = match self.shape {
            Shape::Disc { cx, cy, r, .. } | Shape::Spot { cx, cy, r, .. } => {
                Shape::Spot { cx, cy, r, delta }
            }
            Shape::Rect { x0, y0, x1, y1, .. } | Shape::Patch { x0, y0, x1, y1, .. } => {
                Shape::Patch {
                    x0,
                    y0,
                    x1,
                    y1,
                    delta,
                }
            }
            Shape::Segment {
                x0,
                y0,
                x1,
                y1,
                half_width,
                ..
            } => Shape::Segment {
                x0,
                y0,
                x1,
                y1,
                half_width,
                delta,
            },
            Shape::Blob { cx, cy, rx, ry, .. } => Shape::Blob {
                cx,
                cy,
                rx,
                ry,
                delta,
            },
        };
        Self { shape, ..self }
    }

    /// Paints the defect into `img` with the die shifted by `shift` pixels.
    /// Touches only the pixels of its bounding box; never allocates.
    pub fn paint(&self, img: &mut [u8], width: u32, height: u32, shift: (f32, f32)) {
        let b = self.bbox();
        let (w, h) = (width as i64, height as i64);
        let x0 = ((b[0] + shift.0).floor() as i64 - 2).clamp(0, w);
        let x1 = ((b[2] + shift.0).ceil() as i64 + 2).clamp(0, w);
        let y0 = ((b[1] + shift.1).floor() as i64 - 2).clamp(0, h);
        let y1 = ((b[3] + shift.1).ceil() as i64 + 2).clamp(0, h);
        for y in y0..y1 {
            for x in x0..x1 {
                // Pixel centre in pattern coordinates.
                let px = x as f32 + 0.5 - shift.0;
                let py = y as f32 + 0.5 - shift.1;
                let i = (y * w + x) as usize;
                let v = img[i] as f32;
                let nv = match self.shape {
                    Shape::Disc { cx, cy, r, value } => {
                        let c = disc_coverage(px - cx, py - cy, r);
                        v + (value - v) * c
                    }
                    Shape::Spot { cx, cy, r, delta } => {
                        v + delta * disc_coverage(px - cx, py - cy, r)
                    }
                    Shape::Patch {
                        x0,
                        y0,
                        x1,
                        y1,
                        delta,
                    } => {
                        let cx = ((px + 0.5).min(x1) - (px - 0.5).max(x0)).max(0.0);
                        let cy = ((py + 0.5).min(y1) - (py - 0.5).max(y0)).max(0.0);
                        v + delta * (cx * cy)
                    }
                    Shape::Segment {
                        x0,
                        y0,
                        x1,
                        y1,
                        half_width,
                        delta,
                    } => {
                        let d = segment_distance(px, py, x0, y0, x1, y1);
                        v + delta * (half_width + 0.5 - d).clamp(0.0, 1.0)
                    }
                    Shape::Blob {
                        cx,
                        cy,
                        rx,
                        ry,
                        delta,
                    } => {
                        let q = (((px - cx) / rx).powi(2) + ((py - cy) / ry).powi(2)).sqrt();
                        v + delta * ((1.0 - q) / 0.4).clamp(0.0, 1.0)
                    }
                    Shape::Rect {
                        x0,
                        y0,
                        x1,
                        y1,
                        value,
                    } => {
                        let cx = ((px + 0.5).min(x1) - (px - 0.5).max(x0)).max(0.0);
                        let cy = ((py + 0.5).min(y1) - (py - 0.5).max(y0)).max(0.0);
                        v + (value - v) * (cx * cy)
                    }
                };
                img[i] = nv.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

/// Fraction of a unit pixel centred at (dx, dy) from a disc's centre that
/// the disc of radius r covers, by 4×4 supersampling.
fn disc_coverage(dx: f32, dy: f32, r: f32) -> f32 {
    let mut n = 0;
    for sy in 0..4 {
        for sx in 0..4 {
            let ox = dx - 0.375 + sx as f32 * 0.25;
            let oy = dy - 0.375 + sy as f32 * 0.25;
            n += (ox * ox + oy * oy <= r * r) as u32;
        }
    }
    n as f32 / 16.0
}

fn segment_distance(px: f32, py: f32, x0: f32, y0: f32, x1: f32, y1: f32) -> f32 {
    let (dx, dy) = (x1 - x0, y1 - y0);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 {
        (((px - x0) * dx + (py - y0) * dy) / len2).clamp(0.0, 1.0)
    } else {
        0.0
    };
    ((px - x0 - t * dx).powi(2) + (py - y0 - t * dy).powi(2)).sqrt()
}

/// A small deterministic generator (SplitMix64): the same seed always gives
/// the same wafer.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        pattern::mix(self.0)
    }
    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn chance(&mut self, p: f64) -> bool {
        self.range(0.0, 1.0) < p
    }
}

/// Where random defects may be placed in a die of this size: inside the
/// street and pad rows, with a margin for the largest defect.
pub fn placement_area(width: u32, height: u32) -> [f32; 4] {
    let (lo, hi) = pattern::line_field_y(height);
    [40.0, lo as f32, width as f32 - 40.0, hi as f32]
}

/// One random defect of `kind` inside `area`.
pub fn random_defect(kind: SimDefectKind, rng: &mut Rng, width: u32, height: u32) -> GtDefect {
    let a = placement_area(width, height);
    let scale = (width.min(height) as f64 / 2048.0).max(0.25);
    let shape = match kind {
        SimDefectKind::Particle => {
            // 2–50 px across, small ones more common.
            let r = (1.0 + rng.range(0.0, 1.0).powi(3) * 24.0 * scale.max(0.5)) as f32;
            let bright = rng.chance(0.5);
            Shape::Disc {
                cx: rng.range(a[0] as f64 + 30.0, a[2] as f64 - 30.0) as f32,
                cy: rng.range(a[1] as f64 + 30.0, a[3] as f64 - 30.0) as f32,
                r,
                value: if bright { 255.0 } else { 0.0 },
            }
        }
        SimDefectKind::Scratch => {
            let len = rng.range(80.0, 400.0 * scale.max(0.5));
            let ang = rng.range(0.0, std::f64::consts::PI);
            let cx = rng.range(a[0] as f64 + 60.0, a[2] as f64 - 60.0);
            let cy = rng.range(a[1] as f64 + 60.0, a[3] as f64 - 60.0);
            let (dx, dy) = (ang.cos() * len / 2.0, ang.sin() * len / 2.0);
            let clip = |v: f64, lo: f32, hi: f32| v.clamp(lo as f64, hi as f64) as f32;
            Shape::Segment {
                x0: clip(cx - dx, a[0], a[2]),
                y0: clip(cy - dy, a[1], a[3]),
                x1: clip(cx + dx, a[0], a[2]),
                y1: clip(cy + dy, a[1], a[3]),
                half_width: rng.range(0.6, 1.2) as f32,
                delta: if rng.chance(0.5) { 90.0 } else { -90.0 },
            }
        }
        SimDefectKind::Residue => {
            let rx = rng.range(18.0, 45.0 * scale.max(0.6));
            let ry = rx * rng.range(0.6, 1.0);
            Shape::Blob {
                cx: rng.range(a[0] as f64 + rx, a[2] as f64 - rx) as f32,
                cy: rng.range(a[1] as f64 + ry, a[3] as f64 - ry) as f32,
                rx: rx as f32,
                ry: ry as f32,
                delta: if rng.chance(0.5) { 42.0 } else { -42.0 },
            }
        }
        SimDefectKind::Pattern => {
            // In the line field: a missing via or two lines bridged.
            let field_end = pattern::hline_field_x_end(width);
            let x_lo = 60.0;
            let x_hi = field_end - 60.0;
            let line = ((rng.range(a[1] as f64 + 30.0, a[3] as f64 - 30.0)) / HLINE_PERIOD).floor();
            if rng.chance(0.5) {
                let k = ((rng.range(x_lo, x_hi) - VIA_OFFSET_X) / VIA_PERIOD_X).floor();
                let x0 = VIA_OFFSET_X + k * VIA_PERIOD_X;
                let y0 = line * HLINE_PERIOD + (HLINE_WIDTH - VIA_SIZE) / 2.0;
                Shape::Rect {
                    x0: x0 as f32,
                    y0: y0 as f32,
                    x1: (x0 + VIA_SIZE) as f32,
                    y1: (y0 + VIA_SIZE) as f32,
                    value: HLINE,
                }
            } else {
                // Bridge between vias so it touches only line and gap.
                let k = ((rng.range(x_lo, x_hi) - VIA_OFFSET_X) / VIA_PERIOD_X).floor();
                let x0 = VIA_OFFSET_X + k * VIA_PERIOD_X + VIA_SIZE + 12.0;
                let y0 = line * HLINE_PERIOD + HLINE_WIDTH;
                Shape::Rect {
                    x0: x0 as f32,
                    y0: y0 as f32,
                    x1: (x0 + 10.0) as f32,
                    y1: (y0 + HLINE_PERIOD - HLINE_WIDTH) as f32,
                    value: HLINE,
                }
            }
        }
    };
    GtDefect { kind, shape }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn painting_changes_only_the_bounding_box() {
        let (w, h) = (300u32, 300u32);
        let mut img = vec![100u8; (w * h) as usize];
        let d = GtDefect {
            kind: SimDefectKind::Particle,
            shape: Shape::Disc {
                cx: 150.0,
                cy: 150.0,
                r: 5.0,
                value: 255.0,
            },
        };
        d.paint(&mut img, w, h, (0.3, -0.2));
        assert_eq!(img[150 * 300 + 150], 255);
        for (i, &v) in img.iter().enumerate() {
            let (x, y) = ((i as u32 % w) as f32, (i as u32 / w) as f32);
            if v != 100 {
                assert!(
                    (x - 150.0).abs() <= 7.0 && (y - 150.0).abs() <= 7.0,
                    "{x},{y}"
                );
            }
        }
    }

    #[test]
    fn same_seed_same_defect() {
        for kind in SimDefectKind::ALL {
            let a = random_defect(kind, &mut Rng::new(9), 1024, 1024);
            let b = random_defect(kind, &mut Rng::new(9), 1024, 1024);
            assert_eq!(a, b);
            let bb = a.bbox();
            assert!(bb[0] >= 0.0 && bb[2] <= 1024.0 && bb[1] >= 0.0 && bb[3] <= 1024.0);
        }
    }
}
