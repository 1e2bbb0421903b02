//! Starting and stopping the pipeline: one acquisition thread, N detection
//! workers and a results thread, joined by bounded crossbeam channels.

use super::acquire::{Acquisition, Trigger};
use super::detect::{DetectParams, Detector};
use super::display::DisplayFrame;
use super::result::DieResult;
use super::telemetry::PipelineTelemetry;
use super::thumbnails::ThumbnailTap;
use super::worker::{WorkItem, Worker};
use crate::hot::{alloc_count, prime_channel, prime_thread, Frame, FramePool};
use crate::machine::{Camera, DieSite, Stage};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;

#[derive(Clone)]
pub struct PipelineConfig {
    /// Detection workers; the design's default is cores − 1.
    pub workers: usize,
    /// Frame buffers; at least 3 per worker (its window) plus 2.
    pub pool_frames: usize,
    pub params: DetectParams,
    /// Live-view display buffer fed by the detection workers.
    pub display: Option<Arc<DisplayFrame>>,
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
            display: None,
        }
    }
}

/// Receives every die result, on the results thread (which is not a hot
/// thread: it may allocate, e.g. to batch results into the database).
pub type ResultSink = Box<dyn FnMut(&DieResult) + Send>;

pub struct Pipeline {
    triggers: Sender<Trigger>,
    live: Receiver<Frame>,
    pool: FramePool,
    telemetry: Arc<PipelineTelemetry>,
    threads: Vec<JoinHandle<()>>,
    attached: Vec<JoinHandle<()>>,
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
        let workers = cfg.workers.max(1);
        let pool = FramePool::new(cfg.pool_frames.max(3 * workers + 2), geometry);
        let telemetry = Arc::new(PipelineTelemetry::new());

        let (trig_tx, trig_rx) = bounded(64);
        prime_channel(&trig_tx, &trig_rx, || Trigger::Nop);
        // Results are small and never dropped: room for every buffer's die.
        let (res_tx, res_rx) = bounded::<DieResult>(pool.capacity() * 2);
        prime_channel(&res_tx, &res_rx, DieResult::default);
        let (live_tx, live_rx) = bounded(1);

        let mut threads = Vec::new();
        let mut worker_txs = Vec::new();
        for n in 0..workers {
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
            .with_thumbnails(thumbnails.clone())
            .with_display(cfg.display.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("detect-{n}"))
                    .spawn(move || {
                        let _hot =
                            alloc_count::mark_thread_hot(DETECT_NAMES[n % DETECT_NAMES.len()]);
                        prime_thread();
                        worker.run(rx);
                    })
                    .expect("spawning a detection worker"),
            );
        }
        let acquisition = Acquisition {
            camera,
            stage,
            sites,
            pool: pool.clone(),
            workers: worker_txs,
            results: res_tx,
            live: live_tx,
            telemetry: Arc::clone(&telemetry),
            sequence: 0,
            worker: workers - 1,
            last_site: None,
        };
        threads.push(
            std::thread::Builder::new()
                .name("acquisition".into())
                .spawn(move || {
                    let _hot = alloc_count::mark_thread_hot("acquisition");
                    prime_thread();
                    acquisition.run(trig_rx);
                })
                .expect("spawning the acquisition thread"),
        );
        threads.push(
            std::thread::Builder::new()
                .name("results".into())
                .spawn(move || {
                    while let Ok(r) = res_rx.recv() {
                        sink(&r);
                    }
                })
                .expect("spawning the results thread"),
        );
        Self {
            triggers: trig_tx,
            live: live_rx,
            pool,
            telemetry,
            threads,
            attached: Vec::new(),
        }
    }

    /// Queues a die for inspection. Blocks while 64 triggers are pending,
    /// which paces a caller that runs ahead of the pipeline.
    pub fn inspect(&self, die_index: u32) {
        let _ = self.triggers.send(Trigger::Inspect(die_index));
    }

    /// Queues a live-view frame of a die (dropped, and counted, if the
    /// pipeline or the viewer is behind).
    pub fn live(&self, die_index: u32) {
        let _ = self.triggers.try_send(Trigger::Live(die_index));
    }

    /// The newest live-view frame, if one is waiting.
    pub fn take_live_frame(&self) -> Option<Frame> {
        self.live.try_recv().ok()
    }

    /// Marks the end of a plan: held dies are inspected against the golden
    /// die where a neighbour is missing.
    pub fn end_of_plan(&self) {
        let _ = self.triggers.send(Trigger::EndOfPlan);
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

    /// Finishes everything queued and joins the threads.
    pub fn finish(mut self) {
        let _ = self.triggers.send(Trigger::EndOfPlan);
        let _ = self.triggers.send(Trigger::Stop);
        for t in self.threads.drain(..).chain(self.attached.drain(..)) {
            let _ = t.join();
        }
    }
}

/// Static names for the hot-thread registry (it keeps `&'static str`).
const DETECT_NAMES: [&str; 8] = [
    "detect-0", "detect-1", "detect-2", "detect-3", "detect-4", "detect-5", "detect-6", "detect-7",
];
