//! The value of one GEM variable (status variable, data variable or
//! equipment constant) as the equipment holds it, and where variables are
//! read from.
//!
//! `VariableValue` is `Copy` and fixed-size on purpose: the trace sampler
//! (S2F23 → S6F1) reads variables on its own thread at up to 100 Hz and
//! must allocate nothing per sample once warm. It becomes a SECS-II item
//! (which allocates) only on the async side that sends the message.

use crate::host::secs2::Item;
use crate::hot::text::FixedText;

/// One variable's value. The SECS-II format each kind is sent as is fixed
/// (documented per variable in docs/gem.md).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VariableValue {
    /// Sent as U4 (counts, ids, states as numbers).
    U4(u32),
    /// Sent as U8 (large counters).
    U8(u64),
    /// Sent as I4.
    I4(i32),
    /// Sent as F8 (readings in engineering units).
    F8(f64),
    /// Sent as BOOLEAN.
    Bool(bool),
    /// Sent as ASCII (names, ids, the clock).
    Text(FixedText<64>),
}

impl VariableValue {
    pub fn text(s: &str) -> Self {
        VariableValue::Text(FixedText::new(s))
    }

    pub fn to_item(&self) -> Item {
        match *self {
            VariableValue::U4(v) => Item::u4(v),
            VariableValue::U8(v) => Item::u8(v),
            VariableValue::I4(v) => Item::i4(v),
            VariableValue::F8(v) => Item::f8(v),
            VariableValue::Bool(v) => Item::boolean(v),
            VariableValue::Text(t) => Item::ascii(t.as_str()),
        }
    }
}

/// Where GEM reads variables: the station's latest-state caches (run
/// snapshot, monitor snapshot, alarm snapshot) behind one lookup. Reading
/// must not allocate (the trace sampler calls it on its sampling thread)
/// and must not block on the hot path.
pub trait VariableSource: Send + Sync {
    /// The variable's current value; `None` for an unknown id.
    fn value(&self, vid: u32) -> Option<VariableValue>;
    /// Whether `vid` names a variable this source knows (S2F33 and S2F23
    /// refuse unknown ids).
    fn knows(&self, vid: u32) -> bool {
        self.value(vid).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_becomes_its_documented_item_format() {
        use crate::host::secs2::Format;
        assert_eq!(VariableValue::U4(7).to_item().format(), Format::U4);
        assert_eq!(VariableValue::U8(7).to_item().format(), Format::U8);
        assert_eq!(VariableValue::I4(-7).to_item().format(), Format::I4);
        assert_eq!(VariableValue::F8(0.5).to_item().format(), Format::F8);
        assert_eq!(
            VariableValue::Bool(true).to_item().format(),
            Format::Boolean
        );
        let t = VariableValue::text("LOT-1").to_item();
        assert_eq!(t.as_ascii(), Some("LOT-1"));
    }
}
