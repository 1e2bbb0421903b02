//! The alarm evaluator: turns machine snapshots into alarm transitions for
//! every defined alarm, handles operator commands, marks first-out and
//! floods, and publishes a fixed-size `AlarmSnapshot`. Transitions go to
//! the journal as events over a bounded channel; the evaluator itself does
//! no I/O and allocates nothing.

use super::alarm_defs::{AlarmDef, Condition, Priority};
use super::alarm_state::{AlarmState, AlarmStatus, EventKind, Events, Shelving};
use super::quality::Quality;
use super::snapshot::MachineSnapshot;
use crossbeam_channel::Sender;
use std::sync::Arc;
use std::time::SystemTime;

pub const MAX_ALARMS: usize = 64;
/// More than this many raises within `FLOOD_WINDOW_NS` is a flood.
pub const FLOOD_LIMIT: usize = 10;
pub const FLOOD_WINDOW_NS: u64 = 600_000_000_000;

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
    pub operator: Option<String>,
    /// The signal's value at the time, when it has one.
    pub value: f64,
    pub detail: &'static str,
}

pub fn unix_ms_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What an operator asks of the alarm system.
#[derive(Debug, Clone, PartialEq)]
pub enum AlarmCommand {
    Acknowledge {
        alid: u32,
        operator: String,
    },
    AcknowledgeAll {
        operator: String,
    },
    /// Shelve for a time (clamped to the alarm's maximum) or, with `None`,
    /// one-shot until the alarm returns to normal.
    Shelve {
        alid: u32,
        duration_ns: Option<u64>,
        operator: String,
    },
    Unshelve {
        alid: u32,
        operator: String,
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
}

/// The alarm picture the UI reads: every alarm not Normal (or shelved),
/// highest priority first, then newest.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AlarmSnapshot {
    pub taken_ns: u64,
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
}

impl Default for AlarmSnapshot {
    fn default() -> Self {
        Self {
            taken_ns: 0,
            count: 0,
            entries: [AlarmEntry::default(); MAX_ALARMS],
            active: [0; 3],
            unacknowledged: [0; 3],
            shelved: 0,
            flood_more: 0,
            transitions: 0,
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
}

pub struct AlarmEngine {
    defs: Arc<[AlarmDef]>,
    status: Vec<AlarmStatus>,
    /// Times of the last raises, oldest first (flood detection).
    raises: [Option<u64>; FLOOD_LIMIT + 1],
    journal: Sender<JournalEvent>,
    transitions: u64,
    last_values: Vec<f64>,
}

impl AlarmEngine {
    /// `restored` holds persisted statuses by ALID (from the journal).
    pub fn new(
        defs: Arc<[AlarmDef]>,
        restored: &[(u32, AlarmStatus)],
        journal: Sender<JournalEvent>,
    ) -> Self {
        assert!(defs.len() <= MAX_ALARMS, "at most {MAX_ALARMS} alarms");
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
        Self {
            last_values: vec![f64::NAN; defs.len()],
            defs,
            status,
            raises: [None; FLOOD_LIMIT + 1],
            journal,
            transitions: 0,
        }
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

    /// The raw condition of alarm `i` in `snap`, with hysteresis.
    fn raw(&self, i: usize, snap: &MachineSnapshot) -> (Option<bool>, f64) {
        let active = self.status[i].condition;
        match self.defs[i].condition {
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
            let (raw, value) = self.raw(i, snap);
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
        // First-out: the alarm that started an upset.
        self.status[i].first_out = !anything_else_active;
        self.raises.rotate_left(1);
        self.raises[FLOOD_LIMIT] = Some(now_ns);
        self.status[i].in_flood =
            self.raises[0].is_some_and(|oldest| now_ns - oldest <= FLOOD_WINDOW_NS);
    }

    fn emit(&mut self, i: usize, events: Events, operator: Option<String>, detail: &'static str) {
        let mut operator = operator;
        for kind in events.iter() {
            self.transitions += 1;
            let s = &self.status[i];
            // Never lose a journal entry: the journal thread only writes to
            // disk, so a full channel clears quickly.
            let _ = self.journal.send(JournalEvent {
                at_unix_ms: unix_ms_now(),
                alid: self.defs[i].alid,
                kind,
                state: s.state,
                shelving: s.shelving,
                first_out: s.first_out,
                operator: operator.take(),
                value: self.last_values[i],
                detail,
            });
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
                        self.emit(i, single(e), Some(operator.clone()), "acknowledge all");
                        any = true;
                    }
                }
                any
            }
            AlarmCommand::Shelve {
                alid,
                duration_ns,
                operator,
            } => {
                let Some(i) = find(alid) else { return false };
                let clamped = duration_ns.is_some_and(|d| d > self.defs[i].max_shelve_ns);
                let e = self.status[i].shelve(&self.defs[i], duration_ns, now_ns);
                let detail = match (duration_ns, clamped) {
                    (None, _) => "one-shot",
                    (Some(_), true) => "timed, clamped to the alarm's maximum",
                    (Some(_), false) => "timed",
                };
                self.emit(i, single(e), Some(operator), detail);
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
            transitions: self.transitions,
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
