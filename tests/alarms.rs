//! The ISA-18.2 alarm model, driven with synthetic machine snapshots on a
//! test clock: every state transition, latching, debounce and chatter,
//! shelving (timed expiry, clamp, one-shot), first-out and flood summary.

use crossbeam_channel::{unbounded, Receiver};
use std::sync::Arc;
use waferscope::machine::{Signal, SUBSYSTEMS};
use waferscope::monitor::alarm_defs::parse;
use waferscope::monitor::{
    AlarmCommand, AlarmEngine, AlarmState, EventKind, JournalEvent, MachineSnapshot, Quality,
    Shelving,
};

const MS: u64 = 1_000_000;

fn defs(extra: &str) -> String {
    format!(
        r#"
[[alarm]]
alid = 1
name = "Following error high"
kind = "high"
signal = "stage.following_error"
limit = 10.0
deadband = 2.0
on_delay_ms = 100
priority = "medium"
text = "t"
guidance = "g"
{extra}
"#
    )
}

fn engine(toml: &str) -> (AlarmEngine, Receiver<JournalEvent>) {
    let (tx, rx) = unbounded();
    (
        AlarmEngine::new(Arc::from(parse(toml).unwrap()), &[], tx).unwrap(),
        rx,
    )
}

fn snap(following_error: f64) -> MachineSnapshot {
    let mut s = MachineSnapshot::default();
    for h in s.heartbeats.iter_mut() {
        h.quality = Quality::Live;
    }
    for sig in s.signals.iter_mut() {
        sig.quality = Quality::Live;
        sig.value = 1.0;
    }
    s.signals[Signal::StageFollowingError.index()].value = following_error;
    s
}

fn kinds(rx: &Receiver<JournalEvent>) -> Vec<(EventKind, AlarmState)> {
    rx.try_iter().map(|e| (e.kind, e.state)).collect()
}

fn state(e: &AlarmEngine) -> AlarmState {
    e.status(1).unwrap().state
}

fn ack(e: &mut AlarmEngine, t: u64) -> bool {
    e.command(
        AlarmCommand::Acknowledge {
            alid: 1,
            operator: "ana".into(),
        },
        t,
    )
}

#[test]
fn raise_acknowledge_return_to_normal() {
    let (mut e, rx) = engine(&defs(""));
    e.tick(&snap(12.0), 0);
    assert_eq!(state(&e), AlarmState::Normal, "on-delay not yet over");
    e.tick(&snap(12.0), 100 * MS);
    assert_eq!(state(&e), AlarmState::UnackActive);
    assert!(ack(&mut e, 110 * MS));
    assert_eq!(state(&e), AlarmState::AckActive);
    e.tick(&snap(9.0), 120 * MS);
    assert_eq!(
        state(&e),
        AlarmState::AckActive,
        "inside the deadband: still active"
    );
    e.tick(&snap(7.9), 130 * MS);
    assert_eq!(state(&e), AlarmState::Normal);
    assert_eq!(
        kinds(&rx),
        [
            (EventKind::Raised, AlarmState::UnackActive),
            (EventKind::Acknowledged, AlarmState::AckActive),
            (EventKind::ReturnedToNormal, AlarmState::Normal)
        ]
    );
}

#[test]
fn returned_unacknowledged_then_acknowledged_or_raised_again() {
    let (mut e, rx) = engine(&defs(""));
    e.tick(&snap(12.0), 0);
    e.tick(&snap(12.0), 100 * MS);
    e.tick(&snap(5.0), 200 * MS);
    assert_eq!(state(&e), AlarmState::ReturnedUnack);
    e.tick(&snap(12.0), 300 * MS);
    e.tick(&snap(12.0), 400 * MS);
    assert_eq!(
        state(&e),
        AlarmState::UnackActive,
        "raised again before the ack"
    );
    e.tick(&snap(5.0), 500 * MS);
    assert!(ack(&mut e, 600 * MS));
    assert_eq!(state(&e), AlarmState::Normal);
    assert!(!ack(&mut e, 700 * MS), "nothing left to acknowledge");
    let ops: Vec<_> = rx
        .try_iter()
        .filter_map(|e| e.operator.map(|o| o.to_string()))
        .collect();
    assert_eq!(ops, ["ana"], "the acknowledgement records the operator");
}

#[test]
fn latching_alarm_stays_until_acknowledged() {
    let (mut e, rx) = engine(&defs("latching = true"));
    e.tick(&snap(12.0), 0);
    e.tick(&snap(12.0), 100 * MS);
    e.tick(&snap(1.0), 200 * MS);
    assert_eq!(
        state(&e),
        AlarmState::UnackActive,
        "latched although the condition cleared"
    );
    e.tick(&snap(1.0), 300 * MS);
    assert!(ack(&mut e, 400 * MS));
    assert_eq!(
        state(&e),
        AlarmState::Normal,
        "ack of a cleared latched alarm returns it to normal"
    );
    let k = kinds(&rx);
    assert_eq!(
        k.iter()
            .filter(|(k, _)| *k == EventKind::ReturnedToNormal)
            .count(),
        1
    );
}

#[test]
fn a_chattering_signal_is_debounced_and_flagged() {
    let (mut e, _rx) = engine(&defs(""));
    // Crosses the limit every 60 ms: never active for the 100 ms on-delay.
    for k in 0..100u64 {
        let v = if k % 2 == 0 { 11.0 } else { 7.0 };
        e.tick(&snap(v), k * 60 * MS);
    }
    assert_eq!(state(&e), AlarmState::Normal, "never raised");
    assert!(e.status(1).unwrap().chattering);
}

#[test]
fn deadband_stops_chatter_around_the_limit_once_raised() {
    let (mut e, rx) = engine(&defs(""));
    e.tick(&snap(10.5), 0);
    e.tick(&snap(10.5), 100 * MS);
    for k in 2..50u64 {
        let v = if k % 2 == 0 { 10.5 } else { 9.5 };
        e.tick(&snap(v), k * 100 * MS);
    }
    assert_eq!(
        kinds(&rx).len(),
        1,
        "one raise, no return to normal inside the deadband"
    );
}

#[test]
fn stale_values_hold_the_alarm_instead_of_clearing_it() {
    let (mut e, rx) = engine(&defs(""));
    e.tick(&snap(12.0), 0);
    e.tick(&snap(12.0), 100 * MS);
    let mut s = snap(1.0);
    s.signals[Signal::StageFollowingError.index()].quality = Quality::Stale;
    e.tick(&s, 200 * MS);
    assert_eq!(state(&e), AlarmState::UnackActive);
    assert_eq!(kinds(&rx).len(), 1);
}

#[test]
fn timed_shelve_expires_and_reraises_and_is_clamped_to_the_maximum() {
    let (mut e, rx) = engine(&defs("max_shelve_min = 1"));
    e.tick(&snap(12.0), 0);
    e.tick(&snap(12.0), 100 * MS);
    assert!(e.command(
        AlarmCommand::Shelve {
            alid: 1,
            duration_ns: 3_600_000 * MS,
            operator: "bo".into(),
            reason: "sensor under repair".into(),
        },
        200 * MS
    ));
    assert_eq!(
        e.status(1).unwrap().shelving,
        Shelving::Timed {
            until_ns: 200 * MS + 60_000 * MS
        },
        "clamped to 1 minute"
    );
    let snapshot = e.snapshot(300 * MS);
    assert_eq!(snapshot.shelved, 1);
    assert_eq!(
        snapshot.unacknowledged,
        [0, 0, 0],
        "a shelved alarm is not annunciated"
    );
    e.tick(&snap(12.0), 30_000 * MS);
    assert_eq!(state(&e), AlarmState::Normal, "still shelved");
    e.tick(&snap(12.0), 60_200 * MS);
    assert_eq!(e.status(1).unwrap().shelving, Shelving::None);
    assert_eq!(
        state(&e),
        AlarmState::UnackActive,
        "expired shelve re-raises an active alarm"
    );
    let k: Vec<_> = kinds(&rx).into_iter().map(|(k, _)| k).collect();
    assert_eq!(
        k,
        [
            EventKind::Raised,
            EventKind::Shelved,
            EventKind::Unshelved,
            EventKind::Raised
        ]
    );
}

#[test]
fn a_shelving_keeps_who_and_why_until_it_ends_and_the_journal_has_the_reason() {
    let (mut e, rx) = engine(&defs(""));
    e.tick(&snap(12.0), 0);
    e.tick(&snap(12.0), 100 * MS);
    assert!(e.command(
        AlarmCommand::Shelve {
            alid: 1,
            duration_ns: 60_000 * MS,
            operator: "bo".into(),
            reason: "stage encoder being replaced".into(),
        },
        150 * MS,
    ));
    let snapshot = e.snapshot(200 * MS);
    let entry = snapshot.entry(1).expect("a shelved alarm stays listed");
    assert_eq!(
        entry.shelving,
        Shelving::Timed {
            until_ns: 150 * MS + 60_000 * MS
        }
    );
    assert_eq!(entry.shelved_by.as_str(), "bo");
    assert_eq!(entry.shelve_reason.as_str(), "stage encoder being replaced");
    let shelved = rx
        .try_iter()
        .find(|j| j.kind == EventKind::Shelved)
        .expect("journaled");
    assert_eq!(shelved.operator.unwrap().as_str(), "bo");
    assert_eq!(shelved.note.as_str(), "stage encoder being replaced");
    assert!(e.command(
        AlarmCommand::Unshelve {
            alid: 1,
            operator: "bo".into(),
        },
        300 * MS,
    ));
    let status = e.status(1).unwrap();
    assert_eq!(status.shelving, Shelving::None);
    assert_eq!(
        status.shelved_by.as_str(),
        "",
        "who shelved it is forgotten once it is not"
    );
    assert_eq!(status.shelve_reason.as_str(), "");
}

/// 15 high alarms on camera temperature with rising limits.
fn many(n: u32) -> String {
    (0..n)
        .map(|i| {
            format!(
                "[[alarm]]\nalid = {}\nname = \"hot {i}\"\nkind = \"high\"\nsignal = \"camera.temperature\"\nlimit = {}\npriority = \"low\"\ntext = \"t\"\nguidance = \"g\"\n",
                100 + i,
                40 + i
            )
        })
        .collect()
}

fn temperature(t: f64) -> MachineSnapshot {
    let mut s = snap(1.0);
    s.signals[Signal::CameraTemperature.index()].value = t;
    s
}

#[test]
fn first_out_marks_the_alarm_that_started_it() {
    let (mut e, _rx) = engine(&many(3));
    e.tick(&temperature(40.5), 0);
    e.tick(&temperature(42.5), MS);
    let s = e.snapshot(2 * MS);
    assert!(s.entry(100).unwrap().first_out);
    assert!(!s.entry(101).unwrap().first_out);
    assert!(!s.entry(102).unwrap().first_out);
}

#[test]
fn a_flood_is_summarised_as_n_more() {
    let (mut e, _rx) = engine(&many(15));
    for k in 0..15u64 {
        // One more alarm each second: 15 raises in 15 s.
        e.tick(&temperature(40.5 + k as f64), k * 1000 * MS);
    }
    let s = e.snapshot(15_000 * MS);
    assert_eq!(s.count, 15);
    assert_eq!(
        s.flood_more, 5,
        "the 11th to 15th raise in 10 minutes are the flood"
    );
    assert!(s.entry(100).unwrap().first_out && !s.entry(100).unwrap().in_flood);
    assert!(s.entry(114).unwrap().in_flood);
    assert_eq!(s.active, [15, 0, 0]);
    // Newest first within one priority.
    assert_eq!(s.entries()[0].alid, 114);
}

#[test]
fn heartbeat_quality_alarms_are_their_own() {
    let toml = r#"
[[alarm]]
alid = 7
name = "Stage stale"
kind = "stale"
subsystem = "stage"
priority = "medium"
text = "t"
guidance = "g"

[[alarm]]
alid = 8
name = "Stage lost"
kind = "lost"
subsystem = "stage"
priority = "high"
text = "t"
guidance = "g"
"#;
    let (mut e, _rx) = engine(toml);
    let mut s = snap(1.0);
    s.heartbeats[SUBSYSTEMS[0].index()].quality = Quality::Stale;
    e.tick(&s, 0);
    assert_eq!(e.status(7).unwrap().state, AlarmState::UnackActive);
    assert_eq!(e.status(8).unwrap().state, AlarmState::Normal);
    s.heartbeats[0].quality = Quality::Lost;
    e.tick(&s, MS);
    assert_eq!(e.status(8).unwrap().state, AlarmState::UnackActive);
    assert_eq!(
        e.status(7).unwrap().state,
        AlarmState::UnackActive,
        "lost is also stale"
    );
}

#[test]
fn a_full_journal_channel_never_blocks_the_evaluator_and_the_loss_is_counted() {
    // Nobody drains the journal: room for one event only.
    let (tx, rx) = crossbeam_channel::bounded(1);
    let two = format!(
        "{}\n[[alarm]]\nalid = 2\nname = \"Camera hot\"\nkind = \"high\"\nsignal = \"camera.temperature\"\nlimit = 50.0\npriority = \"low\"\ntext = \"t\"\nguidance = \"g\"\n",
        defs("")
    );
    let mut e = AlarmEngine::new(Arc::from(parse(&two).unwrap()), &[], tx).unwrap();
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let evaluator = std::thread::spawn(move || {
        let mut s = snap(12.0);
        s.signals[Signal::CameraTemperature.index()].value = 60.0;
        // Both alarms raise (no on-delay for the second; the first after
        // its 100 ms), then both are acknowledged: four events, room for one.
        e.tick(&s, 0);
        e.tick(&s, 100 * MS);
        e.command(
            AlarmCommand::AcknowledgeAll {
                operator: "ana".into(),
            },
            101 * MS,
        );
        done_tx.send(e.snapshot(102 * MS)).unwrap();
        e
    });
    let snap = done_rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("the evaluator blocked on a full journal channel");
    assert_eq!(snap.transitions, 4);
    assert_eq!(snap.journal_drops, 3, "three events had no room");
    assert_eq!(rx.try_iter().count(), 1);
    evaluator.join().unwrap();
}

#[test]
fn more_alarms_than_the_engine_holds_is_an_error_not_a_panic() {
    let mut toml = String::new();
    for i in 1..=65 {
        toml += &format!(
            "[[alarm]]\nalid = {i}\nname = \"a{i}\"\nkind = \"high\"\nsignal = \"camera.temperature\"\nlimit = 50.0\npriority = \"low\"\ntext = \"t\"\nguidance = \"g\"\n"
        );
    }
    let e = format!("{:#}", parse(&toml).unwrap_err());
    assert!(
        e.starts_with("65 alarms defined; the alarm engine holds at most 64"),
        "{e}"
    );
}

#[test]
fn a_machine_picture_older_than_three_poll_periods_raises_monitor_stopped_and_only_that() {
    let toml = defs(
        r#"
[[alarm]]
alid = 9
name = "Monitor stopped"
kind = "monitor_stopped"
priority = "high"
text = "t"
guidance = "g"

[[alarm]]
alid = 10
name = "Stage heartbeat lost"
kind = "lost"
subsystem = "stage"
priority = "high"
text = "t"
guidance = "g"
"#,
    );
    let (mut e, rx) = engine(&toml);
    // A period long enough that 3 periods are above the floor the readers
    // allow for scheduler jitter (quality::MIN_OUT_OF_DATE_NS).
    let p = 200 * MS;
    assert_eq!(
        waferscope::monitor::quality::out_of_date_after_ns(p),
        3 * p,
        "3 periods are above the floor"
    );
    let mut last = snap(1.0);
    last.period_ns = p;
    last.taken_ns = 1_000 * MS;
    e.tick(&last, last.taken_ns + 3 * p);
    assert_eq!(
        e.status(9).unwrap().state,
        AlarmState::Normal,
        "3 periods old: fine"
    );
    e.tick(&last, last.taken_ns + 3 * p + 1);
    assert_eq!(e.status(9).unwrap().state, AlarmState::UnackActive);
    // The devices' own alarms hold: the picture says nothing about them now.
    let mut lost = last;
    lost.heartbeats[waferscope::machine::Subsystem::Stage.index()].quality = Quality::Lost;
    e.tick(&lost, last.taken_ns + 100 * p);
    assert_eq!(e.status(10).unwrap().state, AlarmState::Normal);
    assert_eq!(e.status(1).unwrap().state, AlarmState::Normal);
    assert_eq!(
        kinds(&rx),
        [(EventKind::Raised, AlarmState::UnackActive)],
        "one raise, journaled"
    );
    // A fresh picture: the monitor is back, the alarm returns to normal.
    let mut fresh = last;
    fresh.taken_ns = last.taken_ns + 101 * p;
    e.tick(&fresh, fresh.taken_ns);
    assert_eq!(e.status(9).unwrap().state, AlarmState::ReturnedUnack);
}
