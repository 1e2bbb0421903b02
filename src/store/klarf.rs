//! KLARF export of one run, version 1.2 (flat records) and 1.8 (nested
//! records, lengths in integer nm).
//!
//! Die indices are shifted so the lowest column and row are 0, and the
//! sample centre is placed so that, as KLARF defines it, the position of a
//! defect from the wafer centre (y up) is
//! x = XINDEX·DiePitchX + XREL − SampleCenterLocationX.
//!
//! A die with more defects than the per-die capacity lists only those it
//! kept. NDEFECT counts the rows listed, as the database's `defect_count`
//! and the wafer map do: readers check NDEFECT against the rows (or use
//! one for the other), so a count of defects that are not there breaks
//! them. The defects found but not listed are stated per die in an extra
//! record, `TruncatedDieList` (XINDEX YINDEX NOTLISTED), written only when
//! some die is truncated; readers skip records they do not know.
//!
//! Repeaters (a defect at the same in-die position on many dies, found
//! when the run ended) go the same way, in an extra record written only
//! when the run has some: `RepeaterList` (DEFECTID NDIES), NDIES being the
//! dies the defect's group spans. The defect rows keep their 17 columns.

use super::query::RunExport;
use crate::pipeline::DefectClass;
use anyhow::{bail, Result};
use std::fmt::Write;

/// The class table written to every file, by KLARF class number.
pub fn class_lookup() -> Vec<(u32, &'static str)> {
    let mut v: Vec<_> = DefectClass::ALL
        .iter()
        .map(|c| (c.number(), c.name()))
        .collect();
    v.sort_unstable();
    v
}

/// Everything both versions need, computed once.
struct Facts {
    cmin: i32,
    rmin: i32,
    center: (f64, f64),
    inspected: Vec<(i32, i32)>,
    area_per_test_um2: f64,
    defective_dies: usize,
    /// (XINDEX, YINDEX, defects found but not listed) of truncated dies.
    truncated: Vec<(i32, i32, i64)>,
    /// (DEFECTID, dies of its group) of every repeater defect.
    repeaters: Vec<(usize, u32)>,
}

fn facts(e: &RunExport) -> Facts {
    let l = &e.layout;
    let cmin = e.dies.iter().map(|d| d.col).min().unwrap_or(0);
    let rmin = e.dies.iter().map(|d| d.row).min().unwrap_or(0);
    // Die (col, row) has its origin at (col·px − sx/2 + offset) from the
    // wafer centre; with XINDEX = col − cmin that is XINDEX·px − centre.
    let center = (
        l.die_size_um.0 / 2.0 - l.grid_offset_um.0 - cmin as f64 * l.die_pitch_um.0,
        l.die_size_um.1 / 2.0 - l.grid_offset_um.1 - rmin as f64 * l.die_pitch_um.1,
    );
    let inspected: Vec<(i32, i32)> = e
        .dies
        .iter()
        .filter(|d| d.status == "inspected")
        .map(|d| (d.col - cmin, d.row - rmin))
        .collect();
    let area_per_test_um2 = inspected.len() as f64 * l.die_size_um.0 * l.die_size_um.1;
    let defective_dies = e
        .dies
        .iter()
        .filter(|d| d.status == "inspected" && d.defect_count > 0)
        .count();
    let truncated = e
        .dies
        .iter()
        .filter(|d| d.truncated())
        .map(|d| (d.col - cmin, d.row - rmin, d.not_listed))
        .collect();
    let repeaters = e
        .defects
        .iter()
        .enumerate()
        .filter(|(_, d)| d.repeater > 0)
        .map(|(i, d)| (i + 1, d.repeater))
        .collect();
    Facts {
        repeaters,
        truncated,
        cmin,
        rmin,
        center,
        inspected,
        area_per_test_um2,
        defective_dies,
    }
}

/// KLARF timestamp: `MM-DD-YY HH:MM:SS`, UTC.
pub fn klarf_time(unix_ms: i64) -> String {
    let secs = unix_ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let tod = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{month:02}-{day:02}-{:02} {:02}:{:02}:{:02}",
        year.rem_euclid(100),
        tod / 3600,
        tod % 3600 / 60,
        tod % 60
    )
}

fn density_per_cm2(defects: usize, area_um2: f64) -> f64 {
    if area_um2 > 0.0 {
        defects as f64 / (area_um2 / 1e8)
    } else {
        0.0
    }
}

/// Text safe inside KLARF double quotes (no quotes or record separators).
fn quoted(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c == '"' || c == ';' || c == '{' || c == '}' || c == ',' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    format!("\"{clean}\"")
}

fn mark_location(notch: &str) -> &'static str {
    match notch {
        "up" => "UP",
        "left" => "LEFT",
        "right" => "RIGHT",
        _ => "DOWN",
    }
}

/// KLARF 1.2.
pub fn klarf_12(e: &RunExport, now_unix_ms: i64) -> String {
    let f = facts(e);
    let l = &e.layout;
    let r = &e.run;
    let result_time = klarf_time(r.ended_unix_ms.unwrap_or(r.started_unix_ms));
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "FileVersion 1 2;");
    let _ = writeln!(w, "FileTimestamp {};", klarf_time(now_unix_ms));
    let _ = writeln!(
        w,
        "InspectionStationID \"WAFERSCOPE\" \"SIMULATOR\" \"STATION-1\";"
    );
    let _ = writeln!(w, "SampleType WAFER;");
    let _ = writeln!(w, "ResultTimestamp {result_time};");
    let _ = writeln!(w, "LotID {};", quoted(&r.lot));
    let _ = writeln!(w, "SampleSize 1 {};", l.diameter_mm.round() as i64);
    let _ = writeln!(w, "DeviceID {};", quoted(&r.recipe_id));
    let _ = writeln!(
        w,
        "SetupID {} {};",
        quoted(&r.recipe_id),
        klarf_time(r.started_unix_ms)
    );
    let _ = writeln!(w, "StepID \"INSPECT\";");
    let _ = writeln!(w, "SampleOrientationMarkType NOTCH;");
    let _ = writeln!(w, "OrientationMarkLocation {};", mark_location(&l.notch));
    let _ = writeln!(
        w,
        "DiePitch {:.3} {:.3};",
        l.die_pitch_um.0, l.die_pitch_um.1
    );
    let _ = writeln!(w, "DieOrigin 0.000 0.000;");
    let _ = writeln!(w, "WaferID {};", quoted(&r.wafer));
    let _ = writeln!(w, "Slot {};", r.slot);
    let _ = writeln!(
        w,
        "SampleCenterLocation {:.3} {:.3};",
        f.center.0, f.center.1
    );
    let classes = class_lookup();
    let _ = writeln!(w, "ClassLookup {}", classes.len());
    for (i, (n, name)) in classes.iter().enumerate() {
        let end = if i + 1 == classes.len() { ";" } else { "" };
        let _ = writeln!(w, " {n} \"{}\"{end}", name.to_uppercase());
    }
    let _ = writeln!(w, "InspectionTest 1;");
    if f.inspected.is_empty() {
        let _ = writeln!(w, "SampleTestPlan 0;");
    } else {
        let _ = writeln!(w, "SampleTestPlan {}", f.inspected.len());
        for (i, (x, y)) in f.inspected.iter().enumerate() {
            let end = if i + 1 == f.inspected.len() { ";" } else { "" };
            let _ = writeln!(w, " {x} {y}{end}");
        }
    }
    let _ = writeln!(w, "AreaPerTest {:.3};", f.area_per_test_um2);
    let _ = writeln!(
        w,
        "DefectRecordSpec 17 DEFECTID XREL YREL XINDEX YINDEX XSIZE YSIZE DEFECTAREA DSIZE CLASSNUMBER TEST CLUSTERNUMBER ROUGHBINNUMBER FINEBINNUMBER REVIEWSAMPLE IMAGECOUNT IMAGELIST;"
    );
    if e.defects.is_empty() {
        let _ = writeln!(w, "DefectList;");
    } else {
        let _ = writeln!(w, "DefectList");
        let index = die_indices(e, &f);
        for (i, d) in e.defects.iter().enumerate() {
            let (xi, yi) = index(d.die_index);
            let end = if i + 1 == e.defects.len() { ";" } else { "" };
            // Data rows start with a space (some readers need it).
            let _ = writeln!(
                w,
                " {} {:.3} {:.3} {xi} {yi} {:.3} {:.3} {:.3} {:.3} {} 1 0 {} 0 0 0 0{end}",
                i + 1,
                d.x_um,
                d.y_um,
                d.width_um,
                d.height_um,
                d.area_um2,
                d.area_um2.sqrt(),
                d.class_number,
                d.class_number
            );
        }
    }
    if !f.truncated.is_empty() {
        let _ = writeln!(w, "TruncatedDieSpec 3 XINDEX YINDEX NOTLISTED;");
        let _ = writeln!(w, "TruncatedDieList");
        for (i, (x, y, n)) in f.truncated.iter().enumerate() {
            let end = if i + 1 == f.truncated.len() { ";" } else { "" };
            let _ = writeln!(w, " {x} {y} {n}{end}");
        }
    }
    if !f.repeaters.is_empty() {
        let _ = writeln!(w, "RepeaterSpec 2 DEFECTID NDIES;");
        let _ = writeln!(w, "RepeaterList");
        for (i, (id, n)) in f.repeaters.iter().enumerate() {
            let end = if i + 1 == f.repeaters.len() { ";" } else { "" };
            let _ = writeln!(w, " {id} {n}{end}");
        }
    }
    let _ = writeln!(w, "SummarySpec 5 TESTNO NDEFECT DEFDENSITY NDIE NDEFDIE;");
    let _ = writeln!(w, "SummaryList");
    let _ = writeln!(
        w,
        " 1 {} {:.6} {} {};",
        e.defects.len(),
        density_per_cm2(e.defects.len(), f.area_per_test_um2),
        f.inspected.len(),
        f.defective_dies
    );
    let _ = writeln!(w, "EndOfFile;");
    s
}

fn die_indices<'a>(e: &'a RunExport, f: &Facts) -> impl Fn(u32) -> (i32, i32) + 'a {
    let (cmin, rmin) = (f.cmin, f.rmin);
    move |die| {
        e.dies
            .iter()
            .find(|d| d.die_index == die)
            .map(|d| (d.col - cmin, d.row - rmin))
            .unwrap_or((0, 0))
    }
}

fn nm(um: f64) -> i64 {
    (um * 1000.0).round() as i64
}

/// KLARF 1.8 date and time fields: `"MM-DD-YY", "HH:MM:SS"`.
fn stamp_18(ms: i64) -> String {
    let t = klarf_time(ms);
    let (d, h) = t.split_once(' ').unwrap_or((&t, ""));
    format!("\"{d}\", \"{h}\"")
}

/// KLARF 1.8 of one run: nested records; lengths in integer nm, areas in
/// nm². The same as a lot file holding this one wafer.
pub fn klarf_18(e: &RunExport, now_unix_ms: i64) -> String {
    file_18(&[e], now_unix_ms)
}

/// A KLARF 1.8 lot file: one LotRecord with one WaferRecord per run, in
/// the order given. The runs must be of one lot, one recipe and one wafer
/// layout (the file and lot records carry those once), and of distinct
/// wafers (readers key wafer records by WaferID); the error names the
/// first run that is not, and why.
pub fn klarf_18_lot(runs: &[RunExport], now_unix_ms: i64) -> Result<String> {
    let Some(first) = runs.first() else {
        bail!("a KLARF lot file needs at least one run");
    };
    let (r0, l0) = (&first.run, &first.layout);
    for (i, e) in runs.iter().enumerate().skip(1) {
        let (r, l) = (&e.run, &e.layout);
        let differs = if r.lot != r0.lot {
            Some(format!("lot \"{}\", not \"{}\"", r.lot, r0.lot))
        } else if r.recipe_id != r0.recipe_id {
            Some(format!(
                "recipe \"{}\", not \"{}\"",
                r.recipe_id, r0.recipe_id
            ))
        } else if l.die_pitch_um != l0.die_pitch_um
            || l.diameter_mm != l0.diameter_mm
            || l.notch != l0.notch
        {
            Some("another wafer size, die pitch or notch".to_owned())
        } else {
            runs[..i]
                .iter()
                .find(|o| o.run.wafer == r.wafer)
                .map(|o| format!("wafer \"{}\" again (run {} has it)", r.wafer, o.run.id))
        };
        if let Some(why) = differs {
            bail!(
                "run {} cannot go in the lot file of run {}: it has {why}; a KLARF lot file holds one lot, recipe and layout, one record per wafer",
                r.id,
                r0.id
            );
        }
    }
    Ok(file_18(&runs.iter().collect::<Vec<_>>(), now_unix_ms))
}

/// The file: file-level fields and the lot's from the first run, then a
/// WaferRecord per run.
fn file_18(runs: &[&RunExport], now_unix_ms: i64) -> String {
    let e = runs[0];
    let l = &e.layout;
    let r = &e.run;
    let stamp = stamp_18;
    let mut s = String::new();
    let w = &mut s;
    let _ = writeln!(w, "Record FileRecord \"1.8\"");
    let _ = writeln!(w, "{{");
    let _ = writeln!(w, "  Field FileTimestamp 2 {{{}}}", stamp(now_unix_ms));
    let _ = writeln!(
        w,
        "  Field InspectionStationID 3 {{\"WAFERSCOPE\", \"SIMULATOR\", \"STATION-1\"}}"
    );
    let _ = writeln!(w, "  Field SampleType 1 {{\"WAFER\"}}");
    let _ = writeln!(
        w,
        "  Field SampleSize 2 {{1, {}}}",
        l.diameter_mm.round() as i64
    );
    let _ = writeln!(w, "  Field SampleOrientationMarkType 1 {{\"NOTCH\"}}");
    let _ = writeln!(
        w,
        "  Field OrientationMarkLocation 1 {{\"{}\"}}",
        mark_location(&l.notch)
    );
    let _ = writeln!(
        w,
        "  Field DiePitch 2 {{{}, {}}}",
        nm(l.die_pitch_um.0),
        nm(l.die_pitch_um.1)
    );
    let _ = writeln!(w, "  Record LotRecord {}", quoted(&r.lot));
    let _ = writeln!(w, "  {{");
    let _ = writeln!(w, "    Field DeviceID 1 {{{}}}", quoted(&r.recipe_id));
    let _ = writeln!(
        w,
        "    Field RecipeID 2 {{{}, {}}}",
        quoted(&r.recipe_id),
        quoted(&klarf_time(r.started_unix_ms))
    );
    let _ = writeln!(w, "    Field StepID 1 {{\"INSPECT\"}}");
    for e in runs {
        wafer_record_18(w, e);
    }
    let _ = writeln!(w, "  }}");
    let classes = class_lookup();

    let _ = writeln!(w, "  List ClassLookupList");
    let _ = writeln!(w, "  {{");
    let _ = writeln!(w, "    Columns 2 {{ int32 CLASSNUMBER, string CLASSNAME }}");
    let _ = writeln!(w, "    Data {}", classes.len());
    let _ = writeln!(w, "    {{");
    for (n, name) in &classes {
        let _ = writeln!(w, "      {n} \"{}\";", name.to_uppercase());
    }
    let _ = writeln!(w, "    }}");
    let _ = writeln!(w, "  }}");
    let _ = writeln!(w, "}}");
    let _ = writeln!(w, "EndOfFile;");
    s
}

/// One run's WaferRecord, inside a LotRecord.
fn wafer_record_18(w: &mut String, e: &RunExport) {
    let f = facts(e);
    let r = &e.run;
    let stamp = stamp_18;
    let _ = writeln!(w, "    Record WaferRecord {}", quoted(&r.wafer));
    let _ = writeln!(w, "    {{");
    let _ = writeln!(
        w,
        "      Field ResultTimestamp 2 {{{}}}",
        stamp(r.ended_unix_ms.unwrap_or(r.started_unix_ms))
    );
    let _ = writeln!(w, "      Field SlotNumber 1 {{{}}}", r.slot);
    let _ = writeln!(w, "      Field DieOrigin 2 {{0, 0}}");
    let _ = writeln!(
        w,
        "      Field SampleCenterLocation 2 {{{}, {}}}",
        nm(f.center.0),
        nm(f.center.1)
    );
    let _ = writeln!(w, "      Field InspectionTest 1 {{1}}");
    let _ = writeln!(
        w,
        "      Field AreaPerTest 1 {{{:.1}}}",
        f.area_per_test_um2 * 1e6
    );
    let _ = writeln!(w, "      List SampleTestPlan");
    let _ = writeln!(w, "      {{");
    let _ = writeln!(w, "        Columns 2 {{ int32 XINDEX, int32 YINDEX }}");
    let _ = writeln!(w, "        Data {}", f.inspected.len());
    let _ = writeln!(w, "        {{");
    for (x, y) in &f.inspected {
        let _ = writeln!(w, "          {x} {y};");
    }
    let _ = writeln!(w, "        }}");
    let _ = writeln!(w, "      }}");
    let _ = writeln!(w, "      List DefectList");
    let _ = writeln!(w, "      {{");
    let _ = writeln!(
        w,
        "        Columns 17 {{ int32 DEFECTID, int32 XREL, int32 YREL, int32 XINDEX, int32 YINDEX, int32 XSIZE, int32 YSIZE, float DEFECTAREA, int32 DSIZE, int32 CLASSNUMBER, int32 TEST, int32 CLUSTERNUMBER, int32 ROUGHBINNUMBER, int32 FINEBINNUMBER, int32 REVIEWSAMPLE, int32 IMAGECOUNT, int32 IMAGELIST }}"
    );
    let _ = writeln!(w, "        Data {}", e.defects.len());
    let _ = writeln!(w, "        {{");
    let index = die_indices(e, &f);
    for (i, d) in e.defects.iter().enumerate() {
        let (xi, yi) = index(d.die_index);
        let _ = writeln!(
            w,
            "          {} {} {} {xi} {yi} {} {} {:.1} {} {} 1 0 {} 0 0 0 0;",
            i + 1,
            nm(d.x_um),
            nm(d.y_um),
            nm(d.width_um),
            nm(d.height_um),
            d.area_um2 * 1e6,
            nm(d.area_um2.sqrt()),
            d.class_number,
            d.class_number
        );
    }
    let _ = writeln!(w, "        }}");
    let _ = writeln!(w, "      }}");
    if !f.truncated.is_empty() {
        let _ = writeln!(w, "      List TruncatedDieList");
        let _ = writeln!(w, "      {{");
        let _ = writeln!(
            w,
            "        Columns 3 {{ int32 XINDEX, int32 YINDEX, int32 NOTLISTED }}"
        );
        let _ = writeln!(w, "        Data {}", f.truncated.len());
        let _ = writeln!(w, "        {{");
        for (x, y, n) in &f.truncated {
            let _ = writeln!(w, "          {x} {y} {n};");
        }
        let _ = writeln!(w, "        }}");
        let _ = writeln!(w, "      }}");
    }
    if !f.repeaters.is_empty() {
        let _ = writeln!(w, "      List RepeaterList");
        let _ = writeln!(w, "      {{");
        let _ = writeln!(w, "        Columns 2 {{ int32 DEFECTID, int32 NDIES }}");
        let _ = writeln!(w, "        Data {}", f.repeaters.len());
        let _ = writeln!(w, "        {{");
        for (id, n) in &f.repeaters {
            let _ = writeln!(w, "          {id} {n};");
        }
        let _ = writeln!(w, "        }}");
        let _ = writeln!(w, "      }}");
    }
    let _ = writeln!(w, "      List SummaryList");
    let _ = writeln!(w, "      {{");
    let _ = writeln!(w, "        Columns 5 {{ int32 TESTNO, int32 NDEFECT, float DEFDENSITY, int32 NDIE, int32 NDEFDIE }}");
    let _ = writeln!(w, "        Data 1");
    let _ = writeln!(w, "        {{");
    let _ = writeln!(
        w,
        "          1 {} {:.6} {} {};",
        e.defects.len(),
        density_per_cm2(e.defects.len(), f.area_per_test_um2),
        f.inspected.len(),
        f.defective_dies
    );
    let _ = writeln!(w, "        }}");
    let _ = writeln!(w, "      }}");
    let _ = writeln!(w, "    }}");
}

#[cfg(test)]
mod tests {
    use super::klarf_time;

    #[test]
    fn timestamps_are_mm_dd_yy() {
        assert_eq!(klarf_time(0), "01-01-70 00:00:00");
        // 2026-11-26 10:56:59 UTC
        assert_eq!(klarf_time(1_795_690_619_000), "11-26-26 10:56:59");
        assert_eq!(klarf_time(951_782_400_000), "02-29-00 00:00:00", "leap day");
    }
}
