//! One lot, wafer after wafer: slot → pre-aligner (id read) → chuck →
//! inspection run → back to its slot. Every wafer is its own run record;
//! a wafer that cannot be run is skipped with the reason shown, and a lot
//! that ends early leaves the wafers not yet run untouched in the carrier.

use super::plan::{LotPlan, OnWaferFault};
use super::snapshot::{LotBoard, LotEnd, SharedBoard, SlotProgress};
use crate::hot::LatestReader;
use crate::machine::load_port::{HandlingError, LoadPort};
use crate::run::text::FixedText;
use crate::run::{EngineHandle, ExitStatus, RunCommand, RunSnapshot, RunState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The load port, used by one handling step at a time (on a blocking
/// thread: a robot move takes seconds).
pub type SharedPort = Arc<Mutex<Box<dyn LoadPort>>>;

/// How often the runner looks at the run engine's snapshot while a wafer
/// is inspected: the lot moves on within this of a wafer's end.
const POLL: Duration = Duration::from_millis(20);

/// The operator's requests to a running lot.
#[derive(Debug, Default)]
pub struct LotControl {
    stop_after_wafer: AtomicBool,
    abort: AtomicBool,
}

impl LotControl {
    /// Finish the wafer in hand (inspected, back in its slot), then end.
    pub fn stop_after_wafer(&self) {
        self.stop_after_wafer.store(true, Ordering::Release);
    }

    /// Abort the wafer in hand (its results kept) and end the lot.
    pub fn abort(&self) {
        self.abort.store(true, Ordering::Release);
    }

    pub fn stop_requested(&self) -> bool {
        self.stop_after_wafer.load(Ordering::Acquire)
    }

    pub fn abort_requested(&self) -> bool {
        self.abort.load(Ordering::Acquire)
    }
}

/// One picked slot, as the lot left it.
#[derive(Debug, Clone, PartialEq)]
pub struct WaferReport {
    pub slot: u32,
    pub wafer: String,
    pub progress: SlotProgress,
    pub run_id: u64,
    pub defects: u32,
    pub note: String,
    /// Its run is recorded but its KLARF or thumbnails were not written
    /// when it ended (retried; `waferscope export` repeats it).
    pub not_exported: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LotReport {
    pub lot: String,
    pub end: LotEnd,
    /// In the order the slots were picked.
    pub wafers: Vec<WaferReport>,
    /// The lot's last message (why it ended, when not complete).
    pub message: String,
    /// The KLARF 1.8 lot file written when the lot ended, or why not
    /// (`None`: none asked for).
    pub lot_file: Option<Result<std::path::PathBuf, String>>,
}

/// Runs a handling step on a blocking thread.
async fn handling<T: Send + 'static>(
    port: &SharedPort,
    step: impl FnOnce(&mut dyn LoadPort) -> Result<T, HandlingError> + Send + 'static,
) -> Result<T, HandlingError> {
    let port = port.clone();
    tokio::task::spawn_blocking(move || {
        let mut p = port.lock().unwrap_or_else(|e| e.into_inner());
        step(p.as_mut())
    })
    .await
    .unwrap_or_else(|e| {
        Err(HandlingError::Robot(format!(
            "the handling task ended: {e}"
        )))
    })
}

fn set_slot(board: &SharedBoard, slot: u32, progress: SlotProgress, note: &str) {
    LotBoard::update(board, |s| {
        let v = &mut s.slots[slot as usize - 1];
        v.progress = progress;
        v.note = FixedText::new(note);
    });
}

fn say(board: &SharedBoard, message: &str) {
    tracing::info!("{message}");
    LotBoard::update(board, |s| s.message = FixedText::new(message));
}

/// How one wafer went, for the loop.
enum WaferEnd {
    /// On to the next wafer.
    Next,
    /// The lot ends here.
    EndLot(LotEnd, String),
}

/// Runs the lot; the carrier must be docked and mapped. Returns when every
/// picked wafer has had its turn or the lot ended early.
pub async fn run_lot(
    engine: EngineHandle,
    port: SharedPort,
    plan: LotPlan,
    control: Arc<LotControl>,
    board: SharedBoard,
) -> LotReport {
    let total = plan.slots.len() as u32;
    LotBoard::update(&board, |s| {
        s.running = true;
        s.end = None;
        s.lot = FixedText::new(&plan.lot);
        s.wafers_total = total;
        s.wafers_done = 0;
        s.current_slot = 0;
        s.stop_after_wafer = false;
        for v in s.slots.iter_mut() {
            v.progress = super::SlotProgress::NotPicked;
            v.run_id = 0;
            v.defects = 0;
            v.wafer = FixedText::default();
            v.note = FixedText::default();
        }
        for &slot in &plan.slots {
            s.slots[slot as usize - 1].progress = SlotProgress::Waiting;
        }
    });
    say(
        &board,
        &format!(
            "Started lot {}: {total} wafers, recipe {}",
            plan.lot, plan.recipe.recipe.id
        ),
    );
    let mut reader = engine.snapshots.reader();
    let mut end = (LotEnd::Complete, String::new());
    for (i, &slot) in plan.slots.iter().enumerate() {
        if control.abort_requested() {
            end = (LotEnd::Aborted, "lot aborted by the operator".into());
            break;
        }
        if control.stop_requested() {
            end = (
                LotEnd::Stopped,
                "stopped after the wafer in hand, as asked".into(),
            );
            break;
        }
        LotBoard::update(&board, |s| s.current_slot = slot);
        let Some(reader) = reader.as_mut() else {
            end = (
                LotEnd::Faulted,
                "cannot follow the run engine: too many snapshot readers".into(),
            );
            break;
        };
        let outcome = run_one(
            &engine,
            &port,
            &plan,
            &control,
            &board,
            reader,
            slot,
            i as u32 + 1,
            total,
        )
        .await;
        LotBoard::update(&board, |s| {
            s.wafers_done = i as u32 + 1;
            s.stop_after_wafer = control.stop_requested();
        });
        if let WaferEnd::EndLot(how, why) = outcome {
            end = (how, why);
            break;
        }
    }
    // The wafers whose turn never came are untouched in their slots.
    let (how, why) = end;
    let snap = LotBoard::current(&board);
    for &slot in &plan.slots {
        if snap.slots[slot as usize - 1].progress == SlotProgress::Waiting {
            set_slot(
                &board,
                slot,
                SlotProgress::NotRun,
                "in its slot: the lot ended first",
            );
        }
    }
    let message = match how {
        LotEnd::Complete => format!("Lot {} complete", plan.lot),
        _ => format!("Lot {} {}: {why}", plan.lot, how.label()),
    };
    say(&board, &message);
    LotBoard::update(&board, |s| {
        s.running = false;
        s.current_slot = 0;
        s.end = Some(how);
    });
    let snap = LotBoard::current(&board);
    LotReport {
        lot: plan.lot.clone(),
        end: how,
        wafers: plan
            .slots
            .iter()
            .map(|&slot| {
                let v = &snap.slots[slot as usize - 1];
                WaferReport {
                    not_exported: v.not_exported,
                    slot,
                    wafer: v.wafer.as_str().to_owned(),
                    progress: v.progress,
                    run_id: v.run_id,
                    defects: v.defects,
                    note: v.note.as_str().to_owned(),
                }
            })
            .collect(),
        message,
        lot_file: None,
    }
}

/// One wafer: out of its slot, inspected, back. `n` of `total`.
#[allow(clippy::too_many_arguments)]
async fn run_one(
    engine: &EngineHandle,
    port: &SharedPort,
    plan: &LotPlan,
    control: &LotControl,
    board: &SharedBoard,
    reader: &mut LatestReader<RunSnapshot>,
    slot: u32,
    n: u32,
    total: u32,
) -> WaferEnd {
    let lot = &plan.lot;
    let state = LotBoard::current(board).slots[slot as usize - 1].state;
    if !state.can_pick() {
        let why = format!("slot {slot} is {}: never picked", state.label());
        set_slot(board, slot, SlotProgress::Skipped, &why);
        say(
            board,
            &format!("Lot {lot}, wafer {n} of {total}: skipped, {why}"),
        );
        return WaferEnd::Next;
    }
    set_slot(board, slot, SlotProgress::Loading, "to the pre-aligner");
    say(
        board,
        &format!("Lot {lot}, wafer {n} of {total}: slot {slot} to the pre-aligner"),
    );
    if let Err(e) = handling(port, move |p| p.slot_to_aligner(slot)).await {
        return handling_fault(
            board,
            slot,
            &e,
            "in its slot or on the robot's end effector (check before recovering)",
        );
    }
    let read = handling(port, |p| p.align_and_read_id()).await;
    let typed = plan
        .typed_ids
        .iter()
        .find(|(s, _)| *s == slot)
        .map(|(_, id)| id.clone());
    let id = match (read, typed) {
        (Err(e), _) => return handling_fault(board, slot, &e, "on the pre-aligner"),
        (Ok(_), Some(typed)) => typed,
        (Ok(Some(read)), None) => read,
        (Ok(None), None) => {
            return skip_back_to_slot(
                board,
                port,
                slot,
                n,
                total,
                lot,
                "wafer id not read (type it to run this wafer)",
            )
            .await;
        }
    };
    let identity = match crate::run::ids::check_identity(lot, &id, slot, &plan.operator) {
        Ok(ids) => ids.identity,
        Err(why) => return skip_back_to_slot(board, port, slot, n, total, lot, &why).await,
    };
    LotBoard::update(board, |s| {
        s.slots[slot as usize - 1].wafer = FixedText::new(&identity.wafer);
    });
    set_slot(board, slot, SlotProgress::Loading, "to the chuck");
    if let Err(e) = handling(port, |p| p.aligner_to_chuck()).await {
        return handling_fault(board, slot, &e, "on the pre-aligner");
    }
    let wafer = identity.wafer.clone();
    if control.abort_requested() {
        // Aborted while the wafer was handled: back to its slot unrun
        // rather than a run started only to be aborted.
        set_slot(board, slot, SlotProgress::Unloading, "back to its slot");
        if let Err(e) = handling(port, move |p| p.chuck_to_slot(slot)).await {
            return handling_fault(board, slot, &e, "on the chuck");
        }
        set_slot(
            board,
            slot,
            SlotProgress::NotRun,
            "back in its slot: the lot was aborted",
        );
        return WaferEnd::EndLot(LotEnd::Aborted, "lot aborted by the operator".into());
    }
    let started = match engine.load_async(plan.recipe.clone(), identity).await {
        Ok(()) => engine.command_async(RunCommand::Start).await,
        Err(why) => Err(why),
    };
    if let Err(why) = started {
        // Loaded but not started: the engine must not keep this wafer's
        // identity for a later Start (the wafer is going back).
        if let Err(e) = engine.unload_async().await {
            tracing::warn!("unloading wafer {wafer} from the run engine: {e}");
        }
        // Not started: nothing recorded for it; back to its slot, and the
        // lot stops (a tool that is not ready now will not be for the next).
        let why = format!("the tool is not ready: {why}");
        set_slot(board, slot, SlotProgress::Unloading, "back to its slot");
        let back = handling(port, move |p| p.chuck_to_slot(slot)).await;
        set_slot(board, slot, SlotProgress::NotRun, &why);
        if let Err(e) = back {
            return handling_fault(board, slot, &e, "on the chuck");
        }
        return WaferEnd::EndLot(LotEnd::Stopped, why);
    }
    set_slot(board, slot, SlotProgress::Inspecting, "");
    say(
        board,
        &format!("Lot {lot}, wafer {n} of {total}: inspecting {wafer} (slot {slot})"),
    );
    let ended = match wait_for_end(engine, reader, control).await {
        Ok(s) => s,
        Err(why) => {
            let why = format!("wafer on the chuck — {why}");
            set_slot(board, slot, SlotProgress::Faulted, &why);
            return WaferEnd::EndLot(LotEnd::Faulted, why);
        }
    };
    LotBoard::update(board, |s| {
        let v = &mut s.slots[slot as usize - 1];
        v.run_id = ended.run_id;
        v.defects = ended.defects;
        v.not_exported = !ended.not_exported.as_str().is_empty();
    });
    set_slot(board, slot, SlotProgress::Unloading, "back to its slot");
    let back = handling(port, move |p| p.chuck_to_slot(slot)).await;
    let status = ended.exit.unwrap_or(ExitStatus::Faulted);
    let (progress, lot_end) = match status {
        ExitStatus::Complete => (SlotProgress::Complete, None),
        ExitStatus::Stopped => (
            SlotProgress::Stopped,
            Some((
                LotEnd::Stopped,
                format!("wafer {wafer} was stopped by the operator"),
            )),
        ),
        ExitStatus::Aborted => (
            SlotProgress::Aborted,
            Some((
                LotEnd::Aborted,
                format!("wafer {wafer} aborted: {}", ended.cause),
            )),
        ),
        ExitStatus::Faulted => (
            SlotProgress::Faulted,
            match plan.on_wafer_fault {
                OnWaferFault::EndLot => Some((
                    LotEnd::Faulted,
                    format!("wafer {wafer} faulted: {}", ended.cause),
                )),
                OnWaferFault::WaitForReset => None,
            },
        ),
    };
    // The run is recorded either way: a wafer that cannot be put back
    // keeps its result (run id, defects) beside the handling fault.
    if let Err(e) = back {
        return handling_fault(board, slot, &e, "on the chuck (its run is recorded)");
    }
    set_slot(board, slot, progress, ended.cause.as_str());
    say(
        board,
        &format!(
            "Lot {lot}, wafer {n} of {total}: {wafer} {} with {} defects (run {})",
            progress.label(),
            ended.defects,
            ended.run_id
        ),
    );
    // The lot is the operator's unit: a wafer's own end is acknowledged
    // here so the next can load; the lot's end is theirs to see.
    if ended.state == RunState::Complete {
        if let Err(why) = engine.command_async(RunCommand::Acknowledge).await {
            tracing::warn!("acknowledging wafer {wafer}'s end: {why}");
        }
    }
    if let Some((how, why)) = lot_end {
        return WaferEnd::EndLot(how, why);
    }
    if status == ExitStatus::Faulted {
        say(
            board,
            &format!(
                "Lot {lot}: wafer {wafer} (slot {slot}) faulted — acknowledge and reset the tool to go on with the next wafer, or abort the lot"
            ),
        );
        if let Err(why) = wait_for_reset(engine, reader, control).await {
            return WaferEnd::EndLot(LotEnd::Aborted, why);
        }
    }
    WaferEnd::Next
}

async fn skip_back_to_slot(
    board: &SharedBoard,
    port: &SharedPort,
    slot: u32,
    n: u32,
    total: u32,
    lot: &str,
    why: &str,
) -> WaferEnd {
    set_slot(board, slot, SlotProgress::Unloading, "back to its slot");
    if let Err(e) = handling(port, move |p| p.aligner_to_slot(slot)).await {
        return handling_fault(board, slot, &e, "on the pre-aligner");
    }
    set_slot(board, slot, SlotProgress::Skipped, why);
    say(
        board,
        &format!("Lot {lot}, wafer {n} of {total}: skipped, {why}"),
    );
    WaferEnd::Next
}

fn handling_fault(board: &SharedBoard, slot: u32, e: &HandlingError, wafer_is: &str) -> WaferEnd {
    let why = format!("wafer {wafer_is} — {e}");
    tracing::error!("{why}");
    set_slot(board, slot, SlotProgress::HandlingFault, &why);
    WaferEnd::EndLot(LotEnd::Faulted, why)
}

/// Waits for the wafer's run to end; an Abort of the lot aborts it.
async fn wait_for_end(
    engine: &EngineHandle,
    reader: &mut LatestReader<RunSnapshot>,
    control: &LotControl,
) -> Result<RunSnapshot, String> {
    let mut abort_accepted = false;
    loop {
        let s = reader.read().value;
        if matches!(
            s.state,
            RunState::Complete | RunState::Aborted | RunState::Faulted
        ) {
            return Ok(s);
        }
        if !engine.is_serving() {
            return Err("the run engine stopped mid-wafer (see the log)".into());
        }
        if control.abort_requested() && !abort_accepted && s.state.in_run() {
            let abort = RunCommand::Abort {
                reason: "lot aborted by the operator".into(),
            };
            match engine.command_async(abort).await {
                Ok(()) => abort_accepted = true,
                Err(why) => tracing::warn!("aborting the wafer in hand: {why}"),
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// After a wafer faulted: waits until the operator has acknowledged and
/// reset the tool (IDLE), or aborts the lot.
async fn wait_for_reset(
    engine: &EngineHandle,
    reader: &mut LatestReader<RunSnapshot>,
    control: &LotControl,
) -> Result<(), String> {
    loop {
        if reader.read().value.state == RunState::Idle {
            return Ok(());
        }
        if control.abort_requested() {
            return Err("lot aborted by the operator after a wafer faulted".into());
        }
        if !engine.is_serving() {
            return Err("the run engine stopped (see the log)".into());
        }
        tokio::time::sleep(POLL).await;
    }
}
