//! Export a past run from the window: pick one of the recent runs and a
//! format (KLARF 1.2, KLARF 1.8, CSV) and press Export…; the app writes it
//! off the UI thread (`UiCommand::ExportRun`) and says where, or why not,
//! on the run control's message line.

use super::command::UiCommand;
use crate::store::export::Format;
use crate::store::query::RunRow;
use egui::Ui;

/// Runs offered: the newest of the window's history.
const OFFERED: usize = 30;

/// The formats offered, as the operator reads them.
pub const FORMATS: [(Format, &str); 3] = [
    (Format::Klarf12, "KLARF 1.2"),
    (Format::Klarf18, "KLARF 1.8"),
    (Format::Csv, "CSV"),
];

#[derive(Debug, Clone, PartialEq)]
pub struct ExportPicker {
    /// The run chosen; `None`: the newest.
    pub run: Option<i64>,
    pub format: Format,
}

impl Default for ExportPicker {
    fn default() -> Self {
        Self {
            run: None,
            format: Format::Klarf12,
        }
    }
}

/// How a run is named in the list: "run 12 · LOT-A/W03 slot 3 · complete".
pub fn run_label(r: &RunRow) -> String {
    format!(
        "run {} · {}/{} slot {} · {}",
        r.id,
        r.lot,
        r.wafer,
        r.slot,
        r.status_label()
    )
}

impl ExportPicker {
    /// `runs`: newest first (the station's history).
    pub fn ui(&mut self, ui: &mut Ui, runs: &[RunRow], out: &mut Vec<UiCommand>) {
        ui.label("Export a recorded run");
        let offered = &runs[..runs.len().min(OFFERED)];
        let chosen = self
            .run
            .filter(|id| offered.iter().any(|r| r.id == *id))
            .or(offered.first().map(|r| r.id));
        egui::ScrollArea::vertical()
            .id_salt("export_runs")
            .max_height(90.0)
            .show(ui, |ui| {
                for r in offered {
                    if ui
                        .selectable_label(chosen == Some(r.id), run_label(r))
                        .clicked()
                    {
                        self.run = Some(r.id);
                    }
                }
            });
        ui.horizontal(|ui| {
            for (format, label) in FORMATS {
                ui.selectable_value(&mut self.format, format, label);
            }
            let export = ui.add_enabled(chosen.is_some(), egui::Button::new("Export…"));
            let row = chosen.and_then(|id| offered.iter().find(|r| r.id == id));
            if let (true, Some(row)) = (export.clicked(), row) {
                out.push(UiCommand::ExportRun {
                    run: Box::new(row.clone()),
                    format: self.format,
                });
            }
        });
    }
}

/// Writes run `run` of `db` as `format` on a thread of its own and sends
/// back the path written, or why not. With the `file-dialog` feature the
/// operator chooses the file in a save dialog first (on that thread, not
/// the UI's; cancelling it is an answer too); without it the file goes
/// into `dir` under its default name.
pub fn start_export(
    db: std::path::PathBuf,
    run: &RunRow,
    format: Format,
    dir: std::path::PathBuf,
) -> flume::Receiver<Result<String, String>> {
    let (tx, rx) = flume::bounded(1);
    let id = run.id;
    let name = crate::store::export::run_file_name(run, format);
    let work = move || -> Result<String, String> {
        #[cfg(feature = "file-dialog")]
        let out = match rfd::FileDialog::new()
            .set_directory(&dir)
            .set_file_name(&name)
            .save_file()
        {
            Some(path) => path,
            None => return Err(format!("export of run {id} cancelled")),
        };
        #[cfg(not(feature = "file-dialog"))]
        let out = {
            std::fs::create_dir_all(&dir).map_err(|e| {
                format!("{}: cannot create the export directory: {e}", dir.display())
            })?;
            dir.join(&name)
        };
        crate::store::export::export_run(&db, id, format, Some(&out))
            .map(|p| format!("run {id} exported to {}", p.display()))
            .map_err(|e| format!("run {id} not exported: {e:#}"))
    };
    let answer = tx.clone();
    let spawned = std::thread::Builder::new()
        .name("export-run".into())
        .spawn(move || {
            // The window may have closed meanwhile: the file is written
            // (or not) all the same, only nobody is told.
            if answer.send(work()).is_err() {
                tracing::debug!(run = id, "export finished after the window closed");
            }
        });
    if let Err(e) = spawned {
        if tx
            .send(Err(format!(
                "run {id} not exported: cannot start a thread: {e}"
            )))
            .is_err()
        {
            tracing::error!(run = id, "cannot start the export thread: {e}");
        }
    }
    rx
}
