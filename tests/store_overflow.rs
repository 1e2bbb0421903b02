//! A die with more defects than the per-die capacity: the database, the
//! KLARF files and the wafer map count the same defects (the ones listed,
//! which is what KLARF's NDEFECT must match), and each says the die is
//! truncated and by how many.

use waferscope::pipeline::{Defect, DefectClass, DieResult, MAX_DEFECTS_PER_DIE};
use waferscope::store::export::{export_run, Format};
use waferscope::store::query::load_run;
use waferscope::store::{db, ExitStatus, RunIdentity, RunStart, RunStore, SqliteStore};
use waferscope::ui::wafer_map::WaferMapState;

const RECIPE: &str = r#"
id = "TEST-200"
name = "test wafer"
[wafer]
diameter_mm = 200
die_pitch_um = [16100.0, 16100.0]
die_size_um = [16000.0, 16000.0]
notch = "down"
edge_exclusion_mm = 3.0
[plan]
mode = "all"
[inspection]
threshold = 24
min_defect_px = 2
[optics]
pixel_um = 31.25
illumination_setpoint_pct = 100.0
exposure_us = 100.0
"#;

const FOUND: usize = MAX_DEFECTS_PER_DIE + 6;

fn crowded_die(index: u32) -> DieResult {
    let mut r = DieResult::default();
    r.clear(index);
    for k in 0..FOUND {
        r.push(Defect {
            x_px: 10.0 + k as f32 * 4.0,
            y_px: 100.0,
            bbox: [8, 98, 12, 102],
            area_px: 9,
            peak_diff: 80,
            mean_diff: 60.0,
            class: DefectClass::Particle,
            ..Defect::default()
        });
    }
    r
}

fn ndefect_12(text: &str) -> i64 {
    let line = text
        .lines()
        .skip_while(|l| !l.starts_with("SummaryList"))
        .nth(1)
        .unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn rows_12(text: &str) -> usize {
    text.lines()
        .skip_while(|l| !l.starts_with("DefectList"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .count()
}

#[test]
fn database_klarf_and_map_agree_on_a_truncated_die() {
    let d = std::env::temp_dir().join(format!("waferscope-overflow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    let recipe = waferscope::run::recipe::parse(RECIPE).unwrap();
    let die = recipe.plan[0];
    let other = recipe.plan[1];
    let result = crowded_die(die);
    assert_eq!(result.dropped as usize, FOUND - MAX_DEFECTS_PER_DIE);

    // Database.
    let path = d.join("results.db");
    let mut store = SqliteStore::open(&path).unwrap();
    let id = store
        .begin(&RunStart {
            identity: RunIdentity {
                lot: "LOT-O".into(),
                wafer: "W05".into(),
                slot: 5,
                operator: "Ana".into(),
            },
            recipe_id: recipe.recipe.id.clone(),
            recipe_hash: recipe.hash.clone(),
            plan: recipe.plan.clone(),
            started_unix_ms: 1_795_690_619_000,
            layout: recipe.layout(),
        })
        .unwrap();
    store.record_die(id, &result).unwrap();
    let mut clean = DieResult::default();
    clean.clear(other);
    store.record_die(id, &clean).unwrap();
    store
        .end(
            id,
            ExitStatus::Stopped,
            "stopped by the operator",
            1_795_690_700_000,
        )
        .unwrap();
    drop(store);
    let conn = db::open(&path).unwrap();
    assert_eq!(db::integrity(&conn).unwrap(), "ok");
    let e = load_run(&conn, id as i64).unwrap();
    let row = e.dies.iter().find(|x| x.die_index == die).unwrap();
    let db_rows = e.defects.iter().filter(|f| f.die_index == die).count() as i64;
    let db_count = row.defect_count;
    assert_eq!(db_rows, db_count, "the die's count is its rows");
    assert!(row.truncated(), "the database marks the die truncated");
    assert_eq!(row.not_listed, (FOUND - MAX_DEFECTS_PER_DIE) as i64);
    assert!(!e
        .dies
        .iter()
        .find(|x| x.die_index == other)
        .unwrap()
        .truncated());
    assert_eq!(e.run.defects_not_listed, row.not_listed);

    // KLARF 1.2 and 1.8.
    let k12 =
        std::fs::read_to_string(export_run(&path, id as i64, Format::Klarf12, Some(&d)).unwrap())
            .unwrap();
    let k18 =
        std::fs::read_to_string(export_run(&path, id as i64, Format::Klarf18, Some(&d)).unwrap())
            .unwrap();
    let ndefect = ndefect_12(&k12);
    assert_eq!(
        rows_12(&k12) as i64,
        ndefect,
        "NDEFECT matches the rows listed"
    );
    let (col, row_i) = e
        .dies
        .iter()
        .find(|x| x.die_index == die)
        .map(|x| (x.col, x.row))
        .unwrap();
    let cmin = e.dies.iter().map(|x| x.col).min().unwrap();
    let rmin = e.dies.iter().map(|x| x.row).min().unwrap();
    let marker = format!(
        " {} {} {}",
        col - cmin,
        row_i - rmin,
        FOUND - MAX_DEFECTS_PER_DIE
    );
    let truncated_12: Vec<&str> = k12
        .lines()
        .skip_while(|l| !l.starts_with("TruncatedDieList"))
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .collect();
    assert_eq!(
        truncated_12,
        [format!("{marker};")],
        "KLARF 1.2 marks the die:\n{k12}"
    );
    assert!(k12.contains("TruncatedDieSpec 3 XINDEX YINDEX NOTLISTED;"));
    assert!(
        k18.contains("List TruncatedDieList") && k18.contains(&format!("         {marker};")),
        "KLARF 1.8 marks the die:\n{k18}"
    );
    let summary_18 = k18
        .lines()
        .skip_while(|l| !l.contains("List SummaryList"))
        .nth(5)
        .unwrap();
    assert_eq!(
        summary_18
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<i64>()
            .unwrap(),
        ndefect,
        "1.8 NDEFECT"
    );

    // The wafer map.
    let mut map = WaferMapState::for_recipe(&recipe);
    map.restart(id);
    map.apply(&result);
    map.apply(&clean);
    let ui_count = map.listed(die) as i64;
    assert_eq!(
        map.defects.len() as i64,
        ui_count,
        "the map's total is this die's"
    );
    assert_eq!(
        map.not_listed(die),
        Some((FOUND - MAX_DEFECTS_PER_DIE) as u32)
    );
    assert_eq!(map.not_listed(other), None);
    let details = map.die_details(die);
    assert!(
        details.contains(&format!("{ui_count} defects listed"))
            && details.contains(&format!(
                "TRUNCATED: {} more found",
                FOUND - MAX_DEFECTS_PER_DIE
            )),
        "{details}"
    );
    assert!(
        map.summary().contains("1 dies TRUNCATED"),
        "{}",
        map.summary()
    );

    // All three agree.
    assert_eq!(
        (db_count, ndefect, ui_count),
        (db_count, db_count, db_count)
    );
    assert_eq!(db_count, MAX_DEFECTS_PER_DIE as i64);
    std::fs::remove_dir_all(d).ok();
}
