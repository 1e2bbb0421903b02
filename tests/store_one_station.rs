//! One station per database: a second process on the same database is
//! refused, naming the holder, and the first one's live run is untouched;
//! recovery closes only runs whose owner process is dead; `waferscope
//! runs` tells a live run ("running") from one whose owner died
//! ("interrupted").

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use waferscope::store::{db, query, RunIdentity, RunLayout, RunStart, RunStore, SqliteStore};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("waferscope-station-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn inspected(db: &Path) -> i64 {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    conn.query_row(
        "SELECT COUNT(*) FROM dies WHERE status = 'inspected'",
        [],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Ends the first station by PID however the test ends.
struct Child(std::process::Child);
impl Drop for Child {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = Command::new("kill")
                .args(["-KILL", &self.0.id().to_string()])
                .status();
            let _ = self.0.wait();
        }
    }
}

#[test]
fn a_second_station_on_the_same_database_is_refused() {
    let d = dir("two");
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let db_path = d.join("waferscope.db");
    let spawn = |recipe: &str, fast: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_waferscope"));
        c.current_dir(&d)
            .arg("--data-dir")
            .arg(&d)
            .args(["run", "--lot", "LOT-S", "--wafer", "W01"]);
        if fast {
            c.arg("--fast");
        }
        c.arg("--recipe")
            .arg(root.join("assets/recipes").join(recipe))
            .arg("--alarms")
            .arg(root.join("assets/alarms.toml"));
        c
    };
    // The first station: a paced full-wafer run.
    let first = Child(
        spawn("full-300mm.toml", false)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait("the first run to record dies", || inspected(&db_path) >= 5);

    let second = spawn("sampled-200mm.toml", true).output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "refused as bad input: {err}");
    assert!(
        err.contains(&format!(
            "waferscope.db: the results database is in use by another station: pid {} (`",
            first.0.id()
        )),
        "names the database and the holder: {err}"
    );
    assert!(
        err.contains("run --lot LOT-S") && err.contains("since "),
        "{err}"
    );

    // The first station's run is untouched and still recording.
    let conn =
        rusqlite::Connection::open_with_flags(&db_path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let runs: Vec<(i64, String, Option<String>)> = conn
        .prepare("SELECT id, state, exit_status FROM runs")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        runs,
        [(1, "open".to_string(), None)],
        "no second run, first not recovered"
    );
    let now = inspected(&db_path);
    wait("the first run to go on", || inspected(&db_path) > now);
    let listing = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .args(["runs", "--db"])
        .arg(&db_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&listing.stdout);
    assert!(text.contains("running"), "{text}");
    drop(first);
    std::fs::remove_dir_all(d).ok();
}

fn start() -> RunStart {
    RunStart {
        identity: RunIdentity {
            lot: "LOT-9".into(),
            wafer: "W03".into(),
            slot: 3,
            operator: "Ana".into(),
        },
        recipe_id: "R1".into(),
        recipe_hash: "abc".into(),
        plan: vec![0, 1],
        started_unix_ms: 1_795_690_619_000,
        layout: RunLayout {
            diameter_mm: 200.0,
            die_pitch_um: (10_100.0, 10_100.0),
            die_size_um: (10_000.0, 10_000.0),
            grid_offset_um: (0.0, 0.0),
            notch: "down".into(),
            pixel_um: 10.0,
            image_px: 1000,
            plan_dies: vec![(0, 0, 0), (1, 1, 0)],
        },
    }
}

fn status_column(db: &Path) -> Vec<(String, String)> {
    let out = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .args(["runs", "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // run, lot, wafer, slot, recipe, date, time, status
            (f[0].to_owned(), f[7].to_owned())
        })
        .collect()
}

#[test]
fn the_same_database_through_a_symlink_is_refused_too() {
    let d = dir("symlink");
    let a = d.join("a");
    std::fs::create_dir_all(&a).unwrap();
    let real = a.join("r.db");
    let holder = SqliteStore::open(&real).unwrap();
    // The database file itself through a symlink in another directory...
    let b = d.join("b");
    std::fs::create_dir_all(&b).unwrap();
    std::os::unix::fs::symlink(&real, b.join("r.db")).unwrap();
    // ...and through a symlink to its directory.
    std::os::unix::fs::symlink(&a, d.join("c")).unwrap();
    for other in [b.join("r.db"), d.join("c/r.db"), d.join("b/../a/r.db")] {
        let e = format!(
            "{:#}",
            SqliteStore::open(&other)
                .err()
                .unwrap_or_else(|| panic!("{} opened while held", other.display()))
        );
        assert!(
            e.contains("the results database is in use by another station"),
            "{}: {e}",
            other.display()
        );
    }
    drop(holder);
    // Released: the symlinked path opens the same database now.
    drop(SqliteStore::open(&b.join("r.db")).unwrap());
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn recovery_closes_only_runs_whose_owner_is_dead() {
    let d = dir("owners");
    let path = d.join("results.db");
    // Run 1 is left open by this (live) process.
    let mut store = SqliteStore::open(&path).unwrap();
    let live = store.begin(&start()).unwrap() as i64;
    drop(store);
    // Run 2 is left open by a process that has died.
    let mut store = SqliteStore::open(&path).unwrap();
    assert!(
        store.recovered.is_empty(),
        "the live owner's run is not recovered"
    );
    let dead = store.begin(&start()).unwrap() as i64;
    drop(store);
    let mut child = Command::new("true").spawn().unwrap();
    let gone_pid = child.id();
    child.wait().unwrap();
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute(
            "UPDATE runs SET owner_pid = ?1 WHERE id = ?2",
            rusqlite::params![gone_pid, dead],
        )
        .unwrap();
    }
    // Before any recovery, the listing tells them apart.
    assert_eq!(
        status_column(&path),
        [
            (dead.to_string(), "interrupted".to_string()),
            (live.to_string(), "running".to_string())
        ]
    );
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.recovered, [dead]);
    drop(store);
    let conn = db::open(&path).unwrap();
    assert_eq!(query::load_run(&conn, live).unwrap().run.state, "open");
    let e = query::load_run(&conn, dead).unwrap();
    assert_eq!(
        (e.run.exit_status.as_deref(), e.run.reason.as_deref()),
        (Some("aborted"), Some("interrupted"))
    );
    std::fs::remove_dir_all(d).ok();
}
