//! `waferscope runs` and `waferscope export`.

use crate::store::export::{
    alarm_journal_csv, export_lot as write_lot_file, export_run, open_existing, write_atomically,
    Format,
};
use crate::store::query::{list_runs, lot_runs};
use anyhow::{anyhow, bail, Result};
use std::path::{Path, PathBuf};

pub fn list(db: &Path) -> Result<()> {
    let conn = open_existing(db)?;
    let runs = list_runs(&conn)?;
    if runs.is_empty() {
        crate::outln!("{}: no runs recorded", db.display())?;
        return Ok(());
    }
    crate::outln!(
        "{:>5}  {:<12} {:<8} {:>4}  {:<16} {:<19}  {:<9} {:>11} {:>7}  reason",
        "run",
        "lot",
        "wafer",
        "slot",
        "recipe",
        "started (UTC)",
        "status",
        "dies",
        "defects"
    )?;
    for r in runs {
        crate::outln!(
            "{:>5}  {:<12} {:<8} {:>4}  {:<16} {:<19}  {:<9} {:>5}/{:<5} {:>7}  {}",
            r.id,
            r.lot,
            r.wafer,
            r.slot,
            r.recipe_id,
            crate::store::klarf::klarf_time(r.started_unix_ms),
            r.status_label(),
            r.dies_inspected,
            r.dies_planned,
            r.defects,
            reason_text(&r)
        )?;
    }
    Ok(())
}

/// The reason column: why the run ended, overflow and export failures.
fn reason_text(r: &crate::store::query::RunRow) -> String {
    let mut parts = Vec::new();
    match (&r.reason, r.exit_status.is_none(), r.status_label()) {
        (Some(why), _, _) if !why.is_empty() => parts.push(why.clone()),
        (_, true, "interrupted") => {
            parts.push("its process is gone; the next start closes it".into())
        }
        _ => {}
    }
    if r.defects_not_listed > 0 {
        parts.push(format!(
            "truncated: {} more defects found, not listed",
            r.defects_not_listed
        ));
    }
    if let Some(e) = &r.export_error {
        parts.push(format!("not exported: {e}"));
    }
    parts.join("; ")
}

pub fn export(
    db: &Path,
    run: Option<i64>,
    format: &str,
    alarm_journal: bool,
    out: Option<&Path>,
) -> Result<()> {
    if alarm_journal {
        let conn = open_existing(db)?;
        let out = out
            .map(Path::to_owned)
            .unwrap_or_else(|| PathBuf::from("alarm_journal.csv"));
        let out = if out.is_dir() {
            out.join("alarm_journal.csv")
        } else {
            out
        };
        write_atomically(&out, &alarm_journal_csv(&conn)?)?;
        crate::outln!("{}", out.display())?;
        return Ok(());
    }
    let run = run.ok_or_else(|| anyhow!("--run is required"))?;
    let written = export_run(db, run, Format::parse(format)?, out)?;
    crate::outln!("{}", written.display())?;
    Ok(())
}

/// `waferscope export --lot LOT`: the lot's KLARF 1.8 file (the newest
/// finished run of each wafer) to `out` (a file or a directory; default:
/// `{lot}_lot_v18.klarf` in the current directory).
pub fn export_lot(db: &Path, lot: &str, format: Option<&str>, out: Option<&Path>) -> Result<()> {
    if let Some(f) = format {
        if Format::parse(f)? != Format::Klarf18 {
            bail!("--lot writes a KLARF 1.8 lot file: --format must be klarf18 (or left out)");
        }
    }
    let runs = lot_runs(&open_existing(db)?, lot).map_err(|e| anyhow!("{}: {e}", db.display()))?;
    let written = write_lot_file(db, &runs, out.unwrap_or(Path::new(".")))?;
    crate::outln!("{}", written.display())?;
    Ok(())
}
