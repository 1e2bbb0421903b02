//! A small timing harness: median of repeated batches, and a report that
//! prints as aligned text or as one JSON object.

use serde_json::{Map, Value};
use std::time::Instant;

/// Median nanoseconds per call of `op`, over `samples` batches sized so one
/// batch takes roughly `batch_ms`.
pub fn median_ns_per_op(samples: usize, batch_ms: f64, mut op: impl FnMut()) -> f64 {
    // Calibrate the batch size.
    let mut iters = 1u64;
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            op();
        }
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if ms >= batch_ms || iters >= 1 << 30 {
            break;
        }
        iters = if ms <= 0.0 {
            iters * 10
        } else {
            ((iters as f64 * batch_ms / ms).ceil() as u64).max(iters + 1)
        };
    }
    let mut per_op: Vec<f64> = (0..samples.max(1))
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                op();
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .collect();
    per_op.sort_by(f64::total_cmp);
    per_op[per_op.len() / 2]
}

/// Named measurements in insertion order, with units.
#[derive(Default)]
pub struct Report {
    title: String,
    rows: Vec<(String, f64, String)>,
    /// Facts that are words, not figures (e.g. which kernel ran).
    texts: Vec<(String, String)>,
}

impl Report {
    pub fn new(title: &str) -> Self {
        Self {
            title: title.to_owned(),
            rows: Vec::new(),
            texts: Vec::new(),
        }
    }

    pub fn add_text(&mut self, name: &str, value: &str) {
        self.texts.push((name.to_owned(), value.to_owned()));
    }

    pub fn add(&mut self, name: &str, value: f64, unit: &str) {
        self.rows.push((name.to_owned(), value, unit.to_owned()));
    }

    pub fn get(&self, name: &str) -> Option<f64> {
        self.rows.iter().find(|r| r.0 == name).map(|r| r.1)
    }

    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("benchmark".into(), Value::from(self.title.clone()));
        for (name, value) in &self.texts {
            m.insert(name.clone(), Value::from(value.clone()));
        }
        for (name, value, unit) in &self.rows {
            let key = if unit.is_empty() {
                name.clone()
            } else {
                format!("{name}_{unit}")
            };
            m.insert(key, Value::from(round3(*value)));
        }
        Value::Object(m)
    }

    pub fn to_text(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|r| r.0.len())
            .chain(self.texts.iter().map(|t| t.0.len()))
            .max()
            .unwrap_or(0);
        let mut s = format!("{}\n", self.title);
        for (name, value) in &self.texts {
            s += &format!("  {name:<width$}  {value:>14}\n");
        }
        for (name, value, unit) in &self.rows {
            s += &format!("  {name:<width$}  {:>14.3} {unit}\n", value);
        }
        s
    }

    /// Text then JSON (or only JSON), as every `bench` command prints. A
    /// closed stdout (`| head`) is an error with its own exit code, not a
    /// panic.
    pub fn print(&self, json_only: bool) -> Result<(), crate::cli::out::OutputFailed> {
        if !json_only {
            crate::outln!("{}", self.to_text().trim_end())?;
        }
        crate::outln!("{}", self.to_json())
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
