//! Device monitoring: polling loops, heartbeat-based data quality, trends,
//! and the ISA-18.2 alarm model with its journal.

pub mod alarm_defs;
pub mod alarm_engine;
pub mod alarm_service;
pub mod alarm_state;
pub mod faults;
pub mod journal;
pub mod poller;
pub mod quality;
pub mod snapshot;
pub mod software;
pub mod trend;

pub use alarm_defs::{AlarmDef, Condition, Priority};
pub use alarm_engine::{AlarmCommand, AlarmEngine, AlarmEntry, AlarmSnapshot, JournalEvent};
pub use alarm_service::AlarmService;
pub use alarm_state::{AlarmState, AlarmStatus, EventKind, Shelving};
pub use faults::PanicSwitch;
pub use journal::{content_hash, Journal, JournalRow};
pub use poller::{Monitor, MonitorConfig, Poller};
pub use quality::Quality;
pub use snapshot::{HeartbeatSnapshot, MachineSnapshot, SignalSnapshot};
pub use software::{SoftwareCondition, SoftwareConditions};
pub use trend::{TrendPoint, TrendRing};
