//! `waferscope users …`: the station's users from its console. Whoever can
//! run this at the station is its administrator (they own the database
//! file anyway); each change, and each refused one, goes to the audit trail
//! as `console:<login name>`.
//!
//! A password is read from standard input, never from an argument (the
//! shell's history and `ps` would show it), and is never written anywhere
//! but as its hash.

use crate::access::audit::{AuditLog, NewEntry, Source};
use crate::access::users::Users;
use crate::access::Role;
use crate::station::data_dir::DataDir;
use anyhow::{anyhow, bail, Result};
use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

/// A change to the users.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserChange {
    /// Add a user; the password comes from standard input.
    Add {
        name: String,
        role: Role,
    },
    /// A new password from standard input (also ends a lockout).
    Passwd {
        name: String,
    },
    Disable {
        name: String,
    },
    Enable {
        name: String,
    },
    Role {
        name: String,
        role: Role,
    },
}

impl UserChange {
    fn name(&self) -> &str {
        match self {
            UserChange::Add { name, .. }
            | UserChange::Passwd { name }
            | UserChange::Disable { name }
            | UserChange::Enable { name }
            | UserChange::Role { name, .. } => name,
        }
    }

    /// The audit trail's action name.
    fn action(&self) -> &'static str {
        match self {
            UserChange::Add { .. } => "user_add",
            UserChange::Passwd { .. } => "user_passwd",
            UserChange::Disable { .. } => "user_disable",
            UserChange::Enable { .. } => "user_enable",
            UserChange::Role { .. } => "user_role",
        }
    }

    fn needs_password(&self) -> bool {
        matches!(self, UserChange::Add { .. } | UserChange::Passwd { .. })
    }
}

/// Who the audit trail says made a console change: `console:<$USER>`.
pub use crate::access::guard::console_user;

/// Applies `change` to the users of the station database `db` and records
/// it (accepted or refused) in the audit trail. `data_dir`: the data
/// directory when `db` is its (created first, as every command does).
pub fn change(db: &Path, data_dir: Option<&DataDir>, change: UserChange) -> Result<()> {
    // Read before anything is opened: a missing password changes nothing.
    let password = if change.needs_password() {
        Some(read_password(&format!("password for {}", change.name()))?)
    } else {
        None
    };
    if let Some(d) = data_dir {
        crate::station::data_dir::report_created(&d.prepare()?);
    }
    let mut users = Users::open(db)?;
    let mut audit = AuditLog::open(db)?;
    let mut params = format!("name={}", change.name());
    let applied = match &change {
        UserChange::Add { name, role } => {
            params += &format!(" role={role}");
            users.add(name, *role, password.as_deref().unwrap_or_default())
        }
        UserChange::Passwd { name } => {
            users.set_password(name, password.as_deref().unwrap_or_default())
        }
        UserChange::Disable { name } => users.set_disabled(name, true),
        UserChange::Enable { name } => users.set_disabled(name, false),
        UserChange::Role { name, role } => {
            params += &format!(" role={role}");
            if let Ok(Some(before)) = users.get(name) {
                params += &format!(" from={}", before.role);
            }
            users.set_role(name, *role)
        }
    };
    let reason = match &applied {
        Ok(()) => String::new(),
        Err(e) => format!("{e:#}"),
    };
    let user = console_user();
    let recorded = audit.append_now(&NewEntry {
        user: &user,
        role: Role::Administrator.as_str(),
        source: Source::Cli,
        action: change.action(),
        params: &params,
        accepted: applied.is_ok(),
        reason: &reason,
    });
    applied?;
    if let Err(e) = recorded {
        bail!(
            "user {:?}: changed, but the change could not be written to the audit trail: {e:#}",
            change.name()
        );
    }
    let done = match &change {
        UserChange::Add { name, role } => format!("user {name} added ({role})"),
        UserChange::Passwd { name } => format!("user {name}: password changed"),
        UserChange::Disable { name } => format!("user {name} disabled"),
        UserChange::Enable { name } => format!("user {name} enabled"),
        UserChange::Role { name, role } => format!("user {name} is now {role}"),
    };
    crate::outln!("{done}")?;
    Ok(())
}

/// `waferscope users list`: name, role, disabled, locked until; never a
/// hash.
pub fn list(db: &Path) -> Result<()> {
    if !db.exists() {
        bail!(
            "{}: no station database (add the first user with `waferscope users add NAME --role administrator`)",
            db.display()
        );
    }
    let users = Users::open(db)?.list()?;
    if users.is_empty() {
        crate::outln!("{}: no users", db.display())?;
        return Ok(());
    }
    let now = crate::monitor::alarm_engine::unix_ms_now();
    crate::outln!(
        "{:<32}  {:<13}  {:<8}  {:<6}  locked until (UTC)",
        "name",
        "role",
        "state",
        "failed"
    )?;
    for u in users {
        let locked = match u.locked_until_ms {
            Some(until) if until > now => crate::access::utc_time::iso_utc(until),
            _ => "-".into(),
        };
        crate::outln!(
            "{:<32}  {:<13}  {:<8}  {:<6}  {locked}",
            u.name,
            u.role.as_str(),
            if u.disabled { "disabled" } else { "enabled" },
            u.failed_attempts,
        )?;
    }
    Ok(())
}

/// One line of standard input, without its line end (spaces are kept: they
/// may be part of the password). At a terminal: a prompt on stderr and the
/// typing not echoed.
pub fn read_password(prompt: &str) -> Result<String> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let mut line = String::new();
    let read = if tty {
        let mut err = std::io::stderr().lock();
        // A prompt that cannot be shown is no reason not to read.
        let _ = write!(err, "{prompt} (not shown): ").and_then(|()| err.flush());
        let echo_off = EchoOff::new();
        let r = stdin.lock().read_line(&mut line);
        drop(echo_off);
        let _ = writeln!(err);
        r
    } else {
        stdin.lock().read_line(&mut line)
    };
    read.map_err(|e| anyhow!("cannot read the password from standard input: {e}"))?;
    if line.is_empty() {
        bail!("no password on standard input (type it, or pipe one line)");
    }
    let line = line.strip_suffix('\n').unwrap_or(&line);
    let line = line.strip_suffix('\r').unwrap_or(line);
    Ok(line.to_owned())
}

/// Turns the terminal's echo off until dropped.
struct EchoOff {
    saved: Option<libc::termios>,
}

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: `termios` is plain data; tcgetattr fills it for fd 0 and
        // tcsetattr only reads it. On failure (not a terminal) nothing is
        // changed and nothing is restored.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut t) != 0 {
                return EchoOff { saved: None };
            }
            let saved = t;
            t.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &t) != 0 {
                return EchoOff { saved: None };
            }
            EchoOff { saved: Some(saved) }
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(t) = &self.saved {
            // SAFETY: restores the settings read in `new` on the same fd.
            unsafe {
                libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, t);
            }
        }
    }
}
