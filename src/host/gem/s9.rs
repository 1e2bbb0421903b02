//! Stream 9 error messages (E5 §10): the equipment tells the host what it
//! could not handle. Each body is the 10-byte header of the offending
//! message (MHEAD), or for S9F9 of our own request that timed out (SHEAD).

use crate::host::hsms::DataMessage;
use crate::host::secs2::Item;

pub const UNRECOGNIZED_DEVICE_ID: u8 = 1;
pub const UNRECOGNIZED_STREAM: u8 = 3;
pub const UNRECOGNIZED_FUNCTION: u8 = 5;
pub const ILLEGAL_DATA: u8 = 7;
pub const TRANSACTION_TIMEOUT: u8 = 9;

/// `<B[10] header>` of `message` as it came over the wire.
pub fn header_body(message: &DataMessage) -> Item {
    Item::binary(message.header_bytes().to_vec())
}

/// Streams this equipment handles at all (an S9F3 otherwise).
pub fn known_stream(stream: u8) -> bool {
    matches!(stream, 1 | 2 | 5 | 6 | 7 | 9 | 10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_is_the_offending_header() {
        let m = DataMessage {
            session_id: 7,
            stream: 99,
            function: 1,
            w_bit: true,
            system: 0x0102_0304,
            body: vec![1, 2, 3],
        };
        let body = header_body(&m);
        assert_eq!(
            body.as_binary(),
            Some(&[0, 7, 0x80 | 99, 1, 0, 0, 1, 2, 3, 4][..])
        );
        assert!(!known_stream(99));
        assert!(known_stream(1));
    }
}
