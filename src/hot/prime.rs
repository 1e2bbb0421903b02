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

/// Grows a bounded channel's waiter lists (one for blocked receivers, one
/// for blocked senders) now, by blocking once on each side, so the first
/// real wait mid-run does not allocate. `make` builds filler messages; the
/// channel is left empty. Call at set-up, before any other user. Costs about
/// 20 ms and a short-lived thread.
pub fn prime_channel<T: Send + 'static>(
    tx: &crossbeam_channel::Sender<T>,
    rx: &crossbeam_channel::Receiver<T>,
    make: impl Fn() -> T + Send + 'static,
) {
    // Receiver side: wait on the empty channel until a helper sends.
    let helper_tx = tx.clone();
    let first = make();
    let helper = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(10));
        let _ = helper_tx.send(first);
    });
    let _ = rx.recv();
    let _ = helper.join();
    // Sender side: fill it, then wait on the full channel until a helper
    // takes one.
    if let Some(cap) = tx.capacity() {
        for _ in 0..cap {
            let _ = tx.try_send(make());
        }
        let helper_rx = rx.clone();
        let helper = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(10));
            let _ = helper_rx.recv();
        });
        let _ = tx.send(make());
        let _ = helper.join();
        while rx.try_recv().is_ok() {}
    }
}
