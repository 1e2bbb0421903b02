//! GEM trace data collection at 100 Hz for 10 s (1000 samples of four
//! status variables, in groups of 10): the sampling thread allocates
//! nothing per sample once warm, counted on the "gem-trace" thread by the
//! counting allocator; every period is either sampled or counted as
//! missed, in order, never early.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use waferscope::host::gem::trace::{TraceLimits, Tracer, THREAD_NAME};
use waferscope::host::gem::{VariableSource, VariableValue};
use waferscope::host::secs2::Item;
use waferscope::hot::alloc_count;

#[global_allocator]
static ALLOC: waferscope::hot::CountingAlloc = waferscope::hot::CountingAlloc;

/// Four variables of different kinds, read without allocating (as the
/// station's latest-state caches are).
#[derive(Default)]
struct Station {
    reads: AtomicU64,
}

impl VariableSource for Station {
    fn value(&self, vid: u32) -> Option<VariableValue> {
        let n = self.reads.fetch_add(1, Ordering::Relaxed);
        match vid {
            1001 => Some(VariableValue::U8(n)),
            1002 => Some(VariableValue::F8(n as f64 * 0.5)),
            1003 => Some(VariableValue::Bool(n % 2 == 0)),
            1004 => Some(VariableValue::text("RUNNING")),
            _ => None,
        }
    }
}

fn allocations(name: &str) -> u64 {
    alloc_count::hot_threads()
        .into_iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, a, _)| a)
        .unwrap_or_else(|| panic!("{name} is not registered as hot"))
}

const TOTAL: u32 = 1000;
const GROUP: usize = 10;
const PERIOD_NS: u64 = 10_000_000;
const WARM_UP_GROUPS: usize = 3;

#[test]
fn tracing_at_100_hz_allocates_nothing_per_sample_once_warm() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let (mut tracer, mut reports) = Tracer::start(
        Arc::new(Station::default()),
        Arc::default(),
        TraceLimits::default(),
    )
    .unwrap();
    let body = Item::list([
        Item::u4(7),
        Item::ascii("00000001"),
        Item::u4(TOTAL),
        Item::u4(GROUP as u32),
        Item::list([1001u32, 1002, 1003, 1004].map(Item::u4)),
    ]);
    assert_eq!(tracer.initialize(&body).unwrap(), Item::binary_byte(0));

    let mut smplns: Vec<u32> = Vec::with_capacity(TOTAL as usize);
    let mut late_ns: Vec<u64> = Vec::with_capacity(TOTAL as usize);
    let mut groups = 0;
    let mut warm: Option<u64> = None;
    rt.block_on(async {
        loop {
            let counts = tracer.counts();
            if smplns.len() as u64 + counts.missed_periods >= u64::from(TOTAL) {
                break;
            }
            let group = tokio::time::timeout(Duration::from_secs(30), reports.next_group())
                .await
                .expect("a group within 30 s")
                .expect("the sampling thread is running");
            for i in 0..group.len() {
                smplns.push(group.smpln(i));
                let (due, taken) = group.timing_ns(i);
                assert!(
                    taken >= due,
                    "sample {} taken before it was due",
                    group.smpln(i)
                );
                late_ns.push(taken - due);
                assert_eq!(group.values(i).len(), 4);
                assert!(group.values(i).iter().all(Option::is_some));
            }
            // What the dispatcher does: build S6F1, give the buffer back.
            let s6f1 = group.to_s6f1(1);
            assert_eq!(s6f1.as_list().unwrap()[3].len(), group.len() * 4);
            reports.recycle(group);
            groups += 1;
            if groups == WARM_UP_GROUPS {
                warm = Some(allocations(THREAD_NAME));
            }
        }
    });
    let after = allocations(THREAD_NAME);
    let warm = warm.expect("warmed up");
    let counts = tracer.counts();
    let max_late = late_ns.iter().max().copied().unwrap_or(0);
    println!(
        "{} samples in {groups} groups; {counts:?}; gem-trace allocations: {warm} at warm-up, {} after; latest sample {:.2} ms after its due time",
        smplns.len(),
        after - warm,
        max_late as f64 / 1e6
    );
    assert_eq!(
        after - warm,
        0,
        "the sampling thread allocated after warm-up"
    );
    // Every period accounted for: sampled or counted missed; nothing
    // dropped for lack of room (the consumer kept up).
    assert_eq!(
        smplns.len() as u64 + counts.missed_periods,
        u64::from(TOTAL)
    );
    assert_eq!(counts.samples, smplns.len() as u64);
    assert_eq!(counts.overruns + counts.no_buffer_samples, 0);
    assert!(
        smplns.windows(2).all(|w| w[0] < w[1]),
        "sample numbers in order"
    );
    assert!(*smplns.last().unwrap() <= TOTAL);
    // A taken sample is less than one period late: a later wake-up counts
    // the period as missed instead of sampling it late.
    assert!(max_late < PERIOD_NS, "{max_late} ns late");
    // A behaviour check, not a timing goal: a scheduler that missed most
    // periods would be broken, even on a loaded 2-core machine.
    assert!(
        counts.missed_periods < u64::from(TOTAL) / 5,
        "{} of {TOTAL} periods missed",
        counts.missed_periods
    );
    assert_eq!(tracer.active_traces(), 0, "the trace ended after TOTSMP");
}
