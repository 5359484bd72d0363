//! SLOs: `"metric{tags}.stat" = "op value"`, parsed from `[slo]`, evaluated
//! on the merged histograms and counters at the end of a run (and during it
//! when `abort_on_fail` is set).
//!
//! CONTRACT (stub): helper implements; the public signatures are fixed.

use crate::metrics::Totals;
use std::time::Duration;

/// A phase's place on the run's timeline (for phase-scoped rates).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PhaseSpan {
    pub name: String,
    /// Offset from the run's start.
    pub start: Duration,
    pub end: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Stat {
    /// Percentile, e.g. 99.9.
    Percentile(f64),
    Max,
    Min,
    Mean,
    Count,
    Rate,
}

/// One parsed SLO.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Slo {
    /// The key as written, e.g. `http.latency{step=checkout}.p99`.
    pub key: String,
    /// The target as written, e.g. `< 500ms`.
    pub target: String,
    pub metric: String,
    pub population: Option<String>,
    pub step: Option<String>,
    pub phase: Option<String>,
    pub stat: Stat,
    pub op: Op,
    /// Threshold in the metric's canonical unit: µs for durations, a fraction
    /// for error rates (`0.1%` -> 0.001), per second for rates, plain for counts.
    pub threshold: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SloError {
    #[error("unknown metric `{metric}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownMetric { metric: String, suggestion: Option<String> },
    #[error("`{key}`: {detail}")]
    Invalid { key: String, detail: String },
}

/// The outcome of one SLO.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    pub slo: Slo,
    /// Measured value in the canonical unit; None when no data matched.
    pub measured: Option<f64>,
    /// Human form, e.g. `183.2ms`, `0.04%`, `1021/s`, `no data`.
    pub measured_text: String,
    pub pass: bool,
}

/// Names of the metrics an SLO may use (for suggestions and checks).
pub fn known_metrics() -> &'static [&'static str] {
    todo!()
}

/// Parse one `[slo]` entry.
pub fn parse(key: &str, target: &str) -> Result<Slo, SloError> {
    let _ = (key, target);
    todo!()
}

/// Judge every SLO on the totals. `run_duration` is the measured length of
/// the run (for unscoped rates); a phase-scoped SLO uses that phase's span.
pub fn evaluate(slos: &[Slo], totals: &Totals, phases: &[PhaseSpan], run_duration: Duration) -> Vec<Verdict> {
    let _ = (slos, totals, phases, run_duration);
    todo!()
}
