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
//! | `http.latency`, `http.service_time`, `generator.lag` | histogram | percentiles, `max`, `min`, `mean` | duration with unit: `850us`/`850µs`, `200ms`, `1.5s`, `2m`, `1h` | µs |
//! | (same) | histogram | `count` | integer | samples |
//! | `http.requests` | counter | `count` / `rate` | integer / `500/s`, `30/m`, `2/h` or a number (per second) | requests / per second |
//! | `http.errors` | counter | `count` / `rate` | integer / `0.1%` or a fraction (`0.001`) | errors / errors ÷ requests |
//!
//! # Evaluation
//! Histogram stats read the merge of every series of the metric matching the
//! tags (see [`Totals::select_hist`]). `http.requests.rate` is the request
//! count over the phase's span when the SLO is phase-scoped, else over the
//! run's measured duration. `http.errors.rate` is errors ÷ requests under the
//! same tags. When nothing matches (no series, no samples, zero requests for
//! an error rate, an unknown phase), the verdict is "no data" and fails.

use crate::metrics::{TagFilter, Totals};
use std::fmt;
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

/// The unit of an SLO's measured value and threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Microseconds (histogram values).
    Micros,
    /// A fraction in [0, 1], shown as a percentage (error rate).
    Fraction,
    /// Events per second.
    PerSecond,
    /// A plain count.
    Count,
}

/// The unit of a histogram metric's values (µs, or a plain count for
/// `hub.reconnect.attempts`), for reports that print its percentiles.
pub fn histogram_unit(metric: &str) -> Unit {
    unit_of(metric_kind(metric), Stat::Max)
}

impl Slo {
    /// The unit of [`Slo::threshold`] and of the measured value.
    pub fn unit(&self) -> Unit {
        unit_of(metric_kind(&self.metric), self.stat)
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

/// What a metric is, which decides its stats and units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MetricKind {
    /// A latency-like histogram in µs.
    Histogram,
    /// A histogram of plain counts (e.g. reconnect attempts per agent).
    CountHistogram,
    /// A counter: `count`, and `rate` per second.
    Counter,
    /// A counter of failures: `count`, and `rate` as a fraction of the
    /// named counter (`http.errors` / `http.requests`).
    Ratio(&'static str),
}

const METRICS: [(&str, MetricKind); 21] = [
    ("http.latency", MetricKind::Histogram),
    ("http.service_time", MetricKind::Histogram),
    ("generator.lag", MetricKind::Histogram),
    ("http.requests", MetricKind::Counter),
    ("http.errors", MetricKind::Ratio("http.requests")),
    ("hub.connect", MetricKind::Histogram),
    ("hub.register", MetricKind::Histogram),
    ("hub.message.rtt", MetricKind::Histogram),
    ("hub.reconnect", MetricKind::Histogram),
    ("hub.reconnect.attempts", MetricKind::CountHistogram),
    ("hub.recovery", MetricKind::Histogram),
    ("hub.command.delivery", MetricKind::Histogram),
    ("hub.command.fanout", MetricKind::Histogram),
    ("hub.command.rtt", MetricKind::Histogram),
    ("hub.connects", MetricKind::Counter),
    ("hub.errors", MetricKind::Ratio("hub.connects")),
    ("hub.disconnects", MetricKind::Counter),
    ("hub.registrations", MetricKind::Counter),
    ("hub.reconnects", MetricKind::Counter),
    ("hub.commands", MetricKind::Counter),
    ("hub.command.received", MetricKind::Counter),
];

/// Metrics whose SLO key may omit the stat; the stat they mean.
const BARE: [(&str, Stat); 1] = [("hub.recovery", Stat::Max)];

/// Drop events that never recovered (a counter; see [`evaluate`]).
pub const UNRECOVERED: &str = "hub.unrecovered";

const METRIC_NAMES: [&str; 21] = {
    let mut names = [""; 21];
    let mut i = 0;
    while i < METRICS.len() {
        names[i] = METRICS[i].0;
        i += 1;
    }
    names
};

/// Names of the metrics an SLO may use (for suggestions and checks).
pub fn known_metrics() -> &'static [&'static str] {
    &METRIC_NAMES
}

/// For a failure counter whose `rate` is a share (`http.errors`,
/// `hub.errors`): the counter it is a share of (`http.requests`,
/// `hub.connects`).
pub fn ratio_denominator(metric: &str) -> Option<&'static str> {
    match metric_kind(metric) {
        MetricKind::Ratio(denominator) => Some(denominator),
        _ => None,
    }
}

/// Kind of a metric already checked to be known.
fn metric_kind(metric: &str) -> MetricKind {
    METRICS
        .iter()
        .find(|(name, _)| *name == metric)
        .map_or(MetricKind::Histogram, |(_, kind)| *kind)
}

fn unit_of(kind: MetricKind, stat: Stat) -> Unit {
    match (kind, stat) {
        (_, Stat::Count) => Unit::Count,
        (MetricKind::Histogram, _) => Unit::Micros,
        (MetricKind::CountHistogram, _) => Unit::Count,
        (MetricKind::Counter, _) => Unit::PerSecond,
        (MetricKind::Ratio(_), _) => Unit::Fraction,
    }
}

fn stat_allowed(kind: MetricKind, stat: Stat) -> bool {
    match kind {
        MetricKind::Histogram | MetricKind::CountHistogram => !matches!(stat, Stat::Rate),
        MetricKind::Counter | MetricKind::Ratio(_) => matches!(stat, Stat::Count | Stat::Rate),
    }
}

fn valid_stats(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Histogram | MetricKind::CountHistogram => {
            "p50, p90, p95, p99, p99.9 (any pNN or pNN.N), max, min, mean, count"
        }
        MetricKind::Counter | MetricKind::Ratio(_) => "count, rate",
    }
}

/// Parse one `[slo]` entry.
pub fn parse(key: &str, target: &str) -> Result<Slo, SloError> {
    let invalid = |detail: String| SloError::Invalid {
        key: key.to_owned(),
        detail,
    };
    let key_trimmed = key.trim();
    let parts = match BARE.iter().find(|(name, _)| *name == key_trimmed) {
        Some((name, _)) => KeyParts {
            metric: name,
            tags: None,
            stat: "",
        },
        None => split_key(key_trimmed).map_err(invalid)?,
    };
    let Some(kind) = METRICS
        .iter()
        .find(|(name, _)| *name == parts.metric)
        .map(|(_, kind)| *kind)
    else {
        return Err(SloError::UnknownMetric {
            metric: parts.metric.to_owned(),
            suggestion: suggest_metric(parts.metric).map(str::to_owned),
        });
    };
    let mut population = None;
    let mut step = None;
    let mut phase = None;
    if let Some(tags) = parts.tags {
        for item in tags.split(',') {
            let item = item.trim();
            let Some((name, value)) = item.split_once('=') else {
                return Err(invalid(format!("tag `{item}` needs a value: `name=value`")));
            };
            let (name, value) = (name.trim(), value.trim());
            let slot = match name {
                "population" => &mut population,
                "step" => &mut step,
                "phase" => &mut phase,
                _ => {
                    return Err(invalid(format!(
                        "unknown tag `{name}`; tags are population, step and phase"
                    )))
                }
            };
            if value.is_empty() {
                return Err(invalid(format!("tag `{name}` has an empty value")));
            }
            if slot.replace(value.to_owned()).is_some() {
                return Err(invalid(format!("tag `{name}` is given twice")));
            }
        }
    }
    let bare = BARE
        .iter()
        .find(|(name, _)| parts.stat.is_empty() && *name == parts.metric)
        .map(|(_, stat)| *stat);
    let stat = bare
        .or_else(|| parse_stat(parts.stat))
        .filter(|stat| stat_allowed(kind, *stat))
        .ok_or_else(|| {
            invalid(format!(
                "`{}` is not a stat of {}; use one of: {}",
                parts.stat,
                parts.metric,
                valid_stats(kind)
            ))
        })?;
    if let Stat::Percentile(p) = stat {
        if !(p > 0.0 && p <= 100.0) {
            return Err(invalid(format!(
                "percentile `{}` must be above 0 and at most 100",
                parts.stat
            )));
        }
    }
    let (op, value) = split_target(target).map_err(invalid)?;
    let threshold = match unit_of(kind, stat) {
        Unit::Micros => parse_duration_us(value),
        Unit::Count => parse_count(value),
        Unit::Fraction => parse_fraction(value),
        Unit::PerSecond => parse_per_second(value),
    }
    .map_err(|expected| invalid(format!("target `{}`: {expected}", target.trim())))?;
    Ok(Slo {
        key: key.to_owned(),
        target: target.trim().to_owned(),
        metric: parts.metric.to_owned(),
        population,
        step,
        phase,
        stat,
        op,
        threshold,
    })
}

/// The pieces of a key, not yet validated.
struct KeyParts<'a> {
    metric: &'a str,
    /// Inside the braces, when present.
    tags: Option<&'a str>,
    stat: &'a str,
}

fn split_key(key: &str) -> Result<KeyParts<'_>, String> {
    const SHAPE: &str = "expected `metric{tags}.stat` or `metric.stat`, e.g. `http.latency.p95`";
    if let Some(open) = key.find('{') {
        let Some(close) = key[open..].find('}').map(|i| open + i) else {
            return Err(format!("missing `}}` after the tags; {SHAPE}"));
        };
        let Some(stat) = key[close + 1..].strip_prefix('.') else {
            return Err(format!(
                "expected `.stat` after the tags, e.g. `}}.p99`; {SHAPE}"
            ));
        };
        return Ok(KeyParts {
            metric: key[..open].trim(),
            tags: Some(&key[open + 1..close]),
            stat,
        });
    }
    if METRIC_NAMES.contains(&key) {
        return Err(format!("no stat; {SHAPE}"));
    }
    // Metric names and `p99.9` both contain dots: a known metric prefix
    // wins; otherwise the first split whose rest reads as a stat; otherwise
    // the last dot.
    let split = METRIC_NAMES
        .iter()
        .filter(|name| {
            key.strip_prefix(*name)
                .is_some_and(|rest| rest.starts_with('.') && parse_stat(&rest[1..]).is_some())
        })
        .map(|name| name.len())
        .max()
        .or_else(|| {
            key.match_indices('.')
                .map(|(i, _)| i)
                .find(|&i| parse_stat(&key[i + 1..]).is_some())
        })
        .or_else(|| key.rfind('.'));
    match split {
        Some(i) if i > 0 && i + 1 < key.len() => Ok(KeyParts {
            metric: &key[..i],
            tags: None,
            stat: &key[i + 1..],
        }),
        _ => Err(format!("no stat; {SHAPE}")),
    }
}

/// A stat's syntax (percentile range is checked by the caller).
fn parse_stat(text: &str) -> Option<Stat> {
    match text {
        "max" => Some(Stat::Max),
        "min" => Some(Stat::Min),
        "mean" => Some(Stat::Mean),
        "count" => Some(Stat::Count),
        "rate" => Some(Stat::Rate),
        _ => {
            let digits = text.strip_prefix('p')?;
            let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
            let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            (all_digits(whole) && all_digits(fraction))
                .then(|| digits.parse().ok().map(Stat::Percentile))
                .flatten()
        }
    }
}

/// The closest known metric, if one is plausibly meant.
fn suggest_metric(metric: &str) -> Option<&'static str> {
    if let Some(name) = METRIC_NAMES.iter().find(|name| {
        !metric.is_empty()
            && name.ends_with(metric)
            && name[..name.len() - metric.len()].ends_with('.')
    }) {
        return Some(name);
    }
    METRIC_NAMES
        .iter()
        .map(|name| (strsim::normalized_damerau_levenshtein(metric, name), *name))
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}

fn split_target(target: &str) -> Result<(Op, &str), String> {
    let text = target.trim();
    let (op, rest) = [("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)]
        .into_iter()
        .find_map(|(symbol, op)| text.strip_prefix(symbol).map(|rest| (op, rest.trim())))
        .ok_or_else(|| {
            format!(
                "target `{text}`: expected an operator (<, <=, >, >=) and a value, e.g. `< 200ms`"
            )
        })?;
    if rest.is_empty() {
        return Err(format!("target `{text}`: missing the value after `{op}`"));
    }
    Ok((op, rest))
}

/// A non-negative decimal number: digits with at most one `.`; no sign,
/// exponent, `inf` or `NaN`.
fn parse_number(text: &str) -> Option<f64> {
    let text = text.trim();
    let digits = text.bytes().filter(u8::is_ascii_digit).count();
    let dots = text.bytes().filter(|&b| b == b'.').count();
    (digits > 0 && digits + dots == text.len() && dots <= 1)
        .then(|| text.parse().ok())
        .flatten()
}

/// Split `200ms` into (`200`, `ms`).
fn number_and_unit(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    (&text[..end], text[end..].trim())
}

fn parse_duration_us(text: &str) -> Result<f64, String> {
    const EXPECTED: &str = "expected a duration with a unit (us, ms, s, m, h), e.g. `200ms`";
    let (number, unit) = number_and_unit(text);
    let scale = match unit {
        "us" | "µs" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return Err(EXPECTED.to_owned()),
    };
    parse_number(number)
        .map(|n| n * scale)
        .ok_or_else(|| EXPECTED.to_owned())
}

fn parse_count(text: &str) -> Result<f64, String> {
    text.parse::<u64>()
        .ok()
        .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
        .map(|n| n as f64)
        .ok_or_else(|| "expected a whole number, e.g. `1000`".to_owned())
}

fn parse_fraction(text: &str) -> Result<f64, String> {
    const EXPECTED: &str = "expected a percentage (`0.1%`) or a fraction between 0 and 1 (`0.001`)";
    let fraction = match text.strip_suffix('%') {
        Some(percent) => parse_number(percent).map(|p| p / 100.0),
        None => parse_number(text),
    };
    fraction
        .filter(|f| *f <= 1.0)
        .ok_or_else(|| EXPECTED.to_owned())
}

fn parse_per_second(text: &str) -> Result<f64, String> {
    const EXPECTED: &str = "expected a rate (`500/s`, `30/m`, `2/h`) or a number per second";
    let (number, per) = match text.split_once('/') {
        Some((number, unit)) => {
            let per = match unit.trim() {
                "s" => 1.0,
                "m" => 60.0,
                "h" => 3600.0,
                _ => return Err(EXPECTED.to_owned()),
            };
            (number, per)
        }
        None => (text, 1.0),
    };
    parse_number(number)
        .map(|n| n / per)
        .ok_or_else(|| EXPECTED.to_owned())
}

/// Judge every SLO on the totals. `run_duration` is the measured length of
/// the run (for unscoped rates); a phase-scoped SLO uses that phase's span.
pub fn evaluate(
    slos: &[Slo],
    totals: &Totals,
    phases: &[PhaseSpan],
    run_duration: Duration,
) -> Vec<Verdict> {
    slos.iter()
        .map(|slo| {
            let measured = measure(slo, totals, phases, run_duration);
            // A drop event that never recovered has no recovery time: the
            // SLO fails, saying so, whatever the recovered events measured.
            let unrecovered = if slo.metric == "hub.recovery" {
                let filter = TagFilter {
                    population: slo.population.clone(),
                    ..TagFilter::default()
                };
                totals.sum_counters(UNRECOVERED, None, &filter)
            } else {
                0
            };
            if unrecovered > 0 {
                return Verdict {
                    slo: slo.clone(),
                    measured: None,
                    measured_text: format!(
                        "not recovered ({unrecovered} drop event{})",
                        if unrecovered == 1 { "" } else { "s" }
                    ),
                    pass: false,
                };
            }
            Verdict {
                slo: slo.clone(),
                measured,
                measured_text: measured
                    .map_or_else(|| "no data".to_owned(), |m| format_value(slo.unit(), m)),
                pass: measured.is_some_and(|m| slo.op.holds(m, slo.threshold)),
            }
        })
        .collect()
}

/// The value an SLO judges, in its canonical unit; None when nothing matched.
pub fn measure(
    slo: &Slo,
    totals: &Totals,
    phases: &[PhaseSpan],
    run_duration: Duration,
) -> Option<f64> {
    let filter = TagFilter {
        population: slo.population.clone(),
        step: slo.step.clone(),
        // A phase the layout lacks selects nothing (past every index).
        phase: slo
            .phase
            .as_ref()
            .map(|name| totals.layout().phase_index(name).unwrap_or(usize::MAX)),
    };
    match (metric_kind(&slo.metric), slo.stat) {
        (MetricKind::Histogram | MetricKind::CountHistogram, stat) => {
            let h = totals.select_hist(&slo.metric, &filter)?;
            if stat == Stat::Count {
                return Some(h.len() as f64);
            }
            if h.is_empty() {
                return None;
            }
            match stat {
                Stat::Percentile(p) => Some(h.value_at_quantile(p / 100.0) as f64),
                Stat::Max => Some(h.max() as f64),
                Stat::Min => Some(h.min() as f64),
                Stat::Mean => Some(h.mean()),
                // Refused by `parse`; a hand-built Slo measures nothing.
                Stat::Count | Stat::Rate => None,
            }
        }
        (MetricKind::Counter, Stat::Rate) => {
            let n = totals.select_counters(&slo.metric, None, &filter)?;
            let span = match &slo.phase {
                Some(name) => phases
                    .iter()
                    .find(|p| p.name == *name)
                    .map(|p| p.end.saturating_sub(p.start))?,
                None => run_duration,
            };
            (!span.is_zero()).then(|| n as f64 / span.as_secs_f64())
        }
        (MetricKind::Counter, _) => totals
            .select_counters(&slo.metric, None, &filter)
            .map(|n| n as f64),
        (MetricKind::Ratio(denominator), Stat::Rate) => {
            let total = totals.select_counters(denominator, None, &filter)?;
            let failures = totals.sum_counters(&slo.metric, None, &filter);
            (total > 0).then(|| failures as f64 / total as f64)
        }
        (MetricKind::Ratio(denominator), _) => totals
            .select_counters(&slo.metric, None, &filter)
            // No failure series at all, but the denominator was counted: zero.
            .or_else(|| {
                totals
                    .select_counters(denominator, None, &filter)
                    .map(|_| 0)
            })
            .map(|n| n as f64),
    }
}

/// A value in `unit`, for people: `850µs`, `183.2ms`, `1.5s`, `0.04%`,
/// `1021.3/s`, `1200`.
pub fn format_value(unit: Unit, value: f64) -> String {
    match unit {
        Unit::Micros if value < 1e3 => format!("{}µs", trim_decimals(value, 1)),
        Unit::Micros if value < 1e6 => format!("{}ms", trim_decimals(value / 1e3, 1)),
        Unit::Micros => format!("{}s", trim_decimals(value / 1e6, 2)),
        Unit::Fraction => {
            let percent = value * 100.0;
            let decimals = if percent == 0.0 || percent >= 0.01 {
                2
            } else {
                4
            };
            format!("{}%", trim_decimals(percent, decimals))
        }
        Unit::PerSecond => format!("{}/s", trim_decimals(value, 1)),
        Unit::Count => format!("{}", value.round() as u64),
    }
}

/// The target in normalised form, from the parsed threshold: `< 200ms`,
/// `< 0.1%`, `>= 500/s`.
pub fn format_target(slo: &Slo) -> String {
    format!("{} {}", slo.op, format_value(slo.unit(), slo.threshold))
}

/// `value` with at most `decimals` decimals, trailing zeros removed.
fn trim_decimals(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{new_histogram, Layout};

    fn ok(key: &str, target: &str) -> Slo {
        parse(key, target).unwrap_or_else(|e| panic!("{key} = {target}: {e}"))
    }

    fn invalid(key: &str, target: &str) -> String {
        match parse(key, target) {
            Err(SloError::Invalid { key: k, detail }) => {
                assert_eq!(k, key);
                detail
            }
            other => panic!("{key} = {target}: expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn parses_percentiles_durations_and_tags() {
        let slo = ok("http.latency.p95", "< 200ms");
        assert_eq!(
            slo,
            Slo {
                key: "http.latency.p95".into(),
                target: "< 200ms".into(),
                metric: "http.latency".into(),
                population: None,
                step: None,
                phase: None,
                stat: Stat::Percentile(95.0),
                op: Op::Lt,
                threshold: 200_000.0,
            }
        );
        let slo = ok("http.latency{step=checkout}.p99", "<500ms");
        assert_eq!(
            (slo.step.as_deref(), slo.op, slo.threshold),
            (Some("checkout"), Op::Lt, 500_000.0)
        );
        let slo = ok(
            "http.latency{population=shopper, step = checkout,phase=spike}.p99.9",
            "<= 1.5s",
        );
        assert_eq!(slo.population.as_deref(), Some("shopper"));
        assert_eq!(slo.step.as_deref(), Some("checkout"));
        assert_eq!(slo.phase.as_deref(), Some("spike"));
        assert_eq!(
            (slo.stat, slo.op, slo.threshold),
            (Stat::Percentile(99.9), Op::Le, 1_500_000.0)
        );
        assert_eq!(
            ok("http.latency.p99.99", "<1s").stat,
            Stat::Percentile(99.99)
        );
        assert_eq!(ok("http.latency.p100", "<1s").stat, Stat::Percentile(100.0));
        let slo = ok("http.service_time.max", ">= 850us");
        assert_eq!(
            (slo.stat, slo.op, slo.threshold),
            (Stat::Max, Op::Ge, 850.0)
        );
        assert_eq!(ok("http.service_time.max", ">850µs").threshold, 850.0);
        assert_eq!(ok("generator.lag.mean", "< 2m").threshold, 120e6);
        assert_eq!(ok("generator.lag.min", "> 1h").threshold, 3600e6);
        let slo = ok("http.latency.count", ">= 100");
        assert_eq!(
            (slo.stat, slo.threshold, slo.unit()),
            (Stat::Count, 100.0, Unit::Count)
        );
    }

    #[test]
    fn parses_counter_stats() {
        let slo = ok("http.errors.rate", "< 0.1%");
        assert_eq!(
            (slo.stat, slo.op, slo.unit()),
            (Stat::Rate, Op::Lt, Unit::Fraction)
        );
        assert!((slo.threshold - 0.001).abs() < 1e-12);
        assert_eq!(ok("http.errors.rate", "<0.001").threshold, 0.001);
        assert_eq!(ok("http.errors.rate", "<= 100%").threshold, 1.0);
        assert_eq!(ok("http.errors.count", "<= 5").threshold, 5.0);
        let slo = ok("http.requests.rate", "> 500/s");
        assert_eq!(
            (slo.op, slo.threshold, slo.unit()),
            (Op::Gt, 500.0, Unit::PerSecond)
        );
        assert_eq!(ok("http.requests.rate", ">= 30/m").threshold, 0.5);
        assert_eq!(ok("http.requests.rate", ">= 7200/h").threshold, 2.0);
        assert_eq!(ok("http.requests.rate", ">= 1000").threshold, 1000.0);
        assert_eq!(ok("http.requests.count", ">= 10000").threshold, 10_000.0);
        assert_eq!(
            ok("http.requests{phase=spike}.rate", ">= 1000/s")
                .phase
                .as_deref(),
            Some("spike")
        );
    }

    #[test]
    fn hub_metrics_parse_with_their_units() {
        let slo = ok("hub.recovery", "< 30s");
        assert_eq!((slo.metric.as_str(), slo.stat), ("hub.recovery", Stat::Max));
        assert_eq!(slo.threshold, 30e6);
        let slo = ok("hub.reconnect.attempts.p99", "<= 5");
        assert_eq!(slo.metric, "hub.reconnect.attempts");
        assert_eq!((slo.unit(), slo.threshold), (Unit::Count, 5.0));
        let slo = ok("hub.reconnect.p95", "< 10s");
        assert_eq!(slo.metric, "hub.reconnect");
        assert_eq!(ok("hub.errors.rate", "< 1%").unit(), Unit::Fraction);
        assert_eq!(ok("hub.connects.rate", "> 100/s").unit(), Unit::PerSecond);
        let slo = ok("hub.command.delivery{population=agent}.p99", "< 250ms");
        assert_eq!(slo.population.as_deref(), Some("agent"));
        assert!(
            parse("hub.connect", "< 1s").is_err(),
            "only hub.recovery may omit its stat"
        );
    }

    #[test]
    fn unknown_metrics_come_with_a_suggestion_when_close() {
        let unknown = |key: &str| match parse(key, "< 1s") {
            Err(SloError::UnknownMetric { metric, suggestion }) => (metric, suggestion),
            other => panic!("{key}: {other:?}"),
        };
        assert_eq!(
            unknown("http.latncy.p95"),
            ("http.latncy".into(), Some("http.latency".into()))
        );
        assert_eq!(
            unknown("latency.p95"),
            ("latency".into(), Some("http.latency".into()))
        );
        assert_eq!(
            unknown("http.eror{step=a}.rate"),
            ("http.eror".into(), Some("http.errors".into()))
        );
        assert_eq!(
            unknown("hub.conect.p99"),
            ("hub.conect".into(), Some("hub.connect".into()))
        );
        let err = parse("http.latncy.p95", "< 1s").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown metric `http.latncy` (did you mean `http.latency`?)"
        );
        assert_eq!(known_metrics().len(), 21);
        assert!(known_metrics().contains(&"hub.recovery"));
        assert!(known_metrics().contains(&"generator.lag"));
    }

    #[test]
    fn malformed_keys_are_refused_with_what_is_wrong() {
        assert!(invalid("http.latency", "< 1s").contains("no stat"));
        assert!(invalid("http.latency{step=a", "< 1s").contains("missing `}`"));
        assert!(invalid("http.latency{step=a}p99", "< 1s").contains("`.stat` after the tags"));
        let d = invalid("http.latency{region=eu}.p99", "< 1s");
        assert!(
            d.contains("unknown tag `region`") && d.contains("population, step and phase"),
            "{d}"
        );
        assert!(invalid("http.latency{step}.p99", "< 1s").contains("needs a value"));
        assert!(invalid("http.latency{step=}.p99", "< 1s").contains("empty value"));
        assert!(invalid("http.latency{step=a,step=b}.p99", "< 1s").contains("given twice"));
        assert!(invalid("http.latency{}.p99", "< 1s").contains("needs a value"));
    }

    #[test]
    fn stats_must_fit_the_metric() {
        let d = invalid("http.latency.rate", "< 1s");
        assert!(d.contains("`rate` is not a stat of http.latency"), "{d}");
        assert!(
            d.contains("p99.9") && d.contains("mean") && d.contains("count"),
            "{d}"
        );
        let d = invalid("http.requests.p99", "< 1");
        assert!(d.contains("use one of: count, rate"), "{d}");
        assert!(invalid("http.errors.max", "< 1").contains("count, rate"));
        assert!(invalid("http.latency.median", "< 1s").contains("not a stat"));
        assert!(invalid("http.latency.p9x", "< 1s").contains("not a stat"));
        assert!(invalid("http.latency.p0", "< 1s").contains("above 0 and at most 100"));
        assert!(invalid("http.latency.p100.5", "< 1s").contains("above 0 and at most 100"));
    }

    #[test]
    fn targets_must_have_an_operator_and_the_right_unit() {
        assert!(invalid("http.latency.p95", "200ms").contains("expected an operator"));
        assert!(invalid("http.latency.p95", "= 200ms").contains("expected an operator"));
        assert!(invalid("http.latency.p95", "<").contains("missing the value after `<`"));
        let d = invalid("http.latency.p95", "< 200");
        assert!(
            d.contains("target `< 200`") && d.contains("duration with a unit"),
            "{d}"
        );
        assert!(invalid("http.latency.p95", "< 200ns").contains("duration with a unit"));
        assert!(invalid("http.latency.p95", "< -5ms").contains("duration with a unit"));
        assert!(invalid("http.latency.p95", "< 200ms extra").contains("duration with a unit"));
        assert!(invalid("http.latency.p95", "< 1e3ms").contains("duration with a unit"));
        assert!(invalid("http.latency.count", "> 1.5").contains("whole number"));
        assert!(invalid("http.errors.rate", "< 150%").contains("percentage"));
        assert!(invalid("http.errors.rate", "< 2").contains("fraction between 0 and 1"));
        assert!(invalid("http.errors.rate", "< 1ms").contains("percentage"));
        assert!(invalid("http.requests.rate", "> 5/d").contains("a rate"));
        assert!(invalid("http.requests.rate", "> fast").contains("a rate"));
        assert!(invalid("http.requests.count", "> -1").contains("whole number"));
    }

    #[test]
    fn values_and_targets_format_for_people() {
        assert_eq!(format_value(Unit::Micros, 850.0), "850µs");
        assert_eq!(format_value(Unit::Micros, 12.46), "12.5µs");
        assert_eq!(format_value(Unit::Micros, 183_240.0), "183.2ms");
        assert_eq!(format_value(Unit::Micros, 200_000.0), "200ms");
        assert_eq!(format_value(Unit::Micros, 1_500_000.0), "1.5s");
        assert_eq!(format_value(Unit::Fraction, 0.0004), "0.04%");
        assert_eq!(format_value(Unit::Fraction, 0.05), "5%");
        assert_eq!(format_value(Unit::Fraction, 0.0), "0%");
        assert_eq!(format_value(Unit::Fraction, 0.000_012), "0.0012%");
        assert_eq!(format_value(Unit::PerSecond, 1021.26), "1021.3/s");
        assert_eq!(format_value(Unit::PerSecond, 300.0), "300/s");
        assert_eq!(format_value(Unit::Count, 1200.0), "1200");
        assert_eq!(format_target(&ok("http.errors.rate", "<0.001")), "< 0.1%");
        assert_eq!(format_target(&ok("http.latency.p99", ">=1.5s")), ">= 1.5s");
        assert_eq!(
            format_target(&ok("http.requests.rate", "> 30/m")),
            "> 0.5/s"
        );
    }

    /// Phases warm-up (0..10 s) and spike (10..14 s); a run of 20 s.
    struct Run {
        totals: Totals,
        phases: Vec<PhaseSpan>,
        run: Duration,
    }

    fn run() -> Run {
        let mut layout = Layout {
            phases: vec!["warm-up".into(), "spike".into()],
            ..Layout::default()
        };
        let browse = layout.add_hist("http.latency", "shopper", "browse");
        let checkout = layout.add_hist("http.latency", "shopper", "checkout");
        let service = layout.add_hist("http.service_time", "shopper", "browse");
        layout.add_hist("generator.lag", "", "");
        let req_browse = layout.add_counter("http.requests", "shopper", "browse", None);
        let req_checkout = layout.add_counter("http.requests", "shopper", "checkout", None);
        let err_timeout = layout.add_counter("http.errors", "shopper", "checkout", Some("timeout"));
        let err_5xx = layout.add_counter("http.errors", "shopper", "browse", Some("http_5xx"));
        let mut totals = Totals::new(layout);
        let hist = |values: &mut dyn Iterator<Item = u64>| {
            let mut h = new_histogram();
            values.for_each(|v| h.record(v).unwrap());
            h
        };
        // Browse: warm-up 1..=1000 µs; spike 1000 samples of 100 ms.
        totals.merge_hist(browse, 0, &hist(&mut (1..=1000)));
        totals.merge_hist(browse, 1, &hist(&mut std::iter::repeat_n(100_000, 1000)));
        totals.merge_hist(checkout, 1, &hist(&mut std::iter::repeat_n(300_000, 10)));
        totals.merge_hist(service, 0, &hist(&mut (1..=100)));
        totals.add_counter(req_browse, 0, 1000);
        totals.add_counter(req_browse, 1, 1000);
        totals.add_counter(req_checkout, 1, 2000);
        totals.add_counter(err_timeout, 1, 3);
        totals.add_counter(err_5xx, 1, 1);
        let secs = Duration::from_secs;
        Run {
            totals,
            phases: vec![
                PhaseSpan {
                    name: "warm-up".into(),
                    start: secs(0),
                    end: secs(10),
                },
                PhaseSpan {
                    name: "spike".into(),
                    start: secs(10),
                    end: secs(14),
                },
            ],
            run: secs(20),
        }
    }

    fn judge(run: &Run, key: &str, target: &str) -> Verdict {
        evaluate(&[ok(key, target)], &run.totals, &run.phases, run.run).remove(0)
    }

    /// (measured, text, pass) of one SLO.
    fn check(run: &Run, key: &str, target: &str) -> (Option<f64>, String, bool) {
        let v = judge(run, key, target);
        (v.measured, v.measured_text, v.pass)
    }

    #[test]
    fn histogram_slos_pass_fail_and_lack_data() {
        let r = run();
        // Warm-up browse p50 is 500 µs exactly (values < 2048 are exact).
        let v = check(&r, "http.latency{phase=warm-up}.p50", "< 1ms");
        assert_eq!(v, (Some(500.0), "500µs".into(), true));
        assert!(!check(&r, "http.latency{phase=warm-up}.p50", "< 500us").2);
        assert!(check(&r, "http.latency{phase=warm-up}.p50", "<= 500us").2);
        // Over the run, 2010 samples: p95 falls in the spike's 100 ms.
        let (measured, text, pass) = check(&r, "http.latency.p95", "< 100ms");
        let p95 = new_histogram().highest_equivalent(100_000) as f64;
        assert_eq!((measured, pass), (Some(p95), false));
        assert_eq!(text, format_value(Unit::Micros, p95));
        assert!(check(&r, "http.latency.p95", "< 101ms").2);
        let (max, _, pass) = check(&r, "http.latency{step=checkout}.max", "> 250ms");
        assert!(pass && max.unwrap() >= 300_000.0);
        assert_eq!(
            check(&r, "http.latency{step=browse,phase=warm-up}.min", ">= 1us").0,
            Some(1.0)
        );
        assert_eq!(check(&r, "http.service_time.mean", "< 1ms").0, Some(50.5));
        assert_eq!(
            check(&r, "http.latency{population=shopper}.count", ">= 2010").0,
            Some(2010.0)
        );

        // No data: a step nobody has, a phase the run lacks, an empty series.
        let none = (None, "no data".to_owned(), false);
        assert_eq!(check(&r, "http.latency{step=pay}.p99", "< 1s"), none);
        assert_eq!(check(&r, "http.latency{phase=cooldown}.p99", "< 1s"), none);
        assert_eq!(check(&r, "generator.lag.p99", "< 10ms"), none);
        assert_eq!(
            check(&r, "http.latency{step=checkout,phase=warm-up}.max", "< 1s"),
            none
        );
        // A count of an empty but existing series is a measured zero.
        assert_eq!(
            check(&r, "generator.lag.count", "<= 0"),
            (Some(0.0), "0".into(), true)
        );
    }

    #[test]
    fn request_rates_use_the_run_or_the_phase_span() {
        let r = run();
        // 4000 requests over the 20 s run.
        assert_eq!(
            check(&r, "http.requests.rate", ">= 200/s"),
            (Some(200.0), "200/s".into(), true)
        );
        assert!(!check(&r, "http.requests.rate", "> 200/s").2);
        // Spike: 3000 requests over its 4 s span.
        assert_eq!(
            check(&r, "http.requests{phase=spike}.rate", ">= 1000/s"),
            (Some(750.0), "750/s".into(), false)
        );
        assert_eq!(
            check(
                &r,
                "http.requests{phase=warm-up,step=browse}.rate",
                "> 50/s"
            )
            .0,
            Some(100.0)
        );
        assert_eq!(
            check(&r, "http.requests{step=checkout}.count", ">= 2000").0,
            Some(2000.0)
        );
        assert_eq!(
            check(&r, "http.requests{step=pay}.rate", "> 0").1,
            "no data"
        );
        assert_eq!(
            check(&r, "http.requests{phase=cooldown}.rate", "> 0").1,
            "no data"
        );
        // A phase in the layout but with no span (never reached): no data.
        let mut unreached = run();
        unreached.phases.pop();
        assert_eq!(
            check(&unreached, "http.requests{phase=spike}.rate", "> 0").1,
            "no data"
        );
    }

    #[test]
    fn error_rates_are_errors_over_requests() {
        let r = run();
        // 4 errors / 4000 requests = 0.1 %.
        let (rate, text, pass) = check(&r, "http.errors.rate", "< 0.1%");
        assert_eq!((rate, text.as_str(), pass), (Some(0.001), "0.1%", false));
        assert!(check(&r, "http.errors.rate", "<= 0.1%").2);
        // Checkout in the spike: 3 / 2000.
        assert_eq!(
            check(&r, "http.errors{step=checkout,phase=spike}.rate", "< 1%").0,
            Some(0.0015)
        );
        assert_eq!(
            check(&r, "http.errors{phase=warm-up}.rate", "< 1%"),
            (Some(0.0), "0%".into(), true)
        );
        assert_eq!(
            check(&r, "http.errors.count", "<= 4"),
            (Some(4.0), "4".into(), true)
        );
        assert!(!check(&r, "http.errors{step=checkout}.count", "< 3").2);
        // Zero requests: no rate to speak of.
        let mut quiet = Totals::new(r.totals.layout().clone());
        quiet.add_counter(crate::metrics::CounterId(2), 0, 0);
        let v = evaluate(&[ok("http.errors.rate", "< 1%")], &quiet, &r.phases, r.run).remove(0);
        assert_eq!(
            (v.measured, v.measured_text.as_str(), v.pass),
            (None, "no data", false)
        );
    }

    #[test]
    fn error_count_without_error_series_is_zero_when_requests_exist() {
        let mut layout = Layout::default();
        let requests = layout.add_counter("http.requests", "", "", None);
        let mut totals = Totals::new(layout);
        totals.add_counter(requests, 0, 10);
        let slos = [
            ok("http.errors.count", "< 1"),
            ok("http.errors.rate", "< 1%"),
        ];
        let verdicts = evaluate(&slos, &totals, &[], Duration::from_secs(1));
        assert_eq!(verdicts[0].measured, Some(0.0));
        assert_eq!(verdicts[1].measured, Some(0.0));
        assert!(verdicts.iter().all(|v| v.pass));
    }
}
