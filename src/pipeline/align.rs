//! Die-to-die alignment from intensity projections.
//!
//! Each frame's column and row sums are computed once (one pass, vectorised)
//! when it arrives, with a ÷4 decimated copy. Aligning two dies is then 1-D
//! work: a coarse search on the decimated profiles over the whole stage
//! repeat error (±`max_shift` px, default 64), an integer search at full
//! resolution around 4 × the coarse result, then Lucas–Kanade refinement to a
//! sub-pixel shift. Summing many rows averages noise away, so the shift is
//! good to a few hundredths of a pixel on patterned dies.
//!
//! Every estimate comes with a confidence in [0, 1]: how well the profiles
//! match at the optimum (normalised correlation), how unique that optimum is
//! (a periodic or featureless die has other minima nearly as deep) and how
//! the bands vote (see `combine_bands`). A die whose alignment is not
//! trustworthy is reported as such instead of being compared (see
//! `Detector`).

use super::simd::{dispatch, Isa};

/// Default largest misalignment searched, pixels (stage repeat error).
pub const DEFAULT_MAX_SHIFT: u32 = 64;

/// Largest `max_shift` a recipe may ask for; sizes the coarse cost table.
pub const MAX_SUPPORTED_SHIFT: u32 = 256;

/// Decimation of the coarse profiles.
pub const DECIMATION: usize = 4;

/// Profiles are taken over this many bands: column sums over horizontal
/// bands of rows, row sums over vertical strips of columns. Each band gives
/// its own shift estimate and the bands vote with their confidence (see
/// `combine_bands`), so a scratch or residue that distorts one band's
/// profile does not move the result.
pub const BANDS: usize = 4;

/// Profiles at most this long are searched at full resolution.
const SMALL_IMAGE: usize = 256;

/// Shifts searched either side of zero at most, in search steps: whole
/// pixels on a small image (at most a quarter of it), else decimated ones.
const MAX_SEARCH: usize = {
    let full = SMALL_IMAGE / 4 + 2;
    let decimated = MAX_SUPPORTED_SHIFT as usize / DECIMATION + 2;
    if full > decimated {
        full
    } else {
        decimated
    }
};

/// Column and row intensity sums of one frame, per band, standardised, and
/// their ÷`DECIMATION` copies. Allocated once per slot.
#[derive(Debug, Clone)]
pub struct Profiles {
    pub cols: [Vec<f32>; BANDS],
    pub rows: [Vec<f32>; BANDS],
    pub coarse_cols: [Vec<f32>; BANDS],
    pub coarse_rows: [Vec<f32>; BANDS],
    col_acc: Vec<u32>,
    col_acc16: Vec<u16>,
}

impl Profiles {
    pub fn new(width: u32, height: u32) -> Self {
        let (w, h) = (width as usize, height as usize);
        Self {
            cols: std::array::from_fn(|_| vec![0.0; w]),
            rows: std::array::from_fn(|_| vec![0.0; h]),
            coarse_cols: std::array::from_fn(|_| vec![0.0; w / DECIMATION]),
            coarse_rows: std::array::from_fn(|_| vec![0.0; h / DECIMATION]),
            col_acc: vec![0; w],
            col_acc16: vec![0; w],
        }
    }

    /// Recomputes the profiles of `img`, each standardised (zero mean, unit
    /// variance) so a gain or offset difference between dies does not look
    /// like a shift. One pass; never allocates.
    pub fn compute(&mut self, img: &[u8]) {
        let w = self.cols[0].len();
        let h = self.rows[0].len();
        let isa = Isa::detect();
        for band in 0..BANDS {
            let (y0, y1) = (band * h / BANDS, (band + 1) * h / BANDS);
            band_sums(
                isa,
                &img[y0 * w..y1 * w],
                &mut self.col_acc,
                &mut self.col_acc16,
                &mut self.rows,
                y0,
            );
            for (c, &a) in self.cols[band].iter_mut().zip(&self.col_acc) {
                *c = a as f32;
            }
        }
        for p in self.cols.iter_mut().chain(self.rows.iter_mut()) {
            standardise(p);
        }
        let fine = self.cols.iter().chain(self.rows.iter());
        let coarse = self
            .coarse_cols
            .iter_mut()
            .chain(self.coarse_rows.iter_mut());
        for (c, f) in coarse.zip(fine) {
            for (v, group) in c.iter_mut().zip(f.chunks_exact(DECIMATION)) {
                *v = group.iter().sum::<f32>() / DECIMATION as f32;
            }
        }
    }
}

/// Rows of one band added up twice: per column into `col_acc`, and per
/// vertical strip (a quarter of the width) into `rows[strip][y0 + row]`.
/// Columns add up in 16-bit lanes (twice as many per vector as 32-bit),
/// flushed to 32 bits every `FLUSH_ROWS` rows before they could overflow.
#[inline(always)]
fn band_sums_body(
    band: &[u8],
    col_acc: &mut [u32],
    col_acc16: &mut [u16],
    rows: &mut [Vec<f32>; BANDS],
    y0: usize,
) {
    /// 257 rows of 255 would reach 65 535: flush before.
    const FLUSH_ROWS: usize = 256;
    let w = col_acc.len();
    let col_acc16 = &mut col_acc16[..w];
    let strip = w.div_ceil(BANDS);
    col_acc.fill(0);
    col_acc16.fill(0);
    for (k, row) in band.chunks_exact(w).enumerate() {
        for (acc, &p) in col_acc16.iter_mut().zip(row) {
            *acc += p as u16;
        }
        if (k + 1) % FLUSH_ROWS == 0 {
            flush(col_acc, col_acc16);
        }
        for (s, part) in row.chunks(strip).enumerate() {
            rows[s][y0 + k] = sum_bytes(part) as f32;
        }
    }
    flush(col_acc, col_acc16);
}

#[inline(always)]
fn flush(col_acc: &mut [u32], col_acc16: &mut [u16]) {
    for (a, b) in col_acc.iter_mut().zip(col_acc16.iter_mut()) {
        *a += *b as u32;
        *b = 0;
    }
}

/// Σ bytes, in 32 lanes of 16 bits (each lane takes at most 256 bytes
/// before it is folded into the total).
#[inline(always)]
fn sum_bytes(bytes: &[u8]) -> u32 {
    const LANES: usize = 32;
    let mut total = 0u32;
    for block in bytes.chunks(LANES * 256) {
        let mut acc = [0u16; LANES];
        let chunks = block.chunks_exact(LANES);
        let tail = chunks.remainder();
        for c in chunks {
            for k in 0..LANES {
                acc[k] += c[k] as u16;
            }
        }
        total += acc.iter().map(|&v| v as u32).sum::<u32>();
        total += tail.iter().map(|&v| v as u32).sum::<u32>();
    }
    total
}

dispatch!(
    /// See `band_sums_body`.
    band_sums => band_sums_body(
        band: &[u8], col_acc: &mut [u32], col_acc16: &mut [u16],
        rows: &mut [Vec<f32>; BANDS], y0: usize
    ) -> ()
);

fn standardise(p: &mut [f32]) {
    let n = p.len().max(1) as f32;
    let mean = p.iter().sum::<f32>() / n;
    let var = p.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    // A perfectly flat profile stays all zeros: its alignment confidence
    // comes out 0.
    let scale = if var > 1e-12 { 1.0 / var.sqrt() } else { 0.0 };
    p.iter_mut().for_each(|v| *v = (*v - mean) * scale);
}

/// A shift estimate with its confidence.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Alignment {
    /// (dx, dy) such that `reference(x + dx, y + dy) ≈ test(x, y)`.
    pub shift: (f32, f32),
    /// In [0, 1]; the lower of the two axes.
    pub confidence: f32,
}

/// Shift (dx, dy) such that `reference(x + dx, y + dy) ≈ test(x, y)`,
/// searched over ±`DEFAULT_MAX_SHIFT`.
pub fn estimate_shift(test: &Profiles, reference: &Profiles) -> (f32, f32) {
    align(test, reference, DEFAULT_MAX_SHIFT).shift
}

/// Aligns `reference` to `test` over ±`max_shift` px (clamped to a quarter
/// of the image and to `MAX_SUPPORTED_SHIFT`). Never allocates.
pub fn align(test: &Profiles, reference: &Profiles, max_shift: u32) -> Alignment {
    let axis = |t: &[Vec<f32>; BANDS],
                r: &[Vec<f32>; BANDS],
                ct: &[Vec<f32>; BANDS],
                cr: &[Vec<f32>; BANDS]| {
        let estimates: [Estimate1d; BANDS] =
            std::array::from_fn(|k| shift_1d(&t[k], &r[k], &ct[k], &cr[k], max_shift));
        combine_bands(&estimates)
    };
    let (dx, cx) = axis(
        &test.cols,
        &reference.cols,
        &test.coarse_cols,
        &reference.coarse_cols,
    );
    let (dy, cy) = axis(
        &test.rows,
        &reference.rows,
        &test.coarse_rows,
        &reference.coarse_rows,
    );
    Alignment {
        shift: (dx, dy),
        confidence: cx.min(cy),
    }
}

/// Every band weighs at least this much in the vote, however little it
/// saw: a band that sees nothing (or whose best shift lies beyond the
/// search) is not evidence for the shift the others found, so a single
/// moderately confident band among blind ones is not a majority (seen:
/// dies 85 px apart with a ±64 px search, one band at 0.5 and three
/// near 0, trusted at −13.5 px).
const BAND_MIN_WEIGHT: f32 = 0.2;
/// A band below this confidence adds nothing to the combined confidence
/// (bands see the same layout, so many weak ones are not independent
/// evidence).
const BAND_MIN_EVIDENCE: f32 = 0.1;

/// The shift the bands' evidence supports, and a confidence. Real dies are
/// not uniform: lines running along an axis carry nothing about it, so in
/// a die of quadrants only the bands through the right quadrant register
/// it, and a band over a periodic array may pick a wrong period. So the
/// bands vote, each weighing its confidence but at least
/// `BAND_MIN_WEIGHT`: each band's shift gathers the weight of every band
/// within a pixel of it; the best-supported cluster wins, its shift is
/// their confidence-weighted mean, and the confidence is the evidence of
/// that cluster combined (agreeing bands of at least `BAND_MIN_EVIDENCE`:
/// 1 − Π(1 − cₖ)) times 2s − 1 for the share s of all the weight that
/// agrees with it (1 unanimous, 0 at an even split or less).
fn combine_bands(estimates: &[Estimate1d; BANDS]) -> (f32, f32) {
    // NaN (never expected) weighs the minimum and is no evidence.
    let confidence = |e: &Estimate1d| {
        if e.confidence.is_nan() {
            0.0
        } else {
            e.confidence.clamp(0.0, 1.0)
        }
    };
    let weight = |e: &Estimate1d| confidence(e).max(BAND_MIN_WEIGHT);
    let total: f32 = estimates.iter().map(weight).sum();
    let cluster = |k: usize| {
        estimates
            .iter()
            .filter(move |e| (e.shift - estimates[k].shift).abs() <= 1.0)
    };
    let support = |k: usize| cluster(k).map(weight).sum::<f32>();
    let best = (0..BANDS)
        .max_by(|&a, &b| support(a).total_cmp(&support(b)))
        .unwrap_or(0);
    let evidence: f32 = cluster(best).map(confidence).sum();
    if evidence <= f32::EPSILON {
        // No band has evidence: the median shift, with no confidence.
        let mut all: [f32; BANDS] = std::array::from_fn(|k| estimates[k].shift);
        all.sort_by(f32::total_cmp);
        return ((all[BANDS / 2 - 1] + all[BANDS / 2]) / 2.0, 0.0);
    }
    let shift = cluster(best).map(|e| e.shift * confidence(e)).sum::<f32>() / evidence;
    let combined = 1.0
        - cluster(best)
            .map(confidence)
            .filter(|&c| c >= BAND_MIN_EVIDENCE)
            .map(|c| 1.0 - c)
            .product::<f32>();
    // Unanimous weight keeps the combined confidence; weight split evenly
    // between two shifts (a die that registers two ways) has none.
    let share = support(best) / total;
    (shift, combined * (2.0 * share - 1.0).max(0.0))
}

/// One band's 1-D shift estimate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate1d {
    pub shift: f32,
    pub confidence: f32,
}

/// Mean squared difference of `t[x]` and `r[x + d]` over a range that is
/// the same for every `d` searched, so costs compare.
fn cost(t: &[f32], r: &[f32], range: std::ops::Range<usize>, d: i32) -> f32 {
    let n = range.len().max(1) as f32;
    let off = (range.start as i32 + d) as usize;
    let (t, r) = (&t[range.clone()], &r[off..off + range.len()]);
    sum_lanes(t, r, |a, b| (a - b) * (a - b)) / n
}

/// Σ f(a[i], b[i]) over equal-length slices, in `LANES` independent
/// partial sums: a single running float sum is one long dependency chain
/// the compiler may not reorder, eight are eight vector lanes. (The sum's
/// rounding differs from the sequential one in the last bits only.)
#[inline(always)]
fn sum_lanes(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f32 {
    const LANES: usize = 8;
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f32; LANES];
    let (ac, bc) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let (ar, br) = (ac.remainder(), bc.remainder());
    for (x, y) in ac.zip(bc) {
        for k in 0..LANES {
            acc[k] += f(x[k], y[k]);
        }
    }
    let tail: f32 = ar.iter().zip(br).map(|(&x, &y)| f(x, y)).sum();
    acc.iter().sum::<f32>() + tail
}

/// Σ e·g and Σ g² of one Gauss–Newton step, with g = r1 − r0 the slope of
/// the linear interpolant and e = t − (r0 + f·g) the residual at fraction
/// f, in `LANES` partial sums (see `sum_lanes`).
fn gauss_newton_sums(t: &[f32], r0: &[f32], r1: &[f32], f: f32) -> (f32, f32) {
    const LANES: usize = 8;
    let n = t.len().min(r0.len()).min(r1.len());
    let (t, r0, r1) = (&t[..n], &r0[..n], &r1[..n]);
    let (mut num, mut den) = ([0.0f32; LANES], [0.0f32; LANES]);
    let whole = n / LANES * LANES;
    for ((tc, ac), bc) in t[..whole]
        .chunks_exact(LANES)
        .zip(r0[..whole].chunks_exact(LANES))
        .zip(r1[..whole].chunks_exact(LANES))
    {
        for k in 0..LANES {
            let g = bc[k] - ac[k];
            num[k] += (tc[k] - ac[k] - f * g) * g;
            den[k] += g * g;
        }
    }
    let (mut num_tail, mut den_tail) = (0.0f32, 0.0f32);
    for i in whole..n {
        let g = r1[i] - r0[i];
        num_tail += (t[i] - r0[i] - f * g) * g;
        den_tail += g * g;
    }
    (
        num.iter().sum::<f32>() + num_tail,
        den.iter().sum::<f32>() + den_tail,
    )
}

/// 1-D shift d minimising Σ (t[x] − r[x + d])² over |d| ≤ `max_shift`:
/// coarse on the decimated profiles `ct`, `cr`, then integer and sub-pixel
/// at full resolution.
pub fn shift_1d(t: &[f32], r: &[f32], ct: &[f32], cr: &[f32], max_shift: u32) -> Estimate1d {
    let n = t.len().min(r.len());
    let nothing = Estimate1d {
        shift: 0.0,
        confidence: 0.0,
    };
    let limit = (n as u32 / 4).min(MAX_SUPPORTED_SHIFT);
    let allowed = max_shift.min(limit) as i32;
    // A guard band a quarter beyond the allowed shift (where the image
    // leaves room): a die further off than the recipe allows shows up
    // there and is refused below, instead of matching a pattern period
    // inside the search (seen: dies 72 px apart on lines of a 12 px
    // period read as 60 px with confidence 0.55 under a ±64 px search).
    let max_shift = (allowed + allowed / 4).min(limit as i32);
    let m = max_shift as usize + 2;
    if n <= 2 * m + 8 || ct.len().min(cr.len()) < 8 {
        return nothing;
    }

    // Coarse: every shift of the decimated profiles (of the full-resolution
    // ones on a small image, where the decimated profiles are too short to
    // tell a pattern's period from its registration and the full search
    // costs little). Its cost curve also tells how unique the optimum is.
    let full = n <= SMALL_IMAGE;
    let (cp, crr, step) = if full {
        (t, r, 1)
    } else {
        (ct, cr, DECIMATION)
    };
    let nc = cp.len().min(crr.len());
    let mc = (max_shift as usize).div_ceil(step) + 1;
    let mc = mc.min(MAX_SEARCH).min((nc - 4) / 2);
    let coarse_range = mc..nc - mc;
    let mut costs = [f32::INFINITY; 2 * MAX_SEARCH + 1];
    let costs = &mut costs[..2 * mc + 1];
    for (i, c) in costs.iter_mut().enumerate() {
        *c = cost(cp, crr, coarse_range.clone(), i as i32 - mc as i32);
    }
    let best_i = (0..costs.len())
        .min_by(|&a, &b| costs[a].total_cmp(&costs[b]))
        .unwrap_or(mc);
    let best_coarse = costs[best_i];
    // The deepest other local minimum at least two coarse steps (8 px)
    // away (or the worst cost when there is none): as deep as the best on
    // a periodic or featureless die.
    let apart = 2 * DECIMATION / step;
    let mut rival = costs.iter().copied().fold(0.0f32, f32::max);
    for i in 0..costs.len() {
        let left = if i > 0 { costs[i - 1] } else { f32::INFINITY };
        let right = costs.get(i + 1).copied().unwrap_or(f32::INFINITY);
        if i.abs_diff(best_i) >= apart && costs[i] <= left && costs[i] <= right {
            rival = rival.min(costs[i]);
        }
    }
    // A rival minimum at twice the best cost is already unambiguous: the
    // residual there is pattern, not noise.
    let uniqueness = if rival > f32::EPSILON {
        (2.0 * (1.0 - best_coarse / rival)).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let coarse_shift = (best_i as i32 - mc as i32) * step as i32;

    // Integer search at full resolution around the coarse optimum.
    let range = m..n - m;
    let cost = |d: i32| cost(t, r, range.clone(), d);
    let span = step as i32 - 1;
    let lo = (coarse_shift - span).max(-max_shift);
    let hi = (coarse_shift + span).min(max_shift);
    let mut best = (coarse_shift.clamp(-max_shift, max_shift), f32::INFINITY);
    for d in lo..=hi {
        let c = cost(d);
        if c < best.1 {
            best = (d, c);
        }
    }
    // Standardised profiles: a cost of 0 is a perfect match, 2 is no
    // correlation at all.
    let correlation = (1.0 - best.1 / 2.0).clamp(0.0, 1.0);

    // Start from the parabola through the integer costs around the best
    // shift: starting on an integer would put Gauss–Newton on a kink of the
    // piecewise-linear interpolant, where the slope of the wrong side can
    // hold it there (seen at true shifts near ±0.5).
    let (cm, cp) = (cost(best.0 - 1), cost(best.0 + 1));
    let curvature = cm - 2.0 * best.1 + cp;
    let vertex = if curvature > f32::EPSILON {
        ((cm - cp) / (2.0 * curvature)).clamp(-0.5, 0.5)
    } else {
        0.0
    };
    // Gauss–Newton (Lucas–Kanade) refinement. For a shift d the sample
    // x + d of every integer x has the same whole part i and fraction f, so
    // one step is two dot products over slices (no per-sample floor or
    // clamp). |d| stays below `m` - 1, so `range` shifted by i and i + 1
    // stays inside `r`.
    let mut d = best.0 as f32 + vertex;
    let limit = (m - 1) as f32;
    for _ in 0..8 {
        let whole = d.floor();
        let f = d - whole;
        let off = (range.start as i32 + whole as i32) as usize;
        let len = range.len();
        let (r0, r1) = (&r[off..off + len], &r[off + 1..off + 1 + len]);
        let (num, den) = gauss_newton_sums(&t[range.clone()], r0, r1, f);
        if den <= f32::EPSILON {
            break;
        }
        let step = (num / den).clamp(-0.5, 0.5);
        d = (d + step).clamp(-limit, limit);
        if step.abs() < 1e-3 {
            break;
        }
    }
    // The best whole shift at or beyond the allowed shift (the guard
    // band, or the edge of the search where there is none): the true
    // optimum may lie beyond, so the figure is not to be trusted (seen: a
    // relative shift of 65 px read as 64 with a confidence of 0.85).
    let inside = best.0.abs() < allowed;
    Estimate1d {
        shift: d.clamp(-(max_shift as f32), max_shift as f32),
        confidence: if inside {
            correlation * uniqueness
        } else {
            0.0
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::sim::pattern::render_die;

    fn aligned(size: u32, shift: (f64, f64), noise: f32) -> Alignment {
        let n = (size * size) as usize;
        let (mut t, mut r) = (vec![0u8; n], vec![0u8; n]);
        render_die(&mut t, size, size, (0.0, 0.0), noise, 1);
        render_die(&mut r, size, size, shift, noise, 2);
        let (mut pt, mut pr) = (Profiles::new(size, size), Profiles::new(size, size));
        pt.compute(&t);
        pr.compute(&r);
        align(&pt, &pr, DEFAULT_MAX_SHIFT)
    }

    #[test]
    fn recovers_sub_pixel_shifts_of_the_die_pattern() {
        for &(sx, sy) in &[(0.3, -0.7), (-1.4, 1.1), (2.0, 0.0), (0.05, 0.5)] {
            let a = aligned(512, (sx, sy), 2.0);
            let (dx, dy) = a.shift;
            // The estimate minimises the residual after bilinear resampling,
            // which blurs the reference; for this pattern that optimum lies
            // within 0.15 px of the rendered shift.
            assert!((dx - sx as f32).abs() < 0.15, "dx {dx} vs {sx}");
            assert!((dy - sy as f32).abs() < 0.15, "dy {dy} vs {sy}");
            assert!(a.confidence > 0.5, "confidence {}", a.confidence);
        }
    }

    #[test]
    fn recovers_stage_repeat_errors_of_tens_of_pixels() {
        for &(sx, sy) in &[(37.3, -52.6), (-63.2, 12.4), (-20.5, 61.7), (5.0, -40.0)] {
            for noise in [3.0, 12.0] {
                let a = aligned(1024, (sx, sy), noise);
                let (dx, dy) = a.shift;
                assert!((dx - sx as f32).abs() < 0.2, "dx {dx} vs {sx}, σ {noise}");
                assert!((dy - sy as f32).abs() < 0.2, "dy {dy} vs {sy}, σ {noise}");
                assert!(a.confidence > 0.5, "confidence {} σ {noise}", a.confidence);
            }
        }
    }

    fn confidence_of(t: &[u8], r: &[u8], size: u32) -> f32 {
        let (mut pt, mut pr) = (Profiles::new(size, size), Profiles::new(size, size));
        pt.compute(t);
        pr.compute(r);
        align(&pt, &pr, DEFAULT_MAX_SHIFT).confidence
    }

    /// Seeded noise of about `sigma` around `level` (sum of uniforms).
    fn noisy_flat(size: u32, level: f32, sigma: f32, seed: u64) -> Vec<u8> {
        let mut z = seed;
        (0..size * size)
            .map(|_| {
                let mut s = 0.0;
                for _ in 0..4 {
                    z = crate::machine::sim::pattern::mix(z.wrapping_add(0x9E37_79B9_7F4A_7C15));
                    s += (z >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                }
                (level + s * sigma * 1.73).clamp(0.0, 255.0) as u8
            })
            .collect()
    }

    #[test]
    fn a_shift_beyond_the_search_has_no_confidence() {
        // 65 px apart, searched over ±64: the best whole shift is the edge
        // (64), which refines to a plausible 64 px with a good match.
        let a = aligned(1024, (65.0, 3.0), 3.0);
        assert!(a.confidence == 0.0, "{a:?}");
        // Inside the search, the same die aligns with confidence.
        let a = aligned(1024, (60.0, 3.0), 3.0);
        assert!(a.confidence > 0.5, "{a:?}");
    }

    #[test]
    fn a_featureless_pair_has_no_confidence() {
        let size = 512;
        let (t, r) = (
            noisy_flat(size, 100.0, 4.0, 1),
            noisy_flat(size, 100.0, 4.0, 2),
        );
        let c = confidence_of(&t, &r, size);
        assert!(c < 0.2, "confidence {c}");
        let flat = vec![90u8; (size * size) as usize];
        assert_eq!(confidence_of(&flat, &flat, size), 0.0);
    }

    fn bands(v: [(f32, f32); BANDS]) -> [Estimate1d; BANDS] {
        v.map(|(shift, confidence)| Estimate1d { shift, confidence })
    }

    /// Band estimates read off the independent generator's dies (quadrants
    /// of lines along one axis, and a contact array): the bands that see
    /// the registration win over a minority, or agree weakly and together
    /// are trusted. Under the earlier rule (median of all bands, a
    /// majority within a pixel) every one of these came out 0.
    #[test]
    fn bands_vote_with_their_confidence() {
        // Two bands over a contact array pick a period 50 px off.
        let (s, c) = combine_bands(&bands([
            (18.04, 0.29),
            (18.26, 1.0),
            (67.82, 0.33),
            (67.84, 0.2),
        ]));
        assert!((s - 18.2).abs() < 0.1 && c > 0.4, "{s} {c}");
        // Three bands agree, each weakly.
        let (s, c) = combine_bands(&bands([
            (26.07, 0.29),
            (26.06, 0.25),
            (26.05, 0.30),
            (75.5, 0.02),
        ]));
        assert!((s - 26.06).abs() < 0.02 && c > 0.3, "{s} {c}");
        // Evidence split evenly between two shifts: not to be trusted.
        let (_, c) = combine_bands(&bands([(10.0, 0.9), (10.2, 0.9), (40.0, 0.9), (40.1, 0.9)]));
        assert!(c < 0.05, "{c}");
        // No evidence anywhere.
        let (_, c) = combine_bands(&bands([(3.0, 0.0), (9.0, 0.0), (-4.0, 0.0), (1.0, 0.0)]));
        assert_eq!(c, 0.0);
        // Dies further apart than the search (read off the same generator
        // at ±64 px per die with a ±64 px search): one band moderately
        // sure of a wrong shift among blind ones, or two agreeing weakly
        // against two blind ones, must not be trusted (0.3 is the
        // recipe's default minimum).
        let (_, c) = combine_bands(&bands([
            (-47.8, 0.04),
            (-13.5, 0.5),
            (-35.4, 0.04),
            (45.5, 0.007),
        ]));
        assert!(c < 0.3, "{c}");
        let (_, c) = combine_bands(&bands([
            (-10.7, 0.2),
            (-10.4, 0.45),
            (42.3, 0.04),
            (42.3, 0.06),
        ]));
        assert!(c < 0.3, "{c}");
        // Many weak bands agreeing are not strong evidence together.
        let (_, c) = combine_bands(&bands([(5.0, 0.085); BANDS]));
        assert!(c < 0.3, "{c}");
        // A NaN confidence is no evidence.
        let (_, c) = combine_bands(&bands([(5.0, f32::NAN); BANDS]));
        assert_eq!(c, 0.0);
    }

    #[test]
    fn a_periodic_pattern_without_landmarks_has_no_confidence() {
        // Vertical and horizontal stripes of period 20 px: shifts of 20, 40
        // and 60 px match as well as the true one.
        let size = 512u32;
        let stripes = |shift: usize| -> Vec<u8> {
            (0..size as usize * size as usize)
                .map(|i| {
                    let (x, y) = (i % size as usize + shift, i / size as usize + shift);
                    if (x % 20 < 8) ^ (y % 20 < 8) {
                        180
                    } else {
                        60
                    }
                })
                .collect()
        };
        let c = confidence_of(&stripes(0), &stripes(3), size);
        assert!(c < 0.2, "confidence {c}");
    }
}
