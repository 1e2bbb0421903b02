//! What every panel reads in one frame: the newest snapshots, and the
//! "slow" copies of the numbers an operator reads (refreshed once a
//! second, so figures never flicker).

use crate::hot::ThreadState;
use crate::monitor::{AlarmDef, AlarmSnapshot, MachineSnapshot};
use crate::run::RunSnapshot;
use std::sync::Arc;

/// One device link (a Modbus server) as the Health panel shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkRow {
    pub name: String,
    pub connected: bool,
    pub connects: u64,
    pub timeouts: u64,
    pub drops: u64,
    pub exceptions: u64,
}

#[derive(Clone)]
pub struct Health {
    pub frames_per_s: f64,
    pub mpix_per_s: f64,
    pub queue_depth: u64,
    pub pool_in_use: usize,
    pub pool_capacity: usize,
    pub drops: u64,
    pub stall_ms: f64,
    pub handoff_p50_us: f64,
    pub handoff_p99_us: f64,
    pub detect_p50_ms: f64,
    /// (thread, allocations per second over the last second)
    pub allocs_per_s: Vec<(&'static str, f64)>,
    pub ui_frame_p50_ms: f64,
    pub ui_frame_p99_ms: f64,
    /// The whole frame as eframe times it (wall time of its work), p99.
    pub ui_whole_frame_p99_ms: f64,
    /// The latest a frame came after start-up, beyond the repaint asked.
    pub ui_late_max_ms: f64,
    /// UI thread stalls over 0.5 s seen by the watchdog.
    pub ui_stalls: super::watchdog::StallFigures,
    pub ui_watchdog_running: bool,
    pub thumbnails_skipped: u64,
    /// Every watched thread and its state (`hot::liveness::threads`).
    pub threads: Vec<(String, ThreadState)>,
    /// Alarm events the evaluator could not hand to the journal.
    pub alarm_journal_drops: u64,
    /// Operator alarm commands the evaluator did not take.
    pub alarm_commands_refused: u64,
    /// Audit trail entries the audit writer could not write.
    pub audit_failures: u64,
    /// Each real device link's state (empty on simulated I/O).
    pub links: Vec<LinkRow>,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            frames_per_s: 0.0,
            mpix_per_s: 0.0,
            queue_depth: 0,
            pool_in_use: 0,
            pool_capacity: 0,
            drops: 0,
            stall_ms: 0.0,
            handoff_p50_us: 0.0,
            handoff_p99_us: 0.0,
            detect_p50_ms: 0.0,
            allocs_per_s: Vec::new(),
            ui_frame_p50_ms: 0.0,
            ui_frame_p99_ms: 0.0,
            ui_whole_frame_p99_ms: 0.0,
            ui_late_max_ms: 0.0,
            ui_stalls: Default::default(),
            ui_watchdog_running: false,
            thumbnails_skipped: 0,
            threads: Vec::new(),
            alarm_journal_drops: 0,
            alarm_commands_refused: 0,
            audit_failures: 0,
            links: Vec::new(),
        }
    }
}

pub struct View {
    /// Process clock now, ns (`hot::now_ns`, the time base of every
    /// snapshot). `machine` and `alarms` are already taken as seen at it.
    pub now_ns: u64,
    /// Wall clock, local time with its zone ("HH:MM:SS CET"), and the
    /// liveness tick.
    pub clock: String,
    pub tick: bool,
    pub machine: MachineSnapshot,
    /// Copy of `machine` refreshed once a second, for printed numbers.
    pub machine_slow: MachineSnapshot,
    pub alarms: AlarmSnapshot,
    pub run: RunSnapshot,
    pub run_slow: RunSnapshot,
    pub defs: Arc<[AlarmDef]>,
    pub health: Health,
    /// The fab host's link, if the station has one.
    pub host: Option<super::host::HostView>,
    /// The load port: carrier map and the lot in progress.
    pub lot: crate::run::lot::LotSnapshot,
    /// What the signed-in user may do (buttons disable themselves).
    pub permits: Arc<super::session::Permits>,
    /// "ana (engineer)", for the status strip; `None` when signed out.
    pub signed_in: Option<String>,
}

impl View {
    pub fn def(&self, alid: u32) -> Option<&AlarmDef> {
        self.defs.iter().find(|d| d.alid == alid)
    }
}
