//! Pipeline health: throughput, queues, pool, drops and stalls, hand-off
//! latency, allocations per second per hot thread (0 in steady state), and
//! the UI's own frame time; and every watched thread's state (a dead one
//! with its panic message). Numbers refresh once a second.

use super::look;
use super::view::{Health, View};
use crate::hot::ThreadState;
use egui::{RichText, Ui};

/// Icon and word for a thread's state; abnormal ones also get a detail
/// (how long without a beat, or the panic message).
pub fn thread_state_text(s: &ThreadState) -> (String, bool) {
    match s {
        ThreadState::Running => ("✔ running".into(), false),
        ThreadState::Idle => ("… idle".into(), false),
        ThreadState::Exited => ("■ exited".into(), false),
        ThreadState::Stalled { since_beat_ms } => (
            format!("◌ STALLED: no progress for {since_beat_ms} ms"),
            true,
        ),
        ThreadState::Dead { message } => (format!("✖ DEAD: {message}"), true),
    }
}

pub fn ui(ui: &mut Ui, view: &View) {
    let h = &view.health;
    ui.heading("Pipeline health");
    egui::Grid::new("health")
        .striped(true)
        .num_columns(2)
        .show(ui, |ui| {
            let mut row = |k: &str, v: String| {
                ui.label(k);
                ui.label(RichText::new(v).monospace());
                ui.end_row();
            };
            row("frames/s", format!("{:.1}", h.frames_per_s));
            row("MPix/s", format!("{:.1}", h.mpix_per_s));
            row("detection queue", format!("{}", h.queue_depth));
            row(
                "frame pool in use",
                format!("{} / {}", h.pool_in_use, h.pool_capacity),
            );
            row("drops", format!("{}", h.drops));
            row("stall time", format!("{:.0} ms", h.stall_ms));
            row(
                "hand-off latency p50 / p99",
                format!("{:.0} / {:.0} µs", h.handoff_p50_us, h.handoff_p99_us),
            );
            row(
                "detection per die p50",
                format!("{:.2} ms", h.detect_p50_ms),
            );
            row("thumbnails skipped", format!("{}", h.thumbnails_skipped));
            row(
                "alarm events not journaled",
                format!("{}", h.alarm_journal_drops),
            );
            row(
                "alarm commands not applied",
                format!("{}", h.alarm_commands_refused),
            );
            row("audit entries not written", format!("{}", h.audit_failures));
            row(
                "our show() CPU p50 / p99",
                format!("{:.2} / {:.2} ms", h.ui_frame_p50_ms, h.ui_frame_p99_ms),
            );
            row(
                "whole UI frame p99 / latest frame",
                format!(
                    "{:.2} / {:.0} ms",
                    h.ui_whole_frame_p99_ms, h.ui_late_max_ms
                ),
            );
            row("UI stalls over 0.5 s", ui_stalls_text(h));
        });
    if !h.links.is_empty() {
        ui.label(RichText::new("Device links (Modbus TCP)").strong());
        egui::Grid::new("links")
            .striped(true)
            .num_columns(2)
            .show(ui, |ui| {
                for l in &h.links {
                    ui.label(&l.name);
                    // The word says it; colour only marks the abnormal.
                    let state = if l.connected {
                        RichText::new(format!(
                            "connected — opened {}×, {} timeouts, {} drops, {} exceptions",
                            l.connects, l.timeouts, l.drops, l.exceptions
                        ))
                        .monospace()
                    } else {
                        RichText::new(format!(
                            "✖ NOT CONNECTED — opened {}×, {} timeouts, {} drops",
                            l.connects, l.timeouts, l.drops
                        ))
                        .monospace()
                        .color(look::QUALITY)
                        .strong()
                    };
                    ui.label(state);
                    ui.end_row();
                }
            });
    }
    ui.label(RichText::new("Allocations per second, hot threads").strong());
    egui::Grid::new("allocs")
        .striped(true)
        .num_columns(2)
        .show(ui, |ui| {
            for (name, rate) in &h.allocs_per_s {
                ui.label(*name);
                ui.label(RichText::new(format!("{rate:.0}")).monospace());
                ui.end_row();
            }
        });
    ui.label(RichText::new("Threads").strong());
    egui::Grid::new("threads")
        .striped(true)
        .num_columns(2)
        .show(ui, |ui| {
            for (name, state) in &h.threads {
                let (text, abnormal) = thread_state_text(state);
                ui.label(name);
                // Colour only for abnormal, and the word says it too.
                let mut t = RichText::new(text).monospace();
                if abnormal {
                    t = t.color(look::QUALITY).strong();
                }
                ui.label(t);
                ui.end_row();
            }
        });
}

/// "2 (longest 1043 ms)", "0", or the watchdog's absence in words.
pub fn ui_stalls_text(h: &Health) -> String {
    let f = h.ui_stalls;
    if !h.ui_watchdog_running {
        return "✖ watchdog not running".into();
    }
    match (f.stalls, f.current_ms) {
        (0, 0) => "0".into(),
        (n, 0) => format!("{n} (longest {} ms)", f.longest_ms),
        (n, now) => format!("{n} (longest {} ms); now stalled {now} ms", f.longest_ms),
    }
}
