//! An alarm file with more alarms than the evaluator holds (64) is bad
//! input: `waferscope run` exits 2 naming the file and the count, never a
//! panic (exit 101).

use std::fmt::Write;
use std::path::PathBuf;
use std::process::Command;

#[test]
fn an_alarm_file_of_65_alarms_exits_2_naming_the_file_and_the_count() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let d = std::env::temp_dir().join(format!("waferscope-cli-alarms-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let mut toml = String::new();
    for i in 1..=65 {
        writeln!(
            toml,
            "[[alarm]]\nalid = {i}\nname = \"Camera hot {i}\"\nkind = \"high\"\n\
             signal = \"camera.temperature\"\nlimit = 50.0\npriority = \"low\"\n\
             text = \"t\"\nguidance = \"g\"\n"
        )
        .unwrap();
    }
    let alarms = d.join("sixty-five.toml");
    std::fs::write(&alarms, toml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .current_dir(&d)
        .arg("--data-dir")
        .arg(&d)
        .args(["run", "--lot", "L", "--wafer", "W", "--fast", "--recipe"])
        .arg(root.join("assets/recipes/sampled-200mm.toml"))
        .arg("--alarms")
        .arg(&alarms)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{}: 65 alarms defined", alarms.display())),
        "{err}"
    );
    assert!(err.contains("at most 64"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    std::fs::remove_dir_all(d).ok();
}
