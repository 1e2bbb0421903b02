//! Die-to-die defect detection.
//!
//! The die under test T is compared with both neighbours L and R, each
//! aligned to T (integer + sub-pixel, see `align`) and resampled
//! bilinearly on the fly. A pixel is flagged when
//! min(|T − L|, |T − R|) > threshold, so a defect in one neighbour is never
//! reported in T: it differs from T only on that side. Edge dies use the
//! golden reference in place of a missing neighbour.
//!
//! The per-pixel kernel works a whole row at a time over equal-length
//! slices in 16-bit fixed point, which the compiler vectorises; flagged
//! pixels (normally < 1 %) go to the sparse labeller.

use super::align::{estimate_shift, Profiles};
use super::classify::{classify, ClassRules};
use super::features::DefectFeatures;
use super::label::Labeler;
use super::result::{Defect, DieResult, Polarity};
use super::scratch_merge::{merge_scratch_fragments, ScratchMergeRules};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectParams {
    /// Grey levels a pixel must differ from both references by.
    pub threshold: u8,
    /// Smallest defect reported, pixels.
    pub min_area: u32,
    /// Extra grey levels allowed against the golden die, which was imaged
    /// at another time, under another illumination level, than the die
    /// under test (neighbours are imaged moments apart).
    pub golden_tolerance: u8,
    pub class_rules: ClassRules,
}

impl Default for DetectParams {
    fn default() -> Self {
        Self {
            threshold: 24,
            min_area: 2,
            golden_tolerance: 10,
            class_rules: ClassRules::default(),
        }
    }
}

/// An image with its precomputed projections.
#[derive(Clone, Copy)]
pub struct Reference<'a> {
    pub pixels: &'a [u8],
    pub profiles: &'a Profiles,
    /// The golden die rather than a neighbour (see `golden_tolerance`).
    pub is_golden: bool,
}

impl<'a> Reference<'a> {
    pub fn die(pixels: &'a [u8], profiles: &'a Profiles) -> Self {
        Self {
            pixels,
            profiles,
            is_golden: false,
        }
    }
    pub fn golden(pixels: &'a [u8], profiles: &'a Profiles) -> Self {
        Self {
            pixels,
            profiles,
            is_golden: true,
        }
    }
}

/// Integer offset and 8.8 bilinear weights of one aligned reference.
#[derive(Debug, Clone, Copy)]
struct Resample {
    ix: i32,
    iy: i32,
    w: [u16; 4],
}

impl Resample {
    fn new((dx, dy): (f32, f32)) -> Self {
        let (ix, iy) = (dx.floor(), dy.floor());
        let fx = ((dx - ix) * 256.0).round() as u32;
        let fy = ((dy - iy) * 256.0).round() as u32;
        // Rounding can give 256: carry it into the integer part.
        let (ix, fx) = if fx >= 256 {
            (ix as i32 + 1, 0)
        } else {
            (ix as i32, fx)
        };
        let (iy, fy) = if fy >= 256 {
            (iy as i32 + 1, 0)
        } else {
            (iy as i32, fy)
        };
        let w00 = (256 - fx) * (256 - fy) / 256;
        let w01 = fx * (256 - fy) / 256;
        let w10 = (256 - fx) * fy / 256;
        // The four weights sum to exactly 256, so a weighted sum of bytes
        // stays below 65 536.
        let w11 = 256 - w00 - w01 - w10;
        Self {
            ix,
            iy,
            w: [w00 as u16, w01 as u16, w10 as u16, w11 as u16],
        }
    }

    /// The reference value at T's pixel (x, y), scalar (for polarity).
    fn at(&self, img: &[u8], width: usize, x: usize, y: usize) -> u16 {
        let (x, y) = ((x as i32 + self.ix) as usize, (y as i32 + self.iy) as usize);
        let p = |x: usize, y: usize| img[y * width + x] as u16;
        (p(x, y) * self.w[0]
            + p(x + 1, y) * self.w[1]
            + p(x, y + 1) * self.w[2]
            + p(x + 1, y + 1) * self.w[3]
            + 128)
            >> 8
    }
}

/// Scratch space and parameters for inspecting dies of one size. Allocates
/// once; `inspect` never allocates.
pub struct Detector {
    width: usize,
    height: usize,
    pub params: DetectParams,
    row_diff: Vec<u8>,
    labeler: Labeler,
}

impl Detector {
    pub fn new(width: u32, height: u32, params: DetectParams) -> Self {
        let max_runs = (width as usize * height as usize / 64).max(1024);
        Self {
            width: width as usize,
            height: height as usize,
            params,
            row_diff: vec![0; width as usize],
            labeler: Labeler::new(max_runs, 4096),
        }
    }

    /// Inspects `test` against `left` and `right`, writing into `out`.
    pub fn inspect<'a>(
        &mut self,
        test: Reference<'a>,
        left: Reference<'a>,
        right: Reference<'a>,
        golden: Option<Reference<'a>>,
        out: &mut DieResult,
    ) {
        let (w, h) = (self.width, self.height);
        let sl = estimate_shift(test.profiles, left.profiles);
        let sr = estimate_shift(test.profiles, right.profiles);
        out.shift_left = sl;
        out.shift_right = sr;
        let (rl, rr) = (Resample::new(sl), Resample::new(sr));
        // Inspect only where both references have all four samples.
        let lo = |a: i32, b: i32| (-a.min(b)).max(0) as usize;
        let hi = |n: usize, a: i32, b: i32| (n as i32 - 1 - a.max(b)).clamp(0, n as i32) as usize;
        let (x0, x1) = (lo(rl.ix, rr.ix), hi(w, rl.ix, rr.ix));
        let (y0, y1) = (lo(rl.iy, rr.iy), hi(h, rl.iy, rr.iy));
        let thr = self.params.threshold;
        let tol = |r: &Reference| {
            if r.is_golden {
                self.params.golden_tolerance
            } else {
                0
            }
        };
        let (tol_l, tol_r) = (tol(&left), tol(&right));
        out.golden_left = left.is_golden;
        out.golden_right = right.is_golden;
        self.labeler.reset();
        if x0 < x1 {
            let n = x1 - x0;
            for y in y0..y1 {
                let t = &test.pixels[y * w + x0..][..n];
                let row = |img: &'a [u8], r: &Resample, dy: i32, dx: i32| -> &'a [u8] {
                    let start =
                        (y as i32 + r.iy + dy) as usize * w + (x0 as i32 + r.ix + dx) as usize;
                    &img[start..start + n]
                };
                let (l00, l01, l10, l11) = (
                    row(left.pixels, &rl, 0, 0),
                    row(left.pixels, &rl, 0, 1),
                    row(left.pixels, &rl, 1, 0),
                    row(left.pixels, &rl, 1, 1),
                );
                let (r00, r01, r10, r11) = (
                    row(right.pixels, &rr, 0, 0),
                    row(right.pixels, &rr, 0, 1),
                    row(right.pixels, &rr, 1, 0),
                    row(right.pixels, &rr, 1, 1),
                );
                let out_row = &mut self.row_diff[..n];
                diff_row(
                    t,
                    [l00, l01, l10, l11],
                    tol_l,
                    [r00, r01, r10, r11],
                    tol_r,
                    out_row,
                );
                if out_row
                    .chunks(64)
                    .any(|c| c.iter().fold(0, |m, &v| m.max(v)) > thr)
                {
                    self.labeler.add_row(y as u16, x0 as u16, out_row, thr);
                }
            }
        }
        out.flagged_pixels = self.labeler.flagged;
        let overflowed_runs = self.labeler.overflowed;
        let min_area = self.params.min_area;
        let golden = golden.map(|g| (g, Resample::new(estimate_shift(test.profiles, g.profiles))));
        for c in self.labeler.finish() {
            if c.area < min_area {
                continue;
            }
            // Both neighbours defective at the same place also flags T:
            // arbitrate with the golden die, which T matches there if the
            // defects are the neighbours'.
            if let Some((g, rg)) = golden {
                if !differs_from(
                    test.pixels,
                    g.pixels,
                    &rg,
                    w,
                    h,
                    c.bbox,
                    thr.saturating_add(self.params.golden_tolerance),
                    c.area,
                ) {
                    out.arbitrated += 1;
                    continue;
                }
            }
            let (px, py) = (c.peak_xy.0 as usize, c.peak_xy.1 as usize);
            let t = test.pixels[py * w + px] as i32;
            let (l, r) = (
                rl.at(left.pixels, w, px, py) as i32,
                rr.at(right.pixels, w, px, py) as i32,
            );
            // The reference that agreed best decided the flag; its sign is
            // the defect's polarity.
            let reference = if (t - l).abs() <= (t - r).abs() { l } else { r };
            let (cx, cy) = c.centroid();
            let features = DefectFeatures {
                area_px: c.area,
                bbox_w: (c.bbox[2] - c.bbox[0]) as u32,
                bbox_h: (c.bbox[3] - c.bbox[1]) as u32,
                moments: c.moments.central(),
                polarity: if t >= reference {
                    Polarity::Bright
                } else {
                    Polarity::Dark
                },
                mean_diff: c.sum as f32 / c.area as f32,
                peak_diff: c.peak,
                threshold: thr as f32,
            };
            out.push(Defect {
                x_px: cx,
                y_px: cy,
                bbox: c.bbox,
                area_px: c.area,
                peak_diff: c.peak,
                mean_diff: features.mean_diff,
                polarity: features.polarity,
                class: classify(&features, &self.params.class_rules),
                moments: features.moments,
            });
        }
        out.runs_overflowed = overflowed_runs || self.labeler.overflowed;
        merge_scratch_fragments(out, &ScratchMergeRules::default(), &self.params.class_rules);
    }
}

/// Whether at least half of a component's area also differs from the
/// golden reference (same range test as `diff_row`).
#[allow(clippy::too_many_arguments)]
fn differs_from(
    t: &[u8],
    g: &[u8],
    r: &Resample,
    w: usize,
    h: usize,
    bbox: [u16; 4],
    thr: u8,
    area: u32,
) -> bool {
    let mut count = 0u32;
    for y in bbox[1] as usize..bbox[3] as usize {
        for x in bbox[0] as usize..bbox[2] as usize {
            let (gx, gy) = (x as i32 + r.ix, y as i32 + r.iy);
            if gx < 0 || gy < 0 || gx as usize + 1 >= w || gy as usize + 1 >= h {
                count += 1; // cannot tell: keep the defect
                continue;
            }
            let (gx, gy) = (gx as usize, gy as usize);
            let s = [
                g[gy * w + gx],
                g[gy * w + gx + 1],
                g[(gy + 1) * w + gx],
                g[(gy + 1) * w + gx + 1],
            ];
            let (lo, hi) = (
                s.iter().min().copied().unwrap_or(0),
                s.iter().max().copied().unwrap_or(255),
            );
            let tv = t[y * w + x];
            if (tv.saturating_sub(hi) | lo.saturating_sub(tv)) > thr {
                count += 1;
            }
        }
    }
    count * 2 >= area
}

/// One row of min(dist(t, L), dist(t, R)), where dist is how far t lies
/// outside the range of the reference's 2×2 bilinear footprint. A range
/// rather than the interpolated value tolerates the last fraction of a
/// pixel of misregistration at high-contrast edges (the false positives of
/// a plain difference) and works in byte lanes, which the compiler
/// vectorises 16 or 32 wide. Every slice has the same length, so the loop
/// has no bounds checks.
#[inline(never)]
fn diff_row(t: &[u8], l: [&[u8]; 4], tol_l: u8, r: [&[u8]; 4], tol_r: u8, out: &mut [u8]) {
    let n = out.len();
    let (t, l0, l1, l2, l3) = (&t[..n], &l[0][..n], &l[1][..n], &l[2][..n], &l[3][..n]);
    let (r0, r1, r2, r3) = (&r[0][..n], &r[1][..n], &r[2][..n], &r[3][..n]);
    for i in 0..n {
        let tv = t[i];
        let (lmin, lmax) = (
            l0[i].min(l1[i]).min(l2[i].min(l3[i])),
            l0[i].max(l1[i]).max(l2[i].max(l3[i])),
        );
        let (rmin, rmax) = (
            r0[i].min(r1[i]).min(r2[i].min(r3[i])),
            r0[i].max(r1[i]).max(r2[i].max(r3[i])),
        );
        let dl = (tv.saturating_sub(lmax) | lmin.saturating_sub(tv)).saturating_sub(tol_l);
        let dr = (tv.saturating_sub(rmax) | rmin.saturating_sub(tv)).saturating_sub(tol_r);
        out[i] = dl.min(dr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_sum_to_256_for_any_shift() {
        for i in -40..40 {
            let s = i as f32 * 0.037;
            let r = Resample::new((s, -s * 1.3));
            assert_eq!(r.w.iter().map(|&v| v as u32).sum::<u32>(), 256, "{s}");
        }
    }
}
