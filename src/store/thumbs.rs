//! The thumbnail writer: encodes the crops the detection workers cut into
//! PNG files, off the hot path.

use crate::hot::Counter;
use crate::pipeline::ThumbnailFeed;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Where a defect's thumbnail is written.
pub fn thumbnail_path(dir: &Path, die_index: u32, defect_no: u32) -> PathBuf {
    dir.join(format!("die-{die_index}-defect-{defect_no}.png"))
}

/// Starts writing every crop of `feed` into `dir` (created if needed).
/// Ends when the pipeline's workers are gone. `failed` counts crops that
/// could not be written (logged once per run).
pub fn start_writer(feed: ThumbnailFeed, dir: PathBuf, failed: Arc<Counter>) -> JoinHandle<()> {
    // Watched, so a dead writer shows on the Health panel; encoding one
    // crop never takes seconds.
    crate::hot::liveness::spawn_watched(
        "thumbnails",
        std::time::Duration::from_secs(10),
        move |health| {
            let mut warned = false;
            if let Err(e) = std::fs::create_dir_all(&dir) {
                tracing::error!(
                    "{}: cannot create the thumbnail directory: {e}",
                    dir.display()
                );
                warned = true;
            }
            loop {
                health.idle();
                let Ok(c) = feed.filled.recv() else { break };
                health.beat();
                let path = thumbnail_path(&dir, c.die_index, c.defect_no as u32);
                let img =
                    image::GrayImage::from_raw(c.width as u32, c.height as u32, c.data().to_vec());
                let written = img
                    .ok_or_else(|| "crop size mismatch".to_string())
                    .and_then(|img| {
                        img.save_with_format(&path, image::ImageFormat::Png)
                            .map_err(|e| e.to_string())
                    });
                if let Err(e) = written {
                    failed.incr();
                    if !warned {
                        tracing::error!("{}: cannot write thumbnail: {e}", path.display());
                        warned = true;
                    }
                }
                feed.recycle(c);
            }
        },
    )
    .map(|(handle, _health)| handle)
    .expect("spawning the thumbnail writer")
}
