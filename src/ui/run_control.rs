//! Run control: recipe and wafer identity, and the run commands, each
//! enabled only when the run state allows it (the refusal reason shows on
//! hover otherwise). Abort asks for confirmation and a reason.

use super::command::UiCommand;
use super::session::permitted_button;
use super::view::View;
use crate::access::Action;
use crate::run::state::{transition, CommandKind};
use crate::run::RunCommand;
use egui::{RichText, Ui};
use std::path::PathBuf;

pub struct RunControl {
    pub recipes: Vec<PathBuf>,
    pub recipe: Option<PathBuf>,
    pub lot: String,
    pub wafer: String,
    pub slot: u32,
    /// The last answer to a load or command (error text shown in red).
    pub message: Option<Result<String, String>>,
    /// Ids of the loaded run that had characters replaced (kept until the
    /// next load, so the operator sees what was recorded).
    pub id_warnings: Vec<String>,
    abort_dialog: Option<String>,
    #[cfg(feature = "file-dialog")]
    picked: Option<std::sync::mpsc::Receiver<Option<PathBuf>>>,
}

impl RunControl {
    pub fn new(recipes: Vec<PathBuf>) -> Self {
        Self {
            recipe: recipes.first().cloned(),
            recipes,
            lot: "LOT-001".into(),
            wafer: "W01".into(),
            slot: 1,
            message: None,
            id_warnings: Vec::new(),
            abort_dialog: None,
            #[cfg(feature = "file-dialog")]
            picked: None,
        }
    }

    pub fn ui(&mut self, ui: &mut Ui, view: &View, out: &mut Vec<UiCommand>) {
        ui.heading("Run control");
        let state = view.run.state;
        // A lot loads and starts each wafer itself: a hand-started run
        // between two of its wafers would have the robot take a wafer
        // away mid-inspection.
        let lot_running = view.lot.running;
        let can_load = !lot_running
            && matches!(
                state,
                crate::run::RunState::Idle | crate::run::RunState::Ready
            );
        ui.add_enabled_ui(can_load, |ui| {
            egui::Grid::new("identity").num_columns(2).show(ui, |ui| {
                let label = ui.label("Recipe");
                let name = |p: &PathBuf| {
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                };
                egui::ComboBox::from_id_salt("recipe")
                    .selected_text(
                        self.recipe
                            .as_ref()
                            .map(name)
                            .unwrap_or_else(|| "choose…".into()),
                    )
                    .show_ui(ui, |ui| {
                        for r in &self.recipes {
                            ui.selectable_value(&mut self.recipe, Some(r.clone()), name(r));
                        }
                    })
                    .response
                    .labelled_by(label.id);
                ui.end_row();
                #[cfg(feature = "file-dialog")]
                {
                    ui.label("");
                    if ui.button("Browse…").clicked() {
                        // Off the UI thread; the answer comes back by channel.
                        let (tx, rx) = std::sync::mpsc::channel();
                        std::thread::spawn(move || {
                            let p = rfd::FileDialog::new()
                                .add_filter("recipe", &["toml"])
                                .pick_file();
                            let _ = tx.send(p);
                        });
                        self.picked = Some(rx);
                    }
                    ui.end_row();
                }
                let l = ui.label("Lot");
                ui.text_edit_singleline(&mut self.lot).labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Wafer");
                ui.text_edit_singleline(&mut self.wafer).labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Slot");
                ui.add(egui::DragValue::new(&mut self.slot).range(1..=25))
                    .labelled_by(l.id);
                ui.end_row();
            });
            ui.horizontal(|ui| {
                if permitted_button(ui, &view.permits, Action::LoadRecipe, "Load recipe").clicked() {
                    if let Some(path) = self.recipe.clone() {
                        out.push(UiCommand::LoadRecipe {
                            path,
                            lot: self.lot.clone(),
                            wafer: self.wafer.clone(),
                            slot: self.slot,
                        });
                    }
                }
                // An engineer's action: the median of dies of the loaded
                // recipe's plan becomes its golden die (`waferscope teach`).
                if permitted_button(ui, &view.permits, Action::TeachGolden, "Teach golden die")
                    .on_hover_text("Image dies of the loaded recipe's plan and keep their median as its golden die")
                    .clicked()
                {
                    out.push(UiCommand::TeachGolden);
                }
            });
        });
        #[cfg(feature = "file-dialog")]
        if let Some(rx) = &self.picked {
            if let Ok(p) = rx.try_recv() {
                if let Some(p) = p {
                    if !self.recipes.contains(&p) {
                        self.recipes.push(p.clone());
                    }
                    self.recipe = Some(p);
                }
                self.picked = None;
            }
        }
        ui.separator();
        ui.horizontal_wrapped(|ui| {
            for (label, kind) in [
                ("Start", CommandKind::Start),
                ("Pause", CommandKind::Pause),
                ("Resume", CommandKind::Resume),
                ("Stop", CommandKind::Stop),
                ("Abort", CommandKind::Abort),
            ] {
                let allowed = match transition(state, kind) {
                    Ok(_) if kind == CommandKind::Start && lot_running => {
                        Err("a lot is running: it starts each wafer itself")
                    }
                    Ok(_) => view.permits.check(Action::RunControl).map(|()| state),
                    other => other,
                };
                let b = ui.add_enabled(allowed.is_ok(), egui::Button::new(label));
                let b = match allowed {
                    Err(why) => b.on_disabled_hover_text(why),
                    Ok(_) => b,
                };
                if b.clicked() {
                    match kind {
                        CommandKind::Start => out.push(UiCommand::Run(RunCommand::Start)),
                        CommandKind::Pause => out.push(UiCommand::Run(RunCommand::Pause)),
                        CommandKind::Resume => out.push(UiCommand::Run(RunCommand::Resume)),
                        CommandKind::Stop => out.push(UiCommand::Run(RunCommand::Stop)),
                        CommandKind::Abort => self.abort_dialog = Some(String::new()),
                        _ => {}
                    }
                }
            }
        });
        if matches!(
            state,
            crate::run::RunState::Complete
                | crate::run::RunState::Aborted
                | crate::run::RunState::Faulted
                | crate::run::RunState::FaultAcknowledged
        ) {
            summary_ui(ui, &view.run);
            ui.horizontal(|ui| {
                // A fault is acknowledged first, then reset (HMI.md).
                if state != crate::run::RunState::FaultAcknowledged
                    && permitted_button(ui, &view.permits, Action::Acknowledge, "Acknowledge")
                        .clicked()
                {
                    out.push(UiCommand::Run(RunCommand::Acknowledge));
                }
                if state == crate::run::RunState::FaultAcknowledged
                    && permitted_button(ui, &view.permits, Action::ResetFault, "Reset").clicked()
                {
                    out.push(UiCommand::Run(RunCommand::Reset));
                }
            });
        }
        if !view.run.cause.as_str().is_empty() && !view.run.state.ended() {
            ui.label(RichText::new(view.run.cause.as_str()).italics());
        }
        for w in &self.id_warnings {
            ui.label(format!("⚠ {w}"));
        }
        match &self.message {
            Some(Ok(m)) => {
                ui.label(m);
            }
            Some(Err(e)) => {
                // A refusal is an answer, not an alarm: icon and bold
                // words, no alarm colour (HMI rule 2).
                ui.label(RichText::new(format!("✖ {e}")).strong());
            }
            None => {}
        }
        self.abort_ui(ui, out);
    }

    fn abort_ui(&mut self, ui: &mut Ui, out: &mut Vec<UiCommand>) {
        let Some(reason) = &mut self.abort_dialog else {
            return;
        };
        let mut close = false;
        egui::Window::new("Abort the run?")
            .collapsible(false)
            .resizable(false)
            .anchor(egui::Align2::CENTER_CENTER, [0.0, 0.0])
            .show(ui.ctx(), |ui| {
                ui.label(
                    "Every result found so far is kept; dies not yet inspected are marked so.",
                );
                let label = ui.label("Reason");
                ui.text_edit_singleline(reason).labelled_by(label.id);
                ui.horizontal(|ui| {
                    let ok = !reason.trim().is_empty();
                    if ui
                        .add_enabled(ok, egui::Button::new("Confirm abort"))
                        .on_disabled_hover_text("give a reason")
                        .clicked()
                    {
                        out.push(UiCommand::Run(RunCommand::Abort {
                            reason: reason.trim().to_owned(),
                        }));
                        close = true;
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
            });
        if close {
            self.abort_dialog = None;
        }
    }
}

/// The run summary the operator acknowledges when a run has ended
/// (HMI.md: Complete / Aborted → acknowledge the run summary → Idle): what
/// was run, how it ended and why, what it found.
fn summary_ui(ui: &mut Ui, run: &crate::run::RunSnapshot) {
    egui::Frame::group(ui.style()).show(ui, |ui| {
        ui.label(RichText::new("Run summary").strong());
        ui.label(format!(
            "Run {}: lot {}, wafer {}, slot {}, recipe {}",
            run.run_id, run.lot, run.wafer, run.slot, run.recipe_id
        ));
        let how = run.exit.map_or("faulted", |e| e.name());
        if run.cause.as_str().is_empty() {
            ui.label(format!("Ended: {how}"));
        } else {
            ui.label(format!("Ended: {how} — {}", run.cause));
        }
        let secs = run.elapsed_ms / 1000;
        ui.label(format!(
            "{} of {} dies inspected, {} defects, in {}:{:02}",
            run.dies_done,
            run.dies_total,
            run.defects,
            secs / 60,
            secs % 60
        ));
        if !run.not_exported.as_str().is_empty() {
            ui.label(format!(
                "⚠ Results recorded but not exported: {}",
                run.not_exported
            ));
        }
    });
}
