//! The defect gallery of the selected die: its thumbnails, decoded off the
//! UI thread.

use egui::{ColorImage, TextureHandle, TextureOptions, Ui};
use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver};

#[derive(Default)]
pub struct Gallery {
    die: Option<u32>,
    /// The die's details from the map (defects listed; truncation).
    details: String,
    loading: Option<Receiver<Vec<(u32, ColorImage)>>>,
    images: Vec<(u32, TextureHandle)>,
}

impl Gallery {
    /// Starts loading the thumbnails of `die` from `dir`; `details` is the
    /// map's line about the die (how many defects are listed, and whether
    /// its list is truncated).
    pub fn open(&mut self, dir: PathBuf, die: u32, details: String) {
        self.die = Some(die);
        self.details = details;
        self.images.clear();
        let (tx, rx) = channel();
        std::thread::spawn(move || {
            let mut found = Vec::new();
            for n in 1..=64u32 {
                let p = crate::store::thumbs::thumbnail_path(&dir, die, n);
                let Ok(img) = image::open(&p) else { break };
                let g = img.to_luma8();
                let size = [g.width() as usize, g.height() as usize];
                found.push((n, ColorImage::from_gray(size, g.as_raw())));
            }
            let _ = tx.send(found);
        });
        self.loading = Some(rx);
    }

    pub fn poll(&mut self, ctx: &egui::Context) {
        if let Some(rx) = &self.loading {
            if let Ok(found) = rx.try_recv() {
                self.images = found
                    .into_iter()
                    .map(|(n, img)| {
                        (
                            n,
                            ctx.load_texture(format!("thumb-{n}"), img, TextureOptions::NEAREST),
                        )
                    })
                    .collect();
                self.loading = None;
            }
        }
    }

    pub fn ui(&mut self, ui: &mut Ui) {
        match self.die {
            None => {
                ui.label("Click a die on the map to see its defects.");
            }
            Some(_) => {
                ui.label(&self.details);
                ui.label(format!("{} defect thumbnails", self.images.len()));
                ui.horizontal_wrapped(|ui| {
                    for (n, t) in &self.images {
                        ui.vertical(|ui| {
                            ui.image((t.id(), egui::vec2(64.0, 64.0)));
                            ui.label(format!("#{n}"));
                        });
                    }
                });
            }
        }
    }
}
