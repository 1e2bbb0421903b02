//! Brightness normalisation between dies: film thickness and illumination
//! make a neighbour a few percent brighter or darker than the die under
//! test. Each reference is mapped onto T as T ≈ gain · R + offset, estimated
//! per die and applied in the comparison kernel in fixed point.
//!
//! The estimate matches the mean and standard deviation of T and R over the
//! region they share, on block means (16 px of every 16th row) rather than
//! pixels: averaging 16 pixels divides the noise variance by 16, so a
//! noisier T than R (a noise-free golden die, say) does not read as gain,
//! and a few defects move a few blocks out of tens of thousands.

/// Gain limits accepted; a wider estimate is clamped (the die is then more
/// likely to show differences, which is right: it is not like its
/// neighbours).
pub const MIN_GAIN: f32 = 0.8;
pub const MAX_GAIN: f32 = 1.25;
/// Offset limit, grey levels.
pub const MAX_OFFSET: f32 = 40.0;

/// Fixed-point scale of the mapping (Q7).
pub const LEVEL_ONE: u16 = 128;
/// Added to both sides of the comparison so a negative offset stays in
/// unsigned 16-bit lanes: 255 · 1.25 · 128 + 2 · 40 · 128 < 65 536.
pub const LEVEL_BIAS: u16 = (MAX_OFFSET as u16) * LEVEL_ONE;

const BLOCK: usize = 16;
const ROW_STEP: usize = 16;

/// T ≈ gain · R + offset, and its Q7 fixed-point form for the kernel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LevelMap {
    pub gain: f32,
    pub offset: f32,
    /// round(gain · 128).
    pub gain_q7: u16,
    /// round(offset · 128) + `LEVEL_BIAS` (≥ 0).
    pub offset_q7_biased: u16,
}

impl Default for LevelMap {
    fn default() -> Self {
        Self::new(1.0, 0.0)
    }
}

impl LevelMap {
    /// Clamps to the accepted range and quantises.
    pub fn new(gain: f32, offset: f32) -> Self {
        let gain = if gain.is_finite() {
            gain.clamp(MIN_GAIN, MAX_GAIN)
        } else {
            1.0
        };
        let offset = if offset.is_finite() {
            offset.clamp(-MAX_OFFSET, MAX_OFFSET)
        } else {
            0.0
        };
        let one = LEVEL_ONE as f32;
        Self {
            gain,
            offset,
            gain_q7: (gain * one).round() as u16,
            offset_q7_biased: ((offset * one).round() + LEVEL_BIAS as f32) as u16,
        }
    }

    /// The reference value `r` as T would see it, grey levels.
    pub fn apply(&self, r: f32) -> f32 {
        self.gain * r + self.offset
    }
}

/// Estimates how `reference` maps onto `test` over T's region
/// `x0..x1` × `y0..y1`, the reference displaced by the integer shift
/// (`ix`, `iy`) (which must keep the region inside it). Never allocates.
#[allow(clippy::too_many_arguments)]
pub fn estimate_levels(
    test: &[u8],
    reference: &[u8],
    width: usize,
    (ix, iy): (i32, i32),
    (x0, x1): (usize, usize),
    (y0, y1): (usize, usize),
) -> LevelMap {
    let (mut n, mut st, mut stt, mut sr, mut srr) = (0u64, 0u64, 0u64, 0u64, 0u64);
    let len = (x1.saturating_sub(x0) / BLOCK) * BLOCK;
    if len == 0 {
        return LevelMap::default();
    }
    for y in (y0..y1).step_by(ROW_STEP) {
        let t = &test[y * width + x0..][..len];
        let ry = (y as i32 + iy) as usize;
        let rx = (x0 as i32 + ix) as usize;
        let r = &reference[ry * width + rx..][..len];
        for (bt, br) in t.chunks_exact(BLOCK).zip(r.chunks_exact(BLOCK)) {
            let a = bt.iter().map(|&p| p as u64).sum::<u64>();
            let b = br.iter().map(|&p| p as u64).sum::<u64>();
            n += 1;
            st += a;
            stt += a * a;
            sr += b;
            srr += b * b;
        }
    }
    if n < 2 {
        return LevelMap::default();
    }
    let nf = n as f64;
    let (mt, mr) = (st as f64 / nf, sr as f64 / nf);
    let var_t = (stt as f64 / nf - mt * mt).max(0.0);
    let var_r = (srr as f64 / nf - mr * mr).max(0.0);
    // Block sums: divide by BLOCK for grey levels.
    let gain = if var_r > 1.0 && var_t > 1.0 {
        (var_t / var_r).sqrt()
    } else {
        1.0
    };
    let offset = (mt - gain * mr) / BLOCK as f64;
    LevelMap::new(gain as f32, offset as f32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::sim::pattern::render_die;

    #[test]
    fn recovers_gain_and_offset_of_a_neighbour() {
        let size = 512u32;
        let n = (size * size) as usize;
        let (mut t, mut r) = (vec![0u8; n], vec![0u8; n]);
        render_die(&mut r, size, size, (0.0, 0.0), 8.0, 2);
        render_die(&mut t, size, size, (0.0, 0.0), 8.0, 1);
        // T brighter by 10 % and 15 grey levels (the pattern stays < 220).
        for p in t.iter_mut() {
            *p = (*p as f32 * 1.1 + 15.0).min(255.0) as u8;
        }
        let m = estimate_levels(&t, &r, size as usize, (0, 0), (0, 512), (0, 512));
        assert!((m.gain - 1.1).abs() < 0.02, "{m:?}");
        assert!((m.offset - 15.0).abs() < 3.0, "{m:?}");
    }

    #[test]
    fn fixed_point_stays_in_sixteen_bits() {
        let m = LevelMap::new(9.0, 99.0);
        assert_eq!((m.gain, m.offset), (MAX_GAIN, MAX_OFFSET));
        assert!(255 * m.gain_q7 as u32 + m.offset_q7_biased as u32 <= u16::MAX as u32);
        let m = LevelMap::new(0.1, -99.0);
        assert_eq!(m.offset_q7_biased, 0);
    }
}
