//! One alarm's ISA-18.2 state machine: debounce, latching, acknowledgement
//! and shelving. Pure logic on a caller-supplied clock, so every transition
//! is tested directly.

use super::alarm_defs::AlarmDef;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum AlarmState {
    #[default]
    Normal,
    UnackActive,
    AckActive,
    /// Returned to normal, not yet acknowledged.
    ReturnedUnack,
}

impl AlarmState {
    pub fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::UnackActive => "unacknowledged-active",
            Self::AckActive => "acknowledged-active",
            Self::ReturnedUnack => "returned-unacknowledged",
        }
    }
    pub fn from_name(s: &str) -> Option<Self> {
        [
            Self::Normal,
            Self::UnackActive,
            Self::AckActive,
            Self::ReturnedUnack,
        ]
        .into_iter()
        .find(|x| x.name() == s)
    }
    pub fn is_unacknowledged(self) -> bool {
        matches!(self, Self::UnackActive | Self::ReturnedUnack)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shelving {
    #[default]
    None,
    /// Unshelves itself at `until_ns`.
    Timed { until_ns: u64 },
    /// Unshelves when the condition returns to normal.
    OneShot,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Raised,
    Acknowledged,
    ReturnedToNormal,
    Shelved,
    Unshelved,
    DefinitionsChanged,
    /// Alarm events the evaluator could not hand to the journal.
    JournalGap,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Raised => "raise",
            Self::Acknowledged => "acknowledge",
            Self::ReturnedToNormal => "return to normal",
            Self::Shelved => "shelve",
            Self::Unshelved => "unshelve",
            Self::DefinitionsChanged => "definitions changed",
            Self::JournalGap => "journal gap",
        }
    }
}

/// At most two transitions happen in one step (an unshelve that finds the
/// condition active also raises). Fixed size: no allocation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Events {
    pub list: [Option<EventKind>; 2],
}

impl Events {
    fn push(&mut self, e: EventKind) {
        if let Some(slot) = self.list.iter_mut().find(|s| s.is_none()) {
            *slot = Some(e);
        }
    }
    pub fn iter(&self) -> impl Iterator<Item = EventKind> + '_ {
        self.list.iter().flatten().copied()
    }
    pub fn is_empty(&self) -> bool {
        self.list[0].is_none()
    }
}

/// A condition with three or more raw transitions within this window is
/// chattering.
pub const CHATTER_WINDOW_NS: u64 = 60_000_000_000;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct AlarmStatus {
    pub state: AlarmState,
    pub shelving: Shelving,
    /// Debounced condition.
    pub condition: bool,
    /// Raw condition true since (for the on-delay).
    raw_since_ns: Option<u64>,
    raw_last: bool,
    /// Times of the last raw transitions (chatter detection).
    edges: [u64; 3],
    edge_count: u8,
    pub chattering: bool,
    pub raised_ns: u64,
    pub first_out: bool,
    pub in_flood: bool,
    /// A latched alarm whose condition has already cleared.
    pub latched_clear: bool,
    /// Who shelved it and why, while shelved.
    pub shelved_by: super::alarm_engine::OperatorName,
    pub shelve_reason: super::alarm_engine::ShelveReason,
}

impl AlarmStatus {
    /// Restores a persisted state (after a restart).
    pub fn restored(state: AlarmState, shelving: Shelving, first_out: bool) -> Self {
        Self {
            state,
            shelving,
            first_out,
            condition: matches!(state, AlarmState::UnackActive | AlarmState::AckActive),
            ..Self::default()
        }
    }

    /// Feeds the raw condition (`None`: unknown, e.g. the signal is not
    /// live, so everything holds) at `now_ns`.
    pub fn update(&mut self, def: &AlarmDef, raw: Option<bool>, now_ns: u64) -> Events {
        let mut ev = Events::default();
        if let Some(raw) = raw {
            if raw != self.raw_last {
                self.raw_last = raw;
                self.edges.rotate_left(1);
                self.edges[2] = now_ns;
                self.edge_count = self.edge_count.saturating_add(1);
                self.chattering =
                    self.edge_count >= 3 && now_ns - self.edges[0] <= CHATTER_WINDOW_NS;
            }
            if raw {
                let since = *self.raw_since_ns.get_or_insert(now_ns);
                if now_ns - since >= def.on_delay_ns {
                    self.condition = true;
                }
            } else {
                self.raw_since_ns = None;
                self.condition = false;
            }
        }
        match self.shelving {
            Shelving::Timed { until_ns } if now_ns >= until_ns => {
                self.shelving = Shelving::None;
                self.shelved_by = Default::default();
                self.shelve_reason = Default::default();
                ev.push(EventKind::Unshelved);
                self.state = AlarmState::Normal;
            }
            Shelving::OneShot if !self.condition => {
                self.shelving = Shelving::None;
                self.shelved_by = Default::default();
                self.shelve_reason = Default::default();
                ev.push(EventKind::Unshelved);
                self.state = AlarmState::Normal;
                return ev;
            }
            Shelving::None => {}
            _ => return ev, // shelved: not annunciated
        }
        match (self.state, self.condition) {
            (AlarmState::Normal | AlarmState::ReturnedUnack, true) => {
                self.state = AlarmState::UnackActive;
                self.raised_ns = now_ns;
                self.latched_clear = false;
                ev.push(EventKind::Raised);
            }
            (AlarmState::UnackActive, false) if !self.latched_clear => {
                if def.latching {
                    self.latched_clear = true; // stays active until acknowledged
                } else {
                    self.state = AlarmState::ReturnedUnack;
                }
                ev.push(EventKind::ReturnedToNormal);
            }
            (AlarmState::UnackActive, true) if self.latched_clear => {
                self.latched_clear = false; // came back before the ack
            }
            (AlarmState::AckActive, false) => {
                self.state = AlarmState::Normal;
                ev.push(EventKind::ReturnedToNormal);
            }
            _ => {}
        }
        if self.state == AlarmState::Normal {
            self.first_out = false;
            self.in_flood = false;
        }
        ev
    }

    /// Operator acknowledgement. `None` when there was nothing to
    /// acknowledge.
    pub fn acknowledge(&mut self) -> Option<EventKind> {
        match self.state {
            AlarmState::UnackActive if self.condition && !self.latched_clear => {
                self.state = AlarmState::AckActive
            }
            AlarmState::UnackActive | AlarmState::ReturnedUnack => {
                self.state = AlarmState::Normal;
                self.latched_clear = false;
                self.first_out = false;
                self.in_flood = false;
            }
            _ => return None,
        }
        Some(EventKind::Acknowledged)
    }

    /// Shelves for `duration_ns` (clamped to the definition's maximum) or,
    /// with `None`, until the condition next returns to normal.
    pub fn shelve(&mut self, def: &AlarmDef, duration_ns: Option<u64>, now_ns: u64) -> EventKind {
        self.shelving = match duration_ns {
            Some(d) => Shelving::Timed {
                until_ns: now_ns + d.min(def.max_shelve_ns),
            },
            None => Shelving::OneShot,
        };
        self.state = AlarmState::Normal;
        self.latched_clear = false;
        EventKind::Shelved
    }

    /// Operator unshelve; the next update re-raises if still active.
    pub fn unshelve(&mut self) -> Option<EventKind> {
        if self.shelving == Shelving::None {
            return None;
        }
        self.shelving = Shelving::None;
        self.shelved_by = Default::default();
        self.shelve_reason = Default::default();
        Some(EventKind::Unshelved)
    }
}
