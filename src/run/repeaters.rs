//! Repeaters: defects at the same position within the die on many dies of
//! a wafer. A defect on the reticle (the photomask) is printed into every
//! die the reticle exposes, so it shows up at one in-die position again and
//! again; a particle lands where it lands. Wafer-level analysis after a
//! run, not hot: plain `Vec` and `HashMap`.
//!
//! Positions must be in die coordinates (µm from the die origin) with each
//! die's own registration removed; if they are image positions of a stage
//! that repeats to a few pixels, the tolerance must cover that error.

use std::collections::HashMap;

/// One defect of a run, where the analysis needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DefectAt {
    /// The caller's id for the defect (e.g. its row in the results store).
    pub id: u64,
    pub die_index: u32,
    /// Position within the die, µm.
    pub x_um: f64,
    pub y_um: f64,
}

/// When defects at one in-die position count as a repeater.
///
/// The rule is: on at least `min_dies` distinct dies AND on at least
/// `min_die_fraction` of the inspected dies. The absolute floor keeps a
/// coincidence of two random defects out (with a tolerance of a few µm on
/// a 10 mm die, two unrelated defects line up by chance about once per
/// million pairs; three is far rarer still). The fraction keeps it
/// meaningful on a dirty wafer with thousands of defects, where a handful
/// of coincidences is expected. 10 % is low on purpose: a reticle that
/// carries a 3 × 3 array of dies prints its defect on only one die in 9.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RepeaterRules {
    /// Largest distance from a group's seed position, µm.
    pub tolerance_um: f64,
    pub min_dies: u32,
    pub min_die_fraction: f64,
}

impl RepeaterRules {
    /// Tolerance of two pixels (a centroid is good to about a pixel on
    /// each die) but no less than 2 µm, the stage's typical repeatability.
    pub fn for_pixel_size(pixel_um: f64) -> Self {
        Self {
            tolerance_um: (2.0 * pixel_um).max(2.0),
            min_dies: 3,
            min_die_fraction: 0.1,
        }
    }

    /// Dies a group must span on a run that inspected `inspected_dies`.
    pub fn required_dies(&self, inspected_dies: u32) -> u32 {
        let by_fraction = (self.min_die_fraction * inspected_dies as f64).ceil() as u32;
        self.min_dies.max(by_fraction)
    }
}

/// Defects at one in-die position on many dies.
#[derive(Debug, Clone, PartialEq)]
pub struct RepeaterGroup {
    /// Mean position of the members, µm.
    pub x_um: f64,
    pub y_um: f64,
    /// Distinct dies with a member (a die with two defects there counts
    /// once).
    pub die_count: u32,
    /// Ids of every member defect, in input order.
    pub members: Vec<u64>,
}

type Cell = (i64, i64);

fn cell_of(d: &DefectAt, size: f64) -> Cell {
    (
        (d.x_um / size).floor() as i64,
        (d.y_um / size).floor() as i64,
    )
}

fn distinct_dies(defects: &[DefectAt], indices: &[usize]) -> u32 {
    let mut dies: Vec<u32> = indices.iter().map(|&i| defects[i].die_index).collect();
    dies.sort_unstable();
    dies.dedup();
    dies.len() as u32
}

/// Finds the repeater groups of a run, most widespread first.
///
/// Greedy, densest first: every defect's neighbourhood (all defects within
/// the tolerance) is counted in distinct dies; the defect with the widest
/// neighbourhood seeds a group of its unclaimed neighbours, and so on. A
/// defect joins at most one group. Seeding from the densest spot rather
/// than in input order makes the result independent of the order dies were
/// inspected in.
pub fn find_repeaters(
    defects: &[DefectAt],
    inspected_dies: u32,
    rules: &RepeaterRules,
) -> Vec<RepeaterGroup> {
    let tolerance = rules.tolerance_um.max(f64::MIN_POSITIVE);
    let required = rules.required_dies(inspected_dies);
    // Cells as large as the tolerance: every neighbour within it is in the
    // same cell or one of the 8 around it.
    let mut grid: HashMap<Cell, Vec<usize>> = HashMap::new();
    for (i, d) in defects.iter().enumerate() {
        grid.entry(cell_of(d, tolerance)).or_default().push(i);
    }
    let neighbours_of = |i: usize| -> Vec<usize> {
        let d = &defects[i];
        let (cx, cy) = cell_of(d, tolerance);
        let mut near = Vec::new();
        for gx in cx - 1..=cx + 1 {
            for gy in cy - 1..=cy + 1 {
                for &j in grid.get(&(gx, gy)).map(Vec::as_slice).unwrap_or(&[]) {
                    let o = &defects[j];
                    if (o.x_um - d.x_um).hypot(o.y_um - d.y_um) <= tolerance {
                        near.push(j);
                    }
                }
            }
        }
        near.sort_unstable();
        near
    };
    let mut seeds: Vec<(u32, usize)> = (0..defects.len())
        .map(|i| (distinct_dies(defects, &neighbours_of(i)), i))
        .filter(|&(dies, _)| dies >= required)
        .collect();
    // Widest first; ties in input order, so the result is deterministic.
    seeds.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut claimed = vec![false; defects.len()];
    let mut groups = Vec::new();
    for (_, seed) in seeds {
        if claimed[seed] {
            continue;
        }
        let members: Vec<usize> = neighbours_of(seed)
            .into_iter()
            .filter(|&j| !claimed[j])
            .collect();
        let die_count = distinct_dies(defects, &members);
        if die_count < required {
            continue;
        }
        for &j in &members {
            claimed[j] = true;
        }
        let n = members.len() as f64;
        groups.push(RepeaterGroup {
            x_um: members.iter().map(|&j| defects[j].x_um).sum::<f64>() / n,
            y_um: members.iter().map(|&j| defects[j].y_um).sum::<f64>() / n,
            die_count,
            members: members.iter().map(|&j| defects[j].id).collect(),
        });
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.die_count));
    groups
}

/// Repeater analysis of a recorded run, at its end: every listed defect of
/// an inspected die, at its in-die position, grouped by `find_repeaters`
/// with the rules for the run's pixel size; each member of a group is
/// stored with the group's die count. Returns the marks (empty when the
/// run has no repeater).
pub fn mark_run_repeaters(
    store: &mut dyn crate::store::RunStore,
    run: u64,
    pixel_um: f64,
) -> anyhow::Result<Vec<crate::store::record::RepeaterMark>> {
    let (positions, inspected) = store.defect_positions(run)?;
    let at: Vec<DefectAt> = positions
        .iter()
        .enumerate()
        .map(|(k, p)| DefectAt {
            id: k as u64,
            die_index: p.die_index,
            x_um: p.x_um,
            y_um: p.y_um,
        })
        .collect();
    let groups = find_repeaters(&at, inspected, &RepeaterRules::for_pixel_size(pixel_um));
    let mut marks = Vec::new();
    for g in &groups {
        for &id in &g.members {
            let p = positions[id as usize];
            marks.push(crate::store::record::RepeaterMark {
                die_index: p.die_index,
                defect_no: p.defect_no,
                dies: g.die_count,
            });
        }
    }
    if !marks.is_empty() {
        store.mark_repeaters(run, &marks)?;
    }
    Ok(marks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(id: u64, die_index: u32, x_um: f64, y_um: f64) -> DefectAt {
        DefectAt {
            id,
            die_index,
            x_um,
            y_um,
        }
    }

    /// A small deterministic scatter (no RNG crate needed): positions on a
    /// 10 mm die that never land near each other.
    fn scattered(first_id: u64, dies: u32) -> Vec<DefectAt> {
        (0..dies * 4)
            .map(|k| {
                let x = (k as f64 * 7_919.0) % 10_000.0;
                let y = (k as f64 * 104_729.0 / 7.0) % 10_000.0;
                at(first_id + k as u64, k % dies, x, y)
            })
            .collect()
    }

    #[test]
    fn a_reticle_defect_on_five_of_ten_dies_is_one_group_with_its_count() {
        let rules = RepeaterRules::for_pixel_size(1.0);
        let mut defects = scattered(100, 10);
        // The same spot on dies 0, 2, 4, 6, 8, within a micrometre.
        for (k, die) in [0u32, 2, 4, 6, 8].into_iter().enumerate() {
            let jitter = (k as f64 - 2.0) * 0.4;
            defects.push(at(k as u64 + 1, die, 2_500.0 + jitter, 7_300.0 - jitter));
        }
        let groups = find_repeaters(&defects, 10, &rules);
        assert_eq!(groups.len(), 1, "{groups:?}");
        let g = &groups[0];
        assert_eq!(g.die_count, 5);
        assert_eq!(g.members, vec![1, 2, 3, 4, 5]);
        assert!((g.x_um - 2_500.0).abs() < 0.5 && (g.y_um - 7_300.0).abs() < 0.5);
    }

    #[test]
    fn two_dies_are_a_coincidence_not_a_repeater() {
        let rules = RepeaterRules::for_pixel_size(1.0);
        let defects = [at(1, 0, 500.0, 500.0), at(2, 7, 500.5, 500.0)];
        assert!(find_repeaters(&defects, 10, &rules).is_empty());
        let three = [
            at(1, 0, 500.0, 500.0),
            at(2, 7, 500.5, 500.0),
            at(3, 9, 499.5, 500.3),
        ];
        assert_eq!(find_repeaters(&three, 10, &rules).len(), 1);
    }

    #[test]
    fn two_defects_of_one_die_count_as_one_die() {
        let rules = RepeaterRules::for_pixel_size(1.0);
        let defects = [
            at(1, 0, 500.0, 500.0),
            at(2, 0, 500.5, 500.0),
            at(3, 4, 500.0, 500.5),
        ];
        assert!(find_repeaters(&defects, 5, &rules).is_empty());
    }

    #[test]
    fn on_a_large_wafer_three_dies_are_not_enough() {
        let rules = RepeaterRules::for_pixel_size(1.0);
        assert_eq!(rules.required_dies(100), 10);
        let on = |dies: u32| -> Vec<DefectAt> {
            (0..dies)
                .map(|d| at(d as u64, d * 3, 4_000.0, 4_000.0))
                .collect()
        };
        assert!(find_repeaters(&on(3), 100, &rules).is_empty());
        assert_eq!(find_repeaters(&on(10), 100, &rules)[0].die_count, 10);
    }

    #[test]
    fn nearby_spots_beyond_the_tolerance_are_separate_groups() {
        let rules = RepeaterRules::for_pixel_size(2.0); // 4 µm
        let mut defects = Vec::new();
        for die in 0..4u32 {
            defects.push(at(die as u64, die, 1_000.0, 1_000.0));
            defects.push(at(100 + die as u64, die, 1_012.0, 1_000.0));
        }
        let groups = find_repeaters(&defects, 4, &rules);
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert!(groups
            .iter()
            .all(|g| g.die_count == 4 && g.members.len() == 4));
    }

    #[test]
    fn a_group_straddling_a_grid_cell_boundary_is_found_whole() {
        let rules = RepeaterRules::for_pixel_size(1.0); // cells of 2 µm
        let defects = [
            at(1, 0, 1_999.6, 3_000.0),
            at(2, 1, 2_000.4, 3_000.0),
            at(3, 2, 2_000.0, 2_999.8),
        ];
        let groups = find_repeaters(&defects, 3, &rules);
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].die_count, 3);
    }
}
