//! Brightness normalisation between dies: film thickness and illumination
//! make a neighbour a few percent brighter or darker than the die under
//! test. Each reference is mapped onto T as T ≈ gain · R + offset, estimated
//! per die and applied in the comparison kernel in fixed point.
//!
//! The estimate is a least-squares line through pairs of block means of T
//! and the aligned R (16 × 8 px blocks in bands of rows every 64 rows) over
//! the region they share, rather than pixels: averaging 128 pixels divides
//! the noise variance by 128, so noise does not flatten the slope, and a
//! few defects move a few blocks out of thousands.

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

/// Sums for the least-squares line of T's block means on R's.
#[derive(Debug, Clone, Copy, Default)]
pub struct LevelStats {
    n: u64,
    st: f64,
    sr: f64,
    str_: f64,
    srr: f64,
}

/// Blocks are `BLOCK` px wide and `BLOCK_ROWS` rows tall, in bands of
/// rows every `LEVEL_BAND_STEP` rows (an eighth of the die is read:
/// 2048² px give 4,096 blocks, plenty for two parameters).
pub const BLOCK_ROWS: usize = 8;
pub const LEVEL_BAND_STEP: usize = 64;
/// Widest image: sizes the per-band block sums (on the stack).
const MAX_BLOCKS: usize = 4096 / BLOCK;

impl LevelStats {
    /// Adds the blocks of one band: `t_rows` and `r_rows` give the
    /// `BLOCK_ROWS` rows of T and of R at the nearest whole-pixel shift
    /// (equal lengths). Tall blocks keep the pairing honest: a whole-pixel
    /// pairing of single rows, or a bilinear resampling that blurs R but
    /// not T, moved the slope by percents on a die of fine lines.
    pub fn add_band<'a>(&mut self, rows: impl Iterator<Item = (&'a [u8], &'a [u8])>) {
        let mut sums_t = [0u32; MAX_BLOCKS];
        let mut sums_r = [0u32; MAX_BLOCKS];
        let mut blocks = 0;
        for (t, r) in rows {
            blocks = (t.len().min(r.len()) / BLOCK).min(MAX_BLOCKS);
            let len = blocks * BLOCK;
            for (k, (bt, br)) in t[..len]
                .chunks_exact(BLOCK)
                .zip(r[..len].chunks_exact(BLOCK))
                .enumerate()
            {
                sums_t[k] += bt.iter().map(|&p| p as u32).sum::<u32>();
                sums_r[k] += br.iter().map(|&p| p as u32).sum::<u32>();
            }
        }
        for (&a, &b) in sums_t[..blocks].iter().zip(&sums_r[..blocks]) {
            let (a, b) = (a as f64, b as f64);
            self.n += 1;
            self.st += a;
            self.sr += b;
            self.str_ += a * b;
            self.srr += b * b;
        }
    }

    /// T ≈ gain · R + offset; the identity with too little to go on.
    pub fn finish(&self) -> LevelMap {
        if self.n < 2 {
            return LevelMap::default();
        }
        let nf = self.n as f64;
        let (mt, mr) = (self.st / nf, self.sr / nf);
        let cov = self.str_ / nf - mt * mr;
        let var_r = (self.srr / nf - mr * mr).max(0.0);
        // Block means carry 1/128 of the noise variance: no dilution of
        // the slope worth the name.
        let gain = if var_r > 1.0 { cov / var_r } else { 1.0 };
        // Block sums: divide by the block's pixels for grey levels.
        let offset = (mt - gain * mr) / (BLOCK * BLOCK_ROWS) as f64;
        LevelMap::new(gain as f32, offset as f32)
    }
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
        let mut stats = LevelStats::default();
        for y in (0..512 - BLOCK_ROWS).step_by(LEVEL_BAND_STEP) {
            stats.add_band(
                (y..y + BLOCK_ROWS).map(|y| (&t[y * 512..][..512], &r[y * 512..][..512])),
            );
        }
        let m = stats.finish();
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
