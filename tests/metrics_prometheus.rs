//! The Prometheus endpoint against Prometheus' own tools (Debian package
//! `prometheus`, which `.ci/run` installs): `promtool check metrics` on the
//! exposition, and a real Prometheus server, started here on 127.0.0.1 with
//! a temporary data directory and ended by its PID, scraping a station that
//! inspects a simulated wafer; its query API must return the wafer count.
//! Also: every family docs/metrics.md lists is exposed and every exposed
//! family is listed there; other paths answer 404; a port in use is an
//! error naming `--metrics`.

mod peers;

use peers::free_port;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use waferscope::metrics::sources::{HotThreadReading, LinkReading, PipelineReading};
use waferscope::metrics::{exposition_of, HostLinkReading, Reading, StateReading};
use waferscope::run::{ExitStatus, RunCommand, RunIdentity, RunState};
use waferscope::station::{Station, StationConfig};

#[global_allocator]
static ALLOC: waferscope::hot::CountingAlloc = waferscope::hot::CountingAlloc;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("waferscope-metrics-{}-{name}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Polls `ok` every `every` until it holds or `limit` passes (then fails
/// naming `what`).
fn poll(what: &str, limit: Duration, every: Duration, mut ok: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(t0.elapsed() < limit, "not within {limit:?}: {what}");
        std::thread::sleep(every);
    }
}

/// A station with its files in `d` and the shipped alarms and recipes;
/// `paced`: the simulated stage and camera at the real tool's pace.
fn station_in(d: &Path, paced: bool) -> Station {
    Station::start(StationConfig {
        db: d.join("station.db"),
        alarms: root().join("assets/alarms.toml"),
        recipes: root().join("assets/recipes"),
        thumbnails: d.join("thumbnails"),
        read_history: false,
        paced,
        ..StationConfig::default()
    })
    .unwrap()
}

/// One HTTP/1.0 GET (so no server answers in chunks): status, head, body.
fn http_get(addr: SocketAddr, path: &str) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_owned(), body.to_owned()))
}

/// `promtool check metrics` on `text`: its exit status and what it said.
fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (apt-get install prometheus; .ci/run does)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

/// A reading with every optional part present, so every family is written.
fn full_reading() -> Reading {
    let mut run = waferscope::run::RunSnapshot {
        state: RunState::Running,
        dies_total: 40,
        dies_done: 12,
        defects: 3,
        elapsed_ms: 6_000,
        taken_ns: 1_000,
        ..Default::default()
    };
    run.totals.count_end(ExitStatus::Complete);
    run.totals.count_end(ExitStatus::Faulted);
    run.totals.dies_inspected = 52;
    run.totals.defects = 9;
    run.totals.last_complete_wafer_ms = 20_000;
    let alarms = waferscope::monitor::AlarmSnapshot {
        taken_ns: 2_000,
        transitions: 4,
        active: [1, 0, 1],
        raised: [2, 0, 1],
        ..Default::default()
    };
    Reading {
        now_ns: 3_000_000_000,
        run,
        machine: waferscope::monitor::MachineSnapshot {
            taken_ns: 2_500,
            reads: 1_234,
            ..Default::default()
        },
        alarms,
        pipeline: Some(PipelineReading {
            frames_acquired: 13,
            dies_inspected: 12,
            pixels_inspected: 12 << 20,
            defects_found: 3,
            stall_ns: 2_500_000,
            queue_depth: 1,
            pool_in_use: 2,
            pool_capacity: 8,
            workers: 1,
            handoff_count: 12,
            handoff_p50_ns: 40_000,
            handoff_p99_ns: 90_000,
            detect_p50_ns: 3_000_000,
            detect_p99_ns: 5_000_000,
            frames_per_second: Some(2.0),
            pixels_per_second: Some(2.0 * (1 << 20) as f64),
            ..PipelineReading::default()
        }),
        hot_threads: vec![HotThreadReading {
            name: "acquisition",
            allocations: 17,
            bytes: 4_096,
            allocations_per_second: Some(0.0),
        }],
        threads: [3, 1, 0, 2, 0],
        links: vec![LinkReading {
            name: "io-1".into(),
            connected: true,
            connects: 1,
            connect_failures: 0,
            timeouts: 0,
            drops: 0,
            exceptions: 0,
            answered: 99,
        }],
        alarm_journal_drops: 0,
        alarm_commands_refused: 0,
        host: Some(HostLinkReading {
            communication: StateReading {
                states: &["NOT_COMMUNICATING", "COMMUNICATING"],
                current: "COMMUNICATING",
            },
            control: StateReading {
                states: &["OFFLINE", "ONLINE_LOCAL", "ONLINE_REMOTE"],
                current: "ONLINE_REMOTE",
            },
            taken_ns: 2_900_000_000,
        }),
    }
}

/// `(name, type)` of every family in an exposition (`# TYPE` lines).
fn exposed_families(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .map(|l| {
            let (n, t) = l.split_once(' ').unwrap();
            (n.to_owned(), t.to_owned())
        })
        .collect()
}

/// `(name, type)` of every family the table rows of docs/metrics.md list
/// (rows starting with "| `waferscope_").
fn documented_families() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(root().join("docs/metrics.md")).unwrap();
    doc.lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter(|l| l.starts_with("waferscope_"))
        .map(|l| {
            let (name, rest) = l.split_once('`').unwrap();
            let ty = rest.split('|').nth(1).unwrap().trim().to_owned();
            (name.to_owned(), ty)
        })
        .collect()
}

#[test]
fn every_documented_family_is_exposed_and_every_exposed_family_documented() {
    let text = exposition_of(full_reading()).unwrap();
    let mut exposed = exposed_families(&text);
    let mut documented = documented_families();
    exposed.sort();
    documented.sort();
    assert!(
        documented.len() >= 40,
        "docs/metrics.md lists only {} families",
        documented.len()
    );
    let missing: Vec<_> = documented.iter().filter(|f| !exposed.contains(f)).collect();
    let undocumented: Vec<_> = exposed.iter().filter(|f| !documented.contains(f)).collect();
    assert!(
        missing.is_empty() && undocumented.is_empty(),
        "documented but not exposed (name, type): {missing:?}\nexposed but not documented: {undocumented:?}"
    );
    // Every family has help text.
    for (name, _) in &exposed {
        let help = text
            .lines()
            .find_map(|l| l.strip_prefix(&format!("# HELP {name} ")))
            .unwrap_or("");
        assert!(help.len() > 10, "{name} has no help text");
    }
}

#[test]
fn promtool_accepts_the_exposition_with_every_family() {
    let text = exposition_of(full_reading()).unwrap();
    let (ok, said) = promtool_check(&text);
    assert!(
        ok,
        "promtool check metrics refused it:\n{said}\n---\n{text}"
    );
    // It is a checker that can fail: a counter without `_total` is refused.
    let (ok, _) = promtool_check("# HELP x_things Things.\n# TYPE x_things counter\nx_things 1\n");
    assert!(!ok, "promtool accepted a counter without _total");
}

/// A Prometheus server of our own: ended by its PID when dropped.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Prometheus {
    fn start(dir: &Path, target: SocketAddr) -> Self {
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: waferscope\n    scrape_interval: 1s\n    scrape_timeout: 1s\n\
                 \x20   static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let log = dir.join("prometheus.log");
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.join("prometheus.err")).unwrap())
            .spawn()
            .expect("prometheus (apt-get install prometheus; .ci/run does)");
        Self { child, addr, log }
    }

    /// What the server logged (its standard error).
    fn log(&self) -> String {
        std::fs::read_to_string(self.log.with_extension("err")).unwrap_or_default()
    }

    /// The value of the one series an instant query returns, if exactly
    /// one is returned.
    fn query_one(&mut self, query: &str) -> Option<f64> {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("prometheus exited ({status}):\n{}", self.log());
        }
        let (code, _, body) = http_get(self.addr, &format!("/api/v1/query?query={query}")).ok()?;
        if code != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let result = v["data"]["result"].as_array()?;
        if result.len() != 1 {
            return None;
        }
        result[0]["value"][1].as_str()?.parse().ok()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        // By its PID (the child we started), never by name.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_real_prometheus_scrapes_a_finished_run_and_counts_its_wafer() {
    let d = temp_dir("scrape");
    let station = station_in(&d, false);
    let metrics = station
        .serve_metrics("127.0.0.1:0".parse().unwrap())
        .unwrap();
    assert!(metrics.ip().is_loopback() && metrics.port() != 0);

    // The endpoint answers on its own path only, as text Prometheus reads.
    let (code, head, body) = http_get(metrics, "/metrics").unwrap();
    assert_eq!(code, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    assert!(body.contains("# TYPE waferscope_wafers_completed_total counter"));
    let (code, _, _) = http_get(metrics, "/").unwrap();
    assert_eq!(code, 404);
    // A second endpoint on the same address: the port is in use.
    let busy = station.serve_metrics(metrics).unwrap_err();
    let why = format!("{busy:#}");
    assert!(
        why.contains(&format!("--metrics {metrics}")) && why.contains("in use"),
        "{why}"
    );

    // Prometheus starts while the wafer is inspected.
    let mut prometheus = Prometheus::start(&d, metrics);

    let mut machine = station.monitor.snapshots.reader().unwrap();
    poll(
        "every heartbeat live",
        Duration::from_secs(60),
        Duration::from_millis(10),
        || machine.read().value.all_live(),
    );
    let recipe =
        waferscope::run::recipe::load(&root().join("assets/recipes/sampled-200mm.toml")).unwrap();
    station
        .engine
        .load(
            recipe,
            RunIdentity {
                lot: "LOT-M".into(),
                wafer: "W-1".into(),
                slot: 1,
                operator: "metrics".into(),
            },
        )
        .unwrap();
    station.engine.command(RunCommand::Start).unwrap();
    let mut run = station.engine.snapshots.reader().unwrap();
    poll(
        "the wafer to complete",
        Duration::from_secs(180),
        Duration::from_millis(20),
        || {
            let s = run.read().value;
            assert!(
                !matches!(s.state, RunState::Faulted | RunState::Aborted),
                "the run ended {:?}: {}",
                s.state,
                s.cause
            );
            s.state == RunState::Complete
        },
    );
    let done = run.read().value;
    assert_eq!(done.exit, Some(ExitStatus::Complete));
    assert!(done.totals.dies_inspected > 0);

    // What Prometheus stored from its scrapes, through its query API.
    let t0 = Instant::now();
    loop {
        let last = prometheus.query_one("waferscope_wafers_completed_total");
        if last == Some(1.0) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "Prometheus did not report 1 completed wafer within 90 s (last answer {last:?}); its log:\n{}",
            prometheus.log()
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(
        prometheus.query_one("waferscope_dies_inspected_total"),
        Some(done.totals.dies_inspected as f64)
    );
    assert_eq!(
        prometheus.query_one("waferscope_run_state%7Bstate%3D%22complete%22%7D"),
        Some(1.0)
    );
    assert_eq!(
        prometheus.query_one("up%7Bjob%3D%22waferscope%22%7D"),
        Some(1.0)
    );

    // And the exposition of the live station, pipeline included, passes
    // promtool too.
    let (_, _, body) = http_get(metrics, "/metrics").unwrap();
    assert!(body.contains("waferscope_pipeline_present 1"), "{body}");
    let (ok, said) = promtool_check(&body);
    assert!(
        ok,
        "promtool check metrics refused the live exposition:\n{said}\n---\n{body}"
    );

    drop(prometheus);
    drop(station);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn run_with_metrics_on_a_port_in_use_exits_2_naming_the_option() {
    let d = temp_dir("cli-busy");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .current_dir(&d)
        .arg("--data-dir")
        .arg(&d)
        .arg("--metrics")
        .arg(addr.to_string())
        .args(["run", "--fast", "--lot", "L", "--wafer", "W", "--recipe"])
        .arg(root().join("assets/recipes/sampled-200mm.toml"))
        .arg("--alarms")
        .arg(root().join("assets/alarms.toml"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("--metrics {addr}")), "{err}");
    // Refused before the run started: no run header on stdout.
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("dies"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    drop(taken);
    std::fs::remove_dir_all(&d).ok();
}

/// The value of the one series `series` (name and labels as printed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_dead_monitor_shows_as_a_growing_age_lost_heartbeats_and_downtime() {
    let d = temp_dir("dead-monitor");
    let station = station_in(&d, true);
    let metrics = station
        .serve_metrics("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let scrape = || http_get(metrics, "/metrics").unwrap().2;
    let live = "waferscope_heartbeat_quality{subsystem=\"stage\",quality=\"live\"}";
    let lost = "waferscope_heartbeat_quality{subsystem=\"stage\",quality=\"lost\"}";
    let out_of_date = "waferscope_snapshot_out_of_date{producer=\"monitor\"}";
    let age = "waferscope_snapshot_age_seconds{producer=\"monitor\"}";
    let downtime = "waferscope_e10_state{state=\"UNSCHEDULED_DOWNTIME\"}";
    poll(
        "a live, standing-by station",
        Duration::from_secs(60),
        Duration::from_millis(50),
        || {
            let t = scrape();
            sample(&t, live) == Some(1.0)
                && sample(&t, out_of_date) == Some(0.0)
                && sample(&t, "waferscope_e10_state{state=\"STANDBY\"}") == Some(1.0)
        },
    );

    station.monitor.panic_switch.trip();
    let mut first_age = None;
    poll(
        "the dead monitor to show",
        Duration::from_secs(60),
        Duration::from_millis(50),
        || {
            let t = scrape();
            let shown = sample(&t, out_of_date) == Some(1.0)
                && sample(&t, lost) == Some(1.0)
                && sample(&t, live) == Some(0.0)
                && sample(&t, downtime) == Some(1.0);
            if shown {
                first_age = sample(&t, age);
            }
            shown
        },
    );
    // Its last picture does not freeze: the age keeps growing.
    let first_age = first_age.expect("the monitor's age is exposed");
    poll(
        "the monitor's age to grow",
        Duration::from_secs(60),
        Duration::from_millis(50),
        || sample(&scrape(), age).is_some_and(|a| a > first_age),
    );
    drop(station);
    std::fs::remove_dir_all(&d).ok();
}

/// A station with a host link exposes GEM's states (what `Station::start_gem`
/// registers) with the GEM task's age, and promtool accepts them.
#[test]
fn a_station_with_gem_exposes_its_communication_and_control_state() {
    use waferscope::host::gem::GemConfig;
    use waferscope::host::hsms::HsmsMode;
    let d = temp_dir("gem");
    let station = station_in(&d, false);
    let metrics = station
        .serve_metrics("127.0.0.1:0".parse().unwrap())
        .unwrap();
    let (_, _, before) = http_get(metrics, "/metrics").unwrap();
    assert!(
        !before.contains("waferscope_gem_"),
        "no host link, no GEM series"
    );
    let gem = station
        .start_gem(GemConfig::new(
            HsmsMode::Passive {
                listen: "127.0.0.1:0".parse().unwrap(),
            },
            &d,
            &d,
            root().join("assets/recipes"),
        ))
        .unwrap();
    let mut text = String::new();
    poll(
        "GEM's tick",
        Duration::from_secs(10),
        Duration::from_millis(50),
        || {
            text = http_get(metrics, "/metrics").unwrap().2;
            sample(&text, "waferscope_snapshot_age_seconds{producer=\"gem\"}")
                .is_some_and(|a| a < 1.0)
        },
    );
    // No host has connected: NOT COMMUNICATING is the current state.
    assert_eq!(
        sample(
            &text,
            "waferscope_gem_communication_state{state=\"NOT COMMUNICATING\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "waferscope_gem_communication_state{state=\"COMMUNICATING\"}"
        ),
        Some(0.0)
    );
    let current = gem.control_state().name();
    assert_eq!(
        sample(
            &text,
            &format!("waferscope_gem_control_state{{state=\"{current}\"}}")
        ),
        Some(1.0),
        "{text}"
    );
    let (ok, why) = promtool_check(&text);
    assert!(ok, "{why}");
    station.runtime().block_on(gem.shutdown());
    drop(station);
    std::fs::remove_dir_all(d).ok();
}

/// `waferscope serve --metrics --remote`: the headless station serves its
/// metrics (GEM's states among them) and starts with the control switch at
/// REMOTE, kept in gem.toml; SIGTERM stops it cleanly.
#[test]
fn serve_with_metrics_and_remote_exposes_gem_and_keeps_the_switch() {
    use std::io::BufRead;
    let d = temp_dir("serve");
    /// Ends serve by PID if the test fails before it stops it.
    struct Serve(std::process::Child);
    impl Drop for Serve {
        fn drop(&mut self) {
            if matches!(self.0.try_wait(), Ok(None)) {
                self.0.kill().ok();
                self.0.wait().ok();
            }
        }
    }
    let mut serve = Serve(
        std::process::Command::new(env!("CARGO_BIN_EXE_waferscope"))
            .args([
                "--metrics",
                "127.0.0.1:0",
                "serve",
                "--gem",
                "127.0.0.1:0",
                "--fast",
                "--remote",
            ])
            .arg("--data-dir")
            .arg(&d)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let child = &mut serve.0;
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut metrics = None;
    for _ in 0..6 {
        let mut line = String::new();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        if let Some(url) = line.trim().strip_prefix("metrics: http://") {
            metrics = url.strip_suffix("/metrics").and_then(|a| a.parse().ok());
            break;
        }
    }
    let Some(metrics): Option<SocketAddr> = metrics else {
        child.kill().ok();
        child.wait().ok();
        panic!("serve did not print where its metrics are");
    };
    let mut text = String::new();
    poll(
        "GEM series",
        Duration::from_secs(20),
        Duration::from_millis(100),
        || {
            text = http_get(metrics, "/metrics")
                .map(|r| r.2)
                .unwrap_or_default();
            text.contains("waferscope_gem_control_state")
        },
    );
    assert_eq!(
        sample(
            &text,
            "waferscope_gem_communication_state{state=\"NOT COMMUNICATING\"}"
        ),
        Some(1.0),
        "{text}"
    );
    // The switch is set by the GEM task and saved by it, after the
    // endpoint is up: wait for the file to say REMOTE.
    let mut gem_toml = String::new();
    poll(
        "gem.toml saying REMOTE",
        Duration::from_secs(20),
        Duration::from_millis(50),
        || {
            gem_toml = std::fs::read_to_string(d.join("gem.toml")).unwrap_or_default();
            toml::from_str::<toml::Value>(&gem_toml)
                .ok()
                .and_then(|v| v.get("switches")?.get("remote")?.as_bool())
                == Some(true)
        },
    );
    let status = peers::sigterm_and_wait(child, Duration::from_secs(30));
    assert!(status.success(), "{status}");
    std::fs::remove_dir_all(d).ok();
}
