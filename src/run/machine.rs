//! The machine as the run engine sees it: a pipeline built for a recipe,
//! and the safe state a suspension puts the tool in. `SimMachine` is the
//! built-in simulated tool.

use super::recipe::ValidRecipe;
use crate::hot::Counter;
use crate::hot::FrameGeometry;
use crate::machine::config::{CameraDriver, StageDriver};
use crate::machine::modbus::ModbusStage;
use crate::machine::sim::{SimCamera, SimStage, SimWafer};
use crate::machine::{Camera, SimFaults, Stage};
use crate::pipeline::teach::{teach_golden, TaughtGolden};
use crate::pipeline::{
    thumbnail_channel, DisplayFrame, Pipeline, PipelineConfig, PipelineTelemetry, ResultSink,
};
use crate::store::golden::{load_golden, save_golden};
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
    /// Teaches the recipe's golden die from `dies` dies of its plan imaged
    /// now (the median of them, aligned), and keeps it for the recipe's
    /// later runs. Only while no run is in progress.
    fn teach_golden(&mut self, recipe: &ValidRecipe, dies: usize) -> Result<TaughtGolden>;
}

/// Dies a golden is taught from when a run needs one and none was taught.
pub const DEFAULT_TEACH_DIES: usize = crate::pipeline::teach::DEFAULT_TEACH_DIES;

/// The simulated tool.
pub struct SimMachine {
    /// Camera and stage faults.
    pub device_faults: Arc<SimFaults>,
    /// Seed of the simulated wafer imaged when the robot has put none on
    /// the chuck (a wafer loaded by hand, single-wafer runs).
    pub wafer_seed: u64,
    /// The chuck the simulated robot loads: the wafer on it is the one
    /// imaged (each wafer of a lot its own).
    pub chuck: Arc<crate::machine::sim::SimChuck>,
    /// Stage move-time scale (0 = instantaneous).
    pub stage_time_scale: f64,
    /// Camera frame-rate limit (None = as fast as rendered).
    pub camera_fps: Option<f64>,
    /// Which camera images each die: the simulated one, or a GigE Vision
    /// camera (feature `gige`).
    pub camera_driver: CameraDriver,
    /// Which stage moves to each die: the simulated one, or a real
    /// controller (the camera stays the simulator's either way).
    pub stage_driver: StageDriver,
    /// A GigE camera's control-port heartbeat: captures are refused at once
    /// while it is silent.
    #[cfg(feature = "gige")]
    pub camera_link: Option<Arc<crate::machine::gige::CameraLink>>,
    /// Moves a real stage confirmed in position at their target, over the
    /// tool's life (a new stage connection per run adds to it).
    pub stage_moves_confirmed: Arc<Counter>,
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
    /// Taught golden dies are kept here, one per recipe
    /// (`store::golden`); `None` keeps them in memory for this tool's life.
    pub golden_dir: Option<PathBuf>,
    /// A reticle defect on the simulated wafer: (x, y, radius) in pixels
    /// and every how many dies (see `SimWafer::add_reticle_defect`).
    pub reticle_defect: Option<(f32, f32, f32, u32)>,
    /// Goldens taught while `golden_dir` is `None`, by recipe id and
    /// content hash (a revised recipe of the same id is taught anew).
    taught: std::collections::HashMap<(String, String), Arc<[u8]>>,
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
            chuck: Arc::default(),
            stage_time_scale: 1.0,
            camera_fps: Some(60.0),
            camera_driver: CameraDriver::Sim,
            stage_driver: StageDriver::Sim,
            #[cfg(feature = "gige")]
            camera_link: None,
            stage_moves_confirmed: Arc::new(Counter::new()),
            safe: Arc::new(AtomicBool::new(false)),
            workers: None,
            thumbnail_failures: Arc::new(Counter::new()),
            current: Arc::new(Mutex::new(None)),
            captures: Arc::new(Counter::new()),
            captures_at_safe: Arc::new(AtomicU64::new(0)),
            stop_deadline: PipelineConfig::default().stop_deadline,
            golden_dir: None,
            reticle_defect: None,
            taught: Default::default(),
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
        let wafer = self.wafer_for(recipe);
        let camera: Box<dyn Camera> = match &self.camera_driver {
            CameraDriver::Sim => {
                let mut camera = SimCamera::new(wafer.clone(), 2.0, self.device_faults.clone())
                    .with_capture_counter(self.captures.clone());
                if let Some(fps) = self.camera_fps {
                    camera = camera.with_frame_rate(fps);
                }
                Box::new(camera)
            }
            #[cfg(feature = "gige")]
            CameraDriver::Gige(cfg) => {
                let mut camera = crate::machine::gige::GigeCamera::new(
                    cfg.clone(),
                    wafer.frame,
                    Some(recipe.recipe.optics.exposure_us),
                )
                .map_err(anyhow::Error::msg)?;
                if let Some(link) = &self.camera_link {
                    camera = camera.with_link(link.clone());
                }
                Box::new(camera)
            }
            #[cfg(not(feature = "gige"))]
            CameraDriver::Gige(_) => anyhow::bail!(
                "the machine configuration names a GigE camera, and this build has no GigE support: build with `--features gige` (needs libaravis-dev)"
            ),
        };
        // A die-to-reference recipe compares with its own image only: no
        // golden die is taught for it (the image stands in where the
        // pipeline wants one).
        let golden = match &recipe.reference {
            crate::pipeline::ReferenceSource::DieToReference(px) => Arc::clone(px),
            _ => self.golden_for(recipe, &wafer)?,
        };
        let stage: Box<dyn Stage> = match &self.stage_driver {
            StageDriver::Sim => Box::new(SimStage::new(
                400.0,
                Duration::from_millis(2),
                self.stage_time_scale,
                self.device_faults.clone(),
            )),
            StageDriver::Modbus(cfg) => Box::new(ModbusStage::new(
                cfg.clone(),
                self.stage_moves_confirmed.clone(),
            )),
        };
        let display = Arc::new(DisplayFrame::new(
            recipe.image_px as usize,
            recipe.image_px as usize,
            512,
            30.0,
        ));
        let mut cfg = PipelineConfig {
            params: recipe.detect,
            reference: recipe.reference.clone(),
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
            camera,
            Some(stage),
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

    fn teach_golden(&mut self, recipe: &ValidRecipe, dies: usize) -> Result<TaughtGolden> {
        self.teaching_is_on_the_simulator(recipe)?;
        let wafer = self.wafer_for(recipe);
        let golden = teach_on(&wafer, &teaching_dies(recipe), dies)?;
        self.keep_golden(recipe, &golden)?;
        Ok(golden)
    }
}

impl SimMachine {
    fn wafer_for(&self, recipe: &ValidRecipe) -> Arc<SimWafer> {
        let frame = FrameGeometry::gray8(recipe.image_px, recipe.image_px);
        let mut wafer = SimWafer::with_sites(
            recipe.geometry,
            frame,
            self.chuck.wafer_seed().unwrap_or(self.wafer_seed),
            recipe.sites.clone(),
        );
        if let Some((x, y, r, every)) = self.reticle_defect {
            wafer.add_reticle_defect(x, y, r, every);
        }
        Arc::new(wafer)
    }

    /// The golden die a run of `recipe` compares against: the one taught
    /// for it, or, if none was, one taught now from this wafer (logged, and
    /// kept for the recipe's next runs). Never the simulator's own
    /// noise-free render: a real tool has none.
    fn golden_for(&mut self, recipe: &ValidRecipe, wafer: &Arc<SimWafer>) -> Result<Arc<[u8]>> {
        let id = &recipe.recipe.id;
        if let Some(dir) = &self.golden_dir {
            if let Some(px) = load_golden(dir, id, recipe.image_px, recipe.image_px)? {
                return Ok(px.into());
            }
        } else if let Some(px) = self.taught.get(&(id.clone(), recipe.hash.clone())) {
            return Ok(Arc::clone(px));
        }
        self.teaching_is_on_the_simulator(recipe)?;
        let golden = teach_on(wafer, &teaching_dies(recipe), DEFAULT_TEACH_DIES)?;
        tracing::info!(
            recipe = %id,
            dies = golden.dies,
            "no golden die taught for this recipe: taught one now from dies of this wafer"
        );
        self.keep_golden(recipe, &golden)
    }

    /// Teaching images dies with the simulated camera: with a real camera
    /// its golden would be the simulator's picture, and every real die would
    /// differ from it everywhere. Refused then (the run, and the window's
    /// Teach action), saying where a golden die can be put instead.
    fn teaching_is_on_the_simulator(&self, recipe: &ValidRecipe) -> Result<()> {
        if matches!(self.camera_driver, CameraDriver::Sim) {
            return Ok(());
        }
        let id = &recipe.recipe.id;
        anyhow::bail!(
            "recipe {id}: no golden die has been taught for it, and teaching through a \
             GigE camera is not supported yet: put the golden die ({px}×{px} grayscale PNG \
             named {id}.png) in {}, or use a recipe with reference = \"die_to_reference\"",
            self.golden_dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| "the station's golden directory".into()),
            px = recipe.image_px
        )
    }

    fn keep_golden(&mut self, recipe: &ValidRecipe, golden: &TaughtGolden) -> Result<Arc<[u8]>> {
        let id = &recipe.recipe.id;
        if let Some(dir) = &self.golden_dir {
            let path = save_golden(dir, id, golden.width, golden.height, &golden.pixels)?;
            tracing::info!(recipe = %id, path = %path.display(), "golden die saved");
        }
        let px: Arc<[u8]> = golden.pixels.clone().into();
        if self.golden_dir.is_none() {
            self.taught
                .insert((id.clone(), recipe.hash.clone()), Arc::clone(&px));
        }
        Ok(px)
    }
}

/// The dies a golden is taught from: the recipe's plan, or every die of
/// the wafer when the plan is too short to outvote a defect (a recipe may
/// list a single die).
fn teaching_dies(recipe: &ValidRecipe) -> Vec<u32> {
    if recipe.plan.len() >= DEFAULT_TEACH_DIES {
        recipe.plan.clone()
    } else {
        recipe.sites.iter().map(|s| s.index).collect()
    }
}

/// Images `dies` dies spread over `plan` of the simulated `wafer` with a
/// camera of its own (so no fault armed on the tool's camera is spent here)
/// and teaches the golden from them.
pub fn teach_on(wafer: &Arc<SimWafer>, plan: &[u32], dies: usize) -> Result<TaughtGolden> {
    if plan.len() < dies {
        anyhow::bail!(
            "teaching a golden die needs {dies} dies but the recipe's plan has {}",
            plan.len()
        );
    }
    let mut camera = SimCamera::new(wafer.clone(), 2.0, Arc::new(SimFaults::default()));
    let pool = crate::hot::FramePool::new(dies, wafer.frame);
    let mut frames = Vec::with_capacity(dies);
    for k in 0..dies {
        let die = plan[k * plan.len() / dies];
        let mut f = pool
            .try_lease()
            .ok_or_else(|| anyhow::anyhow!("no frame free for teaching"))?;
        camera
            .capture(die, &mut f)
            .map_err(|e| anyhow::anyhow!("die {die}: camera: {e:?}"))?;
        frames.push(f);
    }
    let views: Vec<&[u8]> = frames.iter().map(|f| f.data()).collect();
    teach_golden(&views, wafer.frame.width, wafer.frame.height)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::MachineConfig;
    use std::path::Path;

    /// The window's Teach action and a run without a golden both refuse on
    /// a GigE station (its golden would be the simulator's picture); the
    /// simulator teaches as before.
    #[test]
    fn a_gige_station_never_teaches_its_golden_from_the_simulator() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let recipe = crate::run::recipe::load(&root.join("assets/recipes/sampled-200mm.toml"))
            .expect("the shipped recipe");
        let golden_dir =
            std::env::temp_dir().join(format!("waferscope-teach-gige-{}", std::process::id()));
        std::fs::remove_dir_all(&golden_dir).ok();
        let mut machine = SimMachine::fast(1);
        machine.golden_dir = Some(golden_dir.clone());
        machine.camera_driver = MachineConfig::load(&root.join("assets/machines/gige-camera.toml"))
            .expect("the shipped camera sample")
            .camera;
        let e = format!(
            "{:#}",
            machine
                .teach_golden(&recipe, 3)
                .expect_err("taught from the simulator")
        );
        assert!(
            e.contains("not supported yet") && e.contains(&golden_dir.display().to_string()),
            "{e}"
        );
        assert!(!golden_dir.exists(), "a golden die was written");
        machine.camera_driver = CameraDriver::Sim;
        machine
            .teach_golden(&recipe, 3)
            .expect("the simulator teaches");
        std::fs::remove_dir_all(&golden_dir).ok();
    }
}
