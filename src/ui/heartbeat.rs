//! The heartbeat panel: one row per subsystem and signal with its data
//! quality (drawn apart from alarms), its value against its normal band,
//! "updated N s ago", and a trend over the chosen span (1 min, 10 min or
//! 1 h, HMI rule 9) with its normal band and alarm limits drawn.

use super::look;
use super::view::View;
use crate::machine::{Signal, SIGNALS, SUBSYSTEMS};
use crate::monitor::alarm_defs::{AlarmDef, Condition};
use crate::monitor::trend::{TrendRings, TrendSpan};
use crate::monitor::Quality;
use egui::{Color32, RichText, Sense, Ui};
use egui_plot::{HLine, Line, LineStyle, Plot, Polygon};

/// Min/max buckets per trend plot: about twice its width in pixels.
const TREND_WIDTH_PX: f32 = 240.0;
const TREND_BUCKETS: usize = 2 * TREND_WIDTH_PX as usize;

/// The heartbeat panel and the trend span the operator chose.
#[derive(Debug, Default)]
pub struct HeartbeatPanel {
    pub span: TrendSpan,
    /// Reused for every trend's decimated points.
    points: Vec<crate::monitor::TrendPoint>,
}

impl HeartbeatPanel {
    pub fn ui(&mut self, ui: &mut Ui, view: &View, trends: &TrendRings) {
        heartbeats(ui, view);
        ui.separator();
        ui.horizontal(|ui| {
            ui.heading("Signals");
            ui.add_space(20.0);
            ui.label("Trend span:");
            for span in TrendSpan::ALL {
                ui.selectable_value(&mut self.span, span, span.label());
            }
            ui.label("(shaded: normal band; dashed: alarm limits)");
        });
        self.signals(ui, view, trends);
    }

    fn signals(&mut self, ui: &mut Ui, view: &View, trends: &TrendRings) {
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
                    trends[sig.index()].decimate(
                        self.span,
                        view.now_ns,
                        TREND_BUCKETS,
                        &mut self.points,
                    );
                    trend(
                        ui,
                        &self.points,
                        self.span,
                        view.now_ns,
                        info.normal,
                        &alarm_limits(&view.defs, sig),
                    );
                    ui.end_row();
                }
            });
    }
}

fn heartbeats(ui: &mut Ui, view: &View) {
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
}

/// The limits of the signal's high and low alarms, from the alarm
/// definitions: what the trend draws as its limit lines.
pub fn alarm_limits(defs: &[AlarmDef], sig: Signal) -> Vec<f64> {
    defs.iter()
        .filter_map(|d| match d.condition {
            Condition::High { signal, limit, .. } | Condition::Low { signal, limit, .. }
                if signal == sig =>
            {
                Some(limit)
            }
            _ => None,
        })
        .collect()
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

/// The signal's min/max trend over `span` ending now (the x axis follows
/// the span even before the ring has filled it), with its normal band
/// shaded and its alarm limits as dashed lines.
fn trend(
    ui: &mut Ui,
    pts: &[crate::monitor::TrendPoint],
    span: TrendSpan,
    now_ns: u64,
    normal: (f64, f64),
    limits: &[f64],
) {
    // Seconds relative to now: the axis reads "-60 … 0" whatever the
    // monitor's epoch.
    let at = |t_ns: u64| (t_ns as f64 - now_ns as f64) / 1e9;
    let (mins, maxs): (Vec<[f64; 2]>, Vec<[f64; 2]>) = pts
        .iter()
        .map(|p| ([at(p.t_ns), p.min], [at(p.t_ns), p.max]))
        .unzip();
    let from = -(span.duration_ns() as f64) / 1e9;
    let mut plot = Plot::new(ui.next_auto_id())
        .height(40.0)
        .width(TREND_WIDTH_PX)
        .show_axes(false)
        .show_grid(false)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .allow_double_click_reset(false)
        .show_x(false)
        .show_y(false)
        .include_x(from)
        .include_x(0.0)
        .include_y(normal.0)
        .include_y(normal.1);
    for &l in limits {
        plot = plot.include_y(l);
    }
    plot.show(ui, |pu| {
        pu.set_plot_bounds_x(from..=0.0);
        pu.polygon(
            Polygon::new(
                "normal band",
                vec![
                    [from, normal.0],
                    [0.0, normal.0],
                    [0.0, normal.1],
                    [from, normal.1],
                ],
            )
            .fill_color(Color32::from_gray(215))
            .stroke(egui::Stroke::NONE),
        );
        for &l in limits {
            pu.hline(
                HLine::new("alarm limit", l)
                    .color(Color32::from_gray(40))
                    .style(LineStyle::dashed_dense()),
            );
        }
        pu.line(Line::new("min", mins).color(Color32::from_gray(60)));
        pu.line(Line::new("max", maxs).color(Color32::from_gray(60)));
    });
}
