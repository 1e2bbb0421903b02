//! The live view's display buffer: a pre-allocated, downsampled copy of the
//! newest frame and its defect boxes, published by a detection worker at
//! most `max_hz` times a second. The worker only ever `try_lock`s: if the
//! UI is copying out at that instant the frame is skipped, never waited for.

use super::result::{Defect, MAX_DEFECTS_PER_DIE};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

pub struct DisplayImage {
    /// Downsampled image, `width × height`, 8-bit grey.
    pub pixels: Vec<u8>,
    pub width: usize,
    pub height: usize,
    /// Source pixels per display pixel.
    pub factor: usize,
    pub die_index: u32,
    pub defects: [Defect; MAX_DEFECTS_PER_DIE],
    pub defect_count: usize,
    /// Increments with every published frame.
    pub sequence: u64,
}

pub struct DisplayFrame {
    image: Mutex<DisplayImage>,
    last_ns: AtomicU64,
    min_interval_ns: u64,
    epoch: Instant,
}

impl DisplayFrame {
    /// A display buffer for frames of `src_w × src_h`, downsampled by an
    /// integer factor to at most `max_side` pixels a side.
    pub fn new(src_w: usize, src_h: usize, max_side: usize, max_hz: f64) -> Self {
        let factor = src_w.max(src_h).div_ceil(max_side.max(1)).max(1);
        let (width, height) = (src_w / factor, src_h / factor);
        Self {
            image: Mutex::new(DisplayImage {
                pixels: vec![0; width * height],
                width,
                height,
                factor,
                die_index: 0,
                defects: [Defect::default(); MAX_DEFECTS_PER_DIE],
                defect_count: 0,
                sequence: 0,
            }),
            last_ns: AtomicU64::new(0),
            min_interval_ns: (1e9 / max_hz.max(0.1)) as u64,
            epoch: Instant::now(),
        }
    }

    /// Offers a frame; copies it only if the rate allows and the UI is not
    /// reading. Never blocks, never allocates.
    pub fn offer(&self, src: &[u8], src_w: usize, die_index: u32, defects: &[Defect]) {
        let now = self.epoch.elapsed().as_nanos() as u64 + self.min_interval_ns;
        let last = self.last_ns.load(Ordering::Relaxed);
        if now < last + self.min_interval_ns {
            return;
        }
        let Ok(mut img) = self.image.try_lock() else {
            return;
        };
        self.last_ns.store(now, Ordering::Relaxed);
        let (f, w) = (img.factor, img.width);
        for (y, out) in img.pixels.chunks_exact_mut(w).enumerate() {
            // Box filter over f×f source pixels, summed column by column.
            let rows = &src[y * f * src_w..];
            for (x, o) in out.iter_mut().enumerate() {
                let mut sum = 0u32;
                for dy in 0..f {
                    let r = &rows[dy * src_w + x * f..][..f];
                    sum += r.iter().map(|&p| p as u32).sum::<u32>();
                }
                *o = (sum / (f * f) as u32) as u8;
            }
        }
        img.die_index = die_index;
        let n = defects.len().min(MAX_DEFECTS_PER_DIE);
        img.defects[..n].copy_from_slice(&defects[..n]);
        img.defect_count = n;
        img.sequence += 1;
    }

    /// Runs `f` on the current image (the UI copies it into its texture).
    pub fn with<R>(&self, f: impl FnOnce(&DisplayImage) -> R) -> R {
        let img = self.image.lock().unwrap_or_else(|e| e.into_inner());
        f(&img)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn downsamples_by_box_filter_and_respects_the_rate() {
        let d = DisplayFrame::new(8, 4, 4, 1000.0);
        let src: Vec<u8> = (0..32).map(|i| (i * 4) as u8).collect();
        d.offer(&src, 8, 3, &[]);
        d.with(|img| {
            assert_eq!(
                (
                    img.width,
                    img.height,
                    img.factor,
                    img.die_index,
                    img.sequence
                ),
                (4, 2, 2, 3, 1)
            );
            // Mean of src[0], src[1], src[8], src[9] = (0+4+32+36)/4.
            assert_eq!(img.pixels[0], 18);
        });
        d.offer(&src, 8, 4, &[]);
        d.with(|img| assert_eq!(img.sequence, 1, "second offer within 1 ms is skipped"));
    }
}
