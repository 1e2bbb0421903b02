//! The communication state (E30 §4.2): DISABLED, or ENABLED with NOT
//! COMMUNICATING (waiting for an S1F13/S1F14 exchange) and COMMUNICATING.
//! The GEM task drives the transitions; this module holds the states, their
//! codes for the CommunicationState status variable, and the S1F13/S1F14
//! bodies.

use crate::host::secs2::Item;

use super::IllegalData;

/// The model name (MDLN) in S1F2, S1F13 and S1F14.
pub const MDLN: &str = "waferscope";
/// The software revision (SOFTREV): the crate version.
pub const SOFTREV: &str = env!("CARGO_PKG_VERSION");

/// COMMACK: 0 accepted, 1 denied (try again).
pub const COMMACK_ACCEPTED: u8 = 0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommState {
    /// GEM communication is switched off (no session).
    Disabled,
    /// ENABLED / NOT COMMUNICATING: connected or not, no S1F13/S1F14
    /// exchange has succeeded since the last (re)connection.
    NotCommunicating,
    /// ENABLED / COMMUNICATING.
    Communicating,
}

impl CommState {
    /// The CommunicationState status variable's value (docs/gem.md; E30
    /// names the states but gives them no numbers).
    pub fn code(self) -> u32 {
        match self {
            CommState::Disabled => 1,
            CommState::NotCommunicating => 2,
            CommState::Communicating => 3,
        }
    }

    pub fn from_code(code: u32) -> CommState {
        match code {
            3 => CommState::Communicating,
            2 => CommState::NotCommunicating,
            _ => CommState::Disabled,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            CommState::Disabled => "DISABLED",
            CommState::NotCommunicating => "NOT COMMUNICATING",
            CommState::Communicating => "COMMUNICATING",
        }
    }
}

/// `<L[2] <A MDLN> <A SOFTREV>>`: S1F2 and the equipment's S1F13.
pub fn mdln_softrev() -> Item {
    Item::list([Item::ascii(MDLN), Item::ascii(SOFTREV)])
}

/// S1F14 from the equipment: `<L[2] <B COMMACK> <L[2] MDLN SOFTREV>>`.
pub fn s1f14(commack: u8) -> Item {
    Item::list([Item::binary_byte(commack), mdln_softrev()])
}

/// The host's S1F13 is `<L[0]>` (E5); a body of any other shape is
/// illegal data.
pub fn check_s1f13(body: Option<&Item>) -> Result<(), IllegalData> {
    match body.and_then(Item::as_list) {
        Some(_) => Ok(()),
        None => Err(IllegalData::new(
            "S1F13 must be a list (<L[0]> from a host)",
        )),
    }
}

/// COMMACK of the host's S1F14 `<L[2] <B COMMACK> <L ...>>`.
pub fn commack_of_s1f14(body: Option<&Item>) -> Option<u8> {
    body?.as_list()?.first()?.as_binary_byte()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_bodies_have_their_shape() {
        for s in [
            CommState::Disabled,
            CommState::NotCommunicating,
            CommState::Communicating,
        ] {
            assert_eq!(CommState::from_code(s.code()), s);
        }
        let reply = s1f14(COMMACK_ACCEPTED);
        assert_eq!(commack_of_s1f14(Some(&reply)), Some(0));
        let ids = &reply.as_list().unwrap()[1];
        assert_eq!(ids.as_list().unwrap()[0].as_ascii(), Some(MDLN));
        assert_eq!(ids.as_list().unwrap()[1].as_ascii(), Some(SOFTREV));
        assert!(check_s1f13(Some(&Item::empty_list())).is_ok());
        assert!(check_s1f13(Some(&Item::u4(1))).is_err());
        assert!(check_s1f13(None).is_err());
        assert_eq!(commack_of_s1f14(Some(&Item::u4(0))), None);
    }
}
