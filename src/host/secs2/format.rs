//! The SECS-II item formats (SEMI E5 §9) and their codes.

use std::fmt;

/// The format of an item: what its data bytes mean.
///
/// The format byte on the wire is `code << 2 | n`, where `code` is the
/// six-bit value below (the standard writes them in octal) and `n` (1..=3)
/// is how many length bytes follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    List,
    Binary,
    Boolean,
    Ascii,
    Jis8,
    I8,
    I1,
    I2,
    I4,
    F8,
    F4,
    U8,
    U1,
    U2,
    U4,
}

impl Format {
    /// Every format, for tests and tables.
    pub const ALL: [Format; 15] = [
        Format::List,
        Format::Binary,
        Format::Boolean,
        Format::Ascii,
        Format::Jis8,
        Format::I8,
        Format::I1,
        Format::I2,
        Format::I4,
        Format::F8,
        Format::F4,
        Format::U8,
        Format::U1,
        Format::U2,
        Format::U4,
    ];

    /// The six-bit format code (E5 Table 1, octal as in the standard).
    pub const fn code(self) -> u8 {
        match self {
            Format::List => 0o00,
            Format::Binary => 0o10,
            Format::Boolean => 0o11,
            Format::Ascii => 0o20,
            Format::Jis8 => 0o21,
            Format::I8 => 0o30,
            Format::I1 => 0o31,
            Format::I2 => 0o32,
            Format::I4 => 0o34,
            Format::F8 => 0o40,
            Format::F4 => 0o44,
            Format::U8 => 0o50,
            Format::U1 => 0o51,
            Format::U2 => 0o52,
            Format::U4 => 0o54,
        }
    }

    /// The format for a six-bit code, `None` for a code E5 does not define
    /// and for 0o22 (2-byte characters), which E5 defines and this codec
    /// does not support.
    pub const fn from_code(code: u8) -> Option<Format> {
        Some(match code {
            0o00 => Format::List,
            0o10 => Format::Binary,
            0o11 => Format::Boolean,
            0o20 => Format::Ascii,
            0o21 => Format::Jis8,
            0o30 => Format::I8,
            0o31 => Format::I1,
            0o32 => Format::I2,
            0o34 => Format::I4,
            0o40 => Format::F8,
            0o44 => Format::F4,
            0o50 => Format::U8,
            0o51 => Format::U1,
            0o52 => Format::U2,
            0o54 => Format::U4,
            _ => return None,
        })
    }

    /// Bytes per element; a list's length counts items, not bytes, so it
    /// has none.
    pub const fn element_size(self) -> Option<usize> {
        match self {
            Format::List => None,
            Format::Binary | Format::Boolean | Format::Ascii | Format::Jis8 => Some(1),
            Format::I1 | Format::U1 => Some(1),
            Format::I2 | Format::U2 => Some(2),
            Format::I4 | Format::U4 | Format::F4 => Some(4),
            Format::I8 | Format::U8 | Format::F8 => Some(8),
        }
    }

    /// The name SML (and every SECS log) uses: `L`, `B`, `BOOLEAN`, `A`, ...
    pub const fn sml_name(self) -> &'static str {
        match self {
            Format::List => "L",
            Format::Binary => "B",
            Format::Boolean => "BOOLEAN",
            Format::Ascii => "A",
            Format::Jis8 => "J",
            Format::I8 => "I8",
            Format::I1 => "I1",
            Format::I2 => "I2",
            Format::I4 => "I4",
            Format::F8 => "F8",
            Format::F4 => "F4",
            Format::U8 => "U8",
            Format::U1 => "U1",
            Format::U2 => "U2",
            Format::U4 => "U4",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.sml_name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_fit_six_bits() {
        for format in Format::ALL {
            assert!(format.code() < 64, "{format}");
            assert_eq!(Format::from_code(format.code()), Some(format));
        }
    }

    #[test]
    fn undefined_codes_have_no_format() {
        let defined = (0u8..64)
            .filter(|&c| Format::from_code(c).is_some())
            .count();
        assert_eq!(defined, Format::ALL.len());
        assert_eq!(Format::from_code(0o22), None);
        assert_eq!(Format::from_code(0o77), None);
    }

    #[test]
    fn format_bytes_match_the_standard() {
        // The format byte with one length byte, as hosts' logs print it.
        let byte = |f: Format| f.code() << 2 | 1;
        assert_eq!(byte(Format::List), 0x01);
        assert_eq!(byte(Format::Binary), 0x21);
        assert_eq!(byte(Format::Boolean), 0x25);
        assert_eq!(byte(Format::Ascii), 0x41);
        assert_eq!(byte(Format::Jis8), 0x45);
        assert_eq!(byte(Format::I8), 0x61);
        assert_eq!(byte(Format::I1), 0x65);
        assert_eq!(byte(Format::I2), 0x69);
        assert_eq!(byte(Format::I4), 0x71);
        assert_eq!(byte(Format::F8), 0x81);
        assert_eq!(byte(Format::F4), 0x91);
        assert_eq!(byte(Format::U8), 0xA1);
        assert_eq!(byte(Format::U1), 0xA5);
        assert_eq!(byte(Format::U2), 0xA9);
        assert_eq!(byte(Format::U4), 0xB1);
    }
}
