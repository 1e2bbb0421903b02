//! The SECS-II codec (src/host/secs2) against arbitrary input: item trees
//! round-trip exactly, arbitrary bytes never panic, every length-byte count
//! decodes, hostile lengths allocate nothing, and the fuzz corpus replays
//! (how CI, which has no nightly, re-runs what the fuzzer found).
//!
//! One binary for all of it because the allocation tests need the counting
//! allocator as `#[global_allocator]`.

use proptest::collection::vec;
use proptest::prelude::*;
use std::path::PathBuf;
use waferscope::host::secs2::{
    decode_body, decode_body_with, encode, encode_body, DecodeErrorKind, DecodeLimits, Item,
};
use waferscope::hot::alloc_count;

#[global_allocator]
static ALLOC: waferscope::hot::CountingAlloc = waferscope::hot::CountingAlloc;

/// Any non-list item, up to 16 elements; floats from arbitrary bits, so
/// NaNs (with payloads), infinities, subnormals and -0.0 all occur.
fn leaf() -> impl Strategy<Value = Item> {
    let n = 0..16usize;
    prop_oneof![
        vec(any::<u8>(), n.clone()).prop_map(Item::Binary).boxed(),
        vec(any::<bool>(), n.clone())
            .prop_map(Item::Boolean)
            .boxed(),
        vec(any::<u8>(), n.clone()).prop_map(Item::Ascii).boxed(),
        vec(any::<u8>(), n.clone()).prop_map(Item::Jis8).boxed(),
        vec(any::<i8>(), n.clone()).prop_map(Item::I1).boxed(),
        vec(any::<i16>(), n.clone()).prop_map(Item::I2).boxed(),
        vec(any::<i32>(), n.clone()).prop_map(Item::I4).boxed(),
        vec(any::<i64>(), n.clone()).prop_map(Item::I8).boxed(),
        vec(any::<u8>(), n.clone()).prop_map(Item::U1).boxed(),
        vec(any::<u16>(), n.clone()).prop_map(Item::U2).boxed(),
        vec(any::<u32>(), n.clone()).prop_map(Item::U4).boxed(),
        vec(any::<u64>(), n.clone()).prop_map(Item::U8).boxed(),
        vec(any::<u32>().prop_map(f32::from_bits), n.clone())
            .prop_map(Item::F4)
            .boxed(),
        vec(any::<u64>().prop_map(f64::from_bits), n)
            .prop_map(Item::F8)
            .boxed(),
    ]
}

/// Item trees up to 6 lists deep and about 200 items.
fn item() -> impl Strategy<Value = Item> {
    leaf().prop_recursive(6, 200, 10, |inner| vec(inner, 0..10).prop_map(Item::List))
}

fn encoded(item: &Item) -> Vec<u8> {
    let mut out = Vec::new();
    encode(item, &mut out).expect("test items are small");
    out
}

/// How many length bytes the header starting at `bytes[0]` uses.
fn length_bytes(bytes: &[u8]) -> usize {
    usize::from(bytes[0] & 3)
}

fn minimal_length_bytes(length: usize) -> usize {
    match length {
        0..=0xFF => 1,
        0x100..=0xFFFF => 2,
        _ => 3,
    }
}

/// Encodes `item` with every header using at least the needed length
/// bytes and, as `widen` says, up to three: what a sender may legally do.
fn encode_widened(item: &Item, widen: &mut impl Iterator<Item = u8>, out: &mut Vec<u8>) {
    let header = |code: u8, length: usize, extra: u8, out: &mut Vec<u8>| {
        let min = minimal_length_bytes(length);
        let n = min + usize::from(extra) % (4 - min);
        out.push(code << 2 | n as u8);
        out.extend_from_slice(&(length as u32).to_be_bytes()[4 - n..]);
    };
    let extra = widen.next().unwrap_or(0);
    match item {
        Item::List(children) => {
            header(0, children.len(), extra, out);
            for child in children {
                encode_widened(child, widen, out);
            }
        }
        leaf => {
            let own = encoded(leaf);
            let data = &own[1 + length_bytes(&own)..];
            header(own[0] >> 2, data.len(), extra, out);
            out.extend_from_slice(data);
        }
    }
}

/// Every header in an encoding, walked: (offset, length bytes, length).
fn headers(bytes: &[u8]) -> Vec<(usize, usize, usize)> {
    fn walk(bytes: &[u8], pos: &mut usize, found: &mut Vec<(usize, usize, usize)>) {
        let start = *pos;
        let n = length_bytes(&bytes[start..]);
        let length = bytes[start + 1..start + 1 + n]
            .iter()
            .fold(0usize, |acc, &b| acc << 8 | usize::from(b));
        found.push((start, n, length));
        *pos += 1 + n;
        if bytes[start] >> 2 == 0 {
            for _ in 0..length {
                walk(bytes, pos, found);
            }
        } else {
            *pos += length;
        }
    }
    let mut found = Vec::new();
    let mut pos = 0;
    walk(bytes, &mut pos, &mut found);
    assert_eq!(pos, bytes.len());
    found
}

/// No failure files: an integration test has no src/lib.rs beside it for
/// proptest to put them next to, and CI would not keep them anyway.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn arbitrary_item_trees_round_trip_exactly(item in item()) {
        let mut body = Vec::new();
        encode_body(Some(&item), &mut body).unwrap();
        // `Item`'s equality compares floats by their bits, NaN included.
        prop_assert_eq!(decode_body(&body).unwrap(), Some(item));
    }

    #[test]
    fn encoding_uses_the_fewest_length_bytes_everywhere(item in item()) {
        for (offset, n, length) in headers(&encoded(&item)) {
            prop_assert_eq!(n, minimal_length_bytes(length), "header at {}", offset);
        }
    }

    #[test]
    fn every_length_byte_count_decodes(
        item in item(),
        widen in vec(any::<u8>(), 1..64),
    ) {
        let mut body = Vec::new();
        encode_widened(&item, &mut widen.iter().copied().cycle(), &mut body);
        prop_assert_eq!(decode_body(&body).unwrap(), Some(item));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        let limits = DecodeLimits { max_message_bytes: 4096, max_depth: 8 };
        if let Ok(decoded) = decode_body_with(&bytes, &limits) {
            let mut again = Vec::new();
            encode_body(decoded.as_ref(), &mut again).unwrap();
            prop_assert_eq!(decode_body_with(&again, &limits).unwrap(), decoded);
        }
    }

    /// Random bytes mostly fail at the first header; damaging a valid
    /// encoding reaches deeper into the decoder.
    #[test]
    fn damaged_encodings_never_panic(
        item in item(),
        damage in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut body = encoded(&item);
        for (at, byte) in damage {
            let i = at.index(body.len());
            body[i] = byte;
        }
        let _ = decode_body(&body);
        body.truncate(cut.index(body.len() + 1));
        let _ = decode_body(&body);
    }
}

proptest! {
    #![proptest_config(config(12))]

    /// Lengths on both sides of each length-byte boundary (0xFF/0x100,
    /// 0xFFFF/0x10000, up to the 0xFFFFFF maximum) round-trip.
    #[test]
    fn lengths_around_the_length_byte_boundaries_round_trip(
        length in prop_oneof![0xF0..0x110usize, 0xFFF0..0x10010usize, 0xFF_FFF0..=0xFF_FFFFusize],
        byte in any::<u8>(),
    ) {
        let item = Item::Binary(vec![byte; length]);
        let body = encoded(&item);
        prop_assert_eq!(length_bytes(&body), minimal_length_bytes(length));
        // The largest item is 3 bytes over the default 16 MiB message limit.
        let limits = DecodeLimits { max_message_bytes: 0x100_0004, max_depth: 1 };
        prop_assert_eq!(decode_body_with(&body, &limits).unwrap(), Some(item));
    }
}

#[test]
fn over_three_length_bytes_is_an_encode_error() {
    let mut out = Vec::new();
    assert!(encode_body(Some(&Item::Ascii(vec![b'x'; 0x100_0000])), &mut out).is_err());
    assert!(out.is_empty());
    let list = Item::List(vec![Item::empty_list(); 0x100_0000]);
    assert!(encode(&list, &mut out).is_err());
}

/// Runs `f` on this thread marked hot under `name` and returns the
/// allocations and bytes it made (the thread's own count, so tests running
/// in parallel do not disturb it).
fn allocations_during<T>(name: &'static str, f: impl FnOnce() -> T) -> (T, u64, u64) {
    let hot = alloc_count::mark_thread_hot(name).expect("a free hot slot");
    let value = f();
    let allocations = hot.allocations();
    let bytes = alloc_count::hot_threads()
        .into_iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, b)| b)
        .unwrap();
    // hot_threads() allocates its answer while reading the slots, so the
    // bytes may include that Vec (a few hundred bytes): the bounds below
    // leave room for it. The allocation count was read before it.
    drop(hot);
    (value, allocations, bytes)
}

#[test]
fn huge_claimed_lengths_allocate_nothing() {
    let hostile: [(&str, Vec<u8>); 5] = [
        // A list of 16M items in a 10-byte message.
        ("list count", vec![0x03, 0xFF, 0xFF, 0xFF, 1, 0, 1, 0, 1, 0]),
        // 16 MiB of binary in a 6-byte message.
        ("binary length", vec![0x23, 0xFF, 0xFF, 0xFF, 0, 0]),
        // 16 MiB of U8 values.
        ("u8 length", vec![0xA3, 0xFF, 0xFF, 0xF8, 0, 0, 0, 0]),
        // The same claim deep inside lists.
        (
            "nested list count",
            [
                [0x01u8, 0x01].repeat(20),
                vec![0x03, 0xFF, 0xFF, 0xFF, 0, 0],
            ]
            .concat(),
        ),
        // A valid start, then the claim.
        (
            "after a valid item",
            vec![
                0x01, 0x02, 0xB1, 0x04, 0, 0, 0, 1, 0x43, 0xFF, 0xFF, 0xFF, b'x',
            ],
        ),
    ];
    for (what, body) in &hostile {
        // Every refusal above happens before the decoder allocates; only
        // "nested list count" and "after a valid item" build anything first
        // (their enclosing lists' item vectors), which the input justifies.
        let (result, allocations, _) = allocations_during("secs2-hostile", || decode_body(body));
        assert!(result.is_err(), "{what}");
        let allowed = match *what {
            "nested list count" => 20,
            "after a valid item" => 2,
            _ => 0,
        };
        assert!(
            allocations <= allowed,
            "{what}: {allocations} allocations (at most {allowed} expected)"
        );
    }
}

#[test]
fn decoding_allocates_in_proportion_to_the_input() {
    // The worst case per input byte: a list of empty lists, two bytes each,
    // each becoming a whole `Item` in the parent's vector.
    let count = 0x7_FFFF;
    let mut body = vec![0x03, 0x07, 0xFF, 0xFF];
    body.extend([0x01, 0x00].repeat(count));
    let item_size = std::mem::size_of::<Item>();
    let (item, allocations, bytes) =
        allocations_during("secs2-proportion", || decode_body(&body).unwrap().unwrap());
    assert_eq!(item.len(), count);
    assert_eq!(
        allocations, 1,
        "one vector, sized once, empty lists allocate nothing"
    );
    assert!(
        bytes <= (count * item_size) as u64 + 1024,
        "{bytes} bytes for a {}-byte body",
        body.len()
    );
    assert!(bytes as usize <= DecodeLimits::default().max_message_bytes + 1024);

    // The same body under a 4 MiB limit: its 16 MiB of items are refused
    // before the vector is allocated, though the body itself is 1 MiB.
    let limits = DecodeLimits {
        max_message_bytes: 4 * 1024 * 1024,
        ..DecodeLimits::default()
    };
    let (result, allocations, _) =
        allocations_during("secs2-memory-limit", || decode_body_with(&body, &limits));
    let error = result.unwrap_err();
    assert_eq!(error.offset, 0);
    assert!(
        matches!(error.kind, DecodeErrorKind::MemoryBeyondLimit { .. }),
        "{error}"
    );
    assert_eq!(allocations, 0, "refused before allocating");

    // The same body whose last item claims bytes that are not there:
    // refused at the very end, having allocated no more.
    let mut bad_end = body.clone();
    let last = bad_end.len() - 2;
    bad_end[last..].copy_from_slice(&[0x21, 0x05]);
    let (result, _, bytes) =
        allocations_during("secs2-proportion-bad-end", || decode_body(&bad_end));
    let error = result.unwrap_err();
    assert_eq!(error.offset, last);
    assert!(matches!(
        error.kind,
        DecodeErrorKind::LengthBeyondMessage {
            length: 5,
            remaining: 0
        }
    ));
    assert!(bytes <= (count * item_size) as u64 + 1024);
}

#[test]
fn fuzz_corpus_replays() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/secs2_decode");
    let (mut replayed, mut decoded_some) = (0, 0);
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        // The fuzz target's limits, and the defaults the station uses.
        let small = DecodeLimits {
            max_message_bytes: 64 * 1024,
            max_depth: 8,
        };
        for limits in [small, DecodeLimits::default()] {
            if let Ok(decoded) = decode_body_with(&bytes, &limits) {
                decoded_some += 1;
                let mut again = Vec::new();
                encode_body(decoded.as_ref(), &mut again).unwrap();
                assert!(again.len() <= bytes.len(), "{}", path.display());
                assert_eq!(
                    decode_body_with(&again, &limits).unwrap(),
                    decoded,
                    "{}",
                    path.display()
                );
                if let Some(item) = &decoded {
                    let _ = item.summary();
                }
            }
        }
        replayed += 1;
    }
    assert!(
        replayed >= 7,
        "only {replayed} corpus files in {}",
        dir.display()
    );
    // The corpus reaches past the decoder's errors into valid bodies.
    assert!(decoded_some > 0);
}
