//! `waferscope bench monitor`: what a poll costs per signal, and how long a
//! frozen heartbeat takes to show as Stale and as Lost.

use super::{median_ns_per_op, Report};
use crate::hot::latest_cell;
use crate::machine::sim::{SimIo, SimIoFaults};
use crate::machine::{Io, Subsystem, SIGNALS, SUBSYSTEMS};
use crate::monitor::{MachineSnapshot, Monitor, MonitorConfig, Poller, Quality};
use std::hint::black_box;
use std::time::{Duration, Instant};

pub fn run() -> Report {
    let mut r = Report::new("monitor");
    let reads_per_poll = (SIGNALS.len() + SUBSYSTEMS.len()) as f64;

    // Poll + publish, every signal due on every call.
    let (trend_tx, trend_rx) = crossbeam_channel::bounded(1 << 16);
    let mut poller = Poller::new(
        Box::new(SimIo::new(SimIoFaults::new())),
        &MonitorConfig::uniform(Duration::from_millis(1)),
        trend_tx,
    );
    let (mut writer, sub) = latest_cell(MachineSnapshot::default());
    let _reader = sub.reader();
    writer.adopt_new_readers();
    let mut now = 0u64;
    let poll_ns = median_ns_per_op(11, 20.0, || {
        now += 1_000_000;
        poller.poll(now);
        writer.publish(*poller.snapshot());
        while trend_rx.try_recv().is_ok() {}
    });
    // Baseline: the simulated device reads alone.
    let mut io = SimIo::new(SimIoFaults::new());
    let io_ns = median_ns_per_op(11, 20.0, || {
        for s in SUBSYSTEMS {
            black_box(io.read_heartbeat(s).ok());
        }
        for s in SIGNALS {
            black_box(io.read_signal(s).ok());
        }
    });
    r.add(
        "poll_and_publish_per_signal",
        poll_ns / reads_per_poll,
        "ns",
    );
    r.add("device_read_alone_per_signal", io_ns / reads_per_poll, "ns");
    r.add(
        "monitor_overhead_per_signal",
        (poll_ns - io_ns) / reads_per_poll,
        "ns",
    );

    for period_ms in [5u64, 1] {
        let (stale, lost) = freeze_delays(Duration::from_millis(period_ms));
        let p = period_ms as f64;
        r.add(
            &format!("stale_after_freeze_{period_ms}ms_period"),
            stale,
            "ms",
        );
        r.add(
            &format!("stale_after_freeze_{period_ms}ms_period"),
            stale / p,
            "periods",
        );
        r.add(
            &format!("lost_after_freeze_{period_ms}ms_period"),
            lost,
            "ms",
        );
        r.add(
            &format!("lost_after_freeze_{period_ms}ms_period"),
            lost / p,
            "periods",
        );
    }
    r
}

/// When `quality` of the reader's snapshot first satisfies `done`, or
/// `None` if it has not within 10 s (the figure then reads NaN).
fn wait_for(
    reader: &mut crate::hot::LatestReader<MachineSnapshot>,
    quality: &impl Fn(&mut crate::hot::LatestReader<MachineSnapshot>) -> Quality,
    done: impl Fn(Quality) -> bool,
) -> Option<Instant> {
    let give_up = Instant::now() + Duration::from_secs(10);
    loop {
        if done(quality(reader)) {
            return Some(Instant::now());
        }
        if Instant::now() > give_up {
            return None;
        }
        std::thread::yield_now();
    }
}

/// Median over 7 trials of the time from freezing the camera heartbeat to
/// the published snapshot showing Stale, and Lost, in ms.
fn freeze_delays(period: Duration) -> (f64, f64) {
    let mut stale = Vec::new();
    let mut lost = Vec::new();
    for _ in 0..7 {
        let faults = SimIoFaults::new();
        let monitor = Monitor::start(
            Box::new(SimIo::new(faults.clone())),
            MonitorConfig::uniform(period),
        );
        let mut reader = monitor.snapshots.reader().expect("fresh cell");
        let q = |r: &mut crate::hot::LatestReader<MachineSnapshot>| {
            r.read().value.heartbeat(Subsystem::Camera).quality
        };
        while q(&mut reader) != Quality::Live {
            std::thread::yield_now();
        }
        std::thread::sleep(period * 5);
        faults.freeze_heartbeat(Subsystem::Camera, true);
        let t0 = Instant::now();
        // Stale "or worse": a reader starved for 10 periods on a loaded
        // machine sees Live turn straight into Lost, and waiting for the
        // Stale it missed would spin for ever (it did, under load).
        let stale_at = wait_for(&mut reader, &q, |q| {
            matches!(q, Quality::Stale | Quality::Lost)
        });
        let lost_at = wait_for(&mut reader, &q, |q| q == Quality::Lost);
        let ms = |t: Option<Instant>| t.map_or(f64::NAN, |t| (t - t0).as_secs_f64() * 1e3);
        stale.push(ms(stale_at));
        lost.push(ms(lost_at));
    }
    stale.sort_by(f64::total_cmp);
    lost.sort_by(f64::total_cmp);
    (stale[stale.len() / 2], lost[lost.len() / 2])
}
