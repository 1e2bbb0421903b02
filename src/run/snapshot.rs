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
