//! A primary message whose body does not have the structure its stream and
//! function require. The GEM dispatcher answers it with S9F7 (illegal
//! data) and does not reply with the secondary message.

/// What was wrong with the body, for the SECS log and the operator's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IllegalData(pub String);

impl IllegalData {
    pub fn new(why: impl Into<String>) -> Self {
        IllegalData(why.into())
    }
}

impl std::fmt::Display for IllegalData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IllegalData {}
