//! Recipes: the shipped samples load; every kind of mistake is refused with
//! the exact error naming the file, the field, the value and the range.

use std::path::{Path, PathBuf};
use waferscope::pipeline::ReferenceSource;
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
fn edge_tolerance_and_box_ratio_reach_the_detector() {
    let r = parse(&full().replace(
        "threshold = 24",
        "threshold = 24\nedge_tolerance = 0.15\nbox_threshold_ratio = 0.36",
    ))
    .unwrap();
    assert_eq!(r.detect.edge_tolerance, 0.15);
    assert_eq!(r.detect.box_threshold_ratio, 0.36);
    let defaults = parse(&full()).unwrap();
    assert_eq!(defaults.detect.edge_tolerance, 0.0);
    assert_eq!(
        defaults.detect.box_threshold_ratio,
        waferscope::pipeline::detect::BOX_THRESHOLD_RATIO
    );
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
        "line 18: unknown field `threshhold`, expected one of `threshold`, `min_defect_px`, `golden_tolerance`, `classes`, `max_shift_px`, `min_align_confidence`, `threshold_mode`, `threshold_sigma`, `threshold_floor`, `edge_tolerance`, `box_threshold_ratio`, `care_areas`, `reference`, `reference_image`"
    );
}

#[test]
fn out_of_range_values() {
    assert_eq!(
        err(&full().replace("threshold = 24", "threshold = 300")),
        "field `inspection.threshold`: 300 grey levels is outside the allowed range 4 to 200 grey levels"
    );
    assert_eq!(
        err(&full().replace("threshold = 24", "threshold = 24\nedge_tolerance = 1.5")),
        "field `inspection.edge_tolerance`: 1.5 is outside the allowed range 0 to 1"
    );
    assert_eq!(
        err(&full().replace(
            "threshold = 24",
            "threshold = 24\nbox_threshold_ratio = 0.05"
        )),
        "field `inspection.box_threshold_ratio`: 0.05 is outside the allowed range 0.1 to 1"
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

fn sampled() -> String {
    std::fs::read_to_string(asset("sampled-200mm.toml")).unwrap()
}

/// `sampled-200mm.toml` with `lines` added to its [inspection] section.
fn sampled_with(lines: &str) -> String {
    sampled().replace(
        "min_defect_px = 3\n",
        &format!("min_defect_px = 3\n{lines}\n"),
    )
}

#[test]
fn the_reference_mode_is_chosen_by_the_recipe() {
    assert!(matches!(
        parse(&sampled()).unwrap().reference,
        ReferenceSource::DieToDie
    ));
    assert!(matches!(
        parse(&sampled_with("reference = \"die_to_golden\""))
            .unwrap()
            .reference,
        ReferenceSource::DieToGolden
    ));
    assert_eq!(
        err(&sampled_with("reference = \"die_to_mars\"")),
        "field `inspection.reference`: \"die_to_mars\" is not one of die_to_die, die_to_golden, die_to_reference"
    );
    assert_eq!(
        err(&sampled_with("reference = \"die_to_reference\"")),
        "field `inspection.reference_image`: required when inspection.reference is \"die_to_reference\" (a grayscale PNG or TIFF of one die, relative to the recipe file)"
    );
    assert_eq!(
        err(&sampled_with("reference_image = \"ref.png\"")),
        "field `inspection.reference_image`: only used when inspection.reference is \"die_to_reference\", not \"die_to_die\""
    );
}

#[test]
fn a_reference_image_is_read_relative_to_the_recipe_and_checked_for_size() {
    let d = std::env::temp_dir().join(format!("waferscope-recipe-ref-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("images")).unwrap();
    // The sampled recipe images each die as 512 × 512 px.
    let px: Vec<u8> = (0..512 * 512).map(|i| (i % 251) as u8).collect();
    image::save_buffer(
        d.join("images/ref.png"),
        &px,
        512,
        512,
        image::ExtendedColorType::L8,
    )
    .unwrap();
    image::save_buffer(
        d.join("images/small.png"),
        &px[..300 * 200],
        300,
        200,
        image::ExtendedColorType::L8,
    )
    .unwrap();
    let recipe = d.join("ref.toml");
    let write = |image: &str| {
        std::fs::write(
            &recipe,
            sampled_with(&format!(
                "reference = \"die_to_reference\"\nreference_image = \"{image}\""
            )),
        )
        .unwrap()
    };
    write("images/ref.png");
    // Loaded from another working directory: the path is the recipe's.
    let r = load(&recipe).unwrap();
    match &r.reference {
        ReferenceSource::DieToReference(loaded) => assert_eq!(&loaded[..], &px[..]),
        other => panic!("{other:?}"),
    }
    assert_eq!(r.reference_note(), None, "one reference for every die");
    // A different reference image under the same recipe text is a
    // different recipe: the run record's hash says so.
    let mut other = px.clone();
    other[1000] ^= 1;
    image::save_buffer(
        d.join("images/ref.png"),
        &other,
        512,
        512,
        image::ExtendedColorType::L8,
    )
    .unwrap();
    let r2 = load(&recipe).unwrap();
    assert_ne!(r.hash, r2.hash, "the reference image is in the hash");
    assert_eq!(
        load(&recipe).unwrap().hash,
        r2.hash,
        "and the hash is stable"
    );

    write("images/small.png");
    let e = format!("{:#}", load(&recipe).unwrap_err());
    assert!(e.starts_with(&format!("{}: ", recipe.display())), "{e}");
    assert!(
        e.contains(&format!(
            "field `inspection.reference_image`: {} is 300×200 pixels; this recipe images each die as 512×512 px",
            d.join("images/small.png").display()
        )),
        "{e}"
    );
    write("images/missing.png");
    let e = format!("{:#}", load(&recipe).unwrap_err());
    assert!(
        e.contains("field `inspection.reference_image`") && e.contains("missing.png"),
        "{e}"
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn a_sampled_die_to_die_plan_says_how_many_dies_go_die_to_golden() {
    let s = load(&asset("sampled-200mm.toml")).unwrap();
    // Every 4th die of the scan order: no die has a row neighbour planned.
    assert_eq!(s.dies_short_of_neighbours(), (s.plan.len(), 0));
    assert_eq!(
        s.reference_note().unwrap(),
        format!(
            "reference die_to_die: {n} of {n} planned dies have no row neighbour in the plan and will be inspected die-to-golden (the golden die alone)",
            n = s.plan.len()
        )
    );
    // A full plan: only the dies alone in their row (the top and bottom
    // rows of the 300 mm wafer have one each).
    let f = load(&asset("full-300mm.toml")).unwrap();
    assert!(
        f.reference_note().unwrap().starts_with(&format!(
            "reference die_to_die: 2 of {} planned dies have no row neighbour",
            f.plan.len()
        )),
        "{:?}",
        f.reference_note()
    );
    // Die-to-golden chosen on purpose: nothing to warn about.
    let g = parse(&sampled_with("reference = \"die_to_golden\"")).unwrap();
    assert_eq!(g.reference_note(), None);
}
