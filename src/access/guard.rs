//! The guard every command passes on its way to the station, below the UI:
//! it checks the actor's role against the policy and writes the command,
//! accepted or refused and why, to the audit trail. The window's buttons
//! ask it too (to disable what the signed-in user may not do, with the
//! reason as a tooltip), but a command that reaches the station is checked
//! again here whatever sent it.

use super::audit::{AuditLog, Source};
use super::audit_writer::{AuditWriter, QueuedEntry};
use super::role::{Action, Policy, Role};
use super::users::{LockoutPolicy, SignInError, SignedIn, Users};
use anyhow::Result;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

/// Who asks: a signed-in person at the window, the console, or the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user: String,
    /// `None`: the fab's host (checked by the GEM control state, not by a
    /// role) or the console owner of a headless command (`run`, `serve`:
    /// whoever can start them owns the station's files already).
    pub role: Option<Role>,
    pub source: Source,
}

impl Actor {
    pub fn signed_in(s: &SignedIn) -> Actor {
        Actor {
            user: s.name.clone(),
            role: Some(s.role),
            source: Source::Window,
        }
    }

    /// The fab's host over SECS/GEM.
    pub fn host() -> Actor {
        Actor {
            user: "host".into(),
            role: None,
            source: Source::Host,
        }
    }

    /// The person logged in to the machine who started a headless
    /// command ("console:ana").
    pub fn console() -> Actor {
        Actor {
            user: console_user(),
            role: None,
            source: Source::Cli,
        }
    }

    fn role_text(&self) -> &'static str {
        match (self.role, self.source) {
            (Some(r), _) => r.as_str(),
            (None, Source::Host) => "host",
            (None, _) => "console",
        }
    }
}

/// Who the audit trail says acted at the console: `console:<$USER>`.
pub fn console_user() -> String {
    let login = std::env::var("USER")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "unknown".into());
    format!("console:{login}")
}

/// Sign-in and session settings.
#[derive(Debug, Clone, Copy)]
pub struct AccessConfig {
    pub lockout: LockoutPolicy,
    /// A window left untouched this long signs its user out.
    pub idle_sign_out: Duration,
}

impl Default for AccessConfig {
    fn default() -> Self {
        Self {
            lockout: LockoutPolicy::default(),
            idle_sign_out: Duration::from_secs(15 * 60),
        }
    }
}

pub struct Guard {
    pub policy: Policy,
    pub cfg: AccessConfig,
    /// Writes the trail on a thread of its own (`audit_writer.rs`).
    writer: AuditWriter,
    users: Mutex<Users>,
}

impl Guard {
    pub fn open(db: &Path, policy: Policy, cfg: AccessConfig) -> Result<Guard> {
        let writer = AuditWriter::start(AuditLog::open(db)?)
            .map_err(|e| anyhow::anyhow!("cannot start the audit writer thread: {e}"))?;
        Ok(Guard {
            policy,
            cfg,
            writer,
            users: Mutex::new(Users::open(db)?),
        })
    }

    /// Audit entries that could not be written (each logged as an error).
    pub fn audit_failures(&self) -> u64 {
        self.writer.failures.get()
    }

    /// Waits until every entry recorded so far is in the trail.
    pub fn flush(&self) {
        self.writer.flush()
    }

    /// Runs `f` on the user table (one connection, behind a lock); its
    /// error as the text a refusal shows.
    fn with_users<T>(&self, f: impl FnOnce(&mut Users) -> Result<T>) -> Result<T, String> {
        f(&mut self.users.lock().unwrap_or_else(|e| e.into_inner())).map_err(|e| format!("{e:#}"))
    }

    /// The account `name` as it is now, for a signed-in session to follow
    /// (disabled or removed: `Err` saying so).
    pub fn account(&self, name: &str) -> Result<SignedIn, String> {
        match self.with_users(|u| u.get(name))? {
            None => Err(format!("there is no user {name:?} any more")),
            Some(r) if r.disabled => Err(format!("the account {name:?} is disabled")),
            Some(r) => Ok(SignedIn {
                name: r.name,
                role: r.role,
            }),
        }
    }

    /// Whether `actor` may do `action`, without writing anything (the
    /// window's buttons use the same policy through `ui::session::Permits`).
    pub fn may(&self, actor: &Actor, action: Action) -> Result<(), String> {
        match actor.role {
            Some(role) => self.policy.check(role, action),
            // The host's commands are checked by the GEM layer (ONLINE
            // REMOTE); it may only send what GEM offers it. The console
            // owner runs the headless commands.
            None => Ok(()),
        }
    }

    /// A signed-in person's account as it is now: one disabled (or
    /// removed) since they signed in is refused, and a changed role is the
    /// one checked, not the role they signed in with.
    fn current(&self, actor: &Actor) -> Result<Actor, String> {
        if actor.role.is_none() {
            return Ok(actor.clone());
        }
        let now = self.account(&actor.user)?;
        Ok(Actor {
            role: Some(now.role),
            ..actor.clone()
        })
    }

    /// Checks `actor` may do `action`; a refusal is audited here (with
    /// `what` and `params`) and returned. Accepted, the actor as they are
    /// now (their current role) is returned: the one to record the
    /// command's outcome with ([`Guard::record`]).
    pub fn authorize(
        &self,
        actor: &Actor,
        action: Action,
        what: &str,
        params: &str,
    ) -> Result<Actor, String> {
        let now = match self.current(actor) {
            Ok(now) => now,
            Err(why) => {
                tracing::warn!("{} refused {what}: {why}", actor.user);
                self.record(actor, what, params, &Err(why.clone()));
                return Err(why);
            }
        };
        if let Err(why) = self.may(&now, action) {
            tracing::warn!("{} ({}) refused {what}: {why}", now.user, now.role_text());
            self.record(&now, what, params, &Err(why.clone()));
            return Err(why);
        }
        Ok(now)
    }

    /// Queues a command and its outcome for the audit trail (written on
    /// the audit writer's thread; never waits). One that cannot be written
    /// is logged as an error and counted on the Health panel.
    pub fn record(&self, actor: &Actor, what: &str, params: &str, outcome: &Result<(), String>) {
        self.writer.write(QueuedEntry {
            at_ms: crate::monitor::alarm_engine::unix_ms_now(),
            user: actor.user.clone(),
            role: actor.role_text().to_owned(),
            source: actor.source,
            action: what.to_owned(),
            params: params.to_owned(),
            accepted: outcome.is_ok(),
            reason: outcome.as_ref().err().cloned().unwrap_or_default(),
        });
    }

    /// Checks, runs `act`, and records its outcome: the whole of a command
    /// whose answer is known at once.
    pub fn guarded(
        &self,
        actor: &Actor,
        action: Action,
        what: &str,
        params: &str,
        act: impl FnOnce() -> Result<(), String>,
    ) -> Result<(), String> {
        let now = self.authorize(actor, action, what, params)?;
        let outcome = act();
        self.record(&now, what, params, &outcome);
        outcome
    }

    /// Whether anyone can sign in yet (the window's first start creates
    /// the administrator when not).
    pub fn has_users(&self) -> Result<bool> {
        Ok(!self
            .users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()?)
    }

    /// Signs a person in at the window; every attempt is audited (the
    /// password never is).
    pub fn sign_in(&self, name: &str, password: &str) -> Result<SignedIn, String> {
        let now = crate::monitor::alarm_engine::unix_ms_now();
        let result = self
            .users
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .sign_in(name, password, now, &self.cfg.lockout);
        // A name that is no user's is not written anywhere: people type
        // their password into the name field.
        let known = |n: &str| self.with_users(|u| u.get(n)).ok().flatten().map(|r| r.name);
        let (user, role, outcome) = match &result {
            Ok(s) => (s.name.clone(), s.role.as_str(), Ok(())),
            Err(e) => (
                known(name.trim()).unwrap_or_else(|| {
                    format!("(unknown name, {} characters)", name.trim().chars().count())
                }),
                "",
                Err(e.to_string()),
            ),
        };
        match &outcome {
            Ok(()) => tracing::info!("{user} signed in as {role}"),
            Err(e) => tracing::warn!("sign-in as {user} refused: {e}"),
        }
        self.writer.write(QueuedEntry {
            at_ms: now,
            user,
            role: role.to_owned(),
            source: Source::Window,
            action: "sign_in".into(),
            params: String::new(),
            accepted: outcome.is_ok(),
            reason: outcome.err().unwrap_or_default(),
        });
        result.map_err(|e: SignInError| e.to_string())
    }

    pub fn sign_out(&self, actor: &Actor, why: &str) {
        tracing::info!("{} signed out ({why})", actor.user);
        self.record(actor, "sign_out", why, &Ok(()));
    }

    /// The first start: creates the administrator when there is no user
    /// yet, and signs them in.
    pub fn create_first_administrator(
        &self,
        name: &str,
        password: &str,
    ) -> Result<SignedIn, String> {
        // Checked and added under one lock: two first starts cannot both
        // make an administrator.
        let outcome = self.with_users(|u| {
            if !u.is_empty()? {
                anyhow::bail!("there is already a user: sign in");
            }
            u.add(name, Role::Administrator, password)
        });
        let actor = Actor {
            user: name.trim().to_owned(),
            role: Some(Role::Administrator),
            source: Source::Window,
        };
        self.record(
            &actor,
            "user_add",
            &format!("name={} role=administrator (first start)", name.trim()),
            &outcome,
        );
        outcome?;
        self.sign_in(name, password)
    }

    /// An administrator adds a user (the window's first start and
    /// `waferscope users add` are the other ways in).
    pub fn add_user(
        &self,
        actor: &Actor,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<(), String> {
        let params = format!("name={} role={role}", name.trim());
        self.guarded(actor, Action::UserAdmin, "user_add", &params, || {
            self.with_users(|u| u.add(name, role, password))
        })
    }

    /// An administrator disables (or enables again) a user.
    pub fn set_user_disabled(
        &self,
        actor: &Actor,
        name: &str,
        disabled: bool,
    ) -> Result<(), String> {
        let what = if disabled {
            "user_disable"
        } else {
            "user_enable"
        };
        self.guarded(
            actor,
            Action::UserAdmin,
            what,
            &format!("name={name}"),
            || self.with_users(|u| u.set_disabled(name, disabled)),
        )
    }

    /// An administrator changes a user's role (never the last enabled
    /// administrator's: `Users` refuses it).
    pub fn set_user_role(&self, actor: &Actor, name: &str, role: Role) -> Result<(), String> {
        let params = format!("name={name} role={role}");
        self.guarded(actor, Action::UserAdmin, "user_role", &params, || {
            self.with_users(|u| u.set_role(name, role))
        })
    }

    /// An administrator sets a user's password (also ends a lock-out).
    pub fn set_user_password(
        &self,
        actor: &Actor,
        name: &str,
        password: &str,
    ) -> Result<(), String> {
        self.guarded(
            actor,
            Action::UserAdmin,
            "user_passwd",
            &format!("name={name}"),
            || self.with_users(|u| u.set_password(name, password)),
        )
    }

    /// Every user (no hash: `UserRow` has none), for the Users panel.
    pub fn users(&self) -> Result<Vec<super::users::UserRow>, String> {
        self.with_users(|u| u.list())
    }
}
