//! `waferscope bench hot`: the hot-path building blocks against their naive
//! alternatives. The fresh-Vec baseline is measured twice: in this process
//! (glibc reuses the freed block, so it costs only the fill) and in a child
//! started with `MALLOC_MMAP_THRESHOLD_=131072`, where every fresh frame is a
//! fresh mmap that page-faults, as happens in a long-running process whose
//! heap is fragmented.

use super::{median_ns_per_op, Report};
use crate::hot::{latest_cell, prime_thread, FrameGeometry, FramePool};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const FRAME: FrameGeometry = FrameGeometry::gray8(2048, 2048);
const SAMPLES: usize = 15;

pub fn fresh_vec_fill_ns() -> f64 {
    median_ns_per_op(SAMPLES, 20.0, || {
        let mut v: Vec<u8> = Vec::with_capacity(FRAME.bytes());
        v.resize(FRAME.bytes(), black_box(7));
        black_box(&mut v);
    })
}

pub fn run(mmap_child_result: Option<f64>) -> Report {
    prime_thread();
    let mut r = Report::new("hot");
    let pool = FramePool::new(4, FRAME);
    r.add(
        "pool_lease_return",
        median_ns_per_op(SAMPLES, 5.0, || drop(black_box(pool.try_lease()))),
        "ns",
    );
    let pool_fill = median_ns_per_op(SAMPLES, 20.0, || {
        let mut f = pool.try_lease().expect("pool has 4 buffers");
        f.data_mut().fill(black_box(7));
        black_box(f.data()[0]);
    });
    r.add("pool_lease_fill_return_4mib", pool_fill / 1e3, "us");
    let vec_fill = fresh_vec_fill_ns();
    r.add("fresh_vec_fill_4mib", vec_fill / 1e3, "us");
    r.add("pool_speedup_vs_fresh_vec", vec_fill / pool_fill, "x");
    if let Some(child_ns) = mmap_child_result {
        r.add(
            "fresh_vec_fill_4mib_mmap_threshold_128k",
            child_ns / 1e3,
            "us",
        );
        r.add("pool_speedup_vs_fresh_vec_mmap", child_ns / pool_fill, "x");
    }

    let (lease_ns, u64_ns) = handoff();
    r.add("crossbeam_handoff_lease", lease_ns, "ns_per_msg");
    r.add("crossbeam_handoff_u64_baseline", u64_ns, "ns_per_msg");

    let (cell_pub, cell_read, mutex_pub, mutex_read) = latest_vs_mutex();
    r.add("latest_cell_publish_with_reader", cell_pub, "ns");
    r.add("mutex_publish_with_reader", mutex_pub, "ns");
    r.add("latest_cell_read", cell_read, "ns");
    r.add("mutex_read", mutex_read, "ns");
    r
}

fn handoff() -> (f64, f64) {
    const BATCH: usize = 1000;
    let pool = FramePool::new(8, FrameGeometry::gray8(64, 64));
    let (tx, rx) = crossbeam_channel::bounded(4);
    let consumer = std::thread::spawn(move || while rx.recv().is_ok() {});
    let lease = median_ns_per_op(SAMPLES, 10.0, || {
        for _ in 0..BATCH {
            let f = pool
                .lease_timeout(Duration::from_secs(1))
                .expect("consumer returns frames");
            tx.send(f).expect("consumer alive");
        }
    }) / BATCH as f64;
    drop(tx);
    let _ = consumer.join();

    let (tx, rx) = crossbeam_channel::bounded(4);
    let consumer = std::thread::spawn(move || while rx.recv().is_ok() {});
    let plain = median_ns_per_op(SAMPLES, 10.0, || {
        for i in 0..BATCH {
            tx.send(black_box(i as u64)).expect("consumer alive");
        }
    }) / BATCH as f64;
    drop(tx);
    let _ = consumer.join();
    (lease, plain)
}

/// 256 bytes, the size of a machine snapshot; only ever copied.
#[derive(Clone, Copy, Default)]
#[allow(dead_code)]
struct Snapshot([u64; 32]);

fn latest_vs_mutex() -> (f64, f64, f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let (mut w, sub) = latest_cell(Snapshot::default());
    let mut r = sub.reader().expect("fresh cell");
    w.adopt_new_readers();
    let s2 = stop.clone();
    let reader = std::thread::spawn(move || {
        while !s2.load(Ordering::Relaxed) {
            black_box(r.read());
        }
    });
    let mut i = 0;
    let cell_pub = median_ns_per_op(SAMPLES, 5.0, || {
        i += 1;
        w.publish(Snapshot([i; 32]));
    });
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    let mut r = sub.reader().expect("slot free");
    w.adopt_new_readers();
    let cell_read = median_ns_per_op(SAMPLES, 5.0, || {
        black_box(r.read());
    });

    stop.store(false, Ordering::Relaxed);
    let m = Arc::new(Mutex::new(Snapshot::default()));
    let (m2, s2) = (m.clone(), stop.clone());
    let reader = std::thread::spawn(move || {
        while !s2.load(Ordering::Relaxed) {
            black_box(*m2.lock().unwrap_or_else(|e| e.into_inner()));
        }
    });
    let mut i = 0;
    let mutex_pub = median_ns_per_op(SAMPLES, 5.0, || {
        i += 1;
        *m.lock().unwrap_or_else(|e| e.into_inner()) = Snapshot([i; 32]);
    });
    stop.store(true, Ordering::Relaxed);
    let _ = reader.join();
    let mutex_read = median_ns_per_op(SAMPLES, 5.0, || {
        black_box(*m.lock().unwrap_or_else(|e| e.into_inner()));
    });
    (cell_pub, cell_read, mutex_pub, mutex_read)
}
