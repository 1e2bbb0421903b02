//! The per-pixel comparison of T with its aligned references: bilinear
//! resampling offsets, the region every reference covers, the brightness
//! estimate, and the row kernels (`signed_difference_row`, `flag_span`)
//! that the compiler vectorises. `detect` drives them per die.

use super::normalise::{LevelMap, LevelStats, BLOCK_ROWS, LEVEL_BAND_STEP, LEVEL_BIAS, LEVEL_ONE};
use super::simd::dispatch;

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
    /// A taught golden die (nearly noise-free) rather than a neighbour.
    pub(super) golden: bool,
    pub(super) resample: Resample,
    pub(super) levels: LevelMap,
    pub(super) tolerance: u8,
    /// Extra tolerance per grey level of the footprint's own range, Q7
    /// (`DetectParams::edge_tolerance` × 128).
    pub(super) edge_q7: u16,
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
            let (min, max) = (
                s.iter().copied().min().unwrap_or(0),
                s.iter().copied().max().unwrap_or(255),
            );
            let lo = g.levels.apply(min as f32);
            let hi = g.levels.apply(max as f32);
            let edge = (max - min) as f32 * g.edge_q7 as f32 / LEVEL_ONE as f32;
            let tv = t[y * w + x] as f32;
            if (tv - hi).max(lo - tv) - edge > thr as f32 {
                count += 1;
            }
        }
    }
    count * 2 >= area
}

dispatch!(
    /// See `signed_difference_body`.
    signed_difference_row => signed_difference_body(
        t: &[u8], l: [&[u8]; 4], lp: &Prepared, r: [&[u8]; 4], rp: &Prepared, out: &mut [i16]
    ) -> ()
);

dispatch!(
    /// See `flag_span_body`.
    flag_span => flag_span_body(
        signed: &[i16], previous: &[i16], span: std::ops::Range<usize>,
        pixel_threshold: u16, box_sum_threshold: u16, out: &mut [u8]
    ) -> bool
);

dispatch!(
    /// See `flag_row_body`.
    flag_row => flag_row_body(
        t: &[u8], l: [&[u8]; 4], lp: &Prepared, r: [&[u8]; 4], rp: &Prepared,
        pixel_threshold: u16, out: &mut [u8]
    ) -> bool
);

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
#[inline(always)]
fn signed_difference_body(
    t: &[u8],
    l: [&[u8]; 4],
    lp: &Prepared,
    r: [&[u8]; 4],
    rp: &Prepared,
    out: &mut [i16],
) {
    let n = out.len();
    let k = Kernel::new(t, l, lp, r, rp, n);
    for (i, o) in out.iter_mut().enumerate() {
        let (bright, dark) = k.beyond(i);
        *o = bright as i16 - dark as i16;
    }
}

/// The distances of T beyond both references, per pixel, on equal-length
/// row slices (so the loops using it have no bounds checks).
struct Kernel<'a> {
    t: &'a [u8],
    l: [&'a [u8]; 4],
    r: [&'a [u8]; 4],
    gain_l: u16,
    offset_l: u16,
    gain_r: u16,
    offset_r: u16,
    tol_l: u16,
    tol_r: u16,
    edge_l: u16,
    edge_r: u16,
}

impl<'a> Kernel<'a> {
    #[inline(always)]
    fn new(
        t: &'a [u8],
        l: [&'a [u8]; 4],
        lp: &Prepared,
        r: [&'a [u8]; 4],
        rp: &Prepared,
        n: usize,
    ) -> Self {
        Self {
            t: &t[..n],
            l: [&l[0][..n], &l[1][..n], &l[2][..n], &l[3][..n]],
            r: [&r[0][..n], &r[1][..n], &r[2][..n], &r[3][..n]],
            gain_l: lp.levels.gain_q7,
            offset_l: lp.levels.offset_q7_biased,
            gain_r: rp.levels.gain_q7,
            offset_r: rp.levels.offset_q7_biased,
            tol_l: lp.tolerance as u16 * LEVEL_ONE,
            tol_r: rp.tolerance as u16 * LEVEL_ONE,
            edge_l: lp.edge_q7,
            edge_r: rp.edge_q7,
        }
    }

    /// (bright, dark) grey levels of T beyond both references at `i`; at
    /// most one is non-zero.
    #[inline(always)]
    fn beyond(&self, i: usize) -> (u16, u16) {
        let (l, r) = (&self.l, &self.r);
        let tv = self.t[i] as u16 * LEVEL_ONE + LEVEL_BIAS;
        let lmin = l[0][i].min(l[1][i]).min(l[2][i].min(l[3][i])) as u16;
        let lmax = l[0][i].max(l[1][i]).max(l[2][i].max(l[3][i])) as u16;
        let rmin = r[0][i].min(r[1][i]).min(r[2][i].min(r[3][i])) as u16;
        let rmax = r[0][i].max(r[1][i]).max(r[2][i].max(r[3][i])) as u16;
        // At an edge the footprint spans dark to bright; rough edges and
        // the last fraction of misregistration move T by a fraction of
        // that span (≤ 255 × 128: no overflow).
        let tol_l = self.tol_l + (lmax - lmin) * self.edge_l;
        let tol_r = self.tol_r + (rmax - rmin) * self.edge_r;
        let (lmin, lmax) = (
            lmin * self.gain_l + self.offset_l,
            lmax * self.gain_l + self.offset_l,
        );
        let (rmin, rmax) = (
            rmin * self.gain_r + self.offset_r,
            rmax * self.gain_r + self.offset_r,
        );
        let bright_l = tv.saturating_sub(lmax).saturating_sub(tol_l);
        let dark_l = lmin.saturating_sub(tv).saturating_sub(tol_l);
        let bright_r = tv.saturating_sub(rmax).saturating_sub(tol_r);
        let dark_r = rmin.saturating_sub(tv).saturating_sub(tol_r);
        let half = LEVEL_ONE / 2;
        (
            (bright_l.min(bright_r) + half) >> 7,
            (dark_l.min(dark_r) + half) >> 7,
        )
    }
}

/// One row of flags for the labeller without the signed row, for dies
/// whose thresholds are all per pixel (no 2×2 box): the magnitude (≥ 1) of
/// each pixel beyond both references by more than `pixel_threshold`, 0
/// elsewhere; the same flags `signed_difference_body` + `flag_span_body`
/// give with the box off, in one pass. Returns whether any pixel is
/// flagged.
#[inline(always)]
fn flag_row_body(
    t: &[u8],
    l: [&[u8]; 4],
    lp: &Prepared,
    r: [&[u8]; 4],
    rp: &Prepared,
    pixel_threshold: u16,
    out: &mut [u8],
) -> bool {
    let n = out.len();
    let k = Kernel::new(t, l, lp, r, rp, n);
    let mut any = 0u8;
    for (i, o) in out.iter_mut().enumerate() {
        let (bright, dark) = k.beyond(i);
        let magnitude = bright.max(dark);
        *o = if magnitude > pixel_threshold {
            magnitude.min(255) as u8
        } else {
            0
        };
        any |= *o;
    }
    any != 0
}

/// Flags of one span of a row for the labeller: the magnitude (≥ 1) of
/// each pixel whose signed difference exceeds `pixel_threshold`, or whose
/// 2×2 box (this and the next pixel, this and the previous row) sums beyond
/// `box_sum_threshold` (`u16::MAX`: off); 0 elsewhere. Bright and dark
/// pixels cancel in the box, so only a sign-consistent cluster adds up.
/// Returns whether anything in the span was flagged.
#[inline(always)]
fn flag_span_body(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden arbitration sees the same edge tolerance as the kernel: a
    /// component 10 grey beyond an edge of the golden die (span 100)
    /// differs from it at threshold 5 without tolerance, and not with
    /// 0.25 of the span; on a flat golden it differs either way.
    #[test]
    fn golden_arbitration_applies_the_edge_tolerance() {
        let w = 4;
        // Columns 0-1 dark (50), 2-3 bright (150): every 2×2 footprint
        // starting in column 1 spans the edge.
        let edge: Vec<u8> = (0..w * w)
            .map(|i| if i % w < 2 { 50 } else { 150 })
            .collect();
        let flat = vec![100u8; w * w];
        let mut t = vec![100u8; w * w];
        t[w + 1] = 160;
        let differs = |golden: &[u8], t: &[u8], edge_q7: u16| {
            let g = prepared(golden, 1.0, 0.0, 0, edge_q7);
            differs_from(t, &g, w, w, [1, 1, 2, 2], 5, 1)
        };
        assert!(differs(&edge, &t, 0));
        assert!(!differs(&edge, &t, 32));
        t[w + 1] = 110;
        assert!(differs(&flat, &t, 32));
    }

    /// A pixel on an edge (footprint 50..150) 10 grey beyond it: flagged
    /// at threshold 5 without edge tolerance; with 0.25 (25 of the span of
    /// 100) it is not; a flat footprint gets no tolerance at all.
    #[test]
    fn edge_tolerance_scales_with_the_footprints_span() {
        let flags = |t: u8, rows: [u8; 4], edge_q7: u16| {
            let row = |v: u8| vec![v; 1];
            let (r0, r1, r2, r3) = (row(rows[0]), row(rows[1]), row(rows[2]), row(rows[3]));
            let refs = [&r0[..], &r1[..], &r2[..], &r3[..]];
            let p = prepared(&r0, 1.0, 0.0, 0, edge_q7);
            let mut out = [0u8; 1];
            flag_row(Isa::detect(), &[t], refs, &p, refs, &p, 5, &mut out);
            out[0]
        };
        assert_eq!(flags(160, [50, 150, 50, 150], 0), 10);
        assert_eq!(flags(160, [50, 150, 50, 150], 32), 0);
        assert_eq!(flags(40, [50, 150, 50, 150], 32), 0);
        assert_eq!(flags(110, [100, 100, 100, 100], 32), 10);
    }
    use crate::pipeline::normalise::LevelMap;
    use crate::pipeline::simd::Isa;

    /// Deterministic bytes (splitmix-style), so failures reproduce.
    fn bytes(n: usize, seed: u64) -> Vec<u8> {
        let mut z = seed;
        (0..n)
            .map(|_| {
                z = crate::machine::sim::pattern::mix(z.wrapping_add(0x9E37_79B9_7F4A_7C15));
                (z >> 56) as u8
            })
            .collect()
    }

    fn prepared(
        pixels: &[u8],
        gain: f32,
        offset: f32,
        tolerance: u8,
        edge_q7: u16,
    ) -> Prepared<'_> {
        Prepared {
            pixels,
            golden: false,
            resample: Resample::new((0.0, 0.0)),
            levels: LevelMap::new(gain, offset),
            tolerance,
            edge_q7,
        }
    }

    /// Rows of every length around the vector widths, with gains and
    /// offsets at the limits: the AVX2 copy, the baseline copy and the
    /// one-pass flag kernel agree bit for bit with the two-pass flags.
    #[test]
    fn both_instruction_sets_and_the_one_pass_kernel_give_the_same_flags() {
        let (detected, baseline) = (Isa::detect(), Isa::baseline());
        // (gain, offset, tolerance) of L and R, and the edge tolerance
        // (Q7, up to its limit of 1.0).
        let cases = [
            (1.0, 0.0, 0, 1.0, 0.0, 0, 0),
            (1.25, 40.0, 0, 0.8, -40.0, 10, 19),
            (0.8, -40.0, 25, 1.1, 15.0, 0, 128),
            (1.25, 40.0, 60, 1.25, 40.0, 60, 128),
        ];
        for n in [1usize, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 200, 2048] {
            for (seed, &(gl, ol, tl, gr, or, tr, edge)) in cases.iter().enumerate() {
                let seed = seed as u64 * 1000 + n as u64;
                let t = bytes(n, seed);
                let l: Vec<Vec<u8>> = (0..4).map(|k| bytes(n, seed + 10 + k)).collect();
                let r: Vec<Vec<u8>> = (0..4).map(|k| bytes(n, seed + 20 + k)).collect();
                let (lp, rp) = (
                    prepared(&l[0], gl, ol, tl, edge),
                    prepared(&r[0], gr, or, tr, edge),
                );
                let lrows = [&l[0][..], &l[1][..], &l[2][..], &l[3][..]];
                let rrows = [&r[0][..], &r[1][..], &r[2][..], &r[3][..]];
                let mut signed = [vec![0i16; n], vec![0i16; n]];
                for (isa, out) in [detected, baseline].into_iter().zip(signed.iter_mut()) {
                    signed_difference_row(isa, &t, lrows, &lp, rrows, &rp, out);
                }
                assert_eq!(signed[0], signed[1], "signed rows, n {n}");
                let previous = bytes(n, seed + 30)
                    .iter()
                    .map(|&v| v as i16 - 128)
                    .collect::<Vec<_>>();
                for threshold in [0u16, 5, 24, 254] {
                    let mut two_pass = vec![0u8; n];
                    let any2 = flag_span(
                        baseline,
                        &signed[1],
                        &previous,
                        0..n,
                        threshold,
                        u16::MAX,
                        &mut two_pass,
                    );
                    for isa in [detected, baseline] {
                        let mut box_flags = vec![0u8; n];
                        let (b1, b2) = (threshold / 2, threshold.saturating_mul(3));
                        for b in [b1, b2] {
                            let mut reference = vec![0u8; n];
                            flag_span_body(
                                &signed[1],
                                &previous,
                                0..n,
                                threshold,
                                b,
                                &mut reference,
                            );
                            flag_span(
                                isa,
                                &signed[1],
                                &previous,
                                0..n,
                                threshold,
                                b,
                                &mut box_flags,
                            );
                            assert_eq!(box_flags, reference, "box flags, n {n}, {}", isa.name());
                        }
                        let mut one_pass = vec![0u8; n];
                        let any1 =
                            flag_row(isa, &t, lrows, &lp, rrows, &rp, threshold, &mut one_pass);
                        // The same pixels flagged; the one-pass value is the
                        // pixel's own distance (the two-pass one may carry
                        // its box's mean, which is off here).
                        for i in 0..n {
                            let own = signed[1][i].unsigned_abs().min(255) as u8;
                            let want = if two_pass[i] != 0 { own.max(1) } else { 0 };
                            assert_eq!(
                                one_pass[i],
                                want,
                                "flag {i}, n {n}, thr {threshold}, {}",
                                isa.name()
                            );
                        }
                        assert_eq!(any1, any2);
                    }
                }
            }
        }
    }
}
