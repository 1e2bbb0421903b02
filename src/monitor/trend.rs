//! Trends: the poller folds each signal's samples into 100 ms min/max
//! buckets and hands each finished bucket over a bounded channel (dropping,
//! and counting, if the reader is behind: the poller never waits); the
//! reader keeps them in fixed rings and decimates them for plotting.
//!
//! Two rings per signal rather than one of an hour's 100 ms buckets: the
//! last 10 minutes at 100 ms, and the last hour at 1 s. A 1 h trend is a
//! few hundred pixels wide, so 3,600 one-second buckets already hold more
//! than it can draw, while 36,000 fine ones would cost four times the
//! memory (1.1 MB instead of 0.3 MB per signal) and a ten times longer scan
//! on every frame that shows the hour.

use crate::machine::SIGNALS;

pub const BUCKET_NS: u64 = 100_000_000;
/// 10 minutes of 100 ms buckets.
pub const RING_LEN: usize = 6_000;
/// The hour ring's bucket: 1 s.
pub const COARSE_BUCKET_NS: u64 = 1_000_000_000;
/// An hour of 1 s buckets.
pub const COARSE_RING_LEN: usize = 3_600;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TrendPoint {
    pub signal: u8,
    /// Bucket start, ns since the monitor's epoch.
    pub t_ns: u64,
    pub min: f64,
    pub max: f64,
}

impl TrendPoint {
    /// Widens this bucket to cover `other` too (keeps its own start).
    fn merge(&mut self, other: &TrendPoint) {
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// How far back a trend plot looks (HMI rule 9: 1 min, 10 min, 1 h).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TrendSpan {
    OneMinute,
    #[default]
    TenMinutes,
    OneHour,
}

impl TrendSpan {
    pub const ALL: [TrendSpan; 3] = [Self::OneMinute, Self::TenMinutes, Self::OneHour];

    pub fn label(self) -> &'static str {
        match self {
            Self::OneMinute => "1 min",
            Self::TenMinutes => "10 min",
            Self::OneHour => "1 h",
        }
    }

    pub fn duration_ns(self) -> u64 {
        match self {
            Self::OneMinute => 60 * 1_000_000_000,
            Self::TenMinutes => 600 * 1_000_000_000,
            Self::OneHour => 3_600 * 1_000_000_000,
        }
    }
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

/// A fixed ring of buckets in time order; the oldest is overwritten.
#[derive(Debug, Clone)]
struct BucketRing {
    points: Vec<TrendPoint>,
    next: usize,
    len: usize,
}

impl BucketRing {
    fn with_len(n: usize) -> Self {
        Self {
            points: vec![TrendPoint::default(); n],
            next: 0,
            len: 0,
        }
    }

    fn push(&mut self, p: TrendPoint) {
        let cap = self.points.len();
        self.points[self.next] = p;
        self.next = (self.next + 1) % cap;
        self.len = (self.len + 1).min(cap);
    }

    /// The `i`-th point, oldest first.
    fn at(&self, i: usize) -> &TrendPoint {
        let cap = self.points.len();
        &self.points[(self.next + cap - self.len + i) % cap]
    }

    fn iter(&self) -> impl Iterator<Item = &TrendPoint> {
        (0..self.len).map(move |i| self.at(i))
    }

    /// Points since `since_ns`, merged into at most `buckets` min/max
    /// buckets. Scans only the points in range, newest back, and
    /// allocates nothing beyond `out`'s growth.
    fn decimate(&self, since_ns: u64, buckets: usize, out: &mut Vec<TrendPoint>) {
        out.clear();
        let in_range = (0..self.len)
            .rev()
            .take_while(|&i| self.at(i).t_ns >= since_ns)
            .count();
        if in_range == 0 || buckets == 0 {
            return;
        }
        let first = self.len - in_range;
        let per = in_range.div_ceil(buckets);
        for chunk_start in (first..self.len).step_by(per) {
            let mut merged = *self.at(chunk_start);
            for i in chunk_start + 1..(chunk_start + per).min(self.len) {
                merged.merge(self.at(i));
            }
            out.push(merged);
        }
    }
}

/// One signal's trend (reader side): the last 10 minutes at 100 ms and
/// the last hour at 1 s. Allocated once; a push allocates nothing.
#[derive(Debug, Clone)]
pub struct TrendRing {
    fine: BucketRing,
    coarse: BucketRing,
    /// The second being folded into the hour ring, not yet pushed.
    second: Option<TrendPoint>,
}

impl Default for TrendRing {
    fn default() -> Self {
        Self {
            fine: BucketRing::with_len(RING_LEN),
            coarse: BucketRing::with_len(COARSE_RING_LEN),
            second: None,
        }
    }
}

impl TrendRing {
    pub fn push(&mut self, p: TrendPoint) {
        self.fine.push(p);
        let start = p.t_ns - p.t_ns % COARSE_BUCKET_NS;
        match &mut self.second {
            Some(s) if s.t_ns == start => s.merge(&p),
            open => {
                if let Some(done) = open.take() {
                    self.coarse.push(done);
                }
                *open = Some(TrendPoint { t_ns: start, ..p });
            }
        }
    }

    /// 100 ms buckets held (at most 10 minutes' worth).
    pub fn len(&self) -> usize {
        self.fine.len
    }

    pub fn is_empty(&self) -> bool {
        self.fine.len == 0
    }

    /// 1 s buckets held (at most an hour's worth), the open second not
    /// counted.
    pub fn hour_len(&self) -> usize {
        self.coarse.len
    }

    /// The 100 ms buckets, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &TrendPoint> {
        self.fine.iter()
    }

    /// The 1 s buckets, oldest first (the open second not included).
    pub fn hour_iter(&self) -> impl Iterator<Item = &TrendPoint> {
        self.coarse.iter()
    }

    /// The `span` before `now_ns`, merged into at most `buckets` min/max
    /// buckets (about twice the plot's width in pixels). Fills `out`.
    /// Spans up to 10 minutes read the 100 ms ring; the hour reads the 1 s
    /// ring, whose newest second is still open and not shown (a second's
    /// lag on an hour's plot).
    pub fn decimate(
        &self,
        span: TrendSpan,
        now_ns: u64,
        buckets: usize,
        out: &mut Vec<TrendPoint>,
    ) {
        let since = now_ns.saturating_sub(span.duration_ns());
        if span.duration_ns() <= RING_LEN as u64 * BUCKET_NS {
            self.fine.decimate(since, buckets, out)
        } else {
            self.coarse.decimate(since, buckets, out)
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

    /// Bucket `i` of a steady feed: min i, max i + 1.
    fn point(i: u64) -> TrendPoint {
        TrendPoint {
            signal: 0,
            t_ns: i * BUCKET_NS,
            min: i as f64,
            max: i as f64 + 1.0,
        }
    }

    #[test]
    fn ring_keeps_the_last_ten_minutes_and_decimates() {
        let mut r = TrendRing::default();
        let n = (RING_LEN + 10) as u64;
        for i in 0..n {
            r.push(point(i));
        }
        assert_eq!(r.len(), RING_LEN);
        assert_eq!(r.iter().next().unwrap().t_ns, 10 * BUCKET_NS);
        let mut out = Vec::new();
        let now = n * BUCKET_NS;
        r.decimate(TrendSpan::TenMinutes, now, 100, &mut out);
        assert_eq!(out.len(), 100);
        assert_eq!(out[0].min, 10.0);
        assert_eq!(out[99].max, n as f64);
    }

    /// Seventy minutes of 100 ms buckets: the hour ring holds the last
    /// hour at 1 s (each second the min and max of its ten buckets), the
    /// first ten minutes are gone, and the 10 min ring is unchanged.
    #[test]
    fn ring_keeps_an_hour_at_one_second_and_drops_older() {
        let mut r = TrendRing::default();
        let n = 70 * 600u64;
        for i in 0..n {
            r.push(point(i));
        }
        assert_eq!(r.len(), RING_LEN);
        // The last second is still open, so an hour ends one second back.
        assert_eq!(r.hour_len(), COARSE_RING_LEN);
        let oldest = r.hour_iter().next().unwrap();
        let newest = r.hour_iter().last().unwrap();
        let first_second = n / 10 - 1 - COARSE_RING_LEN as u64;
        assert_eq!(oldest.t_ns, first_second * COARSE_BUCKET_NS);
        assert_eq!(
            (oldest.min, oldest.max),
            ((first_second * 10) as f64, (first_second * 10 + 10) as f64)
        );
        assert_eq!(newest.t_ns, (n / 10 - 2) * COARSE_BUCKET_NS);
        // Nothing older than an hour back is kept.
        assert!(r.hour_iter().all(|p| p.t_ns
            >= (n * BUCKET_NS)
                .saturating_sub(TrendSpan::OneHour.duration_ns() + COARSE_BUCKET_NS)));
    }

    /// Whatever the span and the point count, decimation returns at most
    /// the buckets asked for, covers only the span, and keeps the extremes.
    #[test]
    fn decimation_is_bounded_and_keeps_the_extremes_of_each_span() {
        let mut r = TrendRing::default();
        let n = 70 * 600u64;
        for i in 0..n {
            r.push(point(i));
        }
        let now = n * BUCKET_NS;
        let mut out = Vec::new();
        for span in TrendSpan::ALL {
            for buckets in [1, 7, 300, 1000, 10_000] {
                r.decimate(span, now, buckets, &mut out);
                assert!(!out.is_empty());
                assert!(out.len() <= buckets, "{span:?}: {} > {buckets}", out.len());
                assert!(
                    out[0].t_ns >= now - span.duration_ns(),
                    "{span:?} starts in range"
                );
                let max = out.iter().map(|p| p.max).fold(f64::MIN, f64::max);
                let min = out.iter().map(|p| p.min).fold(f64::MAX, f64::min);
                let newest = r.iter().last().unwrap().max;
                // The hour trails by the open second.
                let expected_max = if span == TrendSpan::OneHour {
                    newest - 10.0
                } else {
                    newest
                };
                assert_eq!(max, expected_max, "{span:?}");
                let expected_min = (n - span.duration_ns() / BUCKET_NS) as f64;
                assert_eq!(min, expected_min, "{span:?}, {buckets} buckets");
            }
        }
        // The 1 min span reads 100 ms resolution: 600 buckets of its own.
        r.decimate(TrendSpan::OneMinute, now, 10_000, &mut out);
        assert_eq!(out.len(), 600);
    }
}
