//! The window's background reader of the database: the alarm journal and
//! the newest runs, on its own thread and connection, so the UI thread
//! never touches SQLite.

use super::{RunHistory, HISTORY_LIMIT};
use crate::monitor::{Journal, JournalRow};
use crate::store::query::recent_runs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Re-reads the journal and the newest runs on its own thread and
/// connection, every 2 s but only when the database changed (SQLite's
/// `data_version`). A database it cannot open or read is logged and put in
/// `error` for the window, never silently ignored.
pub fn spawn_db_reader(
    db: PathBuf,
    journal: Arc<Mutex<Vec<JournalRow>>>,
    history: Arc<Mutex<RunHistory>>,
    error: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<()> {
    let report = move |why: Option<String>| {
        let mut e = error.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(w) = &why {
            if e.as_ref() != Some(w) {
                tracing::error!("{w}");
            }
        }
        *e = why;
    };
    crate::hot::liveness::spawn_watched("ui-db-reader", Duration::from_secs(30), move |health| {
        let opened = Journal::open(&db).and_then(|j| crate::store::db::open(&db).map(|c| (j, c)));
        let (j, conn) = match opened {
            Ok(x) => x,
            Err(e) => {
                report(Some(format!(
                    "{}: the run history and alarm journal cannot be shown: {e:#}",
                    db.display()
                )));
                return;
            }
        };
        let mut seen_version = None;
        while !stop.load(Ordering::Relaxed) {
            health.beat();
            let version: rusqlite::Result<i64> =
                conn.query_row("PRAGMA data_version", [], |r| r.get(0));
            let changed = match version {
                Ok(v) => seen_version.replace(v) != Some(v),
                // Unknown: read anyway.
                Err(_) => true,
            };
            if changed {
                let read = j.rows(None, 500).and_then(|rows| {
                    let runs = recent_runs(&conn, HISTORY_LIMIT)?;
                    Ok((rows, runs))
                });
                match read {
                    Ok((rows, (runs, total))) => {
                        *journal.lock().unwrap_or_else(|e| e.into_inner()) = rows;
                        *history.lock().unwrap_or_else(|e| e.into_inner()) =
                            RunHistory { runs, total };
                        report(None);
                    }
                    Err(e) => {
                        // Read again next time, even if nothing changed.
                        seen_version = None;
                        report(Some(format!(
                            "{}: cannot read the run history and alarm journal: {e:#}",
                            db.display()
                        )));
                    }
                }
            }
            health.idle();
            for _ in 0..20 {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    })
    .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_the_reader_cannot_open_is_reported_not_ignored() {
        let db = std::env::temp_dir()
            .join(format!("waferscope-no-such-dir-{}", std::process::id()))
            .join("station.db");
        let error = Arc::new(Mutex::new(None));
        spawn_db_reader(
            db.clone(),
            Arc::default(),
            Arc::default(),
            error.clone(),
            Arc::new(AtomicBool::new(false)),
        )
        .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let why = loop {
            if let Some(why) = error.lock().unwrap().clone() {
                break why;
            }
            assert!(std::time::Instant::now() < deadline, "no error reported");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(why.contains(&db.display().to_string()), "{why}");
        assert!(why.contains("cannot be shown"), "{why}");
    }
}
