//! Exit codes are documented where an operator looks (`--help`), and a
//! listing command whose reader goes away (`waferscope runs | head -1`)
//! ends with its documented code and a message, never a panic (101).

use std::process::{Command, Stdio};

#[test]
fn help_documents_every_exit_code() {
    for args in [&["--help"][..], &["run", "--help"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_waferscope"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("Exit codes:"), "{help}");
        for code in ["0", "2", "3", "4", "5", "6", "7", "8"] {
            assert!(
                help.lines()
                    .any(|l| l.trim_start().starts_with(&format!("{code}  "))),
                "exit code {code} not documented in {args:?}: {help}"
            );
        }
        assert!(help.contains("standard output was closed"), "{help}");
    }
}

#[test]
fn runs_into_a_closed_pipe_exits_8_naming_the_cause() {
    let d = std::env::temp_dir().join(format!("waferscope-cli-exit-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    let db = d.join("station.db");
    // An empty results database: `runs` still prints a line about it.
    drop(waferscope::store::SqliteStore::open(&db).unwrap());
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .args(["runs", "--db"])
        .arg(&db)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{err}");
    assert!(err.contains("error: standard output was closed"), "{err}");
    std::fs::remove_dir_all(d).ok();
}

/// The benchmarks print through the same checked output: a reader that went
/// away is exit 8 with a message, not a panic.
#[test]
fn a_benchmark_into_a_closed_pipe_exits_8() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .args(["bench", "monitor", "--json"])
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{err}");
    assert!(err.contains("standard output was closed"), "{err}");
}
