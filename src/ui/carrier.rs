//! The Carrier panel: dock and map the carrier, see its slot map, pick
//! slots (every slot holding one wafer by default), name the lot and start
//! it with the recipe chosen in Run control; then follow each wafer, stop
//! after the wafer in hand, or abort the lot (confirmed).

use super::command::UiCommand;
use super::view::View;
use crate::machine::load_port::{SlotState, SLOTS};
use crate::run::lot::{LotEnd, SlotProgress};
use egui::{RichText, Ui};

pub struct CarrierPanel {
    pub lot: String,
    /// The operator's pick, by slot (index 0 = slot 1).
    pub picked: [bool; SLOTS],
    /// Wafer ids the operator typed, by slot (empty: read at the
    /// pre-aligner); a typed id is used even where the reader can read.
    pub typed: [String; SLOTS],
    /// The carrier map the pick was made for (a new map resets it).
    picked_for: Option<(String, [SlotState; SLOTS])>,
    confirm_abort: bool,
}

impl Default for CarrierPanel {
    fn default() -> Self {
        Self {
            lot: "LOT-001".into(),
            picked: [false; SLOTS],
            typed: std::array::from_fn(|_| String::new()),
            picked_for: None,
            confirm_abort: false,
        }
    }
}

impl CarrierPanel {
    pub fn ui(&mut self, ui: &mut Ui, view: &View, recipe: Option<&str>, out: &mut Vec<UiCommand>) {
        let lot = &view.lot;
        ui.heading("Carrier");
        let idle = !lot.running;
        // Carriers and lots are running wafers: the signed-in user's role
        // decides first.
        let may_run = view.permits.check(crate::access::Action::RunControl);
        let refused = may_run.err();
        ui.horizontal(|ui| {
            if ui
                .add_enabled(idle && refused.is_none(), egui::Button::new("Load carrier"))
                .on_disabled_hover_text(refused.unwrap_or("a lot is running"))
                .clicked()
            {
                out.push(UiCommand::LoadCarrier);
            }
            if lot.docked {
                ui.label(format!("Carrier {}", lot.carrier));
            } else {
                ui.label("No carrier docked.");
            }
        });
        if !lot.message.as_str().is_empty() {
            ui.label(lot.message.as_str());
        }
        if !lot.docked {
            return;
        }
        // A new carrier: pick every slot that holds one wafer.
        let map: [SlotState; SLOTS] = std::array::from_fn(|i| lot.slots[i].state);
        let key = (lot.carrier.as_str().to_owned(), map);
        if self.picked_for.as_ref() != Some(&key) {
            self.picked = std::array::from_fn(|i| map[i].can_pick());
            self.typed = std::array::from_fn(|_| String::new());
            self.picked_for = Some(key);
        }
        ui.separator();
        egui::ScrollArea::vertical()
            .max_height(ui.available_height() - 140.0)
            .show(ui, |ui| {
                egui::Grid::new("slot_map")
                    .striped(true)
                    .num_columns(7)
                    .show(ui, |ui| {
                        for h in [
                            "Slot",
                            "Mapped",
                            "Wafer",
                            "Typed id",
                            "Lot progress",
                            "Defects",
                            "Run",
                        ] {
                            ui.label(RichText::new(h).strong());
                        }
                        ui.end_row();
                        for (i, v) in lot.slots.iter().enumerate() {
                            let n = i + 1;
                            let can = v.state.can_pick() && idle;
                            let pick = ui
                                .add_enabled(
                                    can,
                                    egui::Checkbox::new(&mut self.picked[i], format!("Slot {n}")),
                                )
                                .on_disabled_hover_text(if v.state.can_pick() {
                                    "a lot is running"
                                } else {
                                    "never picked: the robot cannot take a wafer from this slot"
                                });
                            if !v.state.can_pick() {
                                self.picked[i] = false;
                            }
                            // Not a fault of the tool: no alarm colour, the
                            // word says it.
                            ui.label(v.state.label());
                            ui.label(v.wafer.as_str());
                            if can {
                                // Typed, or (empty) read at the pre-aligner.
                                ui.add(
                                    egui::TextEdit::singleline(&mut self.typed[i])
                                        .hint_text("read at the aligner")
                                        .desired_width(130.0),
                                )
                                .labelled_by(pick.id)
                                .on_hover_text("The wafer id, when the reader cannot read it");
                            } else {
                                ui.label(self.typed[i].as_str());
                            }
                            let progress = v.progress.label();
                            if v.note.as_str().is_empty() || v.progress == SlotProgress::Complete {
                                ui.label(progress);
                            } else {
                                ui.label(format!("{progress}: {}", v.note));
                            }
                            if v.progress.was_run() {
                                ui.label(v.defects.to_string());
                            } else {
                                ui.label("");
                            }
                            if v.run_id > 0 {
                                ui.label(v.run_id.to_string());
                            } else {
                                ui.label("");
                            }
                            ui.end_row();
                        }
                    });
            });
        ui.separator();
        ui.add_enabled_ui(idle, |ui| {
            ui.horizontal(|ui| {
                let l = ui.label("Lot id");
                ui.text_edit_singleline(&mut self.lot).labelled_by(l.id);
                if ui.button("Pick all wafers").clicked() {
                    self.picked = std::array::from_fn(|i| map[i].can_pick());
                }
                if ui.button("Pick none").clicked() {
                    self.picked = [false; SLOTS];
                }
            });
        });
        let slots: Vec<u32> = (1..=SLOTS as u32)
            .filter(|&s| self.picked[s as usize - 1])
            .collect();
        ui.label(format!(
            "{} slots picked; recipe {} (chosen in Run control)",
            slots.len(),
            recipe.unwrap_or("— none chosen")
        ));
        ui.horizontal(|ui| {
            let why_not = if let Some(why) = refused {
                Some(why)
            } else if !idle {
                Some("a lot is running")
            } else if slots.is_empty() {
                Some("pick at least one slot")
            } else if recipe.is_none() {
                Some("choose a recipe in Run control")
            } else if !matches!(
                view.run.state,
                crate::run::RunState::Idle | crate::run::RunState::Ready
            ) {
                Some("the tool is busy: finish or acknowledge the run first")
            } else {
                None
            };
            let start = ui
                .add_enabled(why_not.is_none(), egui::Button::new("Start lot"))
                .on_disabled_hover_text(why_not.unwrap_or_default());
            if start.clicked() {
                let typed_ids = slots
                    .iter()
                    .map(|&s| (s, self.typed[s as usize - 1].trim().to_owned()))
                    .filter(|(_, id)| !id.is_empty())
                    .collect();
                out.push(UiCommand::StartLot {
                    lot: self.lot.clone(),
                    slots,
                    typed_ids,
                });
            }
            let stop = ui
                .add_enabled(
                    lot.running && !lot.stop_after_wafer && refused.is_none(),
                    egui::Button::new("Stop after this wafer"),
                )
                .on_disabled_hover_text(if let Some(why) = refused {
                    why
                } else if lot.stop_after_wafer {
                    "already asked: the lot ends after the wafer in hand"
                } else {
                    "no lot is running"
                });
            if stop.clicked() {
                out.push(UiCommand::StopLotAfterWafer);
            }
            if self.confirm_abort && lot.running {
                if ui.button("Confirm: abort the lot").clicked() {
                    out.push(UiCommand::AbortLot);
                    self.confirm_abort = false;
                }
                if ui.button("Cancel").clicked() {
                    self.confirm_abort = false;
                }
            } else {
                self.confirm_abort = false;
                if ui
                    .add_enabled(
                        lot.running && refused.is_none(),
                        egui::Button::new("Abort lot…"),
                    )
                    .on_disabled_hover_text(refused.unwrap_or("no lot is running"))
                    .clicked()
                {
                    self.confirm_abort = true;
                }
            }
        });
        if lot.running {
            ui.label(format!(
                "Lot {}: wafer {} of {}{}",
                lot.lot,
                (lot.wafers_done + 1).min(lot.wafers_total),
                lot.wafers_total,
                if lot.stop_after_wafer {
                    " — stopping after this wafer"
                } else {
                    ""
                }
            ));
        } else if let Some(end) = lot.end {
            let done = lot.slots.iter().filter(|v| v.progress.was_run()).count();
            ui.label(format!(
                "Lot {} {}: {done} wafers run{}",
                lot.lot,
                end.label(),
                if end == LotEnd::Complete {
                    ""
                } else {
                    " (see each slot)"
                }
            ));
        }
    }
}
