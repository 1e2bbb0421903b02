//! The GUI check's negative case, shown once: the real window under Xvfb
//! with the UI thread made to sleep 400 ms once (`--inject-ui-stall-ms`,
//! hidden) must exit with code 10 naming the stall under
//! `--fail-on-stall-ms 100`. The positive case (the same window without
//! the injection, under full load at 2048² px) is scripts/gui-ci-check.sh,
//! which CI runs right after the tests; it is not repeated here to keep the
//! suite short.
#![cfg(feature = "gui")]

#[path = "common/child.rs"]
mod child;

use child::run_to_files;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

/// Runs the window with `extra` for `--exit-after 7`; its exit code and
/// everything it printed.
fn window(dir: &Path, extra: &[&str]) -> (Option<i32>, String) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new("xvfb-run");
    cmd.args(["-a", "-s", "-screen 0 1600x1000x24"])
        .arg(env!("CARGO_BIN_EXE_waferscope"))
        .arg("gui")
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--alarms")
        .arg(root.join("assets/alarms.toml"))
        .arg("--recipes")
        .arg(root.join("assets/recipes"))
        .arg("--autostart")
        .arg(root.join("assets/recipes/full-300mm.toml"))
        .args(["--fast", "--demo", "--exit-after", "7"])
        .args(extra)
        .current_dir(dir);
    run_to_files(
        cmd,
        dir,
        Duration::from_secs(120),
        "the window (--exit-after 7)",
    )
}

#[test]
fn an_injected_ui_stall_fails_the_window_naming_the_gap() {
    if !on_path("xvfb-run") {
        eprintln!("SKIPPED: xvfb-run is not on PATH; the stall check needs a virtual display (CI installs xvfb)");
        return;
    }
    let dir = std::env::temp_dir().join(format!("waferscope-gui-stall-{}", std::process::id()));
    // A leftover of an earlier run with this pid would only be stale.
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    let (code, all) = window(
        &dir,
        &["--inject-ui-stall-ms", "400", "--fail-on-stall-ms", "100"],
    );
    assert_eq!(code, Some(10), "{all}");
    assert!(all.contains("UI stall: a frame came"), "{all}");
    assert!(all.contains("over the 100 ms allowed"), "{all}");
    // The exit line still reports the figures, the stall among them.
    let exit = all
        .lines()
        .find(|l| l.starts_with("exit: UI frame over"))
        .unwrap_or_else(|| panic!("no exit line: {all}"));
    assert!(exit.contains("frames > 100 ms later than asked"), "{exit}");
    let max_gap: f64 = exit
        .split("frame gap p50 ")
        .nth(1)
        .and_then(|r| r.split("max ").nth(1))
        .and_then(|r| r.split(" ms").next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no frame gap max in {exit}"));
    assert!(max_gap >= 400.0, "{exit}");
    std::fs::remove_dir_all(&dir).ok();
}
