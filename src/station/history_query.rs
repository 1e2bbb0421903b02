//! The History screen's database reader: run lists by filter and whole
//! runs on request, on a thread of its own with its own connection, so the
//! UI thread never touches SQLite. A shown list is read again when the
//! database changes (SQLite's `data_version`), so a run that ends while the
//! operator looks appears without a click.

use crate::store::query::{find_runs, load_run, RunExport, RunFilter, RunRow};
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use std::path::PathBuf;
use std::time::Duration;

/// Runs one list query returns at most: a bounded query, so months of runs
/// cost the screen no more than a day's.
pub const HISTORY_PAGE: usize = 200;

/// How often a shown list checks whether the database changed.
const RECHECK: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq)]
pub enum HistoryRequest {
    /// The newest runs passing the filter (and again whenever the database
    /// changes, until another list is asked for).
    List(RunFilter),
    /// One run in full.
    Load(i64),
}

#[derive(Debug)]
pub enum HistoryAnswer {
    List {
        filter: RunFilter,
        runs: Vec<RunRow>,
        /// Runs passing the filter in all (`runs` holds at most
        /// `HISTORY_PAGE`).
        total: u64,
    },
    Run(Box<RunExport>),
    /// A query failed; the text names the database and the query.
    Error(String),
}

/// The UI's end of the reader thread. Dropping it ends the thread.
pub struct HistoryQueries {
    requests: Sender<HistoryRequest>,
    answers: Receiver<HistoryAnswer>,
}

impl HistoryQueries {
    /// Starts the reader on `db`; `wake` is called after each answer (the
    /// window's repaint request).
    pub fn start(db: PathBuf, wake: impl Fn() + Send + 'static) -> std::io::Result<Self> {
        let (requests, rx) = unbounded();
        let (tx, answers) = unbounded();
        crate::hot::liveness::spawn_watched("ui-history-query", RECHECK * 10, move |health| {
            serve(&db, &rx, &tx, &wake, health)
        })?;
        Ok(Self { requests, answers })
    }

    /// Asks the reader; an error says the reader has stopped (its thread
    /// ended, which the Health panel also shows).
    pub fn ask(&self, r: HistoryRequest) -> Result<(), String> {
        self.requests.send(r).map_err(|_| {
            "the history reader has stopped (see the Health panel); runs cannot be read".to_string()
        })
    }

    /// The next answer, if one has arrived.
    pub fn try_answer(&self) -> Option<HistoryAnswer> {
        self.answers.try_recv().ok()
    }
}

/// The reader's loop: answers requests as they come; between them, reads
/// the shown list again when the database changed. Ends when the UI's end
/// is dropped.
fn serve(
    db: &std::path::Path,
    requests: &Receiver<HistoryRequest>,
    answers: &Sender<HistoryAnswer>,
    wake: &dyn Fn(),
    health: &crate::hot::liveness::ThreadHealth,
) {
    let answer = |a: HistoryAnswer| {
        let sent = answers.send(a).is_ok();
        wake();
        sent
    };
    let conn = match crate::store::db::open(db) {
        Ok(c) => c,
        Err(e) => {
            let why = format!("{}: the run history cannot be read: {e:#}", db.display());
            tracing::error!("{why}");
            answer(HistoryAnswer::Error(why));
            return;
        }
    };
    let data_version =
        || -> Option<i64> { conn.query_row("PRAGMA data_version", [], |r| r.get(0)).ok() };
    let list = |filter: &RunFilter| match find_runs(&conn, filter, unix_now_ms(), HISTORY_PAGE) {
        Ok((runs, total)) => HistoryAnswer::List {
            filter: filter.clone(),
            runs,
            total,
        },
        Err(e) => HistoryAnswer::Error(format!("{}: cannot list runs: {e:#}", db.display())),
    };
    let mut shown: Option<(RunFilter, Option<i64>)> = None;
    loop {
        health.idle();
        let request = requests.recv_timeout(RECHECK);
        health.beat();
        let reply = match request {
            Ok(HistoryRequest::List(filter)) => {
                let version = data_version();
                let reply = list(&filter);
                shown = Some((filter, version));
                reply
            }
            Ok(HistoryRequest::Load(id)) => match load_run(&conn, id) {
                Ok(run) => HistoryAnswer::Run(Box::new(run)),
                Err(e) => {
                    HistoryAnswer::Error(format!("{}: cannot read run {id}: {e:#}", db.display()))
                }
            },
            Err(RecvTimeoutError::Timeout) => {
                let Some((filter, seen)) = &mut shown else {
                    continue;
                };
                let now = data_version();
                // Unknown (a failed pragma): read again rather than miss a
                // change.
                if now.is_some() && now == *seen {
                    continue;
                }
                *seen = now;
                list(filter)
            }
            Err(RecvTimeoutError::Disconnected) => return,
        };
        if !answer(reply) {
            // The UI's end is gone: nobody to read for.
            return;
        }
    }
}

fn unix_now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_the_reader_cannot_open_is_answered_with_its_path() {
        let db = std::env::temp_dir()
            .join(format!("waferscope-no-such-dir-hq-{}", std::process::id()))
            .join("station.db");
        let q = HistoryQueries::start(db.clone(), || {}).unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let why = loop {
            match q.try_answer() {
                Some(HistoryAnswer::Error(why)) => break why,
                Some(other) => panic!("unexpected answer {other:?}"),
                None => {}
            }
            assert!(std::time::Instant::now() < deadline, "no answer");
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(why.contains(&db.display().to_string()), "{why}");
    }
}
