//! waferscope: operator station for wafer inspection tools.
//!
//! See `../shared/DESIGN.md` for the threads, data flow and module layout.

pub mod access;
pub mod bench;
pub mod cli;
pub mod host;
pub mod hot;
pub mod logging;
pub mod machine;
pub mod metrics;
pub mod monitor;
pub mod pipeline;
pub mod run;
pub mod station;
pub mod store;
#[cfg(feature = "gui")]
pub mod ui;
