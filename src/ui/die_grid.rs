//! The wafer map's dies as one plot item per kind of mark, drawn as one
//! mesh of pixel-aligned rectangles.
//!
//! Measured (BENCHMARKS.md, "The wafer map's dies"): drawn as one
//! `egui_plot::Polygon` per die, the ~600 dies of a 300 mm wafer cost the
//! UI thread about 1.7 ms of every 4.7 ms frame at 2048² px full load:
//! 600 plot items, each a path filled and stroked with anti-aliasing
//! feathering and tessellated every frame, and the GL driver's vertex work
//! on the result. A die is an axis-aligned rectangle, so it needs no
//! tessellation: two rectangles (its outline colour, then its fill inset by
//! the outline's width), snapped to whole pixels so edges stay crisp
//! without feathering, go straight into one mesh per kind.

use egui::epaint::Mesh;
use egui::{Color32, Pos2, Rect, Shape, Ui};
use egui_plot::{PlotBounds, PlotGeometry, PlotItem, PlotItemBase, PlotPoint, PlotTransform};
use std::ops::RangeInclusive;

/// One die: its corners in mm and its outline.
#[derive(Debug, Clone, Copy)]
pub struct DieRect {
    pub min_mm: [f64; 2],
    pub max_mm: [f64; 2],
    /// Outline width in screen pixels (whole pixels: the mesh has no
    /// anti-aliasing) and colour.
    pub outline_px: f32,
    pub outline: Color32,
}

/// The dies of one kind of mark (one legend entry, shown or hidden
/// together).
pub struct DieRects {
    base: PlotItemBase,
    fill: Color32,
    dies: Vec<DieRect>,
    bounds: PlotBounds,
}

impl DieRects {
    pub fn new(name: &str, fill: Color32) -> Self {
        Self {
            base: PlotItemBase::new(name.to_owned()),
            fill,
            dies: Vec::new(),
            bounds: PlotBounds::NOTHING,
        }
    }

    pub fn push(&mut self, die: DieRect) {
        self.bounds
            .extend_with(&PlotPoint::new(die.min_mm[0], die.min_mm[1]));
        self.bounds
            .extend_with(&PlotPoint::new(die.max_mm[0], die.max_mm[1]));
        self.dies.push(die);
    }

    pub fn is_empty(&self) -> bool {
        self.dies.is_empty()
    }

    /// The mesh at `transform`: per die, the outline's rectangle, then the
    /// fill's inside it.
    fn mesh(&self, transform: &PlotTransform) -> Mesh {
        let mut mesh = Mesh::default();
        mesh.reserve_triangles(self.dies.len() * 4);
        mesh.reserve_vertices(self.dies.len() * 8);
        let screen = |p: [f64; 2]| -> Pos2 {
            transform
                .position_from_point(&PlotPoint::new(p[0], p[1]))
                .round()
        };
        for d in &self.dies {
            let outer = Rect::from_two_pos(screen(d.min_mm), screen(d.max_mm));
            let inner = outer.shrink(d.outline_px);
            if d.outline_px > 0.0 {
                mesh.add_colored_rect(outer, d.outline);
            }
            if inner.is_positive() {
                mesh.add_colored_rect(inner, self.fill);
            }
        }
        mesh
    }
}

impl PlotItem for DieRects {
    fn shapes(&self, _ui: &Ui, transform: &PlotTransform, shapes: &mut Vec<Shape>) {
        shapes.push(Shape::mesh(self.mesh(transform)));
    }

    fn initialize(&mut self, _x_range: RangeInclusive<f64>) {}

    /// The legend shows the fill: that is what tells the kinds apart.
    fn color(&self) -> Color32 {
        self.fill
    }

    /// Nothing to hover: the map's hover labels name defects, not dies
    /// (a die is clicked to see it).
    fn geometry(&self) -> PlotGeometry<'_> {
        PlotGeometry::None
    }

    fn bounds(&self) -> PlotBounds {
        self.bounds
    }

    fn base(&self) -> &PlotItemBase {
        &self.base
    }

    fn base_mut(&mut self) -> &mut PlotItemBase {
        &mut self.base
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two dies side by side, 10 mm each, on a plot that maps 1 mm to
    /// 10 px: each becomes its outline rectangle and its fill inset by the
    /// outline, on whole pixels, and nothing else (8 vertices a die); a
    /// die whose outline would swallow it keeps only the outline.
    #[test]
    fn each_die_is_its_outline_and_its_inset_fill_on_whole_pixels() {
        let frame = Rect::from_min_size(Pos2::new(0.5, 0.5), egui::vec2(200.0, 100.0));
        let bounds = PlotBounds::from_min_max([0.0, 0.0], [20.0, 10.0]);
        let transform = PlotTransform::new(frame, bounds, egui::Vec2b::new(false, false));
        let mut dies = DieRects::new("clean", Color32::from_gray(170));
        let outline = Color32::from_gray(110);
        for (x, w) in [(0.0, 1.0), (10.0, 2.0)] {
            dies.push(DieRect {
                min_mm: [x, 0.0],
                max_mm: [x + 10.0, 10.0],
                outline_px: w,
                outline,
            });
        }
        let mesh = dies.mesh(&transform);
        assert_eq!(mesh.vertices.len(), 16);
        assert_eq!(mesh.indices.len(), 24);
        assert!(mesh
            .vertices
            .iter()
            .all(|v| v.pos.x.fract() == 0.0 && v.pos.y.fract() == 0.0));
        let rect_of = |k: usize| {
            let v = &mesh.vertices[k * 4..k * 4 + 4];
            let (xs, ys): (Vec<f32>, Vec<f32>) = v.iter().map(|v| (v.pos.x, v.pos.y)).unzip();
            let min = |a: &[f32]| a.iter().copied().fold(f32::MAX, f32::min);
            let max = |a: &[f32]| a.iter().copied().fold(f32::MIN, f32::max);
            (
                Rect::from_min_max(Pos2::new(min(&xs), min(&ys)), Pos2::new(max(&xs), max(&ys))),
                v[0].color,
            )
        };
        let (outer, c0) = rect_of(0);
        let (inner, c1) = rect_of(1);
        assert_eq!((c0, c1), (outline, Color32::from_gray(170)));
        assert_eq!(inner, outer.shrink(1.0));
        assert!((outer.width() - 100.0).abs() <= 1.0, "{outer:?}");
        let (outer2, _) = rect_of(2);
        let (inner2, _) = rect_of(3);
        assert_eq!(inner2, outer2.shrink(2.0));
        // A die 0.3 mm wide (3 px) under a 2 px outline: outline only.
        let mut tiny = DieRects::new("tiny", Color32::WHITE);
        tiny.push(DieRect {
            min_mm: [0.0, 0.0],
            max_mm: [0.3, 0.3],
            outline_px: 2.0,
            outline,
        });
        assert_eq!(tiny.mesh(&transform).vertices.len(), 4);
        assert!(dies.bounds().max()[0] >= 20.0 && dies.bounds().min()[1] <= 0.0);
    }
}
