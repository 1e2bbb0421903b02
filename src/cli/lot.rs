//! `waferscope run --carrier sim`: a lot, headless. The simulated load
//! port docks and maps its carrier; the picked slots run one after another
//! with a line per step; Ctrl-C stops after the wafer in hand, a second
//! Ctrl-C aborts. The exit code says how the lot ended.

use super::run::exit_code;
use crate::machine::load_port::SlotState;
use crate::run::lot::{LotEnd, LotPlan, OnWaferFault, SlotProgress};
use crate::run::{RunIdentity, ValidRecipe};
use crate::station::Station;
use anyhow::Result;
use std::path::Path;
use std::time::Duration;

/// The slot map in ranges: "1-3 wafer, 4 double-slotted, 5-11 wafer, …".
pub fn describe_map(slots: &[SlotState]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < slots.len() {
        let mut j = i;
        while j + 1 < slots.len() && slots[j + 1] == slots[i] {
            j += 1;
        }
        let range = if i == j {
            format!("{}", i + 1)
        } else {
            format!("{}-{}", i + 1, j + 1)
        };
        parts.push(format!("{range} {}", slots[i].label()));
        i = j + 1;
    }
    parts.join(", ")
}

/// Runs the lot on the station (started, heartbeats live); returns the
/// exit code.
pub fn run_lot(
    station: &Station,
    recipe: ValidRecipe,
    identity: RunIdentity,
    slots: Option<Vec<u32>>,
    db: &Path,
) -> Result<i32> {
    let carrier = &station.carrier;
    crate::errln!("docking and mapping the carrier…");
    let docked = carrier
        .load_carrier_nowait()
        .recv()
        .unwrap_or_else(|_| Err("the load port stopped".into()));
    if let Err(why) = docked {
        crate::errln!("cannot load the carrier: {why}");
        return Ok(exit_code::NOT_READY);
    }
    let map = carrier.current();
    let states: Vec<SlotState> = map.slots.iter().map(|v| v.state).collect();
    crate::outln!("carrier {}: {}", map.carrier, describe_map(&states))?;
    let slots = slots.unwrap_or_else(|| carrier.pickable());
    let plan = LotPlan {
        lot: identity.lot.clone(),
        recipe,
        slots,
        operator: identity.operator.clone(),
        typed_ids: Vec::new(),
        on_wafer_fault: OnWaferFault::EndLot,
    };
    let params = format!(
        "lot={} recipe={} slots={:?} operator={}",
        plan.lot, plan.recipe.recipe.id, plan.slots, plan.operator
    );
    let started = carrier.start_lot(plan);
    station.guard.record(
        &crate::access::Actor::console(),
        "lot_start",
        &params,
        &started.as_ref().map(|_| ()).map_err(Clone::clone),
    );
    let mut report = match started {
        Ok(rx) => rx,
        Err(why) => {
            crate::errln!("cannot start the lot: {why}");
            return Ok(exit_code::NOT_READY);
        }
    };
    let ctrl = carrier.clone();
    let guard = station.guard.clone();
    station.runtime().spawn(async move {
        let mut presses = 0;
        while tokio::signal::ctrl_c().await.is_ok() {
            presses += 1;
            if presses == 1 {
                crate::errln!("\nCtrl-C: stopping after the wafer in hand (press again to abort)");
                ctrl.stop_after_wafer();
                guard.record(
                    &crate::access::Actor::console(),
                    "lot_stop_after_wafer",
                    "Ctrl-C",
                    &Ok(()),
                );
            } else {
                crate::errln!("\nCtrl-C again: aborting the lot");
                ctrl.abort_lot();
                guard.record(
                    &crate::access::Actor::console(),
                    "lot_abort",
                    "Ctrl-C twice",
                    &Ok(()),
                );
            }
        }
    });
    // A line per step of the lot as the operator's window says it (a step
    // shorter than a poll may go unsaid), and one per wafer when its turn
    // is over (never missed: a slot's end stays).
    let mut said = String::new();
    let mut ended = [false; crate::machine::load_port::SLOTS];
    let report = loop {
        let s = carrier.current();
        if s.message.as_str() != said {
            said = s.message.as_str().to_owned();
            if let Err(e) = crate::outln!("{said}") {
                crate::errln!("warning: {e}");
            }
        }
        for (i, v) in s.slots.iter().enumerate() {
            if ended[i] || !is_final(v.progress) {
                continue;
            }
            ended[i] = true;
            let line = format!(
                "  slot {}: {} {}{}",
                i + 1,
                if v.wafer.as_str().is_empty() {
                    "-"
                } else {
                    v.wafer.as_str()
                },
                v.progress.label(),
                if v.progress.was_run() {
                    format!(", {} defects, run {}", v.defects, v.run_id)
                } else {
                    format!(" ({})", v.note)
                }
            );
            if let Err(e) = crate::outln!("{line}") {
                crate::errln!("warning: {e}");
            }
        }
        match report.try_recv() {
            Ok(r) => break r,
            Err(tokio::sync::oneshot::error::TryRecvError::Empty) => {}
            Err(tokio::sync::oneshot::error::TryRecvError::Closed) => {
                crate::errln!("error: the lot runner stopped without a report (see the log)");
                return Ok(exit_code::FAULTED);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // The last message may have come with the report.
    let last = carrier.current().message;
    let mut lines = Vec::new();
    if last.as_str() != said {
        lines.push(last.as_str().to_owned());
    }
    lines.push("slot  wafer                             result          defects  run".into());
    for w in &report.wafers {
        lines.push(format!(
            "{:>4}  {:<32}  {:<14}  {:>7}  {}{}",
            w.slot,
            if w.wafer.is_empty() { "-" } else { &w.wafer },
            w.progress.label(),
            if w.progress.was_run() {
                w.defects.to_string()
            } else {
                "-".into()
            },
            if w.run_id > 0 {
                w.run_id.to_string()
            } else {
                "-".into()
            },
            if w.note.is_empty() || w.progress == SlotProgress::Complete {
                String::new()
            } else {
                format!("  ({})", w.note)
            }
        ));
    }
    match &report.lot_file {
        Some(Ok(path)) => lines.push(format!("lot file (KLARF 1.8): {}", path.display())),
        Some(Err(why)) => crate::errln!(
            "warning: lot file not written: {why} (repeat with `waferscope export --lot {}`)",
            report.lot
        ),
        None => {}
    }
    let run = report.wafers.iter().filter(|w| w.run_id > 0).count();
    lines.push(format!(
        "lot {} {}: {run} wafers recorded in {}",
        report.lot,
        report.end.label(),
        db.display()
    ));
    for l in lines {
        if let Err(e) = crate::outln!("{l}") {
            crate::errln!("warning: {e}");
            break;
        }
    }
    let not_exported: Vec<u32> = report
        .wafers
        .iter()
        .filter(|w| w.not_exported)
        .map(|w| w.slot)
        .collect();
    if !not_exported.is_empty() {
        crate::errln!("warning: results of slots {not_exported:?} recorded but not exported (repeat with `waferscope export`)");
    }
    Ok(match report.end {
        LotEnd::Complete if !not_exported.is_empty() => exit_code::NOT_EXPORTED,
        LotEnd::Complete => exit_code::COMPLETE,
        LotEnd::Stopped => exit_code::STOPPED,
        LotEnd::Aborted => exit_code::ABORTED,
        LotEnd::Faulted => exit_code::FAULTED,
    })
}

/// A slot whose turn in the lot is over.
fn is_final(p: SlotProgress) -> bool {
    p.was_run()
        || matches!(
            p,
            SlotProgress::Skipped | SlotProgress::HandlingFault | SlotProgress::NotRun
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_map_reads_as_ranges() {
        let mut s = [SlotState::Present; 25];
        s[3] = SlotState::DoubleSlotted;
        s[11] = SlotState::Empty;
        s[24] = SlotState::Empty;
        assert_eq!(
            describe_map(&s),
            "1-3 wafer, 4 double-slotted, 5-11 wafer, 12 empty, 13-24 wafer, 25 empty"
        );
    }
}
