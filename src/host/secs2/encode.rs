//! Item → bytes.

use super::error::EncodeError;
use super::item::Item;
use super::MAX_ITEM_LENGTH;

/// Appends the message body for `body` to `out`: nothing for `None` (a
/// header-only message such as S1F1), else the item's encoding. On error
/// `out` is left as it was.
pub fn encode_body(body: Option<&Item>, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    match body {
        None => Ok(()),
        Some(item) => encode(item, out),
    }
}

/// Appends `item`'s encoding to `out`. On error `out` is left as it was, so
/// a caller that wrote a header first can still report and move on.
pub fn encode(item: &Item, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let start = out.len();
    let result = encode_into(item, out);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn encode_into(item: &Item, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    let format = item.format();
    // A list's length counts items; every other length counts bytes.
    let length = match format.element_size() {
        None => item.len(),
        Some(size) => item.len().saturating_mul(size),
    };
    write_header(format.code(), length, out)
        .map_err(|()| EncodeError::TooLong { format, length })?;
    match item {
        Item::List(items) => {
            for child in items {
                encode_into(child, out)?;
            }
        }
        Item::Binary(v) | Item::Ascii(v) | Item::Jis8(v) | Item::U1(v) => out.extend_from_slice(v),
        Item::Boolean(v) => out.extend(v.iter().map(|&b| u8::from(b))),
        Item::I1(v) => out.extend(v.iter().flat_map(|x| x.to_be_bytes())),
        Item::I2(v) => out.extend(v.iter().flat_map(|x| x.to_be_bytes())),
        Item::I4(v) => out.extend(v.iter().flat_map(|x| x.to_be_bytes())),
        Item::I8(v) => out.extend(v.iter().flat_map(|x| x.to_be_bytes())),
        Item::U2(v) => out.extend(v.iter().flat_map(|x| x.to_be_bytes())),
        Item::U4(v) => out.extend(v.iter().flat_map(|x| x.to_be_bytes())),
        Item::U8(v) => out.extend(v.iter().flat_map(|x| x.to_be_bytes())),
        Item::F4(v) => out.extend(v.iter().flat_map(|x| x.to_bits().to_be_bytes())),
        Item::F8(v) => out.extend(v.iter().flat_map(|x| x.to_bits().to_be_bytes())),
    }
    Ok(())
}

/// The format byte and the fewest length bytes that hold `length`
/// (E5 lets senders use more; the fewest is what every host expects).
fn write_header(code: u8, length: usize, out: &mut Vec<u8>) -> Result<(), ()> {
    if length > MAX_ITEM_LENGTH {
        return Err(());
    }
    let length_bytes: usize = match length {
        0..=0xFF => 1,
        0x100..=0xFFFF => 2,
        _ => 3,
    };
    out.push(code << 2 | length_bytes as u8);
    let be = (length as u32).to_be_bytes();
    out.extend_from_slice(&be[4 - length_bytes..]);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(item: &Item) -> Vec<u8> {
        let mut out = Vec::new();
        encode(item, &mut out).unwrap();
        out
    }

    #[test]
    fn known_encodings_from_the_standard() {
        assert_eq!(bytes(&Item::empty_list()), [0x01, 0x00]);
        assert_eq!(bytes(&Item::ascii("ABC")), [0x41, 0x03, 0x41, 0x42, 0x43]);
        assert_eq!(bytes(&Item::u4(1)), [0xB1, 0x04, 0, 0, 0, 1]);
        assert_eq!(bytes(&Item::binary_byte(0x80)), [0x21, 0x01, 0x80]);
        assert_eq!(bytes(&Item::boolean(true)), [0x25, 0x01, 0x01]);
        assert_eq!(bytes(&Item::i2(-2)), [0x69, 0x02, 0xFF, 0xFE]);
        assert_eq!(bytes(&Item::f4(1.0)), [0x91, 0x04, 0x3F, 0x80, 0, 0]);
        assert_eq!(
            bytes(&Item::f8(-2.5)),
            [0x81, 0x08, 0xC0, 0x04, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(bytes(&Item::u8(1)), [0xA1, 0x08, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(
            bytes(&Item::list([Item::ascii("START"), Item::u4(5)])),
            [0x01, 0x02, 0x41, 0x05, b'S', b'T', b'A', b'R', b'T', 0xB1, 0x04, 0, 0, 0, 5]
        );
    }

    #[test]
    fn empty_body_encodes_to_nothing() {
        let mut out = vec![0xAA];
        encode_body(None, &mut out).unwrap();
        assert_eq!(out, [0xAA]);
    }

    #[test]
    fn encoding_picks_the_fewest_length_bytes() {
        let header = |n: usize| {
            let out = bytes(&Item::Binary(vec![0; n]));
            out[..1 + (out[0] & 3) as usize].to_vec()
        };
        assert_eq!(header(0), [0x21, 0x00]);
        assert_eq!(header(0xFF), [0x21, 0xFF]);
        assert_eq!(header(0x100), [0x22, 0x01, 0x00]);
        assert_eq!(header(0xFFFF), [0x22, 0xFF, 0xFF]);
        assert_eq!(header(0x1_0000), [0x23, 0x01, 0x00, 0x00]);
        assert_eq!(header(0xFF_FFFF), [0x23, 0xFF, 0xFF, 0xFF]);
        // A list's length counts items, not bytes.
        let list = bytes(&Item::List(vec![Item::empty_list(); 0x100]));
        assert_eq!(list[..3], [0x02, 0x01, 0x00]);
    }

    #[test]
    fn three_length_byte_binary_item() {
        let out = bytes(&Item::Binary(vec![7; 0x01_0203]));
        assert_eq!(out[..4], [0x23, 0x01, 0x02, 0x03]);
        assert_eq!(out.len(), 4 + 0x01_0203);
    }

    #[test]
    fn length_over_three_bytes_is_an_encode_error_and_leaves_out_untouched() {
        let mut out = vec![1, 2];
        let too_long = Item::U4(vec![0; 0x40_0000]); // 0x100_0000 bytes
        assert_eq!(
            encode_body(Some(&too_long), &mut out),
            Err(EncodeError::TooLong {
                format: super::super::Format::U4,
                length: 0x100_0000
            })
        );
        assert_eq!(out, [1, 2]);
        // Deep inside a list, after bytes were written: still untouched.
        let nested = Item::list([Item::u4(1), Item::Binary(vec![0; 0x100_0000])]);
        assert!(encode(&nested, &mut out).is_err());
        assert_eq!(out, [1, 2]);
        // Exactly the maximum is fine.
        assert!(encode(&Item::Binary(vec![0; MAX_ITEM_LENGTH]), &mut out).is_ok());
    }
}
