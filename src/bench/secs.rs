//! `waferscope bench secs`: S1F3/S1F4 (selected equipment status) round
//! trips per second against the station's GEM layer, the way a host polls
//! a tool. The equipment is the real composition: a station (simulated
//! machine, its own temporary data directory) with GEM listening on
//! 127.0.0.1; the host is our own HSMS layer in active mode, on its own
//! runtime, sending one request at a time and waiting for each reply.
//!
//! Timed region: from queueing the request to decoding the reply's body,
//! per round trip (encoding the request body is done once, outside).
//! Beside it, measured in the same run over the same connection:
//! Linktest round trips (HSMS control messages, answered by the transport
//! without GEM), the floor the GEM figures sit on. With `--secsgem PYTHON`
//! an independent host (secsgem 0.3.0, tests/peers/secsgem/s1f3_rate.py)
//! polls the same equipment the same way and reports its own rate.

use super::Report;
use crate::host::gem::variables::{SVS, SV_CLOCK};
use crate::host::gem::{CommState, GemConfig, GemHandle};
use crate::host::hsms::{
    ConnectionState, Hsms, HsmsConfig, HsmsEvent, HsmsHandle, HsmsMode, HsmsTimers,
};
use crate::host::secs2::{decode_body, encode_body, Item};
use crate::hot::LatencyHistogram;
use crate::station::{Station, StationConfig};
use anyhow::{anyhow, bail, Context, Result};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// One phase: round trips of `op` for `secs` after a warm-up.
struct Phase {
    count: u64,
    secs: f64,
    rtt: LatencyHistogram,
}

async fn phase<F, Fut>(secs: f64, mut op: F) -> Result<Phase>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    for _ in 0..200 {
        op().await?;
    }
    let rtt = LatencyHistogram::new();
    let start = Instant::now();
    let mut count = 0;
    while start.elapsed().as_secs_f64() < secs {
        let t0 = Instant::now();
        op().await?;
        rtt.record_duration(t0.elapsed());
        count += 1;
    }
    Ok(Phase {
        count,
        secs: start.elapsed().as_secs_f64(),
        rtt,
    })
}

fn add_phase(r: &mut Report, name: &str, p: &Phase) {
    r.add(&format!("{name}_per_s"), p.count as f64 / p.secs, "");
    r.add(
        &format!("{name}_p50"),
        p.rtt.quantile(0.5) as f64 / 1e3,
        "us",
    );
    r.add(
        &format!("{name}_p99"),
        p.rtt.quantile(0.99) as f64 / 1e3,
        "us",
    );
}

fn body(item: &Item) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    encode_body(Some(item), &mut out).map_err(|e| anyhow!("encoding: {e}"))?;
    Ok(out)
}

/// Our host side: connects, selects, answers what the equipment sends
/// (S1F13, event reports, alarms) so it never waits on us, and goes on-line.
async fn our_host(equipment: SocketAddr) -> Result<HsmsHandle> {
    let (host, mut events) = Hsms::start(HsmsConfig {
        mode: HsmsMode::Active { connect: equipment },
        timers: HsmsTimers {
            t3: Duration::from_secs(5),
            t5: Duration::from_millis(200),
            ..HsmsTimers::default()
        },
        ..HsmsConfig::default()
    })
    .await
    .context("starting our host side")?;
    let answers = host.clone();
    tokio::spawn(async move {
        while let Some(e) = events.recv().await {
            if let HsmsEvent::Primary(m) = e {
                if !m.w_bit {
                    continue;
                }
                let reply = match (m.stream, m.function) {
                    (1, 13) => Item::list([Item::binary_byte(0), Item::empty_list()]),
                    _ => Item::binary_byte(0),
                };
                let mut out = Vec::new();
                if encode_body(Some(&reply), &mut out).is_ok()
                    && answers.reply(&m, m.function + 1, out).is_err()
                {
                    tracing::warn!(
                        "bench host: the reply to S{}F{} was not sent",
                        m.stream,
                        m.function
                    );
                }
            }
        }
    });
    let mut state = host.state_watch();
    tokio::time::timeout(Duration::from_secs(10), async {
        while *state.borrow_and_update() != ConnectionState::Selected {
            state.changed().await.ok();
        }
    })
    .await
    .context("the equipment did not select within 10 s")?;
    let s1f14 = host
        .request(1, 13, body(&Item::empty_list())?)
        .await
        .context("S1F13")?;
    if s1f14.function != 14 {
        bail!("S1F13 answered with S1F{}", s1f14.function);
    }
    let s1f18 = host.request(1, 17, Vec::new()).await.context("S1F17")?;
    let onlack = decode_body(&s1f18.body)
        .ok()
        .flatten()
        .and_then(|i| i.as_binary_byte());
    if !matches!(onlack, Some(0) | Some(2)) {
        bail!("S1F17 (go on-line) refused: ONLACK {onlack:?}");
    }
    Ok(host)
}

fn temp_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("waferscope-bench-secs-{}", std::process::id()));
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    Ok(d)
}

fn start_equipment(dir: &Path) -> Result<(Station, GemHandle, SocketAddr)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let station = Station::start(StationConfig {
        db: dir.join("bench.db"),
        alarms: root.join("assets/alarms.toml"),
        recipes: root.join("assets/recipes"),
        thumbnails: dir.join("thumbnails"),
        read_history: false,
        paced: false,
        ..StationConfig::default()
    })?;
    let mut cfg = GemConfig::new(
        HsmsMode::Passive {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        },
        dir,
        dir,
        root.join("assets/recipes"),
    );
    // The log is still written (it is part of every message's cost in
    // production), to the temporary directory.
    cfg.secs_log = Some(dir.join("secs.log"));
    let gem = station.start_gem(cfg)?;
    let addr = gem
        .local_addr()
        .ok_or_else(|| anyhow!("GEM is not listening"))?;
    Ok((station, gem, addr))
}

/// The secsgem host polling the same equipment: its own count and rate.
fn secsgem_rate(python: &Path, equipment: SocketAddr, secs: f64) -> Result<(f64, f64)> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/secsgem/s1f3_rate.py");
    let out = std::process::Command::new(python)
        .arg(&script)
        .arg(equipment.port().to_string())
        .arg(secs.to_string())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}{}",
            script.display(),
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // "round_trips N seconds S"
    let words: Vec<&str> = text.split_whitespace().collect();
    match words.as_slice() {
        ["round_trips", n, "seconds", s] => Ok((n.parse()?, s.parse()?)),
        _ => bail!("unexpected output from {}: {text}", script.display()),
    }
}

pub fn run(secs: f64, secsgem_python: Option<&Path>) -> Result<Report> {
    let dir = temp_dir()?;
    let result = run_in(&dir, secs, secsgem_python);
    std::fs::remove_dir_all(&dir).ok();
    result
}

fn run_in(dir: &Path, secs: f64, secsgem_python: Option<&Path>) -> Result<Report> {
    let (station, gem, equipment) = start_equipment(dir)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("the host's runtime")?;
    let mut r = Report::new("secs");
    r.add("status_variables", SVS.len() as f64, "");
    rt.block_on(async {
        let host = our_host(equipment).await?;
        // Wait for GEM's own view: communicating (our S1F13 answered).
        let t0 = Instant::now();
        while gem.communication_state() != CommState::Communicating {
            if t0.elapsed() > Duration::from_secs(10) {
                bail!("GEM never reached COMMUNICATING");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let all = body(&Item::empty_list())?;
        let one = body(&Item::list([Item::u4(SV_CLOCK)]))?;
        let s1f3 = |req: Vec<u8>| {
            let host = host.clone();
            async move {
                let reply = host.request(1, 3, req).await?;
                if reply.function != 4 {
                    bail!("S1F3 answered with S1F{}", reply.function);
                }
                decode_body(&reply.body)
                    .map_err(|e| anyhow!("S1F4: {e}"))?
                    .ok_or_else(|| anyhow!("S1F4 without a body"))?;
                Ok(())
            }
        };
        let linktest = phase(secs, || {
            let host = host.clone();
            async move { host.linktest().await.map_err(|e| anyhow!("linktest: {e}")) }
        })
        .await?;
        let all_svs = phase(secs, || s1f3(all.clone())).await?;
        let one_sv = phase(secs, || s1f3(one.clone())).await?;
        add_phase(&mut r, "linktest_round_trips", &linktest);
        add_phase(&mut r, "s1f3_all_svs_round_trips", &all_svs);
        add_phase(&mut r, "s1f3_one_sv_round_trips", &one_sv);
        host.separate().await.ok();
        host.shutdown().await;
        Ok::<(), anyhow::Error>(())
    })?;
    if let Some(python) = secsgem_python {
        // Our host has separated; the equipment listens again for the next.
        let (n, s) = secsgem_rate(python, equipment, secs)?;
        r.add("secsgem_s1f3_all_svs_round_trips_per_s", n / s, "");
    }
    station.runtime().block_on(gem.shutdown());
    drop(station);
    Ok(r)
}
