//! The camera's heartbeat: a thread asks the camera's control port (GVCP,
//! UDP 3956) for one bootstrap register every period and counts the
//! answers. The monitor reads the count as the camera subsystem's
//! heartbeat, so a camera that is switched off or unplugged goes Stale and
//! Lost (and raises its alarm) whether or not a run is taking pictures,
//! and captures are refused at once instead of waiting through Aravis'
//! own control retries (5 × 500 ms).
//!
//! Written here rather than through Aravis: Aravis' control requests are
//! serialised with the acquisition's own (a probe would wait behind a
//! trigger), and its retry times are compiled in. A READREG needs no
//! control privilege, so it never disturbs the application that holds the
//! camera. The thread allocates nothing per probe.

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// GVCP's UDP port.
pub const GVCP_PORT: u16 = 3956;
/// READREG_CMD / READREG_ACK (GigE Vision 2.0, table 19-1).
const READREG_CMD: u16 = 0x0080;
const READREG_ACK: u16 = 0x0081;
/// Bootstrap register 0x0000: the GigE Vision version, on every camera.
const VERSION_REGISTER: u32 = 0x0000;
/// Periods without an answer before the camera counts as not answering.
const SILENT_PERIODS: u32 = 3;

/// What the probe thread knows, readable from any thread.
pub struct CameraLink {
    address: IpAddr,
    period: Duration,
    epoch: Instant,
    /// Answers received (the heartbeat counter).
    answers: AtomicU32,
    /// When the last answer came, ns since `epoch` (0: none yet).
    last_answer_ns: AtomicU64,
    stop: AtomicBool,
}

impl CameraLink {
    pub fn address(&self) -> IpAddr {
        self.address
    }

    /// The heartbeat counter: advances once per answered probe.
    pub fn answers(&self) -> u32 {
        self.answers.load(Ordering::Acquire)
    }

    /// The control port answered within the last few periods (or the probe
    /// started less than that ago and has not had the chance yet).
    pub fn answering(&self) -> bool {
        let now = self.epoch.elapsed().as_nanos() as u64;
        let window = (self.period * SILENT_PERIODS).as_nanos() as u64;
        let last = self.last_answer_ns.load(Ordering::Acquire);
        if last == 0 {
            now < window
        } else {
            now.saturating_sub(last) < window
        }
    }
}

/// Owns the probe thread; dropping it stops and joins the thread.
pub struct CameraLinkProbe {
    link: Arc<CameraLink>,
    thread: Option<JoinHandle<()>>,
}

impl CameraLinkProbe {
    /// Starts probing `address` every `period`. Fails only if no UDP socket
    /// can be opened (a camera that does not answer is not an error here).
    pub fn start(address: IpAddr, period: Duration) -> std::io::Result<Self> {
        Self::start_on_port(address, GVCP_PORT, period)
    }

    fn start_on_port(address: IpAddr, port: u16, period: Duration) -> std::io::Result<Self> {
        let local: SocketAddr = match address {
            IpAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
            IpAddr::V6(_) => "[::]:0".parse().expect("literal"),
        };
        let socket = UdpSocket::bind(local)?;
        // Connected: only the camera's answers are received, and an ICMP
        // "port unreachable" (camera host up, camera process gone) shows
        // as an error instead of a silent wait.
        socket.connect(SocketAddr::new(address, port))?;
        socket.set_read_timeout(Some(period))?;
        let link = Arc::new(CameraLink {
            address,
            period,
            epoch: Instant::now(),
            answers: AtomicU32::new(0),
            last_answer_ns: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let l = link.clone();
        let thread = std::thread::Builder::new()
            .name("camera-link".into())
            .spawn(move || probe(&socket, &l))?;
        Ok(Self {
            link,
            thread: Some(thread),
        })
    }

    pub fn link(&self) -> Arc<CameraLink> {
        self.link.clone()
    }
}

impl Drop for CameraLinkProbe {
    fn drop(&mut self) {
        self.link.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!(address = %self.link.address, "the camera link probe thread panicked");
            }
        }
    }
}

/// One READREG_CMD: key 0x42, flag 0x01 (acknowledge), command, length 4,
/// request id, register address (all big-endian).
fn read_register_command(request_id: u16, register: u32) -> [u8; 12] {
    let mut p = [0u8; 12];
    p[0] = 0x42;
    p[1] = 0x01;
    p[2..4].copy_from_slice(&READREG_CMD.to_be_bytes());
    p[4..6].copy_from_slice(&4u16.to_be_bytes());
    p[6..8].copy_from_slice(&request_id.to_be_bytes());
    p[8..12].copy_from_slice(&register.to_be_bytes());
    p
}

/// An acknowledge of request `request_id`. Any status counts: a camera that
/// answers "access denied" (held exclusively by another application) is
/// still alive.
fn is_answer(packet: &[u8], request_id: u16) -> bool {
    packet.len() >= 8
        && packet[2..4] == READREG_ACK.to_be_bytes()
        && packet[6..8] == request_id.to_be_bytes()
}

fn probe(socket: &UdpSocket, link: &CameraLink) {
    let mut request_id: u16 = 0;
    let mut answer = [0u8; 64];
    let mut next = Instant::now();
    while !link.stop.load(Ordering::Acquire) {
        // GVCP request ids are never 0.
        request_id = request_id.wrapping_add(1).max(1);
        let sent = socket.send(&read_register_command(request_id, VERSION_REGISTER));
        if sent.is_ok() {
            let deadline = next + link.period;
            // Late answers to earlier requests are skipped, not counted.
            loop {
                match socket.recv(&mut answer) {
                    Ok(n) if is_answer(&answer[..n], request_id) => {
                        link.answers.fetch_add(1, Ordering::AcqRel);
                        let now = link.epoch.elapsed().as_nanos().max(1) as u64;
                        link.last_answer_ns.store(now, Ordering::Release);
                        break;
                    }
                    Ok(_) => {}
                    // Timeout, or the camera's host said the port is closed.
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::WouldBlock
                                | ErrorKind::TimedOut
                                | ErrorKind::ConnectionRefused
                        ) =>
                    {
                        break
                    }
                    Err(e) => {
                        tracing::debug!(address = %link.address, "camera link probe: {e}");
                        break;
                    }
                }
                if Instant::now() >= deadline {
                    break;
                }
            }
        }
        next += link.period;
        let now = Instant::now();
        match next.checked_duration_since(now) {
            Some(wait) => std::thread::sleep(wait),
            // Fell behind (a long stall): start the grid again from now.
            None => next = now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stand-in control port that answers READREG like a camera: the
    /// probe counts its answers, and stops counting when it goes away.
    #[test]
    fn counts_answers_and_stops_answering_when_the_port_goes_away() {
        let camera = UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = camera.local_addr().unwrap().port();
        let period = Duration::from_millis(20);
        let probe =
            CameraLinkProbe::start_on_port("127.0.0.1".parse().unwrap(), port, period).unwrap();
        let link = probe.link();
        camera
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 64];
        for _ in 0..5 {
            let (n, from) = camera.recv_from(&mut buf).unwrap();
            assert_eq!(n, 12);
            assert_eq!(buf[0], 0x42);
            assert_eq!(buf[2..4], READREG_CMD.to_be_bytes());
            let mut ack = [0u8; 12];
            ack[2..4].copy_from_slice(&READREG_ACK.to_be_bytes());
            ack[4..6].copy_from_slice(&4u16.to_be_bytes());
            ack[6..8].copy_from_slice(&buf[6..8]);
            camera.send_to(&ack, from).unwrap();
        }
        let t0 = Instant::now();
        while link.answers() < 5 {
            assert!(t0.elapsed() < Duration::from_secs(2), "answers not counted");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(link.answering());
        drop(camera);
        let t0 = Instant::now();
        while link.answering() {
            assert!(
                t0.elapsed() < Duration::from_secs(2),
                "still answering with the port closed"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(link.answers(), 5, "no answer counted after the port closed");
        drop(probe);
    }

    #[test]
    fn an_answer_to_another_request_is_not_counted() {
        let mut ack = [0u8; 12];
        ack[2..4].copy_from_slice(&READREG_ACK.to_be_bytes());
        ack[6..8].copy_from_slice(&7u16.to_be_bytes());
        assert!(is_answer(&ack, 7));
        assert!(!is_answer(&ack, 8));
        assert!(!is_answer(&ack[..6], 7));
    }
}
