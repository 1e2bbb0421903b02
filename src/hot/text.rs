//! A short text kept inline, so snapshots and commands that carry names
//! stay `Copy` and cost no allocation on a hot thread.

#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FixedText<const N: usize> {
    len: u8,
    bytes: [u8; N],
}

impl<const N: usize> FixedText<N> {
    /// Truncates at a character boundary if longer than N bytes.
    pub fn new(s: &str) -> Self {
        let mut end = s.len().min(N).min(255);
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        let mut bytes = [0u8; N];
        bytes[..end].copy_from_slice(&s.as_bytes()[..end]);
        Self {
            len: end as u8,
            bytes,
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from a &str cut at a char boundary.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or("")
    }
}

impl<const N: usize> From<&str> for FixedText<N> {
    /// Truncates like [`FixedText::new`].
    fn from(s: &str) -> Self {
        Self::new(s)
    }
}

impl<const N: usize> Default for FixedText<N> {
    fn default() -> Self {
        Self::new("")
    }
}

impl<const N: usize> std::fmt::Debug for FixedText<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.as_str())
    }
}

impl<const N: usize> std::fmt::Display for FixedText<N> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::FixedText;

    #[test]
    fn keeps_short_text_and_cuts_long_text_at_a_char_boundary() {
        assert_eq!(FixedText::<8>::new("LOT-7").as_str(), "LOT-7");
        assert_eq!(FixedText::<4>::new("µµµ").as_str(), "µµ");
    }
}
