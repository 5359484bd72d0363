//! A comparison of two runs: its result ([`Comparison`], computed by
//! `stampede compare` / `run --baseline`, written as `comparison.json`) and
//! its renderings for people: Markdown for
//! CI comments (`comparison.md`, `stampede compare --format markdown`) and
//! plain text for a terminal. The verdicts `run --baseline` adds to a run
//! quote the same values ([`value`], [`change_text`]).
//!
//! # Markdown
//! A heading with the number of regressions, the two runs, warnings as
//! quotes, then one table row per compared value: series, stat, baseline,
//! current, change (with the noise band it was held against) and verdict.
//! Names are escaped so `|` and `<` cannot break the table.
//!
//! # Text
//! The two runs, warnings, one aligned line per compared value, and the
//! number of regressions.

use crate::scenario::Tolerances;
use crate::units::format;
use std::fmt::Write as _;

/// The verdict of one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Within the tolerance or the noise.
    Same,
    Regression,
    Improvement,
    /// Only in the baseline.
    MissingInCurrent,
    /// Only in the current run.
    MissingInBaseline,
}

/// One compared value.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Row {
    pub metric: String,
    pub population: String,
    pub step: String,
    /// `p50`, `p95`, `p99`, `throughput` or `errors`.
    pub stat: String,
    /// µs for percentiles, per second for throughput, a fraction for errors.
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    /// Relative change (percentiles, throughput) or absolute (errors).
    pub change: Option<f64>,
    /// The noise band the change was held against (same unit as `change`).
    pub noise: f64,
    pub tolerance: f64,
    pub verdict: Change,
}

/// A whole comparison.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    pub baseline: String,
    pub current: String,
    pub warnings: Vec<String>,
    pub tolerances: Tolerances,
    pub rows: Vec<Row>,
    pub regressions: usize,
}

/// A compared value in its stat's unit: `12.3ms`, `20.0/s`, `0.125%`;
/// `—` when the run has none.
pub fn value(stat: &str, v: Option<f64>) -> String {
    match (stat, v) {
        (_, None) => "—".into(),
        ("throughput", Some(x)) => format::per_second_fixed(x),
        ("errors", Some(x)) => format::percent(x, 3),
        (_, Some(us)) => format::micros(us),
    }
}

/// The change and the band it was held against: `+12.0% (noise ±3.1%)`,
/// `+0.150 pp (z 2.4)` for error rates.
pub fn change_text(row: &Row) -> String {
    match (row.stat.as_str(), row.change) {
        (_, None) => "—".into(),
        ("errors", Some(c)) => format!("{:+.3} pp (z {:.1})", c * 100.0, row.noise),
        (_, Some(c)) => format!("{:+.1}% (noise ±{:.1}%)", c * 100.0, row.noise * 100.0),
    }
}

fn verdict_text(v: Change) -> &'static str {
    match v {
        Change::Same => "ok",
        Change::Regression => "REGRESSION",
        Change::Improvement => "improved",
        Change::MissingInCurrent => "missing in current",
        Change::MissingInBaseline => "new in current",
    }
}

/// `http.latency shop/checkout`: the metric and its non-empty tags.
pub fn series_name(row: &Row) -> String {
    let mut name = row.metric.clone();
    let tags: Vec<&str> = [row.population.as_str(), row.step.as_str()]
        .into_iter()
        .filter(|t| !t.is_empty())
        .collect();
    if !tags.is_empty() {
        let _ = write!(name, " {}", tags.join("/"));
    }
    name
}

/// Markdown, for CI comments.
pub fn markdown(c: &Comparison) -> String {
    let esc = |s: &str| {
        s.replace('|', "\\|")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "### stampede compare: {}\n",
        if c.regressions == 0 {
            "no regression ✅".to_string()
        } else {
            format!(
                "{} regression{} ❌",
                c.regressions,
                if c.regressions == 1 { "" } else { "s" }
            )
        }
    );
    let _ = writeln!(
        out,
        "baseline: {}  \ncurrent: {}\n",
        esc(&c.baseline),
        esc(&c.current)
    );
    for w in &c.warnings {
        let _ = writeln!(out, "> ⚠️ {}\n", esc(w));
    }
    let _ = writeln!(
        out,
        "| series | stat | baseline | current | change | verdict |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---|");
    for r in &c.rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            esc(&series_name(r)),
            r.stat,
            value(&r.stat, r.baseline),
            value(&r.stat, r.current),
            esc(&change_text(r)),
            if r.verdict == Change::Regression {
                "**REGRESSION**"
            } else {
                verdict_text(r.verdict)
            }
        );
    }
    out
}

/// Plain text, for a terminal.
pub fn text(c: &Comparison) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "baseline: {}\ncurrent:  {}", c.baseline, c.current);
    for w in &c.warnings {
        let _ = writeln!(out, "warning: {w}");
    }
    let width = c
        .rows
        .iter()
        .map(|r| series_name(r).chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    for r in &c.rows {
        let name = series_name(r);
        let pad = width - name.chars().count();
        let _ = writeln!(
            out,
            "  {name}{:pad$}  {:<10} {:>10} → {:<10} {:<28} {}",
            "",
            r.stat,
            value(&r.stat, r.baseline),
            value(&r.stat, r.current),
            change_text(r),
            verdict_text(r.verdict)
        );
    }
    let _ = writeln!(
        out,
        "{}",
        if c.regressions == 0 {
            "no regression".to_string()
        } else {
            format!("{} regression(s)", c.regressions)
        }
    );
    out
}
