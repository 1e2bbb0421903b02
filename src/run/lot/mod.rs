//! Lots: a carrier docked at the load port, the wafers of the slots the
//! operator picked run one after another (each its own run record), with
//! "stop after this wafer" and Abort. Plain async orchestration over the
//! run engine and the load port; nothing here is on the hot path.

mod carrier;
mod plan;
mod runner;
mod snapshot;

pub use carrier::CarrierHandle;
pub use plan::{parse_slots, LotPlan, OnWaferFault};
pub use runner::{run_lot, LotControl, LotReport, WaferReport};
pub use snapshot::{LotBoard, LotEnd, LotSnapshot, SharedBoard, SlotProgress, SlotView};
