//! The SECS-II message codec (SEMI E5): the items of a message body, their
//! encoding on the wire, and a decoder for bytes from a host we do not
//! control.
//!
//! A message body is empty (header-only messages such as S1F1) or exactly
//! one item; an item is a list of items or an array of one format. On the
//! wire each item is a format byte (`code << 2 | n`), `n` = 1..=3 big-endian
//! length bytes (a list's length counts items, every other length counts
//! bytes) and the data, big-endian.
//!
//! ```
//! use waferscope::host::secs2::{decode_body, encode_body, Item};
//! let item = Item::list([Item::ascii("START"), Item::u4(5)]);
//! let mut body = Vec::new();
//! encode_body(Some(&item), &mut body).unwrap();
//! assert_eq!(decode_body(&body).unwrap(), Some(item.clone()));
//! assert_eq!(item.summary(), r#"<L[2] <A "START"> <U4 5>>"#);
//! ```
//!
//! This module uses nothing of the crate outside it (only `super::` paths
//! and std): the fuzz crate compiles these files directly, which keeps its
//! instrumented build to this code instead of the whole station.

mod decode;
mod encode;
mod error;
mod format;
mod item;
mod limits;
mod sml;

pub use decode::{decode_body, decode_body_with};
pub use encode::{encode, encode_body};
pub use error::{DecodeError, DecodeErrorKind, EncodeError};
pub use format::Format;
pub use item::Item;
pub use limits::{DecodeLimits, MAX_DEPTH_CEILING};
pub use sml::SUMMARY_MAX_CHARS;

/// The largest item length three length bytes can carry.
pub const MAX_ITEM_LENGTH: usize = 0xFF_FFFF;
