//! `waferscope bench …`: measurements printed as text and JSON, each beside
//! a baseline measured in the same run (the machine is shared and noisy).

pub mod hot;
mod measure;
pub mod modbus;
pub mod monitor;
pub mod pipeline;
pub mod secs;
pub mod sensitivity;
pub mod soak;
mod soak_plot;
pub mod station;
mod thread_cpu;

pub use measure::{median_ns_per_op, Report};
