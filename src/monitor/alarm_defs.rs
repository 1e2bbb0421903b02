//! Alarm definitions, read from a TOML file and validated: every error
//! names the file, the alarm and the field.

use super::alarm_engine::MAX_ALARMS;
use super::software::{SoftwareCondition, SOFTWARE_CONDITIONS};
use crate::machine::{Signal, Subsystem};
use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Low = 1,
    Medium = 2,
    High = 3,
}

impl Priority {
    pub fn name(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }
}

/// What makes the alarm active.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    /// Value above `limit`; clears below `limit − deadband`.
    High {
        signal: Signal,
        limit: f64,
        deadband: f64,
    },
    /// Value below `limit`; clears above `limit + deadband`.
    Low {
        signal: Signal,
        limit: f64,
        deadband: f64,
    },
    /// The subsystem's heartbeat is Stale or Lost.
    Stale { subsystem: Subsystem },
    /// The subsystem's heartbeat is Lost.
    Lost { subsystem: Subsystem },
    /// The signal reports errors or impossible values.
    Invalid { signal: Signal },
    /// The machine picture is older than 3 poll periods: the poller has
    /// stopped or died, so every signal it owns reads LOST. Evaluated by
    /// the alarm evaluator from the snapshot's own time stamp.
    MonitorStopped,
    /// The alarm picture is older than 3 evaluation periods: the alarm
    /// evaluator has stopped or died. It cannot raise this itself: readers
    /// (UI, interlocks, suspenders) show it from the alarm snapshot's age
    /// (`AlarmSnapshot::as_seen_at`), and the journal thread, which
    /// watches the evaluator, journals it.
    EvaluatorStopped,
    /// A condition the station's own software sets (e.g. a KLARF export
    /// failing and being retried), read by the evaluator like a signal.
    Software { condition: SoftwareCondition },
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlarmDef {
    /// Stable alarm id (SEMI E5 ALID), reported to the host.
    pub alid: u32,
    pub name: String,
    pub text: String,
    pub guidance: String,
    pub condition: Condition,
    pub priority: Priority,
    /// Active for this long before it is raised (debounce).
    pub on_delay_ns: u64,
    /// Stays active until acknowledged even when the condition clears.
    pub latching: bool,
    /// Longest a timed shelve may last.
    pub max_shelve_ns: u64,
}

const KEYS: [&str; 14] = [
    "alid",
    "name",
    "text",
    "guidance",
    "kind",
    "signal",
    "subsystem",
    "limit",
    "deadband",
    "on_delay_ms",
    "priority",
    "latching",
    "max_shelve_min",
    "condition",
];

#[derive(Deserialize)]
struct Raw {
    alid: Option<i64>,
    name: Option<String>,
    text: Option<String>,
    guidance: Option<String>,
    kind: Option<String>,
    signal: Option<String>,
    subsystem: Option<String>,
    limit: Option<f64>,
    deadband: Option<f64>,
    on_delay_ms: Option<f64>,
    priority: Option<String>,
    latching: Option<bool>,
    max_shelve_min: Option<f64>,
    condition: Option<String>,
}

pub fn load(path: &Path) -> Result<Vec<AlarmDef>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read alarm definitions", path.display()))?;
    parse(&text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// Parses and validates definitions; the error names the alarm and field.
pub fn parse(text: &str) -> Result<Vec<AlarmDef>> {
    let doc: toml::Table = text.parse().context("not valid TOML")?;
    for key in doc.keys() {
        if key != "alarm" {
            bail!("unknown top-level key `{key}` (expected only [[alarm]] tables)");
        }
    }
    let alarms = match doc.get("alarm") {
        Some(toml::Value::Array(a)) => a,
        Some(_) => bail!("`alarm` must be an array of tables: write each as [[alarm]]"),
        None => bail!("no alarms defined: expected [[alarm]] tables"),
    };
    // The evaluator holds a fixed number of alarms (it allocates nothing
    // once running), so a longer file is bad input, not a crash later.
    if alarms.len() > MAX_ALARMS {
        bail!(
            "{} alarms defined; the alarm engine holds at most {MAX_ALARMS}: remove {} or merge alarms",
            alarms.len(),
            alarms.len() - MAX_ALARMS
        );
    }
    let mut defs: Vec<AlarmDef> = Vec::new();
    for (n, value) in alarms.iter().enumerate() {
        let table = value
            .as_table()
            .ok_or_else(|| anyhow!("alarm #{}: must be a table", n + 1))?;
        let label = match (
            table.get("alid").and_then(|v| v.as_integer()),
            table.get("name").and_then(|v| v.as_str()),
        ) {
            (Some(id), Some(name)) => format!("alarm {id} \"{name}\""),
            (Some(id), None) => format!("alarm {id}"),
            (None, Some(name)) => format!("alarm #{} \"{name}\"", n + 1),
            (None, None) => format!("alarm #{}", n + 1),
        };
        for key in table.keys() {
            if !KEYS.contains(&key.as_str()) {
                bail!(
                    "{label}: unknown field `{key}` (known fields: {})",
                    KEYS.join(", ")
                );
            }
        }
        let raw: Raw = value
            .clone()
            .try_into()
            .map_err(|e: toml::de::Error| anyhow!("{label}: {}", e.message()))?;
        let def = validate(raw, &label)?;
        if let Some(other) = defs.iter().find(|d| d.alid == def.alid) {
            bail!(
                "{label}: field `alid`: {} is already used by \"{}\"",
                def.alid,
                other.name
            );
        }
        defs.push(def);
    }
    check_overlaps(&defs)?;
    Ok(defs)
}

fn validate(raw: Raw, label: &str) -> Result<AlarmDef> {
    let missing = |field: &str| anyhow!("{label}: missing field `{field}`");
    let alid = raw.alid.ok_or_else(|| missing("alid"))?;
    if !(1..=u32::MAX as i64).contains(&alid) {
        bail!(
            "{label}: field `alid`: {alid} is out of range 1 to {}",
            u32::MAX
        );
    }
    let name = raw.name.ok_or_else(|| missing("name"))?;
    let text = raw.text.ok_or_else(|| missing("text"))?;
    let guidance = raw.guidance.ok_or_else(|| missing("guidance"))?;
    let kind = raw.kind.ok_or_else(|| missing("kind"))?;
    let signal = || -> Result<Signal> {
        let s = raw.signal.as_deref().ok_or_else(|| missing("signal"))?;
        Signal::from_name(s).ok_or_else(|| {
            let known: Vec<_> = crate::machine::SIGNALS.iter().map(|s| s.name()).collect();
            anyhow!(
                "{label}: field `signal`: unknown signal \"{s}\" (known: {})",
                known.join(", ")
            )
        })
    };
    let subsystem = || -> Result<Subsystem> {
        let s = raw
            .subsystem
            .as_deref()
            .ok_or_else(|| missing("subsystem"))?;
        Subsystem::from_name(s).ok_or_else(|| {
            let known: Vec<_> = crate::machine::SUBSYSTEMS
                .iter()
                .map(|s| s.name())
                .collect();
            anyhow!(
                "{label}: field `subsystem`: unknown subsystem \"{s}\" (known: {})",
                known.join(", ")
            )
        })
    };
    let limit = || -> Result<f64> {
        let l = raw.limit.ok_or_else(|| missing("limit"))?;
        if !l.is_finite() {
            bail!("{label}: field `limit`: must be a finite number");
        }
        Ok(l)
    };
    let deadband = raw.deadband.unwrap_or(0.0);
    if !(deadband >= 0.0 && deadband.is_finite()) {
        bail!("{label}: field `deadband`: {deadband} must be zero or positive");
    }
    let condition = match kind.as_str() {
        "high" => Condition::High {
            signal: signal()?,
            limit: limit()?,
            deadband,
        },
        "low" => Condition::Low {
            signal: signal()?,
            limit: limit()?,
            deadband,
        },
        "stale" => Condition::Stale {
            subsystem: subsystem()?,
        },
        "lost" => Condition::Lost {
            subsystem: subsystem()?,
        },
        "invalid" => Condition::Invalid { signal: signal()? },
        "monitor_stopped" => Condition::MonitorStopped,
        "evaluator_stopped" => Condition::EvaluatorStopped,
        "software" => {
            let c = raw
                .condition
                .as_deref()
                .ok_or_else(|| missing("condition"))?;
            let condition = SoftwareCondition::from_name(c).ok_or_else(|| {
                let known: Vec<_> = SOFTWARE_CONDITIONS.iter().map(|c| c.name()).collect();
                anyhow!(
                    "{label}: field `condition`: unknown software condition \"{c}\" (known: {})",
                    known.join(", ")
                )
            })?;
            Condition::Software { condition }
        }
        other => bail!(
            "{label}: field `kind`: \"{other}\" is not one of high, low, stale, lost, invalid, monitor_stopped, evaluator_stopped, software"
        ),
    };
    if let Condition::High { signal, limit, .. } | Condition::Low { signal, limit, .. } = condition
    {
        let v = signal.info().valid;
        if limit < v.0 || limit > v.1 {
            bail!(
                "{label}: field `limit`: {limit} is outside what {} can report ({} to {} {})",
                signal.name(),
                v.0,
                v.1,
                signal.info().unit
            );
        }
    }
    let priority = match raw.priority.as_deref().ok_or_else(|| missing("priority"))? {
        "low" => Priority::Low,
        "medium" => Priority::Medium,
        "high" => Priority::High,
        other => bail!("{label}: field `priority`: \"{other}\" is not one of low, medium, high"),
    };
    let on_delay_ms = raw.on_delay_ms.unwrap_or(0.0);
    if !(0.0..=600_000.0).contains(&on_delay_ms) {
        bail!("{label}: field `on_delay_ms`: {on_delay_ms} is outside 0 to 600000");
    }
    let max_shelve_min = raw.max_shelve_min.unwrap_or(60.0);
    if !(1.0..=24.0 * 60.0).contains(&max_shelve_min) {
        bail!("{label}: field `max_shelve_min`: {max_shelve_min} is outside 1 to 1440");
    }
    Ok(AlarmDef {
        alid: alid as u32,
        name,
        text,
        guidance,
        condition,
        priority,
        on_delay_ns: (on_delay_ms * 1e6) as u64,
        latching: raw.latching.unwrap_or(false),
        max_shelve_ns: (max_shelve_min * 60e9) as u64,
    })
}

/// A high limit must sit above every low limit of the same signal (with
/// both deadbands), or the signal could be in alarm both ways at once.
fn check_overlaps(defs: &[AlarmDef]) -> Result<()> {
    for hi in defs {
        let Condition::High {
            signal: s_hi,
            limit: l_hi,
            deadband: d_hi,
        } = hi.condition
        else {
            continue;
        };
        for lo in defs {
            let Condition::Low {
                signal: s_lo,
                limit: l_lo,
                deadband: d_lo,
            } = lo.condition
            else {
                continue;
            };
            if s_hi == s_lo && l_hi - d_hi <= l_lo + d_lo {
                bail!(
                    "alarm {} \"{}\" and alarm {} \"{}\": limits overlap on {}: high limit {} (deadband {}) is not above low limit {} (deadband {})",
                    hi.alid,
                    hi.name,
                    lo.alid,
                    lo.name,
                    s_hi.name(),
                    l_hi,
                    d_hi,
                    l_lo,
                    d_lo
                );
            }
        }
    }
    Ok(())
}
