//! Shape and contrast features of one detected component, the input of the
//! class rules and of scratch merging.
//!
//! Everything here is arithmetic on a handful of sums: the labeller adds
//! each run of flagged pixels to a component's [`PixelMoments`] as it
//! gathers runs, so features cost nothing per pixel and never allocate.
//!
//! Coordinates are image pixels, x right, y down; orientation is measured
//! from the +x axis towards +y (clockwise on screen), in [0°, 180°).

use super::result::Polarity;

/// Raw sums over a component's pixels (pixel index coordinates). Exact in
/// integers: a 4096 × 4096 die cannot overflow them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PixelMoments {
    pub n: u64,
    pub sum_x: u64,
    pub sum_y: u64,
    pub sum_xx: u64,
    pub sum_yy: u64,
    pub sum_xy: u64,
}

/// Σ i² for i in 0..k.
fn sum_of_squares_below(k: u64) -> u64 {
    if k == 0 {
        0
    } else {
        (k - 1) * k * (2 * k - 1) / 6
    }
}

impl PixelMoments {
    /// Adds the run of pixels `x0..x1` (exclusive end) of row `y`.
    pub fn add_run(&mut self, y: u16, x0: u16, x1: u16) {
        let (y, x0, x1) = (y as u64, x0 as u64, x1 as u64);
        let len = x1 - x0;
        // (x1 − x0)(x0 + x1 − 1) is always even, so this is exact.
        let sum_x = len * (x0 + x1 - 1) / 2;
        self.n += len;
        self.sum_x += sum_x;
        self.sum_y += len * y;
        self.sum_xx += sum_of_squares_below(x1) - sum_of_squares_below(x0);
        self.sum_yy += len * y * y;
        self.sum_xy += y * sum_x;
    }

    /// Second moments about the centroid, px².
    pub fn central(&self) -> CentralMoments {
        if self.n == 0 {
            return CentralMoments::default();
        }
        let n = self.n as f64;
        let (mx, my) = (self.sum_x as f64 / n, self.sum_y as f64 / n);
        CentralMoments {
            xx: (self.sum_xx as f64 / n - mx * mx).max(0.0) as f32,
            yy: (self.sum_yy as f64 / n - my * my).max(0.0) as f32,
            xy: (self.sum_xy as f64 / n - mx * my) as f32,
        }
    }
}

/// Second moments of a component about its centroid (variances and
/// covariance of its pixel positions), px². Small and `Copy`, so a
/// `Defect` carries them and fragments can be merged exactly later.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct CentralMoments {
    pub xx: f32,
    pub yy: f32,
    pub xy: f32,
}

/// A pixel is a unit square, not a point: its own second moment about its
/// centre is 1/12 along each axis. Adding it makes lengths and widths
/// exact for solid rectangles (a 1-px line is 1 px wide, not 0).
const PIXEL_SELF_MOMENT: f64 = 1.0 / 12.0;

impl CentralMoments {
    /// Eigenvalues (major, minor) of the moment matrix, with the pixels'
    /// own extent included.
    fn principal(&self) -> (f64, f64) {
        let (xx, yy, xy) = (self.xx as f64, self.yy as f64, self.xy as f64);
        let mean = (xx + yy) / 2.0;
        let half_gap = (((xx - yy) / 2.0).powi(2) + xy * xy).sqrt();
        (
            mean + half_gap + PIXEL_SELF_MOMENT,
            (mean - half_gap).max(0.0) + PIXEL_SELF_MOMENT,
        )
    }

    /// Extent along the major axis, px: exact for a solid bar (a bar of
    /// length L has variance L²/12 along it).
    pub fn length_px(&self) -> f32 {
        (12.0 * self.principal().0).sqrt() as f32
    }

    /// Extent across the major axis, px.
    pub fn width_px(&self) -> f32 {
        (12.0 * self.principal().1).sqrt() as f32
    }

    /// Length over width: 1 for a disc or a square, ≈ L/W for a bar, in
    /// any orientation (unlike the bounding box).
    pub fn elongation(&self) -> f32 {
        let (major, minor) = self.principal();
        (major / minor).sqrt() as f32
    }

    /// Direction of the major axis, degrees in [0, 180).
    pub fn orientation_deg(&self) -> f32 {
        let (xx, yy, xy) = (self.xx as f64, self.yy as f64, self.xy as f64);
        let deg = (0.5 * (2.0 * xy).atan2(xx - yy)).to_degrees();
        deg.rem_euclid(180.0) as f32
    }

    /// Area of the solid ellipse with these moments, px² (4π√(λ₁λ₂)).
    pub fn equivalent_ellipse_area(&self) -> f32 {
        let (major, minor) = self.principal();
        (4.0 * std::f64::consts::PI * (major * minor).sqrt()) as f32
    }

    /// The moments of two disjoint pixel sets together (parallel-axis
    /// theorem), given each set's pixel count and centroid.
    pub fn combine(a: (Self, u32, (f32, f32)), b: (Self, u32, (f32, f32))) -> Self {
        let (na, nb) = (a.1 as f64, b.1 as f64);
        let n = (na + nb).max(1.0);
        let mx = (a.2 .0 as f64 * na + b.2 .0 as f64 * nb) / n;
        let my = (a.2 .1 as f64 * na + b.2 .1 as f64 * nb) / n;
        let part = |(m, count, (cx, cy)): (Self, u32, (f32, f32))| {
            let (dx, dy) = (cx as f64 - mx, cy as f64 - my);
            let w = count as f64 / n;
            (
                w * (m.xx as f64 + dx * dx),
                w * (m.yy as f64 + dy * dy),
                w * (m.xy as f64 + dx * dy),
            )
        };
        let (pa, pb) = (part(a), part(b));
        Self {
            xx: (pa.0 + pb.0) as f32,
            yy: (pa.1 + pb.1) as f32,
            xy: (pa.2 + pb.2) as f32,
        }
    }
}

/// What the class rules look at, for one component.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DefectFeatures {
    pub area_px: u32,
    /// Bounding box width and height, px.
    pub bbox_w: u32,
    pub bbox_h: u32,
    pub moments: CentralMoments,
    pub polarity: Polarity,
    /// Mean and peak difference from the reference over the component,
    /// grey levels above nothing (the detector's difference measure).
    pub mean_diff: f32,
    pub peak_diff: u8,
    /// The detection threshold in force on this die, grey levels. Contrast
    /// is judged against it, so a rule means the same at any noise level
    /// (with k·σ thresholds it is k·σ of that die).
    pub threshold: f32,
}

impl DefectFeatures {
    pub fn length_px(&self) -> f32 {
        self.moments.length_px()
    }
    pub fn elongation(&self) -> f32 {
        self.moments.elongation()
    }
    pub fn orientation_deg(&self) -> f32 {
        self.moments.orientation_deg()
    }
    /// Area over bounding-box area: ≈ 1 for an axis-aligned rectangle,
    /// π/4 for a disc, small for a diagonal line or a ragged cluster.
    pub fn box_fill(&self) -> f32 {
        self.area_px as f32 / (self.bbox_w.max(1) * self.bbox_h.max(1)) as f32
    }
    /// Texture figure: area over the area of the solid ellipse with the
    /// same second moments. ≈ 1 for any solid blob, bar or line (whatever
    /// its orientation); well below 1 for rings, speckle and grainy films
    /// whose flagged pixels are scattered over their extent.
    pub fn solidity(&self) -> f32 {
        self.area_px as f32 / self.moments.equivalent_ellipse_area().max(1.0)
    }
    /// Mean difference in units of the detection threshold (≥ 1 for every
    /// flagged pixel by construction).
    pub fn relative_contrast(&self) -> f32 {
        self.mean_diff / self.threshold.max(1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments_of(pixels: impl Iterator<Item = (u16, u16)>) -> PixelMoments {
        let mut m = PixelMoments::default();
        for (x, y) in pixels {
            m.add_run(y, x, x + 1);
        }
        m
    }

    #[test]
    fn runs_add_up_to_the_same_sums_as_single_pixels() {
        let mut by_runs = PixelMoments::default();
        by_runs.add_run(7, 3, 11);
        by_runs.add_run(8, 0, 1);
        let by_pixels = moments_of((3..11).map(|x| (x, 7)).chain([(0, 8)]));
        assert_eq!(by_runs, by_pixels);
    }

    #[test]
    fn a_bar_has_its_length_width_and_orientation() {
        let bar = moments_of((10..50).flat_map(|x| (20..23).map(move |y| (x, y)))).central();
        assert!((bar.length_px() - 40.0).abs() < 0.01, "{}", bar.length_px());
        assert!((bar.width_px() - 3.0).abs() < 0.01, "{}", bar.width_px());
        assert!(bar.orientation_deg() < 0.5 || bar.orientation_deg() > 179.5);
        let diagonal = moments_of((0..40).map(|i| (i, i))).central();
        assert!((diagonal.orientation_deg() - 45.0).abs() < 0.5);
        assert!(diagonal.elongation() > 30.0, "{}", diagonal.elongation());
        let anti = moments_of((0..40).map(|i| (i, 40 - i))).central();
        assert!((anti.orientation_deg() - 135.0).abs() < 0.5);
    }

    #[test]
    fn a_disc_is_round_and_solid_and_a_ring_is_not_solid() {
        let disc_pixels = || {
            (0..41u16)
                .flat_map(|x| (0..41u16).map(move |y| (x, y)))
                .filter(|&(x, y)| (x as f32 - 20.0).hypot(y as f32 - 20.0) <= 20.0)
        };
        let disc = moments_of(disc_pixels());
        let features = |m: PixelMoments| DefectFeatures {
            area_px: m.n as u32,
            bbox_w: 41,
            bbox_h: 41,
            moments: m.central(),
            polarity: Polarity::Bright,
            mean_diff: 50.0,
            peak_diff: 60,
            threshold: 20.0,
        };
        let d = features(disc);
        assert!(d.elongation() < 1.05, "{}", d.elongation());
        assert!((d.solidity() - 1.0).abs() < 0.05, "{}", d.solidity());
        let ring = moments_of(
            disc_pixels().filter(|&(x, y)| (x as f32 - 20.0).hypot(y as f32 - 20.0) >= 18.0),
        );
        assert!(
            features(ring).solidity() < 0.3,
            "{}",
            features(ring).solidity()
        );
    }

    #[test]
    fn combining_two_halves_gives_the_moments_of_the_whole() {
        let left = moments_of((0..20).map(|x| (x, 5)));
        let right = moments_of((30..50).map(|x| (x, 6)));
        let mut whole = left;
        for x in 30..50 {
            whole.add_run(6, x, x + 1);
        }
        let centroid = |m: &PixelMoments| {
            (
                (m.sum_x as f64 / m.n as f64) as f32,
                (m.sum_y as f64 / m.n as f64) as f32,
            )
        };
        let combined = CentralMoments::combine(
            (left.central(), left.n as u32, centroid(&left)),
            (right.central(), right.n as u32, centroid(&right)),
        );
        let expected = whole.central();
        assert!((combined.xx - expected.xx).abs() < 1e-2);
        assert!((combined.yy - expected.yy).abs() < 1e-3);
        assert!((combined.xy - expected.xy).abs() < 1e-2);
    }
}
