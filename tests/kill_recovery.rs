//! A process killed mid-run (SIGKILL) loses at most the batch in flight:
//! the next start closes the run as aborted ("interrupted"), the database
//! is intact, and every defect recorded before the kill is still there.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use waferscope::store::{db, query, SqliteStore};

#[test]
fn sigkill_mid_run_then_recovery() {
    let d = std::env::temp_dir().join(format!("waferscope-kill-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .current_dir(&d)
        .arg("--data-dir")
        .arg(&d)
        .args(["run", "--lot", "LOT-K", "--wafer", "W09", "--recipe"])
        .arg(root.join("assets/recipes/full-300mm.toml"))
        .arg("--alarms")
        .arg(root.join("assets/alarms.toml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let db_path = d.join("waferscope.db");
    // Wait until some dies are committed, then kill by PID.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "no die was recorded");
        std::thread::sleep(Duration::from_millis(200));
        let Ok(conn) = rusqlite::Connection::open_with_flags(
            &db_path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        ) else {
            continue;
        };
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM dies WHERE status = 'inspected'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(0);
        if n >= 40 {
            break;
        }
    }
    let killed = Command::new("kill")
        .args(["-KILL", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    child.wait().unwrap();

    // What the killed process had committed, read before any recovery.
    let (defects_before, inspected_before) = {
        let conn = rusqlite::Connection::open(&db_path).unwrap();
        assert_eq!(db::integrity(&conn).unwrap(), "ok");
        let state: String = conn
            .query_row("SELECT state FROM runs WHERE id = 1", [], |r| r.get(0))
            .unwrap();
        assert_eq!(state, "open", "the run was killed mid-way");
        let defects: Vec<(i64, i64, f64, f64)> = conn
            .prepare("SELECT die_index, defect_no, x_um, y_um FROM defects ORDER BY die_index, defect_no")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let inspected: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM dies WHERE status = 'inspected'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        (defects, inspected)
    };
    assert!(inspected_before >= 40 && !defects_before.is_empty());

    // Next start.
    let store = SqliteStore::open(&db_path).unwrap();
    assert_eq!(store.recovered, [1]);
    drop(store);
    let conn = db::open(&db_path).unwrap();
    assert_eq!(db::integrity(&conn).unwrap(), "ok");
    let e = query::load_run(&conn, 1).unwrap();
    assert_eq!(e.run.exit_status.as_deref(), Some("aborted"));
    assert_eq!(e.run.reason.as_deref(), Some("interrupted"));
    assert_eq!(
        e.dies.iter().filter(|d| d.status == "inspected").count() as i64,
        inspected_before
    );
    assert_eq!(e.dies.iter().filter(|d| d.status == "pending").count(), 0);
    let after: Vec<(i64, i64, f64, f64)> = conn
        .prepare(
            "SELECT die_index, defect_no, x_um, y_um FROM defects ORDER BY die_index, defect_no",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        after, defects_before,
        "every defect recorded before the kill is there"
    );
    // Each inspected die's count matches its defect rows.
    for die in e.dies.iter().filter(|d| d.status == "inspected") {
        let rows = e
            .defects
            .iter()
            .filter(|f| f.die_index == die.die_index)
            .count() as i64;
        assert_eq!(rows, die.defect_count, "die {}", die.die_index);
    }
    // The operator's listing shows it.
    let out = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .args(["runs", "--db"])
        .arg(&db_path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("aborted") && text.contains("interrupted"),
        "{text}"
    );
    std::fs::remove_dir_all(d).ok();
}
