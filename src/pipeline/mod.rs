//! The hot pipeline: acquisition → detection workers → results, over
//! pooled frames and bounded crossbeam channels.

pub mod align;
pub mod classify;
pub mod detect;
pub mod label;
pub mod result;

pub use align::Profiles;
pub use detect::{DetectParams, Detector, Reference};
pub use result::{Defect, DefectClass, DieResult, Polarity, MAX_DEFECTS_PER_DIE};
