//! Prometheus metrics for the fab's equipment-health dashboards: run and
//! SEMI E10 equipment state, throughput, alarms, the hot path's counters
//! (the Health panel's figures), device links and, once the GEM layer
//! fills [`HostLinkSlot`], the host link's states. Off by default; served
//! at `http://ADDR/metrics` with `--metrics ADDR` (`Station::serve_metrics`).
//!
//! - [`sources`]: what is read on each scrape (the station's caches and
//!   counters, never a hot thread's time) and the GEM layer's seam;
//! - [`exposition`]: the metric families (docs/metrics.md lists them);
//! - [`e10`]: the SEMI E10 state from the run state and alarms;
//! - [`rate`]: per-second rates over a window of at least a second;
//! - [`http`]: the minimal HTTP/1.1 responder for `GET /metrics`.

pub mod e10;
pub mod exposition;
pub mod http;
pub mod rate;
pub mod sources;

pub use e10::{e10_state, E10Inputs, E10State};
pub use sources::{
    HostLinkReading, HostLinkSlot, HostLinkSource, MetricsSources, Reading, StateReading,
};

use anyhow::{Context, Result};
use prometheus_client::registry::Registry;
use std::net::SocketAddr;
use std::sync::Arc;

/// The exposition's content type: the Prometheus text format 0.0.4, which
/// every Prometheus server scrapes and `promtool check metrics` checks
/// (it does not read OpenMetrics' `# EOF`/`_total` family naming).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A registry whose one collector reads `sources` on every scrape; every
/// family is named `waferscope_…`.
pub fn registry(sources: MetricsSources) -> Registry {
    let mut registry = Registry::with_prefix("waferscope");
    registry.register_collector(Box::new(exposition::StationCollector::new(sources)));
    registry
}

/// One scrape's text, as served.
pub fn exposition_text(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, registry)?;
    Ok(text)
}

/// The exposition a scrape serves when the sources read `reading` (for
/// checking the format and the families against a known picture).
pub fn exposition_of(reading: Reading) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::with_prefix("waferscope");
    registry.register_collector(Box::new(exposition::FixedReading(reading)));
    exposition_text(&registry)
}

/// Listens on `addr` and serves `GET /metrics` from `sources` on a task of
/// `rt`, until `rt` ends. Returns the address listened on (the port the
/// kernel chose for port 0). A port in use or an address this host does
/// not have is an error naming `--metrics` and the address.
pub fn serve(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    sources: MetricsSources,
) -> Result<SocketAddr> {
    // Bound here, not in the task, so the caller hears of a port in use
    // before anything else starts.
    let std_listener = std::net::TcpListener::bind(addr)
        .with_context(|| format!("--metrics {addr}: cannot listen there"))?;
    std_listener
        .set_nonblocking(true)
        .with_context(|| format!("--metrics {addr}: cannot listen there"))?;
    let local = std_listener
        .local_addr()
        .context("--metrics: local address")?;
    let listener = {
        let _in_runtime = rt.enter();
        tokio::net::TcpListener::from_std(std_listener)
            .with_context(|| format!("--metrics {addr}: cannot listen there"))?
    };
    let registry = Arc::new(registry(sources));
    rt.spawn(http::serve(listener, registry));
    tracing::info!("metrics: serving http://{local}/metrics");
    Ok(local)
}
