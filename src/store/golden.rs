//! Taught golden dies on disk: one 8-bit grey PNG per recipe,
//! `<dir>/<recipe id>.png`, written atomically (temporary file + rename) so
//! a station that dies mid-write leaves the previous golden intact.

use anyhow::{anyhow, bail, Context, Result};
use std::path::{Path, PathBuf};

/// Where the golden of `recipe_id` lives in `dir`. Characters a file name
/// should not carry become `_`.
pub fn golden_path(dir: &Path, recipe_id: &str) -> PathBuf {
    let name: String = recipe_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    dir.join(format!("{}.png", name.trim_start_matches('.')))
}

/// Writes a golden die; returns its path.
pub fn save_golden(
    dir: &Path,
    recipe_id: &str,
    width: u32,
    height: u32,
    pixels: &[u8],
) -> Result<PathBuf> {
    crate::store::dirs::ensure_writable_dir(dir, "the golden die directory")?;
    let path = golden_path(dir, recipe_id);
    let tmp = path.with_extension(format!("png.tmp-{}", std::process::id()));
    let written = image::save_buffer_with_format(
        &tmp,
        pixels,
        width,
        height,
        image::ExtendedColorType::L8,
        image::ImageFormat::Png,
    )
    .with_context(|| format!("{}: cannot write the golden die", tmp.display()))
    .and_then(|()| {
        // On disk before it replaces the previous golden.
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .with_context(|| format!("{}: cannot flush the golden die", tmp.display()))
    });
    if let Err(e) = written {
        std::fs::remove_file(&tmp).ok(); // a partial file is of no use
        return Err(e);
    }
    std::fs::rename(&tmp, &path).map_err(|e| {
        std::fs::remove_file(&tmp).ok();
        anyhow!(
            "{}: cannot put the golden die in place: {e}",
            path.display()
        )
    })?;
    Ok(path)
}

/// The golden die taught for `recipe_id`, if there is one. One of the wrong
/// size (the recipe's optics changed since) or unreadable is an error
/// naming the file: it must be taught again, never silently ignored.
pub fn load_golden(
    dir: &Path,
    recipe_id: &str,
    width: u32,
    height: u32,
) -> Result<Option<Vec<u8>>> {
    let path = golden_path(dir, recipe_id);
    // An unreadable directory is an error, not "no golden" (which would
    // teach a new one over it).
    if !path
        .try_exists()
        .with_context(|| format!("{}: cannot look for the golden die", path.display()))?
    {
        return Ok(None);
    }
    let img = image::open(&path)
        .with_context(|| format!("{}: not a readable golden die image", path.display()))?;
    let image::DynamicImage::ImageLuma8(gray) = img else {
        bail!(
            "{}: a golden die is an 8-bit grey PNG; teach it again (`waferscope teach`)",
            path.display()
        );
    };
    if (gray.width(), gray.height()) != (width, height) {
        bail!(
            "{}: the golden die is {}×{} px but recipe {recipe_id} images {width}×{height} px; teach it again (`waferscope teach`)",
            path.display(),
            gray.width(),
            gray.height()
        );
    }
    Ok(Some(gray.into_raw()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_goldens_load_back_and_a_wrong_size_is_refused_naming_the_file() {
        let d = std::env::temp_dir().join(format!("waferscope-golden-{}", std::process::id()));
        let px: Vec<u8> = (0..64 * 32).map(|i| (i % 251) as u8).collect();
        let path = save_golden(&d, "FULL/300 mm", 64, 32, &px).unwrap();
        assert_eq!(path, d.join("FULL_300_mm.png"));
        assert_eq!(load_golden(&d, "FULL/300 mm", 64, 32).unwrap(), Some(px));
        let e = load_golden(&d, "FULL/300 mm", 64, 64)
            .unwrap_err()
            .to_string();
        assert!(e.contains("FULL_300_mm.png") && e.contains("64×32"), "{e}");
        assert_eq!(load_golden(&d, "other", 64, 32).unwrap(), None);
        std::fs::write(golden_path(&d, "junk"), b"not a png").unwrap();
        let e = load_golden(&d, "junk", 64, 32).unwrap_err().to_string();
        assert!(e.contains("junk.png"), "{e}");
        std::fs::remove_dir_all(d).ok();
    }
}
