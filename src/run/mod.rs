//! Recipes and the run engine: plain async orchestration.

pub mod recipe;

pub use recipe::{Recipe, ValidRecipe};
