//! The application's side of a session: send, request (waits up to T3 for
//! the reply), reply, control commands, state, shutdown. Cheap to clone.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::frame::{Frame, Header, HEADER_BYTES};
use super::session::Command;
use super::{ConnectionState, DataMessage, HsmsError, Shared};

#[derive(Clone)]
pub struct HsmsHandle {
    shared: Arc<Shared>,
    commands: mpsc::Sender<Command>,
    /// The session task, taken by the first `shutdown` to wait for it.
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
    local_addr: Option<SocketAddr>,
}

impl HsmsHandle {
    pub(super) fn new(
        shared: Arc<Shared>,
        commands: mpsc::Sender<Command>,
        task: JoinHandle<()>,
        local_addr: Option<SocketAddr>,
    ) -> HsmsHandle {
        HsmsHandle {
            shared,
            commands,
            task: Arc::new(Mutex::new(Some(task))),
            local_addr,
        }
    }

    /// Sends a data message without the W-bit (no reply expected). Queued
    /// for the writer, not yet written, when this returns.
    pub fn send(&self, stream: u8, function: u8, body: Vec<u8>) -> Result<(), HsmsError> {
        self.send_with_system(stream, function, body, self.new_system())
    }

    /// System bytes for a message about to be sent with
    /// [`HsmsHandle::send_with_system`] or [`HsmsHandle::request_with_system`]
    /// (so the caller can log the transaction before it goes out).
    pub fn new_system(&self) -> u32 {
        self.shared.next_system()
    }

    /// As [`HsmsHandle::send`], with system bytes from
    /// [`HsmsHandle::new_system`].
    pub fn send_with_system(
        &self,
        stream: u8,
        function: u8,
        body: Vec<u8>,
        system: u32,
    ) -> Result<(), HsmsError> {
        self.write_data(
            Header::data(
                self.shared.config.session_id,
                stream,
                function,
                false,
                system,
            ),
            body,
        )
    }

    /// Sends a data message with the W-bit and waits for its reply (same
    /// system bytes) up to T3. A reply with function 0 (transaction aborted)
    /// is returned like any other; the caller checks it.
    pub async fn request(
        &self,
        stream: u8,
        function: u8,
        body: Vec<u8>,
    ) -> Result<DataMessage, HsmsError> {
        self.request_with_system(stream, function, body, self.new_system())
            .await
    }

    /// As [`HsmsHandle::request`], with system bytes from
    /// [`HsmsHandle::new_system`].
    pub async fn request_with_system(
        &self,
        stream: u8,
        function: u8,
        body: Vec<u8>,
        system: u32,
    ) -> Result<DataMessage, HsmsError> {
        self.begin_request(stream, function, body, system)?
            .reply()
            .await
    }

    /// Queues a data message with the W-bit now (so messages begun one
    /// after another go out in that order) and returns the wait for its
    /// reply, to be awaited wherever suits the caller.
    pub fn begin_request(
        &self,
        stream: u8,
        function: u8,
        body: Vec<u8>,
        system: u32,
    ) -> Result<PendingReply, HsmsError> {
        let (tx, rx) = oneshot::channel();
        // Open before sending, so even an instant reply finds it; the
        // PendingReply closes it however this ends (reply, error, T3, or
        // the caller dropping it).
        self.shared.pending().insert(system, tx);
        let pending = PendingReply {
            shared: self.shared.clone(),
            rx: Some(rx),
            stream,
            function,
            system,
        };
        let header = Header::data(
            self.shared.config.session_id,
            stream,
            function,
            true,
            system,
        );
        self.write_data(header, body)?;
        Ok(pending)
    }

    /// Answers `primary` with `function` (usually primary's + 1, or 0 to
    /// abort the transaction) in the same stream, with its system bytes.
    pub fn reply(
        &self,
        primary: &DataMessage,
        function: u8,
        body: Vec<u8>,
    ) -> Result<(), HsmsError> {
        self.write_data(
            Header::data(
                primary.session_id,
                primary.stream,
                function,
                false,
                primary.system,
            ),
            body,
        )
    }

    pub fn state(&self) -> ConnectionState {
        self.shared.state()
    }

    /// The state as a watch, to await changes.
    pub fn state_watch(&self) -> watch::Receiver<ConnectionState> {
        self.shared.state.subscribe()
    }

    /// Passive: the address actually listened on (port 0 resolved).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Sends a Linktest.req and waits for the response (T6; on timeout the
    /// connection is closed).
    pub async fn linktest(&self) -> Result<(), HsmsError> {
        self.command(Command::Linktest).await
    }

    /// Sends a Deselect.req and waits for the response (T6); then NOT
    /// SELECTED, where T7 runs.
    pub async fn deselect(&self) -> Result<(), HsmsError> {
        self.command(Command::Deselect).await
    }

    /// Sends a Separate.req (when selected) and closes the connection.
    /// Passive listens again; active reconnects after T5.
    pub async fn separate(&self) -> Result<(), HsmsError> {
        self.command(Command::Separate).await
    }

    /// Separates if selected, closes, stops listening or connecting, and
    /// waits for the session task to end. Other clones then get `Closed`.
    pub async fn shutdown(&self) {
        match self.commands.send(Command::Shutdown).await {
            Ok(()) => {}
            Err(_) => tracing::debug!("HSMS session task already ended"),
        }
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            if let Err(e) = task.await {
                tracing::error!("HSMS session task failed: {e}");
            }
        }
    }

    async fn command(
        &self,
        make: fn(oneshot::Sender<Result<(), HsmsError>>) -> Command,
    ) -> Result<(), HsmsError> {
        let (tx, rx) = oneshot::channel();
        self.commands.try_send(make(tx)).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => HsmsError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => HsmsError::Closed,
        })?;
        rx.await.unwrap_or(Err(HsmsError::Closed))
    }

    /// Queues a data message for the current connection's writer.
    fn write_data(&self, header: Header, body: Vec<u8>) -> Result<(), HsmsError> {
        match self.shared.state() {
            ConnectionState::Selected => {}
            ConnectionState::NotSelected => return Err(HsmsError::NotSelected),
            ConnectionState::NotConnected => return Err(HsmsError::NotConnected),
        }
        let max = self.shared.config.max_message_bytes;
        if body.len() > (max as usize).saturating_sub(HEADER_BYTES) {
            return Err(HsmsError::TooLong {
                bytes: body.len(),
                max,
            });
        }
        let len = body.len();
        // Cannot fail: the length was checked against `max`, a u32.
        let bytes = Frame::new(header, body)
            .encode()
            .map_err(|_| HsmsError::TooLong { bytes: len, max })?;
        // The lock is held while queueing (`try_send` never waits): the
        // connection clears the writer under it when it leaves SELECTED, so
        // nothing is queued behind a Deselect.rsp or on a new connection
        // that is not selected yet.
        let writer = self.shared.writer();
        let Some(writer) = writer.as_ref() else {
            return Err(HsmsError::NotSelected);
        };
        writer.try_send(bytes).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => HsmsError::QueueFull,
            mpsc::error::TrySendError::Closed(_) => HsmsError::NotConnected,
        })?;
        tracing::debug!("HSMS > {header}");
        Ok(())
    }
}

/// A request on the wire, waiting for its reply; the open transaction is
/// closed when this is dropped, however the wait ended.
pub struct PendingReply {
    shared: Arc<Shared>,
    rx: Option<oneshot::Receiver<Result<DataMessage, HsmsError>>>,
    stream: u8,
    function: u8,
    system: u32,
}

impl PendingReply {
    /// The reply, up to T3 after the request was queued.
    pub async fn reply(mut self) -> Result<DataMessage, HsmsError> {
        let (stream, function, system) = (self.stream, self.function, self.system);
        let Some(rx) = self.rx.take() else {
            return Err(HsmsError::Closed);
        };
        match tokio::time::timeout(self.shared.config.timers.t3, rx).await {
            Ok(Ok(reply)) => reply,
            // The session dropped the waiter: the connection ended.
            Ok(Err(_)) => Err(HsmsError::ConnectionLost),
            Err(_) => {
                tracing::warn!("HSMS T3: no reply to S{stream}F{function} (system {system:#010x})");
                Err(HsmsError::T3Timeout {
                    stream,
                    function,
                    system,
                })
            }
        }
    }
}

impl Drop for PendingReply {
    fn drop(&mut self) {
        self.shared.pending().remove(&self.system);
    }
}
