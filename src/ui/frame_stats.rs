//! What the whole UI frame costs, beside what our own `show()` costs
//! (issue 16). Per frame, at the start of each `App::ui` call:
//!
//! - **eframe frame time**: `Frame::info().cpu_usage`, what eframe reports
//!   for the previous frame. eframe 0.37 measures it with a wall-clock
//!   stopwatch (`Instant`) around the whole frame: our `ui`, egui's layout,
//!   tessellation, texture upload and painting, minus the GL context
//!   switches and `swap_buffers`. Being wall time it also counts time the
//!   UI thread was preempted by the pipeline threads.
//! - **UI thread CPU per frame**: this thread's CPU time between two
//!   consecutive `ui` calls: everything the UI thread did for one frame
//!   cycle (including event handling and `swap_buffers`), but not work on
//!   other threads (Mesa's llvmpipe rasterises on its own threads).
//! - **frame gap**: wall time between two consecutive `ui` calls, what
//!   the operator sees as a frozen screen when it grows.
//!
//! Everything is in fixed-size histograms; nothing grows with the run.

use crate::hot::LatencyHistogram;
use std::time::{Duration, Instant};

/// A frame gap over this is counted (and, with `--fail-on-stall-ms`,
/// judged): ten frames a second is the slowest a moving view may go.
pub const GAP_LIMIT: Duration = Duration::from_millis(100);

/// Gaps that end within this time of the first frame are start-up, not
/// stalls: the font atlas, the first textures, the first recipe load and
/// the GL driver's shader compiles all land in the first second or two
/// (measured: up to ~1 s under Xvfb with llvmpipe; see BENCHMARKS.md).
pub const STARTUP_GRACE: Duration = Duration::from_secs(3);

pub struct FrameStats {
    grace: Duration,
    first: Option<Instant>,
    last: Option<Instant>,
    last_cpu_ns: u64,
    /// eframe's `cpu_usage` of each frame, ns (wall time of the frame's work).
    pub eframe_frame: LatencyHistogram,
    /// The UI thread's CPU time per frame cycle, ns.
    pub thread_cpu: LatencyHistogram,
    /// Gaps between frames after the start-up grace, ns.
    pub gap: LatencyHistogram,
    /// Gaps over `GAP_LIMIT` after the grace.
    gaps_over_limit: u64,
    /// The longest gap after the grace, and when it ended (since the first
    /// frame).
    worst: Option<(Duration, Duration)>,
    /// The longest gap within the grace.
    startup_worst: Duration,
}

impl Default for FrameStats {
    fn default() -> Self {
        Self::new(STARTUP_GRACE)
    }
}

impl FrameStats {
    pub fn new(grace: Duration) -> Self {
        Self {
            grace,
            first: None,
            last: None,
            last_cpu_ns: 0,
            eframe_frame: LatencyHistogram::new(),
            thread_cpu: LatencyHistogram::new(),
            gap: LatencyHistogram::new(),
            gaps_over_limit: 0,
            worst: None,
            startup_worst: Duration::ZERO,
        }
    }

    /// Records one frame: call at the start of `App::ui` with eframe's
    /// figure for the previous frame (`None` on the first one).
    pub fn frame(&mut self, now: Instant, eframe_seconds: Option<f32>) {
        self.frame_with_cpu(now, eframe_seconds, super::app::thread_cpu_ns());
    }

    fn frame_with_cpu(&mut self, now: Instant, eframe_seconds: Option<f32>, cpu_ns: u64) {
        if let Some(s) = eframe_seconds.filter(|s| s.is_finite() && *s >= 0.0) {
            self.eframe_frame.record((s as f64 * 1e9) as u64);
        }
        let first = *self.first.get_or_insert(now);
        if let Some(last) = self.last {
            self.thread_cpu
                .record(cpu_ns.saturating_sub(self.last_cpu_ns));
            let gap = now.saturating_duration_since(last);
            let at = now.saturating_duration_since(first);
            if at <= self.grace {
                self.startup_worst = self.startup_worst.max(gap);
            } else {
                self.gap.record_duration(gap);
                if gap > GAP_LIMIT {
                    self.gaps_over_limit += 1;
                }
                if self.worst.is_none_or(|(w, _)| gap > w) {
                    self.worst = Some((gap, at));
                }
            }
        }
        self.last = Some(now);
        self.last_cpu_ns = cpu_ns;
    }

    /// The longest gap after the grace and when it ended (since the first
    /// frame), if one was seen.
    pub fn worst_gap(&self) -> Option<(Duration, Duration)> {
        self.worst
    }

    /// A stall over `limit` after the grace, said in a sentence.
    pub fn stall_over(&self, limit: Duration) -> Option<String> {
        let (gap, at) = self.worst.filter(|(g, _)| *g > limit)?;
        Some(format!(
            "UI stall: a frame gap of {:.0} ms ending {:.1} s after the first frame, over the {} ms allowed ({} gaps over {} ms after the {} s start-up grace)",
            ms(gap),
            at.as_secs_f64(),
            limit.as_millis(),
            self.gaps_over_limit,
            GAP_LIMIT.as_millis(),
            self.grace.as_secs_f64(),
        ))
    }

    /// The figures for the log line.
    pub fn text(&self) -> String {
        let q = |h: &LatencyHistogram, p: f64| h.quantile(p) as f64 / 1e6;
        let max = |h: &LatencyHistogram| h.summary().max as f64 / 1e6;
        format!(
            "whole frame (eframe, wall) p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; UI thread CPU per frame p50 {:.2} ms, p99 {:.2} ms; frame gap p99 {:.1} ms, max {:.1} ms, {} gaps > {} ms (after a {} s start-up grace; start-up max {:.0} ms)",
            q(&self.eframe_frame, 0.5),
            q(&self.eframe_frame, 0.99),
            max(&self.eframe_frame),
            q(&self.thread_cpu, 0.5),
            q(&self.thread_cpu, 0.99),
            q(&self.gap, 0.99),
            max(&self.gap),
            self.gaps_over_limit,
            GAP_LIMIT.as_millis(),
            self.grace.as_secs_f64(),
            ms(self.startup_worst),
        )
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn gaps_in_the_grace_are_start_up_and_later_ones_are_judged() {
        let t0 = Instant::now();
        let mut s = FrameStats::new(Duration::from_secs(3));
        s.frame_with_cpu(t0, None, 0);
        // A 900 ms start-up frame (fonts, first textures): not a stall.
        s.frame_with_cpu(at(t0, 900), Some(0.9), 1_000_000);
        for i in 1..=40 {
            s.frame_with_cpu(at(t0, 900 + i * 100), Some(0.004), 1_000_000 + i);
        }
        assert_eq!(s.stall_over(GAP_LIMIT), None);
        assert_eq!(s.gaps_over_limit, 0);
        // A 400 ms gap at 5.3 s: judged, named, counted.
        s.frame_with_cpu(at(t0, 5_300), Some(0.004), 2_000_000);
        let why = s.stall_over(GAP_LIMIT).expect("a 400 ms gap is a stall");
        assert!(why.contains("400 ms"), "{why}");
        assert_eq!(s.gaps_over_limit, 1);
        assert_eq!(s.worst_gap().unwrap().0, Duration::from_millis(400));
        assert!(s.text().contains("start-up max 900 ms"), "{}", s.text());
        // eframe's figure is kept in ns: 4 ms at p50.
        let p50 = s.eframe_frame.quantile(0.5);
        assert!((3_700_000..=4_300_000).contains(&p50), "{p50}");
    }
}
