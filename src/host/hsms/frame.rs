//! One HSMS message on the wire (SEMI E37 §8): a 4-byte big-endian message
//! length, then the 10-byte header, then the message text (a data message's
//! SECS-II body, opaque here).
//!
//! ```text
//! length (4) | session id (2) | byte 2 | byte 3 | PType | SType | system bytes (4) | text
//! ```
//!
//! Responses and Reject.req copy the session id and system bytes of the
//! message they answer (0xFFFF for control messages in HSMS-SS).
//!
//! Bytes 2 and 3 mean different things per SType: W-bit|stream and function
//! for a data message, the select/deselect status in byte 3 of Select.rsp and
//! Deselect.rsp, the rejected SType (or PType) and the reason code for
//! Reject.req, zero otherwise.
//!
//! [`decode_frame`] is a pure function over a byte slice (what a fuzz target
//! calls); [`FrameDecoder`] buffers a TCP stream's bytes for it. A length
//! below 10 or above the configured maximum is an error before any byte of
//! the text is buffered, so a wire length never sizes an allocation.

use std::fmt;

/// Bytes of the length field.
pub const LENGTH_BYTES: usize = 4;
/// Bytes of the header; the smallest valid message length.
pub const HEADER_BYTES: usize = 10;
/// Session id of control messages in HSMS-SS (E37.1): "all ones".
pub const CONTROL_SESSION_ID: u16 = 0xFFFF;

/// The message types of E37 (SType, header byte 5). Values 8 and 10–255 are
/// reserved or unknown: [`Header::stype`] returns `None` for them and the
/// session answers with a Reject.req.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SType {
    Data = 0,
    SelectReq = 1,
    SelectRsp = 2,
    DeselectReq = 3,
    DeselectRsp = 4,
    LinktestReq = 5,
    LinktestRsp = 6,
    RejectReq = 7,
    SeparateReq = 9,
}

impl SType {
    pub fn from_u8(value: u8) -> Option<SType> {
        Some(match value {
            0 => SType::Data,
            1 => SType::SelectReq,
            2 => SType::SelectRsp,
            3 => SType::DeselectReq,
            4 => SType::DeselectRsp,
            5 => SType::LinktestReq,
            6 => SType::LinktestRsp,
            7 => SType::RejectReq,
            9 => SType::SeparateReq,
            _ => return None,
        })
    }
}

/// Reject.req reason codes (E37 §7.8, header byte 3).
pub mod reject_reason {
    /// The SType is not supported (header byte 2 carries the SType).
    pub const STYPE_NOT_SUPPORTED: u8 = 1;
    /// The PType is not supported (header byte 2 carries the PType).
    pub const PTYPE_NOT_SUPPORTED: u8 = 2;
    /// A control response whose transaction is not open.
    pub const TRANSACTION_NOT_OPEN: u8 = 3;
    /// A data message while not SELECTED.
    pub const ENTITY_NOT_SELECTED: u8 = 4;
}

/// Select.rsp status (header byte 3).
pub mod select_status {
    pub const ESTABLISHED: u8 = 0;
    pub const ALREADY_ACTIVE: u8 = 1;
}

/// Deselect.rsp status (header byte 3).
pub mod deselect_status {
    pub const ENDED: u8 = 0;
    pub const NOT_ESTABLISHED: u8 = 1;
}

/// The 10-byte header, field by field as on the wire. `stype` and `ptype`
/// stay raw bytes so an unknown one still decodes (and gets rejected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub session_id: u16,
    pub byte2: u8,
    pub byte3: u8,
    pub ptype: u8,
    pub stype: u8,
    pub system: u32,
}

impl Header {
    /// A data message header: W-bit and stream in byte 2, function in byte 3.
    pub fn data(session_id: u16, stream: u8, function: u8, w_bit: bool, system: u32) -> Header {
        Header {
            session_id,
            byte2: (stream & 0x7F) | if w_bit { 0x80 } else { 0 },
            byte3: function,
            ptype: 0,
            stype: SType::Data as u8,
            system,
        }
    }

    /// A control message header (session id 0xFFFF, bytes 2/3 zero).
    pub fn control(stype: SType, system: u32) -> Header {
        Header {
            session_id: CONTROL_SESSION_ID,
            byte2: 0,
            byte3: 0,
            ptype: 0,
            stype: stype as u8,
            system,
        }
    }

    /// The response `stype` (Select.rsp, Deselect.rsp, Linktest.rsp) to
    /// `request`: its session id and system bytes, `status` in byte 3 (0
    /// for Linktest.rsp).
    pub fn response(request: &Header, stype: SType, status: u8) -> Header {
        Header {
            session_id: request.session_id,
            byte3: status,
            ..Header::control(stype, request.system)
        }
    }

    /// A Reject.req for the message `rejected` (its session id and system
    /// bytes), with E37's reason code.
    pub fn reject(rejected: &Header, reason: u8) -> Header {
        // Byte 2 names what was not accepted: the PType when that was the
        // reason, the SType otherwise.
        let what = if reason == reject_reason::PTYPE_NOT_SUPPORTED {
            rejected.ptype
        } else {
            rejected.stype
        };
        Header {
            session_id: rejected.session_id,
            byte2: what,
            byte3: reason,
            ..Header::control(SType::RejectReq, rejected.system)
        }
    }

    pub fn stype(&self) -> Option<SType> {
        SType::from_u8(self.stype)
    }

    /// Data message: the stream (byte 2 without the W-bit).
    pub fn stream(&self) -> u8 {
        self.byte2 & 0x7F
    }

    /// Data message: the function (byte 3).
    pub fn function(&self) -> u8 {
        self.byte3
    }

    /// Data message: the W-bit (a reply is expected).
    pub fn w_bit(&self) -> bool {
        self.byte2 & 0x80 != 0
    }

    pub fn to_bytes(&self) -> [u8; HEADER_BYTES] {
        let s = self.session_id.to_be_bytes();
        let y = self.system.to_be_bytes();
        [
            s[0], s[1], self.byte2, self.byte3, self.ptype, self.stype, y[0], y[1], y[2], y[3],
        ]
    }

    pub fn from_bytes(b: &[u8; HEADER_BYTES]) -> Header {
        Header {
            session_id: u16::from_be_bytes([b[0], b[1]]),
            byte2: b[2],
            byte3: b[3],
            ptype: b[4],
            stype: b[5],
            system: u32::from_be_bytes([b[6], b[7], b[8], b[9]]),
        }
    }
}

impl fmt::Display for Header {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.stype() {
            Some(SType::Data) => write!(
                f,
                "S{}F{}{} system {:#010x} session {}",
                self.stream(),
                self.function(),
                if self.w_bit() { " W" } else { "" },
                self.system,
                self.session_id
            ),
            Some(stype) => write!(f, "{stype:?} system {:#010x}", self.system),
            None => write!(f, "SType {} system {:#010x}", self.stype, self.system),
        }
    }
}

/// A whole message: header and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: Header,
    pub body: Vec<u8>,
}

impl Frame {
    pub fn new(header: Header, body: Vec<u8>) -> Frame {
        Frame { header, body }
    }

    /// The wire bytes: length, header, text. Fails only for a text so long
    /// that its length does not fit the 4-byte field.
    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        let length =
            u32::try_from(HEADER_BYTES + self.body.len()).map_err(|_| FrameError::TooLong {
                length: u64::try_from(HEADER_BYTES + self.body.len()).unwrap_or(u64::MAX),
                max: u32::MAX,
            })?;
        let mut out = Vec::with_capacity(LENGTH_BYTES + length as usize);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&self.header.to_bytes());
        out.extend_from_slice(&self.body);
        Ok(out)
    }
}

/// A message length the decoder refuses; the connection cannot resync after
/// it and is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Below the 10 bytes of the header.
    TooShort { length: u32 },
    /// Above the configured maximum (or, encoding, above the 4-byte field).
    TooLong { length: u64, max: u32 },
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::TooShort { length } => write!(
                f,
                "HSMS message length {length} is shorter than its 10-byte header"
            ),
            FrameError::TooLong { length, max } => {
                write!(
                    f,
                    "HSMS message length {length} is over the limit of {max} bytes"
                )
            }
        }
    }
}

impl std::error::Error for FrameError {}

/// Decodes the first message in `buf`. `Ok(None)`: not all of it is there
/// yet. `Ok(Some((frame, used)))`: the message and how many bytes of `buf`
/// it took. The length is checked against `max_message_bytes` (header plus
/// text) as soon as its 4 bytes are there.
pub fn decode_frame(
    buf: &[u8],
    max_message_bytes: u32,
) -> Result<Option<(Frame, usize)>, FrameError> {
    let Some(length) = message_length(buf, max_message_bytes)? else {
        return Ok(None);
    };
    let total = LENGTH_BYTES + length as usize;
    if buf.len() < total {
        return Ok(None);
    }
    let mut header = [0u8; HEADER_BYTES];
    header.copy_from_slice(&buf[LENGTH_BYTES..LENGTH_BYTES + HEADER_BYTES]);
    let body = buf[LENGTH_BYTES + HEADER_BYTES..total].to_vec();
    Ok(Some((Frame::new(Header::from_bytes(&header), body), total)))
}

/// The checked length field of the message starting `buf`, once its 4
/// bytes are there.
fn message_length(buf: &[u8], max_message_bytes: u32) -> Result<Option<u32>, FrameError> {
    let Some(field) = buf.get(..LENGTH_BYTES) else {
        return Ok(None);
    };
    let length = u32::from_be_bytes([field[0], field[1], field[2], field[3]]);
    if (length as usize) < HEADER_BYTES {
        return Err(FrameError::TooShort { length });
    }
    if length > max_message_bytes {
        return Err(FrameError::TooLong {
            length: u64::from(length),
            max: max_message_bytes,
        });
    }
    Ok(Some(length))
}

/// Buffer capacity a decoder keeps between messages.
const KEEP_CAPACITY: usize = 64 * 1024;

/// Buffers a byte stream and cuts it into messages with [`decode_frame`].
/// The buffer holds at most one message plus what arrived with it.
#[derive(Debug)]
pub struct FrameDecoder {
    buf: Vec<u8>,
    max_message_bytes: u32,
}

impl FrameDecoder {
    pub fn new(max_message_bytes: u32) -> FrameDecoder {
        FrameDecoder {
            buf: Vec::new(),
            max_message_bytes,
        }
    }

    /// Appends bytes read from the stream; refuses a bad length at once,
    /// before the text behind it is buffered.
    pub fn push(&mut self, bytes: &[u8]) -> Result<(), FrameError> {
        self.buf.extend_from_slice(bytes);
        message_length(&self.buf, self.max_message_bytes).map(|_| ())
    }

    /// The next whole message, if one is buffered.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, FrameError> {
        match decode_frame(&self.buf, self.max_message_bytes)? {
            Some((frame, used)) => {
                self.buf.drain(..used);
                // One big message must not keep its buffer for the life of
                // the connection.
                if self.buf.is_empty() && self.buf.capacity() > KEEP_CAPACITY {
                    self.buf = Vec::new();
                }
                // A bad length right behind this message is reported by the
                // next call (which checks it before any text arrives), not
                // instead of this message: it was whole and valid.
                Ok(Some(frame))
            }
            None => Ok(None),
        }
    }

    /// Part of a message is buffered (T8 runs while this is so).
    pub fn in_message(&self) -> bool {
        !self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzzer (fuzz/fuzz_targets/hsms_frame.rs): a whole
    /// message followed by a bad length was lost along with the bad one
    /// when both arrived in the same read.
    #[test]
    fn a_whole_message_before_a_bad_length_is_delivered_then_the_error() {
        let select = [0, 0, 0, 10, 0xff, 0xff, 0, 0, 0, 1, 0, 0, 0, 1];
        let mut d = FrameDecoder::new(1024);
        let mut bytes = select.to_vec();
        bytes.extend_from_slice(&[0, 0, 0, 1]);
        d.push(&bytes).unwrap();
        let f = d.next_frame().unwrap().expect("the select");
        assert_eq!(f.encode().unwrap(), select);
        assert!(matches!(
            d.next_frame(),
            Err(FrameError::TooShort { length: 1 })
        ));
    }

    /// Every input the fuzzer kept (fuzz/corpus/hsms_frame) decodes without
    /// a panic, and whatever decodes re-encodes to the bytes it came from.
    #[test]
    fn fuzz_corpus_replays() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/hsms_frame");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let data = std::fs::read(entry.unwrap().path()).unwrap();
            let mut rest = data.get(1..).unwrap_or_default();
            while let Ok(Some((f, used))) = decode_frame(rest, 64 * 1024) {
                assert_eq!(f.encode().unwrap(), rest[..used]);
                rest = &rest[used..];
            }
            n += 1;
        }
        assert!(n > 0, "no corpus in {}", dir.display());
    }

    const MAX: u32 = 1 << 20;

    #[test]
    fn select_req_encodes_as_in_e37() {
        let frame = Frame::new(Header::control(SType::SelectReq, 0x0102_0304), Vec::new());
        assert_eq!(
            frame.encode().unwrap(),
            [0, 0, 0, 0x0A, 0xFF, 0xFF, 0, 0, 0, 1, 1, 2, 3, 4]
        );
    }

    #[test]
    fn control_messages_carry_their_stype_and_status() {
        let req = Header::control(SType::SelectReq, 7);
        let rsp = Header::response(&req, SType::SelectRsp, select_status::ALREADY_ACTIVE);
        assert_eq!(rsp.to_bytes(), [0xFF, 0xFF, 0, 1, 0, 2, 0, 0, 0, 7]);
        let linktest = Header::control(SType::LinktestReq, 2);
        assert_eq!(linktest.to_bytes(), [0xFF, 0xFF, 0, 0, 0, 5, 0, 0, 0, 2]);
        let separate = Header::control(SType::SeparateReq, 9);
        assert_eq!(separate.to_bytes()[5], 9);
    }

    #[test]
    fn reject_names_the_rejected_stype_and_reason() {
        let data = Header::data(1, 1, 1, true, 0x55);
        let reject = Header::reject(&data, reject_reason::ENTITY_NOT_SELECTED);
        assert_eq!(reject.to_bytes(), [0, 1, 0, 4, 0, 7, 0, 0, 0, 0x55]);
        let odd = Header {
            ptype: 3,
            ..Header::control(SType::LinktestReq, 1)
        };
        let reject = Header::reject(&odd, reject_reason::PTYPE_NOT_SUPPORTED);
        assert_eq!((reject.byte2, reject.byte3), (3, 2));
    }

    #[test]
    fn data_message_round_trips_with_w_bit_stream_function_and_body() {
        let header = Header::data(0x1234, 1, 13, true, 0xDEAD_BEEF);
        let bytes = Frame::new(header, vec![0x01, 0x00]).encode().unwrap();
        assert_eq!(
            bytes,
            [0, 0, 0, 12, 0x12, 0x34, 0x81, 13, 0, 0, 0xDE, 0xAD, 0xBE, 0xEF, 1, 0]
        );
        let (frame, used) = decode_frame(&bytes, MAX).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(frame.header, header);
        assert_eq!(
            (
                frame.header.stream(),
                frame.header.function(),
                frame.header.w_bit()
            ),
            (1, 13, true)
        );
        assert_eq!(frame.header.stype(), Some(SType::Data));
        assert_eq!(frame.body, [1, 0]);
    }

    #[test]
    fn partial_input_is_not_a_message_yet() {
        let bytes = Frame::new(Header::data(0, 6, 11, true, 1), vec![9; 20])
            .encode()
            .unwrap();
        for cut in 0..bytes.len() {
            assert_eq!(decode_frame(&bytes[..cut], MAX), Ok(None), "cut at {cut}");
        }
    }

    #[test]
    fn lengths_below_the_header_or_over_the_limit_are_errors() {
        assert_eq!(
            decode_frame(&[0, 0, 0, 9], MAX),
            Err(FrameError::TooShort { length: 9 })
        );
        assert_eq!(
            decode_frame(&[0, 0, 0, 0], MAX),
            Err(FrameError::TooShort { length: 0 })
        );
        // Refused from the 4 length bytes alone: nothing sized by the wire.
        assert_eq!(
            decode_frame(&[0xFF, 0xFF, 0xFF, 0xFF], MAX),
            Err(FrameError::TooLong {
                length: u64::from(u32::MAX),
                max: MAX
            })
        );
        let mut decoder = FrameDecoder::new(100);
        assert!(decoder.push(&[0, 0, 0, 101]).is_err());
        let mut decoder = FrameDecoder::new(100);
        assert!(decoder.push(&[0, 0, 0, 100]).is_ok());
    }

    #[test]
    fn an_unknown_stype_still_decodes() {
        let mut bytes = Frame::new(Header::control(SType::LinktestReq, 3), Vec::new())
            .encode()
            .unwrap();
        bytes[9] = 8;
        let (frame, _) = decode_frame(&bytes, MAX).unwrap().unwrap();
        assert_eq!(frame.header.stype(), None);
        assert_eq!(frame.header.stype, 8);
    }

    #[test]
    fn decoder_cuts_a_stream_fed_byte_by_byte() {
        let mut stream = Vec::new();
        for i in 0..5u8 {
            let frame = Frame::new(
                Header::data(0, 1, 3, false, u32::from(i)),
                vec![i; usize::from(i)],
            );
            stream.extend(frame.encode().unwrap());
        }
        let mut decoder = FrameDecoder::new(MAX);
        let mut got = Vec::new();
        for byte in stream {
            decoder.push(&[byte]).unwrap();
            while let Some(frame) = decoder.next_frame().unwrap() {
                got.push(frame);
            }
        }
        assert!(!decoder.in_message());
        assert_eq!(got.len(), 5);
        assert_eq!(got[4].header.system, 4);
        assert_eq!(got[4].body, [4; 4]);
    }

    /// Random input never panics and never yields a message longer than the
    /// limit; what a fuzz target over `decode_frame` checks, run here with a
    /// fixed seed so it is stable.
    #[test]
    fn random_bytes_never_panic() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut buf = Vec::new();
        for _ in 0..20_000 {
            buf.clear();
            let len = (next() % 40) as usize;
            for _ in 0..len {
                buf.push(next() as u8);
            }
            // Small lengths are likely only if we force the high bytes to 0
            // now and then.
            if next() % 2 == 0 && buf.len() >= 4 {
                buf[0] = 0;
                buf[1] = 0;
                buf[2] = 0;
            }
            let max = 10 + (next() % 40) as u32;
            // An error or `None` is fine too; what matters is no panic.
            if let Ok(Some((frame, used))) = decode_frame(&buf, max) {
                assert!(used <= buf.len());
                assert!(used - LENGTH_BYTES <= max as usize);
                assert_eq!(frame.body.len(), used - LENGTH_BYTES - HEADER_BYTES);
            }
            // The same bytes through the stream decoder, cut at random.
            let mut decoder = FrameDecoder::new(max);
            let mut rest = &buf[..];
            'feed: while !rest.is_empty() {
                let cut = 1 + (next() as usize) % rest.len();
                if decoder.push(&rest[..cut]).is_err() {
                    break;
                }
                rest = &rest[cut..];
                loop {
                    match decoder.next_frame() {
                        Ok(Some(frame)) => assert!(frame.body.len() + HEADER_BYTES <= max as usize),
                        Ok(None) => break,
                        Err(_) => break 'feed,
                    }
                }
            }
        }
    }
}
