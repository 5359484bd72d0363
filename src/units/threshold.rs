//! SLO thresholds: the value after an `[slo]` target's operator, in the
//! metric's canonical unit (µs, a count, a fraction, per second).
//!
//! The SLO grammar is looser than the scenario grammar of the parent module
//! in ways its users rely on: a rate may be a bare number per second
//! (`>= 1000`), an error rate a bare fraction (`< 0.001`), and a number may
//! start or end with its dot (`.5s`). It is also narrower: one unit per
//! duration (no `1m30s`), and the micro sign `µs` or `us` only. These
//! functions keep that grammar while sharing the unit tables. Each error is
//! the form that was expected, for the SLO's message to quote.

use super::{duration_unit, rate_unit_secs};

const DURATION_EXPECTED: &str = "expected a duration with a unit (us, ms, s, m, h), e.g. `200ms`";
const COUNT_EXPECTED: &str = "expected a whole number, e.g. `1000`";
const FRACTION_EXPECTED: &str =
    "expected a percentage (`0.1%`) or a fraction between 0 and 1 (`0.001`)";
const PER_SECOND_EXPECTED: &str = "expected a rate (`500/s`, `30/m`, `2/h`) or a number per second";

/// A non-negative decimal number: digits with at most one `.`; no sign,
/// exponent, `inf` or `NaN`.
fn number(text: &str) -> Option<f64> {
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

/// A duration with one unit (`850us`, `850µs`, `200ms`, `1.5s`, `2m`, `1h`)
/// in microseconds.
pub fn threshold_micros(text: &str) -> Result<f64, &'static str> {
    let (digits, unit) = number_and_unit(text);
    // The Greek mu (U+03BC) is a scenario spelling only; SLOs take the
    // micro sign (U+00B5).
    let (unit_ns, _) = duration_unit(unit)
        .filter(|_| unit != "μs")
        .ok_or(DURATION_EXPECTED)?;
    number(digits)
        .map(|n| n * (unit_ns as f64 / 1e3))
        .ok_or(DURATION_EXPECTED)
}

/// A whole number of events or samples (`1000`).
pub fn threshold_count(text: &str) -> Result<f64, &'static str> {
    text.parse::<u64>()
        .ok()
        .filter(|_| text.bytes().all(|b| b.is_ascii_digit()))
        .map(|n| n as f64)
        .ok_or(COUNT_EXPECTED)
}

/// A share: a percentage (`0.1%`) or a fraction in [0, 1] (`0.001`).
pub fn threshold_fraction(text: &str) -> Result<f64, &'static str> {
    let fraction = match text.strip_suffix('%') {
        Some(percent) => number(percent).map(|p| p / 100.0),
        None => number(text),
    };
    fraction.filter(|f| *f <= 1.0).ok_or(FRACTION_EXPECTED)
}

/// A rate (`500/s`, `30/m`, `2/h`) or a bare number per second, per second.
pub fn threshold_per_second(text: &str) -> Result<f64, &'static str> {
    let (digits, per) = match text.split_once('/') {
        Some((digits, unit)) => (
            digits,
            rate_unit_secs(unit.trim()).ok_or(PER_SECOND_EXPECTED)?,
        ),
        None => (text, 1.0),
    };
    number(digits).map(|n| n / per).ok_or(PER_SECOND_EXPECTED)
}
