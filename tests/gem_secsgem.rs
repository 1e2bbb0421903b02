//! GEM (E30) against an independent host: secsgem 0.3.0's GemHostHandler
//! (tests/peers/secsgem/host.py) on 127.0.0.1, started here and ended by
//! PID. The station runs the simulated tool unpaced, so a wafer takes
//! seconds.
//!
//! - `host_drives_the_station`: the station in this process (so the test
//!   can work the operator's switches and read GEM's state directly):
//!   communication, control state, S1F3/S1F11, equipment constants, clock,
//!   terminal, S9, remote commands refused and accepted, a host connection
//!   dropped mid-run, the host back, the run complete.
//! - `serve_answers_a_host_and_stops_on_sigterm`: the real binary.

mod peers;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use peers::{wait_for, Peer};
use serde_json::{json, Value};
use waferscope::host::gem::variables::{
    SV_COMMUNICATION_STATE, SV_CONTROL_STATE, SV_DIES_DONE, SV_HEARTBEAT_BASE, SV_LOT_ID,
    SV_RUN_STATE, SV_WAFER_COUNT,
};
use waferscope::host::gem::{CommState, ControlState, GemConfig};
use waferscope::host::hsms::HsmsMode;
use waferscope::station::data_dir::{DataDir, Item};
use waferscope::station::{Station, StationConfig};

/// The host's report subscriptions: RunStarted (run id, lot), WaferDone
/// (run id, dies done), RunEnded (run id, end status).
const SUBSCRIPTIONS: [&str; 3] = [
    "subscribe 4001 1 3001 1021",
    "subscribe 4004 2 3001 3003",
    "subscribe 4005 3 3001 3015",
];

/// Only reached when something is wrong; generous for a loaded machine.
const PATIENCE: Duration = Duration::from_secs(30);
/// A simulated wafer, unpaced, on a loaded 2-core machine.
const RUN_PATIENCE: Duration = Duration::from_secs(120);
/// The host's T3 and T5 (seconds).
const HOST_T3: f64 = 5.0;
const HOST_T5: f64 = 0.5;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gem-{name}-{}", std::process::id()));
    // A previous run's leftovers (same pid) must not be read as ours.
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The host's answer after "ok ", parsed as JSON.
fn json_answer(host: &mut Peer, line: &str) -> Value {
    let answer = host.query(line);
    let text = answer
        .strip_prefix("ok ")
        .unwrap_or_else(|| panic!("`{line}`: {answer}"));
    serde_json::from_str(text).unwrap_or_else(|e| panic!("`{line}`: {text}: {e}"))
}

fn sv(host: &mut Peer, id: u32) -> Value {
    let v = json_answer(host, &format!("svs {id}"));
    v[0].clone()
}

/// S9 messages the host received: (function, header hex). Each body must
/// be `<B[10]>` (0x21 0x0a, then the header).
fn s9(host: &mut Peer) -> Vec<(u64, String)> {
    let v = json_answer(host, "s9 10");
    v.as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let body = e[1].as_str().unwrap();
            let header = body
                .strip_prefix("210a")
                .unwrap_or_else(|| panic!("S9 body is not <B[10]>: {body}"));
            assert_eq!(header.len(), 20, "{body}");
            (e[0].as_u64().unwrap(), header.to_owned())
        })
        .collect()
}

struct InProcess {
    station: Station,
    gem: waferscope::host::gem::GemHandle,
    dir: PathBuf,
}

fn start_station(dir: &Path) -> InProcess {
    let data = DataDir::resolve(Some(dir)).unwrap();
    data.prepare().unwrap();
    let station = Station::start(StationConfig {
        db: data.path(Item::Db),
        alarms: data.path(Item::Alarms),
        recipes: data.path(Item::Recipes),
        thumbnails: data.path(Item::Thumbnails),
        read_history: false,
        paced: false,
        ..StationConfig::default()
    })
    .unwrap();
    let mut cfg = GemConfig::new(
        HsmsMode::Passive {
            listen: "127.0.0.1:0".parse().unwrap(),
        },
        &data.data,
        &data.logs,
        data.path(Item::Recipes),
    );
    // Short enough that the host's silence (S9F9) costs the test little.
    cfg.t3 = Some(Duration::from_secs(2));
    let gem = station.start_gem(cfg).unwrap();
    InProcess {
        station,
        gem,
        dir: dir.to_path_buf(),
    }
}

const SIGN_IN_PASSWORD: &str = "gem-station-pw-1";

#[test]
fn host_drives_the_station() {
    let dir = temp_dir("drive");
    let s = start_station(&dir);
    // Someone signs in at this station while the host talks to it: no
    // password nor hash may reach the SECS log (checked at the end).
    s.station
        .guard
        .create_first_administrator("root", SIGN_IN_PASSWORD)
        .unwrap();
    let gem = &s.gem;
    let port = gem.local_addr().unwrap().port();
    assert_eq!(gem.communication_state(), CommState::NotCommunicating);
    // A fresh station: on-line switch on, LOCAL; the host takes it on-line.
    assert_eq!(gem.control_state(), ControlState::HostOffline);

    let mut host = Peer::secsgem_host("active", port, HOST_T3, HOST_T5);
    host.command("wait_communicating 20");
    wait_for("GEM COMMUNICATING", PATIENCE, || {
        gem.communication_state() == CommState::Communicating
    });

    // OFF-LINE: only S1F13 and S1F17 are answered; others are aborted.
    let refused = host.query("svs 1002");
    assert!(refused.contains("S1F0"), "{refused}");
    assert_eq!(host.query("online"), "ok 0");
    assert_eq!(gem.control_state(), ControlState::OnlineLocal);
    assert_eq!(host.query("online"), "ok 2", "already on-line");
    assert_eq!(
        json_answer(
            &mut host,
            &format!("svs {SV_CONTROL_STATE} {SV_COMMUNICATION_STATE} 1999")
        ),
        json!([4, 3, []])
    );
    let all = json_answer(&mut host, "svs");
    let names = json_answer(&mut host, "svnames");
    assert_eq!(
        all.as_array().unwrap().len(),
        names.as_array().unwrap().len()
    );
    assert_eq!(
        names[0],
        json!({"SVID": 1001, "SVNAME": "Clock", "UNITS": ""})
    );
    assert_eq!(
        json_answer(&mut host, "svnames 1999"),
        json!([{"SVID": 1999, "SVNAME": "", "UNITS": ""}]),
        "an unknown SVID has empty name and units"
    );

    // Equipment constants.
    assert_eq!(json_answer(&mut host, "ecs 2001 2002"), json!([10, 1]));
    assert_eq!(host.query("set_ec 2002 9"), "ok 3", "out of range");
    assert_eq!(host.query("set_ec 2999 1"), "ok 1", "no such constant");
    assert_eq!(host.query("set_ec 2002 2"), "ok 0");
    assert_eq!(json_answer(&mut host, "ecs 2002"), json!([2]));
    let names = json_answer(&mut host, "ecs");
    assert_eq!(names.as_array().unwrap().len(), 7);

    // Clock: the host's time becomes ours (as an offset), in TimeFormat 2.
    let iso = host.query("time");
    assert!(iso.starts_with("ok 20") && iso.ends_with('Z'), "{iso}");
    assert_eq!(host.query("set_time 2030010112000000"), "ok 0");
    let clock = sv(&mut host, 1001);
    assert!(
        clock.as_str().unwrap().starts_with("2030-01-01T12:00:0"),
        "{clock}"
    );
    assert_eq!(host.query("set_time tomorrow"), "ok 1");
    assert_eq!(host.query("set_ec 2002 1"), "ok 0");

    // Terminal services: the host's text waits for the operator.
    assert_eq!(host.query("terminal check the chuck"), "ok 0");
    let waiting = gem.terminal_messages();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].text, "check the chuck");
    assert_eq!(gem.acknowledge_terminal().unwrap().text, "check the chuck");
    assert!(gem.terminal_messages().is_empty());

    // S9: device id, stream, function, data; and S9F9 when the host does
    // not answer our request within T3.
    assert_eq!(host.query("raw 99 1 - none"), "ok sent");
    let got = s9(&mut host);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, 3);
    assert_eq!(&got[0].1[..8], "00006301", "MHEAD of S99F1: {got:?}");
    assert_eq!(host.query("raw 1 99 - none"), "ok sent");
    assert_eq!(s9(&mut host)[0].0, 5);
    // S1F3 with <A "z"> instead of a list.
    assert_eq!(host.query("raw 1 3 - 41017a"), "ok sent");
    assert_eq!(s9(&mut host)[0].0, 7);
    assert_eq!(host.query("raw 1 1 - none 7"), "ok sent");
    let got = s9(&mut host);
    assert_eq!(got[0].0, 1);
    assert_eq!(&got[0].1[..4], "0007", "MHEAD keeps the wrong device id");
    host.command("mute 10 1");
    gem.send_terminal("operator here").unwrap();
    let got = s9(&mut host);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, 9);
    assert_eq!(&got[0].1[4..8], "8a01", "SHEAD of our S10F1 W: {got:?}");

    // Remote commands: refused in LOCAL, then accepted in REMOTE.
    wait_for("every heartbeat healthy", PATIENCE, || {
        (0..5).all(|i| sv(&mut host, SV_HEARTBEAT_BASE + i) == json!(true))
    });
    // Reports: the run's events with a DV and an SV each.
    for line in SUBSCRIPTIONS {
        host.command(line);
    }
    let start = "rcmd START LOTID=LOT-G1 WAFERID=W01 RECIPE=full-300mm";
    assert_eq!(
        host.query(start),
        "ok 2 []",
        "ONLINE LOCAL: the operator keeps control"
    );
    gem.set_remote(true).unwrap();
    wait_for("ONLINE REMOTE", PATIENCE, || {
        gem.control_state() == ControlState::OnlineRemote
    });
    assert_eq!(sv(&mut host, SV_CONTROL_STATE), json!(5));
    assert_eq!(host.query("rcmd FLY"), "ok 1 []");
    assert_eq!(
        host.query("rcmd START LOTID=L1 COLOUR=red"),
        r#"ok 3 [["COLOUR", 1], ["WAFERID", 2], ["RECIPE", 2]]"#
    );
    assert_eq!(
        host.query("rcmd START LOTID=L1 WAFERID=W1 RECIPE=../alarms.toml"),
        r#"ok 3 [["RECIPE", 2]]"#
    );
    assert_eq!(host.query("rcmd PAUSE"), "ok 2 []", "no run to pause");
    assert_eq!(host.query(start), "ok 0 []");
    assert_eq!(sv(&mut host, SV_LOT_ID), json!("LOT-G1"));
    assert_eq!(host.query(start), "ok 2 []", "a run is in progress");

    // The host's connection drops mid-run: the run goes on.
    wait_for("the first die", RUN_PATIENCE, || {
        sv(&mut host, SV_DIES_DONE).as_u64().unwrap() > 0
    });
    // A new T3 takes effect at the next connection: the HSMS session is
    // restarted once the host is gone, on the same port.
    assert_eq!(host.query("set_ec 2003 1.5"), "ok 0");
    let before_drop = json_answer(&mut host, "events");
    host.kill();
    wait_for("NOT COMMUNICATING", PATIENCE, || {
        gem.communication_state() == CommState::NotCommunicating
    });
    let mut run = s.station.engine.snapshots.reader().unwrap();
    let at_drop = run.read().value;
    assert!(at_drop.state.in_run(), "{:?}", at_drop.state);
    // The host comes back by itself (a new process, as after a crash).
    let mut host = Peer::secsgem_host("active", port, HOST_T3, HOST_T5);
    host.command("wait_communicating 20");
    // The equipment kept the reports (a new host process only relearns
    // how to read them; its define/link answers "already" and are ignored).
    for line in SUBSCRIPTIONS {
        host.command(line);
    }
    wait_for("GEM COMMUNICATING again", PATIENCE, || {
        gem.communication_state() == CommState::Communicating
    });
    assert_eq!(
        gem.control_state(),
        ControlState::OnlineRemote,
        "the control state does not depend on the connection"
    );
    assert_eq!(json_answer(&mut host, "ecs 2003"), json!([1.5]));
    assert_eq!(gem.local_addr().unwrap().port(), port);
    wait_for("the run to complete", RUN_PATIENCE, || {
        sv(&mut host, SV_RUN_STATE) == json!("COMPLETE")
    });
    let end = run.read().value;
    assert!(end.dies_done > at_drop.dies_done, "the run went on");
    assert_eq!(end.dies_done, end.dies_total);
    assert_eq!(sv(&mut host, SV_WAFER_COUNT), json!(1));

    // S6F11 in order: the run started (first host), then wafer done and
    // run ended (the host that came back), each with its run id.
    let run_id = json!(end.run_id);
    let first = &before_drop.as_array().unwrap()[0];
    assert_eq!(
        first,
        &json!([4001, 1, [run_id, "LOT-G1"]]),
        "{before_drop}"
    );
    let after = json_answer(&mut host, "events");
    let ceids: Vec<u64> = after
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e[0].as_u64().unwrap())
        .filter(|c| [4004, 4005].contains(c))
        .collect();
    assert_eq!(ceids, [4004, 4005], "{after}");
    let ended = after
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e[0] == 4005)
        .unwrap();
    assert_eq!(ended[2][0], run_id, "{after}");

    // An injected alarm: S5F1 set, then clear (ALCD bit 8), same ALID.
    let faults = s.station.io_faults.clone().expect("simulated I/O");
    faults.freeze_heartbeat(waferscope::machine::Subsystem::Camera, true);
    wait_for("S5F1 set", PATIENCE, || {
        json_answer(&mut host, "alarms")
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a[1].as_u64().unwrap() & 0x80 != 0)
    });
    faults.freeze_heartbeat(waferscope::machine::Subsystem::Camera, false);
    wait_for("S5F1 clear", PATIENCE, || {
        let alarms = json_answer(&mut host, "alarms");
        let list = alarms.as_array().unwrap();
        let set = list.iter().find(|a| a[1].as_u64().unwrap() & 0x80 != 0);
        set.is_some_and(|set| {
            list.iter()
                .any(|a| a[0] == set[0] && a[1].as_u64().unwrap() & 0x80 == 0)
        })
    });

    // Process programs: a recipe downloaded (validated as a recipe file
    // is), a bad one refused with ACKC7 ≠ 0 and not written.
    let good = std::fs::read_to_string(s.dir.join("recipes/sampled-200mm.toml"))
        .unwrap()
        .replace("INS-200-SAMPLE4", "HOST-DL-1")
        // secsgem encodes text outside ASCII as Latin-1 (µ is 0xB5), which
        // is not UTF-8 and refused as ACKC7 5; the sample's comments have µ.
        .chars()
        .map(|c| if c.is_ascii() { c } else { '?' })
        .collect::<String>();
    assert_eq!(
        host.query(&format!("pp_send host-dl-1 {}", hex(&good))),
        "ok 0"
    );
    assert!(s.dir.join("recipes/host-dl-1.toml").is_file());
    let bad = good.replace("diameter_mm = 200", "diameter_mm = 250");
    let ackc7 = host.query(&format!("pp_send host-dl-2 {}", hex(&bad)));
    assert!(ackc7.starts_with("ok ") && ackc7 != "ok 0", "{ackc7}");
    assert!(!s.dir.join("recipes/host-dl-2.toml").exists());

    // Trace: 10 samples of DiesDone and the clock, every 0.1 s.
    assert_eq!(host.query("trace 7 00000010 10 1 1024 1001"), "ok 0");
    wait_for("10 S6F1 samples", PATIENCE, || {
        json_answer(&mut host, "traces").as_array().unwrap().len() >= 10
    });
    let traces = json_answer(&mut host, "traces");
    let samples = traces.as_array().unwrap();
    assert_eq!(samples.len(), 10, "{traces}");
    let smpln: Vec<u64> = samples.iter().map(|t| t[1].as_u64().unwrap()).collect();
    assert_eq!(smpln, (1..=10).collect::<Vec<u64>>());
    assert_eq!(samples[0][3][0], json!(end.dies_done));
    let span = samples[9][2].as_f64().unwrap() - samples[0][2].as_f64().unwrap();
    // 9 periods of 0.1 s, with room for a loaded machine's delivery jitter.
    assert!((0.6..1.5).contains(&span), "9 periods took {span} s");

    // Host off-line, then the operator's switches.
    assert_eq!(host.query("offline"), "ok 0");
    assert_eq!(gem.control_state(), ControlState::HostOffline);
    gem.set_online(false).unwrap();
    wait_for("EQUIPMENT OFFLINE", PATIENCE, || {
        gem.control_state() == ControlState::EquipmentOffline
    });
    assert_eq!(host.query("online"), "ok 1", "the operator has it off-line");
    gem.set_online(true).unwrap();
    // ATTEMPT ON-LINE: S1F1 to the host, S1F2 back → ON-LINE REMOTE.
    wait_for("ONLINE REMOTE after S1F1", PATIENCE, || {
        gem.control_state() == ControlState::OnlineRemote
    });

    // The switches are persisted; the SECS log has the conversation. Both
    // are polled: the state is published before gem.toml is saved, and the
    // SECS log is written by its own thread, so either may lag the wait
    // above.
    let read = |name: &str| std::fs::read_to_string(s.dir.join(name)).unwrap_or_default();
    let saved_ok = |saved: &str| saved.contains("online = true") && saved.contains("remote = true");
    let needles = [
        "<- S1F13 W",
        "-> S1F14",
        "<- S2F41 W",
        "-> S9F9",
        "-> S1F1 W",
    ];
    let deadline = Instant::now() + PATIENCE;
    while Instant::now() < deadline
        && !(saved_ok(&read("gem.toml"))
            && needles.iter().all(|n| read("logs/secs.log").contains(n)))
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let saved = read("gem.toml");
    assert!(saved_ok(&saved), "{saved}");
    let log = read("logs/secs.log");
    for needle in needles {
        assert!(log.contains(needle), "secs.log lacks {needle:?}:\n{log}");
    }
    assert!(!log.contains(SIGN_IN_PASSWORD) && !log.contains("$argon2"));
    assert_eq!(
        gem.secs_log().dropped() + gem.secs_log().write_failures(),
        0
    );
    // Every host command is in the audit trail with source "host": the
    // START refused in ONLINE LOCAL with why, the one accepted in ONLINE
    // REMOTE, and the host taking the tool on-line.
    s.station.guard.flush();
    let audit = waferscope::access::audit::AuditLog::open(&s.station.cfg.db)
        .unwrap()
        .list(None)
        .unwrap();
    let host_entries: Vec<_> = audit.iter().filter(|e| e.source == "host").collect();
    let starts: Vec<_> = host_entries
        .iter()
        .filter(|e| e.action == "host_remote_command" && e.params.contains("LOT-G1"))
        .collect();
    assert!(
        starts
            .iter()
            .any(|e| !e.accepted && e.reason == "ONLINE LOCAL: the operator keeps control"),
        "{host_entries:#?}"
    );
    assert!(starts.iter().any(|e| e.accepted), "{host_entries:#?}");
    // The host's recipe download: a new file (no old contents) and the new
    // contents' hash; the refused one with its ACKC7.
    let sha = |t: &str| waferscope::access::sha256_hex(t.as_bytes());
    assert!(
        host_entries
            .iter()
            .any(|e| e.action == "host_recipe_download"
                && e.accepted
                && e.params == format!("ppid=host-dl-1 old_sha256=none new_sha256={}", sha(&good))),
        "{host_entries:#?}"
    );
    assert!(
        host_entries
            .iter()
            .any(|e| e.action == "host_recipe_download"
                && !e.accepted
                && e.params.starts_with("ppid=host-dl-2 ")),
        "{host_entries:#?}"
    );
    assert!(
        host_entries
            .iter()
            .any(|e| e.action == "host_online" && e.accepted && e.user == "host"),
        "{host_entries:#?}"
    );
    assert!(waferscope::access::audit::AuditLog::open(&s.station.cfg.db)
        .unwrap()
        .verify()
        .unwrap()
        .first_broken
        .is_none());
    host.command("quit");
    s.station.runtime().block_on(gem.shutdown());
    drop(s);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `waferscope serve`, ended by its PID (SIGKILL) if the test fails
/// before it stopped on its own.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            if let Err(e) = self.0.kill() {
                eprintln!("serve {} already gone: {e}", self.0.id());
            }
            if let Err(e) = self.0.wait() {
                eprintln!("reaping serve: {e}");
            }
        }
    }
}

#[test]
fn serve_answers_a_host_and_stops_on_sigterm() {
    let dir = temp_dir("serve");
    let mut child = Serve(
        Command::new(env!("CARGO_BIN_EXE_waferscope"))
            .args(["serve", "--gem", "127.0.0.1:0", "--fast", "--t3", "2"])
            .arg("--data-dir")
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("GEM: listening on 127.0.0.1:")
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("serve's first line: {line:?}"));
    let mut host = Peer::secsgem_host("active", port, HOST_T3, HOST_T5);
    host.command("wait_communicating 20");
    // E30: OFF-LINE equipment answers S1F1 with S1F0.
    assert_eq!(host.query("are_you_there"), "ok S1F0");
    assert_eq!(host.query("online"), "ok 0");
    let ayt = host.query("are_you_there");
    let mdln = "waferscope"
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    assert!(ayt.starts_with("ok S1F2 ") && ayt.contains(&mdln), "{ayt}");
    assert_eq!(sv(&mut host, SV_CONTROL_STATE), json!(4));
    host.command("quit");
    let status = peers::sigterm_and_wait(&mut child.0, PATIENCE);
    assert!(status.success(), "{status}");
    let log = std::fs::read_to_string(dir.join("logs/secs.log")).unwrap();
    assert!(
        log.contains("<- S1F17 W") && log.contains("-> S1F18"),
        "{log}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serve_active_connects_to_the_host_and_again_after_a_separate() {
    let dir = temp_dir("active");
    let port = peers::free_port();
    let mut host = Peer::secsgem_host("passive", port, HOST_T3, HOST_T5);
    let mut child = Serve(
        Command::new(env!("CARGO_BIN_EXE_waferscope"))
            .args(["serve", "--fast", "--t5", "0.3", "--gem-active"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(
        line.trim(),
        format!("GEM: connecting to 127.0.0.1:{port} (HSMS active)")
    );
    host.command("wait_communicating 20");
    assert_eq!(host.query("online"), "ok 0");
    // The host ends the connection; the equipment connects again by
    // itself (T5 later) and communication is established anew.
    host.command("disable");
    host.command("enable");
    host.command("wait_communicating 20");
    assert_eq!(sv(&mut host, SV_COMMUNICATION_STATE), json!(3));
    host.command("quit");
    let status = peers::sigterm_and_wait(&mut child.0, PATIENCE);
    assert!(status.success(), "{status}");
    std::fs::remove_dir_all(&dir).unwrap();
}
