//! The Lot view: the stack map of a lot (every defect of every wafer on one
//! wafer outline) and its defects per wafer against the recipe's control
//! limits (mean ± 3σ of the wafers run before the lot), read off the UI
//! thread. Shown for the carrier's lot when it ends, or any lot by id.

use crate::store::lot_query::{lot_overview, LotOverview};
use egui::{Color32, RichText, Ui};
use egui_plot::{HLine, Line, Plot, PlotPoints, Points};
use std::path::PathBuf;

#[derive(Default)]
pub struct LotView {
    pub lot: String,
    loading: Option<(String, flume::Receiver<Result<LotOverview, String>>)>,
    pub shown: Option<LotOverview>,
    error: Option<String>,
}

impl LotView {
    /// Reads lot `lot` from the database on a thread of its own.
    pub fn request(&mut self, db: PathBuf, lot: String) {
        let (tx, rx) = flume::bounded(1);
        let what = lot.clone();
        let spawned = std::thread::Builder::new()
            .name("lot-view-read".into())
            .spawn(move || {
                let r = crate::store::export::open_existing(&db)
                    .and_then(|conn| lot_overview(&conn, &what))
                    .map_err(|e| format!("{e:#}"));
                if tx.send(r).is_err() {
                    tracing::debug!("the lot view closed before its lot was read");
                }
            });
        match spawned {
            Ok(_) => {
                self.lot = lot.clone();
                self.loading = Some((lot, rx));
            }
            Err(e) => self.error = Some(format!("cannot start reading the lot: {e}")),
        }
    }

    /// Takes a finished read, if any (called every frame).
    pub fn poll(&mut self) {
        let Some((lot, rx)) = &self.loading else {
            return;
        };
        match rx.try_recv() {
            Ok(Ok(o)) => {
                self.shown = Some(o);
                self.error = None;
                self.loading = None;
            }
            Ok(Err(e)) => {
                self.error = Some(e);
                self.loading = None;
            }
            Err(flume::TryRecvError::Empty) => {}
            Err(flume::TryRecvError::Disconnected) => {
                self.error = Some(format!("reading lot {lot} stopped (see the log)"));
                self.loading = None;
            }
        }
    }

    /// Whether the view asks for a lot id's read (its Show button).
    pub fn ui(&mut self, ui: &mut Ui) -> Option<String> {
        let mut asked = None;
        ui.heading("Lot view");
        ui.horizontal(|ui| {
            let l = ui.label("Lot to show");
            ui.text_edit_singleline(&mut self.lot).labelled_by(l.id);
            if ui.button("Show lot").clicked() && !self.lot.trim().is_empty() {
                asked = Some(self.lot.trim().to_owned());
            }
            if self.loading.is_some() {
                ui.spinner();
            }
        });
        if let Some(e) = &self.error {
            // A read that failed is data, not an alarm: icon and words.
            ui.label(RichText::new(format!("✖ {e}")).strong());
        }
        let Some(o) = &self.shown else {
            ui.label("No lot shown yet: a lot run from the carrier is shown when it ends.");
            return asked;
        };
        ui.label(format!(
            "Lot {}: {} wafers, {} defects{}",
            o.lot,
            o.wafers.len(),
            o.stack_total,
            if (o.stack.len() as i64) < o.stack_total {
                format!(" ({} drawn on the stack map)", o.stack.len())
            } else {
                String::new()
            }
        ));
        match &o.limits {
            Some(l) => {
                ui.label(format!(
                    "Control limits from the recipe's {} wafers before this lot: mean {:.1}, {:.1} to {:.1} defects per wafer (± 3σ)",
                    l.n, l.mean, l.lower, l.upper
                ));
            }
            None => {
                ui.label(format!(
                    "No control limits: fewer than {} earlier wafers of this recipe.",
                    crate::store::lot_query::MIN_LIMIT_HISTORY
                ));
            }
        }
        for w in o.excursions() {
            ui.label(
                RichText::new(format!(
                    "⚠ Excursion: wafer {} (slot {}) has {} defects, outside the control limits",
                    w.wafer, w.slot, w.defects
                ))
                .strong(),
            );
        }
        ui.columns(2, |cols| {
            cols[0].label("Stack map (all wafers)");
            stack_map(&mut cols[0], o);
            cols[1].label("Defects per wafer");
            per_wafer(&mut cols[1], o);
        });
        asked
    }
}

fn stack_map(ui: &mut Ui, o: &LotOverview) {
    let r = o.diameter_mm * 500.0;
    let outline: PlotPoints = (0..=180)
        .map(|i| {
            let a = i as f64 / 180.0 * std::f64::consts::TAU;
            [r * a.cos(), r * a.sin()]
        })
        .collect();
    Plot::new("lot_stack_map")
        .data_aspect(1.0)
        .height(ui.available_width().min(420.0))
        .allow_scroll(false)
        .show_axes([false, false])
        .show(ui, |pu| {
            pu.line(Line::new("wafer", outline).color(Color32::from_gray(60)));
            pu.points(
                Points::new("defects", o.stack.clone())
                    .radius(1.2)
                    .color(Color32::from_gray(20)),
            );
        });
}

fn per_wafer(ui: &mut Ui, o: &LotOverview) {
    let pts: Vec<[f64; 2]> = o
        .wafers
        .iter()
        .enumerate()
        .map(|(i, w)| [i as f64 + 1.0, w.defects as f64])
        .collect();
    let outside: Vec<[f64; 2]> = o
        .wafers
        .iter()
        .enumerate()
        .filter(|(_, w)| o.limits.is_some_and(|l| l.outside(w.defects)))
        .map(|(i, w)| [i as f64 + 1.0, w.defects as f64])
        .collect();
    let names: Vec<String> = o.wafers.iter().map(|w| w.wafer.clone()).collect();
    Plot::new("lot_defects_per_wafer")
        .height(ui.available_width().min(420.0) * 0.8)
        .allow_scroll(false)
        .x_axis_label("wafer of the lot")
        .y_axis_label("defects")
        .label_formatter(move |hp| match hp {
            egui_plot::HoverPosition::NearDataPoint { position, .. } => names
                .get((position.x.round() as usize).wrapping_sub(1))
                .map(|n| format!("{n}: {:.0} defects", position.y)),
            _ => None,
        })
        .show(ui, |pu| {
            if let Some(l) = o.limits {
                pu.hline(HLine::new("mean", l.mean).color(Color32::from_gray(90)));
                pu.hline(HLine::new("upper control limit", l.upper).color(Color32::from_gray(40)));
                pu.hline(HLine::new("lower control limit", l.lower).color(Color32::from_gray(40)));
            }
            pu.line(Line::new("defects", pts.clone()).color(Color32::from_gray(50)));
            pu.points(
                Points::new("wafers", pts)
                    .radius(3.0)
                    .color(Color32::from_gray(30)),
            );
            // Outside the limits: a larger, hollow marker (shape, not only
            // colour).
            pu.points(
                Points::new("outside the limits", outside)
                    .radius(7.0)
                    .filled(false)
                    .shape(egui_plot::MarkerShape::Diamond)
                    .color(Color32::from_gray(0)),
            );
        });
}
