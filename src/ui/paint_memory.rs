//! Freed memory stays mapped in the window's process.
//!
//! Measured under Xvfb with Mesa's llvmpipe (2048² px, full load): the UI
//! thread spent about half of each frame in page faults under
//! `egui_glow::Painter::paint_mesh`. The GL driver gives every vertex and
//! index upload fresh storage and frees the old; glibc serves blocks of
//! 128 KiB and more with their own `mmap` and unmaps them on `free` (or
//! trims the heap's top back to the kernel), so every frame faulted and
//! zeroed its buffers in again: 19,100 minor faults a second. With freed
//! memory kept (below), about 440 a second, and the UI thread's CPU per
//! frame fell from p50 9.96 / p99 13.1 ms to 4.72 / 6.3-7.3 ms
//! (BENCHMARKS.md, "The whole UI frame").
//!
//! The cost is memory the process keeps after freeing it: up to the trim
//! threshold at the top of each of glibc's arenas (one per thread that
//! allocates concurrently, at most 8 per core), though only the arenas the
//! painting uses grow; the window's frames reuse it. Only the `gui`
//! command calls this, first thing: the headless station allocates
//! nothing per frame once warm.

/// Blocks below this come from the heap, not their own mapping (glibc's
/// ceiling for the setting on 64-bit).
const MMAP_THRESHOLD: usize = 32 << 20;
/// Free memory at the heap's top is returned to the kernel only beyond
/// this.
const TRIM_THRESHOLD: usize = 256 << 20;

/// Sets glibc's allocator to keep freed memory mapped; says which setting
/// it could not make (the window runs either way, slower).
pub fn keep_freed_memory_mapped() -> Result<(), String> {
    // SAFETY: mallopt takes no pointers; it sets two of glibc's global
    // tuning parameters (under the main arena's lock), which every later
    // allocation and free reads. It is safe to call at any time.
    let mmap = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) };
    // SAFETY: as above.
    let trim = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int) };
    match (mmap, trim) {
        (1, 1) => Ok(()),
        _ => Err(format!(
            "cannot tune the allocator for painting (mallopt mmap threshold: {mmap}, trim threshold: {trim}; 1 is success)"
        )),
    }
}
