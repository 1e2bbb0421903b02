//! `cargo bench --bench hot`: the hot-path building blocks, each beside the
//! naive alternative measured in the same run, with divan counting
//! allocations. Run it once more with `MALLOC_MMAP_THRESHOLD_=131072` to see
//! the case where every fresh 4 MiB Vec is a fresh mmap that page-faults.
//! (`waferscope bench hot --json` measures the same pairs and prints JSON.)

use divan::counter::BytesCount;
use divan::{black_box, Bencher};
use std::sync::Mutex;
use std::time::Duration;
use waferscope::hot::{latest_cell, FrameGeometry, FramePool};

#[global_allocator]
static ALLOC: divan::AllocProfiler = divan::AllocProfiler::system();

const FRAME: FrameGeometry = FrameGeometry::gray8(2048, 2048); // 4 MiB

fn main() {
    divan::main();
}

mod pool {
    use super::*;

    #[divan::bench]
    fn lease_return(b: Bencher) {
        let pool = FramePool::new(4, FRAME);
        b.bench_local(|| drop(black_box(pool.try_lease())));
    }

    #[divan::bench]
    fn lease_fill_return_4mib(b: Bencher) {
        let pool = FramePool::new(4, FRAME);
        b.counter(BytesCount::new(FRAME.bytes())).bench_local(|| {
            let mut f = pool.try_lease().unwrap();
            f.data_mut().fill(black_box(7));
            black_box(f.data()[FRAME.bytes() - 1]);
        });
    }

    /// The naive alternative: a fresh buffer per frame.
    #[divan::bench]
    fn fresh_vec_fill_4mib(b: Bencher) {
        b.counter(BytesCount::new(FRAME.bytes())).bench_local(|| {
            let mut v: Vec<u8> = Vec::with_capacity(FRAME.bytes());
            v.resize(FRAME.bytes(), black_box(7));
            black_box(&mut v);
        });
    }
}

mod handoff {
    use super::*;

    const BATCH: usize = 1_000;

    /// Lease on this thread, send over a bounded crossbeam channel, dropped
    /// (returned) by a consumer thread: the pipeline's hand-off. Timed per
    /// message over batches of 1,000.
    #[divan::bench]
    fn crossbeam_lease(b: Bencher) {
        waferscope::hot::prime_thread();
        let pool = FramePool::new(8, FrameGeometry::gray8(64, 64));
        let (tx, rx) = crossbeam_channel::bounded(4);
        let consumer = std::thread::spawn(move || while rx.recv().is_ok() {});
        b.counter(divan::counter::ItemsCount::new(BATCH))
            .bench_local(|| {
                for _ in 0..BATCH {
                    let f = pool.lease_timeout(Duration::from_secs(1)).unwrap();
                    tx.send(f).unwrap();
                }
            });
        drop(tx);
        consumer.join().unwrap();
    }

    /// Baseline: the same channel carrying a plain integer.
    #[divan::bench]
    fn crossbeam_u64(b: Bencher) {
        waferscope::hot::prime_thread();
        let (tx, rx) = crossbeam_channel::bounded(4);
        let consumer = std::thread::spawn(move || while rx.recv().is_ok() {});
        b.counter(divan::counter::ItemsCount::new(BATCH))
            .bench_local(|| {
                for i in 0..BATCH {
                    tx.send(black_box(i as u64)).unwrap();
                }
            });
        drop(tx);
        consumer.join().unwrap();
    }
}

mod latest {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// 256 bytes, like a machine snapshot; only ever copied.
    #[derive(Clone, Copy, Default)]
    #[allow(dead_code)]
    struct Snapshot([u64; 32]);

    #[divan::bench]
    fn latest_cell_publish(b: Bencher) {
        let (mut w, sub) = latest_cell(Snapshot::default());
        let mut r = sub.reader().unwrap();
        w.adopt_new_readers();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let reader = std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                black_box(r.read());
            }
        });
        let mut i = 0u64;
        b.bench_local(|| {
            i += 1;
            w.publish(Snapshot([i; 32]));
        });
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();
    }

    #[divan::bench]
    fn latest_cell_read(b: Bencher) {
        let (mut w, sub) = latest_cell(Snapshot::default());
        let mut r = sub.reader().unwrap();
        w.publish(Snapshot([1; 32]));
        b.bench_local(|| black_box(r.read()));
    }

    #[divan::bench]
    fn mutex_publish(b: Bencher) {
        let cell = Arc::new(Mutex::new(Snapshot::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (c2, s2) = (cell.clone(), stop.clone());
        let reader = std::thread::spawn(move || {
            while !s2.load(Ordering::Relaxed) {
                black_box(*c2.lock().unwrap());
            }
        });
        let mut i = 0u64;
        b.bench_local(|| {
            i += 1;
            *cell.lock().unwrap() = Snapshot([i; 32]);
        });
        stop.store(true, Ordering::Relaxed);
        reader.join().unwrap();
    }

    #[divan::bench]
    fn mutex_read(b: Bencher) {
        let cell = Mutex::new(Snapshot([1; 32]));
        b.bench_local(|| black_box(*cell.lock().unwrap()));
    }
}
