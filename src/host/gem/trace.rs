//! Trace data collection (E30 "trace data collection", E5 S2F23/24 and
//! S6F1): the host asks for status variables sampled at a period; the
//! equipment sends them in groups of REPGSZ samples until TOTSMP samples.
//!
//! Sampling runs on its own thread ("gem-trace"), the one place of GEM
//! with the hot-path rule: it allocates nothing per sample once warm.
//! Everything a trace needs (its sample buffers, sized REPGSZ × SVIDs) is
//! allocated on the async side when S2F23 arrives and moved to the thread.
//! The thread reads the variables into a buffer's preallocated slots
//! (`VariableValue` is `Copy`), hands a complete group to the async side
//! over a bounded crossbeam channel with `try_send` and wakes it with a
//! `tokio::sync::Notify` (neither allocates); the async side builds the
//! S6F1 body and gives the buffer back over a second bounded channel. A
//! buffer has one owner at a time (it is moved, never cloned).
//!
//! Nothing is lost silently ([`TraceCounts`]):
//! - a period the thread woke too late for is a *missed period*: no sample
//!   is taken for it, but its sample number is used, so the host sees the
//!   gap in SMPLN; TOTSMP counts periods, taken or missed;
//! - a complete group the queue to the async side has no room for is an
//!   *overrun*: its samples are dropped and counted;
//! - a sample due while every buffer of its trace is with the async side
//!   is dropped and counted (*no buffer*).
//!
//! Limits (docs/gem.md) are [`TraceLimits`]; S2F23 refuses beyond them.
//! S6F1 is `L,4 <TRID> <SMPLN U4> <STIME A16> L,n <SV>`: SMPLN and STIME
//! are those of the group's last sample, the SVs are the group's samples
//! in order, each with its SVIDs in the order asked; a variable with no
//! value at the time is an empty list. STIME is the sample's time on GEM's
//! clock (UTC plus the host's S2F31 offset, read when sampled) in the
//! TimeFormat EC's form (E5), formatted on the async side.

use super::{GemStatus, IllegalData, VariableSource, VariableValue};
use crate::host::secs2::Item;
use crate::hot::{spawn_watched, Counter, ThreadHealth};
use crossbeam_channel::{bounded, unbounded, Receiver, RecvTimeoutError, Sender, TrySendError};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};
use tokio::sync::Notify;

/// The name of the sampling thread (Health panel, allocation counts).
pub const THREAD_NAME: &str = "gem-trace";

/// TIAACK (S2F24).
pub mod tiaack {
    pub const OK: u8 = 0;
    pub const TOO_MANY_SVIDS: u8 = 1;
    pub const NO_MORE_TRACES: u8 = 2;
    pub const INVALID_PERIOD: u8 = 3;
    pub const UNKNOWN_SVID: u8 = 4;
    pub const INVALID_REPGSZ: u8 = 5;
}

/// What S2F23 may ask for, and the queues between the thread and the
/// async side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceLimits {
    /// Traces running at once (TIAACK 2 beyond).
    pub max_traces: usize,
    /// SVIDs per trace (TIAACK 1 beyond).
    pub max_svids: usize,
    /// Largest REPGSZ (TIAACK 5 beyond).
    pub max_group: u32,
    /// Shortest DSPER (TIAACK 3 below).
    pub min_period: Duration,
    /// Sample buffers per trace: groups that can be with the async side
    /// at once before samples are dropped.
    pub buffers_per_trace: usize,
    /// Complete groups waiting for the async side, all traces together.
    pub queue: usize,
}

impl Default for TraceLimits {
    fn default() -> Self {
        Self {
            max_traces: 8,
            max_svids: 32,
            max_group: 100,
            // DSPER's finest unit (hundredths of a second).
            min_period: Duration::from_millis(10),
            buffers_per_trace: 4,
            queue: 32,
        }
    }
}

/// The trace counters, as the Health panel and tests read them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TraceCounts {
    pub samples: u64,
    pub groups: u64,
    pub missed_periods: u64,
    pub overruns: u64,
    pub overrun_samples: u64,
    pub no_buffer_samples: u64,
}

#[derive(Default)]
struct Stats {
    samples: Counter,
    groups: Counter,
    missed_periods: Counter,
    overruns: Counter,
    overrun_samples: Counter,
    no_buffer_samples: Counter,
}

impl Stats {
    fn read(&self) -> TraceCounts {
        TraceCounts {
            samples: self.samples.get(),
            groups: self.groups.get(),
            missed_periods: self.missed_periods.get(),
            overruns: self.overruns.get(),
            overrun_samples: self.overrun_samples.get(),
            no_buffer_samples: self.no_buffer_samples.get(),
        }
    }
}

/// A TRID as the host wrote it: E5 allows an integer or text, and S6F1
/// must echo it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TraceKey {
    Number(u64),
    Text(Vec<u8>),
}

impl TraceKey {
    fn from_item(item: &Item) -> Option<Self> {
        item.as_u64()
            .map(TraceKey::Number)
            .or_else(|| item.ascii_bytes().map(|b| TraceKey::Text(b.to_vec())))
    }
}

/// Up to REPGSZ samples of one trace: the unit handed from the sampling
/// thread to the async side and back. Not `Clone`: one owner at a time.
#[derive(Debug)]
pub struct SampleGroup {
    /// Which trace definition this buffer belongs to (a TRID redefined is a
    /// new instance; the old one's buffers are dropped when they return).
    instance: u64,
    trid: Item,
    svids: usize,
    len: usize,
    smpln: Box<[u32]>,
    unix_ns: Box<[u64]>,
    /// Taken at, ns since the tracer started (monotonic).
    taken_ns: Box<[u64]>,
    /// Due at, ns since the tracer started.
    due_ns: Box<[u64]>,
    values: Box<[Option<VariableValue>]>,
}

impl SampleGroup {
    fn new(instance: u64, trid: Item, group: usize, svids: usize) -> Self {
        Self {
            instance,
            trid,
            svids,
            len: 0,
            smpln: vec![0; group].into(),
            unix_ns: vec![0; group].into(),
            taken_ns: vec![0; group].into(),
            due_ns: vec![0; group].into(),
            values: vec![None; group * svids].into(),
        }
    }

    fn is_full(&self) -> bool {
        self.len == self.smpln.len()
    }

    pub fn trid(&self) -> &Item {
        &self.trid
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sample `i`'s number (1-based).
    pub fn smpln(&self, i: usize) -> u32 {
        self.smpln[..self.len][i]
    }

    /// When sample `i` was due and when it was taken, ns since the tracer
    /// started.
    pub fn timing_ns(&self, i: usize) -> (u64, u64) {
        (self.due_ns[..self.len][i], self.taken_ns[..self.len][i])
    }

    /// Sample `i`'s values, in the order of the trace's SVIDs.
    pub fn values(&self, i: usize) -> &[Option<VariableValue>] {
        assert!(i < self.len, "sample {i} of a group of {}", self.len);
        &self.values[i * self.svids..(i + 1) * self.svids]
    }

    /// Where this buffer's value slots live: the same address for the
    /// buffer's whole life (tests check buffers are recycled, not remade).
    pub fn storage_addr(&self) -> usize {
        self.values.as_ptr() as usize
    }

    /// The S6F1 body (module docs).
    pub fn to_s6f1(&self, time_format: u32) -> Item {
        let last = self.len.saturating_sub(1);
        Item::list([
            self.trid.clone(),
            Item::u4(self.smpln.get(last).copied().unwrap_or(0)),
            Item::ascii(stime(
                self.unix_ns.get(last).copied().unwrap_or(0),
                time_format,
            )),
            Item::list(
                self.values[..self.len * self.svids]
                    .iter()
                    .map(|v| v.map_or_else(Item::empty_list, |v| v.to_item())),
            ),
        ])
    }
}

/// STIME in the E30 TimeFormat `time_format` (clock::format_time).
fn stime(unix_ns: u64, time_format: u32) -> String {
    super::clock::format_time((unix_ns / 1_000_000) as i64, time_format)
        .as_str()
        .to_owned()
}

/// DSPER `hhmmss` or `hhmmsscc` → the period; `None` when malformed.
fn parse_dsper(text: &[u8]) -> Option<Duration> {
    if !(text.len() == 6 || text.len() == 8) || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = |i: usize| u64::from(text[i] - b'0') * 10 + u64::from(text[i + 1] - b'0');
    let (hh, mm, ss) = (n(0), n(2), n(4));
    let cc = if text.len() == 8 { n(6) } else { 0 };
    if mm > 59 || ss > 59 {
        return None;
    }
    Some(Duration::from_millis(
        ((hh * 60 + mm) * 60 + ss) * 1000 + cc * 10,
    ))
}

/// One running trace, owned by the sampling thread.
struct Active {
    instance: u64,
    svids: Box<[u32]>,
    period_ns: u64,
    /// u64 so that counting past a TOTSMP of u32::MAX cannot overflow.
    totsmp: u64,
    next_smpln: u64,
    next_due_ns: u64,
    current: Option<SampleGroup>,
    /// Capacity = every buffer of the trace, so filing one never grows it.
    free: Vec<SampleGroup>,
    /// Set by the thread when the trace has sent its last sample.
    finished: Arc<AtomicBool>,
}

enum Command {
    Start(Box<Active>),
    Stop(u64),
}

/// The sampling thread's ends of the channels.
struct Thread {
    commands: Receiver<Command>,
    returned: Receiver<SampleGroup>,
    out: Sender<SampleGroup>,
    ready: Arc<Notify>,
    vars: Arc<dyn VariableSource>,
    status: Arc<GemStatus>,
    stats: Arc<Stats>,
    epoch: Instant,
}

impl Thread {
    fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    fn run(self, health: &ThreadHealth, max_traces: usize) {
        crate::hot::prime_thread();
        let mut traces: Vec<Box<Active>> = Vec::with_capacity(max_traces);
        loop {
            while let Ok(mut buf) = self.returned.try_recv() {
                buf.len = 0;
                match traces.iter_mut().find(|t| t.instance == buf.instance) {
                    Some(t) if t.free.len() < t.free.capacity() => t.free.push(buf),
                    // Its trace ended or was redefined: the buffer goes.
                    _ => drop(buf),
                }
            }
            let next = traces.iter().map(|t| t.next_due_ns).min();
            health.idle();
            let command = match next {
                Some(due) => self
                    .commands
                    .recv_deadline(self.epoch + Duration::from_nanos(due)),
                None => self
                    .commands
                    .recv()
                    .map_err(|_| RecvTimeoutError::Disconnected),
            };
            health.beat();
            match command {
                Ok(Command::Start(active)) => {
                    // Within capacity: the control side keeps at most
                    // `max_traces` running and stops a trace it redefines
                    // before starting the new one.
                    traces.push(active);
                    continue;
                }
                Ok(Command::Stop(instance)) => {
                    traces.retain(|t| t.instance != instance);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {}
            }
            let now = self.now_ns();
            for t in traces.iter_mut().filter(|t| t.next_due_ns <= now) {
                self.sample(t, now);
            }
            traces.retain(|t| !t.finished.load(Ordering::Relaxed));
        }
    }

    /// Takes the due sample of `t` at `now` (and counts the periods it
    /// woke too late for).
    fn sample(&self, t: &mut Active, now: u64) {
        let missed = (now - t.next_due_ns) / t.period_ns;
        if missed > 0 {
            let missed = missed.min(t.totsmp + 1 - t.next_smpln);
            self.stats.missed_periods.add(missed);
            t.next_smpln += missed;
            t.next_due_ns += missed * t.period_ns;
        }
        if t.next_smpln <= t.totsmp {
            let smpln = t.next_smpln;
            let due = t.next_due_ns;
            t.next_smpln += 1;
            t.next_due_ns += t.period_ns;
            if t.current.is_none() {
                t.current = t.free.pop();
            }
            match t.current.as_mut() {
                Some(g) => {
                    let i = g.len;
                    // At most TOTSMP, which came as a u32.
                    g.smpln[i] = smpln as u32;
                    g.due_ns[i] = due;
                    g.taken_ns[i] = now;
                    // GEM's clock: the host's S2F31 offset applies to
                    // every time GEM reports (an atomic load: no
                    // allocation on this thread).
                    let system_ns = SystemTime::now()
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos() as u64);
                    let offset_ns = self.status.clock.get_ms().saturating_mul(1_000_000);
                    g.unix_ns[i] = system_ns.saturating_add_signed(offset_ns);
                    let slots = &mut g.values[i * g.svids..(i + 1) * g.svids];
                    for (slot, svid) in slots.iter_mut().zip(t.svids.iter()) {
                        *slot = self.vars.value(*svid);
                    }
                    g.len += 1;
                    self.stats.samples.incr();
                }
                None => self.stats.no_buffer_samples.incr(),
            }
        }
        let last = t.next_smpln > t.totsmp;
        // Set before the last group is handed over: whoever receives it
        // may at once ask how many traces are active and must see this
        // one ended.
        if last {
            t.finished.store(true, Ordering::Relaxed);
        }
        if t.current
            .as_ref()
            .is_some_and(|g| g.is_full() || (last && !g.is_empty()))
        {
            if let Some(g) = t.current.take() {
                self.hand_over(t, g);
            }
        }
    }

    fn hand_over(&self, t: &mut Active, group: SampleGroup) {
        match self.out.try_send(group) {
            Ok(()) => {
                self.stats.groups.incr();
                self.ready.notify_one();
            }
            Err(TrySendError::Full(mut g) | TrySendError::Disconnected(mut g)) => {
                self.stats.overruns.incr();
                self.stats.overrun_samples.add(g.len as u64);
                g.len = 0;
                t.free.push(g);
            }
        }
    }
}

/// A trace the control side knows of.
struct Known {
    key: TraceKey,
    instance: u64,
    finished: Arc<AtomicBool>,
}

/// The control side: answers S2F23 and owns the sampling thread (stopped
/// and joined on drop).
pub struct Tracer {
    commands: Option<Sender<Command>>,
    vars: Arc<dyn VariableSource>,
    limits: TraceLimits,
    stats: Arc<Stats>,
    known: Vec<Known>,
    next_instance: u64,
    epoch: Instant,
    thread: Option<JoinHandle<()>>,
    health: Arc<ThreadHealth>,
}

/// The async side: receives complete groups and returns their buffers.
pub struct TraceReports {
    groups: Receiver<SampleGroup>,
    returns: Sender<SampleGroup>,
    ready: Arc<Notify>,
    /// GEM's clock offset and TimeFormat, for STIME.
    status: Arc<GemStatus>,
}

impl Tracer {
    /// Starts the sampling thread (idle until a trace is defined).
    pub fn start(
        vars: Arc<dyn VariableSource>,
        status: Arc<GemStatus>,
        limits: TraceLimits,
    ) -> std::io::Result<(Tracer, TraceReports)> {
        // Unbounded: a command must not be refused while the thread is
        // still starting (priming takes ~10 ms); the sender side allocates
        // its blocks, the sampling thread only receives. Commands come at
        // the rate of host messages.
        let (command_tx, command_rx) = unbounded();
        let (out_tx, out_rx) = bounded(limits.queue.max(1));
        // Every buffer of every trace, twice (a redefined trace's buffers
        // may still be on their way back): giving one back never waits.
        let (return_tx, return_rx) =
            bounded((limits.max_traces * limits.buffers_per_trace * 2).max(1));
        let ready = Arc::new(Notify::new());
        let stats = Arc::new(Stats::default());
        let epoch = Instant::now();
        let thread = Thread {
            commands: command_rx,
            returned: return_rx,
            out: out_tx,
            ready: Arc::clone(&ready),
            vars: Arc::clone(&vars),
            status: Arc::clone(&status),
            stats: Arc::clone(&stats),
            epoch,
        };
        let max_traces = limits.max_traces;
        // Idle while no trace runs; a busy beat is at most one period away.
        let (handle, health) = spawn_watched(THREAD_NAME, Duration::from_secs(2), move |h| {
            let _hot = crate::hot::alloc_count::mark_thread_hot(THREAD_NAME);
            thread.run(h, max_traces)
        })?;
        Ok((
            Tracer {
                commands: Some(command_tx),
                vars,
                limits,
                stats,
                known: Vec::new(),
                next_instance: 1,
                epoch,
                thread: Some(handle),
                health,
            },
            TraceReports {
                groups: out_rx,
                returns: return_tx,
                ready,
                status,
            },
        ))
    }

    pub fn counts(&self) -> TraceCounts {
        self.stats.read()
    }

    /// The sampling thread's health (running, idle, dead with its panic).
    pub fn health(&self) -> &ThreadHealth {
        &self.health
    }

    /// Traces defined and not yet finished.
    pub fn active_traces(&mut self) -> usize {
        self.known.retain(|k| !k.finished.load(Ordering::Relaxed));
        self.known.len()
    }

    /// The instant sample times count from ([`SampleGroup::timing_ns`]).
    pub fn epoch(&self) -> Instant {
        self.epoch
    }

    fn send(&self, command: Command) -> bool {
        self.commands
            .as_ref()
            .is_some_and(|c| c.try_send(command).is_ok())
    }

    /// S2F23 trace initialize send →  S2F24 TIAACK.
    /// `L,5 <TRID> <DSPER> <TOTSMP> <REPGSZ> L,n <SVID>`. TOTSMP 0 stops
    /// the trace TRID; a TRID already running is replaced.
    pub fn initialize(&mut self, body: &Item) -> Result<Item, IllegalData> {
        let Some([trid, dsper, totsmp, repgsz, svids]) =
            body.as_list().and_then(|l| <&[Item; 5]>::try_from(l).ok())
        else {
            return Err(IllegalData::new(
                "S2F23: expected L,5 <TRID> <DSPER> <TOTSMP> <REPGSZ> L,n <SVID>",
            ));
        };
        let key = TraceKey::from_item(trid)
            .ok_or_else(|| IllegalData::new("S2F23 TRID: expected an integer or ASCII"))?;
        let dsper = dsper
            .ascii_bytes()
            .ok_or_else(|| IllegalData::new("S2F23 DSPER: expected ASCII hhmmss or hhmmsscc"))?;
        let totsmp = totsmp
            .as_u32()
            .ok_or_else(|| IllegalData::new("S2F23 TOTSMP: expected an integer"))?;
        let repgsz = repgsz
            .as_u32()
            .ok_or_else(|| IllegalData::new("S2F23 REPGSZ: expected an integer"))?;
        let svids = svids
            .as_list()
            .ok_or_else(|| IllegalData::new("S2F23: expected a list of SVIDs"))?;
        Ok(Item::binary_byte(
            self.define(key, trid, dsper, totsmp, repgsz, svids),
        ))
    }

    fn define(
        &mut self,
        key: TraceKey,
        trid: &Item,
        dsper: &[u8],
        totsmp: u32,
        repgsz: u32,
        svids: &[Item],
    ) -> u8 {
        self.active_traces();
        let running = self.known.iter().position(|k| k.key == key);
        if totsmp == 0 {
            if let Some(i) = running {
                let k = self.known.remove(i);
                self.send(Command::Stop(k.instance));
            }
            return tiaack::OK;
        }
        let period = match parse_dsper(dsper) {
            Some(p) if p >= self.limits.min_period => p,
            _ => return tiaack::INVALID_PERIOD,
        };
        if repgsz == 0 || repgsz > self.limits.max_group || repgsz > totsmp {
            return tiaack::INVALID_REPGSZ;
        }
        if svids.len() > self.limits.max_svids {
            return tiaack::TOO_MANY_SVIDS;
        }
        let mut ids = Vec::with_capacity(svids.len());
        for s in svids {
            match s.as_u32() {
                Some(id) if self.vars.knows(id) => ids.push(id),
                _ => return tiaack::UNKNOWN_SVID,
            }
        }
        if ids.is_empty() {
            // Nothing to sample: no SVID named is no known SVID.
            return tiaack::UNKNOWN_SVID;
        }
        if running.is_none() && self.known.len() >= self.limits.max_traces {
            return tiaack::NO_MORE_TRACES;
        }
        if let Some(i) = running {
            let k = self.known.remove(i);
            self.send(Command::Stop(k.instance));
        }
        let instance = self.next_instance;
        self.next_instance += 1;
        let group = repgsz as usize;
        let mut free = Vec::with_capacity(self.limits.buffers_per_trace.max(1));
        for _ in 0..free.capacity() {
            free.push(SampleGroup::new(instance, trid.clone(), group, ids.len()));
        }
        let finished = Arc::new(AtomicBool::new(false));
        let now_ns = self.epoch.elapsed().as_nanos() as u64;
        let active = Box::new(Active {
            instance,
            svids: ids.into(),
            period_ns: period.as_nanos() as u64,
            totsmp: u64::from(totsmp),
            next_smpln: 1,
            // The first sample is taken at once.
            next_due_ns: now_ns,
            current: None,
            free,
            finished: Arc::clone(&finished),
        });
        if !self.send(Command::Start(active)) {
            // The thread is gone (its death is on the Health panel).
            return tiaack::NO_MORE_TRACES;
        }
        self.known.push(Known {
            key,
            instance,
            finished,
        });
        tiaack::OK
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        // Closing the command channel ends the thread's loop.
        self.commands = None;
        if let Some(handle) = self.thread.take() {
            if let Err(e) = crate::hot::join_named(THREAD_NAME, handle) {
                tracing::error!("{THREAD_NAME}: {e}");
            }
        }
    }
}

impl TraceReports {
    /// The next complete group, or `None` once the sampling thread has
    /// ended and every group was taken.
    pub async fn next_group(&mut self) -> Option<SampleGroup> {
        loop {
            // Armed before looking, so a group handed over between the
            // look and the wait still wakes us (Notify keeps one permit).
            let notified = self.ready.notified();
            match self.groups.try_recv() {
                Ok(g) => return Some(g),
                Err(crossbeam_channel::TryRecvError::Disconnected) => return None,
                Err(crossbeam_channel::TryRecvError::Empty) => notified.await,
            }
        }
    }

    /// A complete group if one is waiting.
    pub fn try_next_group(&mut self) -> Option<SampleGroup> {
        self.groups.try_recv().ok()
    }

    /// Gives a buffer back to its trace.
    pub fn recycle(&self, group: SampleGroup) {
        if let Err(e) = self.returns.try_send(group) {
            // Cannot happen while the channel holds every buffer; if it
            // does, the buffer is freed and its trace has one fewer.
            tracing::warn!("trace buffer not returned: {e}");
        }
    }

    /// The next S6F1 body; its buffer goes back to the thread.
    pub async fn next_s6f1(&mut self) -> Option<Item> {
        let group = self.next_group().await?;
        let format = self.status.time_format.load(Ordering::Relaxed);
        let body = group.to_s6f1(format);
        self.recycle(group);
        Some(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::AtomicU32;

    /// SVIDs 1001 (a counter advanced on every read) and 1002 (a name).
    #[derive(Default)]
    struct Vars {
        reads: AtomicU32,
    }
    impl VariableSource for Vars {
        fn value(&self, vid: u32) -> Option<VariableValue> {
            match vid {
                1001 => Some(VariableValue::U4(
                    self.reads.fetch_add(1, Ordering::Relaxed),
                )),
                1002 => Some(VariableValue::text("LOT-7")),
                _ => None,
            }
        }
    }

    fn s2f23(trid: u32, dsper: &str, totsmp: u32, repgsz: u32, svids: &[u32]) -> Item {
        Item::list([
            Item::u4(trid),
            Item::ascii(dsper),
            Item::u4(totsmp),
            Item::u4(repgsz),
            Item::list(svids.iter().map(|s| Item::u4(*s))),
        ])
    }

    fn tiaack_of(t: &mut Tracer, body: Item) -> u8 {
        t.initialize(&body).unwrap().as_binary_byte().unwrap()
    }

    fn wait_for(mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        while !f() {
            assert!(start.elapsed() < Duration::from_secs(10), "timed out");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn dsper_and_stime() {
        assert_eq!(parse_dsper(b"000001"), Some(Duration::from_secs(1)));
        assert_eq!(parse_dsper(b"00000150"), Some(Duration::from_millis(1500)));
        assert_eq!(
            parse_dsper(b"01020304"),
            Some(Duration::from_millis(3_723_040))
        );
        for bad in [
            &b"0001"[..],
            b"00006000",
            b"000060",
            b"00:001",
            b"0000001",
            b"",
        ] {
            assert_eq!(parse_dsper(bad), None, "{bad:?}");
        }
        // 2026-11-30 00:40:05.67 UTC.
        let t = 1_795_999_205_670_000_000u64;
        assert_eq!(stime(t, 1), "2026113000400567");
        assert_eq!(stime(0, 1), "1970010100000000");
        assert_eq!(stime(t, 0), "261130004005");
    }

    #[test]
    fn tiaack_codes() {
        let limits = TraceLimits {
            max_traces: 1,
            max_svids: 2,
            ..TraceLimits::default()
        };
        let (mut t, _r) = Tracer::start(Arc::new(Vars::default()), Arc::default(), limits).unwrap();
        assert_eq!(
            tiaack_of(&mut t, s2f23(1, "000000", 5, 1, &[1001])),
            tiaack::INVALID_PERIOD
        );
        assert_eq!(
            tiaack_of(&mut t, s2f23(1, "0000000", 5, 1, &[1001])),
            tiaack::INVALID_PERIOD
        );
        assert_eq!(
            tiaack_of(&mut t, s2f23(1, "1 s", 5, 1, &[1001])),
            tiaack::INVALID_PERIOD
        );
        assert_eq!(
            tiaack_of(&mut t, s2f23(1, "000001", 5, 0, &[1001])),
            tiaack::INVALID_REPGSZ
        );
        assert_eq!(
            tiaack_of(&mut t, s2f23(1, "000001", 5, 6, &[1001])),
            tiaack::INVALID_REPGSZ
        );
        assert_eq!(
            tiaack_of(&mut t, s2f23(1, "000001", 500, 101, &[1001])),
            tiaack::INVALID_REPGSZ
        );
        assert_eq!(
            tiaack_of(&mut t, s2f23(1, "000001", 5, 1, &[1001, 1002, 1001])),
            tiaack::TOO_MANY_SVIDS
        );
        assert_eq!(
            tiaack_of(&mut t, s2f23(1, "000001", 5, 1, &[1001, 9])),
            tiaack::UNKNOWN_SVID
        );
        assert_eq!(
            tiaack_of(&mut t, s2f23(1, "000001", 5, 1, &[])),
            tiaack::UNKNOWN_SVID
        );
        assert_eq!(t.active_traces(), 0, "nothing refused was started");
        assert_eq!(
            tiaack_of(&mut t, s2f23(1, "000100", 5, 1, &[1001])),
            tiaack::OK
        );
        assert_eq!(
            tiaack_of(&mut t, s2f23(2, "000100", 5, 1, &[1001])),
            tiaack::NO_MORE_TRACES
        );
        // Redefining the running TRID is allowed at the limit.
        assert_eq!(
            tiaack_of(&mut t, s2f23(1, "000100", 5, 1, &[1002])),
            tiaack::OK
        );
        assert_eq!(t.active_traces(), 1);
        // TOTSMP 0 stops it, which frees the slot.
        assert_eq!(tiaack_of(&mut t, s2f23(1, "000100", 0, 1, &[])), tiaack::OK);
        assert_eq!(t.active_traces(), 0);
        assert_eq!(
            tiaack_of(&mut t, s2f23(2, "000100", 5, 1, &[1001])),
            tiaack::OK
        );

        for bad in [
            Item::u4(1),
            Item::list([Item::u4(1), Item::ascii("000001")]),
            Item::list([
                Item::f8(1.0),
                Item::ascii("000001"),
                Item::u4(1),
                Item::u4(1),
                Item::empty_list(),
            ]),
            Item::list([
                Item::u4(1),
                Item::u4(1),
                Item::u4(1),
                Item::u4(1),
                Item::empty_list(),
            ]),
            Item::list([
                Item::u4(1),
                Item::ascii("000001"),
                Item::i4(-1),
                Item::u4(1),
                Item::empty_list(),
            ]),
            Item::list([
                Item::u4(1),
                Item::ascii("000001"),
                Item::u4(1),
                Item::u4(1),
                Item::u4(1001),
            ]),
        ] {
            assert!(t.initialize(&bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn samples_arrive_in_groups_numbered_in_order_and_the_trace_ends() {
        let vars = Arc::new(Vars::default());
        let (mut t, mut r) =
            Tracer::start(vars.clone(), Arc::default(), TraceLimits::default()).unwrap();
        let trid = Item::ascii("T-A");
        let body = Item::list([
            trid.clone(),
            Item::ascii("00000001"),
            Item::u2(7),
            Item::u1(3),
            Item::list([Item::u4(1001), Item::u4(1002)]),
        ]);
        assert_eq!(t.initialize(&body).unwrap(), Item::binary_byte(0));
        let mut smplns = Vec::new();
        let mut sizes = Vec::new();
        while smplns.len() + (t.counts().missed_periods as usize) < 7 {
            let g = tokio::time::timeout(Duration::from_secs(10), r.next_group())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(g.trid(), &trid);
            sizes.push(g.len());
            for i in 0..g.len() {
                smplns.push(g.smpln(i));
                assert!(matches!(g.values(i)[0], Some(VariableValue::U4(_))));
                assert_eq!(g.values(i)[1], Some(VariableValue::text("LOT-7")));
                let (due, taken) = g.timing_ns(i);
                assert!(taken >= due, "a sample is never taken early");
            }
            let s6f1 = g.to_s6f1(1);
            let parts = s6f1.as_list().unwrap();
            assert_eq!(parts[0], trid);
            assert_eq!(parts[1], Item::u4(g.smpln(g.len() - 1)));
            assert_eq!(parts[2].as_ascii().unwrap().len(), 16);
            assert_eq!(parts[3].len(), g.len() * 2);
            r.recycle(g);
        }
        // 7 samples in groups of 3: 3, 3, then the last 1 (unless periods
        // were missed on a loaded machine; then fewer, counted).
        let c = t.counts();
        assert_eq!(c.samples as usize, smplns.len());
        assert_eq!(smplns.len() as u64 + c.missed_periods, 7);
        assert!(smplns.windows(2).all(|w| w[0] < w[1]), "{smplns:?}");
        assert!(*smplns.last().unwrap() <= 7);
        if c.missed_periods == 0 {
            assert_eq!(sizes, [3, 3, 1]);
            assert_eq!(smplns, (1..=7).collect::<Vec<_>>());
        }
        wait_for(|| t.active_traces() == 0);
        assert!(r.try_next_group().is_none());
    }

    #[test]
    fn buffers_are_recycled_one_owner_at_a_time() {
        let limits = TraceLimits {
            buffers_per_trace: 2,
            ..TraceLimits::default()
        };
        let (mut t, mut r) =
            Tracer::start(Arc::new(Vars::default()), Arc::default(), limits).unwrap();
        assert_eq!(
            tiaack_of(&mut t, s2f23(1, "00000001", 10_000, 2, &[1001])),
            0
        );
        // Take both buffers and keep them: sampling must go on without a
        // third buffer appearing, counting the samples it had no room for.
        let mut held = Vec::new();
        while held.len() < 2 {
            wait_for(|| {
                if let Some(g) = r.try_next_group() {
                    held.push(g);
                }
                !held.is_empty()
            });
        }
        let addrs: HashSet<usize> = held.iter().map(SampleGroup::storage_addr).collect();
        assert_eq!(addrs.len(), 2);
        let before = t.counts().no_buffer_samples;
        wait_for(|| t.counts().no_buffer_samples >= before + 5);
        assert!(r.try_next_group().is_none(), "no buffer beyond the pool");
        // Give them back: groups resume, in the same two buffers.
        for g in held.drain(..) {
            r.recycle(g);
        }
        let mut seen = 0;
        while seen < 6 {
            wait_for(|| {
                if let Some(g) = r.try_next_group() {
                    assert!(addrs.contains(&g.storage_addr()), "a buffer was remade");
                    r.recycle(g);
                    seen += 1;
                    return true;
                }
                false
            });
        }
        assert_eq!(t.counts().overruns, 0);
    }

    #[test]
    fn a_full_queue_is_counted_as_overrun() {
        let limits = TraceLimits {
            buffers_per_trace: 4,
            queue: 1,
            ..TraceLimits::default()
        };
        let (mut t, mut r) =
            Tracer::start(Arc::new(Vars::default()), Arc::default(), limits).unwrap();
        assert_eq!(
            tiaack_of(&mut t, s2f23(1, "00000001", 10_000, 1, &[1001])),
            0
        );
        // Nobody reads: the first group waits in the queue, the next ones
        // find it full.
        wait_for(|| t.counts().overruns >= 3);
        let c = t.counts();
        assert_eq!(c.overrun_samples, c.overruns, "groups of one sample");
        assert!(r.try_next_group().is_some());
        assert!(t.health().state().is_healthy());
    }

    #[tokio::test]
    async fn stime_is_on_gem_clock_with_the_host_offset_and_time_format() {
        use crate::host::gem::clock;
        let status = Arc::new(GemStatus::default());
        // The host's clock is a day and 7 s ahead (as S2F31 would set).
        status.clock.set_ms(86_407_000);
        status
            .time_format
            .store(clock::TIME_FORMAT_ISO, Ordering::Relaxed);
        let (mut t, mut r) = Tracer::start(
            Arc::new(Vars::default()),
            status.clone(),
            TraceLimits::default(),
        )
        .unwrap();
        let body = Item::list([
            Item::ascii("T-CLOCK"),
            Item::ascii("00000001"),
            Item::u2(3),
            Item::u1(1),
            Item::list([Item::u4(1001)]),
        ]);
        assert_eq!(t.initialize(&body).unwrap(), Item::binary_byte(0));
        let s6f1 = tokio::time::timeout(Duration::from_secs(10), r.next_s6f1())
            .await
            .unwrap()
            .unwrap();
        let stime = s6f1.as_list().unwrap()[2].as_ascii().unwrap().to_owned();
        let s2f18 = clock::s2f18(&status.clock, clock::TIME_FORMAT_ISO);
        let reported = clock::parse_time(s2f18.as_ascii().unwrap()).unwrap();
        let sampled = clock::parse_time(&stime).unwrap_or_else(|| panic!("{stime:?}"));
        assert!(
            (reported - sampled).abs() < 1000,
            "S6F1 STIME {stime} vs S2F18 {s2f18:?}"
        );
        assert_eq!(
            stime.len(),
            clock::format_time(0, clock::TIME_FORMAT_ISO).as_str().len(),
            "{stime}"
        );
    }

    #[tokio::test]
    async fn dropping_the_tracer_ends_the_thread_and_the_stream() {
        let (mut t, mut r) = Tracer::start(
            Arc::new(Vars::default()),
            Arc::default(),
            TraceLimits::default(),
        )
        .unwrap();
        assert_eq!(
            tiaack_of(&mut t, s2f23(1, "00000001", 10_000, 1, &[1001])),
            0
        );
        wait_for(|| t.counts().samples > 0);
        drop(t);
        // Drop joined the thread: what is queued drains, then the stream
        // ends instead of waiting for ever.
        let end = tokio::time::timeout(Duration::from_secs(10), async {
            let mut n = 0;
            while r.next_group().await.is_some() {
                n += 1;
            }
            n
        })
        .await
        .expect("the stream ended");
        assert!(end <= TraceLimits::default().queue);
    }
}
