//! The audit trail's own writer thread. A record is queued and written
//! there, so no caller waits for SQLite: not the UI thread, not the run
//! engine's single async worker, not the GEM task (a write commits with
//! `synchronous=FULL` and may wait up to its busy timeout while the store
//! writes). Entries are written in the order they were queued; the queue
//! is drained before the thread ends (the guard joins it when dropped), so
//! a command recorded just before the program stops is not lost.

use super::audit::{AuditLog, NewEntry, Source};
use crate::hot::Counter;
use std::sync::Arc;
use std::thread::JoinHandle;

/// One entry, owned: it crosses to the writer thread.
#[derive(Debug, Clone)]
pub struct QueuedEntry {
    pub at_ms: i64,
    pub user: String,
    pub role: String,
    pub source: Source,
    pub action: String,
    pub params: String,
    pub accepted: bool,
    pub reason: String,
}

enum Job {
    Write(QueuedEntry),
    /// Answered once everything queued before it is written.
    Flush(flume::Sender<()>),
}

pub struct AuditWriter {
    tx: Option<flume::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    /// Entries that could not be written (each also logged as an error);
    /// shown on the Health panel.
    pub failures: Arc<Counter>,
}

impl AuditWriter {
    pub fn start(log: AuditLog) -> std::io::Result<AuditWriter> {
        let (tx, rx) = flume::unbounded::<Job>();
        let failures = Arc::new(Counter::default());
        let counted = failures.clone();
        let thread = std::thread::Builder::new()
            .name("audit-writer".into())
            .spawn(move || write_all(log, rx, &counted))?;
        Ok(AuditWriter {
            tx: Some(tx),
            thread: Some(thread),
            failures,
        })
    }

    /// Queues `e`; never blocks. A writer that is gone (it panicked) makes
    /// this an error, logged and counted, never silent.
    pub fn write(&self, e: QueuedEntry) {
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(Job::Write(e.clone())).is_ok());
        if !sent {
            self.failures.incr();
            tracing::error!(
                "the audit writer has stopped: {} by {} ({}) is not recorded",
                e.action,
                e.user,
                e.source.as_str()
            );
        }
    }

    /// Waits until everything queued so far is written (tests, and
    /// readers that must see their own entries).
    pub fn flush(&self) {
        let (done, wait) = flume::bounded(1);
        if self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(Job::Flush(done)).is_ok())
        {
            // An error here: the writer ended; nothing more will be written.
            wait.recv().ok();
        }
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        // Closing the queue ends the thread once it is drained.
        self.tx.take();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the audit writer panicked: entries queued before it are lost");
            }
        }
    }
}

fn write_all(mut log: AuditLog, rx: flume::Receiver<Job>, failures: &Counter) {
    for job in rx.iter() {
        match job {
            Job::Write(e) => {
                let entry = NewEntry {
                    user: &e.user,
                    role: &e.role,
                    source: e.source,
                    action: &e.action,
                    params: &e.params,
                    accepted: e.accepted,
                    reason: &e.reason,
                };
                if let Err(err) = log.append(&entry, e.at_ms) {
                    failures.incr();
                    tracing::error!(
                        "the audit trail could not record {} by {}: {err:#}",
                        e.action,
                        e.user
                    );
                }
            }
            // The asker may have stopped waiting.
            Job::Flush(done) => {
                done.send(()).ok();
            }
        }
    }
}
