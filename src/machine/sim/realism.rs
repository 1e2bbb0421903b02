//! How hard the simulated camera makes the detector's job.
//!
//! `SimRealism::classic()` is the original simulator (8 pre-rendered noise
//! variants, σ = 2, sub-pixel misalignment, a noise-free golden die): the
//! default while the detector only aligns ±8 px. `SimRealism::realistic()`
//! images every exposure afresh the way a real tool would:
//!
//! - **Stage repeat error** of up to ±`stage_repeat_px` (integer part plus
//!   a quarter-pixel phase), seeded per die; `SimCamera::shift_of` is the
//!   exact ground truth. The die content moves; what enters the frame from
//!   outside is the neighbouring die (the layout tiles at the die pitch).
//! - **Gain drift** ±`gain_drift` and **offset** ±`offset_drift` per die.
//! - **Shot noise** (variance `shot_noise_per_grey` per grey level of
//!   signal) plus **read noise** (`read_noise`), new for every exposure.
//! - **Nuisance** that is real but not a defect, different on every die:
//!   metal grain (2×2 px speckle of ±`grain` grey levels on lines, vias
//!   and pads) and line-edge roughness (edges displaced by up to
//!   ±`edge_roughness_px`, varying every 8 px along the edge).
//! - **A taught golden die**: the per-pixel median of `golden_dies`
//!   captured dies, each moved back by its stage shift rounded to whole
//!   pixels (an ideal coarse alignment), so it keeps the sub-pixel
//!   residual, the gain differences and a fraction of the noise of real
//!   images; never the clean render.
//!
//! Noise is drawn without allocation: each group of 4 pixels hashes
//! (exposure seed, pixel index) with SplitMix64's finaliser (a bijective,
//! full-avalanche mix, so neighbouring pixels and different exposures get
//! unrelated bits) and takes four 16-bit indices into a table of 65 536
//! standard-normal samples drawn once by Box–Muller. Counter-based, so two
//! exposures are independent at every relative alignment (a shared noise
//! tile read at random offsets is not: two dies whose offsets differ by
//! their relative shift would carry the same noise after alignment). The
//! price: values are quantised to 65 536 levels and the tails stop near
//! ±4.3σ (a true Gaussian has 1.7·10⁻⁵ of its mass beyond).

use super::defects::Rng;
use super::pattern::{mix, render_die, VLINE};

/// The simulator's imaging model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SimRealism {
    /// The original simulator: 8 pre-rendered variants with sensor noise of
    /// `noise_sigma` grey levels reused across dies, sub-pixel misalignment
    /// only, a slow 4 % illumination drift, the noise-free golden die.
    Classic { noise_sigma: f32 },
    /// Every exposure imaged afresh (see the module documentation).
    Realistic(RealisticImaging),
}

impl SimRealism {
    /// Exactly the original simulator (noise σ = 2).
    pub fn classic() -> Self {
        Self::Classic { noise_sigma: 2.0 }
    }

    /// Real-tool imaging with the default figures of `RealisticImaging`.
    pub fn realistic() -> Self {
        Self::Realistic(RealisticImaging::default())
    }
}

impl Default for SimRealism {
    /// Classic until the detector aligns ±64 px (issue 11); the integrator
    /// flips this when it lands.
    fn default() -> Self {
        Self::classic()
    }
}

/// Figures of the realistic imaging model. Grey levels are 8-bit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RealisticImaging {
    /// Read noise σ, grey levels.
    pub read_noise: f32,
    /// Shot noise: variance added per grey level of signal (1 / electrons
    /// per grey level). 0 turns shot noise off.
    pub shot_noise_per_grey: f32,
    /// Per-die gain is 1 ± up to this fraction.
    pub gain_drift: f32,
    /// Per-die offset is ± up to this many grey levels.
    pub offset_drift: f32,
    /// Per-die stage repeat error, ± pixels in x and y.
    pub stage_repeat_px: f32,
    /// Metal grain amplitude, ± grey levels (uniform, so σ = grain / √3).
    pub grain: f32,
    /// Line-edge roughness: edges displaced by up to ± this many pixels.
    pub edge_roughness_px: f32,
    /// Dies imaged to teach the golden die.
    pub golden_dies: usize,
}

impl Default for RealisticImaging {
    fn default() -> Self {
        Self {
            read_noise: 2.5,
            // σ ≈ 4.7 grey levels at 200, ≈ 3.3 at 60.
            shot_noise_per_grey: 0.08,
            gain_drift: 0.10,
            offset_drift: 15.0,
            stage_repeat_px: 48.0,
            // ≤ 1.5 σ of the read noise.
            grain: 3.5,
            edge_roughness_px: 0.15,
            golden_dies: 5,
        }
    }
}

/// Sub-pixel phases rendered per axis: shifts are whole pixels plus k/4.
const PHASES: usize = 4;
/// Grey level from which a clean pixel is metal (lines, vias, pads).
const METAL_FROM: u8 = VLINE as u8;
const GAUSS_TABLE: usize = 1 << 16;

/// How one die is imaged: the same every time the die is imaged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DieImaging {
    /// Where the die's content lands in the frame, pixels (ground truth).
    pub shift: (f32, f32),
    pub gain: f32,
    pub offset: f32,
}

/// The realistic camera's pre-rendered state and per-frame scratch.
pub(super) struct RealisticCamera {
    pub cfg: RealisticImaging,
    width: usize,
    height: usize,
    seed: u64,
    /// The clean die at each sub-pixel phase, `[ky * PHASES + kx]`.
    phases: Vec<Vec<u8>>,
    gauss: Box<[f32]>,
    /// Per-column edge displacement of horizontal edges (this frame).
    column_roughness: Vec<f32>,
    exposures: u64,
}

impl RealisticCamera {
    /// Renders the 16 phases of the clean die (allocates: ~16 frames).
    pub fn new(cfg: RealisticImaging, width: u32, height: u32, seed: u64) -> Self {
        let (w, h) = (width as usize, height as usize);
        let phases = (0..PHASES * PHASES)
            .map(|k| {
                let mut img = vec![0u8; w * h];
                let shift = (
                    (k % PHASES) as f64 / PHASES as f64,
                    (k / PHASES) as f64 / PHASES as f64,
                );
                render_die(&mut img, width, height, shift, 0.0, 0);
                img
            })
            .collect();
        Self {
            cfg,
            width: w,
            height: h,
            seed,
            phases,
            gauss: gaussian_table(seed),
            column_roughness: vec![0.0; w],
            exposures: 0,
        }
    }

    /// The stage error, gain and offset of die `die_index`.
    pub fn imaging_of(&self, die_index: u32) -> DieImaging {
        let mut rng = Rng::new(mix(self.seed ^ 0x5EA1_1571 ^ mix(die_index as u64 + 1)));
        let s = self.cfg.stage_repeat_px.floor().max(0.0) as f64;
        let mut axis = || {
            let whole = rng.range(-s, s).floor();
            let phase = (rng.range(0.0, PHASES as f64).floor()) / PHASES as f64;
            (whole + phase) as f32
        };
        let shift = (axis(), axis());
        let g = self.cfg.gain_drift as f64;
        let o = self.cfg.offset_drift as f64;
        DieImaging {
            shift,
            gain: rng.range(1.0 - g, 1.0 + g) as f32,
            offset: rng.range(-o, o) as f32,
        }
    }

    /// Images die `die_index` into `out` (clean layout, nuisance, then the
    /// defects, then gain, offset and noise). Never allocates.
    pub fn render(&mut self, die_index: u32, defects: &[super::GtDefect], out: &mut [u8]) {
        let (w, h) = (self.width, self.height);
        assert_eq!(out.len(), w * h);
        let im = self.imaging_of(die_index);
        self.exposures += 1;
        let die_seed = mix(self.seed ^ mix(die_index as u64 + 0x1000));
        let exposure_seed = mix(die_seed ^ mix(self.exposures));
        let (ix, iy) = (im.shift.0.floor(), im.shift.1.floor());
        let kx = ((im.shift.0 - ix) * PHASES as f32).round() as usize % PHASES;
        let ky = ((im.shift.1 - iy) * PHASES as f32).round() as usize % PHASES;
        let tile = &self.phases[ky * PHASES + kx];
        let amp = self.cfg.edge_roughness_px;
        let roughness = |key: u64| (unit(mix(die_seed ^ key)) * amp) * 0.5;
        for (x, r) in self.column_roughness.iter_mut().enumerate() {
            *r = roughness((0xC0 << 32) | (x as u64 >> 3));
        }
        let grain = self.cfg.grain;
        let grain_seed = mix(die_seed ^ 0x62A1);
        let (ix, iy) = (ix as i64, iy as i64);
        for y in 0..h {
            let ty = (y as i64 - iy).rem_euclid(h as i64) as usize;
            let row = &tile[ty * w..][..w];
            let up = &tile[(ty + h - 1) % h * w..][..w];
            let down = &tile[(ty + 1) % h * w..][..w];
            // Displacement of vertical edges, changing every 8 rows.
            let row_roughness = roughness((0xA0 << 32) | (y as u64 >> 3));
            let out_row = &mut out[y * w..][..w];
            let mut tx = (-ix).rem_euclid(w as i64) as usize;
            for (x, px) in out_row.iter_mut().enumerate() {
                let l = row[if tx == 0 { w - 1 } else { tx - 1 }];
                let r = row[if tx + 1 == w { 0 } else { tx + 1 }];
                let a = row[tx];
                // A(p − δ) ≈ A(p) − δ·A′(p), central differences.
                let mut v = a as f32
                    + row_roughness * (l as f32 - r as f32)
                    + self.column_roughness[x] * (up[tx] as f32 - down[tx] as f32);
                if a >= METAL_FROM {
                    let cell = ((y as u64 >> 1) << 32) | (x as u64 >> 1);
                    v += unit(mix(grain_seed ^ cell)) * grain;
                }
                *px = v.round().clamp(0.0, 255.0) as u8;
                tx += 1;
                if tx == w {
                    tx = 0;
                }
            }
        }
        for d in defects {
            d.paint(out, w as u32, h as u32, im.shift);
        }
        // Expected signal and noise σ per clean grey level, this die.
        let mut mean = [0f32; 256];
        let mut sigma = [0f32; 256];
        let read2 = self.cfg.read_noise * self.cfg.read_noise;
        for v in 0..256 {
            let s = im.gain * v as f32 + im.offset;
            mean[v] = s;
            sigma[v] = (read2 + self.cfg.shot_noise_per_grey * s.max(0.0)).sqrt();
        }
        for (k, group) in out.chunks_mut(4).enumerate() {
            let bits =
                mix(exposure_seed.wrapping_add((k as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
            for (j, px) in group.iter_mut().enumerate() {
                let z = self.gauss[(bits >> (16 * j)) as usize & (GAUSS_TABLE - 1)];
                let v = *px as usize;
                *px = (mean[v] + z * sigma[v]).round().clamp(0.0, 255.0) as u8;
            }
        }
    }

    /// A golden die taught from imaged dies: the per-pixel median of
    /// `golden_dies` dies (defect-free ones first), each moved back by its
    /// stage shift rounded to whole pixels. Allocates (done once).
    pub fn teach_golden(&mut self, wafer: &super::SimWafer) -> Vec<u8> {
        let (w, h) = (self.width, self.height);
        let n = self.cfg.golden_dies.max(1);
        let mut dies: Vec<u32> = wafer
            .sites
            .iter()
            .map(|s| s.index)
            .filter(|&i| wafer.defects_of(i).is_empty())
            .take(n)
            .collect();
        // Too few clean dies: the median outvotes a defect on one of them.
        dies.extend(wafer.sites.iter().map(|s| s.index).take(n - dies.len()));
        let mut frame = vec![0u8; w * h];
        let mut aligned: Vec<Vec<u8>> = Vec::with_capacity(dies.len());
        for &die in &dies {
            self.render(die, wafer.defects_of(die), &mut frame);
            let s = self.imaging_of(die).shift;
            let (sx, sy) = (s.0.round() as i64, s.1.round() as i64);
            let mut back = vec![0u8; w * h];
            for y in 0..h {
                let fy = (y as i64 + sy).clamp(0, h as i64 - 1) as usize;
                for x in 0..w {
                    let fx = (x as i64 + sx).clamp(0, w as i64 - 1) as usize;
                    back[y * w + x] = frame[fy * w + fx];
                }
            }
            aligned.push(back);
        }
        let mut values = vec![0u8; aligned.len()];
        (0..w * h)
            .map(|i| {
                for (v, img) in values.iter_mut().zip(&aligned) {
                    *v = img[i];
                }
                values.sort_unstable();
                values[values.len() / 2]
            })
            .collect()
    }
}

/// Uniform in [−1, 1) from 24 hash bits.
#[inline]
fn unit(bits: u64) -> f32 {
    (bits >> 40) as f32 / (1u64 << 23) as f32 - 1.0
}

/// 65 536 standard-normal samples (Box–Muller), rescaled to mean 0 and
/// variance 1 exactly so the noise σ is what the figures say.
fn gaussian_table(seed: u64) -> Box<[f32]> {
    let mut rng = Rng::new(mix(seed ^ 0x6A55));
    let mut t: Vec<f64> = Vec::with_capacity(GAUSS_TABLE);
    while t.len() < GAUSS_TABLE {
        let u1 = rng.range(f64::MIN_POSITIVE, 1.0);
        let u2 = rng.range(0.0, 1.0);
        let r = (-2.0 * u1.ln()).sqrt();
        let a = std::f64::consts::TAU * u2;
        t.push(r * a.cos());
        t.push(r * a.sin());
    }
    let n = t.len() as f64;
    let mean = t.iter().sum::<f64>() / n;
    let sd = (t.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
    t.iter().map(|v| ((v - mean) / sd) as f32).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::sim::SimWafer;
    use crate::machine::{Notch, WaferGeometry};

    const N: u32 = 256;

    fn wafer() -> SimWafer {
        let g = WaferGeometry {
            diameter_mm: 100.0,
            die_pitch_um: (20_000.0, 20_000.0),
            die_size_um: (19_000.0, 19_000.0),
            edge_exclusion_mm: 2.0,
            notch: Notch::Down,
        };
        SimWafer::new(g, crate::hot::FrameGeometry::gray8(N, N), 9)
    }

    /// Only the stage error left on: every other effect zero.
    fn stage_only() -> RealisticImaging {
        RealisticImaging {
            read_noise: 0.0,
            shot_noise_per_grey: 0.0,
            gain_drift: 0.0,
            offset_drift: 0.0,
            grain: 0.0,
            edge_roughness_px: 0.0,
            ..RealisticImaging::default()
        }
    }

    #[test]
    fn die_content_lands_where_the_stage_ground_truth_says() {
        let mut cam = RealisticCamera::new(stage_only(), N, N, 9);
        let mut img = vec![0u8; (N * N) as usize];
        let mut expected = vec![0u8; (N * N) as usize];
        let mut largest = 0f32;
        for die in 0..20 {
            let s = cam.imaging_of(die).shift;
            assert!(s.0.abs() <= 48.0 && s.1.abs() <= 48.0, "{s:?}");
            largest = largest.max(s.0.abs()).max(s.1.abs());
            cam.render(die, &[], &mut img);
            render_die(&mut expected, N, N, (s.0 as f64, s.1 as f64), 0.0, 0);
            // Inside the die's own footprint; outside it is the neighbour.
            let n = N as i64;
            for y in 0..n {
                for x in 0..n {
                    let (px, py) = (x - s.0.floor() as i64, y - s.1.floor() as i64);
                    if (1..n - 1).contains(&px) && (1..n - 1).contains(&py) {
                        let i = (y * n + x) as usize;
                        assert!(img[i].abs_diff(expected[i]) <= 1, "die {die} at {x},{y}");
                    }
                }
            }
        }
        assert!(largest > 24.0, "stage errors reach tens of pixels");
    }

    #[test]
    fn noise_is_fresh_per_exposure_and_as_large_as_specified() {
        let cfg = RealisticImaging {
            gain_drift: 0.0,
            offset_drift: 0.0,
            grain: 0.0,
            edge_roughness_px: 0.0,
            ..RealisticImaging::default()
        };
        let mut cam = RealisticCamera::new(cfg, N, N, 3);
        let (mut a, mut b) = (vec![0u8; (N * N) as usize], vec![0u8; (N * N) as usize]);
        cam.render(5, &[], &mut a);
        cam.render(5, &[], &mut b);
        assert_ne!(a, b, "a second exposure of the same die has new noise");
        // Same die, same shift: the difference is noise alone, by level.
        let mut clean = vec![0u8; (N * N) as usize];
        let s = cam.imaging_of(5).shift;
        render_die(&mut clean, N, N, (s.0 as f64, s.1 as f64), 0.0, 0);
        for level in [
            super::super::pattern::BACKGROUND as u8,
            super::super::pattern::PAD as u8,
        ] {
            let d: Vec<f64> = (0..a.len())
                .filter(|&i| clean[i] == level)
                .map(|i| a[i] as f64 - b[i] as f64)
                .collect();
            assert!(d.len() > 1000);
            let sd = (d.iter().map(|v| v * v).sum::<f64>() / d.len() as f64 / 2.0).sqrt();
            let want = (cfg.read_noise.powi(2) + cfg.shot_noise_per_grey * level as f32).sqrt();
            assert!(
                (sd - want as f64).abs() < 0.15 * want as f64,
                "{level}: {sd} vs {want}"
            );
        }
    }

    #[test]
    fn dies_differ_in_gain_offset_and_shift_within_bounds() {
        let cam = RealisticCamera::new(RealisticImaging::default(), N, N, 1);
        let all: Vec<DieImaging> = (0..200).map(|d| cam.imaging_of(d)).collect();
        assert!(all.iter().all(|i| (0.9..=1.1).contains(&i.gain)));
        assert!(all.iter().all(|i| i.offset.abs() <= 15.0));
        let (lo, hi) = all.iter().fold((f32::MAX, f32::MIN), |(lo, hi), i| {
            (lo.min(i.gain), hi.max(i.gain))
        });
        assert!(hi - lo > 0.15, "gains spread over most of ±10 %");
        assert_eq!(cam.imaging_of(7), cam.imaging_of(7), "seeded per die");
    }

    #[test]
    fn the_golden_is_taught_from_imaged_dies_not_the_clean_render() {
        let wafer = wafer();
        let mut cam = RealisticCamera::new(RealisticImaging::default(), N, N, wafer.seed);
        let golden = cam.teach_golden(&wafer);
        let mut clean = vec![0u8; (N * N) as usize];
        render_die(&mut clean, N, N, (0.0, 0.0), 0.0, 0);
        assert_ne!(golden, clean);
        // But it is the same die, aligned to within a pixel: most pixels
        // are within noise and gain of the clean render.
        let close = golden
            .iter()
            .zip(&clean)
            .filter(|(&g, &c)| g.abs_diff(c) <= 30)
            .count();
        assert!(close as f64 > 0.9 * golden.len() as f64, "{close}");
    }

    #[test]
    fn contrast_can_be_set_from_the_noise_up_and_truth_keeps_its_footprint() {
        let mut w = wafer();
        let die = (0..w.sites.len() as u32)
            .find(|&i| !w.defects_of(i).is_empty())
            .unwrap();
        let before: Vec<[f32; 4]> = w.defects_of(die).iter().map(|d| d.bbox()).collect();
        w.set_defect_contrast(1, 12.0, 12.0);
        let after: Vec<[f32; 4]> = w.defects_of(die).iter().map(|d| d.bbox()).collect();
        assert_eq!(before, after);
        // A set-contrast particle changes a flat surface by exactly ±12.
        let spot = super::super::GtDefect {
            kind: super::super::SimDefectKind::Particle,
            shape: super::super::defects::Shape::Disc {
                cx: 20.0,
                cy: 20.0,
                r: 4.0,
                value: 255.0,
            },
        }
        .with_contrast(-12.0);
        let mut img = vec![100u8; 40 * 40];
        spot.paint(&mut img, 40, 40, (0.0, 0.0));
        assert_eq!(img[20 * 40 + 20], 88);
    }
}
