//! Recipes and the run engine: plain async orchestration.

pub mod engine;
pub mod ids;
pub mod lot;
pub mod machine;
pub mod recipe;
pub mod repeaters;
pub mod safety;
pub mod snapshot;
pub mod state;
pub mod text;

pub use crate::store::record::{self, ExitStatus, MemoryStore, RunIdentity, RunStore};
pub use engine::{EngineConfig, EngineHandle, RunEngine};
pub use machine::{LivePipeline, MachineControl, SimMachine};
pub use recipe::{Recipe, ValidRecipe};
pub use snapshot::{RunEvent, RunSnapshot};
pub use state::{RunCommand, RunState};
