//! GigE Vision cameras through Aravis (cargo feature `gige`). The camera
//! writes straight into our pooled frames: pool buffers are lent to Aravis
//! as borrowed `ArvBuffer`s, so pixels are never copied and never land in a
//! fresh `Vec`.
//!
//! Ownership (the one rule that makes lending safe): a pool buffer is in an
//! Aravis queue only while the camera holds the lease that owns it (its
//! `queued` ring). A capture takes the oldest lease back only after the
//! stream has handed its buffer back, and gives the caller that lease in
//! exchange for the caller's own, which it lends in turn; on a failure the
//! stream's receiving thread is joined before any queued lease is
//! returned to the pool. So no camera packet can land in a buffer whose
//! lease has moved on, and an image that is returned is always the one
//! just taken.
//!
//! The camera's heartbeat (`../camera_link.rs`) is separate from the stream: a
//! thread asks the control port for a register every period, and the
//! monitor reads the answers as the camera subsystem's heartbeat.

mod camera;
mod identity;

pub use camera::{GigeCamera, GigeStats};
pub use identity::{identify, CameraIdentity};
// Not Aravis: the camera heartbeat is plain UDP, built in every build.
pub use super::camera_heartbeat_io::CameraHeartbeatIo;
pub use super::camera_link::{CameraLink, CameraLinkProbe, GVCP_PORT};
