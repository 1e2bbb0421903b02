//! Devices: the wafer map every device works against, and the built-in
//! simulated machine. Real drivers (Modbus, GigE Vision) go beside `sim`.

pub mod faults;
pub mod sim;
pub mod wafer_map;

pub use faults::{CameraError, SimFaults, StageError};
pub use wafer_map::{die_grid, DieSite, Notch, WaferGeometry};
