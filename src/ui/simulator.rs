//! Simulator controls (maintenance): inject the faults the real tool can
//! have, to train operators and to test the station.

use super::command::UiCommand;
use super::view::View;
use crate::machine::SUBSYSTEMS;
use crate::monitor::Quality;
use egui::Ui;

/// `sim_io`: whether the machine's I/O is the simulator's (its faults can
/// be injected); on real I/O the panel says so instead of offering buttons
/// that would do nothing.
pub fn ui(ui: &mut Ui, view: &View, sim_io: bool, out: &mut Vec<UiCommand>) {
    ui.heading("Simulator");
    if !sim_io {
        ui.label("This machine's I/O is real (machine configuration): heartbeat and vacuum faults cannot be injected from here.");
        return;
    }
    ui.label("Inject faults into the simulated tool.");
    let button = |ui: &mut Ui, label: String| {
        super::session::permitted_button(
            ui,
            &view.permits,
            crate::access::Action::SimulatorFaults,
            label,
        )
    };
    for s in SUBSYSTEMS {
        let frozen = view.machine.heartbeat(s).quality != Quality::Live;
        let label = if frozen {
            format!("Restore {} heartbeat", s.name())
        } else {
            format!("Freeze {} heartbeat", s.name())
        };
        if button(ui, label).clicked() {
            out.push(UiCommand::FreezeHeartbeat(s, !frozen));
        }
    }
    let vac = view
        .machine
        .signal(crate::machine::Signal::ChuckVacuum)
        .value;
    if vac > 20.0 {
        if button(ui, "Restore chuck vacuum".into()).clicked() {
            out.push(UiCommand::VacuumLoss(false));
        }
    } else if button(ui, "Lose chuck vacuum".into()).clicked() {
        out.push(UiCommand::VacuumLoss(true));
    }
}
