//! Device errors, and the switchboard that injects them into the simulated
//! machine (from tests, the CLI or the operator's maintenance screen).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

/// Why a capture produced no image. Plain enum: returning it allocates
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraError {
    /// No frame within the exposure + readout deadline.
    Timeout,
    /// The frame was started but packets were lost; the image is unusable.
    LostFrame,
    /// The camera cannot be reached or refused a command (a real camera:
    /// link down, powered off, opened by another application).
    Unreachable,
}

impl std::fmt::Display for CameraError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Timeout => "camera timeout",
            Self::LostFrame => "camera lost frame",
            Self::Unreachable => "camera unreachable",
        })
    }
}

impl std::error::Error for CameraError {}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StageError {
    /// The axis lagged its profile by more than the limit (µm).
    FollowingError { error_um: f64 },
    /// The controller did not report the stage in position at the target
    /// within the move timeout.
    NotInPosition { waited_ms: u64 },
    /// The stage controller could not be reached (Modbus: timeout, refused,
    /// dropped) or answered with an exception code.
    Link(crate::machine::IoError),
}

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FollowingError { error_um } => {
                write!(f, "stage following error of {error_um:.1} µm")
            }
            Self::NotInPosition { waited_ms } => {
                write!(f, "stage not in position after {waited_ms} ms")
            }
            Self::Link(e) => write!(f, "stage controller: {e:?}"),
        }
    }
}

impl std::error::Error for StageError {}

/// No die armed (die indices are far below this).
const NO_DIE: u32 = u32::MAX;

/// Faults armed for the next N operations of each kind; shared by handle.
#[derive(Debug)]
pub struct SimFaults {
    camera_timeouts: AtomicU32,
    lost_frames: AtomicU32,
    following_errors: AtomicU32,
    /// The detection worker that inspects this die panics.
    worker_panic_die: AtomicU32,
    /// The camera hangs inside the capture of this die.
    camera_block_die: AtomicU32,
    /// Set while a capture hangs; cleared by `release_camera`.
    camera_blocked: AtomicBool,
    /// Displacement (x, y µm, f64 bits) the stage suffers while stopped,
    /// seen at its next position read.
    stage_bump: [AtomicU64; 2],
    /// A hazy or mis-coated wafer: parts per million of each die's 8×8
    /// patches the camera images `HAZE_GREY` brighter (0: none).
    haze_ppm: AtomicU32,
}

/// Grey levels haze adds to a patch (saturating): well above thresholds.
pub const HAZE_GREY: u8 = 90;
/// Haze comes in square patches of this side, px.
pub const HAZE_PATCH_PX: usize = 8;

/// Raises a `fraction` of the 8×8 patches of `pixels` (`width` wide) by
/// `HAZE_GREY` (saturating): the patches whose hash of `salt` and patch
/// index falls under the fraction, so one salt always hazes the same set.
/// The simulated camera's haze (`SimFaults::apply_haze`, salted by die) and
/// `bench pipeline`'s bad wafers both use it. Never allocates.
pub fn haze_patches(pixels: &mut [u8], width: usize, fraction: f64, salt: u64) {
    if fraction <= 0.0 || width < HAZE_PATCH_PX {
        return;
    }
    let height = pixels.len() / width;
    let (cols, rows) = (width / HAZE_PATCH_PX, height / HAZE_PATCH_PX);
    let cut = (fraction.min(1.0) * (1u64 << 32) as f64) as u64;
    for ty in 0..rows {
        for tx in 0..cols {
            let key = salt ^ ((ty * cols + tx) as u64);
            if crate::machine::sim::pattern::mix(key) & 0xFFFF_FFFF >= cut {
                continue;
            }
            for y in ty * HAZE_PATCH_PX..(ty + 1) * HAZE_PATCH_PX {
                let row = &mut pixels[y * width + tx * HAZE_PATCH_PX..][..HAZE_PATCH_PX];
                for p in row {
                    *p = p.saturating_add(HAZE_GREY);
                }
            }
        }
    }
}

impl Default for SimFaults {
    fn default() -> Self {
        Self {
            camera_timeouts: AtomicU32::new(0),
            lost_frames: AtomicU32::new(0),
            following_errors: AtomicU32::new(0),
            worker_panic_die: AtomicU32::new(NO_DIE),
            camera_block_die: AtomicU32::new(NO_DIE),
            camera_blocked: AtomicBool::new(false),
            stage_bump: [AtomicU64::new(0), AtomicU64::new(0)],
            haze_ppm: AtomicU32::new(0),
        }
    }
}

/// Whether `armed` holds `die`; disarms it if so (each fault fires once).
fn take_die(armed: &AtomicU32, die: u32) -> bool {
    armed
        .compare_exchange(die, NO_DIE, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

fn take_one(c: &AtomicU32) -> bool {
    c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok()
}

impl SimFaults {
    /// From now on a `fraction` (0..=1) of each die's 8×8 patches is hazed
    /// (a different random set on each die); 0 clears the haze.
    pub fn set_haze(&self, fraction: f64) {
        let ppm = (fraction.clamp(0.0, 1.0) * 1e6).round() as u32;
        self.haze_ppm.store(ppm, Ordering::Release);
    }

    /// Hazes `pixels` (`width` wide) of die `die` as `set_haze` asked.
    /// Never allocates; one hash per 8×8 patch.
    pub fn apply_haze(&self, die: u32, pixels: &mut [u8], width: usize) {
        let ppm = self.haze_ppm.load(Ordering::Acquire);
        if ppm != 0 {
            haze_patches(pixels, width, ppm as f64 / 1e6, (die as u64) << 40);
        }
    }

    pub fn camera_timeout_next(&self, n: u32) {
        self.camera_timeouts.fetch_add(n, Ordering::AcqRel);
    }
    pub fn lose_next_frames(&self, n: u32) {
        self.lost_frames.fetch_add(n, Ordering::AcqRel);
    }
    pub fn following_error_next(&self, n: u32) {
        self.following_errors.fetch_add(n, Ordering::AcqRel);
    }

    /// The detection worker that inspects die `die` panics (once).
    pub fn panic_worker_at(&self, die: u32) {
        self.worker_panic_die.store(die, Ordering::Release);
    }

    /// Whether the worker inspecting `die` must panic now (consumes it).
    pub fn worker_panics_at(&self, die: u32) -> bool {
        take_die(&self.worker_panic_die, die)
    }

    /// The camera stops answering in the middle of imaging die `die`: the
    /// capture blocks until `release_camera` (a real driver stuck in a
    /// read without a timeout).
    pub fn block_camera_at(&self, die: u32) {
        self.camera_block_die.store(die, Ordering::Release);
    }

    /// Lets a blocked capture end (with a timeout error) and disarms the
    /// block.
    pub fn release_camera(&self) {
        self.camera_block_die.store(NO_DIE, Ordering::Release);
        self.camera_blocked.store(false, Ordering::Release);
    }

    /// Called by the sim camera inside a capture: hangs here while a block
    /// is armed for `die`; `Err(Timeout)` once released.
    pub fn camera_hang(&self, die: u32) -> Result<(), CameraError> {
        if !take_die(&self.camera_block_die, die) {
            return Ok(());
        }
        self.camera_blocked.store(true, Ordering::Release);
        while self.camera_blocked.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
        }
        Err(CameraError::Timeout)
    }

    /// The stage is pushed by (dx, dy) µm while stopped (someone leaned on
    /// it): its next position read shows the displacement.
    pub fn bump_stage(&self, dx_um: f64, dy_um: f64) {
        self.stage_bump[0].store(dx_um.to_bits(), Ordering::Release);
        self.stage_bump[1].store(dy_um.to_bits(), Ordering::Release);
    }

    /// Consumes an armed stage bump, (0, 0) if none.
    pub fn take_stage_bump(&self) -> (f64, f64) {
        (
            f64::from_bits(self.stage_bump[0].swap(0, Ordering::AcqRel)),
            f64::from_bits(self.stage_bump[1].swap(0, Ordering::AcqRel)),
        )
    }

    /// Consumes an armed camera fault, if any.
    pub fn camera_result(&self) -> Result<(), CameraError> {
        if take_one(&self.camera_timeouts) {
            Err(CameraError::Timeout)
        } else if take_one(&self.lost_frames) {
            Err(CameraError::LostFrame)
        } else {
            Ok(())
        }
    }

    /// Consumes an armed stage fault, if any.
    pub fn stage_result(&self) -> Result<(), StageError> {
        if take_one(&self.following_errors) {
            Err(StageError::FollowingError { error_um: 25.0 })
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hazed_share(f: &SimFaults, die: u32, out: &mut [u8]) -> f64 {
        out.fill(100);
        f.apply_haze(die, out, 512);
        out.iter().filter(|&&p| p == 100 + HAZE_GREY).count() as f64 / out.len() as f64
    }

    /// The asked share of patches is hazed, a different set on each die,
    /// the same set each time a die is imaged, none once cleared.
    #[test]
    fn haze_covers_the_asked_share_differently_per_die() {
        let f = SimFaults::default();
        let mut a = vec![0u8; 512 * 512];
        let mut b = vec![0u8; 512 * 512];
        assert_eq!(hazed_share(&f, 1, &mut a), 0.0);
        for fraction in [0.01, 0.10, 0.50] {
            f.set_haze(fraction);
            let share = hazed_share(&f, 1, &mut a);
            assert!(
                (share - fraction).abs() < 0.25 * fraction + 0.002,
                "{fraction}: {share}"
            );
            let again = a.clone();
            hazed_share(&f, 1, &mut a);
            assert_eq!(a, again, "die 1 imaged twice");
            hazed_share(&f, 2, &mut b);
            assert_ne!(a, b, "dies 1 and 2 share their haze");
        }
        f.set_haze(0.0);
        assert_eq!(hazed_share(&f, 1, &mut a), 0.0);
    }
}
