//! Results: the run record (SQLite), KLARF and CSV exports, defect
//! thumbnails.

pub mod db;
pub mod dirs;
pub mod export;
pub mod export_retry;
pub mod golden;
pub mod image_input;
pub mod klarf;
pub mod lock;
pub mod lot_query;
pub mod query;
pub mod record;
pub mod retention;
pub mod thumbs;
pub mod writer;

pub use record::{ExitStatus, MemoryStore, RunIdentity, RunLayout, RunStart, RunStore};
pub use writer::SqliteStore;
