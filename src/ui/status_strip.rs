//! The status strip: always on top, never moving. Run state as icon and
//! word, recipe, lot/wafer/slot, progress, alarm counts by priority with an
//! unacknowledged marker, overall health, operator, clock and a liveness
//! tick that advances every second.

use super::look;
use super::view::View;
use crate::monitor::{Priority, Quality};
use crate::run::RunState;
use egui::{RichText, Ui};

pub fn state_icon(s: RunState) -> &'static str {
    match s {
        RunState::Running => "▶",
        RunState::Pausing | RunState::Paused => "⏸",
        RunState::Suspended => "⚠",
        RunState::Stopping | RunState::Aborting => "⏹",
        RunState::Complete => "✔",
        RunState::Aborted | RunState::Faulted | RunState::FaultAcknowledged => "✖",
        RunState::Idle | RunState::Ready => "■",
    }
}

/// "OK", or the worst problem, as text.
pub fn overall_health(view: &View) -> (String, Option<egui::Color32>) {
    let a = &view.alarms;
    if a.active[2] > 0 {
        return ("◆ ALARM".into(), Some(look::ALARM_HIGH));
    }
    if let Some(h) = view
        .machine
        .heartbeats
        .iter()
        .find(|h| h.quality != Quality::Live)
    {
        let (badge, color) = look::quality_badge(h.quality);
        return (format!("{badge} DATA"), Some(color));
    }
    if a.active[1] + a.active[0] > 0 {
        return ("▲ WARNING".into(), Some(look::ALARM_MEDIUM));
    }
    ("✔ OK".into(), None)
}

pub fn ui(ui: &mut Ui, view: &View) {
    let run = &view.run;
    let slow = &view.run_slow;
    ui.horizontal(|ui| {
        let state = format!("{} {}", state_icon(run.state), run.state.label());
        let abnormal = matches!(
            run.state,
            RunState::Suspended
                | RunState::Aborted
                | RunState::Faulted
                | RunState::FaultAcknowledged
        );
        let mut text = RichText::new(state).strong().size(20.0);
        if abnormal {
            text = text.color(if run.state == RunState::Suspended {
                look::ALARM_MEDIUM
            } else {
                look::ALARM_HIGH
            });
        }
        ui.label(text).on_hover_text(run.cause.as_str());
        ui.separator();
        ui.label(format!(
            "Recipe {}",
            if run.recipe_id.as_str().is_empty() {
                "—"
            } else {
                run.recipe_id.as_str()
            }
        ));
        ui.separator();
        ui.label(format!(
            "Lot {}  Wafer {}  Slot {}",
            or_dash(run.lot.as_str()),
            or_dash(run.wafer.as_str()),
            run.slot
        ));
        ui.separator();
        let eta = if slow.state.in_run() && slow.dies_done > 0 {
            format!("  ETA {}", mmss(slow.eta_ms))
        } else {
            String::new()
        };
        ui.label(format!("Dies {}/{}{eta}", slow.dies_done, slow.dies_total));
        ui.separator();
        for (i, p) in [Priority::High, Priority::Medium, Priority::Low]
            .into_iter()
            .enumerate()
        {
            let idx = 2 - i;
            let n = view.alarms.active[idx]
                + view.alarms.unacknowledged[idx].saturating_sub(view.alarms.active[idx]);
            let unack = view.alarms.unacknowledged[idx] > 0;
            let label = format!(
                "{}{} {}",
                look::priority_badge(p),
                if unack { " ●" } else { "" },
                n
            );
            let mut t = RichText::new(label);
            if n > 0 {
                t = t.color(look::priority_color(p)).strong();
            }
            ui.label(t).on_hover_text(if unack {
                "unacknowledged alarms"
            } else {
                "active alarms"
            });
        }
        ui.separator();
        let (health, color) = overall_health(view);
        let mut t = RichText::new(format!("Health {health}"));
        if let Some(c) = color {
            t = t.color(c).strong();
        }
        ui.label(t);
        ui.separator();
        ui.label(format!("Operator {}", or_dash(run.operator.as_str())));
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            ui.label(if view.tick { "◐" } else { "◑" })
                .on_hover_text("liveness: advances every second");
            ui.label(RichText::new(&view.clock).monospace());
        });
    });
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() {
        "—"
    } else {
        s
    }
}

pub fn mmss(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}", s / 60, s % 60)
}
