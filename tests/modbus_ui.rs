#![cfg(feature = "gui")]

//! The window on a Modbus machine: the Health panel shows the device link
//! and says when it is gone; the Simulator panel offers no I/O faults
//! (they would do nothing on real I/O). The libmodbus peer is started here
//! on 127.0.0.1 and ended by PID.

mod peers;

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use peers::{free_port, machine_config, write_config, Peer};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use waferscope::machine::MachineConfig;
use waferscope::station::{Station, StationConfig};
use waferscope::ui::StationApp;

#[path = "common/sign_in.rs"]
mod sign_in;

fn wait_for(
    h: &mut Harness<'static, StationApp>,
    what: &str,
    mut cond: impl FnMut(&Harness<'static, StationApp>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        h.run_steps(1);
        if cond(h) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn has(h: &Harness<'static, StationApp>, label: &str) -> bool {
    h.query_all_by_label_contains(label).next().is_some()
}

#[test]
fn the_health_panel_shows_the_modbus_link_and_its_loss() {
    let port = free_port();
    let peer = Peer::libmodbus(port);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::temp_dir().join(format!("waferscope-modbus-ui-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    let cfg = write_config(&dir, &machine_config(port, 5, 200));
    let station = Station::start(StationConfig {
        machine: MachineConfig::load(&cfg).unwrap(),
        db: dir.join("station.db"),
        alarms: root.join("assets/alarms.toml"),
        recipes: root.join("assets/recipes"),
        thumbnails: dir.join("thumbnails"),
        paced: false,
        ..StationConfig::default()
    })
    .unwrap();
    let mut h = Harness::builder()
        .with_size([1600.0, 1000.0])
        .with_context_setup(waferscope::ui::app::setup)
        .build_ui_state(
            |ui, app: &mut StationApp| app.show(ui),
            sign_in::as_administrator(StationApp::new(station).unwrap()),
        );
    h.get_by_label("Health").click();
    wait_for(&mut h, "the link shown connected", |h| {
        has(h, "Device links (Modbus TCP)") && has(h, "connected — opened 1×")
    });
    assert!(has(&h, "plc"));

    peer.kill();
    wait_for(&mut h, "the link shown lost", |h| has(h, "NOT CONNECTED"));

    h.get_by_label("Simulator").click();
    h.run_steps(2);
    assert!(has(&h, "This machine's I/O is real"));
    assert!(!has(&h, "Freeze camera heartbeat"));
}
