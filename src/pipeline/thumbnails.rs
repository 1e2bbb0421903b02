//! Defect thumbnails, cut on the hot path without allocating or waiting:
//! a fixed set of 64×64 crop buffers circulates between the detection
//! workers (which copy a crop around each defect before the frame returns
//! to the pool) and a writer off the hot path (which encodes PNGs and hands
//! the buffer back). No free buffer, or a full queue: the thumbnail is
//! skipped and counted; detection never waits.

use super::result::Defect;
use crate::hot::Counter;
use crossbeam_channel::{bounded, Receiver, Sender};
use std::sync::Arc;

pub const THUMB: usize = 64;

pub struct Crop {
    pub die_index: u32,
    /// 1-based, as in the results database.
    pub defect_no: u16,
    pub width: u16,
    pub height: u16,
    pub pixels: Box<[u8; THUMB * THUMB]>,
}

impl Crop {
    pub fn data(&self) -> &[u8] {
        &self.pixels[..self.width as usize * self.height as usize]
    }
}

/// The detection side.
#[derive(Clone)]
pub struct ThumbnailTap {
    free: Receiver<Crop>,
    recycle: Sender<Crop>,
    filled: Sender<Crop>,
    pub skipped: Arc<Counter>,
    pub taken: Arc<Counter>,
    /// Crops taken per die at most (the largest defects are listed first
    /// only by chance; this bounds the work per die).
    pub per_die: usize,
}

/// The writer side.
pub struct ThumbnailFeed {
    pub filled: Receiver<Crop>,
    recycle: Sender<Crop>,
}

impl ThumbnailFeed {
    /// Gives a written crop's buffer back for reuse.
    pub fn recycle(&self, c: Crop) {
        let _ = self.recycle.try_send(c);
    }
}

/// `slots` crop buffers, allocated now.
pub fn thumbnail_channel(slots: usize, per_die: usize) -> (ThumbnailTap, ThumbnailFeed) {
    let (recycle, free) = bounded(slots);
    let (filled_tx, filled_rx) = bounded(slots);
    for _ in 0..slots {
        let _ = recycle.try_send(Crop {
            die_index: 0,
            defect_no: 0,
            width: 0,
            height: 0,
            pixels: Box::new([0; THUMB * THUMB]),
        });
    }
    (
        ThumbnailTap {
            free,
            recycle: recycle.clone(),
            filled: filled_tx,
            skipped: Arc::new(Counter::new()),
            taken: Arc::new(Counter::new()),
            per_die,
        },
        ThumbnailFeed {
            filled: filled_rx,
            recycle,
        },
    )
}

impl ThumbnailTap {
    /// Copies a crop around each of `defects` out of `img`. Never blocks,
    /// never allocates.
    pub fn capture(
        &self,
        img: &[u8],
        width: usize,
        height: usize,
        die_index: u32,
        defects: &[Defect],
    ) {
        for (n, d) in defects.iter().enumerate() {
            if n >= self.per_die {
                self.skipped.add((defects.len() - n) as u64);
                return;
            }
            let Ok(mut c) = self.free.try_recv() else {
                self.skipped.incr();
                continue;
            };
            let (cw, ch) = (THUMB.min(width), THUMB.min(height));
            // Centred on the bbox, which is in this image (the centroid
            // is in die coordinates).
            let (cx, cy) = (
                (d.bbox[0] as usize + d.bbox[2] as usize) / 2,
                (d.bbox[1] as usize + d.bbox[3] as usize) / 2,
            );
            let x0 = cx.saturating_sub(cw / 2).min(width - cw);
            let y0 = cy.saturating_sub(ch / 2).min(height - ch);
            for row in 0..ch {
                let src = &img[(y0 + row) * width + x0..][..cw];
                c.pixels[row * cw..(row + 1) * cw].copy_from_slice(src);
            }
            c.die_index = die_index;
            c.defect_no = n as u16 + 1;
            c.width = cw as u16;
            c.height = ch as u16;
            match self.filled.try_send(c) {
                Ok(()) => self.taken.incr(),
                Err(e) => {
                    self.skipped.incr();
                    let _ = self.recycle.try_send(e.into_inner());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_around_the_defect_and_skips_when_no_buffer_is_free() {
        let (tap, feed) = thumbnail_channel(2, 8);
        let (w, h) = (200usize, 100usize);
        let img: Vec<u8> = (0..w * h).map(|i| (i % 251) as u8).collect();
        // Near the bottom-left corner of the image; the centroid (in die
        // coordinates, here 20 px away) does not place the crop.
        let d = Defect {
            x_px: 25.0,
            y_px: 70.0,
            bbox: [3, 88, 7, 92],
            ..Defect::default()
        };
        tap.capture(&img, w, h, 7, &[d, d, d]);
        assert_eq!((tap.taken.get(), tap.skipped.get()), (2, 1));
        let c = feed.filled.try_recv().unwrap();
        assert_eq!(
            (c.die_index, c.defect_no, c.width, c.height),
            (7, 1, 64, 64)
        );
        // Clamped to the image: starts at column 0, row 100 − 64.
        assert_eq!(c.data()[0], img[36 * w]);
        assert_eq!(c.data()[64 * 64 - 1], img[99 * w + 63]);
        feed.recycle(c);
        tap.capture(&img, w, h, 8, &[d]);
        assert_eq!(tap.taken.get(), 3);
    }
}
