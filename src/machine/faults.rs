//! Device errors, and the switchboard that injects them into the simulated
//! machine (from tests, the CLI or the operator's maintenance screen).

use std::sync::atomic::{AtomicU32, Ordering};

/// Why a capture produced no image. Plain enum: returning it allocates
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraError {
    /// No frame within the exposure + readout deadline.
    Timeout,
    /// The frame was started but packets were lost; the image is unusable.
    LostFrame,
}

impl std::fmt::Display for CameraError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Timeout => "camera timeout",
            Self::LostFrame => "camera lost frame",
        })
    }
}

impl std::error::Error for CameraError {}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StageError {
    /// The axis lagged its profile by more than the limit (µm).
    FollowingError { error_um: f64 },
}

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::FollowingError { error_um } => {
                write!(f, "stage following error of {error_um:.1} µm")
            }
        }
    }
}

impl std::error::Error for StageError {}

/// Faults armed for the next N operations of each kind; shared by handle.
#[derive(Debug, Default)]
pub struct SimFaults {
    camera_timeouts: AtomicU32,
    lost_frames: AtomicU32,
    following_errors: AtomicU32,
}

fn take_one(c: &AtomicU32) -> bool {
    c.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
        .is_ok()
}

impl SimFaults {
    pub fn camera_timeout_next(&self, n: u32) {
        self.camera_timeouts.fetch_add(n, Ordering::AcqRel);
    }
    pub fn lose_next_frames(&self, n: u32) {
        self.lost_frames.fetch_add(n, Ordering::AcqRel);
    }
    pub fn following_error_next(&self, n: u32) {
        self.following_errors.fetch_add(n, Ordering::AcqRel);
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
