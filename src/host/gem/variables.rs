//! Status variables (E30 §4.5): S1F3/4 and S1F11/12, and the
//! [`VariableSource`] the rest of GEM (reports, trace) reads them through.
//!
//! Values come from the station's latest-state caches (run snapshot,
//! monitor snapshot, alarm snapshot) and from GEM's own state (control and
//! communication state, the clock offset, the wafer count), which the GEM
//! task keeps in atomics. Reading locks one reader at a time (a plain
//! mutex: uncontended it is an atomic swap) and copies a snapshot:
//! `value()` allocates nothing, so the trace sampler can call it at 100 Hz.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::host::secs2::Item;
use crate::hot::{now_ns, LatestReader};
use crate::machine::{Signal, Subsystem};
use crate::monitor::{AlarmDef, AlarmSnapshot, MachineSnapshot};
use crate::run::{RunSnapshot, RunState};

use super::clock::{format_time, ClockOffset};
use super::{IllegalData, VariableSource, VariableValue};

pub const SV_CLOCK: u32 = 1001;
pub const SV_CONTROL_STATE: u32 = 1002;
pub const SV_COMMUNICATION_STATE: u32 = 1003;
pub const SV_PROCESS_STATE: u32 = 1010;
pub const SV_RUN_STATE: u32 = 1011;
pub const SV_RUN_ID: u32 = 1020;
pub const SV_LOT_ID: u32 = 1021;
pub const SV_WAFER_ID: u32 = 1022;
pub const SV_RECIPE_ID: u32 = 1023;
pub const SV_DIES_DONE: u32 = 1024;
pub const SV_DIES_TOTAL: u32 = 1025;
pub const SV_DEFECTS: u32 = 1026;
pub const SV_WAFER_COUNT: u32 = 1027;
pub const SV_VACUUM: u32 = 1030;
pub const SV_VACUUM_QUALITY: u32 = 1031;
pub const SV_ALARMS_ACTIVE: u32 = 1040;
/// Heartbeat health of the subsystems, `SV_HEARTBEAT_BASE + index` in the
/// order of `machine::SUBSYSTEMS`.
pub const SV_HEARTBEAT_BASE: u32 = 1050;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sv {
    Clock,
    ControlState,
    CommunicationState,
    ProcessState,
    RunState,
    RunId,
    LotId,
    WaferId,
    RecipeId,
    DiesDone,
    DiesTotal,
    Defects,
    WaferCount,
    Vacuum,
    VacuumQuality,
    AlarmsActive,
    Heartbeat(Subsystem),
}

/// One status variable as S1F11/12 and docs/gem.md describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SvDef {
    pub id: u32,
    pub name: &'static str,
    pub units: &'static str,
    /// The SECS-II format it is sent as (for docs/gem.md).
    pub format: &'static str,
    kind: Sv,
}

const fn sv(
    id: u32,
    name: &'static str,
    units: &'static str,
    format: &'static str,
    kind: Sv,
) -> SvDef {
    SvDef {
        id,
        name,
        units,
        format,
        kind,
    }
}

/// Every status variable, in SVID order (S1F3 with an empty list answers
/// in this order).
pub const SVS: [SvDef; 21] = [
    sv(SV_CLOCK, "Clock", "", "A", Sv::Clock),
    sv(SV_CONTROL_STATE, "ControlState", "", "U4", Sv::ControlState),
    sv(
        SV_COMMUNICATION_STATE,
        "CommunicationState",
        "",
        "U4",
        Sv::CommunicationState,
    ),
    sv(SV_PROCESS_STATE, "ProcessState", "", "U4", Sv::ProcessState),
    sv(SV_RUN_STATE, "RunState", "", "A", Sv::RunState),
    sv(SV_RUN_ID, "RunId", "", "U8", Sv::RunId),
    sv(SV_LOT_ID, "LotId", "", "A", Sv::LotId),
    sv(SV_WAFER_ID, "WaferId", "", "A", Sv::WaferId),
    sv(SV_RECIPE_ID, "RecipeId", "", "A", Sv::RecipeId),
    sv(SV_DIES_DONE, "DiesDone", "dies", "U4", Sv::DiesDone),
    sv(SV_DIES_TOTAL, "DiesTotal", "dies", "U4", Sv::DiesTotal),
    sv(SV_DEFECTS, "Defects", "defects", "U4", Sv::Defects),
    sv(SV_WAFER_COUNT, "WaferCount", "wafers", "U4", Sv::WaferCount),
    sv(SV_VACUUM, "ChuckVacuum", "kPa", "F8", Sv::Vacuum),
    sv(
        SV_VACUUM_QUALITY,
        "ChuckVacuumQuality",
        "",
        "A",
        Sv::VacuumQuality,
    ),
    sv(
        SV_ALARMS_ACTIVE,
        "AlarmsActive",
        "alarms",
        "U4",
        Sv::AlarmsActive,
    ),
    sv(
        SV_HEARTBEAT_BASE,
        "StageHealthy",
        "",
        "BOOLEAN",
        Sv::Heartbeat(Subsystem::Stage),
    ),
    sv(
        SV_HEARTBEAT_BASE + 1,
        "IlluminationHealthy",
        "",
        "BOOLEAN",
        Sv::Heartbeat(Subsystem::Illumination),
    ),
    sv(
        SV_HEARTBEAT_BASE + 2,
        "VacuumHealthy",
        "",
        "BOOLEAN",
        Sv::Heartbeat(Subsystem::Vacuum),
    ),
    sv(
        SV_HEARTBEAT_BASE + 3,
        "CameraHealthy",
        "",
        "BOOLEAN",
        Sv::Heartbeat(Subsystem::Camera),
    ),
    sv(
        SV_HEARTBEAT_BASE + 4,
        "EncoderHealthy",
        "",
        "BOOLEAN",
        Sv::Heartbeat(Subsystem::Encoder),
    ),
];

/// The ProcessState status variable: the run state as a number, in the
/// order of `RunState::ALL` from 1 (docs/gem.md has the table).
pub fn process_state_code(s: RunState) -> u32 {
    RunState::ALL
        .iter()
        .position(|x| *x == s)
        .map_or(0, |i| i as u32 + 1)
}

/// GEM's own state that status variables show, written by the GEM task and
/// read from any thread.
#[derive(Debug, Default)]
pub struct GemStatus {
    /// `ControlState::code()`.
    pub control: AtomicU32,
    /// `CommState::code()`.
    pub communication: AtomicU32,
    /// Wafers completed since the station started.
    pub wafer_count: AtomicU32,
    /// The TimeFormat equipment constant.
    pub time_format: AtomicU32,
    pub clock: ClockOffset,
    /// `hot::now_ns` at the GEM task's latest pass of its 50 ms tick: a
    /// task that has stopped shows as a growing age (status strip,
    /// metrics), not as frozen states that look current.
    pub alive_ns: std::sync::atomic::AtomicU64,
}

/// The station's status variables.
pub struct StationVariables {
    run: Mutex<LatestReader<RunSnapshot>>,
    machine: Mutex<LatestReader<MachineSnapshot>>,
    alarms: Mutex<LatestReader<AlarmSnapshot>>,
    alarm_defs: Arc<[AlarmDef]>,
    pub status: Arc<GemStatus>,
}

impl StationVariables {
    pub fn new(
        run: LatestReader<RunSnapshot>,
        machine: LatestReader<MachineSnapshot>,
        alarms: LatestReader<AlarmSnapshot>,
        alarm_defs: Arc<[AlarmDef]>,
        status: Arc<GemStatus>,
    ) -> StationVariables {
        StationVariables {
            run: Mutex::new(run),
            machine: Mutex::new(machine),
            alarms: Mutex::new(alarms),
            alarm_defs,
            status,
        }
    }

    fn run(&self) -> RunSnapshot {
        self.run
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .read()
            .value
    }

    /// The machine as a reader must take it now (LOST once out of date).
    fn machine(&self) -> MachineSnapshot {
        let m = self
            .machine
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .read()
            .value;
        m.as_seen_at(now_ns())
    }

    fn alarms(&self) -> AlarmSnapshot {
        let a = self
            .alarms
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .read()
            .value;
        a.as_seen_at(now_ns(), &self.alarm_defs)
    }
}

impl VariableSource for StationVariables {
    fn value(&self, vid: u32) -> Option<VariableValue> {
        let def = SVS.iter().find(|d| d.id == vid)?;
        let s = &self.status;
        Some(match def.kind {
            Sv::Clock => VariableValue::Text(format_time(
                s.clock.now_unix_ms(),
                s.time_format.load(Ordering::Relaxed),
            )),
            Sv::ControlState => VariableValue::U4(s.control.load(Ordering::Relaxed)),
            Sv::CommunicationState => VariableValue::U4(s.communication.load(Ordering::Relaxed)),
            Sv::WaferCount => VariableValue::U4(s.wafer_count.load(Ordering::Relaxed)),
            Sv::ProcessState => VariableValue::U4(process_state_code(self.run().state)),
            Sv::RunState => VariableValue::text(self.run().state.label()),
            Sv::RunId => VariableValue::U8(self.run().run_id),
            Sv::LotId => VariableValue::text(self.run().lot.as_str()),
            Sv::WaferId => VariableValue::text(self.run().wafer.as_str()),
            Sv::RecipeId => VariableValue::text(self.run().recipe_id.as_str()),
            Sv::DiesDone => VariableValue::U4(self.run().dies_done),
            Sv::DiesTotal => VariableValue::U4(self.run().dies_total),
            Sv::Defects => VariableValue::U4(self.run().defects),
            Sv::Vacuum => VariableValue::F8(self.machine().signal(Signal::ChuckVacuum).value),
            Sv::VacuumQuality => {
                VariableValue::text(self.machine().signal(Signal::ChuckVacuum).quality.name())
            }
            Sv::Heartbeat(sub) => VariableValue::Bool(
                self.machine().heartbeat(sub).quality == crate::monitor::Quality::Live,
            ),
            Sv::AlarmsActive => {
                VariableValue::U4(self.alarms().active.iter().map(|n| u32::from(*n)).sum())
            }
        })
    }

    fn knows(&self, vid: u32) -> bool {
        SVS.iter().any(|d| d.id == vid)
    }
}

fn svids(body: Option<&Item>, what: &str) -> Result<Vec<u32>, IllegalData> {
    let list = body
        .and_then(Item::as_list)
        .ok_or_else(|| IllegalData::new(format!("{what} must be a list of SVIDs")))?;
    if list.is_empty() {
        return Ok(SVS.iter().map(|d| d.id).collect());
    }
    list.iter()
        .map(|i| {
            i.as_u32()
                .ok_or_else(|| IllegalData::new(format!("{what}: an SVID must be an integer")))
        })
        .collect()
}

/// S1F3 `<L[n] <SVID>>` → S1F4 `<L[n] <SV>>`; an empty list asks for all
/// in SVID order; an unknown SVID gets a zero-length item (E5).
pub fn s1f3(body: Option<&Item>, source: &dyn VariableSource) -> Result<Item, IllegalData> {
    let ids = svids(body, "S1F3")?;
    Ok(Item::list(ids.into_iter().map(|id| {
        source
            .value(id)
            .map_or_else(|| Item::list([]), |v| v.to_item())
    })))
}

/// S1F11 `<L[n] <SVID>>` → S1F12 `<L[n] <L[3] SVID SVNAME UNITS>>`; an
/// unknown SVID gets zero-length name and units.
pub fn s1f11(body: Option<&Item>) -> Result<Item, IllegalData> {
    let ids = svids(body, "S1F11")?;
    Ok(Item::list(ids.into_iter().map(|id| {
        let (name, units) = SVS
            .iter()
            .find(|d| d.id == id)
            .map_or(("", ""), |d| (d.name, d.units));
        Item::list([Item::u4(id), Item::ascii(name), Item::ascii(units)])
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::latest_cell;

    struct Fixture {
        run: crate::hot::LatestWriter<RunSnapshot>,
        vars: StationVariables,
    }

    fn fixture() -> Fixture {
        let (run, run_sub) = latest_cell(RunSnapshot::default());
        let (_m, m_sub) = latest_cell(MachineSnapshot::default());
        let (_a, a_sub) = latest_cell(AlarmSnapshot::default());
        let vars = StationVariables::new(
            run_sub.reader().unwrap(),
            m_sub.reader().unwrap(),
            a_sub.reader().unwrap(),
            Arc::from(Vec::new()),
            Arc::new(GemStatus::default()),
        );
        Fixture { run, vars }
    }

    #[test]
    fn every_sv_has_a_value_and_ids_are_unique_and_in_range() {
        let f = fixture();
        for (i, d) in SVS.iter().enumerate() {
            assert!((1000..2000).contains(&d.id));
            assert!(f.vars.value(d.id).is_some(), "{}", d.name);
            assert!(SVS[i + 1..].iter().all(|o| o.id > d.id), "SVS in order");
        }
        assert_eq!(f.vars.value(1999), None);
        assert!(!f.vars.knows(1999));
    }

    #[test]
    fn s1f3_reads_the_run_snapshot_and_answers_unknown_ids_empty() {
        let mut f = fixture();
        f.run.publish(RunSnapshot {
            state: RunState::Running,
            lot: "LOT-7".into(),
            dies_done: 12,
            ..RunSnapshot::default()
        });
        f.vars.status.control.store(5, Ordering::Relaxed);
        let req = Item::list([
            Item::u4(SV_LOT_ID),
            Item::u2(SV_DIES_DONE as u16),
            Item::u4(1999),
            Item::u4(SV_CONTROL_STATE),
            Item::u4(SV_PROCESS_STATE),
        ]);
        let reply = s1f3(Some(&req), &f.vars).unwrap();
        let l = reply.as_list().unwrap();
        assert_eq!(l[0].as_ascii(), Some("LOT-7"));
        assert_eq!(l[1].as_u32(), Some(12));
        assert!(l[2].is_empty());
        assert_eq!(l[3].as_u32(), Some(5));
        assert_eq!(l[4].as_u32(), Some(process_state_code(RunState::Running)));
        let all = s1f3(Some(&Item::empty_list()), &f.vars).unwrap();
        assert_eq!(all.as_list().unwrap().len(), SVS.len());
        assert!(s1f3(Some(&Item::u4(1)), &f.vars).is_err());
        assert!(s1f3(Some(&Item::list([Item::ascii("x")])), &f.vars).is_err());
        let names = s1f11(Some(&Item::list([Item::u4(SV_CLOCK), Item::u4(7)]))).unwrap();
        let l = names.as_list().unwrap();
        assert_eq!(l[0].as_list().unwrap()[1].as_ascii(), Some("Clock"));
        assert!(l[1].as_list().unwrap()[1].is_empty());
    }

    #[test]
    fn docs_gem_md_lists_every_status_variable() {
        let doc = include_str!("../../../docs/gem.md");
        for d in SVS {
            let units = if d.units.is_empty() {
                String::new()
            } else {
                format!("{} ", d.units)
            };
            let row = format!("| {} | {} | {} | {units}|", d.id, d.name, d.format);
            assert!(doc.contains(&row), "docs/gem.md lacks `{row}`");
        }
    }
}
