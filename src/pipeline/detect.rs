//! Die-to-die defect detection.
//!
//! The die under test T is compared with both neighbours L and R, each
//! aligned to T (coarse ±`max_shift_px`, integer and sub-pixel, see
//! `align`), mapped onto T's brightness (gain and offset, see `normalise`)
//! and resampled bilinearly on the fly. A pixel is flagged when it lies
//! beyond both references on the same side (brighter than both or darker
//! than both) by more than the threshold, so a defect in one neighbour is
//! never reported in T: it differs from T only on that side. Edge dies use
//! the golden reference in place of a missing neighbour; `inspect_against`
//! compares with a single reference.
//!
//! The threshold is in grey levels, or k·σ of the die's own difference
//! image (see `noise`), where a 2×2 box of the signed difference also
//! flags: a defect a few pixels across, each pixel too close to the noise
//! to stand out alone, stands out on average.
//!
//! A die whose alignment is not trustworthy (see `Alignment::confidence`)
//! is reported as such, with no defects: comparing misaligned dies would
//! report the pattern itself.
//!
//! The per-pixel kernels work a whole row at a time over equal-length
//! slices in 16-bit fixed point, which the compiler vectorises; flagged
//! pixels (normally < 1 %) go to the sparse labeller.

use super::align::{align, Alignment, Profiles, DEFAULT_MAX_SHIFT};
use super::care::{CareAreas, CareMap, CareRule, MAX_CARE_AREAS};
use super::classify::{classify, ClassRules, Shape};
use super::label::Labeler;
use super::noise::{NoiseEstimator, NOISE_ROW_STEP};
use super::normalise::{LevelMap, LevelStats, BLOCK_ROWS, LEVEL_BAND_STEP, LEVEL_BIAS, LEVEL_ONE};
use super::result::{Defect, DieResult, Polarity, ReferenceMode};

/// How the flagging threshold is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThresholdMode {
    /// `DetectParams::threshold` grey levels.
    #[default]
    Grey,
    /// `threshold_sigma` × the die's estimated image noise σ, at least
    /// `threshold_floor`.
    Sigma,
}

/// In sigma mode, the 2×2 box mean of the signed difference flags above
/// this fraction of the pixel threshold. Averaging four pixels halves the
/// noise; the rest of the margin keeps false detections rare (measured in
/// `tests::sigma_mode_finds_faint_defects_without_nuisance`).
pub const BOX_THRESHOLD_RATIO: f32 = 0.24;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DetectParams {
    /// Grey levels a pixel must differ from both references by (grey mode).
    pub threshold: u8,
    /// Smallest defect reported, pixels.
    pub min_area: u32,
    /// Extra grey levels allowed against the golden die, which was imaged
    /// at another time, under another illumination level, than the die
    /// under test (neighbours are imaged moments apart).
    pub golden_tolerance: u8,
    pub class_rules: ClassRules,
    /// Largest stage repeat error searched, pixels.
    pub max_shift_px: u32,
    /// Below this alignment confidence (0..1) a die is not compared.
    pub min_align_confidence: f32,
    pub threshold_mode: ThresholdMode,
    /// k of the k·σ threshold (sigma mode).
    pub threshold_sigma: f32,
    /// Lowest threshold sigma mode may set, grey levels (a die with almost
    /// no noise would otherwise flag quantisation).
    pub threshold_floor: u8,
    /// Regions with their own threshold or "don't care", image pixels.
    pub care_areas: CareAreas,
}

impl Default for DetectParams {
    fn default() -> Self {
        Self {
            threshold: 24,
            min_area: 2,
            golden_tolerance: 10,
            class_rules: ClassRules::default(),
            max_shift_px: DEFAULT_MAX_SHIFT,
            min_align_confidence: 0.3,
            threshold_mode: ThresholdMode::Grey,
            threshold_sigma: 5.0,
            threshold_floor: 8,
            care_areas: CareAreas::default(),
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

    fn same_image(&self, other: &Reference) -> bool {
        std::ptr::eq(self.pixels, other.pixels)
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

    /// The four footprint rows of T's row `y`, columns `x0..x0 + n`.
    fn rows<'a>(
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
fn overlap(refs: &[Resample], w: usize, h: usize) -> ((usize, usize), (usize, usize)) {
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

/// Scratch space and parameters for inspecting dies of one size. Allocates
/// once; `inspect` and `inspect_against` never allocate.
pub struct Detector {
    width: usize,
    height: usize,
    pub params: DetectParams,
    /// Signed difference (bright > 0, dark < 0) of the current and the
    /// previous row, for the 2×2 box.
    signed_row: Vec<i16>,
    previous_signed_row: Vec<i16>,
    flag_row: Vec<u8>,
    noise: NoiseEstimator,
    labeler: Labeler,
    /// The care areas as a per-pixel map, built once from `params`.
    care_map: CareMap,
}

/// One reference as the kernel uses it.
#[derive(Clone, Copy)]
struct Prepared<'a> {
    pixels: &'a [u8],
    resample: Resample,
    levels: LevelMap,
    tolerance: u8,
}

impl Detector {
    pub fn new(width: u32, height: u32, params: DetectParams) -> Self {
        let max_runs = (width as usize * height as usize / 64).max(1024);
        Self {
            width: width as usize,
            height: height as usize,
            params,
            signed_row: vec![0; width as usize],
            previous_signed_row: vec![0; width as usize],
            flag_row: vec![0; width as usize],
            noise: NoiseEstimator::new(),
            labeler: Labeler::new(max_runs, 4096),
            care_map: CareMap::new(&params.care_areas, width as usize, height as usize),
        }
    }

    /// Inspects `test` against `left` and `right`, writing into `out`. The
    /// golden die, when given, arbitrates where both references differ
    /// from T.
    pub fn inspect<'a>(
        &mut self,
        test: Reference<'a>,
        left: Reference<'a>,
        right: Reference<'a>,
        golden: Option<Reference<'a>>,
        out: &mut DieResult,
    ) {
        let mode = if left.is_golden && right.is_golden {
            ReferenceMode::DieToGolden
        } else if golden.is_some() || left.is_golden || right.is_golden {
            ReferenceMode::DieToDieGoldenArbitrated
        } else {
            ReferenceMode::DieToDie
        };
        out.golden_left = left.is_golden;
        out.golden_right = right.is_golden;
        self.run(test, left, right, golden, mode, out);
    }

    /// Inspects `test` against one reference (die-to-reference, or
    /// die-to-golden when `reference.is_golden`): every difference beyond
    /// the threshold is reported; there is nothing to arbitrate with.
    pub fn inspect_against<'a>(
        &mut self,
        test: Reference<'a>,
        reference: Reference<'a>,
        out: &mut DieResult,
    ) {
        let mode = if reference.is_golden {
            ReferenceMode::DieToGolden
        } else {
            ReferenceMode::DieToReference
        };
        out.golden_left = reference.is_golden;
        out.golden_right = reference.is_golden;
        // The same reference on both sides: "beyond both" is "beyond it".
        self.run(test, reference, reference, None, mode, out);
    }

    fn align(&self, test: &Reference, reference: &Reference) -> Alignment {
        align(test.profiles, reference.profiles, self.params.max_shift_px)
    }

    fn run<'a>(
        &mut self,
        test: Reference<'a>,
        left: Reference<'a>,
        right: Reference<'a>,
        golden: Option<Reference<'a>>,
        mode: ReferenceMode,
        out: &mut DieResult,
    ) {
        let (w, h) = (self.width, self.height);
        out.reference_mode = mode;
        out.flagged_pixels = 0;
        out.runs_overflowed = false;
        let al = self.align(&test, &left);
        let ar = if right.same_image(&left) {
            al
        } else {
            self.align(&test, &right)
        };
        out.shift_left = al.shift;
        out.shift_right = ar.shift;
        out.align_confidence_left = al.confidence;
        out.align_confidence_right = ar.confidence;
        if al.confidence.min(ar.confidence) < self.params.min_align_confidence {
            out.alignment_untrusted = true;
            return;
        }
        let (rl, rr) = (Resample::new(al.shift), Resample::new(ar.shift));
        let ((x0, x1), (y0, y1)) = overlap(&[rl, rr], w, h);
        if x0 + 2 > x1 || y0 >= y1 {
            return;
        }
        let levels = |r: &Reference, s: &Resample| {
            estimate_levels(test.pixels, r.pixels, w, s, (x0, x1), (y0, y1))
        };
        let ml = levels(&left, &rl);
        let mr = if right.same_image(&left) {
            ml
        } else {
            levels(&right, &rr)
        };
        out.gain_left = (ml.gain, ml.offset);
        out.gain_right = (mr.gain, mr.offset);
        let tolerance = |r: &Reference| {
            if r.is_golden {
                self.params.golden_tolerance
            } else {
                0
            }
        };
        let lp = Prepared {
            pixels: left.pixels,
            resample: rl,
            levels: ml,
            tolerance: tolerance(&left),
        };
        let rp = Prepared {
            pixels: right.pixels,
            resample: rr,
            levels: mr,
            tolerance: tolerance(&right),
        };
        let n = x1 - x0;

        // Thresholds of this die: (pixel, box sum) per care area, 0 being
        // the rest of the die. σ is estimated when anything uses it.
        let areas = self.params.care_areas;
        let uses_sigma = self.params.threshold_mode == ThresholdMode::Sigma
            || areas
                .as_slice()
                .iter()
                .any(|a| matches!(a.rule, CareRule::Sigma(_)));
        let sigma = if uses_sigma {
            let sigma = self.image_sigma(test.pixels, &[lp, rp], (x0, n), (y0, y1));
            out.noise_sigma = sigma;
            sigma
        } else {
            0.0
        };
        let floor = self.params.threshold_floor as f32;
        // Strictly above a whole number of grey levels; the box compares a
        // sum of four pixels with its fraction of the pixel threshold.
        let grey = |t: f32| (t.floor().min(255.0) as u16, u16::MAX);
        let by_sigma = |k: f32| {
            let t = (k * sigma).max(floor).min(254.0);
            (
                t.floor() as u16,
                (4.0 * t * BOX_THRESHOLD_RATIO).floor() as u16,
            )
        };
        let default_thresholds = match self.params.threshold_mode {
            ThresholdMode::Grey => grey(self.params.threshold as f32),
            ThresholdMode::Sigma => by_sigma(self.params.threshold_sigma),
        };
        out.threshold_used = default_thresholds.0 as f32;
        let pixel_threshold = default_thresholds.0;
        let mut thresholds = [default_thresholds; MAX_CARE_AREAS + 1];
        for (k, a) in areas.as_slice().iter().enumerate() {
            thresholds[k + 1] = match a.rule {
                CareRule::DontCare => (u16::MAX, u16::MAX),
                CareRule::Grey(g) => grey(g as f32),
                CareRule::Sigma(k) => by_sigma(k),
            };
        }

        self.labeler.reset();
        self.previous_signed_row.fill(0);
        for y in y0..y1 {
            let t = &test.pixels[y * w + x0..][..n];
            let l = lp.resample.rows(lp.pixels, w, y, x0, n);
            let r = rp.resample.rows(rp.pixels, w, y, x0, n);
            let signed = &mut self.signed_row[..n];
            signed_difference_row(t, l, &lp, r, &rp, signed);
            let flags = &mut self.flag_row[..n];
            let previous = &self.previous_signed_row[..n];
            let spans = self.care_map.row(y);
            let any = if spans.is_empty() {
                let (p, b) = thresholds[0];
                flag_span(signed, previous, 0..n, p, b, flags)
            } else {
                let mut any = false;
                for span in spans {
                    let (a, b) = ((span.x0 as usize).max(x0), (span.x1 as usize).min(x1));
                    if a < b {
                        let (p, bx) = thresholds[span.area as usize];
                        any |= flag_span(signed, previous, a - x0..b - x0, p, bx, flags);
                    }
                }
                any
            };
            if any {
                self.labeler.add_row(y as u16, x0 as u16, flags, 0);
            }
            std::mem::swap(&mut self.signed_row, &mut self.previous_signed_row);
        }
        out.flagged_pixels = self.labeler.flagged;
        let overflowed_runs = self.labeler.overflowed;
        let min_area = self.params.min_area;
        // Aligned lazily: most dies have no component to arbitrate.
        let mut golden_prepared: Option<Option<Prepared>> = None;
        let golden_threshold =
            (pixel_threshold.min(255) as u8).saturating_add(self.params.golden_tolerance);
        let components = self.labeler.finish();
        for c in components {
            if c.area < min_area {
                continue;
            }
            // Both neighbours defective at the same place also flags T:
            // arbitrate with the golden die, which T matches there if the
            // defects are the neighbours'.
            if let Some(g) = golden {
                let prepared = *golden_prepared.get_or_insert_with(|| {
                    let a = align(test.profiles, g.profiles, self.params.max_shift_px);
                    if a.confidence < self.params.min_align_confidence {
                        return None;
                    }
                    let rg = Resample::new(a.shift);
                    let ((gx0, gx1), (gy0, gy1)) = overlap(&[rg], w, h);
                    Some(Prepared {
                        pixels: g.pixels,
                        resample: rg,
                        levels: estimate_levels(
                            test.pixels,
                            g.pixels,
                            w,
                            &rg,
                            (gx0, gx1),
                            (gy0, gy1),
                        ),
                        tolerance: 0,
                    })
                });
                if let Some(gp) = prepared {
                    if !differs_from(test.pixels, &gp, w, h, c.bbox, golden_threshold, c.area) {
                        out.arbitrated += 1;
                        continue;
                    }
                }
            }
            let (px, py) = (c.peak_xy.0 as usize, c.peak_xy.1 as usize);
            let t = test.pixels[py * w + px] as f32;
            let (l, r) = (
                ml.apply(rl.at(left.pixels, w, px, py) as f32),
                mr.apply(rr.at(right.pixels, w, px, py) as f32),
            );
            // The reference that agreed best decided the flag; its sign is
            // the defect's polarity.
            let reference = if (t - l).abs() <= (t - r).abs() { l } else { r };
            let (cx, cy) = c.centroid();
            let shape = Shape {
                width: (c.bbox[2] - c.bbox[0]) as u32,
                height: (c.bbox[3] - c.bbox[1]) as u32,
                area: c.area,
                mean_diff: c.sum as f32 / c.area as f32,
            };
            out.push(Defect {
                x_px: cx,
                y_px: cy,
                bbox: c.bbox,
                area_px: c.area,
                peak_diff: c.peak,
                mean_diff: shape.mean_diff,
                polarity: if t >= reference {
                    Polarity::Bright
                } else {
                    Polarity::Dark
                },
                class: classify(shape, &self.params.class_rules),
            });
        }
        out.runs_overflowed = overflowed_runs || self.labeler.overflowed;
    }

    /// Image noise σ of T, grey levels: the robust σ of T minus each
    /// mapped reference on every `NOISE_ROW_STEP`th row, over the noise
    /// the difference of two equally noisy images has (√(1 + Σ w²) for the
    /// bilinear weights w); the larger over the references, so a noise-free
    /// golden die does not hide T's noise.
    fn image_sigma(
        &mut self,
        test: &[u8],
        references: &[Prepared],
        (x0, n): (usize, usize),
        (y0, y1): (usize, usize),
    ) -> f32 {
        let w = self.width;
        let mut sigma = 0.0f32;
        for (k, p) in references.iter().enumerate() {
            if k > 0 && std::ptr::eq(p.pixels, references[0].pixels) {
                continue;
            }
            self.noise.reset();
            for y in (y0..y1).step_by(NOISE_ROW_STEP) {
                let t = &test[y * w + x0..][..n];
                let rows = p.resample.rows(p.pixels, w, y, x0, n);
                self.noise.add_row(t, rows, p.resample.w, p.levels);
            }
            let weights_sq: f32 = p
                .resample
                .w
                .iter()
                .map(|&v| (v as f32 / 256.0).powi(2))
                .sum();
            sigma = sigma.max(self.noise.sigma_of_difference() / (1.0 + weights_sq).sqrt());
        }
        sigma
    }
}

/// How `reference`, displaced by `resample`, maps onto `test` over T's
/// region `xs` × `ys` (see `normalise`), at the nearest whole-pixel shift
/// (the region, valid for the bilinear footprint of the floor shift, is
/// valid for it).
fn estimate_levels(
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
fn differs_from(
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
fn signed_difference_row(
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
fn flag_span(
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
mod tests;
