//! Interlocks checked before a run starts, and the suspenders watched while
//! it runs. Reads only the monitor's and the alarm system's snapshots, and
//! checks their age first: a picture from a poller or alarm evaluator that
//! stopped is never taken as the machine's state (`as_seen_at`).

use crate::hot::now_ns;
use crate::machine::{Signal, SIGNALS, SUBSYSTEMS};
use crate::monitor::quality::out_of_date_after_ns;
use crate::monitor::{AlarmDef, AlarmSnapshot, AlarmState, MachineSnapshot, Priority, Quality};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SafetyLimits {
    /// Chuck pressure at or below which a wafer is held (start interlock).
    pub vacuum_ready_kpa: f64,
    /// Chuck pressure above which the wafer is lost: the run aborts.
    pub vacuum_abort_kpa: f64,
    /// Illumination must be within this of the recipe's setpoint to start.
    pub illumination_tolerance_pct: f64,
    /// A stage following error above this (µm, live reading) suspends the
    /// run: the axis is not where the image is taken (smeared or misplaced
    /// dies). The same figure as the "Stage following error high" alarm.
    pub following_error_suspend_um: f64,
}

impl Default for SafetyLimits {
    fn default() -> Self {
        Self {
            vacuum_ready_kpa: 20.0,
            vacuum_abort_kpa: 30.0,
            illumination_tolerance_pct: 5.0,
            following_error_suspend_um: 10.0,
        }
    }
}

/// Every interlock that fails now, as readable reasons (empty: all OK).
pub fn interlock_failures(
    m: &MachineSnapshot,
    a: &AlarmSnapshot,
    defs: &[AlarmDef],
    limits: &SafetyLimits,
    illumination_setpoint: f64,
) -> Vec<String> {
    interlock_failures_at(m, a, defs, limits, illumination_setpoint, now_ns())
}

/// Every interlock that fails at `now_ns` (process clock).
pub fn interlock_failures_at(
    m: &MachineSnapshot,
    a: &AlarmSnapshot,
    defs: &[AlarmDef],
    limits: &SafetyLimits,
    illumination_setpoint: f64,
    now_ns: u64,
) -> Vec<String> {
    let mut why = Vec::new();
    if let Some(stopped) = monitor_stopped(m, now_ns) {
        // Every signal reads LOST: one reason that names the cause says
        // more than a line per signal.
        why.push(stopped);
    } else {
        machine_interlocks(m, limits, illumination_setpoint, &mut why);
    }
    if let Some(stopped) = evaluator_stopped(a, now_ns) {
        why.push(stopped);
    } else if let Some(cause) = high_alarm(a, defs) {
        why.push(cause);
    }
    why
}

fn machine_interlocks(
    m: &MachineSnapshot,
    limits: &SafetyLimits,
    illumination_setpoint: f64,
    why: &mut Vec<String>,
) {
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
}

/// "Monitor stopped …" if the machine picture is out of date at `now_ns`.
fn monitor_stopped(m: &MachineSnapshot, now_ns: u64) -> Option<String> {
    if m.ended {
        return Some("monitor stopped: the poller has ended, every signal reads lost".into());
    }
    m.is_out_of_date(now_ns).then(|| {
        format!(
            "monitor stopped: machine data is {} ms old (limit {} ms), every signal reads lost",
            m.age_ns(now_ns) / 1_000_000,
            out_of_date_after_ns(m.period_ns) / 1_000_000
        )
    })
}

/// "Alarm evaluator stopped …" if the alarm picture is out of date.
fn evaluator_stopped(a: &AlarmSnapshot, now_ns: u64) -> Option<String> {
    if a.ended {
        return Some("alarm evaluator stopped: the evaluator has ended".into());
    }
    a.is_out_of_date(now_ns).then(|| {
        format!(
            "alarm evaluator stopped: alarm data is {} ms old (limit {} ms)",
            a.age_ns(now_ns) / 1_000_000,
            out_of_date_after_ns(a.period_ns) / 1_000_000
        )
    })
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
pub fn suspend_cause(
    m: &MachineSnapshot,
    a: &AlarmSnapshot,
    defs: &[AlarmDef],
    limits: &SafetyLimits,
) -> Option<String> {
    suspend_cause_at(m, a, defs, limits, now_ns())
}

/// Why the run must suspend at `now_ns` (process clock), if it must: a
/// poller or alarm evaluator that stopped (its picture older than 3 of its
/// periods), a heartbeat not live, a stage following error over the limit,
/// or an active high-priority alarm.
pub fn suspend_cause_at(
    m: &MachineSnapshot,
    a: &AlarmSnapshot,
    defs: &[AlarmDef],
    limits: &SafetyLimits,
    now_ns: u64,
) -> Option<String> {
    if let Some(stopped) = monitor_stopped(m, now_ns) {
        return Some(stopped);
    }
    if let Some(stopped) = evaluator_stopped(a, now_ns) {
        return Some(stopped);
    }
    for s in SUBSYSTEMS {
        let q = m.heartbeat(s).quality;
        if matches!(q, Quality::Stale | Quality::Lost | Quality::NoValue) {
            return Some(format!("{} heartbeat {}", s.name(), q.name()));
        }
    }
    // A reading whose own link failed ages even while its subsystem's
    // heartbeat (possibly on another server) is live: not current data.
    for s in SIGNALS {
        let q = m.signal(s).quality;
        if matches!(q, Quality::Stale | Quality::Lost) {
            return Some(format!("{} reading {}", s.name(), q.name()));
        }
    }
    // Stale or lost readings are caught by the checks above; an
    // invalid one (a device error, or beyond what the controller can
    // report: a runaway axis) is no better than a large one.
    let fe = m.signal(Signal::StageFollowingError);
    match fe.quality {
        Quality::Live if fe.value.abs() > limits.following_error_suspend_um => {
            return Some(format!(
                "stage following error {:.1} µm above {:.1} µm",
                fe.value, limits.following_error_suspend_um
            ));
        }
        Quality::Invalid => {
            return Some("stage following error reading invalid".into());
        }
        _ => {}
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

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy(following_error_um: f64) -> MachineSnapshot {
        let mut m = MachineSnapshot::default();
        for h in m.heartbeats.iter_mut() {
            h.quality = Quality::Live;
        }
        for s in m.signals.iter_mut() {
            s.quality = Quality::Live;
        }
        m.signals[Signal::StageFollowingError.index()].value = following_error_um;
        m
    }

    #[test]
    fn a_following_error_over_the_limit_suspends() {
        let limits = SafetyLimits::default();
        let a = AlarmSnapshot::default();
        assert_eq!(suspend_cause_at(&healthy(1.2), &a, &[], &limits, 0), None);
        let why = suspend_cause_at(&healthy(50.0), &a, &[], &limits, 0).expect("suspends");
        assert!(why.contains("following error 50.0 µm"), "{why}");
        // At the limit it is still within it.
        assert_eq!(suspend_cause_at(&healthy(10.0), &a, &[], &limits, 0), None);
        // A signed controller's negative error counts by its size.
        assert!(suspend_cause_at(&healthy(-50.0), &a, &[], &limits, 0).is_some());
        // A runaway axis reads beyond the valid range: Invalid, which
        // suspends too.
        let mut m = healthy(5000.0);
        m.signals[Signal::StageFollowingError.index()].quality = Quality::Invalid;
        let why = suspend_cause_at(&m, &a, &[], &limits, 0).expect("suspends");
        assert!(why.contains("invalid"), "{why}");
        // A reading gone stale on its own link, heartbeats all live.
        let mut m = healthy(1.2);
        m.signals[Signal::ChuckVacuum.index()].quality = Quality::Stale;
        let why = suspend_cause_at(&m, &a, &[], &limits, 0).expect("suspends");
        assert!(why.contains("vacuum.chuck_pressure reading stale"), "{why}");
    }
}
