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
    // The thumbnail directory is fine (the up-front check passes), but the
    // run's own directory cannot be created: a fresh database starts at run
    // 1, and `run-1` is already a regular file.
    std::fs::create_dir_all(d.join("thumbs")).unwrap();
    std::fs::write(d.join("thumbs/run-1"), "not a directory").unwrap();
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
    // The KLARF directory is writable (the up-front check passes), but the
    // run's KLARF file cannot be put in place: a directory already holds its
    // name (lot, wafer, run 1 of a fresh database), so the rename fails.
    std::fs::create_dir_all(k.join("LOT-X_W01_slot01_run1.klarf")).unwrap();
    let out = Command::new("sh")
        .args([
            "-c",
            &run_cmd(
                &d,
                &format!(
                    "--thumbnail-dir '{}/thumbs' --klarf-dir '{}'",
                    d.display(),
                    k.display()
                ),
            ),
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "{stderr}");
    assert!(
        stderr.contains("results not exported: KLARF:")
            && stderr.contains("LOT-X_W01_slot01_run1.klarf: cannot write the export"),
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
    // Nothing half-written is left beside it.
    let mut left: Vec<String> = std::fs::read_dir(&k)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["LOT-X_W01_slot01_run1.klarf"]);
    std::fs::remove_dir_all(d).ok();
}
