//! Fault injection for the monitoring threads: a switch a test or the
//! simulator panel flips to make the poller or the alarm evaluator panic
//! at its next loop, so the station's reaction to a dead producer (LOST
//! rows, "monitor stopped" alarm, suspended run) can be shown and tested.

use std::sync::atomic::{AtomicBool, Ordering};

/// "Panic at your next loop." One relaxed load per loop on the hot
/// thread; no allocation until it fires.
#[derive(Debug, Default)]
pub struct PanicSwitch {
    armed: AtomicBool,
}

impl PanicSwitch {
    /// Makes the thread that checks this switch panic at its next loop.
    pub fn trip(&self) {
        self.armed.store(true, Ordering::Relaxed);
    }

    /// Panics with an "injected" message naming `thread` if tripped.
    #[inline]
    pub fn check(&self, thread: &str) {
        if self.armed.load(Ordering::Relaxed) {
            panic!("injected fault: {thread} killed on request");
        }
    }
}
