//! `waferscope run` as an operator uses it: a sampled wafer completes with
//! exit 0; Ctrl-C stops (exit 3), twice aborts (exit 4); bad input exits 2
//! naming the file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("waferscope-cli-run-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn waferscope(d: &Path, recipe: &str, fast: bool) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_waferscope"));
    c.current_dir(d)
        .args([
            "run", "--lot", "LOT-1", "--wafer", "W-1", "--slot", "3", "--recipe",
        ])
        .arg(root().join("assets/recipes").join(recipe))
        .arg("--alarms")
        .arg(root().join("assets/alarms.toml"));
    if fast {
        c.arg("--fast");
    }
    c
}

/// Waits until the run has been started (its header line printed; the
/// Ctrl-C handler is installed before it), then a little longer.
fn started(child: &mut Child) -> std::thread::JoinHandle<String> {
    use std::io::{BufRead, BufReader};
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if line.contains(" dies") && all.is_empty() {
                let _ = tx.send(());
            }
            all += &line;
            all.push('\n');
        }
        all
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the run never started");
    std::thread::sleep(Duration::from_millis(1500));
    reader
}

fn interrupt(child: &Child) {
    // By PID, never by name.
    let ok = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
}

#[test]
fn a_sampled_wafer_completes_and_logs() {
    let d = dir("ok");
    let out = waferscope(&d, "sampled-200mm.toml", true).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("lot LOT-1 wafer W-1 slot 3"), "{text}");
    assert!(text.contains("complete: 97 of 97 dies"), "{text}");
    let log = std::fs::read_dir(d.join("logs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let log = std::fs::read_to_string(log).unwrap();
    assert!(
        log.contains("run started") && log.contains("status=\"complete\""),
        "{log}"
    );
    assert!(
        d.join("waferscope.db").exists(),
        "the alarm journal is kept"
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn ctrl_c_stops_and_twice_aborts() {
    let d = dir("ctrlc");
    let mut child = waferscope(&d, "full-300mm.toml", false)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = started(&mut child);
    interrupt(&child);
    let status = child.wait().unwrap();
    let text = reader.join().unwrap();
    assert_eq!(status.code(), Some(3), "{text}");
    assert!(
        text.contains("stopped: ") && text.contains("stopped by the operator"),
        "{text}"
    );

    let mut child = waferscope(&d, "full-300mm.toml", false)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let reader = started(&mut child);
    interrupt(&child);
    std::thread::sleep(Duration::from_millis(30));
    interrupt(&child);
    let status = child.wait().unwrap();
    let text = reader.join().unwrap();
    assert_eq!(status.code(), Some(4), "{text}");
    assert!(
        text.contains("aborted: ") && text.contains("operator pressed Ctrl-C twice"),
        "{text}"
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn bad_input_exits_2_naming_the_file() {
    let d = dir("bad");
    let bad = d.join("bad.toml");
    std::fs::write(&bad, "id = \"X\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .current_dir(&d)
        .args(["run", "--lot", "L", "--wafer", "W", "--recipe"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("{}: line 1: missing field `name`", bad.display())),
        "{err}"
    );
    std::fs::remove_dir_all(d).ok();
}
