//! Reading runs back: the list of recorded runs, and one run in full for
//! export.

use super::record::RunLayout;
use anyhow::{bail, Result};
use rusqlite::{params, Connection};

#[derive(Debug, Clone, PartialEq)]
pub struct RunRow {
    pub id: i64,
    pub lot: String,
    pub wafer: String,
    pub slot: i64,
    pub recipe_id: String,
    pub recipe_hash: String,
    pub operator: String,
    pub state: String,
    pub started_unix_ms: i64,
    pub ended_unix_ms: Option<i64>,
    pub exit_status: Option<String>,
    pub reason: Option<String>,
    pub dies_planned: i64,
    pub dies_inspected: i64,
    /// Defects listed (rows), the count KLARF's NDEFECT carries.
    pub defects: i64,
    /// Defects found beyond the per-die capacity, not listed.
    pub defects_not_listed: i64,
    /// The process that opened the run (pid, start time), while it may be
    /// recording.
    pub owner_pid: Option<i64>,
    pub owner_start: Option<String>,
    /// Why the run's exports (KLARF, thumbnails) were not written, if so.
    pub export_error: Option<String>,
}

impl RunRow {
    /// "running" only while the run's process is alive; a run whose owner
    /// died reads "interrupted" even before the next start recovers it.
    pub fn status_label(&self) -> &str {
        match self.exit_status.as_deref() {
            Some(s) => s,
            None if super::lock::owner_alive(self.owner_pid, self.owner_start.as_deref()) => {
                "running"
            }
            None => "interrupted",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DieRow {
    pub die_index: u32,
    pub col: i32,
    pub row: i32,
    pub status: String,
    /// Defects listed for the die (rows in `defects`).
    pub defect_count: i64,
    /// Defects found beyond the per-die capacity and not listed: the die's
    /// list is truncated when this is above 0.
    pub not_listed: i64,
    /// What the die was compared with (`ReferenceMode::name`); `None` when
    /// it was not inspected, or recorded before schema version 3.
    pub reference_mode: Option<String>,
    /// The lower alignment confidence of its references, 0 to 1.
    pub align_confidence: Option<f64>,
    /// Alignment too poor to compare: the die reports no defects.
    pub alignment_untrusted: Option<bool>,
    /// Estimated image noise σ, grey levels (0: not estimated).
    pub noise_sigma: Option<f64>,
    /// The pixel threshold applied outside care areas, grey levels.
    pub threshold_used: Option<f64>,
}

impl DieRow {
    pub fn truncated(&self) -> bool {
        self.not_listed > 0
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DefectRow {
    pub die_index: u32,
    pub defect_no: u32,
    pub x_px: f64,
    pub y_px: f64,
    /// From the die origin (lower-left corner), y up.
    pub x_um: f64,
    pub y_um: f64,
    pub width_um: f64,
    pub height_um: f64,
    pub area_px: i64,
    pub area_um2: f64,
    pub peak_diff: i64,
    pub mean_diff: f64,
    pub polarity: String,
    pub class_number: u32,
    pub class: String,
    /// Dies a repeater group at this in-die position spans (a reticle
    /// defect), found when the run ended; 0 when the defect is not one.
    pub repeater: u32,
}

#[derive(Debug, Clone)]
pub struct RunExport {
    pub run: RunRow,
    pub layout: RunLayout,
    /// In plan order.
    pub dies: Vec<DieRow>,
    /// Ordered by plan position, then defect number.
    pub defects: Vec<DefectRow>,
}

const RUN_SELECT: &str = "
    SELECT r.id, l.lot_id, w.wafer_id, w.slot, r.recipe_id, r.recipe_hash, r.operator, r.state,
           r.started_unix_ms, r.ended_unix_ms, r.exit_status, r.reason,
           (SELECT COUNT(*) FROM dies d WHERE d.run = r.id),
           (SELECT COUNT(*) FROM dies d WHERE d.run = r.id AND d.status = 'inspected'),
           (SELECT COUNT(*) FROM defects f WHERE f.run = r.id),
           (SELECT COALESCE(SUM(d.not_listed), 0) FROM dies d WHERE d.run = r.id),
           r.owner_pid, r.owner_start, r.export_error
    FROM runs r JOIN wafers w ON w.id = r.wafer JOIN lots l ON l.id = w.lot";

fn run_row(r: &rusqlite::Row) -> rusqlite::Result<RunRow> {
    Ok(RunRow {
        id: r.get(0)?,
        lot: r.get(1)?,
        wafer: r.get(2)?,
        slot: r.get(3)?,
        recipe_id: r.get(4)?,
        recipe_hash: r.get(5)?,
        operator: r.get(6)?,
        state: r.get(7)?,
        started_unix_ms: r.get(8)?,
        ended_unix_ms: r.get(9)?,
        exit_status: r.get(10)?,
        reason: r.get(11)?,
        dies_planned: r.get(12)?,
        dies_inspected: r.get(13)?,
        defects: r.get(14)?,
        defects_not_listed: r.get(15)?,
        owner_pid: r.get(16)?,
        owner_start: r.get(17)?,
        export_error: r.get(18)?,
    })
}

/// Every recorded run, newest first.
pub fn list_runs(conn: &Connection) -> Result<Vec<RunRow>> {
    let mut st = conn.prepare(&format!("{RUN_SELECT} ORDER BY r.id DESC"))?;
    let rows = st
        .query_map([], run_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}

/// The newest `limit` runs, newest first, and how many are recorded in
/// all: what a screen that must stay fast after months of runs reads.
pub fn recent_runs(conn: &Connection, limit: usize) -> Result<(Vec<RunRow>, u64)> {
    let total: i64 = conn.query_row("SELECT COUNT(*) FROM runs", [], |r| r.get(0))?;
    let mut st = conn.prepare(&format!("{RUN_SELECT} ORDER BY r.id DESC LIMIT ?1"))?;
    let rows = st
        .query_map([limit as i64], run_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok((rows, total as u64))
}

/// The runs of lot `lot` for its lot file: the newest closed run of each
/// of its wafers, by slot then wafer id. An unknown lot, or one with no
/// closed run, is an error naming it.
pub fn lot_runs(conn: &Connection, lot: &str) -> Result<Vec<i64>> {
    let mut st = conn.prepare(
        "SELECT MAX(r.id) FROM runs r JOIN wafers w ON w.id = r.wafer JOIN lots l ON l.id = w.lot
         WHERE l.lot_id = ?1 AND r.state = 'closed'
         GROUP BY w.id ORDER BY w.slot, w.wafer_id",
    )?;
    let runs: Vec<i64> = st
        .query_map([lot], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    if runs.is_empty() {
        bail!("lot \"{lot}\" has no finished run in this database");
    }
    Ok(runs)
}

/// Which runs a history screen asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunFilter {
    /// Runs whose lot id contains this text, ignoring case; empty: any lot.
    pub lot_contains: String,
    /// Runs started at most this long before now; `None`: any time.
    pub max_age: Option<std::time::Duration>,
}

/// The newest `limit` runs that pass `filter` at `now_unix_ms`, newest
/// first, and how many pass it in all (for "showing N of M"). Bounded like
/// `recent_runs`.
pub fn find_runs(
    conn: &Connection,
    filter: &RunFilter,
    now_unix_ms: i64,
    limit: usize,
) -> Result<(Vec<RunRow>, u64)> {
    let since = filter
        .max_age
        .map(|age| now_unix_ms - age.as_millis() as i64);
    // instr() rather than LIKE: the operator's text is matched as typed,
    // `%` and `_` included.
    let wanted = "(?1 = '' OR instr(lower(l.lot_id), lower(?1)) > 0)
         AND (?2 IS NULL OR r.started_unix_ms >= ?2)";
    let total: i64 = conn.query_row(
        &format!(
            "SELECT COUNT(*) FROM runs r JOIN wafers w ON w.id = r.wafer JOIN lots l ON l.id = w.lot WHERE {wanted}"
        ),
        params![filter.lot_contains, since],
        |r| r.get(0),
    )?;
    let mut st = conn.prepare(&format!(
        "{RUN_SELECT} WHERE {wanted} ORDER BY r.id DESC LIMIT ?3"
    ))?;
    let rows = st
        .query_map(params![filter.lot_contains, since, limit as i64], run_row)?
        .collect::<rusqlite::Result<_>>()?;
    Ok((rows, total as u64))
}

/// One run in full. An unknown id is an error naming it.
pub fn load_run(conn: &Connection, id: i64) -> Result<RunExport> {
    let run = match conn.query_row(&format!("{RUN_SELECT} WHERE r.id = ?1"), [id], run_row) {
        Ok(r) => r,
        Err(rusqlite::Error::QueryReturnedNoRows) => {
            bail!("run {id} is not recorded in this database")
        }
        Err(e) => return Err(e.into()),
    };
    let layout = conn.query_row(
        "SELECT diameter_mm, pitch_x_um, pitch_y_um, die_x_um, die_y_um, offset_x_um, offset_y_um, notch, pixel_um, image_px
         FROM runs WHERE id = ?1",
        [id],
        |r| {
            Ok(RunLayout {
                diameter_mm: r.get(0)?,
                die_pitch_um: (r.get(1)?, r.get(2)?),
                die_size_um: (r.get(3)?, r.get(4)?),
                grid_offset_um: (r.get(5)?, r.get(6)?),
                notch: r.get(7)?,
                pixel_um: r.get(8)?,
                image_px: r.get(9)?,
                plan_dies: Vec::new(),
            })
        },
    )?;
    let dies: Vec<DieRow> = conn
        .prepare(
            "SELECT die_index, col, row, status, defect_count, not_listed, reference_mode, align_confidence,
                    alignment_untrusted, noise_sigma, threshold_used
             FROM dies WHERE run = ?1 ORDER BY plan_pos",
        )?
        .query_map([id], |r| {
            Ok(DieRow {
                die_index: r.get(0)?,
                col: r.get(1)?,
                row: r.get(2)?,
                status: r.get(3)?,
                defect_count: r.get(4)?,
                not_listed: r.get(5)?,
                reference_mode: r.get(6)?,
                align_confidence: r.get(7)?,
                alignment_untrusted: r.get(8)?,
                noise_sigma: r.get(9)?,
                threshold_used: r.get(10)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let defects = conn
        .prepare(
            "SELECT f.die_index, f.defect_no, f.x_px, f.y_px, f.x_um, f.y_um, f.width_um, f.height_um, f.area_px,
                    f.area_um2, f.peak_diff, f.mean_diff, f.polarity, f.class_number, f.class, f.repeater
             FROM defects f JOIN dies d ON d.run = f.run AND d.die_index = f.die_index
             WHERE f.run = ?1 ORDER BY d.plan_pos, f.defect_no",
        )?
        .query_map(params![id], |r| {
            Ok(DefectRow {
                die_index: r.get(0)?,
                defect_no: r.get(1)?,
                x_px: r.get(2)?,
                y_px: r.get(3)?,
                x_um: r.get(4)?,
                y_um: r.get(5)?,
                width_um: r.get(6)?,
                height_um: r.get(7)?,
                area_px: r.get(8)?,
                area_um2: r.get(9)?,
                peak_diff: r.get(10)?,
                mean_diff: r.get(11)?,
                polarity: r.get(12)?,
                class_number: r.get(13)?,
                class: r.get(14)?,
                repeater: r.get(15)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut layout = layout;
    layout.plan_dies = dies.iter().map(|d| (d.die_index, d.col, d.row)).collect();
    Ok(RunExport {
        run,
        layout,
        dies,
        defects,
    })
}
