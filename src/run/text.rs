//! `FixedText` lives in `hot` (the alarm evaluator needs it too, and
//! `monitor` must not depend on `run`); re-exported here for the run
//! snapshot's users.

pub use crate::hot::text::FixedText;
