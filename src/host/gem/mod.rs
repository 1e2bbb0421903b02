//! GEM (SEMI E30): the equipment's behaviour towards the fab's host, on top
//! of the HSMS transport and the SECS-II codec.
//!
//! Identifier ranges (so every table can be read at a glance, docs/gem.md):
//! SVIDs 1000–1999, ECIDs 2000–2999, DVIDs 3000–3999, CEIDs 4000–4999;
//! ALIDs are the ids of `assets/alarms.toml`.

pub mod alarms;
pub mod events;
pub mod illegal_data;
pub mod process_programs;
pub mod reports;
pub mod trace;
pub mod values;

pub use illegal_data::IllegalData;
pub use values::{VariableSource, VariableValue};
