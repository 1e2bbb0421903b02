//! Running the alarm system: the evaluator thread (reads machine snapshots,
//! applies operator commands, publishes alarm snapshots) and the journal
//! thread (writes transitions to SQLite), joined by a bounded channel.

use super::alarm_defs::AlarmDef;
use super::alarm_engine::{AlarmCommand, AlarmEngine, AlarmSnapshot, JournalEvent};
use super::journal::Journal;
use super::snapshot::MachineSnapshot;
use crate::hot::{alloc_count, latest_cell, prime_thread, LatestReader, LatestSubscriber};
use anyhow::Result;
use crossbeam_channel::{bounded, Sender};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub struct AlarmService {
    pub snapshots: LatestSubscriber<AlarmSnapshot>,
    pub defs: Arc<[AlarmDef]>,
    commands: Sender<AlarmCommand>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl AlarmService {
    /// Restores alarm state from the journal, records a definitions change,
    /// and starts evaluating every `period`. `epoch` is the monitor's time
    /// base (machine snapshots are stamped against it).
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
        let (event_tx, event_rx) = bounded::<JournalEvent>(4096);
        let (cmd_tx, cmd_rx) = bounded::<AlarmCommand>(256);
        let mut engine = AlarmEngine::new(Arc::clone(&defs), &restored, event_tx);
        let (mut writer, snapshots) = latest_cell(engine.snapshot(now_ns));
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();

        let evaluator_stop = stop.clone();
        threads.push(
            std::thread::Builder::new()
                .name("alarm-evaluator".into())
                .spawn(move || {
                    let _hot = alloc_count::mark_thread_hot("alarm-evaluator");
                    prime_thread();
                    let mut next = Instant::now();
                    while !evaluator_stop.load(Ordering::Relaxed) {
                        let now_ns = epoch.elapsed().as_nanos() as u64;
                        while let Ok(cmd) = cmd_rx.try_recv() {
                            engine.command(cmd, now_ns);
                        }
                        let snap = machine.read().value;
                        engine.tick(&snap, now_ns);
                        writer.publish(engine.snapshot(now_ns));
                        next += period;
                        let now = Instant::now();
                        if next > now {
                            std::thread::sleep(next - now);
                        } else {
                            next = now;
                        }
                    }
                })
                .expect("spawning the alarm evaluator"),
        );
        threads.push(
            std::thread::Builder::new()
                .name("alarm-journal".into())
                .spawn(move || {
                    let mut batch = Vec::with_capacity(256);
                    while let Ok(e) = event_rx.recv() {
                        batch.push(e);
                        while let Ok(more) = event_rx.try_recv() {
                            batch.push(more);
                        }
                        if let Err(err) = journal.record(&batch) {
                            // Keep running: the next batch may succeed (a
                            // full disk freed); the alarms themselves are
                            // unaffected.
                            tracing::error!("alarm journal {}: {err:#}", journal.path().display());
                        }
                        batch.clear();
                    }
                })
                .expect("spawning the alarm journal"),
        );
        Ok(Self {
            snapshots,
            defs,
            commands: cmd_tx,
            stop,
            threads,
        })
    }

    /// Queues an operator command (applied at the next evaluation).
    pub fn command(&self, cmd: AlarmCommand) {
        let _ = self.commands.send(cmd);
    }

    /// Stops evaluating and waits until every event is in the journal.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // The evaluator ends first and drops the event sender, which ends
        // the journal thread once it has written everything.
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for AlarmService {
    fn drop(&mut self) {
        self.shutdown();
    }
}
