//! Interlocks checked before a run starts, and the suspenders watched while
//! it runs. Reads only the monitor's and the alarm system's snapshots.

use crate::machine::{Signal, SUBSYSTEMS};
use crate::monitor::{AlarmDef, AlarmSnapshot, AlarmState, MachineSnapshot, Priority, Quality};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SafetyLimits {
    /// Chuck pressure at or below which a wafer is held (start interlock).
    pub vacuum_ready_kpa: f64,
    /// Chuck pressure above which the wafer is lost: the run aborts.
    pub vacuum_abort_kpa: f64,
    /// Illumination must be within this of the recipe's setpoint to start.
    pub illumination_tolerance_pct: f64,
}

impl Default for SafetyLimits {
    fn default() -> Self {
        Self {
            vacuum_ready_kpa: 20.0,
            vacuum_abort_kpa: 30.0,
            illumination_tolerance_pct: 5.0,
        }
    }
}

/// Every interlock that fails, as readable reasons (empty: all OK).
pub fn interlock_failures(
    m: &MachineSnapshot,
    a: &AlarmSnapshot,
    defs: &[AlarmDef],
    limits: &SafetyLimits,
    illumination_setpoint: f64,
) -> Vec<String> {
    let mut why = Vec::new();
    for s in SUBSYSTEMS {
        let q = m.heartbeat(s).quality;
        if q != Quality::Live {
            why.push(format!("{} heartbeat is {}", s.name(), q.name()));
        }
    }
    let vac = m.signal(Signal::ChuckVacuum);
    if vac.quality != Quality::Live {
        why.push(format!("chuck vacuum is {}", vac.quality.name()));
    } else if vac.value > limits.vacuum_ready_kpa {
        why.push(format!(
            "chuck vacuum {:.1} kPa is above {:.1} kPa: no wafer held",
            vac.value, limits.vacuum_ready_kpa
        ));
    }
    let ill = m.signal(Signal::IlluminationIntensity);
    if ill.quality != Quality::Live {
        why.push(format!("illumination is {}", ill.quality.name()));
    } else if (ill.value - illumination_setpoint).abs() > limits.illumination_tolerance_pct {
        why.push(format!(
            "illumination {:.1} % is not within {:.1} % of the setpoint {:.1} %",
            ill.value, limits.illumination_tolerance_pct, illumination_setpoint
        ));
    }
    if let Some(cause) = high_alarm(a, defs) {
        why.push(cause);
    }
    why
}

/// A high-priority alarm that is active, if any.
fn high_alarm(a: &AlarmSnapshot, defs: &[AlarmDef]) -> Option<String> {
    a.entries()
        .iter()
        .filter(|e| e.priority == Priority::High as u8)
        .find(|e| matches!(e.state, AlarmState::UnackActive | AlarmState::AckActive) && e.condition)
        .map(|e| {
            let name = defs
                .get(e.index as usize)
                .map(|d| d.name.as_str())
                .unwrap_or("?");
            format!("high-priority alarm {} \"{name}\" is active", e.alid)
        })
}

/// Why the run must suspend now, if it must.
pub fn suspend_cause(m: &MachineSnapshot, a: &AlarmSnapshot, defs: &[AlarmDef]) -> Option<String> {
    for s in SUBSYSTEMS {
        let q = m.heartbeat(s).quality;
        if matches!(q, Quality::Stale | Quality::Lost | Quality::NoValue) {
            return Some(format!("{} heartbeat {}", s.name(), q.name()));
        }
    }
    high_alarm(a, defs)
}

/// Why the run must abort now. HMI.md: a run that lost vacuum cannot
/// resume (the wafer may have moved), so these abort, never suspend:
/// - the chuck pressure reads above the abort limit (vacuum lost);
/// - the vacuum sensor reports its reading invalid: the tool can no longer
///   tell that the wafer is held, and must assume it is not.
///
/// A vacuum reading that is only old (stale, lost: the poller or its link
/// stopped) is a data problem, not a reading: the heartbeat suspenders stop
/// the tool for it, and the run cannot resume before the reading is live
/// again (then this check sees any loss that happened meanwhile).
pub fn abort_cause(m: &MachineSnapshot, limits: &SafetyLimits) -> Option<String> {
    let vac = m.signal(Signal::ChuckVacuum);
    match vac.quality {
        Quality::Live if vac.value > limits.vacuum_abort_kpa => Some(format!(
            "vacuum lost: chuck pressure {:.1} kPa above {:.1} kPa",
            vac.value, limits.vacuum_abort_kpa
        )),
        Quality::Invalid => {
            Some("vacuum invalid: the chuck pressure sensor reports an invalid reading".into())
        }
        _ => None,
    }
}
