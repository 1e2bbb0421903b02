//! SEMI E10 equipment states from the station's own run state and its
//! safety picture, for the fab's equipment-availability dashboards.
//!
//! E10 sorts all of a tool's time into six basic states. The station knows
//! three of them from what it already tracks; the other three are declared
//! by people (a maintenance schedule, an engineering lot, a shift plan),
//! and the station has no such declaration yet, so it never reports them
//! (their series read 0):
//!
//! | run state                                   | condition                          | E10 state            |
//! |---------------------------------------------|------------------------------------|----------------------|
//! | RUNNING, PAUSING, STOPPING                  | —                                  | PRODUCTIVE           |
//! | SUSPENDED, FAULTED, FAULTED ACKNOWLEDGED     | —                                  | UNSCHEDULED_DOWNTIME |
//! | IDLE, READY, PAUSED, ABORTING, COMPLETE, ABORTED | a high-priority alarm active, or the monitor or alarm evaluator stopped | UNSCHEDULED_DOWNTIME |
//! | IDLE, READY, PAUSED, ABORTING, COMPLETE, ABORTED | otherwise                      | STANDBY              |
//!
//! Why: PRODUCTIVE is a wafer being inspected (STOPPING finishes the die in
//! hand and keeps it; PAUSING finishes it too). A suspension is automatic
//! (heartbeat lost, vacuum, a high alarm) and a fault stops the tool: both
//! are unplanned downtime. Out of a run, the tool is down when the start
//! interlocks would refuse for an unplanned cause (the same high-priority
//! alarm or stopped producer `run::safety` checks), else it is available
//! and waiting (STANDBY: no wafer, or an operator pause or abort).

use crate::monitor::{AlarmSnapshot, MachineSnapshot, Priority};
use crate::run::RunState;

/// The six E10 basic equipment states.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E10State {
    Productive,
    Standby,
    Engineering,
    ScheduledDowntime,
    UnscheduledDowntime,
    NonScheduled,
}

impl E10State {
    pub const ALL: [E10State; 6] = [
        Self::Productive,
        Self::Standby,
        Self::Engineering,
        Self::ScheduledDowntime,
        Self::UnscheduledDowntime,
        Self::NonScheduled,
    ];

    /// The name E10 gives it (the metric's label value).
    pub fn name(self) -> &'static str {
        match self {
            Self::Productive => "PRODUCTIVE",
            Self::Standby => "STANDBY",
            Self::Engineering => "ENGINEERING",
            Self::ScheduledDowntime => "SCHEDULED_DOWNTIME",
            Self::UnscheduledDowntime => "UNSCHEDULED_DOWNTIME",
            Self::NonScheduled => "NONSCHEDULED",
        }
    }
}

/// What the mapping needs of the station at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E10Inputs {
    pub run: RunState,
    /// High-priority alarms active (acknowledged or not).
    pub high_alarms_active: u16,
    /// The machine picture is out of date (its poller stopped or hangs).
    pub monitor_stopped: bool,
    /// The alarm picture is out of date (its evaluator stopped or hangs).
    pub evaluator_stopped: bool,
}

impl E10Inputs {
    /// From the snapshots as a reader sees them at `now_ns`.
    pub fn at(
        run: RunState,
        machine: &MachineSnapshot,
        alarms: &AlarmSnapshot,
        now_ns: u64,
    ) -> Self {
        Self {
            run,
            high_alarms_active: alarms.active[Priority::High as usize - 1],
            monitor_stopped: machine.is_out_of_date(now_ns),
            evaluator_stopped: alarms.is_out_of_date(now_ns),
        }
    }
}

/// The E10 state of the tool (the table in this module's documentation).
pub fn e10_state(i: E10Inputs) -> E10State {
    use RunState::*;
    match i.run {
        Running | Pausing | Stopping => E10State::Productive,
        Suspended | Faulted | FaultAcknowledged => E10State::UnscheduledDowntime,
        Idle | Ready | Paused | Aborting | Complete | Aborted => {
            if i.high_alarms_active > 0 || i.monitor_stopped || i.evaluator_stopped {
                E10State::UnscheduledDowntime
            } else {
                E10State::Standby
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calm(run: RunState) -> E10Inputs {
        E10Inputs {
            run,
            high_alarms_active: 0,
            monitor_stopped: false,
            evaluator_stopped: false,
        }
    }

    #[test]
    fn every_run_state_maps_as_documented_when_all_is_well() {
        use RunState::*;
        for run in RunState::ALL {
            let want = match run {
                Running | Pausing | Stopping => E10State::Productive,
                Suspended | Faulted | FaultAcknowledged => E10State::UnscheduledDowntime,
                _ => E10State::Standby,
            };
            assert_eq!(e10_state(calm(run)), want, "{run:?}");
        }
    }

    #[test]
    fn out_of_a_run_a_high_alarm_or_a_stopped_producer_is_unscheduled_downtime() {
        for run in [
            RunState::Idle,
            RunState::Ready,
            RunState::Paused,
            RunState::Complete,
            RunState::Aborted,
        ] {
            let high = E10Inputs {
                high_alarms_active: 1,
                ..calm(run)
            };
            let monitor = E10Inputs {
                monitor_stopped: true,
                ..calm(run)
            };
            let evaluator = E10Inputs {
                evaluator_stopped: true,
                ..calm(run)
            };
            for i in [high, monitor, evaluator] {
                assert_eq!(e10_state(i), E10State::UnscheduledDowntime, "{i:?}");
            }
        }
    }

    #[test]
    fn a_wafer_being_inspected_stays_productive_until_the_engine_reacts() {
        // The engine suspends on a high alarm; until it has, the wafer is
        // still being inspected.
        let i = E10Inputs {
            high_alarms_active: 2,
            ..calm(RunState::Running)
        };
        assert_eq!(e10_state(i), E10State::Productive);
    }

    #[test]
    fn the_inputs_read_high_alarms_and_stopped_producers_from_the_snapshots() {
        let machine = MachineSnapshot {
            taken_ns: 1_000,
            period_ns: 1_000_000,
            ended: true,
            ..MachineSnapshot::default()
        };
        let alarms = AlarmSnapshot {
            active: [3, 0, 1],
            ..AlarmSnapshot::default()
        };
        let i = E10Inputs::at(RunState::Idle, &machine, &alarms, 2_000);
        assert_eq!(i.high_alarms_active, 1);
        assert!(i.monitor_stopped);
        assert!(!i.evaluator_stopped);
    }

    #[test]
    fn names_are_the_e10_names_and_distinct() {
        let names: std::collections::BTreeSet<_> = E10State::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(names.len(), 6);
        assert!(names.contains("UNSCHEDULED_DOWNTIME"));
        assert!(names.contains("NONSCHEDULED"));
    }
}
