//! Exports to files: KLARF 1.2/1.8 and CSV, each written to a temporary
//! file and renamed into place, so a reader never sees a partial export and
//! a failed export leaves nothing behind.

use super::db;
use super::klarf::{klarf_12, klarf_18, klarf_18_lot};
use super::query::{load_run, RunExport, RunRow};
use crate::monitor::alarm_engine::unix_ms_now;
use anyhow::{anyhow, bail, Result};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Klarf12,
    Klarf18,
    Csv,
}

impl Format {
    pub fn parse(s: &str) -> Result<Self> {
        Ok(match s {
            "klarf12" => Self::Klarf12,
            "klarf18" => Self::Klarf18,
            "csv" => Self::Csv,
            other => bail!("--format: \"{other}\" is not one of klarf12, klarf18, csv"),
        })
    }

    fn suffix(self) -> &'static str {
        match self {
            Self::Klarf12 => ".klarf",
            Self::Klarf18 => "_v18.klarf",
            Self::Csv => "_defects.csv",
        }
    }
}

/// Opens an existing results database for reading (never creates one).
pub fn open_existing(db_path: &Path) -> Result<rusqlite::Connection> {
    if !db_path.exists() {
        bail!("{}: no such results database", db_path.display());
    }
    db::open(db_path)
}

/// Writes `text` to `out` through a temporary file in the same directory.
pub fn write_atomically(out: &Path, text: &str) -> Result<()> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_owned(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        bail!(
            "{}: the directory {} does not exist",
            out.display(),
            dir.display()
        );
    }
    let name = out
        .file_name()
        .ok_or_else(|| anyhow!("{}: not a file name", out.display()))?
        .to_string_lossy()
        .into_owned();
    let tmp = dir.join(format!(".{name}.partial-{}", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, out)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        bail!("{}: cannot write the export: {e}", out.display());
    }
    Ok(())
}

/// Writes run `run`'s KLARF 1.2 and 1.8 into the directory `dir` under
/// their default names (what the station does when a run ends). Returns
/// the files. A missing directory is an error, never a file of its name.
pub fn write_run_klarfs(db_path: &Path, run: i64, dir: &Path) -> Result<Vec<PathBuf>> {
    [Format::Klarf12, Format::Klarf18]
        .into_iter()
        .map(|f| export_run_into(db_path, run, f, dir))
        .collect()
}

/// Exports run `run` as `format` into the directory `dir`, under its
/// default name. Returns the path written.
pub fn export_run_into(db_path: &Path, run: i64, format: Format, dir: &Path) -> Result<PathBuf> {
    if !dir.is_dir() {
        bail!(
            "{}: the export directory does not exist or is not a directory",
            dir.display()
        );
    }
    let (e, text) = render_run(db_path, run, format)?;
    let out = dir.join(default_name(&e, format));
    write_atomically(&out, &text)?;
    Ok(out)
}

/// Writes the KLARF 1.8 lot file of `runs` (one WaferRecord per run, in
/// this order) to `out`: a directory gets `{lot}_lot_v18.klarf` in it,
/// anything else is the file's path. Returns the path written.
pub fn export_lot(db_path: &Path, runs: &[i64], out: &Path) -> Result<PathBuf> {
    let conn = open_existing(db_path)?;
    let loaded = runs
        .iter()
        .map(|&run| load_run(&conn, run))
        .collect::<Result<Vec<_>>>()
        .map_err(|err| anyhow!("{}: {err}", db_path.display()))?;
    let text = klarf_18_lot(&loaded, unix_ms_now())
        .map_err(|err| anyhow!("{}: {err}", db_path.display()))?;
    let out = if out.is_dir() {
        out.join(lot_file_name(&loaded[0].run.lot))
    } else {
        out.to_owned()
    };
    write_atomically(&out, &text)?;
    Ok(out)
}

/// Run `run` of `db_path` and its text as `format`.
fn render_run(db_path: &Path, run: i64, format: Format) -> Result<(RunExport, String)> {
    let conn = open_existing(db_path)?;
    let e = load_run(&conn, run).map_err(|err| anyhow!("{}: {err}", db_path.display()))?;
    let text = match format {
        Format::Klarf12 => klarf_12(&e, unix_ms_now()),
        Format::Klarf18 => klarf_18(&e, unix_ms_now()),
        Format::Csv => defects_csv(&e),
    };
    Ok((e, text))
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Defects of a run as CSV, with wafer-absolute positions, the dies a
/// repeater group spans (0: not a repeater) and what the die was compared
/// with.
pub fn defects_csv(e: &RunExport) -> String {
    let l = &e.layout;
    let mut s = String::from(
        "run,lot,wafer,slot,die_index,col,row,defect_no,x_um,y_um,wafer_x_um,wafer_y_um,width_um,height_um,area_um2,peak_diff,polarity,class_number,class,repeater_dies,reference_mode\n",
    );
    for d in &e.defects {
        let die = e.dies.iter().find(|x| x.die_index == d.die_index);
        let (col, row) = die.map(|x| (x.col, x.row)).unwrap_or((0, 0));
        let ox = col as f64 * l.die_pitch_um.0 - l.die_size_um.0 / 2.0 + l.grid_offset_um.0;
        let oy = row as f64 * l.die_pitch_um.1 - l.die_size_um.1 / 2.0 + l.grid_offset_um.1;
        s += &format!(
            "{},{},{},{},{},{col},{row},{},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{},{},{},{},{},{}\n",
            e.run.id,
            csv_field(&e.run.lot),
            csv_field(&e.run.wafer),
            e.run.slot,
            d.die_index,
            d.defect_no,
            d.x_um,
            d.y_um,
            ox + d.x_um,
            oy + d.y_um,
            d.width_um,
            d.height_um,
            d.area_um2,
            d.peak_diff,
            d.polarity,
            d.class_number,
            d.class,
            d.repeater,
            die.and_then(|x| x.reference_mode.as_deref()).unwrap_or("")
        );
    }
    s
}

/// The alarm journal as CSV (oldest first).
pub fn alarm_journal_csv(conn: &rusqlite::Connection) -> Result<String> {
    let has: i64 = conn.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'alarm_journal'",
        [],
        |r| r.get(0),
    )?;
    let mut s = String::from("at_utc,alid,event,state,shelving,first_out,operator,value,detail\n");
    if has == 0 {
        return Ok(s);
    }
    let mut st = conn.prepare(
        "SELECT at_unix_ms, alid, event, state, shelving, first_out, operator, value, detail FROM alarm_journal ORDER BY id",
    )?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, i64>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, bool>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<f64>>(7)?,
            r.get::<_, String>(8)?,
        ))
    })?;
    for row in rows {
        let (at, alid, event, state, shelving, first_out, operator, value, detail) = row?;
        s += &format!(
            "{},{alid},{},{},{},{first_out},{},{},{}\n",
            super::klarf::klarf_time(at),
            csv_field(&event),
            csv_field(&state),
            csv_field(&shelving),
            csv_field(operator.as_deref().unwrap_or("")),
            value.map(|v| format!("{v}")).unwrap_or_default(),
            csv_field(&detail)
        );
    }
    Ok(s)
}

/// Exports run `run` of `db_path` as `format` to `out` (or a default name in
/// the current directory). Returns the path written.
pub fn export_run(db_path: &Path, run: i64, format: Format, out: Option<&Path>) -> Result<PathBuf> {
    let (e, text) = render_run(db_path, run, format)?;
    let out = match out {
        Some(p) if p.is_dir() => p.join(default_name(&e, format)),
        Some(p) => p.to_owned(),
        None => PathBuf::from(default_name(&e, format)),
    };
    write_atomically(&out, &text)?;
    Ok(out)
}

/// `{lot}_{wafer}_slot{NN}_run{id}` and the format's suffix: one file per
/// wafer, found by lot, wafer and slot; the run id keeps a wafer inspected
/// twice from overwriting its first result.
pub fn default_name(e: &RunExport, format: Format) -> String {
    run_file_name(&e.run, format)
}

/// The default name of run `r`'s export as `format` (see `default_name`).
pub fn run_file_name(r: &RunRow, format: Format) -> String {
    format!(
        "{}_{}_slot{:02}_run{}{}",
        file_safe(&r.lot),
        file_safe(&r.wafer),
        r.slot,
        r.id,
        format.suffix()
    )
}

/// An id as part of a file name: letters, digits and '-' kept, anything
/// else (path separators included) becomes '_'.
/// The lot file's name in an export directory.
pub fn lot_file_name(lot: &str) -> String {
    format!("{}_lot_v18.klarf", file_safe(lot))
}

fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
