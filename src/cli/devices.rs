//! `waferscope check-config PATH` (validate a machine configuration without
//! connecting to anything) and `waferscope devices PATH` (connect to each
//! device once and report what it is and what it says).

use crate::machine::config::{
    CameraDriver, DataType, MachineConfig, ModbusPoint, RegisterKind, StageDriver,
};
use crate::machine::modbus::{decode, Link};
use crate::machine::{IoDriver, Signal, SIGNALS, SUBSYSTEMS};
use anyhow::Result;
use std::path::Path;

/// Prints what the configuration sets up; an invalid file is an error that
/// names the file, the field and the value (exit 2).
pub fn check_config(path: &Path) -> Result<()> {
    let cfg = MachineConfig::load(path)?;
    crate::outln!("{}: valid", path.display())?;
    for line in cfg.describe() {
        crate::outln!("  {line}")?;
    }
    Ok(())
}

/// Connects to every device once and reports it. Returns whether every
/// device answered every read.
pub fn devices(path: &Path) -> Result<bool> {
    let cfg = MachineConfig::from_arg(&path.to_string_lossy())?;
    let mut all_answered = true;
    match &cfg.camera {
        CameraDriver::Sim => crate::outln!("camera: simulated (built in)")?,
        #[cfg(feature = "gige")]
        CameraDriver::Gige(g) => match crate::machine::gige::identify(g.address) {
            Ok(c) => crate::outln!(
                "camera: GigE Vision at {}: connected, {} {} serial {} firmware {}, sensor {}×{}, pixel format {}",
                g.address,
                c.vendor,
                c.model,
                c.serial,
                c.firmware,
                c.sensor.0,
                c.sensor.1,
                c.pixel_format
            )?,
            Err(why) => {
                all_answered = false;
                crate::outln!("camera: GigE Vision at {}: NOT CONNECTED ({why})", g.address)?
            }
        },
        #[cfg(not(feature = "gige"))]
        CameraDriver::Gige(g) => {
            all_answered = false;
            crate::outln!(
                "camera: GigE Vision at {}: NOT READ — this build has no GigE support (cargo feature `gige`)",
                g.address
            )?
        }
    }
    match &cfg.stage {
        StageDriver::Sim => crate::outln!("stage: simulated (built in)")?,
        StageDriver::Modbus(s) => {
            // Read only: the stage is not moved by a status command.
            let mut link = Link::new(s.server.clone());
            let mut read = |kind, address, n: usize| {
                let mut w = [0u16; 2];
                link.read(s.unit_id, kind, address, &mut w[..n]).map(|()| w)
            };
            let x = read(RegisterKind::Holding, s.actual_x, 2);
            let y = read(RegisterKind::Holding, s.actual_y, 2);
            let in_pos = read(RegisterKind::Discrete, s.in_position, 1);
            match (x, y, in_pos) {
                (Ok(x), Ok(y), Ok(p)) => crate::outln!(
                    "stage: modbus at {}: connected, at ({}, {}) µm, {}",
                    s.server.address,
                    decode::raw_value(DataType::F32, s.word_order, &x),
                    decode::raw_value(DataType::F32, s.word_order, &y),
                    if p[0] != 0 {
                        "in position"
                    } else {
                        "NOT in position"
                    }
                )?,
                (x, y, p) => {
                    all_answered = false;
                    let why = [x.err(), y.err(), p.err()].into_iter().flatten().next();
                    crate::outln!(
                        "stage: modbus at {}: NOT CONNECTED ({why:?})",
                        s.server.address
                    )?
                }
            }
        }
    }
    let IoDriver::Modbus(m) = &cfg.io else {
        crate::outln!("io: simulated (built in)")?;
        return Ok(all_answered);
    };
    for (index, server) in m.servers.iter().enumerate() {
        let mut link = Link::new(server.clone());
        let points: Vec<(String, ModbusPoint, Option<Signal>)> = SUBSYSTEMS
            .iter()
            .map(|s| {
                (
                    format!("{} heartbeat", s.name()),
                    m.heartbeats[s.index()],
                    None,
                )
            })
            .chain(
                SIGNALS
                    .iter()
                    .map(|s| (s.name().to_owned(), m.signals[s.index()], Some(*s))),
            )
            .filter(|(_, p, _)| p.server == index)
            .collect();
        let mut lines = Vec::new();
        for (name, p, signal) in &points {
            let mut words = [0u16; 2];
            let n = usize::from(p.data_type.words());
            let read = link.read(p.unit_id, p.register, p.address, &mut words[..n]);
            let shown = match (read, signal) {
                (Ok(()), Some(s)) => {
                    let v = decode::value(p, &words[..n]);
                    let info = s.info();
                    let judged = if v.is_finite() && v >= info.valid.0 && v <= info.valid.1 {
                        ""
                    } else {
                        "  INVALID (outside what the device can report)"
                    };
                    format!("{v} {}{judged}", info.unit)
                }
                (Ok(()), None) => format!("counter {}", decode::counter(p, &words[..n])),
                (Err(e), _) => {
                    all_answered = false;
                    format!("no answer: {e:?}")
                }
            };
            lines.push(format!(
                "    {name:<28} unit {} {:?} {}: {shown}",
                p.unit_id, p.register, p.address
            ));
        }
        let state = if link.is_open() {
            "connected"
        } else {
            all_answered = false;
            "NOT CONNECTED"
        };
        crate::outln!(
            "io: modbus server `{}` at {}: {state}",
            server.name,
            server.address
        )?;
        for l in lines {
            crate::outln!("{l}")?;
        }
    }
    Ok(all_answered)
}
