//! `waferscope inspect`: run the detector on die images (PNG or TIFF,
//! 8- or 16-bit grayscale) against two neighbours, a reference image, or
//! both, optionally restricted by a care mask, which the detector applies
//! per pixel (masked pixels neither flag nor join defects).

use super::image_input::{load_raw, RawImage, Samples, SixteenToEight};
use crate::pipeline::care::CareMap;
use crate::pipeline::{DetectParams, Detector, DieResult, Profiles, Reference};
use anyhow::{bail, Result};
use serde_json::json;
use std::path::{Path, PathBuf};

pub struct InspectArgs {
    pub die: PathBuf,
    pub left: Option<PathBuf>,
    pub right: Option<PathBuf>,
    pub reference: Option<PathBuf>,
    /// Care mask: non-zero pixels are inspected, 0 is "don't care".
    pub mask: Option<PathBuf>,
    /// Significant bits of 16-bit input (see `SixteenToEight`).
    pub bits: Option<u8>,
    pub pixel_um: f64,
    pub threshold: u8,
    pub json: bool,
}

/// What the die was compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReferenceMode {
    /// Both neighbours; a pixel must differ from both.
    DieToDie,
    /// Both neighbours, and the reference image arbitrates where both
    /// neighbours are defective at one spot.
    DieToDieWithGolden,
    /// One reference image only.
    DieToReference,
}

impl ReferenceMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::DieToDie => "die-to-die",
            Self::DieToDieWithGolden => "die-to-die+golden",
            Self::DieToReference => "die-to-reference",
        }
    }
}

/// An 8-bit grayscale image ready for the detector.
pub struct GrayImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
}

/// The images of one inspection, in order: the die, then either left and
/// right (and the reference when given) or the reference alone.
fn roles(args: &InspectArgs) -> Result<(ReferenceMode, Vec<(&'static str, &Path)>)> {
    let mut named = vec![("die", args.die.as_path())];
    let mode = match (&args.left, &args.right, &args.reference) {
        (Some(l), Some(r), reference) => {
            named.push(("left", l));
            named.push(("right", r));
            if let Some(g) = reference {
                named.push(("reference", g));
                ReferenceMode::DieToDieWithGolden
            } else {
                ReferenceMode::DieToDie
            }
        }
        (None, None, Some(g)) => {
            named.push(("reference", g));
            ReferenceMode::DieToReference
        }
        (Some(_), None, _) => bail!("--left needs --right as well (die-to-die compares with both neighbours); or give --reference alone"),
        (None, Some(_), _) => bail!("--right needs --left as well (die-to-die compares with both neighbours); or give --reference alone"),
        (None, None, None) => bail!("nothing to compare the die with: give --left and --right (die-to-die), --reference (die-to-reference), or all three"),
    };
    Ok((mode, named))
}

/// Loads every image, bringing 16-bit ones to 8 bits with one common
/// shift (said on stderr, with any conversion from colour).
fn load_all(named: &[(&'static str, &Path)], bits: Option<u8>) -> Result<Vec<GrayImage>> {
    let raw: Vec<RawImage> = named
        .iter()
        .map(|(_, p)| load_raw(p))
        .collect::<Result<_>>()?;
    let largest_16_bit = raw
        .iter()
        .filter(|r| matches!(r.samples, Samples::Sixteen(_)))
        .map(RawImage::max_value)
        .max();
    let reduce = SixteenToEight::choose(bits, largest_16_bit.unwrap_or(0));
    let mut images = Vec::with_capacity(raw.len());
    for ((role, path), img) in named.iter().zip(raw) {
        let sixteen = matches!(img.samples, Samples::Sixteen(_));
        if let Some(from) = img.converted_from {
            crate::errln!(
                "note: {} ({role}) converted from {from} to grayscale",
                path.display()
            );
        }
        let (width, height) = (img.width, img.height);
        let (pixels, clipped) = reduce.apply(img);
        if sixteen {
            let why = if reduce.from_option {
                "as --bits says".to_string()
            } else {
                format!(
                    "the fewest bits that hold the largest value, {}, of the 16-bit images; --bits fixes it",
                    largest_16_bit.unwrap_or(0)
                )
            };
            crate::errln!(
                "note: {} ({role}) converted from 16-bit grayscale to 8 bits by shifting right {} bits ({why})",
                path.display(),
                reduce.shift
            );
        }
        if clipped > 0 {
            crate::errln!(
                "note: {} ({role}): {clipped} pixel(s) above {} bits saturated at 255",
                path.display(),
                reduce.shift + 8
            );
        }
        images.push(GrayImage {
            width,
            height,
            pixels,
        });
    }
    Ok(images)
}

/// Loads the care mask: non-zero is inspected, 0 is "don't care". Any
/// bit depth; it must be the size of the die.
fn load_mask(path: &Path, die: &Path, w: u32, h: u32) -> Result<Vec<bool>> {
    let raw = load_raw(path)?;
    if (raw.width, raw.height) != (w, h) {
        bail!(
            "{} (mask) is {}×{} pixels but the die image {} is {w}×{h}; the mask must be the size of the die",
            path.display(),
            raw.width,
            raw.height,
            die.display()
        );
    }
    Ok(match raw.samples {
        Samples::Eight(v) => v.iter().map(|&p| p != 0).collect(),
        Samples::Sixteen(v) => v.iter().map(|&p| p != 0).collect(),
    })
}

pub fn run(args: &InspectArgs) -> Result<()> {
    let (mode, named) = roles(args)?;
    if let Some(b) = args.bits {
        if !(8..=16).contains(&b) {
            bail!("--bits must be 8 to 16 (the significant bits of 16-bit images), got {b}");
        }
    }
    if !(args.pixel_um > 0.0 && args.pixel_um.is_finite()) {
        bail!(
            "--pixel-um must be a positive number of micrometres, got {}",
            args.pixel_um
        );
    }
    let images = load_all(&named, args.bits)?;
    let (w, h) = (images[0].width, images[0].height);
    for ((role, path), img) in named.iter().zip(&images).skip(1) {
        if (img.width, img.height) != (w, h) {
            bail!(
                "{} ({role}) is {}×{} pixels but the die image {} is {w}×{h}; all images must be the same size",
                path.display(),
                img.width,
                img.height,
                args.die.display()
            );
        }
    }
    if w < 32 || h < 32 {
        bail!(
            "{}: {w}×{h} pixels is too small to inspect (at least 32×32)",
            args.die.display()
        );
    }
    let care = match &args.mask {
        Some(m) => Some(load_mask(m, &args.die, w, h)?),
        None => None,
    };
    let profiles: Vec<Profiles> = images
        .iter()
        .map(|i| {
            let mut p = Profiles::new(w, h);
            p.compute(&i.pixels);
            p
        })
        .collect();
    let params = DetectParams {
        threshold: args.threshold,
        ..DetectParams::default()
    };
    let refer = |k: usize| Reference::die(&images[k].pixels, &profiles[k]);
    let inspect = |det: &mut Detector, out: &mut DieResult| match mode {
        // The reference as given, without the golden tolerance: the user
        // chose this reference to compare with.
        ReferenceMode::DieToReference => det.inspect_against(refer(0), refer(1), out),
        ReferenceMode::DieToDie => det.inspect(refer(0), refer(1), refer(2), None, out),
        ReferenceMode::DieToDieWithGolden => {
            let golden = Reference::golden(&images[3].pixels, &profiles[3]);
            det.inspect(refer(0), refer(1), refer(2), Some(golden), out)
        }
    };
    let mut out = DieResult::default();
    let masked_out = match &care {
        None => {
            inspect(&mut Detector::new(w, h, params), &mut out);
            0
        }
        Some(care) => {
            // The mask's don't-care pixels are one more don't-care area of
            // the detector's care map: they never flag, so a defect there
            // is not found and a blob does not join across them.
            let mut masked = params;
            let map = CareMap::with_mask(&mut masked.care_areas, care, w as usize, h as usize)
                .map_err(|n| {
                    anyhow::anyhow!("the mask needs a care area and all {n} are in use")
                })?;
            let mut det = Detector::new(w, h, masked);
            det.set_care_map(map);
            inspect(&mut det, &mut out);
            // What the mask suppressed: the pixels that differ beyond the
            // threshold inside it (the same comparison without the mask
            // flags exactly those more).
            let mut unmasked = DieResult::default();
            inspect(&mut Detector::new(w, h, params), &mut unmasked);
            unmasked.flagged_pixels.saturating_sub(out.flagged_pixels)
        }
    };
    print_result(args, mode, masked_out, &out, w, h)?;
    // "0 defects" from a die that was never compared would read as a clean
    // die: an untrustworthy alignment is a failure of the input, named.
    if out.alignment_untrusted {
        anyhow::bail!(
            "{}: the alignment with its reference(s) is not trustworthy (confidence {:.2} left, {:.2} right; the recipe's minimum is {:.2}), so the die was not compared and no defects are reported; a strictly periodic die, or dies further apart than the search, cannot be registered",
            args.die.display(),
            out.align_confidence_left,
            out.align_confidence_right,
            params.min_align_confidence
        );
    }
    Ok(())
}

fn print_result(
    args: &InspectArgs,
    mode: ReferenceMode,
    masked_out: u32,
    out: &DieResult,
    w: u32,
    h: u32,
) -> Result<(), crate::cli::out::OutputFailed> {
    let um = args.pixel_um;
    let defects: Vec<_> = out
        .defects()
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let (x, y) = d.position_um(um, h);
            json!({
                "id": i + 1,
                "x_um": round2(x),
                "y_um": round2(y),
                "x_px": d.x_px,
                "y_px": d.y_px,
                "width_um": round2(d.width_px() as f64 * um),
                "height_um": round2(d.height_px() as f64 * um),
                "area_um2": round2(d.area_px as f64 * um * um),
                "area_px": d.area_px,
                "peak_diff": d.peak_diff,
                "polarity": format!("{:?}", d.polarity).to_lowercase(),
                "class": d.class.name(),
                "class_number": d.class.number(),
                "length_px": round2(d.moments.length_px() as f64),
                "elongation": round2(d.moments.elongation() as f64),
                "orientation_deg": round2(d.moments.orientation_deg() as f64),
            })
        })
        .collect();
    if args.json {
        let doc = json!({
            "die": args.die.display().to_string(),
            "width_px": w,
            "height_px": h,
            "pixel_um": um,
            "threshold": args.threshold,
            "shift_left_px": [out.shift_left.0, out.shift_left.1],
            "shift_right_px": [out.shift_right.0, out.shift_right.1],
            "flagged_pixels": out.flagged_pixels,
            "defects_not_listed": out.dropped,
            "defects": defects,
            "reference_mode": mode.name(),
            "masked_out": masked_out,
            "alignment_untrusted": out.alignment_untrusted,
            "align_confidence_left": out.align_confidence_left,
            "align_confidence_right": out.align_confidence_right,
            // Defect x_px / y_px (and µm) are in die coordinates: T's image
            // moved by this offset when a reference image registered the
            // die; T's image otherwise.
            "die_registered": out.die_registered,
            "die_offset_px": [out.die_offset_px.0, out.die_offset_px.1],
        });
        crate::outln!("{doc}")?;
    } else {
        crate::outln!(
            "{} ({}): {} defect(s), {} flagged pixel(s), {masked_out} differing pixel(s) in don't-care not flagged; left shift ({:.2}, {:.2}) px, right shift ({:.2}, {:.2}) px",
            args.die.display(),
            mode.name(),
            out.count as u32 + out.dropped,
            out.flagged_pixels,
            out.shift_left.0,
            out.shift_left.1,
            out.shift_right.0,
            out.shift_right.1
        )?;
        for d in out.defects() {
            let (x, y) = d.position_um(um, h);
            crate::outln!(
                "  {:<8} at ({x:>9.1}, {y:>9.1}) µm  {}×{} px  area {} px  peak {}  {:?}",
                d.class.name(),
                d.width_px(),
                d.height_px(),
                d.area_px,
                d.peak_diff,
                d.polarity
            )?;
        }
    }
    Ok(())
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
