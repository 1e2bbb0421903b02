//! The clock the operator reads: local time with its zone named ("14:03:27
//! CET"), as HMI.md asks. Records and files keep UTC; only the screen is
//! local. The zone comes from the C library (TZ, else /etc/localtime), so
//! it is the same zone `date` shows on the tool.

/// "HH:MM:SS ZONE" for `unix_s` in the local time zone; UTC (named) if the
/// C library cannot convert it.
pub fn local_clock_text(unix_s: i64) -> String {
    let (tm, zone) = local_time(unix_s);
    format!("{:02}:{:02}:{:02} {zone}", tm.tm_hour, tm.tm_min, tm.tm_sec)
        .trim_end()
        .to_owned()
}

/// "YYYY-MM-DD HH:MM:SS ZONE" for `unix_s` in the local time zone (a
/// recorded run's start, read on the screen); UTC (named) if the C library
/// cannot convert it.
pub fn local_date_time_text(unix_s: i64) -> String {
    let (tm, zone) = local_time(unix_s);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} {zone}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
    .trim_end()
    .to_owned()
}

/// The broken-down local time of `unix_s` and its zone's name; UTC if the
/// C library cannot convert it.
fn local_time(unix_s: i64) -> (libc::tm, String) {
    let t: libc::time_t = unix_s as libc::time_t;
    // SAFETY: `tm` is a plain C struct for which all-zero bytes are a valid
    // value (its `tm_zone` pointer is then null, which we check before use).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid for the call; localtime_r is the
    // re-entrant form (no shared static result), safe from any thread.
    let ok = !unsafe { libc::localtime_r(&t, &mut tm) }.is_null();
    if !ok {
        // SAFETY: as above, for gmtime_r.
        unsafe { libc::gmtime_r(&t, &mut tm) };
        return (tm, "UTC".into());
    }
    let zone = if tm.tm_zone.is_null() {
        String::new()
    } else {
        // SAFETY: localtime_r set `tm_zone` to a NUL-terminated string the
        // C library keeps alive (its time-zone tables); checked non-null.
        unsafe { std::ffi::CStr::from_ptr(tm.tm_zone) }
            .to_string_lossy()
            .into_owned()
    };
    (tm, zone)
}

/// One reading of the wall clock: the second to show, and when the next
/// one begins (so a frame shows a second and asks for the next frame from
/// the same reading, and can never skip a second in between).
#[derive(Debug, Clone, Copy)]
pub struct WallSecond {
    pub unix_s: i64,
    next_in: std::time::Duration,
    read_at: std::time::Instant,
}

impl WallSecond {
    pub fn now() -> Self {
        let read_at = std::time::Instant::now();
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            unix_s: since_epoch.as_secs() as i64,
            next_in: std::time::Duration::from_secs(1)
                - std::time::Duration::from_nanos(since_epoch.subsec_nanos() as u64),
            read_at,
        }
    }

    /// Time from now until the second after `unix_s` begins (0 if it has).
    pub fn until_next(&self) -> std::time::Duration {
        self.next_in.saturating_sub(self.read_at.elapsed())
    }
}

/// Seconds since the Unix epoch, now.
pub fn unix_now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next second is at most a second away, and a reading that has
    /// aged past it says 0: a frame that crossed the second asks for the
    /// next frame at once.
    #[test]
    fn the_next_second_is_timed_from_the_reading_that_showed_this_one() {
        for _ in 0..1000 {
            let d = WallSecond::now().until_next();
            assert!(d > std::time::Duration::ZERO && d <= std::time::Duration::from_secs(1));
        }
        let w = WallSecond::now();
        std::thread::sleep(std::time::Duration::from_millis(1001));
        assert_eq!(w.until_next(), std::time::Duration::ZERO);
    }

    /// Our text equals what `date` prints for the same instant in the same
    /// environment (an independent reading of the tool's zone).
    #[test]
    fn the_clock_is_local_time_with_the_zone_named_as_date_shows_it() {
        // Two instants half a year apart: one of them in summer time where
        // the zone has it.
        for unix_s in [1_767_225_600_i64, 1_782_864_000] {
            let out = std::process::Command::new("date")
                .arg("-d")
                .arg(format!("@{unix_s}"))
                .arg("+%H:%M:%S %Z")
                .output()
                .expect("date");
            let expected = String::from_utf8(out.stdout).unwrap();
            assert_eq!(local_clock_text(unix_s), expected.trim());
        }
    }

    /// A zone with summer time, given as a POSIX TZ string (no tz database
    /// needed): the hour and the zone's name follow the season. Run in a
    /// child process of this test binary with TZ set there, since changing
    /// our own environment while other tests run is not safe.
    #[test]
    fn a_zone_with_summer_time_is_named_and_applied() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .env("TZ", "CET-1CEST,M3.5.0,M10.5.0/3")
            .args([
                "--exact",
                "ui::clock::tests::in_cet",
                "--ignored",
                "--test-threads",
                "1",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "{text}");
    }

    /// The date and time of a run's start equal what `date` prints.
    #[test]
    fn a_start_time_reads_as_the_local_date_and_time_date_shows() {
        let unix_s = 1_782_864_000_i64 + 3_723;
        let out = std::process::Command::new("date")
            .arg("-d")
            .arg(format!("@{unix_s}"))
            .arg("+%Y-%m-%d %H:%M:%S %Z")
            .output()
            .expect("date");
        let expected = String::from_utf8(out.stdout).unwrap();
        assert_eq!(local_date_time_text(unix_s), expected.trim());
    }

    #[test]
    #[ignore = "run by a_zone_with_summer_time_is_named_and_applied with TZ set"]
    fn in_cet() {
        // 2026-01-01 00:00 UTC and 2026-07-01 00:00 UTC.
        assert_eq!(local_clock_text(1_767_225_600), "01:00:00 CET");
        assert_eq!(local_clock_text(1_782_864_000), "02:00:00 CEST");
    }
}
