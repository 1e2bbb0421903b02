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
