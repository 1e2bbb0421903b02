//! Logging: `tracing` to a daily log file (and, for the interactive GUI, to
//! stderr as well), with daily files older than the retention period
//! deleted at start and once a day.

use anyhow::Context;
use std::path::Path;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{Builder, Rotation};
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Daily log files are named `waferscope.log.YYYY-MM-DD`.
pub const LOG_PREFIX: &str = "waferscope.log";

/// Days of daily logs and thumbnails kept by default.
pub const DEFAULT_KEEP_DAYS: u32 = 90;

/// Starts logging to `dir/waferscope.log.YYYY-MM-DD` (a new file each day)
/// and deletes log files older than `keep_days` (0 keeps all). A directory
/// that cannot be created or written is an error naming it, checked before
/// any logging starts (the appender would panic on it). Keep the guard
/// alive for as long as the program logs.
pub fn init(dir: &Path, also_stderr: bool, keep_days: u32) -> anyhow::Result<WorkerGuard> {
    crate::store::dirs::ensure_writable_dir(dir, "the log directory")?;
    let appender = Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix(LOG_PREFIX)
        .build(dir)
        .with_context(|| {
            format!(
                "the log directory {}: cannot open the log file",
                dir.display()
            )
        })?;
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter =
        EnvFilter::try_from_env("WAFERSCOPE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let file = fmt::layer().with_writer(writer).with_ansi(false);
    let stderr = also_stderr.then(|| fmt::layer().with_writer(std::io::stderr));
    // A second init (tests) keeps the first subscriber: nothing is lost, the
    // first one's file receives the events.
    if tracing_subscriber::registry()
        .with(filter)
        .with(file)
        .with(stderr)
        .try_init()
        .is_err()
    {
        tracing::debug!("a logger was already installed; keeping it");
    }
    crate::store::retention::keep_days(dir, LOG_PREFIX, keep_days).with_context(|| {
        format!(
            "the log directory {}: cannot start its retention",
            dir.display()
        )
    })?;
    Ok(guard)
}
