//! Rule-based defect classification from shape, texture and contrast
//! features (see `features`).
//!
//! The rules are written in quantities that do not depend on how a
//! particular image generator draws its defects: elongation and length from
//! second moments (so a scratch is a scratch in any orientation), texture
//! as solidity, and contrast relative to the die's detection threshold (so
//! "low contrast" means the same at noise σ 2 and σ 12). Their accuracy on
//! shapes drawn independently of the simulator is measured by
//! `tests/classify_features.rs` on `tests/data/defect_features.csv`.
//!
//! Shape alone cannot tell a missing 4 px contact from a small particle;
//! for compact defects the detector also asks the reference
//! (`replaces_with_neighbouring_material`): a closed feature of the
//! reference that T shows as the material around it is a pattern defect.

use super::features::DefectFeatures;
use super::result::DefectClass;

/// The tunable thresholds of the class rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassRules {
    /// A scratch is at least this long (px, along its own axis) ...
    ///
    /// 16 by default: longer than any edge of a pattern feature that a
    /// misregistration streak or a pattern defect can draw as a thin line
    /// (contacts and vias are 4–10 px, the simulator's bridge 10 × 14 px,
    /// a line 10 px wide), and 4× the width of a 2–4 px line, so the
    /// elongation rule below and this one agree on where a line starts.
    /// (It was 24, which the shortest scratches, and the merged pieces of
    /// a faint one at σ ≈ 8, fell short of.)
    pub scratch_min_length_px: u32,
    /// ... and at least this many times longer than wide.
    pub scratch_min_elongation: f32,
    /// Residue covers at least this many pixels ...
    pub residue_min_area_px: u32,
    /// ... with a mean difference of at most this many detection
    /// thresholds: a faint film, not a sharp object.
    pub residue_max_contrast_ratio: f32,
}

impl Default for ClassRules {
    fn default() -> Self {
        Self {
            scratch_min_length_px: 16,
            scratch_min_elongation: 4.0,
            residue_min_area_px: 120,
            residue_max_contrast_ratio: 2.0,
        }
    }
}

/// A rectangle of the wrong material fills its axis-aligned box; a disc
/// fills π/4 ≈ 0.79 of it, so 0.85 separates them with margin for a
/// ragged edge.
const PATTERN_MIN_BOX_FILL: f32 = 0.85;
/// Both sides of a pattern defect span at least this many pixels (smaller
/// blobs fill their box whatever their shape).
const PATTERN_MIN_SIDE_PX: u32 = 4;
/// A pattern defect is a compact rectangle (a via, a bridge), not a line.
const PATTERN_MAX_ELONGATION: f32 = 3.0;
/// A solid blob fills about all of its equivalent ellipse; half of it
/// still is a particle with a ragged edge, less is speckle or a ring.
const PARTICLE_MIN_SOLIDITY: f32 = 0.5;

/// Class rules, strongest cue first:
/// - scratch: long and thin along its own axis, any orientation;
/// - residue: large and faint relative to the threshold;
/// - pattern: a solid axis-aligned rectangle;
/// - particle: a solid, compact blob;
/// - unknown: anything else (short lines, rings, speckle).
pub fn classify(f: &DefectFeatures, rules: &ClassRules) -> DefectClass {
    let elongated = f.elongation() >= rules.scratch_min_elongation;
    if elongated && f.length_px() >= rules.scratch_min_length_px as f32 {
        DefectClass::Scratch
    } else if f.area_px >= rules.residue_min_area_px
        && f.relative_contrast() <= rules.residue_max_contrast_ratio
    {
        DefectClass::Residue
    } else if f.box_fill() >= PATTERN_MIN_BOX_FILL
        && f.bbox_w.min(f.bbox_h) >= PATTERN_MIN_SIDE_PX
        && f.elongation() <= PATTERN_MAX_ELONGATION
    {
        DefectClass::Pattern
    } else if !elongated && f.solidity() >= PARTICLE_MIN_SOLIDITY {
        DefectClass::Particle
    } else {
        DefectClass::Unknown
    }
}

/// What T and the (gain-mapped) reference show over a compact defect's
/// bounding box and along a line 2 px outside each of its sides, grey
/// levels: the context the shape rules do not see.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PatternContext {
    pub test_inside: f32,
    pub reference_inside: f32,
    /// The reference outside the box: above, below, left, right.
    pub reference_sides: [f32; 4],
}

/// The largest box side, px, for which the reference is consulted: a
/// contact, a via or a bridge across a gap spans a few line widths; a
/// larger defect is not a pattern feature gone wrong, and the bound keeps
/// the cost per defect small.
pub const PATTERN_CONTEXT_MAX_SIDE_PX: u32 = 32;

/// Whether T over the defect shows the material the reference has all
/// around it, where the reference itself has another: a closed feature
/// (a contact, a via) gone, or one added. All four sides must be one
/// material (within half a threshold of their mean), the reference inside
/// must differ from it by at least a threshold (there is a feature
/// there), and T inside must be nearer the surrounding level than the
/// reference's own.
///
/// A particle on a flat surface fails the second test; a particle on a
/// feature has its own level, which fails the third unless it happens to
/// match the surrounding material, and then it looks exactly like the
/// feature gone. Open features are left to the shape rules: across a
/// line the sides differ (line to the left and right, oxide above and
/// below), and a round particle darkening a line that wide would pass
/// for a cut as readily as a bridge passes for a particle.
pub fn replaces_with_neighbouring_material(ctx: &PatternContext, threshold: f32) -> bool {
    let sides = ctx.reference_sides;
    let around = sides.iter().sum::<f32>() / 4.0;
    let feature = (ctx.reference_inside - around).abs();
    sides.iter().all(|s| (s - around).abs() <= threshold / 2.0)
        && feature >= threshold
        && (ctx.test_inside - around).abs() <= feature / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::features::PixelMoments;
    use crate::pipeline::result::Polarity;

    /// Features of the pixels for which `inside(x, y)` holds in a 200²
    /// window, at a mean difference of `contrast` thresholds.
    fn drawn(inside: impl Fn(f32, f32) -> bool, contrast: f32) -> DefectFeatures {
        let mut m = PixelMoments::default();
        let (mut x0, mut y0, mut x1, mut y1) = (u16::MAX, u16::MAX, 0, 0);
        for y in 0..200u16 {
            for x in 0..200u16 {
                if inside(x as f32, y as f32) {
                    m.add_run(y, x, x + 1);
                    (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x + 1), y1.max(y + 1));
                }
            }
        }
        DefectFeatures {
            area_px: m.n as u32,
            bbox_w: (x1 - x0) as u32,
            bbox_h: (y1 - y0) as u32,
            moments: m.central(),
            polarity: Polarity::Dark,
            mean_diff: 20.0 * contrast,
            peak_diff: (30.0 * contrast).min(255.0) as u8,
            threshold: 20.0,
        }
    }

    fn class_of(inside: impl Fn(f32, f32) -> bool, contrast: f32) -> DefectClass {
        classify(&drawn(inside, contrast), &ClassRules::default())
    }

    /// Distance of (x, y) from the segment through (100, 100) at `deg`.
    fn off_line(x: f32, y: f32, deg: f32, half_length: f32) -> Option<f32> {
        let (s, c) = deg.to_radians().sin_cos();
        let (dx, dy) = (x - 100.0, y - 100.0);
        let along = dx * c + dy * s;
        (along.abs() <= half_length).then_some((-dx * s + dy * c).abs())
    }

    #[test]
    fn a_scratch_is_a_scratch_in_every_orientation() {
        for deg in (0..180).step_by(15) {
            let line = |x, y| off_line(x, y, deg as f32, 40.0).is_some_and(|d| d <= 1.0);
            assert_eq!(class_of(line, 3.0), DefectClass::Scratch, "{deg}°");
        }
    }

    #[test]
    fn a_short_line_is_not_a_scratch() {
        let line = |x, y| off_line(x, y, 30.0, 6.0).is_some_and(|d| d <= 1.0);
        assert_ne!(class_of(line, 3.0), DefectClass::Scratch);
    }

    #[test]
    fn the_reference_tells_a_missing_contact_or_bridge_from_a_particle() {
        let ctx = |t, r, sides| PatternContext {
            test_inside: t,
            reference_inside: r,
            reference_sides: sides,
        };
        let oxide = [55.0; 4];
        // A contact (215) gone to oxide.
        assert!(replaces_with_neighbouring_material(
            &ctx(58.0, 190.0, oxide),
            40.0
        ));
        // A contact added where the reference has oxide.
        assert!(replaces_with_neighbouring_material(
            &ctx(200.0, 55.0, [210.0; 4]),
            40.0
        ));
        // Metal across the oxide gap between two lines (a bridge), or a
        // line darkened across its width: open features are not judged.
        let lines_above_and_below = [160.0, 158.0, 55.0, 55.0];
        assert!(!replaces_with_neighbouring_material(
            &ctx(150.0, 60.0, lines_above_and_below),
            40.0
        ));
        // A particle on flat oxide: the reference has no feature there.
        assert!(!replaces_with_neighbouring_material(
            &ctx(150.0, 55.0, oxide),
            40.0
        ));
        // A bright particle on a contact: its own level, not the oxide's.
        assert!(!replaces_with_neighbouring_material(
            &ctx(250.0, 190.0, oxide),
            40.0
        ));
        // Different materials on opposite sides: no one material to match.
        assert!(!replaces_with_neighbouring_material(
            &ctx(150.0, 60.0, [160.0, 55.0, 55.0, 160.0]),
            40.0
        ));
    }

    #[test]
    fn residue_is_judged_by_contrast_relative_to_the_threshold() {
        let blob = |x: f32, y: f32| (x - 100.0).hypot((y - 100.0) * 1.3) <= 12.0;
        assert_eq!(class_of(blob, 1.5), DefectClass::Residue);
        // The same blob, sharp against the threshold, is a (big) particle.
        assert_eq!(class_of(blob, 4.0), DefectClass::Particle);
    }

    #[test]
    fn rectangles_are_pattern_discs_are_particles_rings_are_unknown() {
        let rect = |x: f32, y: f32| (95.0..103.0).contains(&x) && (96.0..102.0).contains(&y);
        assert_eq!(class_of(rect, 4.0), DefectClass::Pattern);
        let disc = |x: f32, y: f32| (x - 100.0).hypot(y - 100.0) <= 5.0;
        assert_eq!(class_of(disc, 4.0), DefectClass::Particle);
        let tiny = |x: f32, y: f32| (100.0..102.0).contains(&x) && (100.0..102.0).contains(&y);
        assert_eq!(class_of(tiny, 4.0), DefectClass::Particle);
        let ring = |x: f32, y: f32| {
            let r = (x - 100.0).hypot(y - 100.0);
            (9.0..=10.5).contains(&r)
        };
        assert_eq!(class_of(ring, 4.0), DefectClass::Unknown);
    }
}
