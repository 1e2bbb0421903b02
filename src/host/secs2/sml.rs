//! SML-like text for items: what a SECS log line shows.
//!
//! `Display` writes the whole item; [`Item::summary`] stops after
//! [`SUMMARY_MAX_CHARS`], so logging a 16 MiB process program costs a
//! couple of hundred bytes, not a copy of it.

use super::item::Item;
use std::fmt::{self, Write};

/// Characters [`Item::summary`] keeps before cutting the text with `...`.
pub const SUMMARY_MAX_CHARS: usize = 200;

impl Item {
    /// One line such as `<L[2] <A "START"> <U4 5>>`, at most
    /// [`SUMMARY_MAX_CHARS`] characters plus `...` when cut. Writing stops
    /// as soon as the room is used up, however large the item.
    pub fn summary(&self) -> String {
        let mut text = Bounded {
            out: String::with_capacity(SUMMARY_MAX_CHARS + 3),
            room: SUMMARY_MAX_CHARS,
        };
        if write_sml(self, &mut text).is_err() {
            text.out.push_str("...");
        }
        text.out
    }
}

impl fmt::Display for Item {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_sml(self, f)
    }
}

/// A `String` writer that refuses (with `fmt::Error`) once full, which
/// ends the recursion in `write_sml` early.
struct Bounded {
    out: String,
    room: usize,
}

impl Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        if s.len() <= self.room {
            self.out.push_str(s);
            self.room -= s.len();
            return Ok(());
        }
        let mut cut = self.room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.out.push_str(&s[..cut]);
        self.room = 0;
        Err(fmt::Error)
    }
}

fn write_sml<W: Write>(item: &Item, w: &mut W) -> fmt::Result {
    let name = item.format().sml_name();
    match item {
        Item::List(items) => {
            write!(w, "<L[{}]", items.len())?;
            for child in items {
                w.write_char(' ')?;
                write_sml(child, w)?;
            }
            w.write_char('>')
        }
        Item::Ascii(bytes) | Item::Jis8(bytes) => {
            write!(w, "<{name} \"")?;
            write_text(bytes, w)?;
            w.write_str("\">")
        }
        Item::Binary(v) => {
            write!(w, "<{name}")?;
            for b in v {
                write!(w, " 0x{b:02X}")?;
            }
            w.write_char('>')
        }
        Item::Boolean(v) => {
            write!(w, "<{name}")?;
            for &b in v {
                w.write_str(if b { " TRUE" } else { " FALSE" })?;
            }
            w.write_char('>')
        }
        Item::I1(v) => values(w, name, v),
        Item::I2(v) => values(w, name, v),
        Item::I4(v) => values(w, name, v),
        Item::I8(v) => values(w, name, v),
        Item::U1(v) => values(w, name, v),
        Item::U2(v) => values(w, name, v),
        Item::U4(v) => values(w, name, v),
        Item::U8(v) => values(w, name, v),
        Item::F4(v) => values(w, name, v),
        Item::F8(v) => values(w, name, v),
    }
}

fn values<W: Write, T: fmt::Display>(w: &mut W, name: &str, values: &[T]) -> fmt::Result {
    write!(w, "<{name}")?;
    for value in values {
        write!(w, " {value}")?;
    }
    w.write_char('>')
}

/// Printable ASCII as is; quotes, backslashes and every other byte
/// escaped, so a log line stays one line of ASCII whatever the host sent.
fn write_text<W: Write>(bytes: &[u8], w: &mut W) -> fmt::Result {
    for &b in bytes {
        match b {
            b'"' => w.write_str("\\\"")?,
            b'\\' => w.write_str("\\\\")?,
            0x20..=0x7E => w.write_char(char::from(b))?,
            _ => write!(w, "\\x{b:02X}")?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sml_of_each_format() {
        let item = Item::list([
            Item::ascii("START"),
            Item::u4(5),
            Item::binary([0, 0x80]),
            Item::Boolean(vec![true, false]),
            Item::i1(-1),
            Item::f4(0.5),
            Item::F8(vec![]),
            Item::jis8("x"),
            Item::empty_list(),
        ]);
        assert_eq!(
            item.to_string(),
            r#"<L[9] <A "START"> <U4 5> <B 0x00 0x80> <BOOLEAN TRUE FALSE> <I1 -1> <F4 0.5> <F8> <J "x"> <L[0]>>"#
        );
        assert_eq!(item.summary(), item.to_string());
    }

    #[test]
    fn text_is_escaped_to_one_ascii_line() {
        let item = Item::Ascii(b"a\"b\\c\n\xE9".to_vec());
        assert_eq!(item.summary(), r#"<A "a\"b\\c\x0A\xE9">"#);
    }

    #[test]
    fn summary_is_cut_after_the_limit() {
        let big = Item::list([Item::Binary(vec![0xAB; 1 << 20]), Item::u4(1)]);
        let summary = big.summary();
        assert!(summary.starts_with("<L[2] <B 0xAB 0xAB"));
        assert!(summary.ends_with("..."));
        assert_eq!(summary.len(), SUMMARY_MAX_CHARS + 3);
        // Exactly at the limit: not cut.
        let text = "x".repeat(SUMMARY_MAX_CHARS - 6); // `<A "` and `">` make 6
        assert_eq!(
            Item::ascii(text.as_str()).summary().len(),
            SUMMARY_MAX_CHARS
        );
        assert!(!Item::ascii(text.as_str()).summary().ends_with("..."));
    }
}
