//! What the lot runner publishes for the window: the carrier's slot map
//! and each picked slot's progress, a `Copy` value in a latest-value cell.

use crate::machine::load_port::{SlotState, SLOTS};
use crate::run::text::FixedText;

/// Where a slot's wafer is in the lot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlotProgress {
    /// Not part of the lot.
    #[default]
    NotPicked,
    Waiting,
    /// Picked, but not run (double- or cross-slotted, empty, id unread):
    /// the slot's note says why.
    Skipped,
    /// Out of the carrier: to the pre-aligner, aligned, to the chuck.
    Loading,
    Inspecting,
    /// Back to its slot.
    Unloading,
    Complete,
    Stopped,
    Aborted,
    Faulted,
    /// A handling step failed: the wafer may be on the robot or the
    /// pre-aligner (the note says where); an engineer recovers it.
    HandlingFault,
    /// The lot ended before this wafer's turn: it is in its slot, untouched.
    NotRun,
}

impl SlotProgress {
    pub fn label(self) -> &'static str {
        match self {
            Self::NotPicked => "",
            Self::Waiting => "waiting",
            Self::Skipped => "skipped",
            Self::Loading => "loading",
            Self::Inspecting => "inspecting",
            Self::Unloading => "unloading",
            Self::Complete => "complete",
            Self::Stopped => "stopped",
            Self::Aborted => "aborted",
            Self::Faulted => "faulted",
            Self::HandlingFault => "handling fault",
            Self::NotRun => "not run",
        }
    }

    /// The wafer has a run record (inspected, at least in part).
    pub fn was_run(self) -> bool {
        matches!(
            self,
            Self::Complete | Self::Stopped | Self::Aborted | Self::Faulted
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SlotView {
    /// What the mapper saw.
    pub state: SlotState,
    pub progress: SlotProgress,
    /// The wafer's run record (0: none).
    pub run_id: u64,
    pub defects: u32,
    pub wafer: FixedText<32>,
    /// Why a slot was skipped, faulted or not run.
    pub note: FixedText<160>,
    /// Its run's exports (KLARF, thumbnails) were not written at its end.
    pub not_exported: bool,
}

/// How a lot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LotEnd {
    /// Every picked wafer was run or skipped for a reason shown.
    Complete,
    /// "Stop after this wafer", a wafer stopped, or the tool not ready.
    Stopped,
    Aborted,
    /// A wafer faulted (headless) or handling failed.
    Faulted,
}

impl LotEnd {
    pub fn label(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Stopped => "stopped",
            Self::Aborted => "aborted",
            Self::Faulted => "faulted",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct LotSnapshot {
    /// When published (`hot::now_ns`); published on every change.
    pub taken_ns: u64,
    pub revision: u64,
    /// A carrier is docked and mapped.
    pub docked: bool,
    pub carrier: FixedText<32>,
    pub slots: [SlotView; SLOTS],
    /// A lot is in progress.
    pub running: bool,
    pub lot: FixedText<32>,
    /// Wafers picked for the lot, and those whose turn has passed.
    pub wafers_total: u32,
    pub wafers_done: u32,
    /// The slot being worked on (0: none).
    pub current_slot: u32,
    pub stop_after_wafer: bool,
    /// How the last lot ended (`None` while one runs, or before the first).
    pub end: Option<LotEnd>,
    /// What the lot is doing, in the operator's words.
    pub message: FixedText<128>,
}

/// The one writer of the lot snapshot, shared by whatever changes it (a
/// carrier being mapped, the lot runner); held only to change and publish,
/// never across an await.
pub struct LotBoard {
    writer: crate::hot::LatestWriter<LotSnapshot>,
    snap: LotSnapshot,
}

pub type SharedBoard = std::sync::Arc<std::sync::Mutex<LotBoard>>;

impl LotBoard {
    pub fn new() -> (SharedBoard, crate::hot::LatestSubscriber<LotSnapshot>) {
        let (writer, subscriber) = crate::hot::latest_cell(LotSnapshot::default());
        (
            std::sync::Arc::new(std::sync::Mutex::new(Self {
                writer,
                snap: LotSnapshot::default(),
            })),
            subscriber,
        )
    }

    /// Changes the snapshot and publishes it.
    pub fn update(board: &SharedBoard, change: impl FnOnce(&mut LotSnapshot)) {
        let mut b = board.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut b.snap);
        b.snap.revision += 1;
        b.snap.taken_ns = crate::hot::now_ns();
        let snap = b.snap;
        b.writer.publish(snap);
    }

    /// The snapshot as last published.
    pub fn current(board: &SharedBoard) -> LotSnapshot {
        board.lock().unwrap_or_else(|e| e.into_inner()).snap
    }
}
