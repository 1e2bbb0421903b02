//! The simulated camera: renders a die of the simulated wafer into a leased
//! frame without allocating.
//!
//! At start it pre-renders a handful of variants of the die (each with its
//! own sub-pixel misalignment and sensor noise) and a noise-free golden die.
//! A capture copies the die's variant with the slowly drifting illumination
//! gain applied, then paints that die's injected defects: a pass at about
//! memcpy speed plus a few small patches. Neighbouring dies always get
//! different variants, so their noise and misalignment are independent.
//! That is `SimRealism::classic()`; `SimRealism::realistic()` images every
//! exposure afresh (see `realism`).

use super::defects::GtDefect;
use super::pattern::render_die;
use super::realism::{DieImaging, RealisticCamera, SimRealism};
use super::wafer::SimWafer;
use crate::hot::{Counter, Frame};
use crate::machine::{CameraError, SimFaults};
use std::sync::Arc;
use std::time::{Duration, Instant};

const VARIANTS: usize = 8;

pub struct SimCamera {
    wafer: Arc<SimWafer>,
    variants: Vec<(Vec<u8>, (f32, f32))>,
    /// `Some` under `SimRealism::Realistic` (then `variants` is empty).
    realistic: Option<RealisticCamera>,
    golden: Arc<[u8]>,
    faults: Arc<SimFaults>,
    /// Frame period when paced like a real sensor; `None` = as fast as the
    /// host renders (benchmarks, tests).
    frame_period: Option<Duration>,
    next_frame_at: Option<Instant>,
    /// Captures begun (counted as the sensor starts its exposure).
    captures: Arc<Counter>,
}

impl SimCamera {
    /// The classic simulator with sensor noise `noise_sigma`.
    pub fn new(wafer: Arc<SimWafer>, noise_sigma: f32, faults: Arc<SimFaults>) -> Self {
        Self::with_realism(wafer, SimRealism::Classic { noise_sigma }, faults)
    }

    /// Pre-renders what the imaging model needs: allocates and takes a
    /// moment (classic: about 0.1 s per variant at 2048²; realistic: 16
    /// sub-pixel phases of the clean die, then images `golden_dies` dies to
    /// teach the golden).
    pub fn with_realism(wafer: Arc<SimWafer>, realism: SimRealism, faults: Arc<SimFaults>) -> Self {
        let noise_sigma = match realism {
            SimRealism::Classic { noise_sigma } => noise_sigma,
            SimRealism::Realistic(cfg) => {
                let (w, h) = (wafer.frame.width, wafer.frame.height);
                let mut real = RealisticCamera::new(cfg, w, h, wafer.seed);
                let golden = real.teach_golden(&wafer);
                return Self {
                    wafer,
                    variants: Vec::new(),
                    realistic: Some(real),
                    golden: golden.into(),
                    faults,
                    frame_period: None,
                    next_frame_at: None,
                    captures: Arc::new(Counter::new()),
                };
            }
        };
        let (w, h) = (wafer.frame.width, wafer.frame.height);
        let mut variants = Vec::with_capacity(VARIANTS);
        for v in 0..VARIANTS as u64 {
            let seed = super::pattern::mix(wafer.seed ^ ((v + 1) * 0x51));
            let shift = (
                ((seed & 0xFFFF) as f64 / 65535.0 - 0.5) * 3.0,
                ((seed >> 16 & 0xFFFF) as f64 / 65535.0 - 0.5) * 3.0,
            );
            let mut img = vec![0u8; (w * h) as usize];
            render_die(&mut img, w, h, shift, noise_sigma, seed);
            variants.push((img, (shift.0 as f32, shift.1 as f32)));
        }
        let mut golden = vec![0u8; (w * h) as usize];
        render_die(&mut golden, w, h, (0.0, 0.0), 0.0, 0);
        Self {
            wafer,
            variants,
            realistic: None,
            golden: golden.into(),
            faults,
            frame_period: None,
            next_frame_at: None,
            captures: Arc::new(Counter::new()),
        }
    }

    /// Paces captures at `fps` frames per second, like a sensor's maximum
    /// frame rate (exposure plus readout): a capture requested early waits
    /// for its slot.
    pub fn with_frame_rate(mut self, fps: f64) -> Self {
        self.frame_period =
            (fps > 0.0 && fps.is_finite()).then(|| Duration::from_secs_f64(1.0 / fps));
        self
    }

    /// Counts every capture into `captures` (shared with the tool, so a
    /// test can prove nothing was imaged after a trip).
    pub fn with_capture_counter(mut self, captures: Arc<Counter>) -> Self {
        self.captures = captures;
        self
    }

    pub fn wafer(&self) -> &Arc<SimWafer> {
        &self.wafer
    }

    /// The reference die: classic, the noise-free render; realistic, taught
    /// as the median of imaged dies (what a tool learns from good dies).
    pub fn golden(&self) -> Arc<[u8]> {
        Arc::clone(&self.golden)
    }

    fn variant_of(&self, die_index: u32) -> usize {
        // Consecutive dies differ by 3 (mod 8), so a die and both its
        // neighbours always use three different variants.
        (die_index as usize * 3 + self.wafer.seed as usize) % VARIANTS
    }

    /// The misalignment (pixels) of a die's image, to place ground truth:
    /// realistic, the stage repeat error of that die.
    pub fn shift_of(&self, die_index: u32) -> (f32, f32) {
        match &self.realistic {
            Some(real) => real.imaging_of(die_index).shift,
            None => self.variants[self.variant_of(die_index)].1,
        }
    }

    /// Stage error, gain and offset of a die under the realistic model
    /// (`None` for classic).
    pub fn imaging_of(&self, die_index: u32) -> Option<DieImaging> {
        self.realistic.as_ref().map(|r| r.imaging_of(die_index))
    }

    /// Ground truth of a die, as painted.
    pub fn truth_of(&self, die_index: u32) -> &[GtDefect] {
        self.wafer.defects_of(die_index)
    }

    /// Illumination gain in 1/256 (≤ 256 so the copy cannot overflow): a
    /// slow drift of up to 4 % across the run.
    fn gain_q8(die_index: u32) -> u16 {
        let phase = die_index as f64 / 150.0;
        256 - (5.0 * (1.0 + phase.sin())).round() as u16
    }

    /// Renders die `die_index` into `frame`. Never allocates.
    pub fn capture(&mut self, die_index: u32, frame: &mut Frame) -> Result<(), CameraError> {
        if let Some(period) = self.frame_period {
            let now = Instant::now();
            let slot = self.next_frame_at.map_or(now, |t| t.max(now));
            if slot > now {
                std::thread::sleep(slot - now);
            }
            self.next_frame_at = Some(slot + period);
        }
        self.captures.incr();
        self.faults.camera_hang(die_index)?;
        self.faults.camera_result()?;
        let width = self.wafer.frame.width as usize;
        if let Some(real) = &mut self.realistic {
            real.render(
                die_index,
                self.wafer.defects_of(die_index),
                frame.data_mut(),
            );
            self.faults.apply_haze(die_index, frame.data_mut(), width);
            frame.meta.die_index = die_index;
            return Ok(());
        }
        let (src, shift) = &self.variants[self.variant_of(die_index)];
        let g = Self::gain_q8(die_index);
        let out = frame.data_mut();
        // Chunked so the compiler vectorises the widening multiply.
        for (o, s) in out.chunks_exact_mut(64).zip(src.chunks_exact(64)) {
            for (o, &s) in o.iter_mut().zip(s) {
                *o = ((s as u16 * g) >> 8) as u8;
            }
        }
        let tail = out.len() / 64 * 64;
        for (o, &s) in out[tail..].iter_mut().zip(&src[tail..]) {
            *o = ((s as u16 * g) >> 8) as u8;
        }
        let (w, h) = (self.wafer.frame.width, self.wafer.frame.height);
        for d in self.wafer.defects_of(die_index) {
            d.paint(out, w, h, *shift);
        }
        self.faults.apply_haze(die_index, out, width);
        frame.meta.die_index = die_index;
        Ok(())
    }
}

impl crate::machine::Camera for SimCamera {
    fn geometry(&self) -> crate::hot::FrameGeometry {
        self.wafer.frame
    }
    fn capture(&mut self, die_index: u32, frame: &mut Frame) -> Result<(), CameraError> {
        SimCamera::capture(self, die_index, frame)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hot::{FrameGeometry, FramePool};
    use crate::machine::{Notch, WaferGeometry};

    fn camera() -> SimCamera {
        let g = WaferGeometry {
            diameter_mm: 100.0,
            die_pitch_um: (20_000.0, 20_000.0),
            die_size_um: (19_000.0, 19_000.0),
            edge_exclusion_mm: 2.0,
            notch: Notch::Down,
        };
        let wafer = Arc::new(SimWafer::new(g, FrameGeometry::gray8(320, 320), 3));
        SimCamera::new(wafer, 2.0, Arc::new(SimFaults::default()))
    }

    #[test]
    fn frame_rate_paces_captures() {
        let mut cam = camera().with_frame_rate(100.0);
        let pool = FramePool::new(1, FrameGeometry::gray8(320, 320));
        let mut f = pool.try_lease().unwrap();
        let start = Instant::now();
        for _ in 0..6 {
            cam.capture(0, &mut f).unwrap();
        }
        // Six frames at 100 fps: the sixth starts 50 ms after the first.
        assert!(
            start.elapsed() >= Duration::from_millis(50),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn same_die_same_image_and_faults_fire_once_each() {
        let mut cam = camera();
        let pool = FramePool::new(2, FrameGeometry::gray8(320, 320));
        let (mut a, mut b) = (pool.try_lease().unwrap(), pool.try_lease().unwrap());
        cam.capture(1, &mut a).unwrap();
        cam.capture(1, &mut b).unwrap();
        assert_eq!(a.data(), b.data());
        cam.faults.camera_timeout_next(1);
        cam.faults.lose_next_frames(1);
        assert_eq!(cam.capture(1, &mut a), Err(CameraError::Timeout));
        assert_eq!(cam.capture(1, &mut a), Err(CameraError::LostFrame));
        assert!(cam.capture(1, &mut a).is_ok());
    }
}
