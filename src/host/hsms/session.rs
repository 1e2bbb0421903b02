//! The session task: NOT CONNECTED. Passive: waits for the host on the
//! listening socket; active: connects, T5 apart. Each connection then runs
//! in `connection` until it ends, and the task goes back to NOT CONNECTED
//! to listen or connect again, until shut down.

use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::connection::{Connection, Ended};
use super::{describe, ConnectionState, HsmsError, HsmsEvent, HsmsMode, Shared};

/// What a handle asks of the session task.
pub(crate) enum Command {
    Linktest(oneshot::Sender<Result<(), HsmsError>>),
    Deselect(oneshot::Sender<Result<(), HsmsError>>),
    Separate(oneshot::Sender<Result<(), HsmsError>>),
    Shutdown,
}

impl Command {
    /// Answers a command that needs a connection while there is none.
    /// `true` for Shutdown.
    fn refuse_unconnected(self) -> bool {
        let done = match self {
            Command::Shutdown => return true,
            Command::Linktest(done) | Command::Deselect(done) | Command::Separate(done) => done,
        };
        if done.send(Err(HsmsError::NotConnected)).is_err() {
            tracing::debug!("HSMS command's caller gone before the answer");
        }
        false
    }
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    listener: Option<TcpListener>,
    mut commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<HsmsEvent>,
) {
    let mode = shared.config.mode;
    tracing::info!("HSMS session {}", describe(&mode));
    // Active: when the last connect attempt started (T5 counts from it).
    let mut last_attempt: Option<Instant> = None;
    loop {
        let stream = match (&mode, &listener) {
            (HsmsMode::Passive { .. }, Some(listener)) => {
                match accept(listener, &mut commands).await {
                    Some(stream) => stream,
                    None => break,
                }
            }
            (HsmsMode::Active { connect }, _) => {
                match connect_t5(*connect, &shared, &mut last_attempt, &mut commands).await {
                    Some(stream) => stream,
                    None => break,
                }
            }
            (HsmsMode::Passive { .. }, None) => {
                unreachable!("Hsms::start binds the passive listener")
            }
        };
        let active = matches!(mode, HsmsMode::Active { .. });
        let ended = Connection::open(&shared, &events, stream, active)
            .run(&mut commands, listener.as_ref())
            .await;
        if ended == Ended::Shutdown {
            break;
        }
    }
    shared.set_state(ConnectionState::NotConnected, &events);
    tracing::info!("HSMS session ended");
}

/// Waits for the host to connect. `None`: shut down.
async fn accept(
    listener: &TcpListener,
    commands: &mut mpsc::Receiver<Command>,
) -> Option<TcpStream> {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    tracing::info!("HSMS connection from {peer}");
                    return Some(stream);
                }
                Err(e) => {
                    // E.g. out of file descriptors: back off rather than
                    // spin, and keep listening.
                    tracing::warn!("HSMS accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            command = commands.recv() => match command {
                Some(command) => {
                    if command.refuse_unconnected() {
                        return None;
                    }
                }
                // Every handle dropped: nobody can use the session.
                None => return None,
            },
        }
    }
}

/// Connects to the passive side, T5 after the previous attempt (and after a
/// connection ended). Each attempt is bounded by T6. `None`: shut down.
async fn connect_t5(
    addr: std::net::SocketAddr,
    shared: &Shared,
    last_attempt: &mut Option<Instant>,
    commands: &mut mpsc::Receiver<Command>,
) -> Option<TcpStream> {
    let timers = shared.config.timers;
    loop {
        let start = match *last_attempt {
            Some(last) => last + timers.t5,
            None => Instant::now(),
        };
        tokio::select! {
            _ = tokio::time::sleep_until(start) => {}
            command = commands.recv() => {
                match command {
                    Some(command) => {
                        if command.refuse_unconnected() {
                            return None;
                        }
                    }
                    None => return None,
                }
                continue;
            }
        }
        *last_attempt = Some(Instant::now());
        match tokio::time::timeout(timers.t6, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                tracing::info!("HSMS connected to {addr}");
                return Some(stream);
            }
            Ok(Err(e)) => tracing::info!("HSMS connect to {addr} failed: {e}; again in T5"),
            Err(_) => tracing::info!("HSMS connect to {addr}: no answer within T6; again in T5"),
        }
    }
}
