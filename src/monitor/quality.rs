//! Data quality: the five states a value can be in, and staleness measured
//! from a subsystem's heartbeat counter (not from value changes: a setpoint
//! that does not change is still live while its device's heartbeat runs).

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord, Hash)]
pub enum Quality {
    /// Nothing read yet.
    #[default]
    NoValue,
    Live,
    /// Heartbeat has not advanced for more than 3 poll periods.
    Stale,
    /// Heartbeat has not advanced for more than 10 poll periods.
    Lost,
    /// The device reported an error, or the value is outside what the
    /// device can report.
    Invalid,
}

impl Quality {
    pub fn name(self) -> &'static str {
        match self {
            Self::NoValue => "no value",
            Self::Live => "live",
            Self::Stale => "stale",
            Self::Lost => "lost",
            Self::Invalid => "invalid",
        }
    }

    /// The worse of two qualities, for a value whose subsystem's heartbeat
    /// is itself degraded.
    pub fn worst(self, other: Quality) -> Quality {
        let rank = |q: Quality| match q {
            Quality::Live => 0,
            Quality::Stale => 1,
            Quality::Invalid => 2,
            Quality::Lost => 3,
            Quality::NoValue => 4,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

pub const STALE_PERIODS: u64 = 3;
pub const LOST_PERIODS: u64 = 10;

/// The least age at which a producer's snapshot (poller, alarm evaluator)
/// is judged out of date by its readers. A producer that ends (stops or
/// panics) says so at once in its last snapshot; age only has to catch one
/// that hangs. A thread sleeping a few ms is routinely woken tens of ms
/// late on a loaded 2-core station, and CI saw an evaluator picture 189 ms
/// old with the evaluator alive: 3 periods of 2-5 ms would trip a running
/// inspection on scheduler jitter alone. Half a second still stops the tool
/// long before an operator could notice a frozen screen.
pub const MIN_OUT_OF_DATE_NS: u64 = 500_000_000;

/// How old a snapshot from a producer with this period may get before its
/// readers take it as out of date: 3 periods, but never less than
/// [`MIN_OUT_OF_DATE_NS`].
pub fn out_of_date_after_ns(period_ns: u64) -> u64 {
    (STALE_PERIODS * period_ns).max(MIN_OUT_OF_DATE_NS)
}

/// Follows one heartbeat counter.
#[derive(Debug, Clone, Copy, Default)]
pub struct HeartbeatTracker {
    pub last: Option<u32>,
    /// When the counter was last seen to advance, ns.
    pub advanced_ns: u64,
    pub period_ns: u64,
}

impl HeartbeatTracker {
    pub fn new(period_ns: u64) -> Self {
        Self {
            last: None,
            advanced_ns: 0,
            period_ns,
        }
    }

    /// Takes a poll result at `now_ns` and says what the heartbeat's
    /// quality is now. A failed read is simply no advance.
    pub fn observe(&mut self, now_ns: u64, read: Option<u32>) -> Quality {
        if let Some(v) = read {
            if self.last != Some(v) {
                self.last = Some(v);
                self.advanced_ns = now_ns;
            }
        }
        self.quality(now_ns)
    }

    pub fn quality(&self, now_ns: u64) -> Quality {
        if self.last.is_none() {
            return Quality::NoValue;
        }
        let age = now_ns.saturating_sub(self.advanced_ns);
        if age > LOST_PERIODS * self.period_ns {
            Quality::Lost
        } else if age > STALE_PERIODS * self.period_ns {
            Quality::Stale
        } else {
            Quality::Live
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_heartbeat_goes_stale_after_3_then_lost_after_10_periods() {
        let p = 5_000_000;
        let mut h = HeartbeatTracker::new(p);
        assert_eq!(h.quality(0), Quality::NoValue);
        assert_eq!(h.observe(0, Some(1)), Quality::Live);
        assert_eq!(h.observe(3 * p, Some(1)), Quality::Live);
        assert_eq!(h.observe(3 * p + 1, Some(1)), Quality::Stale);
        assert_eq!(h.observe(10 * p, None), Quality::Stale);
        assert_eq!(h.observe(10 * p + 1, None), Quality::Lost);
        assert_eq!(
            h.observe(11 * p, Some(2)),
            Quality::Live,
            "recovers when it advances"
        );
    }

    #[test]
    fn worst_prefers_the_more_severe() {
        assert_eq!(Quality::Live.worst(Quality::Stale), Quality::Stale);
        assert_eq!(Quality::Lost.worst(Quality::Invalid), Quality::Lost);
        assert_eq!(Quality::Invalid.worst(Quality::Live), Quality::Invalid);
    }
}
