//! The Users tab: an administrator adds users, changes their roles,
//! disables and enables them and sets new passwords (`waferscope users`
//! does the same headless). Everyone else sees the list, read-only, with
//! the reason. No hash is ever shown: the rows the station gives have none.

use super::command::{Secret, UiCommand};
use super::session::permitted_button;
use super::view::View;
use crate::access::users::UserRow;
use crate::access::{Action, Guard, Role};
use egui::{RichText, Ui};

#[derive(Default)]
pub struct UsersPanel {
    /// The users as last read (`None`: to be read at the next frame).
    rows: Option<Result<Vec<UserRow>, String>>,
    name: String,
    role: Option<Role>,
    password: String,
    /// A new password being typed, by user.
    new_password: std::collections::HashMap<String, String>,
    /// The answer to the last change.
    pub message: Option<Result<String, String>>,
}

impl UsersPanel {
    /// Reads the list again at the next frame (after a change).
    pub fn stale(&mut self) {
        self.rows = None;
    }

    /// A user was added: the form is cleared.
    pub fn added(&mut self) {
        self.name.clear();
        self.password.clear();
        self.stale();
    }

    pub fn ui(&mut self, ui: &mut Ui, view: &View, guard: &Guard, out: &mut Vec<UiCommand>) {
        ui.heading("Users");
        let may = view.permits.check(Action::UserAdmin);
        if let Err(why) = may {
            ui.label(format!("Read only: {why}."));
        }
        let rows = self.rows.get_or_insert_with(|| guard.users());
        let rows = match rows {
            Ok(rows) => rows.clone(),
            Err(e) => {
                ui.label(RichText::new(format!("✖ {e}")).strong());
                return;
            }
        };
        egui::Grid::new("users")
            .striped(true)
            .num_columns(5)
            .show(ui, |ui| {
                for h in ["User", "Role", "State", "", ""] {
                    ui.label(RichText::new(h).strong());
                }
                ui.end_row();
                for r in &rows {
                    ui.label(&r.name);
                    let mut role = r.role;
                    ui.add_enabled_ui(may.is_ok(), |ui| {
                        egui::ComboBox::from_id_salt(("role", &r.name))
                            .selected_text(role.as_str())
                            .show_ui(ui, |ui| {
                                for x in Role::ALL {
                                    ui.selectable_value(&mut role, x, x.as_str());
                                }
                            });
                    });
                    if role != r.role {
                        out.push(UiCommand::SetUserRole {
                            name: r.name.clone(),
                            role,
                        });
                    }
                    let locked = r
                        .locked_until_ms
                        .filter(|&t| t > crate::monitor::alarm_engine::unix_ms_now());
                    ui.label(match (r.disabled, locked) {
                        (true, _) => "disabled".to_owned(),
                        (false, Some(t)) => {
                            format!("locked until {} UTC", crate::access::utc_time::clock_utc(t))
                        }
                        (false, None) => "enabled".to_owned(),
                    });
                    let (verb, disable) = if r.disabled {
                        (format!("Enable {}", r.name), false)
                    } else {
                        (format!("Disable {}", r.name), true)
                    };
                    if permitted_button(ui, &view.permits, Action::UserAdmin, verb).clicked() {
                        out.push(UiCommand::SetUserDisabled {
                            name: r.name.clone(),
                            disabled: disable,
                        });
                    }
                    ui.horizontal(|ui| {
                        let field = self.new_password.entry(r.name.clone()).or_default();
                        let l = ui.label(format!("New password for {}", r.name));
                        ui.add_enabled(
                            may.is_ok(),
                            egui::TextEdit::singleline(field)
                                .password(true)
                                .desired_width(120.0),
                        )
                        .labelled_by(l.id);
                        if permitted_button(ui, &view.permits, Action::UserAdmin, "Set").clicked()
                            && !field.is_empty()
                        {
                            out.push(UiCommand::SetUserPassword {
                                name: r.name.clone(),
                                password: Secret(std::mem::take(field)),
                            });
                        }
                    });
                    ui.end_row();
                }
            });
        ui.separator();
        ui.label(RichText::new("Add a user").strong());
        ui.add_enabled_ui(may.is_ok(), |ui| {
            egui::Grid::new("add_user").num_columns(2).show(ui, |ui| {
                let l = ui.label("New user");
                ui.text_edit_singleline(&mut self.name).labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Their role");
                egui::ComboBox::from_id_salt("new_user_role")
                    .selected_text(self.role.map_or("choose…", Role::as_str))
                    .show_ui(ui, |ui| {
                        for x in Role::ALL {
                            ui.selectable_value(&mut self.role, Some(x), x.as_str());
                        }
                    })
                    .response
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Their password");
                ui.add(egui::TextEdit::singleline(&mut self.password).password(true))
                    .labelled_by(l.id);
                ui.end_row();
            });
        });
        let ready =
            !self.name.trim().is_empty() && self.role.is_some() && !self.password.is_empty();
        let add = permitted_button(ui, &view.permits, Action::UserAdmin, "Add user");
        if add.clicked() && ready {
            if let Some(role) = self.role {
                out.push(UiCommand::AddUser {
                    name: self.name.trim().to_owned(),
                    role,
                    password: Secret(self.password.clone()),
                });
            }
        }
        match &self.message {
            Some(Ok(m)) => {
                ui.label(m);
            }
            Some(Err(e)) => {
                ui.label(RichText::new(format!("✖ {e}")).strong());
            }
            None => {}
        }
    }
}
