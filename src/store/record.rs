//! The run record: identity, layout, every die's result, and how the run
//! ended. `RunStore` is the interface the run engine writes through;
//! `SqliteStore` keeps it on disk, `MemoryStore` in memory.

use crate::pipeline::{Defect, DieResult};
use anyhow::Result;

/// Who and what a run is about.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunIdentity {
    pub lot: String,
    pub wafer: String,
    pub slot: u32,
    pub operator: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    Complete,
    Stopped,
    Aborted,
    Faulted,
}

impl ExitStatus {
    pub fn name(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Stopped => "stopped",
            Self::Aborted => "aborted",
            Self::Faulted => "faulted",
        }
    }
}

/// The wafer layout of a run: what a KLARF needs to place every defect.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunLayout {
    pub diameter_mm: f64,
    pub die_pitch_um: (f64, f64),
    pub die_size_um: (f64, f64),
    /// Offset of the die grid from the wafer centre.
    pub grid_offset_um: (f64, f64),
    /// "down", "up", "left" or "right".
    pub notch: String,
    pub pixel_um: f64,
    pub image_px: u32,
    /// (die index, column, row) of every die in the plan, in plan order.
    pub plan_dies: Vec<(u32, i32, i32)>,
}

/// What the engine tells the store when a run starts.
#[derive(Debug, Clone)]
pub struct RunStart {
    pub identity: RunIdentity,
    pub recipe_id: String,
    pub recipe_hash: String,
    /// Die indices in plan order.
    pub plan: Vec<u32>,
    pub started_unix_ms: i64,
    pub layout: RunLayout,
}

/// A listed defect of a run and where it lies in its die: what repeater
/// analysis needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DefectPosition {
    pub die_index: u32,
    /// 1-based, as stored.
    pub defect_no: u32,
    /// From the die origin (lower-left corner), y up, µm.
    pub x_um: f64,
    pub y_um: f64,
}

/// A defect found to be a repeater: the number of dies its group spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepeaterMark {
    pub die_index: u32,
    pub defect_no: u32,
    pub dies: u32,
}

pub trait RunStore: Send {
    /// Opens a run record; returns its id.
    fn begin(&mut self, start: &RunStart) -> Result<u64>;
    fn record_die(&mut self, run: u64, result: &DieResult) -> Result<()>;
    /// Dies of the plan that will never be inspected in this run.
    fn mark_not_inspected(&mut self, run: u64, dies: &[u32]) -> Result<()>;
    fn end(&mut self, run: u64, status: ExitStatus, reason: &str, ended_unix_ms: i64)
        -> Result<()>;
    /// Waits until every result handed over so far is committed; an error
    /// says why one was not (disk full, I/O error, database locked). The
    /// engine calls it before it declares a run complete.
    fn confirm(&mut self, _run: u64) -> Result<()> {
        Ok(())
    }
    /// Records that the run's results were kept but its exports (KLARF,
    /// thumbnails) could not be written, and why.
    fn export_failed(&mut self, _run: u64, _why: &str) -> Result<()> {
        Ok(())
    }
    /// After `finalize` failed and `export_failed` recorded it: write the
    /// run's exports again in the background until they are written (the
    /// "export failing" alarm active meanwhile), then record `remaining`
    /// (what else was not exported, `None`: nothing) as its export
    /// failure. Never waits for the export. A store that exports nothing
    /// has nothing to retry.
    fn retry_export(&mut self, _run: u64, _remaining: Option<String>) -> Result<()> {
        Ok(())
    }
    /// After `end`: write the run's exports (KLARF) where configured.
    /// Returns the files written.
    fn finalize(&mut self, _run: u64) -> Result<Vec<std::path::PathBuf>> {
        Ok(Vec::new())
    }
    /// Every listed defect of the run with its in-die position, and how
    /// many dies were inspected (after `confirm`). A store that keeps no
    /// defects has none.
    fn defect_positions(&mut self, _run: u64) -> Result<(Vec<DefectPosition>, u32)> {
        Ok((Vec::new(), 0))
    }
    /// Records which defects are repeaters and on how many dies.
    fn mark_repeaters(&mut self, _run: u64, _marks: &[RepeaterMark]) -> Result<()> {
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DieRecord {
    pub die_index: u32,
    pub inspected: bool,
    pub defects: Vec<Defect>,
    /// Defects found beyond the per-die capacity, not listed.
    pub not_listed: u32,
    /// What the die was compared with (for an inspected die).
    pub reference_mode: Option<crate::pipeline::ReferenceMode>,
}

#[derive(Debug, Clone)]
pub struct MemoryRun {
    pub id: u64,
    pub start: RunStart,
    pub dies: Vec<DieRecord>,
    pub end: Option<(ExitStatus, String)>,
    pub export_error: Option<String>,
    /// Repeater defects found when the run ended.
    pub repeaters: Vec<RepeaterMark>,
}

/// Runs kept in memory (tests, and until the SQLite store is configured).
#[derive(Debug, Default)]
pub struct MemoryStore {
    pub runs: Vec<MemoryRun>,
}

impl MemoryStore {
    fn run(&mut self, id: u64) -> Result<&mut MemoryRun> {
        self.runs
            .iter_mut()
            .find(|r| r.id == id)
            .ok_or_else(|| anyhow::anyhow!("run {id} is not recorded"))
    }
}

impl RunStore for MemoryStore {
    fn begin(&mut self, start: &RunStart) -> Result<u64> {
        let id = self.runs.len() as u64 + 1;
        self.runs.push(MemoryRun {
            id,
            start: start.clone(),
            dies: Vec::new(),
            end: None,
            export_error: None,
            repeaters: Vec::new(),
        });
        Ok(id)
    }

    fn record_die(&mut self, run: u64, r: &DieResult) -> Result<()> {
        self.run(run)?.dies.push(DieRecord {
            die_index: r.die_index,
            inspected: !r.capture_failed,
            defects: r.defects().to_vec(),
            not_listed: r.dropped,
            reference_mode: (!r.capture_failed).then_some(r.reference_mode),
        });
        Ok(())
    }

    fn mark_not_inspected(&mut self, run: u64, dies: &[u32]) -> Result<()> {
        let r = self.run(run)?;
        for &d in dies {
            r.dies.push(DieRecord {
                die_index: d,
                inspected: false,
                defects: Vec::new(),
                not_listed: 0,
                reference_mode: None,
            });
        }
        Ok(())
    }

    fn end(&mut self, run: u64, status: ExitStatus, reason: &str, _at: i64) -> Result<()> {
        self.run(run)?.end = Some((status, reason.to_owned()));
        Ok(())
    }

    fn export_failed(&mut self, run: u64, why: &str) -> Result<()> {
        self.run(run)?.export_error = Some(why.to_owned());
        Ok(())
    }

    fn defect_positions(&mut self, run: u64) -> Result<(Vec<DefectPosition>, u32)> {
        let r = self.run(run)?;
        let (pixel_um, image_px) = (r.start.layout.pixel_um, r.start.layout.image_px);
        let mut positions = Vec::new();
        for die in r.dies.iter().filter(|d| d.inspected) {
            for (n, d) in die.defects.iter().enumerate() {
                let (x_um, y_um) = d.position_um(pixel_um, image_px);
                positions.push(DefectPosition {
                    die_index: die.die_index,
                    defect_no: n as u32 + 1,
                    x_um,
                    y_um,
                });
            }
        }
        let inspected = r.dies.iter().filter(|d| d.inspected).count() as u32;
        Ok((positions, inspected))
    }

    fn mark_repeaters(&mut self, run: u64, marks: &[RepeaterMark]) -> Result<()> {
        self.run(run)?.repeaters = marks.to_vec();
        Ok(())
    }
}

/// A store shared between the engine and whoever reads it (tests, UI).
pub type SharedStore = std::sync::Arc<std::sync::Mutex<dyn RunStore>>;

impl<S: RunStore + ?Sized> RunStore for std::sync::Arc<std::sync::Mutex<S>> {
    fn begin(&mut self, start: &RunStart) -> Result<u64> {
        self.lock().unwrap_or_else(|e| e.into_inner()).begin(start)
    }
    fn record_die(&mut self, run: u64, result: &DieResult) -> Result<()> {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .record_die(run, result)
    }
    fn mark_not_inspected(&mut self, run: u64, dies: &[u32]) -> Result<()> {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .mark_not_inspected(run, dies)
    }
    fn end(&mut self, run: u64, status: ExitStatus, reason: &str, at: i64) -> Result<()> {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .end(run, status, reason, at)
    }
    fn confirm(&mut self, run: u64) -> Result<()> {
        self.lock().unwrap_or_else(|e| e.into_inner()).confirm(run)
    }
    fn export_failed(&mut self, run: u64, why: &str) -> Result<()> {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .export_failed(run, why)
    }
    fn finalize(&mut self, run: u64) -> Result<Vec<std::path::PathBuf>> {
        self.lock().unwrap_or_else(|e| e.into_inner()).finalize(run)
    }
    fn defect_positions(&mut self, run: u64) -> Result<(Vec<DefectPosition>, u32)> {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .defect_positions(run)
    }
    fn mark_repeaters(&mut self, run: u64, marks: &[RepeaterMark]) -> Result<()> {
        self.lock()
            .unwrap_or_else(|e| e.into_inner())
            .mark_repeaters(run, marks)
    }
}
