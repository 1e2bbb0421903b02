//! `waferscope inspect` on PNG files: finds a painted defect where it is,
//! converts colour and 16-bit input, and refuses bad input with an error
//! naming the file and a non-zero exit.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use waferscope::machine::sim::defects::{GtDefect, Shape, SimDefectKind};
use waferscope::machine::sim::pattern::render_die;

const SIZE: u32 = 384;

fn dir(test: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("waferscope-cli-{}-{test}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn die(shift: (f64, f64), seed: u64) -> Vec<u8> {
    let mut img = vec![0u8; (SIZE * SIZE) as usize];
    render_die(&mut img, SIZE, SIZE, shift, 2.0, seed);
    img
}

fn save(path: &Path, px: Vec<u8>, w: u32, h: u32) {
    image::GrayImage::from_raw(w, h, px)
        .unwrap()
        .save(path)
        .unwrap();
}

fn inspect(args: &[&Path], extra: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_waferscope"));
    c.arg("inspect");
    for (flag, p) in ["--die", "--left", "--right", "--reference"]
        .iter()
        .zip(args)
    {
        c.arg(flag).arg(p);
    }
    c.args(extra).output().unwrap()
}

fn three_dies(d: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let (t, l, r) = (d.join("t.png"), d.join("l.png"), d.join("r.png"));
    let mut test = die((0.3, -0.4), 1);
    GtDefect {
        kind: SimDefectKind::Particle,
        shape: Shape::Disc {
            cx: 200.0,
            cy: 150.0,
            r: 4.0,
            value: 255.0,
        },
    }
    .paint(&mut test, SIZE, SIZE, (0.3, -0.4));
    save(&t, test, SIZE, SIZE);
    save(&l, die((-0.5, 0.2), 2), SIZE, SIZE);
    save(&r, die((0.9, 0.7), 3), SIZE, SIZE);
    (t, l, r)
}

#[test]
fn finds_the_painted_particle_and_reports_micrometres() {
    let d = dir("find");
    let (t, l, r) = three_dies(&d);
    let out = inspect(&[&t, &l, &r], &["--pixel-um", "2.0", "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let defects = v["defects"].as_array().unwrap();
    assert_eq!(defects.len(), 1, "{v}");
    let x_px = defects[0]["x_px"].as_f64().unwrap();
    let y_px = defects[0]["y_px"].as_f64().unwrap();
    assert!(
        (x_px - 200.3).abs() < 1.5 && (y_px - 149.6).abs() < 1.5,
        "{v}"
    );
    // Die origin is the lower-left corner, y up, 2 µm per pixel.
    let y_um = defects[0]["y_um"].as_f64().unwrap();
    assert!((y_um - (SIZE as f64 - y_px) * 2.0).abs() < 0.01);
    assert_eq!(defects[0]["class"], "particle");
    assert_eq!(defects[0]["polarity"], "bright");
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn colour_and_16_bit_input_is_converted_and_said() {
    let d = dir("convert");
    let (t, l, r) = three_dies(&d);
    let rgb = d.join("rgb.png");
    let g = image::open(&l).unwrap().to_rgb8();
    g.save(&rgb).unwrap();
    let wide = d.join("wide.png");
    image::DynamicImage::ImageLuma8(image::open(&r).unwrap().to_luma8())
        .to_luma16()
        .save(&wide)
        .unwrap();
    let out = inspect(&[&t, &rgb, &wide], &["--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rgb.png (left) converted from 8-bit colour"),
        "{err}"
    );
    assert!(
        err.contains("wide.png (right) converted from 16-bit grayscale"),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["defects"].as_array().unwrap().len(), 1);
    std::fs::remove_dir_all(d).ok();
}

fn fails_naming(out: &Output, file: &Path, what: &str) {
    assert!(!out.status.success(), "should have failed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&file.display().to_string()),
        "error does not name {}: {err}",
        file.display()
    );
    assert!(err.contains(what), "error does not say '{what}': {err}");
}

#[test]
fn bad_input_is_refused_with_the_file_named() {
    let d = dir("bad");
    let (t, l, r) = three_dies(&d);

    let small = d.join("small.png");
    save(&small, vec![0u8; 100 * 80], 100, 80);
    fails_naming(
        &inspect(&[&t, &l, &small], &[]),
        &small,
        "is 100×80 pixels but the die image",
    );

    let corrupt = d.join("corrupt.png");
    let mut bytes = std::fs::read(&l).unwrap();
    bytes.truncate(bytes.len() / 3);
    std::fs::write(&corrupt, bytes).unwrap();
    fails_naming(
        &inspect(&[&t, &corrupt, &r], &[]),
        &corrupt,
        "not a readable PNG",
    );

    let empty = d.join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    fails_naming(
        &inspect(&[&empty, &l, &r], &[]),
        &empty,
        "the file is empty",
    );

    let text = d.join("notes.png");
    std::fs::write(&text, b"this is not an image").unwrap();
    fails_naming(&inspect(&[&t, &l, &text], &[]), &text, "not a readable PNG");

    let missing = d.join("missing.png");
    fails_naming(
        &inspect(&[&t, &missing, &r], &[]),
        &missing,
        "cannot read the file",
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn a_closed_stdout_is_an_error_with_its_own_code_not_a_panic() {
    let d = dir("closed-stdout");
    let (t, l, r) = three_dies(&d);
    // As `waferscope inspect … | head -2` once head has gone: the reading
    // end is closed before the program writes, so every write gets EPIPE.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(env!("CARGO_BIN_EXE_waferscope"))
        .arg("inspect")
        .arg("--die")
        .arg(&t)
        .arg("--left")
        .arg(&l)
        .arg("--right")
        .arg(&r)
        .stdout(writer)
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(8), "{err}");
    assert!(err.contains("error: standard output was closed"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    std::fs::remove_dir_all(d).ok();
}

// ---- TIFF input, reference modes and care masks ----------------------
//
// These images come from a small generator of their own (Manhattan lines
// and contacts, uniform-sum noise), not from the simulator, so a change
// there cannot hide a regression here.

const W: u32 = 160;

/// A die of horizontal and vertical lines with contacts, seen shifted by
/// whole pixels `(dx, dy)`, with noise of σ ≈ 2 grey levels.
fn manhattan_die((dx, dy): (i32, i32), seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut noise = move || {
        // Sum of four uniforms in [-1.7, 1.7]: mean 0, σ ≈ 2.
        (0..4)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 40) as f32 / (1u64 << 24) as f32 * 3.4 - 1.7
            })
            .sum::<f32>()
    };
    // Logic, not an array: line widths and contacts vary from cell to
    // cell, as on a real die, so the layout has one registration (a
    // strictly periodic one is reported as untrusted alignment).
    let cell = |k: i32, salt: i32| {
        (k.wrapping_mul(7919) ^ salt)
            .wrapping_mul(104_729)
            .rem_euclid(97)
    };
    let mut img = Vec::with_capacity((W * W) as usize);
    for y in 0..W as i32 {
        for x in 0..W as i32 {
            let (u, v) = (x + dx, y + dy);
            let (cu, cv) = (u.div_euclid(24), v.div_euclid(32));
            let line =
                u.rem_euclid(24) < 3 + cell(cu, 1) % 6 || v.rem_euclid(32) < 2 + cell(cv, 2) % 6;
            let contact = cell(cu * 31 + cv, 3) % 3 != 0
                && (u.rem_euclid(24) - 15).abs() <= 2
                && (v.rem_euclid(32) - 18).abs() <= 2;
            let base = if contact {
                200.0
            } else if line {
                150.0
            } else {
                70.0
            };
            img.push((base + noise()).round().clamp(0.0, 255.0) as u8);
        }
    }
    img
}

/// Paints a bright disc of radius 3 into `img` at (cx, cy).
fn paint_particle(img: &mut [u8], cx: i32, cy: i32) {
    for y in cy - 3..=cy + 3 {
        for x in cx - 3..=cx + 3 {
            if (x - cx) * (x - cx) + (y - cy) * (y - cy) <= 9 {
                img[(y as u32 * W + x as u32) as usize] = 250;
            }
        }
    }
}

/// Die (with a particle at (60, 90), and one at (120, 40) when `two`),
/// left and right neighbours, and a clean reference, as 8-bit pixels.
fn manhattan_set(two: bool) -> [Vec<u8>; 4] {
    let mut test = manhattan_die((0, 0), 11);
    paint_particle(&mut test, 60, 90);
    if two {
        paint_particle(&mut test, 120, 40);
    }
    [
        test,
        manhattan_die((1, 0), 12),
        manhattan_die((0, 2), 13),
        manhattan_die((0, 1), 14),
    ]
}

fn write_tiff_8(path: &Path, px: &[u8]) {
    let mut f = std::fs::File::create(path).unwrap();
    tiff::encoder::TiffEncoder::new(&mut f)
        .unwrap()
        .write_image::<tiff::encoder::colortype::Gray8>(W, W, px)
        .unwrap();
}

/// The 8-bit pixels as 12-bit data in a 16-bit TIFF, with low bits that
/// the 16 → 8 reduction must drop.
fn write_tiff_12_in_16(path: &Path, px: &[u8]) {
    let wide: Vec<u16> = px
        .iter()
        .enumerate()
        .map(|(i, &v)| ((v as u16) << 4) | (i * 7 % 16) as u16)
        .collect();
    let mut f = std::fs::File::create(path).unwrap();
    tiff::encoder::TiffEncoder::new(&mut f)
        .unwrap()
        .write_image::<tiff::encoder::colortype::Gray16>(W, W, &wide)
        .unwrap();
}

fn run_inspect(flags: &[(&str, &Path)], extra: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_waferscope"));
    c.arg("inspect");
    for (flag, p) in flags {
        c.arg(flag).arg(p);
    }
    c.args(extra).output().unwrap()
}

fn json_of(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (x_px, y_px, class) of each defect, rounded to a tenth of a pixel.
fn defects_of(v: &serde_json::Value) -> Vec<(i64, i64, String)> {
    v["defects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                (d["x_px"].as_f64().unwrap() * 10.0).round() as i64,
                (d["y_px"].as_f64().unwrap() * 10.0).round() as i64,
                d["class"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Writes the set in three formats; returns [png, tif8, tif16] paths per
/// role (die, left, right, reference).
fn write_set(d: &Path, set: &[Vec<u8>; 4]) -> [[PathBuf; 3]; 4] {
    ["t", "l", "r", "g"].map(|role| {
        let k = ["t", "l", "r", "g"]
            .iter()
            .position(|r| *r == role)
            .unwrap();
        let paths = [
            d.join(format!("{role}.png")),
            d.join(format!("{role}-8.tif")),
            d.join(format!("{role}-16.tif")),
        ];
        save(&paths[0], set[k].clone(), W, W);
        write_tiff_8(&paths[1], &set[k]);
        write_tiff_12_in_16(&paths[2], &set[k]);
        paths
    })
}

#[test]
fn tiff_8_and_16_bit_find_the_same_defect_as_the_png() {
    let d = dir("tiff-same");
    let files = write_set(&d, &manhattan_set(false));
    let results: Vec<_> = (0..3)
        .map(|fmt| {
            let out = run_inspect(
                &[
                    ("--die", &files[0][fmt]),
                    ("--left", &files[1][fmt]),
                    ("--right", &files[2][fmt]),
                ],
                &["--json"],
            );
            (defects_of(&json_of(&out)), out)
        })
        .collect();
    let png = &results[0].0;
    assert_eq!(png.len(), 1, "{png:?}");
    assert!(
        (png[0].0 - 600).abs() <= 10 && (png[0].1 - 900).abs() <= 10,
        "{png:?}"
    );
    assert_eq!(&results[1].0, png, "8-bit TIFF");
    assert_eq!(&results[2].0, png, "16-bit TIFF");
    // The 12-bit data was recognised as such: shifted by 4, said so.
    let err = String::from_utf8_lossy(&results[2].1.stderr);
    assert!(
        err.contains("t-16.tif (die) converted from 16-bit grayscale"),
        "{err}"
    );
    assert!(err.contains("shifting right 4 bits"), "{err}");
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn the_reference_mode_is_chosen_by_the_images_given_and_reported() {
    let d = dir("modes");
    let files = write_set(&d, &manhattan_set(false));
    let (t, l, r, g) = (&files[0][1], &files[1][1], &files[2][1], &files[3][2]);
    let alone = json_of(&run_inspect(
        &[("--die", t), ("--reference", g)],
        &["--json"],
    ));
    assert_eq!(alone["reference_mode"], "die-to-reference");
    assert_eq!(defects_of(&alone).len(), 1, "{alone}");
    let neighbours = json_of(&run_inspect(
        &[("--die", t), ("--left", l), ("--right", r)],
        &["--json"],
    ));
    assert_eq!(neighbours["reference_mode"], "die-to-die");
    let both = json_of(&run_inspect(
        &[
            ("--die", t),
            ("--left", l),
            ("--right", r),
            ("--reference", g),
        ],
        &["--json"],
    ));
    assert_eq!(both["reference_mode"], "die-to-die+golden");
    // The same defects; with the reference image the die is registered,
    // so positions are the reference's (die) coordinates: the neighbours'
    // image positions moved by the die's offset.
    assert_eq!(neighbours["die_registered"], false);
    assert_eq!(both["die_registered"], true);
    let offset = |k: usize| both["die_offset_px"][k].as_f64().unwrap();
    let (a, b) = (&neighbours["defects"], &both["defects"]);
    assert_eq!(a.as_array().unwrap().len(), b.as_array().unwrap().len());
    for (da, db) in a.as_array().unwrap().iter().zip(b.as_array().unwrap()) {
        assert_eq!(da["class"], db["class"]);
        for (k, axis) in ["x_px", "y_px"].into_iter().enumerate() {
            let moved = da[axis].as_f64().unwrap() + offset(k);
            assert!(
                (moved - db[axis].as_f64().unwrap()).abs() < 0.05,
                "{da} {db}"
            );
        }
    }

    let one_side = run_inspect(&[("--die", t), ("--left", l)], &[]);
    assert!(!one_side.status.success());
    let err = String::from_utf8_lossy(&one_side.stderr);
    assert!(err.contains("--left needs --right"), "{err}");
    let nothing = run_inspect(&[("--die", t)], &[]);
    assert!(!nothing.status.success());
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("nothing to compare the die with"));
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn the_mask_suppresses_only_defects_lying_in_dont_care() {
    let d = dir("mask");
    let files = write_set(&d, &manhattan_set(true));
    let (t, g) = (&files[0][0], &files[3][0]);
    let unmasked = defects_of(&json_of(&run_inspect(
        &[("--die", t), ("--reference", g)],
        &["--json"],
    )));
    assert_eq!(unmasked.len(), 2, "{unmasked:?}");
    // Don't care over the right half of the die: the particle at
    // (120, 40) is dropped, the one at (60, 90) kept.
    let mask = d.join("mask.png");
    let care: Vec<u8> = (0..W * W)
        .map(|i| if i % W < 100 { 255 } else { 0 })
        .collect();
    save(&mask, care, W, W);
    let v = json_of(&run_inspect(
        &[("--die", t), ("--reference", g), ("--mask", &mask)],
        &["--json"],
    ));
    let kept = defects_of(&v);
    assert_eq!(kept.len(), 1, "{v}");
    assert!((kept[0].0 - 600).abs() <= 10, "{kept:?}");
    // masked_out: the differing pixels the mask kept from flagging, here
    // the dropped particle's (a disc of radius 3 is 29 pixels).
    let masked_out = v["masked_out"].as_u64().unwrap();
    assert!((20..=60).contains(&masked_out), "{v}");
    std::fs::remove_dir_all(d).ok();
}

/// The mask is applied per pixel inside the detector: a scratch reaching
/// into don't-care is reported only over its cared-for part, and a scratch
/// cut by a masked band is two defects. (Dropping whole defects after
/// detection kept the first whole and the second as one.)
#[test]
fn masked_pixels_neither_flag_nor_join_defects() {
    let d = dir("mask-core");
    let (t, g, mask) = (d.join("t.png"), d.join("g.png"), d.join("mask.png"));
    // Dark scratches two pixels thick from x = 40 to 340: at y = 300 and
    // y = 100, on the simulator's die (384 px).
    let mut test = die((0.3, -0.4), 1);
    for x in 40..340u32 {
        for y in [300u32, 301, 100, 101] {
            test[(y * SIZE + x) as usize] = 0;
        }
    }
    save(&t, test, SIZE, SIZE);
    save(&g, die((-0.5, 0.2), 2), SIZE, SIZE);
    let json = |extra: &[(&str, &Path)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_waferscope"));
        c.args(["inspect", "--json"])
            .arg("--die")
            .arg(&t)
            .arg("--reference")
            .arg(&g);
        for (flag, p) in extra {
            c.arg(flag).arg(p);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let long = |v: &serde_json::Value| -> Vec<serde_json::Value> {
        v["defects"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["area_px"].as_u64().unwrap() >= 40)
            .cloned()
            .collect()
    };
    let unmasked = json(&[]);
    assert_eq!(long(&unmasked).len(), 2, "{unmasked}");
    assert_eq!(unmasked["masked_out"], 0);
    // Don't care: x ≥ 200 on every row, and the band x = 120..160 of rows
    // 90..110 (cutting the upper scratch wider than scratch merging
    // bridges).
    let care: Vec<u8> = (0..SIZE * SIZE)
        .map(|i| {
            let (x, y) = (i % SIZE, i / SIZE);
            if x >= 200 || ((120..160).contains(&x) && (90..110).contains(&y)) {
                0
            } else {
                255
            }
        })
        .collect();
    save(&mask, care, SIZE, SIZE);
    let v = json(&[("--mask", &mask)]);
    let defects = long(&v);
    let y = |d: &serde_json::Value| d["y_px"].as_f64().unwrap();
    let right_end =
        |d: &serde_json::Value| d["x_px"].as_f64().unwrap() + d["width_um"].as_f64().unwrap() / 2.0;
    // Lower scratch: one defect, ending where the mask begins.
    let lower: Vec<_> = defects.iter().filter(|d| y(d) > 250.0).collect();
    assert_eq!(lower.len(), 1, "{v}");
    assert!(right_end(lower[0]) <= 201.0, "{v}");
    assert!(lower[0]["area_px"].as_u64().unwrap() <= 2 * 162, "{v}");
    // Upper scratch: 40..120 and 160..200, each its own defect.
    let upper: Vec<_> = defects.iter().filter(|d| y(d) < 150.0).collect();
    assert_eq!(upper.len(), 2, "{v}");
    assert!(upper.iter().all(|d| right_end(d) <= 201.0), "{v}");
    // What the mask kept from flagging: both scratches' masked parts.
    let masked_out = v["masked_out"].as_u64().unwrap();
    assert!(masked_out >= 2 * (140 + 140 + 40) - 40, "{v}");
    assert_eq!(
        masked_out + v["flagged_pixels"].as_u64().unwrap(),
        unmasked["flagged_pixels"].as_u64().unwrap()
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn bad_tiffs_and_masks_are_refused_with_the_file_named() {
    let d = dir("bad-tiff");
    let files = write_set(&d, &manhattan_set(false));
    let (t, g) = (&files[0][1], &files[3][1]);
    let set = manhattan_set(false);

    let two_pages = d.join("stack.tif");
    {
        let mut f = std::fs::File::create(&two_pages).unwrap();
        let mut enc = tiff::encoder::TiffEncoder::new(&mut f).unwrap();
        for _ in 0..2 {
            enc.write_image::<tiff::encoder::colortype::Gray8>(W, W, &set[3])
                .unwrap();
        }
    }
    fails_naming(
        &run_inspect(&[("--die", t), ("--reference", &two_pages)], &[]),
        &two_pages,
        "TIFF has 2 pages",
    );

    let float = d.join("float.tif");
    {
        let px: Vec<f32> = set[3].iter().map(|&v| v as f32 / 255.0).collect();
        let mut f = std::fs::File::create(&float).unwrap();
        tiff::encoder::TiffEncoder::new(&mut f)
            .unwrap()
            .write_image::<tiff::encoder::colortype::Gray32Float>(W, W, &px)
            .unwrap();
    }
    fails_naming(
        &run_inspect(&[("--die", &float), ("--reference", g)], &[]),
        &float,
        "sample format is IEEE floating point",
    );

    let small_mask = d.join("small-mask.png");
    save(&small_mask, vec![255u8; 100 * 80], 100, 80);
    fails_naming(
        &run_inspect(
            &[("--die", t), ("--reference", g), ("--mask", &small_mask)],
            &[],
        ),
        &small_mask,
        &format!(
            "(mask) is 100×80 pixels but the die image {} is {W}×{W}",
            t.display()
        ),
    );

    let truncated = d.join("truncated.tif");
    let bytes = std::fs::read(g).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    fails_naming(
        &run_inspect(&[("--die", t), ("--reference", &truncated)], &[]),
        &truncated,
        "not a readable TIFF",
    );
    std::fs::remove_dir_all(d).ok();
}

#[test]
fn a_die_that_cannot_be_registered_is_an_error_not_a_clean_die() {
    // A strict array (stripes of period 20 both ways): shifts of whole
    // periods match as well as the true one, so no registration is
    // trustworthy.
    let d = dir("periodic");
    let stripes = |shift: u32| -> Vec<u8> {
        (0..W * W)
            .map(|i| {
                let (x, y) = (i % W + shift, i / W + shift);
                if (x % 20 < 8) ^ (y % 20 < 8) {
                    180
                } else {
                    60
                }
            })
            .collect()
    };
    let (t, r) = (d.join("t.png"), d.join("r.png"));
    let mut die = stripes(0);
    paint_particle(&mut die, 60, 90);
    save(&t, die, W, W);
    save(&r, stripes(3), W, W);
    let out = run_inspect(&[("--die", &t), ("--reference", &r)], &["--json"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["alignment_untrusted"], true, "{v}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("t.png") && stderr.contains("not trustworthy"),
        "{stderr}"
    );
    // The logic-layout die of the other tests registers: exit 0, trusted.
    let set = manhattan_set(false);
    let files = write_set(&d, &set);
    let ok = run_inspect(
        &[("--die", &files[0][0]), ("--reference", &files[3][0])],
        &["--json"],
    );
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    assert_eq!(json_of(&ok)["alignment_untrusted"], false);
}
