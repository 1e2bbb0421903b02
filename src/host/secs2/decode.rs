//! Bytes → item, for bytes from a host we do not control.
//!
//! Hostile input gets an error, never a panic, and never makes us allocate
//! more than the input justifies: every length read from the wire is checked
//! against the bytes actually left before anything is sized by it. In the
//! worst case (a body of empty lists, two bytes each) the decoded tree takes
//! about 16 times the body's size, bounded through `max_message_bytes`.

use super::error::{DecodeError, DecodeErrorKind};
use super::format::Format;
use super::item::Item;
use super::limits::{DecodeLimits, MAX_DEPTH_CEILING};

/// Decodes a message body with the default limits. An empty body (a
/// header-only message such as S1F1) is `Ok(None)`.
pub fn decode_body(body: &[u8]) -> Result<Option<Item>, DecodeError> {
    decode_body_with(body, &DecodeLimits::default())
}

/// Decodes a message body: exactly one item, or nothing for an empty body.
pub fn decode_body_with(body: &[u8], limits: &DecodeLimits) -> Result<Option<Item>, DecodeError> {
    if body.len() > limits.max_message_bytes {
        return Err(DecodeError {
            offset: 0,
            kind: DecodeErrorKind::MessageTooLarge {
                len: body.len(),
                max: limits.max_message_bytes,
            },
        });
    }
    if body.is_empty() {
        return Ok(None);
    }
    let mut decoder = Decoder {
        input: body,
        pos: 0,
        max_depth: limits.max_depth.min(MAX_DEPTH_CEILING),
        memory_left: limits.max_message_bytes,
    };
    let item = decoder.item(0)?;
    if decoder.pos != body.len() {
        return Err(DecodeError {
            offset: decoder.pos,
            kind: DecodeErrorKind::TrailingBytes {
                count: body.len() - decoder.pos,
            },
        });
    }
    Ok(Some(item))
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    max_depth: usize,
    /// What the decoded items may still allocate: the message size limit
    /// bounds the memory decoding takes, not only the bytes it reads (a
    /// 2-byte empty list becomes a whole `Item` in its parent's vector).
    memory_left: usize,
}

impl Decoder<'_> {
    fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    /// Takes `bytes` of memory from the budget before they are allocated.
    fn charge(&mut self, offset: usize, bytes: usize) -> Result<(), DecodeError> {
        if bytes > self.memory_left {
            return Err(DecodeError {
                offset,
                kind: DecodeErrorKind::MemoryBeyondLimit {
                    needed: bytes,
                    left: self.memory_left,
                },
            });
        }
        self.memory_left -= bytes;
        Ok(())
    }

    /// Decodes the item at `pos`; `depth` is how many lists enclose it.
    fn item(&mut self, depth: usize) -> Result<Item, DecodeError> {
        let start = self.pos;
        let fail = |kind| {
            Err(DecodeError {
                offset: start,
                kind,
            })
        };
        let Some(&format_byte) = self.input.get(start) else {
            return fail(DecodeErrorKind::Truncated {
                needed: 1,
                available: 0,
            });
        };
        let length_bytes = usize::from(format_byte & 0b11);
        if length_bytes == 0 {
            return fail(DecodeErrorKind::NoLengthBytes);
        }
        let code = format_byte >> 2;
        let Some(format) = Format::from_code(code) else {
            return fail(DecodeErrorKind::UnknownFormat { code });
        };
        let header = 1 + length_bytes;
        if self.remaining() < header {
            return fail(DecodeErrorKind::Truncated {
                needed: header,
                available: self.remaining(),
            });
        }
        let length = self.input[start + 1..start + header]
            .iter()
            .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
        self.pos += header;
        let remaining = self.remaining();

        let Some(element_size) = format.element_size() else {
            if depth >= self.max_depth {
                return fail(DecodeErrorKind::TooDeep {
                    max_depth: self.max_depth,
                });
            }
            // Every item takes at least two bytes (format and one length
            // byte), so this bounds the allocation below by the input.
            if length > remaining / 2 {
                return fail(DecodeErrorKind::ListCountBeyondMessage {
                    count: length,
                    remaining,
                });
            }
            self.charge(start, length.saturating_mul(std::mem::size_of::<Item>()))?;
            let mut items = Vec::with_capacity(length);
            for _ in 0..length {
                items.push(self.item(depth + 1)?);
            }
            return Ok(Item::List(items));
        };

        if length > remaining {
            return fail(DecodeErrorKind::LengthBeyondMessage { length, remaining });
        }
        if length % element_size != 0 {
            return fail(DecodeErrorKind::LengthNotMultiple {
                format,
                length,
                element_size,
            });
        }
        // Every leaf holds one byte of memory per byte of data (a BOOLEAN
        // one `bool` per byte).
        self.charge(start, length)?;
        let data = &self.input[self.pos..self.pos + length];
        self.pos += length;
        Ok(match format {
            Format::List => unreachable!("lists have no element size"),
            Format::Binary => Item::Binary(data.to_vec()),
            Format::Ascii => Item::Ascii(data.to_vec()),
            Format::Jis8 => Item::Jis8(data.to_vec()),
            Format::U1 => Item::U1(data.to_vec()),
            Format::Boolean => Item::Boolean(data.iter().map(|&b| b != 0).collect()),
            Format::I1 => Item::I1(elements(data, i8::from_be_bytes)),
            Format::I2 => Item::I2(elements(data, i16::from_be_bytes)),
            Format::I4 => Item::I4(elements(data, i32::from_be_bytes)),
            Format::I8 => Item::I8(elements(data, i64::from_be_bytes)),
            Format::U2 => Item::U2(elements(data, u16::from_be_bytes)),
            Format::U4 => Item::U4(elements(data, u32::from_be_bytes)),
            Format::U8 => Item::U8(elements(data, u64::from_be_bytes)),
            Format::F4 => Item::F4(elements(data, f32::from_be_bytes)),
            Format::F8 => Item::F8(elements(data, f64::from_be_bytes)),
        })
    }
}

/// Big-endian elements of `N` bytes; `data.len()` is a multiple of `N`
/// (checked by the caller), and `chunks_exact` sizes the Vec exactly.
fn elements<T, const N: usize>(data: &[u8], from_be: fn([u8; N]) -> T) -> Vec<T> {
    data.chunks_exact(N)
        .map(|chunk| {
            let mut bytes = [0u8; N];
            bytes.copy_from_slice(chunk);
            from_be(bytes)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Item {
        decode_body(bytes).unwrap().unwrap()
    }

    fn error(bytes: &[u8]) -> DecodeError {
        decode_body(bytes).unwrap_err()
    }

    fn error_with(bytes: &[u8], max_message_bytes: usize, max_depth: usize) -> DecodeError {
        let limits = DecodeLimits {
            max_message_bytes,
            max_depth,
        };
        decode_body_with(bytes, &limits).unwrap_err()
    }

    #[test]
    fn empty_body_is_no_item() {
        // S1F1 (Are You There) has a header and no body.
        assert_eq!(decode_body(&[]), Ok(None));
    }

    #[test]
    fn known_encodings_from_the_standard() {
        assert_eq!(decode(&[0x01, 0x00]), Item::empty_list());
        assert_eq!(decode(&[0x41, 0x03, 0x41, 0x42, 0x43]), Item::ascii("ABC"));
        assert_eq!(decode(&[0xB1, 0x04, 0, 0, 0, 1]), Item::u4(1));
        assert_eq!(decode(&[0x21, 0x01, 0x80]), Item::binary_byte(0x80));
        assert_eq!(decode(&[0x69, 0x02, 0xFF, 0xFE]), Item::i2(-2));
        assert_eq!(decode(&[0x91, 0x04, 0x3F, 0x80, 0, 0]), Item::f4(1.0));
        assert_eq!(
            decode(&[0x01, 0x02, 0x41, 0x05, b'S', b'T', b'A', b'R', b'T', 0xB1, 0x04, 0, 0, 0, 5]),
            Item::list([Item::ascii("START"), Item::u4(5)])
        );
    }

    #[test]
    fn boolean_nonzero_is_true() {
        assert_eq!(
            decode(&[0x25, 0x03, 0x00, 0x01, 0xFF]),
            Item::Boolean(vec![false, true, true])
        );
    }

    #[test]
    fn three_length_byte_binary_item() {
        let mut bytes = vec![0x23, 0x01, 0x00, 0x02];
        bytes.extend((0..0x01_0002u32).map(|i| i as u8));
        let item = decode(&bytes);
        assert_eq!(item.as_binary().map(<[u8]>::len), Some(0x01_0002));
        assert_eq!(item.as_binary().unwrap()[..3], [0, 1, 2]);
    }

    #[test]
    fn every_length_byte_count_is_accepted_even_when_not_minimal() {
        // `<A "ABC">` with one, two and three length bytes.
        for bytes in [
            &[0x41, 0x03, b'A', b'B', b'C'][..],
            &[0x42, 0x00, 0x03, b'A', b'B', b'C'][..],
            &[0x43, 0x00, 0x00, 0x03, b'A', b'B', b'C'][..],
        ] {
            assert_eq!(decode(bytes), Item::ascii("ABC"), "{bytes:02X?}");
        }
        // `<L[1] <U2 258>>`, list with three length bytes, U2 with two.
        assert_eq!(
            decode(&[0x03, 0, 0, 1, 0xAA, 0x00, 0x02, 0x01, 0x02]),
            Item::list([Item::u2(258)])
        );
    }

    #[test]
    fn hostile_zero_length_bytes() {
        assert_eq!(
            error(&[0x40, 0x00]),
            DecodeError {
                offset: 0,
                kind: DecodeErrorKind::NoLengthBytes
            }
        );
        // Inside a list: the offset points at the bad item.
        assert_eq!(error(&[0x01, 0x01, 0xB0, 0x00]).offset, 2);
    }

    #[test]
    fn hostile_unknown_format_code() {
        assert_eq!(
            error(&[0o22 << 2 | 1, 0x00]).kind,
            DecodeErrorKind::UnknownFormat { code: 0o22 }
        );
        assert_eq!(
            error(&[0xFD, 0x00]).kind,
            DecodeErrorKind::UnknownFormat { code: 0o77 }
        );
    }

    #[test]
    fn hostile_truncated_header() {
        assert_eq!(
            error(&[0x43, 0x00]),
            DecodeError {
                offset: 0,
                kind: DecodeErrorKind::Truncated {
                    needed: 4,
                    available: 2
                }
            }
        );
        assert_eq!(
            error(&[0x41]).kind,
            DecodeErrorKind::Truncated {
                needed: 2,
                available: 1
            }
        );
    }

    #[test]
    fn hostile_list_runs_out_of_items() {
        // `<L[2]>` claims two items; the first (a 2-byte U1) uses up the
        // bytes the count check allowed for both.
        assert_eq!(
            error(&[0x01, 0x02, 0xA5, 0x02, 0x01, 0x02]),
            DecodeError {
                offset: 6,
                kind: DecodeErrorKind::Truncated {
                    needed: 1,
                    available: 0
                }
            }
        );
    }

    #[test]
    fn hostile_truncated_data() {
        assert_eq!(
            error(&[0x41, 0x05, b'A', b'B']),
            DecodeError {
                offset: 0,
                kind: DecodeErrorKind::LengthBeyondMessage {
                    length: 5,
                    remaining: 2
                }
            }
        );
    }

    #[test]
    fn hostile_length_larger_than_the_message() {
        assert_eq!(
            error(&[0x23, 0xFF, 0xFF, 0xFF, 0x00]).kind,
            DecodeErrorKind::LengthBeyondMessage {
                length: 0xFF_FFFF,
                remaining: 1
            }
        );
    }

    #[test]
    fn hostile_list_count_larger_than_the_message_could_hold() {
        // 0xFFFFFF items in 4 bytes: refused before any allocation.
        assert_eq!(
            error(&[0x03, 0xFF, 0xFF, 0xFF, 0x01, 0x00, 0x01, 0x00]).kind,
            DecodeErrorKind::ListCountBeyondMessage {
                count: 0xFF_FFFF,
                remaining: 4
            }
        );
        // Three items need at least 6 bytes; 5 are left.
        assert_eq!(
            error(&[0x01, 0x03, 0x01, 0x00, 0x01, 0x00, 0x00]).kind,
            DecodeErrorKind::ListCountBeyondMessage {
                count: 3,
                remaining: 5
            }
        );
    }

    #[test]
    fn hostile_oversized_message() {
        let body = [0x21, 0x03, 1, 2, 3];
        assert_eq!(
            error_with(&body, 4, 32),
            DecodeError {
                offset: 0,
                kind: DecodeErrorKind::MessageTooLarge { len: 5, max: 4 }
            }
        );
        assert!(decode_body_with(
            &body,
            &DecodeLimits {
                max_message_bytes: 5,
                max_depth: 32
            }
        )
        .is_ok());
    }

    #[test]
    fn hostile_numeric_length_not_a_multiple_of_element_size() {
        assert_eq!(
            error(&[0xB1, 0x03, 0, 0, 1]).kind,
            DecodeErrorKind::LengthNotMultiple {
                format: Format::U4,
                length: 3,
                element_size: 4
            }
        );
        for (format_byte, bad_length) in [(0x69, 1), (0x81, 7), (0x91, 6), (0x61, 12), (0xA9, 3)] {
            let mut body = vec![format_byte, bad_length];
            body.resize(2 + bad_length as usize, 0);
            assert!(
                matches!(error(&body).kind, DecodeErrorKind::LengthNotMultiple { .. }),
                "{body:02X?}"
            );
        }
    }

    #[test]
    fn hostile_deep_nesting() {
        // `<L[1] <L[1] ... <L[0]>>>`, 40 lists deep; the default allows 32.
        let mut body = [0x01, 0x01].repeat(39);
        body.extend([0x01, 0x00]);
        assert_eq!(
            error(&body),
            DecodeError {
                offset: 64,
                kind: DecodeErrorKind::TooDeep { max_depth: 32 }
            }
        );
        assert!(decode_body_with(
            &body,
            &DecodeLimits {
                max_message_bytes: 1 << 20,
                max_depth: 40
            }
        )
        .is_ok());
        assert_eq!(error_with(&body, 1 << 20, 39).offset, 78);
        // No limit beats the ceiling: the stack stays safe.
        let mut deeper = [0x01, 0x01].repeat(MAX_DEPTH_CEILING);
        deeper.extend([0x01, 0x00]);
        assert_eq!(
            error_with(&deeper, 1 << 20, usize::MAX).kind,
            DecodeErrorKind::TooDeep {
                max_depth: MAX_DEPTH_CEILING
            }
        );
    }

    #[test]
    fn hostile_trailing_bytes() {
        assert_eq!(
            error(&[0x01, 0x00, 0x01, 0x00]),
            DecodeError {
                offset: 2,
                kind: DecodeErrorKind::TrailingBytes { count: 2 }
            }
        );
    }

    #[test]
    fn errors_say_where_and_what() {
        assert_eq!(
            error(&[0x01, 0x02, 0x21, 0x02, 0, 0]).to_string(),
            "SECS-II body, byte 6: the message ends where an item should start"
        );
        assert_eq!(
            error(&[0x42, 0x01]).to_string(),
            "SECS-II body, byte 0: truncated: an item header needs 3 bytes, 2 left"
        );
        let text = error(&[0x01, 0x01, 0xB1, 0x03, 0, 0, 1]).to_string();
        assert_eq!(
            text,
            "SECS-II body, byte 2: U4 item of 3 bytes is not a multiple of its 4-byte elements"
        );
    }

    #[test]
    fn ascii_keeps_non_ascii_bytes() {
        let item = decode(&[0x41, 0x02, b'C', 0xE9]);
        assert_eq!(item.ascii_bytes(), Some(&[b'C', 0xE9][..]));
        assert_eq!(item.as_ascii(), None);
    }
}
