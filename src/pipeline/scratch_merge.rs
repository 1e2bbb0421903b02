//! Merging the fragments of one scratch into one defect.
//!
//! A faint scratch crosses the threshold only in places, so labelling finds
//! a dashed line of short components; reported as they are, one scratch
//! becomes several "unknown" or "particle" defects. Fragments that lie on
//! one line (same orientation, centroids on each other's axis, small gaps
//! along it) are merged in the fixed-capacity `DieResult`, in place and
//! without allocation: O(n²) pairs per pass over at most 64 defects.
//! At σ ≈ 8 a faint scratch also leaves dots with no direction of their
//! own: a narrow dot on a piece's axis joins it, and three narrow dots on
//! one line are merged (O(n³) triples, tried only when no pair merges).

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
    /// Widest a directionless dot may be and still be taken for a dash of
    /// a scratch when three line up (`dots_on_one_line`), px: a scratch
    /// line 1.5–3 px wide, blurred by the optics, crosses the threshold
    /// over at most about 4 px across.
    pub max_dot_width_px: f32,
}

impl Default for ScratchMergeRules {
    fn default() -> Self {
        Self {
            min_fragment_elongation: 3.0,
            min_fragment_length_px: 5.0,
            max_angle_deg: 10.0,
            max_offset_px: 3.0,
            max_gap_px: 24.0,
            max_dot_width_px: 4.0,
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

/// Whether `short`, too short or too round to show a direction of its own,
/// may still be a dash of the line `long` gives: no wider than that line
/// plus the offset allowed across it (a dash of one scratch has the
/// scratch's width; a solid disc of radius r measures √3·r across by its
/// moments, so beside a 2-px scratch a particle of r ≥ 3 stays a
/// particle). Whether it lies on the line is then judged by its centroid
/// alone.
fn is_dash_of(short: &Defect, long: &Defect, rules: &ScratchMergeRules) -> bool {
    short.moments.width_px() <= long.moments.width_px() + rules.max_offset_px
}

/// Whether `a` and `b` are pieces of one straight scratch. The longer
/// piece must show a direction (a fragment); the shorter one either shows
/// one that agrees, or is a narrow dash (`is_dash_of`) on the longer one's
/// axis: at σ ≈ 8 a faint scratch breaks into one long piece and 2–6 px
/// dots whose own moments say nothing about the line.
pub fn are_collinear_pieces(a: &Defect, b: &Defect, rules: &ScratchMergeRules) -> bool {
    let (long, short) = if a.moments.length_px() >= b.moments.length_px() {
        (a, b)
    } else {
        (b, a)
    };
    if !is_fragment(long, rules) {
        return false;
    }
    let (long_len, short_len) = (long.moments.length_px(), short.moments.length_px());
    if is_fragment(short, rules) {
        let angle_diff = {
            let d =
                (long.moments.orientation_deg() - short.moments.orientation_deg()).abs() % 180.0;
            d.min(180.0 - d)
        };
        if angle_diff > angle_tolerance(rules, short_len) {
            return false;
        }
    } else if !is_dash_of(short, long, rules) {
        return false;
    }
    let (s, c) = long.moments.orientation_deg().to_radians().sin_cos();
    let (dx, dy) = (short.x_px - long.x_px, short.y_px - long.y_px);
    let along = (dx * c + dy * s).abs();
    let across = (-dx * s + dy * c).abs();
    let gap = along - (long_len + short_len) / 2.0;
    across <= rules.max_offset_px && gap <= rules.max_gap_px
}

/// A piece too short or round to show a direction of its own, and narrow
/// enough to be a dash of a scratch.
fn is_dot(d: &Defect, rules: &ScratchMergeRules) -> bool {
    !is_fragment(d, rules) && d.moments.width_px() <= rules.max_dot_width_px
}

/// Whether three directionless dots are the dashes of one line: a faint
/// scratch at threshold may break into nothing but 2–5 px dots. Two dots
/// always lie on a line; a third on the same line, within the offset
/// allowed across it and between the other two, with no gap along it
/// longer than allowed, is the evidence.
pub fn dots_on_one_line(p: &Defect, q: &Defect, r: &Defect, rules: &ScratchMergeRules) -> bool {
    if !(is_dot(p, rules) && is_dot(q, rules) && is_dot(r, rules)) {
        return false;
    }
    let dist = |a: &Defect, b: &Defect| (a.x_px - b.x_px).hypot(a.y_px - b.y_px);
    // The two farthest apart are the ends, the third the middle.
    let (pq, pr, qr) = (dist(p, q), dist(p, r), dist(q, r));
    let (a, b, m) = if pq >= pr && pq >= qr {
        (p, q, r)
    } else if pr >= qr {
        (p, r, q)
    } else {
        (q, r, p)
    };
    let span = dist(a, b);
    if span <= 0.0 {
        return false;
    }
    let (c, s) = ((b.x_px - a.x_px) / span, (b.y_px - a.y_px) / span);
    let (dx, dy) = (m.x_px - a.x_px, m.y_px - a.y_px);
    let along = dx * c + dy * s;
    let across = (-dx * s + dy * c).abs();
    let half = |d: &Defect| d.moments.length_px() / 2.0;
    let gap_am = along - half(a) - half(m);
    let gap_mb = span - along - half(m) - half(b);
    across <= rules.max_offset_px
        && (0.0..=span).contains(&along)
        && gap_am <= rules.max_gap_px
        && gap_mb <= rules.max_gap_px
}

/// Removes defect `k` of `out`, keeping the order of the rest.
fn remove_at(out: &mut DieResult, k: usize) {
    out.defects.copy_within(k + 1..out.count as usize, k);
    out.count -= 1;
}

/// Finds one triple of dots on one line (`dots_on_one_line`) and merges
/// it into its first piece. Returns whether it did.
fn merge_one_dotted_line(
    out: &mut DieResult,
    rules: &ScratchMergeRules,
    class_rules: &ClassRules,
) -> bool {
    let n = out.count as usize;
    for i in 0..n {
        for j in i + 1..n {
            for k in j + 1..n {
                let (p, q, r) = (out.defects[i], out.defects[j], out.defects[k]);
                if dots_on_one_line(&p, &q, &r, rules) {
                    out.defects[i] = merged(&merged(&p, &q, class_rules), &r, class_rules);
                    remove_at(out, k);
                    remove_at(out, j);
                    return true;
                }
            }
        }
    }
    false
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
                    remove_at(out, j);
                    absorbed += 1;
                    merged_any = true;
                } else {
                    j += 1;
                }
            }
            i += 1;
        }
        if !merged_any {
            // Dashes with no direction of their own, three on a line,
            // become one piece that may then pick up more (`is_dash_of`).
            if !merge_one_dotted_line(out, rules, class_rules) {
                return absorbed;
            }
            absorbed += 2;
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

    /// A disc of radius `r` about (cx, cy).
    fn disc(cx: f32, cy: f32, r: f32) -> Vec<(u16, u16)> {
        let n = (2.0 * r + 2.0) as u16;
        let (x0, y0) = ((cx - r - 1.0) as u16, (cy - r - 1.0) as u16);
        (0..n)
            .flat_map(|i| (0..n).map(move |j| (x0 + i, y0 + j)))
            .filter(|&(x, y)| (x as f32 - cx).hypot(y as f32 - cy) <= r)
            .collect()
    }

    #[test]
    fn short_dashes_on_a_pieces_axis_join_it() {
        // A 12-px piece at 20° and a 4-px dash (no direction of its own)
        // 6 px beyond its end, on its axis.
        for deg in [0.0, 20.0, 135.0] {
            let mut r = die_of(&[
                defect_of(&line(100.0, 100.0, deg, 0, 12), DefectClass::Unknown),
                defect_of(&line(100.0, 100.0, deg, 18, 22), DefectClass::Particle),
            ]);
            assert_eq!(merge(&mut r), 1, "{deg}°");
        }
    }

    #[test]
    fn three_dots_on_a_line_become_one_scratch_two_do_not() {
        // 3-px dashes every 8 px along 30°: no piece has a direction.
        let dots: Vec<Defect> = (0..3)
            .map(|k| {
                defect_of(
                    &line(100.0, 100.0, 30.0, k * 8, k * 8 + 3),
                    DefectClass::Particle,
                )
            })
            .collect();
        let mut two = die_of(&dots[..2]);
        assert_eq!(merge(&mut two), 0);
        let mut three = die_of(&dots);
        assert_eq!(merge(&mut three), 2);
        assert_eq!(three.count, 1);
        // Together they span 19 px, over the 16 px of a scratch.
        assert_eq!(three.defects()[0].class, DefectClass::Scratch);
        // The same dots 4 px off the line through the other two stay apart.
        let mut bent = die_of(&dots);
        bent.defects[1].y_px += 4.0;
        assert_eq!(merge(&mut bent), 0);
    }

    #[test]
    fn three_small_particles_in_a_row_stay_particles() {
        // Discs of radius 3 (6 px wide) are not dashes of a scratch.
        let mut r = die_of(&[
            defect_of(&disc(100.0, 100.0, 3.0), DefectClass::Particle),
            defect_of(&disc(112.0, 100.0, 3.0), DefectClass::Particle),
            defect_of(&disc(124.0, 100.0, 3.0), DefectClass::Particle),
            defect_of(&line(40.0, 100.0, 0.0, 0, 40), DefectClass::Scratch),
        ]);
        assert_eq!(merge(&mut r), 0);
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
