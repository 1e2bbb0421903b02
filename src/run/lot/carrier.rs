//! How the window, the CLI and tests use the load port: dock and map a
//! carrier, start a lot, stop it after the wafer in hand, abort it. Each
//! request runs on the station's runtime; the answers come back on
//! channels (the UI thread never waits) and the lot snapshot shows the rest.

use super::plan::LotPlan;
use super::runner::{run_lot, LotControl, LotReport, SharedPort};
use super::snapshot::{LotBoard, LotEnd, LotSnapshot, SharedBoard, SlotProgress, SlotView};
use crate::hot::LatestSubscriber;
use crate::machine::load_port::LoadPort;
use crate::run::text::FixedText;
use crate::run::EngineHandle;
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
        }
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
        let busy = self.take_busy("start a lot")?;
        if !LotBoard::current(&self.board).docked {
            return Err("load a carrier first".into());
        }
        let control = Arc::new(LotControl::default());
        *self.control.lock().unwrap_or_else(|e| e.into_inner()) = control.clone();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (engine, port, board) = (self.engine.clone(), self.port.clone(), self.board.clone());
        let lot = plan.lot.clone();
        let runner = self
            .rt
            .spawn(run_lot(engine, port, plan, control, board.clone()));
        // The runner's end, a panic included, is always shown and logged.
        self.rt.spawn(async move {
            let busy_guard = busy;
            let report = match runner.await {
                Ok(report) => {
                    tracing::info!(lot = %report.lot, end = report.end.label(), "lot ended");
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
