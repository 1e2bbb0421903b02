//! Decodes arbitrary bytes as a SECS-II message body with small limits;
//! whatever decodes must re-encode, decode to the same item, and re-encode
//! to the same bytes again.
//!
//! The codec's files are compiled here directly (see the module doc of
//! src/host/secs2/mod.rs): depending on the `waferscope` crate would build
//! and instrument the whole station (SQLite, tokio, ...) for a target that
//! uses none of it.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[allow(dead_code, unused_imports)]
#[path = "../../src/host/secs2/mod.rs"]
mod secs2;

use secs2::{decode_body_with, encode_body, DecodeLimits};

fuzz_target!(|data: &[u8]| {
    let limits = DecodeLimits {
        max_message_bytes: 64 * 1024,
        max_depth: 8,
    };
    let Ok(item) = decode_body_with(data, &limits) else {
        return;
    };
    let mut encoded = Vec::new();
    encode_body(item.as_ref(), &mut encoded).expect("a decoded item re-encodes");
    // Re-encoding uses the fewest length bytes and canonical booleans, so
    // it can only shrink.
    assert!(encoded.len() <= data.len());
    let again = decode_body_with(&encoded, &limits).expect("our own encoding decodes");
    assert_eq!(item, again);
    let mut twice = Vec::new();
    encode_body(again.as_ref(), &mut twice).expect("re-encodes");
    assert_eq!(encoded, twice);
    if let Some(item) = &item {
        assert!(item.summary().len() <= secs2::SUMMARY_MAX_CHARS + 3);
    }
});
