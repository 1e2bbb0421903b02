//! Whole-file writes that a crash or power cut cannot leave half done, and
//! setting aside a damaged file so the station can still start: shared by
//! the process programs, the persisted GEM state and the event reports.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Distinguishes temporary files of concurrent writes in one process.
static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Writes `bytes` to `path` through a temporary file in the same
/// directory: synced, renamed over `path`, then the directory synced so the
/// rename itself survives a power cut. The temporary file is removed on
/// failure.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .map_or_else(|| "file".into(), |n| n.to_string_lossy());
    let temp = dir.join(format!(
        ".{name}-{}-{}.part",
        std::process::id(),
        TEMP_SEQ.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = std::fs::File::create_new(&temp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&temp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        // Best effort: the temporary file may not exist (create failed).
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Renames a file that cannot be read as what it should be to
/// `<name>.bad-<unix-secs>` beside it (kept for the operator, never
/// deleted) and returns the new path.
pub fn set_aside(path: &Path) -> std::io::Result<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".bad-{secs}"));
    let mut aside = path.with_file_name(&name);
    // Two bad files within a second: neither may overwrite the other.
    let mut n = 1;
    while aside.exists() {
        let mut unique = name.clone();
        unique.push(format!("-{n}"));
        aside = path.with_file_name(unique);
        n += 1;
    }
    std::fs::rename(path, &aside)?;
    Ok(aside)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_and_sets_aside_without_overwriting() {
        let dir = std::env::temp_dir().join(format!("gem-atomic-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("x.toml");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        let a = set_aside(&path).unwrap();
        write_atomically(&path, b"three").unwrap();
        let b = set_aside(&path).unwrap();
        assert_ne!(a, b);
        assert_eq!(std::fs::read(&a).unwrap(), b"two");
        assert_eq!(std::fs::read(&b).unwrap(), b"three");
        assert!(a.to_string_lossy().contains("x.toml.bad-"), "{a:?}");
        assert!(!path.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
