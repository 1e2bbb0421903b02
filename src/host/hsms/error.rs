//! What can go wrong for a caller of the HSMS handle.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HsmsError {
    /// No reply within T3 (the GEM layer answers with S9F9).
    T3Timeout {
        stream: u8,
        function: u8,
        system: u32,
    },
    /// No control response within T6; the connection was closed.
    T6Timeout,
    /// The session is not SELECTED: data messages cannot be sent.
    NotSelected,
    /// The session is not connected.
    NotConnected,
    /// A bounded queue is full (the peer or the application is not keeping
    /// up); the message was not queued.
    QueueFull,
    /// The connection ended while waiting for a reply or response.
    ConnectionLost,
    /// Another control transaction (select, deselect, linktest) is open.
    ControlBusy,
    /// The peer answered with a Reject.req (E37 reason code).
    Rejected { reason: u8 },
    /// The peer refused the select or deselect (E37 status code).
    Refused { status: u8 },
    /// The body does not fit a message under the configured maximum.
    TooLong { bytes: usize, max: u32 },
    /// The session task has ended (shut down, or all handles dropped).
    Closed,
}

impl fmt::Display for HsmsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HsmsError::T3Timeout {
                stream,
                function,
                system,
            } => write!(
                f,
                "T3 reply timeout: no reply to S{stream}F{function} (system bytes {system:#010x})"
            ),
            HsmsError::T6Timeout => {
                write!(f, "T6 control transaction timeout: connection closed")
            }
            HsmsError::NotSelected => write!(f, "HSMS session not selected"),
            HsmsError::NotConnected => write!(f, "HSMS session not connected"),
            HsmsError::QueueFull => write!(f, "HSMS queue full: message not sent"),
            HsmsError::ConnectionLost => {
                write!(f, "HSMS connection lost before the answer came")
            }
            HsmsError::ControlBusy => {
                write!(f, "another HSMS control transaction is open")
            }
            HsmsError::Rejected { reason } => {
                write!(f, "rejected by the peer (Reject.req reason {reason})")
            }
            HsmsError::Refused { status } => {
                write!(f, "refused by the peer (status {status})")
            }
            HsmsError::TooLong { bytes, max } => write!(
                f,
                "message body of {bytes} bytes is over the limit of {max} bytes per message"
            ),
            HsmsError::Closed => write!(f, "HSMS session closed"),
        }
    }
}

impl std::error::Error for HsmsError {}
