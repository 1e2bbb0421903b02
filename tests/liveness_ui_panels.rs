#![cfg(feature = "gui")]
//! The panels that read liveness, driven by egui_kittest on a hand-made
//! view: the status strip counts returned-unacknowledged alarms and reads
//! unambiguously ("High 3 (2 unack)"), and the Health panel names every
//! watched thread's state, a dead one with its panic message.

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use std::sync::Arc;
use std::time::Duration;
use waferscope::hot::liveness::{join_named, spawn_watched};
use waferscope::monitor::{AlarmEntry, AlarmSnapshot, AlarmState, MachineSnapshot, Shelving};
use waferscope::run::RunSnapshot;
use waferscope::ui::view::{Health, View};

fn view(alarms: AlarmSnapshot, health: Health) -> View {
    View {
        now_ns: 0,
        clock: "12:00:00 UTC".into(),
        tick: false,
        machine: MachineSnapshot::default(),
        machine_slow: MachineSnapshot::default(),
        alarms,
        run: RunSnapshot::default(),
        run_slow: RunSnapshot::default(),
        defs: Arc::from(Vec::new()),
        health,
        host: None,
        lot: Default::default(),
        permits: Arc::new(waferscope::ui::session::Permits::signed_out()),
        signed_in: None,
    }
}

fn entry(alid: u32, priority: u8, state: AlarmState, shelving: Shelving) -> AlarmEntry {
    AlarmEntry {
        alid,
        priority,
        state,
        shelving,
        condition: state != AlarmState::ReturnedUnack,
        ..AlarmEntry::default()
    }
}

#[test]
fn the_status_strip_counts_returned_unacknowledged_alarms_and_names_the_priority() {
    let mut a = AlarmSnapshot::default();
    let list = [
        // High: one unacknowledged active, one acknowledged active, one
        // returned unacknowledged: 3 in the list, 2 unacknowledged.
        entry(1, 3, AlarmState::UnackActive, Shelving::None),
        entry(2, 3, AlarmState::AckActive, Shelving::None),
        entry(3, 3, AlarmState::ReturnedUnack, Shelving::None),
        // Medium: one acknowledged active, one shelved (not counted).
        entry(4, 2, AlarmState::AckActive, Shelving::None),
        entry(5, 2, AlarmState::Normal, Shelving::OneShot),
    ];
    for (i, e) in list.iter().enumerate() {
        a.entries[i] = *e;
    }
    a.count = list.len() as u16;
    a.active = [0, 1, 2];
    a.unacknowledged = [0, 0, 2];
    a.shelved = 1;
    let v = view(a, Health::default());
    let mut h = Harness::builder()
        .with_size([1600.0, 60.0])
        .with_context_setup(waferscope::ui::app::setup)
        .build_ui(move |ui| waferscope::ui::status_strip::ui(ui, &v));
    h.run();
    h.get_by_label("◆ High 3 (2 unack)");
    h.get_by_label("▲ Medium 1");
    h.get_by_label("■ Low 0");
}

#[test]
fn the_health_panel_shows_each_watched_threads_state_and_a_dead_ones_message() {
    let (handle, _) = spawn_watched("liveness-ui-victim", Duration::from_secs(5), |_| {
        panic!("injected: the victim fell over")
    })
    .unwrap();
    assert!(join_named("liveness-ui-victim", handle).is_err());
    let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
    let (idle_handle, idle_health) =
        spawn_watched("liveness-ui-waiter", Duration::from_secs(5), move |me| {
            me.idle();
            go_rx.recv().ok();
        })
        .unwrap();
    while idle_health.state() != waferscope::hot::ThreadState::Idle {
        std::thread::sleep(Duration::from_millis(1));
    }
    let health = Health {
        threads: waferscope::hot::liveness::threads(),
        ..Health::default()
    };
    let v = view(AlarmSnapshot::default(), health);
    let mut h = Harness::builder()
        .with_size([900.0, 900.0])
        .with_context_setup(waferscope::ui::app::setup)
        .build_ui(move |ui| waferscope::ui::health::ui(ui, &v));
    h.run();
    h.get_by_label("liveness-ui-victim");
    h.get_by_label("✖ DEAD: injected: the victim fell over");
    h.get_by_label("liveness-ui-waiter");
    assert!(h.query_all_by_label("… idle").next().is_some());
    go_tx.send(()).unwrap();
    join_named("liveness-ui-waiter", idle_handle).unwrap();
}
