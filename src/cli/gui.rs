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
}

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
            "{label}: UI frame CPU time over {} frames: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; pipeline {:.0} dies/s, {:.0} MPix/s, {} wafers",
            f.count(),
            f.quantile(0.5) as f64 / 1e6,
            f.quantile(0.99) as f64 / 1e6,
            f.summary().max as f64 / 1e6,
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
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.drive();
        self.app.show(ui);
        if self.last_log.elapsed() >= Duration::from_secs(10) {
            self.log_frames("running");
            self.last_log = Instant::now();
        }
        if self.exit_after.is_some_and(|d| self.started.elapsed() >= d) {
            self.log_frames("exit");
            ui.ctx().send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }
}

pub fn run(mut args: GuiArgs) -> Result<()> {
    let created = match &args.data_dir {
        Some(d) => d.prepare()?,
        None => Vec::new(),
    };
    let _log = crate::logging::init(&args.log_dir, true, args.keep_days)?;
    report_created(&created);
    let thumbnails = &args.station.thumbnails;
    crate::store::dirs::ensure_writable_dir(thumbnails, "--thumbnail-dir")?;
    crate::store::retention::keep_days(thumbnails, "run-", args.keep_days).map_err(|e| {
        anyhow!(
            "--thumbnail-dir {}: cannot start its retention: {e}",
            thumbnails.display()
        )
    })?;
    args.station.klarf_dir = Some(crate::station::exports_ready(&args.station));
    let station = Station::start(args.station)?;
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
    };
    eframe::run_native(
        "waferscope",
        options,
        Box::new(move |cc| {
            crate::ui::app::setup(&cc.egui_ctx);
            Ok(Box::new(scripted))
        }),
    )
    .map_err(|e| anyhow!("the window could not be opened: {e} (is there a display? try `waferscope simulate` for the headless simulator)"))
}
