//! The factory host link: SECS-II (SEMI E5) messages carried over HSMS
//! (SEMI E37) to and from the fab's host, and the GEM (SEMI E30) behaviour
//! on top of them.
//!
//! For now only the transport is here: [`hsms`] moves data messages whose
//! bodies are opaque bytes; the SECS-II codec and GEM come beside it.

pub mod hsms;
