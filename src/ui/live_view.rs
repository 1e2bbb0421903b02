//! The live camera view: the newest die image from the pre-allocated
//! display buffer, as one texture updated in place, with zoom and pan and
//! the defect boxes drawn over it.

use crate::pipeline::DisplayFrame;
use egui::{Color32, ColorImage, TextureHandle, TextureOptions, Ui};
use egui_plot::{Plot, PlotImage, PlotPoint, Polygon};
use std::sync::Arc;

#[derive(Default)]
pub struct LiveView {
    texture: Option<TextureHandle>,
    seen: u64,
    die_index: u32,
    /// Display pixel boxes (x0, y0, x1, y1) of the defects on screen.
    boxes: Vec<[f32; 4]>,
    size: [usize; 2],
    /// The converted image, shared with the texture manager: `set` hands
    /// egui this `Arc` (no copy); once the frame's texture delta has been
    /// uploaded egui drops its reference and the next frame converts into
    /// the same allocation (`Arc::make_mut` copies only if egui still held
    /// it). egui 0.37 textures are RGBA only, so the grey-to-RGBA
    /// conversion itself stays.
    buffer: Option<Arc<ColorImage>>,
    /// The caption as shown: rebuilt at most once a second (HMI rule 8).
    caption: super::once_per_second::OncePerSecond,
}

impl LiveView {
    /// Copies a new frame out of the display buffer if there is one.
    pub fn refresh(&mut self, ctx: &egui::Context, display: &DisplayFrame) {
        let mut fresh = false;
        display.with(|img| {
            if img.sequence == self.seen {
                return;
            }
            fresh = true;
            self.seen = img.sequence;
            self.die_index = img.die_index;
            let size = [img.width, img.height];
            let shared = self
                .buffer
                .get_or_insert_with(|| Arc::new(ColorImage::filled(size, Color32::BLACK)));
            if shared.size != size {
                *shared = Arc::new(ColorImage::filled(size, Color32::BLACK));
            }
            let buf = Arc::make_mut(shared);
            for (o, &p) in buf.pixels.iter_mut().zip(&img.pixels) {
                *o = Color32::from_gray(p);
            }
            self.size = size;
            let f = img.factor as f32;
            self.boxes.clear();
            for d in &img.defects[..img.defect_count] {
                self.boxes.push([
                    d.bbox[0] as f32 / f - 2.0,
                    d.bbox[1] as f32 / f - 2.0,
                    d.bbox[2] as f32 / f + 2.0,
                    d.bbox[3] as f32 / f + 2.0,
                ]);
            }
        });
        // Uploaded only when a new image came: an unchanged texture needs
        // no upload.
        if let Some(buf) = self.buffer.as_ref().filter(|_| fresh) {
            // Arc clones: a reference count, not the pixels.
            match &mut self.texture {
                Some(t) => t.set(Arc::clone(buf), TextureOptions::NEAREST),
                None => {
                    self.texture =
                        Some(ctx.load_texture("live", Arc::clone(buf), TextureOptions::NEAREST))
                }
            }
        }
    }

    pub fn ui(&mut self, ui: &mut Ui) {
        let Some(t) = &self.texture else {
            ui.label("No image yet: the live view shows each die as it is inspected.");
            return;
        };
        let (die, boxes) = (self.die_index, self.boxes.len());
        ui.label(self.caption.get(std::time::Instant::now(), || {
            format!("Die {die}  ({boxes} defect boxes)")
        }));
        let (w, h) = (self.size[0] as f64, self.size[1] as f64);
        Plot::new("live_view")
            .data_aspect(1.0)
            .show_axes(false)
            .show_grid(false)
            .allow_scroll(false)
            .show(ui, |pu| {
                pu.image(PlotImage::new(
                    "die",
                    t.id(),
                    PlotPoint::new(w / 2.0, h / 2.0),
                    [w as f32, h as f32],
                ));
                for b in &self.boxes {
                    // Image rows grow downwards, plot y upwards.
                    let (x0, x1) = (b[0] as f64, b[2] as f64);
                    let (y0, y1) = (h - b[3] as f64, h - b[1] as f64);
                    pu.polygon(
                        Polygon::new("defect", vec![[x0, y0], [x1, y0], [x1, y1], [x0, y1]])
                            .fill_color(Color32::TRANSPARENT)
                            .stroke(egui::Stroke::new(1.5, Color32::WHITE)),
                    );
                }
            });
    }
}
