//! The machine as the run engine sees it: a pipeline built for a recipe,
//! and the safe state a suspension puts the tool in. `SimMachine` is the
//! built-in simulated tool.

use super::recipe::ValidRecipe;
use crate::hot::Counter;
use crate::hot::FrameGeometry;
use crate::machine::sim::{SimCamera, SimStage, SimWafer};
use crate::machine::SimFaults;
use crate::pipeline::{
    thumbnail_channel, DisplayFrame, Pipeline, PipelineConfig, PipelineTelemetry, ResultSink,
};
use crate::store::thumbs::start_writer;
use anyhow::Result;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub trait MachineControl: Send {
    /// Starts an inspection pipeline for the recipe's wafer; with
    /// `thumbnails`, defect thumbnails are written into that directory.
    fn build_pipeline(
        &mut self,
        recipe: &ValidRecipe,
        sink: ResultSink,
        thumbnails: Option<PathBuf>,
    ) -> Result<Pipeline>;
    /// Stage stopped, illumination to standby. Called after the pipeline's
    /// gate has closed and the die in hand has ended, so nothing is imaged
    /// from here until the run resumes.
    fn make_safe(&mut self);
    /// Back to operating conditions after a suspension.
    fn restore_operation(&mut self);
    /// Defect thumbnails that could not be written so far (cumulative).
    fn thumbnails_failed(&self) -> u64 {
        0
    }
}

/// The simulated tool.
pub struct SimMachine {
    /// Camera and stage faults.
    pub device_faults: Arc<SimFaults>,
    /// Seed of the simulated wafer.
    pub wafer_seed: u64,
    /// Stage move-time scale (0 = instantaneous).
    pub stage_time_scale: f64,
    /// Camera frame-rate limit (None = as fast as rendered).
    pub camera_fps: Option<f64>,
    /// Whether the tool is in its safe state (read by tests and the UI).
    pub safe: Arc<AtomicBool>,
    pub workers: Option<usize>,
    /// Thumbnails of the current wafer that could not be written (a new
    /// counter per wafer, like the pipeline's own).
    pub thumbnail_failures: Arc<Counter>,
    /// The pipeline of the run in progress, for the health panel and the
    /// live view.
    pub current: Arc<Mutex<Option<LivePipeline>>>,
    /// Captures the camera began, over the tool's life.
    pub captures: Arc<Counter>,
    /// `captures` when the tool was last made safe: nothing may be imaged
    /// between a trip and the resume, so a test compares the two.
    pub captures_at_safe: Arc<AtomicU64>,
    /// How long ending a pipeline waits for a stuck thread.
    pub stop_deadline: Duration,
}

/// What the UI reads of a running pipeline.
#[derive(Clone)]
pub struct LivePipeline {
    pub telemetry: Arc<PipelineTelemetry>,
    pub display: Arc<DisplayFrame>,
    pub pool: crate::hot::FramePool,
    pub workers: usize,
    pub image_px: u32,
    /// Thumbnails this wafer did not get: skipped on the hot path (no free
    /// crop buffer, full queue, over the per-die limit) plus those the
    /// writer could not write.
    pub thumbnails_skipped: Option<Arc<Counter>>,
    pub thumbnail_failures: Arc<Counter>,
}

impl LivePipeline {
    /// Every thumbnail of this wafer that is missing, for the Health panel.
    pub fn thumbnails_missing(&self) -> u64 {
        self.thumbnails_skipped.as_ref().map_or(0, |c| c.get()) + self.thumbnail_failures.get()
    }
}

impl SimMachine {
    pub fn new(wafer_seed: u64) -> Self {
        Self {
            device_faults: Arc::new(SimFaults::default()),
            wafer_seed,
            stage_time_scale: 1.0,
            camera_fps: Some(60.0),
            safe: Arc::new(AtomicBool::new(false)),
            workers: None,
            thumbnail_failures: Arc::new(Counter::new()),
            current: Arc::new(Mutex::new(None)),
            captures: Arc::new(Counter::new()),
            captures_at_safe: Arc::new(AtomicU64::new(0)),
            stop_deadline: PipelineConfig::default().stop_deadline,
        }
    }

    /// As fast as the host allows (tests, benchmarks).
    pub fn fast(wafer_seed: u64) -> Self {
        Self {
            stage_time_scale: 0.0,
            camera_fps: None,
            ..Self::new(wafer_seed)
        }
    }
}

impl MachineControl for SimMachine {
    fn build_pipeline(
        &mut self,
        recipe: &ValidRecipe,
        sink: ResultSink,
        thumbnails: Option<PathBuf>,
    ) -> Result<Pipeline> {
        let frame = FrameGeometry::gray8(recipe.image_px, recipe.image_px);
        let wafer = Arc::new(SimWafer::with_sites(
            recipe.geometry,
            frame,
            self.wafer_seed,
            recipe.sites.clone(),
        ));
        let mut camera = SimCamera::new(wafer.clone(), 2.0, self.device_faults.clone())
            .with_capture_counter(self.captures.clone());
        if let Some(fps) = self.camera_fps {
            camera = camera.with_frame_rate(fps);
        }
        let golden = camera.golden();
        let stage = SimStage::new(
            400.0,
            Duration::from_millis(2),
            self.stage_time_scale,
            self.device_faults.clone(),
        );
        let display = Arc::new(DisplayFrame::new(
            recipe.image_px as usize,
            recipe.image_px as usize,
            512,
            30.0,
        ));
        let mut cfg = PipelineConfig {
            params: recipe.detect,
            display: Some(display.clone()),
            stop_deadline: self.stop_deadline,
            faults: Some(self.device_faults.clone()),
            ..PipelineConfig::default()
        };
        if let Some(w) = self.workers {
            cfg.workers = w;
            cfg.pool_frames = 3 * w + 4;
        }
        let workers = cfg.workers;
        self.thumbnail_failures = Arc::new(Counter::new());
        let (tap, writer) = match thumbnails {
            Some(dir) => {
                let (tap, feed) = thumbnail_channel(256, 16);
                let writer = start_writer(feed, dir, self.thumbnail_failures.clone());
                (Some(tap), Some(writer))
            }
            None => (None, None),
        };
        let thumbnails_skipped = tap.as_ref().map(|t| t.skipped.clone());
        let mut pipeline = Pipeline::start_with_thumbnails(
            cfg,
            Box::new(camera),
            Some(Box::new(stage)),
            wafer.sites.clone().into(),
            golden,
            sink,
            tap,
        );
        if let Some(w) = writer {
            pipeline.attach(w);
        }
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = Some(LivePipeline {
            telemetry: pipeline.telemetry().clone(),
            display,
            pool: pipeline.pool().clone(),
            workers,
            image_px: recipe.image_px,
            thumbnails_skipped,
            thumbnail_failures: self.thumbnail_failures.clone(),
        });
        Ok(pipeline)
    }

    fn make_safe(&mut self) {
        self.captures_at_safe
            .store(self.captures.get(), Ordering::Release);
        self.safe.store(true, Ordering::Release);
        tracing::warn!("tool made safe: stage stopped, illumination to standby");
    }

    fn restore_operation(&mut self) {
        self.safe.store(false, Ordering::Release);
        tracing::info!("tool back to operating conditions");
    }

    fn thumbnails_failed(&self) -> u64 {
        self.thumbnail_failures.get()
    }
}
