//! Equipment constants (E30 §4.6): S2F13/14 (get), S2F15/16 (set, with
//! EAC), S2F29/30 (namelist). The HSMS timers are here so the fab can tune
//! them from the host; a timer change takes effect at the next connection
//! (the GEM task restarts the session when it has none), never in the
//! middle of a transaction. Values are persisted with the control switches.

use std::time::Duration;

use crate::host::hsms::HsmsTimers;
use crate::host::secs2::Item;

use super::{IllegalData, VariableValue};

pub const EC_ESTABLISH_COMM_TIMEOUT: u32 = 2001;
pub const EC_TIME_FORMAT: u32 = 2002;
pub const EC_T3: u32 = 2003;
pub const EC_T5: u32 = 2004;
pub const EC_T6: u32 = 2005;
pub const EC_T7: u32 = 2006;
pub const EC_T8: u32 = 2007;

/// EAC (S2F16).
pub const EAC_OK: u8 = 0;
pub const EAC_NO_SUCH_CONSTANT: u8 = 1;
pub const EAC_OUT_OF_RANGE: u8 = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EcKind {
    /// Whole numbers, sent as U4.
    U4,
    /// Seconds with a fraction, sent as F8 (the HSMS timers: tests and
    /// fast networks want them below a second).
    F8,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EcDef {
    pub id: u32,
    pub name: &'static str,
    pub units: &'static str,
    pub kind: EcKind,
    pub min: f64,
    pub max: f64,
    pub default: f64,
}

/// Every equipment constant, in ECID order (S2F13/S2F29 with an empty list
/// answer in this order). Ranges: E30's for EstablishCommunicationsTimeout
/// and TimeFormat; E37's suggested ranges for the timers, with a lower
/// bound of 0.1 s so tests can shrink them.
pub const ECS: [EcDef; 7] = [
    EcDef {
        id: EC_ESTABLISH_COMM_TIMEOUT,
        name: "EstablishCommunicationsTimeout",
        units: "s",
        kind: EcKind::U4,
        min: 1.0,
        max: 120.0,
        default: 10.0,
    },
    EcDef {
        id: EC_TIME_FORMAT,
        name: "TimeFormat",
        units: "",
        kind: EcKind::U4,
        min: 0.0,
        max: 2.0,
        default: 1.0,
    },
    EcDef {
        id: EC_T3,
        name: "T3ReplyTimeout",
        units: "s",
        kind: EcKind::F8,
        min: 0.1,
        max: 120.0,
        default: 45.0,
    },
    EcDef {
        id: EC_T5,
        name: "T5ConnectSeparationTimeout",
        units: "s",
        kind: EcKind::F8,
        min: 0.1,
        max: 240.0,
        default: 10.0,
    },
    EcDef {
        id: EC_T6,
        name: "T6ControlTransactionTimeout",
        units: "s",
        kind: EcKind::F8,
        min: 0.1,
        max: 240.0,
        default: 5.0,
    },
    EcDef {
        id: EC_T7,
        name: "T7NotSelectedTimeout",
        units: "s",
        kind: EcKind::F8,
        min: 0.1,
        max: 240.0,
        default: 10.0,
    },
    EcDef {
        id: EC_T8,
        name: "T8NetworkIntercharacterTimeout",
        units: "s",
        kind: EcKind::F8,
        min: 0.1,
        max: 120.0,
        default: 5.0,
    },
];

fn def(id: u32) -> Option<(usize, &'static EcDef)> {
    ECS.iter().enumerate().find(|(_, d)| d.id == id)
}

/// The current values, one per entry of [`ECS`].
#[derive(Debug, Clone, PartialEq)]
pub struct EquipmentConstants {
    values: [f64; ECS.len()],
}

impl Default for EquipmentConstants {
    fn default() -> Self {
        EquipmentConstants {
            values: ECS.map(|d| d.default),
        }
    }
}

impl EquipmentConstants {
    pub fn get(&self, id: u32) -> Option<f64> {
        def(id).map(|(i, _)| self.values[i])
    }

    pub fn value(&self, id: u32) -> Option<VariableValue> {
        let (i, d) = def(id)?;
        Some(as_value(d, self.values[i]))
    }

    /// Sets one constant after checking its range (for restoring persisted
    /// values: an out-of-range one is refused with the reason).
    pub fn set(&mut self, id: u32, value: f64) -> Result<(), String> {
        let (i, d) = def(id).ok_or_else(|| format!("no equipment constant {id}"))?;
        check(d, value)?;
        self.values[i] = value;
        Ok(())
    }

    /// Every (id, value), for persisting.
    pub fn all(&self) -> impl Iterator<Item = (u32, f64)> + '_ {
        ECS.iter().zip(self.values).map(|(d, v)| (d.id, v))
    }

    pub fn time_format(&self) -> u32 {
        self.values[def(EC_TIME_FORMAT).map_or(0, |(i, _)| i)] as u32
    }

    pub fn establish_timeout(&self) -> Duration {
        self.seconds(EC_ESTABLISH_COMM_TIMEOUT)
    }

    fn seconds(&self, id: u32) -> Duration {
        Duration::from_secs_f64(self.get(id).unwrap_or(1.0))
    }

    pub fn timers(&self) -> HsmsTimers {
        HsmsTimers {
            t3: self.seconds(EC_T3),
            t5: self.seconds(EC_T5),
            t6: self.seconds(EC_T6),
            t7: self.seconds(EC_T7),
            t8: self.seconds(EC_T8),
        }
    }
}

fn as_value(d: &EcDef, v: f64) -> VariableValue {
    match d.kind {
        EcKind::U4 => VariableValue::U4(v as u32),
        EcKind::F8 => VariableValue::F8(v),
    }
}

fn check(d: &EcDef, v: f64) -> Result<(), String> {
    if !(d.min..=d.max).contains(&v) || (d.kind == EcKind::U4 && v.fract() != 0.0) {
        return Err(format!(
            "{} ({}) must be {}{} to {}, got {v}",
            d.name,
            d.id,
            if d.kind == EcKind::U4 {
                "a whole number from "
            } else {
                ""
            },
            d.min,
            d.max
        ));
    }
    Ok(())
}

/// The ids of an `<L[n] <ECID>...>` request; empty means all.
fn ids(body: Option<&Item>, what: &str) -> Result<Vec<u32>, IllegalData> {
    let list = body
        .and_then(Item::as_list)
        .ok_or_else(|| IllegalData::new(format!("{what} must be a list of ECIDs")))?;
    if list.is_empty() {
        return Ok(ECS.iter().map(|d| d.id).collect());
    }
    list.iter()
        .map(|i| {
            i.as_u32()
                .ok_or_else(|| IllegalData::new(format!("{what}: an ECID must be an integer")))
        })
        .collect()
}

/// S2F13 `<L[n] <ECID>>` → S2F14 `<L[n] <ECV>>`; an unknown ECID gets a
/// zero-length item (E5).
pub fn s2f13(body: Option<&Item>, ecs: &EquipmentConstants) -> Result<Item, IllegalData> {
    let ids = ids(body, "S2F13")?;
    Ok(Item::list(ids.into_iter().map(|id| {
        ecs.value(id)
            .map_or_else(|| Item::list([]), |v| v.to_item())
    })))
}

/// Any number as f64 (hosts send ECVs in the format they like).
fn number(item: &Item) -> Option<f64> {
    item.as_f64().or_else(|| item.as_i64().map(|v| v as f64))
}

/// S2F15 `<L[n] <L[2] <ECID> <ECV>>>` → S2F16 `<B EAC>`. All or nothing:
/// one unknown id or out-of-range value and nothing is changed.
pub fn s2f15(body: Option<&Item>, ecs: &mut EquipmentConstants) -> Result<Item, IllegalData> {
    let bad = || IllegalData::new("S2F15 must be <L[n] <L[2] <ECID> <ECV>>>");
    let list = body.and_then(Item::as_list).ok_or_else(bad)?;
    let mut changes = Vec::with_capacity(list.len());
    let (mut unknown, mut out_of_range) = (false, false);
    for pair in list {
        let [id, value] = pair.as_list().ok_or_else(bad)? else {
            return Err(bad());
        };
        let id = id.as_u32().ok_or_else(bad)?;
        match (def(id), number(value)) {
            (None, _) => unknown = true,
            (Some((_, d)), Some(v)) if check(d, v).is_ok() => changes.push((id, v)),
            (Some(_), _) => out_of_range = true,
        }
    }
    // With several refusals the unknown constant is named first: it says
    // more than a range.
    let eac = if unknown {
        EAC_NO_SUCH_CONSTANT
    } else if out_of_range {
        EAC_OUT_OF_RANGE
    } else {
        for (id, v) in changes {
            ecs.set(id, v).map_err(IllegalData::new)?;
        }
        EAC_OK
    };
    Ok(Item::binary_byte(eac))
}

/// S2F29 `<L[n] <ECID>>` → S2F30 `<L[n] <L[6] ECID ECNAME ECMIN ECMAX
/// ECDEF UNITS>>`; an unknown ECID gets zero-length items after its id.
pub fn s2f29(body: Option<&Item>) -> Result<Item, IllegalData> {
    let ids = ids(body, "S2F29")?;
    Ok(Item::list(ids.into_iter().map(|id| match def(id) {
        Some((_, d)) => Item::list([
            Item::u4(id),
            Item::ascii(d.name),
            as_value(d, d.min).to_item(),
            as_value(d, d.max).to_item(),
            as_value(d, d.default).to_item(),
            Item::ascii(d.units),
        ]),
        None => Item::list([
            Item::u4(id),
            Item::ascii(""),
            Item::ascii(""),
            Item::ascii(""),
            Item::ascii(""),
            Item::ascii(""),
        ]),
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(id: u32, v: Item) -> Item {
        Item::list([Item::u4(id), v])
    }

    #[test]
    fn get_set_and_namelist() {
        let mut ecs = EquipmentConstants::default();
        let all = s2f13(Some(&Item::empty_list()), &ecs).unwrap();
        assert_eq!(all.as_list().unwrap().len(), ECS.len());
        let one = s2f13(Some(&Item::list([Item::u4(EC_T3), Item::u4(9)])), &ecs).unwrap();
        assert_eq!(one.as_list().unwrap()[0].as_f64(), Some(45.0));
        assert!(one.as_list().unwrap()[1].is_empty());

        let ok = s2f15(
            Some(&Item::list([
                pair(EC_T3, Item::f8(2.5)),
                pair(EC_ESTABLISH_COMM_TIMEOUT, Item::u2(3)),
            ])),
            &mut ecs,
        )
        .unwrap();
        assert_eq!(ok.as_binary_byte(), Some(EAC_OK));
        assert_eq!(ecs.timers().t3, Duration::from_millis(2500));
        assert_eq!(ecs.establish_timeout(), Duration::from_secs(3));

        // All or nothing.
        let before = ecs.clone();
        let range = s2f15(
            Some(&Item::list([
                pair(EC_T5, Item::f8(1.0)),
                pair(EC_TIME_FORMAT, Item::u4(7)),
            ])),
            &mut ecs,
        )
        .unwrap();
        assert_eq!(range.as_binary_byte(), Some(EAC_OUT_OF_RANGE));
        let whole = s2f15(
            Some(&Item::list([pair(
                EC_ESTABLISH_COMM_TIMEOUT,
                Item::f8(1.5),
            )])),
            &mut ecs,
        )
        .unwrap();
        assert_eq!(whole.as_binary_byte(), Some(EAC_OUT_OF_RANGE));
        let unknown = s2f15(
            Some(&Item::list([
                pair(EC_T5, Item::ascii("x")),
                pair(2999, Item::u4(1)),
            ])),
            &mut ecs,
        )
        .unwrap();
        assert_eq!(unknown.as_binary_byte(), Some(EAC_NO_SUCH_CONSTANT));
        assert_eq!(ecs, before);
        assert!(s2f15(Some(&Item::list([Item::u4(1)])), &mut ecs).is_err());
        assert!(s2f15(None, &mut ecs).is_err());

        let names = s2f29(Some(&Item::list([Item::u4(EC_TIME_FORMAT), Item::u4(5)]))).unwrap();
        let tf = names.as_list().unwrap()[0].as_list().unwrap();
        assert_eq!(tf[1].as_ascii(), Some("TimeFormat"));
        assert_eq!(tf[3].as_u32(), Some(2));
        assert_eq!(tf[4].as_u32(), Some(1));
        let unknown = names.as_list().unwrap()[1].as_list().unwrap();
        assert!(unknown[1].is_empty());
        assert!(s2f29(Some(&Item::u4(1))).is_err());
    }

    #[test]
    fn docs_gem_md_lists_every_equipment_constant() {
        let doc = include_str!("../../../docs/gem.md");
        for d in ECS {
            let format = match d.kind {
                EcKind::U4 => "U4",
                EcKind::F8 => "F8",
            };
            let units = if d.units.is_empty() {
                String::new()
            } else {
                format!("{} ", d.units)
            };
            let row = format!(
                "| {} | {} | {format} | {units}| {} | {} | {} |",
                d.id, d.name, d.min, d.max, d.default
            );
            assert!(doc.contains(&row), "docs/gem.md lacks `{row}`");
        }
    }
}
