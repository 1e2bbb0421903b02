//! Wafer geometry and the die grid it yields: which dies exist, where they
//! are, and which neighbours each has. Shared by the simulator, the
//! pipeline (neighbour comparison) and, later, recipes and KLARF export.

/// Where the orientation notch points, seen from above with y up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Notch {
    #[default]
    Down,
    Up,
    Left,
    Right,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WaferGeometry {
    pub diameter_mm: f64,
    /// Die step in x and y, µm.
    pub die_pitch_um: (f64, f64),
    /// Die size in x and y, µm (≤ pitch; the rest is the scribe street).
    pub die_size_um: (f64, f64),
    /// Ring at the wafer edge where no die is placed, mm.
    pub edge_exclusion_mm: f64,
    pub notch: Notch,
}

impl WaferGeometry {
    pub fn radius_um(&self) -> f64 {
        self.diameter_mm * 500.0
    }
}

/// One die on the wafer, in test-plan order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DieSite {
    /// Position in the plan (0-based), also the frame's `die_index`.
    pub index: u32,
    /// Grid column and row (KLARF XINDEX / YINDEX); (0, 0) is the die at the
    /// wafer centre, y grows upwards.
    pub col: i32,
    pub row: i32,
    /// Lower-left corner of the die (its origin), µm from the wafer centre.
    pub origin_um: (f64, f64),
    /// Whether the dies to the left and right exist (else an edge die,
    /// compared against the golden reference on that side).
    pub has_left: bool,
    pub has_right: bool,
}

impl DieSite {
    /// Whether `other` is the die just left or right of this one.
    pub fn is_row_neighbour_of(&self, other: &DieSite) -> bool {
        self.row == other.row && (self.col - other.col).abs() == 1
    }

    pub fn center_um(&self, g: &WaferGeometry) -> (f64, f64) {
        (
            self.origin_um.0 + g.die_size_um.0 / 2.0,
            self.origin_um.1 + g.die_size_um.1 / 2.0,
        )
    }
}

/// All dies that fit entirely inside the usable radius (wafer radius less
/// edge exclusion), ordered row by row from the top, serpentine (left to
/// right, then right to left), so consecutive dies in a row are physical
/// neighbours, as the neighbour comparison needs.
pub fn die_grid(g: &WaferGeometry) -> Vec<DieSite> {
    die_grid_offset(g, (0.0, 0.0))
}

/// As `die_grid`, with the grid shifted by `offset_um` from the wafer
/// centre (a recipe's die origin).
pub fn die_grid_offset(g: &WaferGeometry, offset_um: (f64, f64)) -> Vec<DieSite> {
    let usable = g.radius_um() - g.edge_exclusion_mm * 1000.0;
    let (px, py) = g.die_pitch_um;
    let (sx, sy) = g.die_size_um;
    if usable <= 0.0 || px <= 0.0 || py <= 0.0 {
        return Vec::new();
    }
    let origin = |col: i32, row: i32| {
        (
            col as f64 * px - sx / 2.0 + offset_um.0,
            row as f64 * py - sy / 2.0 + offset_um.1,
        )
    };
    let fits = |col: i32, row: i32| {
        let (x0, y0) = origin(col, row);
        [(x0, y0), (x0 + sx, y0), (x0, y0 + sy), (x0 + sx, y0 + sy)]
            .iter()
            .all(|(x, y)| x * x + y * y <= usable * usable)
    };
    let max_col = (usable / px).ceil() as i32 + 1;
    let max_row = (usable / py).ceil() as i32 + 1;
    let mut sites = Vec::new();
    let mut left_to_right = true;
    for row in (-max_row..=max_row).rev() {
        let mut cols: Vec<i32> = (-max_col..=max_col).filter(|&c| fits(c, row)).collect();
        if cols.is_empty() {
            continue;
        }
        if !left_to_right {
            cols.reverse();
        }
        left_to_right = !left_to_right;
        for col in cols {
            sites.push(DieSite {
                index: sites.len() as u32,
                col,
                row,
                origin_um: origin(col, row),
                has_left: fits(col - 1, row),
                has_right: fits(col + 1, row),
            });
        }
    }
    sites
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(d: f64, pitch: f64, excl: f64) -> WaferGeometry {
        WaferGeometry {
            diameter_mm: d,
            die_pitch_um: (pitch, pitch),
            die_size_um: (pitch - 100.0, pitch - 100.0),
            edge_exclusion_mm: excl,
            notch: Notch::Down,
        }
    }

    #[test]
    fn every_die_lies_inside_the_usable_radius() {
        let g = geometry(300.0, 10_000.0, 3.0);
        let sites = die_grid(&g);
        assert!(sites.len() > 500 && sites.len() < 707, "{}", sites.len());
        let r = g.radius_um() - 3000.0;
        for s in &sites {
            let (x, y) = s.origin_um;
            for (cx, cy) in [(x, y), (x + 9900.0, y + 9900.0), (x, y + 9900.0)] {
                assert!(cx.hypot(cy) <= r + 1e-6);
            }
        }
    }

    #[test]
    fn plan_is_serpentine_and_neighbours_are_consecutive() {
        let sites = die_grid(&geometry(200.0, 20_000.0, 5.0));
        for (i, pair) in sites.windows(2).enumerate() {
            assert_eq!(pair[0].index as usize, i);
            if pair[0].row == pair[1].row {
                assert_eq!((pair[0].col - pair[1].col).abs(), 1);
            }
        }
        for s in &sites {
            let left = sites.iter().any(|o| o.row == s.row && o.col == s.col - 1);
            assert_eq!(left, s.has_left);
        }
    }

    #[test]
    fn huge_exclusion_leaves_no_die() {
        assert!(die_grid(&geometry(200.0, 10_000.0, 100.0)).is_empty());
    }
}
