//! What detection reports per die: a fixed-capacity, `Copy` result, so it
//! crosses threads without allocating.

use super::features::CentralMoments;

/// Defects kept per die; more are counted in `DieResult::dropped`.
pub const MAX_DEFECTS_PER_DIE: usize = 64;

/// Rule-based defect class. `number()` is the KLARF CLASSNUMBER.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DefectClass {
    Particle,
    Scratch,
    Residue,
    Pattern,
    #[default]
    Unknown,
}

impl DefectClass {
    pub const ALL: [DefectClass; 5] = [
        Self::Particle,
        Self::Scratch,
        Self::Residue,
        Self::Pattern,
        Self::Unknown,
    ];

    pub fn number(self) -> u32 {
        match self {
            Self::Particle => 1,
            Self::Scratch => 2,
            Self::Residue => 3,
            Self::Pattern => 4,
            Self::Unknown => 0,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Particle => "particle",
            Self::Scratch => "scratch",
            Self::Residue => "residue",
            Self::Pattern => "pattern",
            Self::Unknown => "unknown",
        }
    }
}

/// Brighter or darker than the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Polarity {
    #[default]
    Bright,
    Dark,
}

/// One defect of the die under test, in pixels (x right, y down).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Defect {
    /// Centroid in die coordinates, pixels: T's image position moved by
    /// the die's registration (`DieResult::die_offset_px`), so the same
    /// place on every die has the same position whatever the stage error
    /// (KLARF positions, repeaters, the map). Without a registration, T's
    /// image position.
    pub x_px: f32,
    pub y_px: f32,
    /// Bounding box in T's image, pixels, `x0..x1` and `y0..y1` exclusive
    /// ends (for cutting thumbnails and measuring size).
    pub bbox: [u16; 4],
    pub area_px: u32,
    pub peak_diff: u8,
    pub mean_diff: f32,
    pub polarity: Polarity,
    pub class: DefectClass,
    /// Second moments of the defect's pixels about its centroid: its
    /// length, width and orientation (see `features`); scratch merging
    /// combines them exactly.
    pub moments: CentralMoments,
}

impl Defect {
    pub fn width_px(&self) -> u32 {
        (self.bbox[2] - self.bbox[0]) as u32
    }
    pub fn height_px(&self) -> u32 {
        (self.bbox[3] - self.bbox[1]) as u32
    }

    /// Position from the die origin (lower-left corner, y up), µm.
    pub fn position_um(&self, pixel_um: f64, image_height: u32) -> (f64, f64) {
        (
            self.x_px as f64 * pixel_um,
            (image_height as f64 - self.y_px as f64) * pixel_um,
        )
    }
}

/// What the die under test was compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[repr(u8)]
pub enum ReferenceMode {
    /// Both row neighbours; a pixel must differ from both.
    #[default]
    DieToDie = 0,
    /// Two references of which the golden die stands in for a missing
    /// neighbour, or arbitrates where both neighbours differ from T.
    DieToDieGoldenArbitrated = 1,
    /// The golden die alone (no neighbour, e.g. a sampled plan).
    DieToGolden = 2,
    /// One reference image given by the caller (no arbitration).
    DieToReference = 3,
}

impl ReferenceMode {
    pub const ALL: [ReferenceMode; 4] = [
        Self::DieToDie,
        Self::DieToDieGoldenArbitrated,
        Self::DieToGolden,
        Self::DieToReference,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::DieToDie => "die-to-die",
            Self::DieToDieGoldenArbitrated => "die-to-die+golden",
            Self::DieToGolden => "die-to-golden",
            Self::DieToReference => "die-to-reference",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct DieResult {
    pub die_index: u32,
    pub count: u16,
    pub defects: [Defect; MAX_DEFECTS_PER_DIE],
    /// Defects found beyond `MAX_DEFECTS_PER_DIE` (not stored).
    pub dropped: u32,
    pub flagged_pixels: u32,
    /// The flagged-pixel run buffer filled up: the die is far too defective
    /// for per-defect results to be complete.
    pub runs_overflowed: bool,
    /// The die could not be imaged (camera or stage fault after retries):
    /// not inspected.
    pub capture_failed: bool,
    /// Flagged components dismissed because T matched the golden die there
    /// (both neighbours were defective at that spot).
    pub arbitrated: u32,
    /// Measured misalignment of the left and right references, pixels.
    pub shift_left: (f32, f32),
    pub shift_right: (f32, f32),
    /// Whether a side was the golden reference (edge die).
    pub golden_left: bool,
    pub golden_right: bool,
    /// What T was compared with.
    pub reference_mode: ReferenceMode,
    /// Alignment confidence of each reference, 0 to 1 (in single-reference
    /// modes both hold the one reference's).
    pub align_confidence_left: f32,
    pub align_confidence_right: f32,
    /// A reference's alignment confidence was below the recipe's minimum:
    /// the die was not compared and reports no defects (a misaligned
    /// comparison would report the pattern itself as defects).
    pub alignment_untrusted: bool,
    /// Brightness mapping of each reference onto T: T ≈ gain · R + offset.
    pub gain_left: (f32, f32),
    pub gain_right: (f32, f32),
    /// Robust estimate of the image noise σ (grey levels) from the
    /// difference image; 0 when not estimated (grey threshold mode).
    pub noise_sigma: f32,
    /// The pixel threshold applied outside care areas, grey levels.
    pub threshold_used: f32,
    /// T's pixel (x, y) is the die's pixel (x + dx, y + dy): T's alignment
    /// to the golden die or the reference image, which are in die
    /// coordinates. (0, 0) when `die_registered` is false.
    pub die_offset_px: (f32, f32),
    /// Whether T was registered against the golden die or a reference
    /// image (die-to-die alone has nothing in die coordinates to go by).
    pub die_registered: bool,
    pub inspect_ns: u64,
}

impl Default for DieResult {
    fn default() -> Self {
        Self {
            die_index: 0,
            count: 0,
            defects: [Defect::default(); MAX_DEFECTS_PER_DIE],
            dropped: 0,
            flagged_pixels: 0,
            runs_overflowed: false,
            capture_failed: false,
            arbitrated: 0,
            shift_left: (0.0, 0.0),
            shift_right: (0.0, 0.0),
            golden_left: false,
            golden_right: false,
            reference_mode: ReferenceMode::DieToDie,
            align_confidence_left: 0.0,
            align_confidence_right: 0.0,
            alignment_untrusted: false,
            gain_left: (1.0, 0.0),
            gain_right: (1.0, 0.0),
            noise_sigma: 0.0,
            threshold_used: 0.0,
            die_offset_px: (0.0, 0.0),
            die_registered: false,
            inspect_ns: 0,
        }
    }
}

impl DieResult {
    pub fn defects(&self) -> &[Defect] {
        &self.defects[..self.count as usize]
    }

    pub fn clear(&mut self, die_index: u32) {
        self.die_index = die_index;
        self.count = 0;
        self.dropped = 0;
        self.flagged_pixels = 0;
        self.runs_overflowed = false;
        self.arbitrated = 0;
        self.capture_failed = false;
        self.alignment_untrusted = false;
        self.align_confidence_left = 0.0;
        self.align_confidence_right = 0.0;
        self.gain_left = (1.0, 0.0);
        self.gain_right = (1.0, 0.0);
        self.noise_sigma = 0.0;
        self.threshold_used = 0.0;
        self.die_offset_px = (0.0, 0.0);
        self.die_registered = false;
    }

    /// Keeps only the defects for which `keep` holds, in order, in place.
    /// Returns how many were removed.
    pub fn retain(&mut self, mut keep: impl FnMut(&Defect) -> bool) -> u32 {
        let mut kept = 0;
        for i in 0..self.count as usize {
            if keep(&self.defects[i]) {
                self.defects[kept] = self.defects[i];
                kept += 1;
            }
        }
        let removed = self.count as usize - kept;
        self.count = kept as u16;
        removed as u32
    }

    /// Stores a defect, or counts it as dropped when full.
    pub fn push(&mut self, d: Defect) {
        if (self.count as usize) < MAX_DEFECTS_PER_DIE {
            self.defects[self.count as usize] = d;
            self.count += 1;
        } else {
            self.dropped += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retain_keeps_the_chosen_defects_in_order_and_counts_the_rest() {
        let mut r = DieResult::default();
        for area_px in [5, 50, 7, 70, 9] {
            r.push(Defect {
                area_px,
                ..Defect::default()
            });
        }
        assert_eq!(r.retain(|d| d.area_px >= 10), 3);
        let kept: Vec<u32> = r.defects().iter().map(|d| d.area_px).collect();
        assert_eq!(kept, vec![50, 70]);
    }
}
