//! The synchronisation primitives `hot` builds on, swapped for loom's
//! model-checked versions under `--cfg loom` so the same code is checked.

#[cfg(not(waferscope_loom))]
pub(crate) use std::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};

#[cfg(waferscope_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicUsize, Ordering},
    Arc,
};
