//! Polling allocates nothing once warm: 100,000+ reads across every
//! subsystem at a 1 ms period, counted on the monitor thread; the alarm
//! evaluator is counted separately, while faults come and go and operator
//! commands (acknowledge, acknowledge all, shelve, unshelve) arrive.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use waferscope::hot::alloc_count;
use waferscope::machine::sim::{SimIo, SimIoFaults};
use waferscope::machine::{Signal, Subsystem};
use waferscope::monitor::alarm_defs::load;
use waferscope::monitor::alarm_engine::OperatorName;
use waferscope::monitor::{
    content_hash, AlarmCommand, AlarmService, Journal, Monitor, MonitorConfig,
};

#[global_allocator]
static ALLOC: waferscope::hot::CountingAlloc = waferscope::hot::CountingAlloc;

fn count(name: &str) -> u64 {
    alloc_count::hot_threads()
        .into_iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, a, _)| a)
        .unwrap_or_else(|| panic!("{name} is not registered as hot"))
}

#[test]
fn polling_and_alarm_evaluation_allocate_nothing_after_warm_up() {
    let dir = std::env::temp_dir().join(format!("waferscope-mza-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let defs_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/alarms.toml");
    let defs: Arc<[_]> = load(&defs_path).unwrap().into();
    let hash = content_hash(&std::fs::read_to_string(&defs_path).unwrap());
    let faults = SimIoFaults::new();
    let monitor = Monitor::start(
        Box::new(SimIo::new(faults.clone())),
        MonitorConfig::uniform(Duration::from_millis(1)),
    );
    let journal = Journal::open(&dir.join("j.db")).unwrap();
    let alarms = AlarmService::start(
        defs,
        &hash,
        journal,
        monitor.snapshots.reader().unwrap(),
        monitor.epoch,
        Duration::from_millis(1),
    )
    .unwrap();
    let mut machine = monitor.snapshots.reader().unwrap();
    let mut alarm_view = alarms.snapshots.reader().unwrap();

    // Operator commands on alarms the faults below raise: "Camera
    // heartbeat stale" and "Stage following error high".
    let operator = OperatorName::new("night shift operator");
    let commands = [
        AlarmCommand::Acknowledge {
            alid: 1031,
            operator,
        },
        AlarmCommand::AcknowledgeAll { operator },
        AlarmCommand::Shelve {
            alid: 2001,
            duration_ns: 60_000_000_000,
            operator,
            reason: "stage encoder swap".into(),
        },
        AlarmCommand::Unshelve {
            alid: 2001,
            operator,
        },
        AlarmCommand::Shelve {
            alid: 1031,
            duration_ns: 600_000_000_000,
            operator,
            reason: "camera link under test".into(),
        },
        AlarmCommand::Unshelve {
            alid: 1031,
            operator,
        },
    ];

    // Warm-up, including one of each kind of transition and command.
    faults.freeze_heartbeat(Subsystem::Stage, true);
    std::thread::sleep(Duration::from_millis(100));
    for c in commands {
        assert!(alarms.command(c));
    }
    faults.freeze_heartbeat(Subsystem::Stage, false);
    std::thread::sleep(Duration::from_millis(200));

    let reads_before = machine.read().value.reads;
    let transitions_before = alarm_view.read().value.transitions;
    let (monitor_before, evaluator_before) = (count("monitor"), count("alarm-evaluator"));

    // Measured: faults come and go while polling runs.
    let start = Instant::now();
    let mut k = 0;
    while machine.read().value.reads < reads_before + 100_000 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "polling too slow"
        );
        match k % 4 {
            0 => faults.freeze_heartbeat(Subsystem::Camera, true),
            1 => faults.freeze_heartbeat(Subsystem::Camera, false),
            2 => faults.set_value(Signal::StageFollowingError, 20.0),
            _ => faults.restore(Signal::StageFollowingError),
        }
        assert!(alarms.command(commands[k % commands.len()]));
        k += 1;
        std::thread::sleep(Duration::from_millis(150));
    }
    std::thread::sleep(Duration::from_millis(20));
    let reads = machine.read().value.reads - reads_before;
    let transitions = alarm_view.read().value.transitions - transitions_before;
    let monitor_allocs = count("monitor") - monitor_before;
    let evaluator_allocs = count("alarm-evaluator") - evaluator_before;
    println!(
        "{reads} reads in {:?}; monitor allocations {monitor_allocs}; alarm evaluator: {transitions} transitions, {evaluator_allocs} allocations; trend drops {}",
        start.elapsed(),
        monitor.trend_drops.get()
    );
    assert!(reads >= 100_000);
    assert_eq!(monitor_allocs, 0, "the polling thread allocated");
    assert!(
        transitions >= 20,
        "faults and commands must have caused transitions: {transitions}"
    );
    assert!(k >= 6, "every kind of command was sent: {k}");
    assert_eq!(
        alarms.commands_refused.get(),
        0,
        "every command reached the evaluator"
    );
    // Transitions and commands are fixed-size (operator names inline) and
    // handed to the journal with try_send: nothing to allocate.
    assert_eq!(evaluator_allocs, 0, "the alarm evaluator allocated");
    alarms.stop();
    std::fs::remove_dir_all(dir).ok();
}
