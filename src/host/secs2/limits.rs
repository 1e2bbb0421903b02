//! How much a decoder accepts from the wire.

/// Limits on what [`super::decode_body_with`] accepts. `max_message_bytes`
/// bounds both the body read and the memory the decoded items take (many
/// tiny items decode to more memory than their bytes: each is a whole
/// `Item`); `max_depth` bounds the recursion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// The largest body decoded, and the most memory its items may take;
    /// a larger body is refused whole, before anything is read.
    pub max_message_bytes: usize,
    /// How deeply lists may nest: `<L <L>>` is depth 2, a body without
    /// lists depth 0. Capped at [`MAX_DEPTH_CEILING`] whatever is set here,
    /// so no configuration can let hostile input exhaust the stack.
    pub max_depth: usize,
}

/// The deepest nesting any limit allows (see [`DecodeLimits::max_depth`]).
/// Real GEM messages nest 4–6 deep.
pub const MAX_DEPTH_CEILING: usize = 256;

impl Default for DecodeLimits {
    /// 16 MiB and 32 levels: far above any GEM message (process programs
    /// are the large ones), far below what would hurt the station. The
    /// largest single item E5 allows (0xFF_FFFF data bytes and a 4-byte
    /// header) is 3 bytes over this default: a station that must accept one
    /// raises the limit.
    fn default() -> DecodeLimits {
        DecodeLimits {
            max_message_bytes: 16 * 1024 * 1024,
            max_depth: 32,
        }
    }
}
