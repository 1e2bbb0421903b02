//! The polling thread: reads every heartbeat and signal through `Io` at its
//! own period, judges data quality, publishes a `MachineSnapshot` into a
//! latest-value cell and hands finished trend buckets to the trend reader.
//! Nothing here allocates once running.

use super::faults::PanicSwitch;
use super::quality::{HeartbeatTracker, Quality, LOST_PERIODS, STALE_PERIODS};
use super::snapshot::MachineSnapshot;
use super::trend::{BucketAccumulator, TrendPoint};
use crate::hot::liveness::{self, join_named, now_ns, spawn_watched, ThreadHealth};
use crate::hot::{alloc_count, latest_cell, prime_thread, Counter, LatestSubscriber, LatestWriter};
use crate::machine::{Io, IoError, Signal, SIGNALS, SUBSYSTEMS};
use crossbeam_channel::{bounded, Receiver, Sender};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonitorConfig {
    /// Poll period of each signal (its subsystem's heartbeat is polled at
    /// the fastest period of its signals). Default 5 ms, at least 1 ms.
    pub periods: [Duration; SIGNALS.len()],
    /// A subsystem whose heartbeat is not polled at its signals' pace (a
    /// GigE camera's heartbeat counts control-port answers, which come at
    /// the probe's period). `None`: the fastest period of its signals.
    pub heartbeat_periods: [Option<Duration>; SUBSYSTEMS.len()],
}

impl MonitorConfig {
    pub fn uniform(period: Duration) -> Self {
        Self::with_periods([period; SIGNALS.len()])
    }

    pub fn with_periods(periods: [Duration; SIGNALS.len()]) -> Self {
        Self {
            periods: periods.map(|p| p.max(Duration::from_millis(1))),
            heartbeat_periods: [None; SUBSYSTEMS.len()],
        }
    }
}

impl Default for MonitorConfig {
    fn default() -> Self {
        Self::uniform(Duration::from_millis(5))
    }
}

/// The polling state, separate from the thread so it can be driven by a
/// test clock too.
pub struct Poller {
    io: Box<dyn Io>,
    signal_period_ns: [u64; SIGNALS.len()],
    heartbeat_period_ns: [u64; SUBSYSTEMS.len()],
    next_signal_ns: [u64; SIGNALS.len()],
    next_heartbeat_ns: [u64; SUBSYSTEMS.len()],
    trackers: [HeartbeatTracker; SUBSYSTEMS.len()],
    own_quality: [Quality; SIGNALS.len()],
    buckets: [BucketAccumulator; SIGNALS.len()],
    snapshot: MachineSnapshot,
    trend_tx: Sender<TrendPoint>,
    pub trend_drops: Arc<Counter>,
}

impl Poller {
    pub fn new(io: Box<dyn Io>, cfg: &MonitorConfig, trend_tx: Sender<TrendPoint>) -> Self {
        let signal_period_ns = cfg
            .periods
            .map(|d| d.max(Duration::from_millis(1)).as_nanos() as u64);
        let mut heartbeat_period_ns = [u64::MAX; SUBSYSTEMS.len()];
        for s in SIGNALS {
            let h = &mut heartbeat_period_ns[s.info().subsystem.index()];
            *h = (*h).min(signal_period_ns[s.index()]);
        }
        for (h, own) in heartbeat_period_ns.iter_mut().zip(cfg.heartbeat_periods) {
            if let Some(own) = own {
                *h = own.max(Duration::from_millis(1)).as_nanos() as u64;
            }
        }
        let heartbeat_period_ns =
            heartbeat_period_ns.map(|p| if p == u64::MAX { 5_000_000 } else { p });
        let mut snapshot = MachineSnapshot {
            period_ns: heartbeat_period_ns
                .iter()
                .copied()
                .min()
                .unwrap_or(5_000_000),
            ..MachineSnapshot::default()
        };
        for (h, p) in snapshot.heartbeats.iter_mut().zip(heartbeat_period_ns) {
            h.period_ns = p;
        }
        Self {
            io,
            signal_period_ns,
            heartbeat_period_ns,
            next_signal_ns: [0; SIGNALS.len()],
            next_heartbeat_ns: [0; SUBSYSTEMS.len()],
            trackers: heartbeat_period_ns.map(HeartbeatTracker::new),
            own_quality: [Quality::NoValue; SIGNALS.len()],
            buckets: Default::default(),
            snapshot,
            trend_tx,
            trend_drops: Arc::new(Counter::new()),
        }
    }

    /// The shortest period of anything polled.
    pub fn tick_ns(&self) -> u64 {
        self.heartbeat_period_ns
            .iter()
            .copied()
            .min()
            .unwrap_or(5_000_000)
    }

    /// Polls whatever is due at `now_ns` and updates the snapshot. Returns
    /// the number of reads made.
    ///
    /// Reads are due on a grid of their period, and a read due within half
    /// a tick counts as due now: scheduling each read a period after the
    /// moment it was made lost every other read at 1 kHz, since a thread
    /// woken a few µs earlier than last time found it not yet due (532 of
    /// 1000 heartbeat reads per second against libmodbus).
    pub fn poll(&mut self, now_ns: u64) -> u32 {
        let slack = self.tick_ns() / 2;
        let mut reads = 0;
        for sub in SUBSYSTEMS {
            let i = sub.index();
            if now_ns + slack >= self.next_heartbeat_ns[i] {
                reschedule(
                    &mut self.next_heartbeat_ns[i],
                    now_ns,
                    self.heartbeat_period_ns[i],
                );
                let read = self.io.read_heartbeat(sub).ok();
                reads += 1;
                let q = self.trackers[i].observe(now_ns, read);
                let h = &mut self.snapshot.heartbeats[i];
                h.quality = q;
                h.counter = self.trackers[i].last.unwrap_or(0);
                h.advanced_ns = self.trackers[i].advanced_ns;
            } else {
                // Ageing continues between polls.
                self.snapshot.heartbeats[i].quality = self.trackers[i].quality(now_ns);
            }
        }
        for sig in SIGNALS {
            let i = sig.index();
            if now_ns + slack >= self.next_signal_ns[i] {
                reschedule(
                    &mut self.next_signal_ns[i],
                    now_ns,
                    self.signal_period_ns[i],
                );
                reads += 1;
                self.read_signal(sig, now_ns);
            }
            let hb = self.snapshot.heartbeats[sig.info().subsystem.index()].quality;
            let s = &mut self.snapshot.signals[i];
            s.quality = if self.own_quality[i] == Quality::Live {
                hb
            } else {
                self.own_quality[i].worst(hb)
            };
        }
        self.snapshot.taken_ns = now_ns;
        self.snapshot.reads += reads as u64;
        reads
    }

    fn read_signal(&mut self, sig: Signal, now_ns: u64) {
        let i = sig.index();
        let info = sig.info();
        match self.io.read_signal(sig) {
            Ok(v) if v.is_finite() && v >= info.valid.0 && v <= info.valid.1 => {
                self.own_quality[i] = Quality::Live;
                let s = &mut self.snapshot.signals[i];
                s.value = v;
                s.updated_ns = now_ns;
                if let Some(p) = self.buckets[i].add(i, now_ns, v) {
                    if self.trend_tx.try_send(p).is_err() {
                        self.trend_drops.incr();
                    }
                }
            }
            Ok(v) => {
                // Out of what the device can report: keep it visible but
                // never as valid.
                self.own_quality[i] = Quality::Invalid;
                self.snapshot.signals[i].value = v;
            }
            // The device said the reading is bad.
            Err(IoError::Device(_)) => self.own_quality[i] = Quality::Invalid,
            // The link failed: that says nothing about the value. It ages
            // from its last good read (stale after 3 periods, lost after
            // 10), as with a heartbeat — never Invalid, which would read as
            // a device error (an invalid vacuum reading aborts a run; a
            // pulled cable must suspend it, not abort it).
            Err(IoError::Timeout | IoError::Disconnected) => {
                let updated = self.snapshot.signals[i].updated_ns;
                let age = now_ns.saturating_sub(updated);
                let period = self.signal_period_ns[i];
                if updated == 0 {
                    self.own_quality[i] = Quality::NoValue;
                } else if age > LOST_PERIODS * period {
                    self.own_quality[i] = Quality::Lost;
                } else if age > STALE_PERIODS * period {
                    self.own_quality[i] = Quality::Stale;
                }
            }
        }
    }

    pub fn snapshot(&self) -> &MachineSnapshot {
        &self.snapshot
    }
}

/// The next time a read is due: a period after the last due time, or a
/// period from now if the poller fell a whole period behind (no burst of
/// catch-up reads).
fn reschedule(next_ns: &mut u64, now_ns: u64, period_ns: u64) {
    let on_grid = next_ns.saturating_add(period_ns);
    *next_ns = if *next_ns == 0 || on_grid <= now_ns {
        now_ns + period_ns
    } else {
        on_grid
    };
}

/// The running monitor: its thread, its snapshot cell and its trend feed.
pub struct Monitor {
    pub snapshots: LatestSubscriber<MachineSnapshot>,
    pub trends: Receiver<TrendPoint>,
    /// The time base of snapshots: the process clock's epoch
    /// (`hot::liveness::epoch()`), so `epoch.elapsed()` equals
    /// `hot::now_ns()` and every reader ages snapshots on one clock.
    pub epoch: Instant,
    pub trend_drops: Arc<Counter>,
    /// The polling thread's health (running, stalled, dead + message).
    pub health: Arc<ThreadHealth>,
    /// Trip to kill the polling thread (fault injection).
    pub panic_switch: Arc<PanicSwitch>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The polling thread's name (health panel, allocation counts, panics).
pub const MONITOR_THREAD: &str = "monitor";

impl Monitor {
    pub fn start(io: Box<dyn Io>, cfg: MonitorConfig) -> Self {
        let (trend_tx, trend_rx) = bounded(4096);
        let mut poller = Poller::new(io, &cfg, trend_tx);
        let trend_drops = poller.trend_drops.clone();
        // The cell starts with a stamped, empty picture: if the poller dies
        // before its first publish, this one ages into LOST like any other.
        let (writer, snapshots) = latest_cell(MachineSnapshot {
            taken_ns: now_ns(),
            ..*poller.snapshot()
        });
        let stop = Arc::new(AtomicBool::new(false));
        let panic_switch = Arc::new(PanicSwitch::default());
        let thread_stop = stop.clone();
        let thread_switch = panic_switch.clone();
        // A poll loop that has not come round for many periods is stuck.
        let stall_after =
            Duration::from_nanos(poller.tick_ns() * 20).max(Duration::from_millis(250));
        let (thread, health) = spawn_watched(MONITOR_THREAD, stall_after, move |health| {
            let _hot = alloc_count::mark_thread_hot(MONITOR_THREAD);
            prime_thread();
            let mut writer = writer;
            let polled = catch_unwind(AssertUnwindSafe(|| {
                run(
                    &mut poller,
                    &mut writer,
                    &thread_stop,
                    &thread_switch,
                    health,
                )
            }));
            // However the loop ended, its readers learn it now rather than
            // from the picture's age: a last snapshot, every value LOST.
            let mut last = *poller.snapshot();
            last.ended = true;
            last.mark_lost();
            writer.publish(last);
            if let Err(panic) = polled {
                resume_unwind(panic);
            }
        })
        .expect("spawning the monitor thread");
        Self {
            snapshots,
            trends: trend_rx,
            epoch: liveness::epoch(),
            trend_drops,
            health,
            panic_switch,
            stop,
            thread: Some(thread),
        }
    }

    /// Nanoseconds on the process clock (the time base of snapshots).
    pub fn now_ns(&self) -> u64 {
        now_ns()
    }
}

fn run(
    poller: &mut Poller,
    writer: &mut LatestWriter<MachineSnapshot>,
    stop: &AtomicBool,
    panic_switch: &PanicSwitch,
    health: &ThreadHealth,
) {
    let tick = Duration::from_nanos(poller.tick_ns());
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        panic_switch.check(MONITOR_THREAD);
        poller.poll(now_ns());
        writer.publish(*poller.snapshot());
        health.beat();
        next += tick;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else {
            next = now; // fell behind: do not try to catch up in a burst
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            // A poller that died has already said so (health, alarm); say
            // it once more in the log rather than drop it silently.
            if let Err(why) = join_named(MONITOR_THREAD, t) {
                tracing::error!("{why}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::{IoError, Subsystem};

    /// Counts reads; every heartbeat advances.
    struct CountingIo {
        heartbeat_reads: u32,
    }

    impl Io for CountingIo {
        fn read_heartbeat(&mut self, s: Subsystem) -> Result<u32, IoError> {
            if s == Subsystem::Stage {
                self.heartbeat_reads += 1;
            }
            Ok(self.heartbeat_reads)
        }
        fn read_signal(&mut self, s: Signal) -> Result<f64, IoError> {
            Ok(s.info().nominal)
        }
    }

    /// A poll loop woken every period with a few µs of jitter either way
    /// reads every heartbeat once per wake-up, not every other one.
    #[test]
    fn a_jittery_tick_reads_every_period() {
        let (tx, _rx) = crossbeam_channel::bounded(1 << 16);
        let mut poller = Poller::new(
            Box::new(CountingIo { heartbeat_reads: 0 }),
            &MonitorConfig::uniform(Duration::from_millis(1)),
            tx,
        );
        // Woken up to 90 µs late or 60 µs early.
        let jitter = [
            0i64, 40_000, -3_000, 90_000, -60_000, 15_000, 70_000, -1_000,
        ];
        let at = |k: u64| (1_000_000 * (k as i64 + 1) + jitter[k as usize % jitter.len()]) as u64;
        for k in 0..1000u64 {
            poller.poll(at(k));
        }
        assert_eq!(poller.snapshot().heartbeats[0].counter, 1000);
        // A slower signal (5 ms) on the same 1 ms tick is read every 5th.
        let mut cfg = MonitorConfig::uniform(Duration::from_millis(1));
        cfg.periods[Signal::LampHours.index()] = Duration::from_millis(5);
        let (tx, _rx) = crossbeam_channel::bounded(1 << 16);
        let mut poller = Poller::new(Box::new(CountingIo { heartbeat_reads: 0 }), &cfg, tx);
        let mut reads = 0;
        for k in 0..1000u64 {
            reads += poller.poll(at(k));
        }
        // 5 heartbeats + 8 signals every tick, lamp hours every 5th.
        assert_eq!(reads, 1000 * 13 + 200);
    }

    /// Fails signal reads on demand: by the link or by the device.
    struct FailingIo {
        fail: Option<IoError>,
        beat: u32,
    }

    impl Io for FailingIo {
        fn read_heartbeat(&mut self, _: Subsystem) -> Result<u32, IoError> {
            // Another server keeps the heartbeats alive.
            self.beat += 1;
            Ok(self.beat)
        }
        fn read_signal(&mut self, s: Signal) -> Result<f64, IoError> {
            match self.fail {
                Some(e) => Err(e),
                None => Ok(s.info().nominal),
            }
        }
    }

    /// A failed link ages a value (stale, then lost) even while its
    /// subsystem's heartbeat is live; only the device's own error code
    /// makes it Invalid.
    #[test]
    fn a_link_failure_ages_a_value_and_only_a_device_error_is_invalid() {
        let run = |fail: IoError| {
            let (tx, _rx) = crossbeam_channel::bounded(1 << 16);
            let mut p = Poller::new(
                Box::new(FailingIo {
                    fail: None,
                    beat: 0,
                }),
                &MonitorConfig::uniform(Duration::from_millis(1)),
                tx,
            );
            p.poll(1_000_000);
            let q = |p: &Poller| p.snapshot().signal(Signal::ChuckVacuum).quality;
            assert_eq!(q(&p), Quality::Live);
            // From now on every signal read fails.
            p.io = Box::new(FailingIo {
                fail: Some(fail),
                beat: 1000,
            });
            let mut seen = Vec::new();
            for k in 2..=14u64 {
                p.poll(k * 1_000_000);
                seen.push(q(&p));
            }
            seen
        };
        let link = run(IoError::Disconnected);
        assert_eq!(link[0], Quality::Live, "one missed read is not yet stale");
        assert!(link.contains(&Quality::Stale), "{link:?}");
        assert_eq!(*link.last().unwrap(), Quality::Lost, "{link:?}");
        assert!(!link.contains(&Quality::Invalid), "{link:?}");
        let device = run(IoError::Device(4));
        assert!(device.iter().all(|q| *q == Quality::Invalid), "{device:?}");
    }

    /// A poller that fell behind by more than a period does not burst.
    #[test]
    fn falling_behind_does_not_burst() {
        let mut next = 0;
        reschedule(&mut next, 10, 5);
        assert_eq!(next, 15);
        reschedule(&mut next, 15, 5);
        assert_eq!(next, 20);
        reschedule(&mut next, 100, 5);
        assert_eq!(next, 105);
    }
}
