//! The per-pixel comparison of T with its aligned references: bilinear
//! resampling offsets, the region every reference covers, the brightness
//! estimate, and the row kernels (`signed_difference_row`, `flag_span`)
//! that the compiler vectorises. `detect` drives them per die.

use super::normalise::{LevelMap, LevelStats, BLOCK_ROWS, LEVEL_BAND_STEP, LEVEL_BIAS, LEVEL_ONE};

/// Integer offset and 8.8 bilinear weights of one aligned reference.
#[derive(Debug, Clone, Copy)]
pub(super) struct Resample {
    pub(super) ix: i32,
    pub(super) iy: i32,
    pub(super) w: [u16; 4],
}

impl Resample {
    pub(super) fn new((dx, dy): (f32, f32)) -> Self {
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
    pub(super) fn at(&self, img: &[u8], width: usize, x: usize, y: usize) -> u16 {
        let (x, y) = ((x as i32 + self.ix) as usize, (y as i32 + self.iy) as usize);
        let p = |x: usize, y: usize| img[y * width + x] as u16;
        (p(x, y) * self.w[0]
            + p(x + 1, y) * self.w[1]
            + p(x, y + 1) * self.w[2]
            + p(x + 1, y + 1) * self.w[3]
            + 128)
            >> 8
    }

    /// The four footprint rows of T's row `y`, columns `x0..x0 + n`.
    pub(super) fn rows<'a>(
        &self,
        img: &'a [u8],
        width: usize,
        y: usize,
        x0: usize,
        n: usize,
    ) -> [&'a [u8]; 4] {
        let row = |dy: i32, dx: i32| -> &'a [u8] {
            let start =
                (y as i32 + self.iy + dy) as usize * width + (x0 as i32 + self.ix + dx) as usize;
            &img[start..start + n]
        };
        [row(0, 0), row(0, 1), row(1, 0), row(1, 1)]
    }
}

/// T's region `(x0, x1), (y0, y1)` where every reference has all four
/// bilinear samples: with stage errors of tens of pixels only that part of
/// T can be compared.
pub(super) fn overlap(refs: &[Resample], w: usize, h: usize) -> ((usize, usize), (usize, usize)) {
    let axis = |n: usize, of: &dyn Fn(&Resample) -> i32| {
        let lo = refs.iter().map(|r| (-of(r)).max(0)).max().unwrap_or(0) as usize;
        let hi = refs
            .iter()
            .map(|r| n as i32 - 1 - of(r))
            .min()
            .unwrap_or(n as i32)
            .clamp(0, n as i32) as usize;
        (lo, hi.max(lo))
    };
    (axis(w, &|r| r.ix), axis(h, &|r| r.iy))
}

/// One reference as the kernel uses it.
#[derive(Clone, Copy)]
pub(super) struct Prepared<'a> {
    pub(super) pixels: &'a [u8],
    pub(super) resample: Resample,
    pub(super) levels: LevelMap,
    pub(super) tolerance: u8,
}

/// How `reference`, displaced by `resample`, maps onto `test` over T's
/// region `xs` × `ys` (see `normalise`), at the nearest whole-pixel shift
/// (the region, valid for the bilinear footprint of the floor shift, is
/// valid for it).
pub(super) fn estimate_levels(
    test: &[u8],
    reference: &[u8],
    width: usize,
    resample: &Resample,
    (x0, x1): (usize, usize),
    (y0, y1): (usize, usize),
) -> LevelMap {
    let ix = resample.ix + (resample.w[1] + resample.w[3] >= 128) as i32;
    let iy = resample.iy + (resample.w[2] + resample.w[3] >= 128) as i32;
    let n = x1.saturating_sub(x0);
    let mut stats = LevelStats::default();
    for band in (y0..y1.saturating_sub(BLOCK_ROWS)).step_by(LEVEL_BAND_STEP) {
        stats.add_band((band..band + BLOCK_ROWS).map(|y| {
            let r = (y as i32 + iy) as usize * width + (x0 as i32 + ix) as usize;
            (&test[y * width + x0..][..n], &reference[r..][..n])
        }));
    }
    stats.finish()
}

/// Whether at least half of a component's area also differs from the
/// golden reference (same range test as the kernel, brightness-mapped).
pub(super) fn differs_from(
    t: &[u8],
    g: &Prepared,
    w: usize,
    h: usize,
    bbox: [u16; 4],
    thr: u8,
    area: u32,
) -> bool {
    let mut count = 0u32;
    let r = &g.resample;
    for y in bbox[1] as usize..bbox[3] as usize {
        for x in bbox[0] as usize..bbox[2] as usize {
            let (gx, gy) = (x as i32 + r.ix, y as i32 + r.iy);
            if gx < 0 || gy < 0 || gx as usize + 1 >= w || gy as usize + 1 >= h {
                count += 1; // cannot tell: keep the defect
                continue;
            }
            let (gx, gy) = (gx as usize, gy as usize);
            let p = g.pixels;
            let s = [
                p[gy * w + gx],
                p[gy * w + gx + 1],
                p[(gy + 1) * w + gx],
                p[(gy + 1) * w + gx + 1],
            ];
            let lo = g.levels.apply(s.iter().copied().min().unwrap_or(0) as f32);
            let hi = g
                .levels
                .apply(s.iter().copied().max().unwrap_or(255) as f32);
            let tv = t[y * w + x] as f32;
            if (tv - hi).max(lo - tv) > thr as f32 {
                count += 1;
            }
        }
    }
    count * 2 >= area
}

/// One row of the signed, sign-consistent distance of T outside both
/// references: positive when T is brighter than the brightest of each
/// reference's 2×2 bilinear footprint, negative when darker than the
/// darkest of each, in grey levels after mapping each reference onto T's
/// brightness; 0 otherwise. A range rather than the interpolated value
/// tolerates the last fraction of a pixel of misregistration at
/// high-contrast edges (the false positives of a plain difference). The
/// footprint min/max work in byte lanes, the mapping in unsigned 16-bit
/// Q7 lanes (the bias keeps negative offsets unsigned); every slice has the
/// same length, so the loop has no bounds checks and vectorises.
#[inline(never)]
pub(super) fn signed_difference_row(
    t: &[u8],
    l: [&[u8]; 4],
    lp: &Prepared,
    r: [&[u8]; 4],
    rp: &Prepared,
    out: &mut [i16],
) {
    let n = out.len();
    let (t, l0, l1, l2, l3) = (&t[..n], &l[0][..n], &l[1][..n], &l[2][..n], &l[3][..n]);
    let (r0, r1, r2, r3) = (&r[0][..n], &r[1][..n], &r[2][..n], &r[3][..n]);
    let (gain_l, offset_l) = (lp.levels.gain_q7, lp.levels.offset_q7_biased);
    let (gain_r, offset_r) = (rp.levels.gain_q7, rp.levels.offset_q7_biased);
    let tol_l = lp.tolerance as u16 * LEVEL_ONE;
    let tol_r = rp.tolerance as u16 * LEVEL_ONE;
    let half = LEVEL_ONE / 2;
    for i in 0..n {
        let tv = t[i] as u16 * LEVEL_ONE + LEVEL_BIAS;
        let lmin = l0[i].min(l1[i]).min(l2[i].min(l3[i])) as u16 * gain_l + offset_l;
        let lmax = l0[i].max(l1[i]).max(l2[i].max(l3[i])) as u16 * gain_l + offset_l;
        let rmin = r0[i].min(r1[i]).min(r2[i].min(r3[i])) as u16 * gain_r + offset_r;
        let rmax = r0[i].max(r1[i]).max(r2[i].max(r3[i])) as u16 * gain_r + offset_r;
        let bright_l = tv.saturating_sub(lmax).saturating_sub(tol_l);
        let dark_l = lmin.saturating_sub(tv).saturating_sub(tol_l);
        let bright_r = tv.saturating_sub(rmax).saturating_sub(tol_r);
        let dark_r = rmin.saturating_sub(tv).saturating_sub(tol_r);
        let bright = (bright_l.min(bright_r) + half) >> 7;
        let dark = (dark_l.min(dark_r) + half) >> 7;
        out[i] = bright as i16 - dark as i16;
    }
}

/// Flags of one span of a row for the labeller: the magnitude (≥ 1) of
/// each pixel whose signed difference exceeds `pixel_threshold`, or whose
/// 2×2 box (this and the next pixel, this and the previous row) sums beyond
/// `box_sum_threshold` (`u16::MAX`: off); 0 elsewhere. Bright and dark
/// pixels cancel in the box, so only a sign-consistent cluster adds up.
/// Returns whether anything in the span was flagged.
#[inline(never)]
pub(super) fn flag_span(
    signed: &[i16],
    previous: &[i16],
    span: std::ops::Range<usize>,
    pixel_threshold: u16,
    box_sum_threshold: u16,
    out: &mut [u8],
) -> bool {
    let n = out.len();
    let (start, end) = (span.start, span.end.min(n));
    if start >= end {
        return false;
    }
    // Pixels with a right neighbour get the box.
    let m = end.min(n - 1).max(start);
    let (c0, c1) = (&signed[start..m], &signed[start + 1..m + 1]);
    let (p0, p1) = (&previous[start..m], &previous[start + 1..m + 1]);
    let flags = &mut out[start..m];
    let mut any = 0u8;
    for i in 0..flags.len() {
        let magnitude = c0[i].unsigned_abs();
        let box_sum = (c0[i] + c1[i] + p0[i] + p1[i]).unsigned_abs();
        let flagged = magnitude > pixel_threshold || box_sum > box_sum_threshold;
        let value = magnitude.max(box_sum / 4).clamp(1, 255) as u8;
        flags[i] = if flagged { value } else { 0 };
        any |= flags[i];
    }
    if m < end {
        // The row's last pixel has no box.
        let magnitude = signed[m].unsigned_abs();
        out[m] = if magnitude > pixel_threshold {
            magnitude.clamp(1, 255) as u8
        } else {
            0
        };
        any |= out[m];
    }
    any != 0
}
