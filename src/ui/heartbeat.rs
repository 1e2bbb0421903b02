//! The heartbeat panel: one row per subsystem and signal with its data
//! quality (drawn apart from alarms), its value against its normal band,
//! "updated N s ago", and a sparkline of the last 10 minutes.

use super::look;
use super::view::View;
use crate::machine::{SIGNALS, SUBSYSTEMS};
use crate::monitor::trend::TrendRings;
use crate::monitor::Quality;
use egui::{Color32, RichText, Sense, Ui};
use egui_plot::{Line, Plot};

pub fn ui(ui: &mut Ui, view: &View, trends: &TrendRings) {
    ui.heading("Heartbeats");
    // `view.machine` is already taken as seen now (every row LOST when the
    // monitor stopped); say why, once, above the rows.
    if view.machine.is_out_of_date(view.now_ns) {
        ui.label(
            RichText::new(format!(
                "⊘ Monitor stopped: no machine data for {:.1} s; every value below is its last reading",
                view.machine.age_ns(view.now_ns) as f64 / 1e9
            ))
            .color(look::QUALITY)
            .strong(),
        );
    }
    egui::Grid::new("heartbeats")
        .striped(true)
        .num_columns(4)
        .show(ui, |ui| {
            for s in SUBSYSTEMS {
                let h = view.machine.heartbeat(s);
                ui.label(RichText::new(s.name()).strong());
                quality(ui, h.quality);
                ui.label(format!(
                    "counter {}",
                    view.machine_slow.heartbeat(s).counter
                ));
                ui.label(age(view.now_ns, h.advanced_ns, h.quality));
                ui.end_row();
            }
        });
    ui.separator();
    ui.heading("Signals");
    egui::Grid::new("signals")
        .striped(true)
        .num_columns(6)
        .show(ui, |ui| {
            for sig in SIGNALS {
                let info = sig.info();
                let now = view.machine.signal(sig);
                let slow = view.machine_slow.signal(sig);
                ui.label(info.name);
                quality(ui, now.quality);
                let text = if slow.updated_ns == 0 {
                    "—".to_string()
                } else {
                    format!("{:.2} {}", slow.value, info.unit)
                };
                // A value that is not live is never drawn like a valid one.
                let t = if now.quality == Quality::Live {
                    RichText::new(text).monospace()
                } else {
                    RichText::new(text)
                        .monospace()
                        .strikethrough()
                        .color(look::QUALITY)
                };
                ui.label(t);
                band(
                    ui,
                    slow.value,
                    info.valid,
                    info.normal,
                    now.quality == Quality::Live,
                );
                ui.label(age(view.now_ns, now.updated_ns, now.quality));
                sparkline(ui, &trends[sig.index()], info.normal);
                ui.end_row();
            }
        });
}

fn quality(ui: &mut Ui, q: Quality) {
    let (badge, color) = look::quality_badge(q);
    let mut t = RichText::new(badge).monospace();
    if q != Quality::Live {
        t = t
            .color(color)
            .strong()
            .background_color(Color32::from_rgb(0xDD, 0xE2, 0xF0));
    }
    ui.label(t);
}

fn age(now_ns: u64, then_ns: u64, q: Quality) -> String {
    if then_ns == 0 || q == Quality::NoValue {
        return "never updated".into();
    }
    let s = now_ns.saturating_sub(then_ns) as f64 / 1e9;
    if s < 1.0 {
        "updated < 1 s ago".into()
    } else {
        format!("updated {s:.0} s ago")
    }
}

/// The value against its valid range, with the normal band shaded.
fn band(ui: &mut Ui, v: f64, valid: (f64, f64), normal: (f64, f64), live: bool) {
    let (rect, _) = ui.allocate_exact_size(egui::vec2(120.0, 14.0), Sense::hover());
    let p = ui.painter();
    p.rect_filled(rect, 2.0, Color32::from_gray(215));
    let span = (valid.1 - valid.0).max(1e-9);
    let at = |x: f64| rect.left() + ((x - valid.0) / span).clamp(0.0, 1.0) as f32 * rect.width();
    let band = egui::Rect::from_min_max(
        egui::pos2(at(normal.0), rect.top()),
        egui::pos2(at(normal.1).max(at(normal.0) + 2.0), rect.bottom()),
    );
    p.rect_filled(band, 0.0, Color32::from_gray(180));
    let x = at(v);
    let color = if live {
        Color32::from_gray(20)
    } else {
        look::QUALITY
    };
    p.line_segment(
        [egui::pos2(x, rect.top()), egui::pos2(x, rect.bottom())],
        egui::Stroke::new(2.5, color),
    );
}

fn sparkline(ui: &mut Ui, ring: &crate::monitor::TrendRing, normal: (f64, f64)) {
    let mut pts = Vec::new();
    ring.decimate(0, 120, &mut pts);
    let (mins, maxs): (Vec<[f64; 2]>, Vec<[f64; 2]>) = pts
        .iter()
        .map(|p| ([p.t_ns as f64 / 1e9, p.min], [p.t_ns as f64 / 1e9, p.max]))
        .unzip();
    Plot::new(ui.next_auto_id())
        .height(22.0)
        .width(160.0)
        .show_axes(false)
        .show_grid(false)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .show_x(false)
        .show_y(false)
        .include_y(normal.0)
        .include_y(normal.1)
        .show(ui, |pu| {
            pu.line(Line::new("min", mins).color(Color32::from_gray(60)));
            pu.line(Line::new("max", maxs).color(Color32::from_gray(60)));
        });
}
