//! The simulated load port, robot, pre-aligner and wafer-id reader: a
//! carrier of 25 slots with a slot map that can hold empty, double- and
//! cross-slotted slots, handling times of a real single-arm tool, and
//! injectable faults. The wafer a robot puts on the chuck is the one the
//! simulated camera images next ([`SimChuck`]).

use crate::machine::load_port::{CarrierMap, HandlingError, LoadPort, SlotState, SLOTS};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The chuck of the simulated tool: which wafer lies on it. Shared by the
/// robot (which places and removes wafers) and the simulated machine
/// (which images the wafer there).
#[derive(Debug, Default)]
pub struct SimChuck {
    held: AtomicBool,
    seed: AtomicU64,
}

impl SimChuck {
    /// The seed of the simulated wafer on the chuck, if one is there.
    pub fn wafer_seed(&self) -> Option<u64> {
        self.held
            .load(Ordering::Acquire)
            .then(|| self.seed.load(Ordering::Acquire))
    }

    fn place(&self, seed: u64) {
        self.seed.store(seed, Ordering::Release);
        self.held.store(true, Ordering::Release);
    }

    fn remove(&self) {
        self.held.store(false, Ordering::Release);
    }
}

/// How long each handling step takes on the paced simulator: a single-arm
/// atmospheric robot and a notch pre-aligner of a 300 mm tool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HandlingTimes {
    /// Dock, open the door and scan the slots.
    pub load_and_map: Duration,
    /// One robot move between two stations (pick and place).
    pub robot_move: Duration,
    /// Notch search and centring.
    pub align: Duration,
    /// Reading the wafer id (OCR).
    pub read_id: Duration,
    /// Close the door and undock.
    pub unload: Duration,
}

impl HandlingTimes {
    pub const REAL_TOOL: Self = Self {
        load_and_map: Duration::from_millis(6_000),
        robot_move: Duration::from_millis(3_500),
        align: Duration::from_millis(2_500),
        read_id: Duration::from_millis(800),
        unload: Duration::from_millis(4_000),
    };
    /// Tests and benchmarks: no waiting.
    pub const INSTANT: Self = Self {
        load_and_map: Duration::ZERO,
        robot_move: Duration::ZERO,
        align: Duration::ZERO,
        read_id: Duration::ZERO,
        unload: Duration::ZERO,
    };
}

/// The simulated carrier the next `load_carrier` docks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimCarrier {
    pub carrier_id: String,
    pub slots: [SlotState; SLOTS],
    /// Seed of the first slot's wafer; slot n's is `first_seed + n - 1`,
    /// so every wafer of a lot has defects of its own.
    pub first_seed: u64,
}

impl SimCarrier {
    /// A full carrier but for the slots named (1-based).
    pub fn with(
        carrier_id: &str,
        first_seed: u64,
        empty: &[u32],
        double: &[u32],
        cross: &[u32],
    ) -> Self {
        let mut slots = [SlotState::Present; SLOTS];
        for (list, state) in [
            (empty, SlotState::Empty),
            (double, SlotState::DoubleSlotted),
            (cross, SlotState::CrossSlotted),
        ] {
            for &s in list {
                if (1..=SLOTS as u32).contains(&s) {
                    slots[s as usize - 1] = state;
                }
            }
        }
        Self {
            carrier_id: carrier_id.to_owned(),
            slots,
            first_seed,
        }
    }

    /// The demonstration carrier of the built-in simulator: 25 slots, two
    /// empty (12, 25), one double-slotted (4), one cross-slotted (18).
    pub fn demo(first_seed: u64) -> Self {
        Self::with("SIM-FOUP-01", first_seed, &[12, 25], &[4], &[18])
    }

    fn wafer_id(&self, slot: u32) -> String {
        format!("{}-{slot:02}", self.carrier_id)
    }
}

/// Faults to inject into the handling system; clone the `Arc` to inject
/// from a test or the Simulator panel while a lot runs.
#[derive(Debug, Default)]
pub struct HandlingFaults {
    /// The next this many robot moves fail (the wafer stays put).
    pub robot_fail_next: AtomicU32,
    /// The next this many alignments fail.
    pub aligner_fail_next: AtomicU32,
    /// Bit n-1 set: slot n's wafer id cannot be read.
    pub unreadable_ids: AtomicU32,
    /// The next carrier cannot be mapped.
    pub mapper_fail_next: AtomicBool,
}

impl HandlingFaults {
    pub fn fail_robot_moves(&self, n: u32) {
        self.robot_fail_next.store(n, Ordering::Release);
    }

    pub fn make_id_unreadable(&self, slot: u32) {
        if (1..=SLOTS as u32).contains(&slot) {
            self.unreadable_ids
                .fetch_or(1 << (slot - 1), Ordering::AcqRel);
        }
    }

    fn take(counter: &AtomicU32) -> bool {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
            .is_ok()
    }
}

/// Where the one wafer out of the carrier is (single-arm handling: one at
/// a time), with the slot it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OutOfCarrier {
    Aligner(u32),
    Chuck(u32),
}

pub struct SimLoadPort {
    /// What the next `load_carrier` docks.
    pub next_carrier: SimCarrier,
    pub times: HandlingTimes,
    pub faults: Arc<HandlingFaults>,
    chuck: Arc<SimChuck>,
    docked: Option<(SimCarrier, CarrierMap)>,
    out: Option<OutOfCarrier>,
}

impl SimLoadPort {
    pub fn new(next_carrier: SimCarrier, times: HandlingTimes, chuck: Arc<SimChuck>) -> Self {
        Self {
            next_carrier,
            times,
            faults: Arc::new(HandlingFaults::default()),
            chuck,
            docked: None,
            out: None,
        }
    }

    fn wait(d: Duration) {
        if !d.is_zero() {
            std::thread::sleep(d);
        }
    }

    fn robot_move(&self, what: &str) -> Result<(), HandlingError> {
        Self::wait(self.times.robot_move);
        if HandlingFaults::take(&self.faults.robot_fail_next) {
            return Err(HandlingError::Robot(format!(
                "{what}: vacuum not confirmed on the end effector (injected)"
            )));
        }
        Ok(())
    }

    fn docked(&self) -> Result<&SimCarrier, HandlingError> {
        self.docked
            .as_ref()
            .map(|(c, _)| c)
            .ok_or(HandlingError::NoCarrier)
    }
}

impl LoadPort for SimLoadPort {
    fn load_carrier(&mut self) -> Result<CarrierMap, HandlingError> {
        if let Some(out) = self.out {
            return Err(HandlingError::WrongPlace(format!(
                "a wafer is still out of the docked carrier ({out:?})"
            )));
        }
        Self::wait(self.times.load_and_map);
        if self.faults.mapper_fail_next.swap(false, Ordering::AcqRel) {
            return Err(HandlingError::Mapper(
                "no signal from the mapping sensor (injected)".into(),
            ));
        }
        let carrier = self.next_carrier.clone();
        let map = CarrierMap {
            carrier_id: carrier.carrier_id.clone(),
            slots: carrier.slots,
        };
        self.docked = Some((carrier, map.clone()));
        Ok(map)
    }

    fn carrier(&self) -> Option<&CarrierMap> {
        self.docked.as_ref().map(|(_, m)| m)
    }

    fn unload_carrier(&mut self) -> Result<(), HandlingError> {
        if let Some(out) = self.out {
            return Err(HandlingError::WrongPlace(format!(
                "cannot undock: a wafer is out of the carrier ({out:?})"
            )));
        }
        self.docked()?;
        Self::wait(self.times.unload);
        self.docked = None;
        Ok(())
    }

    fn slot_to_aligner(&mut self, slot: u32) -> Result<(), HandlingError> {
        let state = self
            .carrier()
            .ok_or(HandlingError::NoCarrier)?
            .slot(slot)
            .ok_or_else(|| HandlingError::WrongPlace(format!("slot {slot} is not 1..=25")))?;
        if !state.can_pick() {
            return Err(HandlingError::SlotNotPickable { slot, state });
        }
        if let Some(out) = self.out {
            return Err(HandlingError::WrongPlace(format!(
                "the robot already has a wafer out ({out:?})"
            )));
        }
        self.robot_move(&format!("slot {slot} to the pre-aligner"))?;
        self.out = Some(OutOfCarrier::Aligner(slot));
        Ok(())
    }

    fn align_and_read_id(&mut self) -> Result<Option<String>, HandlingError> {
        let Some(OutOfCarrier::Aligner(slot)) = self.out else {
            return Err(HandlingError::WrongPlace(
                "no wafer on the pre-aligner".into(),
            ));
        };
        Self::wait(self.times.align);
        if HandlingFaults::take(&self.faults.aligner_fail_next) {
            return Err(HandlingError::Aligner("notch not found (injected)".into()));
        }
        Self::wait(self.times.read_id);
        let unreadable = self.faults.unreadable_ids.load(Ordering::Acquire) & (1 << (slot - 1));
        if unreadable != 0 {
            return Ok(None);
        }
        Ok(Some(self.docked()?.wafer_id(slot)))
    }

    fn aligner_to_chuck(&mut self) -> Result<(), HandlingError> {
        let Some(OutOfCarrier::Aligner(slot)) = self.out else {
            return Err(HandlingError::WrongPlace(
                "no wafer on the pre-aligner".into(),
            ));
        };
        if self.chuck.wafer_seed().is_some() {
            return Err(HandlingError::WrongPlace(
                "the chuck already holds a wafer".into(),
            ));
        }
        let seed = self.docked()?.first_seed + slot as u64 - 1;
        self.robot_move(&format!(
            "slot {slot}'s wafer from the pre-aligner to the chuck"
        ))?;
        self.chuck.place(seed);
        self.out = Some(OutOfCarrier::Chuck(slot));
        Ok(())
    }

    fn chuck_to_slot(&mut self, slot: u32) -> Result<(), HandlingError> {
        if self.out != Some(OutOfCarrier::Chuck(slot)) {
            return Err(HandlingError::WrongPlace(format!(
                "slot {slot}'s wafer is not on the chuck ({:?})",
                self.out
            )));
        }
        self.robot_move(&format!("the chuck to slot {slot}"))?;
        self.chuck.remove();
        self.out = None;
        Ok(())
    }

    fn aligner_to_slot(&mut self, slot: u32) -> Result<(), HandlingError> {
        if self.out != Some(OutOfCarrier::Aligner(slot)) {
            return Err(HandlingError::WrongPlace(format!(
                "slot {slot}'s wafer is not on the pre-aligner ({:?})",
                self.out
            )));
        }
        self.robot_move(&format!("the pre-aligner to slot {slot}"))?;
        self.out = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port() -> (SimLoadPort, Arc<SimChuck>) {
        let chuck = Arc::new(SimChuck::default());
        (
            SimLoadPort::new(SimCarrier::demo(100), HandlingTimes::INSTANT, chuck.clone()),
            chuck,
        )
    }

    #[test]
    fn the_demo_carrier_maps_two_empty_one_double_and_one_cross_slotted_slot() {
        let (mut p, _) = port();
        let map = p.load_carrier().unwrap();
        assert_eq!(map.slot(4), Some(SlotState::DoubleSlotted));
        assert_eq!(map.slot(12), Some(SlotState::Empty));
        assert_eq!(map.slot(18), Some(SlotState::CrossSlotted));
        assert_eq!(map.slot(25), Some(SlotState::Empty));
        assert_eq!(map.slot(26), None);
        assert_eq!(map.pickable().len(), 21);
        assert!(!map.pickable().contains(&4));
    }

    #[test]
    fn a_wafer_travels_slot_aligner_chuck_slot_and_the_chuck_knows_which() {
        let (mut p, chuck) = port();
        p.load_carrier().unwrap();
        p.slot_to_aligner(3).unwrap();
        assert_eq!(
            p.align_and_read_id().unwrap().as_deref(),
            Some("SIM-FOUP-01-03")
        );
        assert_eq!(chuck.wafer_seed(), None);
        p.aligner_to_chuck().unwrap();
        assert_eq!(chuck.wafer_seed(), Some(102));
        // Single arm: nothing else moves out meanwhile, and the carrier
        // stays docked.
        assert!(matches!(
            p.slot_to_aligner(5),
            Err(HandlingError::WrongPlace(_))
        ));
        assert!(matches!(
            p.unload_carrier(),
            Err(HandlingError::WrongPlace(_))
        ));
        assert!(matches!(
            p.chuck_to_slot(5),
            Err(HandlingError::WrongPlace(_))
        ));
        p.chuck_to_slot(3).unwrap();
        assert_eq!(chuck.wafer_seed(), None);
        p.unload_carrier().unwrap();
        assert!(p.carrier().is_none());
    }

    #[test]
    fn double_and_cross_slotted_and_empty_slots_are_never_picked() {
        let (mut p, _) = port();
        p.load_carrier().unwrap();
        for slot in [4, 12, 18] {
            assert!(
                matches!(
                    p.slot_to_aligner(slot),
                    Err(HandlingError::SlotNotPickable { .. })
                ),
                "slot {slot}"
            );
        }
    }

    #[test]
    fn injected_faults_leave_the_wafer_where_it_was() {
        let (mut p, chuck) = port();
        p.load_carrier().unwrap();
        p.faults.fail_robot_moves(1);
        assert!(matches!(p.slot_to_aligner(1), Err(HandlingError::Robot(_))));
        // Still in its slot: the next pick of it works.
        p.slot_to_aligner(1).unwrap();
        p.faults.make_id_unreadable(1);
        assert_eq!(p.align_and_read_id().unwrap(), None);
        p.faults.fail_robot_moves(1);
        assert!(p.aligner_to_chuck().is_err());
        assert_eq!(chuck.wafer_seed(), None);
        p.aligner_to_slot(1).unwrap();
        p.faults.mapper_fail_next.store(true, Ordering::Release);
        p.unload_carrier().unwrap();
        assert!(matches!(p.load_carrier(), Err(HandlingError::Mapper(_))));
    }
}
