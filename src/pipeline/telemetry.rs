//! The pipeline's live counters: updated lock-free by the hot threads, read
//! by the UI's health panel and by `bench pipeline`.

use crate::hot::{Counter, Gauge, LatencyHistogram};
use std::time::Instant;

#[derive(Debug)]
pub struct PipelineTelemetry {
    /// Timestamps in frame metadata are nanoseconds since this instant.
    pub epoch: Instant,
    pub frames_acquired: Counter,
    pub dies_inspected: Counter,
    pub defects_found: Counter,
    /// Live view: frames dropped because the pool or queue was full.
    pub drops: Counter,
    /// Inspection: time the die trigger waited for a free buffer, ns.
    pub stall_ns: Counter,
    pub camera_errors: Counter,
    pub stage_errors: Counter,
    /// Dies that could not be imaged after retries.
    pub capture_failures: Counter,
    /// Queued dies not imaged because the run was halted (suspension, Stop,
    /// Abort); handed back to the run engine.
    pub dies_cancelled: Counter,
    /// Die results a worker could not hand over because the results thread
    /// was gone (its death is reported by the pipeline's thread health).
    pub results_lost: Counter,
    pub pixels_inspected: Counter,
    /// Pixels flagged as differing, over all dies.
    pub pixels_flagged: Counter,
    /// Dies whose defects or runs did not all fit their result's capacity
    /// (each such result says so; counted here for the health figures).
    pub dies_over_capacity: Counter,
    /// Dies whose alignment was not trustworthy: not compared, reported
    /// as such.
    pub dies_not_compared: Counter,
    /// Frames waiting for detection, across workers.
    pub queue_depth: Gauge,
    /// Capture done → frame received by a detection worker.
    pub handoff_latency: LatencyHistogram,
    /// Camera capture (render) time per frame.
    pub capture_time: LatencyHistogram,
    /// Detection time per die.
    pub detect_time: LatencyHistogram,
}

impl PipelineTelemetry {
    pub fn new() -> Self {
        Self {
            epoch: Instant::now(),
            frames_acquired: Counter::new(),
            dies_inspected: Counter::new(),
            defects_found: Counter::new(),
            drops: Counter::new(),
            dies_cancelled: Counter::new(),
            results_lost: Counter::new(),
            stall_ns: Counter::new(),
            camera_errors: Counter::new(),
            stage_errors: Counter::new(),
            capture_failures: Counter::new(),
            pixels_inspected: Counter::new(),
            pixels_flagged: Counter::new(),
            dies_over_capacity: Counter::new(),
            dies_not_compared: Counter::new(),
            queue_depth: Gauge::new(),
            handoff_latency: LatencyHistogram::new(),
            capture_time: LatencyHistogram::new(),
            detect_time: LatencyHistogram::new(),
        }
    }

    /// Nanoseconds since the epoch, for frame timestamps.
    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }
}

impl Default for PipelineTelemetry {
    fn default() -> Self {
        Self::new()
    }
}
