//! SIGKILL at 20 seeded random points of runs on one database (during
//! start-up, and after a random number of dies). After each kill, before
//! any recovery, `waferscope runs` shows the run as interrupted (its owner
//! is dead), not running; the database is intact; every inspected die has
//! exactly its defect rows. The next start then closes the run as aborted
//! ("interrupted") and every defect committed before the kill is still
//! there. Reproducible: the points come from a fixed seed
//! (WAFERSCOPE_KILL_SEED overrides it).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use waferscope::store::{db, query, SqliteStore};

/// xorshift64*: a few lines, no dependency, same sequence everywhere.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

type Defects = Vec<(i64, i64, i64, f64, f64)>;

/// What is committed: every defect row, the inspected dies, and whether
/// each inspected die's count equals its rows.
fn committed(conn: &rusqlite::Connection) -> (Defects, Vec<(i64, i64)>) {
    let defects = conn
        .prepare("SELECT run, die_index, defect_no, x_um, y_um FROM defects ORDER BY run, die_index, defect_no")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let inspected = conn
        .prepare(
            "SELECT run, die_index FROM dies WHERE status = 'inspected' ORDER BY run, die_index",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mismatched: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM dies d WHERE d.status = 'inspected' AND d.defect_count !=
               (SELECT COUNT(*) FROM defects f WHERE f.run = d.run AND f.die_index = d.die_index)",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(mismatched, 0, "an inspected die's count is its defect rows");
    (defects, inspected)
}

fn inspected_in_run(db: &Path, run: i64) -> i64 {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    conn.query_row(
        "SELECT COUNT(*) FROM dies WHERE run = ?1 AND status = 'inspected'",
        [run],
        |r| r.get(0),
    )
    .unwrap_or(0)
}

fn listing_status(db: &Path, run: i64) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .args(["runs", "--db"])
        .arg(db)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find(|l| l.split_whitespace().next() == Some(&run.to_string()))
        // run, lot, wafer, slot, recipe, date, time, status
        .map(|l| l.split_whitespace().nth(7).unwrap_or("").to_owned())
        .unwrap_or_else(|| panic!("run {run} not listed:\n{text}"))
}

#[test]
fn sigkill_at_twenty_random_points_then_recovery() {
    let seed = std::env::var("WAFERSCOPE_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_0010_u64);
    let mut rng = Rng(seed | 1);
    let d = std::env::temp_dir().join(format!("waferscope-kills-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let db_path = d.join("waferscope.db");
    let mut runs_begun = 0i64;
    let mut mid_run_kills = 0;
    for kill in 0..20 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_waferscope"))
            .current_dir(&d)
            .arg("--data-dir")
            .arg(&d)
            .args(["run", "--fast", "--lot", "LOT-K", "--wafer"])
            .arg(format!("W{kill:02}"))
            .args(["--seed", &kill.to_string(), "--recipe"])
            .arg(root.join("assets/recipes/full-300mm.toml"))
            .arg("--alarms")
            .arg(root.join("assets/alarms.toml"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let this_run = runs_begun + 1;
        // One point in five is during start-up; the others after a random
        // number of committed dies.
        let point = if rng.below(5) == 0 {
            std::thread::sleep(Duration::from_millis(rng.below(300)));
            None
        } else {
            let dies = 1 + rng.below(150) as i64;
            let deadline = Instant::now() + Duration::from_secs(30);
            while inspected_in_run(&db_path, this_run) < dies {
                assert!(
                    Instant::now() < deadline,
                    "kill {kill}: run {this_run} recorded no {dies} dies"
                );
                assert!(
                    child.try_wait().unwrap().is_none(),
                    "kill {kill}: the run ended by itself"
                );
                std::thread::sleep(Duration::from_millis(rng.below(5)));
            }
            Some(dies)
        };
        let killed = Command::new("kill")
            .args(["-KILL", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        child.wait().unwrap();

        // Read before any recovery.
        let opened: Vec<i64> = if db_path.exists() {
            let conn = rusqlite::Connection::open(&db_path).unwrap();
            assert_eq!(db::integrity(&conn).unwrap(), "ok", "kill {kill}");
            let ids = conn
                .prepare("SELECT id FROM runs WHERE state = 'open'")
                .unwrap()
                .query_map([], |r| r.get(0))
                .unwrap()
                .collect::<Result<Vec<i64>, _>>()
                .unwrap();
            ids
        } else {
            Vec::new()
        };
        if point.is_some() {
            assert_eq!(opened, [this_run], "kill {kill}: killed mid-run");
            mid_run_kills += 1;
        }
        for &run in &opened {
            assert_eq!(
                listing_status(&db_path, run),
                "interrupted",
                "kill {kill}: its owner is dead"
            );
        }
        runs_begun += opened.len() as i64;
        let before = if db_path.exists() {
            Some(committed(&rusqlite::Connection::open(&db_path).unwrap()))
        } else {
            None
        };

        // The next start.
        let store = SqliteStore::open(&db_path).unwrap();
        assert_eq!(store.recovered, opened, "kill {kill}");
        drop(store);
        let conn = db::open(&db_path).unwrap();
        assert_eq!(db::integrity(&conn).unwrap(), "ok", "kill {kill}");
        for &run in &opened {
            let e = query::load_run(&conn, run).unwrap();
            assert_eq!(
                (e.run.exit_status.as_deref(), e.run.reason.as_deref()),
                (Some("aborted"), Some("interrupted")),
                "kill {kill}"
            );
            assert!(e.dies.iter().all(|x| x.status != "pending"));
            if let Some(n) = point {
                assert!(
                    e.dies.iter().filter(|x| x.status == "inspected").count() as i64 >= n,
                    "kill {kill}: the dies seen committed are there"
                );
            }
        }
        if let Some(before) = before {
            assert_eq!(
                committed(&conn),
                before,
                "kill {kill}: no committed defect lost"
            );
        }
    }
    assert!(
        mid_run_kills >= 10,
        "most kills land mid-run ({mid_run_kills})"
    );
    std::fs::remove_dir_all(d).ok();
}
