//! Turning the registers of one point into its value. Plain arithmetic on
//! a few words: no allocation, no failure (a value the device cannot mean
//! is caught by the signal's valid range in the poller).

use crate::machine::config::{DataType, ModbusPoint, WordOrder};

/// The raw number in `words` (1 or 2 registers, as read from the lowest
/// address up), before scaling.
pub fn raw_value(data_type: DataType, word_order: WordOrder, words: &[u16]) -> f64 {
    let pair = || -> u32 {
        let (hi, lo) = match word_order {
            WordOrder::HighFirst => (words[0], words[1]),
            WordOrder::LowFirst => (words[1], words[0]),
        };
        (u32::from(hi) << 16) | u32::from(lo)
    };
    match data_type {
        DataType::Bool => f64::from(u8::from(words[0] != 0)),
        DataType::U16 => f64::from(words[0]),
        DataType::I16 => f64::from(words[0] as i16),
        DataType::U32 => f64::from(pair()),
        DataType::I32 => f64::from(pair() as i32),
        DataType::F32 => f64::from(f32::from_bits(pair())),
    }
}

/// The point's value in the station's unit.
pub fn value(point: &ModbusPoint, words: &[u16]) -> f64 {
    raw_value(point.data_type, point.word_order, words) * point.scale + point.offset
}

/// A heartbeat counter: the raw register(s), unscaled.
pub fn counter(point: &ModbusPoint, words: &[u16]) -> u32 {
    match point.data_type {
        DataType::U32 | DataType::I32 => raw_value(DataType::U32, point.word_order, words) as u32,
        _ => u32::from(words[0]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_order_and_signedness() {
        let f = 12.5f32.to_bits();
        let (hi, lo) = ((f >> 16) as u16, f as u16);
        assert_eq!(
            raw_value(DataType::F32, WordOrder::HighFirst, &[hi, lo]),
            12.5
        );
        assert_eq!(
            raw_value(DataType::F32, WordOrder::LowFirst, &[lo, hi]),
            12.5
        );
        assert_eq!(
            raw_value(DataType::I16, WordOrder::HighFirst, &[0xFFFE]),
            -2.0
        );
        assert_eq!(
            raw_value(DataType::U16, WordOrder::HighFirst, &[0xFFFE]),
            65534.0
        );
        assert_eq!(
            raw_value(DataType::U32, WordOrder::HighFirst, &[0x0001, 0x0002]),
            65538.0
        );
        assert_eq!(
            raw_value(DataType::I32, WordOrder::LowFirst, &[0xFFFF, 0xFFFF]),
            -1.0
        );
        assert_eq!(raw_value(DataType::Bool, WordOrder::HighFirst, &[7]), 1.0);
    }
}
