//! The Host panel: the fab host's link (SECS/GEM) as the operator and the
//! automation engineer see it. Communication and control state in words;
//! the operator's ON-LINE/OFF-LINE and LOCAL/REMOTE switches (E30: the
//! operator keeps control in LOCAL); the host's terminal messages to
//! acknowledge; the newest lines of the SECS log.

use super::command::UiCommand;
use crate::host::gem::secs_log::SecsLogLine;
use crate::host::gem::terminal::TerminalMessage;
use crate::host::gem::{CommState, ControlState, Switches};
use egui::{RichText, Ui};

/// Lines of the SECS log the panel shows (the file has them all).
pub const LOG_LINES: usize = 200;

/// What the panel and the status strip read of GEM in one frame.
#[derive(Clone, Debug)]
pub struct HostView {
    pub communication: CommState,
    pub control: ControlState,
    pub switches: Switches,
    /// ns since the GEM task's latest tick (`hot::now_ns` based).
    pub age_ns: u64,
    pub terminal: Vec<TerminalMessage>,
    pub log: Vec<SecsLogLine>,
    /// Log lines not written to the file so far (full queue or write
    /// errors): shown, never silently lost.
    pub log_not_written: u64,
    /// Where the station listens for the host (HSMS passive); `None` when
    /// it connects to the host (active).
    pub listening: Option<std::net::SocketAddr>,
}

/// Past this the GEM task is taken as stopped: its tick is 50 ms.
pub const GEM_QUIET_AFTER_NS: u64 = 2_000_000_000;

impl HostView {
    pub fn stopped(&self) -> bool {
        self.age_ns > GEM_QUIET_AFTER_NS
    }
}

/// "Host COMMUNICATING · ONLINE REMOTE" for the status strip, or the GEM
/// task's silence in words.
pub fn strip_text(h: &HostView) -> String {
    if h.stopped() {
        return format!("Host ⊘ GEM not responding ({} s)", h.age_ns / 1_000_000_000);
    }
    let link = match h.communication {
        CommState::Communicating => "✔ COMMUNICATING",
        CommState::NotCommunicating => "⊘ NOT COMMUNICATING",
        CommState::Disabled => "■ DISABLED",
    };
    format!("Host {link} · {}", h.control.name())
}

pub fn ui(
    ui: &mut Ui,
    host: Option<&HostView>,
    permits: &super::session::Permits,
    out: &mut Vec<UiCommand>,
) {
    use super::session::permitted_button;
    use crate::access::Action;
    ui.heading("Host (SECS/GEM)");
    let Some(h) = host else {
        ui.label(
            "No host link: start the station with --gem ADDR:PORT (listen) or \
             --gem-active HOST:PORT (connect). docs/gem.md says what the host can do.",
        );
        return;
    };
    ui.label(RichText::new(strip_text(h)).strong());
    ui.label(match h.listening {
        Some(addr) => format!("HSMS passive: listening for the host on {addr}"),
        None => "HSMS active: connecting to the host".to_owned(),
    });
    ui.horizontal(|ui| {
        ui.label("On-line switch:");
        ui.label(
            RichText::new(if h.switches.online {
                "ON-LINE"
            } else {
                "OFF-LINE"
            })
            .strong(),
        );
        let (verb, to) = if h.switches.online {
            ("Go off-line", false)
        } else {
            ("Go on-line", true)
        };
        if permitted_button(ui, permits, Action::HostOnlineOffline, verb).clicked() {
            out.push(UiCommand::HostOnline(to));
        }
    });
    ui.horizontal(|ui| {
        ui.label("Control:");
        ui.label(RichText::new(if h.switches.remote { "REMOTE" } else { "LOCAL" }).strong());
        let (verb, to) = if h.switches.remote {
            ("Take local control", false)
        } else {
            ("Give control to the host", true)
        };
        if permitted_button(ui, permits, Action::HostOnlineOffline, verb)
            .on_hover_text("in LOCAL the host can watch but every remote command is refused")
            .clicked()
        {
            out.push(UiCommand::HostRemote(to));
        }
    });
    ui.separator();
    ui.label(RichText::new("Messages from the host").strong());
    if h.terminal.is_empty() {
        ui.label("None waiting.");
    }
    for (i, m) in h.terminal.iter().enumerate() {
        ui.horizontal(|ui| {
            ui.label(format!("✉ {}", m.text));
            // The oldest is acknowledged first (E30 terminal services).
            if i == 0 && ui.button("Acknowledge message").clicked() {
                out.push(UiCommand::AckHostMessage);
            }
        });
    }
    ui.separator();
    ui.horizontal(|ui| {
        ui.label(RichText::new("SECS log (newest last)").strong());
        if h.log_not_written > 0 {
            ui.label(
                RichText::new(format!(
                    "✖ {} lines not written to the log file",
                    h.log_not_written
                ))
                .strong(),
            );
        }
    });
    egui::ScrollArea::vertical()
        .id_salt("secs_log")
        .stick_to_bottom(true)
        .max_height(ui.available_height())
        .show(ui, |ui| {
            for l in &h.log {
                ui.label(RichText::new(l.to_string()).monospace().size(11.0));
            }
        });
}
