//! What `waferscope devices` says about a GigE camera: who made it, which
//! one it is, and what it is set to, read over its control channel.

use aravis::prelude::*;
use std::net::IpAddr;

pub struct CameraIdentity {
    pub vendor: String,
    pub model: String,
    pub serial: String,
    pub firmware: String,
    pub sensor: (i32, i32),
    pub pixel_format: String,
}

/// Opens the camera at `address` (by IP: no discovery broadcast), reads
/// its identity, and closes it again.
pub fn identify(address: IpAddr) -> Result<CameraIdentity, String> {
    let ip = address.to_string();
    let camera = aravis::Camera::new(Some(&ip)).map_err(|e| format!("cannot open {ip}: {e}"))?;
    let text = |r: Result<aravis::glib::GString, aravis::glib::Error>| {
        r.map(|s| s.to_string())
            .unwrap_or_else(|e| format!("(unreadable: {e})"))
    };
    Ok(CameraIdentity {
        vendor: text(camera.vendor_name()),
        model: text(camera.model_name()),
        serial: text(camera.device_serial_number()),
        firmware: text(camera.string("DeviceVersion")),
        sensor: camera
            .sensor_size()
            .map_err(|e| format!("sensor size: {e}"))?,
        pixel_format: text(camera.pixel_format_as_string()),
    })
}
