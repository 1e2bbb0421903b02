//! What the operator's clicks ask for. Panels push commands during the UI
//! pass; the app applies them afterwards.

use crate::run::RunCommand;
use std::path::PathBuf;
use std::time::Duration;

/// A password on its way from a panel to the station: never printed.
#[derive(Clone, PartialEq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum UiCommand {
    LoadRecipe {
        path: PathBuf,
        lot: String,
        wafer: String,
        slot: u32,
    },
    Run(RunCommand),
    /// Dock the carrier in the load port and map its slots.
    LoadCarrier,
    /// Run these slots of the docked carrier as lot `lot`, with the recipe
    /// chosen in Run control.
    StartLot {
        lot: String,
        slots: Vec<u32>,
        /// Wafer ids typed by the operator, by slot.
        typed_ids: Vec<(u32, String)>,
    },
    /// The lot ends once the wafer in hand is done.
    StopLotAfterWafer,
    /// The wafer in hand is aborted (results kept), the lot ends.
    AbortLot,
    /// Read lot `0` for the lot view.
    ShowLot(String),
    /// Teach the loaded recipe's golden die (an engineer's action).
    TeachGolden,
    /// An administrator's user changes (the Users tab).
    AddUser {
        name: String,
        role: crate::access::Role,
        password: Secret,
    },
    SetUserRole {
        name: String,
        role: crate::access::Role,
    },
    SetUserDisabled {
        name: String,
        disabled: bool,
    },
    SetUserPassword {
        name: String,
        password: Secret,
    },
    /// Replace a recipe file with this text (an engineer's edit);
    /// `opened`: its text when the editor read it.
    SaveRecipe {
        path: PathBuf,
        opened: String,
        text: String,
    },
    AckAlarm(u32),
    AckAllAlarms,
    /// Shelve for a time within the alarm's maximum, with a reason.
    ShelveAlarm {
        alid: u32,
        duration: Duration,
        reason: String,
    },
    UnshelveAlarm(u32),
    /// Simulator controls (maintenance use).
    FreezeHeartbeat(crate::machine::Subsystem, bool),
    VacuumLoss(bool),
    SelectDie(Option<u32>),
    /// Show a panel (an alarm's link to where it is handled).
    OpenTab(super::app::Tab),
    /// The operator's ON-LINE (true) / OFF-LINE switch of the host link.
    HostOnline(bool),
    /// The operator's REMOTE (true) / LOCAL switch of the host link.
    HostRemote(bool),
    /// The oldest message from the host has been read.
    AckHostMessage,
    /// Export a recorded run to a file (off the UI thread).
    ExportRun {
        run: Box<crate::store::query::RunRow>,
        format: crate::store::export::Format,
    },
}
