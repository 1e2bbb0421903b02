//! Reading inspection images (`waferscope inspect`, a recipe's reference
//! image): PNG and TIFF, told apart by their first bytes (not the file
//! name), 8- or 16-bit grayscale. Every error names the file.

use anyhow::{anyhow, bail, Context, Result};
use image::DynamicImage;
use std::io::Cursor;
use std::path::Path;
use tiff::decoder::{Decoder, DecodingResult};
use tiff::tags::{SampleFormat, Tag};
use tiff::ColorType;

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";
/// Classic TIFF and BigTIFF, little- and big-endian.
const TIFF_SIGNATURES: [&[u8]; 4] = [b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"];

/// Pixel values as stored in the file.
pub enum Samples {
    Eight(Vec<u8>),
    Sixteen(Vec<u16>),
}

/// A grayscale image as read, before any reduction to 8 bits.
pub struct RawImage {
    pub width: u32,
    pub height: u32,
    pub samples: Samples,
    /// Set when the file was not grayscale and was converted to luma.
    pub converted_from: Option<&'static str>,
}

impl RawImage {
    /// The largest sample value, for choosing a common 16 → 8-bit shift.
    pub fn max_value(&self) -> u16 {
        match &self.samples {
            Samples::Eight(v) => v.iter().copied().max().unwrap_or(0) as u16,
            Samples::Sixteen(v) => v.iter().copied().max().unwrap_or(0),
        }
    }
}

/// Reads a PNG or TIFF grayscale image.
pub fn load_raw(path: &Path) -> Result<RawImage> {
    let bytes =
        std::fs::read(path).with_context(|| format!("{}: cannot read the file", path.display()))?;
    if bytes.is_empty() {
        bail!(
            "{}: the file is empty, expected a grayscale PNG or TIFF image",
            path.display()
        );
    }
    if bytes.starts_with(PNG_SIGNATURE) {
        load_png(path, &bytes)
    } else if TIFF_SIGNATURES.iter().any(|s| bytes.starts_with(s)) {
        load_tiff(path, &bytes)
    } else {
        bail!(
            "{}: not a readable PNG or TIFF image (its first bytes are neither signature)",
            path.display()
        )
    }
}

fn load_png(path: &Path, bytes: &[u8]) -> Result<RawImage> {
    let img = image::load_from_memory_with_format(bytes, image::ImageFormat::Png)
        .with_context(|| format!("{}: not a readable PNG image", path.display()))?;
    let (width, height) = (img.width(), img.height());
    let (samples, converted_from) = match img {
        DynamicImage::ImageLuma8(g) => (Samples::Eight(g.into_raw()), None),
        DynamicImage::ImageLuma16(g) => (Samples::Sixteen(g.into_raw()), None),
        DynamicImage::ImageLumaA8(_) => (
            Samples::Eight(img.to_luma8().into_raw()),
            Some("grayscale with alpha"),
        ),
        DynamicImage::ImageLumaA16(_) => (
            Samples::Sixteen(img.to_luma16().into_raw()),
            Some("16-bit grayscale with alpha"),
        ),
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => (
            Samples::Eight(img.to_luma8().into_raw()),
            Some("8-bit colour"),
        ),
        _ => (
            Samples::Sixteen(img.to_luma16().into_raw()),
            Some("16-bit or float colour"),
        ),
    };
    Ok(RawImage {
        width,
        height,
        samples,
        converted_from,
    })
}

fn load_tiff(path: &Path, bytes: &[u8]) -> Result<RawImage> {
    let name = path.display();
    let unreadable = |e: tiff::TiffError| anyhow!("{name}: not a readable TIFF image ({e})");
    let mut dec = Decoder::new(Cursor::new(bytes)).map_err(unreadable)?;
    // Checked before decoding: a float or signed image would otherwise be
    // misread as counts, or fail with a message that does not say why.
    let formats = dec
        .find_tag_unsigned_vec::<u16>(Tag::SampleFormat)
        .map_err(unreadable)?
        .unwrap_or_default();
    if let Some(&f) = formats
        .iter()
        .find(|&&f| SampleFormat::from_u16(f) != Some(SampleFormat::Uint))
    {
        let what = match SampleFormat::from_u16(f) {
            Some(SampleFormat::IEEEFP) => "IEEE floating point".to_string(),
            Some(SampleFormat::Int) => "signed integer".to_string(),
            _ => format!("code {f}"),
        };
        bail!(
            "{name}: TIFF sample format is {what}; only unsigned 8- or 16-bit integer grayscale can be inspected"
        );
    }
    let colour = dec.colortype().map_err(unreadable)?;
    if !matches!(colour, ColorType::Gray(8) | ColorType::Gray(16)) {
        bail!("{name}: TIFF colour type is {colour:?}; only 8- or 16-bit grayscale (one sample per pixel) can be inspected");
    }
    let (width, height) = dec.dimensions().map_err(unreadable)?;
    let pixels = dec.read_image().map_err(unreadable)?;
    // A stack (several focus planes, channels or dies in one file) is
    // ambiguous: refuse it rather than silently inspect the first page.
    let mut pages = 1usize;
    while dec.more_images() {
        dec.next_image().map_err(unreadable)?;
        pages += 1;
    }
    if pages > 1 {
        bail!("{name}: TIFF has {pages} pages; give one die image per file (a single page)");
    }
    let samples = match pixels {
        DecodingResult::U8(v) => Samples::Eight(v),
        DecodingResult::U16(v) => Samples::Sixteen(v),
        _ => bail!("{name}: TIFF pixel data is not 8- or 16-bit unsigned"),
    };
    Ok(RawImage {
        width,
        height,
        samples,
        converted_from: None,
    })
}

/// How 16-bit images of one inspection are brought to 8 bits.
///
/// Every 16-bit image of the call is shifted right by the same number of
/// bits, so the die and its references keep one grey scale: scaling each
/// image by its own maximum would turn a bright defect in one of them into
/// a gain difference over the whole die. The shift is `bits − 8`, where
/// `bits` is the sensor's significant bits: given by `--bits` (fixed, so a
/// threshold means the same on every die of a wafer), or else the fewest
/// bits that hold the largest value in the set (a 12-bit camera's data in
/// a 16-bit file then keeps all 8 upper bits of its range).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SixteenToEight {
    pub shift: u32,
    /// Where the shift came from, for the note on stderr.
    pub from_option: bool,
}

impl SixteenToEight {
    pub fn choose(bits: Option<u8>, largest_value: u16) -> Self {
        match bits {
            Some(b) => Self {
                shift: (b as u32).saturating_sub(8),
                from_option: true,
            },
            None => {
                let needed = 16 - largest_value.leading_zeros();
                Self {
                    shift: needed.saturating_sub(8),
                    from_option: false,
                }
            }
        }
    }

    /// 8-bit pixels of `img`, and how many saturated at 255 (values above
    /// the given `--bits`).
    pub fn apply(&self, img: RawImage) -> (Vec<u8>, u64) {
        match img.samples {
            Samples::Eight(v) => (v, 0),
            Samples::Sixteen(v) => {
                let mut clipped = 0u64;
                let out = v
                    .iter()
                    .map(|&s| {
                        let reduced = s >> self.shift;
                        if reduced > 255 {
                            clipped += 1;
                        }
                        reduced.min(255) as u8
                    })
                    .collect();
                (out, clipped)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shift_keeps_the_top_eight_significant_bits() {
        assert_eq!(SixteenToEight::choose(None, 4095).shift, 4);
        assert_eq!(SixteenToEight::choose(None, 65535).shift, 8);
        assert_eq!(SixteenToEight::choose(None, 200).shift, 0);
        assert_eq!(SixteenToEight::choose(Some(12), 65535).shift, 4);
        let img = RawImage {
            width: 3,
            height: 1,
            samples: Samples::Sixteen(vec![16, 4095, 65535]),
            converted_from: None,
        };
        let (px, clipped) = SixteenToEight::choose(Some(12), 0).apply(img);
        assert_eq!((px, clipped), (vec![1, 255, 255], 1));
    }
}
