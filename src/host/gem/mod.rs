//! GEM (SEMI E30): the equipment's behaviour towards the fab's host, on top
//! of the HSMS transport and the SECS-II codec.
//!
//! Identifier ranges (so every table can be read at a glance, docs/gem.md):
//! SVIDs 1000–1999, ECIDs 2000–2999, DVIDs 3000–3999, CEIDs 4000–4999;
//! ALIDs are the ids of `assets/alarms.toml`.
//!
//! One concept per file: `communication` and `control` (the two E30 state
//! models), `variables` (status variables), `equipment_constants`, `clock`,
//! `remote_commands`, `terminal`, `s9` (error messages), `persisted` (what
//! survives a restart), `secs_log`, and `service` (the task that owns the
//! HSMS session and dispatches, with the [`GemHandle`]).

pub mod alarms;
pub mod atomic_file;
pub mod clock;
pub mod communication;
pub mod control;
pub mod equipment_constants;
pub mod events;
mod host_link_metrics;
pub mod illegal_data;
pub mod persisted;
pub mod process_programs;
pub mod remote_commands;
pub mod reports;
pub mod s9;
pub mod secs_log;
pub mod service;
pub mod terminal;
pub mod trace;
pub mod values;
pub mod variables;

pub use communication::CommState;
pub use control::{ControlState, Switches};
pub use illegal_data::IllegalData;
pub use service::{GemConfig, GemHandle};
pub use values::{VariableSource, VariableValue};
pub use variables::{GemStatus, StationVariables};
