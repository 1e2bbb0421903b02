//! The Recipes tab: an engineer edits a recipe file as text and saves it.
//! The station checks the text as a run would load it before it replaces
//! the file, and audits the change with the old and new contents' hashes;
//! anyone else reads the recipe without being able to change it.

use super::command::UiCommand;
use super::session::permitted_button;
use super::view::View;
use crate::access::Action;
use egui::{RichText, Ui};
use std::path::PathBuf;

#[derive(Default)]
pub struct RecipeEditor {
    /// The file open in the editor.
    pub path: Option<PathBuf>,
    /// Its text as edited.
    pub text: String,
    /// Its text as last read or saved (unsaved changes differ).
    saved: String,
    /// The answer to the last save or read (error text marked).
    pub message: Option<Result<String, String>>,
}

impl RecipeEditor {
    /// Reads `path` into the editor (its text, or why it cannot be read).
    pub fn open(&mut self, path: PathBuf) {
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                self.text = text.clone();
                self.saved = text;
                self.message = None;
            }
            Err(e) => {
                self.text.clear();
                self.saved.clear();
                self.message = Some(Err(format!("{}: cannot read it: {e}", path.display())));
            }
        }
        self.path = Some(path);
    }

    /// The station saved the text: it is what the file now holds.
    pub fn saved(&mut self, text: String) {
        self.saved = text;
    }

    /// Closes the file, unsaved edits and all (at sign-out: the next
    /// person does not save someone else's edit under their own name).
    pub fn close(&mut self) {
        *self = Self::default();
    }

    pub fn ui(&mut self, ui: &mut Ui, view: &View, recipes: &[PathBuf], out: &mut Vec<UiCommand>) {
        ui.heading("Recipes");
        let may_edit = view.permits.allows(Action::EditRecipe);
        if !may_edit {
            ui.label(match view.permits.check(Action::EditRecipe) {
                Err(why) => format!("Read only: {why}."),
                Ok(()) => String::new(),
            });
        }
        ui.horizontal_wrapped(|ui| {
            for p in recipes {
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let open = self.path.as_ref() == Some(p);
                if ui.selectable_label(open, format!("Edit {name}")).clicked() && !open {
                    self.open(p.clone());
                }
            }
        });
        let Some(path) = self.path.clone() else {
            ui.label("Choose a recipe.");
            return;
        };
        let changed = self.text != self.saved;
        ui.horizontal(|ui| {
            ui.label(RichText::new(path.display().to_string()).monospace());
            if changed {
                ui.label(RichText::new("(unsaved changes)").strong());
            }
        });
        ui.horizontal(|ui| {
            let save = permitted_button(ui, &view.permits, Action::EditRecipe, "Save recipe");
            if save.clicked() && changed {
                out.push(UiCommand::SaveRecipe {
                    path: path.clone(),
                    opened: self.saved.clone(),
                    text: self.text.clone(),
                });
            }
            if ui
                .add_enabled(changed, egui::Button::new("Revert"))
                .clicked()
            {
                self.text = self.saved.clone();
                self.message = None;
            }
        });
        match &self.message {
            Some(Ok(m)) => {
                ui.label(m);
            }
            Some(Err(e)) => {
                ui.label(RichText::new(format!("✖ {e}")).strong());
            }
            None => {}
        }
        egui::ScrollArea::vertical().show(ui, |ui| {
            let label = ui.label("Recipe text");
            ui.add(
                egui::TextEdit::multiline(&mut self.text)
                    .code_editor()
                    .interactive(may_edit)
                    .desired_width(f32::INFINITY)
                    .desired_rows(30),
            )
            .labelled_by(label.id);
        });
    }
}
