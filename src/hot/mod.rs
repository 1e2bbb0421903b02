//! The low-allocation infrastructure of the hot path, and nothing else.
//!
//! Everything here is usable from acquisition, detection and polling threads
//! without allocating once warmed up. Nothing here depends on the rest of the
//! crate.

pub mod alloc_count;
pub mod counter;
pub mod histogram;
pub mod latest;
pub mod liveness;
pub mod pool;
mod prime;
mod sync;
pub mod text;

pub use alloc_count::{CountingAlloc, HotThread};
pub use counter::{Counter, Gauge};
pub use histogram::{HistogramSummary, LatencyHistogram};
pub use latest::{latest_cell, LatestReader, LatestSubscriber, LatestWriter, Stamped};
pub use liveness::{join_named, now_ns, spawn_watched, ThreadHealth, ThreadState};
pub use pool::{Frame, FrameGeometry, FrameMeta, FramePool, PoolStatsSnapshot};
pub use prime::{prime_channel, prime_thread};
pub use text::FixedText;
