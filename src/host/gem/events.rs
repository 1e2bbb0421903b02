//! Collection events (CEIDs 4000–4999) and the data variables they carry
//! (DVIDs 3000–3999): what the equipment tells the host happened, and the
//! values that are valid only at the moment it happened (E30 "DVVAL").
//!
//! The run engine's [`RunEvent`]s become collection events through
//! [`RunEventMapper`]: it is a small state machine rather than a free
//! function because a die-done event does not carry the run id, and the
//! wafer defect count and repeater count of the run-ended event are sums
//! over earlier events. Alarm edges, control-state changes, process
//! program changes, operator EC changes and terminal-message recognition
//! come from the modules that see them, through the constructors here.
//!
//! [`collection_events`] and [`data_variables`] list every id with its
//! name, format and meaning: docs/gem.md is written from them, and a host
//! can be answered from them.

use crate::host::secs2::{Format, Item};
use crate::pipeline::result::DefectClass;
use crate::run::{RunEvent, RunState};

/// A collection event the equipment reports (S6F11), by CEID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CollectionEvent {
    RunStarted,
    RunStateChanged,
    DieDone,
    /// Every planned die of the wafer has been inspected.
    WaferDone,
    RunEnded,
    RunSuspended,
    RunResumed,
    AlarmSet,
    AlarmCleared,
    /// E30 control state: the control state model reached this state.
    ControlStateChanged(ControlStateReached),
    /// E30 "process program change": a PP was created, edited or deleted
    /// by the host or the operator.
    ProcessProgramChanged,
    /// E30 "operator equipment constant change".
    OperatorEquipmentConstantChanged,
    /// E30 terminal services: the operator acknowledged a host message.
    MessageRecognition,
}

/// The three control states E30 requires a collection event for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ControlStateReached {
    /// Equipment OFF-LINE.
    Offline,
    OnlineLocal,
    OnlineRemote,
}

/// Every collection event, in CEID order (the S2F37 "all events" set).
pub const ALL_EVENTS: [CollectionEvent; 15] = [
    CollectionEvent::RunStarted,
    CollectionEvent::RunStateChanged,
    CollectionEvent::DieDone,
    CollectionEvent::WaferDone,
    CollectionEvent::RunEnded,
    CollectionEvent::RunSuspended,
    CollectionEvent::RunResumed,
    CollectionEvent::AlarmSet,
    CollectionEvent::AlarmCleared,
    CollectionEvent::ControlStateChanged(ControlStateReached::Offline),
    CollectionEvent::ControlStateChanged(ControlStateReached::OnlineLocal),
    CollectionEvent::ControlStateChanged(ControlStateReached::OnlineRemote),
    CollectionEvent::ProcessProgramChanged,
    CollectionEvent::OperatorEquipmentConstantChanged,
    CollectionEvent::MessageRecognition,
];

impl CollectionEvent {
    pub fn ceid(self) -> u32 {
        use CollectionEvent::*;
        match self {
            RunStarted => 4001,
            RunStateChanged => 4002,
            DieDone => 4003,
            WaferDone => 4004,
            RunEnded => 4005,
            RunSuspended => 4006,
            RunResumed => 4007,
            AlarmSet => 4011,
            AlarmCleared => 4012,
            ControlStateChanged(ControlStateReached::Offline) => 4021,
            ControlStateChanged(ControlStateReached::OnlineLocal) => 4022,
            ControlStateChanged(ControlStateReached::OnlineRemote) => 4023,
            ProcessProgramChanged => 4031,
            OperatorEquipmentConstantChanged => 4032,
            MessageRecognition => 4033,
        }
    }

    pub fn from_ceid(ceid: u32) -> Option<Self> {
        ALL_EVENTS.iter().copied().find(|e| e.ceid() == ceid)
    }

    pub fn info(self) -> &'static EventInfo {
        // ALL_EVENTS and EVENTS are in the same order (checked by a test).
        let i = ALL_EVENTS.iter().position(|e| *e == self).unwrap_or(0);
        &EVENTS[i]
    }
}

/// Data variable ids (DVIDs), one constant per variable so producers and
/// tests name them instead of repeating numbers.
pub mod dv {
    pub const RUN_ID: u32 = 3001;
    pub const DIES_TOTAL: u32 = 3002;
    pub const DIES_DONE: u32 = 3003;
    pub const DIE_INDEX: u32 = 3004;
    pub const DIE_DEFECTS: u32 = 3005;
    pub const DIE_PARTICLES: u32 = 3006;
    pub const DIE_SCRATCHES: u32 = 3007;
    pub const DIE_RESIDUES: u32 = 3008;
    pub const DIE_PATTERN_DEFECTS: u32 = 3009;
    pub const DIE_UNKNOWN_DEFECTS: u32 = 3010;
    pub const DIE_NOT_INSPECTED: u32 = 3011;
    pub const WAFER_DEFECTS: u32 = 3012;
    pub const PREVIOUS_RUN_STATE: u32 = 3013;
    pub const RUN_STATE: u32 = 3014;
    pub const RUN_END_STATUS: u32 = 3015;
    pub const RUN_END_REASON: u32 = 3016;
    pub const REPEATER_DEFECTS: u32 = 3017;
    pub const SUSPEND_CAUSE: u32 = 3018;
    pub const SUSPENDED_MS: u32 = 3019;
    pub const ALARM_ID: u32 = 3021;
    pub const ALARM_TEXT: u32 = 3022;
    pub const PP_CHANGE_NAME: u32 = 3031;
    pub const PP_CHANGE_STATUS: u32 = 3032;
    pub const EC_ID_CHANGED: u32 = 3033;
}

/// One data variable's entry in the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VariableInfo {
    pub id: u32,
    pub name: &'static str,
    pub format: Format,
    pub meaning: &'static str,
}

/// One collection event's entry in the table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventInfo {
    pub ceid: u32,
    pub name: &'static str,
    pub meaning: &'static str,
    /// The DVIDs this event carries (valid in its reports).
    pub dvids: &'static [u32],
}

const fn var(id: u32, name: &'static str, format: Format, meaning: &'static str) -> VariableInfo {
    VariableInfo {
        id,
        name,
        format,
        meaning,
    }
}

static VARIABLES: [VariableInfo; 24] = [
    var(dv::RUN_ID, "RunId", Format::U8, "id of the run record (the station's database)"),
    var(dv::DIES_TOTAL, "DiesTotal", Format::U4, "dies planned for inspection in this run"),
    var(dv::DIES_DONE, "DiesDone", Format::U4, "dies inspected so far in this run"),
    var(dv::DIE_INDEX, "DieIndex", Format::U4, "index of the die just inspected in the wafer's die list (scan order)"),
    var(dv::DIE_DEFECTS, "DieDefects", Format::U4, "defects found on that die, including those beyond the per-die store limit"),
    var(dv::DIE_PARTICLES, "DieParticles", Format::U4, "defects on that die classified particle"),
    var(dv::DIE_SCRATCHES, "DieScratches", Format::U4, "defects on that die classified scratch"),
    var(dv::DIE_RESIDUES, "DieResidues", Format::U4, "defects on that die classified residue"),
    var(dv::DIE_PATTERN_DEFECTS, "DiePatternDefects", Format::U4, "defects on that die classified pattern"),
    var(dv::DIE_UNKNOWN_DEFECTS, "DieUnknownDefects", Format::U4, "defects on that die not classified, or found beyond the per-die store limit"),
    var(dv::DIE_NOT_INSPECTED, "DieNotInspected", Format::Boolean, "the die could not be imaged or aligned: no defects were looked for"),
    var(dv::WAFER_DEFECTS, "WaferDefects", Format::U4, "defects found on the wafer so far in this run"),
    var(dv::PREVIOUS_RUN_STATE, "PreviousRunState", Format::Ascii, "run state before the change: IDLE, READY, RUNNING, PAUSING, PAUSED, SUSPENDED, STOPPING, ABORTING, COMPLETE, ABORTED, FAULTED or \"FAULTED, ACKNOWLEDGED\""),
    var(dv::RUN_STATE, "RunState", Format::Ascii, "run state after the change (same names)"),
    var(dv::RUN_END_STATUS, "RunEndStatus", Format::Ascii, "how the run ended: complete, stopped, aborted or faulted"),
    var(dv::RUN_END_REASON, "RunEndReason", Format::Ascii, "why the run ended, as the operator's log says it"),
    var(dv::REPEATER_DEFECTS, "RepeaterDefects", Format::U4, "defects found repeating at one in-die position on several dies"),
    var(dv::SUSPEND_CAUSE, "SuspendCause", Format::Ascii, "why the run suspended itself (e.g. a heartbeat lost)"),
    var(dv::SUSPENDED_MS, "SuspendedMs", Format::U8, "how long the run stayed suspended, ms"),
    var(dv::ALARM_ID, "AlarmId", Format::U4, "ALID of the alarm that was set or cleared"),
    var(dv::ALARM_TEXT, "AlarmText", Format::Ascii, "ALTX of that alarm (at most 120 characters)"),
    var(dv::PP_CHANGE_NAME, "PPChangeName", Format::Ascii, "PPID of the process program created, edited or deleted"),
    var(dv::PP_CHANGE_STATUS, "PPChangeStatus", Format::U1, "1 created, 2 edited, 3 deleted (E30)"),
    var(dv::EC_ID_CHANGED, "ECIDChanged", Format::U4, "ECID of the equipment constant the operator changed"),
];

const fn event(
    ceid: u32,
    name: &'static str,
    meaning: &'static str,
    dvids: &'static [u32],
) -> EventInfo {
    EventInfo {
        ceid,
        name,
        meaning,
        dvids,
    }
}

static EVENTS: [EventInfo; 15] = [
    event(4001, "RunStarted", "an inspection run started", &[dv::RUN_ID, dv::DIES_TOTAL]),
    event(
        4002,
        "RunStateChanged",
        "the run state changed",
        &[dv::RUN_ID, dv::PREVIOUS_RUN_STATE, dv::RUN_STATE],
    ),
    event(
        4003,
        "DieDone",
        "a die was inspected (or found impossible to inspect)",
        &[
            dv::RUN_ID,
            dv::DIE_INDEX,
            dv::DIE_DEFECTS,
            dv::DIE_PARTICLES,
            dv::DIE_SCRATCHES,
            dv::DIE_RESIDUES,
            dv::DIE_PATTERN_DEFECTS,
            dv::DIE_UNKNOWN_DEFECTS,
            dv::DIE_NOT_INSPECTED,
            dv::DIES_DONE,
            dv::DIES_TOTAL,
            dv::WAFER_DEFECTS,
        ],
    ),
    event(
        4004,
        "WaferDone",
        "every planned die of the wafer was inspected (not sent for a run stopped or aborted before)",
        &[dv::RUN_ID, dv::DIES_DONE, dv::DIES_TOTAL, dv::WAFER_DEFECTS],
    ),
    event(
        4005,
        "RunEnded",
        "the run ended (complete, stopped, aborted or faulted) and its record is closed",
        &[
            dv::RUN_ID,
            dv::RUN_END_STATUS,
            dv::RUN_END_REASON,
            dv::DIES_DONE,
            dv::DIES_TOTAL,
            dv::WAFER_DEFECTS,
            dv::REPEATER_DEFECTS,
        ],
    ),
    event(4006, "RunSuspended", "the run suspended itself", &[dv::RUN_ID, dv::SUSPEND_CAUSE]),
    event(4007, "RunResumed", "a suspended run resumed", &[dv::RUN_ID, dv::SUSPENDED_MS]),
    event(4011, "AlarmSet", "an alarm condition became active", &[dv::ALARM_ID, dv::ALARM_TEXT]),
    event(4012, "AlarmCleared", "an alarm condition cleared", &[dv::ALARM_ID, dv::ALARM_TEXT]),
    event(4021, "EquipmentOffline", "control state: EQUIPMENT OFF-LINE", &[]),
    event(4022, "ControlStateLocal", "control state: ON-LINE LOCAL", &[]),
    event(4023, "ControlStateRemote", "control state: ON-LINE REMOTE", &[]),
    event(
        4031,
        "ProcessProgramChange",
        "a process program (recipe) was created, edited or deleted",
        &[dv::PP_CHANGE_NAME, dv::PP_CHANGE_STATUS],
    ),
    event(
        4032,
        "OperatorEquipmentConstantChange",
        "the operator changed an equipment constant",
        &[dv::EC_ID_CHANGED],
    ),
    event(
        4033,
        "MessageRecognition",
        "the operator acknowledged a terminal message from the host",
        &[],
    ),
];

/// Every collection event with its name, meaning and data variables.
pub fn collection_events() -> &'static [EventInfo] {
    &EVENTS
}

/// Every data variable with its name, SECS-II format and meaning.
pub fn data_variables() -> &'static [VariableInfo] {
    &VARIABLES
}

/// Whether `vid` is a data variable of this equipment.
pub fn is_dvid(vid: u32) -> bool {
    data_variables().iter().any(|v| v.id == vid)
}

/// The values of the data variables of one occurrence of an event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventData {
    values: Vec<(u32, Item)>,
}

impl EventData {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds (or replaces) the value of `dvid`.
    pub fn with(mut self, dvid: u32, value: Item) -> Self {
        self.set(dvid, value);
        self
    }

    pub fn set(&mut self, dvid: u32, value: Item) {
        match self.values.iter_mut().find(|(id, _)| *id == dvid) {
            Some(slot) => slot.1 = value,
            None => self.values.push((dvid, value)),
        }
    }

    pub fn get(&self, dvid: u32) -> Option<&Item> {
        self.values
            .iter()
            .find(|(id, _)| *id == dvid)
            .map(|(_, v)| v)
    }

    pub fn iter(&self) -> impl Iterator<Item = (u32, &Item)> {
        self.values.iter().map(|(id, v)| (*id, v))
    }
}

/// An alarm edge as a collection event (AlarmSet / AlarmCleared).
pub fn alarm_event(alid: u32, set: bool, altx: &str) -> (CollectionEvent, EventData) {
    let event = if set {
        CollectionEvent::AlarmSet
    } else {
        CollectionEvent::AlarmCleared
    };
    let data = EventData::new()
        .with(dv::ALARM_ID, Item::u4(alid))
        .with(dv::ALARM_TEXT, Item::ascii(altx));
    (event, data)
}

/// The control state model reached `state`.
pub fn control_state_event(state: ControlStateReached) -> (CollectionEvent, EventData) {
    (
        CollectionEvent::ControlStateChanged(state),
        EventData::new(),
    )
}

/// E30 PPChangeStatus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PpChange {
    Created = 1,
    Edited = 2,
    Deleted = 3,
}

pub fn process_program_event(ppid: &str, change: PpChange) -> (CollectionEvent, EventData) {
    let data = EventData::new()
        .with(dv::PP_CHANGE_NAME, Item::ascii(ppid))
        .with(dv::PP_CHANGE_STATUS, Item::u1(change as u8));
    (CollectionEvent::ProcessProgramChanged, data)
}

pub fn operator_ec_change_event(ecid: u32) -> (CollectionEvent, EventData) {
    let data = EventData::new().with(dv::EC_ID_CHANGED, Item::u4(ecid));
    (CollectionEvent::OperatorEquipmentConstantChanged, data)
}

pub fn message_recognition_event() -> (CollectionEvent, EventData) {
    (CollectionEvent::MessageRecognition, EventData::new())
}

/// Turns the run engine's events into collection events, keeping what
/// later events need (run id, running sums).
#[derive(Debug, Default)]
pub struct RunEventMapper {
    run_id: u64,
    dies_total: u32,
    dies_done: u32,
    wafer_defects: u32,
    repeater_defects: u32,
    wafer_done_sent: bool,
}

impl RunEventMapper {
    pub fn new() -> Self {
        Self::default()
    }

    /// The collection events `event` makes, in the order they happened
    /// (a die-done of the last planned die is followed by wafer-done).
    pub fn map(&mut self, event: &RunEvent) -> Vec<(CollectionEvent, EventData)> {
        let run = |s: &Self| EventData::new().with(dv::RUN_ID, Item::u8(s.run_id));
        match event {
            RunEvent::Started { run_id, dies } => {
                *self = Self {
                    run_id: *run_id,
                    dies_total: *dies,
                    ..Self::default()
                };
                let data = run(self).with(dv::DIES_TOTAL, Item::u4(*dies));
                vec![(CollectionEvent::RunStarted, data)]
            }
            RunEvent::StateChanged { from, to } => {
                let data = run(self)
                    .with(dv::PREVIOUS_RUN_STATE, state_item(*from))
                    .with(dv::RUN_STATE, state_item(*to));
                vec![(CollectionEvent::RunStateChanged, data)]
            }
            RunEvent::DieDone {
                result,
                done,
                total,
            } => {
                let mut classes = [0u32; DefectClass::ALL.len()];
                for d in &result.defects[..usize::from(result.count).min(result.defects.len())] {
                    if let Some(i) = DefectClass::ALL.iter().position(|c| *c == d.class) {
                        classes[i] += 1;
                    }
                }
                let class_count = |c: DefectClass| {
                    DefectClass::ALL
                        .iter()
                        .position(|x| *x == c)
                        .map_or(0, |i| classes[i])
                };
                // Defects beyond the per-die store limit have no class:
                // counted as unknown so the class counts add up to the total.
                let die_defects = u32::from(result.count).saturating_add(result.dropped);
                self.wafer_defects = self.wafer_defects.saturating_add(die_defects);
                self.dies_done = *done;
                self.dies_total = *total;
                let data = run(self)
                    .with(dv::DIE_INDEX, Item::u4(result.die_index))
                    .with(dv::DIE_DEFECTS, Item::u4(die_defects))
                    .with(
                        dv::DIE_PARTICLES,
                        Item::u4(class_count(DefectClass::Particle)),
                    )
                    .with(
                        dv::DIE_SCRATCHES,
                        Item::u4(class_count(DefectClass::Scratch)),
                    )
                    .with(
                        dv::DIE_RESIDUES,
                        Item::u4(class_count(DefectClass::Residue)),
                    )
                    .with(
                        dv::DIE_PATTERN_DEFECTS,
                        Item::u4(class_count(DefectClass::Pattern)),
                    )
                    .with(
                        dv::DIE_UNKNOWN_DEFECTS,
                        Item::u4(class_count(DefectClass::Unknown).saturating_add(result.dropped)),
                    )
                    .with(
                        dv::DIE_NOT_INSPECTED,
                        Item::boolean(result.capture_failed || result.alignment_untrusted),
                    )
                    .with(dv::DIES_DONE, Item::u4(*done))
                    .with(dv::DIES_TOTAL, Item::u4(*total))
                    .with(dv::WAFER_DEFECTS, Item::u4(self.wafer_defects));
                let mut out = vec![(CollectionEvent::DieDone, data)];
                if *done >= *total && !self.wafer_done_sent {
                    self.wafer_done_sent = true;
                    out.push((CollectionEvent::WaferDone, self.wafer_data()));
                }
                out
            }
            RunEvent::Suspended { cause } => {
                let data = run(self).with(dv::SUSPEND_CAUSE, Item::ascii(cause.as_str()));
                vec![(CollectionEvent::RunSuspended, data)]
            }
            RunEvent::Resumed { after_ms } => {
                let data = run(self).with(dv::SUSPENDED_MS, Item::u8(*after_ms));
                vec![(CollectionEvent::RunResumed, data)]
            }
            RunEvent::Repeaters { marks } => {
                // Reported with the run's end; no event of its own.
                self.repeater_defects = u32::try_from(marks.len()).unwrap_or(u32::MAX);
                Vec::new()
            }
            RunEvent::Ended { status, reason } => {
                let data = self
                    .wafer_data()
                    .with(dv::RUN_END_STATUS, Item::ascii(status.name()))
                    .with(dv::RUN_END_REASON, Item::ascii(reason.as_str()))
                    .with(dv::REPEATER_DEFECTS, Item::u4(self.repeater_defects));
                vec![(CollectionEvent::RunEnded, data)]
            }
        }
    }

    fn wafer_data(&self) -> EventData {
        EventData::new()
            .with(dv::RUN_ID, Item::u8(self.run_id))
            .with(dv::DIES_DONE, Item::u4(self.dies_done))
            .with(dv::DIES_TOTAL, Item::u4(self.dies_total))
            .with(dv::WAFER_DEFECTS, Item::u4(self.wafer_defects))
    }
}

fn state_item(state: RunState) -> Item {
    Item::ascii(state.label())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::result::{Defect, DieResult};
    use crate::run::ExitStatus;
    use std::collections::HashSet;

    fn die(index: u32, classes: &[DefectClass], dropped: u32) -> Box<DieResult> {
        let mut r = DieResult {
            die_index: index,
            count: classes.len() as u16,
            dropped,
            ..DieResult::default()
        };
        for (slot, class) in r.defects.iter_mut().zip(classes) {
            *slot = Defect {
                class: *class,
                ..Defect::default()
            };
        }
        Box::new(r)
    }

    fn u(data: &EventData, dvid: u32) -> u64 {
        data.get(dvid)
            .and_then(Item::as_u64)
            .unwrap_or_else(|| panic!("DV {dvid} missing or not a number in {data:?}"))
    }

    #[test]
    fn tables_are_complete_unique_and_in_range() {
        assert_eq!(EVENTS.len(), ALL_EVENTS.len());
        for (e, info) in ALL_EVENTS.iter().zip(collection_events()) {
            assert_eq!(e.ceid(), info.ceid, "{e:?}");
            assert_eq!(e.info().ceid, e.ceid());
            assert_eq!(CollectionEvent::from_ceid(e.ceid()), Some(*e));
            assert!((4000..=4999).contains(&info.ceid));
            for dvid in info.dvids {
                assert!(is_dvid(*dvid), "{} lists unknown DV {dvid}", info.name);
            }
        }
        let ceids: HashSet<_> = ALL_EVENTS.iter().map(|e| e.ceid()).collect();
        assert_eq!(ceids.len(), ALL_EVENTS.len());
        let dvids: Vec<_> = data_variables().iter().map(|v| v.id).collect();
        assert_eq!(dvids.iter().collect::<HashSet<_>>().len(), dvids.len());
        assert!(dvids.iter().all(|id| (3000..=3999).contains(id)));
        assert!(dvids.contains(&dv::EC_ID_CHANGED));
        assert_eq!(CollectionEvent::from_ceid(4000), None);
        assert!(!is_dvid(1001));
    }

    /// Every DV an event carries is one its table entry lists, in the
    /// format the table says: the docs cannot drift from the reports.
    fn check_against_table(event: CollectionEvent, data: &EventData) {
        let info = event.info();
        for (dvid, value) in data.iter() {
            assert!(
                info.dvids.contains(&dvid),
                "{} carries DV {dvid} its table entry does not list",
                info.name
            );
            let var = data_variables().iter().find(|v| v.id == dvid).unwrap();
            assert_eq!(value.format(), var.format, "{}", var.name);
        }
        for dvid in info.dvids {
            assert!(data.get(*dvid).is_some(), "{} lacks DV {dvid}", info.name);
        }
    }

    #[test]
    fn a_run_maps_to_events_with_running_sums() {
        use DefectClass::*;
        let mut m = RunEventMapper::new();
        let mut all = Vec::new();
        let events = [
            RunEvent::Started {
                run_id: 42,
                dies: 2,
            },
            RunEvent::StateChanged {
                from: RunState::Ready,
                to: RunState::Running,
            },
            RunEvent::DieDone {
                result: die(7, &[Particle, Scratch, Particle], 2),
                done: 1,
                total: 2,
            },
            RunEvent::Suspended {
                cause: "stage heartbeat lost".into(),
            },
            RunEvent::Resumed { after_ms: 1500 },
            RunEvent::DieDone {
                result: die(9, &[Residue], 0),
                done: 2,
                total: 2,
            },
            RunEvent::Repeaters {
                marks: (0..3)
                    .map(|n| crate::store::record::RepeaterMark {
                        die_index: n,
                        defect_no: 1,
                        dies: 2,
                    })
                    .collect(),
            },
            RunEvent::Ended {
                status: ExitStatus::Complete,
                reason: "all dies inspected".into(),
            },
        ];
        for e in &events {
            all.extend(m.map(e));
        }
        let kinds: Vec<_> = all.iter().map(|(e, _)| *e).collect();
        use CollectionEvent as C;
        assert_eq!(
            kinds,
            [
                C::RunStarted,
                C::RunStateChanged,
                C::DieDone,
                C::RunSuspended,
                C::RunResumed,
                C::DieDone,
                C::WaferDone,
                C::RunEnded
            ]
        );
        for (e, d) in &all {
            check_against_table(*e, d);
            assert_eq!(u(d, dv::RUN_ID), 42, "{e:?}");
        }
        let first_die = &all[2].1;
        assert_eq!(u(first_die, dv::DIE_INDEX), 7);
        assert_eq!(u(first_die, dv::DIE_DEFECTS), 5);
        assert_eq!(u(first_die, dv::DIE_PARTICLES), 2);
        assert_eq!(u(first_die, dv::DIE_SCRATCHES), 1);
        assert_eq!(u(first_die, dv::DIE_UNKNOWN_DEFECTS), 2);
        assert_eq!(u(first_die, dv::WAFER_DEFECTS), 5);
        assert_eq!(
            all[1].1.get(dv::RUN_STATE).and_then(Item::as_ascii),
            Some("RUNNING")
        );
        assert_eq!(u(&all[4].1, dv::SUSPENDED_MS), 1500);
        let wafer = &all[6].1;
        assert_eq!(u(wafer, dv::WAFER_DEFECTS), 6);
        assert_eq!(u(wafer, dv::DIES_DONE), 2);
        let end = &all[7].1;
        assert_eq!(u(end, dv::WAFER_DEFECTS), 6);
        assert_eq!(u(end, dv::REPEATER_DEFECTS), 3);
        assert_eq!(
            end.get(dv::RUN_END_STATUS).and_then(Item::as_ascii),
            Some("complete")
        );
        assert_eq!(
            end.get(dv::RUN_END_REASON).and_then(Item::as_ascii),
            Some("all dies inspected")
        );
    }

    #[test]
    fn an_aborted_run_has_no_wafer_done_and_a_new_run_starts_from_zero() {
        let mut m = RunEventMapper::new();
        m.map(&RunEvent::Started { run_id: 1, dies: 3 });
        m.map(&RunEvent::DieDone {
            result: die(0, &[DefectClass::Pattern], 0),
            done: 1,
            total: 3,
        });
        let end = m.map(&RunEvent::Ended {
            status: ExitStatus::Aborted,
            reason: "operator abort".into(),
        });
        assert_eq!(end.len(), 1);
        assert_eq!(end[0].0, CollectionEvent::RunEnded);
        assert_eq!(u(&end[0].1, dv::DIES_DONE), 1);
        assert_eq!(u(&end[0].1, dv::WAFER_DEFECTS), 1);

        m.map(&RunEvent::Started { run_id: 2, dies: 1 });
        let out = m.map(&RunEvent::DieDone {
            result: die(0, &[], 0),
            done: 1,
            total: 1,
        });
        assert_eq!(out.len(), 2);
        assert_eq!(u(&out[1].1, dv::WAFER_DEFECTS), 0);
        assert_eq!(u(&out[1].1, dv::RUN_ID), 2);
        assert_eq!(
            out[0].1.get(dv::DIE_NOT_INSPECTED).and_then(Item::as_bool),
            Some(false)
        );
    }

    #[test]
    fn other_constructors_match_the_table() {
        for (e, d) in [
            alarm_event(1001, true, "Stage heartbeat stale"),
            alarm_event(1001, false, "Stage heartbeat stale"),
            control_state_event(ControlStateReached::OnlineRemote),
            process_program_event("INS-200", PpChange::Deleted),
            operator_ec_change_event(2001),
            message_recognition_event(),
        ] {
            check_against_table(e, &d);
        }
        assert_eq!(alarm_event(5, false, "x").0, CollectionEvent::AlarmCleared);
        let (_, pp) = process_program_event("A", PpChange::Edited);
        assert_eq!(pp.get(dv::PP_CHANGE_STATUS), Some(&Item::u1(2)));
    }

    /// docs/gem.md lists every CEID and DVID with its name (and format):
    /// the compliance statement cannot drift from the code.
    #[test]
    fn docs_list_every_event_and_data_variable() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/gem.md");
        let docs = std::fs::read_to_string(path).unwrap();
        for e in collection_events() {
            let row = format!("| {} | {} |", e.ceid, e.name);
            assert!(docs.contains(&row), "docs/gem.md lacks {row}");
        }
        for v in data_variables() {
            let format = match v.format {
                Format::Ascii => "A",
                Format::Boolean => "BOOLEAN",
                Format::U1 => "U1",
                Format::U4 => "U4",
                Format::U8 => "U8",
                other => panic!("{}: document the format {other:?}", v.name),
            };
            let row = format!("| {} | {} | {format} |", v.id, v.name);
            assert!(docs.contains(&row), "docs/gem.md lacks {row}");
        }
    }

    #[test]
    fn event_data_set_replaces() {
        let mut d = EventData::new().with(dv::RUN_ID, Item::u8(1));
        d.set(dv::RUN_ID, Item::u8(2));
        assert_eq!(d.iter().count(), 1);
        assert_eq!(d.get(dv::RUN_ID), Some(&Item::u8(2)));
        assert_eq!(d.get(dv::DIE_INDEX), None);
    }
}
