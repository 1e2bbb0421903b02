//! Care areas: rectangles of the die with their own threshold, or where
//! nothing is reported ("don't care") — how a recipe tunes sensitivity per
//! region (dense arrays, logos, test structures).
//!
//! The recipe's rectangles (µm) arrive here in image pixels as a
//! fixed-capacity `Copy` list, so `DetectParams` stays `Copy`. When a
//! `Detector` is built, they are turned once into a per-pixel map of area
//! numbers, stored run-length per row (`CareMap`): the kernel then applies
//! each area's threshold to whole spans of a row, which keeps it
//! vectorised. Where areas overlap, the later one in the list wins.
//!
//! A mask image (`waferscope inspect --mask`) joins the same map: its
//! don't-care pixels become spans of one more, don't-care, area, painted
//! last (`CareMap::with_mask`), so masked pixels neither flag nor join
//! blobs, exactly like a recipe's don't-care rectangle.

/// Care areas a recipe may list.
pub const MAX_CARE_AREAS: usize = 32;

/// What applies inside a care area.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum CareRule {
    /// Nothing is flagged: defects there are not reported and blobs do not
    /// join through the area.
    #[default]
    DontCare,
    /// A threshold in grey levels.
    Grey(u8),
    /// k of a k·σ threshold (σ estimated per die).
    Sigma(f32),
}

/// A rectangle of image pixels, `x0..x1` × `y0..y1` (exclusive ends, y
/// down), with its rule.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CareArea {
    pub x0: u16,
    pub y0: u16,
    pub x1: u16,
    pub y1: u16,
    pub rule: CareRule,
}

/// Up to `MAX_CARE_AREAS` care areas, in recipe order.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct CareAreas {
    areas: [CareArea; MAX_CARE_AREAS],
    count: u8,
}

impl CareAreas {
    /// Adds an area; `Err` with the capacity when full.
    pub fn push(&mut self, area: CareArea) -> Result<(), usize> {
        if self.count as usize == MAX_CARE_AREAS {
            return Err(MAX_CARE_AREAS);
        }
        self.areas[self.count as usize] = area;
        self.count += 1;
        Ok(())
    }

    pub fn as_slice(&self) -> &[CareArea] {
        &self.areas[..self.count as usize]
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Converts a rectangle in die µm (origin lower-left, y up, as
    /// `Defect::position_um`) to the pixels it touches in an image of
    /// `image_px` × `image_px`, clamped to the image.
    pub fn area_from_um(
        (x_um, y_um, width_um, height_um): (f64, f64, f64, f64),
        pixel_um: f64,
        image_px: u32,
        rule: CareRule,
    ) -> CareArea {
        let n = image_px as f64;
        let px = |v: f64| v.clamp(0.0, n) as u16;
        CareArea {
            x0: px((x_um / pixel_um).floor()),
            x1: px(((x_um + width_um) / pixel_um).ceil()),
            y0: px((n - (y_um + height_um) / pixel_um).floor()),
            y1: px((n - y_um / pixel_um).ceil()),
            rule,
        }
    }
}

/// A span `x0..x1` of one row and its area number (0: outside every care
/// area; k: `CareAreas::as_slice()[k - 1]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub x0: u16,
    pub x1: u16,
    pub area: u8,
}

/// The per-pixel area map, run-length per row. Built once per detector.
#[derive(Debug, Clone, Default)]
pub struct CareMap {
    spans: Vec<Span>,
    /// Row y's spans are `spans[row_start[y]..row_start[y + 1]]`.
    row_start: Vec<u32>,
}

impl CareMap {
    /// Paints the areas in order (later wins) and run-length encodes each
    /// row. Empty when there are no areas (the whole die uses the default).
    pub fn new(areas: &CareAreas, width: usize, height: usize) -> Self {
        if areas.is_empty() {
            return Self::default();
        }
        Self::paint(areas, width, height, None)
    }

    /// The areas as `new` paints them, then every pixel whose `cared` value
    /// (row-major, `width` × `height`, e.g. a mask image's non-zero pixels)
    /// is false painted don't-care, over any area. The don't-care area is
    /// added to `areas` (an empty rectangle whose number the mask's spans
    /// carry), so `areas` is what the detector's parameters must hold.
    /// `Err` with the capacity when `areas` is already full.
    pub fn with_mask(
        areas: &mut CareAreas,
        cared: &[bool],
        width: usize,
        height: usize,
    ) -> Result<Self, usize> {
        assert_eq!(cared.len(), width * height, "mask of another size");
        areas.push(CareArea {
            rule: CareRule::DontCare,
            ..CareArea::default()
        })?;
        let mask_area = areas.as_slice().len() as u8;
        Ok(Self::paint(areas, width, height, Some((cared, mask_area))))
    }

    fn paint(areas: &CareAreas, width: usize, height: usize, mask: Option<(&[bool], u8)>) -> Self {
        let mut spans = Vec::new();
        let mut row_start = Vec::with_capacity(height + 1);
        let mut row = vec![0u8; width];
        for y in 0..height {
            row.fill(0);
            for (k, a) in areas.as_slice().iter().enumerate() {
                if (a.y0 as usize..a.y1 as usize).contains(&y) {
                    let (x0, x1) = ((a.x0 as usize).min(width), (a.x1 as usize).min(width));
                    row[x0..x1.max(x0)].fill(k as u8 + 1);
                }
            }
            if let Some((cared, area)) = mask {
                for (px, &c) in row.iter_mut().zip(&cared[y * width..][..width]) {
                    if !c {
                        *px = area;
                    }
                }
            }
            row_start.push(spans.len() as u32);
            let mut x = 0;
            while x < width {
                let area = row[x];
                let start = x;
                while x < width && row[x] == area {
                    x += 1;
                }
                spans.push(Span {
                    x0: start as u16,
                    x1: x as u16,
                    area,
                });
            }
        }
        row_start.push(spans.len() as u32);
        Self { spans, row_start }
    }

    pub fn is_empty(&self) -> bool {
        self.row_start.is_empty()
    }

    /// Rows mapped (0 when empty).
    pub fn rows(&self) -> usize {
        self.row_start.len().saturating_sub(1)
    }

    /// The most spans any row has (0 when empty).
    pub fn max_row_spans(&self) -> usize {
        self.row_start
            .windows(2)
            .map(|w| (w[1] - w[0]) as usize)
            .max()
            .unwrap_or(0)
    }

    /// The spans of T's image row `y` when T's pixel (x, y) is the die's
    /// pixel (x + dx, y + dy) (the map is in die coordinates; a stage
    /// error moves the die in the image), into `out` (cleared; capacity
    /// `max_row_spans() + 2` keeps this allocation-free). Pixels that fall
    /// outside the die use the default area (0). Empty map: `out` stays
    /// empty.
    pub fn row_shifted(&self, y: usize, (dx, dy): (i32, i32), width: usize, out: &mut Vec<Span>) {
        out.clear();
        if self.is_empty() || width == 0 {
            return;
        }
        let w = width as i32;
        let outside = |x0: i32, x1: i32| Span {
            x0: x0.clamp(0, w) as u16,
            x1: x1.clamp(0, w) as u16,
            area: 0,
        };
        let die_y = y as i64 + dy as i64;
        if die_y < 0 || die_y >= self.rows() as i64 {
            out.push(outside(0, w));
            return;
        }
        let mut covered = 0;
        for s in self.row(die_y as usize) {
            let (x0, x1) = (
                (s.x0 as i32 - dx).clamp(0, w),
                (s.x1 as i32 - dx).clamp(0, w),
            );
            if x0 < x1 {
                if covered == 0 && x0 > 0 {
                    out.push(outside(0, x0));
                }
                out.push(Span {
                    x0: x0 as u16,
                    x1: x1 as u16,
                    area: s.area,
                });
                covered = x1;
            }
        }
        if covered < w {
            let start = out.last().map_or(0, |s| s.x1 as i32);
            out.push(outside(start, w));
        }
    }

    /// The spans of row `y` (empty map: none).
    pub fn row(&self, y: usize) -> &[Span] {
        if self.is_empty() {
            return &[];
        }
        &self.spans[self.row_start[y] as usize..self.row_start[y + 1] as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map shifted by a stage error: the area moves with the die, the
    /// pixels that came in from outside the die are the default area, and
    /// every pixel of the row is covered exactly once.
    #[test]
    fn a_shifted_row_moves_the_areas_and_covers_the_row() {
        let mut areas = CareAreas::default();
        areas
            .push(CareArea {
                x0: 10,
                y0: 5,
                x1: 20,
                y1: 8,
                rule: CareRule::DontCare,
            })
            .unwrap();
        let map = CareMap::new(&areas, 40, 12);
        let mut out = Vec::with_capacity(map.max_row_spans() + 2);
        let cover = |out: &[Span]| {
            assert_eq!(out.first().unwrap().x0, 0);
            assert_eq!(out.last().unwrap().x1, 40);
            assert!(out.windows(2).all(|w| w[0].x1 == w[1].x0), "{out:?}");
        };
        // T's pixel (x, y) is the die's (x + 6, y - 2): image row 8 is die
        // row 6, and the area (die x 10..20) sits at image x 4..14.
        map.row_shifted(8, (6, -2), 40, &mut out);
        cover(&out);
        assert!(
            out.contains(&Span {
                x0: 4,
                x1: 14,
                area: 1
            }),
            "{out:?}"
        );
        // Image row 2 is die row 0: no area.
        map.row_shifted(2, (6, -2), 40, &mut out);
        assert!(out.iter().all(|s| s.area == 0));
        // Shifted left by 30: the die's last 10 columns, then outside.
        map.row_shifted(6, (30, 0), 40, &mut out);
        cover(&out);
        assert_eq!(
            out.last().unwrap(),
            &Span {
                x0: 10,
                x1: 40,
                area: 0
            }
        );
        // Rows beyond the die are all default.
        map.row_shifted(11, (0, 5), 40, &mut out);
        assert_eq!(
            out,
            vec![Span {
                x0: 0,
                x1: 40,
                area: 0
            }]
        );
        assert!(out.capacity() >= map.max_row_spans() + 2);
    }

    #[test]
    fn later_areas_win_and_rows_are_run_length_encoded() {
        let mut areas = CareAreas::default();
        let rect = |x0, y0, x1, y1, rule| CareArea {
            x0,
            y0,
            x1,
            y1,
            rule,
        };
        areas.push(rect(2, 0, 8, 2, CareRule::Grey(50))).unwrap();
        areas.push(rect(6, 1, 10, 3, CareRule::DontCare)).unwrap();
        let map = CareMap::new(&areas, 12, 4);
        let spans = |y| {
            map.row(y)
                .iter()
                .map(|s| (s.x0, s.x1, s.area))
                .collect::<Vec<_>>()
        };
        assert_eq!(spans(0), [(0, 2, 0), (2, 8, 1), (8, 12, 0)]);
        assert_eq!(spans(1), [(0, 2, 0), (2, 6, 1), (6, 10, 2), (10, 12, 0)]);
        assert_eq!(spans(2), [(0, 6, 0), (6, 10, 2), (10, 12, 0)]);
        assert_eq!(spans(3), [(0, 12, 0)]);
        assert!(CareMap::new(&CareAreas::default(), 12, 4).row(0).is_empty());
    }

    #[test]
    fn a_mask_paints_dont_care_over_the_areas_as_one_more_area() {
        let mut areas = CareAreas::default();
        areas
            .push(CareArea {
                x0: 0,
                y0: 0,
                x1: 4,
                y1: 2,
                rule: CareRule::Grey(40),
            })
            .unwrap();
        // 6 × 2: columns 3 and 4 of row 0, column 0 of row 1 masked.
        let cared = [
            true, true, true, false, false, true, //
            false, true, true, true, true, true,
        ];
        let map = CareMap::with_mask(&mut areas, &cared, 6, 2).unwrap();
        assert_eq!(areas.as_slice().len(), 2);
        assert_eq!(areas.as_slice()[1].rule, CareRule::DontCare);
        let spans = |y| {
            map.row(y)
                .iter()
                .map(|s| (s.x0, s.x1, s.area))
                .collect::<Vec<_>>()
        };
        assert_eq!(spans(0), [(0, 3, 1), (3, 5, 2), (5, 6, 0)]);
        assert_eq!(spans(1), [(0, 1, 2), (1, 4, 1), (4, 6, 0)]);
        // A mask that cares everywhere changes nothing but the list.
        let mut none = CareAreas::default();
        let all = CareMap::with_mask(&mut none, &[true; 12], 6, 2).unwrap();
        assert_eq!(
            all.row(1),
            [Span {
                x0: 0,
                x1: 6,
                area: 0
            }]
        );
        let mut full = CareAreas::default();
        for _ in 0..MAX_CARE_AREAS {
            full.push(CareArea::default()).unwrap();
        }
        assert_eq!(
            CareMap::with_mask(&mut full, &[true; 12], 6, 2).unwrap_err(),
            MAX_CARE_AREAS
        );
    }

    #[test]
    fn micrometres_map_to_pixels_with_y_up() {
        // 10 µm pixels, 100 px image: a 50 × 20 µm area at (100, 30) µm
        // covers columns 10..15 and, counted from the top, rows 95..97.
        let a = CareAreas::area_from_um((100.0, 30.0, 50.0, 20.0), 10.0, 100, CareRule::DontCare);
        assert_eq!((a.x0, a.x1, a.y0, a.y1), (10, 15, 95, 97));
    }

    #[test]
    fn capacity_is_reported_not_grown() {
        let mut areas = CareAreas::default();
        for _ in 0..MAX_CARE_AREAS {
            areas.push(CareArea::default()).unwrap();
        }
        assert_eq!(areas.push(CareArea::default()), Err(MAX_CARE_AREAS));
    }
}
