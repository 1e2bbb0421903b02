//! The equipment's clock as the host sees it: the Clock status variable,
//! S2F17/18 (date and time request) and S2F31/32 (the host sets the time).
//!
//! The host's S2F31 does **not** change the system clock: a station PC's
//! clock belongs to its operating system (NTP, other programs, the run
//! record's timestamps) and a program that moved it would need root and
//! would reorder every log. Instead the difference between the host's time
//! and ours is kept as an offset and added to every time GEM reports (the
//! Clock SV, S2F18). docs/gem.md says so.
//!
//! Formatting writes into a stack buffer and returns a `FixedText`: the
//! trace sampler reads the Clock SV on its own thread and must not allocate.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::host::secs2::Item;
use crate::hot::FixedText;

use super::IllegalData;

/// The TimeFormat equipment constant's values (E30 §6.4.3).
pub const TIME_FORMAT_12: u32 = 0;
/// `YYYYMMDDhhmmsscc` (centiseconds): the default.
pub const TIME_FORMAT_16: u32 = 1;
/// Extended ISO 8601 (SEMI E148 style): `YYYY-MM-DDThh:mm:ss.ccZ`.
pub const TIME_FORMAT_ISO: u32 = 2;

/// TIACK: 0 accepted, 1 error, not done.
pub const TIACK_OK: u8 = 0;
pub const TIACK_ERROR: u8 = 1;

/// The host's clock minus ours, ms; shared by the GEM task (which sets it)
/// and the variable source (which reads it on any thread).
#[derive(Debug, Default)]
pub struct ClockOffset(AtomicI64);

impl ClockOffset {
    pub fn get_ms(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
    pub fn set_ms(&self, ms: i64) {
        self.0.store(ms, Ordering::Relaxed)
    }
    /// The time GEM reports now: the system's UTC time plus the offset.
    pub fn now_unix_ms(&self) -> i64 {
        system_unix_ms().saturating_add(self.get_ms())
    }
}

pub fn system_unix_ms() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01 (Howard
/// Hinnant's `civil_from_days`, proleptic Gregorian).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Days since 1970-01-01 of a civil date (`days_from_civil`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Fixed-capacity writer of ASCII digits (no allocation).
struct Buf {
    bytes: [u8; 32],
    len: usize,
}

impl Buf {
    fn digits(&mut self, value: i64, width: usize) {
        let mut v = value.unsigned_abs();
        let start = self.len;
        for i in (0..width).rev() {
            self.bytes[start + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.len += width;
    }
    fn byte(&mut self, b: u8) {
        self.bytes[self.len] = b;
        self.len += 1;
    }
}

/// `unix_ms` (UTC) in the E30 TimeFormat `format` (an unknown value falls
/// back to the 16-character form). Never allocates.
pub fn format_time(unix_ms: i64, format: u32) -> FixedText<64> {
    let secs = unix_ms.div_euclid(1000);
    let ms = unix_ms.rem_euclid(1000);
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let (h, mi, s) = (sod / 3600, sod / 60 % 60, sod % 60);
    let mut b = Buf {
        bytes: [0; 32],
        len: 0,
    };
    match format {
        TIME_FORMAT_12 => {
            b.digits(y.rem_euclid(100), 2);
            for v in [mo as i64, d as i64, h, mi, s] {
                b.digits(v, 2);
            }
        }
        TIME_FORMAT_ISO => {
            b.digits(y, 4);
            b.byte(b'-');
            b.digits(mo as i64, 2);
            b.byte(b'-');
            b.digits(d as i64, 2);
            b.byte(b'T');
            b.digits(h, 2);
            b.byte(b':');
            b.digits(mi, 2);
            b.byte(b':');
            b.digits(s, 2);
            b.byte(b'.');
            b.digits(ms / 10, 2);
            b.byte(b'Z');
        }
        _ => {
            b.digits(y, 4);
            for v in [mo as i64, d as i64, h, mi, s, ms / 10] {
                b.digits(v, 2);
            }
        }
    }
    // Only ASCII digits and separators were written.
    FixedText::new(std::str::from_utf8(&b.bytes[..b.len]).unwrap_or(""))
}

fn num(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The unix time (ms, UTC) of a host's TIME in any of the three
/// TimeFormats: 12 characters (`YYMMDDhhmmss`, years 2000–2099), 16
/// (`YYYYMMDDhhmmsscc`) or extended ISO (`YYYY-MM-DDThh:mm:ss[.f]` then `Z`
/// or `±hh:mm`). `None` if it is none of them or not a real date.
pub fn parse_time(text: &str) -> Option<i64> {
    let (y, mo, d, h, mi, s, ms, offset_min) = if text.len() == 12 && num(text).is_some() {
        let f = |i: usize| num(&text[i..i + 2]);
        (2000 + f(0)?, f(2)?, f(4)?, f(6)?, f(8)?, f(10)?, 0, 0)
    } else if text.len() == 16 && num(text).is_some() {
        let f = |i: usize| num(&text[i..i + 2]);
        (
            num(&text[0..4])?,
            f(4)?,
            f(6)?,
            f(8)?,
            f(10)?,
            f(12)?,
            f(14)? * 10,
            0,
        )
    } else {
        let b = text.as_bytes();
        if b.len() < 20
            || !text.is_ascii()
            || b[4] != b'-'
            || b[7] != b'-'
            || b[10] != b'T'
            || b[13] != b':'
            || b[16] != b':'
        {
            return None;
        }
        let mut rest = &text[19..];
        let mut ms = 0;
        if let Some(frac) = rest.strip_prefix('.') {
            let n = frac.bytes().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            let digits = &frac[..n.min(3)];
            ms = num(digits)? * 10_i64.pow(3 - digits.len() as u32);
            rest = &frac[n..];
        }
        let offset = if rest == "Z" {
            0
        } else {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hm = &rest[1..];
            if hm.len() != 5 || hm.as_bytes()[2] != b':' {
                return None;
            }
            sign * (num(&hm[0..2])? * 60 + num(&hm[3..5])?)
        };
        (
            num(&text[0..4])?,
            num(&text[5..7])?,
            num(&text[8..10])?,
            num(&text[11..13])?,
            num(&text[14..16])?,
            num(&text[17..19])?,
            ms,
            offset,
        )
    };
    let days_in_month = match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if d < 1 || d > days_in_month || h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let days = days_from_civil(y, mo as u32, d as u32);
    Some(((days * 86_400 + h * 3600 + mi * 60 + s - offset_min * 60) * 1000) + ms)
}

/// S2F17 → S2F18: `<A TIME>` in the TimeFormat EC's format.
pub fn s2f18(offset: &ClockOffset, format: u32) -> Item {
    Item::ascii(format_time(offset.now_unix_ms(), format).as_str())
}

/// S2F31 `<A TIME>` → S2F32 `<B TIACK>`: accepted times set the offset; a
/// time that is not one of the formats is TIACK 1 (not an S9F7: the
/// structure is right, the value is not).
pub fn s2f31(body: Option<&Item>, offset: &ClockOffset) -> Result<Item, IllegalData> {
    let text = body
        .and_then(Item::as_ascii)
        .ok_or_else(|| IllegalData::new("S2F31 must be <A TIME>"))?;
    let tiack = match parse_time(text.trim()) {
        Some(host_ms) => {
            offset.set_ms(host_ms - system_unix_ms());
            TIACK_OK
        }
        None => TIACK_ERROR,
    };
    Ok(Item::binary_byte(tiack))
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2024-02-29 13:05:09.870 UTC
    const T: i64 = 1_709_211_909_870;

    #[test]
    fn formats_each_time_format() {
        assert_eq!(format_time(T, TIME_FORMAT_16).as_str(), "2024022913050987");
        assert_eq!(format_time(T, TIME_FORMAT_12).as_str(), "240229130509");
        assert_eq!(
            format_time(T, TIME_FORMAT_ISO).as_str(),
            "2024-02-29T13:05:09.87Z"
        );
        assert_eq!(format_time(0, TIME_FORMAT_16).as_str(), "1970010100000000");
    }

    #[test]
    fn parses_what_it_formats_and_refuses_nonsense() {
        for f in [TIME_FORMAT_16, TIME_FORMAT_ISO] {
            assert_eq!(parse_time(format_time(T, f).as_str()), Some(T));
        }
        assert_eq!(parse_time("240229130509"), Some(T - 870));
        assert_eq!(parse_time("2024-02-29T14:05:09.870+01:00"), Some(T));
        for bad in [
            "",
            "2023022913050987", // 2023 is no leap year
            "20240230130509",
            "2024023013050987",
            "2024-02-29 13:05:09Z",
            "2024-02-29T13:05:09",
            "2024-02-29T25:05:09Z",
            "abcdefghijkl",
            "+24022913050",
        ] {
            assert_eq!(parse_time(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn host_time_sets_an_offset_not_the_system_clock() {
        let offset = ClockOffset::default();
        let host = "2001-01-01T00:00:00Z";
        let ack = s2f31(Some(&Item::ascii(host)), &offset).unwrap();
        assert_eq!(ack.as_binary_byte(), Some(TIACK_OK));
        let reported = parse_time(s2f18(&offset, TIME_FORMAT_ISO).as_ascii().unwrap()).unwrap();
        let want = parse_time(host).unwrap();
        assert!((reported - want).abs() < 5_000, "{reported} vs {want}");
        // The system clock is where it was (years after 2001).
        assert!(system_unix_ms() - want > 10 * 365 * 86_400_000);
        let bad = s2f31(Some(&Item::ascii("yesterday")), &offset).unwrap();
        assert_eq!(bad.as_binary_byte(), Some(TIACK_ERROR));
        assert!(s2f31(Some(&Item::u4(1)), &offset).is_err());
        assert!(s2f31(None, &offset).is_err());
    }
}
