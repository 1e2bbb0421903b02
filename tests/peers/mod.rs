//! Independent protocol peers the tests start on 127.0.0.1 and end by PID:
//! a libmodbus server (C, compiled here), a pymodbus server and a secsgem
//! SECS/GEM host (Python, in a virtualenv `scripts/peers-venv.sh` makes).
//! None was written against our side; each is driven through its own
//! library.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// How long a peer may take to answer one command.
const PEER_ANSWER_LIMIT: Duration = Duration::from_secs(60);

/// A port the kernel had free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port on 127.0.0.1")
        .port()
}

/// The libmodbus server binary, compiled once per test binary.
pub fn io_server_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = root().join("target/peers");
        std::fs::create_dir_all(&out).unwrap();
        // One file per test process: two test binaries compiling into the
        // same path at once would race.
        let bin = out.join(format!("modbus-io-server-{}", std::process::id()));
        let flags = Command::new("pkg-config")
            .args(["--cflags", "--libs", "libmodbus"])
            .output()
            .expect("pkg-config (apt-get install pkg-config)");
        assert!(
            flags.status.success(),
            "libmodbus not found by pkg-config: apt-get install libmodbus-dev (.ci/run does)"
        );
        let flags = String::from_utf8(flags.stdout).unwrap();
        let status = Command::new("cc")
            .arg("-O2")
            .arg("-o")
            .arg(&bin)
            .arg(root().join("tests/peers/modbus/io_server.c"))
            .args(flags.split_whitespace())
            .status()
            .expect("cc");
        assert!(status.success(), "compiling the libmodbus server failed");
        bin
    })
    .clone()
}

/// The virtualenv's python with the pinned peers installed.
pub fn peers_python() -> PathBuf {
    static PY: OnceLock<PathBuf> = OnceLock::new();
    PY.get_or_init(|| {
        let out = Command::new(root().join("scripts/peers-venv.sh"))
            .output()
            .expect("scripts/peers-venv.sh");
        assert!(
            out.status.success(),
            "scripts/peers-venv.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        PathBuf::from(text.lines().last().expect("the venv's python").trim())
    })
    .clone()
}

/// A peer process, ended by its PID when dropped (or by `kill`).
pub struct Peer {
    pub port: u16,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn start(mut cmd: Command, port: u16, ready: &str) -> Peer {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting the peer");
        let stdin = child.stdin.take();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("the peer's first line");
        assert_eq!(
            line.trim(),
            format!("{ready} {port}"),
            "the peer did not come up"
        );
        Peer {
            port,
            child,
            stdin,
            stdout,
        }
    }

    /// The libmodbus server on `port`.
    pub fn libmodbus(port: u16) -> Peer {
        let mut cmd = Command::new(io_server_binary());
        cmd.arg(port.to_string());
        Peer::start(cmd, port, "listening")
    }

    /// The pymodbus server on `port` (I/O and stage map, commands on stdin).
    pub fn pymodbus(port: u16) -> Peer {
        let mut cmd = Command::new(peers_python());
        cmd.arg(root().join("tests/peers/modbus/pymodbus_server.py"))
            .arg(port.to_string());
        Peer::start(cmd, port, "ready")
    }

    /// The secsgem 0.3.0 SECS/GEM host (tests/peers/secsgem/host.py):
    /// `"active"` connects to our passive equipment on `port`, `"passive"`
    /// listens on it; T3 and T5 in seconds; commands on stdin.
    pub fn secsgem_host(mode: &str, port: u16, t3_s: f64, t5_s: f64) -> Peer {
        let mut cmd = Command::new(peers_python());
        cmd.arg(root().join("tests/peers/secsgem/host.py"))
            .arg(mode)
            .arg(port.to_string())
            .arg(t3_s.to_string())
            .arg(t5_s.to_string());
        Peer::start(cmd, port, "ready")
    }

    /// Sends a command to a pymodbus peer and returns its answer line.
    pub fn query(&mut self, line: &str) -> String {
        let stdin = self.stdin.as_mut().expect("the peer takes commands");
        writeln!(stdin, "{line}").expect("writing to the peer");
        stdin.flush().unwrap();
        // A hung peer must fail the test, not hang CI: past the limit the
        // watchdog ends the peer (our own child, by PID) and the read
        // below ends with nothing.
        let pid = self.child.id() as libc::pid_t;
        let (answered, wait) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if wait.recv_timeout(PEER_ANSWER_LIMIT).is_err() {
                // SAFETY: kill(2) on our own child's PID; no memory involved.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        });
        let mut answer = String::new();
        let n = self
            .stdout
            .read_line(&mut answer)
            .expect("the peer's answer");
        answered.send(()).ok();
        watchdog.join().expect("the peer watchdog");
        assert!(
            n > 0,
            "the peer gave no answer to `{line}` within {PEER_ANSWER_LIMIT:?} (ended)"
        );
        answer.trim().to_owned()
    }

    /// Sends a command to a pymodbus peer and waits for its `ok`.
    pub fn command(&mut self, line: &str) {
        assert_eq!(self.query(line), "ok", "peer refused `{line}`");
    }

    /// A count the pymodbus peer answers as `ok N` (`moves`, `overlaps`).
    pub fn count(&mut self, what: &str) -> u32 {
        let answer = self.query(what);
        answer
            .strip_prefix("ok ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("`{what}`: not a count: {answer}"))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Ends the peer by its PID (SIGKILL: a crash, not a goodbye).
    pub fn kill(mut self) {
        self.end();
    }

    fn end(&mut self) {
        // SIGKILL to our own child, by PID; then reap it.
        if let Err(e) = self.child.kill() {
            eprintln!("peer {} already gone: {e}", self.child.id());
        }
        self.child.wait().expect("reaping the peer");
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            self.end();
        }
    }
}

/// The shipped sample I/O configuration, pointed at `port`, with every
/// signal polled every `period_ms` and the given reconnect back-off.
pub fn machine_config(port: u16, period_ms: u64, reconnect_max_ms: u64) -> String {
    sample_config("modbus-io.toml", port, period_ms, reconnect_max_ms)
}

/// A shipped sample (assets/machines/NAME) with every address pointed at
/// `port`, every signal polled every `period_ms` and the given back-off.
pub fn sample_config(name: &str, port: u16, period_ms: u64, reconnect_max_ms: u64) -> String {
    let text = std::fs::read_to_string(root().join("assets/machines").join(name)).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        let line = if line.starts_with("address = \"127.0.0.1:5020\"") {
            format!("address = \"127.0.0.1:{port}\"")
        } else if line.starts_with("period_ms") {
            format!("period_ms = {period_ms}")
        } else if line.starts_with("reconnect_max_ms") {
            format!("reconnect_max_ms = {reconnect_max_ms}")
        } else if line.starts_with("reconnect_min_ms") {
            format!("reconnect_min_ms = {}", reconnect_max_ms.min(50))
        } else {
            line.to_owned()
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// Waits up to `limit` for `ok`; returns how long it took.
pub fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(Duration::from_micros(200));
    }
    t0.elapsed()
}

/// The state alarm `alid` is in now (Normal if it never fired).
pub fn alarm_state(
    alarms: &waferscope::monitor::AlarmService,
    alid: u32,
) -> waferscope::monitor::AlarmState {
    let mut r = alarms.snapshots.reader().unwrap();
    r.read()
        .value
        .entry(alid)
        .map(|e| e.state)
        .unwrap_or(waferscope::monitor::AlarmState::Normal)
}

pub fn write_config(dir: &Path, text: &str) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join("machine.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Sends SIGTERM to our own child and waits up to `limit` for it to exit;
/// fails the test if it does not (the caller's guard ends it by PID).
pub fn sigterm_and_wait(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on our own child's PID.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(
            t0.elapsed() < limit,
            "did not stop within {limit:?} of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
