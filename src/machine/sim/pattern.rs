//! The simulated die layout: scribe street, pads, a field of horizontal
//! metal lines with vias, and a field of vertical lines, rendered with exact
//! box-filter coverage so a sub-pixel shift moves every edge smoothly (as a
//! real optical image does), plus seeded sensor noise.
//!
//! Every feature is an axis-aligned band, so the image is built from 1-D
//! coverage tables: a few multiply-adds per pixel.

/// Grey levels of the layout's materials.
pub const STREET: f32 = 30.0;
pub const BACKGROUND: f32 = 60.0;
pub const VLINE: f32 = 140.0;
pub const HLINE: f32 = 170.0;
pub const PAD: f32 = 200.0;
pub const VIA: f32 = 225.0;

pub const STREET_PX: f64 = 12.0;
pub const HLINE_PERIOD: f64 = 24.0;
pub const HLINE_WIDTH: f64 = 10.0;
pub const VIA_PERIOD_X: f64 = 48.0;
pub const VIA_OFFSET_X: f64 = 21.0;
pub const VIA_SIZE: f64 = 6.0;
/// Pads sit in bands this far from the top and bottom edges.
pub const PAD_BAND: (f64, f64) = (20.0, 76.0);
const PAD_PERIOD: f64 = 112.0;
const PAD_WIDTH: f64 = 56.0;
const VLINE_PERIOD: f64 = 32.0;
const VLINE_WIDTH: f64 = 12.0;

/// Where the horizontal-line field ends (fraction of the die width).
pub fn hline_field_x_end(width: u32) -> f64 {
    (width as f64 * 0.6).floor()
}

/// Vertical extent of the line fields (between the pad bands).
pub fn line_field_y(height: u32) -> (f64, f64) {
    (PAD_BAND.1 + 8.0, height as f64 - PAD_BAND.1 - 8.0)
}

/// Overlap of the pixel [x0, x0+1) with [a, b).
fn cover(x0: f64, a: f64, b: f64) -> f32 {
    ((x0 + 1.0).min(b) - x0.max(a)).max(0.0) as f32
}

/// Overlap of the pixel [x0, x0+1) with bands [k·period + offset, … + width).
fn cover_periodic(x0: f64, period: f64, offset: f64, width: f64) -> f32 {
    let t = (x0 - offset).rem_euclid(period);
    cover(t, 0.0, width) + cover(t, period, period + width) + cover(t, -period, -period + width)
}

/// A cheap, well-mixed hash for noise (SplitMix64's finaliser).
#[inline]
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Renders the die into `out` (row-major, `width` × `height`, 8-bit),
/// shifted by `shift` pixels, with zero-mean noise of about `noise_sigma`
/// grey levels drawn from `noise_seed`. Allocates its 1-D tables: used to
/// pre-render, not per frame.
pub fn render_die(
    out: &mut [u8],
    width: u32,
    height: u32,
    shift: (f64, f64),
    noise_sigma: f32,
    noise_seed: u64,
) {
    let (w, h) = (width as usize, height as usize);
    assert_eq!(out.len(), w * h);
    let xs = |x: usize| x as f64 - shift.0;
    let ys = |y: usize| y as f64 - shift.1;
    let (fw, fh) = (width as f64, height as f64);
    let field_end = hline_field_x_end(width);
    let (ly0, ly1) = line_field_y(height);

    let inside_x: Vec<f32> = (0..w)
        .map(|x| cover(xs(x), STREET_PX, fw - STREET_PX))
        .collect();
    let inside_y: Vec<f32> = (0..h)
        .map(|y| cover(ys(y), STREET_PX, fh - STREET_PX))
        .collect();
    let field_a_x: Vec<f32> = (0..w)
        .map(|x| cover(xs(x), STREET_PX + 8.0, field_end))
        .collect();
    let field_b_x: Vec<f32> = (0..w)
        .map(|x| cover(xs(x), field_end + 8.0, fw - STREET_PX - 8.0))
        .collect();
    let field_y: Vec<f32> = (0..h).map(|y| cover(ys(y), ly0, ly1)).collect();
    let hline_y: Vec<f32> = (0..h)
        .map(|y| cover_periodic(ys(y), HLINE_PERIOD, 0.0, HLINE_WIDTH))
        .collect();
    let via_y: Vec<f32> = (0..h)
        .map(|y| {
            cover_periodic(
                ys(y),
                HLINE_PERIOD,
                (HLINE_WIDTH - VIA_SIZE) / 2.0,
                VIA_SIZE,
            )
        })
        .collect();
    let via_x: Vec<f32> = (0..w)
        .map(|x| cover_periodic(xs(x), VIA_PERIOD_X, VIA_OFFSET_X, VIA_SIZE))
        .collect();
    let vline_x: Vec<f32> = (0..w)
        .map(|x| cover_periodic(xs(x), VLINE_PERIOD, 4.0, VLINE_WIDTH))
        .collect();
    let pad_x: Vec<f32> = (0..w)
        .map(|x| cover_periodic(xs(x), PAD_PERIOD, 28.0, PAD_WIDTH) * cover(xs(x), 24.0, fw - 24.0))
        .collect();
    let pad_y: Vec<f32> = (0..h)
        .map(|y| {
            cover(ys(y), PAD_BAND.0, PAD_BAND.1) + cover(ys(y), fh - PAD_BAND.1, fh - PAD_BAND.0)
        })
        .collect();

    for y in 0..h {
        let row = &mut out[y * w..(y + 1) * w];
        for (x, px) in row.iter_mut().enumerate() {
            let mut v = BACKGROUND;
            let a = field_a_x[x] * field_y[y];
            v += (HLINE - v) * (hline_y[y] * a);
            v += (VIA - v) * (via_x[x] * via_y[y] * a);
            v += (VLINE - v) * (vline_x[x] * field_b_x[x] * field_y[y]);
            v += (PAD - v) * (pad_x[x] * pad_y[y]);
            v += (STREET - v) * (1.0 - inside_x[x] * inside_y[y]);
            if noise_sigma > 0.0 {
                // Sum of four uniform bytes: near-Gaussian, sd = 147.8.
                let r = mix(noise_seed ^ ((y * w + x) as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let s = (r & 0xFF) + (r >> 8 & 0xFF) + (r >> 16 & 0xFF) + (r >> 24 & 0xFF);
                v += (s as f32 - 510.0) * (noise_sigma / 147.8);
            }
            *px = v.round().clamp(0.0, 255.0) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_has_its_materials_where_expected() {
        let (w, h) = (512, 512);
        let mut img = vec![0u8; w * h];
        render_die(&mut img, w as u32, h as u32, (0.0, 0.0), 0.0, 1);
        let at = |x: usize, y: usize| img[y * w + x];
        assert_eq!(at(2, 2), STREET as u8);
        assert_eq!(at(100, 100 + 3), HLINE as u8); // line at y=96..106
        assert_eq!(at(100, 96 + 14), BACKGROUND as u8); // gap
        assert_eq!(at(21 + 48 * 2 + 3, 96 + 5), VIA as u8);
        assert_eq!(at(28 + 112 + 10, 40), PAD as u8);
    }

    #[test]
    fn a_half_pixel_shift_blends_edges() {
        let (w, h) = (256, 256);
        let mut a = vec![0u8; w * h];
        render_die(&mut a, w as u32, h as u32, (0.0, 0.5), 0.0, 1);
        // Line edge at y = 96 + 0.5: pixel 96 is half line, half gap.
        let v = a[96 * w + 100];
        assert!((v as f32 - (HLINE + BACKGROUND) / 2.0).abs() <= 1.0, "{v}");
    }

    #[test]
    fn noise_is_seeded_and_about_sigma() {
        let (w, h) = (256, 256);
        let (mut a, mut b, mut c) = (vec![0u8; w * h], vec![0u8; w * h], vec![0u8; w * h]);
        render_die(&mut a, w as u32, h as u32, (0.0, 0.0), 3.0, 7);
        render_die(&mut b, w as u32, h as u32, (0.0, 0.0), 3.0, 7);
        render_die(&mut c, w as u32, h as u32, (0.0, 0.0), 0.0, 7);
        assert_eq!(a, b);
        let n = (w * h) as f64;
        let var: f64 = a
            .iter()
            .zip(&c)
            .map(|(&x, &y)| (x as f64 - y as f64).powi(2))
            .sum::<f64>()
            / n;
        assert!((2.5..3.5).contains(&var.sqrt()), "{}", var.sqrt());
    }
}
