//! One TCP connection: CONNECTED / NOT SELECTED ⇄ SELECTED, until it ends.
//!
//! The session task runs [`Connection::run`]: it reads and decodes the
//! peer's messages, answers control messages, delivers data messages, keeps
//! the timers (T6 on our open control transaction, T7 while not selected,
//! T8 inside a message, the linktest period) and takes the handles'
//! commands. Writing is the writer task's, the only owner of the write half.

use std::io;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::config::WRITE_QUEUE;
use super::frame::{
    deselect_status, reject_reason, select_status, Frame, FrameDecoder, Header, SType,
};
use super::session::Command;
use super::{send_event, ConnectionState, DataMessage, HsmsError, HsmsEvent, Shared};

/// The pause between connecting (HSMS active) and the Select.req.
const SELECT_SETTLE: std::time::Duration = std::time::Duration::from_millis(100);

/// Why a connection's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Closed (by us or the peer); the session listens or connects again.
    Closed,
    /// Shut down: the session ends.
    Shutdown,
}

/// Our open control transaction (at most one at a time).
struct OpenControl {
    /// SelectReq, DeselectReq or LinktestReq.
    kind: SType,
    system: u32,
    /// T6.
    deadline: Instant,
    /// The handle that asked, if one did (not for our own select or the
    /// periodic linktest).
    done: Option<oneshot::Sender<Result<(), HsmsError>>>,
}

impl OpenControl {
    fn finish(self, result: Result<(), HsmsError>) {
        if let Some(done) = self.done {
            if done.send(result).is_err() {
                tracing::debug!("HSMS {:?}: caller gone before the answer", self.kind);
            }
        }
    }
}

pub(crate) struct Connection<'a> {
    shared: &'a Shared,
    events: &'a mpsc::Sender<HsmsEvent>,
    reader: OwnedReadHalf,
    writer: mpsc::Sender<Vec<u8>>,
    writer_task: JoinHandle<io::Result<()>>,
    active: bool,
    decoder: FrameDecoder,
    control: Option<OpenControl>,
    /// T7: close if still not selected then.
    not_selected_deadline: Option<Instant>,
    /// T8: close if the message being received is not complete then.
    in_message_deadline: Option<Instant>,
    next_linktest: Option<Instant>,
}

impl<'a> Connection<'a> {
    /// Takes a fresh connection: NOT SELECTED, T7 running, the writer task
    /// started. Active: sends the Select.req.
    pub(crate) fn open(
        shared: &'a Shared,
        events: &'a mpsc::Sender<HsmsEvent>,
        stream: TcpStream,
        active: bool,
    ) -> Connection<'a> {
        // HSMS is request/response with small messages: Nagle's delay would
        // add up to 40 ms (delayed ACK) to every transaction.
        if let Err(e) = stream.set_nodelay(true) {
            tracing::warn!("HSMS: TCP_NODELAY not set: {e}");
        }
        let (reader, write_half) = stream.into_split();
        let (writer, queue) = mpsc::channel(WRITE_QUEUE);
        let writer_task = tokio::spawn(write_loop(write_half, queue));
        // The handle gets the writer only while SELECTED (`set_selected`):
        // data is never queued on a connection that is not.
        let config = &shared.config;
        let now = Instant::now();
        let connection = Connection {
            shared,
            events,
            reader,
            writer,
            writer_task,
            active,
            decoder: FrameDecoder::new(config.max_message_bytes),
            control: None,
            not_selected_deadline: Some(now + config.timers.t7),
            in_message_deadline: None,
            next_linktest: config.linktest_period.map(|p| now + p),
        };
        shared.set_state(ConnectionState::NotSelected, events);
        connection
    }

    /// Runs the connection until it ends; leaves NOT CONNECTED behind.
    pub(crate) async fn run(
        mut self,
        commands: &mut mpsc::Receiver<Command>,
        listener: Option<&TcpListener>,
    ) -> Ended {
        let ended = self.serve(commands, listener).await;
        self.close().await;
        ended
    }

    async fn serve(
        &mut self,
        commands: &mut mpsc::Receiver<Command>,
        listener: Option<&TcpListener>,
    ) -> Ended {
        if self.active {
            // A moment between the TCP connect and the Select.req: secsgem
            // 0.3.0 (a host we are tested against) handles a Select.req that
            // arrives before its own accept handler has run as "not
            // connected", answers it and stays unselected for good; a busy
            // host machine makes that likely. The passive side waits T7
            // (seconds) for the Select.req, so the delay costs nothing.
            tokio::time::sleep(SELECT_SETTLE).await;
            if let Err(ended) = self.open_control(SType::SelectReq, None).await {
                return ended;
            }
        }
        let mut chunk = vec![0u8; 8192];
        loop {
            let t6 = self.control.as_ref().map(|c| c.deadline);
            tokio::select! {
                read = self.reader.read(&mut chunk) => {
                    let n = match read {
                        Ok(0) => {
                            tracing::info!("HSMS: connection closed by the peer");
                            return Ended::Closed;
                        }
                        Ok(n) => n,
                        Err(e) => {
                            tracing::warn!("HSMS: read failed: {e}");
                            return Ended::Closed;
                        }
                    };
                    if let Err(ended) = self.received(&chunk[..n]).await {
                        return ended;
                    }
                }
                () = sleep_until(self.in_message_deadline) => {
                    tracing::warn!("HSMS T8: message incomplete, no byte for T8; closing");
                    return Ended::Closed;
                }
                () = sleep_until(self.not_selected_deadline) => {
                    tracing::warn!("HSMS T7: not selected within T7; closing");
                    return Ended::Closed;
                }
                () = sleep_until(t6) => {
                    if let Some(control) = self.control.take() {
                        tracing::warn!("HSMS T6: no response to {:?}; closing", control.kind);
                        control.finish(Err(HsmsError::T6Timeout));
                    }
                    return Ended::Closed;
                }
                () = sleep_until(self.next_linktest) => {
                    self.next_linktest = self.shared.config.linktest_period.map(|p| Instant::now() + p);
                    // One control transaction at a time; a select or a
                    // linktest in progress proves the link just as well.
                    if self.control.is_none() {
                        if let Err(ended) = self.open_control(SType::LinktestReq, None).await {
                            return ended;
                        }
                    }
                }
                command = commands.recv() => {
                    if let Err(ended) = self.command(command).await {
                        return ended;
                    }
                }
                written = &mut self.writer_task => {
                    match written {
                        Ok(Ok(())) => tracing::warn!("HSMS writer ended"),
                        Ok(Err(e)) => tracing::warn!("HSMS write failed: {e}"),
                        Err(e) => tracing::error!("HSMS writer task failed: {e}"),
                    }
                    return Ended::Closed;
                }
                Some(extra) = accept_extra(listener) => {
                    // Single session (HSMS-SS): a second connection while
                    // one is up is closed at once.
                    tracing::warn!("HSMS: refused a second connection from {extra} (one session only)");
                }
            }
        }
    }

    /// Feeds bytes read to the decoder and handles each whole message.
    async fn received(&mut self, bytes: &[u8]) -> Result<(), Ended> {
        if let Err(e) = self.decoder.push(bytes) {
            tracing::warn!("HSMS: {e}; closing");
            return Err(Ended::Closed);
        }
        loop {
            match self.decoder.next_frame() {
                Ok(Some(frame)) => self.frame(frame).await?,
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("HSMS: {e}; closing");
                    return Err(Ended::Closed);
                }
            }
        }
        // T8 counts from the last byte received inside a message.
        self.in_message_deadline = self
            .decoder
            .in_message()
            .then(|| Instant::now() + self.shared.config.timers.t8);
        Ok(())
    }

    /// One message from the peer.
    async fn frame(&mut self, frame: Frame) -> Result<(), Ended> {
        let header = frame.header;
        tracing::debug!("HSMS < {header}");
        if header.ptype != 0 {
            tracing::warn!("HSMS: PType {} not supported; rejecting", header.ptype);
            return self
                .reject(&header, reject_reason::PTYPE_NOT_SUPPORTED)
                .await;
        }
        let Some(stype) = header.stype() else {
            tracing::warn!("HSMS: SType {} not supported; rejecting", header.stype);
            return self
                .reject(&header, reject_reason::STYPE_NOT_SUPPORTED)
                .await;
        };
        let selected = self.shared.state() == ConnectionState::Selected;
        match stype {
            SType::Data if !selected => {
                tracing::warn!("HSMS: {header} while not selected; rejecting");
                self.reject(&header, reject_reason::ENTITY_NOT_SELECTED)
                    .await
            }
            SType::Data => {
                self.data(header, frame.body);
                Ok(())
            }
            SType::SelectReq => {
                // Either side may select (the active side normally does; a
                // host may select us in either mode).
                let status = if selected {
                    select_status::ALREADY_ACTIVE
                } else {
                    select_status::ESTABLISHED
                };
                self.write(Header::response(&header, SType::SelectRsp, status))
                    .await?;
                self.set_selected(true);
                Ok(())
            }
            SType::DeselectReq => {
                let status = if selected {
                    deselect_status::ENDED
                } else {
                    deselect_status::NOT_ESTABLISHED
                };
                // Not selected before the response goes out, so no data
                // message from a handle follows it on the wire. (Select is
                // the other way round: no data before the Select.rsp.)
                self.set_selected(false);
                self.write(Header::response(&header, SType::DeselectRsp, status))
                    .await
            }
            SType::LinktestReq => {
                self.write(Header::response(&header, SType::LinktestRsp, 0))
                    .await
            }
            SType::SelectRsp | SType::DeselectRsp | SType::LinktestRsp => {
                self.control_response(stype, header).await
            }
            SType::RejectReq => {
                self.rejected(header);
                if self
                    .control
                    .as_ref()
                    .is_some_and(|c| c.system == header.system)
                {
                    let control = self.control.take().expect("checked above");
                    let kind = control.kind;
                    tracing::warn!("HSMS: our {kind:?} rejected (reason {})", header.byte3);
                    control.finish(Err(HsmsError::Rejected {
                        reason: header.byte3,
                    }));
                    if kind == SType::SelectReq && self.active {
                        // Try again from a fresh connection after T5.
                        return Err(Ended::Closed);
                    }
                }
                Ok(())
            }
            SType::SeparateReq => {
                tracing::info!("HSMS: Separate.req from the peer; closing");
                Err(Ended::Closed)
            }
        }
    }

    /// A data message while selected: a primary goes to the application, a
    /// reply to the request it answers.
    fn data(&mut self, header: Header, body: Vec<u8>) {
        let message = DataMessage {
            session_id: header.session_id,
            stream: header.stream(),
            function: header.function(),
            w_bit: header.w_bit(),
            system: header.system,
            body,
        };
        if message.function % 2 == 1 {
            send_event(self.events, HsmsEvent::Primary(message));
            return;
        }
        // Even function (0 aborts a transaction): a reply, or nothing.
        let waiter = self.shared.pending().remove(&message.system);
        match waiter {
            Some(waiter) => {
                if let Err(Ok(message)) = waiter.send(Ok(message)) {
                    tracing::warn!("HSMS: reply {message} came as its request gave up; dropped");
                }
            }
            None => tracing::warn!(
                "HSMS: reply {message} matches no open transaction (unknown, timed out, or sent without W-bit); dropped"
            ),
        }
    }

    /// A Reject.req that answers one of our data messages fails its request.
    fn rejected(&mut self, header: Header) {
        let waiter = self.shared.pending().remove(&header.system);
        if let Some(waiter) = waiter {
            tracing::warn!(
                "HSMS: data message {:#010x} rejected (reason {})",
                header.system,
                header.byte3
            );
            if waiter
                .send(Err(HsmsError::Rejected {
                    reason: header.byte3,
                }))
                .is_err()
            {
                tracing::debug!("HSMS: rejected request already gone");
            }
        } else if self
            .control
            .as_ref()
            .is_none_or(|c| c.system != header.system)
        {
            tracing::warn!(
                "HSMS: Reject.req (SType {}, reason {}) for system {:#010x}, nothing open",
                header.byte2,
                header.byte3,
                header.system
            );
        }
    }

    /// Select.rsp, Deselect.rsp or Linktest.rsp: must answer our open
    /// control transaction, or it is rejected (transaction not open).
    async fn control_response(&mut self, stype: SType, header: Header) -> Result<(), Ended> {
        let expected = match stype {
            SType::SelectRsp => SType::SelectReq,
            SType::DeselectRsp => SType::DeselectReq,
            _ => SType::LinktestReq,
        };
        let matches = self
            .control
            .as_ref()
            .is_some_and(|c| c.kind == expected && c.system == header.system);
        if !matches {
            tracing::warn!("HSMS: {header} answers no open transaction; rejecting");
            return self
                .reject(&header, reject_reason::TRANSACTION_NOT_OPEN)
                .await;
        }
        let control = self.control.take().expect("checked above");
        let status = header.byte3;
        match stype {
            SType::SelectRsp
                if status == select_status::ESTABLISHED
                    || status == select_status::ALREADY_ACTIVE =>
            {
                self.set_selected(true);
                control.finish(Ok(()));
                Ok(())
            }
            SType::SelectRsp => {
                tracing::warn!("HSMS: select refused (status {status}); closing");
                control.finish(Err(HsmsError::Refused { status }));
                Err(Ended::Closed)
            }
            SType::DeselectRsp => {
                // Status 1 (not established) means not selected either way;
                // 2 (busy) leaves us selected.
                if status == deselect_status::ENDED || status == deselect_status::NOT_ESTABLISHED {
                    self.set_selected(false);
                    control.finish(Ok(()));
                } else {
                    control.finish(Err(HsmsError::Refused { status }));
                }
                Ok(())
            }
            _ => {
                control.finish(Ok(()));
                Ok(())
            }
        }
    }

    async fn command(&mut self, command: Option<Command>) -> Result<(), Ended> {
        let selected = self.shared.state() == ConnectionState::Selected;
        match command {
            Some(Command::Linktest(done)) => {
                if self.control.is_some() {
                    answer(done, Err(HsmsError::ControlBusy));
                    return Ok(());
                }
                self.open_control(SType::LinktestReq, Some(done)).await
            }
            Some(Command::Deselect(done)) => {
                if !selected {
                    answer(done, Err(HsmsError::NotSelected));
                    return Ok(());
                }
                if self.control.is_some() {
                    answer(done, Err(HsmsError::ControlBusy));
                    return Ok(());
                }
                self.open_control(SType::DeselectReq, Some(done)).await
            }
            Some(Command::Separate(done)) => {
                self.separate(selected).await;
                answer(done, Ok(()));
                Err(Ended::Closed)
            }
            // Every handle dropped, or shut down.
            Some(Command::Shutdown) | None => {
                self.separate(selected).await;
                Err(Ended::Shutdown)
            }
        }
    }

    /// E37: Separate.req ends a SELECTED session; otherwise just close.
    async fn separate(&mut self, selected: bool) {
        if selected {
            let system = self.shared.next_system();
            if self
                .write(Header::control(SType::SeparateReq, system))
                .await
                .is_err()
            {
                tracing::warn!("HSMS: Separate.req not sent; closing anyway");
            }
        }
    }

    /// Sends a control request and opens its transaction (T6).
    async fn open_control(
        &mut self,
        kind: SType,
        done: Option<oneshot::Sender<Result<(), HsmsError>>>,
    ) -> Result<(), Ended> {
        let system = self.shared.next_system();
        if let Err(ended) = self.write(Header::control(kind, system)).await {
            if let Some(done) = done {
                answer(done, Err(HsmsError::ConnectionLost));
            }
            return Err(ended);
        }
        self.control = Some(OpenControl {
            kind,
            system,
            deadline: Instant::now() + self.shared.config.timers.t6,
            done,
        });
        Ok(())
    }

    async fn reject(&mut self, rejected: &Header, reason: u8) -> Result<(), Ended> {
        self.write(Header::reject(rejected, reason)).await
    }

    /// Queues a control message for the writer. A full queue gets T6 to
    /// drain (the peer is not reading); then the connection is given up.
    async fn write(&mut self, header: Header) -> Result<(), Ended> {
        let bytes = Frame::new(header, Vec::new())
            .encode()
            .expect("a header-only message fits");
        match tokio::time::timeout(self.shared.config.timers.t6, self.writer.send(bytes)).await {
            Ok(Ok(())) => {
                tracing::debug!("HSMS > {header}");
                Ok(())
            }
            Ok(Err(_)) => {
                tracing::warn!("HSMS: writer gone; {header} not sent");
                Err(Ended::Closed)
            }
            Err(_) => {
                tracing::warn!("HSMS: write queue full for T6; {header} not sent; closing");
                Err(Ended::Closed)
            }
        }
    }

    fn set_selected(&mut self, selected: bool) {
        // Under the writer lock, which `HsmsHandle::write_data` holds while
        // it queues: a data message is queued either before this (while
        // SELECTED, so ahead of a Deselect.rsp queued after it) or not at
        // all.
        *self.shared.writer() = selected.then(|| self.writer.clone());
        if selected {
            self.not_selected_deadline = None;
            self.shared
                .set_state(ConnectionState::Selected, self.events);
        } else {
            if self.shared.state() == ConnectionState::Selected {
                self.not_selected_deadline = Some(Instant::now() + self.shared.config.timers.t7);
            }
            self.shared
                .set_state(ConnectionState::NotSelected, self.events);
        }
    }

    /// Back to NOT CONNECTED: the writer flushes what is queued (a
    /// Separate.req last) and closes its half; waiters are failed.
    async fn close(self) {
        let Connection {
            shared,
            events,
            reader,
            writer,
            writer_task,
            control,
            ..
        } = self;
        // No new data messages from the handles from here on.
        shared.writer().take();
        shared.set_state(ConnectionState::NotConnected, events);
        drop(writer);
        let mut writer_task = writer_task;
        // Finished already when its end is what ended the connection.
        if !writer_task.is_finished() {
            match tokio::time::timeout(shared.config.timers.t6, &mut writer_task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::debug!("HSMS: closing write failed: {e}"),
                Ok(Err(e)) => tracing::error!("HSMS writer task failed: {e}"),
                Err(_) => {
                    // The peer does not read: aborting drops the write half,
                    // which closes the socket with the read half below.
                    tracing::warn!("HSMS: writer not flushed within T6; closing");
                    writer_task.abort();
                }
            }
        }
        drop(reader);
        if let Some(control) = control {
            control.finish(Err(HsmsError::ConnectionLost));
        }
        let waiters: Vec<_> = shared.pending().drain().collect();
        for (system, waiter) in waiters {
            if waiter.send(Err(HsmsError::ConnectionLost)).is_err() {
                tracing::debug!("HSMS: request {system:#010x} already gone");
            }
        }
    }
}

/// The writer task: writes each queued message in order; when the queue
/// closes, shuts the write half down (FIN after the last message).
async fn write_loop(
    mut half: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Vec<u8>>,
) -> io::Result<()> {
    while let Some(bytes) = queue.recv().await {
        half.write_all(&bytes).await?;
    }
    half.shutdown().await
}

fn answer(done: oneshot::Sender<Result<(), HsmsError>>, result: Result<(), HsmsError>) {
    if done.send(result).is_err() {
        tracing::debug!("HSMS command's caller gone before the answer");
    }
}

/// Sleeps until `deadline`, or forever without one.
async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Passive while connected: a further connection, closed (dropped) at once.
async fn accept_extra(listener: Option<&TcpListener>) -> Option<std::net::SocketAddr> {
    match listener {
        Some(listener) => match listener.accept().await {
            Ok((_stream, peer)) => Some(peer),
            Err(e) => {
                tracing::warn!("HSMS accept failed: {e}");
                None
            }
        },
        None => std::future::pending().await,
    }
}
