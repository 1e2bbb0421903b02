//! No silent loss of results: a database that fills mid-run faults the run
//! with "disk full" in its reason; every die the store confirmed committed
//! before the failure is in the file, with its defects; the file is
//! intact; and `waferscope run` on a full disk exits FAULTED (5).

mod common;
use common::monitor_and_alarms;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use waferscope::run::{
    EngineConfig, ExitStatus, RunCommand, RunEngine, RunEvent, RunIdentity, RunState, SimMachine,
};
use waferscope::store::{db, query, SqliteStore};

const RECIPE: &str = r#"
id = "TEST-200"
name = "test wafer"
[wafer]
diameter_mm = 200
die_pitch_um = [16100.0, 16100.0]
die_size_um = [16000.0, 16000.0]
notch = "down"
edge_exclusion_mm = 3.0
[plan]
mode = "all"
[inspection]
threshold = 24
min_defect_px = 2
[optics]
pixel_um = 31.25
illumination_setpoint_pct = 100.0
exposure_us = 100.0
"#;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("waferscope-diskfull-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn wait(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn a_database_that_fills_mid_run_faults_it_and_keeps_what_was_committed() {
    let d = dir("engine");
    let db_path = d.join("results.db");
    let (_io, monitor, defs, alarms) = monitor_and_alarms(&d);
    let mut machine = SimMachine::fast(9);
    // Paced, so the run is still going when the disk fills.
    machine.camera_fps = Some(100.0);
    machine.workers = Some(1);
    let store = Arc::new(Mutex::new(SqliteStore::open(&db_path).unwrap()));
    let confirmations = store.lock().unwrap().confirmations();
    let (engine, handle) = RunEngine::new(
        Box::new(machine),
        monitor.snapshots.reader().unwrap(),
        alarms.snapshots.reader().unwrap(),
        defs,
        Box::new(store.clone()),
        EngineConfig::default(),
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    rt.spawn(engine.serve());
    let mut m = monitor.snapshots.reader().unwrap();
    wait("monitor live", || m.read().value.all_live());
    let mut view = handle.snapshots.reader().unwrap();
    let mut events = handle.events.subscribe();
    let recipe = waferscope::run::recipe::parse(RECIPE).unwrap();
    let planned = recipe.plan.len();
    handle
        .load(
            recipe,
            RunIdentity {
                lot: "LOT-F".into(),
                wafer: "W01".into(),
                slot: 1,
                operator: "Ana".into(),
            },
        )
        .unwrap();
    handle.command(RunCommand::Start).unwrap();
    // Once the first die is in, the disk "fills": the database may grow
    // by two pages more (max_page_count; it cannot shrink below its size,
    // so asking for 1 page answers the current size).
    wait("first die", || {
        matches!(events.try_recv(), Ok(RunEvent::DieDone { .. }))
    });
    let (size, cap) = {
        let s = store.lock().unwrap();
        let size = s.limit_pages(1).unwrap();
        (size, s.limit_pages(size + 2).unwrap())
    };
    assert_eq!(cap, size + 2);
    wait("run end", || view.read().value.state.ended_for_test());
    let s = view.read().value;
    assert_eq!(s.state, RunState::Faulted, "cause: {}", s.cause);
    assert_eq!(s.exit, Some(ExitStatus::Faulted));
    assert!(s.cause.as_str().contains("disk full"), "cause: {}", s.cause);
    assert!(
        (s.dies_done as usize) < planned,
        "the disk filled before the end"
    );

    let run_id = s.run_id as i64;
    let committed = confirmations.committed_dies(s.run_id);
    assert!(!committed.is_empty(), "some dies were committed first");
    drop(rt);
    drop(alarms);
    drop(store);

    let conn = rusqlite::Connection::open(&db_path).unwrap();
    assert_eq!(db::integrity(&conn).unwrap(), "ok");
    let e = query::load_run(&conn, run_id).unwrap();
    // The record is closed as faulted with the reason, not complete.
    assert_eq!(e.run.exit_status.as_deref(), Some("faulted"));
    assert!(
        e.run.reason.as_deref().unwrap_or("").contains("disk full"),
        "{:?}",
        e.run.reason
    );
    // Every die confirmed stored is there, inspected, with all its rows.
    for die in &committed {
        let row = e.dies.iter().find(|x| x.die_index == *die).unwrap();
        assert_eq!(row.status, "inspected", "die {die}");
        let rows = e.defects.iter().filter(|f| f.die_index == *die).count() as i64;
        assert_eq!(rows, row.defect_count, "die {die}: defect rows = its count");
    }
    // Not every die: the record does not pretend the wafer is done.
    let inspected = e.dies.iter().filter(|x| x.status == "inspected").count();
    assert!(inspected < planned);
    std::fs::remove_dir_all(d).ok();
}

trait Terminal {
    fn ended_for_test(&self) -> bool;
}
impl Terminal for RunState {
    fn ended_for_test(&self) -> bool {
        matches!(
            self,
            RunState::Complete | RunState::Aborted | RunState::Faulted
        )
    }
}

/// `waferscope run` with its database on a 1 MiB file system (tmpfs in a
/// private mount namespace): the disk really fills mid-run.
fn run_on_small_disk(d: &Path) -> (i32, String) {
    let mnt = d.join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let script = format!(
        "mount -t tmpfs -o size=1m tmpfs '{m}' || exit 97; '{bin}' run --fast --lot LOT-D --wafer W02 \
         --recipe '{root}/assets/recipes/full-300mm.toml' --alarms '{root}/assets/alarms.toml' \
         --db '{m}/results.db' --thumbnail-dir '{d}/thumbs' --log-dir '{d}/logs' --golden-dir '{d}/golden' 2>&1; echo \"rc=$?\"",
        m = mnt.display(),
        d = d.display(),
        root = root.display(),
        bin = env!("CARGO_BIN_EXE_waferscope"),
    );
    let out = Command::new("unshare")
        .args(["-m", "sh", "-c", &script])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_ne!(out.status.code(), Some(97), "tmpfs mount failed: {text}");
    let rc = text
        .lines()
        .filter_map(|l| l.strip_prefix("rc="))
        .next_back()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(-1);
    (rc, text)
}

#[test]
fn waferscope_run_on_a_full_disk_exits_faulted() {
    let d = dir("cli");
    let (rc, text) = run_on_small_disk(&d);
    assert_eq!(rc, 5, "FAULTED exit code; output:\n{text}");
    assert!(text.contains("faulted"), "{text}");
    assert!(text.contains("disk full"), "{text}");
    std::fs::remove_dir_all(d).ok();
}
