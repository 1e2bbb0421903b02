//! Running the alarm system: the evaluator thread (reads machine snapshots,
//! applies operator commands, publishes alarm snapshots) and the journal
//! thread (writes transitions to SQLite), joined by a bounded channel the
//! evaluator never waits on.
//!
//! Who notices a dead evaluator: it cannot raise an alarm about itself.
//! Its snapshots carry their time and period, so every reader (screens,
//! interlocks, suspenders) sees the alarm picture go out of date and shows
//! the "evaluator stopped" alarm itself (`AlarmSnapshot::as_seen_at`); the
//! journal thread, which already owns the journal and wakes at least five
//! times in the evaluator's stall time, watches the evaluator's health and journals its
//! death (with the panic message) or stall. Both need nothing from the
//! evaluator, so both still work when it is gone.

use super::alarm_defs::{AlarmDef, Condition};
use super::alarm_engine::{AlarmCommand, AlarmEngine, AlarmSnapshot, JournalEvent};
use super::alarm_state::EventKind;
use super::faults::PanicSwitch;
use super::journal::Journal;
use super::snapshot::MachineSnapshot;
use super::software::SoftwareConditions;
use crate::hot::liveness::{join_named, spawn_watched, ThreadHealth, ThreadState};
use crate::hot::{alloc_count, latest_cell, prime_thread, Counter, LatestReader, LatestSubscriber};
use anyhow::{Context, Result};
use crossbeam_channel::{bounded, RecvTimeoutError, Sender, TrySendError};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The evaluator thread's name (health panel, allocation counts, panics).
pub const EVALUATOR_THREAD: &str = "alarm-evaluator";
/// The journal thread's name.
pub const JOURNAL_THREAD: &str = "alarm-journal";
/// Room for journal events between two journal writes.
const JOURNAL_QUEUE: usize = 4096;

pub struct AlarmService {
    pub snapshots: LatestSubscriber<AlarmSnapshot>,
    pub defs: Arc<[AlarmDef]>,
    /// The evaluator's health (running, stalled, dead + message).
    pub evaluator_health: Arc<ThreadHealth>,
    /// The journal thread's health.
    pub journal_health: Arc<ThreadHealth>,
    /// Trip to kill the evaluator (fault injection).
    pub panic_switch: Arc<PanicSwitch>,
    /// Journal events the evaluator could not hand over.
    pub journal_drops: Arc<Counter>,
    /// Operator commands refused because the evaluator did not take them
    /// (queue full, or the evaluator is gone).
    pub commands_refused: Arc<Counter>,
    /// Conditions the station's own software raises (set a flag here and
    /// the evaluator raises the alarm defined for it at its next pass).
    pub software: Arc<SoftwareConditions>,
    commands: Sender<AlarmCommand>,
    stop: Arc<AtomicBool>,
    threads: Vec<(&'static str, JoinHandle<()>)>,
}

impl AlarmService {
    /// Restores alarm state from the journal, records a definitions change,
    /// and starts evaluating every `period`. `epoch` is the monitor's time
    /// base (`Monitor::epoch`, the process clock's epoch): machine
    /// snapshots are stamped against it and alarm snapshots are too.
    pub fn start(
        defs: Arc<[AlarmDef]>,
        defs_hash: &str,
        mut journal: Journal,
        mut machine: LatestReader<MachineSnapshot>,
        epoch: Instant,
        period: Duration,
    ) -> Result<Self> {
        let now_ns = epoch.elapsed().as_nanos() as u64;
        journal.set_epoch_unix_ms(super::alarm_engine::unix_ms_now() - (now_ns / 1_000_000) as i64);
        journal.note_definitions(defs_hash)?;
        let restored = journal.restore(now_ns)?;
        let (event_tx, event_rx) = bounded::<JournalEvent>(JOURNAL_QUEUE);
        let (cmd_tx, cmd_rx) = bounded::<AlarmCommand>(256);
        let mut engine = AlarmEngine::new(Arc::clone(&defs), &restored, event_tx)
            .with_context(|| format!("{}: alarm definitions", journal.path().display()))?;
        let period_ns = period.as_nanos().max(1) as u64;
        engine.set_period_ns(period_ns);
        let journal_drops = engine.journal_drops().clone();
        let software = engine.software_conditions().clone();
        let (mut writer, snapshots) = latest_cell(engine.snapshot(now_ns));
        let stop = Arc::new(AtomicBool::new(false));
        let panic_switch = Arc::new(PanicSwitch::default());
        let mut threads = Vec::new();

        let evaluator_stop = stop.clone();
        let evaluator_switch = panic_switch.clone();
        let stall_after = (period * 20).max(Duration::from_millis(250));
        let (evaluator, evaluator_health) =
            spawn_watched(EVALUATOR_THREAD, stall_after, move |health| {
                let _hot = alloc_count::mark_thread_hot(EVALUATOR_THREAD);
                prime_thread();
                let evaluated = catch_unwind(AssertUnwindSafe(|| {
                    let mut next = Instant::now();
                    while !evaluator_stop.load(Ordering::Relaxed) {
                        evaluator_switch.check(EVALUATOR_THREAD);
                        let now_ns = epoch.elapsed().as_nanos() as u64;
                        while let Ok(cmd) = cmd_rx.try_recv() {
                            engine.command(cmd, now_ns);
                        }
                        let snap = machine.read().value;
                        engine.tick(&snap, now_ns);
                        writer.publish(engine.snapshot(now_ns));
                        health.beat();
                        next += period;
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        } else {
                            next = now;
                        }
                    }
                }));
                // However the loop ended, readers learn it now (not from the
                // picture's age): the last picture, marked ended.
                let mut last = engine.snapshot(epoch.elapsed().as_nanos() as u64);
                last.ended = true;
                writer.publish(last);
                if let Err(panic) = evaluated {
                    resume_unwind(panic);
                }
            })
            .context("spawning the alarm evaluator")?;
        threads.push((EVALUATOR_THREAD, evaluator));

        let watched = evaluator_health.clone();
        let evaluator_alid = defs
            .iter()
            .find(|d| d.condition == Condition::EvaluatorStopped)
            .map(|d| d.alid)
            .unwrap_or(0);
        let drops = journal_drops.clone();
        // Events, and the evaluator's end, wake the journal at once; the
        // timeout only paces its watch on the evaluator, which counts as
        // stalled after `stall_after` (250 ms at the station's 5 ms
        // period). Five looks per stall time journal a stall once it has
        // lasted 250–300 ms; every reader already shows it from the alarm
        // picture's age within 3 periods. Each wake costs tens of µs
        // (crossbeam spins before it parks): every 15 ms, as it was, that
        // was 0.25–0.40 % of a core in an idle station; every 50 ms,
        // 0.06 %.
        let wake = (stall_after / 5).max(Duration::from_millis(1));
        let (journal_thread, journal_health) =
            spawn_watched(JOURNAL_THREAD, Duration::from_secs(30), move |health| {
                let mut batch = Vec::with_capacity(256);
                let mut watchdog = EvaluatorWatchdog::default();
                let mut gaps_journaled = 0;
                loop {
                    health.idle();
                    let first = event_rx.recv_timeout(wake);
                    health.beat();
                    let ended = match first {
                        Ok(e) => {
                            batch.push(e);
                            batch.extend(event_rx.try_iter());
                            false
                        }
                        Err(RecvTimeoutError::Timeout) => false,
                        // The evaluator is gone (stopped or dead): its
                        // sender went with it while unwinding, a moment
                        // before its death is recorded; wait for that so
                        // the watchdog below can tell which.
                        Err(RecvTimeoutError::Disconnected) => {
                            let deadline = Instant::now() + Duration::from_secs(2);
                            while !watched.ended() && Instant::now() < deadline {
                                std::thread::sleep(Duration::from_millis(1));
                            }
                            true
                        }
                    };
                    if !batch.is_empty() {
                        if let Err(err) = journal.record(&batch) {
                            // Keep running: the next batch may succeed (a
                            // full disk freed); the alarms themselves are
                            // unaffected.
                            tracing::error!("alarm journal {}: {err:#}", journal.path().display());
                        }
                        batch.clear();
                    }
                    // Caught up: say how many events never arrived.
                    let dropped = drops.get();
                    if dropped > gaps_journaled {
                        let detail = format!(
                            "journal gap: {} alarm events lost (the journal fell behind)",
                            dropped - gaps_journaled
                        );
                        tracing::error!("{detail}");
                        match journal.record_note(0, EventKind::JournalGap, &detail) {
                            Ok(()) => gaps_journaled = dropped,
                            Err(err) => tracing::error!(
                                "alarm journal {}: {err:#}",
                                journal.path().display()
                            ),
                        }
                    }
                    if let Some((kind, detail)) = watchdog.check(&watched) {
                        tracing::error!("{detail}");
                        if let Err(err) = journal.record_note(evaluator_alid, kind, &detail) {
                            tracing::error!("alarm journal {}: {err:#}", journal.path().display());
                        }
                    }
                    if ended {
                        break;
                    }
                }
            })
            .context("spawning the alarm journal")?;
        threads.push((JOURNAL_THREAD, journal_thread));
        Ok(Self {
            snapshots,
            defs,
            evaluator_health,
            journal_health,
            panic_switch,
            journal_drops,
            commands_refused: Arc::new(Counter::new()),
            software,
            commands: cmd_tx,
            stop,
            threads,
        })
    }

    /// Queues an operator command (applied at the next evaluation). Never
    /// waits: a command the evaluator cannot take (queue full, evaluator
    /// gone) is refused, counted and logged, and false is returned.
    pub fn command(&self, cmd: AlarmCommand) -> bool {
        match self.commands.try_send(cmd) {
            Ok(()) => true,
            Err(e) => {
                self.commands_refused.incr();
                let why = match e {
                    TrySendError::Full(_) => "its command queue is full",
                    TrySendError::Disconnected(_) => "it has stopped",
                };
                tracing::error!("alarm command {cmd:?} not applied: the alarm evaluator {why}");
                false
            }
        }
    }

    /// Stops evaluating and waits until every event is in the journal.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The evaluator ends first and drops the event sender, which ends
        // the journal thread once it has written everything.
        for (name, t) in self.threads.drain(..) {
            if let Err(why) = join_named(name, t) {
                tracing::error!("{why}");
            }
        }
    }
}

impl Drop for AlarmService {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Says once that the evaluator died or stalled (and once that a stall
/// ended), from its health record.
#[derive(Default)]
struct EvaluatorWatchdog {
    reported_dead: bool,
    reported_stall: bool,
}

impl EvaluatorWatchdog {
    fn check(&mut self, evaluator: &ThreadHealth) -> Option<(EventKind, String)> {
        match evaluator.state() {
            ThreadState::Dead { message } if !self.reported_dead => {
                self.reported_dead = true;
                Some((
                    EventKind::Raised,
                    format!("alarm evaluator stopped: thread {EVALUATOR_THREAD} died: {message}"),
                ))
            }
            ThreadState::Stalled { since_beat_ms } if !self.reported_stall => {
                self.reported_stall = true;
                Some((
                    EventKind::Raised,
                    format!(
                        "alarm evaluator stopped: thread {EVALUATOR_THREAD} has not evaluated for {since_beat_ms} ms"
                    ),
                ))
            }
            ThreadState::Running | ThreadState::Idle if self.reported_stall => {
                self.reported_stall = false;
                Some((
                    EventKind::ReturnedToNormal,
                    "alarm evaluator running again after a stall".to_owned(),
                ))
            }
            _ => None,
        }
    }
}
