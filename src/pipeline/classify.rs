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

/// Class rules, strongest cue first:
/// - scratch: long and thin (diagonal lines fill little of their box,
///   axis-aligned ones are elongated);
/// - residue: a large, low-contrast film;
/// - pattern: a sharp rectangle of the wrong material (missing via, bridge);
/// - particle: a compact blob;
/// - unknown: anything else.
pub fn classify(s: Shape) -> DefectClass {
    let long = s.width.max(s.height) as f32;
    let short = s.width.min(s.height).max(1) as f32;
    let fill = s.area as f32 / (s.width.max(1) * s.height.max(1)) as f32;
    if long >= 24.0 && (fill < 0.3 || long >= 5.0 * short) {
        DefectClass::Scratch
    } else if s.mean_diff < 45.0 && s.area >= 120 {
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
        assert_eq!(classify(shape(200, 200, 400, 80.0)), DefectClass::Scratch);
        assert_eq!(classify(shape(120, 3, 330, 80.0)), DefectClass::Scratch);
        assert_eq!(classify(shape(40, 30, 900, 33.0)), DefectClass::Residue);
        assert_eq!(classify(shape(6, 6, 36, 55.0)), DefectClass::Pattern);
        assert_eq!(classify(shape(10, 10, 78, 150.0)), DefectClass::Particle);
        assert_eq!(classify(shape(2, 2, 4, 90.0)), DefectClass::Particle);
        assert_eq!(classify(shape(20, 20, 60, 90.0)), DefectClass::Unknown);
    }
}
