//! The status strip: always on top, never moving. Run state as icon and
//! word, run id, recipe, lot/wafer/slot, progress, alarm counts by priority with an
//! unacknowledged marker, overall health, who is signed in, clock and a liveness
//! tick that advances every second.

use super::look;
use super::view::View;
use crate::monitor::{AlarmState, Priority, Quality, Shelving};
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

/// How many alarms of one priority are in the list, and how many of them
/// are unacknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlarmCount {
    pub priority: Priority,
    /// Active (acknowledged or not) plus returned-unacknowledged; shelved
    /// alarms are not counted (they are out of the operator's list).
    pub listed: u16,
    pub unacknowledged: u16,
}

/// Alarm counts by priority, highest first, counted from the entries
/// themselves (an active acknowledged alarm and a returned unacknowledged
/// one are both in the list; no arithmetic on the totals can tell them
/// apart).
pub fn alarm_counts(a: &crate::monitor::AlarmSnapshot) -> [AlarmCount; 3] {
    let mut counts = [Priority::High, Priority::Medium, Priority::Low].map(|priority| AlarmCount {
        priority,
        listed: 0,
        unacknowledged: 0,
    });
    for e in a.entries() {
        if e.shelving != Shelving::None || e.state == AlarmState::Normal {
            continue;
        }
        let c = &mut counts[3 - e.priority.clamp(1, 3) as usize];
        c.listed += 1;
        if e.state.is_unacknowledged() {
            c.unacknowledged += 1;
        }
    }
    counts
}

/// "◆ High 3 (2 unack)": the word names the priority, the number is the
/// count, so "3 HIGH" cannot be read as priority 3 or as a count.
pub fn alarm_count_text(c: &AlarmCount) -> String {
    let (shape, word) = match c.priority {
        Priority::High => ("◆", "High"),
        Priority::Medium => ("▲", "Medium"),
        Priority::Low => ("■", "Low"),
    };
    if c.unacknowledged > 0 {
        format!("{shape} {word} {} ({} unack)", c.listed, c.unacknowledged)
    } else {
        format!("{shape} {word} {}", c.listed)
    }
}

/// "OK", or the worst problem, as text.
pub fn overall_health(view: &View) -> (String, Option<egui::Color32>) {
    let a = &view.alarms;
    if a.evaluator_stopped {
        return ("⊘ ALARMS STOPPED".into(), Some(look::ALARM_HIGH));
    }
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
        // Icon and word, never an alarm colour (HMI rule 2: alarm colours
        // mean alarms only; an aborted or faulted run is a state, and the
        // alarm behind it is counted, in its colour, further along).
        let state = format!("{} {}", state_icon(run.state), run.state.label());
        ui.label(RichText::new(state).strong().size(20.0))
            .on_hover_text(run.cause.as_str());
        ui.label(run_id_text(run.run_id));
        if let Some(quiet) = run_quiet_text(run, view.now_ns) {
            ui.label(RichText::new(quiet).color(look::QUALITY).strong());
        }
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
        if view.lot.running {
            // Changes once per wafer: well within rule 8.
            ui.label(format!(
                "— wafer {} of {} of the lot",
                (view.lot.wafers_done + 1).min(view.lot.wafers_total),
                view.lot.wafers_total
            ));
        }
        ui.separator();
        let eta = if slow.state.in_run() && slow.dies_done > 0 {
            format!("  ETA {}", mmss(slow.eta_ms))
        } else {
            String::new()
        };
        ui.label(format!("Dies {}/{}{eta}", slow.dies_done, slow.dies_total));
        ui.separator();
        for c in alarm_counts(&view.alarms) {
            let label = alarm_count_text(&c);
            let mut t = RichText::new(label);
            if c.listed > 0 {
                t = t.color(look::priority_color(c.priority)).strong();
            }
            ui.label(t).on_hover_text(
                "alarms in the list at this priority (active or returned, not shelved); \
                 in brackets: how many are unacknowledged",
            );
        }
        ui.separator();
        let (health, color) = overall_health(view);
        let mut t = RichText::new(format!("Health {health}"));
        if let Some(c) = color {
            t = t.color(c).strong();
        }
        ui.label(t);
        if let Some(h) = &view.host {
            ui.separator();
            let mut t = RichText::new(super::host::strip_text(h));
            if h.stopped() || h.communication != crate::host::gem::CommState::Communicating {
                // A link problem is data quality, not an alarm (rule 10).
                t = t.color(look::QUALITY).strong();
            }
            ui.label(t);
            if !h.terminal.is_empty() {
                ui.label(RichText::new(format!("✉ {} from host", h.terminal.len())).strong());
            }
        }
        ui.separator();
        // Who is signed in at this window (the run's operator is who
        // started it: on the Run summary and in the records).
        match &view.signed_in {
            Some(who) => ui.label(RichText::new(format!("👤 Signed in: {who}")).strong()),
            None => ui.label("👤 Nobody signed in"),
        };
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            ui.label(if view.tick { "◐" } else { "◑" })
                .on_hover_text("liveness: advances every second");
            ui.label(RichText::new(&view.clock).monospace());
        });
    });
}

/// While a run should be moving, the engine publishes at every die; a
/// run picture that has not changed for this long is shown with its age
/// so a stuck engine never looks like a running one.
pub const RUN_QUIET_AFTER_NS: u64 = 10_000_000_000;

/// "⊘ no update for 12 s" when a moving run's snapshot is that old.
pub fn run_quiet_text(run: &crate::run::RunSnapshot, now_ns: u64) -> Option<String> {
    let moving = matches!(
        run.state,
        RunState::Running | RunState::Pausing | RunState::Stopping | RunState::Aborting
    );
    let age = now_ns.saturating_sub(run.taken_ns);
    (moving && run.taken_ns > 0 && age > RUN_QUIET_AFTER_NS)
        .then(|| format!("⊘ no update for {} s", age / 1_000_000_000))
}

/// "Run 12", or "Run —" before the first run.
pub fn run_id_text(run_id: u64) -> String {
    if run_id == 0 {
        "Run —".into()
    } else {
        format!("Run {run_id}")
    }
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
