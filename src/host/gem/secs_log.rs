//! The SECS log: every message in and out, with its UTC time, direction,
//! SxFy, W-bit, system bytes and a one-line summary of its body. Kept in a
//! bounded ring for the window's panel and appended to `secs.log` in the
//! station's log directory by a writer thread of its own behind a bounded
//! queue, so a slow disk never holds up the GEM task.
//!
//! Nothing is dropped silently: a line that does not fit the queue, and a
//! write that fails, is counted (`dropped`, `write_failures`) and logged
//! through `tracing`; the ring keeps it either way.

use std::collections::VecDeque;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};

use super::clock::{format_time, system_unix_ms, TIME_FORMAT_ISO};

/// Lines kept in memory for the window.
pub const RING_LINES: usize = 1000;
/// Lines queued for the file writer at most.
const QUEUE_LINES: usize = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the host.
    In,
    /// To the host.
    Out,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecsLogLine {
    pub unix_ms: i64,
    pub direction: Direction,
    pub stream: u8,
    pub function: u8,
    pub w_bit: bool,
    pub system: u32,
    /// The body's one-line SML summary, or what was wrong with it.
    pub summary: String,
}

impl fmt::Display for SecsLogLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} S{}F{}{} sys={:#010x} {}",
            format_time(self.unix_ms, TIME_FORMAT_ISO).as_str(),
            match self.direction {
                Direction::In => "<-",
                Direction::Out => "->",
            },
            self.stream,
            self.function,
            if self.w_bit { " W" } else { "" },
            self.system,
            self.summary
        )
    }
}

struct Counters {
    dropped: AtomicU64,
    write_failures: AtomicU64,
}

pub struct SecsLog {
    ring: Mutex<VecDeque<SecsLogLine>>,
    file: Option<SyncSender<String>>,
    path: Option<PathBuf>,
    counters: Arc<Counters>,
}

impl SecsLog {
    /// A log kept in memory and appended to `path` (created with its
    /// directory if missing).
    pub fn open(path: &Path) -> Result<SecsLog> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the SECS log directory {}", dir.display()))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening the SECS log {}", path.display()))?;
        let counters = Arc::new(Counters {
            dropped: AtomicU64::new(0),
            write_failures: AtomicU64::new(0),
        });
        let (tx, rx) = sync_channel::<String>(QUEUE_LINES);
        let c = counters.clone();
        let shown = path.display().to_string();
        std::thread::Builder::new()
            .name("secs-log".into())
            .spawn(move || {
                let mut out = std::io::BufWriter::new(file);
                while let Ok(line) = rx.recv() {
                    let mut result = writeln!(out, "{line}");
                    // Write out what is queued, then flush once: a burst
                    // costs one write, a quiet log is on disk at once.
                    while let Ok(more) = rx.try_recv() {
                        result = result.and_then(|()| writeln!(out, "{more}"));
                    }
                    if let Err(e) = result.and_then(|()| out.flush()) {
                        let n = c.write_failures.fetch_add(1, Ordering::Relaxed) + 1;
                        tracing::error!("SECS log {shown}: write failed ({n} so far): {e}");
                    }
                }
            })
            .context("starting the SECS log writer thread")?;
        Ok(SecsLog {
            ring: Mutex::new(VecDeque::with_capacity(RING_LINES)),
            file: Some(tx),
            path: Some(path.to_path_buf()),
            counters,
        })
    }

    /// A log kept in memory only.
    pub fn in_memory() -> SecsLog {
        SecsLog {
            ring: Mutex::new(VecDeque::with_capacity(RING_LINES)),
            file: None,
            path: None,
            counters: Arc::new(Counters {
                dropped: AtomicU64::new(0),
                write_failures: AtomicU64::new(0),
            }),
        }
    }

    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    pub fn record(
        &self,
        direction: Direction,
        stream: u8,
        function: u8,
        w_bit: bool,
        system: u32,
        summary: String,
    ) {
        let line = SecsLogLine {
            unix_ms: system_unix_ms(),
            direction,
            stream,
            function,
            w_bit,
            system,
            summary,
        };
        tracing::debug!("SECS {line}");
        if let Some(tx) = &self.file {
            match tx.try_send(line.to_string()) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => {
                    let n = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::error!(
                        "SECS log writer behind: line not written to the file ({n} so far): {line}"
                    );
                }
                Err(TrySendError::Disconnected(_)) => {
                    let n = self.counters.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::error!("SECS log writer stopped: line not written to the file ({n} so far): {line}");
                }
            }
        }
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() == RING_LINES {
            ring.pop_front();
        }
        ring.push_back(line);
    }

    /// The newest `n` lines, oldest first.
    pub fn tail(&self, n: usize) -> Vec<SecsLogLine> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.iter()
            .skip(ring.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    /// Lines that did not reach the file because the writer was behind or
    /// gone.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Writes to the file that failed.
    pub fn write_failures(&self) -> u64 {
        self.counters.write_failures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_reach_the_ring_and_the_file() {
        let dir = std::env::temp_dir().join(format!("secs-log-{}", std::process::id()));
        let path = dir.join("logs/secs.log");
        let log = SecsLog::open(&path).unwrap();
        for i in 0..(RING_LINES as u32 + 5) {
            log.record(Direction::In, 1, 3, true, i, "<L[0]>".into());
        }
        log.record(Direction::Out, 1, 4, false, 7, "<L[1] <U4 1>>".into());
        let tail = log.tail(2);
        assert_eq!(tail.len(), 2);
        assert_eq!(tail[1].function, 4);
        assert_eq!(log.tail(usize::MAX).len(), RING_LINES);
        let want = RING_LINES + 6;
        let mut text = String::new();
        for _ in 0..200 {
            text = std::fs::read_to_string(&path).unwrap();
            if text.lines().count() == want {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(text.lines().count(), want);
        let last = text.lines().last().unwrap();
        assert!(
            last.contains("-> S1F4 sys=0x00000007 <L[1] <U4 1>>"),
            "{last}"
        );
        assert!(last.ends_with(">>") && last.contains('T') && last.contains('Z'));
        assert_eq!((log.dropped(), log.write_failures()), (0, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
