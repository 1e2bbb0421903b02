//! `waferscope bench modbus --machine PATH`: the Modbus I/O driver polling
//! every point of a machine configuration at 1 kHz, against whatever server
//! the configuration names (scripts/bench-modbus.sh starts a libmodbus
//! one). Per request: round trip p50/p99 and allocations, through our
//! driver and — the baseline, same requests, same server, same run — on
//! `tokio-modbus` alone. Heartbeat steps are checked on the way: a lost
//! or repeated request shows as a jump (the libmodbus peer advances a
//! heartbeat once per read).

use super::Report;
use crate::hot::{alloc_count, LatencyHistogram};
use crate::machine::config::{ModbusIoConfig, ModbusPoint, RegisterKind};
use crate::machine::modbus::ModbusIo;
use crate::machine::{Io, IoDriver, MachineConfig, SIGNALS, SUBSYSTEMS};
use anyhow::{bail, Context, Result};
use std::time::{Duration, Instant};
use tokio_modbus::client::sync::{tcp, Reader as _};

struct Phase {
    rtt: LatencyHistogram,
    allocations: u64,
    requests: u64,
    polls: u64,
    secs: f64,
}

/// Runs `poll` once per millisecond for `secs`; each call makes its
/// requests and records their round trips.
fn at_1_khz(secs: f64, mut poll: impl FnMut(&LatencyHistogram) -> Result<u64>) -> Result<Phase> {
    let rtt = LatencyHistogram::new();
    // Warm-up: connections open, buffers grown.
    for _ in 0..200 {
        poll(&rtt)?;
    }
    rtt.reset();
    let start = Instant::now();
    let mut next = start;
    let mut requests = 0;
    let mut polls = 0;
    let before = alloc_count::thread_allocations();
    while start.elapsed().as_secs_f64() < secs {
        requests += poll(&rtt)?;
        polls += 1;
        next += Duration::from_millis(1);
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        } else {
            next = Instant::now();
        }
    }
    Ok(Phase {
        allocations: alloc_count::thread_allocations() - before,
        rtt,
        requests,
        polls,
        secs: start.elapsed().as_secs_f64(),
    })
}

fn timed<T>(rtt: &LatencyHistogram, f: impl FnOnce() -> T) -> T {
    let t0 = Instant::now();
    let v = f();
    rtt.record_duration(t0.elapsed());
    v
}

pub fn run(machine: &str, secs: f64) -> Result<Report> {
    let cfg = MachineConfig::from_arg(machine)?;
    let IoDriver::Modbus(m) = cfg.io else {
        bail!("--machine {machine}: its I/O is not Modbus; nothing to measure");
    };
    let m: ModbusIoConfig = *m;
    let mut r = Report::new("modbus");
    let points = SUBSYSTEMS.len() + SIGNALS.len();

    // Our driver: every heartbeat and signal, each poll.
    let mut io = ModbusIo::new(&m);
    let mut last = [None::<u32>; SUBSYSTEMS.len()];
    let mut bad_steps = 0u64;
    let driver = at_1_khz(secs, |rtt| {
        for s in SUBSYSTEMS {
            let v = timed(rtt, || io.read_heartbeat(s))
                .map_err(|e| anyhow::anyhow!("{} heartbeat: {e:?}", s.name()))?;
            if let Some(prev) = last[s.index()] {
                // A u16 counter wraps at 65536, a u32 one at 2^32.
                let wrap = match m.heartbeats[s.index()].data_type.words() {
                    1 => 0xFFFF,
                    _ => u32::MAX,
                };
                if v != prev.wrapping_add(1) & wrap {
                    bad_steps += 1;
                }
            }
            last[s.index()] = Some(v);
        }
        for s in SIGNALS {
            timed(rtt, || io.read_signal(s)).map_err(|e| anyhow::anyhow!("{}: {e:?}", s.name()))?;
        }
        Ok(points as u64)
    })?;
    // Servers that serve one client at a time (libmodbus's example loop)
    // need this connection closed before the baseline's opens.
    drop(io);

    // Baseline: the same requests on the crate alone, one connection per
    // server opened here.
    let all: Vec<ModbusPoint> = m
        .heartbeats
        .iter()
        .chain(m.signals.iter())
        .copied()
        .collect();
    let mut ctxs = Vec::new();
    for s in &m.servers {
        let ctx =
            tcp::connect_slave_with_timeout(s.address, tokio_modbus::Slave(1), Some(s.timeout))
                .with_context(|| format!("connecting to {} ({})", s.name, s.address))?;
        ctxs.push(ctx);
    }
    let alone = at_1_khz(secs, |rtt| {
        for p in &all {
            let ctx = &mut ctxs[p.server];
            tokio_modbus::prelude::SlaveContext::set_slave(ctx, tokio_modbus::Slave(p.unit_id));
            let n = p.data_type.words();
            let ok = timed(rtt, || match p.register {
                RegisterKind::Holding => {
                    ctx.read_holding_registers(p.address, n).map(|r| r.is_ok())
                }
                RegisterKind::Input => ctx.read_input_registers(p.address, n).map(|r| r.is_ok()),
                RegisterKind::Coil => ctx.read_coils(p.address, n).map(|r| r.is_ok()),
                RegisterKind::Discrete => ctx.read_discrete_inputs(p.address, n).map(|r| r.is_ok()),
            })
            .context("tokio-modbus request")?;
            if !ok {
                bail!(
                    "tokio-modbus: exception response at {:?} {}",
                    p.register,
                    p.address
                );
            }
        }
        Ok(all.len() as u64)
    })?;

    let us = |ns: u64| ns as f64 / 1e3;
    for (name, p) in [("driver", &driver), ("tokio_modbus_alone", &alone)] {
        r.add(
            &format!("{name}_polls_per_s"),
            p.polls as f64 / p.secs,
            "/s",
        );
        r.add(
            &format!("{name}_requests_per_s"),
            p.requests as f64 / p.secs,
            "/s",
        );
        r.add(
            &format!("{name}_round_trip_p50"),
            us(p.rtt.quantile(0.5)),
            "µs",
        );
        r.add(
            &format!("{name}_round_trip_p99"),
            us(p.rtt.quantile(0.99)),
            "µs",
        );
        r.add(
            &format!("{name}_round_trip_max"),
            us(p.rtt.quantile(1.0)),
            "µs",
        );
        r.add(
            &format!("{name}_allocations_per_request"),
            p.allocations as f64 / p.requests.max(1) as f64,
            "",
        );
    }
    r.add(
        "driver_allocations_per_poll",
        driver.allocations as f64 / driver.polls.max(1) as f64,
        "",
    );
    r.add(
        "driver_added_allocations_per_request",
        (driver.allocations as f64
            - alone.allocations as f64 * driver.requests as f64 / alone.requests.max(1) as f64)
            / driver.requests.max(1) as f64,
        "",
    );
    r.add("heartbeat_steps_lost_or_repeated", bad_steps as f64, "");
    r.add("points_per_poll", points as f64, "");
    r.add("seconds_per_phase", secs, "s");
    Ok(r)
}
