#![cfg(feature = "gui")]
//! A lot from the window, driven through egui_kittest on the real app
//! state: load a carrier of 25 slots (2 empty, slot 4 double-slotted), pick
//! slots 1–6, start the lot: five wafers complete, the double-slotted one
//! is skipped and the panel says why, five KLARF 1.2 files whose defect
//! counts are the database's; then "Stop after this wafer" ends a second
//! lot after the wafer in hand.

use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::Harness;
use std::path::{Path, PathBuf};
use std::time::Duration;
use waferscope::machine::sim::SimCarrier;
use waferscope::station::{Station, StationConfig};
use waferscope::ui::StationApp;

#[path = "common/sign_in.rs"]
mod sign_in;
#[path = "common/window.rs"]
mod window;
use window::{harness, has};

fn app(d: &Path) -> StationApp {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    std::fs::create_dir_all(d.join("klarf")).unwrap();
    let station = Station::start(StationConfig {
        db: d.join("station.db"),
        alarms: root.join("assets/alarms.toml"),
        recipes: root.join("assets/recipes"),
        thumbnails: d.join("thumbnails"),
        klarf_dir: Some(d.join("klarf")),
        paced: false,
        resume_after: Duration::from_millis(300),
        carrier: SimCarrier::with("FOUP-K", 700, &[10, 20], &[4], &[]),
        ..StationConfig::default()
    })
    .unwrap();
    sign_in::as_administrator(StationApp::new(station).unwrap())
}

fn wait_for(
    h: &mut Harness<'static, StationApp>,
    what: &str,
    cond: impl FnMut(&Harness<'static, StationApp>) -> bool,
) {
    window::wait_within(h, what, Duration::from_secs(120), cond)
}

fn slot_box<'a>(h: &'a Harness<'static, StationApp>, label: &'a str) -> egui_kittest::Node<'a> {
    h.get_by_role_and_label(egui::accesskit::Role::CheckBox, label)
}

fn checked(h: &Harness<'static, StationApp>, label: &str) -> bool {
    slot_box(h, label).accesskit_node().toggled() == Some(egui::accesskit::Toggled::True)
}

/// `NDEFECT n;`-style figure of a KLARF 1.2 text: the defect rows listed.
fn klarf_defect_rows(text: &str) -> usize {
    let list = text.split("DefectList").nth(1).expect("a DefectList");
    list.lines()
        .skip(1)
        .take_while(|l| l.starts_with(' '))
        .count()
}

#[test]
fn an_operator_runs_slots_1_to_6_of_a_carrier_and_stops_a_lot_after_a_wafer() {
    let d = std::env::temp_dir().join(format!("waferscope-ui-lot-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    let mut h = harness(app(&d));
    h.run_steps(2);
    wait_for(&mut h, "healthy", |h| has(h, "Health ✔ OK"));
    // The lot runs the recipe chosen in Run control: the sampled one.
    h.get_by_role_and_label(egui::accesskit::Role::ComboBox, "Recipe")
        .click();
    h.run_steps(2);
    h.get_by_label("sampled-200mm.toml").click();
    h.run_steps(2);
    h.get_by_label("Carrier").click();
    h.run_steps(2);
    assert!(has(&h, "No carrier docked."));
    h.get_by_label("Load carrier").click();
    wait_for(&mut h, "the slot map", |h| has(h, "Carrier FOUP-K"));
    // Every slot holding one wafer is picked; slot 4 cannot be.
    assert!(checked(&h, "Slot 1") && checked(&h, "Slot 25"));
    assert!(slot_box(&h, "Slot 4").accesskit_node().is_disabled());
    assert!(slot_box(&h, "Slot 10").accesskit_node().is_disabled());
    assert!(has(&h, "double-slotted"));
    assert!(has(&h, "22 slots picked; recipe sampled-200mm.toml"));

    h.get_by_label("Pick none").click();
    h.run_steps(2);
    for s in 1..=6 {
        if s != 4 {
            h.get_by_role_and_label(egui::accesskit::Role::CheckBox, &format!("Slot {s}"))
                .click();
            h.run_steps(1);
        }
    }
    // Slot 3's id cannot be read: the operator types it.
    h.state().station.handling_faults.make_id_unreadable(3);
    h.get_by_role_and_label(egui::accesskit::Role::TextInput, "Slot 3")
        .click();
    h.run_steps(1);
    h.get_by_role_and_label(egui::accesskit::Role::TextInput, "Slot 3")
        .type_text("HAND-03");
    h.run_steps(2);
    h.run_steps(2);
    assert!(has(&h, "5 slots picked"), "slots 1-3, 5, 6");
    let lot = h.get_by_role_and_label(egui::accesskit::Role::TextInput, "Lot id");
    lot.click();
    h.run_steps(1);
    h.get_by_role_and_label(egui::accesskit::Role::TextInput, "Lot id")
        .type_text("-K");
    h.run_steps(2);
    h.get_by_label("Start lot").click();
    wait_for(&mut h, "the lot to end", |h| {
        has(h, "Lot LOT-001-K complete")
    });
    assert!(has(&h, "Lot LOT-001-K complete: 5 wafers run"));
    for s in [1, 2, 5, 6] {
        assert!(has(&h, &format!("FOUP-K-{s:02}")), "slot {s}'s wafer id");
    }
    assert!(has(&h, "HAND-03"), "slot 3's typed id");
    // Slot 4 was never part of the pick (the operator could not pick it).

    // The database has the five wafers; each KLARF 1.2 file lists as many
    // defects as its run recorded.
    let conn = waferscope::store::export::open_existing(&d.join("station.db")).unwrap();
    let runs = waferscope::store::query::list_runs(&conn).unwrap();
    assert_eq!(runs.len(), 5);
    let files: Vec<String> = std::fs::read_dir(d.join("klarf"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .filter(|t| t.contains("FileVersion 1 2;"))
        .collect();
    assert_eq!(files.len(), 5);
    for r in &runs {
        let id = format!("WaferID \"{}\";", r.wafer);
        let text = files.iter().find(|t| t.contains(&id)).expect(&id);
        assert_eq!(klarf_defect_rows(text), r.defects as usize, "{}", r.wafer);
        assert_eq!(r.lot, "LOT-001-K");
    }

    // The lot view shows the lot that just ended: its five wafers.
    h.get_by_label("Lot view").click();
    wait_for(&mut h, "the lot view", |h| {
        has(h, "Lot LOT-001-K: 5 wafers, ")
    });
    assert!(has(&h, "Stack map (all wafers)"));
    assert!(has(
        &h,
        "No control limits: fewer than 5 earlier wafers of this recipe."
    ));
    h.get_by_label("Carrier").click();
    h.run_steps(2);

    // A second lot, all picked wafers: stop after the wafer in hand.
    h.get_by_label("Pick all wafers").click();
    h.run_steps(2);
    h.get_by_label("Start lot").click();
    wait_for(&mut h, "a wafer inspecting", |h| has(h, "inspecting"));
    assert!(has(&h, "of 22 of the lot"), "the strip follows the lot");
    h.get_by_label("Stop after this wafer").click();
    wait_for(&mut h, "the lot stopped", |h| {
        has(h, "Lot LOT-001-K stopped")
    });
    assert!(has(&h, "stopped after the wafer in hand, as asked"));
    assert!(has(&h, "not run: in its slot: the lot ended first"));
    let after = waferscope::store::query::list_runs(&conn).unwrap().len();
    assert!(
        (6..=7).contains(&after),
        "one or two more wafers (the one in hand, and none after it): {after}"
    );
    drop(h);
    std::fs::remove_dir_all(d).ok();
}
