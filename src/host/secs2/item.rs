//! The SECS-II item: one value of the message body tree, with
//! constructors and accessors for the layers above (GEM).

use super::format::Format;

/// One SECS-II item. A message body is at most one item (a list for
/// anything structured).
///
/// Text items (`Ascii`, `Jis8`) keep the bytes as received: real hosts send
/// bytes outside ASCII, and a codec that rejected or rewrote them would lose
/// what the host meant. [`Item::as_ascii`] gives `&str` when the bytes allow.
///
/// Equality is "encodes to the same bytes": floats compare by their bits
/// (so a NaN equals the same NaN, and `0.0` differs from `-0.0`), which is
/// what a round trip through the wire must preserve. That makes `Eq` honest.
#[derive(Debug, Clone)]
pub enum Item {
    List(Vec<Item>),
    Binary(Vec<u8>),
    /// On the wire one byte each: 0 is false, anything else true (E5);
    /// encoded as 0 and 1.
    Boolean(Vec<bool>),
    Ascii(Vec<u8>),
    Jis8(Vec<u8>),
    I1(Vec<i8>),
    I2(Vec<i16>),
    I4(Vec<i32>),
    I8(Vec<i64>),
    U1(Vec<u8>),
    U2(Vec<u16>),
    U4(Vec<u32>),
    U8(Vec<u64>),
    F4(Vec<f32>),
    F8(Vec<f64>),
}

impl PartialEq for Item {
    fn eq(&self, other: &Item) -> bool {
        use Item::*;
        match (self, other) {
            (List(a), List(b)) => a == b,
            (Binary(a), Binary(b)) => a == b,
            (Boolean(a), Boolean(b)) => a == b,
            (Ascii(a), Ascii(b)) => a == b,
            (Jis8(a), Jis8(b)) => a == b,
            (I1(a), I1(b)) => a == b,
            (I2(a), I2(b)) => a == b,
            (I4(a), I4(b)) => a == b,
            (I8(a), I8(b)) => a == b,
            (U1(a), U1(b)) => a == b,
            (U2(a), U2(b)) => a == b,
            (U4(a), U4(b)) => a == b,
            (U8(a), U8(b)) => a == b,
            (F4(a), F4(b)) => a
                .iter()
                .map(|x| x.to_bits())
                .eq(b.iter().map(|x| x.to_bits())),
            (F8(a), F8(b)) => a
                .iter()
                .map(|x| x.to_bits())
                .eq(b.iter().map(|x| x.to_bits())),
            _ => false,
        }
    }
}

impl Eq for Item {}

/// Constructors for the common single-value items, named as SML names the
/// formats. Note the SECS names count bytes: `u1` takes a `u8`, `u8` takes
/// a `u64`.
impl Item {
    pub fn list(items: impl IntoIterator<Item = Item>) -> Item {
        Item::List(items.into_iter().collect())
    }

    pub fn empty_list() -> Item {
        Item::List(Vec::new())
    }

    pub fn binary(bytes: impl Into<Vec<u8>>) -> Item {
        Item::Binary(bytes.into())
    }

    /// A one-byte binary item: what GEM uses for acknowledge codes
    /// (HCACK, TIAACK, ACKC7, ...) and ALCD.
    pub fn binary_byte(byte: u8) -> Item {
        Item::Binary(vec![byte])
    }

    pub fn boolean(value: bool) -> Item {
        Item::Boolean(vec![value])
    }

    /// An ASCII item from text or bytes; the bytes are sent as given.
    pub fn ascii(text: impl Into<Vec<u8>>) -> Item {
        Item::Ascii(text.into())
    }

    pub fn jis8(bytes: impl Into<Vec<u8>>) -> Item {
        Item::Jis8(bytes.into())
    }

    pub fn i1(value: i8) -> Item {
        Item::I1(vec![value])
    }

    pub fn i2(value: i16) -> Item {
        Item::I2(vec![value])
    }

    pub fn i4(value: i32) -> Item {
        Item::I4(vec![value])
    }

    pub fn i8(value: i64) -> Item {
        Item::I8(vec![value])
    }

    pub fn u1(value: u8) -> Item {
        Item::U1(vec![value])
    }

    pub fn u2(value: u16) -> Item {
        Item::U2(vec![value])
    }

    pub fn u4(value: u32) -> Item {
        Item::U4(vec![value])
    }

    pub fn u8(value: u64) -> Item {
        Item::U8(vec![value])
    }

    pub fn f4(value: f32) -> Item {
        Item::F4(vec![value])
    }

    pub fn f8(value: f64) -> Item {
        Item::F8(vec![value])
    }
}

/// Accessors: each answers `None` when the item is not of the asked shape,
/// so the GEM layer can turn a malformed message into the right error reply
/// instead of panicking.
impl Item {
    pub fn format(&self) -> Format {
        match self {
            Item::List(_) => Format::List,
            Item::Binary(_) => Format::Binary,
            Item::Boolean(_) => Format::Boolean,
            Item::Ascii(_) => Format::Ascii,
            Item::Jis8(_) => Format::Jis8,
            Item::I1(_) => Format::I1,
            Item::I2(_) => Format::I2,
            Item::I4(_) => Format::I4,
            Item::I8(_) => Format::I8,
            Item::U1(_) => Format::U1,
            Item::U2(_) => Format::U2,
            Item::U4(_) => Format::U4,
            Item::U8(_) => Format::U8,
            Item::F4(_) => Format::F4,
            Item::F8(_) => Format::F8,
        }
    }

    /// How many elements: items of a list, bytes of text or binary, values
    /// of a numeric array. This is the wire length for a list, and the wire
    /// length divided by the element size for the rest.
    pub fn len(&self) -> usize {
        match self {
            Item::List(v) => v.len(),
            Item::Binary(v) | Item::Ascii(v) | Item::Jis8(v) | Item::U1(v) => v.len(),
            Item::Boolean(v) => v.len(),
            Item::I1(v) => v.len(),
            Item::I2(v) => v.len(),
            Item::I4(v) => v.len(),
            Item::I8(v) => v.len(),
            Item::U2(v) => v.len(),
            Item::U4(v) => v.len(),
            Item::U8(v) => v.len(),
            Item::F4(v) => v.len(),
            Item::F8(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn as_list(&self) -> Option<&[Item]> {
        match self {
            Item::List(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_binary(&self) -> Option<&[u8]> {
        match self {
            Item::Binary(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The byte of a one-byte binary item (acknowledge codes, ALCD).
    pub fn as_binary_byte(&self) -> Option<u8> {
        match self.as_binary()? {
            [byte] => Some(*byte),
            _ => None,
        }
    }

    /// The value of a one-element boolean item.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Item::Boolean(v) if v.len() == 1 => Some(v[0]),
            _ => None,
        }
    }

    /// An ASCII item's text, when its bytes are valid UTF-8 (all ASCII
    /// is); `None` for other formats or other bytes. [`Item::ascii_bytes`]
    /// gives the bytes whatever they are.
    pub fn as_ascii(&self) -> Option<&str> {
        std::str::from_utf8(self.ascii_bytes()?).ok()
    }

    /// An ASCII item's bytes exactly as received.
    pub fn ascii_bytes(&self) -> Option<&[u8]> {
        match self {
            Item::Ascii(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// A JIS-8 item's bytes exactly as received (no decoding: nothing here
    /// needs JIS X 0201 text yet).
    pub fn jis8_bytes(&self) -> Option<&[u8]> {
        match self {
            Item::Jis8(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The value of a one-element integer item of any width, signed or
    /// unsigned, when it is not negative. Hosts pick the width of IDs
    /// (SVID, CEID, ...) freely, so the GEM layer must accept them all.
    pub fn as_u64(&self) -> Option<u64> {
        let value = self.as_i128()?;
        u64::try_from(value).ok()
    }

    /// As [`Item::as_u64`], `None` when the value does not fit in `u32`.
    pub fn as_u32(&self) -> Option<u32> {
        u32::try_from(self.as_i128()?).ok()
    }

    /// The value of a one-element integer item of any width, signed or
    /// unsigned, when it fits in `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        i64::try_from(self.as_i128()?).ok()
    }

    /// The value of a one-element float item (F4 widened, exactly).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Item::F4(v) if v.len() == 1 => Some(f64::from(v[0])),
            Item::F8(v) if v.len() == 1 => Some(v[0]),
            _ => None,
        }
    }

    /// Every integer format fits in `i128`: one conversion serves all.
    fn as_i128(&self) -> Option<i128> {
        fn one<T: Copy + Into<i128>>(v: &[T]) -> Option<i128> {
            match v {
                [x] => Some((*x).into()),
                _ => None,
            }
        }
        match self {
            Item::I1(v) => one(v),
            Item::I2(v) => one(v),
            Item::I4(v) => one(v),
            Item::I8(v) => one(v),
            Item::U1(v) => one(v),
            Item::U2(v) => one(v),
            Item::U4(v) => one(v),
            Item::U8(v) => one(v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_u32_accepts_every_integer_width_with_one_element() {
        for item in [
            Item::u1(7),
            Item::u2(7),
            Item::u4(7),
            Item::u8(7),
            Item::i1(7),
            Item::i2(7),
            Item::i4(7),
            Item::i8(7),
        ] {
            assert_eq!(item.as_u32(), Some(7), "{item:?}");
            assert_eq!(item.as_u64(), Some(7), "{item:?}");
            assert_eq!(item.as_i64(), Some(7), "{item:?}");
        }
    }

    #[test]
    fn as_u32_refuses_negatives_overflow_arrays_and_other_formats() {
        assert_eq!(Item::i4(-1).as_u32(), None);
        assert_eq!(Item::i4(-1).as_i64(), Some(-1));
        assert_eq!(Item::u8(u64::from(u32::MAX) + 1).as_u32(), None);
        assert_eq!(Item::u8(u64::MAX).as_u64(), Some(u64::MAX));
        assert_eq!(Item::u8(u64::MAX).as_i64(), None);
        assert_eq!(Item::U4(vec![1, 2]).as_u32(), None);
        assert_eq!(Item::U4(vec![]).as_u32(), None);
        assert_eq!(Item::ascii("7").as_u32(), None);
        assert_eq!(Item::binary_byte(7).as_u32(), None);
        assert_eq!(Item::f8(7.0).as_u32(), None);
    }

    #[test]
    fn ascii_keeps_bytes_and_gives_str_only_when_valid() {
        assert_eq!(Item::ascii("START").as_ascii(), Some("START"));
        let latin1 = Item::Ascii(vec![b'C', 0xE9]);
        assert_eq!(latin1.as_ascii(), None);
        assert_eq!(latin1.ascii_bytes(), Some(&[b'C', 0xE9][..]));
        assert_eq!(Item::binary("START").as_ascii(), None);
    }

    #[test]
    fn other_accessors() {
        let list = Item::list([Item::ascii("A"), Item::u4(1)]);
        assert_eq!(list.as_list().map(<[Item]>::len), Some(2));
        assert_eq!(list.len(), 2);
        assert_eq!(Item::empty_list().as_list(), Some(&[][..]));
        assert_eq!(Item::binary_byte(3).as_binary_byte(), Some(3));
        assert_eq!(Item::binary([1, 2]).as_binary_byte(), None);
        assert_eq!(Item::boolean(true).as_bool(), Some(true));
        assert_eq!(Item::f4(0.5).as_f64(), Some(0.5));
        assert_eq!(Item::jis8("x").jis8_bytes(), Some(&b"x"[..]));
        assert_eq!(Item::u4(1).as_list(), None);
        assert_eq!(Item::u4(1).format(), Format::U4);
    }

    #[test]
    fn floats_are_equal_by_their_bits() {
        assert_eq!(Item::f8(f64::NAN), Item::f8(f64::NAN));
        assert_ne!(Item::f8(0.0), Item::f8(-0.0));
        assert_ne!(Item::f4(1.0), Item::f8(1.0));
        assert_ne!(Item::u1(1), Item::binary_byte(1));
    }
}
