//! Standard output that fails instead of panicking. `println!` panics
//! (exit 101) when stdout is closed — `waferscope inspect … | head -2`,
//! `waferscope runs | head -1` — or full; here that is an [`OutputFailed`]
//! error, which `main` turns into its own documented exit code.

use std::io::Write;

/// Standard output could not be written.
#[derive(Debug)]
pub struct OutputFailed(pub std::io::Error);

impl std::fmt::Display for OutputFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.kind() == std::io::ErrorKind::BrokenPipe {
            write!(
                f,
                "standard output was closed before everything was written (the reader of the pipe went away)"
            )
        } else {
            write!(f, "cannot write to standard output: {}", self.0)
        }
    }
}

impl std::error::Error for OutputFailed {}

/// Writes one line to stdout.
pub fn line(args: std::fmt::Arguments) -> Result<(), OutputFailed> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
        .map_err(OutputFailed)
}

/// Writes one line to stderr. If stderr itself is gone there is nowhere
/// left to say anything, so the failure is dropped on purpose (and
/// `eprintln!`, which would panic, is not used).
pub fn note(args: std::fmt::Arguments) {
    let mut err = std::io::stderr().lock();
    if err
        .write_fmt(args)
        .and_then(|()| err.write_all(b"\n"))
        .is_err()
    {
        // stderr closed: no channel left to report on.
    }
}

/// `outln!("…", …)?`: a line on stdout, or an [`OutputFailed`] error.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::out::line(format_args!($($arg)*))
    };
}

/// `errln!("…", …)`: a line on stderr that never panics.
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::out::note(format_args!($($arg)*))
    };
}
