//! Robust noise estimate of a die's difference image, for thresholds set
//! as k·σ. The median absolute difference between T and its aligned,
//! brightness-mapped reference on a subsample of rows, read from a
//! fixed-size histogram (quarter grey-level bins): pattern edges and
//! defects cover far less than half the pixels, so they do not move the
//! median, and nothing is allocated per die.

use super::normalise::{LevelMap, LEVEL_BIAS};
use super::simd::{dispatch, Isa};

/// Histogram bins per grey level.
const BINS_PER_GREY: usize = 4;
const BINS: usize = 256 * BINS_PER_GREY;
/// Every this many rows is sampled (64 rows of a 2048² die).
pub const NOISE_ROW_STEP: usize = 32;
/// The quantile of |difference| read: the lower quartile rather than the
/// median, because pattern edges (a fifth of the pixels of a die of fine
/// lines, each with a fraction of a pixel of residual misregistration)
/// push the median up by a fifth; the quartile moves half as much.
const QUANTILE: f64 = 0.25;
/// σ of a normal distribution over the `QUANTILE` of its absolute value.
const QUANTILE_TO_SIGMA: f32 = 1.0 / 0.318_64;
/// Pixels whose bins are computed at once (a stack buffer).
const CHUNK: usize = 256;
/// Histogram copies filled in turn: consecutive pixels mostly fall in the
/// same few bins, and incrementing one counter back to back waits for the
/// previous store each time; four copies break that chain (summed when
/// read).
const COPIES: usize = 4;

pub struct NoiseEstimator {
    /// `COPIES` histograms of `BINS`, one after the other.
    hist: Vec<u32>,
    total: u64,
    isa: Isa,
}

impl Default for NoiseEstimator {
    fn default() -> Self {
        Self::new()
    }
}

impl NoiseEstimator {
    pub fn new() -> Self {
        Self {
            hist: vec![0; BINS * COPIES],
            total: 0,
            isa: Isa::detect(),
        }
    }

    pub fn reset(&mut self) {
        self.hist.fill(0);
        self.total = 0;
    }

    /// Adds |t − map(bilinear reference)| of one row: `r` holds the four
    /// footprint rows (00, 01, 10, 11) and `weights` their 8-bit weights
    /// (summing to 256), as in the kernel.
    pub fn add_row(&mut self, t: &[u8], r: [&[u8]; 4], weights: [u16; 4], map: LevelMap) {
        let n = t.len();
        let mut bins = [0u16; CHUNK];
        let (hist, rest) = self.hist.split_at_mut(BINS);
        let (h1, rest) = rest.split_at_mut(BINS);
        let (h2, h3) = rest.split_at_mut(BINS);
        let mut start = 0;
        while start < n {
            let end = (start + CHUNK).min(n);
            let m = end - start;
            let rows = [
                &r[0][start..end],
                &r[1][start..end],
                &r[2][start..end],
                &r[3][start..end],
            ];
            difference_bins(self.isa, &t[start..end], rows, weights, map, &mut bins[..m]);
            let mut quads = bins[..m].chunks_exact(COPIES);
            for q in &mut quads {
                hist[q[0] as usize] += 1;
                h1[q[1] as usize] += 1;
                h2[q[2] as usize] += 1;
                h3[q[3] as usize] += 1;
            }
            for &b in quads.remainder() {
                hist[b as usize] += 1;
            }
            start = end;
        }
        self.total += n as u64;
    }

    /// σ of the difference image (the lower quartile of |difference| over
    /// that of a normal distribution's), grey levels; 0 with no samples.
    pub fn sigma_of_difference(&self) -> f32 {
        if self.total == 0 {
            return 0.0;
        }
        let half = ((self.total as f64 * QUANTILE).ceil() as u64).max(1);
        let mut below = 0u64;
        for bin in 0..BINS {
            let count: u64 = (0..COPIES).map(|k| self.hist[k * BINS + bin] as u64).sum();
            if below + count >= half {
                // Interpolate within the bin.
                let fraction = (half - below) as f32 / count.max(1) as f32;
                let median = (bin as f32 + fraction) / BINS_PER_GREY as f32;
                return median * QUANTILE_TO_SIGMA;
            }
            below += count;
        }
        255.0 * QUANTILE_TO_SIGMA
    }
}

dispatch!(
    /// See `difference_bins_body`.
    difference_bins => difference_bins_body(
        t: &[u8], r: [&[u8]; 4], weights: [u16; 4], map: LevelMap, out: &mut [u16]
    ) -> ()
);

/// The histogram bin (quarter grey levels, at most `BINS` − 1) of
/// |t − map(bilinear reference)| of each pixel; equal-length slices, so
/// the loop vectorises.
#[inline(always)]
fn difference_bins_body(
    t: &[u8],
    r: [&[u8]; 4],
    weights: [u16; 4],
    map: LevelMap,
    out: &mut [u16],
) {
    let n = out.len();
    let (t, r0, r1, r2, r3) = (&t[..n], &r[0][..n], &r[1][..n], &r[2][..n], &r[3][..n]);
    let w = weights.map(|v| v as i32);
    let gain = map.gain_q7 as i32;
    // Offset in Q15 (reference Q8 × gain Q7).
    let offset = (map.offset_q7_biased as i32 - LEVEL_BIAS as i32) << 8;
    for i in 0..n {
        let interp =
            r0[i] as i32 * w[0] + r1[i] as i32 * w[1] + r2[i] as i32 * w[2] + r3[i] as i32 * w[3];
        let mapped = interp * gain + offset;
        let diff = ((t[i] as i32) << 15) - mapped;
        // Q15 → quarter grey levels.
        out[i] = (diff.unsigned_abs() >> 13).min(BINS as u32 - 1) as u16;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::sim::pattern::render_die;

    /// Both compiled copies give the same bins as the formula, for rows
    /// around the chunk and vector widths and mappings at their limits.
    #[test]
    fn both_instruction_sets_give_the_formulas_bins() {
        let mut z = 7u64;
        let mut byte = || {
            z = crate::machine::sim::pattern::mix(z.wrapping_add(0x9E37_79B9_7F4A_7C15));
            (z >> 56) as u8
        };
        for n in [1usize, 7, 31, 33, 255, 256, 257] {
            let t: Vec<u8> = (0..n).map(|_| byte()).collect();
            let r: Vec<Vec<u8>> = (0..4).map(|_| (0..n).map(|_| byte()).collect()).collect();
            let rows = [&r[0][..], &r[1][..], &r[2][..], &r[3][..]];
            for (weights, map) in [
                ([256, 0, 0, 0], LevelMap::default()),
                ([64, 64, 64, 64], LevelMap::new(1.25, 40.0)),
                ([10, 200, 30, 16], LevelMap::new(0.8, -40.0)),
            ] {
                let want: Vec<u16> = (0..n)
                    .map(|i| {
                        let interp: f64 = (0..4)
                            .map(|k| r[k][i] as f64 * weights[k] as f64 / 256.0)
                            .sum();
                        let mapped = interp * map.gain_q7 as f64 / 128.0
                            + (map.offset_q7_biased as f64 - LEVEL_BIAS as f64) / 128.0;
                        (((t[i] as f64 - mapped).abs() * 4.0).floor() as u16).min(BINS as u16 - 1)
                    })
                    .collect();
                for isa in [Isa::detect(), Isa::baseline()] {
                    let mut out = vec![0u16; n];
                    difference_bins(isa, &t, rows, weights, map, &mut out);
                    assert_eq!(out, want, "n {n}, {}", isa.name());
                }
            }
        }
    }

    #[test]
    fn estimates_the_noise_of_two_noisy_dies() {
        let size = 512u32;
        let n = (size * size) as usize;
        let (mut t, mut r) = (vec![0u8; n], vec![0u8; n]);
        for sigma in [3.0f32, 8.0, 12.0] {
            render_die(&mut t, size, size, (0.0, 0.0), sigma, 11);
            render_die(&mut r, size, size, (0.0, 0.0), sigma, 12);
            let mut e = NoiseEstimator::new();
            for y in (0..size as usize - 1).step_by(4) {
                let row = |img: &[u8], dy: usize| img[(y + dy) * 512..][..511].to_vec();
                let (a, b) = (row(&r, 0), row(&r, 1));
                e.add_row(
                    &row(&t, 0),
                    [&a, &a, &b, &b],
                    [256, 0, 0, 0],
                    LevelMap::default(),
                );
            }
            // Two independent images: the difference has σ·√2.
            let image_sigma = e.sigma_of_difference() / 2f32.sqrt();
            assert!(
                (image_sigma - sigma).abs() < 0.15 * sigma,
                "{image_sigma} vs {sigma}"
            );
        }
    }
}
