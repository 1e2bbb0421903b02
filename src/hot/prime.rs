//! Thread warm-up that moves one-off lazy allocations to thread start.

use std::time::Duration;

/// Call once at the start of every hot thread, before its warm-up.
///
/// crossbeam-channel allocates a per-thread wait context the first time a
/// thread really blocks on any channel (after its spin phase), and the std
/// thread handle it clones is allocated lazily too. Blocking once here makes
/// both happen now rather than mid-run. A helper thread sends after 10 ms,
/// so the wait outlasts crossbeam's spin phase even on a loaded machine (a
/// plain `recv_timeout` can time out while still spinning and prime
/// nothing). Costs about 10 ms and one short-lived thread.
pub fn prime_thread() {
    let _ = std::thread::current();
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    let helper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        let _ = tx.send(());
    });
    let _ = rx.recv();
    let _ = helper.join();
}
