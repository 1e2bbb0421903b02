//! One GigE Vision camera opened by IP address. The stream always has
//! `queued_frames` pool buffers lent to it, so a frame the camera sends
//! (on a software trigger, a hardware trigger from the stage controller,
//! or free-running) lands in a buffer that is already waiting.

use crate::hot::{Counter, Frame, FrameGeometry, FramePool};
use crate::machine::camera_link::CameraLink;
use crate::machine::config::{GigeCameraConfig, GigePixelFormat};
use crate::machine::{Camera, CameraError};
use aravis::glib::object::Cast as _;
use aravis::glib::prelude::ObjectExt as _;
use aravis::prelude::*;
use aravis::{Buffer, BufferStatus, GvStreamSocketBuffer, PixelFormat};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

/// What the camera has been through, readable from any thread.
#[derive(Default)]
pub struct GigeStats {
    /// Frames delivered into a pool buffer.
    pub frames: Counter,
    /// Frames the camera numbered but we never received (ids skipped).
    pub frame_id_gaps: Counter,
    /// Captures without a frame within the timeout.
    pub timeouts: Counter,
    /// Frames that arrived incomplete (packets lost).
    pub lost_frames: Counter,
    /// Times the camera was opened (the first included).
    pub opens: Counter,
    /// A popped buffer that was not the oldest one lent (must stay 0).
    pub foreign_buffers: Counter,
    /// Captures refused at once because the control port stopped answering.
    pub refused_unreachable: Counter,
    /// The camera's id of the last frame handed out.
    pub last_frame_id: AtomicU64,
}

struct Open {
    camera: aravis::Camera,
    stream: aravis::Stream,
}

pub struct GigeCamera {
    cfg: GigeCameraConfig,
    /// The recipe's exposure, set at every open.
    exposure_us: Option<f64>,
    geometry: FrameGeometry,
    open: Option<Open>,
    /// Pool leases lent to the stream, oldest first (the stream fills its
    /// input queue first in, first out). A lease is here exactly while
    /// Aravis may write into its buffer, so the pool cannot hand that
    /// buffer to anyone else meanwhile.
    queued: VecDeque<(usize, Frame)>,
    /// The Aravis buffer made for each pool buffer it has been lent, by the
    /// buffer's address. Made on first sight (the pool has a fixed set of
    /// buffers, so this stops growing after the first pass over the pool);
    /// capacity reserved up front so that pass does not reallocate.
    lent: Vec<(usize, Buffer)>,
    /// The pool the queued frames are leased from (`attach_pool`): the
    /// pipeline's own for Mono8 (a capture hands the filled buffer over),
    /// else one of the camera's own with 16-bit pixels (a capture shifts the
    /// filled buffer into the caller's). Declared after `lent` so it drops
    /// after it (the Aravis buffers never free the memory either way).
    pool: Option<FramePool>,
    next_open: Option<Instant>,
    last_frame_id: Option<u64>,
    /// The control-port heartbeat: a camera that stopped answering it is
    /// not asked for frames (each Aravis control request would otherwise
    /// wait through its own retries, 2.5 s).
    link: Option<Arc<CameraLink>>,
    pub stats: Arc<GigeStats>,
}

/// Pool buffers a camera expects to see (more only costs a reallocation
/// during the first pass over a larger pool).
const EXPECTED_POOL_BUFFERS: usize = 64;

/// Frames of packets the receive socket can hold.
const SOCKET_BUFFER_FRAMES: i32 = 8;

impl GigeCamera {
    /// Opens nothing yet: the camera is opened on the first capture, so a
    /// camera that is off at start is a failed die with a reason, not a
    /// station that cannot start. Only 8-bit monochrome frames.
    pub fn new(
        cfg: GigeCameraConfig,
        geometry: FrameGeometry,
        exposure_us: Option<f64>,
    ) -> Result<Self, String> {
        if geometry.bytes_per_pixel != 1 {
            return Err(format!(
                "the GigE camera driver delivers Mono8; the pipeline's frames have {} bytes per pixel",
                geometry.bytes_per_pixel
            ));
        }
        // No `aravis::Aravis::initialize()`: that token only gates device
        // enumeration (discovery, a broadcast), which this driver never does.
        Ok(Self {
            queued: VecDeque::with_capacity(cfg.queued_frames),
            cfg,
            exposure_us,
            geometry,
            open: None,
            pool: None,
            lent: Vec::with_capacity(EXPECTED_POOL_BUFFERS),
            next_open: None,
            last_frame_id: None,
            link: None,
            stats: Arc::new(GigeStats::default()),
        })
    }

    /// Captures are refused at once while `link` says the camera's control
    /// port is not answering.
    pub fn with_link(mut self, link: Arc<CameraLink>) -> Self {
        self.link = Some(link);
        self
    }

    /// Opens the camera by IP, sets it up, lends it `queued_frames` pool
    /// buffers and starts acquisition.
    fn open(&mut self) -> Result<(), CameraError> {
        if self.open.is_some() {
            return Ok(());
        }
        if self.next_open.is_some_and(|t| Instant::now() < t) {
            return Err(CameraError::Unreachable);
        }
        let pool = self
            .pool
            .clone()
            .expect("attach_pool is called before the first capture");
        let result = self.try_open().and_then(|open| {
            while self.queued.len() < self.cfg.queued_frames {
                let mut frame = pool.try_lease().ok_or_else(|| {
                    format!(
                        "the frame pool has no free buffer to queue ({} of {} queued)",
                        self.queued.len(),
                        self.cfg.queued_frames
                    )
                })?;
                let (addr, buffer) = self.buffer_for(&mut frame);
                open.stream.push_buffer(buffer);
                self.queued.push_back((addr, frame));
            }
            if let Err(e) = open.camera.start_acquisition() {
                // Joined before the queued leases go back (below).
                if open.stream.ref_count() != 1 {
                    open.stream.stop_thread(true);
                }
                return Err(format!("start acquisition: {e}"));
            }
            Ok(open)
        });
        match result {
            Ok(open) => {
                self.stats.opens.incr();
                self.next_open = None;
                self.last_frame_id = None;
                tracing::info!(address = %self.cfg.address, "GigE camera opened");
                self.open = Some(open);
                Ok(())
            }
            Err(why) => {
                tracing::warn!(address = %self.cfg.address, "GigE camera: {why}");
                // The stream (if any) was dropped inside `result`, its
                // only holder, which joined its receiving thread: the
                // queued leases can go back.
                self.queued.clear();
                self.next_open = Some(Instant::now() + self.cfg.reconnect);
                Err(CameraError::Unreachable)
            }
        }
    }

    fn try_open(&self) -> Result<Open, String> {
        let ip = self.cfg.address.to_string();
        let camera =
            aravis::Camera::new(Some(&ip)).map_err(|e| format!("cannot open {ip}: {e}"))?;
        let (w, h) = (self.geometry.width as i32, self.geometry.height as i32);
        camera
            .set_region(0, 0, w, h)
            .map_err(|e| format!("region {w}×{h}: {e}"))?;
        let format = self.cfg.pixel_format;
        let pixel_format = match format {
            GigePixelFormat::Mono8 => PixelFormat::MONO_8,
            GigePixelFormat::Mono10 => PixelFormat::MONO_10,
            GigePixelFormat::Mono12 => PixelFormat::MONO_12,
            GigePixelFormat::Mono16 => PixelFormat::MONO_16,
        };
        camera
            .set_pixel_format(pixel_format)
            .map_err(|e| format!("pixel format {}: {e}", format.name()))?;
        let payload = camera.payload().map_err(|e| format!("payload: {e}"))?;
        let expected = w as usize * h as usize * format.bytes_per_pixel() as usize;
        if payload as usize != expected {
            return Err(format!(
                "payload {payload} bytes, expected {expected} for {w}×{h} {}",
                format.name()
            ));
        }
        if let Some(us) = self.exposure_us {
            camera
                .set_exposure_time(us)
                .map_err(|e| format!("exposure {us} µs: {e}"))?;
        }
        if self.cfg.trigger == "Off" {
            camera
                .clear_triggers()
                .map_err(|e| format!("free-running (triggers off): {e}"))?;
        } else {
            camera
                .set_trigger(&self.cfg.trigger)
                .map_err(|e| format!("trigger {}: {e}", self.cfg.trigger))?;
        }
        // The rate as a feature, after the trigger: Aravis' `set_frame_rate`
        // clears every trigger first (TriggerMode Off, aravis 0.8.26
        // arvcamera.c), which would leave a triggered camera free-running,
        // sending frames nobody asked for. With a trigger, the rate is the
        // fastest the camera answers triggers.
        if let Some(hz) = self.cfg.frame_rate_hz {
            camera
                .set_float("AcquisitionFrameRate", hz)
                .map_err(|e| format!("AcquisitionFrameRate {hz} Hz: {e}"))?;
        }
        if let Some(bytes) = self.cfg.packet_size {
            camera
                .gv_set_packet_size(bytes as i32)
                .map_err(|e| format!("packet size {bytes} bytes: {e}"))?;
        }
        let stream = camera.create_stream().map_err(|e| format!("stream: {e}"))?;
        if let Some(gv) = stream.downcast_ref::<aravis::GvStream>() {
            // Aravis sizes the receive socket to one payload by default; a
            // frame arrives as a burst of packets, and the kernel charges
            // each datagram more than its bytes, so one payload of buffer
            // drops packets whenever the receiving thread is scheduled out
            // for part of a frame. Room for several frames (the kernel caps
            // it at net.core.rmem_max).
            gv.set_socket_buffer(GvStreamSocketBuffer::Fixed);
            gv.set_socket_buffer_size((payload as i32).saturating_mul(SOCKET_BUFFER_FRAMES));
        }
        Ok(Open { camera, stream })
    }

    /// Ends acquisition after a failure, then takes the queued leases back.
    /// Joining the stream's receiving thread is what guarantees no packet
    /// is written into a pool buffer after its lease is returned: dropping
    /// the last reference to the stream does it (aravis 0.8.26
    /// `arv_gv_stream_finalize` calls `stop_thread`, which cancels and
    /// `g_thread_join`s the thread). Should anything else hold the stream,
    /// the thread is stopped explicitly first.
    ///
    /// A camera whose control port went silent is not told to stop, and is
    /// released on a thread of its own: each control request to it waits
    /// through Aravis' retries (5 × 500 ms, compiled in), and releasing the
    /// device makes three of them — 10 s during which the acquisition
    /// thread would look stalled.
    fn close(&mut self) {
        if let Some(Open { camera, stream }) = self.open.take() {
            let silent = self.link.as_ref().is_some_and(|l| !l.answering());
            if silent {
                // Releasing the stream writes the camera's stream-channel
                // register and the device leaves control, each through the
                // retries: all of it goes to a thread of its own, in the
                // order that keeps the leases safe (stream joined, then
                // leases back, then the camera).
                let release = Release {
                    stream,
                    queued: std::mem::take(&mut self.queued),
                    camera,
                };
                let released = std::thread::Builder::new()
                    .name("camera-release".into())
                    .spawn(move || drop(release));
                if let Err(e) = released {
                    // `spawn` dropped the closure, so `Release` ran here, in
                    // its safe order. Slow, never unsafe.
                    tracing::warn!("GigE camera: no thread to release the camera on: {e}");
                }
            } else {
                if let Err(e) = camera.stop_acquisition() {
                    tracing::warn!(address = %self.cfg.address, "GigE camera: stop acquisition: {e}");
                }
                drop(Release {
                    stream,
                    queued: std::mem::take(&mut self.queued),
                    camera,
                });
            }
        }
        // With no stream open nothing can be queued; a no-op then.
        self.queued.clear();
        self.next_open = Some(Instant::now() + self.cfg.reconnect);
    }

    /// The Aravis buffer lent `frame`'s memory, and its address.
    fn buffer_for(&mut self, frame: &mut Frame) -> (usize, Buffer) {
        let data = frame.data_mut();
        let (addr, len) = (data.as_mut_ptr() as usize, data.len());
        if let Some((_, b)) = self.lent.iter().find(|(a, _)| *a == addr) {
            return (addr, b.clone());
        }
        // SAFETY: the region is the pool buffer behind `frame`, `len` bytes
        // long. Aravis writes it only while the buffer sits in a stream's
        // queues, and a buffer is pushed only together with its lease into
        // `queued`; a lease holds the pool's memory alive and keeps the
        // pool from lending that buffer to anyone else, and it leaves
        // `queued` only once the stream has handed the buffer back
        // (`capture`) or the stream's receiving thread has been joined
        // (`close`, `open`'s failure path). Outside a queue the Aravis
        // buffer is only a pointer: it carries no destroy callback and is
        // preallocated, so dropping it never frees or touches the memory.
        let b = unsafe { Buffer::new_preallocated_borrowed(addr as *mut u8, len) };
        self.lent.push((addr, b.clone()));
        (addr, b)
    }

    /// Lends `frame` to the stream again (newest in the queue).
    fn requeue(&mut self, mut frame: Frame) {
        let (addr, buffer) = self.buffer_for(&mut frame);
        let open = self.open.as_ref().expect("requeue only while open");
        open.stream.push_buffer(buffer);
        self.queued.push_back((addr, frame));
    }
}

/// A stream being ended, with its leases and its camera. Dropping it is the
/// one safe order: the stream's receiving thread is stopped if anything
/// else holds the stream (`drop` below), then the fields drop in
/// declaration order — the stream (its last reference: aravis 0.8.26
/// `arv_gv_stream_finalize` joins the thread), only then the leases, so no
/// packet can land in a buffer someone else now holds, and the camera last.
struct Release {
    stream: aravis::Stream,
    // Held only to be dropped in this order.
    #[allow(dead_code)]
    queued: VecDeque<(usize, Frame)>,
    #[allow(dead_code)]
    camera: aravis::Camera,
}

impl Drop for Release {
    fn drop(&mut self) {
        if self.stream.ref_count() != 1 {
            self.stream.stop_thread(true);
        }
    }
}

/// GigE Vision 1.x block ids are 16-bit and skip 0 when they wrap.
fn next_frame_id(id: u64) -> u64 {
    if id >= 0xFFFF {
        1
    } else {
        id + 1
    }
}

impl Camera for GigeCamera {
    fn geometry(&self) -> FrameGeometry {
        self.geometry
    }

    fn frames_held(&self) -> usize {
        if self.cfg.pixel_format == GigePixelFormat::Mono8 {
            self.cfg.queued_frames
        } else {
            0
        }
    }

    fn attach_pool(&mut self, pool: &FramePool) {
        self.pool = Some(if self.cfg.pixel_format == GigePixelFormat::Mono8 {
            pool.clone()
        } else {
            // Allocated once, here, before the first capture.
            FramePool::new(
                self.cfg.queued_frames,
                FrameGeometry {
                    bytes_per_pixel: 2,
                    ..self.geometry
                },
            )
        });
    }

    fn capture(&mut self, die_index: u32, frame: &mut Frame) -> Result<(), CameraError> {
        if self.link.as_ref().is_some_and(|l| !l.answering()) {
            self.stats.refused_unreachable.incr();
            if self.open.is_some() {
                self.close();
            }
            return Err(CameraError::Unreachable);
        }
        self.open()?;
        let timeout_us = self.cfg.frame_timeout.as_micros() as u64;
        let open = self.open.as_ref().expect("opened above");
        if self.cfg.trigger == "Software" {
            if let Err(e) = open.camera.software_trigger() {
                tracing::warn!(address = %self.cfg.address, "GigE camera: trigger: {e}");
                self.close();
                return Err(CameraError::Unreachable);
            }
        }
        let Some(popped) = open.stream.timeout_pop_buffer(timeout_us) else {
            self.stats.timeouts.incr();
            self.close();
            return Err(CameraError::Timeout);
        };
        // The address recorded when it was lent: no reference to a buffer
        // Aravis may still be writing is made to compare it.
        let oldest = self.queued.front().map(|(addr, _)| *addr);
        if Some(popped.data().0 as usize) != oldest {
            // The stream hands buffers back in the order it was lent them;
            // anything else means we no longer know which lease holds what.
            self.stats.foreign_buffers.incr();
            self.close();
            return Err(CameraError::LostFrame);
        }
        let (_, mut filled) = self.queued.pop_front().expect("checked above");
        // The id counts even for an incomplete frame: it was sent, so a gap
        // means a frame the camera numbered and we never saw at all (it
        // came while no buffer was queued).
        let id = popped.frame_id();
        if let Some(last) = self.last_frame_id {
            if id != next_frame_id(last) {
                self.stats.frame_id_gaps.incr();
            }
        }
        self.last_frame_id = Some(id);
        if popped.status() != BufferStatus::Success {
            // Packets missing past Aravis' retention time: the image is
            // incomplete. The buffer goes back into the queue; the
            // acquisition thread retries the die.
            self.stats.lost_frames.incr();
            self.requeue(filled);
            return Err(CameraError::LostFrame);
        }
        self.stats.last_frame_id.store(id, Ordering::Release);
        if self.cfg.pixel_format == GigePixelFormat::Mono8 {
            // The caller gets the filled buffer, the stream gets the
            // caller's: leases swap, pixels are never copied.
            std::mem::swap(frame, &mut filled);
        } else {
            // Deeper pixels are shifted into the caller's 8-bit buffer; the
            // 16-bit buffer goes straight back to the stream.
            self.cfg
                .pixel_format
                .narrow(filled.data(), frame.data_mut());
        }
        self.requeue(filled);
        self.stats.frames.incr();
        frame.meta.die_index = die_index;
        Ok(())
    }
}

impl Drop for GigeCamera {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn frame_ids_wrap_past_zero() {
        assert_eq!(super::next_frame_id(7), 8);
        assert_eq!(super::next_frame_id(0xFFFF), 1);
    }
}
