//! Alarm definition files: the shipped one loads; each kind of mistake is
//! refused with an error naming the file, the alarm and the field.

use std::path::PathBuf;
use waferscope::monitor::alarm_defs::{load, parse};
use waferscope::monitor::{Condition, Priority};

const GOOD: &str = r#"
[[alarm]]
alid = 5
name = "Vacuum lost"
kind = "high"
signal = "vacuum.chuck_pressure"
limit = 30.0
priority = "high"
text = "t"
guidance = "g"
"#;

fn err(text: &str) -> String {
    format!("{:#}", parse(text).unwrap_err())
}

#[test]
fn the_shipped_definitions_load() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/alarms.toml");
    let defs = load(&path).unwrap();
    assert!(defs.len() >= 20);
    assert!(defs
        .iter()
        .all(|d| !d.text.is_empty() && !d.guidance.is_empty()));
    let vacuum = defs.iter().find(|d| d.alid == 2021).unwrap();
    assert!(vacuum.latching && vacuum.priority == Priority::High);
    assert!(matches!(vacuum.condition, Condition::High { limit, .. } if limit == 30.0));
    // ISA-18.2's mix: about 80 % low, 15 % medium, 5 % high.
    let share =
        |p: Priority| defs.iter().filter(|d| d.priority == p).count() as f64 / defs.len() as f64;
    assert!(
        share(Priority::High) <= 0.10,
        "high {}",
        share(Priority::High)
    );
    assert!(
        share(Priority::Medium) <= 0.25,
        "medium {}",
        share(Priority::Medium)
    );
    assert!(share(Priority::Low) >= 0.70, "low {}", share(Priority::Low));
    // Data quality is shown as quality, not raised as a high alarm.
    assert!(defs
        .iter()
        .filter(|d| matches!(
            d.condition,
            Condition::Stale { .. } | Condition::Lost { .. }
        ))
        .all(|d| d.priority == Priority::Low));
}

#[test]
fn unknown_signal() {
    assert_eq!(
        err(&GOOD.replace("vacuum.chuck_pressure", "vacuum.chuck")),
        "alarm 5 \"Vacuum lost\": field `signal`: unknown signal \"vacuum.chuck\" (known: stage.position_x, \
         stage.position_y, stage.following_error, illumination.intensity, illumination.lamp_hours, \
         vacuum.chuck_pressure, camera.link, camera.temperature, encoder.health)"
    );
}

#[test]
fn missing_field() {
    assert_eq!(
        err(&GOOD.replace("priority = \"high\"\n", "")),
        "alarm 5 \"Vacuum lost\": missing field `priority`"
    );
    assert_eq!(
        err(&GOOD.replace("limit = 30.0\n", "")),
        "alarm 5 \"Vacuum lost\": missing field `limit`"
    );
    assert_eq!(
        err(&GOOD.replace("alid = 5\n", "")),
        "alarm #1 \"Vacuum lost\": missing field `alid`"
    );
}

#[test]
fn unknown_field_and_bad_values() {
    assert!(
        err(&GOOD.replace("text = \"t\"", "text = \"t\"\nlimt = 3.0")).starts_with(
            "alarm 5 \"Vacuum lost\": unknown field `limt` (known fields: alid, name,"
        )
    );
    assert_eq!(
        err(&GOOD.replace("\"high\"\nsignal", "\"above\"\nsignal")),
        "alarm 5 \"Vacuum lost\": field `kind`: \"above\" is not one of high, low, stale, lost, invalid, monitor_stopped, evaluator_stopped, software"
    );
    assert_eq!(
        err(&GOOD.replace("limit = 30.0", "limit = 300.0")),
        "alarm 5 \"Vacuum lost\": field `limit`: 300 is outside what vacuum.chuck_pressure can report (0 to 110 kPa)"
    );
    assert_eq!(
        err(&GOOD.replace("limit = 30.0", "limit = \"thirty\"")),
        "alarm 5 \"Vacuum lost\": invalid type: string \"thirty\", expected f64"
    );
}

#[test]
fn overlapping_limits() {
    let low = GOOD
        .replace("alid = 5", "alid = 6")
        .replace("Vacuum lost", "Vacuum too hard")
        .replace("kind = \"high\"", "kind = \"low\"")
        .replace("limit = 30.0", "limit = 29.0\ndeadband = 2.0");
    assert_eq!(
        err(&format!("{GOOD}\n{low}")),
        "alarm 5 \"Vacuum lost\" and alarm 6 \"Vacuum too hard\": limits overlap on vacuum.chuck_pressure: \
         high limit 30 (deadband 0) is not above low limit 29 (deadband 2)"
    );
}

#[test]
fn duplicate_alid() {
    let twin = GOOD.replace("Vacuum lost", "Vacuum gone");
    assert_eq!(
        err(&format!("{GOOD}\n{twin}")),
        "alarm 5 \"Vacuum gone\": field `alid`: 5 is already used by \"Vacuum lost\""
    );
}

#[test]
fn unreadable_file_and_bad_toml_name_the_file() {
    let missing = PathBuf::from("/nonexistent/alarms.toml");
    assert_eq!(
        format!("{:#}", load(&missing).unwrap_err())
            .split(": No such")
            .next()
            .unwrap(),
        "/nonexistent/alarms.toml: cannot read alarm definitions"
    );
    let dir = std::env::temp_dir().join(format!("waferscope-defs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[alarm]\nalid = 1").unwrap();
    let e = format!("{:#}", load(&bad).unwrap_err());
    assert!(
        e.starts_with(&format!("{}: not valid TOML", bad.display())),
        "{e}"
    );
    std::fs::remove_dir_all(dir).ok();
}
