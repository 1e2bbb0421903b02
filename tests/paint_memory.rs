#![cfg(feature = "gui")]
//! The window keeps freed memory mapped (`ui::paint_memory`): a buffer
//! freed and allocated again, as the GL driver does with each frame's
//! vertices, is not faulted in afresh. Its own test binary: the setting is
//! process-wide.

fn minor_faults() -> i64 {
    // SAFETY: `usage` is a valid, writable rusage for the call.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_THREAD is Linux's, for this thread only.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut usage) };
    assert_eq!(rc, 0);
    usage.ru_minflt
}

/// Minor page faults of 50 frames' worth of buffers as a GL driver makes
/// them: a vertex and an index buffer per mesh, a few meshes a frame, their
/// sizes changing from frame to frame (64 KiB to 8 MiB), each written and
/// freed before the next frame.
fn faults_of_frames() -> i64 {
    let before = minor_faults();
    let mut z = 0x9E37_79B9_7F4A_7C15u64;
    for frame in 0..50u8 {
        let mut alive = Vec::new();
        for _ in 0..6 {
            z ^= z << 13;
            z ^= z >> 7;
            z ^= z << 17;
            let size = (64 << 10) << (z % 8);
            let mut v: Vec<u8> = Vec::with_capacity(size);
            v.resize(size, frame);
            alive.push(v);
        }
        std::hint::black_box(&alive);
    }
    minor_faults() - before
}

#[test]
fn a_freed_frame_buffer_is_reused_without_page_faults() {
    // glibc's default: a block over the (dynamic) mmap threshold is its
    // own mapping, and a freed heap top beyond the trim threshold goes back
    // to the kernel, so sizes that change from frame to frame fault their
    // pages in again (measured here: some 48,000 for these 50 frames).
    let untuned = faults_of_frames();
    waferscope::ui::paint_memory::keep_freed_memory_mapped().unwrap();
    faults_of_frames(); // the heap grows once
    let tuned = faults_of_frames();
    assert!(
        untuned > 10_000 && tuned < 200,
        "minor faults for 50 frames: {untuned} before, {tuned} after"
    );
}
