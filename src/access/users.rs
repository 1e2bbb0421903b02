//! The station's users: name, role, password hash, disabled, and the
//! sign-in lockout, in the `users` table of the station's database (the
//! run store's file, opened on its own connection).
//!
//! The password hash never leaves this file: [`UserRow`] has no field for
//! it, and no export reads the table.

use super::password::{check_password_rules, hash_password, verify_password};
use super::role::Role;
use anyhow::{anyhow, bail, Context, Result};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// Names are compared without case (`COLLATE NOCASE`): "Alice" and "alice"
/// are one account, however an operator types it at the sign-in.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY COLLATE NOCASE,
    role TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    failed_attempts INTEGER NOT NULL DEFAULT 0,
    locked_until_ms INTEGER,
    created_ms INTEGER NOT NULL
);
";

/// The longest user name: it is shown in the status strip and the audit
/// trail.
pub const MAX_NAME_CHARS: usize = 32;

/// A user as anyone outside this file sees it: never the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRow {
    pub name: String,
    pub role: Role,
    pub disabled: bool,
    pub failed_attempts: u32,
    pub locked_until_ms: Option<i64>,
    pub created_ms: i64,
}

/// Who is signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedIn {
    pub name: String,
    pub role: Role,
}

/// Why a sign-in was refused.
///
/// A database failure is a variant here, not an outer `Result`: a caller
/// that treats every `Err` as "not signed in" still fails closed, and the
/// operator reads what really went wrong instead of "wrong password".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignInError {
    /// An unknown name or a wrong password: the same answer for both, so a
    /// refusal does not tell which names exist.
    WrongNameOrPassword,
    Disabled,
    Locked {
        until_ms: i64,
    },
    /// The user table could not be read or written (the text names the
    /// file).
    Database(String),
}

impl fmt::Display for SignInError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignInError::WrongNameOrPassword => f.write_str("wrong user name or password"),
            SignInError::Disabled => f.write_str("this account is disabled: ask an administrator"),
            SignInError::Locked { until_ms } => write!(
                f,
                "locked after too many wrong passwords until {} UTC",
                super::utc_time::clock_utc(*until_ms)
            ),
            SignInError::Database(e) => write!(f, "cannot check the sign-in: {e}"),
        }
    }
}

impl std::error::Error for SignInError {}

/// How many wrong passwords in a row lock an account, and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LockoutPolicy {
    pub max_failures: u32,
    pub lock_for: Duration,
}

impl Default for LockoutPolicy {
    /// 5 wrong passwords lock for 15 minutes: enough for typos, too few
    /// for guessing, short enough that a locked-out shift is not stopped
    /// for long.
    fn default() -> Self {
        LockoutPolicy {
            max_failures: 5,
            lock_for: Duration::from_secs(15 * 60),
        }
    }
}

/// `Err` says why `name` cannot be a user name.
pub fn check_name_rules(name: &str) -> Result<(), String> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if name.is_empty() || name.len() > MAX_NAME_CHARS || !ok_chars {
        return Err(format!(
            "user name {name:?}: 1 to {MAX_NAME_CHARS} letters, digits, '.', '_' or '-'"
        ));
    }
    Ok(())
}

/// A hash verified against when the name is unknown, so an unknown name
/// takes as long to refuse as a wrong password (the time would otherwise
/// tell which names exist).
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("waferscope decoy password").unwrap_or_default())
}

pub struct Users {
    conn: Connection,
    path: PathBuf,
}

/// The stored fields a sign-in needs.
struct Credentials {
    name: String,
    role: String,
    password_hash: String,
    disabled: bool,
    locked_until_ms: Option<i64>,
}

impl Users {
    /// Opens the user table in the station database `db` (created, with
    /// the table, if missing). Errors name the file.
    pub fn open(db: &Path) -> Result<Users> {
        // The store's open refuses a file that is not ours and migrates the
        // run tables, so the file is one station database whoever opens it
        // first.
        let conn = crate::store::db::open(db)?;
        conn.busy_timeout(Duration::from_secs(5))
            .and_then(|()| conn.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|()| conn.execute_batch(SCHEMA))
            .with_context(|| format!("{}: cannot set up the user table", db.display()))?;
        Ok(Users {
            conn,
            path: db.to_owned(),
        })
    }

    fn db_error(&self, e: impl fmt::Display) -> anyhow::Error {
        anyhow!("{}: the user table: {e}", self.path.display())
    }

    /// No user yet (the station then asks for a first administrator).
    pub fn is_empty(&self) -> Result<bool> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
            .map_err(|e| self.db_error(e))?;
        Ok(n == 0)
    }

    /// Adds a user. Refuses a bad or taken name and a password that breaks
    /// the rules, saying which.
    pub fn add(&mut self, name: &str, role: Role, password: &str) -> Result<()> {
        check_name_rules(name).map_err(|e| anyhow!(e))?;
        check_password_rules(password).map_err(|e| anyhow!("user {name:?}: {e}"))?;
        let hash = hash_password(password)?;
        let now = crate::monitor::alarm_engine::unix_ms_now();
        match self.conn.execute(
            "INSERT INTO users (name, role, password_hash, created_ms) VALUES (?1, ?2, ?3, ?4)",
            params![name, role.as_str(), hash, now],
        ) {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                bail!("user name {name:?}: a user of that name already exists")
            }
            Err(e) => Err(self.db_error(e)),
        }
    }

    /// Sets a new password; also clears the failed attempts and any lock
    /// (how an administrator lets a locked-out user back in).
    pub fn set_password(&mut self, name: &str, password: &str) -> Result<()> {
        check_password_rules(password).map_err(|e| anyhow!("user {name:?}: {e}"))?;
        let hash = hash_password(password)?;
        let n = self
            .conn
            .execute(
                "UPDATE users SET password_hash = ?2, failed_attempts = 0, locked_until_ms = NULL WHERE name = ?1",
                params![name, hash],
            )
            .map_err(|e| self.db_error(e))?;
        self.found(name, n)
    }

    fn found(&self, name: &str, changed: usize) -> Result<()> {
        if changed == 0 {
            bail!("no user {name:?} (see `waferscope users list`)");
        }
        Ok(())
    }

    /// Disables or enables a user. Refuses to disable the last enabled
    /// administrator: nobody could then administer users.
    pub fn set_disabled(&mut self, name: &str, disabled: bool) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| anyhow!("{}: the user table: {e}", self.path.display()))?;
        let n = tx
            .execute(
                "UPDATE users SET disabled = ?2 WHERE name = ?1",
                params![name, disabled],
            )
            .map_err(|e| anyhow!("{}: the user table: {e}", self.path.display()))?;
        if n == 0 {
            bail!("no user {name:?} (see `waferscope users list`)");
        }
        if administrators_enabled(&tx).map_err(|e| anyhow!("{}: {e}", self.path.display()))? == 0 {
            bail!("user {name:?} is the last enabled administrator: enable or add another administrator first");
        }
        tx.commit()
            .map_err(|e| anyhow!("{}: the user table: {e}", self.path.display()))
    }

    /// Changes a user's role. Refuses to demote the last enabled
    /// administrator.
    pub fn set_role(&mut self, name: &str, role: Role) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| anyhow!("{}: the user table: {e}", self.path.display()))?;
        let n = tx
            .execute(
                "UPDATE users SET role = ?2 WHERE name = ?1",
                params![name, role.as_str()],
            )
            .map_err(|e| anyhow!("{}: the user table: {e}", self.path.display()))?;
        if n == 0 {
            bail!("no user {name:?} (see `waferscope users list`)");
        }
        if administrators_enabled(&tx).map_err(|e| anyhow!("{}: {e}", self.path.display()))? == 0 {
            bail!("user {name:?} is the last enabled administrator: make another user an administrator first");
        }
        tx.commit()
            .map_err(|e| anyhow!("{}: the user table: {e}", self.path.display()))
    }

    /// Every user, by name.
    pub fn list(&self) -> Result<Vec<UserRow>> {
        let mut st = self
            .conn
            .prepare(
                "SELECT name, role, disabled, failed_attempts, locked_until_ms, created_ms FROM users ORDER BY name",
            )
            .map_err(|e| self.db_error(e))?;
        let rows = st
            .query_map([], read_row)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.db_error(e))?;
        rows.into_iter().map(|r| self.finish_row(r)).collect()
    }

    /// One user, if there is one of that name.
    pub fn get(&self, name: &str) -> Result<Option<UserRow>> {
        let row = self
            .conn
            .query_row(
                "SELECT name, role, disabled, failed_attempts, locked_until_ms, created_ms FROM users WHERE name = ?1",
                [name],
                read_row,
            )
            .optional()
            .map_err(|e| self.db_error(e))?;
        row.map(|r| self.finish_row(r)).transpose()
    }

    /// The role column is checked here, not trusted: a row edited to an
    /// unknown role is an error naming it, never a default role.
    fn finish_row(&self, (row, role): (UserRow, String)) -> Result<UserRow> {
        let role = role
            .parse()
            .map_err(|e| self.db_error(format!("user {:?}, field role: {e}", row.name)))?;
        Ok(UserRow { role, ..row })
    }

    pub fn count_administrators_enabled(&self) -> Result<u64> {
        administrators_enabled(&self.conn).map_err(|e| anyhow!("{}: {e}", self.path.display()))
    }

    /// Checks a sign-in at `now_ms`, counting wrong passwords against
    /// `policy`. A disabled account never signs in; a locked one is refused
    /// without looking at the password (so guessing goes on being useless
    /// while it is locked); the wrong password that reaches
    /// `policy.max_failures` locks the account and is answered `Locked`.
    pub fn sign_in(
        &mut self,
        name: &str,
        password: &str,
        now_ms: i64,
        policy: &LockoutPolicy,
    ) -> Result<SignedIn, SignInError> {
        let db = |e: rusqlite::Error| {
            SignInError::Database(format!("{}: the user table: {e}", self.path.display()))
        };
        let found = self
            .conn
            .query_row(
                "SELECT name, role, password_hash, disabled, locked_until_ms FROM users WHERE name = ?1",
                [name],
                |r| {
                    Ok(Credentials {
                        name: r.get(0)?,
                        role: r.get(1)?,
                        password_hash: r.get(2)?,
                        disabled: r.get(3)?,
                        locked_until_ms: r.get(4)?,
                    })
                },
            )
            .optional()
            .map_err(db)?;
        let Some(user) = found else {
            // Same work as a wrong password, same answer.
            verify_password(password, decoy_hash());
            return Err(SignInError::WrongNameOrPassword);
        };
        if user.disabled {
            return Err(SignInError::Disabled);
        }
        if let Some(until_ms) = user.locked_until_ms.filter(|u| *u > now_ms) {
            return Err(SignInError::Locked { until_ms });
        }
        // Hashing is slow on purpose: done before, not inside, the write
        // transaction that the run store shares.
        if verify_password(password, &user.password_hash) {
            let role = user.role.parse::<Role>().map_err(|e| {
                SignInError::Database(format!(
                    "{}: the user table: user {:?}, field role: {e}",
                    self.path.display(),
                    user.name
                ))
            })?;
            self.conn
                .execute(
                    "UPDATE users SET failed_attempts = 0, locked_until_ms = NULL WHERE name = ?1",
                    [&user.name],
                )
                .map_err(db)?;
            return Ok(SignedIn {
                name: user.name,
                role,
            });
        }
        let lock_ms = i64::try_from(policy.lock_for.as_millis()).unwrap_or(i64::MAX);
        let until_ms = now_ms.saturating_add(lock_ms);
        // Counted in one statement, so two terminals guessing at once still
        // lock at the limit.
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let failures: i64 = tx
            .query_row(
                "UPDATE users SET failed_attempts = failed_attempts + 1 WHERE name = ?1 RETURNING failed_attempts",
                [&user.name],
                |r| r.get(0),
            )
            .map_err(db)?;
        let locked = failures >= i64::from(policy.max_failures.max(1));
        if locked {
            tx.execute(
                "UPDATE users SET failed_attempts = 0, locked_until_ms = ?2 WHERE name = ?1",
                params![user.name, until_ms],
            )
            .map_err(db)?;
        }
        tx.commit().map_err(db)?;
        Err(if locked {
            SignInError::Locked { until_ms }
        } else {
            SignInError::WrongNameOrPassword
        })
    }
}

fn administrators_enabled(conn: &Connection) -> rusqlite::Result<u64> {
    conn.query_row(
        "SELECT COUNT(*) FROM users WHERE role = ?1 AND disabled = 0",
        [Role::Administrator.as_str()],
        |r| r.get::<_, i64>(0),
    )
    .map(|n| n as u64)
}

/// A row with its role still as stored (checked by `finish_row`).
fn read_row(r: &rusqlite::Row) -> rusqlite::Result<(UserRow, String)> {
    Ok((
        UserRow {
            name: r.get(0)?,
            role: Role::Operator,
            disabled: r.get(2)?,
            failed_attempts: r.get(3)?,
            locked_until_ms: r.get(4)?,
            created_ms: r.get(5)?,
        },
        r.get(1)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(name: &str) -> (PathBuf, Users) {
        let dir =
            std::env::temp_dir().join(format!("waferscope-users-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("waferscope.db");
        let users = Users::open(&path).unwrap();
        (path, users)
    }

    const PW: &str = "correct horse";

    fn minute_lock() -> LockoutPolicy {
        LockoutPolicy {
            max_failures: 5,
            lock_for: Duration::from_secs(60),
        }
    }

    #[test]
    fn added_users_are_listed_by_name_without_their_hash() {
        let (_, mut u) = db("list");
        assert!(u.is_empty().unwrap());
        u.add("zoe", Role::Operator, PW).unwrap();
        u.add("alice", Role::Administrator, "another pass").unwrap();
        assert!(!u.is_empty().unwrap());
        let list = u.list().unwrap();
        let names: Vec<&str> = list.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["alice", "zoe"]);
        assert_eq!(list[0].role, Role::Administrator);
        assert!(!list[1].disabled);
        let shown = format!("{list:?}");
        assert!(!shown.contains("argon2") && !shown.contains(PW), "{shown}");
        assert_eq!(u.get("ZOE").unwrap().unwrap().name, "zoe");
        assert_eq!(u.get("nobody").unwrap(), None);
        assert_eq!(u.count_administrators_enabled().unwrap(), 1);
    }

    #[test]
    fn a_taken_or_bad_name_or_a_short_password_is_refused_saying_which() {
        let (_, mut u) = db("dup");
        u.add("alice", Role::Engineer, PW).unwrap();
        let e = u.add("Alice", Role::Operator, PW).unwrap_err().to_string();
        assert!(
            e.contains("\"Alice\"") && e.contains("already exists"),
            "{e}"
        );
        for bad in ["", "a b", "ä", "x;DROP", &"n".repeat(33)] {
            let e = u.add(bad, Role::Operator, PW).unwrap_err().to_string();
            assert!(e.starts_with("user name"), "{bad:?}: {e}");
        }
        assert!(u.add(&"n".repeat(32), Role::Operator, PW).is_ok());
        assert!(u.add("a.b_c-9", Role::Operator, PW).is_ok());
        let e = u
            .add("bob", Role::Operator, "short")
            .unwrap_err()
            .to_string();
        assert!(e.contains("too short"), "{e}");
        assert_eq!(u.get("bob").unwrap(), None);
    }

    #[test]
    fn sign_in_right_wrong_and_unknown() {
        let (_, mut u) = db("signin");
        u.add("alice", Role::Engineer, PW).unwrap();
        let p = LockoutPolicy::default();
        assert_eq!(
            u.sign_in("alice", PW, 1000, &p),
            Ok(SignedIn {
                name: "alice".into(),
                role: Role::Engineer
            })
        );
        assert_eq!(
            u.sign_in("alice", "wrong horse", 1000, &p),
            Err(SignInError::WrongNameOrPassword)
        );
        assert_eq!(u.get("alice").unwrap().unwrap().failed_attempts, 1);
        assert_eq!(
            u.sign_in("mallory", PW, 1000, &p),
            Err(SignInError::WrongNameOrPassword)
        );
        // A right password clears the count.
        assert!(u.sign_in("alice", PW, 1000, &p).is_ok());
        assert_eq!(u.get("alice").unwrap().unwrap().failed_attempts, 0);
        assert_eq!(
            SignInError::WrongNameOrPassword.to_string(),
            "wrong user name or password"
        );
    }

    #[test]
    fn a_disabled_account_never_signs_in() {
        let (_, mut u) = db("disabled");
        u.add("admin", Role::Administrator, PW).unwrap();
        u.add("bob", Role::Operator, PW).unwrap();
        u.set_disabled("bob", true).unwrap();
        let p = LockoutPolicy::default();
        assert_eq!(u.sign_in("bob", PW, 0, &p), Err(SignInError::Disabled));
        assert_eq!(
            SignInError::Disabled.to_string(),
            "this account is disabled: ask an administrator"
        );
        u.set_disabled("bob", false).unwrap();
        assert!(u.sign_in("bob", PW, 0, &p).is_ok());
        let e = u.set_disabled("nobody", true).unwrap_err().to_string();
        assert!(e.contains("no user \"nobody\""), "{e}");
    }

    #[test]
    fn five_wrong_passwords_lock_for_the_configured_time() {
        let (_, mut u) = db("lock");
        u.add("alice", Role::Operator, PW).unwrap();
        let p = minute_lock();
        let now = 1_796_018_400_000;
        for _ in 0..4 {
            assert_eq!(
                u.sign_in("alice", "wrong horse", now, &p),
                Err(SignInError::WrongNameOrPassword)
            );
        }
        let until_ms = now + 60_000;
        assert_eq!(
            u.sign_in("alice", "wrong horse", now, &p),
            Err(SignInError::Locked { until_ms })
        );
        assert_eq!(
            SignInError::Locked { until_ms }.to_string(),
            "locked after too many wrong passwords until 06:01:00 UTC"
        );
        let row = u.get("alice").unwrap().unwrap();
        assert_eq!(row.locked_until_ms, Some(until_ms));
        assert_eq!(row.failed_attempts, 0);
        // Locked: even the right password is refused, and not counted.
        assert_eq!(
            u.sign_in("alice", PW, now + 59_000, &p),
            Err(SignInError::Locked { until_ms })
        );
        assert_eq!(u.get("alice").unwrap().unwrap().failed_attempts, 0);
        // Free again after the minute.
        assert!(u.sign_in("alice", PW, now + 61_000, &p).is_ok());
        assert_eq!(u.get("alice").unwrap().unwrap().locked_until_ms, None);
    }

    #[test]
    fn a_new_password_clears_the_lock() {
        let (_, mut u) = db("passwd");
        u.add("alice", Role::Operator, PW).unwrap();
        let p = minute_lock();
        for _ in 0..5 {
            assert!(u.sign_in("alice", "wrong horse", 0, &p).is_err());
        }
        assert!(matches!(
            u.sign_in("alice", PW, 1, &p),
            Err(SignInError::Locked { .. })
        ));
        u.set_password("alice", "battery staple").unwrap();
        assert_eq!(u.get("alice").unwrap().unwrap().locked_until_ms, None);
        assert_eq!(
            u.sign_in("alice", PW, 2, &p),
            Err(SignInError::WrongNameOrPassword)
        );
        assert!(u.sign_in("alice", "battery staple", 3, &p).is_ok());
        assert!(u.set_password("alice", "short").is_err());
        assert!(u.set_password("nobody", "long enough").is_err());
    }

    #[test]
    fn the_last_enabled_administrator_cannot_be_disabled_or_demoted() {
        let (_, mut u) = db("lastadmin");
        u.add("root", Role::Administrator, PW).unwrap();
        let e = u.set_disabled("root", true).unwrap_err().to_string();
        assert!(e.contains("last enabled administrator"), "{e}");
        let e = u.set_role("root", Role::Engineer).unwrap_err().to_string();
        assert!(e.contains("last enabled administrator"), "{e}");
        assert_eq!(u.get("root").unwrap().unwrap().role, Role::Administrator);
        assert!(!u.get("root").unwrap().unwrap().disabled);
        u.add("second", Role::Engineer, PW).unwrap();
        u.set_role("second", Role::Administrator).unwrap();
        u.set_disabled("root", true).unwrap();
        assert_eq!(u.count_administrators_enabled().unwrap(), 1);
    }

    #[test]
    fn a_role_edited_to_nonsense_is_an_error_naming_it() {
        let (path, mut u) = db("badrole");
        u.add("alice", Role::Operator, PW).unwrap();
        Connection::open(&path)
            .unwrap()
            .execute("UPDATE users SET role = 'boss'", [])
            .unwrap();
        let e = u.list().unwrap_err().to_string();
        assert!(e.contains("field role") && e.contains("boss"), "{e}");
        let e = u
            .sign_in("alice", PW, 0, &LockoutPolicy::default())
            .unwrap_err();
        assert!(matches!(e, SignInError::Database(_)), "{e:?}");
    }
}
