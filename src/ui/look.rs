//! The look (ISA-101): neutral grey; colour only for abnormal states and
//! never the only cue. Alarm colours mean alarms only; data-quality
//! problems have their own muted blue and their own icons.

use crate::monitor::{AlarmState, Priority, Quality};
use egui::Color32;

pub const BACKGROUND: Color32 = Color32::from_rgb(0xC8, 0xC8, 0xC8);
pub const PANEL: Color32 = Color32::from_rgb(0xD4, 0xD4, 0xD4);
pub const TEXT: Color32 = Color32::from_rgb(0x20, 0x20, 0x20);
pub const DIM: Color32 = Color32::from_rgb(0x60, 0x60, 0x60);
pub const ALARM_HIGH: Color32 = Color32::from_rgb(0xD0, 0x20, 0x20);
pub const ALARM_MEDIUM: Color32 = Color32::from_rgb(0xE8, 0x8A, 0x00);
pub const ALARM_LOW: Color32 = Color32::from_rgb(0xD8, 0xC8, 0x00);
/// Data quality (stale, lost, invalid): not an alarm colour.
pub const QUALITY: Color32 = Color32::from_rgb(0x4A, 0x5F, 0x9A);

pub fn apply(ctx: &egui::Context) {
    // The proportional font has no geometric shapes (◆ ▲ ● ◌ ⊘): fall
    // back to the bundled monospace font, which has them.
    let mut fonts = egui::FontDefinitions::default();
    if let Some(p) = fonts.families.get_mut(&egui::FontFamily::Proportional) {
        p.push("Hack".to_owned());
    }
    ctx.set_fonts(fonts);
    let mut v = egui::Visuals::light();
    v.panel_fill = PANEL;
    v.window_fill = PANEL;
    v.extreme_bg_color = Color32::from_rgb(0xE4, 0xE4, 0xE4);
    v.faint_bg_color = Color32::from_rgb(0xCC, 0xCC, 0xCC);
    v.override_text_color = Some(TEXT);
    ctx.set_visuals(v);
}

pub fn priority_color(p: Priority) -> Color32 {
    match p {
        Priority::High => ALARM_HIGH,
        Priority::Medium => ALARM_MEDIUM,
        Priority::Low => ALARM_LOW,
    }
}

/// Shape + number + word, so priority never relies on colour.
pub fn priority_badge(p: Priority) -> String {
    match p {
        Priority::High => "◆ 3 HIGH".into(),
        Priority::Medium => "▲ 2 MED".into(),
        Priority::Low => "■ 1 LOW".into(),
    }
}

pub fn alarm_state_text(s: AlarmState) -> &'static str {
    match s {
        AlarmState::Normal => "normal",
        AlarmState::UnackActive => "● UNACK ACTIVE",
        AlarmState::AckActive => "○ ACK ACTIVE",
        AlarmState::ReturnedUnack => "◌ RETURNED UNACK",
    }
}

/// Icon and word for a data quality, drawn apart from alarms.
pub fn quality_badge(q: Quality) -> (&'static str, Color32) {
    match q {
        Quality::Live => ("✔ LIVE", DIM),
        Quality::NoValue => ("… NO VALUE", QUALITY),
        Quality::Stale => ("◌ STALE", QUALITY),
        Quality::Lost => ("⊘ LOST", QUALITY),
        Quality::Invalid => ("✖ INVALID", QUALITY),
    }
}
