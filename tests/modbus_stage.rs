//! A whole wafer on a machine whose stage and I/O are Modbus: the pymodbus
//! peer (tests/peers/modbus) plays a PLC that drives the XY stage and
//! serves every heartbeat and signal. Every die is moved to and confirmed
//! in position; a following error the PLC reports suspends the run, which
//! resumes by itself once the error is gone.

mod peers;

use peers::{free_port, sample_config, wait_for, write_config, Peer};
use std::path::PathBuf;
use std::time::Duration;
use waferscope::machine::MachineConfig;
use waferscope::run::{recipe, RunCommand, RunIdentity, RunState};
use waferscope::station::{Station, StationConfig};

#[test]
fn a_wafer_on_a_modbus_stage_moves_to_every_die_and_a_following_error_suspends_it() {
    let mut peer = Peer::pymodbus(free_port());
    // A move takes 10 ms on this PLC: long enough to act mid-run.
    peer.command("move_ms 10");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("waferscope-modbus-stage-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    let cfg = write_config(
        &dir,
        &sample_config("modbus-machine.toml", peer.port, 5, 200),
    );
    let station = Station::start(StationConfig {
        machine: MachineConfig::load(&cfg).unwrap(),
        db: dir.join("station.db"),
        alarms: root.join("assets/alarms.toml"),
        recipes: root.join("assets/recipes"),
        thumbnails: dir.join("thumbnails"),
        read_history: false,
        paced: false,
        resume_after: Duration::from_millis(300),
        ..StationConfig::default()
    })
    .unwrap();
    let mut machine = station.monitor.snapshots.reader().unwrap();
    wait_for("every heartbeat live", Duration::from_secs(10), || {
        machine.read().value.all_live()
    });

    let recipe = recipe::load(&root.join("assets/recipes/sampled-200mm.toml")).unwrap();
    let dies = recipe.plan.len() as u32;
    let identity = RunIdentity {
        lot: "LOT-MB".into(),
        wafer: "W01".into(),
        slot: 1,
        operator: "Ana".into(),
    };
    station.engine.load(recipe, identity).unwrap();
    station.engine.command(RunCommand::Start).unwrap();
    let mut run = station.engine.snapshots.reader().unwrap();

    // Mid-run the PLC reports a following error of 50 µm (0.01 µm units).
    wait_for(
        "a tenth of the wafer inspected",
        Duration::from_secs(60),
        || run.read().value.dies_done >= dies / 10,
    );
    peer.command("following_error 5000");
    wait_for("the run suspended", Duration::from_secs(10), || {
        run.read().value.state == RunState::Suspended
    });
    let s = run.read().value;
    assert!(
        s.cause.as_str().contains("following error"),
        "cause: {}",
        s.cause.as_str()
    );
    let held_at = s.dies_done;
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        run.read().value.state,
        RunState::Suspended,
        "still suspended while the error lasts"
    );
    // Nothing moves while the run is suspended.
    let moves_suspended = peer.count("moves");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        peer.count("moves"),
        moves_suspended,
        "a move while suspended"
    );

    // The error clears: after resume_after of health the run resumes and
    // completes; no die is lost or inspected twice.
    peer.command("following_error 120");
    // Once running again, the PLC drops every connection: the stage's
    // next move fails on the dead link and is retried after the reconnect
    // back-off, so no die goes unmoved.
    wait_for("running again", Duration::from_secs(10), || {
        run.read().value.state == RunState::Running
    });
    wait_for("a few more dies", Duration::from_secs(30), || {
        run.read().value.dies_done >= held_at + 10
    });
    peer.command("drop");
    wait_for("the run ended", Duration::from_secs(120), || {
        matches!(
            run.read().value.state,
            RunState::Complete | RunState::Faulted | RunState::Aborted
        )
    });
    let end = run.read().value;
    assert_eq!(
        end.state,
        RunState::Complete,
        "ended: {}",
        end.cause.as_str()
    );
    let s = run.read().value;
    assert_eq!(s.dies_done, dies, "every die inspected");
    assert!(
        held_at < dies,
        "suspended before the end ({held_at} of {dies})"
    );

    // Independent count, from the PLC: one move per die, and the driver
    // confirmed each one in position at its target.
    // Once per die, plus a move the drop may have cut off after the PLC
    // took it but before its answer came back (then commanded again).
    let moves = peer.count("moves");
    assert!(
        (dies..=dies + 1).contains(&moves),
        "the PLC moved {moves} times for {dies} dies"
    );
    // Each move was waited for: none was commanded while the previous one
    // was still running (a driver that did not wait for in-position would
    // command the next die's move 10 ms early).
    assert_eq!(
        peer.count("overlaps"),
        0,
        "a move commanded before the last ended"
    );
    assert_eq!(station.stage_moves_confirmed.get(), u64::from(dies));
    eprintln!(
        "{dies} dies, {moves} stage moves; suspended at die {held_at} (moves then: {moves_suspended})"
    );
    drop(station);
    peer.command("quit");
}
