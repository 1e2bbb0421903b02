//! `waferscope inspect`: run the die-to-die detector on PNG files.

use crate::pipeline::{DetectParams, Detector, DieResult, Profiles, Reference};
use anyhow::{bail, Context, Result};
use image::DynamicImage;
use serde_json::json;
use std::path::{Path, PathBuf};

pub struct InspectArgs {
    pub die: PathBuf,
    pub left: PathBuf,
    pub right: PathBuf,
    pub reference: Option<PathBuf>,
    pub pixel_um: f64,
    pub threshold: u8,
    pub json: bool,
}

/// An 8-bit grayscale image, and a note when it had to be converted.
pub struct GrayImage {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
    pub converted_from: Option<&'static str>,
}

/// Loads a PNG as 8-bit grey. Colour is converted to luma and 16-bit to its
/// high byte (said on stderr); anything unreadable is an error naming the
/// file.
pub fn load_gray(path: &Path) -> Result<GrayImage> {
    let bytes =
        std::fs::read(path).with_context(|| format!("{}: cannot read the file", path.display()))?;
    if bytes.is_empty() {
        bail!(
            "{}: the file is empty, expected an 8-bit grayscale PNG",
            path.display()
        );
    }
    let img = image::load_from_memory_with_format(&bytes, image::ImageFormat::Png)
        .with_context(|| format!("{}: not a readable PNG image", path.display()))?;
    let converted_from = match &img {
        DynamicImage::ImageLuma8(_) => None,
        DynamicImage::ImageLuma16(_) => Some("16-bit grayscale"),
        DynamicImage::ImageLumaA8(_) | DynamicImage::ImageLumaA16(_) => {
            Some("grayscale with alpha")
        }
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => Some("8-bit colour"),
        _ => Some("16-bit or float colour"),
    };
    let gray = img.to_luma8();
    Ok(GrayImage {
        width: gray.width(),
        height: gray.height(),
        pixels: gray.into_raw(),
        converted_from,
    })
}

pub fn run(args: &InspectArgs) -> Result<()> {
    let mut named = vec![
        ("die", &args.die),
        ("left", &args.left),
        ("right", &args.right),
    ];
    if let Some(r) = &args.reference {
        named.push(("reference", r));
    }
    let mut images = Vec::new();
    for (role, path) in &named {
        let img = load_gray(path)?;
        if let Some(from) = img.converted_from {
            crate::errln!(
                "note: {} ({role}) converted from {from} to 8-bit grayscale",
                path.display()
            );
        }
        images.push(img);
    }
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
    if !(args.pixel_um > 0.0 && args.pixel_um.is_finite()) {
        bail!(
            "--pixel-um must be a positive number of micrometres, got {}",
            args.pixel_um
        );
    }
    let profiles: Vec<Profiles> = images
        .iter()
        .map(|i| {
            let mut p = Profiles::new(w, h);
            p.compute(&i.pixels);
            p
        })
        .collect();
    let mut det = Detector::new(
        w,
        h,
        DetectParams {
            threshold: args.threshold,
            ..DetectParams::default()
        },
    );
    let mut out = DieResult::default();
    let refer = |k: usize| Reference::die(&images[k].pixels, &profiles[k]);
    let golden = (images.len() == 4).then(|| Reference::golden(&images[3].pixels, &profiles[3]));
    det.inspect(refer(0), refer(1), refer(2), golden, &mut out);
    print_result(args, &out, w, h)?;
    Ok(())
}

fn print_result(
    args: &InspectArgs,
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
        });
        crate::outln!("{doc}")?;
    } else {
        crate::outln!(
            "{}: {} defect(s), {} flagged pixel(s); left shift ({:.2}, {:.2}) px, right shift ({:.2}, {:.2}) px",
            args.die.display(),
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
