//! Starting and stopping the pipeline: one acquisition thread, N detection
//! workers and a results thread, joined by bounded crossbeam channels.

use super::acquire::{Acquisition, Trigger, DETECT_NAMES};
use super::detect::{DetectParams, Detector};
use super::display::DisplayFrame;
use super::gate::DieGate;
use super::result::DieResult;
use super::telemetry::PipelineTelemetry;
use super::thumbnails::ThumbnailTap;
use super::worker::{ReferenceSource, WorkItem, Worker};
use crate::hot::{
    alloc_count, join_named, prime_channel, prime_thread, spawn_watched, Frame, FramePool,
    ThreadHealth, ThreadState,
};
use crate::machine::{Camera, DieSite, SimFaults, Stage};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct PipelineConfig {
    /// Detection workers; the design's default is cores − 1.
    pub workers: usize,
    /// Frame buffers; at least 3 per worker (its window) plus 2.
    pub pool_frames: usize,
    pub params: DetectParams,
    /// What every die is compared with (the recipe's `reference`).
    pub reference: ReferenceSource,
    /// Live-view display buffer fed by the detection workers.
    pub display: Option<Arc<DisplayFrame>>,
    /// A pipeline thread busy this long without a beat reads "stalled" (a
    /// capture or an inspection should take a fraction of it).
    pub stall_after: Duration,
    /// How long `finish` waits for a thread to end before it reports it
    /// stuck and leaves it behind (a camera blocked inside a capture).
    pub stop_deadline: Duration,
    /// Injected faults of the simulated tool; `None` on a real one.
    pub faults: Option<Arc<SimFaults>>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        let workers = std::thread::available_parallelism()
            .map(|n| n.get().saturating_sub(1).max(1))
            .unwrap_or(1);
        Self {
            workers,
            pool_frames: 3 * workers + 4,
            params: DetectParams::default(),
            reference: ReferenceSource::DieToDie,
            display: None,
            stall_after: Duration::from_secs(1),
            stop_deadline: Duration::from_secs(5),
            faults: None,
        }
    }
}

/// Receives every die result, on the results thread (which is not a hot
/// thread: it may allocate, e.g. to batch results into the database).
pub type ResultSink = Box<dyn FnMut(&DieResult) + Send>;

/// One pipeline thread: its handle and its health.
struct Watched {
    name: String,
    handle: JoinHandle<()>,
    health: Arc<ThreadHealth>,
}

pub struct Pipeline {
    triggers: Sender<Trigger>,
    live: Receiver<Frame>,
    pool: FramePool,
    telemetry: Arc<PipelineTelemetry>,
    gate: Arc<DieGate>,
    cancelled: Receiver<u32>,
    /// Direct line to each worker, used only when acquisition is stuck and
    /// cannot pass Stop on.
    worker_txs: Vec<Sender<WorkItem>>,
    /// Ends the results thread when acquisition is stuck holding its
    /// sender open.
    results_stop: Sender<()>,
    acquisition: Option<Watched>,
    workers: Vec<Watched>,
    results: Option<Watched>,
    attached: Vec<JoinHandle<()>>,
    stop_deadline: Duration,
}

fn watched(
    name: &str,
    stall_after: Duration,
    body: impl FnOnce(&ThreadHealth) + Send + 'static,
) -> Watched {
    let (handle, health) = spawn_watched(name, stall_after, body)
        .unwrap_or_else(|e| panic!("spawning pipeline thread {name}: {e}"));
    Watched {
        name: name.to_owned(),
        handle,
        health,
    }
}

impl Pipeline {
    /// Allocates the pool and every buffer, warms the channels, and starts
    /// the threads. `golden` is the defect-free reference die.
    pub fn start(
        cfg: PipelineConfig,
        camera: Box<dyn Camera>,
        stage: Option<Box<dyn Stage>>,
        sites: Arc<[DieSite]>,
        golden: Arc<[u8]>,
        sink: ResultSink,
    ) -> Self {
        Self::start_with_thumbnails(cfg, camera, stage, sites, golden, sink, None)
    }

    /// As `start`, with detection workers cutting defect thumbnails into
    /// `thumbnails`.
    pub fn start_with_thumbnails(
        cfg: PipelineConfig,
        camera: Box<dyn Camera>,
        stage: Option<Box<dyn Stage>>,
        sites: Arc<[DieSite]>,
        golden: Arc<[u8]>,
        mut sink: ResultSink,
        thumbnails: Option<ThumbnailTap>,
    ) -> Self {
        let geometry = camera.geometry();
        let workers = cfg.workers.clamp(1, DETECT_NAMES.len());
        // The camera's own queued buffers come on top of what the pipeline needs.
        let pool = FramePool::new(
            cfg.pool_frames.max(3 * workers + 2) + camera.frames_held(),
            geometry,
        );
        let telemetry = Arc::new(PipelineTelemetry::new());
        let gate = Arc::new(DieGate::default());

        const TRIGGER_CAPACITY: usize = 64;
        let (trig_tx, trig_rx) = bounded(TRIGGER_CAPACITY);
        prime_channel(&trig_tx, &trig_rx, || Trigger::Nop);
        // Every cancelled die was a queued trigger, so this never fills
        // while the engine drains it.
        let (cancel_tx, cancel_rx) = bounded(TRIGGER_CAPACITY);
        // Results are small and never dropped: room for every buffer's die.
        let (res_tx, res_rx) = bounded::<DieResult>(pool.capacity() * 2);
        prime_channel(&res_tx, &res_rx, DieResult::default);
        let (live_tx, live_rx) = bounded(1);
        let (results_stop, results_stop_rx) = bounded::<()>(1);

        let mut worker_threads = Vec::new();
        let mut worker_txs = Vec::new();
        for (n, name) in DETECT_NAMES.iter().copied().enumerate().take(workers) {
            // Room for every buffer, so handing a frame over never blocks.
            let (tx, rx) = bounded(pool.capacity());
            prime_channel(&tx, &rx, || WorkItem::Flush);
            worker_txs.push(tx);
            let worker = Worker::new(
                Arc::clone(&sites),
                Arc::clone(&golden),
                Detector::new(geometry.width, geometry.height, cfg.params),
                geometry.width,
                geometry.height,
                Arc::clone(&telemetry),
                res_tx.clone(),
            )
            .with_reference(&cfg.reference)
            .with_thumbnails(thumbnails.clone())
            .with_display(cfg.display.clone())
            .with_faults(cfg.faults.clone());
            debug_assert_eq!(name, DETECT_NAMES[n]);
            worker_threads.push(watched(name, cfg.stall_after, move |health| {
                let _hot = alloc_count::mark_thread_hot(name);
                prime_thread();
                worker.run(rx, health);
            }));
        }
        let acquisition = Acquisition {
            camera,
            stage,
            sites,
            pool: pool.clone(),
            workers: worker_txs.clone(),
            results: res_tx,
            live: live_tx,
            telemetry: Arc::clone(&telemetry),
            gate: Arc::clone(&gate),
            cancelled: cancel_tx,
            sequence: 0,
            worker: workers - 1,
            last_site: None,
            stage_at: None,
        };
        let acquisition = watched("acquisition", cfg.stall_after, move |health| {
            let _hot = alloc_count::mark_thread_hot("acquisition");
            prime_thread();
            acquisition.run(trig_rx, health);
        });
        let results = watched("results", cfg.stall_after, move |health| loop {
            health.idle();
            crossbeam_channel::select! {
                recv(res_rx) -> r => match r {
                    Ok(r) => {
                        health.beat();
                        sink(&r);
                    }
                    // Every producer ended.
                    Err(_) => break,
                },
                recv(results_stop_rx) -> _ => {
                    // Acquisition is stuck; the workers have ended: hand
                    // on what they sent, then end.
                    while let Ok(r) = res_rx.try_recv() {
                        sink(&r);
                    }
                    break;
                }
            }
        });
        Self {
            triggers: trig_tx,
            live: live_rx,
            pool,
            telemetry,
            gate,
            cancelled: cancel_rx,
            worker_txs,
            results_stop,
            acquisition: Some(acquisition),
            workers: worker_threads,
            results: Some(results),
            attached: Vec::new(),
            stop_deadline: cfg.stop_deadline,
        }
    }

    /// Queues a die for inspection. Blocks while 64 triggers are pending,
    /// which paces a caller that runs ahead of the pipeline. If acquisition
    /// is gone the die cannot be imaged: that is recorded as the pipeline's
    /// fault.
    pub fn inspect(&self, die_index: u32) {
        if self.triggers.send(Trigger::Inspect(die_index)).is_err() {
            self.gate.set_fault(format!(
                "die {die_index}: the acquisition thread is gone, the die cannot be imaged"
            ));
        }
    }

    /// Queues a live-view frame of a die (dropped, and counted, if the
    /// pipeline or the viewer is behind).
    pub fn live(&self, die_index: u32) {
        if self.triggers.try_send(Trigger::Live(die_index)).is_err() {
            self.telemetry.drops.incr();
        }
    }

    /// The newest live-view frame, if one is waiting.
    pub fn take_live_frame(&self) -> Option<Frame> {
        self.live.try_recv().ok()
    }

    /// Marks the end of a plan: held dies are inspected against the golden
    /// die where a neighbour is missing.
    pub fn end_of_plan(&self) {
        if self.triggers.send(Trigger::EndOfPlan).is_err() {
            self.gate
                .set_fault("the acquisition thread is gone: held dies cannot be flushed".into());
        }
    }

    /// Makes the tool safe: no die is imaged after this until `resume`;
    /// queued dies come back through `take_cancelled`. Wait for `busy()` to
    /// go false for the die already in hand.
    pub fn halt(&self) {
        self.gate.halt();
    }

    pub fn is_halted(&self) -> bool {
        self.gate.is_halted()
    }

    /// A die (stage move, buffer wait, capture) is in hand.
    pub fn busy(&self) -> bool {
        self.gate.busy()
    }

    /// The die acquisition is on, if it is on one.
    pub fn die_in_hand(&self) -> Option<u32> {
        self.gate.die_in_hand()
    }

    /// Asks acquisition to verify the stage position and reopen the gate,
    /// after every die queued before now has been cancelled. Done once
    /// `resume_settled()`; a failed check shows as `fault()`.
    pub fn resume(&self) {
        self.gate.resume_requested();
        if self.triggers.send(Trigger::Resume).is_err() {
            self.gate.resume_done(Some(
                "the acquisition thread is gone: the run cannot resume".into(),
            ));
        }
    }

    pub fn resume_settled(&self) -> bool {
        self.gate.resume_settled()
    }

    /// A die cancelled by a halt, in the order they were queued.
    pub fn take_cancelled(&self) -> Option<u32> {
        self.cancelled.try_recv().ok()
    }

    /// Why the run cannot go on, if it cannot: a pipeline thread died (its
    /// name and panic message), or one recorded a fault naming the die.
    pub fn fault(&self) -> Option<String> {
        for t in self.threads() {
            if let ThreadState::Dead { message } = t.health.state() {
                return Some(format!("thread {} died: {message}", t.name));
            }
        }
        self.gate.fault()
    }

    /// Each pipeline thread and its state, for the engine's messages and
    /// the Health panel.
    pub fn thread_states(&self) -> Vec<(String, ThreadState)> {
        self.threads()
            .map(|t| (t.name.clone(), t.health.state()))
            .collect()
    }

    fn threads(&self) -> impl Iterator<Item = &Watched> {
        self.acquisition
            .iter()
            .chain(&self.workers)
            .chain(&self.results)
    }

    pub fn telemetry(&self) -> &Arc<PipelineTelemetry> {
        &self.telemetry
    }

    pub fn pool(&self) -> &FramePool {
        &self.pool
    }

    /// A thread to join after the pipeline's own (e.g. the thumbnail
    /// writer, which ends once the workers are gone).
    pub fn attach(&mut self, thread: JoinHandle<()>) {
        self.attached.push(thread);
    }

    /// Finishes everything queued and joins the threads. Never hangs: a
    /// thread that has not ended within the stop deadline (a camera blocked
    /// inside a capture) is left behind and reported. The error names every
    /// thread that panicked (with its message) or was left behind.
    pub fn finish(mut self) -> Result<(), String> {
        let mut deadline = Instant::now() + self.stop_deadline;
        let mut problems = Vec::new();
        for t in [Trigger::EndOfPlan, Trigger::Stop] {
            // Fails only if acquisition is gone, which its join reports.
            if let Err(e) = self.triggers.send_deadline(t, deadline) {
                tracing::debug!("stopping acquisition: {e}");
            }
        }
        let acquisition = self.acquisition.take().expect("finish runs once");
        if !wait_ended(&acquisition.health, deadline) {
            // Stuck: it cannot pass Stop on to the workers, so do it here.
            problems.push(left_behind(&acquisition, self.stop_deadline));
            // The workers get their own stop deadline to finish what they
            // hold, so the dies imaged before the hang are still reported.
            deadline = Instant::now() + self.stop_deadline;
            for tx in &self.worker_txs {
                for item in [WorkItem::Flush, WorkItem::Stop] {
                    if tx.send_deadline(item, deadline).is_err() {
                        break;
                    }
                }
            }
        } else {
            problems.extend(join_named(&acquisition.name, acquisition.handle).err());
        }
        self.worker_txs.clear();
        let mut workers_ended = true;
        for w in std::mem::take(&mut self.workers) {
            if wait_ended(&w.health, deadline) {
                problems.extend(join_named(&w.name, w.handle).err());
            } else {
                workers_ended = false;
                problems.push(left_behind(&w, self.stop_deadline));
            }
        }
        if workers_ended {
            // Unblocks the results thread if a stuck acquisition holds its
            // channel open; a full slot means it was already told.
            if self.results_stop.try_send(()).is_err() {
                tracing::debug!("results thread already told to stop");
            }
        }
        let results = self.results.take().expect("finish runs once");
        if wait_ended(&results.health, deadline) {
            problems.extend(join_named(&results.name, results.handle).err());
        } else {
            workers_ended = false;
            problems.push(left_behind(&results, self.stop_deadline));
        }
        // The attached threads end once the workers are gone; if a worker
        // is stuck they may never, so they are not waited for then.
        for t in self.attached.drain(..) {
            if workers_ended {
                let name = t.thread().name().unwrap_or("attached").to_owned();
                problems.extend(join_named(&name, t).err());
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

/// Waits until the thread has ended or `deadline` passes.
fn wait_ended(health: &ThreadHealth, deadline: Instant) -> bool {
    while !health.ended() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

fn left_behind(t: &Watched, waited: Duration) -> String {
    format!(
        "thread {} did not end within {} ms ({}); left behind",
        t.name,
        waited.as_millis(),
        t.health.state().label()
    )
}
