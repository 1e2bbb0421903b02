//! Rule-based defect classification from shape and contrast.

use super::result::DefectClass;

/// Features of one connected component.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub width: u32,
    pub height: u32,
    pub area: u32,
    pub mean_diff: f32,
}

/// The tunable thresholds of the class rules.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClassRules {
    /// A defect at least this long (px) and thin is a scratch.
    pub scratch_min_length_px: u32,
    /// A large defect with mean contrast below this is residue.
    pub residue_max_contrast: f32,
    /// Residue covers at least this many pixels.
    pub residue_min_area_px: u32,
}

impl Default for ClassRules {
    fn default() -> Self {
        Self {
            scratch_min_length_px: 24,
            residue_max_contrast: 45.0,
            residue_min_area_px: 120,
        }
    }
}

/// Class rules, strongest cue first:
/// - scratch: long and thin (diagonal lines fill little of their box,
///   axis-aligned ones are elongated);
/// - residue: a large, low-contrast film;
/// - pattern: a sharp rectangle of the wrong material (missing via, bridge);
/// - particle: a compact blob;
/// - unknown: anything else.
pub fn classify(s: Shape, rules: &ClassRules) -> DefectClass {
    let long = s.width.max(s.height) as f32;
    let short = s.width.min(s.height).max(1) as f32;
    let fill = s.area as f32 / (s.width.max(1) * s.height.max(1)) as f32;
    if long >= rules.scratch_min_length_px as f32 && (fill < 0.3 || long >= 5.0 * short) {
        DefectClass::Scratch
    } else if s.mean_diff < rules.residue_max_contrast && s.area >= rules.residue_min_area_px {
        DefectClass::Residue
    } else if fill >= 0.88 && short >= 4.0 && long <= 3.0 * short && s.area <= 400 {
        DefectClass::Pattern
    } else if fill >= 0.4 {
        DefectClass::Particle
    } else {
        DefectClass::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classify_default(s: Shape) -> DefectClass {
        classify(s, &ClassRules::default())
    }

    fn shape(width: u32, height: u32, area: u32, mean_diff: f32) -> Shape {
        Shape {
            width,
            height,
            area,
            mean_diff,
        }
    }

    #[test]
    fn typical_shapes() {
        assert_eq!(
            classify_default(shape(200, 200, 400, 80.0)),
            DefectClass::Scratch
        );
        assert_eq!(
            classify_default(shape(120, 3, 330, 80.0)),
            DefectClass::Scratch
        );
        assert_eq!(
            classify_default(shape(40, 30, 900, 33.0)),
            DefectClass::Residue
        );
        assert_eq!(
            classify_default(shape(6, 6, 36, 55.0)),
            DefectClass::Pattern
        );
        assert_eq!(
            classify_default(shape(10, 10, 78, 150.0)),
            DefectClass::Particle
        );
        assert_eq!(
            classify_default(shape(2, 2, 4, 90.0)),
            DefectClass::Particle
        );
        assert_eq!(
            classify_default(shape(20, 20, 60, 90.0)),
            DefectClass::Unknown
        );
    }
}
