//! What the run engine publishes: a `Copy` run snapshot for the status
//! strip (through a latest-value cell) and run events for whoever follows
//! along (UI wafer map, log, host).

use super::state::RunState;
use super::text::FixedText;
use crate::pipeline::DieResult;
use crate::store::record::ExitStatus;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunSnapshot {
    /// When the engine published this, ns on the process clock
    /// (`hot::now_ns`). The engine publishes on every change, not on a
    /// period: readers show the age ("no update for N s") rather than
    /// judge it dead.
    pub taken_ns: u64,
    pub state: RunState,
    pub run_id: u64,
    pub recipe_id: FixedText<64>,
    pub lot: FixedText<32>,
    pub wafer: FixedText<32>,
    pub slot: u32,
    pub operator: FixedText<32>,
    pub dies_total: u32,
    pub dies_done: u32,
    pub defects: u32,
    /// Plan position of the next die to image.
    pub next_die: u32,
    pub started_unix_ms: i64,
    pub elapsed_ms: u64,
    /// Estimated time to finish, from the rate so far.
    pub eta_ms: u64,
    /// Why the run is suspended, or how it ended.
    pub cause: FixedText<96>,
    /// The last refused command and why.
    pub refusal: FixedText<128>,
    pub exit: Option<ExitStatus>,
    /// Set when the run has ended but its exports (KLARF, thumbnails) could
    /// not be written: why. Empty when they were (or none were asked for).
    /// The engine's own end state, so the caller need not re-read the
    /// database (where recording the failure may itself have failed).
    pub not_exported: FixedText<255>,
    /// Counts every snapshot change (lets a reader notice any change).
    pub revision: u64,
    /// What the engine has done since it started, across wafers.
    pub totals: RunTotals,
}

/// What the engine has done since it started, across every wafer (the
/// per-run fields of [`RunSnapshot`] restart with each wafer). Only ever
/// grows, so a reader can publish these as counters (the Prometheus
/// metrics) without following the run events.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunTotals {
    /// Wafers ended, by how they ended ([`RunTotals::ended`]).
    wafers_ended: [u64; 4],
    /// Dies whose image was inspected (not those the camera or stage
    /// failed to capture).
    pub dies_inspected: u64,
    /// Defects found (kept and dropped beyond a die's capacity).
    pub defects: u64,
    /// How long the last wafer that completed took, start to end, ms (0:
    /// none has completed yet).
    pub last_complete_wafer_ms: u64,
}

impl RunTotals {
    fn slot(status: ExitStatus) -> usize {
        match status {
            ExitStatus::Complete => 0,
            ExitStatus::Stopped => 1,
            ExitStatus::Aborted => 2,
            ExitStatus::Faulted => 3,
        }
    }

    /// Wafers that ended with `status` since the engine started.
    pub fn ended(&self, status: ExitStatus) -> u64 {
        self.wafers_ended[Self::slot(status)]
    }

    /// Counts a wafer that ended with `status`.
    pub fn count_end(&mut self, status: ExitStatus) {
        self.wafers_ended[Self::slot(status)] += 1;
    }
}

#[derive(Debug, Clone)]
pub enum RunEvent {
    Started {
        run_id: u64,
        dies: u32,
    },
    StateChanged {
        from: RunState,
        to: RunState,
    },
    DieDone {
        result: Box<DieResult>,
        done: u32,
        total: u32,
    },
    Suspended {
        cause: String,
    },
    Resumed {
        after_ms: u64,
    },
    /// Repeater analysis at the end of the run (before `Ended`): every
    /// defect that repeats at one in-die position, with its die count.
    Repeaters {
        marks: Vec<crate::store::record::RepeaterMark>,
    },
    Ended {
        status: ExitStatus,
        reason: String,
    },
}
