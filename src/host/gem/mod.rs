//! GEM (SEMI E30): the equipment's behaviour towards the fab's host, on top
//! of the HSMS transport and the SECS-II codec.

pub mod values;
