//! `bench station` composes the station as `run` does and measures whole
//! wafers: at 320² px with two detection workers, a timed wafer inspects
//! every die with no drop, no lost result and no allocation on any hot
//! thread between its first and last 32 dies. (Its own test binary: the hot
//! threads counted are this station's alone.)

use std::path::PathBuf;
use waferscope::bench::station::{run, StationBenchConfig};

#[global_allocator]
static ALLOC: waferscope::hot::CountingAlloc = waferscope::hot::CountingAlloc;

#[test]
fn the_composed_station_inspects_whole_wafers_without_hot_allocations() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let report = run(StationBenchConfig {
        recipe: root.join("assets/recipes/full-300mm.toml"),
        image_px: Some(320),
        alarms: root.join("assets/alarms.toml"),
        wafers: 1,
        workers: Some(2),
        haze_percent: 0.0,
    })
    .unwrap();
    eprintln!("{}", report.to_text());
    let get = |name: &str| {
        report
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in\n{}", report.to_text()))
    };
    assert_eq!(get("frame_size"), 320.0);
    assert_eq!(get("detection_workers"), 2.0);
    assert!(get("station") > 0.0);
    assert!(get("detection_only_per_core") > 0.0 && get("memcpy_rotating_frames") > 0.0);
    for thread in [
        "acquisition",
        "detect-0",
        "detect-1",
        "monitor",
        "alarm-evaluator",
    ] {
        assert_eq!(
            get(&format!("allocations_per_die_{thread}")),
            0.0,
            "{thread}"
        );
    }
    assert_eq!(get("drops"), 0.0);
    assert_eq!(get("results_lost"), 0.0);
    assert!(get("defects_found_per_wafer") > 0.0);
}
