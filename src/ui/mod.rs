//! The operator GUI (eframe/egui): one file per panel; panels read the
//! frame's `View` and emit `UiCommand`s.

pub mod alarms;
pub mod app;
pub mod carrier;
pub mod clock;
pub mod command;
pub mod die_grid;
pub mod export_run;
pub mod frame_stats;
pub mod gallery;
pub mod health;
pub mod heartbeat;
pub mod history;
pub mod host;
pub mod live_view;
pub mod look;
pub mod lot_view;
pub mod once_per_second;
pub mod paint_memory;
pub mod recipe_editor;
pub mod run_control;
pub mod session;
pub mod simulator;
pub mod status_strip;
pub mod thread_time;
pub mod users_panel;
pub mod view;
pub mod wafer_map;
pub mod waker;
pub mod watchdog;

pub use app::{StationApp, Tab};
