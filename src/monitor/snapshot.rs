//! What the monitor publishes: a fixed-size, `Copy` picture of the machine,
//! stamped with when it was taken so that every reader can tell a live
//! picture from the last one a dead poller left behind.

use super::quality::{out_of_date_after_ns, Quality};
use crate::machine::{SIGNALS, SUBSYSTEMS};

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct SignalSnapshot {
    /// The last value read successfully (kept, but not Live, when the
    /// signal degrades).
    pub value: f64,
    pub quality: Quality,
    /// When `value` was read, ns on the process clock (`hot::now_ns`);
    /// 0 = never.
    pub updated_ns: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HeartbeatSnapshot {
    pub counter: u32,
    pub quality: Quality,
    /// When the counter last advanced, ns on the process clock.
    pub advanced_ns: u64,
    pub period_ns: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct MachineSnapshot {
    /// When this snapshot was taken, ns on the process clock
    /// (`hot::now_ns`, which the monitor's epoch is).
    pub taken_ns: u64,
    /// The poller's loop period, ns: a snapshot older than 3 of these
    /// (at least `MIN_OUT_OF_DATE_NS`) comes from a poller that hangs. 0
    /// for a snapshot no poller made (tests, defaults): its qualities
    /// stand.
    pub period_ns: u64,
    /// Set in the last snapshot a poller publishes as it ends (stopped or
    /// panicked): nothing here is current any more, whatever its age.
    pub ended: bool,
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

    /// How old this snapshot is at `now_ns` (process clock).
    pub fn age_ns(&self, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.taken_ns)
    }

    /// Whether, at `now_ns`, nothing in this snapshot describes the
    /// machine now: its poller ended (said in its last snapshot), or the
    /// snapshot is older than 3 poll periods (at least
    /// `MIN_OUT_OF_DATE_NS`), so its poller hangs.
    pub fn is_out_of_date(&self, now_ns: u64) -> bool {
        self.ended
            || (self.period_ns > 0 && self.age_ns(now_ns) > out_of_date_after_ns(self.period_ns))
    }

    /// Every heartbeat and signal LOST (values and times kept).
    pub fn mark_lost(&mut self) {
        for h in self.heartbeats.iter_mut() {
            h.quality = Quality::Lost;
        }
        for s in self.signals.iter_mut() {
            s.quality = Quality::Lost;
        }
    }

    /// The snapshot as a reader at `now_ns` must take it: unchanged while
    /// the poller keeps it fresh; once it is out of date, every heartbeat
    /// and every signal reads LOST (values and times are
    /// kept for "updated N s ago"). Every reader goes through this, so a
    /// dead poller never leaves its last LIVE qualities on screen or in an
    /// interlock.
    pub fn as_seen_at(&self, now_ns: u64) -> MachineSnapshot {
        let mut seen = *self;
        if self.is_out_of_date(now_ns) {
            seen.mark_lost();
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live(taken_ns: u64, period_ns: u64) -> MachineSnapshot {
        let mut m = MachineSnapshot {
            taken_ns,
            period_ns,
            ..MachineSnapshot::default()
        };
        for h in m.heartbeats.iter_mut() {
            h.quality = Quality::Live;
        }
        for s in m.signals.iter_mut() {
            s.quality = Quality::Live;
        }
        m
    }

    #[test]
    fn a_snapshot_older_than_three_periods_reads_lost_everywhere() {
        let p = 200_000_000;
        let m = live(1_000_000_000, p);
        assert_eq!(
            m.as_seen_at(m.taken_ns + 3 * p),
            m,
            "3 periods: still as taken"
        );
        let seen = m.as_seen_at(m.taken_ns + 3 * p + 1);
        assert!(seen.heartbeats.iter().all(|h| h.quality == Quality::Lost));
        assert!(seen.signals.iter().all(|s| s.quality == Quality::Lost));
        assert_eq!(seen.taken_ns, m.taken_ns, "the stamp is kept for the age");
    }

    #[test]
    fn a_fast_pollers_snapshot_gets_the_jitter_allowance_and_an_ended_one_none() {
        let p = 2_000_000;
        let m = live(1_000_000_000, p);
        let floor = crate::monitor::quality::MIN_OUT_OF_DATE_NS;
        assert_eq!(m.as_seen_at(m.taken_ns + floor), m);
        assert!(m.is_out_of_date(m.taken_ns + floor + 1));
        let ended = MachineSnapshot { ended: true, ..m };
        assert!(ended.is_out_of_date(ended.taken_ns));
        assert!(ended
            .as_seen_at(ended.taken_ns)
            .signals
            .iter()
            .all(|s| s.quality == Quality::Lost));
    }

    #[test]
    fn a_snapshot_no_poller_made_keeps_its_qualities() {
        let m = live(0, 0);
        assert_eq!(m.as_seen_at(u64::MAX / 2), m);
    }
}
