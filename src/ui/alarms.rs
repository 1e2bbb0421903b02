//! The alarm panel: active alarms by priority then time, with state,
//! guidance and the acknowledge/shelve actions; acknowledge all; the
//! journal with a filter. Empty when all is normal.

use super::app::Tab;
use super::command::UiCommand;
use super::look;
use super::session::{add_allowed, permitted_button};
use super::view::View;
use crate::access::Action;
use crate::monitor::alarm_defs::{AlarmDef, Condition};
use crate::monitor::alarm_engine::priority_of;
use crate::monitor::{JournalRow, Shelving, SoftwareCondition};
use egui::{RichText, Ui};
use std::time::Duration;

#[derive(Default)]
pub struct AlarmPanel {
    pub filter: String,
    /// The shelve dialog open for one alarm.
    shelving: Option<ShelveDialog>,
}

/// Shelving needs a reason and a duration within the alarm's maximum.
struct ShelveDialog {
    alid: u32,
    minutes: u32,
    max_minutes: u32,
    reason: String,
}

impl AlarmPanel {
    pub fn ui(
        &mut self,
        ui: &mut Ui,
        view: &View,
        journal: &[JournalRow],
        out: &mut Vec<UiCommand>,
    ) {
        let a = &view.alarms;
        ui.horizontal(|ui| {
            ui.heading("Active alarms");
            let unacked: u16 = a.unacknowledged.iter().sum();
            let allowed = match view.permits.check(Action::Acknowledge) {
                Ok(()) if unacked == 0 => Err("nothing to acknowledge"),
                other => other,
            };
            if add_allowed(ui, allowed, egui::Button::new("Acknowledge all")).clicked() {
                out.push(UiCommand::AckAllAlarms);
            }
            if a.flood_more > 0 {
                ui.label(RichText::new(format!("alarm flood: {} more", a.flood_more)).strong());
            }
        });
        if a.evaluator_stopped {
            ui.label(
                RichText::new(format!(
                    "⊘ The alarm evaluator has stopped: this list is its last picture, {} s old, and is no longer updated.",
                    a.age_ns(view.now_ns) / 1_000_000_000
                ))
                .color(look::QUALITY)
                .strong(),
            );
        }
        if a.journal_drops > 0 {
            ui.label(
                RichText::new(format!(
                    "⊘ {} alarm events could not be journaled (the journal fell behind)",
                    a.journal_drops
                ))
                .color(look::QUALITY),
            );
        }
        if a.count == 0 {
            ui.label("No alarms.");
        }
        for e in a.entries() {
            let Some(def) = view.def(e.alid) else {
                continue;
            };
            let p = priority_of(e.priority);
            ui.group(|ui| {
                ui.horizontal(|ui| {
                    ui.label(
                        RichText::new(look::priority_badge(p))
                            .color(look::priority_color(p))
                            .strong(),
                    );
                    ui.label(RichText::new(format!("{} {}", e.alid, def.name)).strong());
                    let state = match e.shelving {
                        Shelving::None => look::alarm_state_text(e.state).to_string(),
                        Shelving::OneShot => "⏏ SHELVED (until normal)".into(),
                        Shelving::Timed { until_ns } => {
                            let left_s = until_ns.saturating_sub(view.now_ns) / 1_000_000_000;
                            let until = super::clock::local_clock_text(
                                super::clock::unix_now_s() + left_s as i64,
                            );
                            format!(
                                "⏏ SHELVED by {} until {until} ({} min left)",
                                if e.shelved_by.as_str().is_empty() {
                                    "someone before a restart"
                                } else {
                                    e.shelved_by.as_str()
                                },
                                left_s / 60 + 1
                            )
                        }
                    };
                    ui.label(state);
                    if e.first_out {
                        ui.label(RichText::new("FIRST OUT").strong());
                    }
                    if e.chattering {
                        ui.label("chattering");
                    }
                    if e.shelving == Shelving::None {
                        ui.label(format!(
                            "since {} s",
                            view.now_ns.saturating_sub(e.raised_ns) / 1_000_000_000
                        ));
                    }
                });
                ui.label(&def.text);
                if !e.shelve_reason.as_str().is_empty() {
                    ui.label(format!("Shelved because: {}", e.shelve_reason));
                }
                ui.label(RichText::new(format!("What to do: {}", def.guidance)).italics());
                ui.horizontal(|ui| {
                    // HMI rule 12: every alarm links to the panel where it
                    // is handled.
                    let (tab, panel) = handling_panel(def);
                    if ui
                        .button(format!("Open {panel} panel ({})", e.alid))
                        .on_hover_text("the panel where this alarm's cause is seen and handled")
                        .clicked()
                    {
                        out.push(UiCommand::OpenTab(tab));
                    }
                    let unack = e.state.is_unacknowledged();
                    if e.shelving == Shelving::None {
                        let allowed = match view.permits.check(Action::Acknowledge) {
                            Ok(()) if !unack => Err("already acknowledged"),
                            other => other,
                        };
                        if add_allowed(
                            ui,
                            allowed,
                            egui::Button::new(format!("Acknowledge {}", e.alid)),
                        )
                        .clicked()
                        {
                            out.push(UiCommand::AckAlarm(e.alid));
                        }
                        if permitted_button(
                            ui,
                            &view.permits,
                            Action::Shelve,
                            format!("Shelve {}…", e.alid),
                        )
                        .clicked()
                        {
                            let max_minutes = (def.max_shelve_ns / 60_000_000_000).max(1) as u32;
                            self.shelving = Some(ShelveDialog {
                                alid: e.alid,
                                minutes: 10.min(max_minutes),
                                max_minutes,
                                reason: String::new(),
                            });
                        }
                    } else if permitted_button(
                        ui,
                        &view.permits,
                        Action::Shelve,
                        format!("Unshelve {}", e.alid),
                    )
                    .clicked()
                    {
                        out.push(UiCommand::UnshelveAlarm(e.alid));
                    }
                });
            });
        }
        self.shelve_dialog_ui(ui, out);
        ui.separator();
        ui.horizontal(|ui| {
            ui.heading("Journal");
            ui.label("Filter");
            ui.text_edit_singleline(&mut self.filter);
        });
        let f = self.filter.to_lowercase();
        egui::ScrollArea::vertical()
            .id_salt("journal")
            .max_height(220.0)
            .show(ui, |ui| {
                egui::Grid::new("journal_rows")
                    .striped(true)
                    .num_columns(5)
                    .show(ui, |ui| {
                        for r in journal.iter().filter(|r| {
                            f.is_empty()
                                || r.alid.to_string().contains(&f)
                                || r.event.contains(&f)
                                || r.operator
                                    .as_deref()
                                    .unwrap_or("")
                                    .to_lowercase()
                                    .contains(&f)
                                || view
                                    .def(r.alid)
                                    .is_some_and(|d| d.name.to_lowercase().contains(&f))
                        }) {
                            ui.label(crate::store::klarf::klarf_time(r.at_unix_ms));
                            ui.label(r.alid.to_string());
                            ui.label(view.def(r.alid).map(|d| d.name.as_str()).unwrap_or(""));
                            ui.label(&r.event);
                            ui.label(r.operator.as_deref().unwrap_or(""));
                            ui.end_row();
                        }
                    });
            });
    }
}

/// The panel where an alarm's cause is seen and handled: a heartbeat or a
/// reading's alarm on the Heartbeat panel (its row, value band and
/// trend); a stopped poller or alarm evaluator on the Health panel (the
/// threads and their state).
pub fn handling_panel(def: &AlarmDef) -> (Tab, &'static str) {
    match def.condition {
        Condition::MonitorStopped | Condition::EvaluatorStopped => (Tab::Health, "Health"),
        // The overview's recent runs, where a run is exported again.
        Condition::Software {
            condition: SoftwareCondition::ExportFailing,
        } => (Tab::Overview, "Overview"),
        Condition::Software {
            condition: SoftwareCondition::LotExcursion,
        } => (Tab::Lots, "Lot view"),
        Condition::High { .. }
        | Condition::Low { .. }
        | Condition::Stale { .. }
        | Condition::Lost { .. }
        | Condition::Invalid { .. } => (Tab::Heartbeat, "Heartbeat"),
    }
}

impl AlarmPanel {
    /// Reason and duration (up to the alarm's maximum) before shelving.
    fn shelve_dialog_ui(&mut self, ui: &mut Ui, out: &mut Vec<UiCommand>) {
        let Some(d) = &mut self.shelving else {
            return;
        };
        let mut close = false;
        egui::Window::new(format!("Shelve alarm {}?", d.alid))
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
            .show(ui.ctx(), |ui| {
                ui.label("A shelved alarm is not annunciated until its time is up.");
                let l = ui.label("Minutes");
                ui.add(egui::DragValue::new(&mut d.minutes).range(1..=d.max_minutes))
                    .labelled_by(l.id);
                ui.label(format!("at most {} min for this alarm", d.max_minutes));
                let l = ui.label("Reason");
                ui.text_edit_singleline(&mut d.reason).labelled_by(l.id);
                ui.horizontal(|ui| {
                    let ok = !d.reason.trim().is_empty();
                    if ui
                        .add_enabled(ok, egui::Button::new("Confirm shelve"))
                        .on_disabled_hover_text("give a reason")
                        .clicked()
                    {
                        out.push(UiCommand::ShelveAlarm {
                            alid: d.alid,
                            duration: Duration::from_secs(u64::from(d.minutes) * 60),
                            reason: d.reason.trim().to_owned(),
                        });
                        close = true;
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
            });
        if close {
            self.shelving = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped alarm links somewhere, and the stopped-producer alarms
    /// to Health, the others to Heartbeat.
    #[test]
    fn every_shipped_alarm_links_to_the_panel_that_handles_it() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/alarms.toml");
        let defs = crate::monitor::alarm_defs::load(std::path::Path::new(path)).unwrap();
        let health: Vec<u32> = defs
            .iter()
            .filter(|d| handling_panel(d).0 == Tab::Health)
            .map(|d| d.alid)
            .collect();
        assert_eq!(health, [1091, 1092]);
        let overview: Vec<u32> = defs
            .iter()
            .filter(|d| handling_panel(d).0 == Tab::Overview)
            .map(|d| d.alid)
            .collect();
        assert_eq!(overview, [1093], "export failing: where runs are exported");
        let lots: Vec<u32> = defs
            .iter()
            .filter(|d| handling_panel(d).0 == Tab::Lots)
            .map(|d| d.alid)
            .collect();
        assert_eq!(lots, [1094], "a lot excursion: the lot view");
        assert!(defs
            .iter()
            .filter(|d| ![&health[..], &overview, &lots].concat().contains(&d.alid))
            .all(|d| handling_panel(d) == (Tab::Heartbeat, "Heartbeat")));
    }
}
