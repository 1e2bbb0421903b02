//! Who may do what, checked below the window: the station's guarded
//! commands refuse an operator's shelve, fault reset and recipe edit and
//! let an engineer's through, each written to the audit trail with who,
//! role, what and why; a disabled user cannot sign in; five wrong
//! passwords lock an account for the configured time; maintenance, not an
//! engineer, injects simulator faults.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use waferscope::access::audit::{AuditEntry, AuditLog};
use waferscope::access::users::LockoutPolicy;
use waferscope::access::{AccessConfig, Actor, Role};
use waferscope::run::{RunCommand, RunState};
use waferscope::station::commands::SimulatorFault;
use waferscope::station::{Station, StationConfig};

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("waferscope-access-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn station(d: &Path, access: AccessConfig) -> Station {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    Station::start(StationConfig {
        db: d.join("station.db"),
        alarms: root.join("assets/alarms.toml"),
        recipes: root.join("assets/recipes"),
        thumbnails: d.join("thumbnails"),
        read_history: false,
        paced: false,
        resume_after: Duration::from_millis(200),
        access,
        ..StationConfig::default()
    })
    .unwrap()
}

const PASSWORD: &str = "correct-horse-77";

/// The administrator (first start) and one user of each other role, each
/// signed in through the guard as the window would.
struct People {
    admin: Actor,
    operator: Actor,
    engineer: Actor,
    maintenance: Actor,
}

fn people(station: &Station) -> People {
    let guard = &station.guard;
    let admin = Actor::signed_in(&guard.create_first_administrator("root", PASSWORD).unwrap());
    for (name, role) in [
        ("olga", Role::Operator),
        ("erik", Role::Engineer),
        ("mia", Role::Maintenance),
    ] {
        guard.add_user(&admin, name, role, PASSWORD).unwrap();
    }
    let sign_in = |name| Actor::signed_in(&guard.sign_in(name, PASSWORD).unwrap());
    People {
        operator: sign_in("olga"),
        engineer: sign_in("erik"),
        maintenance: sign_in("mia"),
        admin,
    }
}

fn trail(station: &Station) -> Vec<AuditEntry> {
    station.guard.flush();
    AuditLog::open(&station.cfg.db).unwrap().list(None).unwrap()
}

fn entry<'a>(trail: &'a [AuditEntry], user: &str, action: &str) -> Vec<&'a AuditEntry> {
    trail
        .iter()
        .filter(|e| e.user == user && e.action == action)
        .collect()
}

fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn answer(rx: flume::Receiver<Result<(), String>>) -> Result<(), String> {
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the station answers")
}

#[test]
fn an_operator_is_refused_shelve_reset_and_recipe_edit_an_engineer_is_not_and_both_are_audited() {
    let d = temp_dir("roles");
    let station = station(&d, AccessConfig::default());
    let p = people(&station);

    // Shelve: refused for the operator, done for the engineer with who and
    // why kept on the alarm.
    let refused = station
        .shelve_alarm(&p.operator, 1031, Duration::from_secs(600), "noisy sensor")
        .unwrap_err();
    assert_eq!(
        refused,
        "an operator may not shelve alarms (engineer, administrator may)"
    );
    assert_eq!(
        station
            .shelve_alarm(&p.engineer, 1031, Duration::from_secs(600), "  ")
            .unwrap_err(),
        "a shelving needs a reason"
    );
    let too_long = station
        .shelve_alarm(&p.engineer, 1031, Duration::from_secs(24 * 3600), "noisy")
        .unwrap_err();
    assert!(too_long.contains("may be shelved for up to"), "{too_long}");
    station
        .shelve_alarm(&p.engineer, 1031, Duration::from_secs(600), "noisy sensor")
        .unwrap();
    let mut alarms = station.alarms.snapshots.reader().unwrap();
    wait_until("alarm 1031 shelved by erik", || {
        alarms.read().value.entry(1031).is_some_and(|e| {
            e.shelved_by.as_str() == "erik" && e.shelve_reason.as_str() == "noisy sensor"
        })
    });

    // Reset: a run faults (the camera stops answering); the operator may
    // acknowledge it but not reset it; the engineer may.
    let recipe = waferscope::run::recipe::load(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/recipes/sampled-200mm.toml"),
    )
    .unwrap();
    let ids = waferscope::run::ids::check_identity("LOT-A", "W01", 1, &p.operator.user).unwrap();
    let mut run = station.engine.snapshots.reader().unwrap();
    // The monitor needs a moment to see every heartbeat before a load's
    // interlocks hold.
    wait_until("a load accepted", || {
        answer(station.load_recipe(&p.operator, recipe.clone(), ids.identity.clone())).is_ok()
    });
    station.device_faults.camera_timeout_next(1_000);
    answer(station.run_command(&p.operator, RunCommand::Start)).unwrap();
    wait_until("the run faults", || {
        run.read().value.state == RunState::Faulted
    });
    station.device_faults.camera_timeout_next(0);
    answer(station.run_command(&p.operator, RunCommand::Acknowledge)).unwrap();
    let refused = answer(station.run_command(&p.operator, RunCommand::Reset)).unwrap_err();
    assert_eq!(
        refused,
        "an operator may not reset a fault (engineer, maintenance, administrator may)"
    );
    assert_eq!(run.read().value.state, RunState::FaultAcknowledged);
    answer(station.run_command(&p.engineer, RunCommand::Reset)).unwrap();
    wait_until("idle after the reset", || {
        run.read().value.state == RunState::Idle
    });

    // Recipe edit: the operator's leaves the file as it was; the
    // engineer's replaces it, and the trail keeps both contents' hashes.
    let path = d.join("edited.toml");
    let original = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/recipes/sampled-200mm.toml"),
    )
    .unwrap();
    std::fs::write(&path, &original).unwrap();
    let edited = format!("# tuned by erik\n{original}");
    let refused = station
        .save_recipe(&p.operator, &path, &original, &edited)
        .unwrap_err();
    assert!(refused.contains("may not edit recipes"), "{refused}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
    let invalid = station
        .save_recipe(&p.engineer, &path, &original, "this is = not a recipe [")
        .unwrap_err();
    assert!(invalid.contains("edited.toml"), "names the file: {invalid}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), original);
    // Opened before someone else changed the file: refused, theirs kept.
    let theirs = format!("# from the host\n{original}");
    std::fs::write(&path, &theirs).unwrap();
    let stale = station
        .save_recipe(&p.engineer, &path, &original, &edited)
        .unwrap_err();
    assert!(stale.contains("changed since it was opened"), "{stale}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), theirs);
    std::fs::write(&path, &original).unwrap();
    station
        .save_recipe(&p.engineer, &path, &original, &edited)
        .unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);

    // A password typed into the name field is never written: the trail
    // (and the log) say an unknown name of its length.
    assert!(station.guard.sign_in(PASSWORD, "anything").is_err());

    // The trail: each refusal and each success, with role and reason.
    let t = trail(&station);
    assert!(
        t.iter().any(|e| e.action == "sign_in"
            && !e.accepted
            && e.user == format!("(unknown name, {} characters)", PASSWORD.len())),
        "{t:#?}"
    );
    for action in ["alarm_shelve", "run_reset", "recipe_edit"] {
        let olga = entry(&t, "olga", action);
        assert_eq!(olga.len(), 1, "{action}: {olga:#?}");
        assert!(!olga[0].accepted);
        assert_eq!(olga[0].role, "operator");
        assert_eq!(olga[0].source, "window");
        assert!(
            olga[0].reason.starts_with("an operator may not"),
            "{:?}",
            olga[0]
        );
        let erik = entry(&t, "erik", action);
        assert!(
            erik.iter().any(|e| e.accepted && e.role == "engineer"),
            "{action}: {erik:#?}"
        );
    }
    let shelve = entry(&t, "erik", "alarm_shelve");
    assert!(shelve
        .iter()
        .any(|e| e.accepted && e.params == "alid=1031 minutes=10 reason=noisy sensor"));
    assert!(shelve
        .iter()
        .any(|e| !e.accepted && e.reason == "a shelving needs a reason"));
    let edit = entry(&t, "erik", "recipe_edit");
    let done = edit.iter().find(|e| e.accepted).unwrap();
    let sha = |s: &str| waferscope::access::sha256_hex(s.as_bytes());
    assert!(
        done.params.contains(&format!(
            "old_sha256={} new_sha256={}",
            sha(&original),
            sha(&edited)
        )),
        "{done:?}"
    );
    assert!(entry(&t, "olga", "run_acknowledge")[0].accepted);
    assert!(entry(&t, "olga", "load_recipe").iter().any(|e| e.accepted));
    // Nothing above wrote a password (or its hash) into the trail.
    for e in &t {
        let row = format!("{e:?}");
        assert!(!row.contains(PASSWORD) && !row.contains("$argon2"), "{row}");
    }
    assert!(AuditLog::open(&station.cfg.db)
        .unwrap()
        .verify()
        .unwrap()
        .first_broken
        .is_none());
    let _ = p.admin;
    drop(station);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_disabled_user_cannot_sign_in_and_only_maintenance_injects_faults() {
    let d = temp_dir("disabled");
    let station = station(&d, AccessConfig::default());
    let p = people(&station);
    let guard = &station.guard;
    assert!(guard
        .set_user_disabled(&p.operator, "erik", true)
        .unwrap_err()
        .contains("may not administer users"));
    guard.set_user_disabled(&p.admin, "olga", true).unwrap();
    let refused = guard.sign_in("olga", PASSWORD).unwrap_err();
    assert!(refused.contains("disabled"), "{refused}");
    // Disabled while signed in: the session she still has is refused too.
    let refused = station.acknowledge_alarm(&p.operator, None).unwrap_err();
    assert_eq!(refused, "the account \"olga\" is disabled");
    guard.set_user_disabled(&p.admin, "olga", false).unwrap();
    guard.sign_in("olga", PASSWORD).unwrap();
    station.acknowledge_alarm(&p.operator, None).unwrap();

    let freeze = SimulatorFault::FreezeHeartbeat(waferscope::machine::Subsystem::Camera, true);
    let refused = station.simulator_fault(&p.engineer, freeze).unwrap_err();
    assert!(
        refused.contains("may not inject simulator faults"),
        "{refused}"
    );
    station.simulator_fault(&p.maintenance, freeze).unwrap();
    let t = trail(&station);
    let sign_ins = entry(&t, "olga", "sign_in");
    assert!(sign_ins
        .iter()
        .any(|e| !e.accepted && e.reason.contains("disabled")));
    assert!(entry(&t, "erik", "simulator_fault")
        .iter()
        .all(|e| !e.accepted));
    assert!(entry(&t, "mia", "simulator_fault")[0].accepted);
    assert!(entry(&t, "root", "user_disable")[0].accepted);
    drop(station);
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn five_wrong_passwords_lock_the_account_for_the_configured_time() {
    let d = temp_dir("lockout");
    // Long enough that the six attempts (each an Argon2 hash) fit inside
    // it on a loaded machine.
    let lock_for = Duration::from_secs(6);
    let station = station(
        &d,
        AccessConfig {
            lockout: LockoutPolicy {
                max_failures: 5,
                lock_for,
            },
            ..AccessConfig::default()
        },
    );
    people(&station);
    let guard = &station.guard;
    for i in 1..=4 {
        let e = guard.sign_in("olga", "wrong-password").unwrap_err();
        assert_eq!(e, "wrong user name or password", "attempt {i}");
    }
    let locked_at = Instant::now();
    let fifth = guard.sign_in("olga", "wrong-password").unwrap_err();
    assert!(fifth.contains("locked"), "{fifth}");
    let right = guard.sign_in("olga", PASSWORD).unwrap_err();
    assert!(
        right.contains("locked"),
        "the right password is refused while locked: {right}"
    );
    // An unknown name reads like a wrong password (no user enumeration).
    assert_eq!(
        guard.sign_in("nobody", PASSWORD).unwrap_err(),
        "wrong user name or password"
    );
    std::thread::sleep(lock_for.saturating_sub(locked_at.elapsed()) + Duration::from_millis(200));
    guard.sign_in("olga", PASSWORD).unwrap();
    let t = trail(&station);
    let attempts = entry(&t, "olga", "sign_in");
    assert_eq!(attempts.iter().filter(|e| !e.accepted).count(), 6);
    assert!(attempts.last().unwrap().accepted);
    drop(station);
    std::fs::remove_dir_all(&d).unwrap();
}
