//! The control state (E30 §4.3): OFF-LINE (EQUIPMENT OFF-LINE, ATTEMPT
//! ON-LINE, HOST OFF-LINE) and ON-LINE (LOCAL, REMOTE), driven by the
//! operator's two switches and the host's S1F15/S1F17.
//!
//! Choices E30 leaves to the equipment (docs/gem.md):
//! - At start, with the online switch on, the equipment is HOST OFF-LINE:
//!   the host takes it on-line with S1F17. With the switch off it is
//!   EQUIPMENT OFF-LINE.
//! - ATTEMPT ON-LINE (the operator switched on-line) sends S1F1; when the
//!   host does not answer S1F2 the equipment goes to HOST OFF-LINE, so the
//!   host can still take it on-line when it comes.
//! - The switches are persisted (see `persisted.rs`) and restored at start.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlState {
    EquipmentOffline,
    AttemptOnline,
    HostOffline,
    OnlineLocal,
    OnlineRemote,
}

impl ControlState {
    /// The ControlState status variable's value, E30's numbering.
    pub fn code(self) -> u32 {
        match self {
            ControlState::EquipmentOffline => 1,
            ControlState::AttemptOnline => 2,
            ControlState::HostOffline => 3,
            ControlState::OnlineLocal => 4,
            ControlState::OnlineRemote => 5,
        }
    }

    pub fn from_code(code: u32) -> Option<ControlState> {
        Some(match code {
            1 => ControlState::EquipmentOffline,
            2 => ControlState::AttemptOnline,
            3 => ControlState::HostOffline,
            4 => ControlState::OnlineLocal,
            5 => ControlState::OnlineRemote,
            _ => return None,
        })
    }

    pub const fn name(self) -> &'static str {
        match self {
            ControlState::EquipmentOffline => "EQUIPMENT OFFLINE",
            ControlState::AttemptOnline => "ATTEMPT ONLINE",
            ControlState::HostOffline => "HOST OFFLINE",
            ControlState::OnlineLocal => "ONLINE LOCAL",
            ControlState::OnlineRemote => "ONLINE REMOTE",
        }
    }

    pub fn is_online(self) -> bool {
        matches!(self, ControlState::OnlineLocal | ControlState::OnlineRemote)
    }
}

/// The operator's switches on the equipment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Switches {
    /// ON-LINE (true) / OFF-LINE.
    pub online: bool,
    /// REMOTE (true): the host may command; LOCAL: the operator keeps
    /// control and every remote command is refused.
    pub remote: bool,
}

impl Default for Switches {
    /// On-line and LOCAL: a fresh station talks to the host but takes no
    /// commands until the operator hands control over.
    fn default() -> Switches {
        Switches {
            online: true,
            remote: false,
        }
    }
}

/// ONLACK (S1F18).
pub const ONLACK_OK: u8 = 0;
pub const ONLACK_REFUSED: u8 = 1;
pub const ONLACK_ALREADY: u8 = 2;
/// OFLACK (S1F16): 0 acknowledged (the only value E5 defines).
pub const OFLACK_OK: u8 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Control {
    pub state: ControlState,
    pub switches: Switches,
}

impl Control {
    pub fn new(switches: Switches) -> Control {
        Control {
            state: if switches.online {
                ControlState::HostOffline
            } else {
                ControlState::EquipmentOffline
            },
            switches,
        }
    }

    fn online_state(&self) -> ControlState {
        if self.switches.remote {
            ControlState::OnlineRemote
        } else {
            ControlState::OnlineLocal
        }
    }

    /// The host's S1F17: ONLACK.
    pub fn host_online(&mut self) -> u8 {
        match self.state {
            ControlState::HostOffline => {
                self.state = self.online_state();
                ONLACK_OK
            }
            ControlState::OnlineLocal | ControlState::OnlineRemote => ONLACK_ALREADY,
            // The operator has the equipment off-line (or is bringing it
            // on-line themselves): the host may not override.
            ControlState::EquipmentOffline | ControlState::AttemptOnline => ONLACK_REFUSED,
        }
    }

    /// The host's S1F15 (answered only while on-line): OFLACK.
    pub fn host_offline(&mut self) -> u8 {
        if self.state.is_online() {
            self.state = ControlState::HostOffline;
        }
        OFLACK_OK
    }

    /// The operator's on-line switch. Returns true when the equipment is
    /// now ATTEMPT ON-LINE and must ask the host (S1F1).
    pub fn operator_online(&mut self, online: bool) -> bool {
        self.switches.online = online;
        if !online {
            self.state = ControlState::EquipmentOffline;
            return false;
        }
        if self.state == ControlState::EquipmentOffline {
            self.state = ControlState::AttemptOnline;
            return true;
        }
        false
    }

    /// How ATTEMPT ON-LINE ended: the host answered S1F2 (`true`) or not.
    pub fn attempt_finished(&mut self, host_answered: bool) {
        if self.state == ControlState::AttemptOnline {
            self.state = if host_answered {
                self.online_state()
            } else {
                ControlState::HostOffline
            };
        }
    }

    /// The operator's local/remote switch.
    pub fn operator_remote(&mut self, remote: bool) {
        self.switches.remote = remote;
        if self.state.is_online() {
            self.state = self.online_state();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ControlState as S;

    #[test]
    fn host_and_operator_transitions() {
        let mut c = Control::new(Switches {
            online: true,
            remote: false,
        });
        assert_eq!(c.state, S::HostOffline);
        assert_eq!(c.host_online(), ONLACK_OK);
        assert_eq!(c.state, S::OnlineLocal);
        assert_eq!(c.host_online(), ONLACK_ALREADY);
        c.operator_remote(true);
        assert_eq!(c.state, S::OnlineRemote);
        assert_eq!(c.host_offline(), OFLACK_OK);
        assert_eq!(c.state, S::HostOffline);
        // The operator's switch wins over the host.
        assert!(!c.operator_online(false));
        assert_eq!(c.state, S::EquipmentOffline);
        assert_eq!(c.host_online(), ONLACK_REFUSED);
        assert_eq!(c.state, S::EquipmentOffline);
        assert!(c.operator_online(true));
        assert_eq!(c.state, S::AttemptOnline);
        assert_eq!(c.host_online(), ONLACK_REFUSED);
        c.attempt_finished(true);
        assert_eq!(c.state, S::OnlineRemote);
        c.operator_online(false);
        c.operator_online(true);
        c.attempt_finished(false);
        assert_eq!(c.state, S::HostOffline);
        // Local/remote while off-line only moves the switch.
        c.operator_remote(false);
        assert_eq!(c.state, S::HostOffline);
        assert_eq!(c.host_online(), ONLACK_OK);
        assert_eq!(c.state, S::OnlineLocal);
        assert_eq!(
            Control::new(Switches {
                online: false,
                remote: true
            })
            .state,
            S::EquipmentOffline
        );
        for code in 1..=5 {
            assert_eq!(S::from_code(code).unwrap().code(), code);
        }
        assert_eq!(S::from_code(0), None);
    }
}
