//! The audit trail: who did what, from where, when, and whether it was
//! allowed; append-only and hash-chained, in the `audit` table of the
//! station's database.
//!
//! Each entry stores the SHA-256 of its own contents and of the entry
//! before it (`prev_hash`), so editing an entry, or deleting one from the
//! middle, breaks the chain where it happened and [`AuditLog::verify`]
//! names that entry. Ids are given densely by [`AuditLog::append`] (the
//! last id + 1), so a gap is a deletion. SQLite triggers refuse UPDATE and
//! DELETE through a normal connection; they are a guard against mistakes,
//! not the proof (anyone with the file can drop them): the chain is.
//!
//! What the chain cannot show: that its newest entries were cut off, or
//! that the whole chain was recomputed by someone who rewrote it. Against
//! that, keep the count and newest hash `waferscope audit --verify` prints
//! somewhere else.
//!
//! Never put a password, or a hash of one, in an entry: callers build
//! `params` without them (`name=alice role=engineer`), because the trail is
//! exported and read by people who may not see passwords.

use anyhow::{anyhow, Context, Result};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at_ms INTEGER NOT NULL,
    user TEXT NOT NULL,
    role TEXT NOT NULL,
    source TEXT NOT NULL,
    action TEXT NOT NULL,
    params TEXT NOT NULL,
    accepted INTEGER NOT NULL,
    reason TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
";

/// The `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where a request came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// The operator window.
    Window,
    /// A `waferscope` command at the station's console.
    Cli,
    /// The factory host (SECS/GEM).
    Host,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Window => "window",
            Source::Cli => "cli",
            Source::Host => "host",
        }
    }
}

/// An entry to append. `params` and `reason` never contain a password.
#[derive(Clone, Copy, Debug)]
pub struct NewEntry<'a> {
    pub user: &'a str,
    pub role: &'a str,
    pub source: Source,
    pub action: &'a str,
    pub params: &'a str,
    pub accepted: bool,
    pub reason: &'a str,
}

/// An entry as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: i64,
    pub at_ms: i64,
    pub user: String,
    pub role: String,
    pub source: String,
    pub action: String,
    pub params: String,
    pub accepted: bool,
    pub reason: String,
    pub prev_hash: String,
    pub hash: String,
}

/// What [`AuditLog::verify`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Entries read (up to and including the first broken one).
    pub entries: u64,
    /// The newest entry's hash when the chain is intact (to keep elsewhere:
    /// it pins everything up to it).
    pub head_hash: Option<String>,
    pub first_broken: Option<BrokenEntry>,
}

/// The first entry at which the chain does not hold, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BrokenEntry {
    pub id: i64,
    pub why: String,
}

/// The stored fields exactly as they are hashed (`accepted` as its stored
/// integer, so an edit from 1 to 2 is not hidden by reading it as `true`).
struct Stored {
    id: i64,
    at_ms: i64,
    user: String,
    role: String,
    source: String,
    action: String,
    params: String,
    accepted: i64,
    reason: String,
    prev_hash: String,
    hash: String,
}

impl Stored {
    fn read(r: &rusqlite::Row) -> rusqlite::Result<Stored> {
        Ok(Stored {
            id: r.get(0)?,
            at_ms: r.get(1)?,
            user: r.get(2)?,
            role: r.get(3)?,
            source: r.get(4)?,
            action: r.get(5)?,
            params: r.get(6)?,
            accepted: r.get(7)?,
            reason: r.get(8)?,
            prev_hash: r.get(9)?,
            hash: r.get(10)?,
        })
    }

    fn computed_hash(&self) -> String {
        entry_hash(
            &self.prev_hash,
            self.id,
            self.at_ms,
            [
                &self.user,
                &self.role,
                &self.source,
                &self.action,
                &self.params,
            ],
            self.accepted,
            &self.reason,
        )
    }

    fn into_entry(self) -> AuditEntry {
        AuditEntry {
            id: self.id,
            at_ms: self.at_ms,
            user: self.user,
            role: self.role,
            source: self.source,
            action: self.action,
            params: self.params,
            accepted: self.accepted != 0,
            reason: self.reason,
            prev_hash: self.prev_hash,
            hash: self.hash,
        }
    }
}

const COLUMNS: &str =
    "id, at_ms, user, role, source, action, params, accepted, reason, prev_hash, hash";

/// Lower-case hex SHA-256 of an unambiguous encoding of the entry: a
/// version tag, then each field as its byte length (8 bytes, big-endian)
/// and its bytes, so "ab"+"c" and "a"+"bc" differ. Numbers are hashed as
/// their decimal text.
fn entry_hash(
    prev_hash: &str,
    id: i64,
    at_ms: i64,
    [user, role, source, action, params]: [&str; 5],
    accepted: i64,
    reason: &str,
) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(b"waferscope audit v1");
    field(prev_hash.as_bytes());
    field(id.to_string().as_bytes());
    field(at_ms.to_string().as_bytes());
    for text in [user, role, source, action, params] {
        field(text.as_bytes());
    }
    field(accepted.to_string().as_bytes());
    field(reason.as_bytes());
    let digest = h.finalize();
    let mut hex = String::with_capacity(64);
    for b in digest {
        let _ = write!(hex, "{b:02x}");
    }
    hex
}

pub struct AuditLog {
    conn: Connection,
    path: PathBuf,
}

impl AuditLog {
    /// Opens the audit trail in the station database `db` (created, with
    /// the table and its triggers, if missing). Errors name the file.
    pub fn open(db: &Path) -> Result<AuditLog> {
        let conn = crate::store::db::open(db)?;
        // FULL on this connection: an entry is on disk when `append`
        // returns (the store's NORMAL may lose the newest commits to a
        // power cut; a command must not happen without its record).
        conn.busy_timeout(Duration::from_secs(5))
            .and_then(|()| conn.pragma_update(None, "journal_mode", "WAL"))
            .and_then(|()| conn.pragma_update(None, "synchronous", "FULL"))
            .and_then(|()| conn.execute_batch(SCHEMA))
            .with_context(|| format!("{}: cannot set up the audit trail", db.display()))?;
        Ok(AuditLog {
            conn,
            path: db.to_owned(),
        })
    }

    fn db_error(&self, e: impl std::fmt::Display) -> anyhow::Error {
        anyhow!("{}: the audit trail: {e}", self.path.display())
    }

    /// Appends `e` at `at_ms` (Unix ms, UTC); returns its id. The newest
    /// entry is read and the new one written in one IMMEDIATE transaction,
    /// so two writers cannot both chain onto the same entry.
    pub fn append(&mut self, e: &NewEntry, at_ms: i64) -> Result<i64> {
        let path = self.path.clone();
        let err = |e: rusqlite::Error| anyhow!("{}: the audit trail: {e}", path.display());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(err)?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(err)?;
        let (id, prev_hash) = match last {
            Some((id, hash)) => (id + 1, hash),
            None => (1, GENESIS_HASH.to_owned()),
        };
        let accepted = i64::from(e.accepted);
        let source = e.source.as_str();
        let hash = entry_hash(
            &prev_hash,
            id,
            at_ms,
            [e.user, e.role, source, e.action, e.params],
            accepted,
            e.reason,
        );
        tx.execute(
            &format!("INSERT INTO audit ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)"),
            params![
                id, at_ms, e.user, e.role, source, e.action, e.params, accepted, e.reason,
                prev_hash, hash
            ],
        )
        .map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(id)
    }

    /// [`append`](Self::append) at the wall clock's time.
    pub fn append_now(&mut self, e: &NewEntry) -> Result<i64> {
        self.append(e, crate::monitor::alarm_engine::unix_ms_now())
    }

    /// Entries at or after `since_ms` (all if `None`), oldest first.
    pub fn list(&self, since_ms: Option<i64>) -> Result<Vec<AuditEntry>> {
        let mut st = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM audit WHERE at_ms >= ?1 ORDER BY id"
            ))
            .map_err(|e| self.db_error(e))?;
        let rows = st
            .query_map([since_ms.unwrap_or(i64::MIN)], Stored::read)
            .and_then(|rows| rows.collect::<rusqlite::Result<Vec<_>>>())
            .map_err(|e| self.db_error(e))?;
        Ok(rows.into_iter().map(Stored::into_entry).collect())
    }

    /// Walks every entry in id order and reports the first that breaks the
    /// chain: a missing id (deleted), contents that do not match their hash
    /// (edited), or an entry that does not follow the one before it (that
    /// one was edited and re-hashed). An error is only a database that
    /// cannot be read at all.
    pub fn verify(&self) -> Result<VerifyReport> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM audit ORDER BY id"))
            .map_err(|e| self.db_error(e))?;
        let mut rows = st.query([]).map_err(|e| self.db_error(e))?;
        let mut entries = 0u64;
        let mut prev_hash = GENESIS_HASH.to_owned();
        let mut expected_id = 1i64;
        let broken = |id: i64, why: String, entries: u64| VerifyReport {
            entries,
            head_hash: None,
            first_broken: Some(BrokenEntry {
                id,
                why: format!("entry {id}: {why}"),
            }),
        };
        while let Some(row) = rows.next().map_err(|e| self.db_error(e))? {
            entries += 1;
            let stored = match Stored::read(row) {
                Ok(s) => s,
                Err(e) => {
                    // A field of the wrong type (text where a number is):
                    // edited outside the station.
                    let id = row.get::<_, i64>(0).unwrap_or(expected_id);
                    return Ok(broken(
                        id,
                        format!("cannot be read ({e}) (edited)"),
                        entries,
                    ));
                }
            };
            let id = stored.id;
            if id != expected_id {
                let missing = if id == expected_id + 1 {
                    format!("entry {expected_id} is missing (deleted)")
                } else if id > expected_id {
                    format!("entries {expected_id} to {} are missing (deleted)", id - 1)
                } else {
                    format!("its id should be {expected_id} (renumbered)")
                };
                return Ok(broken(id, missing, entries));
            }
            if stored.computed_hash() != stored.hash {
                return Ok(broken(
                    id,
                    "its contents do not match its hash (edited)".into(),
                    entries,
                ));
            }
            if stored.prev_hash != prev_hash {
                let why = if id == 1 {
                    "it does not start the chain (entries before it were removed, or it was rewritten)".to_owned()
                } else {
                    format!(
                        "it does not follow entry {} (entry {} was edited and re-hashed, or this one was rewritten)",
                        id - 1,
                        id - 1
                    )
                };
                return Ok(broken(id, why, entries));
            }
            prev_hash = stored.hash;
            expected_id = id + 1;
        }
        Ok(VerifyReport {
            entries,
            head_hash: (entries > 0).then_some(prev_hash),
            first_broken: None,
        })
    }

    /// Writes the entries at or after `since_ms` as CSV (RFC 4180: a header
    /// row, fields with a comma, quote or line break quoted, quotes
    /// doubled; CRLF line ends), times as UTC ISO 8601 with milliseconds.
    /// The hashes are included so the chain can be checked from the export.
    pub fn write_csv(&self, since_ms: Option<i64>, out: &mut impl std::io::Write) -> Result<()> {
        let mut text = String::from(
            "id,at_utc,user,role,source,action,accepted,params,reason,prev_hash,hash\r\n",
        );
        for e in self.list(since_ms)? {
            let at = super::utc_time::iso_utc_ms(e.at_ms);
            let fields = [
                e.id.to_string(),
                at,
                e.user,
                e.role,
                e.source,
                e.action,
                if e.accepted { "accepted" } else { "refused" }.to_owned(),
                e.params,
                e.reason,
                e.prev_hash,
                e.hash,
            ];
            let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
            text += &line.join(",");
            text += "\r\n";
        }
        out.write_all(text.as_bytes())
            .map_err(|e| anyhow!("cannot write the audit trail's CSV: {e}"))
    }
}

/// One RFC 4180 field.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(name: &str) -> (PathBuf, AuditLog) {
        let dir =
            std::env::temp_dir().join(format!("waferscope-audit-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("waferscope.db");
        let log = AuditLog::open(&path).unwrap();
        (path, log)
    }

    fn entry(params: &str) -> NewEntry<'_> {
        NewEntry {
            user: "alice",
            role: "engineer",
            source: Source::Window,
            action: "edit_recipe",
            params,
            accepted: true,
            reason: "",
        }
    }

    fn five(log: &mut AuditLog) {
        for i in 1..=5 {
            let id = log
                .append(&entry(&format!("recipe=r{i}")), 1_796_018_400_000 + i)
                .unwrap();
            assert_eq!(id, i);
        }
    }

    /// A connection without the triggers, as someone with the file has.
    fn attacker(path: &Path) -> Connection {
        let c = Connection::open(path).unwrap();
        c.execute_batch("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;")
            .unwrap();
        c
    }

    #[test]
    fn a_chain_of_five_verifies() {
        let (_, mut log) = db("five");
        assert_eq!(log.verify().unwrap().entries, 0);
        five(&mut log);
        let report = log.verify().unwrap();
        assert_eq!(report.entries, 5);
        assert_eq!(report.first_broken, None);
        let all = log.list(None).unwrap();
        assert_eq!(all.len(), 5);
        assert_eq!(all[0].prev_hash, GENESIS_HASH);
        assert_eq!(all[1].prev_hash, all[0].hash);
        assert_eq!(report.head_hash.as_deref(), Some(all[4].hash.as_str()));
        assert_eq!(all[2].source, "window");
        assert_eq!(log.list(Some(1_796_018_400_004)).unwrap().len(), 2);
    }

    #[test]
    fn the_encoding_is_unambiguous() {
        let a = entry_hash(GENESIS_HASH, 1, 0, ["ab", "c", "", "", ""], 1, "");
        let b = entry_hash(GENESIS_HASH, 1, 0, ["a", "bc", "", "", ""], 1, "");
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn an_edited_entry_is_named() {
        let (path, mut log) = db("edited");
        five(&mut log);
        attacker(&path)
            .execute("UPDATE audit SET params = 'recipe=evil' WHERE id = 3", [])
            .unwrap();
        let b = log.verify().unwrap().first_broken.unwrap();
        assert_eq!(b.id, 3);
        assert_eq!(
            b.why,
            "entry 3: its contents do not match its hash (edited)"
        );
    }

    #[test]
    fn an_accepted_flag_edited_to_another_true_value_is_seen() {
        let (path, mut log) = db("accepted");
        five(&mut log);
        attacker(&path)
            .execute("UPDATE audit SET accepted = 2 WHERE id = 2", [])
            .unwrap();
        assert_eq!(log.verify().unwrap().first_broken.unwrap().id, 2);
    }

    #[test]
    fn an_edited_and_rehashed_entry_breaks_the_next_link() {
        let (path, mut log) = db("rehashed");
        five(&mut log);
        let e = &log.list(None).unwrap()[1];
        let forged = entry_hash(
            &e.prev_hash,
            2,
            e.at_ms,
            [&e.user, &e.role, &e.source, &e.action, "recipe=evil"],
            1,
            &e.reason,
        );
        attacker(&path)
            .execute(
                "UPDATE audit SET params = 'recipe=evil', hash = ?1 WHERE id = 2",
                [forged],
            )
            .unwrap();
        let b = log.verify().unwrap().first_broken.unwrap();
        assert_eq!(b.id, 3);
        assert!(
            b.why.starts_with("entry 3: it does not follow entry 2"),
            "{}",
            b.why
        );
    }

    #[test]
    fn a_deleted_entry_is_named_by_the_next() {
        let (path, mut log) = db("deleted");
        five(&mut log);
        attacker(&path)
            .execute("DELETE FROM audit WHERE id = 3", [])
            .unwrap();
        let report = log.verify().unwrap();
        let b = report.first_broken.unwrap();
        assert_eq!(b.id, 4);
        assert_eq!(b.why, "entry 4: entry 3 is missing (deleted)");
        // The first one too.
        attacker_again(&path, "DELETE FROM audit WHERE id = 1");
        let b = log.verify().unwrap().first_broken.unwrap();
        assert_eq!(b.why, "entry 2: entry 1 is missing (deleted)");
    }

    fn attacker_again(path: &Path, sql: &str) {
        Connection::open(path).unwrap().execute(sql, []).unwrap();
    }

    #[test]
    fn the_triggers_refuse_update_and_delete() {
        let (path, mut log) = db("triggers");
        five(&mut log);
        let c = Connection::open(&path).unwrap();
        for sql in [
            "UPDATE audit SET params = 'x' WHERE id = 1",
            "DELETE FROM audit WHERE id = 5",
        ] {
            let e = c.execute(sql, []).unwrap_err().to_string();
            assert!(e.contains("the audit trail is append-only"), "{sql}: {e}");
        }
        assert!(log.verify().unwrap().first_broken.is_none());
        // Reopening keeps the triggers and the chain going.
        drop(log);
        let mut log = AuditLog::open(&path).unwrap();
        assert_eq!(log.append(&entry("recipe=r6"), 7).unwrap(), 6);
        assert_eq!(log.verify().unwrap().entries, 6);
    }

    #[test]
    fn csv_quotes_what_needs_it() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        let (_, mut log) = db("csv");
        log.append(
            &NewEntry {
                reason: "an operator may not shelve alarms (engineer, administrator may)",
                accepted: false,
                source: Source::Host,
                ..entry("alid=1094, \"note\"")
            },
            1_796_018_400_000,
        )
        .unwrap();
        let mut out = Vec::new();
        log.write_csv(None, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "id,at_utc,user,role,source,action,accepted,params,reason,prev_hash,hash"
        );
        assert!(
            lines[1].starts_with(
                "1,2026-11-30T06:00:00.000Z,alice,engineer,host,edit_recipe,refused,\"alid=1094, \"\"note\"\"\",\"an operator may not shelve alarms (engineer, administrator may)\",0000"
            ),
            "{}",
            lines[1]
        );
        assert_eq!(lines[2], "");
        let mut out = Vec::new();
        log.write_csv(Some(1_796_018_400_001), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap().lines().count(), 1);
    }
}
