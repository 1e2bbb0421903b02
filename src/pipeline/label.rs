//! Sparse connected-component labelling of flagged pixels.
//!
//! Flagged pixels arrive row by row as runs; each run is joined (union-find)
//! to the 8-connected runs of the row above. Only flagged pixels cost
//! anything, and every buffer is allocated once, at its capacity: a die with
//! more runs or components than that is marked overflowed, not grown.

use super::features::PixelMoments;

const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, Default)]
struct Run {
    y: u16,
    x0: u16,
    /// Exclusive end.
    x1: u16,
    sum: u32,
    peak: u8,
    peak_x: u16,
}

/// A finished component.
#[derive(Debug, Clone, Copy, Default)]
pub struct Component {
    pub bbox: [u16; 4],
    pub area: u32,
    pub sum: u64,
    pub peak: u8,
    pub peak_xy: (u16, u16),
    /// Position sums for shape features (elongation, orientation).
    pub moments: PixelMoments,
    sum_x: u64,
    sum_y: u64,
}

impl Component {
    pub fn centroid(&self) -> (f32, f32) {
        let a = self.area.max(1) as f64;
        (
            (self.sum_x as f64 / a + 0.5) as f32,
            (self.sum_y as f64 / a + 0.5) as f32,
        )
    }
}

pub struct Labeler {
    runs: Vec<Run>,
    parent: Vec<u32>,
    slot_of_root: Vec<u32>,
    components: Vec<Component>,
    /// Runs of the previous row with flags: `prev_start..row_start`.
    prev_start: usize,
    row_start: usize,
    prev_y: Option<u16>,
    pub overflowed: bool,
    pub flagged: u32,
}

impl Labeler {
    pub fn new(max_runs: usize, max_components: usize) -> Self {
        Self {
            runs: Vec::with_capacity(max_runs),
            parent: vec![NONE; max_runs],
            slot_of_root: vec![NONE; max_runs],
            components: Vec::with_capacity(max_components),
            prev_start: 0,
            row_start: 0,
            prev_y: None,
            overflowed: false,
            flagged: 0,
        }
    }

    pub fn reset(&mut self) {
        self.runs.clear();
        self.components.clear();
        self.prev_start = 0;
        self.row_start = 0;
        self.prev_y = None;
        self.overflowed = false;
        self.flagged = 0;
    }

    /// Extracts the runs of `diff > threshold` in row `y` (`x_offset` is the
    /// image column of `diff[0]`) and joins them to the row above.
    pub fn add_row(&mut self, y: u16, x_offset: u16, diff: &[u8], threshold: u8) {
        if self.prev_y.is_some_and(|p| p + 1 == y) {
            self.prev_start = self.row_start;
        } else {
            self.prev_start = self.runs.len();
        }
        self.row_start = self.runs.len();
        let mut x = 0;
        while x < diff.len() {
            // Nearly every pixel is unflagged: skip 32 at a time.
            if let Some(block) = diff.get(x..x + 32) {
                if block.iter().copied().max().unwrap_or(0) <= threshold {
                    x += 32;
                    continue;
                }
            }
            if diff[x] <= threshold {
                x += 1;
                continue;
            }
            let start = x;
            let (mut sum, mut peak, mut peak_x) = (0u32, 0u8, x);
            while x < diff.len() && diff[x] > threshold {
                sum += diff[x] as u32;
                if diff[x] > peak {
                    peak = diff[x];
                    peak_x = x;
                }
                x += 1;
            }
            if self.runs.len() == self.runs.capacity() {
                self.overflowed = true;
                return;
            }
            self.flagged += (x - start) as u32;
            let id = self.runs.len();
            self.runs.push(Run {
                y,
                x0: x_offset + start as u16,
                x1: x_offset + x as u16,
                sum,
                peak,
                peak_x: x_offset + peak_x as u16,
            });
            self.parent[id] = id as u32;
            // 8-connected to any run above overlapping [x0 - 1, x1 + 1).
            for above in self.prev_start..self.row_start {
                let a = self.runs[above];
                if a.x0 <= self.runs[id].x1 && self.runs[id].x0 <= a.x1 {
                    self.union(above as u32, id as u32);
                }
            }
        }
        self.prev_y = Some(y);
    }

    fn find(&mut self, mut i: u32) -> u32 {
        while self.parent[i as usize] != i {
            let p = self.parent[i as usize];
            self.parent[i as usize] = self.parent[p as usize]; // path halving
            i = p;
        }
        i
    }

    fn union(&mut self, a: u32, b: u32) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            let (lo, hi) = (ra.min(rb), ra.max(rb));
            self.parent[hi as usize] = lo;
        }
    }

    /// Gathers runs into components. Returns them in order of first pixel.
    pub fn finish(&mut self) -> &[Component] {
        for i in 0..self.runs.len() {
            let root = self.find(i as u32) as usize;
            self.slot_of_root[root] = NONE;
        }
        for i in 0..self.runs.len() {
            let root = self.find(i as u32) as usize;
            let r = self.runs[i];
            if self.slot_of_root[root] == NONE {
                if self.components.len() == self.components.capacity() {
                    self.overflowed = true;
                    continue;
                }
                self.slot_of_root[root] = self.components.len() as u32;
                self.components.push(Component {
                    bbox: [r.x0, r.y, r.x1, r.y + 1],
                    ..Component::default()
                });
            }
            let c = &mut self.components[self.slot_of_root[root] as usize];
            let len = (r.x1 - r.x0) as u64;
            c.bbox = [
                c.bbox[0].min(r.x0),
                c.bbox[1].min(r.y),
                c.bbox[2].max(r.x1),
                c.bbox[3].max(r.y + 1),
            ];
            c.area += len as u32;
            c.sum += r.sum as u64;
            c.sum_x += len * (r.x0 as u64 + r.x1 as u64 - 1) / 2;
            c.sum_y += len * r.y as u64;
            c.moments.add_run(r.y, r.x0, r.x1);
            if r.peak > c.peak {
                c.peak = r.peak;
                c.peak_xy = (r.peak_x, r.y);
            }
        }
        &self.components
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(rows: &[&str]) -> Vec<Component> {
        let mut l = Labeler::new(64, 16);
        for (y, row) in rows.iter().enumerate() {
            let diff: Vec<u8> = row
                .bytes()
                .map(|b| if b == b'#' { 100 } else { 0 })
                .collect();
            l.add_row(y as u16, 0, &diff, 50);
        }
        l.finish().to_vec()
    }

    #[test]
    fn joins_eight_connected_runs_and_separates_the_rest() {
        let c = label(&[
            "##....#.", //
            "..#...#.", // diagonal joins the first blob
            "........", "#.....##",
        ]);
        assert_eq!(c.len(), 4);
        assert_eq!((c[0].area, c[0].bbox), (3, [0, 0, 3, 2]));
        assert_eq!((c[1].area, c[1].bbox), (2, [6, 0, 7, 2]));
    }

    #[test]
    fn u_shape_merges_two_roots() {
        let c = label(&["#...#", "#...#", "#####"]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].area, 9);
    }

    #[test]
    fn overflow_is_reported_not_grown() {
        let mut l = Labeler::new(2, 2);
        l.add_row(0, 0, &[100, 0, 100, 0, 100], 50);
        assert!(l.overflowed);
    }
}
