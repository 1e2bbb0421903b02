//! `LatestCell`: one writer publishes fixed-size snapshots; any number of
//! readers take the newest complete one without blocking the writer or each
//! other and without allocating.
//!
//! Built on `triple_buffer` (one triple buffer per reader, fanned out by the
//! writer) rather than a seqlock: a seqlock's optimistic read races with the
//! writer's non-atomic copy, which is undefined behaviour in Rust's memory
//! model however common it is, while triple_buffer is sound, wait-free on
//! both sides and needs no `unsafe` of ours. The cost is one copy of `T`
//! per reader per publish; snapshots are small `Copy` structs and readers
//! are few (UI, run engine, alarm evaluator), so that is a few hundred bytes.
//!
//! New readers join through a bounded channel that the writer drains on its
//! next publish (into pre-reserved capacity, so publishing never allocates);
//! a dropped reader is noticed and its slot reused. So that a reader made
//! while the writer is idle still starts from the newest value, the writer
//! also keeps a copy of it behind a mutex that only reader *creation*
//! contends for (reads never touch it); publish and creation hold it across
//! the join hand-over, so a new reader never misses a value.

use crossbeam_channel::{bounded, Receiver, Sender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use triple_buffer::{triple_buffer, Input, Output};

/// Most readers one cell serves at once.
pub const MAX_READERS: usize = 32;

/// A value with the publish count that produced it; `seq == 0` is the
/// initial value, before anything was published.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Stamped<T> {
    pub seq: u64,
    pub value: T,
}

struct Subscription<T: Send> {
    input: Input<Stamped<T>>,
    alive: Arc<AtomicBool>,
}

/// Creates a cell holding `initial` (seq 0). The writer goes to the one
/// publishing thread; the subscriber can be cloned freely to make readers.
pub fn latest_cell<T: Copy + Send>(initial: T) -> (LatestWriter<T>, LatestSubscriber<T>) {
    let (joins_tx, joins_rx) = bounded(MAX_READERS);
    let first = Stamped {
        seq: 0,
        value: initial,
    };
    let shared = Arc::new(Mutex::new(first));
    (
        LatestWriter {
            last: first,
            readers: Vec::with_capacity(MAX_READERS),
            joins: joins_rx,
            shared: Arc::clone(&shared),
        },
        LatestSubscriber {
            joins: joins_tx,
            shared,
        },
    )
}

pub struct LatestWriter<T: Send> {
    last: Stamped<T>,
    readers: Vec<Subscription<T>>,
    joins: Receiver<Subscription<T>>,
    shared: Arc<Mutex<Stamped<T>>>,
}

impl<T: Copy + Send> LatestWriter<T> {
    /// Publishes `value` to every reader. Wait-free apart from the fan-out
    /// loop; never allocates.
    pub fn publish(&mut self, value: T) {
        self.last = Stamped {
            seq: self.last.seq + 1,
            value,
        };
        {
            // Held while adopting: a reader being created either joined
            // before (and is adopted now) or reads this value after.
            let mut shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
            *shared = self.last;
            adopt(&mut self.readers, &self.joins, self.last);
        }
        let last = self.last;
        for r in &mut self.readers {
            r.input.write(last);
        }
    }

    /// Hands the current value to readers made since the last publish.
    pub fn adopt_new_readers(&mut self) {
        let _shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        adopt(&mut self.readers, &self.joins, self.last);
    }

    /// The last value published (or the initial one).
    pub fn last(&self) -> Stamped<T> {
        self.last
    }
}

/// Drops readers that went away and takes in readers that joined, giving
/// them `last`. Never grows `readers` past its reserved capacity.
fn adopt<T: Copy + Send>(
    readers: &mut Vec<Subscription<T>>,
    joins: &Receiver<Subscription<T>>,
    last: Stamped<T>,
) {
    readers.retain(|r| r.alive.load(Ordering::Relaxed));
    while readers.len() < readers.capacity() {
        let Ok(mut sub) = joins.try_recv() else {
            break;
        };
        sub.input.write(last);
        readers.push(sub);
    }
}

/// Makes readers of one cell. Cheap to clone; send it wherever a reader is
/// needed.
pub struct LatestSubscriber<T: Send> {
    joins: Sender<Subscription<T>>,
    shared: Arc<Mutex<Stamped<T>>>,
}

impl<T: Copy + Send> Clone for LatestSubscriber<T> {
    fn clone(&self) -> Self {
        Self {
            joins: self.joins.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T: Copy + Send> LatestSubscriber<T> {
    /// A new reader, starting from the newest value published. `None` if
    /// `MAX_READERS` joins are already waiting for the writer. Allocates
    /// and may wait for a publish in progress: call it at set-up.
    pub fn reader(&self) -> Option<LatestReader<T>> {
        let shared = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        let initial = *shared;
        let (input, output) = triple_buffer(&initial);
        let alive = Arc::new(AtomicBool::new(true));
        self.joins
            .try_send(Subscription {
                input,
                alive: Arc::clone(&alive),
            })
            .ok()?;
        drop(shared);
        Some(LatestReader {
            output,
            alive,
            last_seen: initial.seq,
        })
    }
}

/// One reader's view of a cell. Reading takes `&mut self` (the reader owns
/// its side of its triple buffer); make one reader per reading thread.
pub struct LatestReader<T: Send> {
    output: Output<Stamped<T>>,
    alive: Arc<AtomicBool>,
    last_seen: u64,
}

impl<T: Copy + Send> LatestReader<T> {
    /// The newest complete snapshot. Wait-free, never blocks the writer.
    pub fn read(&mut self) -> Stamped<T> {
        let s = *self.output.read();
        self.last_seen = s.seq;
        s
    }

    /// The newest snapshot if it is newer than what this reader last got,
    /// else `None` (a repeat).
    pub fn fresh(&mut self) -> Option<Stamped<T>> {
        let before = self.last_seen;
        let s = self.read();
        (s.seq != before).then_some(s)
    }

    /// Whether the writer has published since this reader last read.
    pub fn has_fresh(&self) -> bool {
        self.output.updated()
    }
}

impl<T: Send> Drop for LatestReader<T> {
    fn drop(&mut self) {
        self.alive.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Copy, Debug, PartialEq, Default)]
    struct Snap {
        a: u64,
        b: u64,
    }

    #[test]
    fn readers_see_newest_and_tell_repeats() {
        let (mut w, sub) = latest_cell(Snap::default());
        let mut r1 = sub.reader().unwrap();
        assert_eq!(r1.read().seq, 0);
        w.publish(Snap { a: 1, b: 1 });
        w.publish(Snap { a: 2, b: 2 });
        let mut r2 = sub.reader().unwrap();
        assert_eq!(
            r2.read().value,
            Snap { a: 2, b: 2 },
            "a late reader starts from the newest"
        );
        assert!(r2.fresh().is_none());
        w.publish(Snap { a: 4, b: 4 });
        assert_eq!(r2.read().value, Snap { a: 4, b: 4 });
        let s = r1.fresh().unwrap();
        assert_eq!((s.seq, s.value.a), (3, 4));
        assert!(r1.fresh().is_none(), "a repeat is not fresh");
        w.publish(Snap { a: 5, b: 5 });
        assert!(r1.has_fresh());
        assert_eq!(r1.fresh().unwrap().value.a, 5);
    }

    #[test]
    fn dropped_readers_free_their_slot() {
        let (mut w, sub) = latest_cell(0u32);
        for _ in 0..3 * MAX_READERS {
            let r = sub.reader().unwrap();
            w.publish(1);
            drop(r);
        }
        w.publish(2);
        assert!(w.readers.len() <= 1);
    }

    #[test]
    fn snapshots_are_never_torn() {
        let (mut w, sub) = latest_cell(Snap::default());
        let mut readers: Vec<_> = (0..2).map(|_| sub.reader().unwrap()).collect();
        std::thread::scope(|s| {
            s.spawn(move || {
                for i in 1..=50_000u64 {
                    w.publish(Snap { a: i, b: i * 3 });
                }
            });
            for mut r in readers.drain(..) {
                s.spawn(move || {
                    let mut last = 0;
                    while last < 50_000 {
                        let snap = r.read();
                        assert_eq!(snap.value.b, snap.value.a * 3, "torn read");
                        assert!(snap.seq >= last, "went backwards");
                        assert_eq!(snap.seq, snap.value.a);
                        last = snap.seq;
                    }
                });
            }
        });
    }
}
