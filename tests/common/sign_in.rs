//! The window's tests act as a signed-in person: the station's first
//! administrator (who may do everything), created and signed in as at a
//! first start.

use waferscope::ui::StationApp;

pub const ADMIN: &str = "root";
pub const ADMIN_PASSWORD: &str = "station-admin-1";

pub fn as_administrator(mut app: StationApp) -> StationApp {
    app.station
        .guard
        .create_first_administrator(ADMIN, ADMIN_PASSWORD)
        .expect("a new station's first administrator");
    app.sign_in(ADMIN, ADMIN_PASSWORD).expect("signing in");
    app
}
