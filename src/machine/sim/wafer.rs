//! A simulated wafer: its die grid and, per die, the defects injected into
//! it, including wafer-level signatures (a particle cluster, a residue
//! ring, extra defects at the edge, scratches that cross dies). Same seed,
//! same wafer.

use super::defects::{random_defect, GtDefect, Rng, Shape, SimDefectKind};
use super::pattern::mix;
use crate::hot::FrameGeometry;
use crate::machine::wafer_map::{die_grid, DieSite, WaferGeometry};

pub struct SimWafer {
    pub geometry: WaferGeometry,
    pub frame: FrameGeometry,
    pub seed: u64,
    pub sites: Vec<DieSite>,
    /// Injected defects of each die (indexed like `sites`), in die-pattern
    /// pixels.
    defects: Vec<Vec<GtDefect>>,
}

impl SimWafer {
    pub fn new(geometry: WaferGeometry, frame: FrameGeometry, seed: u64) -> Self {
        Self::with_sites(geometry, frame, seed, die_grid(&geometry))
    }

    /// A wafer whose die grid was laid out elsewhere (e.g. with a recipe's
    /// die origin).
    pub fn with_sites(
        geometry: WaferGeometry,
        frame: FrameGeometry,
        seed: u64,
        sites: Vec<DieSite>,
    ) -> Self {
        let mut wafer = Self {
            geometry,
            frame,
            seed,
            defects: vec![Vec::new(); sites.len()],
            sites,
        };
        wafer.inject(seed);
        wafer
    }

    /// A reticle defect: the same bright disc of radius `r` px at pattern
    /// position (`cx`, `cy`) on every die whose index is a multiple of
    /// `every` (a reticle that exposes `every` dies at once prints it into
    /// one of them): what repeater analysis finds.
    pub fn add_reticle_defect(&mut self, cx: f32, cy: f32, r: f32, every: u32) {
        let every = every.max(1);
        for (site, defects) in self.sites.iter().zip(self.defects.iter_mut()) {
            if site.index % every == 0 {
                defects.push(GtDefect {
                    kind: SimDefectKind::Particle,
                    shape: Shape::Disc {
                        cx,
                        cy,
                        r,
                        value: 255.0,
                    },
                });
            }
        }
    }

    /// Where in `sites` the first three consecutive sites are left
    /// neighbour, middle and right neighbour in one row (either scan
    /// direction) with `middle` true of the middle die's index: a die with
    /// both neighbours, as benchmarks and tests time or inspect one.
    pub fn row_of_three(&self, middle: impl Fn(u32) -> bool) -> Option<usize> {
        self.sites.windows(3).position(|w| {
            w[0].row == w[2].row && (w[0].col - w[2].col).abs() == 2 && middle(w[1].index)
        })
    }

    /// µm per image pixel (the die image spans the die).
    pub fn pixel_um(&self) -> f64 {
        self.geometry.die_size_um.0 / self.frame.width as f64
    }

    pub fn defects_of(&self, die_index: u32) -> &[GtDefect] {
        self.defects
            .get(die_index as usize)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    pub fn total_defects(&self) -> usize {
        self.defects.iter().map(Vec::len).sum()
    }

    /// Sets every injected defect's contrast to a magnitude drawn
    /// log-uniformly from `lo..=hi` grey levels, bright or dark at random
    /// (seeded by `seed`): defects from just above the noise to saturated
    /// for the realistic simulator, or one contrast (`lo == hi`) for a
    /// sensitivity table. Ground truth stays exact: the defects keep their
    /// footprints.
    pub fn set_defect_contrast(&mut self, seed: u64, lo: f32, hi: f32) {
        let (lo, hi) = (lo.max(0.5) as f64, hi.max(lo.max(0.5)) as f64);
        let mut rng = Rng::new(mix(seed ^ 0xC0_4742));
        for d in self.defects.iter_mut().flatten() {
            let magnitude = (rng.range(lo.ln(), hi.ln() + 1e-9)).exp().min(hi);
            let sign = if rng.chance(0.5) { 1.0 } else { -1.0 };
            *d = d.with_contrast((sign * magnitude) as f32);
        }
    }

    fn inject(&mut self, seed: u64) {
        let (w, h) = (self.frame.width, self.frame.height);
        let mut wafer_rng = Rng::new(seed);
        let r = self.geometry.radius_um() - self.geometry.edge_exclusion_mm * 1000.0;
        let angle = wafer_rng.range(0.0, std::f64::consts::TAU);
        let dist = wafer_rng.range(0.3, 0.6) * r;
        let cluster = (angle.cos() * dist, angle.sin() * dist, 0.12 * r);
        let scratches: Vec<(f64, f64, f64, f64)> = (0..wafer_rng.range(1.0, 3.0) as usize)
            .map(|_| {
                let (cx, cy) = (
                    wafer_rng.range(-0.5, 0.5) * r,
                    wafer_rng.range(-0.5, 0.5) * r,
                );
                let a = wafer_rng.range(0.0, std::f64::consts::PI);
                let len = wafer_rng.range(0.1, 0.3) * r;
                let (dx, dy) = (a.cos() * len / 2.0, a.sin() * len / 2.0);
                (cx - dx, cy - dy, cx + dx, cy + dy)
            })
            .collect();
        let pix = self.pixel_um();

        for (site, defects) in self.sites.iter().zip(self.defects.iter_mut()) {
            let mut rng = Rng::new(seed ^ mix(site.index as u64 + 1));
            let mut kinds: Vec<SimDefectKind> = Vec::new();
            let base = rng.range(0.0, 1.0);
            let n = if base < 0.45 {
                0
            } else if base < 0.75 {
                1
            } else if base < 0.9 {
                2
            } else {
                3
            };
            for _ in 0..n {
                let p = rng.range(0.0, 1.0);
                kinds.push(if p < 0.45 {
                    SimDefectKind::Particle
                } else if p < 0.6 {
                    SimDefectKind::Residue
                } else if p < 0.85 {
                    SimDefectKind::Pattern
                } else {
                    SimDefectKind::Scratch
                });
            }
            let (cx, cy) = site.center_um(&self.geometry);
            let radius = cx.hypot(cy);
            if (cx - cluster.0).hypot(cy - cluster.1) < cluster.2 {
                kinds.extend([SimDefectKind::Particle; 3]);
            }
            if (0.55 * r..0.65 * r).contains(&radius) && rng.chance(0.6) {
                kinds.push(SimDefectKind::Residue);
            }
            if (!site.has_left || !site.has_right || radius > 0.85 * r) && rng.chance(0.7) {
                kinds.push(SimDefectKind::Particle);
            }

            // Wafer scratches first: they are where they are.
            for &(x0, y0, x1, y1) in &scratches {
                let to_px = |x: f64, y: f64| {
                    (
                        (x - site.origin_um.0) / pix,
                        h as f64 - (y - site.origin_um.1) / pix,
                    )
                };
                let (a, b) = (to_px(x0, y0), to_px(x1, y1));
                let area = super::defects::placement_area(w, h);
                if let Some((p, q)) = clip_segment(a, b, area) {
                    if (q.0 - p.0).hypot(q.1 - p.1) > 30.0 {
                        defects.push(GtDefect {
                            kind: SimDefectKind::Scratch,
                            shape: Shape::Segment {
                                x0: p.0 as f32,
                                y0: p.1 as f32,
                                x1: q.0 as f32,
                                y1: q.1 as f32,
                                half_width: 0.9,
                                delta: -90.0,
                            },
                        });
                    }
                }
            }
            for kind in kinds {
                // Keep defects apart so each has its own ground truth.
                for _ in 0..30 {
                    let d = random_defect(kind, &mut rng, w, h);
                    if defects.iter().all(|o| apart(&d.bbox(), &o.bbox(), 12.0)) {
                        defects.push(d);
                        break;
                    }
                }
            }
        }
    }
}

fn apart(a: &[f32; 4], b: &[f32; 4], gap: f32) -> bool {
    a[2] + gap < b[0] || b[2] + gap < a[0] || a[3] + gap < b[1] || b[3] + gap < a[1]
}

type Point = (f64, f64);

/// Liang–Barsky clipping of segment a–b to the box [x0, y0, x1, y1].
fn clip_segment(a: Point, b: Point, area: [f32; 4]) -> Option<(Point, Point)> {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let (mut t0, mut t1) = (0.0f64, 1.0f64);
    for (p, q) in [
        (-dx, a.0 - area[0] as f64),
        (dx, area[2] as f64 - a.0),
        (-dy, a.1 - area[1] as f64),
        (dy, area[3] as f64 - a.1),
    ] {
        if p == 0.0 {
            if q < 0.0 {
                return None;
            }
        } else {
            let t = q / p;
            if p < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    (t0 < t1).then_some((
        (a.0 + t0 * dx, a.1 + t0 * dy),
        (a.0 + t1 * dx, a.1 + t1 * dy),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::wafer_map::Notch;

    fn geometry() -> WaferGeometry {
        WaferGeometry {
            diameter_mm: 200.0,
            die_pitch_um: (10_000.0, 10_000.0),
            die_size_um: (9_800.0, 9_800.0),
            edge_exclusion_mm: 3.0,
            notch: Notch::Down,
        }
    }

    #[test]
    fn same_seed_same_wafer_other_seed_other_wafer() {
        let f = FrameGeometry::gray8(1024, 1024);
        let a = SimWafer::new(geometry(), f, 5);
        let b = SimWafer::new(geometry(), f, 5);
        let c = SimWafer::new(geometry(), f, 6);
        assert!(a.total_defects() > a.sites.len() / 2);
        for i in 0..a.sites.len() as u32 {
            assert_eq!(a.defects_of(i), b.defects_of(i));
        }
        assert!((0..a.sites.len() as u32).any(|i| a.defects_of(i) != c.defects_of(i)));
        let kinds: std::collections::HashSet<_> = (0..a.sites.len() as u32)
            .flat_map(|i| a.defects_of(i).iter().map(|d| d.kind))
            .collect();
        assert_eq!(kinds.len(), 4, "every kind is injected");
    }

    #[test]
    fn clipping_keeps_the_inside_part() {
        let (p, q) = clip_segment((-10.0, 5.0), (20.0, 5.0), [0.0, 0.0, 10.0, 10.0]).unwrap();
        assert_eq!((p, q), ((0.0, 5.0), (10.0, 5.0)));
        assert!(clip_segment((-10.0, 20.0), (20.0, 20.0), [0.0, 0.0, 10.0, 10.0]).is_none());
    }
}
