//! The `waferscope` command: operator station and its headless tools.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use waferscope::bench;
use waferscope::cli::out::OutputFailed;
use waferscope::cli::run::exit_code;

#[global_allocator]
static ALLOC: waferscope::hot::CountingAlloc = waferscope::hot::CountingAlloc;

/// Every exit code, shown under `--help` (and in README.md).
const EXIT_CODES: &str = "\
Exit codes:
  0  success (`run`: the wafer completed)
  2  bad input: a file, directory, id or option is wrong (the message names it);
     nothing was started
  3  `run`: stopped by the operator (Ctrl-C)
  4  `run`: aborted (Ctrl-C twice, or a safety trip that cannot resume)
  5  `run`: faulted (the reason is printed and recorded with the run)
  6  `run`: not ready (an interlock refused the start); `devices`: a device
     did not answer
  7  `run`: completed and recorded, but its KLARF or thumbnails could not be
     written (the reason is printed and recorded; repeat with `export`)
  8  standard output was closed (e.g. `| head`) or could not be written";

#[derive(Parser)]
#[command(
    name = "waferscope",
    version,
    about = "Operator station for wafer inspection tools",
    after_help = EXIT_CODES
)]
struct Cli {
    /// The machine: `sim` (the built-in simulated tool) or a machine
    /// configuration file naming a driver per subsystem
    /// (docs/machine-config.md). Used by the window and `run`.
    #[arg(long, global = true, default_value = "sim")]
    machine: String,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// The operator window on the simulated tool (the default).
    #[cfg(feature = "gui")]
    Gui {
        #[arg(long, default_value = "waferscope.db")]
        db: std::path::PathBuf,
        #[arg(long, default_value = "assets/alarms.toml")]
        alarms: std::path::PathBuf,
        #[arg(long, default_value = "assets/recipes")]
        recipes: std::path::PathBuf,
        #[arg(long, default_value = "thumbnails")]
        thumbnail_dir: std::path::PathBuf,
        #[arg(long, default_value = "logs")]
        log_dir: std::path::PathBuf,
        /// Delete daily logs and thumbnail directories older than this
        /// many days (at start and once a day; 0 keeps everything).
        #[arg(long, default_value_t = waferscope::logging::DEFAULT_KEEP_DAYS)]
        keep_days: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Do not pace the simulated stage and camera (full pipeline rate).
        #[arg(long)]
        fast: bool,
        /// Load this recipe and start a wafer at once.
        #[arg(long)]
        autostart: Option<std::path::PathBuf>,
        /// With --autostart: inspect wafers back to back.
        #[arg(long)]
        demo: bool,
        /// Close after this many seconds and print UI frame-time statistics.
        #[arg(long)]
        exit_after: Option<f64>,
    },
    /// Inspect one wafer headless with a recipe (progress bar; Ctrl-C
    /// stops, twice aborts). Exit codes: 0 complete, 2 bad input (checked
    /// before the run starts), 3 stopped, 4 aborted, 5 faulted, 6 not
    /// ready (interlocks), 7 complete but not exported, 8 standard output
    /// closed.
    #[command(after_help = EXIT_CODES)]
    Run {
        #[arg(long)]
        recipe: std::path::PathBuf,
        /// Lot id: 1 to 32 characters, no control characters; characters
        /// KLARF cannot carry (" ; { } , non-ASCII) become `_` (warned).
        #[arg(long)]
        lot: String,
        /// Wafer id, same rules as --lot.
        #[arg(long)]
        wafer: String,
        #[arg(long, default_value_t = 1)]
        slot: u32,
        #[arg(long, default_value = "operator")]
        operator: String,
        /// The station's database (alarm journal; run results with the
        /// results store).
        #[arg(long, default_value = "waferscope.db")]
        db: std::path::PathBuf,
        /// Write the run's KLARF 1.2 and 1.8 here when it ends (must exist
        /// and be writable: checked before the run starts).
        #[arg(long)]
        klarf_dir: Option<std::path::PathBuf>,
        /// Defect thumbnails go to DIR/run-<id>/ (created if missing; must
        /// be writable).
        #[arg(long, default_value = "thumbnails")]
        thumbnail_dir: std::path::PathBuf,
        /// Taught golden dies (`waferscope teach`); a recipe with none gets
        /// one taught at the start of its first run, kept here. Default:
        /// `golden/` beside the database.
        #[arg(long)]
        golden_dir: Option<std::path::PathBuf>,
        /// Alarm definitions.
        #[arg(long, default_value = "assets/alarms.toml")]
        alarms: std::path::PathBuf,
        /// Where the daily log files go (must be writable).
        #[arg(long, default_value = "logs")]
        log_dir: std::path::PathBuf,
        /// Delete daily logs and thumbnail directories older than this
        /// many days (at start and once a day; 0 keeps everything).
        #[arg(long, default_value_t = waferscope::logging::DEFAULT_KEEP_DAYS)]
        keep_days: u32,
        /// Seed of the simulated wafer.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Do not pace the simulated stage and camera like the real tool.
        #[arg(long)]
        fast: bool,
        /// Frame rate of the simulated camera when paced (frames/s).
        #[arg(long, default_value_t = 60.0)]
        sim_fps: f64,
    },
    /// Teach a recipe's golden die on the simulated tool: the median of
    /// DIES dies of its plan, each aligned to the first, saved as
    /// GOLDEN_DIR/<recipe id>.png where `run` and the window find it.
    Teach {
        #[arg(long)]
        recipe: std::path::PathBuf,
        #[arg(long, default_value_t = waferscope::run::machine::DEFAULT_TEACH_DIES)]
        dies: usize,
        #[arg(long, default_value = "golden")]
        golden_dir: std::path::PathBuf,
        /// Seed of the simulated wafer.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Inspect a whole simulated wafer headless (the default).
    Simulate {
        /// Wafer diameter, mm (200 or 300).
        #[arg(long, default_value_t = 300.0)]
        wafer_mm: f64,
        /// Die size, mm (square dies; pitch adds a 100 µm street).
        #[arg(long, default_value_t = 10.0)]
        die_mm: f64,
        /// Image width and height, pixels.
        #[arg(long, default_value_t = 1024)]
        size: u32,
        /// Seed of the simulated wafer (same seed, same wafer).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Camera frame rate, frames per second.
        #[arg(long, default_value_t = 60.0)]
        fps: f64,
    },
    /// Inspect a die image against its neighbours and/or a reference image
    /// (PNG or TIFF, 8- or 16-bit grayscale, told apart by content). A die
    /// that cannot be registered with its references (untrusted alignment)
    /// is reported as such and exits 2.
    Inspect {
        /// The die under test.
        #[arg(long)]
        die: std::path::PathBuf,
        /// The die to its left (with --right: die-to-die).
        #[arg(long)]
        left: Option<std::path::PathBuf>,
        /// The die to its right (with --left).
        #[arg(long)]
        right: Option<std::path::PathBuf>,
        /// A reference (defect-free) die image. Alone: die-to-reference.
        /// With --left/--right: arbitrates where both neighbours are
        /// defective at one spot.
        #[arg(long)]
        reference: Option<std::path::PathBuf>,
        /// Care mask, the size of the die: pixels of value 0 are "don't
        /// care"; defects lying entirely there are not reported.
        #[arg(long)]
        mask: Option<std::path::PathBuf>,
        /// Significant bits of 16-bit images (e.g. 12 for a 12-bit
        /// camera): they are shifted right by bits − 8. Default: the fewest
        /// bits that hold the largest value among the 16-bit images.
        #[arg(long)]
        bits: Option<u8>,
        /// Micrometres per pixel.
        #[arg(long, default_value_t = 1.0)]
        pixel_um: f64,
        /// Grey levels a pixel must differ from both neighbours by.
        #[arg(long, default_value_t = 24)]
        threshold: u8,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Validate a machine configuration file without connecting to
    /// anything; prints which driver serves each subsystem.
    CheckConfig {
        /// The machine configuration (TOML).
        path: std::path::PathBuf,
    },
    /// Connect to every device of a machine configuration once and report
    /// each one's state and readings (exit 6 if any did not answer).
    Devices {
        /// The machine configuration (TOML), or `sim`.
        path: std::path::PathBuf,
    },
    /// List the runs recorded in a results database.
    Runs {
        #[arg(long, default_value = "waferscope.db")]
        db: std::path::PathBuf,
    },
    /// Export a run (KLARF 1.2, KLARF 1.8, CSV of defects), or the alarm
    /// journal as CSV.
    Export {
        /// The run id (see `waferscope runs`).
        #[arg(long, required_unless_present = "alarm_journal")]
        run: Option<i64>,
        /// klarf12, klarf18 or csv.
        #[arg(long, default_value = "klarf12")]
        format: String,
        /// Export the alarm journal as CSV instead of a run.
        #[arg(long)]
        alarm_journal: bool,
        /// Output file or directory (default: a name from lot, wafer and
        /// run in the current directory).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        #[arg(long, default_value = "waferscope.db")]
        db: std::path::PathBuf,
    },
    /// Measure the hot path and print text and JSON.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

#[derive(Subcommand)]
enum BenchWhat {
    /// Frame pool, hand-off and latest-value cell against naive versions.
    Hot {
        /// Print only the JSON line.
        #[arg(long)]
        json: bool,
        /// Internal: measure only the fresh-Vec baseline (run as a child
        /// with a different malloc configuration).
        #[arg(long, hide = true)]
        fresh_vec_only: bool,
    },
    /// Poll cost per signal, and frozen-heartbeat to Stale/Lost delays.
    Monitor {
        /// Print only the JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Modbus I/O at 1 kHz against the servers of a machine configuration
    /// (`--machine PATH`): per-request round trip and allocations through
    /// our driver, beside tokio-modbus alone (scripts/bench-modbus.sh
    /// starts a libmodbus server and runs this).
    Modbus {
        /// Seconds per phase (driver, then the crate alone).
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Print only the JSON line.
        #[arg(long)]
        json: bool,
    },
    /// The simulated inspection pipeline end to end, and its parts alone.
    Pipeline {
        /// Frames to push through after warm-up.
        #[arg(long, default_value_t = 1000)]
        frames: u64,
        /// Frame width and height, pixels.
        #[arg(long, default_value_t = 2048)]
        size: u32,
        /// Print only the JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Recall and false detections per die against noise σ and defect
    /// contrast on the realistic simulator (±64 px stage error, ±10 % gain),
    /// beside a naive detector.
    Sensitivity {
        /// Die triplets per table cell.
        #[arg(long, default_value_t = 30)]
        dies: usize,
        /// Print only the JSON line.
        #[arg(long)]
        json: bool,
    },
}

fn main() {
    // Errors read as one line naming what was wrong, never as a backtrace.
    if let Err(e) = run(Cli::parse()) {
        fail(e);
    }
}

/// Reports `e` on stderr and exits with its documented code: a closed or
/// failing standard output has its own, everything else is bad input.
fn fail(e: anyhow::Error) -> ! {
    waferscope::errln!("error: {e:#}");
    let code = if e.downcast_ref::<OutputFailed>().is_some() {
        exit_code::OUTPUT_FAILED
    } else {
        exit_code::BAD_INPUT
    };
    std::process::exit(code)
}

fn run(cli: Cli) -> Result<()> {
    // Validated before anything starts: a bad file exits 2 naming the file
    // and field. Only the commands that drive the machine read it.
    let machine = || waferscope::machine::MachineConfig::from_arg(&cli.machine);
    match cli.command {
        #[cfg(not(feature = "gui"))]
        None => waferscope::cli::simulate::run(&Default::default()),
        #[cfg(feature = "gui")]
        None => waferscope::cli::gui::run(waferscope::cli::gui::GuiArgs {
            station: waferscope::station::StationConfig {
                machine: machine()?,
                ..Default::default()
            },
            log_dir: "logs".into(),
            keep_days: waferscope::logging::DEFAULT_KEEP_DAYS,
            autostart: None,
            demo: false,
            exit_after: None,
        }),
        #[cfg(feature = "gui")]
        Some(Command::Gui {
            db,
            alarms,
            recipes,
            thumbnail_dir,
            log_dir,
            keep_days,
            seed,
            fast,
            autostart,
            demo,
            exit_after,
        }) => waferscope::cli::gui::run(waferscope::cli::gui::GuiArgs {
            station: waferscope::station::StationConfig {
                machine: machine()?,
                db,
                alarms,
                recipes,
                thumbnails: thumbnail_dir,
                wafer_seed: seed,
                paced: !fast,
                ..Default::default()
            },
            log_dir,
            keep_days,
            autostart,
            demo,
            exit_after: exit_after.map(std::time::Duration::from_secs_f64),
        }),
        Some(Command::CheckConfig { path }) => waferscope::cli::devices::check_config(&path),
        Some(Command::Devices { path }) => {
            if !waferscope::cli::devices::devices(&path)? {
                std::process::exit(exit_code::NOT_READY);
            }
            Ok(())
        }
        Some(Command::Runs { db }) => waferscope::cli::export::list(&db),
        Some(Command::Export {
            run,
            format,
            alarm_journal,
            out,
            db,
        }) => waferscope::cli::export::export(&db, run, &format, alarm_journal, out.as_deref()),
        Some(Command::Run {
            recipe,
            lot,
            wafer,
            slot,
            operator,
            db,
            klarf_dir,
            thumbnail_dir,
            golden_dir,
            alarms,
            log_dir,
            keep_days,
            seed,
            fast,
            sim_fps,
        }) => {
            let args = waferscope::cli::run::RunArgs {
                machine: machine()?,
                sim_fps,
                recipe,
                lot,
                wafer,
                slot,
                operator,
                db,
                klarf_dir,
                thumbnail_dir,
                golden_dir,
                alarms,
                log_dir,
                seed,
                fast,
                keep_days,
            };
            match waferscope::cli::run::run(&args) {
                Ok(code) => std::process::exit(code),
                Err(e) => fail(e),
            }
        }
        Some(Command::Teach {
            recipe,
            dies,
            golden_dir,
            seed,
        }) => waferscope::cli::teach::run(&waferscope::cli::teach::TeachArgs {
            recipe,
            dies,
            golden_dir,
            seed,
        }),
        Some(Command::Simulate {
            wafer_mm,
            die_mm,
            size,
            seed,
            fps,
        }) => waferscope::cli::simulate::run(&waferscope::cli::simulate::SimulateArgs {
            wafer_mm,
            die_mm,
            size,
            seed,
            fps,
        }),
        Some(Command::Inspect {
            die,
            left,
            right,
            reference,
            mask,
            bits,
            pixel_um,
            threshold,
            json,
        }) => waferscope::cli::inspect::run(&waferscope::cli::inspect::InspectArgs {
            die,
            left,
            right,
            reference,
            mask,
            bits,
            pixel_um,
            threshold,
            json,
        }),
        Some(Command::Bench { what }) => match what {
            BenchWhat::Hot {
                json,
                fresh_vec_only,
            } => {
                if fresh_vec_only {
                    waferscope::outln!("{}", bench::hot::fresh_vec_fill_ns())?;
                    return Ok(());
                }
                let child = fresh_vec_in_mmap_child()?;
                bench::hot::run(Some(child)).print(json)?;
                Ok(())
            }
            BenchWhat::Modbus { seconds, json } => {
                anyhow::ensure!(
                    seconds > 0.0 && seconds <= 600.0,
                    "--seconds must be above 0 and at most 600, got {seconds}"
                );
                bench::modbus::run(&cli.machine, seconds)?.print(json)?;
                Ok(())
            }
            BenchWhat::Monitor { json } => {
                bench::monitor::run().print(json)?;
                Ok(())
            }
            BenchWhat::Pipeline { frames, size, json } => {
                anyhow::ensure!(
                    (256..=8192).contains(&size),
                    "--size must be 256 to 8192 pixels, got {size}"
                );
                bench::pipeline::run(frames, size)?.print(json)?;
                Ok(())
            }
            BenchWhat::Sensitivity { dies, json } => {
                bench::sensitivity::run(dies)?.print(json)?;
                Ok(())
            }
        },
    }
}

/// Runs the fresh-Vec baseline in a child whose glibc mmaps every block of
/// 128 KiB or more, so each fresh frame page-faults.
fn fresh_vec_in_mmap_child() -> Result<f64> {
    let exe = std::env::current_exe().context("locating our own executable")?;
    let out = std::process::Command::new(exe)
        .args(["bench", "hot", "--fresh-vec-only"])
        .env("MALLOC_MMAP_THRESHOLD_", "131072")
        .output()
        .context("running the mmap-threshold child")?;
    anyhow::ensure!(out.status.success(), "mmap-threshold child failed");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .context("parsing the child's measurement")
}
