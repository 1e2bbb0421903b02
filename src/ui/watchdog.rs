//! The UI watchdog (HMI rule 11): a thread beside the window that logs when
//! the UI thread has been stuck for longer than a threshold (0.5 s), and
//! again, with the stall's length, when it is free again.
//!
//! The window does not draw to prove it is alive: an idle one asks for a
//! frame once a second (the liveness tick's cadence, `app::IDLE_REPAINT`),
//! and drawing five times a second only to feed this watchdog cost the
//! idle window most of its CPU. So a stall is judged against what the
//! window asked for, not against a fixed cadence: the UI thread is stuck
//! from the moment the frame it asked for was due (or, for a frame woken
//! early by input, from when that frame began) until a frame ends. Frozen
//! painting shows as the next frame being late, since eframe paints after
//! our code returns. A window that asked for nothing sooner is merely
//! idle; one the operator is using asks again within
//! `app::AFTER_INPUT_REPAINT`, so a stall in the painting of a frame woken
//! by input is seen within that and the threshold.
//!
//! The UI thread only stores timestamps per frame ([`UiWatchdog::begin`],
//! [`UiWatchdog::end`]); the watching thread does the judging and the
//! logging. A minimised window is not drawn, so the UI says so and its
//! gaps are not stalls.

use crate::hot::now_ns;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the UI thread may be stuck before it is a stall (HMI rule 11).
pub const STALL_THRESHOLD: Duration = Duration::from_millis(500);

/// A frame this much or more before it was due was woken early (less is
/// timer slack).
const WOKEN_EARLY_MARGIN: Duration = Duration::from_millis(5);

/// How often the watching thread looks.
const LOOK_EVERY: Duration = Duration::from_millis(50);

#[derive(Default)]
struct Shared {
    /// `now_ns` when the newest frame began (0: none yet).
    begin_ns: AtomicU64,
    /// `now_ns` when the newest frame ended; below `begin_ns` while the UI
    /// thread is inside a frame.
    end_ns: AtomicU64,
    /// When the frame the newest one asked for is due.
    due_ns: AtomicU64,
    /// The window is minimised: no frames are expected.
    hidden: AtomicBool,
    /// Stalls over the threshold so far (counted when they end).
    stalls: AtomicU64,
    /// The longest stall so far, ms.
    longest_ms: AtomicU64,
    /// The stall in progress, ms so far (0: none).
    current_ms: AtomicU64,
    stop: AtomicBool,
}

/// What the Health panel shows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StallFigures {
    pub stalls: u64,
    pub longest_ms: u64,
    /// The stall in progress (0 when frames are coming).
    pub current_ms: u64,
}

pub struct UiWatchdog {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl UiWatchdog {
    /// Starts the watching thread. If the thread cannot be started, the
    /// window still runs: the failure is logged and the watchdog is off
    /// (its figures stay 0 and the Health panel says it is off).
    pub fn start(threshold: Duration) -> Self {
        let shared = Arc::new(Shared::default());
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("ui-watchdog".into())
            .spawn(move || watch(&s, threshold))
            .map_err(|e| tracing::error!("cannot start the UI watchdog thread: {e}"))
            .ok();
        Self { shared, thread }
    }

    /// Whether the watching thread runs.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Called by the UI thread as a frame begins. Returns whether the
    /// frame began before the one the last frame asked for was due (woken
    /// early: input, or another thread's repaint), by more than timer
    /// slack.
    pub fn begin(&self) -> bool {
        let now = now_ns();
        self.shared.begin_ns.store(now, Ordering::Release);
        let due = self.shared.due_ns.load(Ordering::Acquire);
        due != 0 && now + (WOKEN_EARLY_MARGIN.as_nanos() as u64) < due
    }

    /// Called by the UI thread as a frame ends, with the time after which
    /// it asked for the next one.
    pub fn end(&self, next_after: Duration, minimised: bool) {
        let now = now_ns();
        self.shared.hidden.store(minimised, Ordering::Relaxed);
        let after = u64::try_from(next_after.as_nanos()).unwrap_or(u64::MAX);
        self.shared
            .due_ns
            .store(now.saturating_add(after), Ordering::Release);
        self.shared.end_ns.store(now, Ordering::Release);
    }

    pub fn figures(&self) -> StallFigures {
        StallFigures {
            stalls: self.shared.stalls.load(Ordering::Relaxed),
            longest_ms: self.shared.longest_ms.load(Ordering::Relaxed),
            current_ms: self.shared.current_ms.load(Ordering::Relaxed),
        }
    }
}

impl Drop for UiWatchdog {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("the UI watchdog thread panicked");
            }
        }
    }
}

/// Since when the UI thread has been stuck at `now`, if it has: since the
/// frame it asked for was due, when that frame has not ended (begun late,
/// or not begun at all: tessellation, painting and `swap_buffers` run after
/// `end` and show only as the next frame being late); since the frame
/// began, when it began before it was due (woken early by input) and has
/// not ended. A stall lasts until a frame ends, so one that starts in the
/// painting of one frame and goes on in the next is one stall.
fn stuck_since(s: &Shared, now: u64) -> Option<u64> {
    let begin = s.begin_ns.load(Ordering::Acquire);
    let end = s.end_ns.load(Ordering::Acquire);
    let due = s.due_ns.load(Ordering::Acquire);
    if end == 0 {
        return None; // the first frame (start-up) has not ended yet
    }
    let since = if begin > end { begin.min(due) } else { due };
    (now > since).then_some(since)
}

fn watch(s: &Shared, threshold: Duration) {
    let threshold_ns = threshold.as_nanos() as u64;
    // The stall in progress: since when, and the newest frame end when it
    // was seen (it is over when a frame ends after that).
    let mut stall: Option<(u64, u64)> = None;
    while !s.stop.load(Ordering::Acquire) {
        std::thread::sleep(LOOK_EVERY);
        let now = now_ns();
        if let Some((since, seen_end)) = stall {
            let end = s.end_ns.load(Ordering::Acquire);
            if end == seen_end {
                s.current_ms
                    .store(now.saturating_sub(since) / 1_000_000, Ordering::Relaxed);
                continue;
            }
            let ms = end.saturating_sub(since) / 1_000_000;
            s.stalls.fetch_add(1, Ordering::Relaxed);
            s.longest_ms.fetch_max(ms, Ordering::Relaxed);
            s.current_ms.store(0, Ordering::Relaxed);
            tracing::warn!(stall_ms = ms, "UI thread stall over: stuck for {ms} ms");
            stall = None;
        }
        if s.hidden.load(Ordering::Relaxed) {
            continue; // not drawn
        }
        let seen_end = s.end_ns.load(Ordering::Acquire);
        if let Some(since) = stuck_since(s, now) {
            let length = now - since;
            if length > threshold_ns && s.end_ns.load(Ordering::Acquire) == seen_end {
                s.current_ms.store(length / 1_000_000, Ordering::Relaxed);
                stall = Some((since, seen_end));
                tracing::warn!(
                    threshold_ms = threshold.as_millis() as u64,
                    "UI thread stalled: stuck for over {} ms",
                    threshold.as_millis()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wait_until(what: &str, mut ok: impl FnMut() -> bool) {
        let t0 = std::time::Instant::now();
        while !ok() {
            assert!(t0.elapsed() < Duration::from_secs(10), "{what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A frame that works for `work`, asking for the next after
    /// `next_after`.
    fn frame(w: &UiWatchdog, work: Duration, next_after: Duration) {
        w.begin();
        std::thread::sleep(work);
        w.end(next_after, false);
    }

    #[test]
    fn a_frame_a_second_late_is_a_stall_counted_with_its_length_and_short_gaps_are_not() {
        let w = UiWatchdog::start(STALL_THRESHOLD);
        assert!(w.is_running());
        // Frames every 20 ms for 0.4 s, each asking for the next in 20 ms.
        let asked = Duration::from_millis(20);
        for _ in 0..20 {
            frame(&w, Duration::ZERO, asked);
            std::thread::sleep(asked);
        }
        assert_eq!(w.figures().stalls, 0);
        // The injected stall: the next frame comes 1 s after it was due.
        std::thread::sleep(Duration::from_millis(1000));
        assert!(w.figures().current_ms >= 500, "{:?}", w.figures());
        // ... and counted, with its length, once frames resume.
        frame(&w, Duration::ZERO, asked);
        wait_until("the stall counted", || w.figures().stalls == 1);
        let f = w.figures();
        assert!((900..2000).contains(&f.longest_ms), "{f:?}");
        assert_eq!(f.current_ms, 0);
    }

    /// A frame that was not late to begin (input woke it between idle
    /// frames) but then kept the UI thread for 0.8 s is a stall, though it
    /// ended before the next idle frame was due.
    #[test]
    fn a_long_frame_between_idle_frames_is_a_stall() {
        let w = UiWatchdog::start(STALL_THRESHOLD);
        frame(&w, Duration::ZERO, Duration::from_secs(5));
        frame(&w, Duration::from_millis(800), Duration::from_secs(5));
        wait_until("the stall counted", || w.figures().stalls == 1);
        let f = w.figures();
        assert!((700..1500).contains(&f.longest_ms), "{f:?}");
    }

    /// Frames at an idle window's cadence (one a second) with a frame's
    /// time and scheduling jitter on top: idleness is never a stall, though
    /// the gaps are twice the threshold.
    #[test]
    fn frames_at_the_idle_cadence_are_not_stalls() {
        let w = UiWatchdog::start(STALL_THRESHOLD);
        let idle = crate::ui::app::IDLE_REPAINT;
        assert!(idle > STALL_THRESHOLD, "the case this test is for");
        for _ in 0..3 {
            frame(&w, Duration::from_millis(20), idle);
            std::thread::sleep(idle + Duration::from_millis(60));
        }
        frame(&w, Duration::ZERO, idle);
        std::thread::sleep(LOOK_EVERY * 2);
        assert_eq!(w.figures(), StallFigures::default());
    }

    /// One freeze split over two frames while a run moves (33 ms asked):
    /// the next frame begins 0.35 s late (a frozen paint), then its own
    /// code takes 0.35 s. Neither part passes 0.5 s; the operator saw a
    /// 0.7 s freeze, and it is one stall.
    #[test]
    fn a_freeze_split_between_painting_and_the_next_frame_is_one_stall() {
        let w = UiWatchdog::start(STALL_THRESHOLD);
        let asked = Duration::from_millis(33);
        frame(&w, Duration::ZERO, asked);
        std::thread::sleep(asked + Duration::from_millis(350));
        frame(&w, Duration::from_millis(350), asked);
        wait_until("the stall counted", || w.figures().stalls == 1);
        let f = w.figures();
        assert!((600..1500).contains(&f.longest_ms), "{f:?}");
    }

    /// The first frame (fonts, GL context, first textures) is start-up:
    /// not judged, however long it takes.
    #[test]
    fn the_first_frame_is_not_judged() {
        let w = UiWatchdog::start(STALL_THRESHOLD);
        frame(&w, Duration::from_millis(800), Duration::from_millis(33));
        std::thread::sleep(LOOK_EVERY * 2);
        assert_eq!(w.figures(), StallFigures::default());
    }

    /// A frame is early when it begins well before the one asked for was
    /// due, and not when it comes on time or when none was asked for yet.
    #[test]
    fn a_frame_before_its_due_time_began_early() {
        let w = UiWatchdog::start(STALL_THRESHOLD);
        assert!(!w.begin(), "the first frame");
        w.end(Duration::from_millis(200), false);
        assert!(w.begin(), "50 ms into a 200 ms wait");
        w.end(Duration::from_millis(20), false);
        std::thread::sleep(Duration::from_millis(40));
        assert!(!w.begin(), "after the 20 ms asked for");
    }

    #[test]
    fn a_minimised_window_is_not_stalled() {
        let w = UiWatchdog::start(Duration::from_millis(100));
        w.begin();
        w.end(Duration::ZERO, true);
        std::thread::sleep(Duration::from_millis(400));
        w.begin();
        w.end(Duration::ZERO, true);
        std::thread::sleep(Duration::from_millis(150));
        assert_eq!(w.figures(), StallFigures::default());
    }
}
