//! A counting global allocator: the proof that the hot path allocates
//! nothing once warm.
//!
//! Install it with `#[global_allocator] static A: CountingAlloc = CountingAlloc;`
//! (the binary, the tests and the benches do). It counts every allocation
//! (alloc, alloc_zeroed, realloc) three ways:
//! - per thread, readable by that thread ([`thread_allocations`]);
//! - per registered hot thread, readable by anyone ([`HotThread`]), which is
//!   what the pipeline-health panel shows as allocations per second;
//! - process-wide ([`total_allocations`]).
//!
//! Hand-written rather than a crate because it must itself never allocate
//! or lock while counting, and must attribute counts to named hot threads.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

pub struct CountingAlloc;

const MAX_HOT_THREADS: usize = 64;
const NO_SLOT: usize = usize::MAX;

struct HotSlot {
    claimed: AtomicBool,
    allocations: AtomicU64,
    bytes: AtomicU64,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to build the array below
const EMPTY_SLOT: HotSlot = HotSlot {
    claimed: AtomicBool::new(false),
    allocations: AtomicU64::new(0),
    bytes: AtomicU64::new(0),
};
static HOT_SLOTS: [HotSlot; MAX_HOT_THREADS] = [EMPTY_SLOT; MAX_HOT_THREADS];
static HOT_NAMES: Mutex<[&str; MAX_HOT_THREADS]> = Mutex::new([""; MAX_HOT_THREADS]);

static TOTAL_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Const-initialised and without Drop, so touching these never allocates
    // (no lazy registration of a destructor).
    static THREAD_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
    static THREAD_SLOT: Cell<usize> = const { Cell::new(NO_SLOT) };
}

#[inline]
fn count(bytes: usize) {
    TOTAL_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    // `try_with`: during thread teardown the locals may be gone; the
    // process-wide count above still sees the allocation.
    let _ = THREAD_ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    if let Ok(slot) = THREAD_SLOT.try_with(Cell::get) {
        if slot != NO_SLOT {
            HOT_SLOTS[slot].allocations.fetch_add(1, Ordering::Relaxed);
            HOT_SLOTS[slot]
                .bytes
                .fetch_add(bytes as u64, Ordering::Relaxed);
        }
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments
// unchanged, so `System`'s guarantees are ours; the counting around it
// touches only atomics and const thread-locals and never allocates.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: forwarded unchanged; the caller upholds `alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged; `ptr` came from `System` via us.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: forwarded unchanged; `ptr` came from `System` via us.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Counts one allocation made outside Rust's allocator, exactly as
/// [`CountingAlloc`] counts its own. For a test binary that defines `malloc`
/// itself (tests/gige_camera.rs) so that C libraries' allocations on our
/// threads (Aravis, GLib) are counted too; such a binary keeps the system
/// allocator as Rust's, so every allocation is counted once. Never
/// allocates or locks.
pub fn count_allocation(bytes: usize) {
    count(bytes);
}

/// Allocations made so far by the calling thread (only counts while
/// [`CountingAlloc`] is the global allocator).
pub fn thread_allocations() -> u64 {
    THREAD_ALLOCATIONS.with(Cell::get)
}

/// Allocations made so far by the whole process.
pub fn total_allocations() -> u64 {
    TOTAL_ALLOCATIONS.load(Ordering::Relaxed)
}

/// Allocations made so far by all threads currently marked hot.
pub fn hot_allocations() -> u64 {
    HOT_SLOTS
        .iter()
        .filter(|s| s.claimed.load(Ordering::Acquire))
        .map(|s| s.allocations.load(Ordering::Relaxed))
        .sum()
}

/// Marks the calling thread as hot for as long as the guard lives: its
/// allocations are attributed to `name` and readable from any thread.
/// Returns `None` when all slots are taken (the thread is then simply not
/// attributed). Call it at thread start, before warm-up: it may allocate.
pub fn mark_thread_hot(name: &'static str) -> Option<HotThread> {
    let slot = HOT_SLOTS.iter().position(|s| {
        s.claimed
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    })?;
    HOT_SLOTS[slot].allocations.store(0, Ordering::Relaxed);
    HOT_SLOTS[slot].bytes.store(0, Ordering::Relaxed);
    HOT_NAMES.lock().unwrap_or_else(|e| e.into_inner())[slot] = name;
    THREAD_SLOT.with(|s| s.set(slot));
    Some(HotThread {
        slot,
        _not_send: std::marker::PhantomData,
    })
}

/// A read-out of every live hot thread: name, allocations, bytes.
/// Allocates the returned Vec: call it from the UI, not a hot thread.
pub fn hot_threads() -> Vec<(&'static str, u64, u64)> {
    let names = *HOT_NAMES.lock().unwrap_or_else(|e| e.into_inner());
    HOT_SLOTS
        .iter()
        .enumerate()
        .filter(|(_, s)| s.claimed.load(Ordering::Acquire))
        .map(|(i, s)| {
            (
                names[i],
                s.allocations.load(Ordering::Relaxed),
                s.bytes.load(Ordering::Relaxed),
            )
        })
        .collect()
}

/// Registration of the current thread as hot; dropping it (on that thread)
/// ends the attribution. Not `Send`: it must be dropped where it was made.
#[derive(Debug)]
pub struct HotThread {
    slot: usize,
    _not_send: std::marker::PhantomData<*const ()>,
}

impl HotThread {
    pub fn allocations(&self) -> u64 {
        HOT_SLOTS[self.slot].allocations.load(Ordering::Relaxed)
    }
}

impl Drop for HotThread {
    fn drop(&mut self) {
        let _ = THREAD_SLOT.try_with(|s| s.set(NO_SLOT));
        HOT_SLOTS[self.slot].claimed.store(false, Ordering::Release);
    }
}
