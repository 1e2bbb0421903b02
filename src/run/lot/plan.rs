//! What the operator asks of a lot: which slots, which recipe, the lot id.

use crate::machine::load_port::SLOTS;
use crate::run::ValidRecipe;

/// What the lot does when one of its wafers faults (the tool is then
/// FAULTED and needs the operator's acknowledge and reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnWaferFault {
    /// The window: the lot waits for the operator to acknowledge and
    /// reset, then goes on with the next wafer (or is aborted).
    WaitForReset,
    /// Headless: the lot ends; the remaining wafers stay in the carrier.
    EndLot,
}

#[derive(Debug, Clone)]
pub struct LotPlan {
    pub lot: String,
    pub recipe: ValidRecipe,
    /// Slots to run, in order (1-based).
    pub slots: Vec<u32>,
    pub operator: String,
    /// Wafer ids the operator typed, by slot; the others are read at the
    /// pre-aligner.
    pub typed_ids: Vec<(u32, String)>,
    pub on_wafer_fault: OnWaferFault,
}

/// Parses a slot list: `all`, or numbers and ranges such as `1-6,9,11-12`.
/// Slots are 1..=25, each at most once, in the order given.
pub fn parse_slots(s: &str) -> Result<Vec<u32>, String> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("all") {
        return Ok((1..=SLOTS as u32).collect());
    }
    let slot = |t: &str| -> Result<u32, String> {
        let n: u32 = t
            .trim()
            .parse()
            .map_err(|_| format!("--slots: \"{t}\" is not a slot number"))?;
        if !(1..=SLOTS as u32).contains(&n) {
            return Err(format!("--slots: slot {n} is not in 1..={SLOTS}"));
        }
        Ok(n)
    };
    let mut out: Vec<u32> = Vec::new();
    for part in s.split(',') {
        let range = match part.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (slot(a)?, slot(b)?);
                if a > b {
                    return Err(format!("--slots: \"{part}\" runs backwards"));
                }
                a..=b
            }
            None => {
                let n = slot(part)?;
                n..=n
            }
        };
        for n in range {
            if out.contains(&n) {
                return Err(format!("--slots: slot {n} is listed twice"));
            }
            out.push(n);
        }
    }
    if out.is_empty() {
        return Err("--slots: no slot given".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::parse_slots;

    #[test]
    fn slot_lists_take_ranges_and_single_slots_in_order() {
        assert_eq!(parse_slots("1-6").unwrap(), vec![1, 2, 3, 4, 5, 6]);
        assert_eq!(parse_slots("9, 2-3,25").unwrap(), vec![9, 2, 3, 25]);
        assert_eq!(parse_slots("ALL").unwrap().len(), 25);
    }

    #[test]
    fn bad_slot_lists_say_what_is_wrong() {
        for (bad, says) in [
            ("0", "not in 1..=25"),
            ("26", "not in 1..=25"),
            ("6-1", "backwards"),
            ("1,1", "twice"),
            ("a", "not a slot number"),
            ("", "not a slot number"),
        ] {
            let e = parse_slots(bad).unwrap_err();
            assert!(e.contains(says) && e.starts_with("--slots"), "{bad}: {e}");
        }
    }
}
