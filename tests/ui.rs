#![cfg(feature = "gui")]
//! The operator window driven through egui_kittest on the real app state:
//! choose a recipe, Start and see RUNNING with dies advancing; Pause and
//! Resume; a frozen heartbeat shows the row as stale and the run as
//! SUSPENDED; acknowledge the alarm; Abort with a reason ends as ABORTED
//! with partial results on the map.

use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use waferscope::station::{Station, StationConfig};
use waferscope::ui::wafer_map::DieMark;
use waferscope::ui::StationApp;

#[path = "common/sign_in.rs"]
mod sign_in;
#[path = "common/window.rs"]
mod window;
use window::{harness, has};

fn app(name: &str) -> (StationApp, PathBuf) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let d = std::env::temp_dir().join(format!("waferscope-ui-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
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
    (
        sign_in::as_administrator(StationApp::new(station).unwrap()),
        d,
    )
}

fn wait_for(
    h: &mut Harness<'static, StationApp>,
    what: &str,
    cond: impl FnMut(&Harness<'static, StationApp>) -> bool,
) {
    window::wait_within(h, what, Duration::from_secs(60), cond)
}

/// The "Dies N/M" figure of the status strip.
fn dies_done(h: &Harness<'static, StationApp>) -> u32 {
    for node in h.get_all_by_label_contains("Dies ") {
        let n = node.accesskit_node();
        let text = n.label().or_else(|| n.value()).unwrap_or_default();
        if let Some(rest) = text.strip_prefix("Dies ") {
            if let Some(n) = rest.split('/').next().and_then(|n| n.parse().ok()) {
                return n;
            }
        }
    }
    panic!("no \"Dies N/M\" in the status strip");
}

#[test]
fn an_operator_runs_pauses_sees_a_suspension_acknowledges_and_aborts() {
    let (app, dir) = app("flow");
    let mut h = harness(app);
    h.run_steps(2);
    assert!(has(&h, "■ IDLE"), "the strip shows the idle state");
    assert!(has(&h, "Run —"), "no run id before the first run");
    wait_for(&mut h, "healthy", |h| has(h, "Health ✔ OK"));

    // Choose the 200 mm sampled recipe and load it.
    h.get_by_role_and_label(egui::accesskit::Role::ComboBox, "Recipe")
        .click();
    h.run_steps(2);
    h.get_by_label("sampled-200mm.toml").click();
    h.run_steps(2);
    h.get_by_label("Load recipe").click();
    wait_for(&mut h, "READY", |h| has(h, "■ READY"));
    assert!(has(&h, "Recipe INS-200-SAMPLE4"));

    h.get_by_label("Start").click();
    wait_for(&mut h, "RUNNING", |h| has(h, "▶ RUNNING"));
    // The strip names the run (the first run of a fresh database).
    wait_for(&mut h, "the run id in the strip", |h| has(h, "Run 1"));
    // Numbers refresh once a second: watch them advance.
    wait_for(&mut h, "dies advancing", |h| dies_done(h) >= 2);
    let first = dies_done(&h);
    wait_for(&mut h, "more dies", |h| dies_done(h) > first);
    // A sampled plan leaves every die without row neighbours: the map says
    // so, and marks the dies compared with the golden die alone.
    assert!(
        has(&h, "Note: reference die_to_die: "),
        "the load note is shown"
    );
    wait_for(&mut h, "reference legend", |h| {
        has(h, "Compared with: die-to-golden (filled corner ■) ")
    });

    h.get_by_label("Pause").click();
    wait_for(&mut h, "PAUSED", |h| has(h, "⏸ PAUSED"));
    h.get_by_label("Resume").click();
    wait_for(&mut h, "RUNNING again", |h| has(h, "▶ RUNNING"));

    // Inject a frozen camera heartbeat from the simulator panel.
    h.get_by_label("Simulator").click();
    h.run_steps(2);
    h.get_by_label("Freeze camera heartbeat").click();
    wait_for(&mut h, "SUSPENDED", |h| has(h, "⚠ SUSPENDED"));
    h.get_by_label("Heartbeat").click();
    wait_for(&mut h, "stale row", |h| {
        has(h, "◌ STALE") || has(h, "⊘ LOST")
    });

    // Acknowledge the alarm it raised.
    h.get_by_label("Alarms").click();
    wait_for(&mut h, "camera alarm", |h| {
        has(h, "1031 Camera heartbeat stale")
    });
    h.get_by_label("Acknowledge 1031").click();
    wait_for(&mut h, "acknowledged", |h| {
        h.state()
            .station
            .alarms
            .snapshots
            .reader()
            .and_then(|mut r| r.read().value.entry(1031).map(|e| e.state))
            == Some(waferscope::monitor::AlarmState::AckActive)
    });
    // The window shows it on a later frame (it redraws on its own clock,
    // which a loaded machine delays).
    wait_for(&mut h, "ACK ACTIVE shown", |h| has(h, "○ ACK ACTIVE"));
    // The alarm links to the panel where it is handled.
    h.get_by_label("Open Heartbeat panel (1031)").click();
    h.run_steps(2);
    assert_eq!(h.state().tab, waferscope::ui::Tab::Heartbeat);
    assert!(has(&h, "◌ STALE") || has(&h, "⊘ LOST"));
    h.get_by_label("Alarms").click();
    h.run_steps(2);

    // Abort with a reason.
    h.get_by_label("Abort").click();
    h.run_steps(2);
    assert!(has(&h, "Abort the run?"));
    let field = h.get_by_role_and_label(egui::accesskit::Role::TextInput, "Reason");
    field.click();
    h.run_steps(1);
    h.get_by_role_and_label(egui::accesskit::Role::TextInput, "Reason")
        .type_text("camera link check");
    h.run_steps(2);
    h.get_by_label("Confirm abort").click();
    wait_for(&mut h, "ABORTED", |h| has(h, "✖ ABORTED"));
    let map = &h.state().map;
    let inspected = map.count(DieMark::Clean) + map.count(DieMark::Defective);
    assert!(inspected >= 3, "partial results on the map: {inspected}");
    assert!(
        map.count(DieMark::NotInspected) > 0,
        "the rest marked not inspected"
    );
    assert_eq!(map.count(DieMark::Pending), 0);
    assert!(!map.defects.is_empty());
    assert!(has(&h, "camera link check"));
    // The summary to acknowledge says what ended, how and why.
    assert!(has(&h, "Run summary"));
    assert!(has(&h, "Ended: aborted — camera link check"), "the reason");
    assert!(has(
        &h,
        "Run 1: lot LOT-001, wafer W01, slot 1, recipe INS-200-SAMPLE4"
    ));
    h.get_by_label("Acknowledge").click();
    wait_for(&mut h, "IDLE after acknowledging", |h| has(h, "■ IDLE"));
    assert!(!has(&h, "Run summary"));
    drop(h);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn a_bad_recipe_shows_its_validation_error_in_the_window() {
    let (mut app, dir) = app("bad");
    let bad = dir.join("broken.toml");
    std::fs::write(&bad, "id = \"X\"\nname = \"broken\"\n").unwrap();
    app.run_control.recipes.push(bad.clone());
    app.run_control.recipe = Some(bad.clone());
    let mut h = harness(app);
    h.run_steps(2);
    h.get_by_label("Load recipe").click();
    h.run_steps(3);
    let expected = format!("✖ {}: line 1: missing field `wafer`", bad.display());
    assert!(has(&h, &expected), "the error is shown");
    assert!(has(&h, "■ IDLE"));
    drop(h);
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn commands_not_allowed_now_are_disabled() {
    let (app, dir) = app("disabled");
    let mut h = harness(app);
    h.run_steps(2);
    for label in ["Start", "Pause", "Resume", "Stop", "Abort"] {
        assert!(
            h.get_by_label(label).accesskit_node().is_disabled(),
            "{label} must be disabled while idle"
        );
    }
    drop(h);
    std::fs::remove_dir_all(dir).ok();
}

/// A station on `d/station.db` (left as the caller prepared it).
fn app_in(d: &std::path::Path, thumbnails: PathBuf) -> StationApp {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let station = Station::start(StationConfig {
        db: d.join("station.db"),
        alarms: root.join("assets/alarms.toml"),
        recipes: root.join("assets/recipes"),
        thumbnails,
        wafer_seed: 3,
        paced: false,
        camera_fps: 60.0,
        resume_after: Duration::from_millis(300),
        ..StationConfig::default()
    })
    .unwrap();
    sign_in::as_administrator(StationApp::new(station).unwrap())
}

fn fresh_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("waferscope-ui-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn the_run_history_is_the_newest_runs_with_a_note_not_the_whole_table() {
    use waferscope::store::{RunIdentity, RunLayout, RunStart, RunStore, SqliteStore};
    let d = fresh_dir("history");
    let mut store = SqliteStore::open(&d.join("station.db")).unwrap();
    let runs = waferscope::station::HISTORY_LIMIT as u64 + 25;
    for n in 0..runs {
        let id = store
            .begin(&RunStart {
                identity: RunIdentity {
                    lot: "LOT".into(),
                    wafer: format!("W{n}"),
                    slot: 1,
                    operator: "op".into(),
                },
                recipe_id: "R".into(),
                recipe_hash: "h".into(),
                plan: Vec::new(),
                started_unix_ms: 1_700_000_000_000 + n as i64,
                layout: RunLayout::default(),
            })
            .unwrap();
        store
            .end(
                id,
                waferscope::store::ExitStatus::Complete,
                "",
                1_700_000_000_001,
            )
            .unwrap();
    }
    drop(store);
    let mut h = harness(app_in(&d, d.join("thumbnails")));
    wait_for(&mut h, "history read", |h| {
        h.state().station.history.lock().unwrap().total == runs
    });
    {
        let history = h.state().station.history.lock().unwrap();
        assert_eq!(history.runs.len(), waferscope::station::HISTORY_LIMIT);
        assert_eq!(
            history.runs[0].wafer,
            format!("W{}", runs - 1),
            "newest first"
        );
    }
    h.run_steps(2);
    assert!(
        has(&h, &format!("showing the newest 200 of {runs} runs")),
        "the window says not all runs are shown"
    );
    drop(h);
    std::fs::remove_dir_all(d).ok();
}

/// The overview's Export action: pick a recorded run and a format, press
/// Export…; the file is written off the UI thread into the station's
/// export directory (no file dialog without the `file-dialog` feature)
/// and the message line says where.
#[test]
fn an_operator_exports_a_past_run_from_the_overview() {
    use waferscope::store::{RunIdentity, RunLayout, RunStart, RunStore, SqliteStore};
    let d = fresh_dir("export");
    let mut store = SqliteStore::open(&d.join("station.db")).unwrap();
    for (wafer, slot) in [("W06", 6), ("W07", 7)] {
        let id = store
            .begin(&RunStart {
                identity: RunIdentity {
                    lot: "LOT-U".into(),
                    wafer: wafer.into(),
                    slot,
                    operator: "op".into(),
                },
                recipe_id: "R".into(),
                recipe_hash: "h".into(),
                plan: Vec::new(),
                started_unix_ms: 1_700_000_000_000,
                layout: RunLayout::default(),
            })
            .unwrap();
        store
            .end(
                id,
                waferscope::store::ExitStatus::Complete,
                "",
                1_700_000_000_001,
            )
            .unwrap();
    }
    drop(store);
    let mut h = harness(app_in(&d, d.join("thumbnails")));
    wait_for(&mut h, "history read", |h| {
        h.state().station.history.lock().unwrap().total == 2
    });
    h.run_steps(2);
    // The older run, not the newest offered first, as KLARF 1.8.
    h.get_by_label("run 1 · LOT-U/W06 slot 6 · complete")
        .click();
    h.run_steps(1);
    h.get_by_label("KLARF 1.8").click();
    h.run_steps(1);
    h.get_by_label("Export…").click();
    let file = d.join("exports").join("LOT-U_W06_slot06_run1_v18.klarf");
    wait_for(&mut h, "the export written", |h| {
        !h.state().exporting() && file.is_file()
    });
    h.run_steps(2);
    assert!(
        has(&h, &format!("run 1 exported to {}", file.display())),
        "the message line says where"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("Record FileRecord \"1.8\"")
            && text.contains("Record LotRecord \"LOT-U\"")
            && text.contains("Record WaferRecord \"W06\"")
            && text.contains("Field SlotNumber 1 {6}")
            && text.ends_with("}\nEndOfFile;\n"),
        "{text}"
    );
    drop(h);
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn the_run_control_applies_the_id_rules() {
    let d = fresh_dir("ids");
    let mut app = app_in(&d, d.join("thumbnails"));
    app.run_control.recipe =
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/recipes/sampled-200mm.toml"));
    app.run_control.wafer = "W".repeat(33);
    let mut h = harness(app);
    wait_for(&mut h, "healthy", |h| has(h, "Health ✔ OK"));
    h.get_by_label("Load recipe").click();
    h.run_steps(3);
    assert!(
        has(&h, "✖ wafer id") && has(&h, "at most 32"),
        "a too long id is refused naming the field"
    );
    assert!(has(&h, "■ IDLE"), "nothing loaded");

    h.state_mut().run_control.wafer = "W;1\"ä".into();
    h.run_steps(1);
    h.get_by_label("Load recipe").click();
    wait_for(&mut h, "READY", |h| has(h, "■ READY"));
    let wafer = h
        .state()
        .station
        .engine
        .snapshots
        .reader()
        .map(|mut r| r.read().value.wafer.as_str().to_owned());
    assert_eq!(wafer.as_deref(), Some("W_1__"));
    assert!(has(&h, "⚠ wafer id"), "the replacement is shown");
    drop(h);
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn thumbnails_that_cannot_be_written_are_counted_in_health() {
    let d = fresh_dir("thumbs-skipped");
    // A file where the thumbnail directory should be: every write fails.
    let blocked = d.join("thumbnails");
    std::fs::write(&blocked, b"not a directory").unwrap();
    let mut app = app_in(&d, blocked);
    app.run_control.recipe =
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/recipes/sampled-200mm.toml"));
    let mut h = harness(app);
    wait_for(&mut h, "healthy", |h| has(h, "Health ✔ OK"));
    h.get_by_label("Load recipe").click();
    wait_for(&mut h, "READY", |h| has(h, "■ READY"));
    h.get_by_label("Start").click();
    wait_for(&mut h, "COMPLETE", |h| has(h, "COMPLETE"));
    let defects = h
        .state()
        .station
        .engine
        .snapshots
        .reader()
        .map(|mut r| r.read().value.defects)
        .unwrap();
    assert!(defects > 0, "the wafer must have defects for this test");
    wait_for(&mut h, "skips counted", |h| {
        h.state().health().thumbnails_skipped > 0
    });
    drop(h);
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn an_engineer_teaches_the_loaded_recipes_golden_die_from_the_window() {
    let (app, dir) = app("teach");
    let mut h = harness(app);
    wait_for(&mut h, "healthy", |h| has(h, "Health ✔ OK"));
    h.get_by_role_and_label(egui::accesskit::Role::ComboBox, "Recipe")
        .click();
    h.run_steps(2);
    h.get_by_label("sampled-200mm.toml").click();
    h.run_steps(2);
    h.get_by_label("Load recipe").click();
    wait_for(&mut h, "READY", |h| has(h, "■ READY"));
    h.get_by_label("Teach golden die").click();
    wait_for(&mut h, "taught", |h| has(h, "Golden die taught"));
    // Kept beside the station's database, named after the recipe.
    let golden = dir.join("golden/INS-200-SAMPLE4.png");
    let img = image::open(&golden).unwrap();
    assert!(
        img.width() >= 64 && img.width() == img.height(),
        "{golden:?}"
    );
    std::fs::remove_dir_all(dir).ok();
}

/// The wafer map panel alone, on a sampled plan's results: the load note,
/// the reference legend with counts per kind, untrusted alignment, and a
/// repeater with its die count.
#[test]
fn the_wafer_map_shows_what_each_die_was_compared_with_and_repeaters() {
    use waferscope::pipeline::{Defect, DieResult, ReferenceMode};
    use waferscope::store::record::RepeaterMark;
    use waferscope::ui::wafer_map::{self, WaferMapState};
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let recipe =
        waferscope::run::recipe::load(&root.join("assets/recipes/sampled-200mm.toml")).unwrap();
    let mut map = WaferMapState::for_recipe(&recipe);
    map.restart(1);
    for (k, &die) in recipe.plan.iter().enumerate().take(8) {
        let mut r = DieResult::default();
        r.clear(die);
        // As the worker reports a die without neighbours; the last one
        // could not be aligned.
        r.reference_mode = ReferenceMode::DieToGolden;
        r.golden_left = true;
        r.golden_right = true;
        r.alignment_untrusted = k == 7;
        if k < 4 {
            r.push(Defect {
                x_px: 100.0,
                y_px: 100.0,
                bbox: [98, 98, 102, 102],
                area_px: 12,
                ..Defect::default()
            });
        }
        map.apply(&r);
    }
    let marks: Vec<RepeaterMark> = recipe.plan[..4]
        .iter()
        .map(|&die| RepeaterMark {
            die_index: die,
            defect_no: 1,
            dies: 4,
        })
        .collect();
    map.apply_repeaters(&marks);
    let mut h = Harness::builder()
        .with_size([1000.0, 900.0])
        .with_context_setup(waferscope::ui::app::setup)
        .build_ui_state(
            |ui, map: &mut WaferMapState| {
                let mut out = Vec::new();
                wafer_map::ui(ui, map, &mut out);
            },
            map,
        );
    h.run_steps(2);
    let label = |text: &str| h.query_all_by_label_contains(text).next().is_some();
    assert!(label(&format!(
        "Note: reference die_to_die: {n} of {n} planned dies have no row neighbour in the plan and will be inspected die-to-golden",
        n = recipe.plan.len()
    )));
    assert!(label(
        "Compared with: die-to-golden (filled corner ■) 8; alignment untrusted, not compared (crossed out) 1"
    ));
    assert!(label("4 REPEATER defects (ringed, on 4 dies)"));
}

/// HMI rule 11: a UI pass held up for 1 s (injected: the harness does not
/// run the window for that long) is seen by the watchdog and shown, with
/// its length, in the Health panel.
#[test]
fn a_one_second_ui_stall_is_logged_by_the_watchdog_and_shown_in_health() {
    let (app, dir) = app("stall");
    let mut h = harness(app);
    h.get_by_label("Health").click();
    h.run_steps(3);
    wait_for(&mut h, "no stall yet", |h| {
        h.state().health().ui_watchdog_running && h.state().health().ui_stalls.stalls == 0
    });
    assert!(has(&h, "UI stalls over 0.5 s"));
    // The last frame asked for the next after this; a stall is counted
    // from then (the frame was due), not from the last frame.
    let asked = h.state().repaint_asked;
    std::thread::sleep(Duration::from_millis(1000));
    // The figures are refreshed once a second: wait for the stall to show.
    wait_for(&mut h, "the stall shown", |h| {
        has(h, "1 (longest ") && h.state().health().ui_stalls.stalls == 1
    });
    let f = h.state().health().ui_stalls;
    assert!(
        f.longest_ms as u128 + asked.as_millis() >= 1000,
        "{f:?}, the frame after was due {asked:?} after the last"
    );
    drop(h);
    std::fs::remove_dir_all(dir).ok();
}

/// Our own HSMS host side for the Host panel test (the GEM protocol itself
/// is tested against secsgem in tests/gem_secsgem.rs): connects, answers
/// what the equipment asks (S1F13, event reports) so it never waits on us.
fn host_side(
    rt: &tokio::runtime::Runtime,
    equipment: std::net::SocketAddr,
) -> waferscope::host::hsms::HsmsHandle {
    use waferscope::host::hsms::{
        ConnectionState, Hsms, HsmsConfig, HsmsEvent, HsmsMode, HsmsTimers,
    };
    use waferscope::host::secs2::{encode_body, Item};
    rt.block_on(async {
        let (host, mut events) = Hsms::start(HsmsConfig {
            mode: HsmsMode::Active { connect: equipment },
            timers: HsmsTimers {
                t5: Duration::from_millis(200),
                ..HsmsTimers::default()
            },
            ..HsmsConfig::default()
        })
        .await
        .unwrap();
        let answers = host.clone();
        tokio::spawn(async move {
            while let Some(e) = events.recv().await {
                if let HsmsEvent::Primary(m) = e {
                    if m.w_bit {
                        let reply = match (m.stream, m.function) {
                            (1, 13) => Item::list([Item::binary_byte(0), Item::empty_list()]),
                            _ => Item::binary_byte(0),
                        };
                        let mut out = Vec::new();
                        encode_body(Some(&reply), &mut out).unwrap();
                        answers.reply(&m, m.function + 1, out).unwrap();
                    }
                }
            }
        });
        let mut state = host.state_watch();
        while *state.borrow_and_update() != ConnectionState::Selected {
            tokio::time::timeout(Duration::from_secs(10), state.changed())
                .await
                .expect("selected within 10 s")
                .unwrap();
        }
        host
    })
}

/// The Host panel: the link's states in the strip and the panel, the
/// operator's LOCAL/REMOTE switch, a host message acknowledged, the SECS
/// log shown.
#[test]
fn the_host_panel_shows_the_link_switches_control_and_acknowledges_host_messages() {
    use waferscope::host::gem::{ControlState, GemConfig};
    use waferscope::host::hsms::HsmsMode;
    use waferscope::host::secs2::{encode_body, Item};
    let (app, dir) = app("host");
    let gem = app
        .station
        .start_gem(GemConfig::new(
            HsmsMode::Passive {
                listen: "127.0.0.1:0".parse().unwrap(),
            },
            &dir,
            &dir,
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/recipes"),
        ))
        .unwrap();
    let equipment = gem.local_addr().unwrap();
    let mut h = harness(app.with_gem(gem.clone()));
    h.get_by_label("Host").click();
    wait_for(&mut h, "not communicating", |h| {
        has(h, "Host ⊘ NOT COMMUNICATING")
    });
    assert!(has(
        &h,
        &format!("HSMS passive: listening for the host on {equipment}")
    ));

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let host = host_side(&rt, equipment);
    let body = |i: Item| {
        let mut out = Vec::new();
        encode_body(Some(&i), &mut out).unwrap();
        out
    };
    let reply = rt
        .block_on(host.request(1, 13, body(Item::empty_list())))
        .unwrap();
    assert_eq!(reply.function, 14);
    wait_for(&mut h, "communicating", |h| has(h, "Host ✔ COMMUNICATING"));
    // The host takes the tool on-line; the operator keeps LOCAL control.
    let reply = rt.block_on(host.request(1, 17, Vec::new())).unwrap();
    assert_eq!(reply.function, 18);
    wait_for(&mut h, "ONLINE LOCAL", |h| has(h, "· ONLINE LOCAL"));
    assert!(has(&h, "LOCAL"));

    // The operator hands control to the host, and takes it back.
    h.get_by_label("Give control to the host").click();
    wait_for(&mut h, "ONLINE REMOTE", |h| has(h, "· ONLINE REMOTE"));
    assert_eq!(gem.control_state(), ControlState::OnlineRemote);
    h.get_by_label("Take local control").click();
    wait_for(&mut h, "back to LOCAL", |h| has(h, "· ONLINE LOCAL"));
    assert_eq!(gem.control_state(), ControlState::OnlineLocal);

    // A message from the host (S10F3) waits for the operator.
    let reply = rt
        .block_on(host.request(
            10,
            3,
            body(Item::list([
                Item::binary_byte(0),
                Item::ascii("Lot L7 on hold: call the area engineer"),
            ])),
        ))
        .unwrap();
    assert_eq!(reply.function, 4);
    wait_for(&mut h, "host message shown", |h| {
        has(h, "✉ Lot L7 on hold: call the area engineer") && has(h, "✉ 1 from host")
    });
    h.get_by_label("Acknowledge message").click();
    wait_for(&mut h, "message acknowledged", |h| has(h, "None waiting."));
    assert!(gem.terminal_messages().is_empty());

    // The SECS log shows the conversation.
    wait_for(&mut h, "SECS log lines", |h| {
        has(h, "S10F3") && has(h, "S1F17")
    });

    rt.block_on(host.shutdown());
    h.state().station.runtime().block_on(gem.shutdown());
    drop(h);
    std::fs::remove_dir_all(dir).ok();
}

/// HMI rule 9: the Heartbeat panel's trends switch between 1 min, 10 min
/// and 1 h, and the button of the span shown reads as selected.
#[test]
fn the_heartbeat_trends_switch_spans() {
    use egui::accesskit::Toggled;
    use waferscope::monitor::trend::TrendSpan;
    let d = fresh_dir("spans");
    let mut h = harness(app_in(&d, d.join("thumbnails")));
    h.run_steps(2);
    h.get_by_label("Heartbeat").click();
    h.run_steps(2);
    assert_eq!(
        h.state().heartbeat.span,
        TrendSpan::TenMinutes,
        "10 min first"
    );
    for span in [
        TrendSpan::OneHour,
        TrendSpan::OneMinute,
        TrendSpan::TenMinutes,
    ] {
        h.get_by_label(span.label()).click();
        h.run_steps(2);
        assert_eq!(h.state().heartbeat.span, span);
        for other in TrendSpan::ALL {
            let toggled = h.get_by_label(other.label()).accesskit_node().toggled();
            let expected = if other == span {
                Toggled::True
            } else {
                Toggled::False
            };
            assert_eq!(toggled, Some(expected), "{other:?} while {span:?} is shown");
        }
    }
    drop(h);
    std::fs::remove_dir_all(d).ok();
}

/// The History tab: two runs recorded on the simulated station are
/// listed; the lot filter leaves one; a click on it shows its wafer map
/// and a defect table equal to the database's defects, sortable by a
/// header.
#[test]
fn a_click_on_a_past_run_shows_its_map_and_defect_table() {
    use waferscope::store::query::load_run;
    use waferscope::ui::history::DefectColumn;
    let d = fresh_dir("history-review");
    let mut app = app_in(&d, d.join("thumbnails"));
    app.run_control.recipe =
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/recipes/sampled-200mm.toml"));
    let mut h = harness(app);
    wait_for(&mut h, "healthy", |h| has(h, "Health ✔ OK"));
    for (lot, wafer) in [("LOT-A", "WA-01"), ("LOT-B", "WB-01")] {
        h.state_mut().run_control.lot = lot.into();
        h.state_mut().run_control.wafer = wafer.into();
        h.run_steps(1);
        h.get_by_label("Load recipe").click();
        wait_for(&mut h, "READY", |h| has(h, "■ READY"));
        h.get_by_label("Start").click();
        wait_for(&mut h, "COMPLETE", |h| has(h, "COMPLETE"));
        h.get_by_label("Acknowledge").click();
        wait_for(&mut h, "IDLE", |h| has(h, "■ IDLE"));
    }

    // A row of the run list: a button per cell (the status strip may name
    // the last wafer too, as text).
    let listed = |h: &Harness<'static, StationApp>, wafer: &str| {
        h.query_by_role_and_label(egui::accesskit::Role::Button, wafer)
            .is_some()
    };
    h.get_by_label("History").click();
    wait_for(&mut h, "both runs listed", |h| {
        listed(h, "WA-01") && listed(h, "WB-01")
    });
    assert!(has(&h, "2 runs"));

    h.get_by_role_and_label(egui::accesskit::Role::TextInput, "Lot contains:")
        .focus();
    h.run_steps(1);
    h.get_by_role_and_label(egui::accesskit::Role::TextInput, "Lot contains:")
        .type_text("lot-b");
    wait_for(&mut h, "only LOT-B listed", |h| {
        listed(h, "WB-01") && !listed(h, "WA-01")
    });
    assert!(has(&h, "1 run"));

    h.get_by_label("WB-01").click();
    wait_for(&mut h, "the run opened", |h| {
        h.state().history.review.run.is_some()
    });
    h.run_steps(2);
    let conn = waferscope::store::db::open(&d.join("station.db")).unwrap();
    let run_id = h.state().history.review.run.as_ref().unwrap().run.id;
    let recorded = load_run(&conn, run_id).unwrap();
    assert_eq!(recorded.run.wafer, "WB-01");
    assert!(
        !recorded.defects.is_empty(),
        "the wafer must have defects for this test"
    );
    assert!(has(&h, &format!("Run {run_id}: lot LOT-B, wafer WB-01")));
    // Its map: every recorded die drawn, every listed defect marked.
    let review = &h.state().history.review;
    assert_eq!(review.map.sites.len(), recorded.dies.len());
    assert_eq!(review.map.defects.len(), recorded.defects.len());
    assert!(
        has(&h, &format!("{} dies: ", recorded.dies.len())),
        "the map's summary is shown"
    );
    // Its defect table: the database's defects, in its order.
    assert_eq!(review.table.rows(), recorded.defects.as_slice());
    assert!(has(
        &h,
        &format!("{} defects listed", recorded.defects.len())
    ));

    // Sort by area, then the other way.
    h.get_by_label(DefectColumn::Area.label()).click();
    h.run_steps(2);
    let areas: Vec<f64> = h
        .state()
        .history
        .review
        .table
        .rows()
        .iter()
        .map(|r| r.area_um2)
        .collect();
    assert!(
        areas.windows(2).all(|w| w[0] <= w[1]),
        "ascending: {areas:?}"
    );
    assert!(has(&h, "Area µm² ▲"));
    h.get_by_label("Area µm² ▲").click();
    h.run_steps(2);
    let areas: Vec<f64> = h
        .state()
        .history
        .review
        .table
        .rows()
        .iter()
        .map(|r| r.area_um2)
        .collect();
    assert!(
        areas.windows(2).all(|w| w[0] >= w[1]),
        "descending: {areas:?}"
    );
    assert!(has(&h, "Area µm² ▼"));
    let mut sorted = h.state().history.review.table.rows().to_vec();
    let mut expected = recorded.defects.clone();
    let key = |r: &waferscope::store::query::DefectRow| (r.die_index, r.defect_no);
    sorted.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(sorted, expected, "sorting keeps every row");

    // Export the reviewed run as KLARF 1.2 (into the export directory:
    // this build has no save dialog); the file lists its defects.
    h.get_by_label("Export KLARF 1.2…").click();
    let exported = d.join("exports").join(format!(
        "LOT-B_WB-01_slot{:02}_run{run_id}.klarf",
        recorded.run.slot
    ));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !exported.exists() {
        assert!(Instant::now() < deadline, "{} written", exported.display());
        h.run_steps(1);
        std::thread::sleep(Duration::from_millis(10));
    }
    wait_for(&mut h, "the answer", |h| {
        has(h, &format!("run {run_id} exported to "))
    });
    let text = std::fs::read_to_string(&exported).unwrap();
    assert!(text.contains("DefectList"), "{text}");
    drop(h);
    std::fs::remove_dir_all(d).ok();
}
