//! The Modbus TCP I/O driver against two servers nobody on the team wrote:
//! libmodbus (C) for the 1 kHz sequence and the kill/restart case, pymodbus
//! for exception responses, slow answers and dropped connections. Both run
//! on 127.0.0.1, started here and ended by PID (tests/peers).

mod peers;

use peers::{alarm_state, free_port, machine_config, wait_for, write_config, Peer};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use waferscope::hot::{alloc_count, now_ns};
use waferscope::machine::config::{ModbusIoConfig, RegisterKind};
use waferscope::machine::modbus::ModbusIo;
use waferscope::machine::{Io, IoDriver, IoError, MachineConfig, Signal, Subsystem, SUBSYSTEMS};
use waferscope::monitor::alarm_defs::load;
use waferscope::monitor::{
    content_hash, AlarmService, AlarmState, Journal, Monitor, MonitorConfig, Poller, Quality,
};

#[global_allocator]
static ALLOC: waferscope::hot::CountingAlloc = waferscope::hot::CountingAlloc;

fn modbus_config(name: &str, port: u16, period_ms: u64, reconnect_max_ms: u64) -> ModbusIoConfig {
    let dir = std::env::temp_dir().join(format!("waferscope-modbus-{name}-{}", std::process::id()));
    let path = write_config(&dir, &machine_config(port, period_ms, reconnect_max_ms));
    match MachineConfig::load(&path)
        .expect("the test's configuration")
        .io
    {
        IoDriver::Modbus(m) => *m,
        IoDriver::Sim => panic!("modbus expected"),
    }
}

/// Counts heartbeat reads per subsystem, so a test can tell a read that
/// returned the previous value (a repeated step) from no read at all.
struct CountingIo {
    inner: ModbusIo,
    heartbeat_reads: Arc<[std::sync::atomic::AtomicU64; SUBSYSTEMS.len()]>,
}

impl Io for CountingIo {
    fn read_heartbeat(&mut self, s: Subsystem) -> Result<u32, IoError> {
        self.heartbeat_reads[s.index()].fetch_add(1, Ordering::Relaxed);
        self.inner.read_heartbeat(s)
    }
    fn read_signal(&mut self, s: Signal) -> Result<f64, IoError> {
        self.inner.read_signal(s)
    }
}

/// What the peers serve (tests/peers/modbus), in the station's units.
const EXPECTED: [(Signal, f64); 9] = [
    (Signal::StagePositionX, 12.5),
    (Signal::StagePositionY, -3.25),
    (Signal::StageFollowingError, 1.2),
    (Signal::IlluminationIntensity, 100.0),
    (Signal::LampHours, 812.0),
    (Signal::ChuckVacuum, 8.0),
    (Signal::CameraLink, 1.0),
    (Signal::CameraTemperature, 36.0),
    (Signal::EncoderHealth, 99.0),
];

#[test]
fn heartbeat_steps_are_neither_lost_nor_repeated_at_1_khz_for_5_s() {
    let peer = Peer::libmodbus(free_port());
    let cfg = modbus_config("seq", peer.port, 1, 200);
    let reads: Arc<[std::sync::atomic::AtomicU64; 5]> = Arc::new(Default::default());
    let io = CountingIo {
        inner: ModbusIo::new(&cfg),
        heartbeat_reads: reads.clone(),
    };
    let (trend_tx, _trend_rx) = crossbeam_channel::bounded(1 << 16);
    let mut poller = Poller::new(
        Box::new(io),
        &MonitorConfig::with_periods(cfg.periods),
        trend_tx,
    );
    // One poll per millisecond, on the wall clock, for 5 s.
    let start = Instant::now();
    let mut next = start;
    let mut last = [None::<u32>; 5];
    let mut steps = [0u64; 5];
    let mut polls = 0u64;
    while start.elapsed() < Duration::from_secs(5) {
        poller.poll(now_ns());
        polls += 1;
        let snap = poller.snapshot();
        for s in SUBSYSTEMS {
            let h = snap.heartbeat(s);
            if h.quality == Quality::NoValue {
                continue;
            }
            if let Some(prev) = last[s.index()] {
                if h.counter != prev {
                    assert_eq!(
                        h.counter,
                        prev.wrapping_add(1) & 0xFFFF,
                        "{} heartbeat jumped from {prev} to {}: a request was lost or repeated",
                        s.name(),
                        h.counter
                    );
                    steps[s.index()] += 1;
                }
            }
            last[s.index()] = Some(h.counter);
        }
        // As the monitor thread paces itself: a late wake-up does not
        // catch up in a burst of polls (which would find nothing due).
        next += Duration::from_millis(1);
        match next.checked_duration_since(Instant::now()) {
            Some(wait) => std::thread::sleep(wait),
            None => next = Instant::now(),
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let snap = *poller.snapshot();
    for s in SUBSYSTEMS {
        let n = reads[s.index()].load(Ordering::Relaxed);
        // Every read but the first moved the counter by exactly one: none
        // answered with an old value, none was answered twice.
        assert_eq!(
            steps[s.index()] + 1,
            n,
            "{}: {n} reads but {} steps",
            s.name(),
            steps[s.index()]
        );
        assert_eq!(snap.heartbeat(s).quality, Quality::Live, "{}", s.name());
    }
    for (signal, want) in EXPECTED {
        let v = snap.signal(signal);
        assert_eq!(v.quality, Quality::Live, "{}", signal.name());
        assert!(
            (v.value - want).abs() < 1e-9,
            "{}: {} read, {want} served",
            signal.name(),
            v.value
        );
    }
    let n = reads[0].load(Ordering::Relaxed);
    eprintln!(
        "1 kHz for {secs:.2} s: {polls} polls, {n} stage heartbeat reads ({:.0}/s), {} reads in all",
        n as f64 / secs,
        snap.reads
    );
    // Every poll reads a heartbeat due every period (a poller that
    // scheduled each read a period after it was made read every other).
    assert!(
        n as f64 >= 0.9 * polls as f64,
        "{n} stage heartbeat reads in {polls} polls at its period"
    );
    peer.kill();
}

fn start_monitor(
    name: &str,
    cfg: &ModbusIoConfig,
) -> (
    Monitor,
    AlarmService,
    Vec<(String, Arc<waferscope::machine::modbus::LinkStatus>)>,
) {
    let io = ModbusIo::new(cfg);
    let links = io.statuses();
    let monitor = Monitor::start(Box::new(io), MonitorConfig::with_periods(cfg.periods));
    let dir = std::env::temp_dir().join(format!("waferscope-modbus-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let defs_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/alarms.toml");
    let defs: Arc<[_]> = load(&defs_path).unwrap().into();
    let alarms = AlarmService::start(
        defs,
        &content_hash("modbus"),
        Journal::open(&dir.join("journal.db")).unwrap(),
        monitor.snapshots.reader().unwrap(),
        monitor.epoch,
        Duration::from_millis(2),
    )
    .unwrap();
    (monitor, alarms, links)
}

const STAGE_HEARTBEAT_LOST: u32 = 1002;

#[test]
fn a_killed_server_is_lost_with_its_alarm_and_is_live_again_when_restarted() {
    let port = free_port();
    let peer = Peer::libmodbus(port);
    let cfg = modbus_config("kill", port, 1, 200);
    let (monitor, alarms, links) = start_monitor("kill", &cfg);
    let mut view = monitor.snapshots.reader().unwrap();
    wait_for("every heartbeat live", Duration::from_secs(10), || {
        view.read().value.all_live()
    });

    let killed = Instant::now();
    peer.kill();
    let lost = wait_for("stage heartbeat lost", Duration::from_secs(5), || {
        view.read().value.heartbeat(Subsystem::Stage).quality == Quality::Lost
    });
    let snap = view.read().value;
    // Lost means no advance for more than 10 periods: the snapshot says
    // when it last advanced, and that is within a few periods of the kill.
    for s in SUBSYSTEMS {
        assert!(
            matches!(snap.heartbeat(s).quality, Quality::Lost | Quality::Stale),
            "{}: {:?}",
            s.name(),
            snap.heartbeat(s).quality
        );
    }
    for (signal, _) in EXPECTED {
        assert_ne!(
            snap.signal(signal).quality,
            Quality::Live,
            "{}",
            signal.name()
        );
    }
    wait_for("stage heartbeat lost alarm", Duration::from_secs(5), || {
        alarm_state(&alarms, STAGE_HEARTBEAT_LOST) == AlarmState::UnackActive
    });
    let alarmed = killed.elapsed();
    eprintln!(
        "server killed: stage heartbeat Lost after {:.1} ms ({:.1} periods of 1 ms), its alarm after {:.1} ms",
        lost.as_secs_f64() * 1e3,
        lost.as_secs_f64() * 1e3,
        alarmed.as_secs_f64() * 1e3
    );

    // Restarted on the same port: the driver reconnects by itself.
    let peer = Peer::libmodbus(port);
    let back = wait_for(
        "live again after the restart",
        Duration::from_secs(10),
        || view.read().value.all_live(),
    );
    wait_for(
        "the lost alarm returned to normal",
        Duration::from_secs(5),
        || alarm_state(&alarms, STAGE_HEARTBEAT_LOST) == AlarmState::ReturnedUnack,
    );
    eprintln!(
        "server restarted: all heartbeats Live again after {:.0} ms",
        back.as_secs_f64() * 1e3
    );
    let link = &links[0].1;
    assert!(
        link.connects.get() >= 2,
        "reconnected: {}",
        link.connects.get()
    );
    assert!(link.connected.load(Ordering::Relaxed));
    drop(alarms);
    drop(monitor);
    peer.kill();
}

const CHUCK_VACUUM_INVALID: u32 = 3021;

#[test]
fn an_exception_response_is_invalid_with_its_alarm_and_the_link_stays_up() {
    let mut peer = Peer::pymodbus(free_port());
    let cfg = modbus_config("exc", peer.port, 5, 200);
    let (monitor, alarms, links) = start_monitor("exc", &cfg);
    let mut view = monitor.snapshots.reader().unwrap();
    wait_for("every heartbeat live", Duration::from_secs(10), || {
        view.read().value.all_live()
    });
    // vacuum.chuck_pressure is input register 3: "server device failure".
    peer.command("exception ir 3 4");
    wait_for("chuck pressure invalid", Duration::from_secs(5), || {
        view.read().value.signal(Signal::ChuckVacuum).quality == Quality::Invalid
    });
    wait_for("its invalid alarm", Duration::from_secs(5), || {
        alarm_state(&alarms, CHUCK_VACUUM_INVALID) == AlarmState::UnackActive
    });
    // The driver reports the device's own code, not a lost link.
    let mut direct = ModbusIo::new(&cfg);
    assert_eq!(
        direct.read_signal(Signal::ChuckVacuum),
        Err(IoError::Device(4)),
        "an exception response is the device's error code"
    );
    let snap = view.read().value;
    // The device answered: its link and every other value stay live.
    assert!(snap.all_live(), "{:?}", snap.heartbeats);
    assert_eq!(snap.signal(Signal::StagePositionX).quality, Quality::Live);
    let link = &links[0].1;
    assert!(link.exceptions.get() > 0);
    assert_eq!(
        link.connects.get(),
        1,
        "an exception must not reopen the link"
    );

    peer.command("clear");
    wait_for("chuck pressure live again", Duration::from_secs(5), || {
        view.read().value.signal(Signal::ChuckVacuum).quality == Quality::Live
    });
    drop(alarms);
    drop(monitor);
    peer.command("quit");
}

#[test]
fn a_slow_device_times_out_and_a_dropped_link_reconnects_by_itself() {
    let mut peer = Peer::pymodbus(free_port());
    // timeout_ms is 100 in the sample configuration.
    let cfg = modbus_config("slow", peer.port, 5, 200);
    assert_eq!(cfg.servers[0].timeout, Duration::from_millis(100));
    let (monitor, _alarms, links) = start_monitor("slow", &cfg);
    let link = links[0].1.clone();
    let mut view = monitor.snapshots.reader().unwrap();
    wait_for("every heartbeat live", Duration::from_secs(10), || {
        view.read().value.all_live()
    });

    peer.command("delay 300");
    wait_for(
        "lost while every answer is late",
        Duration::from_secs(10),
        || view.read().value.heartbeat(Subsystem::Stage).quality == Quality::Lost,
    );
    assert!(link.timeouts.get() > 0, "the late answers timed out");
    peer.command("clear");
    wait_for(
        "live again once answers are prompt",
        Duration::from_secs(10),
        || view.read().value.all_live(),
    );

    let connects = link.connects.get();
    peer.command("drop");
    wait_for(
        "reconnected after the drop",
        Duration::from_secs(10),
        || link.connects.get() > connects,
    );
    wait_for("live after the reconnect", Duration::from_secs(10), || {
        view.read().value.all_live()
    });
    drop(monitor);
    peer.command("quit");
}

/// Our part of a poll allocates nothing: the allocations per read through
/// the driver equal those of the same requests made on the crate directly,
/// measured on this thread in this run against the same server.
#[test]
fn the_driver_adds_no_allocation_to_what_the_crate_makes_per_request() {
    let peer = Peer::libmodbus(free_port());
    let cfg = modbus_config("alloc", peer.port, 1, 200);
    let mut io = ModbusIo::new(&cfg);
    let all_reads = |io: &mut ModbusIo| {
        for s in SUBSYSTEMS {
            io.read_heartbeat(s).expect("heartbeat");
        }
        for (s, _) in EXPECTED {
            io.read_signal(s).expect("signal");
        }
    };
    for _ in 0..100 {
        all_reads(&mut io);
    }
    const ROUNDS: u64 = 2000;
    let before = alloc_count::thread_allocations();
    for _ in 0..ROUNDS {
        all_reads(&mut io);
    }
    let ours = alloc_count::thread_allocations() - before;
    // The server serves one client at a time.
    drop(io);

    // The same requests, on the crate alone.
    use tokio_modbus::client::sync::{tcp, Reader as _};
    let mut ctx = tcp::connect_slave_with_timeout(
        cfg.servers[0].address,
        tokio_modbus::Slave(1),
        Some(Duration::from_millis(100)),
    )
    .unwrap();
    let points: Vec<_> = cfg
        .heartbeats
        .iter()
        .chain(cfg.signals.iter())
        .copied()
        .collect();
    let crate_reads = |ctx: &mut tokio_modbus::client::sync::Context| {
        for p in &points {
            let n = p.data_type.words();
            match p.register {
                RegisterKind::Holding => {
                    drop(ctx.read_holding_registers(p.address, n).unwrap().unwrap())
                }
                RegisterKind::Input => {
                    drop(ctx.read_input_registers(p.address, n).unwrap().unwrap())
                }
                RegisterKind::Coil => drop(ctx.read_coils(p.address, n).unwrap().unwrap()),
                RegisterKind::Discrete => {
                    drop(ctx.read_discrete_inputs(p.address, n).unwrap().unwrap())
                }
            }
        }
    };
    for _ in 0..100 {
        crate_reads(&mut ctx);
    }
    let before = alloc_count::thread_allocations();
    for _ in 0..ROUNDS {
        crate_reads(&mut ctx);
    }
    let crate_only = alloc_count::thread_allocations() - before;
    let reads = ROUNDS * points.len() as u64;
    eprintln!(
        "allocations per read: driver {:.2}, tokio-modbus alone {:.2} ({reads} reads each)",
        ours as f64 / reads as f64,
        crate_only as f64 / reads as f64
    );
    assert!(
        ours <= crate_only,
        "the driver allocated {ours} times for {reads} reads; the crate alone {crate_only}"
    );
    peer.kill();
}

fn waferscope(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .args(args)
        .output()
        .expect("running waferscope")
}

/// The one composition root, from a machine configuration: `run` inspects
/// a wafer with its I/O polled over Modbus, `devices` reads each point, and
/// a bad file or a dead server is said plainly with its exit code.
#[test]
fn run_and_devices_drive_a_modbus_machine_and_a_bad_file_exits_2() {
    let peer = Peer::libmodbus(free_port());
    let dir = std::env::temp_dir().join(format!("waferscope-modbus-cli-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    let cfg = write_config(&dir, &machine_config(peer.port, 5, 200));
    let cfg_arg = cfg.to_str().unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));

    let out = waferscope(&["check-config", cfg_arg]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("valid") && text.contains(&format!("127.0.0.1:{}", peer.port)),
        "{text}"
    );

    let out = waferscope(&["devices", cfg_arg]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("connected") && text.contains("stage.position_x") && text.contains("12.5 mm"),
        "{text}"
    );

    let d = |p: &str| dir.join(p).to_str().unwrap().to_owned();
    let recipe = root.join("assets/recipes/sampled-200mm.toml");
    let alarms = root.join("assets/alarms.toml");
    let run_args = |machine: &str| {
        vec![
            "--machine".to_owned(),
            machine.to_owned(),
            "run".to_owned(),
            "--fast".to_owned(),
            "--recipe".to_owned(),
            recipe.to_str().unwrap().to_owned(),
            "--alarms".to_owned(),
            alarms.to_str().unwrap().to_owned(),
            "--lot".to_owned(),
            "LOT-MB".to_owned(),
            "--wafer".to_owned(),
            "W1".to_owned(),
            "--db".to_owned(),
            d("station.db"),
            "--thumbnail-dir".to_owned(),
            d("thumbnails"),
            "--log-dir".to_owned(),
            d("logs"),
        ]
    };
    let args = run_args(cfg_arg);
    let out = waferscope(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        out.status.code(),
        Some(0),
        "run on the modbus machine: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("complete: "));

    // A wrong unit: exit 2, naming the file, the field and the value,
    // before anything starts (no database is created).
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&cfg)
            .unwrap()
            .replacen("unit = \"kPa\"", "unit = \"bar\"", 1),
    )
    .unwrap();
    let mut args = run_args(bad.to_str().unwrap());
    let db = args.iter().position(|a| a == "--db").unwrap() + 1;
    args[db] = d("never.db");
    let out = waferscope(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("bad.toml")
            && err.contains("io.signals.\"vacuum.chuck_pressure\".unit")
            && err.contains("\"bar\""),
        "{err}"
    );
    assert!(!dir.join("never.db").exists());

    // The server gone: `devices` says so and exits 6.
    peer.kill();
    let out = waferscope(&["devices", cfg_arg]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(6), "{text}");
    assert!(text.contains("NOT CONNECTED"), "{text}");
}
