//! Teaching a golden die: the per-pixel median of N dies imaged on the
//! tool, each aligned to the first. A real tool never has a noise-free
//! render of its die; it learns one from dies it images, and the median
//! outvotes a defect present on fewer than half of them.
//!
//! Runs once per recipe, off the hot path: plain `Vec` code.

use super::align::{estimate_shift, Profiles};
use anyhow::{bail, Result};

/// Fewest dies a golden may be taught from: with three, a defect on one of
/// them is outvoted at every pixel.
pub const MIN_TEACH_DIES: usize = 3;
/// Dies a golden is taught from when nobody says how many (`teach`, the
/// window's Teach, a run that needs one).
pub const DEFAULT_TEACH_DIES: usize = 5;
/// Most dies: the median is taken on the stack, per pixel.
pub const MAX_TEACH_DIES: usize = 31;

/// A golden die taught from imaged dies.
#[derive(Debug, Clone, PartialEq)]
pub struct TaughtGolden {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
    /// How many dies it was taught from.
    pub dies: usize,
    /// Each die's shift against the first (the first is (0, 0)), pixels.
    pub shifts: Vec<(f32, f32)>,
    /// Pixels that fewer than half of the dies covered after alignment
    /// (near the border): taken from the first die alone.
    pub thinly_covered_px: u64,
}

/// Teaches a golden die from `frames` (all `width`×`height`, 8-bit grey).
/// Each frame is aligned to the first with the detector's own aligner and
/// resampled bilinearly; the golden is the median of the samples that fall
/// inside each die.
pub fn teach_golden(frames: &[&[u8]], width: u32, height: u32) -> Result<TaughtGolden> {
    let n = frames.len();
    if !(MIN_TEACH_DIES..=MAX_TEACH_DIES).contains(&n) {
        bail!("a golden die is taught from {MIN_TEACH_DIES} to {MAX_TEACH_DIES} dies, got {n}");
    }
    let (w, h) = (width as usize, height as usize);
    if let Some(k) = frames.iter().position(|f| f.len() != w * h) {
        bail!(
            "die image {} of {n} has {} pixels, expected {width}×{height}",
            k + 1,
            frames[k].len()
        );
    }
    let profiles: Vec<Profiles> = frames
        .iter()
        .map(|f| {
            let mut p = Profiles::new(width, height);
            p.compute(f);
            p
        })
        .collect();
    // estimate_shift(test, reference) = (dx, dy) with
    // reference(x + dx, y + dy) ≈ test(x, y): the first die is the test.
    let shifts: Vec<(f32, f32)> = profiles
        .iter()
        .enumerate()
        .map(|(k, p)| {
            if k == 0 {
                (0.0, 0.0)
            } else {
                estimate_shift(&profiles[0], p)
            }
        })
        .collect();
    let mut pixels = vec![0u8; w * h];
    let mut thinly_covered_px = 0u64;
    let mut samples = [0u8; MAX_TEACH_DIES];
    for y in 0..h {
        for x in 0..w {
            let mut m = 0;
            for (f, &(dx, dy)) in frames.iter().zip(&shifts) {
                if let Some(v) = bilinear(f, w, h, x as f32 + dx, y as f32 + dy) {
                    samples[m] = v;
                    m += 1;
                }
            }
            pixels[y * w + x] = if m * 2 > n {
                let s = &mut samples[..m];
                s.sort_unstable();
                s[m / 2]
            } else {
                thinly_covered_px += 1;
                frames[0][y * w + x]
            };
        }
    }
    Ok(TaughtGolden {
        width,
        height,
        pixels,
        dies: n,
        shifts,
        thinly_covered_px,
    })
}

/// The image at fractional (x, y), or `None` outside it.
fn bilinear(img: &[u8], w: usize, h: usize, x: f32, y: f32) -> Option<u8> {
    if x < 0.0 || y < 0.0 || x > (w - 1) as f32 || y > (h - 1) as f32 {
        return None;
    }
    let (x0, y0) = (x.floor() as usize, y.floor() as usize);
    let (x1, y1) = ((x0 + 1).min(w - 1), (y0 + 1).min(h - 1));
    let (fx, fy) = (x - x0 as f32, y - y0 as f32);
    let p = |x: usize, y: usize| img[y * w + x] as f32;
    let v = p(x0, y0) * (1.0 - fx) * (1.0 - fy)
        + p(x1, y0) * fx * (1.0 - fy)
        + p(x0, y1) * (1.0 - fx) * fy
        + p(x1, y1) * fx * fy;
    Some(v.round().clamp(0.0, 255.0) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::sim::pattern::render_die;

    const S: u32 = 256;

    fn die(shift: (f64, f64), noise: f32, seed: u64) -> Vec<u8> {
        let mut img = vec![0u8; (S * S) as usize];
        render_die(&mut img, S, S, shift, noise, seed);
        img
    }

    fn mean_abs_diff(a: &[u8], b: &[u8], margin: usize) -> f64 {
        let w = S as usize;
        let (mut sum, mut n) = (0u64, 0u64);
        for y in margin..w - margin {
            for x in margin..w - margin {
                sum += (a[y * w + x] as i32 - b[y * w + x] as i32).unsigned_abs() as u64;
                n += 1;
            }
        }
        sum as f64 / n as f64
    }

    #[test]
    fn the_median_of_shifted_noisy_dies_outvotes_a_defect_and_the_noise() {
        let clean = die((0.0, 0.0), 0.0, 0);
        let mut dies = [
            die((0.0, 0.0), 6.0, 11),
            die((1.6, -0.8), 6.0, 12),
            die((-2.3, 1.4), 6.0, 13),
            die((0.7, 2.1), 6.0, 14),
            die((-1.2, -1.9), 6.0, 15),
        ];
        // A bright defect on the first die (the one the others align to).
        let w = S as usize;
        for y in 100..110 {
            for x in 120..130 {
                dies[0][y * w + x] = 255;
            }
        }
        let frames: Vec<&[u8]> = dies.iter().map(|d| d.as_slice()).collect();
        let g = teach_golden(&frames, S, S).unwrap();
        assert_eq!(g.dies, 5);
        for (k, &(dx, dy)) in g.shifts.iter().enumerate().skip(1) {
            assert!(dx.abs() > 0.3 || dy.abs() > 0.3, "die {k} shift found");
        }
        // The defect is gone: the golden there is the pattern, not 255.
        let defect_area: f64 = (100..110)
            .flat_map(|y| (120..130).map(move |x| (x, y)))
            .map(|(x, y)| (g.pixels[y * w + x] as i32 - clean[y * w + x] as i32).abs() as f64)
            .sum::<f64>()
            / 100.0;
        assert!(
            defect_area < 12.0,
            "defect outvoted: {defect_area:.1} grey levels off"
        );
        // Less noisy than any one die against the clean pattern.
        let golden_err = mean_abs_diff(&g.pixels, &clean, 8);
        let one_die_err = mean_abs_diff(&dies[0], &clean, 8);
        assert!(
            golden_err < one_die_err * 0.8,
            "golden {golden_err:.2} vs one die {one_die_err:.2}"
        );
    }

    #[test]
    fn too_few_dies_or_a_wrong_size_is_an_error_naming_it() {
        let a = die((0.0, 0.0), 2.0, 1);
        let e = teach_golden(&[&a, &a], S, S).unwrap_err().to_string();
        assert!(e.contains("got 2"), "{e}");
        let small = vec![0u8; 10];
        let e = teach_golden(&[&a, &a, &small], S, S)
            .unwrap_err()
            .to_string();
        assert!(e.contains("die image 3 of 3"), "{e}");
    }
}
