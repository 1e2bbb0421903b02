//! The hot pipeline: acquisition → detection workers → results, over
//! pooled frames and bounded crossbeam channels.

pub mod acquire;
pub mod align;
pub mod care;
pub mod classify;
mod compare;
pub mod detect;
pub mod display;
pub mod features;
pub mod gate;
pub mod label;
pub mod noise;
pub mod normalise;
pub mod result;
pub mod scratch_merge;
pub(crate) mod simd;
pub mod teach;
pub mod telemetry;
pub mod thumbnails;
pub mod wiring;
pub mod worker;

pub use acquire::Trigger;
pub use align::Profiles;
pub use classify::ClassRules;
pub use detect::{DetectParams, Detector, Reference, ThresholdMode};
pub use display::{DisplayFrame, DisplayImage};
pub use features::{CentralMoments, DefectFeatures, PixelMoments};
pub use gate::DieGate;
pub use result::{Defect, DefectClass, DieResult, Polarity, ReferenceMode, MAX_DEFECTS_PER_DIE};
pub use telemetry::PipelineTelemetry;
pub use thumbnails::{thumbnail_channel, Crop, ThumbnailFeed, ThumbnailTap};
pub use wiring::{Pipeline, PipelineConfig, ResultSink};
pub use worker::ReferenceSource;
