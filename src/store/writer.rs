//! `SqliteStore`: the run record on disk. A writer thread owns the
//! connection and commits whatever has queued up in one transaction, with
//! cached prepared statements, so the run engine never waits on the disk
//! for a die, and a crash loses at most the batch in flight.

use super::db;
use super::record::{ExitStatus, RunStart, RunStore};
use crate::monitor::alarm_engine::unix_ms_now;
use crate::pipeline::DieResult;
use anyhow::{anyhow, Context, Result};
use crossbeam_channel::{bounded, Receiver, Sender};
use rusqlite::{params, Connection};
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

type Reply<T> = flume::Sender<Result<T, String>>;

enum Msg {
    Begin(Box<RunStart>, Reply<u64>),
    Die(u64, Box<DieResult>),
    NotInspected(u64, Vec<u32>),
    End(u64, ExitStatus, String, i64, Reply<()>),
    Flush(Reply<()>),
}

pub struct SqliteStore {
    tx: Option<Sender<Msg>>,
    thread: Option<JoinHandle<()>>,
    path: PathBuf,
    /// Runs recovered (closed as interrupted) when the store opened.
    pub recovered: Vec<i64>,
    /// Where each finished run's KLARF 1.2 and 1.8 go, if anywhere.
    pub klarf_dir: Option<PathBuf>,
}

impl SqliteStore {
    /// Opens the database, recovers runs a crash left open, and starts the
    /// writer thread.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = db::open(path)?;
        let recovered = db::recover(&conn, unix_ms_now())
            .with_context(|| format!("{}: recovering interrupted runs", path.display()))?;
        let (tx, rx) = bounded::<Msg>(4096);
        let p = path.to_owned();
        let thread = std::thread::Builder::new()
            .name("results-db".into())
            .spawn(move || writer(conn, rx, &p))
            .context("starting the database writer")?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
            path: path.to_owned(),
            recovered,
            klarf_dir: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn ask<T>(&self, make: impl FnOnce(Reply<T>) -> Msg) -> Result<T> {
        let (tx, rx) = flume::bounded(1);
        self.tx
            .as_ref()
            .ok_or_else(|| anyhow!("the results database is closed"))?
            .send(make(tx))
            .map_err(|_| anyhow!("{}: the database writer has stopped", self.path.display()))?;
        rx.recv()
            .map_err(|_| anyhow!("{}: the database writer has stopped", self.path.display()))?
            .map_err(|e| anyhow!("{}: {e}", self.path.display()))
    }

    /// Waits until everything sent so far is committed.
    pub fn flush(&self) -> Result<()> {
        self.ask(Msg::Flush)
    }

    fn send(&self, m: Msg) -> Result<()> {
        self.tx
            .as_ref()
            .ok_or_else(|| anyhow!("the results database is closed"))?
            .send(m)
            .map_err(|_| anyhow!("{}: the database writer has stopped", self.path.display()))
    }
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl RunStore for SqliteStore {
    fn begin(&mut self, start: &RunStart) -> Result<u64> {
        self.ask(|r| Msg::Begin(Box::new(start.clone()), r))
    }
    fn record_die(&mut self, run: u64, result: &DieResult) -> Result<()> {
        self.send(Msg::Die(run, Box::new(*result)))
    }
    fn mark_not_inspected(&mut self, run: u64, dies: &[u32]) -> Result<()> {
        self.send(Msg::NotInspected(run, dies.to_vec()))
    }
    fn end(&mut self, run: u64, status: ExitStatus, reason: &str, at: i64) -> Result<()> {
        self.ask(|r| Msg::End(run, status, reason.to_owned(), at, r))
    }
    fn finalize(&mut self, run: u64) -> Result<Vec<PathBuf>> {
        let Some(dir) = self.klarf_dir.clone() else {
            return Ok(Vec::new());
        };
        self.flush()?;
        let mut written = Vec::new();
        for f in [
            super::export::Format::Klarf12,
            super::export::Format::Klarf18,
        ] {
            written.push(super::export::export_run(
                &self.path,
                run as i64,
                f,
                Some(&dir),
            )?);
        }
        Ok(written)
    }
}

/// Answers a request once its transaction has committed (or failed).
type AfterCommit = Box<dyn FnOnce(Result<(), String>)>;

/// Most messages committed in one transaction.
const BATCH: usize = 256;

fn writer(mut conn: Connection, rx: Receiver<Msg>, path: &Path) {
    // Layout per open run: (pixel µm, image height px), for positions.
    let mut layouts: Vec<(u64, f64, u32)> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(m) => batch.push(m),
                Err(_) => break,
            }
        }
        let mut replies: Vec<AfterCommit> = Vec::new();
        let result = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            for m in batch {
                match m {
                    Msg::Begin(start, reply) => {
                        let r = begin(&tx, &start);
                        if let Ok(id) = &r {
                            layouts.push((*id, start.layout.pixel_um, start.layout.image_px));
                        }
                        let r = r.map_err(|e| format!("opening the run record: {e}"));
                        // The id is only valid once committed: answer after.
                        replies.push(Box::new(move |c: Result<(), String>| {
                            let _ = reply.send(c.and(r));
                        }));
                    }
                    Msg::Die(run, r) => {
                        let (pix, h) = layouts
                            .iter()
                            .find(|l| l.0 == run)
                            .map(|l| (l.1, l.2))
                            .unwrap_or((1.0, 0));
                        record_die(&tx, run, &r, pix, h)?;
                    }
                    Msg::NotInspected(run, dies) => {
                        let mut st = tx.prepare_cached(
                            "UPDATE dies SET status = 'not inspected' WHERE run = ?1 AND die_index = ?2 AND status = 'pending'",
                        )?;
                        for d in dies {
                            st.execute(params![run as i64, d])?;
                        }
                    }
                    Msg::End(run, status, reason, at, reply) => {
                        tx.execute(
                            "UPDATE dies SET status = 'not inspected' WHERE run = ?1 AND status = 'pending'",
                            [run as i64],
                        )?;
                        tx.execute(
                            "UPDATE runs SET state = 'closed', exit_status = ?2, reason = ?3, ended_unix_ms = ?4 WHERE id = ?1",
                            params![run as i64, status.name(), reason, at],
                        )?;
                        layouts.retain(|l| l.0 != run);
                        replies.push(Box::new(move |c| {
                            let _ = reply.send(c);
                        }));
                    }
                    Msg::Flush(reply) => replies.push(Box::new(move |c| {
                        let _ = reply.send(c);
                    })),
                }
            }
            tx.commit()
        })();
        let outcome = result.map_err(|e| {
            tracing::error!("{}: writing results: {e}", path.display());
            format!("writing results: {e}")
        });
        for r in replies {
            r(outcome.clone());
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
    tx.execute(
        "INSERT INTO runs (wafer, recipe_id, recipe_hash, operator, state, started_unix_ms,
            diameter_mm, pitch_x_um, pitch_y_um, die_x_um, die_y_um, offset_x_um, offset_y_um, notch, pixel_um, image_px)
         VALUES (?1, ?2, ?3, ?4, 'open', ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
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
            l.image_px
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
    tx.prepare_cached(
        "UPDATE dies SET status = ?3, defect_count = ?4 WHERE run = ?1 AND die_index = ?2",
    )?
    .execute(params![
        run as i64,
        r.die_index,
        status,
        r.count as i64 + r.dropped as i64
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
