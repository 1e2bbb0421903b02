//! The data directory: started from `/` (as a desktop launcher does), the
//! program keeps its database, thumbnails, golden dies and logs in
//! `--data-dir D`, or by default under the XDG base directories, and finds
//! its alarms and recipes there (copied from the shipped ones on first
//! start). A data directory that cannot be created or written is bad input
//! (exit 2) naming it.
//!
//! Every child gets its own HOME and XDG variables, so nothing here reads
//! or writes the real user's directories.

#[path = "common/child.rs"]
mod child;

use child::run_to_files;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("waferscope-data-dir-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `waferscope` started from `/` with HOME at `home` and no XDG variables.
fn waferscope(home: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_waferscope"));
    c.current_dir("/")
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_STATE_HOME")
        .env_remove("XDG_CONFIG_HOME");
    c
}

/// A fast sampled run (97 dies); the recipe named by its absolute path.
fn sampled_run(c: &mut Command) -> &mut Command {
    c.args([
        "run", "--fast", "--lot", "LOT-D", "--wafer", "W01", "--recipe",
    ])
    .arg(root().join("assets/recipes/sampled-200mm.toml"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The names in `d`, sorted (empty if it does not exist).
fn names(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// What a completed first run leaves in a data directory `data` with its
/// logs in `logs`.
fn assert_station_files(data: &Path, logs: &Path) {
    assert!(data.join("waferscope.db").is_file(), "{:?}", names(data));
    assert_eq!(
        std::fs::read_to_string(data.join("alarms.toml")).unwrap(),
        std::fs::read_to_string(root().join("assets/alarms.toml")).unwrap(),
        "the shipped alarm definitions are copied"
    );
    assert_eq!(
        names(&data.join("recipes")),
        names(&root().join("assets/recipes")),
        "the shipped recipes are copied"
    );
    assert!(data.join("thumbnails").is_dir(), "{:?}", names(data));
    // The recipe had no golden die: one is taught at the start of its
    // first run and kept beside the database.
    assert_eq!(
        names(&data.join("golden")),
        ["INS-200-SAMPLE4.png"],
        "{:?}",
        names(data)
    );
    let log = names(logs);
    assert!(
        log.len() == 1 && log[0].starts_with("waferscope.log."),
        "{log:?}"
    );
    let log = std::fs::read_to_string(logs.join(&log[0])).unwrap();
    assert!(
        log.contains("created from the shipped defaults") && log.contains("status=\"complete\""),
        "{log}"
    );
}

#[test]
fn run_from_root_keeps_everything_in_the_data_dir() {
    let t = dir("explicit");
    let (home, d) = (t.join("home"), t.join("station"));
    std::fs::create_dir_all(&home).unwrap();
    let out = sampled_run(waferscope(&home).arg("--data-dir").arg(&d))
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("complete: 97 of 97 dies"), "{all}");
    assert!(
        all.contains(&format!(
            "note: created {}",
            d.join("alarms.toml").display()
        )),
        "{all}"
    );
    assert_station_files(&d, &d.join("logs"));
    assert!(
        names(&home).is_empty(),
        "nothing goes to HOME with --data-dir: {:?}",
        names(&home)
    );

    // A second start creates nothing and keeps an operator's edited alarm
    // definitions; the copied recipe is usable by its path in D.
    let mut alarms = std::fs::read_to_string(d.join("alarms.toml")).unwrap();
    alarms.push_str("\n# edited by the operator\n");
    std::fs::write(d.join("alarms.toml"), &alarms).unwrap();
    let out = waferscope(&home)
        .arg("--data-dir")
        .arg(&d)
        .args([
            "run", "--fast", "--lot", "LOT-D", "--wafer", "W02", "--recipe",
        ])
        .arg(d.join("recipes/sampled-200mm.toml"))
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(!all.contains("note: created"), "{all}");
    assert_eq!(
        std::fs::read_to_string(d.join("alarms.toml")).unwrap(),
        alarms
    );
    // `runs` reads the same database by default.
    let out = waferscope(&home)
        .arg("--data-dir")
        .arg(&d)
        .arg("runs")
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("W01") && all.contains("W02"), "{all}");
    std::fs::remove_dir_all(t).ok();
}

#[test]
fn without_data_dir_the_xdg_directories_are_used() {
    let t = dir("xdg");
    // HOME alone: ~/.local/share/waferscope and ~/.local/state/waferscope.
    let home = t.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let out = sampled_run(&mut waferscope(&home)).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_station_files(
        &home.join(".local/share/waferscope"),
        &home.join(".local/state/waferscope/logs"),
    );
    assert_eq!(names(&home), [".local"]);
    assert_eq!(names(&home.join(".local")), ["share", "state"]);

    // XDG_DATA_HOME and XDG_STATE_HOME set: they win over HOME.
    let home = t.join("home2");
    std::fs::create_dir_all(&home).unwrap();
    let out = sampled_run(
        waferscope(&home)
            .env("XDG_DATA_HOME", t.join("data"))
            .env("XDG_STATE_HOME", t.join("state")),
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_station_files(&t.join("data/waferscope"), &t.join("state/waferscope/logs"));
    assert!(names(&home).is_empty(), "{:?}", names(&home));
    std::fs::remove_dir_all(t).ok();
}

#[test]
fn explicit_paths_still_override_the_data_dir() {
    let t = dir("override");
    let (home, d) = (t.join("home"), t.join("station"));
    std::fs::create_dir_all(&home).unwrap();
    let out = sampled_run(waferscope(&home).arg("--data-dir").arg(&d))
        .arg("--db")
        .arg(t.join("other.db"))
        .arg("--log-dir")
        .arg(t.join("other-logs"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(t.join("other.db").is_file());
    assert!(!d.join("waferscope.db").exists());
    assert!(!d.join("logs").exists());
    assert_eq!(names(&t.join("other-logs")).len(), 1);
    // Golden dies go beside the database that was named.
    assert_eq!(names(&t.join("golden")), ["INS-200-SAMPLE4.png"]);
    // The thumbnails and alarms still come from the data directory.
    assert!(d.join("thumbnails").is_dir() && d.join("alarms.toml").is_file());
    std::fs::remove_dir_all(t).ok();
}

#[test]
fn a_data_dir_that_cannot_be_created_or_written_exits_2_naming_it() {
    let t = dir("bad");
    let home = t.join("home");
    std::fs::create_dir_all(&home).unwrap();

    // Under a regular file: cannot be created.
    std::fs::write(t.join("file"), b"x").unwrap();
    let bad = t.join("file/station");
    let out = sampled_run(waferscope(&home).arg("--data-dir").arg(&bad))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "--data-dir {}: cannot create the directory",
            bad.display()
        )),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");

    // The XDG default under a HOME that is a file: named, with where it
    // came from.
    let out = sampled_run(&mut waferscope(&t.join("file")))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "the data directory {}: cannot create the directory",
            t.join("file/.local/share/waferscope").display()
        )) && err
            .contains("(the default, ~/.local/share/waferscope; give --data-dir DIR for another)"),
        "{err}"
    );

    // No HOME and no XDG variables: says what to give.
    let out = sampled_run(waferscope(&home).env_remove("HOME"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("HOME is not set") && err.contains("--data-dir"),
        "{err}"
    );

    // An existing directory that cannot be written. Permissions do not stop
    // root, so as root it is made a read-only bind mount of itself in a
    // private mount namespace (as tests/cli_run.rs does).
    let ro = t.join("read-only");
    std::fs::create_dir_all(&ro).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let root_user = std::fs::write(ro.join("probe"), b"x").is_ok();
    let out = if root_user {
        std::fs::remove_file(ro.join("probe")).unwrap();
        let script = "mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" || exit 97; shift; exec \"$@\"";
        let mut c = Command::new("unshare");
        c.args(["-m", "sh", "-c", script, "sh"])
            .arg(&ro)
            .arg(env!("CARGO_BIN_EXE_waferscope"))
            .current_dir("/")
            .env("HOME", &home)
            .arg("--data-dir")
            .arg(&ro);
        sampled_run(&mut c).output().unwrap()
    } else {
        sampled_run(waferscope(&home).arg("--data-dir").arg(&ro))
            .output()
            .unwrap()
    };
    if out.status.code() == Some(97) {
        eprintln!(
            "skipped the read-only data directory: running as root without a private mount namespace ({})",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    } else {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(&format!("--data-dir {}: not writable", ro.display())),
            "{err}"
        );
        assert!(names(&ro).is_empty(), "nothing started: {:?}", names(&ro));
    }
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::remove_dir_all(t).ok();
}

/// Starts the window from `/` under a virtual display the way
/// scripts/gui-check.sh starts it, with `args` before the command, lets it
/// close itself after 2 s and returns everything it printed.
fn window_from_root(t: &Path, home: &Path, args: &[&std::ffi::OsStr]) -> String {
    let has_xvfb = Command::new("sh")
        .args(["-c", "command -v xvfb-run"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    // Required, not skipped: .ci/run and README's Quick start install it.
    assert!(
        has_xvfb,
        "xvfb-run is not installed (apt-get install -y xvfb xauth libgl1-mesa-dri libegl-mesa0)"
    );
    std::fs::create_dir_all(home).unwrap();
    let mut cmd = Command::new("xvfb-run");
    cmd.args(["-a", "-s", "-screen 0 1600x1000x24"])
        .arg(env!("CARGO_BIN_EXE_waferscope"))
        .args(args)
        .args(["gui", "--exit-after", "2"])
        .current_dir("/")
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_STATE_HOME");
    let (code, all) = run_to_files(
        cmd,
        t,
        Duration::from_secs(120),
        "the window (--exit-after 2)",
    );
    assert_eq!(code, Some(0), "{all}");
    assert!(all.contains("exit: UI frame over"), "{all}");
    all
}

/// The window started from `/` with `--data-dir` finds everything in the
/// data directory and closes cleanly.
#[test]
fn the_window_starts_from_root_with_a_data_dir() {
    let t = dir("gui");
    let (home, d) = (t.join("home"), t.join("station"));
    window_from_root(&t, &home, &["--data-dir".as_ref(), d.as_os_str()]);
    assert!(d.join("waferscope.db").is_file(), "{:?}", names(&d));
    assert!(d.join("alarms.toml").is_file(), "{:?}", names(&d));
    assert_eq!(
        names(&d.join("recipes")),
        names(&root().join("assets/recipes"))
    );
    assert_eq!(names(&d.join("logs")).len(), 1, "{:?}", names(&d));
    assert!(names(&home).is_empty(), "{:?}", names(&home));
    std::fs::remove_dir_all(t).ok();
}

/// The window started from `/` without `--data-dir` (as a desktop launcher
/// starts it) keeps everything in the XDG directories under HOME.
#[test]
fn the_window_starts_from_root_with_the_default_directories() {
    let t = dir("gui-xdg");
    let home = t.join("home");
    window_from_root(&t, &home, &[]);
    let data = home.join(".local/share/waferscope");
    assert!(data.join("waferscope.db").is_file(), "{:?}", names(&data));
    assert!(data.join("alarms.toml").is_file(), "{:?}", names(&data));
    assert_eq!(
        names(&data.join("recipes")),
        names(&root().join("assets/recipes"))
    );
    assert_eq!(
        names(&home.join(".local/state/waferscope/logs")).len(),
        1,
        "{:?}",
        names(&home.join(".local/state/waferscope"))
    );
    assert_eq!(names(&home), [".local"]);
    std::fs::remove_dir_all(t).ok();
}
