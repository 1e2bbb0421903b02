//! The HSMS timers (SEMI E37 §6.2, §9). A plain struct of durations: GEM
//! makes them equipment constants later, and tests shrink them.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HsmsTimers {
    /// Reply timeout: how long `request` waits for its reply.
    pub t3: Duration,
    /// Connect separation: the active side's wait between connect attempts.
    pub t5: Duration,
    /// Control transaction timeout (Select, Deselect, Linktest): the
    /// connection is closed when a response does not come within it.
    pub t6: Duration,
    /// Not-selected timeout: a connection not selected within it is closed.
    pub t7: Duration,
    /// Network inter-character timeout: the longest silence inside one
    /// message before the connection is closed.
    pub t8: Duration,
}

impl Default for HsmsTimers {
    /// E37's defaults: T3 45 s, T5 10 s, T6 5 s, T7 10 s, T8 5 s.
    fn default() -> HsmsTimers {
        HsmsTimers {
            t3: Duration::from_secs(45),
            t5: Duration::from_secs(10),
            t6: Duration::from_secs(5),
            t7: Duration::from_secs(10),
            t8: Duration::from_secs(5),
        }
    }
}
