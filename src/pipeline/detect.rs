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
use super::classify::{
    classify, replaces_with_neighbouring_material, ClassRules, PatternContext,
    PATTERN_CONTEXT_MAX_SIDE_PX,
};
use super::compare::{
    differs_from, estimate_levels, flag_row, flag_span, overlap, signed_difference_row, Prepared,
    Resample,
};
use super::features::DefectFeatures;
use super::label::Labeler;
use super::noise::{NoiseEstimator, NOISE_ROW_STEP};
use super::result::{Defect, DefectClass, DieResult, Polarity, ReferenceMode};
use super::scratch_merge::{merge_scratch_fragments, ScratchMergeRules};
use super::simd::Isa;

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
/// this fraction of the pixel threshold by default. Averaging four pixels
/// halves the noise; the rest of the margin keeps false detections rare
/// on noise alone (`tests::sigma_mode_finds_faint_defects_without_nuisance`).
/// Layers with grain (texture in 2×2 cells that differs from die to die)
/// need more: see `DetectParams::box_threshold_ratio`.
pub const BOX_THRESHOLD_RATIO: f32 = 0.24;

/// A taught golden die's noise variance over a single die's: its pixels are
/// medians of `DEFAULT_TEACH_DIES` dies, π / 2N (0.31 for 5). A golden
/// taught from more dies is quieter, so σ̂ errs a little high (the
/// thresholds a little strict); from fewer (3 at least), a little low.
const GOLDEN_NOISE_VARIANCE_RATIO: f32 =
    std::f32::consts::PI / (2.0 * super::teach::DEFAULT_TEACH_DIES as f32);

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
    /// Tolerance at edges, as a fraction (0..=1) of the reference's own
    /// grey-level span over the pixel's bilinear footprint: line-edge
    /// roughness and the last fraction of a pixel of misregistration move
    /// an edge pixel by a fraction of the edge's contrast, which a flat
    /// threshold either reports or pays for with sensitivity everywhere.
    /// 0 (off) by default; the sensitivity table's recipe uses 0.15 (see `bench
    /// sensitivity`). Flat regions are unaffected. The span is the
    /// reference's own (before its gain is mapped onto T), which differs
    /// from T's by the ±10 % gain at most.
    pub edge_tolerance: f32,
    /// Sigma mode's 2×2 box flags above this fraction of the pixel
    /// threshold (`BOX_THRESHOLD_RATIO` by default). Grain averages no
    /// lower over a box than over a pixel: on the realistic simulator's
    /// metal grain 0.24 gave 10–15 false detections per die at σ 8 and
    /// 0.36 gives ≤ 0.1, for some recall at the faintest contrasts
    /// (`bench sensitivity`).
    pub box_threshold_ratio: f32,
}

impl DetectParams {
    /// `edge_tolerance` in the kernel's Q7, clamped to 0..=1 (so a
    /// footprint's span times it stays within 16 bits).
    fn edge_q7(&self) -> u16 {
        (self.edge_tolerance.clamp(0.0, 1.0) * 128.0).round() as u16
    }
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
            edge_tolerance: 0.0,
            box_threshold_ratio: BOX_THRESHOLD_RATIO,
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
    /// The care areas as a per-pixel map in die coordinates, built once
    /// from `params`.
    care_map: CareMap,
    /// The current row's care spans in T's image (the map moved by the
    /// die's registration); capacity for any row.
    care_spans: Vec<super::care::Span>,
    /// Which compiled copy of the row kernels runs.
    isa: Isa,
}

impl Detector {
    pub fn new(width: u32, height: u32, params: DetectParams) -> Self {
        let max_runs = (width as usize * height as usize / 64).max(1024);
        let mut det = Self {
            width: width as usize,
            height: height as usize,
            params,
            signed_row: vec![0; width as usize],
            previous_signed_row: vec![0; width as usize],
            flag_row: vec![0; width as usize],
            noise: NoiseEstimator::new(),
            labeler: Labeler::new(max_runs, 4096),
            care_map: CareMap::new(&params.care_areas, width as usize, height as usize),
            care_spans: Vec::new(),
            isa: Isa::detect(),
        };
        det.reserve_care_spans();
        det
    }

    fn reserve_care_spans(&mut self) {
        self.care_spans = Vec::with_capacity(self.care_map.max_row_spans() + 2);
    }

    /// The instruction set the row kernels use on this CPU ("avx2" or
    /// "baseline"), for benchmark reports.
    pub fn kernel_isa(&self) -> &'static str {
        self.isa.name()
    }

    /// Replaces the care map built from `params.care_areas` with `map`,
    /// whose area numbers index `params.care_areas` (e.g. `CareMap::with_mask`,
    /// which adds a mask image's don't-care pixels).
    pub fn set_care_map(&mut self, map: CareMap) {
        debug_assert!(map.is_empty() || map.rows() == self.height);
        self.care_map = map;
        self.reserve_care_spans();
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
        let untrusted = |c: f32| c.is_nan() || c < self.params.min_align_confidence;
        if untrusted(al.confidence) || untrusted(ar.confidence) {
            out.alignment_untrusted = true;
            return;
        }
        // Where the die sits in T's image: the golden die and a reference
        // image are in die coordinates, so T's alignment to one of them
        // registers T (T's pixel (x, y) is the die's (x + dx, y + dy)).
        // Care areas are placed, and defects reported, in die coordinates;
        // with only neighbours to go by, the image is taken as the die.
        // An edge die's golden side is the golden die itself: its
        // alignment is already measured.
        let golden_alignment = golden.map(|g| {
            if g.same_image(&left) {
                al
            } else if g.same_image(&right) {
                ar
            } else {
                align(test.profiles, g.profiles, self.params.max_shift_px)
            }
        });
        let registration = if left.is_golden || mode == ReferenceMode::DieToReference {
            Some(al.shift)
        } else if right.is_golden {
            Some(ar.shift)
        } else {
            golden_alignment
                .filter(|a| a.confidence >= self.params.min_align_confidence)
                .map(|a| a.shift)
        };
        out.die_registered = registration.is_some();
        out.die_offset_px = registration.unwrap_or((0.0, 0.0));
        let care_shift = (
            out.die_offset_px.0.round() as i32,
            out.die_offset_px.1.round() as i32,
        );
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
        let edge_q7 = self.params.edge_q7();
        let lp = Prepared {
            pixels: left.pixels,
            golden: left.is_golden,
            resample: rl,
            levels: ml,
            tolerance: tolerance(&left),
            edge_q7,
        };
        let rp = Prepared {
            pixels: right.pixels,
            golden: right.is_golden,
            resample: rr,
            levels: mr,
            tolerance: tolerance(&right),
            edge_q7,
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
        // As the recipe allows (NaN: the default): a ratio near 0 would flag
        // every box with any difference.
        let box_ratio = if self.params.box_threshold_ratio.is_nan() {
            BOX_THRESHOLD_RATIO
        } else {
            self.params.box_threshold_ratio.clamp(0.1, 1.0)
        };
        let by_sigma = |k: f32| {
            let t = (k * sigma).max(floor).min(254.0);
            (t.floor() as u16, (4.0 * t * box_ratio).floor() as u16)
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
        // Without a 2×2 box anywhere, flags come straight from the kernel;
        // the box needs the signed rows.
        let uses_box = thresholds[..=areas.as_slice().len()]
            .iter()
            .any(|&(_, b)| b != u16::MAX);
        let isa = self.isa;
        // Taken for the loop (no allocation: its capacity comes back).
        let mut care_spans = std::mem::take(&mut self.care_spans);
        for y in y0..y1 {
            let t = &test.pixels[y * w + x0..][..n];
            let l = lp.resample.rows(lp.pixels, w, y, x0, n);
            let r = rp.resample.rows(rp.pixels, w, y, x0, n);
            let flags = &mut self.flag_row[..n];
            self.care_map.row_shifted(y, care_shift, w, &mut care_spans);
            let spans = &care_spans[..];
            let any = if !uses_box {
                if spans.is_empty() {
                    flag_row(isa, t, l, &lp, r, &rp, thresholds[0].0, flags)
                } else {
                    flags.fill(0);
                    let mut any = false;
                    for span in spans {
                        let (a, b) = ((span.x0 as usize).max(x0), (span.x1 as usize).min(x1));
                        let (p, _) = thresholds[span.area as usize];
                        if a < b && p != u16::MAX {
                            let (a, b) = (a - x0, b - x0);
                            let sub = |rows: [&'a [u8]; 4]| rows.map(|row| &row[a..b]);
                            any |= flag_row(
                                isa,
                                &t[a..b],
                                sub(l),
                                &lp,
                                sub(r),
                                &rp,
                                p,
                                &mut flags[a..b],
                            );
                        }
                    }
                    any
                }
            } else {
                let signed = &mut self.signed_row[..n];
                signed_difference_row(isa, t, l, &lp, r, &rp, signed);
                // Don't-care pixels hold no difference: a box beside one
                // (its right neighbour, the row above) must not see it.
                for span in spans {
                    let (a, b) = ((span.x0 as usize).max(x0), (span.x1 as usize).min(x1));
                    if a < b && thresholds[span.area as usize] == (u16::MAX, u16::MAX) {
                        signed[a - x0..b - x0].fill(0);
                    }
                }
                let previous = &self.previous_signed_row[..n];
                let any = if spans.is_empty() {
                    let (p, b) = thresholds[0];
                    flag_span(isa, signed, previous, 0..n, p, b, flags)
                } else {
                    let mut any = false;
                    for span in spans {
                        let (a, b) = ((span.x0 as usize).max(x0), (span.x1 as usize).min(x1));
                        if a < b {
                            let (p, bx) = thresholds[span.area as usize];
                            any |= flag_span(isa, signed, previous, a - x0..b - x0, p, bx, flags);
                        }
                    }
                    any
                };
                std::mem::swap(&mut self.signed_row, &mut self.previous_signed_row);
                any
            };
            if any {
                self.labeler.add_row(y as u16, x0 as u16, flags, 0);
            }
        }
        self.care_spans = care_spans;
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
                    let a = golden_alignment.unwrap_or_default();
                    if a.confidence < self.params.min_align_confidence {
                        return None;
                    }
                    let rg = Resample::new(a.shift);
                    let ((gx0, gx1), (gy0, gy1)) = overlap(&[rg], w, h);
                    Some(Prepared {
                        pixels: g.pixels,
                        golden: true,
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
                        edge_q7: self.params.edge_q7(),
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
            let left_agreed = (t - l).abs() <= (t - r).abs();
            let reference = if left_agreed { l } else { r };
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
                threshold: pixel_threshold as f32,
            };
            let mut class = classify(&features, &self.params.class_rules);
            // Shape cannot tell a missing 4 px contact from a particle;
            // the reference can (`replaces_with_neighbouring_material`).
            if matches!(class, DefectClass::Particle | DefectClass::Unknown)
                && features.bbox_w.max(features.bbox_h) <= PATTERN_CONTEXT_MAX_SIDE_PX
            {
                let (rs, rm, rp) = if left_agreed {
                    (&rl, &ml, left.pixels)
                } else {
                    (&rr, &mr, right.pixels)
                };
                let context =
                    pattern_context(test.pixels, w, c.bbox, ((x0, x1), (y0, y1)), |x, y| {
                        rm.apply(rs.at(rp, w, x, y) as f32)
                    });
                if context.is_some_and(|ctx| {
                    replaces_with_neighbouring_material(&ctx, pixel_threshold as f32)
                }) {
                    class = DefectClass::Pattern;
                }
            }
            out.push(Defect {
                x_px: cx,
                y_px: cy,
                bbox: c.bbox,
                area_px: c.area,
                peak_diff: c.peak,
                mean_diff: features.mean_diff,
                polarity: features.polarity,
                class,
                moments: features.moments,
            });
        }
        out.runs_overflowed = overflowed_runs || self.labeler.overflowed;
        merge_scratch_fragments(out, &ScratchMergeRules::default(), &self.params.class_rules);
        let (dx, dy) = out.die_offset_px;
        for d in &mut out.defects[..out.count as usize] {
            d.x_px += dx;
            d.y_px += dy;
        }
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
        // A neighbour's estimate is preferred: an edge die with a golden
        // side is judged by the noise of the neighbour it has.
        let has_neighbour = references.iter().any(|p| !p.golden);
        for (k, p) in references.iter().enumerate() {
            if k > 0 && std::ptr::eq(p.pixels, references[0].pixels) {
                continue;
            }
            if has_neighbour && p.golden {
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
            // A neighbour is as noisy as T. A taught golden is the median of
            // N dies, whose noise is about σ·√(π / 2N) (the median's
            // variance is π/2 times the mean's).
            let reference_noise = if p.golden {
                weights_sq * GOLDEN_NOISE_VARIANCE_RATIO
            } else {
                weights_sq
            };
            sigma = sigma.max(self.noise.sigma_of_difference() / (1.0 + reference_noise).sqrt());
        }
        sigma
    }
}

/// T's and the mapped reference's mean levels over `bbox` ([x0, y0, x1,
/// y1), exclusive ends) and the reference's along a line 2 px outside
/// each side; `None` when a side falls outside `valid` (the overlap where
/// the reference is defined). Reads only; no allocation.
fn pattern_context(
    test: &[u8],
    width: usize,
    bbox: [u16; 4],
    valid: ((usize, usize), (usize, usize)),
    reference: impl Fn(usize, usize) -> f32,
) -> Option<PatternContext> {
    let [bx0, by0, bx1, by1] = bbox.map(|v| v as usize);
    let ((vx0, vx1), (vy0, vy1)) = valid;
    if bx0 < vx0 + 2 || by0 < vy0 + 2 || bx1 + 2 > vx1 || by1 + 2 > vy1 || bx0 >= bx1 || by0 >= by1
    {
        return None;
    }
    let (mut t_sum, mut r_sum) = (0.0f32, 0.0f32);
    for y in by0..by1 {
        for x in bx0..bx1 {
            t_sum += test[y * width + x] as f32;
            r_sum += reference(x, y);
        }
    }
    let n = ((bx1 - bx0) * (by1 - by0)) as f32;
    let row_mean = |y: usize| (bx0..bx1).map(|x| reference(x, y)).sum::<f32>() / (bx1 - bx0) as f32;
    let column_mean =
        |x: usize| (by0..by1).map(|y| reference(x, y)).sum::<f32>() / (by1 - by0) as f32;
    Some(PatternContext {
        test_inside: t_sum / n,
        reference_inside: r_sum / n,
        reference_sides: [
            row_mean(by0 - 2),
            row_mean(by1 + 1),
            column_mean(bx0 - 2),
            column_mean(bx1 + 1),
        ],
    })
}

#[cfg(test)]
mod tests;
