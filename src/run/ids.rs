//! The rules for the ids an operator types (lot, wafer, operator), in one
//! place for `waferscope run` and the window's run control.
//!
//! Why these rules: the run snapshot keeps each id in 32 bytes
//! (`FixedText<32>`), so a longer id would be silently cut on the status
//! strip while the database and the KLARF kept the whole one; a control
//! character (a newline, an escape) would break the KLARF record and the
//! terminal; and KLARF cannot carry double quotes, semicolons, braces,
//! commas or non-ASCII characters (see `store::klarf`), so those are
//! replaced here, with a warning, instead of differently in each export.

use crate::store::record::RunIdentity;

/// Longest id, in bytes (after replacement every character is one byte).
pub const MAX_ID_LEN: usize = 32;

/// What the id rules made of a typed identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedIdentity {
    pub identity: RunIdentity,
    /// One line per replaced id, for stderr or the run control.
    pub warnings: Vec<String>,
}

/// Checks and cleans lot, wafer and operator ids. An empty id (lot or
/// wafer), one longer than [`MAX_ID_LEN`] or one with a control character
/// is refused with an error naming the field; characters KLARF cannot
/// carry are replaced by `_` and reported in `warnings`.
pub fn check_identity(
    lot: &str,
    wafer: &str,
    slot: u32,
    operator: &str,
) -> Result<CheckedIdentity, String> {
    let mut warnings = Vec::new();
    let lot = check_id("lot", lot, true, &mut warnings)?;
    let wafer = check_id("wafer", wafer, true, &mut warnings)?;
    let operator = check_id("operator", operator, false, &mut warnings)?;
    Ok(CheckedIdentity {
        identity: RunIdentity {
            lot,
            wafer,
            slot,
            operator,
        },
        warnings,
    })
}

/// Whether KLARF (ASCII, `"`-quoted, `;`-terminated, `{}`/`,` in 1.8
/// lists) can carry `c` inside a quoted id.
fn klarf_can_carry(c: char) -> bool {
    c.is_ascii() && !matches!(c, '"' | ';' | '{' | '}' | ',')
}

fn check_id(
    field: &str,
    raw: &str,
    required: bool,
    warnings: &mut Vec<String>,
) -> Result<String, String> {
    let id = raw.trim();
    if required && id.is_empty() {
        return Err(format!("{field} id: empty; a {field} id is required"));
    }
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Err(format!(
            "{field} id {:?}: control character {:?} not allowed",
            id, c
        ));
    }
    let chars = id.chars().count();
    if chars > MAX_ID_LEN {
        return Err(format!(
            "{field} id {id:?}: {chars} characters, at most {MAX_ID_LEN} allowed"
        ));
    }
    if id.chars().all(klarf_can_carry) {
        return Ok(id.to_owned());
    }
    let clean: String = id
        .chars()
        .map(|c| if klarf_can_carry(c) { c } else { '_' })
        .collect();
    warnings.push(format!(
        "{field} id {id:?} has characters KLARF cannot carry (quotes, semicolons, braces, commas or non-ASCII); recorded as {clean:?}"
    ));
    Ok(clean)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_ids_pass_unchanged_and_trimmed() {
        let c = check_identity(" LOT-1 ", "W01", 3, "ann").unwrap();
        assert_eq!(c.identity.lot, "LOT-1");
        assert_eq!(c.identity.wafer, "W01");
        assert_eq!(c.identity.operator, "ann");
        assert!(c.warnings.is_empty());
    }

    #[test]
    fn empty_long_and_control_ids_are_refused_naming_the_field() {
        let e = check_identity("", "W", 1, "op").unwrap_err();
        assert!(e.starts_with("lot id: empty"), "{e}");
        let e = check_identity("L", "   ", 1, "op").unwrap_err();
        assert!(e.starts_with("wafer id: empty"), "{e}");
        let long = "X".repeat(MAX_ID_LEN + 1);
        let e = check_identity("L", &long, 1, "op").unwrap_err();
        assert!(e.contains("wafer id") && e.contains("at most 32"), "{e}");
        assert!(check_identity("L", &"X".repeat(MAX_ID_LEN), 1, "op").is_ok());
        let e = check_identity("L\u{1b}[2J", "W", 1, "op").unwrap_err();
        assert!(
            e.contains("lot id") && e.contains("control character"),
            "{e}"
        );
        let e = check_identity("L", "W", 1, "a\tb").unwrap_err();
        assert!(e.contains("operator id"), "{e}");
        // The operator may be left empty; lot and wafer may not.
        assert!(check_identity("L", "W", 1, "").is_ok());
    }

    #[test]
    fn characters_klarf_cannot_carry_are_replaced_with_a_warning() {
        let c = check_identity("L\"1;2", "Wä{1},", 1, "op").unwrap();
        assert_eq!(c.identity.lot, "L_1_2");
        assert_eq!(c.identity.wafer, "W__1__");
        assert_eq!(c.warnings.len(), 2);
        assert!(c.warnings[0].contains("lot id") && c.warnings[0].contains("\"L_1_2\""));
        // A replaced id fits the snapshot: one byte per character.
        let c = check_identity(&"é".repeat(MAX_ID_LEN), "W", 1, "").unwrap();
        assert_eq!(c.identity.lot.len(), MAX_ID_LEN);
    }
}
