//! The built-in simulated machine: wafer with injected defects, camera,
//! stage, and the load port with its robot and pre-aligner.

pub mod camera;
pub mod defects;
pub mod io;
pub mod load_port;
pub mod pattern;
pub mod realism;
pub mod stage;
pub mod wafer;

pub use camera::SimCamera;
pub use defects::{GtDefect, SimDefectKind};
pub use io::{SimIo, SimIoFaults};
pub use load_port::{HandlingFaults, HandlingTimes, SimCarrier, SimChuck, SimLoadPort};
pub use realism::{DieImaging, RealisticImaging, SimRealism};
pub use stage::SimStage;
pub use wafer::SimWafer;
