//! The camera subsystem's heartbeat from the camera itself: wraps the
//! machine's `Io` so the monitor reads the camera's heartbeat as the count
//! of control-port answers (`camera_link.rs`), every other point as
//! configured.

use super::camera_link::CameraLink;
use crate::machine::{Io, IoError, Signal, Subsystem};
use std::sync::Arc;

pub struct CameraHeartbeatIo {
    inner: Box<dyn Io>,
    link: Arc<CameraLink>,
}

impl CameraHeartbeatIo {
    pub fn new(inner: Box<dyn Io>, link: Arc<CameraLink>) -> Self {
        Self { inner, link }
    }
}

impl Io for CameraHeartbeatIo {
    fn read_heartbeat(&mut self, subsystem: Subsystem) -> Result<u32, IoError> {
        if subsystem == Subsystem::Camera {
            // A counter that stops advancing is what the monitor ages into
            // Stale and Lost, exactly as for a heartbeat register.
            Ok(self.link.answers())
        } else {
            self.inner.read_heartbeat(subsystem)
        }
    }

    fn read_signal(&mut self, signal: Signal) -> Result<f64, IoError> {
        self.inner.read_signal(signal)
    }
}
