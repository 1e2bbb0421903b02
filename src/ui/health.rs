//! Pipeline health: throughput, queues, pool, drops and stalls, hand-off
//! latency, allocations per second per hot thread (0 in steady state), and
//! the UI's own frame time. Numbers refresh once a second.

use super::view::View;
use egui::{RichText, Ui};

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
                "UI frame CPU p50 / p99",
                format!("{:.2} / {:.2} ms", h.ui_frame_p50_ms, h.ui_frame_p99_ms),
            );
        });
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
}
