//! Logging: `tracing` to a daily log file (and, for the interactive GUI, to
//! stderr as well).

use std::path::Path;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::{fmt, prelude::*, EnvFilter};

/// Starts logging to `dir/waferscope.log.YYYY-MM-DD` (a new file each day).
/// Keep the guard alive for as long as the program logs.
pub fn init(dir: &Path, also_stderr: bool) -> anyhow::Result<WorkerGuard> {
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("{}: cannot create the log directory: {e}", dir.display()))?;
    let appender = tracing_appender::rolling::daily(dir, "waferscope.log");
    let (writer, guard) = tracing_appender::non_blocking(appender);
    let filter =
        EnvFilter::try_from_env("WAFERSCOPE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let file = fmt::layer().with_writer(writer).with_ansi(false);
    let stderr = also_stderr.then(|| fmt::layer().with_writer(std::io::stderr));
    // A second init (tests) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(file)
        .with(stderr)
        .try_init();
    Ok(guard)
}
