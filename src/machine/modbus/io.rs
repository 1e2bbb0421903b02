//! The Modbus TCP `Io` driver: each heartbeat and signal is one request to
//! its server (one or two registers). Our part allocates nothing per read:
//! the points are resolved into arrays once, values decode into a stack
//! buffer. (`tokio-modbus` allocates its answer; measured and reported.)

use super::decode;
use super::link::{Link, LinkStatus};
use crate::machine::config::{ModbusIoConfig, ModbusPoint};
use crate::machine::{Io, IoError, Signal, Subsystem, SIGNALS, SUBSYSTEMS};
use std::sync::Arc;

pub struct ModbusIo {
    links: Vec<Link>,
    heartbeats: [ModbusPoint; SUBSYSTEMS.len()],
    signals: [ModbusPoint; SIGNALS.len()],
}

impl ModbusIo {
    /// Connections open lazily, on the first poll (so a server that is down
    /// at start is a Lost subsystem and an alarm, not a station that will
    /// not start).
    pub fn new(cfg: &ModbusIoConfig) -> Self {
        Self {
            links: cfg.servers.iter().cloned().map(Link::new).collect(),
            heartbeats: cfg.heartbeats,
            signals: cfg.signals,
        }
    }

    /// Each server's link status, by server name (sorted).
    pub fn statuses(&self) -> Vec<(String, Arc<LinkStatus>)> {
        self.links
            .iter()
            .map(|l| (l.server.name.clone(), l.status.clone()))
            .collect()
    }

    fn read_point(&mut self, p: ModbusPoint) -> Result<[u16; 2], IoError> {
        let mut words = [0u16; 2];
        let n = usize::from(p.data_type.words());
        self.links[p.server].read(p.unit_id, p.register, p.address, &mut words[..n])?;
        Ok(words)
    }
}

impl Io for ModbusIo {
    fn read_heartbeat(&mut self, subsystem: Subsystem) -> Result<u32, IoError> {
        let p = self.heartbeats[subsystem.index()];
        let words = self.read_point(p)?;
        Ok(decode::counter(&p, &words))
    }

    fn read_signal(&mut self, signal: Signal) -> Result<f64, IoError> {
        let p = self.signals[signal.index()];
        let words = self.read_point(p)?;
        Ok(decode::value(&p, &words))
    }
}
