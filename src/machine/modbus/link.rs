//! One Modbus TCP server's connection: opened on first use, closed on any
//! transport failure or timeout (a late answer would otherwise be taken
//! for the next request's), reopened with exponential back-off so a dead
//! server costs the polling thread one connect timeout per back-off step
//! rather than one per poll.

use crate::hot::Counter;
use crate::machine::config::{ModbusServer, RegisterKind};
use crate::machine::IoError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_modbus::client::sync::{self, Reader as _, Writer as _};
use tokio_modbus::prelude::SlaveContext as _;
use tokio_modbus::Slave;

/// What a link has been through, readable from any thread (the `devices`
/// command, the health panel, tests).
#[derive(Default)]
pub struct LinkStatus {
    pub connected: AtomicBool,
    /// Connections opened (the first one included).
    pub connects: Counter,
    /// Connect attempts that failed.
    pub connect_failures: Counter,
    /// Requests that timed out (the link was closed each time).
    pub timeouts: Counter,
    /// Connections lost (reset, closed by the server, garbled answer).
    pub drops: Counter,
    /// Exception responses (the device answered with an error code).
    pub exceptions: Counter,
    /// Requests answered with data.
    pub answered: Counter,
}

pub struct Link {
    pub server: ModbusServer,
    pub status: Arc<LinkStatus>,
    ctx: Option<sync::Context>,
    /// The unit id the open connection addresses now.
    unit: u8,
    next_attempt: Option<Instant>,
    backoff: Duration,
}

impl Link {
    pub fn new(server: ModbusServer) -> Self {
        Self {
            backoff: server.reconnect_min,
            server,
            status: Arc::new(LinkStatus::default()),
            ctx: None,
            unit: 0,
            next_attempt: None,
        }
    }

    /// After a failure the link refuses to reconnect until its back-off
    /// has passed; a caller that must retry now (a stage move) waits for
    /// that, at most `limit`, instead of failing every retry at once.
    pub fn wait_for_reconnect(&self, limit: std::time::Duration) {
        if self.ctx.is_none() {
            if let Some(t) = self.next_attempt {
                let wait = t.saturating_duration_since(Instant::now()).min(limit);
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
            }
        }
    }

    /// Whether a connection is open now.
    pub fn is_open(&self) -> bool {
        self.ctx.is_some()
    }

    /// Opens the connection if it is closed and the back-off allows an
    /// attempt now.
    fn ensure_open(&mut self, unit: u8) -> Result<&mut sync::Context, IoError> {
        if self.ctx.is_none() {
            let now = Instant::now();
            if self.next_attempt.is_some_and(|t| now < t) {
                return Err(IoError::Disconnected);
            }
            match sync::tcp::connect_slave_with_timeout(
                self.server.address,
                Slave(unit),
                Some(self.server.timeout),
            ) {
                Ok(ctx) => {
                    tracing::info!(server = %self.server.name, address = %self.server.address, "modbus connected");
                    self.ctx = Some(ctx);
                    self.unit = unit;
                    self.backoff = self.server.reconnect_min;
                    self.next_attempt = None;
                    self.status.connects.incr();
                    self.status.connected.store(true, Ordering::Relaxed);
                }
                Err(e) => {
                    self.status.connect_failures.incr();
                    // Logged on the first failure of a run of them only:
                    // a dead server must not fill the log at poll rate.
                    if self.backoff == self.server.reconnect_min {
                        tracing::warn!(server = %self.server.name, address = %self.server.address, "modbus connect failed: {e}");
                    }
                    self.next_attempt = Some(now + self.backoff);
                    self.backoff = (self.backoff * 2).min(self.server.reconnect_max);
                    return Err(IoError::Disconnected);
                }
            }
        }
        let ctx = self.ctx.as_mut().expect("opened above");
        if self.unit != unit {
            ctx.set_slave(Slave(unit));
            self.unit = unit;
        }
        Ok(ctx)
    }

    /// Closes the connection after a failure; the next attempt waits out
    /// the shortest back-off.
    fn close(&mut self, why: &str) {
        if self.ctx.take().is_some() {
            tracing::warn!(server = %self.server.name, address = %self.server.address, "modbus link closed: {why}");
        }
        self.status.connected.store(false, Ordering::Relaxed);
        self.next_attempt = Some(Instant::now() + self.server.reconnect_min);
        self.backoff = (self.server.reconnect_min * 2).min(self.server.reconnect_max);
    }

    /// Reads `out.len()` (1 or 2) registers or bits of `kind` from
    /// `address`, into `out` (bits as 0/1).
    pub fn read(
        &mut self,
        unit: u8,
        kind: RegisterKind,
        address: u16,
        out: &mut [u16],
    ) -> Result<(), IoError> {
        let n = out.len() as u16;
        let ctx = self.ensure_open(unit)?;
        // The crate returns a fresh Vec per answer (its allocation, measured
        // in BENCHMARKS.md); we only copy out of it.
        let answer = match kind {
            RegisterKind::Holding => ctx
                .read_holding_registers(address, n)
                .map(|r| r.map(|w| copy_words(&w, out))),
            RegisterKind::Input => ctx
                .read_input_registers(address, n)
                .map(|r| r.map(|w| copy_words(&w, out))),
            RegisterKind::Coil => ctx
                .read_coils(address, n)
                .map(|r| r.map(|b| copy_bits(&b, out))),
            RegisterKind::Discrete => ctx
                .read_discrete_inputs(address, n)
                .map(|r| r.map(|b| copy_bits(&b, out))),
        };
        // An answer shorter than asked (the crate checks the length only in
        // debug builds) must not leave old words behind as a fresh value.
        match answer {
            Ok(Ok(false)) => {
                self.status.drops.incr();
                self.close("answer shorter than the request");
                Err(IoError::Disconnected)
            }
            Ok(Ok(true)) => self.settle(Ok(Ok(()))),
            Ok(Err(code)) => self.settle(Ok(Err(code))),
            Err(e) => self.settle(Err(e)),
        }
    }

    /// Writes `words` to holding registers from `address` (FC16).
    pub fn write_registers(
        &mut self,
        unit: u8,
        address: u16,
        words: &[u16],
    ) -> Result<(), IoError> {
        let ctx = self.ensure_open(unit)?;
        let answer = ctx.write_multiple_registers(address, words);
        self.settle(answer)
    }

    /// Writes one coil (FC5).
    pub fn write_coil(&mut self, unit: u8, address: u16, on: bool) -> Result<(), IoError> {
        let ctx = self.ensure_open(unit)?;
        let answer = ctx.write_single_coil(address, on);
        self.settle(answer)
    }

    /// Counts an answer and turns it into ours; a transport failure closes
    /// the link.
    fn settle(&mut self, answer: tokio_modbus::Result<()>) -> Result<(), IoError> {
        match answer {
            Ok(Ok(())) => {
                self.status.answered.incr();
                Ok(())
            }
            Ok(Err(code)) => {
                self.status.exceptions.incr();
                Err(IoError::Device(u16::from(u8::from(code))))
            }
            Err(tokio_modbus::Error::Transport(e)) if e.kind() == std::io::ErrorKind::TimedOut => {
                self.status.timeouts.incr();
                self.close("request timed out");
                Err(IoError::Timeout)
            }
            Err(e) => {
                self.status.drops.incr();
                self.close(&e.to_string());
                Err(IoError::Disconnected)
            }
        }
    }
}

/// Copies an answer; false if it was shorter than asked.
fn copy_words(from: &[u16], to: &mut [u16]) -> bool {
    for (t, f) in to.iter_mut().zip(from) {
        *t = *f;
    }
    from.len() >= to.len()
}

/// Copies bits as 0/1; false if the answer was shorter than asked.
fn copy_bits(from: &[bool], to: &mut [u16]) -> bool {
    for (t, f) in to.iter_mut().zip(from) {
        *t = u16::from(*f);
    }
    from.len() >= to.len()
}
