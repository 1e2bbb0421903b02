//! The UI thread's own clocks, for telling a slow frame's causes apart:
//! the CPU the thread used, and the time it was ready to run but waited
//! for a core (the kernel's run-queue delay). Over any stretch of time a
//! thread is running, waiting for a core, or blocked (asleep, on the GL
//! driver, on a lock); the first two are measured here.

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
/// kernel keeps no scheduler statistics: no file, or the "0 0 0" it
/// prints when they are off. (A thread read before its first switch may
/// show 0 CPU with a wait: that is a figure.)
pub fn run_queue_wait_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    parse_run_queue_wait(&text)
}

/// `schedstat` is "cpu_ns wait_ns timeslices".
fn parse_run_queue_wait(schedstat: &str) -> Option<u64> {
    let mut fields = schedstat.split_whitespace().map(str::parse::<u64>);
    let cpu = fields.next()?.ok()?;
    let wait = fields.next()?.ok()?;
    (cpu > 0 || wait > 0).then_some(wait)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

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
        // Scheduler statistics off: no figure rather than a zero.
        assert_eq!(parse_run_queue_wait("0 0 0\n"), None);
        assert_eq!(parse_run_queue_wait("0 71186 1\n"), Some(71186));
    }

    /// Stops the rivals however the test ends.
    struct Stop(Arc<AtomicBool>);
    impl Drop for Stop {
        fn drop(&mut self) {
            self.0.store(false, Ordering::Relaxed);
        }
    }

    /// The first CPU this process may run on.
    fn a_cpu_we_may_use() -> usize {
        // SAFETY: a zeroed cpu_set_t is a valid empty set;
        // sched_getaffinity(0, ..) writes this thread's mask into it.
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            assert_eq!(
                libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
                0
            );
            (0..libc::CPU_SETSIZE as usize)
                .find(|&c| libc::CPU_ISSET(c, &set))
                .expect("some CPU is allowed")
        }
    }

    fn pin(cpu: usize) {
        // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes
        // within it; sched_setaffinity(0, ..) reads it for the calling
        // thread only.
        let rc = unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
        };
        assert_eq!(rc, 0, "pinning to CPU {cpu}");
    }

    /// A thread spinning on a core it shares with two spinning rivals runs
    /// about a third of the time and waits for the core the rest: its
    /// wait is about twice its CPU (the first field would be about equal
    /// to it) and, since a spinning thread never blocks, no more than its
    /// wall time less its CPU.
    #[test]
    fn run_queue_wait_is_the_time_a_runnable_thread_waits_for_its_core() {
        let Some(_) = run_queue_wait_ns() else {
            eprintln!("no scheduler statistics on this kernel: skipped");
            return;
        };
        let cpu = a_cpu_we_may_use();
        let run = Arc::new(AtomicBool::new(true));
        let _stop = Stop(Arc::clone(&run));
        let rivals: Vec<_> = (0..2)
            .map(|_| {
                let run = Arc::clone(&run);
                std::thread::spawn(move || {
                    pin(cpu);
                    while run.load(Ordering::Relaxed) {
                        std::hint::spin_loop();
                    }
                })
            })
            .collect();
        let (waited, used, wall) = std::thread::spawn(move || {
            pin(cpu);
            std::thread::sleep(Duration::from_millis(20));
            let (w0, c0, t0) = (run_queue_wait_ns().unwrap(), cpu_ns(), Instant::now());
            while cpu_ns() - c0 < 60_000_000 {
                std::hint::spin_loop();
            }
            let wall = t0.elapsed().as_nanos() as u64;
            (run_queue_wait_ns().unwrap() - w0, cpu_ns() - c0, wall)
        })
        .join()
        .unwrap();
        run.store(false, Ordering::Relaxed);
        for r in rivals {
            r.join().unwrap();
        }
        assert!(
            waited as f64 > 1.3 * used as f64,
            "{used} ns of CPU on a core shared three ways waited only {waited} ns"
        );
        assert!(
            waited <= wall.saturating_sub(used) + 5_000_000,
            "waited {waited} ns in {wall} ns of wall time with {used} ns of CPU"
        );
    }
}
