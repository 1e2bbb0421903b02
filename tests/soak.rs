//! A short soak: 50,000 dies of the sampled 200 mm recipe (at 320² px) through
//! the pipeline as a run builds it. After the warm-up, resident memory stays
//! within ±1 % and the hot threads allocate nothing; nothing is dropped; the
//! CSV has a row per interval and the plot is a PNG of the promised size.
//! (Its own test binary: no other test's threads or memory in the figures.)

use std::path::Path;
use waferscope::bench::soak::{run, SoakConfig};

#[global_allocator]
static ALLOC: waferscope::hot::CountingAlloc = waferscope::hot::CountingAlloc;

#[test]
fn fifty_thousand_dies_keep_memory_flat_and_allocate_nothing_hot() {
    let dir = std::env::temp_dir().join(format!("waferscope-soak-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The sampled 200 mm recipe imaged at 320² px (25 µm pixels), the
    // smallest image a recipe allows: the soak is about time, not size.
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/recipes/sampled-200mm.toml"),
    )
    .unwrap();
    assert!(text.contains("pixel_um = 15.625"));
    let recipe =
        waferscope::run::recipe::parse(&text.replace("pixel_um = 15.625", "pixel_um = 25.0"))
            .unwrap();
    assert_eq!(recipe.image_px, 320);
    let (csv, plot) = (dir.join("soak.csv"), dir.join("soak.png"));
    let frames = 50_000;
    let soak = run(SoakConfig {
        recipe,
        frames,
        interval: 1_000,
        workers: Some(2),
        csv: csv.clone(),
        plot: Some(plot.clone()),
    })
    .unwrap();
    eprintln!("{}", soak.to_text());

    assert_eq!(soak.samples.last().unwrap().frames, frames);
    assert!(
        soak.steady().len() >= 40,
        "{} samples after warm-up",
        soak.steady().len()
    );
    assert!(
        soak.rss_drift_percent() <= 1.0,
        "RSS moved {:.2} % after warm-up ({} KiB then)",
        soak.rss_drift_percent(),
        soak.rss_after_warm_up_kib()
    );
    assert_eq!(
        soak.hot_allocations_after_warm_up(),
        0,
        "hot threads {:?} allocated after warm-up",
        soak.hot_threads
    );
    assert!(
        soak.hot_threads.contains(&"acquisition"),
        "{:?}",
        soak.hot_threads
    );
    assert_eq!(soak.workers, 2, "{:?}", soak.hot_threads);
    assert_eq!(soak.samples.last().unwrap().drops, 0);
    assert!(soak.defects_found > 0, "the dies carried defects");

    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("frames,elapsed_s,dies_per_s,rss_kib,"),
        "{header}"
    );
    assert!(header.contains("allocations_detect-0") && header.contains("allocations_detect-1"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), soak.samples.len());
    assert!(rows
        .iter()
        .all(|r| r.split(',').count() == header.split(',').count()));
    let png = image::open(&plot).unwrap();
    assert_eq!((png.width(), png.height()), (1200, 800));
    std::fs::remove_dir_all(&dir).unwrap();
}
