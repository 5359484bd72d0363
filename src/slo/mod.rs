//! SLOs: `"metric{tags}.stat" = "op value"`, parsed from `[slo]`, evaluated
//! on the merged histograms and counters at the end of a run (and during it
//! when `abort_on_fail` is set).
//!
//! # Grammar
//! - Key: `metric{tag=value,tag=value}.stat`; the `{…}` part is optional.
//!   Tags: `population`, `step`, `phase` (each at most once; values are
//!   exact names). Stats: `pNN` / `pNN.N` (any percentile in (0, 100]),
//!   `max`, `min`, `mean`, `count`, `rate`.
//! - Target: `op value`, ops `<`, `<=`, `>`, `>=` (whitespace optional).
//!
//! # Metrics and their stats
//! | metric | kind | stats | value written as | canonical unit |
//! |---|---|---|---|---|
//! | `http.latency`, `http.service_time`, `http.wait`, `http.wait.open`, `http.journey`, `generator.lag` | histogram | percentiles, `max`, `min`, `mean` | duration with unit: `850us`/`850µs`, `200ms`, `1.5s`, `2m`, `1h` | µs |
//! | (same) | histogram | `count` | integer | samples |
//! | `http.wait.polls` | histogram of counts | percentiles, `max`, `min`, `mean`, `count` | a number | polls |
//! | `http.requests` | counter | `count` / `rate` | integer / `500/s`, `30/m`, `2/h` or a number (per second) | requests / per second |
//! | `http.errors` | counter | `count` / `rate` | integer / `0.1%` or a fraction (`0.001`) | errors / errors ÷ requests |
//!
//! The metric names, their kinds and units come from the catalogue in the
//! metrics layer ([`crate::metrics::catalogue`]); this module adds the
//! grammar and the verdicts.
//!
//! # Layout
//! - `grammar`: [`parse`], a key and a target into an [`Slo`].
//! - `evaluate`: [`evaluate`] and [`measure`], an [`Slo`] on the [`Totals`].
//! - `format`: [`format_value`] and [`format_target`], values for people.
//! - [`recovery`]: `http.recovery`, HTTP disruptions found in the
//!   per-second series against the SLOs.
//!
//! # Evaluation
//! Histogram stats read the merge of every series of the metric matching the
//! tags (see [`Totals::select_hist`]). `http.requests.rate` is the request
//! count over the phase's span when the SLO is phase-scoped, else over the
//! run's measured duration. `http.errors.rate` is errors ÷ requests under the
//! same tags. When nothing matches (no series, no samples, zero requests for
//! an error rate, an unknown phase), the verdict is "no data" and fails —
//! except a recovery SLO (`hub.recovery`, `http.recovery`) with no
//! recovery measured and none left unrecovered: there was no disruption,
//! the verdict says "nothing was disrupted" and passes.
//! An SLO on `http.wait` judges the waits that ended; its verdict says how
//! many were still open at the end (`http.wait.open`), and fails when
//! counting them at their time so far already breaks an upper bound (see
//! [`evaluate`]).

use std::fmt;
use std::time::Duration;

mod evaluate;
mod format;
mod grammar;
pub mod recovery;

pub use crate::metrics::catalogue::{
    histogram_unit, known_metrics, ratio_denominator, Stat, Unit, UNRECOVERED,
};
pub use evaluate::{evaluate, measure};
pub use format::{format_target, format_value};
pub use grammar::parse;

use crate::metrics::catalogue::metric_kind;
#[cfg(doc)]
use crate::metrics::Totals;

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

impl Op {
    /// The operator as written: `<`, `<=`, `>`, `>=`.
    pub fn symbol(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
    /// Whether `measured op threshold` holds.
    pub fn holds(self, measured: f64, threshold: f64) -> bool {
        match self {
            Op::Lt => measured < threshold,
            Op::Le => measured <= threshold,
            Op::Gt => measured > threshold,
            Op::Ge => measured >= threshold,
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.symbol())
    }
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

impl Slo {
    /// The unit of [`Slo::threshold`] and of the measured value.
    pub fn unit(&self) -> Unit {
        metric_kind(&self.metric).unit(self.stat)
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SloError {
    #[error("unknown metric `{metric}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownMetric {
        metric: String,
        suggestion: Option<String>,
    },
    #[error("`{key}`: {detail}")]
    Invalid { key: String, detail: String },
}

/// The outcome of one SLO.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    pub slo: Slo,
    /// Measured value in the canonical unit; None when no data matched.
    pub measured: Option<f64>,
    /// Human form, e.g. `183.2ms`, `0.04%`, `1021.3/s`, `no data`.
    pub measured_text: String,
    pub pass: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid SLO, parsed (for the tests of every part).
    pub(super) fn ok(key: &str, target: &str) -> Slo {
        parse(key, target).unwrap_or_else(|e| panic!("{key} = {target}: {e}"))
    }
}
