//! The results database: schema with versioned migrations, opening (and
//! refusing a file that is not ours), and recovery of runs a crash left
//! open.

use anyhow::{anyhow, bail, Context, Result};
use rusqlite::{params, Connection, OpenFlags};
use std::path::Path;

/// Each entry upgrades the schema by one version (PRAGMA user_version).
const MIGRATIONS: &[&str] = &[
    // 1: lots, wafers, runs, dies, defects.
    "
    CREATE TABLE lots (
        id      INTEGER PRIMARY KEY,
        lot_id  TEXT NOT NULL UNIQUE
    );
    CREATE TABLE wafers (
        id        INTEGER PRIMARY KEY,
        lot       INTEGER NOT NULL REFERENCES lots(id),
        wafer_id  TEXT NOT NULL,
        slot      INTEGER NOT NULL,
        UNIQUE (lot, wafer_id)
    );
    CREATE TABLE runs (
        id              INTEGER PRIMARY KEY,
        wafer           INTEGER NOT NULL REFERENCES wafers(id),
        recipe_id       TEXT NOT NULL,
        recipe_hash     TEXT NOT NULL,
        operator        TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('open', 'closed')),
        started_unix_ms INTEGER NOT NULL,
        ended_unix_ms   INTEGER,
        exit_status     TEXT,
        reason          TEXT,
        diameter_mm     REAL NOT NULL,
        pitch_x_um      REAL NOT NULL,
        pitch_y_um      REAL NOT NULL,
        die_x_um        REAL NOT NULL,
        die_y_um        REAL NOT NULL,
        offset_x_um     REAL NOT NULL,
        offset_y_um     REAL NOT NULL,
        notch           TEXT NOT NULL,
        pixel_um        REAL NOT NULL,
        image_px        INTEGER NOT NULL
    );
    CREATE TABLE dies (
        run           INTEGER NOT NULL REFERENCES runs(id),
        die_index     INTEGER NOT NULL,
        plan_pos      INTEGER NOT NULL,
        col           INTEGER NOT NULL,
        row           INTEGER NOT NULL,
        status        TEXT NOT NULL CHECK (status IN ('pending', 'inspected', 'not inspected')),
        defect_count  INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (run, die_index)
    );
    CREATE TABLE defects (
        run          INTEGER NOT NULL,
        die_index    INTEGER NOT NULL,
        defect_no    INTEGER NOT NULL,
        x_px         REAL NOT NULL,
        y_px         REAL NOT NULL,
        x_um         REAL NOT NULL,
        y_um         REAL NOT NULL,
        width_um     REAL NOT NULL,
        height_um    REAL NOT NULL,
        area_px      INTEGER NOT NULL,
        area_um2     REAL NOT NULL,
        peak_diff    INTEGER NOT NULL,
        mean_diff    REAL NOT NULL,
        polarity     TEXT NOT NULL,
        class_number INTEGER NOT NULL,
        class        TEXT NOT NULL,
        PRIMARY KEY (run, die_index, defect_no),
        FOREIGN KEY (run, die_index) REFERENCES dies(run, die_index)
    );
    CREATE INDEX runs_by_wafer ON runs(wafer);
    ",
    // 2: who owns a run (so recovery closes only runs whose process is
    // dead), a run's export failure, and per-die overflow. `defect_count`
    // becomes the defects listed (= rows in `defects`, what KLARF's
    // NDEFECT counts); `not_listed` the defects found beyond the per-die
    // capacity. Version 1 stored count + overflow in `defect_count` and at
    // most 64 rows, so the split is exact.
    "
    ALTER TABLE runs ADD COLUMN owner_pid INTEGER;
    ALTER TABLE runs ADD COLUMN owner_start TEXT;
    ALTER TABLE runs ADD COLUMN export_error TEXT;
    ALTER TABLE dies ADD COLUMN not_listed INTEGER NOT NULL DEFAULT 0;
    UPDATE dies SET not_listed = defect_count - 64, defect_count = 64 WHERE defect_count > 64;
    ",
    // 3: how each die was inspected (what it was compared with, the lower
    // alignment confidence of its references, whether that was too low to
    // compare, the noise σ and the threshold applied), NULL for dies not
    // inspected and for runs recorded before; and per defect the number of
    // dies a repeater (a defect at the same in-die position on many dies)
    // spans, 0 for none.
    "
    ALTER TABLE dies ADD COLUMN reference_mode TEXT;
    ALTER TABLE dies ADD COLUMN align_confidence REAL;
    ALTER TABLE dies ADD COLUMN alignment_untrusted INTEGER;
    ALTER TABLE dies ADD COLUMN noise_sigma REAL;
    ALTER TABLE dies ADD COLUMN threshold_used REAL;
    ALTER TABLE defects ADD COLUMN repeater INTEGER NOT NULL DEFAULT 0;
    ",
];

/// The schema version this build writes.
pub fn schema_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Tables a database of ours may contain besides those of the migrations
/// (the alarm journal, the users and the audit trail share the file).
const OUR_TABLES: &[&str] = &[
    "lots",
    "wafers",
    "runs",
    "dies",
    "defects",
    "alarm_journal",
    "alarm_state",
    "alarm_definitions",
    "users",
    "audit",
];

/// Opens (creating if new) and migrates the results database. A file that
/// is not SQLite, or is another application's database, is refused and
/// left untouched.
pub fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("{}: cannot open the results database", path.display()))?;
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| anyhow!("{}: not a waferscope database ({e})", path.display()))?;
    if let Some(foreign) = tables
        .iter()
        .find(|t| !OUR_TABLES.contains(&t.as_str()) && !t.starts_with("sqlite_"))
    {
        bail!(
            "{}: not a waferscope database (it has a table \"{foreign}\" of another application); refusing to change it",
            path.display()
        );
    }
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version > schema_version() {
        bail!(
            "{}: database schema version {version} is newer than this program's {}; use a newer waferscope",
            path.display(),
            schema_version()
        );
    }
    conn.pragma_update(None, "journal_mode", "WAL")
        .and_then(|_| conn.pragma_update(None, "synchronous", "NORMAL"))
        .and_then(|_| conn.pragma_update(None, "foreign_keys", "ON"))
        .with_context(|| format!("{}: setting up the database", path.display()))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(sql).with_context(|| {
            format!(
                "{}: migrating the schema to version {}",
                path.display(),
                i + 1
            )
        })?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(conn)
}

/// Refuses a database this process could not write (a read-only file,
/// directory or file system), before SQLite opens it: opened read-only it
/// would fail only at the first write, mid-run, and might leave `-wal` and
/// `-shm` files behind that block later runs.
pub fn ensure_writable(path: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let check = |p: &Path| -> std::io::Result<()> {
        let c = std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        // SAFETY: `c` is a valid NUL-terminated path that outlives the call;
        // access only reads it. Unlike the mode bits, access(2) also
        // reports read-only mounts (EROFS) and immutable files (EPERM), even
        // for root.
        if unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => std::path::PathBuf::from("."),
    };
    if let Err(e) = check(&dir) {
        bail!(
            "{}: the results database's directory {} is not writable ({e}); refusing to start a run that could not be recorded",
            path.display(),
            dir.display()
        );
    }
    if path.exists() {
        if let Err(e) = check(path) {
            bail!(
                "{}: the results database is not writable ({e}); refusing to start a run that could not be recorded",
                path.display()
            );
        }
    }
    Ok(())
}

/// Closes runs a crash left open whose owner process is dead: exit
/// "aborted", reason "interrupted"; dies never reached are marked not
/// inspected. Every recorded defect is kept; a run whose owner still runs
/// is left alone. Also marks dies still pending in runs already closed
/// (a run faulted on a full disk is closed without them, see the writer)
/// as not inspected. Returns the recovered run ids.
pub fn recover(conn: &Connection, now_unix_ms: i64) -> Result<Vec<i64>> {
    let candidates: Vec<(i64, Option<i64>, Option<String>)> = conn
        .prepare("SELECT id, owner_pid, owner_start FROM runs WHERE state = 'open'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let open: Vec<i64> = candidates
        .into_iter()
        .filter(|(id, pid, start)| {
            let alive = super::lock::owner_alive(*pid, start.as_deref());
            if alive {
                tracing::warn!(
                    run = id,
                    pid,
                    "run left open by a process that is still running: not recovered"
                );
            }
            !alive
        })
        .map(|(id, _, _)| id)
        .collect();
    conn.execute(
        "UPDATE dies SET status = 'not inspected'
         WHERE status = 'pending' AND run IN (SELECT id FROM runs WHERE state = 'closed')",
        [],
    )?;
    for id in &open {
        let tx = conn.unchecked_transaction()?;
        tx.execute(
            "UPDATE dies SET status = 'not inspected' WHERE run = ?1 AND status = 'pending'",
            [id],
        )?;
        tx.execute(
            "UPDATE runs SET state = 'closed', exit_status = 'aborted', reason = 'interrupted', ended_unix_ms = ?2
             WHERE id = ?1",
            params![id, now_unix_ms],
        )?;
        tx.commit()?;
        tracing::warn!(
            run = id,
            "recovered a run left open by a crash: closed as aborted (interrupted)"
        );
    }
    Ok(open)
}

/// `PRAGMA integrity_check`: "ok" or what is wrong.
pub fn integrity(conn: &Connection) -> Result<String> {
    Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A database as a version-2 build left it: one run, two dies, one
    /// defect.
    fn version_2(path: &Path) {
        let c = Connection::open(path).unwrap();
        for sql in &MIGRATIONS[..2] {
            c.execute_batch(sql).unwrap();
        }
        c.execute_batch(
            "PRAGMA user_version = 2;
             INSERT INTO lots (id, lot_id) VALUES (1, 'LOT-OLD');
             INSERT INTO wafers (id, lot, wafer_id, slot) VALUES (1, 1, 'W01', 1);
             INSERT INTO runs (id, wafer, recipe_id, recipe_hash, operator, state, started_unix_ms,
                 ended_unix_ms, exit_status, reason, diameter_mm, pitch_x_um, pitch_y_um, die_x_um,
                 die_y_um, offset_x_um, offset_y_um, notch, pixel_um, image_px)
             VALUES (1, 1, 'R', 'h', 'op', 'closed', 1000, 2000, 'complete', '', 200, 8100, 8100,
                 8000, 8000, 0, 0, 'down', 15.625, 512);
             INSERT INTO dies (run, die_index, plan_pos, col, row, status, defect_count, not_listed)
             VALUES (1, 4, 0, 0, 0, 'inspected', 1, 0), (1, 8, 1, 1, 0, 'not inspected', 0, 0);
             INSERT INTO defects (run, die_index, defect_no, x_px, y_px, x_um, y_um, width_um,
                 height_um, area_px, area_um2, peak_diff, mean_diff, polarity, class_number, class)
             VALUES (1, 4, 1, 10, 20, 156.25, 7687.5, 31.25, 31.25, 4, 976.5625, 90, 60, 'bright', 1,
                 'particle');",
        )
        .unwrap();
    }

    #[test]
    fn a_version_2_database_migrates_keeping_its_rows() {
        let d = std::env::temp_dir().join(format!("waferscope-db-v2-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join("old.db");
        version_2(&path);
        let conn = open(&path).unwrap();
        let v: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, 3);
        let e = super::super::query::load_run(&conn, 1).unwrap();
        assert_eq!(e.run.lot, "LOT-OLD");
        let dies: Vec<_> = e
            .dies
            .iter()
            .map(|d| (d.die_index, d.status.as_str(), d.reference_mode.clone()))
            .collect();
        assert_eq!(dies, [(4, "inspected", None), (8, "not inspected", None)]);
        assert_eq!(e.defects.len(), 1);
        assert_eq!(
            (e.defects[0].class.as_str(), e.defects[0].repeater),
            ("particle", 0)
        );
        assert_eq!(integrity(&conn).unwrap(), "ok");
        std::fs::remove_dir_all(d).ok();
    }
}
