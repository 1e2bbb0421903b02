//! The History tab: the run list (filtered by lot and date, a bounded
//! query with a "showing N of M" note) and the review of one past run —
//! its wafer map, its defect table sortable by column, and the gallery of
//! a die clicked on its map. Every database read happens on the history
//! reader's thread (`station::history_query`), never on the UI thread.

use super::command::UiCommand;
use super::gallery::Gallery;
use super::wafer_map::{self, WaferMapState};
use crate::station::history_query::{HistoryAnswer, HistoryQueries, HistoryRequest};
use crate::store::query::{DefectRow, RunExport, RunFilter, RunRow};
use egui::{RichText, Ui};
use std::path::PathBuf;
use std::time::Duration;

/// How far back the run list looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DateRange {
    Last24Hours,
    #[default]
    Last7Days,
    All,
}

impl DateRange {
    pub const ALL: [DateRange; 3] = [Self::Last24Hours, Self::Last7Days, Self::All];

    pub fn label(self) -> &'static str {
        match self {
            Self::Last24Hours => "last 24 h",
            Self::Last7Days => "last 7 days",
            Self::All => "all",
        }
    }

    fn max_age(self) -> Option<Duration> {
        match self {
            Self::Last24Hours => Some(Duration::from_secs(24 * 3600)),
            Self::Last7Days => Some(Duration::from_secs(7 * 24 * 3600)),
            Self::All => None,
        }
    }
}

/// The History tab: its reader, the run list and the review of the run
/// opened.
pub struct HistoryPanel {
    db: PathBuf,
    thumbnails: PathBuf,
    /// Started the first time the tab is shown.
    queries: Option<HistoryQueries>,
    pub list: RunList,
    pub review: RunReview,
    /// The last query that failed, or why the reader is not running.
    pub error: Option<String>,
}

impl HistoryPanel {
    pub fn new(db: PathBuf, thumbnails: PathBuf) -> Self {
        Self {
            db,
            thumbnails,
            queries: None,
            list: RunList::default(),
            review: RunReview::default(),
            error: None,
        }
    }

    /// Takes the reader's answers and the gallery's thumbnails (between
    /// frames; called every frame, cheap when nothing came).
    pub fn poll(&mut self, ctx: &egui::Context) {
        while let Some(a) = self.queries.as_ref().and_then(|q| q.try_answer()) {
            match a {
                HistoryAnswer::List { runs, total, .. } => {
                    self.list.runs = runs;
                    self.list.total = total;
                    self.error = None;
                }
                HistoryAnswer::Run(run) => {
                    // A click on another run since: show the newest ask.
                    if self.review.loading == Some(run.run.id) {
                        self.review.show(*run);
                    }
                }
                HistoryAnswer::Error(why) => {
                    self.review.loading = None;
                    self.error = Some(why);
                }
            }
        }
        self.review.gallery.poll(ctx);
    }

    pub fn ui(&mut self, ui: &mut Ui, out: &mut Vec<UiCommand>) {
        if self.queries.is_none() {
            let ctx = ui.ctx().clone();
            match HistoryQueries::start(self.db.clone(), move || ctx.request_repaint()) {
                Ok(q) => self.queries = Some(q),
                Err(e) => {
                    self.error = Some(format!("the history reader cannot start: {e}"));
                }
            }
        }
        if let Some(why) = &self.error {
            // A data fault, not an alarm: icon and text, no alarm colour.
            ui.label(RichText::new(format!("✖ {why}")).strong());
        }
        let mut open = None;
        egui::Frame::new().show(ui, |ui| {
            ui.set_max_height(ui.available_height() * 0.38);
            open = self.list.ui(ui);
        });
        if let Some(filter) = self.list.wanted() {
            self.ask(HistoryRequest::List(filter));
        }
        if let Some(id) = open {
            self.review.loading = Some(id);
            self.ask(HistoryRequest::Load(id));
        }
        ui.separator();
        self.review.ui(ui, &self.thumbnails, out);
    }

    fn ask(&mut self, r: HistoryRequest) {
        let Some(q) = &self.queries else { return };
        if let Err(why) = q.ask(r) {
            self.error = Some(why);
        }
    }
}

/// The list of recorded runs and its filter.
#[derive(Default)]
pub struct RunList {
    /// Lot ids containing this text (any case); empty: every lot.
    pub lot: String,
    pub range: DateRange,
    /// The filter last asked for (lot text, range).
    asked: Option<(String, DateRange)>,
    pub runs: Vec<RunRow>,
    /// Runs passing the filter in all.
    pub total: u64,
    /// The run opened for review.
    pub selected: Option<i64>,
}

/// Widths of the run list's columns: lot, wafer, slot, recipe, start,
/// duration, state, defects.
const RUN_COLUMNS: [(&str, f32); 8] = [
    ("Lot", 110.0),
    ("Wafer", 90.0),
    ("Slot", 40.0),
    ("Recipe", 150.0),
    ("Start", 190.0),
    ("Duration", 80.0),
    ("State", 110.0),
    ("Defects", 70.0),
];

impl RunList {
    /// The filter to ask for, when it changed since the last ask.
    fn wanted(&mut self) -> Option<RunFilter> {
        let now = (self.lot.trim().to_string(), self.range);
        if self.asked.as_ref() == Some(&now) {
            return None;
        }
        let filter = RunFilter {
            lot_contains: now.0.clone(),
            max_age: self.range.max_age(),
        };
        self.asked = Some(now);
        Some(filter)
    }

    /// Draws the list; returns the run clicked, if any.
    fn ui(&mut self, ui: &mut Ui) -> Option<i64> {
        ui.horizontal(|ui| {
            ui.heading("Runs");
            ui.add_space(16.0);
            let name = ui.label("Lot contains:");
            ui.add(
                egui::TextEdit::singleline(&mut self.lot)
                    .desired_width(140.0)
                    .hint_text("any lot"),
            )
            .labelled_by(name.id);
            ui.add_space(16.0);
            ui.label("Started:");
            for r in DateRange::ALL {
                ui.selectable_value(&mut self.range, r, r.label());
            }
        });
        let shown = self.runs.len() as u64;
        ui.label(if self.total > shown {
            format!("showing the newest {shown} of {} runs", self.total)
        } else {
            format!("{shown} run{}", if shown == 1 { "" } else { "s" })
        });
        header_row(ui, &RUN_COLUMNS.map(|(name, w)| (name.to_string(), w)));
        let mut clicked = None;
        egui::ScrollArea::vertical()
            .id_salt("history_runs")
            .max_height(ui.available_height())
            .auto_shrink([false, true])
            .show_rows(ui, row_height(ui), self.runs.len(), |ui, range| {
                for run in &self.runs[range] {
                    let selected = self.selected == Some(run.id);
                    let cells = run_cells(run);
                    ui.horizontal(|ui| {
                        for (text, (_, w)) in cells.iter().zip(RUN_COLUMNS) {
                            let r = ui.add_sized(
                                [w, row_height(ui)],
                                egui::Button::selectable(selected, text.as_str()),
                            );
                            if r.clicked() {
                                clicked = Some(run.id);
                            }
                        }
                    });
                }
            });
        if clicked.is_some() {
            self.selected = clicked;
        }
        clicked
    }
}

/// The run list's cells of one run, in `RUN_COLUMNS` order.
fn run_cells(run: &RunRow) -> [String; 8] {
    let duration = match run.ended_unix_ms {
        Some(end) => {
            let s = (end - run.started_unix_ms).max(0) / 1000;
            format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
        }
        None => "—".into(),
    };
    [
        run.lot.clone(),
        run.wafer.clone(),
        run.slot.to_string(),
        run.recipe_id.clone(),
        super::clock::local_date_time_text(run.started_unix_ms.div_euclid(1000)),
        duration,
        run.status_label().to_uppercase(),
        if run.defects_not_listed > 0 {
            format!("{}+{}", run.defects, run.defects_not_listed)
        } else {
            run.defects.to_string()
        },
    ]
}

fn row_height(ui: &Ui) -> f32 {
    ui.spacing().interact_size.y
}

fn header_row(ui: &mut Ui, columns: &[(String, f32)]) {
    ui.horizontal(|ui| {
        for (name, w) in columns {
            ui.add_sized(
                [*w, row_height(ui)],
                egui::Label::new(RichText::new(name).strong()),
            );
        }
    });
}

/// The run opened for review: its map, its defect table and the gallery
/// of a die clicked on the map.
#[derive(Default)]
pub struct RunReview {
    pub run: Option<Box<RunExport>>,
    pub map: WaferMapState,
    pub table: DefectTable,
    gallery: Gallery,
    /// The run asked for and not yet shown.
    pub loading: Option<i64>,
}

impl RunReview {
    fn show(&mut self, run: RunExport) {
        self.loading = None;
        self.map = WaferMapState::for_run(&run);
        self.table = DefectTable::new(&run.defects);
        self.gallery = Gallery::default();
        self.run = Some(Box::new(run));
    }

    fn ui(&mut self, ui: &mut Ui, thumbnails: &std::path::Path, commands: &mut Vec<UiCommand>) {
        let Some(run) = &self.run else {
            ui.label(match self.loading {
                Some(id) => format!("Reading run {id}…"),
                None => "Click a run to see its wafer map and defects.".into(),
            });
            return;
        };
        let r = &run.run;
        ui.heading(format!(
            "Run {}: lot {}, wafer {}, slot {}, recipe {}, {}",
            r.id,
            r.lot,
            r.wafer,
            r.slot,
            r.recipe_id,
            r.status_label().to_uppercase()
        ));
        if let Some(reason) = r.reason.as_deref().filter(|s| !s.is_empty()) {
            ui.label(format!("Reason: {reason}"));
        }
        ui.horizontal(|ui| {
            for (format, label) in super::export_run::FORMATS {
                if ui.button(format!("Export {label}…")).clicked() {
                    commands.push(UiCommand::ExportRun {
                        run: Box::new(r.clone()),
                        format,
                    });
                }
            }
        });
        if let Some(id) = self.loading {
            ui.label(format!("Reading run {id}…"));
        }
        let mut out = Vec::new();
        let run_id = r.id;
        ui.columns(2, |cols| {
            cols[0].push_id("history_map", |ui| {
                wafer_map::ui(ui, &mut self.map, &mut out);
            });
            self.table.ui(&mut cols[1]);
            cols[1].separator();
            self.gallery.ui(&mut cols[1]);
        });
        // The map's die clicks open that die's thumbnails of this run.
        for c in out {
            if let UiCommand::SelectDie(d) = c {
                self.map.selected = d;
                if let Some(d) = d {
                    let dir = thumbnails.join(format!("run-{run_id}"));
                    self.gallery.open(dir, d, self.map.die_details(d));
                }
            }
        }
    }
}

/// A column of the defect table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DefectColumn {
    #[default]
    Die,
    Number,
    Class,
    X,
    Y,
    Area,
    Peak,
    Repeater,
}

impl DefectColumn {
    pub const ALL: [DefectColumn; 8] = [
        Self::Die,
        Self::Number,
        Self::Class,
        Self::X,
        Self::Y,
        Self::Area,
        Self::Peak,
        Self::Repeater,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Self::Die => "Die",
            Self::Number => "#",
            Self::Class => "Class",
            Self::X => "X µm",
            Self::Y => "Y µm",
            Self::Area => "Area µm²",
            Self::Peak => "Peak",
            Self::Repeater => "Repeater",
        }
    }

    fn width(self) -> f32 {
        match self {
            Self::Number | Self::Peak => 45.0,
            Self::Class => 80.0,
            _ => 70.0,
        }
    }

    fn cell(self, d: &DefectRow) -> String {
        match self {
            Self::Die => d.die_index.to_string(),
            Self::Number => d.defect_no.to_string(),
            Self::Class => d.class.clone(),
            Self::X => format!("{:.1}", d.x_um),
            Self::Y => format!("{:.1}", d.y_um),
            Self::Area => format!("{:.0}", d.area_um2),
            Self::Peak => d.peak_diff.to_string(),
            Self::Repeater => match d.repeater {
                0 => "—".into(),
                n => format!("{n} dies"),
            },
        }
    }

    fn compare(self, a: &DefectRow, b: &DefectRow) -> std::cmp::Ordering {
        match self {
            Self::Die => a.die_index.cmp(&b.die_index),
            Self::Number => a.defect_no.cmp(&b.defect_no),
            Self::Class => a.class.cmp(&b.class),
            Self::X => a.x_um.total_cmp(&b.x_um),
            Self::Y => a.y_um.total_cmp(&b.y_um),
            Self::Area => a.area_um2.total_cmp(&b.area_um2),
            Self::Peak => a.peak_diff.cmp(&b.peak_diff),
            Self::Repeater => a.repeater.cmp(&b.repeater),
        }
    }
}

/// The defects of the run under review, sorted by the column whose header
/// was clicked (again: the other way).
#[derive(Default)]
pub struct DefectTable {
    rows: Vec<DefectRow>,
    pub sort: DefectColumn,
    pub descending: bool,
}

impl DefectTable {
    /// The table of `defects`, in the database's order (die, then defect
    /// number) until a header is clicked.
    pub fn new(defects: &[DefectRow]) -> Self {
        Self {
            rows: defects.to_vec(),
            sort: DefectColumn::Die,
            descending: false,
        }
    }

    /// The rows as shown, top first.
    pub fn rows(&self) -> &[DefectRow] {
        &self.rows
    }

    /// Sorts by `column`; the column already sorted by flips its order.
    /// Stable: rows equal in `column` keep their die and number order.
    pub fn sort_by(&mut self, column: DefectColumn) {
        if self.sort == column {
            self.descending = !self.descending;
        } else {
            self.sort = column;
            self.descending = false;
        }
        // From the database's order each time, so ties read die by die.
        self.rows.sort_by(|a, b| {
            DefectColumn::Die
                .compare(a, b)
                .then(DefectColumn::Number.compare(a, b))
        });
        let descending = self.descending;
        self.rows.sort_by(|a, b| {
            let o = column.compare(a, b);
            if descending {
                o.reverse()
            } else {
                o
            }
        });
    }

    fn ui(&mut self, ui: &mut Ui) {
        ui.label(format!("{} defects listed", self.rows.len()));
        let mut clicked = None;
        ui.horizontal(|ui| {
            for c in DefectColumn::ALL {
                let arrow = match (self.sort == c, self.descending) {
                    (true, false) => " ▲",
                    (true, true) => " ▼",
                    _ => "",
                };
                let header =
                    egui::Button::selectable(self.sort == c, format!("{}{arrow}", c.label()));
                if ui
                    .add_sized([c.width(), row_height(ui)], header)
                    .on_hover_text("Sort by this column (again: the other way)")
                    .clicked()
                {
                    clicked = Some(c);
                }
            }
        });
        if let Some(c) = clicked {
            self.sort_by(c);
        }
        egui::ScrollArea::vertical()
            .id_salt("history_defects")
            .max_height(ui.available_height() * 0.6)
            .auto_shrink([false, true])
            .show_rows(ui, row_height(ui), self.rows.len(), |ui, range| {
                for d in &self.rows[range] {
                    ui.horizontal(|ui| {
                        for c in DefectColumn::ALL {
                            ui.add_sized([c.width(), row_height(ui)], egui::Label::new(c.cell(d)));
                        }
                    });
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defect(die: u32, no: u32, area: f64) -> DefectRow {
        DefectRow {
            die_index: die,
            defect_no: no,
            x_px: 0.0,
            y_px: 0.0,
            x_um: 0.0,
            y_um: 0.0,
            width_um: 1.0,
            height_um: 1.0,
            area_px: 1,
            area_um2: area,
            peak_diff: 10,
            mean_diff: 5.0,
            polarity: "bright".into(),
            class_number: 1,
            class: "particle".into(),
            repeater: 0,
        }
    }

    #[test]
    fn a_header_sorts_by_its_column_and_a_second_click_reverses_it() {
        let mut t = DefectTable::new(&[defect(1, 1, 30.0), defect(1, 2, 10.0), defect(2, 1, 20.0)]);
        let areas = |t: &DefectTable| t.rows().iter().map(|d| d.area_um2).collect::<Vec<_>>();
        assert_eq!(areas(&t), [30.0, 10.0, 20.0], "database order first");
        t.sort_by(DefectColumn::Area);
        assert_eq!(areas(&t), [10.0, 20.0, 30.0]);
        t.sort_by(DefectColumn::Area);
        assert!(t.descending);
        assert_eq!(areas(&t), [30.0, 20.0, 10.0]);
        t.sort_by(DefectColumn::Die);
        assert_eq!(areas(&t), [30.0, 10.0, 20.0], "ties keep die, number order");
    }

    #[test]
    fn a_changed_filter_is_asked_once() {
        let mut l = RunList::default();
        let first = l.wanted().expect("the first filter is asked");
        assert_eq!(first.lot_contains, "");
        assert!(l.wanted().is_none(), "unchanged: not asked again");
        l.lot = " LOT-A ".into();
        l.range = DateRange::All;
        let f = l.wanted().expect("changed");
        assert_eq!((f.lot_contains.as_str(), f.max_age), ("LOT-A", None));
    }
}
