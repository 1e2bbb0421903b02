//! The session against a hand-driven peer on 127.0.0.1: raw TCP, header
//! bytes written out by hand (not with `frame`), so each test shows the
//! bytes E37 puts on the wire. Timers are tens to hundreds of ms; the tests
//! assert what happens, never how fast.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::*;

/// Long enough for anything that should happen to happen on a loaded
/// 2-core machine; only reached when a test fails.
const PATIENCE: Duration = Duration::from_secs(10);
const SESSION: u16 = 7;

/// Timers a test does not exercise are far beyond its run time, so a slow
/// machine cannot trip them; the one under test is set short by the test.
fn timers() -> HsmsTimers {
    HsmsTimers {
        t3: PATIENCE,
        t5: Duration::from_millis(100),
        t6: PATIENCE,
        t7: PATIENCE,
        t8: PATIENCE,
    }
}

fn passive() -> HsmsConfig {
    HsmsConfig {
        mode: HsmsMode::Passive {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        },
        session_id: SESSION,
        timers: timers(),
        max_message_bytes: 64 * 1024,
        linktest_period: None,
    }
}

/// A whole message as bytes: length, header fields, text.
fn msg(session: u16, b2: u8, b3: u8, ptype: u8, stype: u8, system: u32, body: &[u8]) -> Vec<u8> {
    let mut out = (10 + body.len() as u32).to_be_bytes().to_vec();
    out.extend(session.to_be_bytes());
    out.extend([b2, b3, ptype, stype]);
    out.extend(system.to_be_bytes());
    out.extend(body);
    out
}

/// A control message (session id 0xFFFF).
fn control(stype: u8, system: u32) -> Vec<u8> {
    msg(0xFFFF, 0, 0, 0, stype, system, &[])
}

/// A data message of our session.
fn data(stream: u8, function: u8, w: bool, system: u32, body: &[u8]) -> Vec<u8> {
    msg(
        SESSION,
        stream | if w { 0x80 } else { 0 },
        function,
        0,
        0,
        system,
        body,
    )
}

struct RawPeer {
    stream: TcpStream,
}

impl RawPeer {
    async fn connect(addr: SocketAddr) -> RawPeer {
        let stream = TcpStream::connect(addr)
            .await
            .expect("connect to the session");
        stream.set_nodelay(true).unwrap();
        RawPeer { stream }
    }

    async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("peer write");
    }

    /// The next message as (header, text); `None` when the session closed
    /// the connection.
    async fn read(&mut self) -> Option<([u8; 10], Vec<u8>)> {
        tokio::time::timeout(PATIENCE, async {
            let mut length = [0u8; 4];
            match self.stream.read_exact(&mut length).await {
                Ok(_) => {}
                Err(_) => return None,
            }
            let length = u32::from_be_bytes(length) as usize;
            let mut header = [0u8; 10];
            self.stream.read_exact(&mut header).await.ok()?;
            let mut body = vec![0u8; length - 10];
            self.stream.read_exact(&mut body).await.ok()?;
            Some((header, body))
        })
        .await
        .expect("the session neither sent nor closed")
    }

    /// Reads the next message; it must be there.
    async fn expect(&mut self) -> ([u8; 10], Vec<u8>) {
        self.read()
            .await
            .expect("a message, not a closed connection")
    }

    /// Reads on; the session must close the connection (having sent nothing
    /// more).
    async fn expect_closed(&mut self) {
        if let Some((header, _)) = self.read().await {
            panic!("expected the connection closed, got header {header:02x?}");
        }
    }

    /// Select.req → Select.rsp (status 0).
    async fn select(&mut self, system: u32) {
        self.write(&control(1, system)).await;
        let (header, body) = self.expect().await;
        let s = system.to_be_bytes();
        assert_eq!(header, [0xFF, 0xFF, 0, 0, 0, 2, s[0], s[1], s[2], s[3]]);
        assert!(body.is_empty());
    }
}

fn system_of(header: &[u8; 10]) -> u32 {
    u32::from_be_bytes([header[6], header[7], header[8], header[9]])
}

async fn wait_state(handle: &HsmsHandle, want: ConnectionState) {
    let mut watch = handle.state_watch();
    tokio::time::timeout(PATIENCE, watch.wait_for(|s| *s == want))
        .await
        .unwrap_or_else(|_| panic!("never {want}; still {}", handle.state()))
        .expect("session gone");
}

/// The next primary message, skipping state events.
async fn next_primary(events: &mut mpsc::Receiver<HsmsEvent>) -> DataMessage {
    loop {
        let event = tokio::time::timeout(PATIENCE, events.recv())
            .await
            .expect("no primary came")
            .expect("events closed");
        if let HsmsEvent::Primary(message) = event {
            return message;
        }
    }
}

async fn start_passive() -> (HsmsHandle, mpsc::Receiver<HsmsEvent>, SocketAddr) {
    start_with(passive()).await
}

async fn start_with(config: HsmsConfig) -> (HsmsHandle, mpsc::Receiver<HsmsEvent>, SocketAddr) {
    let (handle, events) = Hsms::start(config).await.expect("listen on 127.0.0.1:0");
    let addr = handle.local_addr().expect("passive has an address");
    (handle, events, addr)
}

#[tokio::test]
async fn passive_select_then_primary_reply_and_request() {
    let (handle, mut events, addr) = start_passive().await;
    let mut peer = RawPeer::connect(addr).await;
    wait_state(&handle, ConnectionState::NotSelected).await;
    assert_eq!(handle.send(1, 1, vec![]), Err(HsmsError::NotSelected));
    peer.select(0x0102_0304).await;
    wait_state(&handle, ConnectionState::Selected).await;
    // The state changes came as events too, in order.
    for want in [ConnectionState::NotSelected, ConnectionState::Selected] {
        assert_eq!(events.recv().await, Some(HsmsEvent::State(want)));
    }

    // The host's S1F1 W arrives as a primary; our S1F2 carries its system
    // bytes.
    peer.write(&data(1, 1, true, 0x1000, &[])).await;
    let primary = next_primary(&mut events).await;
    assert_eq!(
        (
            primary.stream,
            primary.function,
            primary.w_bit,
            primary.system
        ),
        (1, 1, true, 0x1000)
    );
    assert_eq!(primary.session_id, SESSION);
    handle.reply(&primary, 2, vec![0x01, 0x00]).unwrap();
    let (header, body) = peer.expect().await;
    assert_eq!(header, [0, 7, 0x01, 0x02, 0, 0, 0, 0, 0x10, 0]);
    assert_eq!(body, [0x01, 0x00]);

    // Our S1F3 W is answered by S1F4 with the same system bytes.
    let request = tokio::spawn({
        let handle = handle.clone();
        async move { handle.request(1, 3, vec![0x01, 0x00]).await }
    });
    let (header, body) = peer.expect().await;
    assert_eq!(&header[..6], [0, 7, 0x81, 3, 0, 0]);
    assert_eq!(body, [0x01, 0x00]);
    peer.write(&data(1, 4, false, system_of(&header), &[0x01, 0x00]))
        .await;
    let reply = request.await.unwrap().expect("the S1F4");
    assert_eq!((reply.stream, reply.function, reply.w_bit), (1, 4, false));
    assert_eq!(reply.body, [0x01, 0x00]);

    handle.shutdown().await;
    // Selected at shutdown: a Separate.req, then the close.
    let (header, _) = peer.expect().await;
    assert_eq!(header[5], 9, "Separate.req");
    peer.expect_closed().await;
    assert_eq!(handle.send(1, 1, vec![]), Err(HsmsError::NotConnected));
}

#[tokio::test]
async fn data_before_select_is_rejected_not_delivered() {
    let (handle, mut events, addr) = start_passive().await;
    let mut peer = RawPeer::connect(addr).await;
    peer.write(&data(1, 13, true, 0x22, &[0x01, 0x00])).await;
    let (header, _) = peer.expect().await;
    // Reject.req: byte 2 the rejected SType (0, data), byte 3 reason 4.
    // Session id and system bytes are the rejected message's.
    assert_eq!(header, [0, 7, 0, 4, 0, 7, 0, 0, 0, 0x22]);

    // Select is still accepted, and only what comes after it is delivered.
    peer.select(0x23).await;
    peer.write(&data(1, 13, true, 0x24, &[])).await;
    let primary = next_primary(&mut events).await;
    assert_eq!((primary.function, primary.system), (13, 0x24));
    handle.shutdown().await;
}

#[tokio::test]
async fn replies_matching_no_open_transaction_are_dropped() {
    let (handle, mut events, addr) = start_passive().await;
    let mut peer = RawPeer::connect(addr).await;
    peer.select(1).await;
    wait_state(&handle, ConnectionState::Selected).await;

    // Our S6F11 without the W-bit: a "reply" to it is not expected.
    handle.send(6, 11, vec![]).unwrap();
    let (header, _) = peer.expect().await;
    assert_eq!(&header[2..4], [6, 11]);
    peer.write(&data(6, 12, false, system_of(&header), &[]))
        .await;
    // A reply with system bytes nobody sent.
    peer.write(&data(1, 2, false, 0xABCD, &[])).await;
    // A function 0 abort for nothing open.
    peer.write(&data(6, 0, false, 0xABCE, &[])).await;
    // Then a real primary: the first thing delivered.
    peer.write(&data(2, 17, true, 0xABCF, &[])).await;
    let primary = next_primary(&mut events).await;
    assert_eq!(
        (primary.stream, primary.function, primary.system),
        (2, 17, 0xABCF)
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn unknown_stype_and_ptype_are_rejected() {
    let (handle, _events, addr) = start_passive().await;
    let mut peer = RawPeer::connect(addr).await;
    // SType 8 is reserved: reason 1, byte 2 the SType.
    peer.write(&control(8, 0x31)).await;
    let (header, _) = peer.expect().await;
    assert_eq!(header, [0xFF, 0xFF, 8, 1, 0, 7, 0, 0, 0, 0x31]);
    // PType 1: reason 2, byte 2 the PType.
    peer.write(&msg(0xFFFF, 0, 0, 1, 1, 0x32, &[])).await;
    let (header, _) = peer.expect().await;
    assert_eq!(header, [0xFF, 0xFF, 1, 2, 0, 7, 0, 0, 0, 0x32]);
    // A Linktest.rsp for no open linktest: reason 3.
    peer.write(&control(6, 0x33)).await;
    let (header, _) = peer.expect().await;
    assert_eq!(header, [0xFF, 0xFF, 6, 3, 0, 7, 0, 0, 0, 0x33]);
    // Nothing of it closed the connection or selected it.
    assert_eq!(handle.state(), ConnectionState::NotSelected);
    handle.shutdown().await;
}

#[tokio::test]
async fn linktest_is_answered_selected_or_not() {
    let (handle, _events, addr) = start_passive().await;
    let mut peer = RawPeer::connect(addr).await;
    peer.write(&control(5, 0x41)).await;
    assert_eq!(
        peer.expect().await.0,
        [0xFF, 0xFF, 0, 0, 0, 6, 0, 0, 0, 0x41]
    );
    peer.select(0x42).await;
    peer.write(&control(5, 0x43)).await;
    assert_eq!(
        peer.expect().await.0,
        [0xFF, 0xFF, 0, 0, 0, 6, 0, 0, 0, 0x43]
    );
    // A second Select.req while selected: status 1, already active.
    peer.write(&control(1, 0x44)).await;
    assert_eq!(
        peer.expect().await.0,
        [0xFF, 0xFF, 0, 1, 0, 2, 0, 0, 0, 0x44]
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn our_linktest_and_deselect_complete_on_the_peers_response() {
    let (handle, _events, addr) = start_passive().await;
    let mut peer = RawPeer::connect(addr).await;
    peer.select(1).await;
    wait_state(&handle, ConnectionState::Selected).await;

    let linktest = tokio::spawn({
        let handle = handle.clone();
        async move { handle.linktest().await }
    });
    let (header, _) = peer.expect().await;
    assert_eq!(&header[..6], [0xFF, 0xFF, 0, 0, 0, 5]);
    peer.write(&control(6, system_of(&header))).await;
    assert_eq!(linktest.await.unwrap(), Ok(()));

    let deselect = tokio::spawn({
        let handle = handle.clone();
        async move { handle.deselect().await }
    });
    let (header, _) = peer.expect().await;
    assert_eq!(&header[..6], [0xFF, 0xFF, 0, 0, 0, 3]);
    peer.write(&control(4, system_of(&header))).await;
    assert_eq!(deselect.await.unwrap(), Ok(()));
    assert_eq!(handle.state(), ConnectionState::NotSelected);
    assert_eq!(handle.send(1, 1, vec![]), Err(HsmsError::NotSelected));
    handle.shutdown().await;
}

#[tokio::test]
async fn t7_closes_a_connection_never_selected() {
    let mut config = passive();
    // Short, yet leaves the re-connection below time to select.
    config.timers.t7 = Duration::from_millis(500);
    let (handle, _events, addr) = start_with(config).await;
    let mut peer = RawPeer::connect(addr).await;
    wait_state(&handle, ConnectionState::NotSelected).await;
    peer.expect_closed().await;
    wait_state(&handle, ConnectionState::NotConnected).await;
    // Listening again.
    let mut peer = RawPeer::connect(addr).await;
    peer.select(2).await;
    wait_state(&handle, ConnectionState::Selected).await;
    handle.shutdown().await;
}

#[tokio::test]
async fn t8_closes_on_a_stalled_half_message() {
    let mut config = passive();
    config.timers.t8 = Duration::from_millis(200);
    let (handle, mut events, addr) = start_with(config).await;
    let mut peer = RawPeer::connect(addr).await;
    peer.select(1).await;
    // Length and 3 header bytes of a 12-byte message, then silence.
    let whole = data(1, 1, true, 0x51, &[0x01, 0x00]);
    peer.write(&whole[..7]).await;
    peer.expect_closed().await;
    wait_state(&handle, ConnectionState::NotConnected).await;
    // The half message was never delivered.
    while let Ok(event) = events.try_recv() {
        assert!(matches!(event, HsmsEvent::State(_)), "delivered {event:?}");
    }
    handle.shutdown().await;
}

#[tokio::test]
async fn bad_lengths_close_the_connection() {
    let (handle, _events, addr) = start_passive().await;
    // Over the limit: refused from the length alone.
    let mut peer = RawPeer::connect(addr).await;
    peer.select(1).await;
    peer.write(&[0xFF, 0xFF, 0xFF, 0xFF]).await;
    peer.expect_closed().await;
    // Shorter than the header.
    let mut peer = RawPeer::connect(addr).await;
    peer.write(&[0, 0, 0, 9, 0xFF, 0xFF, 0, 0, 0, 1, 0, 0, 0])
        .await;
    peer.expect_closed().await;
    handle.shutdown().await;
}

#[tokio::test]
async fn separate_closes_and_the_passive_side_listens_again() {
    let (handle, _events, addr) = start_passive().await;
    let mut peer = RawPeer::connect(addr).await;
    peer.select(1).await;
    wait_state(&handle, ConnectionState::Selected).await;
    peer.write(&control(9, 2)).await;
    peer.expect_closed().await;
    wait_state(&handle, ConnectionState::NotConnected).await;

    let mut peer = RawPeer::connect(addr).await;
    peer.select(3).await;
    wait_state(&handle, ConnectionState::Selected).await;
    handle.shutdown().await;
}

#[tokio::test]
async fn a_second_connection_is_refused_while_one_is_up() {
    let (handle, _events, addr) = start_passive().await;
    let mut first = RawPeer::connect(addr).await;
    first.select(1).await;
    let mut second = RawPeer::connect(addr).await;
    second.expect_closed().await;
    // The first one is untouched.
    first.write(&control(5, 2)).await;
    assert_eq!(first.expect().await.0[5], 6);
    assert_eq!(handle.state(), ConnectionState::Selected);
    handle.shutdown().await;
}

#[tokio::test]
async fn t3_fails_the_request_and_the_late_reply_is_dropped() {
    let mut config = passive();
    config.timers.t3 = Duration::from_millis(300);
    let (handle, mut events, addr) = start_with(config).await;
    let mut peer = RawPeer::connect(addr).await;
    peer.select(1).await;
    wait_state(&handle, ConnectionState::Selected).await;

    let request = tokio::spawn({
        let handle = handle.clone();
        async move { handle.request(1, 1, vec![]).await }
    });
    let (header, _) = peer.expect().await;
    let system = system_of(&header);
    assert_eq!(
        request.await.unwrap(),
        Err(HsmsError::T3Timeout {
            stream: 1,
            function: 1,
            system
        })
    );
    // Late: dropped, not delivered; the next primary is.
    peer.write(&data(1, 2, false, system, &[])).await;
    peer.write(&data(1, 1, true, 0x61, &[])).await;
    assert_eq!(next_primary(&mut events).await.system, 0x61);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_request_the_peer_rejects_fails_with_the_reason() {
    let (handle, _events, addr) = start_passive().await;
    let mut peer = RawPeer::connect(addr).await;
    peer.select(1).await;
    wait_state(&handle, ConnectionState::Selected).await;
    let request = tokio::spawn({
        let handle = handle.clone();
        async move { handle.request(99, 1, vec![]).await }
    });
    let (header, _) = peer.expect().await;
    peer.write(&msg(0xFFFF, 0, 4, 0, 7, system_of(&header), &[]))
        .await;
    assert_eq!(
        request.await.unwrap(),
        Err(HsmsError::Rejected { reason: 4 })
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn a_request_open_when_the_connection_drops_fails_at_once() {
    let (handle, _events, addr) = start_passive().await;
    let mut peer = RawPeer::connect(addr).await;
    peer.select(1).await;
    wait_state(&handle, ConnectionState::Selected).await;
    let request = tokio::spawn({
        let handle = handle.clone();
        async move { handle.request(1, 1, vec![]).await }
    });
    peer.expect().await;
    drop(peer);
    assert_eq!(request.await.unwrap(), Err(HsmsError::ConnectionLost));
    handle.shutdown().await;
}

#[tokio::test]
async fn active_t6_closes_an_unanswered_select_and_reconnects_after_t5() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = HsmsConfig {
        mode: HsmsMode::Active {
            connect: listener.local_addr().unwrap(),
        },
        // Long enough for the answered select below to make it in time.
        timers: HsmsTimers {
            t6: Duration::from_secs(1),
            ..timers()
        },
        ..passive()
    };
    let (handle, _events) = Hsms::start(config).await.unwrap();

    let accept = || async {
        let (stream, _) = tokio::time::timeout(PATIENCE, listener.accept())
            .await
            .expect("the active side connects")
            .unwrap();
        RawPeer { stream }
    };
    // First connection: the Select.req goes unanswered; T6 closes.
    let mut peer = accept().await;
    let (header, _) = peer.expect().await;
    assert_eq!(&header[..6], [0xFF, 0xFF, 0, 0, 0, 1]);
    peer.expect_closed().await;
    wait_state(&handle, ConnectionState::NotConnected).await;

    // It comes back by itself (T5 later) and selects again.
    let mut peer = accept().await;
    let (header, _) = peer.expect().await;
    assert_eq!(&header[..6], [0xFF, 0xFF, 0, 0, 0, 1]);
    peer.write(&control(2, system_of(&header))).await;
    wait_state(&handle, ConnectionState::Selected).await;

    // Separate from our side: the peer sees Separate.req, then the close,
    // and we connect again.
    handle.separate().await.unwrap();
    let (header, _) = peer.expect().await;
    assert_eq!(header[5], 9);
    peer.expect_closed().await;
    let mut peer = accept().await;
    let (header, _) = peer.expect().await;
    assert_eq!(header[5], 1);
    handle.shutdown().await;
}

#[tokio::test]
async fn a_full_write_queue_is_an_error_to_the_sender() {
    let (handle, _events, addr) = start_passive().await;
    let peer = RawPeer::connect(addr).await;
    let mut peer = peer;
    peer.select(1).await;
    wait_state(&handle, ConnectionState::Selected).await;
    // The peer reads nothing more: the socket buffers fill, then the
    // writer's queue. Big bodies get there in a few hundred sends.
    let body = vec![0u8; 60 * 1024];
    let mut full = false;
    for _ in 0..2000 {
        match handle.send(1, 3, body.clone()) {
            Ok(()) => tokio::task::yield_now().await,
            Err(HsmsError::QueueFull) => {
                full = true;
                break;
            }
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(full, "the queue never filled");
    drop(peer);
    handle.shutdown().await;
}

#[tokio::test]
async fn periodic_linktest_goes_out_and_an_unanswered_one_closes_on_t6() {
    let config = HsmsConfig {
        linktest_period: Some(Duration::from_millis(100)),
        // Long enough for the answered linktest below to make it in time.
        timers: HsmsTimers {
            t6: Duration::from_secs(1),
            ..timers()
        },
        ..passive()
    };
    let (handle, _events) = Hsms::start(config).await.unwrap();
    let mut peer = RawPeer::connect(handle.local_addr().unwrap()).await;
    peer.select(1).await;
    let (header, _) = peer.expect().await;
    assert_eq!(&header[..6], [0xFF, 0xFF, 0, 0, 0, 5]);
    peer.write(&control(6, system_of(&header))).await;
    // The next one goes unanswered.
    let (header, _) = peer.expect().await;
    assert_eq!(&header[..6], [0xFF, 0xFF, 0, 0, 0, 5]);
    peer.expect_closed().await;
    wait_state(&handle, ConnectionState::NotConnected).await;
    handle.shutdown().await;
}

#[tokio::test]
async fn the_peers_deselect_returns_to_not_selected() {
    let (handle, _events, addr) = start_passive().await;
    let mut peer = RawPeer::connect(addr).await;
    peer.select(1).await;
    wait_state(&handle, ConnectionState::Selected).await;
    peer.write(&control(3, 2)).await;
    assert_eq!(peer.expect().await.0, [0xFF, 0xFF, 0, 0, 0, 4, 0, 0, 0, 2]);
    assert_eq!(handle.state(), ConnectionState::NotSelected);
    // Data is refused again; a second Deselect.req: not established (1).
    peer.write(&data(1, 1, true, 3, &[])).await;
    assert_eq!(peer.expect().await.0, [0, 7, 0, 4, 0, 7, 0, 0, 0, 3]);
    peer.write(&control(3, 4)).await;
    assert_eq!(peer.expect().await.0, [0xFF, 0xFF, 0, 1, 0, 4, 0, 0, 0, 4]);
    handle.shutdown().await;
}
