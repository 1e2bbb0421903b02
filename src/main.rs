//! The `waferscope` command: operator station and its headless tools.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use waferscope::bench;
use waferscope::cli::out::OutputFailed;
use waferscope::cli::run::exit_code;
use waferscope::station::data_dir::{DataPaths, Item};

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
  8  standard output was closed (e.g. `| head`) or could not be written
  9  `audit --verify`: the audit trail was edited or has entries missing (the
     first broken entry is named)
  10 `gui --fail-on-stall-ms`: a frame came later than that beyond the
     repaint asked for (how late, the gap and when are printed)";

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
    /// Where the station keeps its alarm definitions, recipes, database,
    /// thumbnails, golden dies and logs (created on first use, with the
    /// shipped alarms and sample recipes). Default:
    /// $XDG_DATA_HOME/waferscope (~/.local/share/waferscope), logs in
    /// $XDG_STATE_HOME/waferscope/logs (~/.local/state/waferscope/logs).
    /// An option naming a path (--db, --log-dir, …) overrides it.
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics while the station
    /// runs (e.g. 127.0.0.1:9184; off by default): run and SEMI E10 state,
    /// throughput, alarms, the pipeline's health counters
    /// (docs/metrics.md). Used by the window, `run` and `serve`.
    #[arg(long, global = true, value_name = "ADDR")]
    metrics: Option<std::net::SocketAddr>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The window's options (also what plain `waferscope` opens with).
#[cfg(feature = "gui")]
#[derive(clap::Args)]
struct GuiOpts {
    /// The station's database (alarm journal and run record). Default:
    /// waferscope.db in the data directory.
    #[arg(long)]
    db: Option<PathBuf>,
    /// Alarm definitions (TOML). Default: alarms.toml in the data
    /// directory (the shipped ones, copied there on first start).
    #[arg(long)]
    alarms: Option<PathBuf>,
    /// Directory of the recipes the run control offers. Default: recipes/
    /// in the data directory (the shipped samples, copied on first start).
    #[arg(long)]
    recipes: Option<PathBuf>,
    /// Defect thumbnails go to DIR/run-<id>/ (created if missing; must be
    /// writable). Default: thumbnails/ in the data directory.
    #[arg(long)]
    thumbnail_dir: Option<PathBuf>,
    /// Where the daily log files go (must be writable). Default: logs/ in
    /// the data directory with --data-dir, else
    /// $XDG_STATE_HOME/waferscope/logs.
    #[arg(long)]
    log_dir: Option<PathBuf>,
    /// Delete daily logs and thumbnail directories older than this
    /// many days (at start and once a day; 0 keeps everything).
    #[arg(long, default_value_t = waferscope::logging::DEFAULT_KEEP_DAYS)]
    keep_days: u32,
    /// Seed of the simulated wafer.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Do not pace the simulated stage and camera (full pipeline rate).
    #[arg(long)]
    fast: bool,
    /// Load this recipe and start a wafer at once.
    #[arg(long)]
    autostart: Option<PathBuf>,
    /// With --autostart: inspect wafers back to back.
    #[arg(long)]
    demo: bool,
    /// Close after this many seconds and print UI frame-time statistics.
    #[arg(long)]
    exit_after: Option<f64>,
    /// Exit with code 10, naming it, if a frame after the first 3 s
    /// (start-up) came more than this many ms later than the window asked
    /// to repaint (33 ms while a run moves; when idle, just after the
    /// clock's next second). For scripted checks.
    #[arg(long, value_name = "MS")]
    fail_on_stall_ms: Option<u64>,
    /// Test only: the UI thread sleeps this many ms once, 4 s after the
    /// first frame (the negative case of --fail-on-stall-ms).
    #[arg(long, hide = true, value_name = "MS")]
    inject_ui_stall_ms: Option<u64>,
    /// The simulated camera images a hazy wafer: this percentage (0 to 100)
    /// of each die's 8×8 patches 90 grey levels brighter, a different set
    /// on each die (a bad wafer, for demonstrations and the GUI check).
    #[arg(long, value_name = "PERCENT", default_value_t = 0.0)]
    sim_haze_percent: f64,
    /// Link to the fab host over SECS/GEM, listening on this address (HSMS
    /// passive), e.g. 127.0.0.1:5000. Off when neither this nor
    /// --gem-active is given. The Host panel shows the link.
    #[arg(long, value_name = "ADDR:PORT", conflicts_with = "gem_active")]
    gem: Option<std::net::SocketAddr>,
    /// Link to the fab host by connecting to it (HSMS active), again T5
    /// after every disconnect.
    #[arg(long, value_name = "HOST:PORT")]
    gem_active: Option<std::net::SocketAddr>,
    /// Sign the user out after this many minutes without input.
    #[arg(long, default_value_t = 15.0, value_name = "MINUTES")]
    idle_sign_out: f64,
    /// Lock an account for this many minutes after 5 wrong passwords in a
    /// row.
    #[arg(long, default_value_t = 15.0, value_name = "MINUTES")]
    lockout: f64,
}

#[derive(Subcommand)]
enum Command {
    /// The operator window on the machine `--machine` names (the simulated
    /// tool by default); the default command.
    #[cfg(feature = "gui")]
    Gui(GuiOpts),
    /// Inspect one wafer headless with a recipe (progress bar; Ctrl-C
    /// stops, twice aborts). Exit codes: 0 complete, 2 bad input (checked
    /// before the run starts), 3 stopped, 4 aborted, 5 faulted, 6 not
    /// ready (interlocks), 7 complete but not exported, 8 standard output
    /// closed.
    #[command(after_help = EXIT_CODES)]
    Run {
        /// The recipe file (TOML, see docs/recipe.md; the shipped samples
        /// are in the data directory's recipes/).
        #[arg(long)]
        recipe: std::path::PathBuf,
        /// Lot id: 1 to 32 characters, no control characters; characters
        /// KLARF cannot carry (" ; { } , non-ASCII) become `_` (warned).
        #[arg(long)]
        lot: String,
        /// Wafer id, same rules as --lot (not with --carrier: a lot's ids
        /// are read at the pre-aligner).
        #[arg(long, required_unless_present = "carrier", conflicts_with = "carrier")]
        wafer: Option<String>,
        /// Slot of the wafer in its carrier, as recorded with the run and
        /// in the KLARF (default 1).
        #[arg(long, conflicts_with = "carrier")]
        slot: Option<u32>,
        /// Run a lot from a carrier instead of one wafer: `sim`, the
        /// simulated load port's carrier (25 slots; robot, pre-aligner and
        /// wafer-id reader). Each wafer is its own run record.
        #[arg(long, value_parser = ["sim"])]
        carrier: Option<String>,
        /// With --carrier: the slots to run, e.g. `1-6` or `1,3,5-9` or
        /// `all`. Default: every slot holding one wafer. Empty, double- and
        /// cross-slotted slots are never picked (skipped, said).
        #[arg(long, requires = "carrier")]
        slots: Option<String>,
        /// Operator id recorded with the run: up to 32 characters (may be
        /// empty), same character rules as --lot.
        #[arg(long, default_value = "operator")]
        operator: String,
        /// The station's database (alarm journal and run record).
        /// Default: waferscope.db in the data directory.
        #[arg(long)]
        db: Option<std::path::PathBuf>,
        /// Write the run's KLARF 1.2 and 1.8 here when it ends (must exist
        /// and be writable: checked before the run starts).
        #[arg(long)]
        klarf_dir: Option<std::path::PathBuf>,
        /// Defect thumbnails go to DIR/run-<id>/ (created if missing; must
        /// be writable). Default: thumbnails/ in the data directory.
        #[arg(long)]
        thumbnail_dir: Option<std::path::PathBuf>,
        /// Taught golden dies (`waferscope teach`); a recipe with none gets
        /// one taught at the start of its first run, kept here. Default:
        /// `golden/` beside the database.
        #[arg(long)]
        golden_dir: Option<std::path::PathBuf>,
        /// Alarm definitions (TOML). Default: alarms.toml in the data
        /// directory (the shipped ones, copied there on first start).
        #[arg(long)]
        alarms: Option<std::path::PathBuf>,
        /// Where the daily log files go (must be writable). Default: logs/
        /// in the data directory with --data-dir, else
        /// $XDG_STATE_HOME/waferscope/logs.
        #[arg(long)]
        log_dir: Option<std::path::PathBuf>,
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
    /// The station without a window, linked to the fab's host over SECS/GEM
    /// (HSMS): a host-driven tool. Runs until Ctrl-C or SIGTERM (a run in
    /// progress is then aborted, its results kept). docs/gem.md lists what
    /// the host can do.
    Serve {
        /// Listen for the host on this address (HSMS passive), e.g.
        /// 127.0.0.1:5000; port 0 picks a free one (printed). The default
        /// when neither --gem nor --gem-active is given: 127.0.0.1:5000.
        #[arg(long, value_name = "ADDR:PORT", conflicts_with = "gem_active")]
        gem: Option<std::net::SocketAddr>,
        /// Connect to the host at this address instead (HSMS active), again
        /// T5 after every disconnect.
        #[arg(long, value_name = "HOST:PORT")]
        gem_active: Option<std::net::SocketAddr>,
        /// HSMS device (session) id; host messages with another id are
        /// answered S9F1.
        #[arg(long, default_value_t = 0)]
        device_id: u16,
        /// HSMS reply timeout T3 in seconds, instead of the persisted
        /// equipment constant (saved as its new value).
        #[arg(long, value_name = "SECONDS")]
        t3: Option<f64>,
        /// HSMS connect separation T5 in seconds (active mode's wait between
        /// connect attempts), instead of the persisted equipment constant.
        #[arg(long, value_name = "SECONDS")]
        t5: Option<f64>,
        /// The station's database (alarm journal and run record). Default:
        /// waferscope.db in the data directory. The GEM state file
        /// (gem.toml: on-line/remote switches, equipment constants) is kept
        /// beside it.
        #[arg(long)]
        db: Option<std::path::PathBuf>,
        /// Alarm definitions (TOML). Default: alarms.toml in the data
        /// directory.
        #[arg(long)]
        alarms: Option<std::path::PathBuf>,
        /// Directory of the recipes the host's START may name. Default:
        /// recipes/ in the data directory.
        #[arg(long)]
        recipes: Option<std::path::PathBuf>,
        /// Defect thumbnails go to DIR/run-<id>/. Default: thumbnails/ in
        /// the data directory.
        #[arg(long)]
        thumbnail_dir: Option<std::path::PathBuf>,
        /// Where the daily logs and secs.log go (must be writable).
        /// Default: logs/ in the data directory with --data-dir, else
        /// $XDG_STATE_HOME/waferscope/logs.
        #[arg(long)]
        log_dir: Option<std::path::PathBuf>,
        /// Delete daily logs and thumbnail directories older than this
        /// many days (0 keeps everything).
        #[arg(long, default_value_t = waferscope::logging::DEFAULT_KEEP_DAYS)]
        keep_days: u32,
        /// Seed of the simulated wafer.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Do not pace the simulated stage and camera like the real tool.
        #[arg(long)]
        fast: bool,
        /// Start with the control switch at REMOTE (kept in gem.toml), so
        /// the host may command the headless tool; without it the switch is
        /// as last set (a fresh station: LOCAL, every remote command
        /// refused).
        #[arg(long)]
        remote: bool,
    },
    /// A day of running, accelerated: the pipeline as a run builds it
    /// inspects the recipe's plan over and over on the simulator; every
    /// interval, RSS, hot-thread allocations, pool occupancy, queue depth
    /// and hand-off latency go to a CSV, and RSS and latency over the run
    /// to a PNG plot.
    Soak {
        /// The recipe whose plan, image size and detector settings are run.
        #[arg(long)]
        recipe: std::path::PathBuf,
        /// Dies to inspect.
        #[arg(long, default_value_t = 100_000)]
        frames: u64,
        /// Dies between two samples (default: a 200th of the run, at least
        /// 1,000).
        #[arg(long)]
        interval: Option<u64>,
        /// Detection workers (default: as a run picks).
        #[arg(long)]
        workers: Option<usize>,
        /// The CSV written as the soak goes.
        #[arg(long, default_value = "soak.csv")]
        csv: std::path::PathBuf,
        /// The plot (PNG) drawn at the end.
        #[arg(long, default_value = "soak.png")]
        plot: std::path::PathBuf,
        /// Print only the JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Teach a recipe's golden die on the simulated tool: the median of
    /// DIES dies of its plan, each aligned to the first, saved as
    /// GOLDEN_DIR/<recipe id>.png where `run` and the window find it.
    Teach {
        /// The recipe file whose golden die is taught.
        #[arg(long)]
        recipe: std::path::PathBuf,
        /// Dies of the recipe's plan to take the median of.
        #[arg(long, default_value_t = waferscope::run::machine::DEFAULT_TEACH_DIES)]
        dies: usize,
        /// Where the golden die is saved. Default: golden/ in the data
        /// directory (where `run` and the window look by default).
        #[arg(long)]
        golden_dir: Option<std::path::PathBuf>,
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
        /// The results database. Default: waferscope.db in the data
        /// directory.
        #[arg(long)]
        db: Option<std::path::PathBuf>,
    },
    /// Export a run (KLARF 1.2, KLARF 1.8, CSV of defects), or the alarm
    /// journal as CSV.
    Export {
        /// The run id (see `waferscope runs`).
        #[arg(long, required_unless_present_any = ["alarm_journal", "lot"], conflicts_with = "lot")]
        run: Option<i64>,
        /// Export a lot as one KLARF 1.8 file: a WaferRecord for the newest
        /// finished run of each of its wafers, by slot.
        #[arg(long, conflicts_with = "alarm_journal")]
        lot: Option<String>,
        /// klarf12, klarf18 or csv (a lot: klarf18 only).
        #[arg(long)]
        format: Option<String>,
        /// Export the alarm journal as CSV instead of a run.
        #[arg(long)]
        alarm_journal: bool,
        /// Output file or directory (default: a name from lot, wafer, slot
        /// and run, `{lot}_{wafer}_slot{NN}_run{id}`, in the current
        /// directory).
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// The results database. Default: waferscope.db in the data
        /// directory.
        #[arg(long)]
        db: Option<std::path::PathBuf>,
    },
    /// Add, re-password, disable, enable and list the station's users
    /// (each change goes to the audit trail). Passwords are read from
    /// standard input, never taken as an argument.
    Users {
        #[command(subcommand)]
        what: UsersCommand,
        /// The station database. Default: waferscope.db in the data
        /// directory.
        #[arg(long, global = true)]
        db: Option<std::path::PathBuf>,
    },
    /// The audit trail: who did what, when, from where, allowed or refused.
    /// Lists it; `--verify` checks its hash chain (exit 9 naming the first
    /// edited or deleted entry); `--csv FILE` exports it.
    Audit {
        /// Only entries from then on: a UTC time (2026-11-30T06:00:00Z) or
        /// a time back from now (90m, 24h, 7d).
        #[arg(long, value_name = "SPEC")]
        since: Option<String>,
        /// Check the whole chain (not only the --since part).
        #[arg(long)]
        verify: bool,
        /// Write the entries as CSV to FILE (atomically).
        #[arg(long, value_name = "FILE")]
        csv: Option<std::path::PathBuf>,
        /// The station database. Default: waferscope.db in the data
        /// directory.
        #[arg(long)]
        db: Option<std::path::PathBuf>,
    },
    /// Measure the hot path and print text and JSON.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add a user; the password (at least 8 characters) is one line of
    /// standard input.
    Add {
        /// 1 to 32 letters, digits, '.', '_' or '-'.
        name: String,
        /// operator, engineer, maintenance or administrator.
        #[arg(long)]
        role: waferscope::access::Role,
    },
    /// Set a user's password (one line of standard input); also ends a
    /// lockout after wrong passwords.
    Passwd {
        /// The user's name.
        name: String,
    },
    /// Stop a user signing in (not the last enabled administrator).
    Disable {
        /// The user's name.
        name: String,
    },
    /// Let a disabled user sign in again.
    Enable {
        /// The user's name.
        name: String,
    },
    /// Change a user's role (not the last enabled administrator's).
    Role {
        /// The user's name.
        name: String,
        /// operator, engineer, maintenance or administrator.
        role: waferscope::access::Role,
    },
    /// Name, role, enabled or disabled, and any lock, of every user.
    List,
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
    /// S1F3/S1F4 round trips per second against the station's GEM layer
    /// (in-process, on 127.0.0.1), from our own HSMS host side, beside
    /// Linktest round trips on the same connection (scripts/bench-secs.sh
    /// adds secsgem as an independent host).
    Secs {
        /// Seconds per phase.
        #[arg(long, default_value_t = 5.0)]
        seconds: f64,
        /// Also poll with secsgem 0.3.0 as the host: the Python of the
        /// peers' virtualenv (scripts/peers-venv.sh prints it).
        #[arg(long, value_name = "PYTHON")]
        secsgem: Option<PathBuf>,
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
    /// The station as `run` composes it (engine, stage, camera, detection,
    /// store, display, thumbnails, monitor, alarms), unpaced: whole wafers
    /// timed from Start to COMPLETE, beside detection alone and memcpy.
    Station {
        /// The recipe whose wafers are inspected.
        #[arg(long, default_value = "assets/recipes/full-300mm.toml")]
        recipe: std::path::PathBuf,
        /// Image each die at this many pixels square (the recipe's pixel
        /// size changed to fit; default: the recipe's own).
        #[arg(long)]
        image_px: Option<u32>,
        /// The alarm definitions the station loads.
        #[arg(long, default_value = "assets/alarms.toml")]
        alarms: std::path::PathBuf,
        /// Wafers timed after one warm-up wafer.
        #[arg(long, default_value_t = 1)]
        wafers: usize,
        /// Detection workers (default: one per core but one).
        #[arg(long)]
        workers: Option<usize>,
        /// A hazy wafer: this percentage of each timed die's 8×8 patches
        /// imaged 90 grey levels brighter.
        #[arg(long, default_value_t = 0.0)]
        haze_percent: f64,
        /// Print only the JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Recall and false detections per die against noise σ and defect
    /// contrast on the realistic simulator (±64 px stage error, ±10 % gain),
    /// die-to-die and die-to-golden, beside a naive detector.
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
    } else if ui_stalled(&e) {
        exit_code::UI_STALLED
    } else {
        exit_code::BAD_INPUT
    };
    std::process::exit(code)
}

/// The window closed after a stall `--fail-on-stall-ms` judges.
#[cfg(feature = "gui")]
fn ui_stalled(e: &anyhow::Error) -> bool {
    e.downcast_ref::<waferscope::cli::gui::UiStalled>()
        .is_some()
}

#[cfg(not(feature = "gui"))]
fn ui_stalled(_: &anyhow::Error) -> bool {
    false
}

fn run(cli: Cli) -> Result<()> {
    // Validated before anything starts: a bad file exits 2 naming the file
    // and field. Only the commands that drive the machine read it.
    let machine = || waferscope::machine::MachineConfig::from_arg(&cli.machine);
    // Each path an option does not name comes from the data directory
    // (`--data-dir`, or the XDG default), resolved only if one does.
    let mut data = DataPaths::new(cli.data_dir.clone());
    match cli.command {
        #[cfg(not(feature = "gui"))]
        None => waferscope::cli::simulate::run(&Default::default()),
        #[cfg(feature = "gui")]
        None => gui(machine()?, data, gui_defaults()?, cli.metrics),
        #[cfg(feature = "gui")]
        Some(Command::Gui(opts)) => gui(machine()?, data, opts, cli.metrics),
        Some(Command::CheckConfig { path }) => waferscope::cli::devices::check_config(&path),
        Some(Command::Devices { path }) => {
            if !waferscope::cli::devices::devices(&path)? {
                std::process::exit(exit_code::NOT_READY);
            }
            Ok(())
        }
        Some(Command::Users { what, db }) => {
            use waferscope::cli::users::{self, UserChange};
            let db = data.pick(db, Item::Db)?;
            let change = match what {
                UsersCommand::List => return users::list(&db),
                UsersCommand::Add { name, role } => UserChange::Add { name, role },
                UsersCommand::Passwd { name } => UserChange::Passwd { name },
                UsersCommand::Disable { name } => UserChange::Disable { name },
                UsersCommand::Enable { name } => UserChange::Enable { name },
                UsersCommand::Role { name, role } => UserChange::Role { name, role },
            };
            users::change(&db, data.used().as_ref(), change)
        }
        Some(Command::Audit {
            since,
            verify,
            csv,
            db,
        }) => {
            let intact = waferscope::cli::audit::run(
                &data.pick(db, Item::Db)?,
                &waferscope::cli::audit::AuditArgs {
                    since: since.as_deref(),
                    verify,
                    csv: csv.as_deref(),
                },
            )?;
            if !intact {
                std::process::exit(exit_code::AUDIT_BROKEN);
            }
            Ok(())
        }
        Some(Command::Runs { db }) => waferscope::cli::export::list(&data.pick(db, Item::Db)?),
        Some(Command::Export {
            run,
            lot,
            format,
            alarm_journal,
            out,
            db,
        }) => match lot {
            Some(lot) => waferscope::cli::export::export_lot(
                &data.pick(db, Item::Db)?,
                &lot,
                format.as_deref(),
                out.as_deref(),
            ),
            None => waferscope::cli::export::export(
                &data.pick(db, Item::Db)?,
                run,
                format.as_deref().unwrap_or("klarf12"),
                alarm_journal,
                out.as_deref(),
            ),
        },
        Some(Command::Run {
            recipe,
            lot,
            wafer,
            slot,
            carrier,
            slots,
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
            use waferscope::cli::run::RunWhat;
            let what = match (carrier, wafer) {
                (Some(_), _) => RunWhat::Lot {
                    slots: match slots.as_deref().map(waferscope::run::lot::parse_slots) {
                        None => None,
                        Some(Ok(s)) => Some(s),
                        Some(Err(why)) => fail(anyhow::anyhow!(why)),
                    },
                },
                (None, wafer) => RunWhat::Wafer {
                    // clap requires --wafer without --carrier.
                    wafer: wafer.unwrap_or_default(),
                    slot: slot.unwrap_or(1),
                },
            };
            let args = waferscope::cli::run::RunArgs {
                machine: machine()?,
                sim_fps,
                recipe,
                lot,
                what,
                operator,
                db: data.pick(db, Item::Db)?,
                klarf_dir,
                thumbnail_dir: data.pick(thumbnail_dir, Item::Thumbnails)?,
                golden_dir,
                alarms: data.pick(alarms, Item::Alarms)?,
                log_dir: data.pick(log_dir, Item::Logs)?,
                data_dir: data.used(),
                seed,
                fast,
                keep_days,
                metrics: cli.metrics,
            };
            match waferscope::cli::run::run(&args) {
                Ok(code) => std::process::exit(code),
                Err(e) => fail(e),
            }
        }
        Some(Command::Serve {
            gem,
            gem_active,
            device_id,
            t3,
            t5,
            db,
            alarms,
            recipes,
            thumbnail_dir,
            log_dir,
            keep_days,
            seed,
            fast,
            remote,
        }) => waferscope::cli::serve::run(&waferscope::cli::serve::ServeArgs {
            machine: machine()?,
            mode: waferscope::cli::serve::mode(gem, gem_active),
            session_id: device_id,
            t3: serve_timer("t3", t3)?,
            t5: serve_timer("t5", t5)?,
            db: data.pick(db, Item::Db)?,
            alarms: data.pick(alarms, Item::Alarms)?,
            recipes: data.pick(recipes, Item::Recipes)?,
            thumbnail_dir: data.pick(thumbnail_dir, Item::Thumbnails)?,
            log_dir: data.pick(log_dir, Item::Logs)?,
            data_dir: data.used(),
            seed,
            fast,
            keep_days,
            remote,
            metrics: cli.metrics,
        }),
        Some(Command::Soak {
            recipe,
            frames,
            interval,
            workers,
            csv,
            plot,
            json,
        }) => {
            use waferscope::bench::soak;
            let soak = soak::run(soak::SoakConfig {
                recipe: waferscope::run::recipe::load(&recipe)?,
                frames,
                interval: interval.unwrap_or_else(|| soak::SoakConfig::default_interval(frames)),
                workers,
                csv,
                plot: Some(plot),
            })?;
            soak.print(json)?;
            Ok(())
        }
        Some(Command::Teach {
            recipe,
            dies,
            golden_dir,
            seed,
        }) => waferscope::cli::teach::run(&waferscope::cli::teach::TeachArgs {
            recipe,
            dies,
            golden_dir: data.pick(golden_dir, Item::Golden)?,
            data_dir: data.used(),
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
            BenchWhat::Secs {
                seconds,
                secsgem,
                json,
            } => {
                anyhow::ensure!(
                    seconds > 0.0 && seconds <= 600.0,
                    "--seconds must be above 0 and at most 600, got {seconds}"
                );
                bench::secs::run(seconds, secsgem.as_deref())?.print(json)?;
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
            BenchWhat::Station {
                recipe,
                image_px,
                alarms,
                wafers,
                workers,
                haze_percent,
                json,
            } => {
                bench::station::run(bench::station::StationBenchConfig {
                    recipe,
                    image_px,
                    alarms,
                    wafers,
                    workers,
                    haze_percent,
                })?
                .print(json)?;
                Ok(())
            }
            BenchWhat::Sensitivity { dies, json } => {
                bench::sensitivity::run(dies)?.print(json)?;
                Ok(())
            }
        },
    }
}

/// A `serve --t3/--t5` value: 0.1 to 240 seconds.
fn serve_timer(name: &str, v: Option<f64>) -> Result<Option<std::time::Duration>> {
    v.map(|v| {
        anyhow::ensure!(
            (0.1..=240.0).contains(&v),
            "--{name} must be 0.1 to 240 seconds, got {v}"
        );
        Ok(std::time::Duration::from_secs_f64(v))
    })
    .transpose()
}

/// Opens the window with `opts`, each path not given taken from the data
/// directory.
#[cfg(feature = "gui")]
fn gui(
    machine: waferscope::machine::MachineConfig,
    mut data: DataPaths,
    opts: GuiOpts,
    metrics: Option<std::net::SocketAddr>,
) -> Result<()> {
    let station = waferscope::station::StationConfig {
        machine,
        db: data.pick(opts.db, Item::Db)?,
        alarms: data.pick(opts.alarms, Item::Alarms)?,
        recipes: data.pick(opts.recipes, Item::Recipes)?,
        thumbnails: data.pick(opts.thumbnail_dir, Item::Thumbnails)?,
        wafer_seed: opts.seed,
        paced: !opts.fast,
        access: waferscope::access::AccessConfig {
            lockout: waferscope::access::users::LockoutPolicy {
                lock_for: minutes("--lockout", opts.lockout)?,
                ..Default::default()
            },
            idle_sign_out: minutes("--idle-sign-out", opts.idle_sign_out)?,
        },
        ..Default::default()
    };
    waferscope::cli::gui::run(waferscope::cli::gui::GuiArgs {
        station,
        log_dir: data.pick(opts.log_dir, Item::Logs)?,
        data_dir: data.used(),
        keep_days: opts.keep_days,
        autostart: opts.autostart,
        demo: opts.demo,
        exit_after: opts.exit_after.map(std::time::Duration::from_secs_f64),
        metrics,
        gem: (opts.gem.is_some() || opts.gem_active.is_some())
            .then(|| waferscope::cli::serve::mode(opts.gem, opts.gem_active)),
        fail_on_stall: opts.fail_on_stall_ms.map(std::time::Duration::from_millis),
        inject_stall: opts
            .inject_ui_stall_ms
            .map(std::time::Duration::from_millis),
        sim_haze_percent: opts.sim_haze_percent,
    })
}

/// A positive number of minutes given as `flag`.
#[cfg(feature = "gui")]
fn minutes(flag: &str, m: f64) -> Result<std::time::Duration> {
    if !(m.is_finite() && m > 0.0 && m < 1e6) {
        anyhow::bail!("{flag} {m}: give a positive number of minutes");
    }
    Ok(std::time::Duration::from_secs_f64(m * 60.0))
}

/// The window's options when none are given (plain `waferscope`): the
/// defaults its `gui` subcommand declares.
#[cfg(feature = "gui")]
fn gui_defaults() -> Result<GuiOpts> {
    use clap::{Args, FromArgMatches};
    let matches = GuiOpts::augment_args(clap::Command::new("gui")).try_get_matches_from(["gui"])?;
    Ok(GuiOpts::from_arg_matches(&matches)?)
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

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    /// Every argument of every command, with the path of subcommands that
    /// leads to it, that has no help text.
    fn undocumented(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            let help = arg.get_help().or(arg.get_long_help());
            if help.is_none_or(|h| h.to_string().trim().is_empty()) {
                out.push(format!("{path} --{}", arg.get_id()));
            }
        }
        for sub in cmd.get_subcommands() {
            if sub.get_about().is_none() {
                out.push(format!("{path} {} (the command itself)", sub.get_name()));
            }
            undocumented(sub, &format!("{path} {}", sub.get_name()), out);
        }
    }

    #[test]
    fn every_option_of_every_command_has_help() {
        let mut cmd = Cli::command();
        // Built: global options propagated and the generated --help and
        // --version in place, as `--help` shows them.
        cmd.build();
        let mut missing = Vec::new();
        undocumented(&cmd, "waferscope", &mut missing);
        assert!(
            missing.is_empty(),
            "arguments without help text:\n{}",
            missing.join("\n")
        );
    }

    #[test]
    fn the_walk_finds_an_argument_without_help() {
        let cmd = clap::Command::new("x").subcommand(
            clap::Command::new("y")
                .about("y")
                .arg(clap::Arg::new("bare").long("bare")),
        );
        let mut missing = Vec::new();
        undocumented(&cmd, "x", &mut missing);
        assert_eq!(missing, ["x y --bare"]);
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
