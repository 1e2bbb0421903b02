//! Liveness of the station's threads: every long-lived thread is spawned
//! through [`spawn_watched`], beats while it works, says when it is idle
//! (waiting for work is healthy), and has its panic message recorded when
//! it dies. Readers (the Health panel, the run engine, tests) ask for each
//! thread's [`ThreadState`]: running, idle, stalled, exited or dead.
//!
//! The hot side is two relaxed atomic stores per beat: no allocation, no
//! lock. Registration (at spawn) and reading (UI, once a second) allocate
//! and lock; neither is on a hot path.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Nanoseconds since the first call in this process: one monotonic time
/// base every producer can stamp with and every reader can age against.
pub fn now_ns() -> u64 {
    epoch().elapsed().as_nanos() as u64
}

/// The instant [`now_ns`] counts from, for code that keeps an `Instant`
/// time base (the monitor hands it to the alarm service): stamps taken as
/// `epoch().elapsed()` compare directly with `now_ns()`.
pub fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

const RUNNING: u8 = 0;
const EXITED: u8 = 1;
const PANICKED: u8 = 2;

/// What a reader can say about one thread.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ThreadState {
    /// Beat within its stall limit.
    Running,
    /// Waiting for work (not a stall).
    Idle,
    /// Busy, but no beat for longer than its stall limit.
    Stalled { since_beat_ms: u64 },
    /// Returned normally.
    Exited,
    /// Panicked; the panic message.
    Dead { message: String },
}

impl ThreadState {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Idle => "idle",
            Self::Stalled { .. } => "stalled",
            Self::Exited => "exited",
            Self::Dead { .. } => "dead",
        }
    }

    /// Running or idle: doing its job.
    pub fn is_healthy(&self) -> bool {
        matches!(self, Self::Running | Self::Idle)
    }
}

/// One watched thread's health, shared by the thread and its readers.
#[derive(Debug)]
pub struct ThreadHealth {
    name: String,
    stall_after_ns: u64,
    last_beat_ns: AtomicU64,
    idle: AtomicBool,
    beats: AtomicU64,
    status: AtomicU8,
    panic_message: Mutex<Option<String>>,
}

impl ThreadHealth {
    fn new(name: String, stall_after: Duration) -> Self {
        Self {
            name,
            stall_after_ns: stall_after.as_nanos() as u64,
            last_beat_ns: AtomicU64::new(now_ns()),
            idle: AtomicBool::new(false),
            beats: AtomicU64::new(0),
            status: AtomicU8::new(RUNNING),
            panic_message: Mutex::new(None),
        }
    }

    /// A health record for a thread not spawned here (tests, or a thread
    /// owned by a crate); it is not in the registry.
    pub fn detached(name: &str, stall_after: Duration) -> Arc<Self> {
        Arc::new(Self::new(name.to_owned(), stall_after))
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// "I am working and not stuck." Call at least once per stall limit
    /// while busy. Never allocates.
    #[inline]
    pub fn beat(&self) {
        self.last_beat_ns.store(now_ns(), Ordering::Relaxed);
        self.idle.store(false, Ordering::Relaxed);
        self.beats.fetch_add(1, Ordering::Relaxed);
    }

    /// "I am about to wait for work": waiting is not a stall.
    #[inline]
    pub fn idle(&self) {
        self.last_beat_ns.store(now_ns(), Ordering::Relaxed);
        self.idle.store(true, Ordering::Relaxed);
    }

    pub fn beats(&self) -> u64 {
        self.beats.load(Ordering::Relaxed)
    }

    /// Nanoseconds since the last beat (or idle mark).
    pub fn since_beat_ns(&self) -> u64 {
        now_ns().saturating_sub(self.last_beat_ns.load(Ordering::Relaxed))
    }

    pub fn state(&self) -> ThreadState {
        match self.status.load(Ordering::Acquire) {
            EXITED => ThreadState::Exited,
            PANICKED => ThreadState::Dead {
                message: self
                    .panic_message
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone()
                    .unwrap_or_else(|| "panicked".into()),
            },
            _ => {
                let since = self.since_beat_ns();
                if self.idle.load(Ordering::Relaxed) {
                    ThreadState::Idle
                } else if since > self.stall_after_ns {
                    ThreadState::Stalled {
                        since_beat_ms: since / 1_000_000,
                    }
                } else {
                    ThreadState::Running
                }
            }
        }
    }

    /// Whether the thread has ended, normally or not.
    pub fn ended(&self) -> bool {
        self.status.load(Ordering::Acquire) != RUNNING
    }

    fn record_exit(&self) {
        self.status.store(EXITED, Ordering::Release);
    }

    fn record_panic(&self, message: String) {
        *self.panic_message.lock().unwrap_or_else(|e| e.into_inner()) = Some(message);
        self.status.store(PANICKED, Ordering::Release);
    }
}

/// Most dead threads remembered for the Health panel (newest kept).
const MAX_DEAD_KEPT: usize = 32;

fn registry() -> &'static Mutex<Vec<Arc<ThreadHealth>>> {
    static REGISTRY: OnceLock<Mutex<Vec<Arc<ThreadHealth>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Vec::new()))
}

fn register(h: Arc<ThreadHealth>) {
    let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
    // Threads that ended cleanly are of no further interest; dead ones stay
    // (bounded) so the operator can read why they died.
    r.retain(|t| t.status.load(Ordering::Acquire) != EXITED);
    let dead = r.iter().filter(|t| t.ended()).count();
    if dead > MAX_DEAD_KEPT {
        let mut extra = dead - MAX_DEAD_KEPT;
        r.retain(|t| {
            if extra > 0 && t.ended() {
                extra -= 1;
                false
            } else {
                true
            }
        });
    }
    r.push(h);
}

/// Every watched thread not known to have exited cleanly, oldest first:
/// (name, state). For the Health panel; allocates.
pub fn threads() -> Vec<(String, ThreadState)> {
    registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|t| (t.name.clone(), t.state()))
        .collect()
}

/// Spawns a named thread whose health is registered: `body` gets its
/// health record to beat on. A panic in `body` is recorded (message and
/// state Dead) and then continues to unwind, so `join` reports it too.
pub fn spawn_watched<T, F>(
    name: &str,
    stall_after: Duration,
    body: F,
) -> std::io::Result<(JoinHandle<T>, Arc<ThreadHealth>)>
where
    T: Send + 'static,
    F: FnOnce(&ThreadHealth) -> T + Send + 'static,
{
    let health = Arc::new(ThreadHealth::new(name.to_owned(), stall_after));
    let inner = Arc::clone(&health);
    let handle =
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(
                move || match catch_unwind(AssertUnwindSafe(|| body(&inner))) {
                    Ok(v) => {
                        inner.record_exit();
                        v
                    }
                    Err(payload) => {
                        inner.record_panic(panic_message(payload.as_ref()));
                        std::panic::resume_unwind(payload)
                    }
                },
            )?;
    register(Arc::clone(&health));
    Ok((handle, health))
}

/// The text of a panic payload (`panic!("…")` gives a `&str` or `String`).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panicked (no message)".to_owned()
    }
}

/// Joins a thread and turns a panic into an error naming the thread and
/// its message, so no join failure is silently dropped.
pub fn join_named<T>(name: &str, handle: JoinHandle<T>) -> Result<T, String> {
    handle
        .join()
        .map_err(|p| format!("thread {name} died: {}", panic_message(p.as_ref())))
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;

    #[test]
    fn a_panicking_thread_reads_dead_with_its_message() {
        let (h, health) = spawn_watched("test-panics", Duration::from_secs(1), |_| {
            panic!("injected: worker fell over")
        })
        .unwrap();
        let joined = join_named("test-panics", h);
        assert_eq!(
            joined.unwrap_err(),
            "thread test-panics died: injected: worker fell over"
        );
        assert_eq!(
            health.state(),
            ThreadState::Dead {
                message: "injected: worker fell over".into()
            }
        );
        assert!(threads()
            .iter()
            .any(|(n, s)| n == "test-panics" && matches!(s, ThreadState::Dead { .. })));
    }

    #[test]
    fn a_busy_thread_without_beats_reads_stalled_and_an_idle_one_does_not() {
        // Hand-shakes rather than sleeps, so a loaded machine that starts
        // the thread late cannot read a state the test did not set up.
        let (beaten_tx, beaten_rx) = std::sync::mpsc::channel::<()>();
        let (busy_done_tx, busy_done_rx) = std::sync::mpsc::channel::<()>();
        let (idle_tx, idle_rx) = std::sync::mpsc::channel::<()>();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let (h, health) = spawn_watched("test-stalls", Duration::from_millis(20), move |me| {
            me.beat();
            beaten_tx.send(()).unwrap();
            // Busy without beating (blocked, but not declared idle): a stall.
            busy_done_rx.recv().ok();
            me.idle();
            idle_tx.send(()).unwrap();
            go_rx.recv().ok();
        })
        .unwrap();
        beaten_rx.recv().unwrap();
        // Stalled once 20 ms pass without a beat; bounded wait.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !matches!(health.state(), ThreadState::Stalled { .. }) {
            assert!(std::time::Instant::now() < deadline, "never read stalled");
            std::thread::sleep(Duration::from_millis(5));
        }
        busy_done_tx.send(()).unwrap();
        idle_rx.recv().unwrap();
        // Idle is never a stall, however long it lasts.
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(health.state(), ThreadState::Idle);
        go_tx.send(()).unwrap();
        join_named("test-stalls", h).unwrap();
        assert_eq!(health.state(), ThreadState::Exited);
        assert!(!threads().iter().any(|(n, _)| n == "test-stalls") || health.ended());
    }
}
