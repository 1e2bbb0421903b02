//! Wakes an idle window when something the operator must see changes.
//!
//! An idle window draws once a second (`app::IDLE_REPAINT`). Without this,
//! an alarm raised just after a frame would appear up to a second late, and
//! so would a run the host started. A thread beside the window reads the
//! alarm and run snapshots every `LOOK_EVERY` and asks egui for a frame when
//! an alarm changes (raised, cleared, acknowledged, shelved; the evaluator
//! stopped) or the run engine publishes (it publishes on change only).
//! While a run moves the window draws at camera rate anyway; the asks then
//! merge with its own.

use crate::hot::LatestReader;
use crate::monitor::AlarmSnapshot;
use crate::run::RunSnapshot;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the snapshots are read: an alarm shows within this and a
/// frame.
pub const LOOK_EVERY: Duration = Duration::from_millis(50);

pub struct Waker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// What of the alarm snapshot, when it changes, the operator must see at
/// once (not its timestamp, which changes every evaluator period).
fn alarm_state(a: &AlarmSnapshot) -> (u64, [u16; 3], [u16; 3], u16, u16, u16, bool, bool) {
    (
        a.transitions,
        a.active,
        a.unacknowledged,
        a.shelved,
        a.flood_more,
        a.count,
        a.evaluator_stopped,
        a.ended,
    )
}

impl Waker {
    /// No thread (it could not be given its readers): the window runs at
    /// its idle cadence.
    pub fn none() -> Self {
        Self {
            stop: Arc::new(AtomicBool::new(false)),
            thread: None,
        }
    }

    /// Starts the thread; `wake` asks the window for a frame (egui's
    /// `request_repaint`). If the thread cannot start, the window runs at
    /// its idle cadence and the failure is logged.
    pub fn start(
        mut alarms: LatestReader<AlarmSnapshot>,
        mut run: LatestReader<RunSnapshot>,
        wake: impl Fn() + Send + 'static,
    ) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ui-waker".into())
            .spawn(move || {
                let mut last_alarms = alarm_state(&alarms.read().value);
                let mut last_run = run.read().value.taken_ns;
                while !s.load(Ordering::Acquire) {
                    std::thread::sleep(LOOK_EVERY);
                    let a = alarm_state(&alarms.read().value);
                    let r = run.read().value.taken_ns;
                    if a != last_alarms || r != last_run {
                        (last_alarms, last_run) = (a, r);
                        wake();
                    }
                }
            })
            .map_err(|e| tracing::error!("cannot start the UI waker thread: {e}"))
            .ok();
        Self { stop, thread }
    }
}

impl Drop for Waker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the UI waker thread panicked");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::latest_cell;
    use std::sync::atomic::AtomicU64;

    /// A new alarm transition and a run engine publication each wake the
    /// window once; the evaluator republishing the same alarms every
    /// period (a new timestamp only) does not.
    #[test]
    fn alarm_changes_and_run_publications_wake_and_timestamps_alone_do_not() {
        let (mut alarm_w, alarm_sub) = latest_cell(AlarmSnapshot::default());
        let (mut run_w, run_sub) = latest_cell(RunSnapshot::default());
        let wakes = Arc::new(AtomicU64::new(0));
        let w = wakes.clone();
        let waker = Waker::start(
            alarm_sub.reader().unwrap(),
            run_sub.reader().unwrap(),
            move || {
                w.fetch_add(1, Ordering::SeqCst);
            },
        );
        let settle = || std::thread::sleep(LOOK_EVERY * 4);
        for t in 1..=5 {
            alarm_w.publish(AlarmSnapshot {
                taken_ns: t,
                ..Default::default()
            });
            std::thread::sleep(LOOK_EVERY);
        }
        settle();
        assert_eq!(wakes.load(Ordering::SeqCst), 0, "timestamps alone woke it");
        alarm_w.publish(AlarmSnapshot {
            transitions: 1,
            active: [0, 0, 1],
            ..Default::default()
        });
        settle();
        assert_eq!(wakes.load(Ordering::SeqCst), 1, "an alarm raised");
        run_w.publish(RunSnapshot {
            taken_ns: 42,
            ..Default::default()
        });
        settle();
        assert_eq!(wakes.load(Ordering::SeqCst), 2, "the run engine published");
        drop(waker);
    }
}
