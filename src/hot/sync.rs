//! The synchronisation primitives `hot` builds on, swapped for loom's
//! model-checked versions under the `loom` feature so the same code is checked.

#[cfg(not(feature = "loom"))]
pub(crate) use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

#[cfg(feature = "loom")]
pub(crate) use loom::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};
