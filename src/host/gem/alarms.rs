//! Alarm management (E30 "alarm management", E5 S5F1–S5F8): the ALIDs of
//! `assets/alarms.toml`, their ALCD category, which the host has enabled,
//! and the set/clear edges the station's alarm picture makes.
//!
//! "Set" for the host is the alarm's debounced condition
//! (`AlarmEntry::condition`), not its ISA-18.2 acknowledgement state: a
//! latching alarm whose condition has cleared is cleared for the host (it
//! still waits for the operator's acknowledgement on the station), and
//! shelving on the operator screen does not hide the condition from the
//! host.
//!
//! ALCD = bit 8 (0x80) when set | category in bits 1–7. The alarm file has
//! no category field, so the category follows from what the alarm watches
//! and its priority (documented in docs/gem.md):
//!
//! | alarm kind                         | priority | E5 category               |
//! |------------------------------------|----------|---------------------------|
//! | high/low limit on a signal         | low, med | 3 parameter control warning |
//! | high/low limit on a signal         | high     | 4 parameter control error |
//! | heartbeat stale                    | any      | 6 equipment status warning |
//! | heartbeat lost                     | any      | 5 irrecoverable error      |
//! | invalid reading, monitor stopped, evaluator stopped, software (export failing) | any | 8 data integrity |
//!
//! Categories 1 (personal safety) and 2 (equipment safety) are never
//! claimed: safety is the tool's physical interlocks, and a software
//! monitor saying otherwise would mislead the fab.

use super::events::alarm_event;
use super::events::{CollectionEvent, EventData};
use super::IllegalData;
use crate::host::secs2::Item;
use crate::monitor::alarm_defs::{AlarmDef, Condition, Priority};
use crate::monitor::alarm_engine::AlarmSnapshot;

/// Bit 8 of ALCD: the alarm is set.
pub const ALCD_SET: u8 = 0x80;
/// Longest ALTX E5 allows.
pub const ALTX_MAX: usize = 120;

/// E5 alarm categories (ALCD bits 1–7) this equipment uses.
pub mod category {
    pub const PARAMETER_CONTROL_WARNING: u8 = 3;
    pub const PARAMETER_CONTROL_ERROR: u8 = 4;
    pub const IRRECOVERABLE_ERROR: u8 = 5;
    pub const EQUIPMENT_STATUS_WARNING: u8 = 6;
    pub const DATA_INTEGRITY: u8 = 8;
}

/// ACKC5 (S5F2, S5F4).
pub mod ackc5 {
    pub const ACCEPTED: u8 = 0;
    pub const ERROR: u8 = 1;
}

/// The category of an alarm definition (module docs for the table).
pub fn alarm_category(def: &AlarmDef) -> u8 {
    match def.condition {
        Condition::High { .. } | Condition::Low { .. } => match def.priority {
            Priority::High => category::PARAMETER_CONTROL_ERROR,
            Priority::Medium | Priority::Low => category::PARAMETER_CONTROL_WARNING,
        },
        Condition::Stale { .. } => category::EQUIPMENT_STATUS_WARNING,
        Condition::Lost { .. } => category::IRRECOVERABLE_ERROR,
        // A lot whose defects left the control limits: a process
        // parameter warning, as a limit alarm of medium priority.
        Condition::Software {
            condition: crate::monitor::software::SoftwareCondition::LotExcursion,
        } => category::PARAMETER_CONTROL_WARNING,
        // Results not delivered.
        Condition::Invalid { .. }
        | Condition::MonitorStopped
        | Condition::EvaluatorStopped
        | Condition::Software { .. } => category::DATA_INTEGRITY,
    }
}

/// `text` cut to at most [`ALTX_MAX`] bytes at a character boundary (E5
/// counts ALTX in bytes of an ASCII item).
fn altx(text: &str) -> String {
    let mut end = text.len().min(ALTX_MAX);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[derive(Debug, Clone)]
struct GemAlarm {
    alid: u32,
    category: u8,
    altx: String,
    enabled: bool,
    set: bool,
}

/// One alarm changing state, as the host sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmEdge {
    pub alid: u32,
    /// `true`: the alarm was set; `false`: it cleared.
    pub set: bool,
    pub altx: String,
}

impl AlarmEdge {
    /// The AlarmSet / AlarmCleared collection event of this edge (sent
    /// whatever the alarm's S5 enable state).
    pub fn collection_event(&self) -> (CollectionEvent, EventData) {
        alarm_event(self.alid, self.set, &self.altx)
    }
}

#[derive(Debug, Clone)]
pub struct GemAlarms {
    alarms: Vec<GemAlarm>,
}

impl GemAlarms {
    /// Every alarm of the definitions, enabled for S5F1 and clear.
    /// Enabled by default so a host learns of alarms without asking first
    /// (docs/gem.md); S5F3 disables.
    pub fn new(defs: &[AlarmDef]) -> Self {
        Self {
            alarms: defs
                .iter()
                .map(|d| GemAlarm {
                    alid: d.alid,
                    category: alarm_category(d),
                    altx: altx(&d.text),
                    enabled: true,
                    set: false,
                })
                .collect(),
        }
    }

    fn find(&self, alid: u32) -> Option<&GemAlarm> {
        self.alarms.iter().find(|a| a.alid == alid)
    }

    pub fn alcd(&self, alid: u32) -> Option<u8> {
        self.find(alid)
            .map(|a| a.category | if a.set { ALCD_SET } else { 0 })
    }

    pub fn is_enabled(&self, alid: u32) -> Option<bool> {
        self.find(alid).map(|a| a.enabled)
    }

    fn s5f1_body(a: &GemAlarm) -> Item {
        Item::list([
            Item::binary_byte(a.category | if a.set { ALCD_SET } else { 0 }),
            Item::u4(a.alid),
            Item::ascii(a.altx.as_str()),
        ])
    }

    /// Compares `current` with the picture seen last and returns every
    /// edge, in definition order, each with its S5F1 body
    /// (`L,3 <ALCD> <ALID> <ALTX>`) when the alarm is enabled for the host.
    /// An ALID the definitions do not hold is ignored.
    pub fn edges(&mut self, current: &AlarmSnapshot) -> Vec<(AlarmEdge, Option<Item>)> {
        let mut out = Vec::new();
        for a in &mut self.alarms {
            let now_set = current.entry(a.alid).is_some_and(|e| e.condition);
            if now_set == a.set {
                continue;
            }
            a.set = now_set;
            let edge = AlarmEdge {
                alid: a.alid,
                set: now_set,
                altx: a.altx.clone(),
            };
            let body = a.enabled.then(|| Self::s5f1_body(a));
            out.push((edge, body));
        }
        out
    }

    /// S5F3 enable/disable alarm send → S5F4 ACKC5.
    /// `L,2 <ALED B> <ALID>`; bit 8 of ALED enables, the other bits are
    /// reserved and ignored; a zero-length ALID means every alarm. An
    /// unknown ALID is refused (ACKC5 1) and nothing changes.
    pub fn enable(&mut self, body: &Item) -> Result<Item, IllegalData> {
        let [aled, alid] = body
            .as_list()
            .and_then(|l| <&[Item; 2]>::try_from(l).ok())
            .ok_or_else(|| IllegalData::new("S5F3: expected L,2 <ALED> <ALID>"))?;
        let aled = aled
            .as_binary_byte()
            .ok_or_else(|| IllegalData::new("S5F3 ALED: expected one binary byte"))?;
        let on = aled & 0x80 != 0;
        let ids =
            integers(alid).ok_or_else(|| IllegalData::new("S5F3 ALID: expected an integer"))?;
        match ids.as_slice() {
            [] => self.alarms.iter_mut().for_each(|a| a.enabled = on),
            [one] => match self.alarms.iter_mut().find(|a| u64::from(a.alid) == *one) {
                Some(a) => a.enabled = on,
                None => return Ok(Item::binary_byte(ackc5::ERROR)),
            },
            _ => return Err(IllegalData::new("S5F3 ALID: expected one ALID")),
        }
        Ok(Item::binary_byte(ackc5::ACCEPTED))
    }

    /// S5F5 list alarms request (`<ALID>` vector, zero-length for all) →
    /// S5F6 `L,n { L,3 <ALCD> <ALID> <ALTX> }`; an unknown ALID gets a
    /// zero-length ALCD and ALTX, as E5 allows.
    pub fn list(&self, body: &Item) -> Result<Item, IllegalData> {
        let ids = integers(body).ok_or_else(|| {
            IllegalData::new("S5F5: expected an integer vector of ALIDs (zero-length for all)")
        })?;
        if ids.is_empty() {
            return Ok(Item::list(self.alarms.iter().map(Self::s5f1_body)));
        }
        Ok(Item::list(ids.iter().map(|id| {
            match self.alarms.iter().find(|a| u64::from(a.alid) == *id) {
                Some(a) => Self::s5f1_body(a),
                None => Item::list([Item::binary(Vec::new()), unknown_id(*id), Item::ascii("")]),
            }
        })))
    }

    /// S5F7 list enabled alarms request (header only) → S5F8, as S5F6.
    pub fn list_enabled(&self) -> Item {
        Item::list(
            self.alarms
                .iter()
                .filter(|a| a.enabled)
                .map(Self::s5f1_body),
        )
    }
}

/// An ALID the host asked about, echoed in the width it fits.
fn unknown_id(id: u64) -> Item {
    u32::try_from(id).map_or_else(|_| Item::u8(id), Item::u4)
}

/// The values of an integer item of any width (E5 lets the host pick),
/// or an empty list as "none"; `None` for any other format or a negative
/// value.
fn integers(item: &Item) -> Option<Vec<u64>> {
    fn all<T: Copy + TryInto<u64>>(v: &[T]) -> Option<Vec<u64>> {
        v.iter().map(|x| (*x).try_into().ok()).collect()
    }
    match item {
        Item::U1(v) => all(v),
        Item::U2(v) => all(v),
        Item::U4(v) => all(v),
        Item::U8(v) => all(v),
        Item::I1(v) => all(v),
        Item::I2(v) => all(v),
        Item::I4(v) => all(v),
        Item::I8(v) => all(v),
        Item::List(v) if v.is_empty() => Some(Vec::new()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::monitor::alarm_defs::parse;
    use crate::monitor::alarm_engine::AlarmEntry;

    fn defs() -> Vec<AlarmDef> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/assets/alarms.toml");
        crate::monitor::alarm_defs::load(std::path::Path::new(path)).unwrap()
    }

    fn snapshot(active: &[(u32, bool)]) -> AlarmSnapshot {
        let mut s = AlarmSnapshot::default();
        for (i, (alid, condition)) in active.iter().enumerate() {
            s.entries[i] = AlarmEntry {
                alid: *alid,
                condition: *condition,
                ..AlarmEntry::default()
            };
        }
        s.count = active.len() as u16;
        s
    }

    fn ackc5(item: Item) -> u8 {
        item.as_binary_byte().unwrap()
    }

    #[test]
    fn categories_follow_kind_and_priority() {
        let text = r#"
[[alarm]]
alid = 1
name = "a"
kind = "high"
signal = "stage.following_error"
limit = 10.0
priority = "high"
text = "t"
guidance = "g"
[[alarm]]
alid = 2
name = "b"
kind = "high"
signal = "camera.temperature"
limit = 50.0
priority = "low"
text = "t"
guidance = "g"
[[alarm]]
alid = 3
name = "c"
kind = "stale"
subsystem = "stage"
priority = "high"
text = "t"
guidance = "g"
[[alarm]]
alid = 4
name = "d"
kind = "lost"
subsystem = "stage"
priority = "medium"
text = "t"
guidance = "g"
[[alarm]]
alid = 5
name = "e"
kind = "invalid"
signal = "camera.temperature"
priority = "low"
text = "t"
guidance = "g"
[[alarm]]
alid = 6
name = "f"
kind = "monitor_stopped"
priority = "high"
text = "t"
guidance = "g"
"#;
        let defs = parse(text).unwrap();
        let got: Vec<u8> = defs.iter().map(alarm_category).collect();
        assert_eq!(got, [4, 3, 6, 5, 8, 8]);
        let g = GemAlarms::new(&defs);
        assert_eq!(g.alcd(1), Some(4));
        assert_eq!(g.alcd(99), None);
    }

    #[test]
    fn every_shipped_alarm_has_a_category_and_a_short_altx() {
        let defs = defs();
        let g = GemAlarms::new(&defs);
        for d in &defs {
            let alcd = g.alcd(d.alid).unwrap();
            assert!((1..=8).contains(&alcd), "{}", d.alid);
            assert!(
                ![1, 2].contains(&alcd),
                "{}: safety is never claimed",
                d.alid
            );
        }
        assert!(g.alarms.iter().all(|a| a.altx.len() <= ALTX_MAX));
        assert_eq!(altx(&"é".repeat(100)).len(), ALTX_MAX);
        assert_eq!(altx("short"), "short");
    }

    /// docs/gem.md lists every shipped ALID with the ALCD it is sent with.
    #[test]
    fn docs_list_every_alarm_with_its_alcd() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/gem.md");
        let docs = std::fs::read_to_string(path).unwrap();
        for d in defs() {
            let c = alarm_category(&d);
            let row = format!("| {} | {} |", d.alid, d.name);
            let alcd = format!("| 0x{:02X} / 0x{c:02X} |", ALCD_SET | c);
            let line = docs.lines().find(|l| l.starts_with(&row));
            assert!(
                line.is_some_and(|l| l.ends_with(&alcd)),
                "docs/gem.md: {row} ... {alcd}, found {line:?}"
            );
        }
    }

    #[test]
    fn edges_on_set_and_clear_with_s5f1_only_when_enabled() {
        let defs = defs();
        let mut g = GemAlarms::new(&defs);
        let (a, b) = (defs[0].alid, defs[1].alid);
        let category_a = alarm_category(&defs[0]);

        let e = g.edges(&snapshot(&[(a, true), (b, false)]));
        assert_eq!(e.len(), 1, "b is in the picture but its condition is clear");
        assert_eq!(e[0].0.alid, a);
        assert!(e[0].0.set);
        assert_eq!(
            e[0].1,
            Some(Item::list([
                Item::binary_byte(ALCD_SET | category_a),
                Item::u4(a),
                Item::ascii(altx(&defs[0].text)),
            ]))
        );
        assert_eq!(e[0].0.collection_event().0, CollectionEvent::AlarmSet);
        // Same picture again: no edge.
        assert!(g.edges(&snapshot(&[(a, true), (b, false)])).is_empty());

        // Disable a: its clear edge still comes (for the collection
        // event) but without an S5F1.
        let off = Item::list([Item::binary_byte(0), Item::u4(a)]);
        assert_eq!(ackc5(g.enable(&off).unwrap()), ackc5::ACCEPTED);
        let e = g.edges(&snapshot(&[(b, true), (12345, true)]));
        assert_eq!(e.len(), 2);
        let clear_a = e.iter().find(|(x, _)| x.alid == a).unwrap();
        assert!(!clear_a.0.set);
        assert_eq!(clear_a.1, None);
        assert_eq!(
            clear_a.0.collection_event().0,
            CollectionEvent::AlarmCleared
        );
        let set_b = e.iter().find(|(x, _)| x.alid == b).unwrap();
        assert!(set_b.0.set && set_b.1.is_some());
        assert_eq!(g.alcd(b), Some(ALCD_SET | alarm_category(&defs[1])));
        // Leaving the picture is a clear.
        let e = g.edges(&snapshot(&[]));
        assert_eq!(e.len(), 1);
        assert!(!e[0].0.set);
        let body = e[0].1.as_ref().unwrap();
        assert_eq!(
            body.as_list().unwrap()[0],
            Item::binary_byte(alarm_category(&defs[1]))
        );
    }

    #[test]
    fn s5f3_enable_one_all_unknown_and_malformed() {
        let defs = defs();
        let mut g = GemAlarms::new(&defs);
        let all_off = Item::list([Item::binary_byte(0), Item::U4(vec![])]);
        assert_eq!(ackc5(g.enable(&all_off).unwrap()), 0);
        assert_eq!(g.list_enabled(), Item::empty_list());
        let one_on = Item::list([Item::binary_byte(0x80), Item::u2(defs[2].alid as u16)]);
        assert_eq!(ackc5(g.enable(&one_on).unwrap()), 0);
        assert_eq!(g.list_enabled().len(), 1);
        assert_eq!(g.is_enabled(defs[2].alid), Some(true));
        let unknown = Item::list([Item::binary_byte(0x80), Item::u4(7)]);
        assert_eq!(ackc5(g.enable(&unknown).unwrap()), ackc5::ERROR);
        let all_on = Item::list([Item::binary_byte(0x80), Item::empty_list()]);
        assert_eq!(ackc5(g.enable(&all_on).unwrap()), 0);
        assert_eq!(g.list_enabled().len(), defs.len());
        for bad in [
            Item::u4(1),
            Item::list([Item::binary_byte(0x80)]),
            Item::list([Item::u1(0x80), Item::u4(1)]),
            Item::list([Item::binary_byte(0x80), Item::ascii("1001")]),
            Item::list([Item::binary_byte(0x80), Item::i4(-1)]),
            Item::list([Item::binary_byte(0x80), Item::U4(vec![1001, 1002])]),
        ] {
            assert!(g.enable(&bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn s5f5_lists_all_or_the_asked_ones() {
        let defs = defs();
        let g = GemAlarms::new(&defs);
        let all = g.list(&Item::U4(vec![])).unwrap();
        assert_eq!(all.len(), defs.len());
        let asked = g.list(&Item::U4(vec![defs[1].alid, 999_999])).unwrap();
        let rows = asked.as_list().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].as_list().unwrap()[1], Item::u4(defs[1].alid));
        assert_eq!(
            rows[1],
            Item::list([Item::binary(Vec::new()), Item::u4(999_999), Item::ascii("")])
        );
        assert!(g.list(&Item::ascii("x")).is_err());
        assert_eq!(g.list(&Item::empty_list()).unwrap().len(), defs.len());
    }
}
