//! Devices: the wafer map every device works against, and the built-in
//! simulated machine, the machine configuration naming a driver per
//! subsystem, and the real drivers beside `sim` (Modbus TCP I/O).

pub mod camera_heartbeat_io;
pub mod camera_link;
pub mod config;
pub mod faults;
#[cfg(feature = "gige")]
pub mod gige;
pub mod io;
pub mod load_port;
pub mod modbus;
pub mod sim;
pub mod wafer_map;

pub use config::{IoDriver, MachineConfig};
pub use faults::{CameraError, SimFaults, StageError};
pub use io::{Io, IoError, Signal, SignalInfo, Subsystem, SIGNALS, SUBSYSTEMS};
pub use wafer_map::{die_grid, die_grid_offset, DieSite, Notch, WaferGeometry};

use crate::hot::{Frame, FrameGeometry, FramePool};
use std::time::Duration;

/// A camera that images one die into a leased frame. Implementations must
/// not allocate per capture.
pub trait Camera: Send {
    fn geometry(&self) -> FrameGeometry;
    /// Images die `die_index` into `frame` and stamps its metadata. A
    /// camera that keeps frames queued ahead may hand back another pool
    /// buffer than the one it was given (it swaps the leases: the pixels
    /// are never copied).
    fn capture(&mut self, die_index: u32, frame: &mut Frame) -> Result<(), CameraError>;
    /// Pool buffers the camera keeps leased (queued for frames to come);
    /// the pipeline makes its pool that much larger.
    fn frames_held(&self) -> usize {
        0
    }
    /// Called once, on the acquisition thread, before the first capture:
    /// the pool a camera that queues frames ahead leases them from.
    fn attach_pool(&mut self, _pool: &FramePool) {}
}

/// An XY stage that brings a die under the camera.
pub trait Stage: Send {
    /// Moves to (x, y) µm and settles; returns the (unscaled) move time.
    fn move_to(&mut self, x_um: f64, y_um: f64) -> Result<Duration, StageError>;
    /// Where the stage is now (µm), read from its encoders; verified after
    /// a suspension before the next die is imaged.
    fn position_um(&mut self) -> (f64, f64);
}
