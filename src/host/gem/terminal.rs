//! Terminal services (E30 §4.7): text from the host for the operator
//! (S10F3 single block, S10F5 multi-block → S10F4/S10F6 with ACKC10), kept
//! until the operator acknowledges it; and the operator's text to the host
//! (S10F1 → S10F2).

use std::collections::VecDeque;
use std::time::SystemTime;

use crate::host::secs2::Item;

use super::IllegalData;

/// ACKC10: 0 accepted for display, 1 will not be displayed, 2 terminal not
/// available.
pub const ACKC10_ACCEPTED: u8 = 0;
pub const ACKC10_NOT_DISPLAYED: u8 = 1;
pub const ACKC10_NO_TERMINAL: u8 = 2;

/// Messages kept unacknowledged at most; a host that sends more gets
/// ACKC10 1 (the text is in the SECS log, not lost).
pub const MAX_MESSAGES: usize = 32;

/// A message's text at most, in bytes (S10F5: the lines with their joining
/// newlines). A SECS item may hold 16 MiB and the window draws every
/// waiting message each frame: longer text gets ACKC10 1, like a full
/// queue.
pub const MAX_TEXT_BYTES: usize = 4096;

/// S10F5 lines per message at most; more get ACKC10 1.
pub const MAX_LINES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TerminalMessage {
    /// TID: the host's terminal number (0 = the main one; we have one).
    pub tid: u8,
    pub text: String,
    pub received: SystemTime,
}

/// The host's messages the operator has not acknowledged, oldest first.
#[derive(Debug, Default)]
pub struct Terminal {
    messages: VecDeque<TerminalMessage>,
}

impl Terminal {
    pub fn messages(&self) -> Vec<TerminalMessage> {
        self.messages.iter().cloned().collect()
    }

    /// The operator has read the oldest message: it is removed and returned.
    pub fn acknowledge(&mut self) -> Option<TerminalMessage> {
        self.messages.pop_front()
    }

    fn push(&mut self, tid: u8, text: String) -> u8 {
        if tid != 0 {
            return ACKC10_NO_TERMINAL;
        }
        if self.messages.len() >= MAX_MESSAGES {
            return ACKC10_NOT_DISPLAYED;
        }
        self.messages.push_back(TerminalMessage {
            tid,
            text,
            received: SystemTime::now(),
        });
        ACKC10_ACCEPTED
    }

    /// S10F3 `<L[2] <B TID> <A TEXT>>` → S10F4 `<B ACKC10>`.
    pub fn s10f3(&mut self, body: Option<&Item>) -> Result<Item, IllegalData> {
        let bad = || IllegalData::new("S10F3 must be <L[2] <B TID> <A TEXT>>");
        let [tid, text] = body.and_then(Item::as_list).ok_or_else(bad)? else {
            return Err(bad());
        };
        let tid = tid.as_binary_byte().ok_or_else(bad)?;
        let text = text.ascii_bytes().ok_or_else(bad)?;
        if text.len() > MAX_TEXT_BYTES {
            return Ok(Item::binary_byte(ACKC10_NOT_DISPLAYED));
        }
        Ok(Item::binary_byte(
            self.push(tid, String::from_utf8_lossy(text).into_owned()),
        ))
    }

    /// S10F5 `<L[2] <B TID> <L[n] <A TEXT>>>` → S10F6 `<B ACKC10>`; the
    /// lines are kept as one message, joined by newlines.
    pub fn s10f5(&mut self, body: Option<&Item>) -> Result<Item, IllegalData> {
        let bad = || IllegalData::new("S10F5 must be <L[2] <B TID> <L[n] <A TEXT>>>");
        let [tid, lines] = body.and_then(Item::as_list).ok_or_else(bad)? else {
            return Err(bad());
        };
        let tid = tid.as_binary_byte().ok_or_else(bad)?;
        let lines = lines
            .as_list()
            .ok_or_else(bad)?
            .iter()
            .map(|l| l.ascii_bytes().ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()?;
        // Checked before any text is copied.
        let joined_len =
            lines.iter().map(|l| l.len()).sum::<usize>() + lines.len().saturating_sub(1);
        if lines.len() > MAX_LINES || joined_len > MAX_TEXT_BYTES {
            return Ok(Item::binary_byte(ACKC10_NOT_DISPLAYED));
        }
        let lines: Vec<_> = lines.into_iter().map(String::from_utf8_lossy).collect();
        Ok(Item::binary_byte(self.push(tid, lines.join("\n"))))
    }
}

/// S10F1 from the equipment: `<L[2] <B TID 0> <A TEXT>>`.
pub fn s10f1(text: &str) -> Item {
    Item::list([Item::binary_byte(0), Item::ascii(text)])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_text_is_kept_until_acknowledged_and_bounded() {
        let mut t = Terminal::default();
        let one = Item::list([Item::binary_byte(0), Item::ascii("check the chuck")]);
        assert_eq!(t.s10f3(Some(&one)).unwrap().as_binary_byte(), Some(0));
        let multi = Item::list([
            Item::binary_byte(0),
            Item::list([Item::ascii("line 1"), Item::ascii("line 2")]),
        ]);
        assert_eq!(t.s10f5(Some(&multi)).unwrap().as_binary_byte(), Some(0));
        let other = Item::list([Item::binary_byte(3), Item::ascii("x")]);
        assert_eq!(t.s10f3(Some(&other)).unwrap().as_binary_byte(), Some(2));
        assert_eq!(t.messages().len(), 2);
        assert_eq!(t.acknowledge().unwrap().text, "check the chuck");
        assert_eq!(t.acknowledge().unwrap().text, "line 1\nline 2");
        assert_eq!(t.acknowledge(), None);
        for _ in 0..MAX_MESSAGES {
            t.s10f3(Some(&one)).unwrap();
        }
        assert_eq!(t.s10f3(Some(&one)).unwrap().as_binary_byte(), Some(1));
        assert!(t.s10f3(Some(&Item::ascii("x"))).is_err());
        assert!(t
            .s10f5(Some(&Item::list([Item::binary_byte(0), Item::ascii("x")])))
            .is_err());
    }

    #[test]
    fn oversized_text_and_too_many_lines_are_not_displayed() {
        let mut t = Terminal::default();
        let s10f3 = |text: String| Item::list([Item::binary_byte(0), Item::ascii(text)]);
        let s10f5 = |lines: Vec<String>| {
            Item::list([
                Item::binary_byte(0),
                Item::list(lines.into_iter().map(Item::ascii)),
            ])
        };
        let at_limit = "x".repeat(MAX_TEXT_BYTES);
        assert_eq!(
            t.s10f3(Some(&s10f3(at_limit.clone())))
                .unwrap()
                .as_binary_byte(),
            Some(0)
        );
        let over = "x".repeat(MAX_TEXT_BYTES + 1);
        assert_eq!(
            t.s10f3(Some(&s10f3(over.clone())))
                .unwrap()
                .as_binary_byte(),
            Some(1)
        );
        assert_eq!(
            t.s10f5(Some(&s10f5(vec![over]))).unwrap().as_binary_byte(),
            Some(1)
        );
        // Two lines each under the cap whose joined text is over it.
        let half = "y".repeat(MAX_TEXT_BYTES / 2);
        assert_eq!(
            t.s10f5(Some(&s10f5(vec![half.clone(), half.clone()])))
                .unwrap()
                .as_binary_byte(),
            Some(1)
        );
        let lines = |n: usize| (0..n).map(|i| format!("line {i}")).collect::<Vec<_>>();
        assert_eq!(
            t.s10f5(Some(&s10f5(lines(MAX_LINES))))
                .unwrap()
                .as_binary_byte(),
            Some(0)
        );
        assert_eq!(
            t.s10f5(Some(&s10f5(lines(MAX_LINES + 1))))
                .unwrap()
                .as_binary_byte(),
            Some(1)
        );
        // Only the two within the limits wait for the operator.
        let kept = t.messages();
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].text, at_limit);
        assert_eq!(kept[1].text.lines().count(), MAX_LINES);
    }
}
