//! Set-up shared by the integration tests that run an engine against the
//! simulated machine (each test binary includes what it uses).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use waferscope::machine::sim::{SimIo, SimIoFaults};
use waferscope::monitor::alarm_defs::load as load_alarms;
use waferscope::monitor::{content_hash, AlarmService, Journal, Monitor, MonitorConfig};

/// The simulated I/O, its monitor (2 ms polls), the alarm definitions and
/// the alarm service (journal in `dir`) every engine here reads.
pub fn monitor_and_alarms(
    dir: &std::path::Path,
) -> (
    Arc<SimIoFaults>,
    Monitor,
    Arc<[waferscope::monitor::AlarmDef]>,
    AlarmService,
) {
    let io = SimIoFaults::new();
    let monitor = Monitor::start(
        Box::new(SimIo::new(io.clone())),
        MonitorConfig::uniform(Duration::from_millis(2)),
    );
    let defs_path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/alarms.toml");
    let defs: Arc<[_]> = load_alarms(&defs_path).unwrap().into();
    let alarms = AlarmService::start(
        defs.clone(),
        &content_hash("test"),
        Journal::open(&dir.join("journal.db")).unwrap(),
        monitor.snapshots.reader().unwrap(),
        monitor.epoch,
        Duration::from_millis(2),
    )
    .unwrap();
    (io, monitor, defs, alarms)
}
