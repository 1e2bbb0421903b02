//! Merging the fragments of one scratch into one defect.
//!
//! A faint scratch crosses the threshold only in places, so labelling finds
//! a dashed line of short components; reported as they are, one scratch
//! becomes several "unknown" or "particle" defects. Fragments that lie on
//! one line (same orientation, centroids on each other's axis, small gaps
//! along it) are merged in the fixed-capacity `DieResult`, in place and
//! without allocation: O(n²) pairs per pass over at most 64 defects.

use super::classify::ClassRules;
use super::features::CentralMoments;
use super::result::{Defect, DefectClass, DieResult};

/// When two components are taken for pieces of one scratch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScratchMergeRules {
    /// Each piece is at least this elongated (length / width) ...
    pub min_fragment_elongation: f32,
    /// ... and at least this long, px: shorter blobs have no direction.
    pub min_fragment_length_px: f32,
    /// Largest difference of orientation, degrees (short pieces get the
    /// pixel grid's own angular uncertainty on top, see `angle_tolerance`).
    pub max_angle_deg: f32,
    /// Largest distance of the shorter piece's centroid from the longer
    /// piece's axis, px.
    pub max_offset_px: f32,
    /// Largest gap between the pieces' ends along the axis, px.
    pub max_gap_px: f32,
}

impl Default for ScratchMergeRules {
    fn default() -> Self {
        Self {
            min_fragment_elongation: 3.0,
            min_fragment_length_px: 5.0,
            max_angle_deg: 10.0,
            max_offset_px: 3.0,
            max_gap_px: 24.0,
        }
    }
}

fn is_fragment(d: &Defect, rules: &ScratchMergeRules) -> bool {
    d.moments.elongation() >= rules.min_fragment_elongation
        && d.moments.length_px() >= rules.min_fragment_length_px
}

/// The orientation of a piece L px long is only known to about
/// atan(1 / L) on the pixel grid: a 6-px dash of a 7° scratch may well be
/// drawn horizontal.
fn angle_tolerance(rules: &ScratchMergeRules, shorter_length: f32) -> f32 {
    rules
        .max_angle_deg
        .max((1.0 / shorter_length.max(1.0)).atan().to_degrees())
}

/// Whether `a` and `b` are pieces of one straight scratch.
pub fn are_collinear_pieces(a: &Defect, b: &Defect, rules: &ScratchMergeRules) -> bool {
    if !is_fragment(a, rules) || !is_fragment(b, rules) {
        return false;
    }
    let (long, short) = if a.moments.length_px() >= b.moments.length_px() {
        (a, b)
    } else {
        (b, a)
    };
    let (long_len, short_len) = (long.moments.length_px(), short.moments.length_px());
    let angle_diff = {
        let d = (long.moments.orientation_deg() - short.moments.orientation_deg()).abs() % 180.0;
        d.min(180.0 - d)
    };
    if angle_diff > angle_tolerance(rules, short_len) {
        return false;
    }
    let (s, c) = long.moments.orientation_deg().to_radians().sin_cos();
    let (dx, dy) = (short.x_px - long.x_px, short.y_px - long.y_px);
    let along = (dx * c + dy * s).abs();
    let across = (-dx * s + dy * c).abs();
    let gap = along - (long_len + short_len) / 2.0;
    across <= rules.max_offset_px && gap <= rules.max_gap_px
}

/// One defect covering both pieces: exact area, centroid and moments;
/// contrast and polarity of the stronger piece.
fn merged(a: &Defect, b: &Defect, class_rules: &ClassRules) -> Defect {
    let area = a.area_px + b.area_px;
    let (wa, wb) = (a.area_px as f32, b.area_px as f32);
    let total = (wa + wb).max(1.0);
    let moments = CentralMoments::combine(
        (a.moments, a.area_px, (a.x_px, a.y_px)),
        (b.moments, b.area_px, (b.x_px, b.y_px)),
    );
    let long_enough = moments.length_px() >= class_rules.scratch_min_length_px as f32
        && moments.elongation() >= class_rules.scratch_min_elongation;
    let stronger = if a.peak_diff >= b.peak_diff { a } else { b };
    let larger = if a.area_px >= b.area_px { a } else { b };
    Defect {
        x_px: (a.x_px * wa + b.x_px * wb) / total,
        y_px: (a.y_px * wa + b.y_px * wb) / total,
        bbox: [
            a.bbox[0].min(b.bbox[0]),
            a.bbox[1].min(b.bbox[1]),
            a.bbox[2].max(b.bbox[2]),
            a.bbox[3].max(b.bbox[3]),
        ],
        area_px: area,
        peak_diff: stronger.peak_diff,
        mean_diff: (a.mean_diff * wa + b.mean_diff * wb) / total,
        polarity: stronger.polarity,
        // Two collinear pieces too short together to be a scratch keep the
        // larger piece's class rather than being promoted.
        class: if long_enough {
            DefectClass::Scratch
        } else {
            larger.class
        },
        moments,
    }
}

/// Merges collinear scratch pieces among `out`'s defects until no pair is
/// left, keeping the order of first appearance. Returns how many defects
/// were absorbed. Merging a pair can line it up with a third piece, so it
/// repeats until a pass merges nothing.
pub fn merge_scratch_fragments(
    out: &mut DieResult,
    rules: &ScratchMergeRules,
    class_rules: &ClassRules,
) -> u32 {
    let mut absorbed = 0;
    loop {
        let mut merged_any = false;
        let mut i = 0;
        while i < out.count as usize {
            let mut j = i + 1;
            while j < out.count as usize {
                if are_collinear_pieces(&out.defects[i], &out.defects[j], rules) {
                    out.defects[i] = merged(&out.defects[i], &out.defects[j], class_rules);
                    out.defects.copy_within(j + 1..out.count as usize, j);
                    out.count -= 1;
                    absorbed += 1;
                    merged_any = true;
                } else {
                    j += 1;
                }
            }
            i += 1;
        }
        if !merged_any {
            return absorbed;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::features::PixelMoments;
    use crate::pipeline::result::Polarity;

    /// A defect made of the given pixels, as the detector would report it.
    fn defect_of(pixels: &[(u16, u16)], class: DefectClass) -> Defect {
        let mut m = PixelMoments::default();
        let mut bbox = [u16::MAX, u16::MAX, 0, 0];
        for &(x, y) in pixels {
            m.add_run(y, x, x + 1);
            bbox = [
                bbox[0].min(x),
                bbox[1].min(y),
                bbox[2].max(x + 1),
                bbox[3].max(y + 1),
            ];
        }
        let n = m.n as f32;
        Defect {
            x_px: m.sum_x as f32 / n,
            y_px: m.sum_y as f32 / n,
            bbox,
            area_px: m.n as u32,
            peak_diff: 40,
            mean_diff: 30.0,
            polarity: Polarity::Dark,
            class,
            moments: m.central(),
        }
    }

    /// Pixels of the line from (x0, y0) at `deg`, for `along` = a..b px,
    /// 2 px thick.
    fn line(x0: f32, y0: f32, deg: f32, a: i32, b: i32) -> Vec<(u16, u16)> {
        let (s, c) = deg.to_radians().sin_cos();
        let mut px = Vec::new();
        for t in a..b {
            for w in 0..2 {
                let (x, y) = (
                    x0 + t as f32 * c - w as f32 * s,
                    y0 + t as f32 * s + w as f32 * c,
                );
                let p = (x.round() as u16, y.round() as u16);
                if !px.contains(&p) {
                    px.push(p);
                }
            }
        }
        px
    }

    fn die_of(defects: &[Defect]) -> DieResult {
        let mut r = DieResult::default();
        for &d in defects {
            r.push(d);
        }
        r
    }

    fn merge(r: &mut DieResult) -> u32 {
        merge_scratch_fragments(r, &ScratchMergeRules::default(), &ClassRules::default())
    }

    #[test]
    fn a_dashed_line_of_five_pieces_becomes_one_scratch() {
        for deg in [0.0, 7.0, 33.0, 90.0, 128.0] {
            let pieces: Vec<Defect> = (0..5)
                .map(|k| {
                    defect_of(
                        &line(100.0, 100.0, deg, k * 16, k * 16 + 10),
                        DefectClass::Unknown,
                    )
                })
                .collect();
            let mut r = die_of(&pieces);
            assert_eq!(merge(&mut r), 4, "{deg}°");
            let d = r.defects()[0];
            assert_eq!(r.count, 1, "{deg}°");
            assert_eq!(d.class, DefectClass::Scratch, "{deg}°");
            assert_eq!(d.area_px, pieces.iter().map(|p| p.area_px).sum::<u32>());
            // The moment length of a dashed line comes out a little long:
            // its pixels sit nearer its ends than a solid bar's do.
            let length = d.moments.length_px();
            assert!((70.0..84.0).contains(&length), "{deg}°: {length}");
        }
    }

    #[test]
    fn two_parallel_scratches_30_px_apart_stay_two() {
        let mut r = die_of(&[
            defect_of(&line(50.0, 50.0, 20.0, 0, 60), DefectClass::Scratch),
            defect_of(&line(50.0, 80.0, 20.0, 0, 60), DefectClass::Scratch),
        ]);
        assert_eq!(merge(&mut r), 0);
        assert_eq!(r.count, 2);
    }

    #[test]
    fn a_particle_beside_a_scratch_stays_a_particle() {
        let disc: Vec<(u16, u16)> = (0..9u16)
            .flat_map(|x| (0..9u16).map(move |y| (x + 120, y + 46)))
            .filter(|&(x, y)| (x as f32 - 124.0).hypot(y as f32 - 50.0) <= 4.0)
            .collect();
        let mut r = die_of(&[
            defect_of(&line(50.0, 50.0, 0.0, 0, 60), DefectClass::Scratch),
            defect_of(&disc, DefectClass::Particle),
        ]);
        assert_eq!(merge(&mut r), 0);
        assert_eq!(r.defects()[1].class, DefectClass::Particle);
    }

    #[test]
    fn pieces_too_far_apart_or_crossing_are_not_merged() {
        let mut far = die_of(&[
            defect_of(&line(20.0, 50.0, 0.0, 0, 30), DefectClass::Scratch),
            defect_of(&line(20.0, 50.0, 0.0, 90, 120), DefectClass::Scratch),
        ]);
        assert_eq!(merge(&mut far), 0);
        let mut crossing = die_of(&[
            defect_of(&line(20.0, 80.0, 0.0, 0, 60), DefectClass::Scratch),
            defect_of(&line(50.0, 40.0, 90.0, 0, 60), DefectClass::Scratch),
        ]);
        assert_eq!(merge(&mut crossing), 0);
    }
}
