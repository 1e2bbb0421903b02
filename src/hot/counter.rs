//! Lock-free counters and gauges that hot threads bump and the UI reads.

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing event count (frames, drops, stalled ns…).
///
/// Cache-padded so two counters bumped by different threads never share a
/// cache line; `Relaxed` is enough because a counter orders nothing else.
#[derive(Debug, Default)]
pub struct Counter(CachePadded<AtomicU64>);

impl Counter {
    pub const fn new() -> Self {
        Self(CachePadded::new(AtomicU64::new(0)))
    }

    #[inline]
    pub fn incr(&self) {
        self.add(1);
    }

    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A level that goes up and down (queue depth, buffers in use) and remembers
/// its high-water mark.
#[derive(Debug, Default)]
pub struct Gauge {
    value: CachePadded<AtomicU64>,
    high_water: AtomicU64,
}

impl Gauge {
    pub const fn new() -> Self {
        Self {
            value: CachePadded::new(AtomicU64::new(0)),
            high_water: AtomicU64::new(0),
        }
    }

    #[inline]
    pub fn set(&self, v: u64) {
        self.value.store(v, Ordering::Relaxed);
        self.high_water.fetch_max(v, Ordering::Relaxed);
    }

    #[inline]
    pub fn get(&self) -> u64 {
        self.value.load(Ordering::Relaxed)
    }

    #[inline]
    pub fn high_water(&self) -> u64 {
        self.high_water.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_adds_across_threads() {
        let c = Counter::new();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..10_000 {
                        c.incr();
                    }
                });
            }
        });
        assert_eq!(c.get(), 20_000);
    }

    #[test]
    fn gauge_keeps_high_water() {
        let g = Gauge::new();
        g.set(5);
        g.set(2);
        assert_eq!(g.get(), 2);
        assert_eq!(g.high_water(), 5);
    }
}
