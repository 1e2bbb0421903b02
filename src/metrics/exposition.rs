//! The metric families: one [`Reading`] written as Prometheus metrics
//! through `prometheus-client`'s collector interface, so every value is
//! taken at scrape time from the station's own caches (nothing is copied
//! into metric objects between scrapes, so nothing can go stale there).
//!
//! docs/metrics.md lists every family; the unit test at the end checks
//! that each one listed there is written.

use super::e10::{e10_state, E10Inputs, E10State};
use super::rate::Rates;
use super::sources::{MetricsSources, Reading, THREAD_STATES};
use crate::machine::SUBSYSTEMS;
use crate::monitor::Quality;
use crate::run::{ExitStatus, RunState};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::fmt;
use std::sync::Mutex;

/// Reads the station's sources on each scrape (registered with the
/// registry as a collector).
pub struct StationCollector {
    // A scrape reads the snapshot readers (`&mut`) and moves the rate
    // windows on: one scrape at a time. Scrapes are seconds apart, so the
    // lock is never contended in practice.
    state: Mutex<(MetricsSources, Rates)>,
}

impl StationCollector {
    pub fn new(sources: MetricsSources) -> Self {
        Self {
            state: Mutex::new((sources, Rates::default())),
        }
    }
}

impl fmt::Debug for StationCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StationCollector")
    }
}

impl Collector for StationCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let reading = {
            let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
            let (sources, rates) = &mut *guard;
            sources.read(rates, crate::hot::now_ns())
        };
        write_reading(&reading, &mut encoder)
    }
}

/// A collector that writes one fixed reading (`metrics::exposition_of`:
/// what a scrape at that reading serves).
#[derive(Debug)]
pub struct FixedReading(pub Reading);

impl Collector for FixedReading {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        write_reading(&self.0, &mut encoder)
    }
}

const PRIORITIES: [&str; 3] = ["low", "medium", "high"];

fn gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: V,
) -> fmt::Result {
    let m = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    ConstGauge::new(v).encode(m)
}

/// `name` without `_total`: the encoder adds it to every counter.
fn counter<V: prometheus_client::encoding::EncodeCounterValue>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: V,
) -> fmt::Result {
    let m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    ConstCounter::new(v).encode(m)
}

/// A family of one type: one series per label set.
fn family<L, M>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (L, M)>,
) -> fmt::Result
where
    L: EncodeLabelSet,
    M: EncodeMetric + Default,
{
    let mut m = enc.encode_descriptor(name, help, None, M::default().metric_type())?;
    for (labels, metric) in rows {
        metric.encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn flag(b: bool) -> i64 {
    i64::from(b)
}

fn seconds_ns(ns: u64) -> f64 {
    ns as f64 / 1e9
}

fn run_state_name(s: RunState) -> &'static str {
    match s {
        RunState::Idle => "idle",
        RunState::Ready => "ready",
        RunState::Running => "running",
        RunState::Pausing => "pausing",
        RunState::Paused => "paused",
        RunState::Suspended => "suspended",
        RunState::Stopping => "stopping",
        RunState::Aborting => "aborting",
        RunState::Complete => "complete",
        RunState::Aborted => "aborted",
        RunState::Faulted => "faulted",
        RunState::FaultAcknowledged => "fault_acknowledged",
    }
}

const QUALITIES: [Quality; 5] = [
    Quality::NoValue,
    Quality::Live,
    Quality::Stale,
    Quality::Lost,
    Quality::Invalid,
];

/// Writes every family of `r` (the `waferscope_` prefix comes from the
/// registry).
pub fn write_reading(r: &Reading, enc: &mut DescriptorEncoder) -> fmt::Result {
    write_run(r, enc)?;
    write_alarms(r, enc)?;
    write_producers(r, enc)?;
    write_pipeline(r, enc)?;
    write_threads(r, enc)?;
    write_links(r, enc)?;
    write_host(r, enc)
}

fn write_run(r: &Reading, enc: &mut DescriptorEncoder) -> fmt::Result {
    let run = &r.run;
    family(
        enc,
        "run_state",
        "Run state of the station (1 for the current state, 0 for the others).",
        RunState::ALL.map(|s| {
            (
                [("state", run_state_name(s))],
                ConstGauge::new(flag(s == run.state)),
            )
        }),
    )?;
    let e10 = e10_state(E10Inputs::at(run.state, &r.machine, &r.alarms, r.now_ns));
    family(
        enc,
        "e10_state",
        "SEMI E10 equipment state (1 for the current state); mapping from run state and alarms in docs/metrics.md.",
        E10State::ALL.map(|s| ([("state", s.name())], ConstGauge::new(flag(s == e10)))),
    )?;
    let t = &run.totals;
    counter(
        enc,
        "wafers_completed",
        "Wafers inspected to completion since the station started.",
        t.ended(ExitStatus::Complete),
    )?;
    family(
        enc,
        "wafers_interrupted",
        "Wafers whose run ended without completing since the station started, by how it ended.",
        [
            ExitStatus::Stopped,
            ExitStatus::Aborted,
            ExitStatus::Faulted,
        ]
        .map(|s| ([("status", s.name())], ConstCounter::new(t.ended(s)))),
    )?;
    counter(
        enc,
        "dies_inspected",
        "Dies whose image was inspected since the station started (all wafers).",
        t.dies_inspected,
    )?;
    counter(
        enc,
        "defects",
        "Defects found since the station started (all wafers).",
        t.defects,
    )?;
    gauge(
        enc,
        "run_dies_planned",
        "Dies in the plan of the current or last run.",
        run.dies_total,
    )?;
    gauge(
        enc,
        "run_dies_done",
        "Dies done (inspected or failed) in the current or last run.",
        run.dies_done,
    )?;
    gauge(
        enc,
        "run_defects",
        "Defects found in the current or last run.",
        run.defects,
    )?;
    gauge(
        enc,
        "run_elapsed_seconds",
        "Time the current or last run has taken since its start, as of its last die.",
        run.elapsed_ms as f64 / 1e3,
    )?;
    // Rates only once there is something to divide by: an absent series
    // says "not known yet", a 0 would claim the tool is idle.
    if run.elapsed_ms > 0 {
        gauge(
            enc,
            "run_dies_per_hour",
            "Dies per hour of the current or last run, over its whole duration so far.",
            run.dies_done as f64 * 3.6e6 / run.elapsed_ms as f64,
        )?;
    }
    if t.last_complete_wafer_ms > 0 {
        gauge(
            enc,
            "wafers_per_hour",
            "Wafers per hour at the cycle time of the last completed wafer (start to end); over time use rate(waferscope_wafers_completed_total[1h])*3600.",
            3.6e6 / t.last_complete_wafer_ms as f64,
        )?;
    }
    Ok(())
}

fn write_alarms(r: &Reading, enc: &mut DescriptorEncoder) -> fmt::Result {
    let a = &r.alarms;
    family(
        enc,
        "alarms_active",
        "Alarms active now (acknowledged or not), by priority.",
        (0..3).map(|p| {
            (
                [("priority", PRIORITIES[p])],
                ConstGauge::new(i64::from(a.active[p])),
            )
        }),
    )?;
    family(
        enc,
        "alarms_unacknowledged",
        "Alarms not yet acknowledged (active or returned), by priority.",
        (0..3).map(|p| {
            (
                [("priority", PRIORITIES[p])],
                ConstGauge::new(i64::from(a.unacknowledged[p])),
            )
        }),
    )?;
    gauge(
        enc,
        "alarms_shelved",
        "Alarms shelved now.",
        u32::from(a.shelved),
    )?;
    family(
        enc,
        "alarms_raised",
        "Alarms raised since the alarm evaluator started, by priority.",
        (0..3).map(|p| {
            (
                [("priority", PRIORITIES[p])],
                ConstCounter::new(a.raised[p]),
            )
        }),
    )?;
    counter(
        enc,
        "alarm_transitions",
        "Alarm state transitions (raise, clear, acknowledge, shelve...) since the evaluator started.",
        a.transitions,
    )?;
    counter(
        enc,
        "alarm_journal_drops",
        "Alarm events the evaluator could not hand to the journal (journal behind).",
        r.alarm_journal_drops,
    )?;
    counter(
        enc,
        "alarm_commands_refused",
        "Operator alarm commands the evaluator did not take.",
        r.alarm_commands_refused,
    )
}

fn write_producers(r: &Reading, enc: &mut DescriptorEncoder) -> fmt::Result {
    let age = |taken_ns: u64| seconds_ns(r.now_ns.saturating_sub(taken_ns));
    let mut ages = vec![
        ("monitor", age(r.machine.taken_ns)),
        ("alarm_evaluator", age(r.alarms.taken_ns)),
        ("run_engine", age(r.run.taken_ns)),
    ];
    if let Some(h) = &r.host {
        ages.push(("gem", age(h.taken_ns)));
    }
    family(
        enc,
        "snapshot_age_seconds",
        "Age of each producer's latest snapshot: grows without bound when a producer stops. The monitor and alarm evaluator publish every few ms, the run engine only on a change.",
        ages.into_iter()
            .map(|(p, s)| ([("producer", p)], ConstGauge::new(s))),
    )?;
    family(
        enc,
        "snapshot_out_of_date",
        "1 when a periodic producer's snapshot is older than 3 of its periods or it has ended (its values read LOST).",
        [
            ("monitor", r.machine.is_out_of_date(r.now_ns)),
            ("alarm_evaluator", r.alarms.is_out_of_date(r.now_ns)),
        ]
        .map(|(p, b)| ([("producer", p)], ConstGauge::new(flag(b)))),
    )?;
    counter(
        enc,
        "monitor_reads",
        "Device reads (heartbeats and signals) the monitor has made since it started.",
        r.machine.reads,
    )?;
    family(
        enc,
        "heartbeat_quality",
        "Each subsystem's heartbeat quality (1 for the current quality).",
        SUBSYSTEMS.iter().flat_map(|&s| {
            let q = r.machine.heartbeat(s).quality;
            QUALITIES.map(|x| {
                (
                    [("subsystem", s.name()), ("quality", x.name())],
                    ConstGauge::new(flag(x == q)),
                )
            })
        }),
    )
}

fn write_pipeline(r: &Reading, enc: &mut DescriptorEncoder) -> fmt::Result {
    gauge(
        enc,
        "pipeline_present",
        "1 while the station has an inspection pipeline (a wafer's, kept after it ends until the next); the waferscope_pipeline_* series exist only then.",
        flag(r.pipeline.is_some()),
    )?;
    let Some(p) = &r.pipeline else {
        return Ok(());
    };
    // Counters of the current wafer's pipeline: each wafer starts a new one
    // from 0, which Prometheus' rate() takes as a counter reset.
    counter(
        enc,
        "pipeline_frames_acquired",
        "Frames the camera delivered to the current pipeline.",
        p.frames_acquired,
    )?;
    counter(
        enc,
        "pipeline_dies_inspected",
        "Dies the current pipeline's detection workers inspected.",
        p.dies_inspected,
    )?;
    counter(
        enc,
        "pipeline_pixels_inspected",
        "Pixels the current pipeline inspected.",
        p.pixels_inspected,
    )?;
    counter(
        enc,
        "pipeline_frames_dropped",
        "Live-view frames dropped because the pool or queue was full.",
        p.drops,
    )?;
    counter(
        enc,
        "pipeline_stall_seconds",
        "Time die triggers waited for a free frame buffer (inspection never drops, it stalls).",
        seconds_ns(p.stall_ns),
    )?;
    counter(
        enc,
        "pipeline_capture_failures",
        "Dies that could not be imaged after retries.",
        p.capture_failures,
    )?;
    counter(
        enc,
        "pipeline_camera_errors",
        "Camera errors seen by the acquisition thread.",
        p.camera_errors,
    )?;
    counter(
        enc,
        "pipeline_stage_errors",
        "Stage errors seen by the acquisition thread.",
        p.stage_errors,
    )?;
    counter(
        enc,
        "pipeline_thumbnails_missing",
        "Defect thumbnails this wafer did not get (skipped on the hot path or not written).",
        p.thumbnails_missing,
    )?;
    if let Some(fps) = p.frames_per_second {
        gauge(
            enc,
            "pipeline_frames_per_second",
            "Frames acquired per second over the last window of at least a second (the Health panel's frames/s).",
            fps,
        )?;
    }
    if let Some(pps) = p.pixels_per_second {
        gauge(
            enc,
            "pipeline_pixels_per_second",
            "Pixels inspected per second over the last window of at least a second.",
            pps,
        )?;
    }
    gauge(
        enc,
        "pipeline_detection_queue_frames",
        "Frames waiting for detection, across workers.",
        p.queue_depth,
    )?;
    gauge(
        enc,
        "pipeline_pool_buffers_in_use",
        "Frame buffers of the pool leased now.",
        p.pool_in_use,
    )?;
    gauge(
        enc,
        "pipeline_pool_buffers",
        "Frame buffers in the pool.",
        p.pool_capacity,
    )?;
    gauge(
        enc,
        "pipeline_detection_workers",
        "Detection worker threads of the current pipeline.",
        p.workers,
    )?;
    // Quantiles from the hot path's lock-free histograms; until a sample
    // exists they are not known, not 0.
    if p.handoff_count > 0 {
        gauge(
            enc,
            "pipeline_handoff_latency_p50_seconds",
            "Median latency from capture done to a detection worker receiving the frame.",
            seconds_ns(p.handoff_p50_ns),
        )?;
        gauge(
            enc,
            "pipeline_handoff_latency_p99_seconds",
            "99th percentile latency from capture done to a detection worker receiving the frame.",
            seconds_ns(p.handoff_p99_ns),
        )?;
    }
    if p.dies_inspected > 0 {
        gauge(
            enc,
            "pipeline_detection_p50_seconds",
            "Median detection time per die.",
            seconds_ns(p.detect_p50_ns),
        )?;
        gauge(
            enc,
            "pipeline_detection_p99_seconds",
            "99th percentile detection time per die.",
            seconds_ns(p.detect_p99_ns),
        )?;
    }
    Ok(())
}

fn write_threads(r: &Reading, enc: &mut DescriptorEncoder) -> fmt::Result {
    family(
        enc,
        "hot_thread_allocations",
        "Heap allocations made by each hot thread while marked hot (0 growth in steady state is the design rule).",
        r.hot_threads
            .iter()
            .map(|h| ([("thread", h.name)], ConstCounter::new(h.allocations))),
    )?;
    family(
        enc,
        "hot_thread_allocated_bytes",
        "Bytes allocated by each hot thread while marked hot.",
        r.hot_threads
            .iter()
            .map(|h| ([("thread", h.name)], ConstCounter::new(h.bytes))),
    )?;
    family(
        enc,
        "hot_thread_allocations_per_second",
        "Allocations per second of each hot thread over the last window of at least a second (the Health panel's figure).",
        r.hot_threads.iter().filter_map(|h| {
            h.allocations_per_second
                .map(|v| ([("thread", h.name)], ConstGauge::new(v)))
        }),
    )?;
    family(
        enc,
        "threads",
        "Watched threads by state (stalled: no progress past its limit; dead: panicked).",
        THREAD_STATES
            .iter()
            .zip(r.threads)
            .map(|(s, n)| ([("state", *s)], ConstGauge::new(n as i64))),
    )
}

fn write_links(r: &Reading, enc: &mut DescriptorEncoder) -> fmt::Result {
    if r.links.is_empty() {
        return Ok(());
    }
    let by_link = |f: fn(&super::sources::LinkReading) -> u64| {
        r.links
            .iter()
            .map(move |l| ([("link", l.name.as_str())], ConstCounter::new(f(l))))
    };
    family(
        enc,
        "modbus_link_up",
        "1 while the Modbus TCP connection to the server is open.",
        r.links.iter().map(|l| {
            (
                [("link", l.name.as_str())],
                ConstGauge::new(flag(l.connected)),
            )
        }),
    )?;
    family(
        enc,
        "modbus_link_connects",
        "Modbus TCP connections opened.",
        by_link(|l| l.connects),
    )?;
    family(
        enc,
        "modbus_link_connect_failures",
        "Modbus TCP connect attempts that failed.",
        by_link(|l| l.connect_failures),
    )?;
    family(
        enc,
        "modbus_link_timeouts",
        "Modbus requests that timed out.",
        by_link(|l| l.timeouts),
    )?;
    family(
        enc,
        "modbus_link_drops",
        "Modbus TCP connections lost.",
        by_link(|l| l.drops),
    )?;
    family(
        enc,
        "modbus_link_exceptions",
        "Modbus exception responses.",
        by_link(|l| l.exceptions),
    )?;
    family(
        enc,
        "modbus_link_answered",
        "Modbus requests answered with data.",
        by_link(|l| l.answered),
    )
}

fn write_host(r: &Reading, enc: &mut DescriptorEncoder) -> fmt::Result {
    let Some(h) = &r.host else {
        return Ok(());
    };
    for (name, help, s) in [
        (
            "gem_communication_state",
            "SEMI E30 communication state of the host link (1 for the current state).",
            h.communication,
        ),
        (
            "gem_control_state",
            "SEMI E30 control state (1 for the current state).",
            h.control,
        ),
    ] {
        family(
            enc,
            name,
            help,
            s.states
                .iter()
                .map(|x| ([("state", *x)], ConstGauge::new(flag(*x == s.current)))),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::exposition_of;
    use crate::metrics::sources::PipelineReading;

    fn reading(run: RunState) -> Reading {
        let mut r = Reading {
            now_ns: 5_000_000_000,
            run: crate::run::RunSnapshot::default(),
            machine: crate::monitor::MachineSnapshot::default(),
            alarms: crate::monitor::AlarmSnapshot::default(),
            pipeline: None,
            hot_threads: Vec::new(),
            threads: [0; THREAD_STATES.len()],
            links: Vec::new(),
            alarm_journal_drops: 0,
            alarm_commands_refused: 0,
            host: None,
        };
        r.run.state = run;
        r
    }

    /// The value of the one series `series` (name and labels as printed).
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.parse().unwrap())
    }

    #[test]
    fn state_sets_mark_exactly_the_current_state() {
        let text = exposition_of(reading(RunState::Suspended)).unwrap();
        let ones = |family: &str| {
            text.lines()
                .filter(|l| l.starts_with(family) && l.ends_with(" 1"))
                .count()
        };
        assert_eq!(ones("waferscope_run_state{"), 1, "{text}");
        assert_eq!(ones("waferscope_e10_state{"), 1, "{text}");
        assert_eq!(
            value(&text, "waferscope_run_state{state=\"suspended\"}"),
            Some(1.0)
        );
        assert_eq!(
            value(
                &text,
                "waferscope_e10_state{state=\"UNSCHEDULED_DOWNTIME\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            value(&text, "waferscope_e10_state{state=\"PRODUCTIVE\"}"),
            Some(0.0)
        );
    }

    #[test]
    fn counters_and_rates_come_from_the_reading() {
        let mut r = reading(RunState::Complete);
        r.run.totals.count_end(ExitStatus::Complete);
        r.run.totals.count_end(ExitStatus::Complete);
        r.run.totals.count_end(ExitStatus::Aborted);
        r.run.totals.last_complete_wafer_ms = 90_000;
        r.run.dies_done = 50;
        r.run.elapsed_ms = 60_000;
        r.alarms.raised = [1, 2, 3];
        let text = exposition_of(r).unwrap();
        assert_eq!(value(&text, "waferscope_wafers_completed_total"), Some(2.0));
        assert_eq!(
            value(
                &text,
                "waferscope_wafers_interrupted_total{status=\"aborted\"}"
            ),
            Some(1.0)
        );
        // 90 s per wafer: 40 wafers an hour; 50 dies in a minute: 3000.
        assert_eq!(value(&text, "waferscope_wafers_per_hour"), Some(40.0));
        assert_eq!(value(&text, "waferscope_run_dies_per_hour"), Some(3000.0));
        assert_eq!(
            value(&text, "waferscope_alarms_raised_total{priority=\"high\"}"),
            Some(3.0)
        );
    }

    #[test]
    fn what_is_not_known_yet_is_absent_not_zero() {
        let text = exposition_of(reading(RunState::Idle)).unwrap();
        for absent in [
            "waferscope_wafers_per_hour",
            "waferscope_run_dies_per_hour",
            "waferscope_pipeline_frames_acquired_total",
            "waferscope_modbus_link_up",
            "waferscope_gem_control_state",
        ] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }
        assert_eq!(value(&text, "waferscope_pipeline_present"), Some(0.0));
        let mut r = reading(RunState::Running);
        r.pipeline = Some(PipelineReading {
            frames_acquired: 7,
            frames_per_second: None,
            ..PipelineReading::default()
        });
        let text = exposition_of(r).unwrap();
        assert_eq!(value(&text, "waferscope_pipeline_present"), Some(1.0));
        assert_eq!(
            value(&text, "waferscope_pipeline_frames_acquired_total"),
            Some(7.0)
        );
        // No window has passed yet: no frames/s, and no quantile without
        // a sample.
        assert!(!text.contains("waferscope_pipeline_frames_per_second"));
        assert!(!text.contains("waferscope_pipeline_handoff_latency_p50_seconds"));
    }

    #[test]
    fn a_producers_age_is_now_minus_its_stamp() {
        let mut r = reading(RunState::Idle);
        r.machine.taken_ns = 4_000_000_000;
        r.alarms.taken_ns = 4_500_000_000;
        r.run.taken_ns = 1_000_000_000;
        let text = exposition_of(r).unwrap();
        let age = |p: &str| {
            value(
                &text,
                &format!("waferscope_snapshot_age_seconds{{producer=\"{p}\"}}"),
            )
        };
        assert_eq!(age("monitor"), Some(1.0));
        assert_eq!(age("alarm_evaluator"), Some(0.5));
        assert_eq!(age("run_engine"), Some(4.0));
        assert_eq!(age("gem"), None);
    }
}
