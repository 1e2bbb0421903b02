//! One station per database. The station that records runs holds an
//! exclusive `flock` on `<db>.lock` for as long as its store is open; the
//! kernel releases it when the process ends, however it ends. A second
//! station is refused with the holder's pid, command line and start time,
//! which the holder writes into the lock file.
//!
//! Runs also record their owner (pid and process start time), so recovery
//! closes only runs whose owner is dead, and `waferscope runs` can tell a
//! live run from one whose process was killed.

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Held while a station records into the database; dropping it (or the
/// process ending) releases the lock.
#[derive(Debug)]
pub struct StationLock {
    // The lock lives as long as this open file description.
    _file: File,
    path: PathBuf,
}

impl StationLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// `<db>.lock` beside the database, named from its canonical path: the
/// same file reached through a symlink (to it or to a directory above it)
/// or `..` gets the same lock, so a second station cannot slip past it.
pub fn lock_path(db: &Path) -> PathBuf {
    let db = canonical(db);
    let mut name = db.file_name().unwrap_or_default().to_owned();
    name.push(".lock");
    db.with_file_name(name)
}

/// The database's canonical path; for a database not created yet, its
/// directory's canonical path and its name. A path that cannot be resolved
/// at all stays as given (opening the database will then fail and say
/// why).
fn canonical(db: &Path) -> PathBuf {
    if let Ok(real) = std::fs::canonicalize(db) {
        return real;
    }
    let Some(name) = db.file_name() else {
        return db.to_owned();
    };
    let dir = match db.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::canonicalize(dir)
        .map(|d| d.join(name))
        .unwrap_or_else(|_| db.to_owned())
}

/// Takes the station lock of `db`, or says who holds it.
pub fn acquire(db: &Path) -> Result<StationLock> {
    let path = lock_path(db);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .with_context(|| format!("{}: cannot open the station lock", path.display()))?;
    // SAFETY: flock takes no pointers, only a descriptor; it is open and
    // owned by `file`, which outlives the call and, moved into the
    // returned `StationLock`, holds the lock for as long as it is needed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let mut holder = String::new();
            // The holder's description is informative only: an unreadable
            // one still refuses, just with less detail.
            if file.read_to_string(&mut holder).is_err() || holder.trim().is_empty() {
                holder = "another process (it has not said which)".into();
            }
            bail!(
                "{}: the results database is in use by another station: {}; one station per database (close that one first)",
                db.display(),
                holder.trim()
            );
        }
        return Err(err)
            .with_context(|| format!("{}: cannot take the station lock", path.display()));
    }
    let me = describe_self();
    file.set_len(0)
        .and_then(|_| file.rewind())
        .and_then(|_| file.write_all(me.as_bytes()))
        .and_then(|_| file.flush())
        .with_context(|| format!("{}: cannot write the station lock", path.display()))?;
    Ok(StationLock { _file: file, path })
}

/// "pid 123 (`waferscope run --lot …`), since 11-29-26 05:51:02 UTC".
fn describe_self() -> String {
    let cmd = std::fs::read("/proc/self/cmdline")
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "waferscope".into());
    format!(
        "pid {} (`{cmd}`), since {} UTC",
        std::process::id(),
        super::klarf::klarf_time(crate::monitor::alarm_engine::unix_ms_now())
    )
}

/// What identifies a process across pid reuse: the boot and the process's
/// start time in clock ticks since boot (`/proc/<pid>/stat`, field 22).
pub fn process_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces and parentheses: the
    // fields after it start behind the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    // rest: field 3 (state) onwards; field 22 is the 20th of them.
    let ticks = rest.split_whitespace().nth(19)?;
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    Some(format!("{}:{ticks}", boot.trim()))
}

/// This process, as recorded in the runs it owns.
pub fn this_process() -> (u32, String) {
    let pid = std::process::id();
    (pid, process_start(pid).unwrap_or_default())
}

/// Whether the process that opened a run is still running. A run without
/// a recorded owner (older schema) counts as dead: only the station lock's
/// holder can be recording, and that is us.
pub fn owner_alive(pid: Option<i64>, start: Option<&str>) -> bool {
    match (pid, start) {
        (Some(pid), Some(start)) if pid > 0 && !start.is_empty() => {
            process_start(pid as u32).as_deref() == Some(start)
        }
        _ => false,
    }
}
