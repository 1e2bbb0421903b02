//! Dynamic event reports (E30 "event notification", E5 S2F33–S2F38,
//! S6F11, S6F15/16, S6F19/20): the host defines reports (lists of
//! variables), links them to collection events and enables the events it
//! wants; when an enabled event happens the equipment sends S6F11 with the
//! linked reports' values.
//!
//! Choices (docs/gem.md):
//! - Every collection event starts disabled: a host that has not asked for
//!   events gets none.
//! - A variable is looked up in the event's data (DVs) first, then among
//!   the station's status variables; a DV that has no value for this event
//!   (e.g. `DieIndex` linked to `RunEnded`) is sent as an empty list.
//! - Validation is all-or-nothing: one bad entry refuses the whole
//!   message and nothing changes.
//! - Persistence: definitions, links and enable states serialise with
//!   [`EventReports::to_toml`] / [`EventReports::from_toml`], so the core
//!   can keep them across power-off as E30 asks. This module does no file
//!   I/O itself.

use super::events::{is_dvid, CollectionEvent, EventData, ALL_EVENTS};
use super::{IllegalData, VariableSource};
use crate::host::secs2::Item;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Most reports the equipment keeps (DRACK 1 beyond).
pub const MAX_REPORTS: usize = 256;
/// Most variables in one report (DRACK 1 beyond).
pub const MAX_VIDS_PER_REPORT: usize = 128;
/// Most reports linked to one event (LRACK 1 beyond).
pub const MAX_REPORTS_PER_EVENT: usize = 32;

/// DRACK (S2F34).
pub mod drack {
    pub const OK: u8 = 0;
    pub const NO_SPACE: u8 = 1;
    pub const INVALID_FORMAT: u8 = 2;
    pub const RPTID_ALREADY_DEFINED: u8 = 3;
    pub const VID_UNKNOWN: u8 = 4;
}

/// LRACK (S2F36).
pub mod lrack {
    pub const OK: u8 = 0;
    pub const NO_SPACE: u8 = 1;
    pub const INVALID_FORMAT: u8 = 2;
    pub const CEID_ALREADY_LINKED: u8 = 3;
    pub const CEID_UNKNOWN: u8 = 4;
    pub const RPTID_UNKNOWN: u8 = 5;
}

/// ERACK (S2F38).
pub mod erack {
    pub const OK: u8 = 0;
    pub const CEID_UNKNOWN: u8 = 1;
}

#[derive(Debug, Default)]
pub struct EventReports {
    /// RPTID → VIDs, in the host's order.
    reports: BTreeMap<u32, Vec<u32>>,
    /// CEID → RPTIDs, in the host's order.
    links: BTreeMap<u32, Vec<u32>>,
    enabled: BTreeSet<u32>,
    data_id: u32,
    /// The data of the last occurrence of each event (S6F15).
    last_event: HashMap<u32, EventData>,
    /// The last value of each DV, whatever event carried it (S6F19).
    last_dv: HashMap<u32, Item>,
}

/// An id in a host message: any integer format; anything else is the
/// "invalid format" of DRACK/LRACK 2.
fn id(item: &Item) -> Option<u32> {
    item.as_u32()
}

/// `L,2 <a> <b>`: the two elements, or an IllegalData naming `what`.
fn pair<'a>(item: &'a Item, what: &str) -> Result<(&'a Item, &'a Item), IllegalData> {
    match item.as_list() {
        Some([a, b]) => Ok((a, b)),
        _ => Err(IllegalData::new(format!("{what}: expected a list of 2"))),
    }
}

fn list<'a>(item: &'a Item, what: &str) -> Result<&'a [Item], IllegalData> {
    item.as_list()
        .ok_or_else(|| IllegalData::new(format!("{what}: expected a list")))
}

impl EventReports {
    pub fn new() -> Self {
        Self::default()
    }

    /// S2F33 define report → S2F34 DRACK.
    /// `L,2 <DATAID> L,a { L,2 <RPTID> L,b <VID> }`.
    pub fn define_reports(
        &mut self,
        body: &Item,
        vars: &dyn VariableSource,
    ) -> Result<Item, IllegalData> {
        let (_data_id, defs) = pair(body, "S2F33")?;
        let defs = list(defs, "S2F33 report list")?;
        let mut parsed: Vec<(Option<u32>, Vec<Option<u32>>)> = Vec::with_capacity(defs.len());
        for def in defs {
            let (rptid, vids) = pair(def, "S2F33 report")?;
            let vids = list(vids, "S2F33 VID list")?;
            parsed.push((id(rptid), vids.iter().map(id).collect()));
        }
        Ok(Item::binary_byte(self.apply_definitions(&parsed, vars)))
    }

    fn apply_definitions(
        &mut self,
        parsed: &[(Option<u32>, Vec<Option<u32>>)],
        vars: &dyn VariableSource,
    ) -> u8 {
        if parsed.is_empty() {
            // An empty list deletes every report, and so every link.
            self.reports.clear();
            self.links.clear();
            return drack::OK;
        }
        if parsed
            .iter()
            .any(|(r, vids)| r.is_none() || vids.iter().any(Option::is_none))
        {
            return drack::INVALID_FORMAT;
        }
        let mut seen = BTreeSet::new();
        let mut added = 0usize;
        for (rptid, vids) in parsed {
            let rptid = rptid.unwrap_or_default();
            if !seen.insert(rptid) {
                // Twice in one message: the second is "already defined".
                return drack::RPTID_ALREADY_DEFINED;
            }
            if vids.is_empty() {
                continue;
            }
            if self.reports.contains_key(&rptid) {
                return drack::RPTID_ALREADY_DEFINED;
            }
            if vids.len() > MAX_VIDS_PER_REPORT {
                return drack::NO_SPACE;
            }
            if vids
                .iter()
                .flatten()
                .any(|vid| !is_dvid(*vid) && !vars.knows(*vid))
            {
                return drack::VID_UNKNOWN;
            }
            added += 1;
        }
        let deleted = parsed
            .iter()
            .filter(|(r, v)| v.is_empty() && self.reports.contains_key(&r.unwrap_or_default()))
            .count();
        if self.reports.len() - deleted + added > MAX_REPORTS {
            return drack::NO_SPACE;
        }
        for (rptid, vids) in parsed {
            let rptid = rptid.unwrap_or_default();
            if vids.is_empty() {
                self.delete_report(rptid);
            } else {
                self.reports
                    .insert(rptid, vids.iter().flatten().copied().collect());
            }
        }
        drack::OK
    }

    /// Deletes a report and every link to it (deleting one that is not
    /// defined changes nothing and is not an error).
    fn delete_report(&mut self, rptid: u32) {
        self.reports.remove(&rptid);
        for rptids in self.links.values_mut() {
            rptids.retain(|r| *r != rptid);
        }
        self.links.retain(|_, r| !r.is_empty());
    }

    /// S2F35 link event report → S2F36 LRACK.
    /// `L,2 <DATAID> L,a { L,2 <CEID> L,b <RPTID> }`; an empty RPTID list
    /// unlinks every report from that CEID.
    pub fn link_reports(&mut self, body: &Item) -> Result<Item, IllegalData> {
        let (_data_id, links) = pair(body, "S2F35")?;
        let links = list(links, "S2F35 link list")?;
        let mut parsed: Vec<(Option<u32>, Vec<Option<u32>>)> = Vec::with_capacity(links.len());
        for link in links {
            let (ceid, rptids) = pair(link, "S2F35 link")?;
            let rptids = list(rptids, "S2F35 RPTID list")?;
            parsed.push((id(ceid), rptids.iter().map(id).collect()));
        }
        Ok(Item::binary_byte(self.apply_links(&parsed)))
    }

    fn apply_links(&mut self, parsed: &[(Option<u32>, Vec<Option<u32>>)]) -> u8 {
        if parsed
            .iter()
            .any(|(c, r)| c.is_none() || r.iter().any(Option::is_none))
        {
            return lrack::INVALID_FORMAT;
        }
        let mut seen = BTreeSet::new();
        for (ceid, rptids) in parsed {
            let ceid = ceid.unwrap_or_default();
            if CollectionEvent::from_ceid(ceid).is_none() {
                return lrack::CEID_UNKNOWN;
            }
            if !seen.insert(ceid) {
                return lrack::CEID_ALREADY_LINKED;
            }
            if rptids.is_empty() {
                continue;
            }
            if self.links.contains_key(&ceid) {
                return lrack::CEID_ALREADY_LINKED;
            }
            if rptids
                .iter()
                .flatten()
                .any(|r| !self.reports.contains_key(r))
            {
                return lrack::RPTID_UNKNOWN;
            }
            let unique: BTreeSet<_> = rptids.iter().flatten().collect();
            if unique.len() != rptids.len() {
                // The same report twice on one event: a malformed request.
                return lrack::INVALID_FORMAT;
            }
            if rptids.len() > MAX_REPORTS_PER_EVENT {
                return lrack::NO_SPACE;
            }
        }
        for (ceid, rptids) in parsed {
            let ceid = ceid.unwrap_or_default();
            if rptids.is_empty() {
                self.links.remove(&ceid);
            } else {
                self.links
                    .insert(ceid, rptids.iter().flatten().copied().collect());
            }
        }
        lrack::OK
    }

    /// S2F37 enable/disable event report → S2F38 ERACK.
    /// `L,2 <CEED BOOLEAN> L,n <CEID>`; an empty list means every event.
    pub fn enable_events(&mut self, body: &Item) -> Result<Item, IllegalData> {
        let (ceed, ceids) = pair(body, "S2F37")?;
        let enable = ceed
            .as_bool()
            .ok_or_else(|| IllegalData::new("S2F37 CEED: expected a BOOLEAN"))?;
        let ceids = list(ceids, "S2F37 CEID list")?;
        let mut chosen = Vec::with_capacity(ceids.len());
        for c in ceids {
            match id(c).and_then(CollectionEvent::from_ceid) {
                Some(e) => chosen.push(e.ceid()),
                None => return Ok(Item::binary_byte(erack::CEID_UNKNOWN)),
            }
        }
        if chosen.is_empty() {
            chosen = ALL_EVENTS.iter().map(|e| e.ceid()).collect();
        }
        for ceid in chosen {
            if enable {
                self.enabled.insert(ceid);
            } else {
                self.enabled.remove(&ceid);
            }
        }
        Ok(Item::binary_byte(erack::OK))
    }

    pub fn is_enabled(&self, event: CollectionEvent) -> bool {
        self.enabled.contains(&event.ceid())
    }

    /// An event happened: remembers its data (for S6F15/S6F19) and, when
    /// the event is enabled, returns the S6F11 body
    /// `L,3 <DATAID> <CEID> L,a { L,2 <RPTID> L,b <V> }`.
    pub fn event_report(
        &mut self,
        event: CollectionEvent,
        data: &EventData,
        vars: &dyn VariableSource,
    ) -> Option<Item> {
        let ceid = event.ceid();
        for (dvid, value) in data.iter() {
            self.last_dv.insert(dvid, value.clone());
        }
        self.last_event.insert(ceid, data.clone());
        if !self.enabled.contains(&ceid) {
            return None;
        }
        self.data_id = self.data_id.wrapping_add(1);
        Some(self.report_body(self.data_id, ceid, data, vars))
    }

    fn report_body(
        &self,
        data_id: u32,
        ceid: u32,
        data: &EventData,
        vars: &dyn VariableSource,
    ) -> Item {
        let reports = self.links.get(&ceid).map(Vec::as_slice).unwrap_or(&[]);
        Item::list([
            Item::u4(data_id),
            Item::u4(ceid),
            Item::list(reports.iter().map(|rptid| {
                Item::list([
                    Item::u4(*rptid),
                    self.values(*rptid, |vid| data.get(vid).cloned(), vars),
                ])
            })),
        ])
    }

    /// The values of report `rptid`: each VID from `dv` first, then the
    /// station's variables; a VID with no value now is an empty list.
    fn values(
        &self,
        rptid: u32,
        dv: impl Fn(u32) -> Option<Item>,
        vars: &dyn VariableSource,
    ) -> Item {
        let vids = self.reports.get(&rptid).map(Vec::as_slice).unwrap_or(&[]);
        Item::list(vids.iter().map(|vid| {
            dv(*vid)
                .or_else(|| vars.value(*vid).map(|v| v.to_item()))
                .unwrap_or_else(Item::empty_list)
        }))
    }

    /// S6F15 event report request (`<CEID>`) → S6F16, the S6F11 body the
    /// event's last occurrence would have (its DVs as they were then; DATAID
    /// 0, this is not an event). An unknown CEID gets an empty list.
    pub fn event_report_request(
        &self,
        body: &Item,
        vars: &dyn VariableSource,
    ) -> Result<Item, IllegalData> {
        let ceid = id(body).ok_or_else(|| IllegalData::new("S6F15: expected a CEID"))?;
        if CollectionEvent::from_ceid(ceid).is_none() {
            return Ok(Item::empty_list());
        }
        let empty = EventData::new();
        let data = self.last_event.get(&ceid).unwrap_or(&empty);
        Ok(self.report_body(0, ceid, data, vars))
    }

    /// S6F19 individual report request (`<RPTID>`) → S6F20 `L,b <V>`: the
    /// DVs as the last event that carried them left them. An unknown RPTID
    /// gets an empty list.
    pub fn individual_report_request(
        &self,
        body: &Item,
        vars: &dyn VariableSource,
    ) -> Result<Item, IllegalData> {
        let rptid = id(body).ok_or_else(|| IllegalData::new("S6F19: expected a RPTID"))?;
        Ok(self.values(rptid, |vid| self.last_dv.get(&vid).cloned(), vars))
    }

    /// Definitions, links and enable states as TOML (what E30 asks to
    /// survive a power-off).
    pub fn to_toml(&self) -> String {
        let p = Persisted {
            reports: self
                .reports
                .iter()
                .map(|(rptid, vids)| PersistedReport {
                    rptid: *rptid,
                    vids: vids.clone(),
                })
                .collect(),
            links: self
                .links
                .iter()
                .map(|(ceid, rptids)| PersistedLink {
                    ceid: *ceid,
                    rptids: rptids.clone(),
                })
                .collect(),
            enabled: self.enabled.iter().copied().collect(),
        };
        // Cannot fail: a table of arrays of integers always serialises.
        toml::to_string(&p).unwrap_or_default()
    }

    /// Restores what [`EventReports::to_toml`] wrote, checked as S2F33/35/37
    /// would check it, except that variables are not checked against the
    /// station (which may not be up yet); an error names the entry.
    pub fn from_toml(text: &str) -> Result<Self> {
        let p: Persisted = toml::from_str(text).context("GEM event reports: not valid")?;
        let mut out = Self::new();
        for r in &p.reports {
            if r.vids.is_empty() || r.vids.len() > MAX_VIDS_PER_REPORT {
                bail!(
                    "GEM event reports: report {}: {} variables (1 to {MAX_VIDS_PER_REPORT})",
                    r.rptid,
                    r.vids.len()
                );
            }
            if out.reports.insert(r.rptid, r.vids.clone()).is_some() {
                bail!("GEM event reports: report {} defined twice", r.rptid);
            }
        }
        if out.reports.len() > MAX_REPORTS {
            bail!("GEM event reports: more than {MAX_REPORTS} reports");
        }
        for l in &p.links {
            if CollectionEvent::from_ceid(l.ceid).is_none() {
                bail!("GEM event reports: link of unknown CEID {}", l.ceid);
            }
            if let Some(r) = l.rptids.iter().find(|r| !out.reports.contains_key(r)) {
                bail!(
                    "GEM event reports: CEID {} linked to undefined report {r}",
                    l.ceid
                );
            }
            if l.rptids.is_empty() || l.rptids.len() > MAX_REPORTS_PER_EVENT {
                bail!(
                    "GEM event reports: CEID {}: {} reports (1 to {MAX_REPORTS_PER_EVENT})",
                    l.ceid,
                    l.rptids.len()
                );
            }
            if out.links.insert(l.ceid, l.rptids.clone()).is_some() {
                bail!("GEM event reports: CEID {} linked twice", l.ceid);
            }
        }
        for ceid in &p.enabled {
            if CollectionEvent::from_ceid(*ceid).is_none() {
                bail!("GEM event reports: unknown CEID {ceid} enabled");
            }
            out.enabled.insert(*ceid);
        }
        Ok(out)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Persisted {
    #[serde(default)]
    reports: Vec<PersistedReport>,
    #[serde(default)]
    links: Vec<PersistedLink>,
    #[serde(default)]
    enabled: Vec<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersistedReport {
    rptid: u32,
    vids: Vec<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PersistedLink {
    ceid: u32,
    rptids: Vec<u32>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::gem::events::dv;
    use crate::host::gem::VariableValue;

    /// Two status variables: 1001 (a count) and 1002 (a name).
    struct Vars;
    impl VariableSource for Vars {
        fn value(&self, vid: u32) -> Option<VariableValue> {
            match vid {
                1001 => Some(VariableValue::U4(17)),
                1002 => Some(VariableValue::text("LOT-7")),
                _ => None,
            }
        }
    }

    fn define(r: &mut EventReports, reports: &[(u32, &[u32])]) -> u8 {
        let body = Item::list([
            Item::u4(1),
            Item::list(reports.iter().map(|(rptid, vids)| {
                Item::list([
                    Item::u4(*rptid),
                    Item::list(vids.iter().map(|v| Item::u4(*v))),
                ])
            })),
        ]);
        r.define_reports(&body, &Vars)
            .unwrap()
            .as_binary_byte()
            .unwrap()
    }

    fn link(r: &mut EventReports, links: &[(u32, &[u32])]) -> u8 {
        let body = Item::list([
            Item::u4(1),
            Item::list(links.iter().map(|(ceid, rptids)| {
                Item::list([
                    Item::u4(*ceid),
                    Item::list(rptids.iter().map(|v| Item::u4(*v))),
                ])
            })),
        ]);
        r.link_reports(&body).unwrap().as_binary_byte().unwrap()
    }

    fn enable(r: &mut EventReports, on: bool, ceids: &[u32]) -> u8 {
        let body = Item::list([
            Item::boolean(on),
            Item::list(ceids.iter().map(|c| Item::u4(*c))),
        ]);
        r.enable_events(&body).unwrap().as_binary_byte().unwrap()
    }

    const STARTED: u32 = 4001;

    fn started(run_id: u64) -> EventData {
        EventData::new()
            .with(dv::RUN_ID, Item::u8(run_id))
            .with(dv::DIES_TOTAL, Item::u4(9))
    }

    #[test]
    fn define_link_enable_then_an_event_sends_its_reports() {
        let mut r = EventReports::new();
        assert_eq!(
            define(
                &mut r,
                &[(10, &[dv::RUN_ID, 1001]), (11, &[1002, dv::DIE_INDEX])]
            ),
            0
        );
        assert_eq!(link(&mut r, &[(STARTED, &[11, 10])]), 0);
        // Disabled by default: remembered, not sent.
        assert_eq!(
            r.event_report(CollectionEvent::RunStarted, &started(5), &Vars),
            None
        );
        assert_eq!(enable(&mut r, true, &[STARTED]), 0);
        let body = r
            .event_report(CollectionEvent::RunStarted, &started(6), &Vars)
            .unwrap();
        let expected = Item::list([
            Item::u4(1),
            Item::u4(STARTED),
            Item::list([
                Item::list([
                    Item::u4(11),
                    Item::list([Item::ascii("LOT-7"), Item::empty_list()]),
                ]),
                Item::list([Item::u4(10), Item::list([Item::u8(6), Item::u4(17)])]),
            ]),
        ]);
        assert_eq!(body, expected);
        // DATAID counts up; an enabled event without links has no reports.
        let next = r
            .event_report(CollectionEvent::RunStarted, &started(7), &Vars)
            .unwrap();
        assert_eq!(next.as_list().unwrap()[0], Item::u4(2));
        assert_eq!(enable(&mut r, true, &[]), 0);
        let ended = r
            .event_report(CollectionEvent::RunEnded, &EventData::new(), &Vars)
            .unwrap();
        assert_eq!(ended.as_list().unwrap()[2], Item::empty_list());
        assert_eq!(enable(&mut r, false, &[]), 0);
        assert!(!r.is_enabled(CollectionEvent::RunStarted));
    }

    /// The alarm edge's event reports its ALID and text, and the DVs of
    /// other events linked to the same report are empty lists.
    #[test]
    fn an_alarm_edge_reports_its_alid() {
        use crate::host::gem::events::alarm_event;
        let mut r = EventReports::new();
        assert_eq!(
            define(&mut r, &[(5, &[dv::ALARM_ID, dv::ALARM_TEXT, dv::RUN_ID])]),
            0
        );
        assert_eq!(link(&mut r, &[(4011, &[5]), (4012, &[5])]), 0);
        assert_eq!(enable(&mut r, true, &[4011, 4012]), 0);
        let (event, data) = alarm_event(1022, true, "Vacuum heartbeat lost");
        let body = r.event_report(event, &data, &Vars).unwrap();
        let parts = body.as_list().unwrap();
        assert_eq!(parts[1], Item::u4(4011));
        assert_eq!(
            parts[2],
            Item::list([Item::list([
                Item::u4(5),
                Item::list([
                    Item::u4(1022),
                    Item::ascii("Vacuum heartbeat lost"),
                    Item::empty_list()
                ]),
            ])])
        );
        let (event, data) = alarm_event(1022, false, "Vacuum heartbeat lost");
        let body = r.event_report(event, &data, &Vars).unwrap();
        assert_eq!(body.as_list().unwrap()[1], Item::u4(4012));
    }

    #[test]
    fn drack_codes() {
        let mut r = EventReports::new();
        assert_eq!(define(&mut r, &[(1, &[1001])]), drack::OK);
        assert_eq!(
            define(&mut r, &[(1, &[1002])]),
            drack::RPTID_ALREADY_DEFINED
        );
        assert_eq!(
            define(&mut r, &[(2, &[1002]), (2, &[1001])]),
            drack::RPTID_ALREADY_DEFINED
        );
        assert_eq!(define(&mut r, &[(2, &[9999])]), drack::VID_UNKNOWN);
        let too_many: Vec<u32> = vec![1001; MAX_VIDS_PER_REPORT + 1];
        assert_eq!(define(&mut r, &[(2, &too_many)]), drack::NO_SPACE);
        // None of the refused definitions left anything behind.
        assert_eq!(r.reports.len(), 1);
        // An ASCII RPTID is the wrong format for an id.
        let body = Item::list([
            Item::u4(0),
            Item::list([Item::list([Item::ascii("R"), Item::list([Item::u4(1001)])])]),
        ]);
        assert_eq!(
            r.define_reports(&body, &Vars).unwrap(),
            Item::binary_byte(drack::INVALID_FORMAT)
        );
        // Full: the report that does not fit is refused, the rest kept.
        let mut full = EventReports::new();
        for rptid in 0..MAX_REPORTS as u32 {
            assert_eq!(define(&mut full, &[(rptid, &[1001])]), 0);
        }
        assert_eq!(define(&mut full, &[(99_999, &[1001])]), drack::NO_SPACE);
        // Deleting one makes room in the same message.
        assert_eq!(define(&mut full, &[(0, &[]), (99_999, &[1001])]), drack::OK);
    }

    #[test]
    fn deleting_reports_deletes_their_links() {
        let mut r = EventReports::new();
        assert_eq!(define(&mut r, &[(1, &[1001]), (2, &[1002])]), 0);
        assert_eq!(link(&mut r, &[(STARTED, &[1, 2]), (4005, &[1])]), 0);
        assert_eq!(define(&mut r, &[(1, &[])]), 0);
        assert_eq!(r.links.get(&STARTED), Some(&vec![2]));
        assert_eq!(r.links.get(&4005), None);
        // Redefining the deleted report is allowed again.
        assert_eq!(define(&mut r, &[(1, &[1002])]), 0);
        // The empty list deletes everything.
        assert_eq!(define(&mut r, &[]), 0);
        assert!(r.reports.is_empty() && r.links.is_empty());
    }

    #[test]
    fn lrack_codes() {
        let mut r = EventReports::new();
        assert_eq!(define(&mut r, &[(1, &[1001]), (2, &[1002])]), 0);
        assert_eq!(link(&mut r, &[(STARTED, &[1])]), lrack::OK);
        assert_eq!(link(&mut r, &[(STARTED, &[2])]), lrack::CEID_ALREADY_LINKED);
        assert_eq!(link(&mut r, &[(3999, &[2])]), lrack::CEID_UNKNOWN);
        assert_eq!(link(&mut r, &[(4005, &[7])]), lrack::RPTID_UNKNOWN);
        assert_eq!(link(&mut r, &[(4005, &[1, 1])]), lrack::INVALID_FORMAT);
        // One bad link refuses the whole message.
        assert_eq!(
            link(&mut r, &[(4005, &[2]), (4006, &[7])]),
            lrack::RPTID_UNKNOWN
        );
        assert_eq!(r.links.get(&4005), None);
        // Unlink with an empty list, then link again.
        assert_eq!(link(&mut r, &[(STARTED, &[])]), lrack::OK);
        assert_eq!(link(&mut r, &[(STARTED, &[2])]), lrack::OK);
    }

    #[test]
    fn erack_and_malformed_bodies() {
        let mut r = EventReports::new();
        assert_eq!(enable(&mut r, true, &[STARTED, 12345]), erack::CEID_UNKNOWN);
        assert!(!r.is_enabled(CollectionEvent::RunStarted));
        for bad in [
            Item::u4(1),
            Item::list([Item::u4(1)]),
            Item::list([Item::u4(1), Item::u4(2)]),
            Item::list([Item::u4(1), Item::list([Item::u4(1)])]),
            Item::list([
                Item::u4(1),
                Item::list([Item::list([Item::u4(1), Item::u4(1001)])]),
            ]),
        ] {
            assert!(r.define_reports(&bad, &Vars).is_err(), "{bad:?}");
            assert!(r.link_reports(&bad).is_err(), "{bad:?}");
        }
        assert!(r
            .enable_events(&Item::list([Item::u1(1), Item::empty_list()]))
            .is_err());
        assert!(r.event_report_request(&Item::ascii("x"), &Vars).is_err());
        assert!(r
            .individual_report_request(&Item::empty_list(), &Vars)
            .is_err());
    }

    #[test]
    fn report_requests_use_the_last_occurrence() {
        let mut r = EventReports::new();
        assert_eq!(define(&mut r, &[(10, &[dv::RUN_ID, 1001])]), 0);
        assert_eq!(link(&mut r, &[(STARTED, &[10])]), 0);
        // Before any run: DVs empty, SVs current.
        let before = r.event_report_request(&Item::u4(STARTED), &Vars).unwrap();
        assert_eq!(
            before.as_list().unwrap()[2],
            Item::list([Item::list([
                Item::u4(10),
                Item::list([Item::empty_list(), Item::u4(17)])
            ])])
        );
        // The event happens while disabled; requests still see it.
        assert_eq!(
            r.event_report(CollectionEvent::RunStarted, &started(3), &Vars),
            None
        );
        let after = r
            .event_report_request(&Item::u2(STARTED as u16), &Vars)
            .unwrap();
        assert_eq!(after.as_list().unwrap()[0], Item::u4(0));
        assert_eq!(
            after.as_list().unwrap()[2],
            Item::list([Item::list([
                Item::u4(10),
                Item::list([Item::u8(3), Item::u4(17)])
            ])])
        );
        assert_eq!(
            r.individual_report_request(&Item::u4(10), &Vars).unwrap(),
            Item::list([Item::u8(3), Item::u4(17)])
        );
        assert_eq!(
            r.individual_report_request(&Item::u4(11), &Vars).unwrap(),
            Item::empty_list()
        );
        assert_eq!(
            r.event_report_request(&Item::u4(4999), &Vars).unwrap(),
            Item::empty_list()
        );
    }

    #[test]
    fn persistence_round_trips_and_refuses_inconsistent_files() {
        let mut r = EventReports::new();
        assert_eq!(define(&mut r, &[(1, &[1001, dv::RUN_ID]), (2, &[1002])]), 0);
        assert_eq!(link(&mut r, &[(STARTED, &[2, 1])]), 0);
        assert_eq!(enable(&mut r, true, &[STARTED, 4005]), 0);
        let text = r.to_toml();
        let back = EventReports::from_toml(&text).unwrap();
        assert_eq!(back.reports, r.reports);
        assert_eq!(back.links, r.links);
        assert_eq!(back.enabled, r.enabled);
        assert_eq!(back.to_toml(), text);

        for (bad, says) in [
            (
                "links = [{ ceid = 4001, rptids = [3] }]",
                "undefined report 3",
            ),
            ("enabled = [17]", "unknown CEID 17"),
            ("reports = [{ rptid = 1, vids = [] }]", "report 1"),
            (
                "reports = [{ rptid = 1, vids = [1] }, { rptid = 1, vids = [2] }]",
                "twice",
            ),
            ("colour = 1", "not valid"),
        ] {
            let err = format!("{:#}", EventReports::from_toml(bad).err().unwrap());
            assert!(err.contains(says), "{bad}: {err}");
        }
    }
}
