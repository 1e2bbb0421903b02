//! Per-second rates (frames/s, allocations/s) as the Health panel shows
//! them: the change of a counter over a window of at least a second,
//! computed at scrape time from the counters the hot threads already keep.
//!
//! Several scrapers (two Prometheus servers, a curl) share one window: the
//! previous sample moves on only once a second has passed, so a burst of
//! scrapes cannot shrink the window to a few milliseconds of noise.

use std::collections::HashMap;

/// The shortest window a rate is taken over, ns.
pub const MIN_WINDOW_NS: u64 = 1_000_000_000;

#[derive(Debug, Clone, Copy)]
struct Sample {
    at_ns: u64,
    value: u64,
}

/// Rates of named counters; each name keeps its own window.
#[derive(Debug, Default)]
pub struct Rates {
    /// The sample each rate is taken against, and the rate last computed
    /// (kept until the window has grown to a second again).
    base: HashMap<String, (Sample, Option<f64>)>,
}

impl Rates {
    /// The counter `name` reads `value` at `now_ns`: its rate per second
    /// over the last window of at least [`MIN_WINDOW_NS`], or `None` until
    /// one has passed since it was first seen. A counter that went back
    /// (a new wafer's pipeline starts from 0) starts a new window.
    pub fn per_second(&mut self, name: &str, value: u64, now_ns: u64) -> Option<f64> {
        let now = Sample {
            at_ns: now_ns,
            value,
        };
        let Some((base, last)) = self.base.get_mut(name) else {
            self.base.insert(name.to_owned(), (now, None));
            return None;
        };
        if value < base.value {
            *base = now;
            *last = None;
            return None;
        }
        let dt = now_ns.saturating_sub(base.at_ns);
        if dt >= MIN_WINDOW_NS {
            *last = Some((value - base.value) as f64 / (dt as f64 / 1e9));
            *base = now;
        }
        *last
    }

    /// Forgets every name not in `keep` (threads that ended).
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.base.retain(|k, _| keep(k));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_rate_is_the_change_over_at_least_a_second() {
        let mut r = Rates::default();
        assert_eq!(r.per_second("f", 100, 0), None);
        // Half a second: too short a window, nothing yet.
        assert_eq!(r.per_second("f", 130, S / 2), None);
        assert_eq!(r.per_second("f", 160, 2 * S), Some(30.0));
        // A quick second scrape keeps the last rate, not a tiny window's.
        assert_eq!(r.per_second("f", 161, 2 * S + 1_000), Some(30.0));
        assert_eq!(r.per_second("f", 260, 3 * S), Some(100.0));
    }

    #[test]
    fn a_counter_that_restarts_starts_a_new_window() {
        let mut r = Rates::default();
        r.per_second("f", 500, 0);
        assert_eq!(r.per_second("f", 900, S), Some(400.0));
        assert_eq!(r.per_second("f", 10, 2 * S), None);
        assert_eq!(r.per_second("f", 70, 3 * S), Some(60.0));
    }

    #[test]
    fn names_keep_their_own_windows_and_can_be_forgotten() {
        let mut r = Rates::default();
        r.per_second("a", 0, 0);
        r.per_second("b", 0, 0);
        assert_eq!(r.per_second("a", 5, S), Some(5.0));
        assert_eq!(r.per_second("b", 7, S), Some(7.0));
        r.retain(|n| n == "a");
        assert_eq!(r.per_second("b", 9, 2 * S), None);
    }
}
