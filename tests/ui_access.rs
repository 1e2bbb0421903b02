#![cfg(feature = "gui")]
//! Sign-in at the window, driven through egui_kittest on the real app:
//! the first start creates the administrator; an operator signed in sees
//! the Shelve button disabled with the reason on hover; an engineer
//! shelves with a reason and a duration, and the alarm says who shelved it
//! until when; the status strip names who is signed in.

use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use waferscope::access::{AccessConfig, Role};
use waferscope::station::{Station, StationConfig};
use waferscope::ui::StationApp;

#[path = "common/window.rs"]
mod window;
use window::{harness, has};

fn app(d: &Path) -> StationApp {
    app_with(d, AccessConfig::default())
}

fn app_with(d: &Path, access: AccessConfig) -> StationApp {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    // A copy: the recipes may be edited here.
    std::fs::create_dir_all(d.join("recipes")).unwrap();
    for name in ["sampled-200mm.toml", "full-300mm.toml"] {
        std::fs::copy(
            root.join("assets/recipes").join(name),
            d.join("recipes").join(name),
        )
        .unwrap();
    }
    let station = Station::start(StationConfig {
        db: d.join("station.db"),
        alarms: root.join("assets/alarms.toml"),
        recipes: d.join("recipes"),
        thumbnails: d.join("thumbnails"),
        paced: false,
        access,
        ..StationConfig::default()
    })
    .unwrap();
    StationApp::new(station).unwrap()
}

fn fresh_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "waferscope-ui-access-{name}-{}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn wait_for(
    h: &mut Harness<'static, StationApp>,
    what: &str,
    cond: impl FnMut(&Harness<'static, StationApp>) -> bool,
) {
    window::wait_within(h, what, Duration::from_secs(60), cond)
}

fn type_into(h: &mut Harness<'static, StationApp>, label: &str, text: &str) {
    // Password fields are their own role (their text is never exposed).
    let role = if label.contains("assword") {
        egui::accesskit::Role::PasswordInput
    } else {
        egui::accesskit::Role::TextInput
    };
    h.get_by_role_and_label(role, label).click();
    h.run_steps(1);
    h.get_by_role_and_label(role, label).type_text(text);
    h.run_steps(1);
}

fn sign_in(h: &mut Harness<'static, StationApp>, user: &str, password: &str) {
    type_into(h, "User", user);
    type_into(h, "Password", password);
    h.get_by_role_and_label(egui::accesskit::Role::Button, "Sign in")
        .click();
    h.run_steps(2);
}

const PASSWORD: &str = "correct-horse-77";

#[test]
fn an_operator_may_not_shelve_an_engineer_shelves_with_a_reason_and_the_strip_names_them() {
    let d = fresh_dir("shelve");
    let mut h = harness(app(&d));
    h.run_steps(2);

    // First start: nobody can sign in yet; the window asks for the
    // administrator, and nothing can be commanded meanwhile.
    assert!(has(&h, "First start: create the administrator"));
    assert!(has(&h, "Nobody signed in"));
    let load = h.get_by_label("Load recipe");
    assert!(load.accesskit_node().is_disabled());
    type_into(&mut h, "User", "root");
    type_into(&mut h, "Password", PASSWORD);
    type_into(&mut h, "Repeat password", PASSWORD);
    h.get_by_label("Create administrator").click();
    wait_for(&mut h, "root signed in", |h| {
        has(h, "Signed in: root (administrator)")
    });
    let admin = h.state().session.actor().unwrap();
    for (name, role) in [("olga", Role::Operator), ("erik", Role::Engineer)] {
        h.state()
            .station
            .guard
            .add_user(&admin, name, role, PASSWORD)
            .unwrap();
    }
    h.get_by_label("Sign out").click();
    h.run_steps(2);
    assert!(has(&h, "Nobody signed in"));

    // An alarm to shelve: the camera's heartbeat freezes (injected here as
    // the simulator would, below the window).
    h.state()
        .station
        .io_faults
        .as_ref()
        .unwrap()
        .freeze_heartbeat(waferscope::machine::Subsystem::Camera, true);
    h.get_by_label("Alarms").click();
    wait_for(&mut h, "camera alarm", |h| {
        has(h, "1031 Camera heartbeat stale")
    });

    // The operator: Shelve is disabled, and says why on hover.
    sign_in(&mut h, "olga", PASSWORD);
    wait_for(&mut h, "olga signed in", |h| {
        has(h, "Signed in: olga (operator)")
    });
    let shelve = h.get_by_label("Shelve 1031…");
    assert!(shelve.accesskit_node().is_disabled());
    shelve.hover();
    wait_for(&mut h, "the reason on hover", |h| {
        has(
            h,
            "an operator may not shelve alarms (engineer, administrator may)",
        )
    });
    // The operator may acknowledge.
    assert!(!h
        .get_by_label("Acknowledge 1031")
        .accesskit_node()
        .is_disabled());
    h.get_by_label("Sign out").click();
    h.run_steps(2);

    // A wrong password is refused and said; the engineer then shelves with
    // a reason.
    sign_in(&mut h, "erik", "not-the-password");
    assert!(has(&h, "✖ wrong user name or password"));
    // The name stays; the password field was emptied.
    type_into(&mut h, "Password", PASSWORD);
    h.get_by_role_and_label(egui::accesskit::Role::Button, "Sign in")
        .click();
    h.run_steps(2);
    wait_for(&mut h, "erik signed in", |h| {
        has(h, "Signed in: erik (engineer)")
    });
    h.get_by_label("Shelve 1031…").click();
    h.run_steps(2);
    assert!(has(&h, "Shelve alarm 1031?"));
    assert!(
        h.get_by_label("Confirm shelve")
            .accesskit_node()
            .is_disabled(),
        "no reason yet"
    );
    // 10 minutes is offered (this alarm's maximum is longer).
    type_into(&mut h, "Reason", "camera swapped, link under test");
    h.get_by_label("Confirm shelve").click();
    wait_for(&mut h, "shelved by erik", |h| {
        has(h, "⏏ SHELVED by erik until")
    });
    assert!(has(&h, "Shelved because: camera swapped, link under test"));

    // The trail: the engineer's wrong password and the shelving (the
    // operator's disabled button sent nothing).
    h.state().station.guard.flush();
    let trail = waferscope::access::audit::AuditLog::open(&h.state().station.cfg.db)
        .unwrap()
        .list(None)
        .unwrap();
    let shelved: Vec<_> = trail
        .iter()
        .filter(|e| e.action == "alarm_shelve" && e.accepted)
        .collect();
    assert_eq!(shelved.len(), 1, "{trail:#?}");
    assert_eq!(shelved[0].user, "erik");
    assert_eq!(
        shelved[0].params,
        "alid=1031 minutes=10 reason=camera swapped, link under test"
    );
    assert!(trail
        .iter()
        .any(|e| e.action == "sign_in" && e.user == "erik" && !e.accepted));
    drop(h);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_window_left_alone_signs_its_user_out_and_says_so() {
    let d = fresh_dir("idle");
    // Long enough that a loaded machine still shows the signed-in strip
    // before the sign-out.
    let idle = Duration::from_secs(4);
    let mut h = harness(app_with(
        &d,
        AccessConfig {
            idle_sign_out: idle,
            ..AccessConfig::default()
        },
    ));
    h.run_steps(2);
    h.state()
        .station
        .guard
        .create_first_administrator("root", PASSWORD)
        .unwrap();
    h.run_steps(2);
    // The sign-in's click is the last input: no sign-out before `idle`
    // after it, so none before `idle` after this.
    let before_sign_in = Instant::now();
    sign_in(&mut h, "root", PASSWORD);
    wait_for(&mut h, "signed in", |h| {
        has(h, "Signed in: root (administrator)")
    });
    // No input from here on: frames only.
    wait_for(&mut h, "the idle sign-out", |h| has(h, "Nobody signed in"));
    assert!(before_sign_in.elapsed() >= idle, "not before the idle time");
    assert!(has(&h, "Signed out after a time without input"));
    assert!(h.get_by_label("Load recipe").accesskit_node().is_disabled());
    h.state().station.guard.flush();
    let trail = waferscope::access::audit::AuditLog::open(&h.state().station.cfg.db)
        .unwrap()
        .list(None)
        .unwrap();
    assert!(
        trail
            .iter()
            .any(|e| e.action == "sign_out" && e.user == "root" && e.params == "idle"),
        "{trail:#?}"
    );
    drop(h);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn an_engineer_edits_a_recipe_an_operator_only_reads_it() {
    let d = fresh_dir("recipe");
    let mut h = harness(app(&d));
    h.run_steps(2);
    let guard = h.state().station.guard.clone();
    let admin = waferscope::access::Actor::signed_in(
        &guard.create_first_administrator("root", PASSWORD).unwrap(),
    );
    guard
        .add_user(&admin, "olga", Role::Operator, PASSWORD)
        .unwrap();
    guard
        .add_user(&admin, "erik", Role::Engineer, PASSWORD)
        .unwrap();
    let file = d.join("recipes/sampled-200mm.toml");
    let original = std::fs::read_to_string(&file).unwrap();

    // The window draws the sign-in form (no longer the first start's).
    h.run_steps(2);
    sign_in(&mut h, "olga", PASSWORD);
    wait_for(&mut h, "olga signed in", |h| {
        has(h, "Signed in: olga (operator)")
    });
    h.get_by_label("Recipes").click();
    h.run_steps(2);
    h.get_by_label("Edit sampled-200mm.toml").click();
    h.run_steps(2);
    assert!(has(&h, "Read only: an operator may not edit recipes"));
    let save = h.get_by_label("Save recipe");
    assert!(save.accesskit_node().is_disabled());
    save.hover();
    wait_for(&mut h, "the reason on hover", |h| {
        has(
            h,
            "an operator may not edit recipes (engineer, administrator may)",
        )
    });
    h.get_by_label("Sign out").click();
    h.run_steps(2);

    sign_in(&mut h, "erik", PASSWORD);
    wait_for(&mut h, "erik signed in", |h| {
        has(h, "Signed in: erik (engineer)")
    });
    // Signing out closed the editor: nobody saves another's edit.
    assert!(has(&h, "Choose a recipe."));
    h.get_by_label("Edit sampled-200mm.toml").click();
    h.run_steps(2);
    // Text that is not a recipe is refused naming the file; the file stays.
    h.state_mut().recipe_editor.text = "broken = [".into();
    h.run_steps(2);
    assert!(has(&h, "(unsaved changes)"));
    h.get_by_label("Save recipe").click();
    h.run_steps(2);
    assert!(
        has(&h, &format!("✖ {}", file.display())),
        "the refusal names the file"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), original);
    let edited = format!("# threshold reviewed by erik\n{original}");
    h.state_mut().recipe_editor.text = edited.clone();
    h.run_steps(2);
    h.get_by_label("Save recipe").click();
    wait_for(&mut h, "saved", |h| has(h, "Recipe saved:"));
    assert!(!has(&h, "(unsaved changes)"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), edited);

    h.state().station.guard.flush();
    let trail = waferscope::access::audit::AuditLog::open(&h.state().station.cfg.db)
        .unwrap()
        .list(None)
        .unwrap();
    let edits: Vec<_> = trail.iter().filter(|e| e.action == "recipe_edit").collect();
    assert_eq!(edits.len(), 2, "{edits:#?}");
    assert!(!edits[0].accepted && edits[0].user == "erik");
    assert!(edits[1].accepted && edits[1].user == "erik");
    let sha = |t: &str| waferscope::access::sha256_hex(t.as_bytes());
    assert!(edits[1].params.ends_with(&format!(
        "old_sha256={} new_sha256={}",
        sha(&original),
        sha(&edited)
    )));
    drop(h);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_scripted_window_runs_as_the_console_user_who_started_it() {
    let d = fresh_dir("scripted");
    let mut app = app(&d);
    let guard = app.station.guard.clone();
    app.session.start_scripted(&guard, "console:tester");
    let mut run = app.station.engine.snapshots.reader().unwrap();
    let recipe = d.join("recipes/sampled-200mm.toml");
    // As `--autostart` does: load and start through the window's commands
    // (the monitor needs a moment before a load's interlocks hold).
    let deadline = Instant::now() + Duration::from_secs(60);
    while run.read().value.state != waferscope::run::RunState::Ready {
        assert!(Instant::now() < deadline, "{:?}", app.run_control.message);
        app.apply(waferscope::ui::command::UiCommand::LoadRecipe {
            path: recipe.clone(),
            lot: "DEMO".into(),
            wafer: "W01".into(),
            slot: 1,
        });
        std::thread::sleep(Duration::from_millis(200));
    }
    app.apply(waferscope::ui::command::UiCommand::Run(
        waferscope::run::RunCommand::Start,
    ));
    while !run.read().value.state.in_run() && !run.read().value.state.ended() {
        assert!(Instant::now() < deadline, "{:?}", app.run_control.message);
        std::thread::sleep(Duration::from_millis(10));
    }
    // A run command is recorded once the engine has answered it.
    let trail = loop {
        guard.flush();
        let trail = waferscope::access::audit::AuditLog::open(&app.station.cfg.db)
            .unwrap()
            .list(None)
            .unwrap();
        if trail.iter().any(|e| e.action == "run_start") || Instant::now() > deadline {
            break trail;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    for action in ["sign_in", "load_recipe", "run_start"] {
        assert!(
            trail.iter().any(|e| e.action == action
                && e.accepted
                && e.user == "console:tester"
                && e.role == "console"),
            "{action}: {trail:#?}"
        );
    }
    assert_eq!(run.read().value.operator.as_str(), "console:tester");
    drop(app);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn a_user_disabled_while_signed_in_is_signed_out() {
    let d = fresh_dir("disabled");
    let mut h = harness(app(&d));
    h.run_steps(2);
    let guard = h.state().station.guard.clone();
    let admin = waferscope::access::Actor::signed_in(
        &guard.create_first_administrator("root", PASSWORD).unwrap(),
    );
    guard
        .add_user(&admin, "olga", Role::Operator, PASSWORD)
        .unwrap();
    h.run_steps(2);
    sign_in(&mut h, "olga", PASSWORD);
    wait_for(&mut h, "olga signed in", |h| {
        has(h, "Signed in: olga (operator)")
    });
    guard.set_user_disabled(&admin, "olga", true).unwrap();
    wait_for(&mut h, "olga signed out", |h| has(h, "Nobody signed in"));
    assert!(has(&h, "Signed out: the account \"olga\" is disabled"));
    drop(h);
    std::fs::remove_dir_all(&d).ok();
}

#[test]
fn an_administrator_adds_and_disables_a_user_in_the_window() {
    let d = fresh_dir("users");
    let mut h = harness(app(&d));
    h.run_steps(2);
    h.state()
        .station
        .guard
        .create_first_administrator("root", PASSWORD)
        .unwrap();
    h.run_steps(2);
    sign_in(&mut h, "root", PASSWORD);
    wait_for(&mut h, "root signed in", |h| {
        has(h, "Signed in: root (administrator)")
    });
    h.get_by_label("Users").click();
    h.run_steps(2);
    type_into(&mut h, "New user", "olga");
    type_into(&mut h, "Their password", PASSWORD);
    h.get_by_role_and_label(egui::accesskit::Role::ComboBox, "Their role")
        .click();
    h.run_steps(2);
    h.get_by_label("operator").click();
    h.run_steps(2);
    h.get_by_label("Add user").click();
    wait_for(&mut h, "olga added", |h| {
        has(h, "User olga added (operator)")
    });
    wait_for(&mut h, "olga listed", |h| has(h, "Disable olga"));
    h.get_by_label("Disable olga").click();
    wait_for(&mut h, "olga disabled", |h| has(h, "Enable olga"));
    assert!(h
        .state()
        .station
        .guard
        .sign_in("olga", PASSWORD)
        .unwrap_err()
        .contains("disabled"));
    h.get_by_label("Enable olga").click();
    wait_for(&mut h, "olga enabled", |h| has(h, "Disable olga"));
    h.get_by_label("Sign out").click();
    h.run_steps(2);
    // The operator sees the list, read only.
    sign_in(&mut h, "olga", PASSWORD);
    wait_for(&mut h, "olga signed in", |h| {
        has(h, "Signed in: olga (operator)")
    });
    assert!(has(&h, "Read only: an operator may not administer users"));
    assert!(h.get_by_label("Add user").accesskit_node().is_disabled());
    h.state().station.guard.flush();
    let trail = waferscope::access::audit::AuditLog::open(&h.state().station.cfg.db)
        .unwrap()
        .list(None)
        .unwrap();
    for action in ["user_add", "user_disable", "user_enable"] {
        assert!(
            trail
                .iter()
                .any(|e| e.action == action && e.user == "root" && e.accepted),
            "{action}: {trail:#?}"
        );
    }
    for e in &trail {
        let row = format!("{e:?}");
        assert!(!row.contains(PASSWORD) && !row.contains("$argon2"), "{row}");
    }
    drop(h);
    std::fs::remove_dir_all(&d).ok();
}
