//! Trends: the poller folds each signal's samples into 100 ms min/max
//! buckets and hands each finished bucket over a bounded channel (dropping,
//! and counting, if the reader is behind: the poller never waits); the
//! reader keeps the last 10 minutes in a fixed ring and decimates it for
//! plotting.

use crate::machine::SIGNALS;

pub const BUCKET_NS: u64 = 100_000_000;
/// 10 minutes of 100 ms buckets.
pub const RING_LEN: usize = 6_000;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TrendPoint {
    pub signal: u8,
    /// Bucket start, ns since the monitor's epoch.
    pub t_ns: u64,
    pub min: f64,
    pub max: f64,
}

/// Accumulates one signal's current bucket (poller side).
#[derive(Debug, Clone, Copy, Default)]
pub struct BucketAccumulator {
    start_ns: u64,
    min: f64,
    max: f64,
    samples: u32,
}

impl BucketAccumulator {
    /// Adds a sample; returns the finished previous bucket when `t_ns`
    /// starts a new one.
    pub fn add(&mut self, signal: usize, t_ns: u64, v: f64) -> Option<TrendPoint> {
        let start = t_ns - t_ns % BUCKET_NS;
        let mut done = None;
        if self.samples > 0 && start != self.start_ns {
            done = Some(TrendPoint {
                signal: signal as u8,
                t_ns: self.start_ns,
                min: self.min,
                max: self.max,
            });
            self.samples = 0;
        }
        if self.samples == 0 {
            self.start_ns = start;
            self.min = v;
            self.max = v;
        } else {
            self.min = self.min.min(v);
            self.max = self.max.max(v);
        }
        self.samples += 1;
        done
    }
}

/// The last 10 minutes of one signal (reader side). Allocated once.
#[derive(Debug, Clone)]
pub struct TrendRing {
    points: Vec<TrendPoint>,
    next: usize,
    len: usize,
}

impl Default for TrendRing {
    fn default() -> Self {
        Self {
            points: vec![TrendPoint::default(); RING_LEN],
            next: 0,
            len: 0,
        }
    }
}

impl TrendRing {
    pub fn push(&mut self, p: TrendPoint) {
        self.points[self.next] = p;
        self.next = (self.next + 1) % RING_LEN;
        self.len = (self.len + 1).min(RING_LEN);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &TrendPoint> {
        let start = (self.next + RING_LEN - self.len) % RING_LEN;
        (0..self.len).map(move |i| &self.points[(start + i) % RING_LEN])
    }

    /// Points since `since_ns`, merged into at most `buckets` min/max
    /// buckets (about twice the plot's width in pixels). Fills `out`.
    pub fn decimate(&self, since_ns: u64, buckets: usize, out: &mut Vec<TrendPoint>) {
        out.clear();
        let pts: Vec<&TrendPoint> = self.iter().filter(|p| p.t_ns >= since_ns).collect();
        if pts.is_empty() || buckets == 0 {
            return;
        }
        let per = pts.len().div_ceil(buckets);
        for chunk in pts.chunks(per) {
            out.push(TrendPoint {
                signal: chunk[0].signal,
                t_ns: chunk[0].t_ns,
                min: chunk.iter().map(|p| p.min).fold(f64::INFINITY, f64::min),
                max: chunk
                    .iter()
                    .map(|p| p.max)
                    .fold(f64::NEG_INFINITY, f64::max),
            });
        }
    }
}

/// One ring per signal.
pub type TrendRings = [TrendRing; SIGNALS.len()];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_keep_min_and_max() {
        let mut acc = BucketAccumulator::default();
        assert!(acc.add(0, 10, 5.0).is_none());
        assert!(acc.add(0, 20, 1.0).is_none());
        assert!(acc.add(0, 30, 9.0).is_none());
        let p = acc.add(0, BUCKET_NS + 1, 4.0).unwrap();
        assert_eq!((p.t_ns, p.min, p.max), (0, 1.0, 9.0));
    }

    #[test]
    fn ring_keeps_the_last_ten_minutes_and_decimates() {
        let mut r = TrendRing::default();
        for i in 0..(RING_LEN + 10) as u64 {
            r.push(TrendPoint {
                signal: 0,
                t_ns: i * BUCKET_NS,
                min: i as f64,
                max: i as f64 + 1.0,
            });
        }
        assert_eq!(r.len(), RING_LEN);
        assert_eq!(r.iter().next().unwrap().t_ns, 10 * BUCKET_NS);
        let mut out = Vec::new();
        r.decimate(0, 100, &mut out);
        assert_eq!(out.len(), 100);
        assert_eq!(out[0].min, 10.0);
        assert_eq!(out[99].max, (RING_LEN + 10) as f64);
    }
}
