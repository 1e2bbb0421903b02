//! The acquisition thread: the die trigger. For each die it moves the stage,
//! waits for a free buffer (inspection: nothing is ever dropped, the wait is
//! counted as stall time) or takes one only if free (live view: otherwise
//! the frame is dropped and counted), has the camera image the die, and
//! hands the frame to the detection worker that owns the die's row.
//!
//! Each die runs inside the die gate (`gate.rs`): a halted gate cancels
//! queued dies (handed back to the engine on `cancelled`), also while the
//! trigger waits for a free buffer, so a suspension, Stop or Abort is never
//! stuck behind a full pool.

use super::gate::DieGate;
use super::result::DieResult;
use super::telemetry::PipelineTelemetry;
use super::worker::WorkItem;
use crate::hot::{Frame, FramePool, ThreadHealth};
use crate::machine::{Camera, CameraError, DieSite, Stage};
use crossbeam_channel::{Receiver, Sender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Attempts per die before a camera or stage fault fails the die.
const RETRIES: u32 = 3;
/// How long a die waits for an unreachable camera before it fails: longer
/// than the camera's heartbeat takes to go Lost and suspend the run
/// (10 periods), so with a heartbeat the die is handed back instead.
const UNREACHABLE_WAIT_LIMIT: Duration = Duration::from_secs(5);
const UNREACHABLE_POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// Inspect this die: wait for a buffer, never drop.
    Inspect(u32),
    /// Live view of this die: drop the frame if no buffer or the viewer is
    /// behind.
    Live(u32),
    /// The plan ended: let the workers finish what they hold.
    EndOfPlan,
    /// Reopen a halted gate once the stage is verified where it was left.
    Resume,
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
    pub gate: Arc<DieGate>,
    /// Dies cancelled by a halted gate, in trigger order.
    pub cancelled: Sender<u32>,
    pub(crate) sequence: u64,
    pub(crate) worker: usize,
    pub(crate) last_site: Option<DieSite>,
    /// Where the last successful move left the stage (µm).
    pub(crate) stage_at: Option<(f64, f64)>,
}

/// How far (µm) the stage may read from where it was left before a resume
/// refuses to continue: encoder noise is well below a micrometre.
const POSITION_TOLERANCE_UM: f64 = 1.0;

/// Names of the detection workers, as their threads are named.
pub(crate) const DETECT_NAMES: [&str; 8] = [
    "detect-0", "detect-1", "detect-2", "detect-3", "detect-4", "detect-5", "detect-6", "detect-7",
];

fn worker_name(n: usize) -> &'static str {
    DETECT_NAMES[n % DETECT_NAMES.len()]
}

impl Acquisition {
    pub fn run(mut self, triggers: Receiver<Trigger>, health: &ThreadHealth) {
        self.camera.attach_pool(&self.pool);
        loop {
            health.idle();
            let Ok(t) = triggers.recv() else { break };
            health.beat();
            match t {
                Trigger::Inspect(i) => {
                    if self.gate.enter(i) {
                        self.inspect(i, health);
                        self.gate.leave();
                    } else {
                        self.cancel(i);
                    }
                }
                Trigger::Live(i) => {
                    if self.gate.enter(i) {
                        self.live(i);
                        self.gate.leave();
                    } else {
                        // Live view while the tool is safe: nothing imaged.
                        self.telemetry.drops.incr();
                    }
                }
                Trigger::EndOfPlan => self.end_row(),
                Trigger::Resume => {
                    let fault = self.verify_stage();
                    self.gate.resume_done(fault);
                }
                Trigger::Nop => {}
                Trigger::Stop => break,
            }
        }
        for w in &self.workers {
            // A worker that is already gone has nothing left to stop; its
            // join in `Pipeline::finish` reports how it ended.
            if w.send(WorkItem::Stop).is_err() {
                tracing::debug!("a detection worker had already ended");
            }
        }
    }

    /// A queued die not imaged: handed back so the engine can queue it
    /// again on resume (or mark it not inspected).
    fn cancel(&mut self, die_index: u32) {
        self.telemetry.dies_cancelled.incr();
        if self.cancelled.try_send(die_index).is_err() {
            // The engine would wait for this die forever: make it a fault.
            self.gate.set_fault(format!(
                "acquisition: die {die_index} was cancelled but the engine could not be told"
            ));
        }
    }

    /// After a halt: the stage must be where the last move left it, or a
    /// resumed run would image the wrong place. A moved stage is a fault,
    /// not a re-home: something pushed it while the tool was stopped (a
    /// collision, a hand, a slipping wafer), and that needs an operator's
    /// look, not a silent correction.
    fn verify_stage(&mut self) -> Option<String> {
        let (Some(stage), Some((x0, y0))) = (self.stage.as_mut(), self.stage_at) else {
            return None;
        };
        let (x, y) = stage.position_um();
        // Written so that a position the stage could not read (NaN) fails.
        let off = |a: f64, b: f64| (a - b).is_nan() || (a - b).abs() > POSITION_TOLERANCE_UM;
        (off(x, x0) || off(y, y0)).then(
            || {
                format!(
                    "stage position after resume is ({x:.1}, {y:.1}) µm, expected ({x0:.1}, {y0:.1}) µm: \
                     the stage moved while stopped"
                )
            },
        )
    }

    fn send_to_worker(&mut self, item: WorkItem, die_index: Option<u32>) {
        if self.workers[self.worker].send(item).is_err() {
            let name = worker_name(self.worker);
            self.gate.set_fault(match die_index {
                Some(d) => format!("die {d}: detection worker {name} is gone"),
                None => format!("detection worker {name} is gone"),
            });
        }
    }

    fn end_row(&mut self) {
        if self.last_site.take().is_some() {
            self.send_to_worker(WorkItem::Flush, None);
        }
    }

    fn inspect(&mut self, die_index: u32, health: &ThreadHealth) {
        let Some(site) = self.sites.get(die_index as usize).copied() else {
            self.gate.set_fault(format!(
                "acquisition: die {die_index} is not on the wafer map ({} sites)",
                self.sites.len()
            ));
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
            let moved = (0..RETRIES).any(|attempt| match stage.move_to(x, y) {
                Ok(_) => true,
                Err(e) => {
                    self.telemetry.stage_errors.incr();
                    // Only on failure (formatting allocates): the reason
                    // is in the log, not just a count.
                    tracing::warn!(
                        die = die_index,
                        attempt = attempt + 1,
                        "stage move to ({x:.1}, {y:.1}) µm failed: {e}"
                    );
                    false
                }
            });
            if !moved {
                self.fail(die_index);
                return;
            }
            self.stage_at = Some((x, y));
        }

        let wait = Instant::now();
        let mut frame = loop {
            if let Some(f) = self.pool.lease_timeout(Duration::from_millis(50)) {
                break f;
            }
            // Waiting on the consumers is not a stall of this thread.
            health.beat();
            if self.gate.is_halted() {
                // Stop, Abort or a suspension while the pool is full: the
                // die was not imaged.
                self.cancel(die_index);
                return;
            }
        };
        let stalled = wait.elapsed();
        if stalled > Duration::from_micros(20) {
            self.telemetry.stall_ns.add(stalled.as_nanos() as u64);
        }
        let mut unreachable_since = None;
        loop {
            match self.capture(die_index, &mut frame) {
                Ok(()) => break,
                // A camera that cannot be reached (its heartbeat stopped) is
                // not this die's fault: wait for it to come back, or for the
                // run to suspend on its heartbeat, which hands the die back
                // to be imaged after the resume. Burning the retries would
                // fail dies, and a few failed dies in a row fault the run.
                Err(CameraError::Unreachable) => {
                    let since = *unreachable_since.get_or_insert_with(|| {
                        self.telemetry.camera_errors.incr();
                        Instant::now()
                    });
                    if self.gate.is_halted() {
                        self.cancel(die_index);
                        return;
                    }
                    if since.elapsed() > UNREACHABLE_WAIT_LIMIT {
                        self.fail(die_index);
                        return;
                    }
                    // Waiting on the camera is not a stall of this thread.
                    health.beat();
                    std::thread::sleep(UNREACHABLE_POLL);
                }
                Err(_) => {
                    self.fail(die_index);
                    return;
                }
            }
        }
        self.send_to_worker(WorkItem::Frame(frame), Some(die_index));
    }

    fn live(&mut self, die_index: u32) {
        let Some(mut frame) = self.pool.try_lease() else {
            self.telemetry.drops.incr();
            return;
        };
        if self.capture(die_index, &mut frame).is_ok() {
            if let Err(TrySendError::Full(f) | TrySendError::Disconnected(f)) =
                self.live.try_send(frame)
            {
                self.telemetry.drops.incr();
                drop(f);
            }
        }
    }

    /// Images a die with retries; stamps the frame's metadata. An
    /// unreachable camera is not retried here (the caller waits for it).
    fn capture(&mut self, die_index: u32, frame: &mut Frame) -> Result<(), CameraError> {
        let mut last = CameraError::Timeout;
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
                    return Ok(());
                }
                // Counted once per wait by the caller, not per refusal.
                Err(CameraError::Unreachable) => return Err(CameraError::Unreachable),
                Err(e) => {
                    self.telemetry.camera_errors.incr();
                    last = e;
                }
            }
        }
        Err(last)
    }

    /// Reports a die that could not be imaged, so the run knows it was not
    /// inspected.
    fn fail(&mut self, die_index: u32) {
        self.telemetry.capture_failures.incr();
        let mut r = DieResult::default();
        r.clear(die_index);
        r.capture_failed = true;
        if self.results.send(r).is_err() {
            self.telemetry.results_lost.incr();
            self.gate.set_fault(format!(
                "die {die_index}: not imaged, and the results thread is gone"
            ));
        }
    }
}
