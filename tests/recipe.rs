//! Recipes: the shipped samples load; every kind of mistake is refused with
//! the exact error naming the file, the field, the value and the range.

use std::path::{Path, PathBuf};
use waferscope::run::recipe::{load, parse};

fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("assets/recipes")
        .join(name)
}

fn full() -> String {
    std::fs::read_to_string(asset("full-300mm.toml")).unwrap()
}

fn err(text: &str) -> String {
    format!("{:#}", parse(text).unwrap_err())
}

#[test]
fn the_sample_recipes_load() {
    let r = load(&asset("full-300mm.toml")).unwrap();
    assert_eq!(r.recipe.id, "INS-300-FULL");
    assert_eq!(r.image_px, 1024);
    assert_eq!(r.plan.len(), r.sites.len());
    assert!(r.sites.len() > 500);
    let s = load(&asset("sampled-200mm.toml")).unwrap();
    assert_eq!(s.image_px, 512);
    assert!(s.plan.len() * 4 >= s.sites.len() && s.plan.len() * 4 < s.sites.len() + 4);
    assert!(
        s.plan.windows(2).all(|w| w[0] < w[1]),
        "plan in stage order"
    );
    assert_ne!(r.hash, s.hash);
}

#[test]
fn missing_field() {
    assert_eq!(
        err(&full().replace("threshold = 24\n", "")),
        "line 16: missing field `threshold`"
    );
}

#[test]
fn unknown_key() {
    assert_eq!(
        err(&full().replace("threshold = 24", "threshold = 24\nthreshhold = 20")),
        "line 18: unknown field `threshhold`, expected one of `threshold`, `min_defect_px`, `golden_tolerance`, `classes`, `max_shift_px`, `min_align_confidence`, `threshold_mode`, `threshold_sigma`, `threshold_floor`, `care_areas`"
    );
}

#[test]
fn out_of_range_values() {
    assert_eq!(
        err(&full().replace("threshold = 24", "threshold = 300")),
        "field `inspection.threshold`: 300 grey levels is outside the allowed range 4 to 200 grey levels"
    );
    assert_eq!(
        err(&full().replace("diameter_mm = 300", "diameter_mm = 250")),
        "field `wafer.diameter_mm`: 250 mm is not a supported wafer size (200 or 300 mm)"
    );
    assert_eq!(
        err(&full().replace("edge_exclusion_mm = 3.0", "edge_exclusion_mm = 150.0")),
        "field `wafer.edge_exclusion_mm`: 150 mm is outside the allowed range 0 to 149 mm"
    );
    assert_eq!(
        err(&full().replace("notch = \"down\"", "notch = \"flat\"")),
        "field `wafer.notch`: \"flat\" is not one of down, up, left, right"
    );
    assert_eq!(
        err(&full().replace("pixel_um = 9.765625", "pixel_um = 1.0")),
        "field `optics.pixel_um`: 1 µm images a 10000 × 10000 µm die as 10000 × 10000 px; the camera takes square images of 320 to 4096 px"
    );
}

#[test]
fn die_pitch_smaller_than_die_size() {
    assert_eq!(
        err(&full().replace("die_pitch_um = [10100.0, 10100.0]", "die_pitch_um = [10100.0, 9900.0]")),
        "field `wafer.die_pitch_um`: 9900 µm in y is smaller than the die size 10000 µm (wafer.die_size_um)"
    );
}

#[test]
fn die_grid_empty_after_edge_exclusion() {
    let big = full()
        .replace(
            "die_pitch_um = [10100.0, 10100.0]",
            "die_pitch_um = [20100.0, 20100.0]",
        )
        .replace(
            "die_size_um = [10000.0, 10000.0]",
            "die_size_um = [20000.0, 20000.0]",
        )
        .replace("edge_exclusion_mm = 3.0", "edge_exclusion_mm = 140.0")
        .replace("pixel_um = 9.765625", "pixel_um = 19.53125");
    assert_eq!(
        err(&big),
        "field `wafer.edge_exclusion_mm`: no die of 20000 × 20000 µm fits inside the usable radius of 10 mm (300 mm wafer less 140 mm edge exclusion)"
    );
}

#[test]
fn plan_errors() {
    assert_eq!(
        err(&full().replace(
            "mode = \"all\"",
            "mode = \"list\"\ndies = [[0, 0], [40, 0]]"
        )),
        "field `plan.dies`: die [40, 0] is not on the wafer"
    );
    assert_eq!(
        err(&full().replace("mode = \"all\"", "mode = \"sample\"")),
        "field `plan.every`: required when plan.mode is \"sample\""
    );
}

#[test]
fn unreadable_file() {
    let e = format!(
        "{:#}",
        load(Path::new("/nonexistent/recipe.toml")).unwrap_err()
    );
    assert_eq!(
        e,
        "/nonexistent/recipe.toml: cannot read the recipe: No such file or directory (os error 2)"
    );
}

#[test]
fn errors_from_a_file_name_the_file() {
    let dir = std::env::temp_dir().join(format!("waferscope-recipe-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("bad.toml");
    std::fs::write(&p, full().replace("threshold = 24", "threshold = 2")).unwrap();
    assert_eq!(
        format!("{:#}", load(&p).unwrap_err()),
        format!(
            "{}: field `inspection.threshold`: 2 grey levels is outside the allowed range 4 to 200 grey levels",
            p.display()
        )
    );
    std::fs::remove_dir_all(dir).ok();
}

#[test]
fn care_areas_are_read_and_checked_field_by_field() {
    let with = |areas: &str| {
        full().replace(
            "[inspection.classes]",
            &format!("{areas}\n[inspection.classes]"),
        )
    };
    let area = |body: &str| format!("[[inspection.care_areas]]\n{body}\n");
    let ok = with(
        &(area("x_um = 0.0\ny_um = 0.0\nwidth_um = 1000.0\nheight_um = 500.0\ndont_care = true")
            + &area(
                "x_um = 100.0\ny_um = 100.0\nwidth_um = 50.0\nheight_um = 50.0\nthreshold = 60",
            )),
    );
    let r = parse(&ok).unwrap();
    assert_eq!(r.detect.care_areas.as_slice().len(), 2);
    let third =
        area("x_um = 10.0\ny_um = 10.0\nwidth_um = 0.0\nheight_um = 5.0\nthreshold_sigma = 4.0");
    let text = with(
        &(area("x_um = 0.0\ny_um = 0.0\nwidth_um = 10.0\nheight_um = 10.0\ndont_care = true")
            .repeat(2)
            + &third),
    );
    assert_eq!(
        err(&text),
        "field `inspection.care_areas[2].width_um`: 0 µm must be > 0"
    );
    let both = with(&area("x_um = 0.0\ny_um = 0.0\nwidth_um = 10.0\nheight_um = 10.0\nthreshold = 30\ndont_care = true"));
    assert_eq!(
        err(&both),
        "field `inspection.care_areas[0]`: give exactly one of threshold, threshold_sigma, dont_care = true"
    );
    let outside = with(&area(
        "x_um = 0.0\ny_um = 0.0\nwidth_um = 99999.0\nheight_um = 10.0\ndont_care = true",
    ));
    assert!(
        err(&outside).starts_with(
            "field `inspection.care_areas[0].width_um`: the area ends at 99999 µm, outside the die"
        ),
        "{}",
        err(&outside)
    );
    let sigma = full().replace(
        "threshold = 24\n",
        "threshold = 24\nthreshold_mode = \"sigma\"\nthreshold_sigma = 4.5\n",
    );
    let r = parse(&sigma).unwrap();
    assert_eq!(
        r.detect.threshold_mode,
        waferscope::pipeline::ThresholdMode::Sigma
    );
    assert_eq!(r.detect.threshold_sigma, 4.5);
    let bad_mode = full().replace(
        "threshold = 24\n",
        "threshold = 24\nthreshold_mode = \"percent\"\n",
    );
    assert_eq!(
        err(&bad_mode),
        "field `inspection.threshold_mode`: \"percent\" is not one of grey, sigma"
    );
}
