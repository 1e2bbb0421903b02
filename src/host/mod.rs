//! The factory host link (SEMI SECS/GEM): the SECS-II message codec (E5,
//! [`secs2`]) and the HSMS transport (E37, [`hsms`]) that carries its
//! messages to and from the fab's host. HSMS moves bodies as opaque bytes;
//! the GEM behaviour (E30) that encodes and answers them comes on top.
//!
//! Not the hot path: plain, readable code (tokio for the transport).

pub mod gem;
pub mod hsms;
pub mod secs2;
