//! The wafer handling system as the lot runner sees it: a load port that
//! docks a carrier (FOUP/cassette) and maps its slots, a robot that moves a
//! wafer between a slot, the pre-aligner and the chuck, and the wafer-id
//! reader at the pre-aligner. Blocking calls (a robot move takes seconds):
//! the lot runner calls them off the async threads.

use std::fmt;

/// Slots of a 300 mm FOUP (SEMI E47.1).
pub const SLOTS: usize = 25;

/// What the mapper saw in one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlotState {
    #[default]
    Empty,
    /// One wafer, seated flat.
    Present,
    /// Two wafers in one slot: the robot would pick both.
    DoubleSlotted,
    /// A wafer resting across two slots: picking it would break it.
    CrossSlotted,
}

impl SlotState {
    /// Whether the robot may pick from the slot.
    pub fn can_pick(self) -> bool {
        self == Self::Present
    }

    pub fn label(self) -> &'static str {
        match self {
            Self::Empty => "empty",
            Self::Present => "wafer",
            Self::DoubleSlotted => "double-slotted",
            Self::CrossSlotted => "cross-slotted",
        }
    }
}

/// A docked carrier and its slot map (slot 1 is index 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarrierMap {
    pub carrier_id: String,
    pub slots: [SlotState; SLOTS],
}

impl CarrierMap {
    /// State of slot `slot` (1-based); `None` outside 1..=25.
    pub fn slot(&self, slot: u32) -> Option<SlotState> {
        (1..=SLOTS as u32)
            .contains(&slot)
            .then(|| self.slots[slot as usize - 1])
    }

    /// Slots holding one wafer each, in order: the default pick.
    pub fn pickable(&self) -> Vec<u32> {
        (1..=SLOTS as u32)
            .filter(|&s| self.slots[s as usize - 1].can_pick())
            .collect()
    }
}

/// Why a handling step failed. The wafer stays where it was before the
/// step (a real robot that faults mid-move holds the wafer on its end
/// effector; an engineer recovers it: the lot stops).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlingError {
    NoCarrier,
    /// The slot cannot be picked from (empty, double- or cross-slotted).
    SlotNotPickable {
        slot: u32,
        state: SlotState,
    },
    /// A move was asked from where no wafer is, or to where one already is.
    WrongPlace(String),
    Robot(String),
    Aligner(String),
    Mapper(String),
}

impl fmt::Display for HandlingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCarrier => write!(f, "no carrier is docked"),
            Self::SlotNotPickable { slot, state } => {
                write!(f, "slot {slot} is {}: not picked", state.label())
            }
            Self::WrongPlace(why) => write!(f, "handling: {why}"),
            Self::Robot(why) => write!(f, "robot fault: {why}"),
            Self::Aligner(why) => write!(f, "pre-aligner fault: {why}"),
            Self::Mapper(why) => write!(f, "mapper fault: {why}"),
        }
    }
}

impl std::error::Error for HandlingError {}

/// A load port with its robot, pre-aligner and id reader.
pub trait LoadPort: Send {
    /// Docks the carrier in the port, opens it and maps its slots.
    fn load_carrier(&mut self) -> Result<CarrierMap, HandlingError>;
    /// The docked carrier's map, if one is docked.
    fn carrier(&self) -> Option<&CarrierMap>;
    /// Closes and undocks the carrier; refused while a wafer is out of it.
    fn unload_carrier(&mut self) -> Result<(), HandlingError>;
    /// Robot: slot → pre-aligner.
    fn slot_to_aligner(&mut self, slot: u32) -> Result<(), HandlingError>;
    /// Pre-aligner: finds the notch and centres the wafer, then reads its
    /// id. `Ok(None)`: aligned, but the id could not be read.
    fn align_and_read_id(&mut self) -> Result<Option<String>, HandlingError>;
    /// Robot: pre-aligner → chuck (the wafer the next run images).
    fn aligner_to_chuck(&mut self) -> Result<(), HandlingError>;
    /// Robot: chuck → the slot the wafer came from.
    fn chuck_to_slot(&mut self, slot: u32) -> Result<(), HandlingError>;
    /// Robot: pre-aligner → slot (a wafer that is not run after all).
    fn aligner_to_slot(&mut self, slot: u32) -> Result<(), HandlingError>;
}
