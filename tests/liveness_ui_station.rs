#![cfg(feature = "gui")]
//! The operator window when the device poller dies (fault injection on the
//! real station): every heartbeat and signal row reads LOST with the reason
//! above them, and the "Monitor stopped" alarm is in the alarm list.

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use waferscope::machine::{SIGNALS, SUBSYSTEMS};
use waferscope::station::{Station, StationConfig};
use waferscope::ui::StationApp;

#[path = "common/sign_in.rs"]
mod sign_in;

#[test]
fn a_dead_poller_shows_every_row_lost_and_the_monitor_stopped_alarm() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let d = std::env::temp_dir().join(format!("waferscope-live-ui-{}", std::process::id()));
    std::fs::remove_dir_all(&d).ok();
    std::fs::create_dir_all(&d).unwrap();
    let station = Station::start(StationConfig {
        db: d.join("station.db"),
        alarms: root.join("assets/alarms.toml"),
        recipes: root.join("assets/recipes"),
        thumbnails: d.join("thumbnails"),
        wafer_seed: 3,
        paced: true,
        camera_fps: 60.0,
        resume_after: Duration::from_millis(300),
        ..StationConfig::default()
    })
    .unwrap();
    let switch = station.monitor.panic_switch.clone();
    let mut h = Harness::builder()
        .with_size([1600.0, 1000.0])
        .with_context_setup(waferscope::ui::app::setup)
        .build_ui_state(
            |ui, app: &mut StationApp| app.show(ui),
            sign_in::as_administrator(StationApp::new(station).unwrap()),
        );
    let has = |h: &Harness<'static, StationApp>, label: &str| {
        h.query_all_by_label_contains(label).next().is_some()
    };
    let lost_rows =
        |h: &Harness<'static, StationApp>| h.query_all_by_label_contains("⊘ LOST").count();
    let wait_for = |h: &mut Harness<'static, StationApp>,
                    what: &str,
                    cond: &dyn Fn(&Harness<'static, StationApp>) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            h.run_steps(1);
            if cond(h) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    h.get_by_label("Heartbeat").click();
    wait_for(&mut h, "healthy", &|h| has(h, "Health ✔ OK"));
    assert_eq!(lost_rows(&h), 0);

    switch.trip();
    let rows = SUBSYSTEMS.len() + SIGNALS.len();
    // (The status strip may say "⊘ LOST DATA" too.)
    wait_for(&mut h, "every row LOST", &|h| lost_rows(h) >= rows);
    assert!(has(&h, "Monitor stopped: no machine data for"));
    h.get_by_label("Alarms").click();
    wait_for(&mut h, "monitor-stopped alarm", &|h| {
        has(h, "1091 Monitor stopped")
    });
    std::fs::remove_dir_all(&d).ok();
}
