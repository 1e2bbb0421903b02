//! UTC times as the audit trail shows and reads them: ISO 8601 / RFC 3339
//! with a `Z` (`2026-11-30T06:00:00Z`). Written here rather than taken from
//! a date crate: the trail needs only UTC, and only this one form.

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date (`days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn parts(unix_ms: i64) -> (i64, i64, i64, i64, i64, i64, i64) {
    let secs = unix_ms.div_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    (
        y,
        mo,
        d,
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        unix_ms.rem_euclid(1000),
    )
}

/// `2026-11-30T06:00:00Z` (whole seconds: what a person reads).
pub fn iso_utc(unix_ms: i64) -> String {
    let (y, mo, d, h, mi, s, _) = parts(unix_ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `2026-11-30T06:00:00.123Z` (milliseconds: what an export keeps).
pub fn iso_utc_ms(unix_ms: i64) -> String {
    let (y, mo, d, h, mi, s, ms) = parts(unix_ms);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}Z")
}

/// `06:00:00` of the day, UTC.
pub fn clock_utc(unix_ms: i64) -> String {
    let (_, _, _, h, mi, s, _) = parts(unix_ms);
    format!("{h:02}:{mi:02}:{s:02}")
}

/// Reads an RFC 3339 UTC time: `2026-11-30T06:00:00Z`, with optional
/// fractional seconds, `z` or `+00:00`, and a space instead of the `T`.
/// Times in other offsets are refused rather than guessed at.
pub fn parse_iso_utc(text: &str) -> Option<i64> {
    let t = text.trim();
    let body = t
        .strip_suffix('Z')
        .or_else(|| t.strip_suffix('z'))
        .or_else(|| t.strip_suffix("+00:00"))?;
    let (date, time) = body.split_once(['T', 't', ' '])?;
    let num = |s: &str, len: usize| -> Option<i64> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    let mut d = date.split('-');
    let (y, mo, day) = (num(d.next()?, 4)?, num(d.next()?, 2)?, num(d.next()?, 2)?);
    if d.next().is_some() {
        return None;
    }
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (time, None),
    };
    let mut c = hms.split(':');
    let (h, mi, s) = (num(c.next()?, 2)?, num(c.next()?, 2)?, num(c.next()?, 2)?);
    if c.next().is_some() {
        return None;
    }
    let ms = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => {
            let mut digits = f.bytes().take(3).map(|b| i64::from(b - b'0'));
            (0..3).fold(0, |acc, _| acc * 10 + digits.next().unwrap_or(0))
        }
        Some(_) => return None,
    };
    let days_in_month =
        days_from_civil(y + i64::from(mo == 12), mo % 12 + 1, 1) - days_from_civil(y, mo, 1);
    if !(1..=12).contains(&mo) || day < 1 || day > days_in_month || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let days = days_from_civil(y, mo, day);
    Some(((days * 86_400 + h * 3600 + mi * 60 + s) * 1000) + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_reads_back() {
        // 2026-11-30T06:00:00Z, from `date -u -d … +%s`.
        let ms = 1_796_018_400_000;
        assert_eq!(iso_utc(ms), "2026-11-30T06:00:00Z");
        assert_eq!(iso_utc_ms(ms + 7), "2026-11-30T06:00:00.007Z");
        assert_eq!(clock_utc(ms + 61_000), "06:01:01");
        assert_eq!(parse_iso_utc("2026-11-30T06:00:00Z"), Some(ms));
        assert_eq!(parse_iso_utc("2026-11-30 06:00:00.5+00:00"), Some(ms + 500));
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            parse_iso_utc("2024-02-29T23:59:59Z").map(iso_utc).unwrap(),
            "2024-02-29T23:59:59Z"
        );
    }

    #[test]
    fn refuses_what_is_not_a_utc_time() {
        for bad in [
            "",
            "2026-11-30",
            "2026-11-30T06:00:00",
            "2026-11-30T06:00:00+01:00",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-30T24:00:00Z",
            "26-11-30T06:00:00Z",
            "2026-11-30T06:00Z",
            "2026-11-30T06:00:00.Z",
        ] {
            assert_eq!(parse_iso_utc(bad), None, "{bad:?}");
        }
    }
}
