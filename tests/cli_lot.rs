//! `waferscope run --carrier sim` as an operator uses it: a lot of slots
//! 1–6 from the simulated carrier runs five wafers (slot 4 is
//! double-slotted: skipped, said), a line per wafer, exit 0; bad slot lists
//! and a wafer id with a carrier exit 2 saying why.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn lot(d: &Path, extra: &[&str]) -> Output {
    std::fs::create_dir_all(d).unwrap();
    Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .current_dir(d)
        .arg("--data-dir")
        .arg(d)
        .args([
            "run",
            "--lot",
            "LOT-9",
            "--carrier",
            "sim",
            "--fast",
            "--recipe",
        ])
        .arg(root().join("assets/recipes/sampled-200mm.toml"))
        .args(extra)
        .output()
        .unwrap()
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("waferscope-cli-lot-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn slots_1_to_6_run_five_wafers_with_a_line_each_and_exit_0() {
    let d = dir("ok");
    let out = lot(&d, &["--slots", "1-6"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("4 double-slotted"),
        "the slot map: {stdout}"
    );
    for s in [1, 2, 3, 5, 6] {
        let line = format!("  slot {s}: SIM-FOUP-01-{s:02} complete, ");
        assert!(stdout.contains(&line), "{line} in {stdout}");
    }
    assert!(
        stdout.contains("  slot 4: - skipped (slot 4 is double-slotted: never picked)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("lot LOT-9 complete: 5 wafers recorded"),
        "{stdout}"
    );
    let conn = waferscope::store::export::open_existing(&d.join("waferscope.db")).unwrap();
    let runs = waferscope::store::query::list_runs(&conn).unwrap();
    assert_eq!(runs.len(), 5);
    assert!(runs
        .iter()
        .all(|r| r.lot == "LOT-9" && r.exit_status.as_deref() == Some("complete")));
}

#[test]
fn bad_lot_arguments_exit_2_saying_which() {
    for (args, says) in [
        (&["--slots", "0-3"][..], "--slots: slot 0 is not in 1..=25"),
        (&["--slots", "3-1"][..], "runs backwards"),
        (&["--wafer", "W1"][..], "--wafer"),
    ] {
        let out = lot(&dir("bad"), args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}
