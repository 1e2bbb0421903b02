//! Output directories are checked before anything is started that would
//! write into them: a run whose KLARF, thumbnails or log cannot be written
//! must be refused up front, not discovered failing at the end.

use anyhow::{anyhow, Result};
use std::path::Path;

/// Creates `dir` (and its parents) if missing, then proves it writable by
/// creating and removing a probe file. `what` names the directory in the
/// error ("--klarf-dir", "the log directory" …).
pub fn ensure_writable_dir(dir: &Path, what: &str) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow!("{what} {}: cannot create the directory: {e}", dir.display()))?;
    if !dir.is_dir() {
        return Err(anyhow!("{what} {}: not a directory", dir.display()));
    }
    // The process id keeps two stations probing one directory apart.
    let probe = dir.join(format!(".waferscope-write-probe-{}", std::process::id()));
    std::fs::write(&probe, b"probe")
        .map_err(|e| anyhow!("{what} {}: not writable: {e}", dir.display()))?;
    std::fs::remove_file(&probe).map_err(|e| {
        anyhow!(
            "{what} {}: a probe file could be written but not removed: {e}",
            dir.display()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::ensure_writable_dir;

    #[test]
    fn creates_a_missing_directory_and_leaves_no_probe_behind() {
        let d = std::env::temp_dir().join(format!("waferscope-dirs-{}", std::process::id()));
        let inner = d.join("a/b");
        ensure_writable_dir(&inner, "--klarf-dir").unwrap();
        assert!(inner.is_dir());
        assert_eq!(std::fs::read_dir(&inner).unwrap().count(), 0);
        let file = d.join("file");
        std::fs::write(&file, b"x").unwrap();
        let e = ensure_writable_dir(&file, "--klarf-dir").unwrap_err();
        assert!(
            e.to_string()
                .starts_with(&format!("--klarf-dir {}", file.display())),
            "{e}"
        );
        std::fs::remove_dir_all(d).ok();
    }
}
