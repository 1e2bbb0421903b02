//! The hot path allocates nothing once warm: frames leased, filled, handed
//! over a bounded crossbeam channel and dropped; a LatestCell published and
//! read. Counted per thread by the crate's counting allocator.

use std::sync::Barrier;
use std::time::Duration;
use waferscope::hot::{alloc_count, latest_cell, FrameGeometry, FramePool};

#[global_allocator]
static ALLOC: waferscope::hot::CountingAlloc = waferscope::hot::CountingAlloc;

const WARM_UP: usize = 200;
const FRAMES: usize = 10_000;

/// Runs producer → channel → consumer for `WARM_UP + FRAMES` frames and
/// returns the allocations each thread made after warm-up. With
/// `allocate_per_frame`, the producer allocates once per frame: the
/// negative control that shows the counter sees allocations at all.
fn frame_handoff(allocate_per_frame: bool) -> (u64, u64, FramePool) {
    let pool = FramePool::new(8, FrameGeometry::gray8(256, 256));
    let (tx, rx) = crossbeam_channel::bounded(4);
    let warm = Barrier::new(2);
    std::thread::scope(|s| {
        let producer = s.spawn(|| {
            let _hot = alloc_count::mark_thread_hot("test-producer");
            waferscope::hot::prime_thread();
            let mut after_warm_up = 0;
            for seq in 0..(WARM_UP + FRAMES) as u64 {
                if seq == WARM_UP as u64 {
                    warm.wait();
                    after_warm_up = alloc_count::thread_allocations();
                }
                let mut frame = pool
                    .lease_timeout(Duration::from_secs(5))
                    .expect("consumer returns frames");
                // Warm-up takes every path once, blocking ones included
                // (crossbeam grows a channel's waiter list on the first real
                // wait of each side): the consumer waits on an empty channel
                // while we sleep here; we wait on a full one while it sleeps.
                // 50 ms outlasts crossbeam's spin phase even on a loaded box.
                if seq == 10 {
                    std::thread::sleep(Duration::from_millis(50));
                }
                frame.meta.sequence = seq;
                frame.data_mut().fill(seq as u8);
                if allocate_per_frame {
                    std::hint::black_box(Box::new(seq));
                }
                tx.send(frame).expect("consumer alive");
            }
            drop(tx);
            alloc_count::thread_allocations() - after_warm_up
        });
        let consumer = s.spawn(|| {
            let _hot = alloc_count::mark_thread_hot("test-consumer");
            waferscope::hot::prime_thread();
            let mut after_warm_up = 0;
            let mut expected = 0u64;
            while let Ok(frame) = rx.recv() {
                assert_eq!(frame.meta.sequence, expected);
                let d = frame.data();
                assert!(d[0] == expected as u8 && d[d.len() - 1] == expected as u8);
                expected += 1;
                drop(frame);
                if expected == 50 {
                    std::thread::sleep(Duration::from_millis(50));
                }
                if expected == WARM_UP as u64 {
                    warm.wait();
                    after_warm_up = alloc_count::thread_allocations();
                }
            }
            assert_eq!(expected as usize, WARM_UP + FRAMES);
            alloc_count::thread_allocations() - after_warm_up
        });
        let p = producer.join().unwrap();
        let c = consumer.join().unwrap();
        (p, c, pool.clone())
    })
}

#[test]
fn frame_handoff_allocates_nothing_after_warm_up() {
    let (producer, consumer, pool) = frame_handoff(false);
    assert_eq!(producer, 0, "producer allocated after warm-up");
    assert_eq!(consumer, 0, "consumer allocated after warm-up");
    assert_eq!(pool.in_use(), 0, "every buffer is back in the pool");
    assert!(pool.try_lease().is_some());
    assert_eq!(pool.stats().leases as usize, WARM_UP + FRAMES + 1);
}

#[test]
fn negative_control_one_allocation_per_frame_is_caught() {
    let (producer, consumer, pool) = frame_handoff(true);
    assert_eq!(producer, FRAMES as u64, "the counter must see every Box");
    assert_eq!(consumer, 0);
    assert_eq!(pool.in_use(), 0);
}

#[test]
fn latest_cell_publish_and_read_allocate_nothing() {
    #[derive(Clone, Copy, Default)]
    struct Snapshot {
        seq: u64,
        values: [f64; 32],
    }
    const PUBLISHES: u64 = 100_000;
    let (mut writer, subscriber) = latest_cell(Snapshot::default());
    let mut reader = subscriber.reader().unwrap();
    writer.adopt_new_readers();
    let warm = Barrier::new(2);
    std::thread::scope(|s| {
        let w = s.spawn(|| {
            let _hot = alloc_count::mark_thread_hot("test-writer");
            for i in 0..100 {
                writer.publish(Snapshot {
                    seq: i,
                    values: [i as f64; 32],
                });
            }
            warm.wait();
            let before = alloc_count::thread_allocations();
            for i in 100..100 + PUBLISHES {
                writer.publish(Snapshot {
                    seq: i,
                    values: [i as f64; 32],
                });
            }
            alloc_count::thread_allocations() - before
        });
        let r = s.spawn(|| {
            let _hot = alloc_count::mark_thread_hot("test-reader");
            reader.read();
            warm.wait();
            let before = alloc_count::thread_allocations();
            let mut reads = 0u64;
            loop {
                let s = reader.read();
                assert!(s.value.values.iter().all(|v| *v == s.value.seq as f64));
                reads += 1;
                if s.value.seq == 100 + PUBLISHES - 1 {
                    break;
                }
            }
            assert!(reads > 0);
            alloc_count::thread_allocations() - before
        });
        assert_eq!(w.join().unwrap(), 0, "writer allocated");
        assert_eq!(r.join().unwrap(), 0, "reader allocated");
    });
}

/// A watched thread's beats and idle marks allocate nothing (they run on
/// every hot thread, per frame or per poll).
#[test]
fn thread_liveness_beats_allocate_nothing() {
    let health = waferscope::hot::ThreadHealth::detached("test-beats", Duration::from_secs(1));
    health.beat();
    let before = alloc_count::thread_allocations();
    for _ in 0..100_000 {
        health.beat();
        health.idle();
    }
    assert_eq!(alloc_count::thread_allocations() - before, 0);
    // Negative control: the counter does see an allocation on this thread.
    std::hint::black_box(Box::new(1u8));
    assert!(alloc_count::thread_allocations() - before >= 1);
}

/// The realistic simulated camera (fresh noise, stage error, gain, grain
/// and edge roughness per exposure) images a die without allocating.
#[test]
fn realistic_sim_capture_allocates_nothing() {
    use std::sync::Arc;
    use waferscope::machine::sim::{SimCamera, SimRealism, SimWafer};
    use waferscope::machine::{Notch, SimFaults, WaferGeometry};
    let g = WaferGeometry {
        diameter_mm: 100.0,
        die_pitch_um: (20_000.0, 20_000.0),
        die_size_um: (19_000.0, 19_000.0),
        edge_exclusion_mm: 2.0,
        notch: Notch::Down,
    };
    let geometry = FrameGeometry::gray8(256, 256);
    let wafer = Arc::new(SimWafer::new(g, geometry, 4));
    let dies = wafer.sites.len() as u32;
    let mut cam = SimCamera::with_realism(
        wafer,
        SimRealism::realistic(),
        Arc::new(SimFaults::default()),
    );
    let pool = FramePool::new(1, geometry);
    let mut frame = pool.try_lease().unwrap();
    cam.capture(0, &mut frame).unwrap();
    let before = alloc_count::thread_allocations();
    for i in 0..50 {
        cam.capture(i % dies, &mut frame).unwrap();
    }
    assert_eq!(alloc_count::thread_allocations() - before, 0);
}
