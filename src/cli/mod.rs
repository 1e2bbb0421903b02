//! Headless commands behind `waferscope …` (the argument parsing itself is
//! in main.rs).

pub mod audit;
pub mod devices;
pub mod export;
#[cfg(feature = "gui")]
pub mod gui;
pub use crate::store::image_input;
pub mod inspect;
pub mod lot;
pub mod out;
pub mod run;
pub mod serve;
pub mod simulate;
pub mod teach;
pub mod users;
