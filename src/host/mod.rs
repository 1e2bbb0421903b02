//! The factory host link (SEMI SECS/GEM): the SECS-II message codec (E5),
//! the HSMS transport (E37) and the GEM behaviour (E30) a factory host
//! expects from the tool.
//!
//! Not the hot path: plain, readable code. For now only the codec exists.

pub mod secs2;
