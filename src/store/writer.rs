//! `SqliteStore`: the run record on disk. A writer thread owns the
//! connection and commits whatever has queued up in one transaction, with
//! cached prepared statements, so the run engine never waits on the disk
//! for a die, and a crash loses at most the batch in flight.
//!
//! Nothing is lost silently: a batch that fails to commit (disk full, I/O
//! error, database locked) is recorded as the store's failure, which the
//! next `record_die` and `confirm` return, so the engine faults the run
//! with the reason instead of declaring it complete. Every batch committed
//! before it stays committed.

use super::db;
use super::export_retry::{ExportRetry, Waiting};
use super::lock::StationLock;
use super::record::{DefectPosition, ExitStatus, RepeaterMark, RunStart, RunStore};
use crate::monitor::alarm_engine::unix_ms_now;
use crate::monitor::SoftwareConditions;
use crate::pipeline::DieResult;
use anyhow::{anyhow, Context, Result};
use crossbeam_channel::{bounded, Receiver, Sender};
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

type Reply<T> = flume::Sender<Result<T, String>>;

/// How often a KLARF that could not be written is tried again by default.
pub const DEFAULT_EXPORT_RETRY: Duration = Duration::from_secs(3);

enum Msg {
    Begin(Box<RunStart>, Reply<u64>),
    Die(u64, Box<DieResult>),
    NotInspected(u64, Vec<u32>),
    End(u64, ExitStatus, String, i64, Reply<()>),
    /// The run's export failure, or `None` once nothing failed.
    ExportError(u64, Option<String>, Reply<()>),
    Repeaters(u64, Vec<RepeaterMark>, Reply<()>),
    Flush(Reply<()>),
    MaxPages(u64, Reply<u64>),
}

/// What the writer thread tells the store's users without being asked.
#[derive(Debug, Default)]
pub struct Confirmations {
    /// The first commit failure since the current run began.
    failure: Mutex<Option<String>>,
    /// (run, die index) of every die result committed, for runs begun in
    /// this process (cleared when a new run begins).
    committed: Mutex<Vec<(u64, u32)>>,
}

impl Confirmations {
    pub fn failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Die indices of `run` whose results are committed.
    pub fn committed_dies(&self, run: u64) -> Vec<u32> {
        self.committed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|c| c.0 == run)
            .map(|c| c.1)
            .collect()
    }
}

pub struct SqliteStore {
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
    confirmations: Arc<Confirmations>,
    /// One station per database: held until the store is dropped.
    _lock: StationLock,
    /// Runs recovered (closed as interrupted) when the store opened.
    pub recovered: Vec<i64>,
    /// Where each finished run's KLARF 1.2 and 1.8 go, if anywhere.
    pub klarf_dir: Option<PathBuf>,
    /// Where the "KLARF export failing" condition is set while a run's
    /// KLARF waits to be written again (`None`: no alarm).
    pub software: Option<Arc<SoftwareConditions>>,
    /// How often a KLARF that could not be written is tried again.
    pub export_retry_every: Duration,
    /// Started at the first export to retry.
    export_retry: Option<ExportRetry>,
}

impl SqliteStore {
    /// Refuses a read-only database and one another station holds; opens
    /// it, recovers runs whose owner died, and starts the writer thread.
    pub fn open(path: &Path) -> Result<Self> {
        db::ensure_writable(path)?;
        // A refused file (another application's database, a newer schema)
        // is left as it was: no lock file of ours beside it either.
        let lock_was_there = super::lock::lock_path(path).exists();
        let lock = super::lock::acquire(path)?;
        let refuse = |lock: StationLock, why: anyhow::Error| -> anyhow::Error {
            if !lock_was_there {
                if let Err(e) = std::fs::remove_file(lock.path()) {
                    tracing::warn!(
                        "{}: cannot remove the station lock: {e}",
                        lock.path().display()
                    );
                }
            }
            why
        };
        let conn = match db::open(path) {
            Ok(conn) => conn,
            Err(why) => return Err(refuse(lock, why)),
        };
        if conn
            .is_readonly(rusqlite::DatabaseName::Main)
            .unwrap_or(true)
        {
            return Err(refuse(
                lock,
                anyhow!(
                    "{}: the results database opened read-only; refusing to start a run that could not be recorded",
                    path.display()
                ),
            ));
        }
        let recovered = db::recover(&conn, unix_ms_now())
            .with_context(|| format!("{}: recovering interrupted runs", path.display()))?;
        let (tx, rx) = bounded::<Msg>(4096);
        let p = path.to_owned();
        let confirmations = Arc::new(Confirmations::default());
        let c = confirmations.clone();
        // Watched: a writer that dies or hangs shows on the Health panel;
        // a batch taking longer than this is a stall (disk or lock trouble).
        let (thread, _health) = crate::hot::liveness::spawn_watched(
            "results-db",
            std::time::Duration::from_secs(30),
            move |health| writer(conn, rx, &p, &c, health),
        )
        .context("starting the database writer")?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            path: path.to_owned(),
            confirmations,
            _lock: lock,
            recovered,
            klarf_dir: None,
            software: None,
            export_retry_every: DEFAULT_EXPORT_RETRY,
            export_retry: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the writer has confirmed (commits) or reported (a failure).
    pub fn confirmations(&self) -> Arc<Confirmations> {
        self.confirmations.clone()
    }

    /// Caps the database at `pages` pages (SQLite `max_page_count`) for
    /// this connection: a quota, and how tests make the disk "full".
    /// Returns the cap in force.
    pub fn limit_pages(&self, pages: u64) -> Result<u64> {
        self.ask(|r| Msg::MaxPages(pages, r))
    }

    fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Msg) -> Result<T> {
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| anyhow!("the results database is closed"))?;
        ask_writer(tx, &self.path, make)
    }

    /// Waits until everything sent so far is committed.
    pub fn flush(&self) -> Result<()> {
        self.ask(Msg::Flush)
    }

    /// The failure the writer reported ("disk full (…) writing results to
    /// <db>": what went wrong first, for displays that cut long lines).
    fn check(&self) -> Result<()> {
        match self.confirmations.failure() {
            Some(why) => Err(anyhow!("{why}")),
            None => Ok(()),
        }
    }

    fn send(&self, m: Msg) -> Result<()> {
        self.tx
            .as_ref()
            .ok_or_else(|| anyhow!("the results database is closed"))?
            .send(m)
            .map_err(|_| anyhow!("{}: the database writer has stopped", self.path.display()))
    }
}

/// Sends a request to the writer thread and waits for its answer.
fn ask_writer<T>(
    writer: &Sender<Msg>,
    path: &Path,
    make: impl FnOnce(Reply<T>) -> Msg,
) -> Result<T> {
    let (tx, rx) = flume::bounded(1);
    writer
        .send(make(tx))
        .map_err(|_| anyhow!("{}: the database writer has stopped", path.display()))?;
    rx.recv()
        .map_err(|_| anyhow!("{}: the database writer has stopped", path.display()))?
        .map_err(|e| anyhow!("{}: {e}", path.display()))
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        // The retry thread holds a line to the writer: it ends first.
        drop(self.export_retry.take());
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            // The writer answers every request before it ends; a panic
            // there is a bug to see in the log, not to swallow.
            if let Err(why) = crate::hot::liveness::join_named("results-db", t) {
                tracing::error!("{}: {why}", self.path.display());
            }
        }
    }
}

impl RunStore for SqliteStore {
    fn begin(&mut self, start: &RunStart) -> Result<u64> {
        self.ask(|r| Msg::Begin(Box::new(start.clone()), r))
    }
    fn record_die(&mut self, run: u64, result: &DieResult) -> Result<()> {
        // A result is only worth queueing behind a commit that worked: the
        // first failure faults the run at the next die.
        self.check()?;
        self.send(Msg::Die(run, Box::new(*result)))
    }
    fn mark_not_inspected(&mut self, run: u64, dies: &[u32]) -> Result<()> {
        self.send(Msg::NotInspected(run, dies.to_vec()))
    }
    fn end(&mut self, run: u64, status: ExitStatus, reason: &str, at: i64) -> Result<()> {
        self.ask(|r| Msg::End(run, status, reason.to_owned(), at, r))
    }
    fn confirm(&mut self, _run: u64) -> Result<()> {
        let flushed = self.flush();
        // The writer's own account of a failure says more than the flush's.
        self.check()?;
        flushed
    }
    fn export_failed(&mut self, run: u64, why: &str) -> Result<()> {
        self.ask(|r| Msg::ExportError(run, Some(why.to_owned()), r))
    }
    fn retry_export(&mut self, run: u64, remaining: Option<String>) -> Result<()> {
        let Some(dir) = self.klarf_dir.clone() else {
            return Ok(());
        };
        if self.export_retry.is_none() {
            let db = self.path.clone();
            let writer = self
                .tx
                .clone()
                .ok_or_else(|| anyhow!("the results database is closed"))?;
            let path = self.path.clone();
            self.export_retry = Some(ExportRetry::start(
                self.export_retry_every,
                Box::new(move |run| super::export::write_run_klarfs(&db, run as i64, &dir)),
                Box::new(move |run: u64, remaining: Option<&str>| {
                    ask_writer(&writer, &path, |r| {
                        Msg::ExportError(run, remaining.map(str::to_owned), r)
                    })
                }),
                self.software.clone(),
            )?);
        }
        match &self.export_retry {
            Some(retry) => retry.add(Waiting { run, remaining }),
            None => Ok(()),
        }
    }
    fn defect_positions(&mut self, run: u64) -> Result<(Vec<DefectPosition>, u32)> {
        self.flush()?;
        // A reader beside the writer's connection (WAL), as export does.
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .with_context(|| format!("{}: reading run {run}'s defects", self.path.display()))?;
        let read = || -> rusqlite::Result<(Vec<DefectPosition>, u32)> {
            let positions = conn
                .prepare(
                    "SELECT f.die_index, f.defect_no, f.x_um, f.y_um FROM defects f
                     JOIN dies d ON d.run = f.run AND d.die_index = f.die_index
                     WHERE f.run = ?1 AND d.status = 'inspected' ORDER BY d.plan_pos, f.defect_no",
                )?
                .query_map([run as i64], |r| {
                    Ok(DefectPosition {
                        die_index: r.get(0)?,
                        defect_no: r.get(1)?,
                        x_um: r.get(2)?,
                        y_um: r.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            let inspected: u32 = conn.query_row(
                "SELECT COUNT(*) FROM dies WHERE run = ?1 AND status = 'inspected'",
                [run as i64],
                |r| r.get(0),
            )?;
            Ok((positions, inspected))
        };
        read().map_err(|e| {
            anyhow!(
                "{}: reading run {run}'s defects: {}",
                self.path.display(),
                describe(&e)
            )
        })
    }
    fn mark_repeaters(&mut self, run: u64, marks: &[RepeaterMark]) -> Result<()> {
        self.ask(|r| Msg::Repeaters(run, marks.to_vec(), r))
    }
    fn finalize(&mut self, run: u64) -> Result<Vec<PathBuf>> {
        let Some(dir) = self.klarf_dir.clone() else {
            return Ok(Vec::new());
        };
        self.flush()?;
        super::export::write_run_klarfs(&self.path, run as i64, &dir)
    }
}

/// Most messages committed in one transaction.
const BATCH: usize = 256;

/// A database error in the operator's words first ("disk full"), then
/// SQLite's.
fn describe(e: &rusqlite::Error) -> String {
    use rusqlite::ErrorCode as C;
    match e.sqlite_error_code() {
        Some(C::DiskFull) => format!("disk full ({e})"),
        Some(C::DatabaseBusy) | Some(C::DatabaseLocked) => format!("database locked ({e})"),
        Some(C::SystemIoFailure) => format!("I/O error ({e})"),
        Some(C::ReadOnly) => format!("database read-only ({e})"),
        _ => e.to_string(),
    }
}

/// Sends a reply whose receiver may have given up waiting (a caller that
/// was itself stopped); nothing is lost then, the record is in the file.
fn reply<T>(to: Reply<T>, r: Result<T, String>) {
    if to.send(r).is_err() {
        tracing::debug!("a store request's caller left before its answer");
    }
}

fn writer(
    mut conn: Connection,
    rx: Receiver<Msg>,
    path: &Path,
    c: &Confirmations,
    health: &crate::hot::liveness::ThreadHealth,
) {
    // Layout per open run: (run, pixel µm, image height px), for positions.
    let mut layouts: Vec<(u64, f64, u32)> = Vec::new();
    loop {
        health.idle();
        let Ok(first) = rx.recv() else { break };
        health.beat();
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        // Runs begun and dies written in this batch, valid once committed.
        let mut begun: Vec<Result<u64, String>> = Vec::new();
        let mut dies: Vec<(u64, u32)> = Vec::new();
        let result = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for m in &batch {
                match m {
                    Msg::Begin(start, _) => {
                        let r = begin(&tx, start);
                        begun.push(
                            r.map_err(|e| format!("opening the run record: {}", describe(&e))),
                        );
                    }
                    Msg::Die(run, r) => {
                        let (pix, h) = layouts
                            .iter()
                            .find(|l| l.0 == *run)
                            .map(|l| (l.1, l.2))
                            .unwrap_or((1.0, 0));
                        record_die(&tx, *run, r, pix, h)?;
                        dies.push((*run, r.die_index));
                    }
                    Msg::NotInspected(run, list) => {
                        let mut st = tx.prepare_cached(
                            "UPDATE dies SET status = 'not inspected' WHERE run = ?1 AND die_index = ?2 AND status = 'pending'",
                        )?;
                        for d in list {
                            st.execute(params![*run as i64, d])?;
                        }
                    }
                    Msg::End(run, status, reason, at, _) => {
                        end_run(&tx, *run, *status, reason, *at)?;
                    }
                    Msg::ExportError(run, why, _) => {
                        tx.execute(
                            "UPDATE runs SET export_error = ?2 WHERE id = ?1",
                            params![*run as i64, why],
                        )?;
                    }
                    Msg::Repeaters(run, marks, _) => {
                        let mut st = tx.prepare_cached(
                            "UPDATE defects SET repeater = ?4 WHERE run = ?1 AND die_index = ?2 AND defect_no = ?3",
                        )?;
                        for m in marks {
                            st.execute(params![*run as i64, m.die_index, m.defect_no, m.dies])?;
                        }
                    }
                    Msg::MaxPages(..) | Msg::Flush(_) => {}
                }
            }
            tx.commit()
        })();
        let outcome = match result {
            Ok(()) => {
                let mut committed = c.committed.lock().unwrap_or_else(|e| e.into_inner());
                if begun.iter().any(|b| b.is_ok()) {
                    // A new run: forget the dies of finished ones.
                    committed.clear();
                }
                committed.extend(dies);
                Ok(())
            }
            Err(e) => {
                let why = format!("{} writing results to {}", describe(&e), path.display());
                tracing::error!("{why}");
                let mut failure = c.failure.lock().unwrap_or_else(|e| e.into_inner());
                if failure.is_none() {
                    *failure = Some(why.clone());
                }
                Err(why)
            }
        };
        let mut begun = begun.into_iter();
        for m in batch {
            match m {
                Msg::Begin(start, to) => {
                    let r = begun.next().unwrap_or_else(|| Err("not attempted".into()));
                    let r = outcome.clone().and(r);
                    if let Ok(id) = r {
                        layouts.push((id, start.layout.pixel_um, start.layout.image_px));
                        // A fresh run starts with a clean slate.
                        *c.failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
                    }
                    reply(to, r);
                }
                Msg::End(run, status, reason, at, to) => {
                    layouts.retain(|l| l.0 != run);
                    let r = match &outcome {
                        Ok(()) => Ok(()),
                        // The batch rolled back with the close in it: close
                        // the run on its own, with what room there is.
                        Err(_) => close_alone(&mut conn, run, status, &reason, at, path),
                    };
                    reply(to, r);
                }
                Msg::ExportError(_, _, to) | Msg::Repeaters(_, _, to) | Msg::Flush(to) => {
                    reply(to, outcome.clone())
                }
                Msg::MaxPages(pages, to) => {
                    let r = conn
                        .pragma_update_and_check(None, "max_page_count", pages as i64, |r| {
                            r.get::<_, i64>(0)
                        })
                        .map(|n| n as u64)
                        .map_err(|e| describe(&e));
                    reply(to, r);
                }
                Msg::Die(..) | Msg::NotInspected(..) => {}
            }
        }
    }
}

fn end_run(
    tx: &rusqlite::Transaction,
    run: u64,
    status: ExitStatus,
    reason: &str,
    at: i64,
) -> rusqlite::Result<()> {
    tx.execute(
        "UPDATE dies SET status = 'not inspected' WHERE run = ?1 AND status = 'pending'",
        [run as i64],
    )?;
    tx.execute(
        "UPDATE runs SET state = 'closed', exit_status = ?2, reason = ?3, ended_unix_ms = ?4 WHERE id = ?1",
        params![run as i64, status.name(), reason, at],
    )?;
    Ok(())
}

/// Closes a run after a failed batch. First in full; on a full disk, only
/// the run's own row, which is updated in place and needs no new page, so
/// the record says faulted and why; its dies still pending are marked not
/// inspected by the next start's recovery. If even that fails the run stays
/// open and the next start closes it as interrupted.
fn close_alone(
    conn: &mut Connection,
    run: u64,
    status: ExitStatus,
    reason: &str,
    at: i64,
    path: &Path,
) -> Result<(), String> {
    let full = conn
        .transaction()
        .and_then(|tx| end_run(&tx, run, status, reason, at).and_then(|_| tx.commit()));
    let Err(first) = full else { return Ok(()) };
    let row_only = conn.execute(
        "UPDATE runs SET state = 'closed', exit_status = ?2, reason = ?3, ended_unix_ms = ?4 WHERE id = ?1",
        params![run as i64, status.name(), reason, at],
    );
    match row_only {
        Ok(_) => {
            tracing::warn!(
                run,
                "{}: closed the run without marking its pending dies ({}); the next start marks them",
                path.display(),
                describe(&first)
            );
            Ok(())
        }
        Err(e) => {
            let why = format!(
                "closing run {run}: {}; the next start closes it as interrupted",
                describe(&e)
            );
            tracing::error!("{}: {why}", path.display());
            Err(why)
        }
    }
}

fn begin(tx: &rusqlite::Transaction, s: &RunStart) -> rusqlite::Result<u64> {
    tx.execute(
        "INSERT OR IGNORE INTO lots (lot_id) VALUES (?1)",
        [&s.identity.lot],
    )?;
    let lot: i64 = tx.query_row(
        "SELECT id FROM lots WHERE lot_id = ?1",
        [&s.identity.lot],
        |r| r.get(0),
    )?;
    tx.execute(
        "INSERT INTO wafers (lot, wafer_id, slot) VALUES (?1, ?2, ?3)
         ON CONFLICT (lot, wafer_id) DO UPDATE SET slot = ?3",
        params![lot, s.identity.wafer, s.identity.slot],
    )?;
    let wafer: i64 = tx.query_row(
        "SELECT id FROM wafers WHERE lot = ?1 AND wafer_id = ?2",
        params![lot, s.identity.wafer],
        |r| r.get(0),
    )?;
    let l = &s.layout;
    // Whose run it is: recovery closes it only once this process is gone.
    let owner = super::lock::this_process();
    tx.execute(
        "INSERT INTO runs (wafer, recipe_id, recipe_hash, operator, state, started_unix_ms,
            diameter_mm, pitch_x_um, pitch_y_um, die_x_um, die_y_um, offset_x_um, offset_y_um, notch, pixel_um, image_px,
            owner_pid, owner_start)
         VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        params![
            wafer,
            s.recipe_id,
            s.recipe_hash,
            s.identity.operator,
            s.started_unix_ms,
            l.diameter_mm,
            l.die_pitch_um.0,
            l.die_pitch_um.1,
            l.die_size_um.0,
            l.die_size_um.1,
            l.grid_offset_um.0,
            l.grid_offset_um.1,
            l.notch,
            l.pixel_um,
            l.image_px,
            owner.0,
            owner.1
        ],
    )?;
    let run = tx.last_insert_rowid();
    let mut st = tx.prepare_cached(
        "INSERT INTO dies (run, die_index, plan_pos, col, row, status) VALUES (?1, ?2, ?3, ?4, ?5, 'pending')",
    )?;
    for (pos, (index, col, row)) in l.plan_dies.iter().enumerate() {
        st.execute(params![run, index, pos as i64, col, row])?;
    }
    Ok(run as u64)
}

fn record_die(
    tx: &rusqlite::Transaction,
    run: u64,
    r: &DieResult,
    pixel_um: f64,
    image_h: u32,
) -> rusqlite::Result<()> {
    let status = if r.capture_failed {
        "not inspected"
    } else {
        "inspected"
    };
    // How the die was inspected; nothing for a die that was not imaged.
    let inspected = !r.capture_failed;
    tx.prepare_cached(
        "UPDATE dies SET status = ?3, defect_count = ?4, not_listed = ?5, reference_mode = ?6,
            align_confidence = ?7, alignment_untrusted = ?8, noise_sigma = ?9, threshold_used = ?10
         WHERE run = ?1 AND die_index = ?2",
    )?
    .execute(params![
        run as i64,
        r.die_index,
        status,
        r.defects().len() as i64,
        r.dropped as i64,
        inspected.then(|| r.reference_mode.name()),
        inspected.then(|| r.align_confidence_left.min(r.align_confidence_right) as f64),
        inspected.then_some(r.alignment_untrusted),
        inspected.then_some(r.noise_sigma as f64),
        inspected.then_some(r.threshold_used as f64),
    ])?;
    let mut st = tx.prepare_cached(
        "INSERT OR REPLACE INTO defects (run, die_index, defect_no, x_px, y_px, x_um, y_um, width_um, height_um,
            area_px, area_um2, peak_diff, mean_diff, polarity, class_number, class)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
    for (n, d) in r.defects().iter().enumerate() {
        let (x, y) = d.position_um(pixel_um, image_h);
        st.execute(params![
            run as i64,
            r.die_index,
            n as i64 + 1,
            d.x_px as f64,
            d.y_px as f64,
            x,
            y,
            d.width_px() as f64 * pixel_um,
            d.height_px() as f64 * pixel_um,
            d.area_px,
            d.area_px as f64 * pixel_um * pixel_um,
            d.peak_diff,
            d.mean_diff as f64,
            match d.polarity {
                crate::pipeline::Polarity::Bright => "bright",
                crate::pipeline::Polarity::Dark => "dark",
            },
            d.class.number(),
            d.class.name()
        ])?;
    }
    Ok(())
}
