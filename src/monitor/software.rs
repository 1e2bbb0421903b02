//! Conditions the station's own software raises, as opposed to a device's
//! signal: the part that knows (e.g. the KLARF exporter) sets a flag, and
//! the alarm evaluator reads it like a signal at every evaluation, so such
//! an alarm goes through the same states, journal and host reports as any
//! other. Setting and reading are single atomic operations: the evaluator
//! neither waits nor allocates for them.

use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SoftwareCondition {
    /// A finished run's KLARF could not be written and is being retried.
    ExportFailing,
    /// The last lot that ended has a wafer whose defect count is outside
    /// the recipe's control limits (cleared when a lot ends within them).
    LotExcursion,
}

pub const SOFTWARE_CONDITIONS: [SoftwareCondition; 2] = [
    SoftwareCondition::ExportFailing,
    SoftwareCondition::LotExcursion,
];

impl SoftwareCondition {
    /// The name alarm definitions use (`condition = "export_failing"`).
    pub fn name(self) -> &'static str {
        match self {
            Self::ExportFailing => "export_failing",
            Self::LotExcursion => "lot_excursion",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        SOFTWARE_CONDITIONS.into_iter().find(|c| c.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The current state of every software condition (all clear at first).
#[derive(Debug, Default)]
pub struct SoftwareConditions {
    active: [AtomicBool; SOFTWARE_CONDITIONS.len()],
}

impl SoftwareConditions {
    pub fn set(&self, c: SoftwareCondition, active: bool) {
        self.active[c.index()].store(active, Ordering::Release);
    }

    pub fn is_active(&self, c: SoftwareCondition) -> bool {
        self.active[c.index()].load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_flags_start_clear() {
        for c in SOFTWARE_CONDITIONS {
            assert_eq!(SoftwareCondition::from_name(c.name()), Some(c));
        }
        assert_eq!(SoftwareCondition::from_name("export"), None);
        let flags = SoftwareConditions::default();
        assert!(!flags.is_active(SoftwareCondition::ExportFailing));
        flags.set(SoftwareCondition::ExportFailing, true);
        assert!(flags.is_active(SoftwareCondition::ExportFailing));
    }
}
