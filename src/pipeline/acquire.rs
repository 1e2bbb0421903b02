//! The acquisition thread: the die trigger. For each die it moves the stage,
//! waits for a free buffer (inspection: nothing is ever dropped, the wait is
//! counted as stall time) or takes one only if free (live view: otherwise
//! the frame is dropped and counted), has the camera image the die, and
//! hands the frame to the detection worker that owns the die's row.

use super::result::DieResult;
use super::telemetry::PipelineTelemetry;
use super::worker::WorkItem;
use crate::hot::{Frame, FramePool};
use crate::machine::{Camera, DieSite, Stage};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Attempts per die before a camera or stage fault fails the die.
const RETRIES: u32 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Inspect this die: wait for a buffer, never drop.
    Inspect(u32),
    /// Live view of this die: drop the frame if no buffer or the viewer is
    /// behind.
    Live(u32),
    /// The plan ended: let the workers finish what they hold.
    EndOfPlan,
    /// Does nothing; used to warm channels up.
    Nop,
    Stop,
}

pub struct Acquisition {
    pub camera: Box<dyn Camera>,
    pub stage: Option<Box<dyn Stage>>,
    pub sites: Arc<[DieSite]>,
    pub pool: FramePool,
    pub workers: Vec<Sender<WorkItem>>,
    pub results: Sender<DieResult>,
    pub live: Sender<Frame>,
    pub telemetry: Arc<PipelineTelemetry>,
    pub(crate) sequence: u64,
    pub(crate) worker: usize,
    pub(crate) last_site: Option<DieSite>,
}

impl Acquisition {
    pub fn run(mut self, triggers: Receiver<Trigger>) {
        while let Ok(t) = triggers.recv() {
            match t {
                Trigger::Inspect(i) => self.inspect(i),
                Trigger::Live(i) => self.live(i),
                Trigger::EndOfPlan => self.end_row(),
                Trigger::Nop => {}
                Trigger::Stop => break,
            }
        }
        for w in &self.workers {
            let _ = w.send(WorkItem::Stop);
        }
    }

    fn end_row(&mut self) {
        if self.last_site.take().is_some() {
            let _ = self.workers[self.worker].send(WorkItem::Flush);
        }
    }

    fn inspect(&mut self, die_index: u32) {
        let Some(site) = self.sites.get(die_index as usize).copied() else {
            return;
        };
        // A die that does not continue the current row starts a new row on
        // the next worker, so each worker sees whole rows in order.
        let continues_row = self.last_site.is_some_and(|l| l.is_row_neighbour_of(&site));
        if !continues_row {
            self.end_row();
            self.worker = (self.worker + 1) % self.workers.len();
        }
        self.last_site = Some(site);

        if let Some(stage) = self.stage.as_mut() {
            let (x, y) = (site.origin_um.0, site.origin_um.1);
            let moved = (0..RETRIES).any(|_| match stage.move_to(x, y) {
                Ok(_) => true,
                Err(_) => {
                    self.telemetry.stage_errors.incr();
                    false
                }
            });
            if !moved {
                self.fail(die_index);
                return;
            }
        }

        let wait = Instant::now();
        let mut frame = loop {
            if let Some(f) = self.pool.lease_timeout(Duration::from_millis(50)) {
                break f;
            }
        };
        let stalled = wait.elapsed();
        if stalled > Duration::from_micros(20) {
            self.telemetry.stall_ns.add(stalled.as_nanos() as u64);
        }
        if !self.capture(die_index, &mut frame) {
            self.fail(die_index);
            return;
        }
        let _ = self.workers[self.worker].send(WorkItem::Frame(frame));
    }

    fn live(&mut self, die_index: u32) {
        let Some(mut frame) = self.pool.try_lease() else {
            self.telemetry.drops.incr();
            return;
        };
        if self.capture(die_index, &mut frame) {
            if let Err(TrySendError::Full(f) | TrySendError::Disconnected(f)) =
                self.live.try_send(frame)
            {
                self.telemetry.drops.incr();
                drop(f);
            }
        }
    }

    /// Images a die with retries; stamps the frame's metadata.
    fn capture(&mut self, die_index: u32, frame: &mut Frame) -> bool {
        for _ in 0..RETRIES {
            let start = Instant::now();
            match self.camera.capture(die_index, frame) {
                Ok(()) => {
                    self.telemetry.capture_time.record_duration(start.elapsed());
                    self.telemetry.frames_acquired.incr();
                    self.sequence += 1;
                    frame.meta.sequence = self.sequence;
                    frame.meta.die_index = die_index;
                    frame.meta.capture_ns = self.telemetry.now_ns();
                    return true;
                }
                Err(_) => self.telemetry.camera_errors.incr(),
            }
        }
        false
    }

    /// Reports a die that could not be imaged, so the run knows it was not
    /// inspected.
    fn fail(&mut self, die_index: u32) {
        self.telemetry.capture_failures.incr();
        let mut r = DieResult::default();
        r.clear(die_index);
        r.capture_failed = true;
        let _ = self.results.send(r);
    }
}
