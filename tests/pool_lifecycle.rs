//! Lease lifecycle of the frame pool: exclusivity under stress, empty-pool
//! behaviour and its counters, cross-thread return, pool dropped first.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use waferscope::hot::{FrameGeometry, FramePool};

/// A tiny deterministic generator for hold times (no dependency needed).
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[test]
fn no_buffer_is_ever_leased_twice_at_once() {
    const BUFFERS: usize = 4;
    const THREADS: u64 = 4;
    let pool = FramePool::new(BUFFERS, FrameGeometry::gray8(64, 64));
    let held: Vec<AtomicBool> = (0..BUFFERS).map(|_| AtomicBool::new(false)).collect();
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let (pool, held) = (&pool, &held);
            s.spawn(move || {
                let mut rng = SplitMix(t + 1);
                let mark = t as u8 + 1;
                for _ in 0..2_000 {
                    let Some(mut f) = pool.lease_timeout(Duration::from_secs(5)) else {
                        panic!("pool starved for 5 s");
                    };
                    let i = f.buffer_index();
                    assert!(
                        !held[i].swap(true, Ordering::AcqRel),
                        "buffer {i} leased twice at once"
                    );
                    f.data_mut().fill(mark);
                    match rng.next() % 4 {
                        0 => std::thread::yield_now(),
                        1 => std::thread::sleep(Duration::from_micros(rng.next() % 50)),
                        _ => {}
                    }
                    assert!(
                        f.data().iter().all(|&b| b == mark),
                        "buffer {i} written by another holder"
                    );
                    held[i].store(false, Ordering::Release);
                }
            });
        }
    });
    assert_eq!(pool.in_use(), 0);
    assert_eq!(pool.stats().leases, THREADS * 2_000);
}

#[test]
fn try_lease_on_empty_pool_returns_none_and_counts() {
    let pool = FramePool::new(2, FrameGeometry::gray8(16, 16));
    let a = pool.try_lease().unwrap();
    let b = pool.try_lease().unwrap();
    assert_ne!(a.buffer_index(), b.buffer_index());
    assert_eq!(pool.in_use(), 2);
    assert!(pool.try_lease().is_none());
    assert!(pool.try_lease().is_none());
    let s = pool.stats();
    assert_eq!((s.empty, s.leases, s.in_use, s.capacity), (2, 2, 2, 2));
    drop(a);
    assert!(pool.try_lease().is_some());
}

#[test]
fn lease_timeout_times_out_and_counts() {
    let pool = FramePool::new(1, FrameGeometry::gray8(16, 16));
    let _held = pool.try_lease().unwrap();
    let start = Instant::now();
    assert!(pool.lease_timeout(Duration::from_millis(30)).is_none());
    assert!(start.elapsed() >= Duration::from_millis(30));
    let s = pool.stats();
    assert_eq!((s.timeouts, s.waits, s.empty), (1, 1, 1));
}

#[test]
fn lease_timeout_gets_a_buffer_returned_while_waiting() {
    let pool = FramePool::new(1, FrameGeometry::gray8(16, 16));
    let held = pool.try_lease().unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(20));
        drop(held);
    });
    let got = pool.lease_timeout(Duration::from_secs(5));
    assert!(got.is_some());
    assert_eq!(pool.stats().timeouts, 0);
    releaser.join().unwrap();
}

#[test]
fn a_lease_dropped_on_another_thread_returns_its_buffer() {
    let pool = FramePool::new(1, FrameGeometry::gray8(16, 16));
    let mut f = pool.try_lease().unwrap();
    f.meta.sequence = 42;
    std::thread::spawn(move || {
        assert_eq!(f.meta.sequence, 42);
        drop(f)
    })
    .join()
    .unwrap();
    assert_eq!(pool.in_use(), 0);
    assert!(pool.try_lease().is_some());
}

#[test]
fn dropping_the_pool_while_leases_live_is_safe() {
    let pool = FramePool::new(3, FrameGeometry::gray8(256, 256));
    let mut leases: Vec<_> = (0..3).map(|_| pool.try_lease().unwrap()).collect();
    drop(pool);
    // The buffers must still be valid memory: write and read all of it, on
    // this thread and on another.
    for (i, f) in leases.iter_mut().enumerate() {
        f.data_mut().fill(i as u8 + 7);
    }
    let last = leases.pop().unwrap();
    std::thread::spawn(move || assert!(last.data().iter().all(|&b| b == 9)))
        .join()
        .unwrap();
    for (i, f) in leases.iter().enumerate() {
        assert!(f.data().iter().all(|&b| b == i as u8 + 7));
    }
    drop(leases); // the last lease frees the buffers
}

#[test]
fn geometry_and_metadata_travel_with_the_frame() {
    let pool = FramePool::new(1, FrameGeometry::default());
    let f = pool.try_lease().unwrap();
    assert_eq!(f.geometry(), FrameGeometry::gray8(2048, 2048));
    assert_eq!(f.data().len(), 2048 * 2048);
}
