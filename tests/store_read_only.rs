//! A read-only results database (immutable file, or a directory on a
//! read-only mount) is refused before the run starts, with the file named,
//! and leaves nothing behind (`-wal`, `-shm`, lock) that would block the
//! next run. (As root, chmod stops nothing: the test uses `chattr +i` and a
//! read-only bind mount in a private mount namespace.)

use std::path::{Path, PathBuf};
use std::process::Command;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("waferscope-ro-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Every directory the run writes besides the database (thumbnails, logs,
/// taught golden dies) is in `work`, so the database's own is what fails.
fn run_cmd(db: &Path, work: &Path) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    format!(
        "'{bin}' run --fast --lot LOT-R --wafer W01 --recipe '{root}/assets/recipes/sampled-200mm.toml' \
         --alarms '{root}/assets/alarms.toml' --db '{db}' --thumbnail-dir '{w}/thumbs' --log-dir '{w}/logs' --golden-dir '{w}/golden'",
        bin = env!("CARGO_BIN_EXE_waferscope"),
        root = root.display(),
        db = db.display(),
        w = work.display()
    )
}

fn sh(script: &str) -> (i32, String, String) {
    let out = Command::new("sh").args(["-c", script]).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn listing(d: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// Lifts the immutable flag however the test ends.
struct Immutable(PathBuf);
impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

#[test]
fn an_immutable_database_file_is_refused_before_the_run() {
    let d = dir("immutable");
    let work = dir("immutable-work");
    let db = d.join("results.db");
    let (rc, _, err) = sh(&run_cmd(&db, &work));
    assert_eq!(rc, 0, "a first run records: {err}");
    let before = listing(&d);
    // A run leaves only the database and its station lock behind: were
    // -wal or -shm already here, a refusal that created them would go
    // unnoticed below.
    assert_eq!(before, ["results.db", "results.db.lock"]);
    let (rc, _, err) = sh(&format!("chattr +i '{}'", db.display()));
    assert_eq!(rc, 0, "chattr: {err}");
    let guard = Immutable(db.clone());

    let (rc, out, err) = sh(&run_cmd(&db, &work));
    assert_eq!(rc, 2, "bad input: {err}");
    assert!(
        err.contains(&format!(
            "{}: the results database is not writable",
            db.display()
        )),
        "{err}"
    );
    assert!(
        !out.contains("dies"),
        "refused before the run header: {out}"
    );
    assert_eq!(listing(&d), before, "no -wal or -shm left behind");
    drop(guard);
    let (rc, _, err) = sh(&run_cmd(&db, &work));
    assert_eq!(rc, 0, "the next run is not blocked: {err}");
    std::fs::remove_dir_all(d).ok();
    std::fs::remove_dir_all(work).ok();
}

#[test]
fn a_database_on_a_read_only_mount_is_refused_before_the_run() {
    let d = dir("mount");
    let work = dir("mount-work");
    let db = d.join("results.db");
    let (rc, _, err) = sh(&run_cmd(&db, &work));
    assert_eq!(rc, 0, "a first run records: {err}");
    let before = listing(&d);
    // A run leaves only the database and its station lock behind: were
    // -wal or -shm already here, a refusal that created them would go
    // unnoticed below.
    assert_eq!(before, ["results.db", "results.db.lock"]);
    let script = format!(
        "mount --bind '{d}' '{d}' && mount -o remount,bind,ro '{d}' '{d}' || exit 97; {run}; echo \"rc=$?\"",
        d = d.display(),
        run = run_cmd(&db, &work)
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(97), "bind mount failed: {err}");
    assert!(stdout.contains("rc=2"), "bad input: {stdout} {err}");
    assert!(
        err.contains(&format!(
            "{}: the results database's directory {} is not writable (Read-only file system",
            db.display(),
            d.display()
        )),
        "{err}"
    );
    assert!(
        !stdout.contains("dies"),
        "refused before the run header: {stdout}"
    );
    assert_eq!(listing(&d), before, "nothing left behind");
    let (rc, _, err) = sh(&run_cmd(&db, &work));
    assert_eq!(rc, 0, "the next run is not blocked: {err}");
    std::fs::remove_dir_all(d).ok();
    std::fs::remove_dir_all(work).ok();
}
