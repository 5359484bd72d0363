//! Units in scenario files: durations (`250ms`, `2m`, `1h30m`), rates
//! (`500/s`, `30/m`), ramps (`20/s -> 200/s`, `10 -> 100`), ranges
//! (`500ms..2s`) and percentages (`20%`). Parsed strictly: a bare number
//! where a unit is required, a negative value or trailing garbage is an
//! error that names what was expected.
//!
//! Each type implements `Deserialize` from the TOML value so that the toml
//! crate attaches the value's span to any error (file, line and column come
//! for free).
//!
//! CONTRACT (stub): helper implements the bodies; signatures are fixed.

use std::time::Duration;

/// Parse a duration with a unit: `ns`? no — units are `ms`, `s`, `m`, `h`
/// (also `us`/`µs`), decimals allowed (`1.5s`), compounds allowed (`1m30s`).
/// Zero (`0s`) parses; callers decide whether zero is allowed.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let _ = text;
    todo!()
}

/// Parse a rate `N/unit` (`500/s`, `30/m`, `2/h`, `0.5/s`) into events per
/// second. Negative is an error; zero parses (callers decide).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let _ = text;
    todo!()
}

/// Parse a percentage `20%` or `0.1%` into a fraction (0.2, 0.001).
pub fn parse_percent(text: &str) -> Result<f64, String> {
    let _ = text;
    todo!()
}

/// A duration written with a unit. Deserializes from a string only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

/// A duration that must be greater than zero (`0s` is refused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct PositiveDur(pub Duration);

/// A fixed duration or a uniform range: `"500ms"` or `"500ms..2s"`
/// (min <= max enforced).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DurRange {
    pub min: Duration,
    pub max: Duration,
}

/// An arrival-rate curve in events per second: `"500/s"` (constant, from == to)
/// or `"20/s -> 200/s"` (linear ramp). Both ends >= 0, not both zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateCurve {
    pub from: f64,
    pub to: f64,
}

/// A VU-count curve: TOML integer `300` or string `"10 -> 100"`.
/// Both ends >= 0, not both zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VuCurve {
    pub from: u32,
    pub to: u32,
}

/// A fraction written as a percentage string `"20%"`, or as a float in
/// [0, 1] (`0.2`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fraction(pub f64);

// serde::Deserialize impls for Dur, PositiveDur, DurRange, RateCurve,
// VuCurve and Fraction go here (helper), each reporting errors via
// `serde::de::Error::custom` with a message such as
// "invalid duration `5`: expected a number with a unit (ms, s, m, h), e.g. `250ms`".

// Placeholder impls so the skeleton compiles; the helper replaces these.
macro_rules! placeholder_de {
    ($($t:ty),*) => {$(
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(_d: D) -> Result<Self, D::Error> {
                todo!()
            }
        }
    )*};
}
placeholder_de!(Dur, PositiveDur, DurRange, RateCurve, VuCurve, Fraction);

/// Human form of a duration (stub; helper replaces).
pub fn format_duration(d: Duration) -> String {
    format!("{d:?}")
}
