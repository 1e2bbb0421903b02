//! Where the metrics come from: the station's latest-state caches and the
//! counters its threads already keep, read once per scrape into a plain
//! [`Reading`]. Nothing here runs on a hot thread or adds work to one; a
//! scrape costs a few atomic loads, three snapshot copies and two short
//! mutex holds (the live pipeline handle and the hot-thread names).

use super::rate::Rates;
use crate::hot::{alloc_count, LatestReader, ThreadState};
use crate::machine::modbus::LinkStatus;
use crate::monitor::{AlarmDef, AlarmSnapshot, MachineSnapshot};
use crate::run::{LivePipeline, RunSnapshot};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};

/// One state of a state set: every possible value and the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StateReading {
    pub states: &'static [&'static str],
    pub current: &'static str,
}

/// The host link's states, as the GEM layer reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLinkReading {
    /// E30 communication state (e.g. NOT COMMUNICATING, COMMUNICATING).
    pub communication: StateReading,
    /// E30 control state (e.g. OFFLINE, ONLINE-LOCAL, ONLINE-REMOTE).
    pub control: StateReading,
    /// When the host layer last published these, ns on the process clock
    /// (`hot::now_ns`): its age is exposed like every producer's.
    pub taken_ns: u64,
}

/// What the GEM layer implements to have its control and communication
/// state exposed (`waferscope_gem_*`); the metrics need nothing else of
/// it. Read at scrape time, off every hot thread.
pub trait HostLinkSource: Send + Sync + 'static {
    fn read(&self) -> HostLinkReading;
}

/// Where the GEM layer puts its [`HostLinkSource`] once it runs (before or
/// after the metrics endpoint starts): `station.host_link_metrics.set(..)`.
/// Empty: no host link, and no `waferscope_gem_*` series.
pub type HostLinkSlot = Arc<OnceLock<Arc<dyn HostLinkSource>>>;

/// Everything the metrics read, taken from a station
/// (`Station::metrics_sources`).
pub struct MetricsSources {
    pub run: LatestReader<RunSnapshot>,
    pub machine: LatestReader<MachineSnapshot>,
    pub alarms: LatestReader<AlarmSnapshot>,
    pub alarm_defs: Arc<[AlarmDef]>,
    /// The pipeline of the wafer in progress (or the last one), if any.
    pub live: Arc<Mutex<Option<LivePipeline>>>,
    /// Each Modbus server's link, by name (empty on simulated I/O).
    pub io_links: Vec<(String, Arc<LinkStatus>)>,
    pub alarm_journal_drops: Arc<crate::hot::Counter>,
    pub alarm_commands_refused: Arc<crate::hot::Counter>,
    pub host_link: HostLinkSlot,
}

/// The pipeline's counters, as the Health panel reads them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PipelineReading {
    pub frames_acquired: u64,
    pub dies_inspected: u64,
    pub pixels_inspected: u64,
    pub defects_found: u64,
    pub drops: u64,
    pub stall_ns: u64,
    pub capture_failures: u64,
    pub camera_errors: u64,
    pub stage_errors: u64,
    pub queue_depth: u64,
    pub pool_in_use: usize,
    pub pool_capacity: usize,
    pub workers: usize,
    pub handoff_count: u64,
    pub handoff_p50_ns: u64,
    pub handoff_p99_ns: u64,
    pub detect_p50_ns: u64,
    pub detect_p99_ns: u64,
    pub thumbnails_missing: u64,
    /// Over the last window of at least a second (None until one passed).
    pub frames_per_second: Option<f64>,
    pub pixels_per_second: Option<f64>,
}

/// One hot thread's allocation counters.
#[derive(Debug, Clone, PartialEq)]
pub struct HotThreadReading {
    pub name: &'static str,
    pub allocations: u64,
    pub bytes: u64,
    pub allocations_per_second: Option<f64>,
}

/// One Modbus link's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkReading {
    pub name: String,
    pub connected: bool,
    pub connects: u64,
    pub connect_failures: u64,
    pub timeouts: u64,
    pub drops: u64,
    pub exceptions: u64,
    pub answered: u64,
}

/// Watched threads per state (`hot::liveness`), in [`THREAD_STATES`] order.
pub const THREAD_STATES: [&str; 5] = ["running", "idle", "stalled", "exited", "dead"];

/// Everything one scrape reports, read at `now_ns`.
#[derive(Debug, Clone)]
pub struct Reading {
    pub now_ns: u64,
    pub run: RunSnapshot,
    /// As a reader sees it now: every heartbeat LOST once its poller
    /// stopped (never its last good picture).
    pub machine: MachineSnapshot,
    /// As a reader sees it now (with the "evaluator stopped" alarm once
    /// its evaluator stopped).
    pub alarms: AlarmSnapshot,
    pub pipeline: Option<PipelineReading>,
    pub hot_threads: Vec<HotThreadReading>,
    pub threads: [u64; THREAD_STATES.len()],
    pub links: Vec<LinkReading>,
    pub alarm_journal_drops: u64,
    pub alarm_commands_refused: u64,
    pub host: Option<HostLinkReading>,
}

impl MetricsSources {
    /// Reads every source once, at `now_ns` (process clock). `rates` keeps
    /// the per-second windows between scrapes.
    pub fn read(&mut self, rates: &mut Rates, now_ns: u64) -> Reading {
        let run = self.run.read().value;
        let machine = self.machine.read().value.as_seen_at(now_ns);
        let alarms = self
            .alarms
            .read()
            .value
            .as_seen_at(now_ns, &self.alarm_defs);
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let pipeline = live.map(|l| pipeline_reading(&l, rates, now_ns));
        // Several threads may share a name (two wafers' pipelines while the
        // first winds down): summed, so each name is one series.
        let mut hot: Vec<HotThreadReading> = Vec::new();
        for (name, allocations, bytes) in alloc_count::hot_threads() {
            match hot.iter_mut().find(|h| h.name == name) {
                Some(h) => {
                    h.allocations += allocations;
                    h.bytes += bytes;
                }
                None => hot.push(HotThreadReading {
                    name,
                    allocations,
                    bytes,
                    allocations_per_second: None,
                }),
            }
        }
        for h in &mut hot {
            h.allocations_per_second =
                rates.per_second(&format!("alloc:{}", h.name), h.allocations, now_ns);
        }
        rates.retain(|k| {
            k.strip_prefix("alloc:")
                .is_none_or(|n| hot.iter().any(|h| h.name == n))
        });
        let mut threads = [0u64; THREAD_STATES.len()];
        for (_, state) in crate::hot::liveness::threads() {
            let i = match state {
                ThreadState::Running => 0,
                ThreadState::Idle => 1,
                ThreadState::Stalled { .. } => 2,
                ThreadState::Exited => 3,
                ThreadState::Dead { .. } => 4,
            };
            threads[i] += 1;
        }
        let links = self
            .io_links
            .iter()
            .map(|(name, l)| LinkReading {
                name: name.clone(),
                connected: l.connected.load(Ordering::Relaxed),
                connects: l.connects.get(),
                connect_failures: l.connect_failures.get(),
                timeouts: l.timeouts.get(),
                drops: l.drops.get(),
                exceptions: l.exceptions.get(),
                answered: l.answered.get(),
            })
            .collect();
        Reading {
            now_ns,
            run,
            machine,
            alarms,
            pipeline,
            hot_threads: hot,
            threads,
            links,
            alarm_journal_drops: self.alarm_journal_drops.get(),
            alarm_commands_refused: self.alarm_commands_refused.get(),
            host: self.host_link.get().map(|h| h.read()),
        }
    }
}

fn pipeline_reading(l: &LivePipeline, rates: &mut Rates, now_ns: u64) -> PipelineReading {
    let t = &l.telemetry;
    let frames_acquired = t.frames_acquired.get();
    let pixels_inspected = t.pixels_inspected.get();
    PipelineReading {
        frames_acquired,
        dies_inspected: t.dies_inspected.get(),
        pixels_inspected,
        defects_found: t.defects_found.get(),
        drops: t.drops.get(),
        stall_ns: t.stall_ns.get(),
        capture_failures: t.capture_failures.get(),
        camera_errors: t.camera_errors.get(),
        stage_errors: t.stage_errors.get(),
        queue_depth: t.queue_depth.get(),
        pool_in_use: l.pool.in_use(),
        pool_capacity: l.pool.capacity(),
        workers: l.workers,
        handoff_count: t.handoff_latency.count(),
        handoff_p50_ns: t.handoff_latency.quantile(0.5),
        handoff_p99_ns: t.handoff_latency.quantile(0.99),
        detect_p50_ns: t.detect_time.quantile(0.5),
        detect_p99_ns: t.detect_time.quantile(0.99),
        thumbnails_missing: l.thumbnails_missing(),
        // The Health panel's frames/s counts inspected dies; here the
        // camera's frames, whose rate is the same in a run and also means
        // something in live view.
        frames_per_second: rates.per_second("frames", frames_acquired, now_ns),
        pixels_per_second: rates.per_second("pixels", pixels_inspected, now_ns),
    }
}
