//! The alarm journal: an append-only SQLite record of every alarm
//! transition, plus each alarm's current state so that active and
//! acknowledged alarms survive a restart.

use super::alarm_engine::JournalEvent;
use super::alarm_state::{AlarmState, AlarmStatus, EventKind, Shelving};
use anyhow::{bail, Context, Result};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS alarm_journal (
    id          INTEGER PRIMARY KEY,
    at_unix_ms  INTEGER NOT NULL,
    alid        INTEGER NOT NULL,
    event       TEXT NOT NULL,
    state       TEXT NOT NULL,
    shelving    TEXT NOT NULL,
    first_out   INTEGER NOT NULL,
    operator    TEXT,
    value       REAL,
    detail      TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alarm_state (
    alid                 INTEGER PRIMARY KEY,
    state                TEXT NOT NULL,
    shelving             TEXT NOT NULL,
    shelved_until_unix_ms INTEGER,
    first_out            INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS alarm_definitions (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    hash  TEXT NOT NULL
);
";

/// One journal row, as read back.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalRow {
    pub at_unix_ms: i64,
    pub alid: u32,
    pub event: String,
    pub state: String,
    pub operator: Option<String>,
    pub detail: String,
}

pub struct Journal {
    conn: Connection,
    path: PathBuf,
    /// Wall-clock ms at the engine's time zero, to store shelve deadlines.
    epoch_unix_ms: i64,
}

fn shelving_name(s: Shelving) -> &'static str {
    match s {
        Shelving::None => "none",
        Shelving::Timed { .. } => "timed",
        Shelving::OneShot => "one-shot",
    }
}

impl Journal {
    /// Opens (creating if needed) the journal database. A file that is not
    /// an SQLite database is refused, untouched.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)
            .with_context(|| format!("{}: cannot open the alarm journal", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .and_then(|_| conn.execute_batch(SCHEMA))
            .with_context(|| {
                format!(
                    "{}: not a usable SQLite database for the alarm journal",
                    path.display()
                )
            })?;
        Ok(Self {
            conn,
            path: path.to_owned(),
            epoch_unix_ms: super::alarm_engine::unix_ms_now(),
        })
    }

    /// Sets the wall-clock time of the engine's time zero (the monitor's
    /// epoch), so shelve deadlines are stored as wall-clock times.
    pub fn set_epoch_unix_ms(&mut self, ms: i64) {
        self.epoch_unix_ms = ms;
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends events and updates the alarms' persisted state, in one
    /// transaction.
    pub fn record(&mut self, events: &[JournalEvent]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO alarm_journal (at_unix_ms, alid, event, state, shelving, first_out, operator, value, detail)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            let mut upsert = tx.prepare_cached(
                "INSERT INTO alarm_state (alid, state, shelving, shelved_until_unix_ms, first_out)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (alid) DO UPDATE SET state = ?2, shelving = ?3, shelved_until_unix_ms = ?4, first_out = ?5",
            )?;
            for e in events {
                let value = e.value.is_finite().then_some(e.value);
                insert.execute(params![
                    e.at_unix_ms,
                    e.alid,
                    e.kind.name(),
                    e.state.name(),
                    shelving_name(e.shelving),
                    e.first_out,
                    e.operator.as_ref().map(|o| o.as_str()),
                    value,
                    if e.note.as_str().is_empty() {
                        e.detail.to_owned()
                    } else {
                        format!("{}: {}", e.detail, e.note.as_str())
                    }
                ])?;
                if !matches!(
                    e.kind,
                    EventKind::DefinitionsChanged | EventKind::JournalGap
                ) {
                    let until = match e.shelving {
                        Shelving::Timed { until_ns } => {
                            Some(self.epoch_unix_ms + (until_ns / 1_000_000) as i64)
                        }
                        _ => None,
                    };
                    upsert.execute(params![
                        e.alid,
                        e.state.name(),
                        shelving_name(e.shelving),
                        until,
                        e.first_out
                    ])?;
                }
            }
        }
        tx.commit()
            .with_context(|| format!("{}: writing the alarm journal", self.path.display()))
    }

    /// Appends one row that is about the alarm system itself (a journal
    /// gap, the evaluator's death, noted by the journal thread), without
    /// touching any alarm's persisted state: such an alarm is not restored
    /// after a restart, where the evaluator runs again.
    pub fn record_note(&mut self, alid: u32, kind: EventKind, detail: &str) -> Result<()> {
        let state = match kind {
            EventKind::Raised => AlarmState::UnackActive,
            _ => AlarmState::Normal,
        };
        self.conn
            .execute(
                "INSERT INTO alarm_journal (at_unix_ms, alid, event, state, shelving, first_out, operator, value, detail)
                 VALUES (?1, ?2, ?3, ?4, 'none', 0, NULL, NULL, ?5)",
                params![
                    super::alarm_engine::unix_ms_now(),
                    alid,
                    kind.name(),
                    state.name(),
                    detail
                ],
            )
            .with_context(|| format!("{}: writing the alarm journal", self.path.display()))?;
        Ok(())
    }

    /// Persisted statuses, with timed shelves converted to the engine's
    /// clock (`now_ns` is the engine's time now).
    pub fn restore(&self, now_ns: u64) -> Result<Vec<(u32, AlarmStatus)>> {
        let now_ms = super::alarm_engine::unix_ms_now();
        let mut stmt = self.conn.prepare(
            "SELECT alid, state, shelving, shelved_until_unix_ms, first_out FROM alarm_state",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok((
                r.get::<_, u32>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, Option<i64>>(3)?,
                r.get::<_, bool>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (alid, state, shelving, until, first_out) = row?;
            let Some(state) = AlarmState::from_name(&state) else {
                bail!(
                    "{}: alarm {alid} has unknown stored state \"{state}\"",
                    self.path.display()
                );
            };
            let shelving = match (shelving.as_str(), until) {
                ("timed", Some(until)) => Shelving::Timed {
                    until_ns: now_ns + (until - now_ms).max(0) as u64 * 1_000_000,
                },
                ("one-shot", _) => Shelving::OneShot,
                _ => Shelving::None,
            };
            out.push((alid, AlarmStatus::restored(state, shelving, first_out)));
        }
        Ok(out)
    }

    /// Records a change of the alarm definitions (by content hash); true if
    /// they changed since the last start.
    pub fn note_definitions(&mut self, hash: &str) -> Result<bool> {
        let old: Option<String> = self
            .conn
            .query_row("SELECT hash FROM alarm_definitions WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        if old.as_deref() == Some(hash) {
            return Ok(false);
        }
        self.conn.execute(
            "INSERT INTO alarm_definitions (id, hash) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET hash = ?1",
            [hash],
        )?;
        self.record(&[JournalEvent {
            at_unix_ms: super::alarm_engine::unix_ms_now(),
            alid: 0,
            kind: EventKind::DefinitionsChanged,
            state: AlarmState::Normal,
            shelving: Shelving::None,
            first_out: false,
            operator: None,
            value: f64::NAN,
            detail: if old.is_some() {
                "definitions changed"
            } else {
                "first definitions"
            },
            note: Default::default(),
        }])?;
        Ok(true)
    }

    /// The newest `limit` rows, newest first, optionally only one alarm.
    pub fn rows(&self, alid: Option<u32>, limit: usize) -> Result<Vec<JournalRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT at_unix_ms, alid, event, state, operator, detail FROM alarm_journal
             WHERE ?1 IS NULL OR alid = ?1 ORDER BY id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![alid, limit as i64], |r| {
            Ok(JournalRow {
                at_unix_ms: r.get(0)?,
                alid: r.get(1)?,
                event: r.get(2)?,
                state: r.get(3)?,
                operator: r.get(4)?,
                detail: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// FNV-1a of the definitions file's text: a stable content hash without a
/// dependency.
pub fn content_hash(text: &str) -> String {
    content_hash_of(&[text.as_bytes()])
}

/// `content_hash` of `parts` one after the other (a single part hashes as
/// `content_hash` of it).
pub fn content_hash_of(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in parts.iter().flat_map(|p| p.iter()) {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}
