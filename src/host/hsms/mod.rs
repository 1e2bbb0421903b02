//! HSMS (SEMI E37, single session as in E37.1 HSMS-SS): SECS-II data
//! messages over TCP, with the select procedure, linktest, separate, reject
//! and the T3/T5/T6/T7/T8 timers. Bodies are opaque bytes here; the SECS-II
//! codec lives beside this module and does not meet it until GEM.
//!
//! One session task per [`Hsms::start`] holds the connection state. Per TCP
//! connection it reads and decodes messages itself and owns exactly one
//! writer task, the only owner of the socket's write half, fed by a bounded
//! queue that the session task (control messages) and the handles (data
//! messages) share. Every queue is bounded; a full one is an error to the
//! sender.
//!
//! ```text
//! HsmsHandle ──send/request/reply──▶ write queue ──▶ writer task ──▶ socket
//!     │   ▲                                                           │
//!     │   └── reply by system bytes ◀── session task ◀── decode ◀─────┘
//!     └──commands (linktest, deselect, separate, shutdown)──▶ session task
//!                                       session task ──▶ HsmsEvent queue
//! ```
//!
//! - `frame`: the wire format and the decoder.
//! - `timers`, `config`: what the session is set up with.
//! - `session`: NOT CONNECTED — listen (passive) or connect (active), and
//!   again after every disconnect.
//! - `connection`: one TCP connection, NOT SELECTED ⇄ SELECTED.
//! - `handle`: the application's side.

mod config;
mod connection;
mod error;
pub mod frame;
mod handle;
mod message;
mod session;
mod timers;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, watch};

pub use config::{HsmsConfig, HsmsMode};
pub use error::HsmsError;
pub use handle::{HsmsHandle, PendingReply};
pub use message::{ConnectionState, DataMessage, HsmsEvent};
pub use timers::HsmsTimers;

/// Starts HSMS sessions.
pub struct Hsms;

impl Hsms {
    /// Starts the session task on the current tokio runtime. Passive: binds
    /// the listening socket first, so a port in use is an error here (and
    /// port 0 picks a free one: see [`HsmsHandle::local_addr`]). Active: the
    /// first connect attempt is made at once, later ones T5 apart.
    ///
    /// The events receiver gets every primary message and state change; it
    /// is bounded, and what does not fit is dropped with an error in the log,
    /// so the application must keep reading it.
    ///
    /// The session runs until [`HsmsHandle::shutdown`] or until every clone
    /// of the handle is dropped (then it separates and closes as well).
    pub async fn start(
        config: HsmsConfig,
    ) -> std::io::Result<(HsmsHandle, mpsc::Receiver<HsmsEvent>)> {
        let listener = match config.mode {
            HsmsMode::Passive { listen } => Some(TcpListener::bind(listen).await?),
            HsmsMode::Active { .. } => None,
        };
        let local_addr = match &listener {
            Some(listener) => Some(listener.local_addr()?),
            None => None,
        };
        let (state, _) = watch::channel(ConnectionState::NotConnected);
        let shared = Arc::new(Shared {
            config,
            state,
            // Any start value is valid; 1 keeps the first ones easy to read
            // in a trace.
            system: AtomicU32::new(1),
            pending: Mutex::new(HashMap::new()),
            writer: Mutex::new(None),
        });
        let (events_tx, events_rx) = mpsc::channel(config::EVENT_QUEUE);
        let (commands_tx, commands_rx) = mpsc::channel(config::COMMAND_QUEUE);
        let task = tokio::spawn(session::run(
            shared.clone(),
            listener,
            commands_rx,
            events_tx,
        ));
        Ok((
            HsmsHandle::new(shared, commands_tx, task, local_addr),
            events_rx,
        ))
    }
}

/// Who waits for the reply of an open data transaction.
type ReplySender = oneshot::Sender<Result<DataMessage, HsmsError>>;

/// What the session task and the handles share.
pub(crate) struct Shared {
    config: HsmsConfig,
    state: watch::Sender<ConnectionState>,
    /// System bytes counter of this session, for data and control messages.
    system: AtomicU32,
    /// Open data transactions (sent with the W-bit): system bytes → waiter.
    pending: Mutex<HashMap<u32, ReplySender>>,
    /// The current connection's write queue, while it is SELECTED (data
    /// messages are queued only under this lock).
    writer: Mutex<Option<mpsc::Sender<Vec<u8>>>>,
}

impl Shared {
    fn next_system(&self) -> u32 {
        self.system.fetch_add(1, Ordering::Relaxed)
    }

    fn state(&self) -> ConnectionState {
        *self.state.borrow()
    }

    fn pending(&self) -> MutexGuard<'_, HashMap<u32, ReplySender>> {
        // A panic while holding the lock leaves a consistent map (inserts
        // and removes are single calls), so poisoning is ignored.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn writer(&self) -> MutexGuard<'_, Option<mpsc::Sender<Vec<u8>>>> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the state; tells the watchers and (if it changed) the events
    /// receiver.
    fn set_state(&self, new: ConnectionState, events: &mpsc::Sender<HsmsEvent>) {
        let old = self.state.send_replace(new);
        if old == new {
            return;
        }
        tracing::info!("HSMS {old} -> {new}");
        send_event(events, HsmsEvent::State(new));
    }
}

/// Hands an event to the application without waiting: a full queue means
/// the application is stuck, and waiting here would stop the session task
/// from answering linktests and delivering replies too.
fn send_event(events: &mpsc::Sender<HsmsEvent>, event: HsmsEvent) {
    if let Err(e) = events.try_send(event) {
        match e {
            mpsc::error::TrySendError::Full(event) => {
                tracing::error!("HSMS event queue full: dropped {event:?}")
            }
            mpsc::error::TrySendError::Closed(event) => {
                tracing::warn!("HSMS events receiver gone: dropped {event:?}")
            }
        }
    }
}

/// The address a passive session listens on, for logs.
fn describe(mode: &HsmsMode) -> String {
    match mode {
        HsmsMode::Passive { listen } => format!("passive on {listen}"),
        HsmsMode::Active { connect } => format!("active to {connect}"),
    }
}
