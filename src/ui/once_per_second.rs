//! A line of figures the operator reads, rebuilt at most once a second
//! (HMI rule 8: a number that changes at frame rate cannot be read). The
//! figures behind it may change every frame; the text shown holds still.

use std::time::{Duration, Instant};

/// How long a shown text holds still.
pub const HOLD: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct OncePerSecond {
    text: String,
    made_at: Option<Instant>,
}

impl OncePerSecond {
    /// The text to show at `now`: rebuilt by `make` when the shown one is
    /// a second old or older (or there is none yet), otherwise the same.
    pub fn get(&mut self, now: Instant, make: impl FnOnce() -> String) -> &str {
        if self.made_at.is_none_or(|t| now.duration_since(t) >= HOLD) {
            self.text = make();
            self.made_at = Some(now);
        }
        &self.text
    }

    /// Forget the shown text (a new wafer, a new recipe): the next `get`
    /// rebuilds at once, so no figure of the previous one is shown.
    pub fn reset(&mut self) {
        self.made_at = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_changes_at_most_once_a_second_and_at_once_after_a_reset() {
        let t0 = Instant::now();
        let mut s = OncePerSecond::default();
        let mut shown = Vec::new();
        // 60 frames a second for 3 s, the figure changing every frame.
        for frame in 0..180u64 {
            let now = t0 + Duration::from_millis(frame * 1000 / 60);
            let figure = frame + 1;
            let text = s.get(now, || figure.to_string()).to_owned();
            if shown.last() != Some(&text) {
                shown.push(text);
            }
        }
        assert_eq!(shown, ["1", "61", "121"]);
        s.reset();
        assert_eq!(
            s.get(t0 + Duration::from_millis(3010), || "new".into()),
            "new"
        );
    }
}
