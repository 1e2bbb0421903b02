//! Exports retried in the background. A run whose KLARF could not be
//! written when it ended (export directory missing, disk full, read-only)
//! is written again every few seconds, on a thread of its own, until it
//! succeeds; the run engine goes on with the next wafer meanwhile. While
//! any run waits, the `ExportFailing` software condition is set, so its
//! alarm is active; it clears once the last waiting run is written, and
//! each written run's recorded export failure is updated.
//!
//! Nothing is lost while a file is late: the results are in the database.
//! A run still waiting when the station stops keeps its export failure in
//! its record (`waferscope runs`), to be repeated with `waferscope export`.

use crate::hot::liveness::{join_named, spawn_watched, ThreadHealth};
use crate::monitor::{SoftwareCondition, SoftwareConditions};
use anyhow::{anyhow, Context, Result};
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The retry thread's name (health panel, logs).
pub const RETRY_THREAD: &str = "klarf-retry";

/// A run whose exports are to be written again.
#[derive(Debug, Clone, PartialEq)]
pub struct Waiting {
    pub run: u64,
    /// What else was not exported (thumbnails, repeater analysis), kept as
    /// the run's export failure once its KLARF is written; `None`: nothing.
    pub remaining: Option<String>,
}

/// Writes one run's exports, returning the files written.
pub type ExportFn = Box<dyn FnMut(u64) -> Result<Vec<PathBuf>> + Send>;
/// Records a run's export failure once its exports are written (`None`:
/// nothing failed any more).
pub type RecordFn = Box<dyn FnMut(u64, Option<&str>) -> Result<()> + Send>;

pub struct ExportRetry {
    tx: Option<Sender<Waiting>>,
    thread: Option<JoinHandle<()>>,
    pending: Arc<Pending>,
}

/// Runs queued and not yet written, and the alarm condition that says so.
/// The count and the condition change together under one lock: a run
/// queued while the retry thread finishes a pass can never be cleared
/// away by that pass (the thread knows only what it has received).
struct Pending {
    count: std::sync::Mutex<usize>,
    conditions: Option<Arc<SoftwareConditions>>,
}

impl Pending {
    fn change(&self, up: bool) {
        let mut n = self.count.lock().unwrap_or_else(|e| e.into_inner());
        *n = if up { *n + 1 } else { n.saturating_sub(1) };
        if let Some(c) = &self.conditions {
            c.set(SoftwareCondition::ExportFailing, *n > 0);
        }
    }
}

impl ExportRetry {
    /// Starts the retry thread, which tries every waiting run each `every`.
    /// `conditions`: where the export alarm's condition is set (`None`:
    /// no alarm, e.g. a store without a station).
    pub fn start(
        every: Duration,
        export: ExportFn,
        record: RecordFn,
        conditions: Option<Arc<SoftwareConditions>>,
    ) -> Result<Self> {
        let (tx, rx) = unbounded::<Waiting>();
        let pending = Arc::new(Pending {
            count: std::sync::Mutex::new(0),
            conditions,
        });
        let flags = pending.clone();
        let (thread, _health) = spawn_watched(
            RETRY_THREAD,
            // An attempt on a hung network share may take long; waiting
            // between attempts is idle, not a stall.
            Duration::from_secs(120),
            move |health| retry_loop(rx, every, export, record, flags, health),
        )
        .context("starting the KLARF retry thread")?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            pending,
        })
    }

    /// Queues a run for retrying; its alarm condition is set at once.
    pub fn add(&self, waiting: Waiting) -> Result<()> {
        self.pending.change(true);
        let run = waiting.run;
        let sent = self
            .tx
            .as_ref()
            .ok_or_else(|| anyhow!("the KLARF retry has stopped"))
            .and_then(|tx| {
                tx.send(waiting)
                    .map_err(|_| anyhow!("run {run}: the KLARF retry thread has stopped"))
            });
        if sent.is_err() {
            // Not queued: nothing will write it, and the condition must
            // not wait for it (the caller records the failure).
            self.pending.change(false);
        }
        sent
    }
}

impl Drop for ExportRetry {
    fn drop(&mut self) {
        // Closing the queue ends the thread after its current attempt.
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            if let Err(why) = join_named(RETRY_THREAD, t) {
                tracing::error!("{why}");
            }
        }
    }
}

fn retry_loop(
    rx: Receiver<Waiting>,
    every: Duration,
    mut export: ExportFn,
    mut record: RecordFn,
    pending: Arc<Pending>,
    health: &ThreadHealth,
) {
    let mut waiting: Vec<(Waiting, u32)> = Vec::new();
    let mut next_try = Instant::now() + every;
    loop {
        health.idle();
        let got = if waiting.is_empty() {
            rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
        } else {
            rx.recv_timeout(next_try.saturating_duration_since(Instant::now()))
        };
        health.beat();
        match got {
            Ok(w) => {
                // It has just failed: the first retry comes a period later.
                if waiting.is_empty() {
                    next_try = Instant::now() + every;
                }
                if waiting.iter().any(|(q, _)| q.run == w.run) {
                    // Already waiting: counted once.
                    pending.change(false);
                } else {
                    waiting.push((w, 0));
                }
                continue;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        waiting.retain_mut(|(w, attempts)| {
            *attempts += 1;
            match export(w.run) {
                Ok(files) => {
                    for f in &files {
                        tracing::info!(run = w.run, attempts = *attempts, file = %f.display(), "exported on retry");
                    }
                    if let Err(e) = record(w.run, w.remaining.as_deref()) {
                        tracing::error!(
                            run = w.run,
                            "KLARF written on retry, but the run's record still says it is not: {e:#}"
                        );
                    }
                    pending.change(false);
                    false
                }
                Err(e) => {
                    tracing::debug!(run = w.run, attempts = *attempts, "KLARF retry failed: {e:#}");
                    true
                }
            }
        });
        next_try = Instant::now() + every;
    }
    for (w, attempts) in waiting {
        tracing::error!(
            run = w.run,
            attempts,
            "KLARF still not written as the station stops (the run's record says so): repeat with `waferscope export --run {}`",
            w.run
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two runs queued, one written: the alarm condition holds until the
    /// other is written too, whatever order the thread learns of them in.
    #[test]
    fn the_condition_holds_while_any_queued_run_is_unwritten() {
        let c = Arc::new(SoftwareConditions::default());
        let p = Pending {
            count: std::sync::Mutex::new(0),
            conditions: Some(c.clone()),
        };
        p.change(true);
        p.change(true);
        p.change(false);
        assert!(c.is_active(SoftwareCondition::ExportFailing));
        p.change(false);
        assert!(!c.is_active(SoftwareCondition::ExportFailing));
        p.change(false);
        assert!(
            !c.is_active(SoftwareCondition::ExportFailing),
            "never below zero"
        );
    }
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Mutex;

    /// A run waits (alarm set) while its export fails, is written once it
    /// works, its record updated with what else failed, and the alarm
    /// clears; nothing is tried after the queue closes.
    #[test]
    fn a_failed_export_is_retried_until_written_and_the_condition_follows() {
        let works = Arc::new(AtomicBool::new(false));
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let flags = Arc::new(SoftwareConditions::default());
        let (w, r) = (works.clone(), recorded.clone());
        let retry = ExportRetry::start(
            Duration::from_millis(5),
            Box::new(move |run| {
                if w.load(Ordering::SeqCst) {
                    Ok(vec![PathBuf::from(format!("run{run}.klarf"))])
                } else {
                    Err(anyhow!("directory missing"))
                }
            }),
            Box::new(move |run: u64, remaining: Option<&str>| {
                r.lock().unwrap().push((run, remaining.map(str::to_owned)));
                Ok(())
            }),
            Some(flags.clone()),
        )
        .unwrap();
        retry
            .add(Waiting {
                run: 4,
                remaining: Some("2 defect thumbnails not written".into()),
            })
            .unwrap();
        assert!(flags.is_active(SoftwareCondition::ExportFailing));
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            flags.is_active(SoftwareCondition::ExportFailing),
            "still failing"
        );
        assert!(recorded.lock().unwrap().is_empty());
        works.store(true, Ordering::SeqCst);
        let give_up = Instant::now() + Duration::from_secs(10);
        while flags.is_active(SoftwareCondition::ExportFailing) && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(!flags.is_active(SoftwareCondition::ExportFailing));
        assert_eq!(
            *recorded.lock().unwrap(),
            [(4, Some("2 defect thumbnails not written".to_owned()))]
        );
    }
}
