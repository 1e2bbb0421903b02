//! Retention of the files a station piles up day after day: the daily log
//! files and the per-run thumbnail directories. Anything whose last change
//! is older than the retention period is deleted, at start and once a day.

use std::path::Path;
use std::time::{Duration, SystemTime};

/// What one retention pass removed and what it could not.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Swept {
    pub removed: usize,
    /// "path: error" for each entry that could not be removed or read.
    pub failures: Vec<String>,
}

/// Removes the entries of `dir` whose names start with `prefix` and whose
/// modification time is more than `keep` before `now` (files, or whole
/// directories such as `run-17/`). A missing `dir` is nothing to do.
pub fn sweep(dir: &Path, prefix: &str, keep: Duration, now: SystemTime) -> Swept {
    let mut swept = Swept::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return swept,
        Err(e) => {
            swept.failures.push(format!("{}: {e}", dir.display()));
            return swept;
        }
    };
    for entry in entries {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                swept.failures.push(format!("{}: {e}", dir.display()));
                continue;
            }
        };
        if !entry.file_name().to_string_lossy().starts_with(prefix) {
            continue;
        }
        let path = entry.path();
        let meta = match entry.metadata() {
            Ok(m) => m,
            Err(e) => {
                swept.failures.push(format!("{}: {e}", path.display()));
                continue;
            }
        };
        let Ok(modified) = meta.modified() else {
            continue;
        };
        // A modification time in the future (clock set back) is kept.
        let Ok(age) = now.duration_since(modified) else {
            continue;
        };
        if age <= keep {
            continue;
        }
        let removed = if meta.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match removed {
            Ok(()) => swept.removed += 1,
            Err(e) => swept.failures.push(format!("{}: {e}", path.display())),
        }
    }
    swept
}

/// Days as a `Duration`.
pub fn days(n: u32) -> Duration {
    Duration::from_secs(u64::from(n) * 86_400)
}

/// Sweeps `dir` now and then once a day on a background thread, logging
/// what it removed and what failed, until the process ends. `days == 0`
/// keeps everything.
pub fn keep_days(
    dir: &Path,
    prefix: &'static str,
    days_kept: u32,
) -> std::io::Result<Option<std::thread::JoinHandle<()>>> {
    if days_kept == 0 {
        return Ok(None);
    }
    let dir = dir.to_owned();
    let keep = days(days_kept);
    let sweep_and_log = move |dir: &Path| {
        let s = sweep(dir, prefix, keep, SystemTime::now());
        if s.removed > 0 {
            tracing::info!(
                dir = %dir.display(),
                removed = s.removed,
                "retention: removed entries older than {days_kept} days"
            );
        }
        for f in &s.failures {
            tracing::warn!("retention: cannot remove {f}");
        }
    };
    // The first sweep runs before the caller goes on, so a station that
    // starts after a long pause frees its space at once.
    sweep_and_log(&dir);
    // Watched, so the Health panel lists it; it is idle between sweeps.
    crate::hot::liveness::spawn_watched(
        &format!("retention-{prefix}"),
        Duration::from_secs(3600),
        move |health| loop {
            health.idle();
            std::thread::sleep(Duration::from_secs(86_400));
            health.beat();
            sweep_and_log(&dir);
        },
    )
    .map(|(handle, _health)| Some(handle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, FileTimes};

    fn age(path: &Path, by: Duration) {
        let t = SystemTime::now() - by;
        let f = File::options()
            .write(true)
            .open(path)
            .or_else(|_| File::open(path))
            .unwrap();
        f.set_times(FileTimes::new().set_modified(t).set_accessed(t))
            .unwrap();
    }

    #[test]
    fn removes_only_old_entries_with_the_prefix() {
        let d = std::env::temp_dir().join(format!("waferscope-retention-{}", std::process::id()));
        std::fs::create_dir_all(d.join("run-1")).unwrap();
        std::fs::create_dir_all(d.join("run-2")).unwrap();
        std::fs::write(d.join("run-1/die-0-defect-1.png"), b"x").unwrap();
        for f in [
            "waferscope.log.2026-01-01",
            "waferscope.log.2026-11-28",
            "notes.txt",
        ] {
            std::fs::write(d.join(f), b"x").unwrap();
        }
        age(&d.join("waferscope.log.2026-01-01"), days(40));
        age(&d.join("notes.txt"), days(40));
        age(&d.join("run-1"), days(31));
        let logs = sweep(&d, "waferscope.log", days(30), SystemTime::now());
        assert_eq!(
            logs,
            Swept {
                removed: 1,
                failures: vec![]
            }
        );
        let thumbs = sweep(&d, "run-", days(30), SystemTime::now());
        assert_eq!(thumbs.removed, 1);
        let mut left: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["notes.txt", "run-2", "waferscope.log.2026-11-28"]);
        assert_eq!(
            sweep(&d.join("missing"), "run-", days(1), SystemTime::now()),
            Swept::default()
        );
        std::fs::remove_dir_all(d).ok();
    }
}
