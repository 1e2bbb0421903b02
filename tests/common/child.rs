//! A program the test starts and waits for: its output goes to files (not
//! pipes, which nothing would read while we wait), and if it has not ended
//! within the patience it is killed by PID, never by name.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Runs `cmd` with stdout and stderr in `dir/out.txt` and `dir/err.txt`;
/// its exit code and everything it printed (stdout, then stderr). Fails
/// naming `what` if it runs longer than `patience`.
pub fn run_to_files(
    mut cmd: Command,
    dir: &Path,
    patience: Duration,
    what: &str,
) -> (Option<i32>, String) {
    let mut child = cmd
        .stdout(std::fs::File::create(dir.join("out.txt")).unwrap())
        .stderr(std::fs::File::create(dir.join("err.txt")).unwrap())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + patience;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("{what} did not end within {} s", patience.as_secs());
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let all = std::fs::read_to_string(dir.join("out.txt")).unwrap()
        + &std::fs::read_to_string(dir.join("err.txt")).unwrap();
    (status.code(), all)
}
