//! A lot read back for its review: its wafers with their defect counts,
//! the stack map (every defect of every wafer in wafer coordinates), and
//! the recipe's control limits from the wafers run before the lot.

use anyhow::{bail, Result};
use rusqlite::{params, Connection};

/// Most defects drawn on a stack map: a lot of badly defective wafers
/// would otherwise be a million points for the window.
pub const MAX_STACK_POINTS: usize = 50_000;

/// Wafers of the recipe before the lot that the control limits come from.
pub const LIMIT_HISTORY: usize = 25;

/// Fewer earlier wafers than this give no limits (σ of two means little).
pub const MIN_LIMIT_HISTORY: usize = 5;

#[derive(Debug, Clone, PartialEq)]
pub struct LotWafer {
    pub run_id: i64,
    pub wafer: String,
    pub slot: i64,
    pub recipe_id: String,
    pub exit_status: Option<String>,
    pub defects: i64,
}

/// Mean ± 3σ of the defect count per wafer over `n` earlier wafers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ControlLimits {
    pub n: usize,
    pub mean: f64,
    pub sigma: f64,
    pub lower: f64,
    pub upper: f64,
}

impl ControlLimits {
    /// From defect counts (`None` with fewer than [`MIN_LIMIT_HISTORY`]).
    pub fn from_counts(counts: &[i64]) -> Option<Self> {
        let n = counts.len();
        if n < MIN_LIMIT_HISTORY {
            return None;
        }
        let mean = counts.iter().sum::<i64>() as f64 / n as f64;
        let var = counts
            .iter()
            .map(|&c| (c as f64 - mean).powi(2))
            .sum::<f64>()
            / (n - 1) as f64;
        let sigma = var.sqrt();
        Some(Self {
            n,
            mean,
            sigma,
            lower: (mean - 3.0 * sigma).max(0.0),
            upper: mean + 3.0 * sigma,
        })
    }

    pub fn outside(&self, defects: i64) -> bool {
        (defects as f64) > self.upper || (defects as f64) < self.lower
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LotOverview {
    pub lot: String,
    /// In the order they were run.
    pub wafers: Vec<LotWafer>,
    /// Defect positions on the wafer, µm from its centre (at most
    /// [`MAX_STACK_POINTS`]).
    pub stack: Vec<[f64; 2]>,
    /// Defects of the lot in all (the stack may show fewer).
    pub stack_total: i64,
    pub diameter_mm: f64,
    /// From the recipe's wafers before the lot (`None`: too few).
    pub limits: Option<ControlLimits>,
}

impl LotOverview {
    /// Complete wafers whose defect count is outside the control limits.
    pub fn excursions(&self) -> Vec<&LotWafer> {
        match &self.limits {
            Some(l) => self
                .wafers
                .iter()
                // A stopped, aborted or faulted run is partial: its count
                // says nothing about the process.
                .filter(|w| w.exit_status.as_deref() == Some("complete") && l.outside(w.defects))
                .collect(),
            None => Vec::new(),
        }
    }
}

/// The lot `lot` as recorded. An unknown lot is an error naming it.
pub fn lot_overview(conn: &Connection, lot: &str) -> Result<LotOverview> {
    let mut st = conn.prepare(
        "SELECT r.id, w.wafer_id, w.slot, r.recipe_id, r.exit_status,
                (SELECT COUNT(*) FROM defects d WHERE d.run = r.id), r.diameter_mm, r.started_unix_ms
         FROM runs r JOIN wafers w ON w.id = r.wafer JOIN lots l ON l.id = w.lot
         WHERE l.lot_id = ?1 ORDER BY r.started_unix_ms, r.id",
    )?;
    let mut diameter_mm = 0.0;
    let mut first_start = i64::MAX;
    let wafers: Vec<LotWafer> = st
        .query_map([lot], |r| {
            Ok((
                LotWafer {
                    run_id: r.get(0)?,
                    wafer: r.get(1)?,
                    slot: r.get(2)?,
                    recipe_id: r.get(3)?,
                    exit_status: r.get(4)?,
                    defects: r.get(5)?,
                },
                r.get::<_, f64>(6)?,
                r.get::<_, i64>(7)?,
            ))
        })?
        .map(|row| {
            row.map(|(w, d, started)| {
                diameter_mm = f64::max(diameter_mm, d);
                first_start = first_start.min(started);
                w
            })
        })
        .collect::<rusqlite::Result<_>>()?;
    if wafers.is_empty() {
        bail!("lot {lot:?} has no recorded runs");
    }
    let mut st = conn.prepare(
        "SELECT di.col * r.pitch_x_um - r.die_x_um / 2 + r.offset_x_um + d.x_um,
                di.row * r.pitch_y_um - r.die_y_um / 2 + r.offset_y_um + d.y_um
         FROM defects d
         JOIN dies di ON di.run = d.run AND di.die_index = d.die_index
         JOIN runs r ON r.id = d.run
         JOIN wafers w ON w.id = r.wafer JOIN lots l ON l.id = w.lot
         WHERE l.lot_id = ?1 LIMIT ?2",
    )?;
    let stack = st
        .query_map(params![lot, MAX_STACK_POINTS as i64], |r| {
            Ok([r.get::<_, f64>(0)?, r.get::<_, f64>(1)?])
        })?
        .collect::<rusqlite::Result<_>>()?;
    let stack_total = wafers.iter().map(|w| w.defects).sum();
    // The recipe's complete wafers before the lot (the lot's first
    // recipe: a lot runs one).
    let recipe = wafers[0].recipe_id.clone();
    let mut st = conn.prepare(
        "SELECT (SELECT COUNT(*) FROM defects d WHERE d.run = r.id)
         FROM runs r
         WHERE r.recipe_id = ?1 AND r.exit_status = 'complete' AND r.started_unix_ms < ?2
         ORDER BY r.started_unix_ms DESC, r.id DESC LIMIT ?3",
    )?;
    let history: Vec<i64> = st
        .query_map(params![recipe, first_start, LIMIT_HISTORY as i64], |r| {
            r.get(0)
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(LotOverview {
        lot: lot.to_owned(),
        wafers,
        stack,
        stack_total,
        diameter_mm,
        limits: ControlLimits::from_counts(&history),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_mean_plus_minus_three_sigma_and_need_history() {
        assert_eq!(ControlLimits::from_counts(&[10, 12, 11, 9]), None);
        let l = ControlLimits::from_counts(&[10, 12, 11, 9, 8]).unwrap();
        assert_eq!(l.n, 5);
        assert!((l.mean - 10.0).abs() < 1e-9);
        // Sample σ of 10,12,11,9,8 = sqrt(10/4).
        assert!((l.sigma - 2.5f64.sqrt()).abs() < 1e-9);
        assert!((l.upper - (10.0 + 3.0 * 2.5f64.sqrt())).abs() < 1e-9);
        assert_eq!(l.lower, 10.0 - 3.0 * 2.5f64.sqrt());
        assert!(l.outside(15) && l.outside(5) && !l.outside(14));
        // Never below zero.
        let wide = ControlLimits::from_counts(&[0, 0, 0, 0, 50]).unwrap();
        assert_eq!(wide.lower, 0.0);
    }
}
