//! Who is signed in at the window: the sign-in form (and the first start's
//! "create the administrator"), what the signed-in user may do (each
//! action allowed or refused with the reason the buttons show on hover),
//! and the idle sign-out.

use crate::access::users::SignedIn;
use crate::access::{Action, Actor, Guard, Policy};
use egui::{RichText, Ui};
use std::sync::Arc;
use std::time::Instant;

/// What the signed-in user may do: each action allowed, or the reason it
/// is not (shown on hover of a disabled button). Built at sign-in and
/// sign-out, not every frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Permits {
    refusals: Vec<(Action, String)>,
}

impl Permits {
    pub fn signed_out() -> Self {
        Self {
            refusals: Action::ALL
                .into_iter()
                .map(|a| (a, "sign in first".to_owned()))
                .collect(),
        }
    }

    pub fn for_user(policy: &Policy, user: &SignedIn) -> Self {
        Self {
            refusals: Action::ALL
                .into_iter()
                .filter_map(|a| policy.check(user.role, a).err().map(|why| (a, why)))
                .collect(),
        }
    }

    /// `Err` with the reason shown on a disabled button.
    pub fn check(&self, a: Action) -> Result<(), &str> {
        match self.refusals.iter().find(|(x, _)| *x == a) {
            Some((_, why)) => Err(why),
            None => Ok(()),
        }
    }

    pub fn allows(&self, a: Action) -> bool {
        self.check(a).is_ok()
    }
}

/// A widget added as enabled by `allowed`, with the refusal's reason on
/// hover when it is not.
pub fn add_allowed(
    ui: &mut Ui,
    allowed: Result<(), &str>,
    widget: impl egui::Widget,
) -> egui::Response {
    let r = ui.add_enabled(allowed.is_ok(), widget);
    match allowed {
        Err(why) => r.on_disabled_hover_text(why),
        Ok(()) => r,
    }
}

/// A button enabled only if `action` is permitted; the reason shows on
/// hover when it is not.
pub fn permitted_button(
    ui: &mut Ui,
    permits: &Permits,
    action: Action,
    label: impl Into<egui::WidgetText>,
) -> egui::Response {
    add_allowed(ui, permits.check(action), egui::Button::new(label))
}

pub struct Session {
    pub user: Option<SignedIn>,
    pub permits: Arc<Permits>,
    last_input: Instant,
    name: String,
    password: String,
    repeat: String,
    message: Option<String>,
    /// A scripted window's session (see `start_scripted`).
    scripted: bool,
    /// Someone can sign in (there is a user).
    users_exist: bool,
    /// When the signed-in account was last read (`tick`).
    account_read: Instant,
}

impl Default for Session {
    fn default() -> Self {
        Self {
            user: None,
            permits: Arc::new(Permits::signed_out()),
            last_input: Instant::now(),
            name: String::new(),
            password: String::new(),
            repeat: String::new(),
            message: None,
            scripted: false,
            users_exist: false,
            account_read: Instant::now(),
        }
    }
}

impl Session {
    /// Who the window's commands come from: the signed-in person, or for
    /// a scripted window the console user who started it (no account: the
    /// owner of the station's files, like `waferscope run`).
    pub fn actor(&self) -> Option<Actor> {
        let user = self.user.as_ref()?;
        Some(if self.scripted {
            Actor {
                user: user.name.clone(),
                role: None,
                source: crate::access::Source::Window,
            }
        } else {
            Actor::signed_in(user)
        })
    }

    pub fn sign_in(&mut self, guard: &Guard, name: &str, password: &str) -> Result<(), String> {
        let user = guard.sign_in(name, password)?;
        self.start(guard, user);
        Ok(())
    }

    fn start(&mut self, guard: &Guard, user: SignedIn) {
        self.permits = Arc::new(Permits::for_user(&guard.policy, &user));
        self.user = Some(user);
        self.last_input = Instant::now();
        self.password.clear();
        self.repeat.clear();
        self.message = None;
    }

    /// A scripted window (`--autostart`): an operator session for the
    /// console user who started the program, without a password (they own
    /// the station's files already), written to the trail as such. Never
    /// signed out for idleness: nobody is at the screen by design.
    pub fn start_scripted(&mut self, guard: &Guard, console_user: &str) {
        let user = SignedIn {
            name: console_user.to_owned(),
            role: crate::access::Role::Operator,
        };
        self.permits = Arc::new(Permits::for_user(&guard.policy, &user));
        self.user = Some(user);
        self.scripted = true;
        if let Some(actor) = self.actor() {
            guard.record(
                &actor,
                "sign_in",
                "scripted window (--autostart): no password",
                &Ok(()),
            );
        }
    }

    pub fn sign_out(&mut self, guard: &Guard, why: &str) {
        if let Some(actor) = self.actor() {
            guard.sign_out(&actor, why);
        }
        self.user = None;
        self.scripted = false;
        // The next person at a shared screen types their own name.
        self.name.clear();
        self.permits = Arc::new(Permits::signed_out());
        if why == "idle" {
            self.message = Some("Signed out after a time without input".into());
        }
    }

    /// Signs the user out after the configured idle time (checked before
    /// this frame's input counts: the first event after a long gap, a
    /// window minimised, say, does not keep a session that has expired);
    /// follows the account (disabled: signed out; a new role: its
    /// permissions), read every 2 s.
    pub fn tick(&mut self, ctx: &egui::Context, guard: &Guard) {
        let now = Instant::now();
        if self.user.is_some() && !self.scripted && now - self.last_input >= guard.cfg.idle_sign_out
        {
            self.sign_out(guard, "idle");
        }
        let input = ctx.input(|i| !i.events.is_empty() || i.pointer.is_moving());
        if input {
            self.last_input = now;
        }
        if self.scripted || now - self.account_read < std::time::Duration::from_secs(2) {
            return;
        }
        self.account_read = now;
        let Some(name) = self.user.as_ref().map(|u| u.name.clone()) else {
            return;
        };
        match guard.account(&name) {
            Err(why) => {
                self.sign_out(guard, "account changed");
                self.message = Some(format!("Signed out: {why}"));
            }
            Ok(current) if Some(&current) != self.user.as_ref() => {
                self.permits = Arc::new(Permits::for_user(&guard.policy, &current));
                self.user = Some(current);
            }
            Ok(_) => {}
        }
    }

    /// The sign-in box at the top of the command column: the form when
    /// nobody is signed in, else who is and a Sign out button.
    pub fn ui(&mut self, ui: &mut Ui, guard: &Guard) {
        if let Some(u) = &self.user {
            let who = format!("👤 {} ({})", u.name, u.role);
            let sign_out = ui
                .horizontal(|ui| {
                    ui.label(RichText::new(who).strong());
                    ui.button("Sign out").clicked()
                })
                .inner;
            if sign_out {
                self.sign_out(guard, "by the user");
            }
            return;
        }
        // Once there are users there always are (the last administrator
        // cannot be removed): asked per frame only until then, at a first
        // start.
        if !self.users_exist {
            match guard.has_users() {
                Ok(has) => self.users_exist = has,
                Err(e) => {
                    ui.label(
                        RichText::new(format!("✖ the user table cannot be read: {e:#}")).strong(),
                    );
                    return;
                }
            }
        }
        let first_start = !self.users_exist;
        ui.heading(if first_start {
            "First start: create the administrator"
        } else {
            "Sign in"
        });
        let mut submit = false;
        egui::Grid::new("sign_in").num_columns(2).show(ui, |ui| {
            let l = ui.label("User");
            // Fixed ids: the form changes (first start → sign-in) without
            // taking the focus from the field being typed in.
            ui.add(egui::TextEdit::singleline(&mut self.name).id_salt("sign_in_user"))
                .labelled_by(l.id);
            ui.end_row();
            let l = ui.label("Password");
            let r = ui
                .add(
                    egui::TextEdit::singleline(&mut self.password)
                        .password(true)
                        .id_salt("sign_in_password"),
                )
                .labelled_by(l.id);
            submit |= r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
            ui.end_row();
            if first_start {
                let l = ui.label("Repeat password");
                ui.add(egui::TextEdit::singleline(&mut self.repeat).password(true))
                    .labelled_by(l.id);
                ui.end_row();
            }
        });
        let label = if first_start {
            "Create administrator"
        } else {
            "Sign in"
        };
        if ui.button(label).clicked() || submit {
            let name = self.name.trim().to_owned();
            let password = std::mem::take(&mut self.password);
            let answer = if first_start {
                if password != self.repeat {
                    Err("the two passwords differ".to_owned())
                } else {
                    guard
                        .create_first_administrator(&name, &password)
                        .map(|u| self.start(guard, u))
                }
            } else {
                self.sign_in(guard, &name, &password)
            };
            self.repeat.clear();
            if let Err(why) = answer {
                self.message = Some(why);
            }
        }
        if let Some(m) = &self.message {
            ui.label(RichText::new(format!("✖ {m}")).strong());
        }
    }
}
