//! `waferscope audit`: lists the audit trail, checks its hash chain
//! (`--verify`), or exports it as CSV (`--csv FILE`).

use crate::access::audit::AuditLog;
use crate::access::utc_time::{iso_utc, parse_iso_utc};
use crate::store::export::write_atomically;
use anyhow::{anyhow, bail, Result};
use std::path::Path;

/// What `waferscope audit` was asked.
#[derive(Debug, Clone, Default)]
pub struct AuditArgs<'a> {
    /// `--since`: an RFC 3339 UTC time or a duration back from now.
    pub since: Option<&'a str>,
    pub verify: bool,
    pub csv: Option<&'a Path>,
}

/// Runs `waferscope audit` on the station database `db`. Returns whether
/// the chain is intact (always true unless `--verify` found it broken).
pub fn run(db: &Path, args: &AuditArgs) -> Result<bool> {
    let now = crate::monitor::alarm_engine::unix_ms_now();
    let since = args.since.map(|s| parse_since(s, now)).transpose()?;
    if !db.exists() {
        bail!("{}: no station database", db.display());
    }
    let log = AuditLog::open(db)?;
    if let Some(out) = args.csv {
        let mut bytes = Vec::new();
        log.write_csv(since, &mut bytes)?;
        let text = String::from_utf8(bytes)
            .map_err(|e| anyhow!("{}: the audit trail is not UTF-8: {e}", db.display()))?;
        write_atomically(out, &text)?;
        crate::outln!("{}", out.display())?;
    }
    if args.verify {
        let report = log.verify()?;
        // Every user was added with an entry: users and an empty trail
        // mean the trail was emptied (or its table dropped and made anew).
        if report.entries == 0 && !crate::access::Users::open(db)?.is_empty()? {
            crate::outln!(
                "audit trail broken: it is empty, yet the station has users (every entry deleted, or the table dropped)"
            )?;
            return Ok(false);
        }
        return match report.first_broken {
            None => {
                crate::outln!(
                    "audit trail verified: {} entries, chain intact",
                    report.entries
                )?;
                if let Some(head) = report.head_hash {
                    // Kept elsewhere, it shows later whether entries were
                    // cut off the end (which the chain alone cannot).
                    crate::outln!("newest entry's hash: {head}")?;
                }
                Ok(true)
            }
            Some(b) => {
                crate::outln!("audit trail broken at {}", b.why)?;
                Ok(false)
            }
        };
    }
    if args.csv.is_none() {
        list(&log, since)?;
    }
    Ok(true)
}

fn list(log: &AuditLog, since: Option<i64>) -> Result<()> {
    let entries = log.list(since)?;
    if entries.is_empty() {
        crate::outln!("no audit entries")?;
        return Ok(());
    }
    for e in entries {
        crate::outln!(
            "{:>6}  {}  {:<20} {:<13} {:<6} {:<20} {:<8} {}{}",
            e.id,
            iso_utc(e.at_ms),
            e.user,
            e.role,
            e.source,
            e.action,
            if e.accepted { "accepted" } else { "refused" },
            e.params,
            if e.reason.is_empty() {
                String::new()
            } else {
                format!("  ({})", e.reason)
            }
        )?;
    }
    Ok(())
}

/// `--since`: `2026-11-30T06:00:00Z`, or `90m` / `24h` / `7d` (also `s`)
/// back from `now_ms`.
pub fn parse_since(spec: &str, now_ms: i64) -> Result<i64> {
    let s = spec.trim();
    if let Some(last) = s.chars().last() {
        let unit_ms = match last {
            's' => Some(1_000),
            'm' => Some(60_000),
            'h' => Some(3_600_000),
            'd' => Some(86_400_000),
            _ => None,
        };
        let digits = &s[..s.len() - last.len_utf8()];
        let is_count =
            !digits.is_empty() && digits.len() <= 9 && digits.bytes().all(|b| b.is_ascii_digit());
        if let (Some(unit), true) = (unit_ms, is_count) {
            let n: i64 = digits.parse()?;
            return Ok(now_ms - n * unit);
        }
    }
    parse_iso_utc(s).ok_or_else(|| {
        anyhow!(
            "--since {spec:?}: expected a UTC time like 2026-11-30T06:00:00Z or a time back from now like 90m, 24h or 7d"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_a_utc_time_or_a_duration_back() {
        let now = 1_796_018_400_000;
        assert_eq!(parse_since("24h", now).unwrap(), now - 86_400_000);
        assert_eq!(parse_since("90m", now).unwrap(), now - 5_400_000);
        assert_eq!(parse_since("7d", now).unwrap(), now - 7 * 86_400_000);
        assert_eq!(parse_since("30s", now).unwrap(), now - 30_000);
        assert_eq!(parse_since("2026-11-30T06:00:00Z", 0).unwrap(), now);
        for bad in [
            "",
            "h",
            "-5h",
            "5x",
            "5é",
            "yesterday",
            "2026-11-30",
            "1.5h",
        ] {
            let e = parse_since(bad, now).unwrap_err().to_string();
            assert!(e.starts_with("--since"), "{bad:?}: {e}");
        }
    }
}
