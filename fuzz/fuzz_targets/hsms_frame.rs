//! Cuts arbitrary bytes into HSMS messages, both in one piece and as a
//! stream arriving in chunks of the sizes the first byte picks; both ways
//! must agree, and every message decoded must re-encode to exactly the
//! bytes it was cut from.
//!
//! frame.rs is compiled here directly, as the SECS-II codec is (see
//! secs2_decode.rs): it depends on nothing else of the crate.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unused_imports)]
#[path = "../../src/host/hsms/frame.rs"]
mod frame;

use frame::{decode_frame, FrameDecoder};

const MAX: u32 = 64 * 1024;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else {
        return;
    };
    // In one piece.
    let mut whole = Vec::new();
    let mut rest = data;
    let whole_error = loop {
        match decode_frame(rest, MAX) {
            Ok(Some((f, used))) => {
                assert!(used <= rest.len());
                assert_eq!(f.encode().expect("re-encodes"), rest[..used]);
                whole.push(f);
                rest = &rest[used..];
            }
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    // As a stream, in chunks.
    let step = usize::from(chunk % 17) + 1;
    let mut decoder = FrameDecoder::new(MAX);
    let mut streamed = Vec::new();
    let mut stream_error = false;
    'feed: for piece in data.chunks(step) {
        if decoder.push(piece).is_err() {
            stream_error = true;
            break;
        }
        loop {
            match decoder.next_frame() {
                Ok(Some(f)) => streamed.push(f),
                Ok(None) => break,
                Err(_) => {
                    stream_error = true;
                    break 'feed;
                }
            }
        }
    }
    assert_eq!(whole.len(), streamed.len());
    for (a, b) in whole.iter().zip(&streamed) {
        assert_eq!(a.encode().unwrap(), b.encode().unwrap());
    }
    assert_eq!(whole_error, stream_error);
});
