//! What can go wrong encoding or decoding, with enough detail to log it.

use super::format::Format;
use std::fmt;

/// A message body that is not valid SECS-II, or is beyond our limits.
/// `offset` is where in the body the offending item (or byte) starts, so a
/// SECS log line can point at it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: usize,
    pub kind: DecodeErrorKind,
}

/// No variant owns heap memory: refusing hostile input must not allocate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The body is larger than `DecodeLimits::max_message_bytes`.
    MessageTooLarge { len: usize, max: usize },
    /// The body ends inside an item header (or where a list promised one
    /// more item): the header needs `needed` bytes, `available` were left.
    Truncated { needed: usize, available: usize },
    /// The format byte says zero length bytes, which E5 does not allow.
    NoLengthBytes,
    /// The six-bit format code is not one E5 defines (or one we support).
    UnknownFormat { code: u8 },
    /// A non-list item claims more data bytes than the body has left.
    LengthBeyondMessage { length: usize, remaining: usize },
    /// A list claims more items than the rest of the body could hold
    /// (every item takes at least two bytes).
    ListCountBeyondMessage { count: usize, remaining: usize },
    /// Decoding this item would take the memory decoded so far past the
    /// message size limit (a body of many tiny items decodes to more
    /// memory than its bytes: each item is a whole `Item`).
    MemoryBeyondLimit { needed: usize, left: usize },
    /// A numeric item whose byte length is not a multiple of its element
    /// size.
    LengthNotMultiple {
        format: Format,
        length: usize,
        element_size: usize,
    },
    /// Lists nest deeper than `DecodeLimits::max_depth`.
    TooDeep { max_depth: usize },
    /// Bytes follow the body's single top-level item.
    TrailingBytes { count: usize },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SECS-II body, byte {}: ", self.offset)?;
        match &self.kind {
            DecodeErrorKind::MessageTooLarge { len, max } => {
                write!(f, "message of {len} bytes is over the limit of {max}")
            }
            DecodeErrorKind::Truncated { available: 0, .. } => {
                write!(f, "the message ends where an item should start")
            }
            DecodeErrorKind::Truncated { needed, available } => write!(
                f,
                "truncated: an item header needs {needed} bytes, {available} left"
            ),
            DecodeErrorKind::NoLengthBytes => {
                write!(f, "format byte gives 0 length bytes (must be 1 to 3)")
            }
            DecodeErrorKind::UnknownFormat { code } => {
                write!(f, "unknown format code {code:o} (octal)")
            }
            DecodeErrorKind::LengthBeyondMessage { length, remaining } => write!(
                f,
                "item length {length} is more than the {remaining} bytes left"
            ),
            DecodeErrorKind::ListCountBeyondMessage { count, remaining } => write!(
                f,
                "list of {count} items cannot fit in the {remaining} bytes left"
            ),
            DecodeErrorKind::MemoryBeyondLimit { needed, left } => write!(
                f,
                "decoding needs {needed} more bytes of memory, {left} left under the message size limit"
            ),
            DecodeErrorKind::LengthNotMultiple {
                format,
                length,
                element_size,
            } => write!(
                f,
                "{format} item of {length} bytes is not a multiple of its {element_size}-byte elements"
            ),
            DecodeErrorKind::TooDeep { max_depth } => {
                write!(f, "lists nest deeper than {max_depth}")
            }
            DecodeErrorKind::TrailingBytes { count } => {
                write!(f, "{count} bytes after the message's item")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// An item that cannot be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodeError {
    /// The item's length (items of a list, bytes of anything else) does
    /// not fit in the three length bytes E5 allows.
    TooLong { format: Format, length: usize },
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::TooLong { format, length } => write!(
                f,
                "SECS-II {format} item of length {length} is over the maximum of {} (3 length bytes)",
                super::MAX_ITEM_LENGTH
            ),
        }
    }
}

impl std::error::Error for EncodeError {}
