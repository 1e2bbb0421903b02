//! How one HSMS session is set up.

use std::net::SocketAddr;
use std::time::Duration;

use super::timers::HsmsTimers;

/// Which side opens the TCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HsmsMode {
    /// Listen on `listen` and wait for the host to connect and select
    /// (equipment's usual role; the default). Listens again after every
    /// disconnect.
    Passive { listen: SocketAddr },
    /// Connect to `connect`, select, and reconnect by itself after a
    /// disconnect (T5 between attempts).
    Active { connect: SocketAddr },
}

impl Default for HsmsMode {
    /// Passive on HSMS's customary port 5000, on the loopback interface:
    /// a station listens to the factory network only when configured to.
    fn default() -> HsmsMode {
        HsmsMode::Passive {
            listen: SocketAddr::from(([127, 0, 0, 1], 5000)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HsmsConfig {
    pub mode: HsmsMode,
    /// The session (device) id put in our data messages.
    pub session_id: u16,
    pub timers: HsmsTimers,
    /// The largest message accepted (header plus body, what the length
    /// field counts); a longer one closes the connection.
    pub max_message_bytes: u32,
    /// Send a Linktest.req this often while connected (none: only answer
    /// the peer's).
    pub linktest_period: Option<Duration>,
}

impl Default for HsmsConfig {
    fn default() -> HsmsConfig {
        HsmsConfig {
            mode: HsmsMode::default(),
            session_id: 0,
            timers: HsmsTimers::default(),
            // Far above any message this station sends or expects (recipes
            // and reports are kilobytes), far below what would hurt.
            max_message_bytes: 16 * 1024 * 1024,
            linktest_period: None,
        }
    }
}

/// Capacity of the queue of frames to one connection's writer task.
pub(crate) const WRITE_QUEUE: usize = 64;
/// Capacity of the queue of events to the application.
pub(crate) const EVENT_QUEUE: usize = 64;
/// Capacity of the queue of commands (linktest, deselect, separate, shutdown)
/// to the session task.
pub(crate) const COMMAND_QUEUE: usize = 16;
