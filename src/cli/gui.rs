//! `waferscope` / `waferscope gui`: the operator window on the simulated
//! tool.

use crate::station::data_dir::{report_created, DataDir};
use crate::station::{Station, StationConfig};
use crate::ui::StationApp;
use anyhow::{anyhow, Result};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub struct GuiArgs {
    pub station: StationConfig,
    pub log_dir: PathBuf,
    /// The data directory, if some of the paths came from it: created and
    /// given the shipped alarms and recipes before the station starts.
    pub data_dir: Option<DataDir>,
    /// Daily logs and thumbnail directories older than this many days are
    /// deleted (0 keeps everything).
    pub keep_days: u32,
    /// Load this recipe and start a wafer at once; with `demo`, keep
    /// inspecting wafers back to back.
    pub autostart: Option<PathBuf>,
    pub demo: bool,
    /// Close the window after this long (for scripted checks); the UI frame
    /// time statistics are printed on exit.
    pub exit_after: Option<Duration>,
    /// Serve Prometheus metrics here while the window is open
    /// (`--metrics`).
    pub metrics: Option<std::net::SocketAddr>,
    /// Link to the fab host over SECS/GEM (`--gem`, `--gem-active`).
    pub gem: Option<crate::host::hsms::HsmsMode>,
    /// Exit non-zero, naming it, if a frame after the start-up grace came
    /// later than this beyond the repaint asked for (`--fail-on-stall-ms`).
    pub fail_on_stall: Option<Duration>,
    /// Test only: sleep this long on the UI thread once, `INJECT_STALL_AT`
    /// after the first frame (`--inject-ui-stall-ms`, the check's negative
    /// case).
    pub inject_stall: Option<Duration>,
    /// `--sim-haze-percent`: the simulated camera images a hazy wafer.
    pub sim_haze_percent: f64,
}

/// When an injected stall happens: after the start-up grace, so it is
/// judged, and early enough for a short scripted run.
pub const INJECT_STALL_AT: Duration = Duration::from_secs(4);

/// The window closed after a frame gap over `--fail-on-stall-ms`.
#[derive(Debug)]
pub struct UiStalled(pub String);

impl std::fmt::Display for UiStalled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UiStalled {}

/// Wraps the app with the scripted behaviours.
struct Scripted {
    app: StationApp,
    autostart: Option<PathBuf>,
    demo: bool,
    started: Instant,
    exit_after: Option<Duration>,
    wafer: u32,
    last_log: Instant,
    run: Option<crate::hot::LatestReader<crate::run::RunSnapshot>>,
    first_frame: Option<Instant>,
    inject_stall: Option<Duration>,
    fail_on_stall: Option<Duration>,
    /// The stall judged so far (read by `run` once the window is closed).
    stalled: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    /// The latest frame already judged (how late): a sentence is built only
    /// when it grows.
    judged_gap: Option<Duration>,
    /// `--exit-after` has passed and the window was asked to close.
    closing: bool,
}

impl Scripted {
    fn drive(&mut self) {
        use crate::run::{RunCommand, RunState};
        use crate::ui::command::UiCommand;
        let Some(recipe) = self.autostart.clone() else {
            return;
        };
        if self.app.busy() {
            return;
        }
        if self.run.is_none() {
            self.run = self.app.station.engine.snapshots.reader();
        }
        let state = self.run.as_mut().map(|r| r.read().value.state);
        match state {
            Some(RunState::Idle) if self.wafer == 0 || self.demo => {
                self.wafer += 1;
                self.app.apply(UiCommand::LoadRecipe {
                    path: recipe,
                    lot: "DEMO".into(),
                    wafer: format!("W{:02}", self.wafer),
                    slot: self.wafer % 25 + 1,
                });
            }
            Some(RunState::Ready) => self.app.apply(UiCommand::Run(RunCommand::Start)),
            Some(RunState::Complete) if self.demo => {
                self.app.apply(UiCommand::Run(RunCommand::Acknowledge))
            }
            _ => {}
        }
    }

    fn log_frames(&self, label: &str) {
        let f = &self.app.frame_time;
        let line = format!(
            "{label}: UI frame over {} frames: our show() CPU p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {}; pipeline {:.0} dies/s, {:.0} MPix/s, {} wafers",
            f.count(),
            f.quantile(0.5) as f64 / 1e6,
            f.quantile(0.99) as f64 / 1e6,
            f.summary().max as f64 / 1e6,
            self.app.frame_stats.text(),
            self.app.health().frames_per_s,
            self.app.health().mpix_per_s,
            self.wafer
        );
        tracing::info!("{line}");
        // The figures are in the log already; a closed stdout only loses
        // the copy on the console.
        if let Err(e) = crate::outln!("{line}") {
            tracing::warn!("{e}");
        }
    }
}

impl eframe::App for Scripted {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let now = Instant::now();
        let asked = self.app.repaint_asked;
        self.app
            .frame_stats
            .frame(now, frame.info().cpu_usage, asked);
        let first = *self.first_frame.get_or_insert(now);
        if let Some(d) = self.inject_stall {
            if now - first >= INJECT_STALL_AT {
                self.inject_stall = None;
                tracing::warn!("--inject-ui-stall-ms: the UI thread sleeps {d:?} once");
                std::thread::sleep(d);
            }
        }
        self.judge_stall();
        self.drive();
        self.app.show(ui);
        if self.last_log.elapsed() >= Duration::from_secs(10) {
            self.log_frames("running");
            self.last_log = Instant::now();
        }
        // Once: the window may draw a frame or two more while it closes.
        if !self.closing && self.exit_after.is_some_and(|d| self.started.elapsed() >= d) {
            self.closing = true;
            self.log_frames("exit");
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }
}

impl Scripted {
    /// With `--fail-on-stall-ms`: keeps the sentence naming the latest
    /// frame over the limit, for `run` to fail with once the window closes.
    fn judge_stall(&mut self) {
        let Some(limit) = self.fail_on_stall else {
            return;
        };
        let worst = self.app.frame_stats.latest().map(|w| w.late);
        if worst == self.judged_gap {
            return;
        }
        self.judged_gap = worst;
        if let Some(why) = self.app.frame_stats.stall_over(limit) {
            tracing::error!("{why}");
            *self.stalled.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
        }
    }
}

pub fn run(mut args: GuiArgs) -> Result<()> {
    let created = match &args.data_dir {
        Some(d) => d.prepare()?,
        None => Vec::new(),
    };
    // Before any thread starts allocating (the logger's, the station's).
    let tuned = crate::ui::paint_memory::keep_freed_memory_mapped();
    let _log = crate::logging::init(&args.log_dir, true, args.keep_days)?;
    report_created(&created);
    if let Err(e) = tuned {
        tracing::warn!("{e}");
    }
    let thumbnails = &args.station.thumbnails;
    crate::store::dirs::ensure_writable_dir(thumbnails, "--thumbnail-dir")?;
    crate::store::retention::keep_days(thumbnails, "run-", args.keep_days).map_err(|e| {
        anyhow!(
            "--thumbnail-dir {}: cannot start its retention: {e}",
            thumbnails.display()
        )
    })?;
    anyhow::ensure!(
        (0.0..=100.0).contains(&args.sim_haze_percent),
        "--sim-haze-percent must be 0 to 100, got {}",
        args.sim_haze_percent
    );
    args.station.klarf_dir = Some(crate::station::exports_ready(&args.station));
    let station = Station::start(args.station)?;
    station
        .device_faults
        .set_haze(args.sim_haze_percent / 100.0);
    if let Some(addr) = args.metrics {
        station.serve_metrics(addr)?;
    }
    // The host link, as `serve` starts it: its state file beside the
    // database, its SECS log with the other logs.
    let gem = match args.gem {
        Some(mode) => {
            let data = station
                .cfg
                .db
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."))
                .to_path_buf();
            let cfg = crate::host::gem::GemConfig::new(
                mode,
                &data,
                &args.log_dir,
                station.cfg.recipes.clone(),
            );
            Some(station.start_gem(cfg)?)
        }
        None => None,
    };
    let mut app = StationApp::new(station)?;
    if let Some(g) = gem {
        app = app.with_gem(g);
    }
    // A scripted window (`--autostart`, `--demo`) runs wafers with nobody
    // at the screen: it acts as an operator named for the console user who
    // started it (audited as such); anything else needs a sign-in.
    if args.autostart.is_some() {
        app.session
            .start_scripted(&app.station.guard, &crate::cli::users::console_user());
    }
    let options = eframe::NativeOptions {
        renderer: eframe::Renderer::Glow,
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1600.0, 1000.0])
            .with_title("waferscope — operator station")
            // Wayland matches the window to assets/waferscope.desktop by
            // this id (X11 by the WM class, the program's name).
            .with_app_id("waferscope"),
        // egui's shader dithers every fragment to hide banding in
        // gradients; the operator screen is flat colours, and without a GPU
        // (Mesa's llvmpipe) that per-fragment work was about an eighth of
        // the idle window's rasteriser CPU (1.56-1.69 % of a core with it,
        // 1.31-1.50 % without, in interleaved runs of scripts/gui-cpu.sh;
        // BENCHMARKS.md).
        dithering: false,
        ..Default::default()
    };
    let scripted = Scripted {
        app,
        autostart: args.autostart,
        demo: args.demo,
        started: Instant::now(),
        exit_after: args.exit_after,
        wafer: 0,
        last_log: Instant::now(),
        run: None,
        first_frame: None,
        inject_stall: args.inject_stall,
        fail_on_stall: args.fail_on_stall,
        stalled: Default::default(),
        judged_gap: None,
        closing: false,
    };
    let stalled = scripted.stalled.clone();
    eframe::run_native(
        "waferscope",
        options,
        Box::new(move |cc| {
            crate::ui::app::setup(&cc.egui_ctx);
            Ok(Box::new(scripted))
        }),
    )
    .map_err(|e| anyhow!("the window could not be opened: {e} (is there a display? try `waferscope simulate` for the headless simulator)"))?;
    let stalled = stalled.lock().unwrap_or_else(|e| e.into_inner()).take();
    match stalled {
        Some(why) => Err(UiStalled(why).into()),
        None => Ok(()),
    }
}
