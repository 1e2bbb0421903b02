//! `FramePool`: a fixed set of page-aligned frame buffers, leased out as
//! `Frame`s that return themselves on `Drop`, exactly once.
//!
//! The free list is a bounded crossbeam channel of buffer indices: it is
//! lock-free, never allocates once warm, hands each index to exactly one
//! receiver, and gives us `try_recv` / `recv_timeout` for `try_lease` /
//! `lease_timeout` without writing a wait queue ourselves. Ownership of an
//! index *is* ownership of its buffer; that is the single invariant the
//! `unsafe` below relies on.
//!
//! Every lease holds an `Arc` of the pool's shared state, so dropping the
//! `FramePool` handle while leases are alive is safe: the buffers are freed
//! when the last lease or handle goes.

use super::counter::Counter;
use super::sync::{Arc, AtomicUsize, Ordering};
use std::alloc::{alloc_zeroed, dealloc, Layout};
use std::ptr::NonNull;
use std::time::Duration;

const PAGE: usize = 4096;

/// Fixed frame geometry of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameGeometry {
    pub width: u32,
    pub height: u32,
    pub bytes_per_pixel: u32,
}

impl FrameGeometry {
    pub const fn gray8(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            bytes_per_pixel: 1,
        }
    }

    pub const fn bytes(&self) -> usize {
        self.width as usize * self.height as usize * self.bytes_per_pixel as usize
    }
}

impl Default for FrameGeometry {
    fn default() -> Self {
        Self::gray8(2048, 2048)
    }
}

/// What travels with a frame besides its pixels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameMeta {
    /// Acquisition sequence number, monotonic per camera.
    pub sequence: u64,
    /// Index of the die in the run's test plan; `u32::MAX` in live view.
    pub die_index: u32,
    /// Capture time, nanoseconds since the pipeline's epoch.
    pub capture_ns: u64,
}

/// One page-aligned, zero-initialised, pre-faulted buffer. Owns its
/// allocation. Every byte is initialised from the start, so a lease may read
/// its bytes before any camera wrote them (a fresh frame reads as black).
struct Buffer {
    ptr: NonNull<u8>,
    layout: Layout,
    /// Under loom, records every access so the model checker can prove no
    /// two leases touch one buffer without a happens-before edge.
    #[cfg(feature = "loom")]
    access: loom::cell::UnsafeCell<()>,
}

impl Buffer {
    fn new(bytes: usize) -> Self {
        let layout = Layout::from_size_align(bytes.max(1).next_multiple_of(PAGE), PAGE)
            .expect("frame size overflows a Layout");
        // Zeroed, not merely allocated: `Frame::data` hands out `&[u8]` over
        // the whole buffer, and a reference to uninitialised bytes is
        // undefined behaviour even before they are read.
        // SAFETY: `layout` has non-zero size (at least one page).
        let raw = unsafe { alloc_zeroed(layout) };
        let Some(ptr) = NonNull::new(raw) else {
            std::alloc::handle_alloc_error(layout)
        };
        // Touch every page now so page faults happen at start-up, not on the
        // first frames of a run: a large zeroed allocation is typically fresh
        // `mmap` memory whose pages the kernel maps only on first write.
        for offset in (0..layout.size()).step_by(PAGE) {
            // SAFETY: `offset < layout.size()`, inside the fresh allocation,
            // which nothing else can see yet; writing 0 keeps it zeroed.
            unsafe { ptr.as_ptr().add(offset).write_volatile(0) };
        }
        Self {
            ptr,
            layout,
            #[cfg(feature = "loom")]
            access: loom::cell::UnsafeCell::new(()),
        }
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        // SAFETY: `ptr` was allocated in `new` with exactly `layout`, and a
        // Buffer is dropped once, when the last Arc of the pool goes, so no
        // lease can still point into it.
        unsafe { dealloc(self.ptr.as_ptr(), self.layout) };
    }
}

/// The free list: indices of buffers nobody holds.
#[cfg(not(feature = "loom"))]
struct FreeList {
    tx: crossbeam_channel::Sender<u32>,
    rx: crossbeam_channel::Receiver<u32>,
}

#[cfg(not(feature = "loom"))]
impl FreeList {
    fn new(n: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(n);
        // Wait once on the still-empty list: crossbeam allocates a channel's
        // waiter list on its first blocking wait, so this moves that one
        // allocation from the first run that ever finds the pool empty to
        // start-up (costs 1 ms, once per pool).
        let _ = rx.recv_timeout(Duration::from_millis(1));
        Self { tx, rx }
    }
    fn try_pop(&self) -> Option<u32> {
        self.rx.try_recv().ok()
    }
    fn pop_timeout(&self, d: Duration) -> Option<u32> {
        self.rx.recv_timeout(d).ok()
    }
    fn push(&self, i: u32) {
        // Cannot fail: capacity equals the number of buffers, each index is
        // pushed only by its one owner, and the receiver lives in the same
        // struct as the sender.
        let _ = self.tx.try_send(i);
    }
}

/// Loom cannot see inside crossbeam, so under the model checker the free
/// list is a loom mutex: the checker then explores every interleaving of
/// our own lease/return/drop protocol around it.
#[cfg(feature = "loom")]
struct FreeList(loom::sync::Mutex<Vec<u32>>);

#[cfg(feature = "loom")]
impl FreeList {
    fn new(n: usize) -> Self {
        Self(loom::sync::Mutex::new(Vec::with_capacity(n)))
    }
    fn try_pop(&self) -> Option<u32> {
        self.0.lock().unwrap().pop()
    }
    fn pop_timeout(&self, _d: Duration) -> Option<u32> {
        loom::thread::yield_now();
        self.try_pop()
    }
    fn push(&self, i: u32) {
        self.0.lock().unwrap().push(i)
    }
}

struct Shared {
    geometry: FrameGeometry,
    buffers: Box<[Buffer]>,
    free: FreeList,
    in_use: AtomicUsize,
    stats: PoolStats,
}

// SAFETY: the raw pointers in `buffers` are only dereferenced through a
// `Frame`, which holds the buffer's index exclusively (see `FreeList`), so
// sharing `Shared` between threads shares no unsynchronised access.
unsafe impl Send for Shared {}
// SAFETY: as above; every other field is already Sync.
unsafe impl Sync for Shared {}

#[derive(Debug, Default)]
struct PoolStats {
    leases: Counter,
    waits: Counter,
    empty: Counter,
    timeouts: Counter,
}

/// A point-in-time read of the pool's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolStatsSnapshot {
    pub capacity: usize,
    pub in_use: usize,
    pub leases: u64,
    /// `lease_timeout` calls that found the pool empty and had to wait.
    pub waits: u64,
    /// Times a lease attempt found the pool empty (`try_lease` → None, or a
    /// `lease_timeout` that had to wait).
    pub empty: u64,
    /// `lease_timeout` calls that gave up.
    pub timeouts: u64,
}

/// A cheap, clonable handle to a fixed set of frame buffers.
#[derive(Clone)]
pub struct FramePool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FramePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FramePool")
            .field("geometry", &self.shared.geometry)
            .field("stats", &self.stats())
            .finish()
    }
}

impl FramePool {
    /// Allocates and pre-faults `count` buffers of `geometry`. The pool never
    /// grows afterwards.
    pub fn new(count: usize, geometry: FrameGeometry) -> Self {
        assert!(count > 0, "a frame pool needs at least one buffer");
        assert!(count <= u32::MAX as usize);
        let buffers: Box<[Buffer]> = (0..count).map(|_| Buffer::new(geometry.bytes())).collect();
        let free = FreeList::new(count);
        for i in 0..count {
            free.push(i as u32);
        }
        Self {
            shared: Arc::new(Shared {
                geometry,
                buffers,
                free,
                in_use: AtomicUsize::new(0),
                stats: PoolStats::default(),
            }),
        }
    }

    pub fn geometry(&self) -> FrameGeometry {
        self.shared.geometry
    }

    pub fn capacity(&self) -> usize {
        self.shared.buffers.len()
    }

    /// Buffers currently leased.
    pub fn in_use(&self) -> usize {
        self.shared.in_use.load(Ordering::Relaxed)
    }

    /// A free buffer now, or `None`. Never blocks.
    pub fn try_lease(&self) -> Option<Frame> {
        match self.shared.free.try_pop() {
            Some(i) => Some(self.frame(i)),
            None => {
                self.shared.stats.empty.incr();
                None
            }
        }
    }

    /// A free buffer, waiting up to `timeout` for one to come back.
    pub fn lease_timeout(&self, timeout: Duration) -> Option<Frame> {
        if let Some(i) = self.shared.free.try_pop() {
            return Some(self.frame(i));
        }
        self.shared.stats.empty.incr();
        self.shared.stats.waits.incr();
        match self.shared.free.pop_timeout(timeout) {
            Some(i) => Some(self.frame(i)),
            None => {
                self.shared.stats.timeouts.incr();
                None
            }
        }
    }

    fn frame(&self, index: u32) -> Frame {
        self.shared.in_use.fetch_add(1, Ordering::Relaxed);
        self.shared.stats.leases.incr();
        Frame {
            shared: Arc::clone(&self.shared),
            index,
            meta: FrameMeta::default(),
        }
    }

    pub fn stats(&self) -> PoolStatsSnapshot {
        let s = &self.shared.stats;
        PoolStatsSnapshot {
            capacity: self.capacity(),
            in_use: self.in_use(),
            leases: s.leases.get(),
            waits: s.waits.get(),
            empty: s.empty.get(),
            timeouts: s.timeouts.get(),
        }
    }
}

/// An exclusive lease of one pool buffer. Moved, never copied; returns its
/// buffer to the pool when dropped, on whatever thread that happens.
pub struct Frame {
    shared: Arc<Shared>,
    index: u32,
    pub meta: FrameMeta,
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("buffer", &self.index)
            .field("meta", &self.meta)
            .finish()
    }
}

impl Frame {
    pub fn geometry(&self) -> FrameGeometry {
        self.shared.geometry
    }

    /// Which pool buffer this is (for diagnostics and tests).
    pub fn buffer_index(&self) -> usize {
        self.index as usize
    }

    fn buffer(&self) -> &Buffer {
        &self.shared.buffers[self.index as usize]
    }

    pub fn data(&self) -> &[u8] {
        let buf = self.buffer();
        #[cfg(feature = "loom")]
        buf.access.with(|_| ());
        // SAFETY: this lease holds `index` exclusively (the free list hands
        // each index to one taker and it is pushed back only in our Drop), so
        // no `&mut` to these bytes exists elsewhere; every byte was
        // initialised (zeroed by `alloc_zeroed` in `Buffer::new`, and only
        // ever overwritten with initialised bytes through `data_mut`) and
        // stays allocated while our Arc lives;
        // `geometry.bytes() <= layout.size()`.
        unsafe { std::slice::from_raw_parts(buf.ptr.as_ptr(), self.shared.geometry.bytes()) }
    }

    pub fn data_mut(&mut self) -> &mut [u8] {
        let buf = self.buffer();
        #[cfg(feature = "loom")]
        buf.access.with_mut(|_| ());
        // SAFETY: as in `data`, and `&mut self` makes this the only borrow of
        // the lease, hence of the bytes.
        unsafe { std::slice::from_raw_parts_mut(buf.ptr.as_ptr(), self.shared.geometry.bytes()) }
    }
}

impl Drop for Frame {
    fn drop(&mut self) {
        self.shared.in_use.fetch_sub(1, Ordering::Relaxed);
        // The push is the hand-over: the free list orders our last access to
        // the bytes before the next taker's first.
        self.shared.free.push(self.index);
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_page_aligned_and_sized() {
        let pool = FramePool::new(3, FrameGeometry::gray8(100, 50));
        let f = pool.try_lease().unwrap();
        assert_eq!(f.data().len(), 5000);
        assert_eq!(f.data().as_ptr() as usize % PAGE, 0);
    }

    /// Reads every byte of never-written frames. Natively this passes on any
    /// allocator that happens to hand out zeroed pages; under valgrind
    /// (scripts/test.sh) it fails as soon as a buffer's bytes are left
    /// uninitialised, which `Frame::data` must never expose.
    #[test]
    fn fresh_frames_read_as_initialised_zero_bytes() {
        // An odd, non-page-multiple size, and several buffers, so both the
        // page-touched and the untouched bytes are read.
        let pool = FramePool::new(3, FrameGeometry::gray8(1000, 9));
        let frames: Vec<_> = (0..3).map(|_| pool.try_lease().unwrap()).collect();
        for f in &frames {
            let nonzero = f.data().iter().filter(|&&b| b != 0).count();
            assert_eq!(nonzero, 0, "buffer {} is not all zero", f.buffer_index());
        }
    }

    #[test]
    fn frame_is_send() {
        fn is_send<T: Send>() {}
        is_send::<Frame>();
        is_send::<FramePool>();
    }
}

#[cfg(all(test, feature = "loom"))]
mod loom_tests {
    use super::*;

    /// Two threads lease, write and return from a one-buffer pool while the
    /// pool handle is dropped: loom explores every interleaving and fails on
    /// a concurrent access to the buffer or a use after free.
    #[test]
    fn exclusive_leases_and_pool_drop() {
        loom::model(|| {
            let pool = FramePool::new(1, FrameGeometry::gray8(8, 1));
            let p2 = pool.clone();
            let t = loom::thread::spawn(move || {
                if let Some(mut f) = p2.try_lease() {
                    f.data_mut()[0] = 1;
                }
            });
            if let Some(mut f) = pool.try_lease() {
                f.data_mut()[0] = 2;
                drop(pool);
                assert!(f.data()[0] == 2);
            }
            t.join().unwrap();
        });
    }

    /// A lease dropped on another thread returns its buffer exactly once.
    #[test]
    fn lease_dropped_elsewhere_returns() {
        loom::model(|| {
            let pool = FramePool::new(1, FrameGeometry::gray8(4, 1));
            let f = pool.try_lease().unwrap();
            let t = loom::thread::spawn(move || drop(f));
            t.join().unwrap();
            let mut again = pool.try_lease().expect("returned");
            again.data_mut()[0] = 7;
            assert!(pool.try_lease().is_none());
        });
    }
}
