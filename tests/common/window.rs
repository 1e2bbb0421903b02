//! The operator window under egui_kittest, shared by the UI tests: the
//! harness at the window's size and look, a wait that steps the UI while
//! the station runs on its own threads, and a label search.

use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use std::time::{Duration, Instant};
use waferscope::ui::StationApp;

pub fn harness(app: StationApp) -> Harness<'static, StationApp> {
    Harness::builder()
        .with_size([1600.0, 1000.0])
        .with_context_setup(waferscope::ui::app::setup)
        .build_ui_state(|ui, app: &mut StationApp| app.show(ui), app)
}

/// Steps the UI (real time passes: the station runs on its own threads)
/// until `cond` holds; fails naming `what` after `patience`.
pub fn wait_within(
    h: &mut Harness<'static, StationApp>,
    what: &str,
    patience: Duration,
    mut cond: impl FnMut(&Harness<'static, StationApp>) -> bool,
) {
    let deadline = Instant::now() + patience;
    loop {
        h.run_steps(1);
        if cond(h) {
            return;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether any node's label contains `label`.
pub fn has(h: &Harness<'static, StationApp>, label: &str) -> bool {
    h.query_all_by_label_contains(label).next().is_some()
}
