//! What the monitor publishes: a fixed-size, `Copy` picture of the machine.

use super::quality::Quality;
use crate::machine::{SIGNALS, SUBSYSTEMS};

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SignalSnapshot {
    /// The last value read successfully (kept, but not Live, when the
    /// signal degrades).
    pub value: f64,
    pub quality: Quality,
    /// When `value` was read, ns since the monitor's epoch; 0 = never.
    pub updated_ns: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HeartbeatSnapshot {
    pub counter: u32,
    pub quality: Quality,
    /// When the counter last advanced, ns since the monitor's epoch.
    pub advanced_ns: u64,
    pub period_ns: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineSnapshot {
    /// When this snapshot was taken, ns since the monitor's epoch.
    pub taken_ns: u64,
    /// Reads made so far (heartbeats and signals).
    pub reads: u64,
    pub signals: [SignalSnapshot; SIGNALS.len()],
    pub heartbeats: [HeartbeatSnapshot; SUBSYSTEMS.len()],
}

impl MachineSnapshot {
    pub fn signal(&self, s: crate::machine::Signal) -> &SignalSnapshot {
        &self.signals[s.index()]
    }
    pub fn heartbeat(&self, s: crate::machine::Subsystem) -> &HeartbeatSnapshot {
        &self.heartbeats[s.index()]
    }
    /// Every heartbeat Live.
    pub fn all_live(&self) -> bool {
        self.heartbeats.iter().all(|h| h.quality == Quality::Live)
    }
}
