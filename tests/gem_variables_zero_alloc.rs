//! Reading a GEM status variable allocates nothing: the trace sampler
//! reads them on its own thread at up to 100 Hz (DESIGN.md, hot-path rule
//! 1). Counted per thread by the crate's counting allocator, with a
//! negative control that shows the count moves when something allocates.

use std::sync::Arc;

use waferscope::host::gem::variables::SVS;
use waferscope::host::gem::{GemStatus, StationVariables, VariableSource};
use waferscope::hot::{alloc_count, latest_cell};
use waferscope::monitor::{AlarmSnapshot, MachineSnapshot};
use waferscope::run::RunSnapshot;

#[global_allocator]
static ALLOC: waferscope::hot::CountingAlloc = waferscope::hot::CountingAlloc;

#[test]
fn reading_every_status_variable_allocates_nothing() {
    let (mut run, run_sub) = latest_cell(RunSnapshot::default());
    let (_machine, machine_sub) = latest_cell(MachineSnapshot::default());
    let (_alarms, alarm_sub) = latest_cell(AlarmSnapshot::default());
    let vars = StationVariables::new(
        run_sub.reader().unwrap(),
        machine_sub.reader().unwrap(),
        alarm_sub.reader().unwrap(),
        Arc::from(Vec::new()),
        Arc::new(GemStatus::default()),
    );
    run.publish(RunSnapshot {
        lot: "LOT-1".into(),
        dies_done: 3,
        ..RunSnapshot::default()
    });
    for d in SVS {
        assert!(vars.value(d.id).is_some());
    }
    let before = alloc_count::thread_allocations();
    for i in 0..1000u32 {
        run.publish(RunSnapshot {
            dies_done: i,
            ..RunSnapshot::default()
        });
        for d in SVS {
            std::hint::black_box(vars.value(d.id));
        }
    }
    assert_eq!(alloc_count::thread_allocations() - before, 0);
    // Negative control: the counter sees an allocation on this thread.
    let before = alloc_count::thread_allocations();
    std::hint::black_box(vars.value(SVS[0].id).map(|v| v.to_item()));
    assert!(alloc_count::thread_allocations() > before);
}
