//! A fixed-bucket latency histogram: hot threads record, anyone reads
//! p50/p99/max at any time, nothing allocates after construction.
//!
//! Buckets are log-linear (16 linear sub-buckets per power of two, like
//! HdrHistogram with 4 significant bits), so any recorded value is reported
//! within 1/16 (6.25 %) of its true value over the full u64 range.

use std::sync::atomic::{AtomicU64, Ordering};

const SUB_BITS: u32 = 4;
const SUB_COUNT: usize = 1 << SUB_BITS;
/// Values below `SUB_COUNT` get one exact bucket each; every power of two
/// above gets `SUB_COUNT` buckets.
const BUCKETS: usize = SUB_COUNT + (64 - SUB_BITS as usize) * SUB_COUNT;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistogramSummary {
    pub count: u64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
    pub mean: u64,
}

pub struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum: AtomicU64,
    max: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("summary", &self.summary())
            .finish()
    }
}

fn bucket_of(v: u64) -> usize {
    if v < SUB_COUNT as u64 {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= SUB_BITS
    let sub = (v >> (exp - SUB_BITS)) as usize & (SUB_COUNT - 1);
    SUB_COUNT + (exp - SUB_BITS) as usize * SUB_COUNT + sub
}

/// The largest value that lands in bucket `i` (what a percentile reports, so
/// a reported p99 is never lower than the true one).
fn bucket_upper(i: usize) -> u64 {
    if i < SUB_COUNT {
        return i as u64;
    }
    let exp = ((i - SUB_COUNT) / SUB_COUNT) as u32 + SUB_BITS;
    let sub = ((i - SUB_COUNT) % SUB_COUNT) as u64;
    let low = (1u64 << exp) | (sub << (exp - SUB_BITS));
    low.saturating_add((1u64 << (exp - SUB_BITS)) - 1)
}

impl LatencyHistogram {
    pub fn new() -> Self {
        Self {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }

    /// Records one value (nanoseconds by convention). Wait-free: four relaxed
    /// atomic updates. Readers may see the count a moment before the bucket,
    /// which only shifts a percentile by one sample.
    #[inline]
    pub fn record(&self, value: u64) {
        self.buckets[bucket_of(value)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(value, Ordering::Relaxed);
        self.max.fetch_max(value, Ordering::Relaxed);
    }

    pub fn record_duration(&self, d: std::time::Duration) {
        self.record(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The value at quantile `q` (0.0..=1.0), as the upper edge of its bucket.
    pub fn quantile(&self, q: f64) -> u64 {
        let total: u64 = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum();
        if total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b.load(Ordering::Relaxed);
            if seen >= rank {
                return bucket_upper(i).min(self.max.load(Ordering::Relaxed));
            }
        }
        self.max.load(Ordering::Relaxed)
    }

    pub fn summary(&self) -> HistogramSummary {
        let count = self.count();
        HistogramSummary {
            count,
            p50: self.quantile(0.50),
            p99: self.quantile(0.99),
            max: self.max.load(Ordering::Relaxed),
            mean: self
                .sum
                .load(Ordering::Relaxed)
                .checked_div(count)
                .unwrap_or(0),
        }
    }

    /// Starts a new measurement window. Samples recorded concurrently with a
    /// reset may land on either side of it; fine for telemetry.
    pub fn reset(&self) {
        for b in self.buckets.iter() {
            b.store(0, Ordering::Relaxed);
        }
        self.count.store(0, Ordering::Relaxed);
        self.sum.store(0, Ordering::Relaxed);
        self.max.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_monotonic_and_cover_their_values() {
        let mut last = 0;
        for i in 0..BUCKETS {
            let up = bucket_upper(i);
            assert!(i == 0 || up > last, "bucket {i}");
            assert_eq!(bucket_of(up), i, "upper edge of {i} maps back");
            last = up;
        }
        for v in [0, 1, 15, 16, 17, 100, 1_000, 123_456_789, u64::MAX] {
            let up = bucket_upper(bucket_of(v));
            assert!(up >= v && (up - v) as f64 <= v as f64 / 16.0 + 1.0, "{v}");
        }
    }

    #[test]
    fn quantiles_of_a_uniform_ramp() {
        let h = LatencyHistogram::new();
        for v in 1..=10_000u64 {
            h.record(v);
        }
        let s = h.summary();
        assert_eq!(s.count, 10_000);
        assert_eq!(s.max, 10_000);
        assert!((5_000..=5_000 + 5_000 / 16).contains(&s.p50), "{s:?}");
        assert!((9_900..=10_000).contains(&s.p99), "{s:?}");
        assert_eq!(s.mean, 5_000);
        h.reset();
        assert_eq!(h.summary(), HistogramSummary::default());
    }
}
