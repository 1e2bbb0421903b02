//! `waferscope run` as an operator uses it: a sampled wafer completes with
//! exit 0; Ctrl-C stops (exit 3), twice aborts (exit 4); bad input exits 2
//! naming the file.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    // The station's files in `d` (not the XDG default under HOME).
    c.current_dir(d)
        .arg("--data-dir")
        .arg(d)
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

    // A camera at 1 frame/s: the die in hand takes up to 1 s, so the second
    // press (30 ms later) lands while the run is still stopping. At 60
    // frames/s a stop can finish first, and the run then ends stopped.
    let mut child = waferscope(&d, "full-300mm.toml", false)
        .args(["--sim-fps", "1"])
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

/// The arguments of a fast sampled run in `d` (lot and wafer given).
fn run_args(d: &Path, lot: &str, wafer: &str) -> Vec<String> {
    let mut a: Vec<String> = [
        "run",
        "--lot",
        lot,
        "--wafer",
        wafer,
        "--fast",
        "--db",
        d.join("station.db").to_str().unwrap(),
        "--log-dir",
        d.join("logs").to_str().unwrap(),
        "--thumbnail-dir",
        d.join("thumbnails").to_str().unwrap(),
        "--recipe",
    ]
    .map(String::from)
    .to_vec();
    a.push(
        root()
            .join("assets/recipes/sampled-200mm.toml")
            .display()
            .to_string(),
    );
    a.push("--alarms".into());
    a.push(root().join("assets/alarms.toml").display().to_string());
    a
}

/// Runs `waferscope args…` with `read_only` made a read-only bind mount of
/// itself, in a private mount namespace (we are root: permissions alone do
/// not stop root from writing).
fn with_read_only_dir(read_only: &Path, args: &[String]) -> std::process::Output {
    std::fs::create_dir_all(read_only).unwrap();
    let script = "mount --bind \"$1\" \"$1\" && mount -o remount,bind,ro \"$1\" || exit 97; shift; exec \"$@\"";
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", script, "sh"])
        .arg(read_only)
        .arg(env!("CARGO_BIN_EXE_waferscope"))
        .args(args)
        .output()
        .unwrap();
    assert_ne!(
        out.status.code(),
        Some(97),
        "read-only bind mount failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Exit 2, nothing on stdout (no run header: nothing started), and an
/// error naming `what`.
fn refused_before_the_header(out: &std::process::Output, what: &[&str]) {
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.is_empty(), "a run header was printed: {stdout}");
    for w in what {
        assert!(stderr.contains(w), "stderr does not say {w:?}: {stderr}");
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn an_unwritable_log_directory_exits_2_naming_it() {
    let d = dir("ro-logs");
    let logs = d.join("logs");
    let out = with_read_only_dir(&logs, &run_args(&d, "LOT-1", "W-1"));
    refused_before_the_header(
        &out,
        &[
            &format!("the log directory {}", logs.display()),
            "not writable",
        ],
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn an_unwritable_klarf_directory_exits_2_before_the_run() {
    let d = dir("ro-klarf");
    let klarf = d.join("klarf");
    let mut args = run_args(&d, "LOT-1", "W-1");
    args.push("--klarf-dir".into());
    args.push(klarf.display().to_string());
    let out = with_read_only_dir(&klarf, &args);
    refused_before_the_header(
        &out,
        &[&format!("--klarf-dir {}", klarf.display()), "not writable"],
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn an_unusable_thumbnail_directory_exits_2_before_the_run() {
    let d = dir("bad-thumbs");
    // A file where the directory should be.
    std::fs::write(d.join("thumbnails"), b"not a directory").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .args(run_args(&d, "LOT-1", "W-1"))
        .output()
        .unwrap();
    refused_before_the_header(
        &out,
        &[&format!(
            "--thumbnail-dir {}",
            d.join("thumbnails").display()
        )],
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn bad_ids_exit_2_before_the_header_naming_the_field() {
    let d = dir("ids");
    let bin = env!("CARGO_BIN_EXE_waferscope");
    let out = Command::new(bin)
        .args(run_args(&d, "", "W-1"))
        .output()
        .unwrap();
    refused_before_the_header(&out, &["lot id: empty"]);
    let out = Command::new(bin)
        .args(run_args(&d, "LOT-1", "  "))
        .output()
        .unwrap();
    refused_before_the_header(&out, &["wafer id: empty"]);
    let long = "W".repeat(33);
    let out = Command::new(bin)
        .args(run_args(&d, "LOT-1", &long))
        .output()
        .unwrap();
    refused_before_the_header(&out, &["wafer id", "33 characters, at most 32"]);
    let out = Command::new(bin)
        .args(run_args(&d, "LOT\n1", "W-1"))
        .output()
        .unwrap();
    refused_before_the_header(&out, &["lot id", "control character"]);
    assert!(
        !d.join("station.db").exists(),
        "nothing may be started for bad ids"
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn ids_klarf_cannot_carry_are_replaced_with_a_warning() {
    let d = dir("klarf-ids");
    let out = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .args(run_args(&d, "LOT\"7;B", "Wäfer-1"))
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stdout.contains("lot LOT_7_B wafer W_fer-1"), "{stdout}");
    assert!(
        stderr.contains("warning: lot id \"LOT\\\"7;B\"")
            && stderr.contains("recorded as \"LOT_7_B\""),
        "{stderr}"
    );
    assert!(stderr.contains("warning: wafer id"), "{stderr}");
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn a_closed_stdout_is_an_error_with_its_own_code_not_a_panic() {
    let d = dir("closed-stdout");
    let (reader, writer) = std::io::pipe().unwrap();
    // Closed before the program writes anything: every write gets EPIPE.
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .args(run_args(&d, "LOT-1", "W-1"))
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{stderr}");
    assert!(stderr.contains("standard output was closed"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    std::fs::remove_dir_all(d).ok();
}

/// Sets a file's or directory's modification time `days` into the past.
fn age_days(path: &Path, days: u64) {
    let t = std::time::SystemTime::now() - Duration::from_secs(days * 86_400);
    std::fs::File::open(path)
        .unwrap()
        .set_times(std::fs::FileTimes::new().set_modified(t))
        .unwrap();
}

#[test]
fn old_logs_and_thumbnails_are_deleted_at_start() {
    let d = dir("retention");
    let (logs, thumbs) = (d.join("logs"), d.join("thumbnails"));
    std::fs::create_dir_all(thumbs.join("run-old")).unwrap();
    std::fs::create_dir_all(thumbs.join("run-recent")).unwrap();
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(thumbs.join("run-old/die-1-defect-1.png"), b"x").unwrap();
    std::fs::write(logs.join("waferscope.log.2025-01-01"), b"old\n").unwrap();
    std::fs::write(logs.join("waferscope.log.2026-01-01"), b"recent\n").unwrap();
    std::fs::write(logs.join("operator-notes.txt"), b"not ours\n").unwrap();
    age_days(&thumbs.join("run-old"), 40);
    age_days(&thumbs.join("run-recent"), 20);
    age_days(&logs.join("waferscope.log.2025-01-01"), 40);
    age_days(&logs.join("waferscope.log.2026-01-01"), 20);
    age_days(&logs.join("operator-notes.txt"), 400);
    let mut args = run_args(&d, "LOT-1", "W-1");
    args.extend(["--keep-days".into(), "30".into()]);
    let out = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!thumbs.join("run-old").exists());
    assert!(thumbs.join("run-recent").exists());
    assert!(!logs.join("waferscope.log.2025-01-01").exists());
    assert!(logs.join("waferscope.log.2026-01-01").exists());
    assert!(
        logs.join("operator-notes.txt").exists(),
        "not a log of ours"
    );
    std::fs::remove_dir_all(d).ok();
}

/// The numbers N of every "N/597 dies" the progress bar drew.
fn bar_positions(screen: &str, total: u32) -> Vec<u32> {
    let marker = format!("/{total} dies");
    let mut found = Vec::new();
    let mut rest = screen;
    while let Some(i) = rest.find(&marker) {
        let digits: String = rest[..i]
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_digit())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if let Ok(n) = digits.parse() {
            found.push(n);
        }
        rest = &rest[i + marker.len()..];
    }
    found
}

#[test]
fn after_ctrl_c_the_bar_shows_the_dies_really_inspected() {
    use std::io::Read;
    let d = dir("ctrlc-bar");
    let mut cmd = vec![format!("exec '{}'", env!("CARGO_BIN_EXE_waferscope"))];
    let mut args = run_args(&d, "LOT-1", "W-1");
    // Paced, full wafer: still running when Ctrl-C comes.
    args.retain(|a| a != "--fast");
    let recipe = args.iter().position(|a| a == "--recipe").unwrap() + 1;
    args[recipe] = root()
        .join("assets/recipes/full-300mm.toml")
        .display()
        .to_string();
    cmd.extend(args.iter().map(|a| format!("'{a}'")));
    // Under a pseudo-terminal, so the bar is drawn as an operator sees it.
    let mut script = Command::new("script")
        .args(["-qfec", &cmd.join(" "), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = script.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
            if String::from_utf8_lossy(&all).contains("/597 dies") {
                // Ignore a closed receiver: the test only waits once.
                tx.send(()).ok();
            }
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the bar never showed");
    std::thread::sleep(Duration::from_millis(1500));
    // script's child is the shell that exec'd waferscope: signal it by PID.
    let children =
        std::fs::read_to_string(format!("/proc/{0}/task/{0}/children", script.id())).unwrap();
    let pid = children
        .split_whitespace()
        .next()
        .expect("no child of script");
    let ok = Command::new("kill").args(["-INT", pid]).status().unwrap();
    assert!(ok.success());
    // A run that does not stop must fail the test, not hang it: give it a
    // minute, then end `script` by PID (its session goes with it).
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = script.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            Command::new("kill")
                .args(["-KILL", pid, &script.id().to_string()])
                .status()
                .unwrap();
            script.wait().unwrap();
            panic!("the run did not stop within 60 s of Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let screen = reader.join().unwrap();
    assert_eq!(status.code(), Some(3), "{screen}");
    let done: u32 = screen
        .split("stopped: ")
        .nth(1)
        .and_then(|s| s.split(" of ").next())
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no summary in {screen}"));
    assert!(done < 597, "the run was not interrupted: {screen}");
    let last = *bar_positions(&screen, 597).last().unwrap();
    assert_eq!(
        last, done,
        "the bar's last line is not the dies inspected: {screen}"
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn teach_keeps_a_golden_the_run_then_uses_and_a_misfit_one_is_refused_naming_it() {
    let d = dir("teach");
    let golden_dir = d.join("golden");
    let recipe = root().join("assets/recipes/sampled-200mm.toml");
    let out = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        // Another wafer seed than the run's: a run that re-taught would
        // write a different golden.
        .args(["teach", "--dies", "5", "--seed", "7", "--recipe"])
        .arg(&recipe)
        .arg("--golden-dir")
        .arg(&golden_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("taught from 5 dies"), "{stdout}");
    let files: Vec<_> = std::fs::read_dir(&golden_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let golden = &files[0];
    let taught = std::fs::read(golden).unwrap();

    // The run (database in `d`: goldens beside it) uses it, unchanged.
    let run = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .args(run_args(&d, "LOT-1", "W-1"))
        .output()
        .unwrap();
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(
        std::fs::read(golden).unwrap(),
        taught,
        "used, not re-taught"
    );

    // A golden of another size (the optics changed): refused before the
    // run, naming the file.
    image::save_buffer(
        golden,
        &[0u8; 16 * 16],
        16,
        16,
        image::ExtendedColorType::L8,
    )
    .unwrap();
    let run = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .args(run_args(&d, "LOT-1", "W-2"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&golden.display().to_string()) && err.contains("16×16"),
        "{err}"
    );
    std::fs::remove_dir_all(d).ok();
}
