//! The UI thread's own clocks, for telling a slow frame's causes apart:
//! the CPU the thread used, and the time it was ready to run but waited
//! for a core (the kernel's run-queue delay). A frame's wall time is its
//! CPU, plus that wait, plus time blocked (on the GL driver, a lock).
//! On a 2-core station under full pipeline load the wait is the cores
//! being busy with detection and Mesa's rasteriser, not our code.

/// CPU time this thread has used, ns: time the thread was preempted by
/// the pipeline threads does not count.
pub fn cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec for the duration of the
    // call; CLOCK_THREAD_CPUTIME_ID is supported on every Linux.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Time this thread has spent runnable but waiting for a core, ns, from
/// `/proc/thread-self/schedstat` (its second field). `None` where the
/// kernel does not keep scheduler statistics.
pub fn run_queue_wait_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    parse_run_queue_wait(&text)
}

/// `schedstat` is "cpu_ns wait_ns timeslices".
fn parse_run_queue_wait(schedstat: &str) -> Option<u64> {
    schedstat.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn thread_cpu_time_advances_with_work_not_with_sleep() {
        let t0 = cpu_ns();
        std::thread::sleep(Duration::from_millis(30));
        let slept = cpu_ns() - t0;
        let t1 = cpu_ns();
        let mut x = 0u64;
        while cpu_ns() - t1 < 20_000_000 {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        assert!(slept < 10_000_000, "sleeping used {slept} ns of CPU");
        assert!(x > 0);
    }

    #[test]
    fn schedstat_parses_its_second_field() {
        assert_eq!(parse_run_queue_wait("123 456 7\n"), Some(456));
        assert_eq!(parse_run_queue_wait("123"), None);
        assert_eq!(parse_run_queue_wait(""), None);
    }

    /// Two threads pinned to one core, both spinning: each waits for the
    /// core about as long as it runs. Alone, a spin waits little.
    #[test]
    fn run_queue_wait_grows_when_a_thread_shares_its_core() {
        let Some(_) = run_queue_wait_ns() else {
            eprintln!("no /proc/thread-self/schedstat on this kernel: skipped");
            return;
        };
        let pin = || {
            // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET
            // writes within it; sched_setaffinity(0, ..) reads it for the
            // calling thread only.
            unsafe {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(0, &mut set);
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
            }
        };
        let spin_cpu = |ns: u64| {
            let t = cpu_ns();
            while cpu_ns() - t < ns {
                std::hint::spin_loop();
            }
        };
        let run = Arc::new(AtomicBool::new(true));
        let rival = {
            let run = Arc::clone(&run);
            std::thread::spawn(move || {
                assert_eq!(pin(), 0);
                while run.load(Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        };
        let measured = std::thread::spawn(move || {
            assert_eq!(pin(), 0);
            std::thread::sleep(Duration::from_millis(20));
            let w0 = run_queue_wait_ns().unwrap();
            spin_cpu(60_000_000);
            run_queue_wait_ns().unwrap() - w0
        })
        .join()
        .unwrap();
        run.store(false, Ordering::Relaxed);
        rival.join().unwrap();
        assert!(
            measured > 20_000_000,
            "60 ms of CPU on a shared core waited only {measured} ns"
        );
    }
}
