//! What the session hands the application: data messages, state changes.

use std::fmt;

/// One SECS-II data message; the body is the encoded SECS-II item, opaque
/// to HSMS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataMessage {
    /// The session (device) id in its header. Not checked here: a wrong
    /// one is for the GEM layer to answer (S9F1).
    pub session_id: u16,
    pub stream: u8,
    pub function: u8,
    /// A reply is expected.
    pub w_bit: bool,
    /// The transaction's system bytes; a reply carries its primary's.
    pub system: u32,
    pub body: Vec<u8>,
}

impl DataMessage {
    /// The message's 10-byte HSMS header as it is on the wire (what S9
    /// error messages carry as MHEAD/SHEAD).
    pub fn header_bytes(&self) -> [u8; super::frame::HEADER_BYTES] {
        super::frame::Header::data(
            self.session_id,
            self.stream,
            self.function,
            self.w_bit,
            self.system,
        )
        .to_bytes()
    }
}

impl fmt::Display for DataMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "S{}F{}{} (system {:#010x}, {} bytes)",
            self.stream,
            self.function,
            if self.w_bit { " W" } else { "" },
            self.system,
            self.body.len()
        )
    }
}

/// The E37 connection state (CONNECTED has the two substates).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    NotConnected,
    /// CONNECTED / NOT SELECTED: control messages only; T7 runs.
    NotSelected,
    /// CONNECTED / SELECTED: data messages flow.
    Selected,
}

impl fmt::Display for ConnectionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectionState::NotConnected => "NOT CONNECTED",
            ConnectionState::NotSelected => "CONNECTED / NOT SELECTED",
            ConnectionState::Selected => "SELECTED",
        })
    }
}

/// What the session tells the application, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HsmsEvent {
    /// A primary message from the peer (odd function). With the W-bit the
    /// application answers it with `HsmsHandle::reply`.
    Primary(DataMessage),
    /// The connection state changed (also on `HsmsHandle::state_watch`).
    State(ConnectionState),
}
