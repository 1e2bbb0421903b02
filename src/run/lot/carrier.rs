//! How the window, the CLI and tests use the load port: dock and map a
//! carrier, start a lot, stop it after the wafer in hand, abort it. Each
//! request runs on the station's runtime; the answers come back on
//! channels (the UI thread never waits) and the lot snapshot shows the rest.

use super::plan::LotPlan;
use super::runner::{run_lot, LotControl, LotReport, SharedPort};
use super::snapshot::{LotBoard, LotEnd, LotSnapshot, SharedBoard, SlotProgress, SlotView};
use crate::hot::LatestSubscriber;
use crate::machine::load_port::LoadPort;
use crate::monitor::software::{SoftwareCondition, SoftwareConditions};
use crate::run::text::FixedText;
use crate::run::EngineHandle;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct CarrierHandle {
    port: SharedPort,
    board: SharedBoard,
    pub snapshots: LatestSubscriber<LotSnapshot>,
    /// A carrier is being docked or a lot runs: one at a time.
    busy: Arc<AtomicBool>,
    /// The running lot's controls.
    control: Arc<Mutex<Arc<LotControl>>>,
    engine: EngineHandle,
    rt: tokio::runtime::Handle,
    /// Where a lot's KLARF 1.8 lot file goes when it ends: (database,
    /// export directory); none if `None`.
    lot_file: Option<(PathBuf, PathBuf)>,
    /// Where an ended lot is checked against its recipe's control limits
    /// (the database) and the alarm condition an excursion sets.
    excursions: Option<(PathBuf, Arc<SoftwareConditions>)>,
    /// Why this station runs no lots, if it runs none.
    refuse_lots: Option<String>,
}

/// Clears `busy` however the task holding it ends (a panic included).
struct Busy(Arc<AtomicBool>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

impl CarrierHandle {
    pub fn new(port: Box<dyn LoadPort>, engine: EngineHandle, rt: tokio::runtime::Handle) -> Self {
        let (board, snapshots) = LotBoard::new();
        Self {
            port: Arc::new(Mutex::new(port)),
            board,
            snapshots,
            busy: Arc::new(AtomicBool::new(false)),
            control: Arc::default(),
            engine,
            rt,
            lot_file: None,
            excursions: None,
            refuse_lots: None,
        }
    }

    /// This station runs no lots, saying why (e.g. a real camera with the
    /// simulated load port: it would record one physical wafer many times
    /// under simulated ids).
    pub fn refusing_lots(mut self, why: String) -> Self {
        self.refuse_lots = Some(why);
        self
    }

    /// Each lot that ends is checked against its recipe's control limits
    /// (`store::lot_query`); a wafer outside them sets the lot-excursion
    /// alarm condition, a lot within them clears it.
    pub fn with_excursion_check(
        mut self,
        db: PathBuf,
        conditions: Arc<SoftwareConditions>,
    ) -> Self {
        self.excursions = Some((db, conditions));
        self
    }

    /// Each lot that ends writes its KLARF 1.8 lot file (one WaferRecord
    /// per wafer run) from `db` into `dir`.
    pub fn with_lot_file(mut self, db: PathBuf, dir: PathBuf) -> Self {
        self.lot_file = Some((db, dir));
        self
    }

    fn take_busy(&self, what: &str) -> Result<Busy, String> {
        if self.busy.swap(true, Ordering::AcqRel) {
            return Err(format!(
                "cannot {what}: the load port is busy (a lot runs or a carrier is being mapped)"
            ));
        }
        Ok(Busy(self.busy.clone()))
    }

    /// Docks the carrier in the port and maps it, without waiting: the
    /// answer comes on the returned channel, the map in the snapshot.
    pub fn load_carrier_nowait(&self) -> flume::Receiver<Result<(), String>> {
        let (tx, rx) = flume::bounded(1);
        let answer = match self.take_busy("load a carrier") {
            Err(why) => Err(why),
            Ok(busy) => {
                let (port, board) = (self.port.clone(), self.board.clone());
                self.rt.spawn(async move {
                    let busy_guard = busy;
                    LotBoard::update(&board, |s| {
                        s.message = FixedText::new("Docking and mapping the carrier…")
                    });
                    let mapped = tokio::task::spawn_blocking(move || {
                        port.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .load_carrier()
                    })
                    .await;
                    let r = match mapped {
                        Ok(Ok(map)) => {
                            LotBoard::update(&board, |s| {
                                s.docked = true;
                                s.carrier = FixedText::new(&map.carrier_id);
                                s.end = None;
                                for (v, state) in s.slots.iter_mut().zip(map.slots) {
                                    *v = SlotView {
                                        state,
                                        ..SlotView::default()
                                    };
                                }
                                let n = map.pickable().len();
                                s.message = FixedText::new(&format!(
                                    "Carrier {} mapped: {n} wafers to run",
                                    map.carrier_id
                                ));
                            });
                            tracing::info!(carrier = %map.carrier_id, "carrier docked and mapped");
                            Ok(())
                        }
                        Ok(Err(e)) => Err(format!("loading the carrier: {e}")),
                        Err(e) => Err(format!("loading the carrier: the handling task ended: {e}")),
                    };
                    if let Err(why) = &r {
                        tracing::error!("{why}");
                        LotBoard::update(&board, |s| s.message = FixedText::new(why));
                    }
                    // Free before answering: whoever waits may start a lot
                    // at once.
                    drop(busy_guard);
                    if tx.send(r).is_err() {
                        tracing::debug!("nobody waited for the carrier's map");
                    }
                });
                return rx;
            }
        };
        // The channel has room for the one answer.
        if tx.send(answer).is_err() {
            tracing::debug!("nobody waited for the carrier's map");
        }
        rx
    }

    /// Starts a lot on the docked carrier. The report comes on the
    /// returned channel when the lot ends (also in the snapshot).
    pub fn start_lot(
        &self,
        plan: LotPlan,
    ) -> Result<tokio::sync::oneshot::Receiver<LotReport>, String> {
        crate::run::ids::check_identity(&plan.lot, "wafer", 1, &plan.operator)?;
        if plan.slots.is_empty() {
            return Err("pick at least one slot".into());
        }
        for (i, s) in plan.slots.iter().enumerate() {
            if !(1..=crate::machine::load_port::SLOTS as u32).contains(s) {
                return Err(format!("slot {s} is not in 1..=25"));
            }
            if plan.slots[..i].contains(s) {
                return Err(format!("slot {s} is picked twice"));
            }
        }
        if let Some(why) = &self.refuse_lots {
            return Err(why.clone());
        }
        let busy = self.take_busy("start a lot")?;
        if !LotBoard::current(&self.board).docked {
            return Err("load a carrier first".into());
        }
        let control = Arc::new(LotControl::default());
        *self.control.lock().unwrap_or_else(|e| e.into_inner()) = control.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (engine, port, board) = (self.engine.clone(), self.port.clone(), self.board.clone());
        let lot = plan.lot.clone();
        let lot_file = self.lot_file.clone();
        let excursions = self.excursions.clone();
        let runner = self
            .rt
            .spawn(run_lot(engine, port, plan, control, board.clone()));
        // The runner's end, a panic included, is always shown and logged.
        self.rt.spawn(async move {
            let busy_guard = busy;
            let report = match runner.await {
                Ok(mut report) => {
                    tracing::info!(lot = %report.lot, end = report.end.label(), "lot ended");
                    if let Some((db, dir)) = lot_file {
                        report.lot_file = Some(write_lot_file(db, dir, &report, &board).await);
                    }
                    if let Some((db, conditions)) = excursions {
                        check_excursions(db, conditions, &report, &board).await;
                    }
                    report
                }
                Err(e) => {
                    let why = format!("the lot runner stopped: {e} (see the log)");
                    tracing::error!(lot = %lot, "{why}");
                    LotBoard::update(&board, |s| {
                        s.running = false;
                        s.end = Some(LotEnd::Faulted);
                        s.message = FixedText::new(&why);
                    });
                    LotReport {
                        lot,
                        end: LotEnd::Faulted,
                        wafers: Vec::new(),
                        message: why,
                        lot_file: None,
                    }
                }
            };
            drop(busy_guard);
            if tx.send(report).is_err() {
                tracing::debug!("nobody waited for the lot report");
            }
        });
        Ok(rx)
    }

    /// The wafer in hand finishes; then the lot ends.
    pub fn stop_after_wafer(&self) {
        self.control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .stop_after_wafer();
        LotBoard::update(&self.board, |s| s.stop_after_wafer = true);
    }

    /// The wafer in hand is aborted (its results kept) and the lot ends.
    pub fn abort_lot(&self) {
        self.control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .abort();
    }

    /// The lot as now.
    pub fn current(&self) -> LotSnapshot {
        LotBoard::current(&self.board)
    }

    /// Slots of the docked carrier a lot would pick by default.
    pub fn pickable(&self) -> Vec<u32> {
        let s = self.current();
        (1..=s.slots.len() as u32)
            .filter(|&n| s.slots[n as usize - 1].state.can_pick())
            .collect()
    }

    /// Whether any slot of the last lot is still being worked on.
    pub fn in_progress(&self) -> bool {
        self.current().slots.iter().any(|v| {
            matches!(
                v.progress,
                SlotProgress::Loading | SlotProgress::Inspecting | SlotProgress::Unloading
            )
        })
    }
}

/// Writes the lot's KLARF 1.8 lot file (its wafers that were run, by slot)
/// off the async threads; the outcome is logged and shown with the lot.
/// A lot file not written loses nothing: each wafer has its own KLARF, and
/// `waferscope export --lot` writes the lot file again.
async fn write_lot_file(
    db: PathBuf,
    dir: PathBuf,
    report: &LotReport,
    board: &SharedBoard,
) -> Result<PathBuf, String> {
    let mut run: Vec<(u32, i64)> = report
        .wafers
        .iter()
        .filter(|w| w.run_id > 0)
        .map(|w| (w.slot, w.run_id as i64))
        .collect();
    run.sort();
    let runs: Vec<i64> = run.into_iter().map(|(_, r)| r).collect();
    if runs.is_empty() {
        return Err("no wafer of the lot was run".into());
    }
    // The file's own path: given only the directory, a directory that has
    // gone missing would be taken for the file's name.
    let out = dir.join(crate::store::export::lot_file_name(&report.lot));
    let written = tokio::task::spawn_blocking(move || {
        crate::store::export::export_lot(&db, &runs, &out).map_err(|e| format!("{e:#}"))
    })
    .await
    .unwrap_or_else(|e| Err(format!("the lot file's task ended: {e}")));
    let note = match &written {
        Ok(path) => {
            tracing::info!(lot = %report.lot, file = %path.display(), "lot file written");
            format!("{}; lot file {}", report.message, path.display())
        }
        Err(why) => {
            tracing::error!(lot = %report.lot, "lot file not written: {why}");
            format!(
                "{}; lot file not written: {why} (repeat with `waferscope export --lot {}`)",
                report.message, report.lot
            )
        }
    };
    LotBoard::update(board, |s| s.message = FixedText::new(&note));
    written
}

/// Checks the ended lot's wafers against its recipe's control limits and
/// sets the lot-excursion alarm condition accordingly. A lot that cannot
/// be read leaves the condition as it was (said in the log and the lot's
/// message): nothing is known about its wafers.
async fn check_excursions(
    db: PathBuf,
    conditions: Arc<SoftwareConditions>,
    report: &LotReport,
    board: &SharedBoard,
) {
    if !report.wafers.iter().any(|w| w.run_id > 0) {
        return;
    }
    let lot = report.lot.clone();
    let read = tokio::task::spawn_blocking(move || {
        crate::store::export::open_existing(&db)
            .and_then(|conn| crate::store::lot_query::lot_overview(&conn, &lot))
            .map_err(|e| format!("{e:#}"))
    })
    .await
    .unwrap_or_else(|e| Err(format!("the lot check's task ended: {e}")));
    let note = match read {
        Err(why) => {
            tracing::error!(lot = %report.lot, "control limits not checked: {why}");
            format!("control limits not checked: {why}")
        }
        Ok(o) => {
            let outside: Vec<String> = o
                .excursions()
                .iter()
                .map(|w| format!("{} ({} defects)", w.wafer, w.defects))
                .collect();
            conditions.set(SoftwareCondition::LotExcursion, !outside.is_empty());
            match (&o.limits, outside.is_empty()) {
                (None, _) => return,
                (Some(_), true) => return,
                (Some(l), false) => {
                    let why = format!(
                        "excursion: {} outside the control limits {:.1} to {:.1}",
                        outside.join(", "),
                        l.lower,
                        l.upper
                    );
                    tracing::warn!(lot = %report.lot, "{why}");
                    why
                }
            }
        }
    };
    LotBoard::update(board, |s| {
        let message = format!("{}; {note}", s.message);
        s.message = FixedText::new(&message);
    });
}
