//! The alarm evaluator: turns machine snapshots into alarm transitions for
//! every defined alarm, handles operator commands, marks first-out and
//! floods, and publishes a fixed-size `AlarmSnapshot`. Transitions go to
//! the journal as events over a bounded channel with `try_send`: the
//! evaluator never waits for the journal (a slow disk must not stop alarm
//! evaluation); what it could not hand over is counted and journaled as a
//! gap. The evaluator itself does no I/O and allocates nothing, operator
//! commands included (operator names are fixed-size).

use super::alarm_defs::{AlarmDef, Condition, Priority};
use super::alarm_state::{AlarmState, AlarmStatus, EventKind, Events, Shelving};
use super::quality::out_of_date_after_ns;
use super::quality::Quality;
use super::snapshot::MachineSnapshot;
use super::software::SoftwareConditions;
use crate::hot::{Counter, FixedText};
use anyhow::{bail, Result};
use crossbeam_channel::Sender;
use std::sync::Arc;
use std::time::SystemTime;

pub const MAX_ALARMS: usize = 64;
/// More than this many raises within `FLOOD_WINDOW_NS` is a flood.
pub const FLOOD_LIMIT: usize = 10;
pub const FLOOD_WINDOW_NS: u64 = 600_000_000_000;

/// Who did something to an alarm, kept inline so commands and journal
/// events cost no allocation on the evaluator.
pub type OperatorName = FixedText<32>;

/// Why an alarm was shelved, kept inline like [`OperatorName`].
pub type ShelveReason = FixedText<64>;

/// Something the journal records.
#[derive(Debug, Clone, PartialEq)]
pub struct JournalEvent {
    /// Wall-clock time, ms since the Unix epoch.
    pub at_unix_ms: i64,
    pub alid: u32,
    pub kind: EventKind,
    pub state: AlarmState,
    pub shelving: Shelving,
    pub first_out: bool,
    /// Who did it (operator actions only).
    pub operator: Option<OperatorName>,
    /// The signal's value at the time, when it has one.
    pub value: f64,
    pub detail: &'static str,
    /// The operator's words (a shelving's reason), appended to `detail`.
    pub note: ShelveReason,
}

pub fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What an operator asks of the alarm system. `Copy`: applying one on the
/// evaluator allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AlarmCommand {
    Acknowledge {
        alid: u32,
        operator: OperatorName,
    },
    AcknowledgeAll {
        operator: OperatorName,
    },
    /// Shelve for a time (clamped to the alarm's maximum: the access
    /// layer refuses longer ones with a reason) and why: a shelving without
    /// a duration and a reason is not offered (issue 15).
    Shelve {
        alid: u32,
        duration_ns: u64,
        operator: OperatorName,
        reason: ShelveReason,
    },
    Unshelve {
        alid: u32,
        operator: OperatorName,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AlarmEntry {
    pub index: u16,
    pub alid: u32,
    pub priority: u8,
    pub state: AlarmState,
    pub shelving: Shelving,
    pub first_out: bool,
    pub in_flood: bool,
    pub chattering: bool,
    pub condition: bool,
    pub raised_ns: u64,
    /// Who shelved it and why (empty when not shelved, or shelved before
    /// a restart: only the shelving and its end are persisted).
    pub shelved_by: OperatorName,
    pub shelve_reason: ShelveReason,
}

/// The alarm picture the UI reads: every alarm not Normal (or shelved),
/// highest priority first, then newest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlarmSnapshot {
    /// When the evaluator published this, ns on the process clock
    /// (`hot::now_ns`).
    pub taken_ns: u64,
    /// The evaluator's period, ns: a snapshot older than 3 of these (at
    /// least `MIN_OUT_OF_DATE_NS`) comes from an evaluator that hangs. 0
    /// for a snapshot no running evaluator made (tests, defaults).
    pub period_ns: u64,
    /// Set in the last snapshot an evaluator publishes as it ends
    /// (stopped or panicked).
    pub ended: bool,
    /// Journal events the evaluator could not hand over (journal behind).
    pub journal_drops: u64,
    /// Set by `as_seen_at` when the evaluator has stopped: the entries are
    /// its last picture, plus the "evaluator stopped" alarm.
    pub evaluator_stopped: bool,
    pub count: u16,
    pub entries: [AlarmEntry; MAX_ALARMS],
    /// Active alarms per priority (low, medium, high).
    pub active: [u16; 3],
    /// Unacknowledged alarms per priority.
    pub unacknowledged: [u16; 3],
    pub shelved: u16,
    /// Alarms raised during the current flood, shown as "N more".
    pub flood_more: u16,
    pub transitions: u64,
    /// Alarms raised since the evaluator started, per priority (low,
    /// medium, high): only ever grows (the metrics' counter).
    pub raised: [u64; 3],
}

impl Default for AlarmSnapshot {
    fn default() -> Self {
        Self {
            taken_ns: 0,
            period_ns: 0,
            ended: false,
            journal_drops: 0,
            evaluator_stopped: false,
            count: 0,
            entries: [AlarmEntry::default(); MAX_ALARMS],
            active: [0; 3],
            unacknowledged: [0; 3],
            shelved: 0,
            flood_more: 0,
            transitions: 0,
            raised: [0; 3],
        }
    }
}

impl AlarmSnapshot {
    pub fn entries(&self) -> &[AlarmEntry] {
        &self.entries[..self.count as usize]
    }
    pub fn entry(&self, alid: u32) -> Option<&AlarmEntry> {
        self.entries().iter().find(|e| e.alid == alid)
    }

    /// How old this snapshot is at `now_ns` (process clock).
    pub fn age_ns(&self, now_ns: u64) -> u64 {
        now_ns.saturating_sub(self.taken_ns)
    }

    /// Whether, at `now_ns`, nothing here is current: the evaluator ended
    /// (said in its last snapshot) or this is older than 3 evaluation
    /// periods (at least `MIN_OUT_OF_DATE_NS`), so the evaluator hangs.
    pub fn is_out_of_date(&self, now_ns: u64) -> bool {
        self.ended
            || (self.period_ns > 0 && self.age_ns(now_ns) > out_of_date_after_ns(self.period_ns))
    }

    /// The alarm picture as a reader at `now_ns` must take it: unchanged
    /// while the evaluator keeps it fresh; once out of date, flagged
    /// `evaluator_stopped` and with the "evaluator stopped" alarm (the
    /// definition of kind `evaluator_stopped`, if any) added as an
    /// unacknowledged active alarm at the top. The evaluator cannot raise
    /// an alarm about its own death, so every reader raises it for itself
    /// from the stamp; the journal thread journals it.
    pub fn as_seen_at(&self, now_ns: u64, defs: &[AlarmDef]) -> AlarmSnapshot {
        let mut seen = *self;
        if !self.is_out_of_date(now_ns) {
            return seen;
        }
        seen.evaluator_stopped = true;
        let Some((index, def)) = defs
            .iter()
            .enumerate()
            .find(|(_, d)| d.condition == Condition::EvaluatorStopped)
        else {
            return seen;
        };
        if seen.entry(def.alid).is_some() {
            return seen;
        }
        let p = def.priority as usize - 1;
        // Full list: the last (lowest priority, oldest) entry makes room.
        let n = (seen.count as usize).min(MAX_ALARMS - 1);
        seen.entries.copy_within(0..n, 1);
        seen.entries[0] = AlarmEntry {
            index: index as u16,
            alid: def.alid,
            priority: def.priority as u8,
            state: AlarmState::UnackActive,
            shelving: Shelving::None,
            first_out: false,
            in_flood: false,
            chattering: false,
            condition: true,
            raised_ns: self.taken_ns,
            ..AlarmEntry::default()
        };
        seen.count = (n + 1) as u16;
        seen.active[p] += 1;
        seen.unacknowledged[p] += 1;
        seen
    }
}

pub struct AlarmEngine {
    defs: Arc<[AlarmDef]>,
    status: Vec<AlarmStatus>,
    /// Times of the last raises, oldest first (flood detection).
    raises: [Option<u64>; FLOOD_LIMIT + 1],
    journal: Sender<JournalEvent>,
    /// Events `journal` had no room for (counted, never waited for).
    journal_drops: Arc<Counter>,
    transitions: u64,
    /// Raises per priority (low, medium, high), for the snapshot.
    raised: [u64; 3],
    last_values: Vec<f64>,
    /// Evaluation period, stamped into snapshots (0: not set).
    period_ns: u64,
    /// Conditions the station's software sets (read like signals).
    software: Arc<SoftwareConditions>,
}

impl AlarmEngine {
    /// `restored` holds persisted statuses by ALID (from the journal).
    /// More definitions than the engine holds (`MAX_ALARMS`) is an error
    /// (`alarm_defs::parse` refuses such a file first, naming it).
    pub fn new(
        defs: Arc<[AlarmDef]>,
        restored: &[(u32, AlarmStatus)],
        journal: Sender<JournalEvent>,
    ) -> Result<Self> {
        if defs.len() > MAX_ALARMS {
            bail!(
                "{} alarms defined; the alarm engine holds at most {MAX_ALARMS}",
                defs.len()
            );
        }
        let status = defs
            .iter()
            .map(|d| {
                restored
                    .iter()
                    .find(|(alid, _)| *alid == d.alid)
                    .map(|(_, s)| *s)
                    .unwrap_or_default()
            })
            .collect();
        Ok(Self {
            last_values: vec![f64::NAN; defs.len()],
            defs,
            status,
            raises: [None; FLOOD_LIMIT + 1],
            journal,
            journal_drops: Arc::new(Counter::new()),
            transitions: 0,
            raised: [0; 3],
            period_ns: 0,
            software: Arc::default(),
        })
    }

    /// Sets the evaluation period stamped into snapshots, so readers can
    /// tell when the evaluator has stopped.
    pub fn set_period_ns(&mut self, period_ns: u64) {
        self.period_ns = period_ns;
    }

    /// Journal events dropped because the journal channel was full.
    pub fn journal_drops(&self) -> &Arc<Counter> {
        &self.journal_drops
    }

    /// The software conditions this engine reads: whoever raises one
    /// (e.g. the KLARF exporter) sets its flag here.
    pub fn software_conditions(&self) -> &Arc<SoftwareConditions> {
        &self.software
    }

    pub fn defs(&self) -> &Arc<[AlarmDef]> {
        &self.defs
    }

    pub fn status(&self, alid: u32) -> Option<&AlarmStatus> {
        self.defs
            .iter()
            .position(|d| d.alid == alid)
            .map(|i| &self.status[i])
    }

    pub fn transitions(&self) -> u64 {
        self.transitions
    }

    /// The raw condition of alarm `i` in `snap` at `now_ns`, with
    /// hysteresis. While the machine picture is out of date (the poller
    /// stopped) only "monitor stopped" is judged; every other condition is
    /// unknown and holds, so a dead poller raises one alarm that names
    /// the cause instead of a flood of "heartbeat lost" for devices that
    /// may be fine.
    fn raw(&self, i: usize, snap: &MachineSnapshot, now_ns: u64) -> (Option<bool>, f64) {
        let active = self.status[i].condition;
        let out_of_date = snap.is_out_of_date(now_ns);
        match self.defs[i].condition {
            Condition::MonitorStopped => {
                return (
                    (snap.period_ns > 0).then_some(out_of_date),
                    snap.age_ns(now_ns) as f64 / 1e6,
                )
            }
            // Judged by the readers of the alarm picture, never here.
            Condition::EvaluatorStopped => return (None, f64::NAN),
            // The station's own software, not the machine: known whether
            // or not the poller is alive.
            Condition::Software { condition } => {
                return (Some(self.software.is_active(condition)), f64::NAN)
            }
            _ if out_of_date => return (None, self.last_values[i]),
            _ => {}
        }
        match self.defs[i].condition {
            Condition::MonitorStopped
            | Condition::EvaluatorStopped
            | Condition::Software { .. } => (None, f64::NAN),
            Condition::High {
                signal,
                limit,
                deadband,
            }
            | Condition::Low {
                signal,
                limit,
                deadband,
            } => {
                let s = snap.signal(signal);
                if s.quality != Quality::Live {
                    return (None, s.value);
                }
                let high = matches!(self.defs[i].condition, Condition::High { .. });
                let v = s.value;
                let on = match (high, active) {
                    (true, false) => v > limit,
                    (true, true) => v > limit - deadband,
                    (false, false) => v < limit,
                    (false, true) => v < limit + deadband,
                };
                (Some(on), v)
            }
            Condition::Stale { subsystem } => match snap.heartbeat(subsystem).quality {
                Quality::NoValue => (None, f64::NAN),
                q => (Some(matches!(q, Quality::Stale | Quality::Lost)), f64::NAN),
            },
            Condition::Lost { subsystem } => match snap.heartbeat(subsystem).quality {
                Quality::NoValue => (None, f64::NAN),
                q => (Some(q == Quality::Lost), f64::NAN),
            },
            Condition::Invalid { signal } => {
                let s = snap.signal(signal);
                match s.quality {
                    Quality::Invalid => (Some(true), s.value),
                    Quality::Live => (Some(false), s.value),
                    _ => (None, s.value),
                }
            }
        }
    }

    /// Evaluates every alarm against `snap` at `now_ns`.
    pub fn tick(&mut self, snap: &MachineSnapshot, now_ns: u64) {
        for i in 0..self.defs.len() {
            let (raw, value) = self.raw(i, snap, now_ns);
            self.last_values[i] = value;
            let anything_else_active = self
                .status
                .iter()
                .enumerate()
                .any(|(j, s)| j != i && s.state != AlarmState::Normal);
            let events = self.status[i].update(&self.defs[i], raw, now_ns);
            if events.iter().any(|e| e == EventKind::Raised) {
                self.on_raise(i, now_ns, anything_else_active);
            }
            self.emit(i, events, None, "");
        }
    }

    fn on_raise(&mut self, i: usize, now_ns: u64, anything_else_active: bool) {
        self.raised[self.defs[i].priority as usize - 1] += 1;
        // First-out: the alarm that started an upset.
        self.status[i].first_out = !anything_else_active;
        self.raises.rotate_left(1);
        self.raises[FLOOD_LIMIT] = Some(now_ns);
        self.status[i].in_flood =
            self.raises[0].is_some_and(|oldest| now_ns - oldest <= FLOOD_WINDOW_NS);
    }

    fn emit(
        &mut self,
        i: usize,
        events: Events,
        operator: Option<OperatorName>,
        detail: &'static str,
    ) {
        self.emit_noted(i, events, operator, detail, ShelveReason::default())
    }

    fn emit_noted(
        &mut self,
        i: usize,
        events: Events,
        operator: Option<OperatorName>,
        detail: &'static str,
        note: ShelveReason,
    ) {
        for kind in events.iter() {
            self.transitions += 1;
            let s = &self.status[i];
            let event = JournalEvent {
                at_unix_ms: unix_ms_now(),
                alid: self.defs[i].alid,
                kind,
                state: s.state,
                shelving: s.shelving,
                first_out: s.first_out,
                operator,
                value: self.last_values[i],
                detail,
                note,
            };
            // Never wait for the journal: a stuck disk must not stop alarm
            // evaluation. A full (or closed) channel is counted; the
            // journal records the gap when it catches up, and the count is
            // in every alarm snapshot.
            if self.journal.try_send(event).is_err() {
                self.journal_drops.incr();
            }
        }
    }

    /// Applies an operator command. Returns false if it named no alarm or
    /// there was nothing to do.
    pub fn command(&mut self, cmd: AlarmCommand, now_ns: u64) -> bool {
        let find = |alid: u32| self.defs.iter().position(|d| d.alid == alid);
        match cmd {
            AlarmCommand::Acknowledge { alid, operator } => {
                let Some(i) = find(alid) else { return false };
                match self.status[i].acknowledge() {
                    Some(e) => {
                        self.emit(i, single(e), Some(operator), "");
                        true
                    }
                    None => false,
                }
            }
            AlarmCommand::AcknowledgeAll { operator } => {
                let mut any = false;
                for i in 0..self.defs.len() {
                    if let Some(e) = self.status[i].acknowledge() {
                        self.emit(i, single(e), Some(operator), "acknowledge all");
                        any = true;
                    }
                }
                any
            }
            AlarmCommand::Shelve {
                alid,
                duration_ns,
                operator,
                reason,
            } => {
                let Some(i) = find(alid) else { return false };
                let clamped = duration_ns > self.defs[i].max_shelve_ns;
                let e = self.status[i].shelve(&self.defs[i], Some(duration_ns), now_ns);
                self.status[i].shelved_by = operator;
                self.status[i].shelve_reason = reason;
                let detail = if clamped {
                    "timed, clamped to the alarm's maximum"
                } else {
                    "timed"
                };
                self.emit_noted(i, single(e), Some(operator), detail, reason);
                true
            }
            AlarmCommand::Unshelve { alid, operator } => {
                let Some(i) = find(alid) else { return false };
                match self.status[i].unshelve() {
                    Some(e) => {
                        self.emit(i, single(e), Some(operator), "by operator");
                        true
                    }
                    None => false,
                }
            }
        }
    }

    pub fn snapshot(&self, now_ns: u64) -> AlarmSnapshot {
        let mut snap = AlarmSnapshot {
            taken_ns: now_ns,
            period_ns: self.period_ns,
            journal_drops: self.journal_drops.get(),
            transitions: self.transitions,
            raised: self.raised,
            ..AlarmSnapshot::default()
        };
        for (i, (d, s)) in self.defs.iter().zip(&self.status).enumerate() {
            let p = d.priority as usize - 1;
            if s.shelving != Shelving::None {
                snap.shelved += 1;
            }
            if matches!(s.state, AlarmState::UnackActive | AlarmState::AckActive) {
                snap.active[p] += 1;
            }
            if s.state.is_unacknowledged() {
                snap.unacknowledged[p] += 1;
            }
            if s.in_flood && s.state != AlarmState::Normal {
                snap.flood_more += 1;
            }
            if s.state != AlarmState::Normal || s.shelving != Shelving::None {
                snap.entries[snap.count as usize] = AlarmEntry {
                    index: i as u16,
                    alid: d.alid,
                    priority: d.priority as u8,
                    state: s.state,
                    shelving: s.shelving,
                    first_out: s.first_out,
                    in_flood: s.in_flood,
                    chattering: s.chattering,
                    condition: s.condition,
                    raised_ns: s.raised_ns,
                    shelved_by: s.shelved_by,
                    shelve_reason: s.shelve_reason,
                };
                snap.count += 1;
            }
        }
        // Highest priority first, then newest: insertion sort, no allocation.
        let n = snap.count as usize;
        for a in 1..n {
            let mut b = a;
            while b > 0 && later_first(&snap.entries[b], &snap.entries[b - 1]) {
                snap.entries.swap(b, b - 1);
                b -= 1;
            }
        }
        snap
    }

    /// Statuses by ALID, for persisting.
    pub fn statuses(&self) -> impl Iterator<Item = (u32, &AlarmStatus)> {
        self.defs.iter().map(|d| d.alid).zip(&self.status)
    }
}

fn single(e: EventKind) -> Events {
    let mut ev = Events::default();
    ev.list[0] = Some(e);
    ev
}

fn later_first(a: &AlarmEntry, b: &AlarmEntry) -> bool {
    (a.priority, a.raised_ns) > (b.priority, b.raised_ns)
}

/// Priority from its number in a snapshot entry.
pub fn priority_of(n: u8) -> Priority {
    match n {
        3 => Priority::High,
        2 => Priority::Medium,
        _ => Priority::Low,
    }
}
