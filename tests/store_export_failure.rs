//! A run whose KLARF or thumbnails could not be written is recorded as it
//! ended, and says so: on the console, in the run record (and `waferscope
//! runs`), and with its own exit code, 7 (complete, but results not
//! exported), never 0.

use std::path::{Path, PathBuf};
use std::process::Command;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("waferscope-noexport-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn run_cmd(d: &Path, extra: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    format!(
        "'{bin}' run --fast --seed 5 --lot LOT-X --wafer W01 --recipe '{root}/assets/recipes/sampled-200mm.toml' \
         --alarms '{root}/assets/alarms.toml' --db '{d}/results.db' --log-dir '{d}/logs' {extra}",
        bin = env!("CARGO_BIN_EXE_waferscope"),
        root = root.display(),
        d = d.display()
    )
}

fn record(d: &Path) -> (String, Option<String>) {
    let c = rusqlite::Connection::open(d.join("results.db")).unwrap();
    c.query_row(
        "SELECT exit_status, export_error FROM runs WHERE id = 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .unwrap()
}

fn runs_listing(d: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .args(["runs", "--db"])
        .arg(d.join("results.db"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn thumbnails_that_cannot_be_written_exit_7_and_are_recorded() {
    let d = dir("thumbs");
    // The thumbnail "directory" is a file: no thumbnail can be written.
    std::fs::write(d.join("thumbs"), "not a directory").unwrap();
    let out = Command::new("sh")
        .args([
            "-c",
            &run_cmd(&d, &format!("--thumbnail-dir '{}/thumbs'", d.display())),
        ])
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(7), "{text}");
    assert!(text.contains("results not exported"), "{text}");
    assert!(text.contains("defect thumbnails not written"), "{text}");
    let (status, export_error) = record(&d);
    assert_eq!(
        status, "complete",
        "the run itself stays recorded as it ended"
    );
    assert!(
        export_error
            .as_deref()
            .unwrap_or("")
            .contains("thumbnails not written"),
        "{export_error:?}"
    );
    assert!(runs_listing(&d).contains("not exported:"));
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn a_klarf_that_cannot_be_written_exits_7_and_is_recorded() {
    let d = dir("klarf");
    let k = d.join("klarf");
    std::fs::create_dir_all(&k).unwrap();
    // The KLARF directory is writable but full (a 64 KiB tmpfs filled up,
    // in a private mount namespace).
    let script = format!(
        "mount -t tmpfs -o size=64k tmpfs '{k}' || exit 97; dd if=/dev/zero of='{k}/fill' bs=4k 2>/dev/null; \
         {run}; echo \"rc=$?\"",
        k = k.display(),
        run = run_cmd(&d, &format!("--thumbnail-dir '{}/thumbs' --klarf-dir '{}'", d.display(), k.display()))
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(97), "tmpfs: {stderr}");
    assert!(stdout.contains("rc=7"), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("results not exported: KLARF:")
            && stderr.contains("No space left on device"),
        "{stderr}"
    );
    let (status, export_error) = record(&d);
    assert_eq!(status, "complete");
    assert!(
        export_error
            .as_deref()
            .unwrap_or("")
            .contains("cannot write the export"),
        "{export_error:?}"
    );
    std::fs::remove_dir_all(d).ok();
}
