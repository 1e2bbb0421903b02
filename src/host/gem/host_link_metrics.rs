//! GEM's states for the Prometheus endpoint (`waferscope_gem_*`): the
//! metrics read them through [`crate::metrics::HostLinkSource`] at scrape
//! time. `Station::start_gem` registers the handle, so every station with a
//! host link exposes them.

use super::{CommState, ControlState, GemHandle};
use crate::metrics::{HostLinkReading, HostLinkSource, StateReading};

const COMMUNICATION_STATES: [&str; 3] = [
    CommState::Disabled.name(),
    CommState::NotCommunicating.name(),
    CommState::Communicating.name(),
];

const CONTROL_STATES: [&str; 5] = [
    ControlState::EquipmentOffline.name(),
    ControlState::AttemptOnline.name(),
    ControlState::HostOffline.name(),
    ControlState::OnlineLocal.name(),
    ControlState::OnlineRemote.name(),
];

impl HostLinkSource for GemHandle {
    fn read(&self) -> HostLinkReading {
        HostLinkReading {
            communication: StateReading {
                states: &COMMUNICATION_STATES,
                current: self.communication_state().name(),
            },
            control: StateReading {
                states: &CONTROL_STATES,
                current: self.control_state().name(),
            },
            taken_ns: self.alive_ns(),
        }
    }
}
