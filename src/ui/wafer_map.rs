//! The wafer map: wafer outline with notch, the die grid shaded by state,
//! defects as markers by class (shape and legend, not colour alone), hover
//! for attributes, click a die to open its defect gallery; what each
//! inspected die was compared with (a corner flag or bar per reference
//! mode, a cross for untrusted alignment, and a text legend with counts);
//! repeaters ringed with their die count; and the defects-per-wafer trend
//! of recent runs.

use super::command::UiCommand;
use super::die_grid::{DieRect, DieRects};
use crate::machine::DieSite;
use crate::pipeline::{DefectClass, DieResult, ReferenceMode};
use crate::run::ValidRecipe;
use crate::store::query::{DieRow, RunExport};
use crate::store::record::RepeaterMark;
use egui::{Color32, Ui};
use egui_plot::{Corner, Legend, Line, MarkerShape, Plot, PlotPoints, Points, Polygon};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DieMark {
    /// In the plan, not reached (yet).
    Pending,
    /// Not in the plan, or could not be imaged.
    NotInspected,
    Clean,
    Defective,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MapDefect {
    pub die_index: u32,
    pub defect_no: u32,
    /// From the wafer centre, mm, y up.
    pub x_mm: f64,
    pub y_mm: f64,
    pub class: DefectClass,
    pub area_um2: f64,
    pub size_um: (f64, f64),
    pub peak: u8,
    /// Dies its repeater group spans (found when the run ended); 0: not a
    /// repeater.
    pub repeater: u32,
}

/// What an inspected die was compared with, as the map draws it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DieReference {
    /// As stored with the die's result.
    pub mode: ReferenceMode,
    /// The golden die stood in for a missing neighbour.
    pub golden_side: bool,
    /// Alignment too poor to compare: no defects reported for the die.
    pub untrusted: bool,
}

/// How the map tells references apart (the golden die as a mere arbiter
/// between two neighbours is plain die-to-die).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefKind {
    BothNeighbours,
    NeighbourAndGolden,
    GoldenOnly,
    ReferenceImage,
}

impl RefKind {
    pub const ALL: [RefKind; 4] = [
        Self::BothNeighbours,
        Self::NeighbourAndGolden,
        Self::GoldenOnly,
        Self::ReferenceImage,
    ];

    /// The legend's name, with the marker drawn.
    pub fn label(self) -> &'static str {
        match self {
            Self::BothNeighbours => "die-to-die (plain)",
            Self::NeighbourAndGolden => {
                "die-to-die, golden for a missing neighbour (outlined corner)"
            }
            Self::GoldenOnly => "die-to-golden (filled corner ■)",
            Self::ReferenceImage => "die-to-reference (bar along the top)",
        }
    }
}

impl DieReference {
    pub fn kind(&self) -> RefKind {
        match self.mode {
            ReferenceMode::DieToGolden => RefKind::GoldenOnly,
            ReferenceMode::DieToReference => RefKind::ReferenceImage,
            _ if self.golden_side => RefKind::NeighbourAndGolden,
            _ => RefKind::BothNeighbours,
        }
    }
}

/// The legend name of dies whose alignment was not trusted.
pub const UNTRUSTED_LABEL: &str = "alignment untrusted, not compared (crossed out)";

/// The map of the current (or last) run, fed by die results.
#[derive(Default)]
pub struct WaferMapState {
    pub diameter_mm: f64,
    pub notch: String,
    pub die_size_um: (f64, f64),
    pub pixel_um: f64,
    pub image_px: u32,
    pub sites: Vec<DieSite>,
    pub marks: Vec<DieMark>,
    pub defects: Vec<MapDefect>,
    /// (die index, defects found beyond the per-die capacity and not
    /// listed) of every truncated die: their lists are incomplete, and the
    /// map says so.
    pub truncated: Vec<(u32, u32)>,
    /// What each site's die was compared with, once inspected.
    pub references: Vec<Option<DieReference>>,
    /// What loading the recipe said about its references (a die-to-die
    /// recipe whose plan leaves dies without neighbours).
    pub reference_note: Option<String>,
    pub selected: Option<u32>,
    pub run_id: u64,
    /// The summary line as shown: rebuilt at most once a second.
    summary_shown: super::once_per_second::OncePerSecond,
    /// The note on markers not drawn, as shown (once a second).
    markers_note_shown: super::once_per_second::OncePerSecond,
}

impl WaferMapState {
    /// A new, empty map for the recipe's wafer.
    pub fn for_recipe(r: &ValidRecipe) -> Self {
        let mut marks = vec![DieMark::NotInspected; r.sites.len()];
        for &i in &r.plan {
            marks[i as usize] = DieMark::Pending;
        }
        Self {
            diameter_mm: r.geometry.diameter_mm,
            notch: r.recipe.wafer.notch.clone(),
            die_size_um: r.geometry.die_size_um,
            pixel_um: r.recipe.optics.pixel_um,
            image_px: r.image_px,
            sites: r.sites.clone(),
            marks,
            defects: Vec::new(),
            truncated: Vec::new(),
            references: vec![None; r.sites.len()],
            reference_note: r.reference_note(),
            selected: None,
            run_id: 0,
            summary_shown: Default::default(),
            markers_note_shown: Default::default(),
        }
    }

    pub fn restart(&mut self, run_id: u64) {
        self.run_id = run_id;
        self.summary_shown.reset();
        self.markers_note_shown.reset();
        for m in &mut self.marks {
            if *m != DieMark::NotInspected {
                *m = DieMark::Pending;
            }
        }
        self.defects.clear();
        self.truncated.clear();
        self.references.iter_mut().for_each(|r| *r = None);
        self.selected = None;
    }

    /// A finished (or still recording) run's map as the database holds it:
    /// its recorded dies, their states and references, and every listed
    /// defect. Sites not in the run's plan are not recorded and not drawn.
    pub fn for_run(run: &RunExport) -> Self {
        let l = &run.layout;
        let mut dies: Vec<&DieRow> = run.dies.iter().collect();
        dies.sort_by_key(|d| d.die_index);
        // The die grid's own formula (machine::wafer_map::die_grid_offset).
        let origin = |col: i32, row: i32| {
            (
                col as f64 * l.die_pitch_um.0 - l.die_size_um.0 / 2.0 + l.grid_offset_um.0,
                row as f64 * l.die_pitch_um.1 - l.die_size_um.1 / 2.0 + l.grid_offset_um.1,
            )
        };
        let sites: Vec<DieSite> = dies
            .iter()
            .map(|d| DieSite {
                index: d.die_index,
                col: d.col,
                row: d.row,
                origin_um: origin(d.col, d.row),
                has_left: false,
                has_right: false,
            })
            .collect();
        let marks = dies
            .iter()
            .map(|d| match d.status.as_str() {
                "inspected" if d.defect_count + d.not_listed > 0 => DieMark::Defective,
                "inspected" => DieMark::Clean,
                "pending" => DieMark::Pending,
                _ => DieMark::NotInspected,
            })
            .collect();
        // Whether the golden die stood in for a missing neighbour is not
        // recorded: such dies are drawn as plain die-to-die.
        let references = dies
            .iter()
            .map(|d| {
                let mode = d
                    .reference_mode
                    .as_deref()
                    .and_then(|m| ReferenceMode::ALL.into_iter().find(|r| r.name() == m))?;
                Some(DieReference {
                    mode,
                    golden_side: false,
                    untrusted: d.alignment_untrusted.unwrap_or(false),
                })
            })
            .collect();
        let truncated = dies
            .iter()
            .filter(|d| d.not_listed > 0)
            .map(|d| (d.die_index, d.not_listed as u32))
            .collect();
        let defects = run
            .defects
            .iter()
            .filter_map(|f| {
                let site = sites.iter().find(|s| s.index == f.die_index)?;
                Some(MapDefect {
                    die_index: f.die_index,
                    defect_no: f.defect_no,
                    x_mm: (site.origin_um.0 + f.x_um) / 1000.0,
                    y_mm: (site.origin_um.1 + f.y_um) / 1000.0,
                    class: DefectClass::ALL
                        .into_iter()
                        .find(|c| c.number() == f.class_number)
                        .unwrap_or_default(),
                    area_um2: f.area_um2,
                    size_um: (f.width_um, f.height_um),
                    peak: f.peak_diff.clamp(0, 255) as u8,
                    repeater: f.repeater,
                })
            })
            .collect();
        Self {
            diameter_mm: l.diameter_mm,
            notch: l.notch.clone(),
            die_size_um: l.die_size_um,
            pixel_um: l.pixel_um,
            image_px: l.image_px,
            sites,
            marks,
            defects,
            truncated,
            references,
            reference_note: None,
            selected: None,
            run_id: run.run.id as u64,
            summary_shown: Default::default(),
            markers_note_shown: Default::default(),
        }
    }

    /// Where die `die` sits in `sites` (and `marks`, `references`): its
    /// index for a recipe's full grid, found by search for a recorded run
    /// whose plan skipped dies.
    fn slot(&self, die: u32) -> Option<usize> {
        match self.sites.get(die as usize) {
            Some(s) if s.index == die => Some(die as usize),
            _ => self.sites.binary_search_by_key(&die, |s| s.index).ok(),
        }
    }

    pub fn apply(&mut self, r: &DieResult) {
        let Some(slot) = self.slot(r.die_index) else {
            return;
        };
        let site = self.sites[slot];
        self.marks[slot] = if r.capture_failed {
            DieMark::NotInspected
        } else if r.count > 0 {
            DieMark::Defective
        } else {
            DieMark::Clean
        };
        if let Some(reference) = self.references.get_mut(slot) {
            *reference = (!r.capture_failed).then_some(DieReference {
                mode: r.reference_mode,
                golden_side: r.golden_left || r.golden_right,
                untrusted: r.alignment_untrusted,
            });
        }
        self.truncated.retain(|t| t.0 != r.die_index);
        if r.dropped > 0 {
            self.truncated.push((r.die_index, r.dropped));
        }
        for (n, d) in r.defects().iter().enumerate() {
            let (x, y) = d.position_um(self.pixel_um, self.image_px);
            self.defects.push(MapDefect {
                die_index: r.die_index,
                defect_no: n as u32 + 1,
                x_mm: (site.origin_um.0 + x) / 1000.0,
                y_mm: (site.origin_um.1 + y) / 1000.0,
                class: d.class,
                area_um2: d.area_px as f64 * self.pixel_um * self.pixel_um,
                size_um: (
                    d.width_px() as f64 * self.pixel_um,
                    d.height_px() as f64 * self.pixel_um,
                ),
                peak: d.peak_diff,
                repeater: 0,
            });
        }
    }

    /// The run's repeater analysis: marks each listed defect that repeats.
    pub fn apply_repeaters(&mut self, marks: &[RepeaterMark]) {
        for m in marks {
            if let Some(d) = self
                .defects
                .iter_mut()
                .find(|d| d.die_index == m.die_index && d.defect_no == m.defect_no)
            {
                d.repeater = m.dies;
            }
        }
    }

    /// Repeater defects on the map, and the distinct die counts of their
    /// groups (most widespread first).
    pub fn repeaters(&self) -> (usize, Vec<u32>) {
        let mut counts: Vec<u32> = self
            .defects
            .iter()
            .filter(|d| d.repeater > 0)
            .map(|d| d.repeater)
            .collect();
        let n = counts.len();
        counts.sort_unstable();
        counts.dedup();
        counts.reverse();
        (n, counts)
    }

    /// Inspected dies per kind of reference (in `RefKind::ALL` order), and
    /// dies with untrusted alignment.
    pub fn reference_counts(&self) -> ([usize; 4], usize) {
        let mut by_kind = [0; 4];
        let mut untrusted = 0;
        for r in self.references.iter().flatten() {
            by_kind[r.kind() as usize] += 1;
            untrusted += r.untrusted as usize;
        }
        (by_kind, untrusted)
    }

    /// The text legend of references: every kind in use, with its marker
    /// and how many dies; "" before any die is inspected.
    pub fn reference_legend(&self) -> String {
        let (by_kind, untrusted) = self.reference_counts();
        let mut parts: Vec<String> = RefKind::ALL
            .iter()
            .filter(|k| by_kind[**k as usize] > 0)
            .map(|k| format!("{} {}", k.label(), by_kind[*k as usize]))
            .collect();
        if untrusted > 0 {
            parts.push(format!("{UNTRUSTED_LABEL} {untrusted}"));
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!("Compared with: {}", parts.join("; "))
        }
    }

    /// The run ended: planned dies never reached are not inspected.
    pub fn finish(&mut self) {
        for m in &mut self.marks {
            if *m == DieMark::Pending {
                *m = DieMark::NotInspected;
            }
        }
    }

    /// Defects listed for `die` (the markers the map draws for it).
    pub fn listed(&self, die: u32) -> usize {
        self.defects.iter().filter(|d| d.die_index == die).count()
    }

    /// Defects found on `die` but not listed, if its list is truncated.
    pub fn not_listed(&self, die: u32) -> Option<u32> {
        self.truncated.iter().find(|t| t.0 == die).map(|t| t.1)
    }

    /// Defects found beyond the capacity on the whole wafer.
    pub fn total_not_listed(&self) -> u64 {
        self.truncated.iter().map(|t| t.1 as u64).sum()
    }

    /// One line about a die for its details: how many defects are listed,
    /// and whether (and by how much) the list is truncated.
    pub fn die_details(&self, die: u32) -> String {
        let listed = self.listed(die);
        let base = match self.not_listed(die) {
            Some(more) => format!(
                "Die {die}: {listed} defects listed, TRUNCATED: {more} more found, not listed (per-die capacity {})",
                crate::pipeline::MAX_DEFECTS_PER_DIE
            ),
            None => format!("Die {die}: {listed} defects"),
        };
        let reference = match self
            .slot(die)
            .and_then(|i| self.references.get(i).copied().flatten())
        {
            Some(r) if r.untrusted => format!(
                "; reference {}: ALIGNMENT UNTRUSTED, not compared",
                r.mode.name()
            ),
            Some(r) => format!("; reference {}", r.mode.name()),
            None => String::new(),
        };
        let repeaters = self
            .defects
            .iter()
            .filter(|d| d.die_index == die && d.repeater > 0)
            .count();
        let repeaters = if repeaters > 0 {
            format!("; {repeaters} REPEATER defects")
        } else {
            String::new()
        };
        format!("{base}{reference}{repeaters}")
    }

    /// The summary line above the map.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} dies: {} clean, {} with defects, {} pending, {} not inspected; {} defects",
            self.sites.len(),
            self.count(DieMark::Clean),
            self.count(DieMark::Defective),
            self.count(DieMark::Pending),
            self.count(DieMark::NotInspected),
            self.defects.len()
        );
        if !self.truncated.is_empty() {
            s += &format!(
                " listed; {} dies TRUNCATED ({} more defects found, not listed)",
                self.truncated.len(),
                self.total_not_listed()
            );
        }
        let (repeaters, counts) = self.repeaters();
        if repeaters > 0 {
            let on: Vec<String> = counts.iter().map(|c| c.to_string()).collect();
            s += &format!(
                "; {repeaters} REPEATER defects (ringed, on {} dies)",
                on.join(", ")
            );
        }
        s
    }

    pub fn count(&self, m: DieMark) -> usize {
        self.marks.iter().filter(|x| **x == m).count()
    }

    fn die_at(&self, x_mm: f64, y_mm: f64) -> Option<u32> {
        let (sx, sy) = (self.die_size_um.0 / 1000.0, self.die_size_um.1 / 1000.0);
        self.sites
            .iter()
            .find(|s| {
                let (ox, oy) = (s.origin_um.0 / 1000.0, s.origin_um.1 / 1000.0);
                x_mm >= ox && x_mm <= ox + sx && y_mm >= oy && y_mm <= oy + sy
            })
            .map(|s| s.index)
    }
}

pub fn class_marker(c: DefectClass) -> (MarkerShape, Color32) {
    // Defects are results, not alarms: dark neutral tones, told apart by
    // shape.
    match c {
        DefectClass::Particle => (MarkerShape::Circle, Color32::from_rgb(0x10, 0x10, 0x10)),
        DefectClass::Scratch => (MarkerShape::Cross, Color32::from_rgb(0x30, 0x30, 0x70)),
        DefectClass::Residue => (MarkerShape::Square, Color32::from_rgb(0x40, 0x40, 0x40)),
        DefectClass::Pattern => (MarkerShape::Diamond, Color32::from_rgb(0x20, 0x50, 0x50)),
        DefectClass::Unknown => (MarkerShape::Asterisk, Color32::from_rgb(0x50, 0x50, 0x50)),
    }
}

/// Defect markers drawn per die: enough to show where its defects lie. A
/// hazy or mis-coated wafer lists up to 64 a die, some 38,000 a wafer, and
/// tessellating that many markers made the window's frames 70-90 ms at p99
/// (BENCHMARKS.md, the window under a bad wafer). A die's gallery lists
/// every defect; repeaters keep their rings.
pub const MARKERS_PER_DIE: usize = 8;

/// Which of `defects` get a class marker (the first `per_die` listed of
/// each die), and how many do not.
fn drawn_markers(defects: &[MapDefect], per_die: usize) -> (Vec<bool>, usize) {
    let mut per: std::collections::HashMap<u32, usize> = std::collections::HashMap::new();
    let mut not_drawn = 0;
    let drawn = defects
        .iter()
        .map(|d| {
            let n = per.entry(d.die_index).or_insert(0);
            *n += 1;
            let drawn = *n <= per_die;
            not_drawn += !drawn as usize;
            drawn
        })
        .collect();
    (drawn, not_drawn)
}

pub fn ui(ui: &mut Ui, map: &mut WaferMapState, out: &mut Vec<UiCommand>) {
    if map.sites.is_empty() {
        ui.label("Load a recipe to see its wafer map.");
        return;
    }
    // Once a second (HMI rule 8); the dies on the map change as they come.
    let summary = map.summary();
    ui.label(map.summary_shown.get(std::time::Instant::now(), || summary));
    let (drawn, not_drawn) = drawn_markers(&map.defects, MARKERS_PER_DIE);
    if not_drawn > 0 {
        ui.label(map.markers_note_shown.get(std::time::Instant::now(), || {
            format!(
                "Markers: the first {MARKERS_PER_DIE} defects of each die are drawn, {not_drawn} more \
                 are not; click a die to list all of its defects"
            )
        }));
    }
    let map = &*map;
    if let Some(note) = &map.reference_note {
        ui.label(format!("Note: {note}"));
    }
    let legend = map.reference_legend();
    if !legend.is_empty() {
        ui.label(legend);
    }
    if let Some(d) = map.selected {
        ui.label(map.die_details(d));
    }
    let r = map.diameter_mm / 2.0;
    let defects = &map.defects;
    let plot = Plot::new("wafer_map")
        .data_aspect(1.0)
        .legend(Legend::default().position(Corner::RightTop))
        .allow_scroll(false)
        .label_formatter(move |hp| match hp {
            egui_plot::HoverPosition::NearDataPoint { position, .. } => defects
                .iter()
                .find(|d| (d.x_mm - position.x).abs() < 1e-6 && (d.y_mm - position.y).abs() < 1e-6)
                .map(|d| {
                    let repeater = if d.repeater > 0 {
                        format!("\nREPEATER on {} dies", d.repeater)
                    } else {
                        String::new()
                    };
                    format!(
                        "die {} defect {}\n{} {:.0}×{:.0} µm, area {:.0} µm²\npeak {}\nat ({:.2}, {:.2}) mm{repeater}",
                        d.die_index,
                        d.defect_no,
                        d.class.name(),
                        d.size_um.0,
                        d.size_um.1,
                        d.area_um2,
                        d.peak,
                        d.x_mm,
                        d.y_mm
                    )
                }),
            egui_plot::HoverPosition::Elsewhere { position } => Some(format!("({:.1}, {:.1}) mm", position.x, position.y)),
        });
    let response = plot.show(ui, |pu| {
        // Outline with the notch (a small V at the notch side).
        let notch_angle = match map.notch.as_str() {
            "up" => std::f64::consts::FRAC_PI_2,
            "left" => std::f64::consts::PI,
            "right" => 0.0,
            _ => -std::f64::consts::FRAC_PI_2,
        };
        let outline: PlotPoints = (0..=360)
            .map(|i| {
                let a = i as f64 / 360.0 * std::f64::consts::TAU;
                let d = (a - notch_angle).rem_euclid(std::f64::consts::TAU);
                let d = d.min(std::f64::consts::TAU - d);
                let rr = if d < 0.012 {
                    r - 3.0 * (1.0 - d / 0.012)
                } else {
                    r
                };
                [rr * a.cos(), rr * a.sin()]
            })
            .collect();
        pu.line(Line::new("wafer", outline).color(Color32::from_gray(40)));
        let (sx, sy) = (map.die_size_um.0 / 1000.0, map.die_size_um.1 / 1000.0);
        // One item (and legend entry) per kind of mark, each one mesh of
        // rectangles (`die_grid`): not a tessellated polygon per die.
        let mut kinds = [
            DieRects::new("pending", Color32::from_gray(225)),
            DieRects::new("not inspected", Color32::from_gray(200)),
            DieRects::new("clean", Color32::from_gray(170)),
            DieRects::new("with defects", Color32::from_gray(120)),
            // A truncated die reads apart by a heavy outline and its own
            // legend entry, not by colour.
            DieRects::new(
                "with defects, TRUNCATED (more found than listed)",
                Color32::from_gray(120),
            ),
        ];
        for (s, m) in map.sites.iter().zip(&map.marks) {
            let (x, y) = (s.origin_um.0 / 1000.0, s.origin_um.1 / 1000.0);
            let truncated = map.not_listed(s.index).is_some();
            let (kind, mut outline_px, mut outline) = match m {
                DieMark::Pending => (0, 1.0, Color32::from_gray(150)),
                DieMark::NotInspected => (1, 1.0, Color32::from_gray(150)),
                DieMark::Clean => (2, 1.0, Color32::from_gray(110)),
                DieMark::Defective if truncated => (4, 2.0, Color32::from_gray(20)),
                DieMark::Defective => (3, 1.0, Color32::from_gray(90)),
            };
            if map.selected == Some(s.index) {
                (outline_px, outline) = (2.0, Color32::BLACK);
            }
            kinds[kind].push(DieRect {
                min_mm: [x, y],
                max_mm: [x + sx, y + sy],
                outline_px,
                outline,
            });
        }
        for k in kinds {
            if !k.is_empty() {
                pu.add(k);
            }
        }
        // What each die was compared with: a flag in its upper-left corner
        // (shape and fill, not colour), a cross over the die when its
        // alignment was not trusted. Plain die-to-die has no flag.
        let ink = Color32::from_gray(30);
        for (s, r) in map.sites.iter().zip(&map.references) {
            let Some(r) = r else { continue };
            let (x, y) = (s.origin_um.0 / 1000.0, s.origin_um.1 / 1000.0);
            let (fx, fy) = (sx * 0.4, sy * 0.4);
            let top = y + sy;
            let corner = vec![[x, top], [x + fx, top], [x, top - fy]];
            let name = r.kind().label();
            match r.kind() {
                RefKind::BothNeighbours => {}
                RefKind::GoldenOnly => pu.polygon(
                    Polygon::new(name, corner)
                        .fill_color(ink)
                        .stroke(egui::Stroke::new(1.0, ink)),
                ),
                RefKind::NeighbourAndGolden => pu.polygon(
                    Polygon::new(name, corner)
                        .fill_color(Color32::TRANSPARENT)
                        .stroke(egui::Stroke::new(1.0, ink)),
                ),
                RefKind::ReferenceImage => pu.polygon(
                    Polygon::new(
                        name,
                        vec![
                            [x, top],
                            [x + sx, top],
                            [x + sx, top - fy / 3.0],
                            [x, top - fy / 3.0],
                        ],
                    )
                    .fill_color(ink)
                    .stroke(egui::Stroke::new(1.0, ink)),
                ),
            }
            if r.untrusted {
                let stroke = egui::Stroke::new(2.0, Color32::BLACK);
                pu.line(Line::new(UNTRUSTED_LABEL, vec![[x, y], [x + sx, y + sy]]).stroke(stroke));
                pu.line(Line::new(UNTRUSTED_LABEL, vec![[x, y + sy], [x + sx, y]]).stroke(stroke));
            }
        }
        // Repeaters: a ring around each member, one legend entry per die
        // count.
        let (_, counts) = map.repeaters();
        for n in counts {
            let pts: Vec<[f64; 2]> = map
                .defects
                .iter()
                .filter(|d| d.repeater == n)
                .map(|d| [d.x_mm, d.y_mm])
                .collect();
            pu.points(
                Points::new(format!("repeater on {n} dies (ring)"), pts)
                    .shape(MarkerShape::Circle)
                    .color(Color32::BLACK)
                    .radius(7.0)
                    .filled(false),
            );
        }
        for c in DefectClass::ALL {
            let pts: Vec<[f64; 2]> = map
                .defects
                .iter()
                .zip(&drawn)
                .filter(|(d, &drawn)| drawn && d.class == c)
                .map(|(d, _)| [d.x_mm, d.y_mm])
                .collect();
            if pts.is_empty() {
                continue;
            }
            let (shape, color) = class_marker(c);
            pu.points(
                Points::new(c.name(), pts)
                    .shape(shape)
                    .color(color)
                    .radius(3.0)
                    .filled(true),
            );
        }
        if pu.response().clicked() {
            pu.pointer_coordinate().map(|p| map.die_at(p.x, p.y))
        } else {
            None
        }
    });
    if let Some(die) = response.inner {
        out.push(UiCommand::SelectDie(die));
    }
}

/// Defects per wafer over the recent recorded runs.
pub fn history_ui(ui: &mut Ui, runs: &[crate::store::query::RunRow]) {
    let recent: Vec<_> = runs.iter().take(30).rev().collect();
    if recent.is_empty() {
        ui.label("No recorded runs yet.");
        return;
    }
    let pts: Vec<[f64; 2]> = recent
        .iter()
        .map(|r| [r.id as f64, r.defects as f64])
        .collect();
    Plot::new("defects_per_wafer")
        .height(120.0)
        .allow_scroll(false)
        .label_formatter(|hp| match hp {
            egui_plot::HoverPosition::NearDataPoint { position, .. } => {
                Some(format!("run {:.0}: {:.0} defects", position.x, position.y))
            }
            _ => None,
        })
        .show(ui, |pu| {
            pu.line(Line::new("defects per wafer", pts.clone()).color(Color32::from_gray(50)));
            pu.points(
                Points::new("runs", pts)
                    .radius(2.5)
                    .color(Color32::from_gray(30)),
            );
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defect(die_index: u32, defect_no: u32) -> MapDefect {
        MapDefect {
            die_index,
            defect_no,
            x_mm: die_index as f64,
            y_mm: defect_no as f64,
            class: DefectClass::Particle,
            area_um2: 10.0,
            size_um: (3.0, 3.0),
            peak: 40,
            repeater: 0,
        }
    }

    /// A heavy die shows its first markers, a light one all of its own,
    /// and the rest are counted, not silently dropped.
    #[test]
    fn each_die_draws_its_first_markers_and_the_rest_are_counted() {
        let mut defects: Vec<MapDefect> = (1..=20).map(|n| defect(7, n)).collect();
        defects.extend((1..=2).map(|n| defect(9, n)));
        defects.push(defect(7, 21));
        let (drawn, not_drawn) = drawn_markers(&defects, MARKERS_PER_DIE);
        assert_eq!(not_drawn, 21 - MARKERS_PER_DIE);
        let drawn_of = |die: u32| {
            defects
                .iter()
                .zip(&drawn)
                .filter(|(d, &k)| k && d.die_index == die)
                .map(|(d, _)| d.defect_no)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            drawn_of(7),
            (1..=MARKERS_PER_DIE as u32).collect::<Vec<_>>()
        );
        assert_eq!(drawn_of(9), vec![1, 2]);
    }
}
