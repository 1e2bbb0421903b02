//! Where a benchmark's CPU time goes, thread by thread: a sampler that
//! reads every thread's CPU time from `/proc/self/task/*/stat` while a
//! region runs, and sums it by thread name. Threads that start and end
//! inside the region (a wafer's pipeline threads) are counted from their
//! birth (their CPU starts at 0) to the last sample that saw them, so a
//! thread's last sampling interval can be missed, and a thread born and
//! gone between two samples is not seen at all; what no thread accounts
//! for is reported beside them, against the whole process's CPU
//! (`/proc/self/stat`, which keeps the time of ended threads).
//!
//! Linux counts thread CPU in clock ticks (`CLK_TCK`, 100 a second here):
//! a figure is as fine as 10 ms over the region.

use anyhow::{Context, Result};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often the sampler reads the threads: short beside a wafer's
/// seconds. A pass over the station's ~20 threads costs about 250 µs of
/// CPU (measured: the sampler's own thread, shown beside the others, at
/// 1 % of a core), so this is 1 % of a core.
const SAMPLE_EVERY: Duration = Duration::from_millis(25);

/// One thread as the sampler last saw it.
struct Seen {
    name: String,
    /// CPU ticks when first seen, if it already ran when the region opened
    /// (0 for a thread born inside the region).
    first: u64,
    last: u64,
}

#[derive(Default)]
struct Samples {
    threads: HashMap<u32, Seen>,
    /// A read that failed (a thread vanishing between listing and reading
    /// is normal and skipped; this is anything else).
    error: Option<String>,
}

/// CPU seconds over a region, by thread name, and the process's total.
#[derive(Debug, Clone, Default)]
pub struct ThreadCpu {
    pub wall_s: f64,
    pub process_s: f64,
    pub by_name: BTreeMap<String, f64>,
    /// Threads seen (each thread's figure is whole ticks, so the sum may
    /// differ from the process's by up to a tick or two per thread).
    pub threads: usize,
}

impl ThreadCpu {
    /// Process CPU no sampled thread accounts for (threads' last intervals,
    /// threads born and gone between two samples).
    pub fn not_attributed_s(&self) -> f64 {
        (self.process_s - self.by_name.values().sum::<f64>()).max(0.0)
    }

    /// Adds another region's figures (e.g. the next wafer).
    pub fn add(&mut self, other: &ThreadCpu) {
        self.wall_s += other.wall_s;
        self.threads += other.threads;
        self.process_s += other.process_s;
        for (name, s) in &other.by_name {
            *self.by_name.entry(name.clone()).or_default() += s;
        }
    }
}

/// A running sampler; [`CpuSampler::finish`] ends the region.
pub struct CpuSampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Samples>>,
    thread: Option<JoinHandle<()>>,
    started: Instant,
    process_start: u64,
}

impl CpuSampler {
    /// Opens the region: takes the first sample, then samples every
    /// `SAMPLE_EVERY` on its own thread (named `cpu-sampler`, so its own
    /// time is shown too).
    pub fn start() -> Result<Self> {
        // The process first, then its threads: a thread's CPU between the
        // two reads is then in the process's figure too, so the threads
        // never add up to more than the process (beyond tick rounding).
        let process_start = process_ticks()?;
        let samples = Arc::new(Mutex::new(Samples::default()));
        sample(&samples, true);
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st) = (samples.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("cpu-sampler".into())
            .spawn(move || {
                while !st.load(Ordering::Acquire) {
                    std::thread::sleep(SAMPLE_EVERY);
                    sample(&s, false);
                }
            })
            .context("cannot start the CPU sampler thread")?;
        Ok(Self {
            stop,
            samples,
            thread: Some(thread),
            started: Instant::now(),
            process_start,
        })
    }

    /// Closes the region with a last sample and returns its figures.
    pub fn finish(mut self) -> Result<ThreadCpu> {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| anyhow::anyhow!("the CPU sampler thread panicked"))?;
        }
        // Threads first, then the process (the reverse of the opening).
        sample(&self.samples, false);
        let wall_s = self.started.elapsed().as_secs_f64();
        let process_s = process_ticks()?.saturating_sub(self.process_start) as f64 / ticks_per_s();
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &samples.error {
            anyhow::bail!("reading thread CPU times: {e}");
        }
        let mut by_name = BTreeMap::new();
        for seen in samples.threads.values() {
            *by_name.entry(seen.name.clone()).or_default() +=
                seen.last.saturating_sub(seen.first) as f64 / ticks_per_s();
        }
        Ok(ThreadCpu {
            wall_s,
            process_s,
            by_name,
            threads: samples.threads.len(),
        })
    }
}

impl Drop for CpuSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                crate::errln!("warning: the CPU sampler thread panicked");
            }
        }
    }
}

fn ticks_per_s() -> f64 {
    // SAFETY: sysconf only reads a configuration value; no memory is
    // passed.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime, in ticks, from a `stat` line: fields 14 and 15, counted
/// after the `)` that closes the command name (which may hold spaces).
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

fn process_ticks() -> Result<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("reading /proc/self/stat")?;
    cpu_ticks(&stat).context("/proc/self/stat: no utime/stime fields")
}

fn sample(samples: &Mutex<Samples>, opening: bool) {
    let entries = match std::fs::read_dir("/proc/self/task") {
        Ok(e) => e,
        Err(e) => {
            let mut s = samples.lock().unwrap_or_else(|p| p.into_inner());
            s.error.get_or_insert(format!("/proc/self/task: {e}"));
            return;
        }
    };
    let mut read = Vec::new();
    for entry in entries.flatten() {
        let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        // A thread that ended since the listing has no files: skipped.
        let (Ok(stat), Ok(comm)) = (
            std::fs::read_to_string(entry.path().join("stat")),
            std::fs::read_to_string(entry.path().join("comm")),
        ) else {
            continue;
        };
        match cpu_ticks(&stat) {
            Some(t) => read.push((tid, comm.trim_end().to_string(), t)),
            None => {
                let mut s = samples.lock().unwrap_or_else(|p| p.into_inner());
                s.error
                    .get_or_insert(format!("/proc/self/task/{tid}/stat: no utime/stime fields"));
            }
        }
    }
    let mut s = samples.lock().unwrap_or_else(|p| p.into_inner());
    for (tid, name, ticks) in read {
        let seen = s.threads.entry(tid).or_insert(Seen {
            name: name.clone(),
            first: if opening { ticks } else { 0 },
            last: ticks,
        });
        // A thread renames itself once it starts (Builder::name): keep the
        // newest name.
        seen.name = name;
        seen.last = ticks;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// This thread's CPU time, ns.
    fn own_cpu_ns() -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec for the call.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0);
        ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
    }

    #[test]
    fn the_stat_line_is_read_after_the_command_name() {
        // Field 2 may hold spaces and parentheses; utime 7, stime 5.
        let line = "42 (a (b) c) S 1 2 3 4 5 6 7 8 9 10 7 5 0 0 20 0 1 0";
        assert_eq!(cpu_ticks(line), Some(12));
        assert_eq!(cpu_ticks("42 (x) S 1 2"), None);
    }

    /// A thread that burns 0.3 s of CPU inside the region is shown under
    /// its name with that (to a few ticks), one that sleeps with about none,
    /// and
    /// the figures add up to no more than the process's.
    #[test]
    fn a_busy_thread_is_seen_under_its_name() {
        let sampler = CpuSampler::start().unwrap();
        let spin = std::thread::Builder::new()
            .name("busy-probe".into())
            .spawn(|| {
                // 0.3 s of this thread's own CPU, however busy the machine.
                let start = own_cpu_ns();
                let mut x = 0u64;
                while own_cpu_ns() - start < 300_000_000 {
                    x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(1));
                }
                // Stay alive past a sample so the last interval is seen.
                std::thread::sleep(SAMPLE_EVERY * 3);
                x
            })
            .unwrap();
        let idle = std::thread::Builder::new()
            .name("idle-probe".into())
            .spawn(|| std::thread::sleep(Duration::from_millis(300)))
            .unwrap();
        spin.join().unwrap();
        idle.join().unwrap();
        let cpu = sampler.finish().unwrap();
        let busy = cpu.by_name.get("busy-probe").copied().unwrap_or(0.0);
        assert!(
            (0.26..=0.34).contains(&busy),
            "busy-probe used 0.3 s of CPU: {busy} s"
        );
        assert!(cpu.by_name.get("idle-probe").copied().unwrap_or(0.0) < 0.05);
        // Ticks are whole: allow two per thread on top of the process's.
        let threads: f64 = cpu.by_name.values().sum();
        let rounding = 0.02 * (cpu.threads as f64 + 1.0);
        assert!(threads <= cpu.process_s + rounding, "{cpu:?}");
    }
}
