//! Units in scenario files: durations (`250ms`, `2m`, `1h30m`), rates
//! (`500/s`, `30/m`), ramps (`20/s -> 200/s`, `10 -> 100`), ranges
//! (`500ms..2s`) and percentages (`20%`). Parsed strictly: a bare number
//! where a unit is required, a negative value or trailing garbage is an
//! error that names what was expected.
//!
//! Each type implements `Deserialize` from the TOML value (in `de`) so that
//! the toml crate attaches the value's span to any error (file, line and
//! column come for free). Each type also implements `FromStr` (same grammar,
//! same messages) and `Display`, which prints it back in scenario syntax.
//!
//! `threshold` holds the looser forms an SLO target is written in
//! (`850us`, `0.1%` or `0.001`, `500/s` or a bare number per second), which
//! share this module's unit tables but not its strictness.
//!
//! [`format`](mod@format) is the other direction: how durations, latencies, rates and
//! percentages read in every output a person reads; [`schema`] is the JSON
//! Schema of each type (`stampede schema`).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

mod de;
pub mod format;
pub mod schema;
mod threshold;

pub use threshold::{threshold_count, threshold_fraction, threshold_micros, threshold_per_second};

const DUR_EXPECTED: &str =
    "expected a number with a unit (us, ms, s, m, h), e.g. `250ms`, `1.5s` or `1m30s`";
const RATE_EXPECTED: &str = "expected a number per unit (/s, /m, /h), e.g. `500/s` or `30/m`";
const RATE_CURVE_EXPECTED: &str =
    "expected a rate such as `500/s` or a ramp such as `20/s -> 200/s`";
const VU_EXPECTED: &str = "expected a whole number such as `300` or a ramp such as `\"10 -> 100\"`";
const RANGE_EXPECTED: &str = "expected a duration such as `500ms` or a range such as `500ms..2s`";
const PERCENT_EXPECTED: &str = "expected a percentage such as `20%` or `0.5%`";
const FRACTION_EXPECTED: &str =
    "expected a percentage such as `\"20%\"` or a number between 0 and 1 such as `0.2`";

const SIZE_EXPECTED: &str =
    "expected a whole number of bytes or a number with a unit (B, KB, MB, GB, KiB, MiB, GiB), \
     e.g. `16MiB` or `512KB`";

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// What kind of value a [`UnitError`] is about, as its message names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Duration,
    DurationRange,
    Rate,
    VuCount,
    Percentage,
    Fraction,
    Size,
}

impl fmt::Display for ValueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ValueKind::Duration => "duration",
            ValueKind::DurationRange => "duration range",
            ValueKind::Rate => "rate",
            ValueKind::VuCount => "VU count",
            ValueKind::Percentage => "percentage",
            ValueKind::Fraction => "fraction",
            ValueKind::Size => "size",
        })
    }
}

/// A value with a unit that cannot be read: its kind, the value as typed
/// and what is wrong with it (with the expected form where that helps).
/// Shown as ``invalid duration `5`: missing unit; expected …``.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid {kind} `{value}`: {detail}")]
pub struct UnitError {
    pub kind: ValueKind,
    pub value: String,
    pub detail: String,
}

impl UnitError {
    fn new(kind: ValueKind, value: impl fmt::Display, detail: impl Into<String>) -> Self {
        UnitError {
            kind,
            value: value.to_string(),
            detail: detail.into(),
        }
    }
}

/// Parse a duration with a unit: `ns`? no — units are `ms`, `s`, `m`, `h`
/// (also `us`/`µs`), decimals allowed (`1.5s`), compounds allowed (`1m30s`).
/// Zero (`0s`) parses; callers decide whether zero is allowed. The error is
/// the message (as the command line and the target's knobs want it); the
/// `FromStr` of [`Dur`] gives the [`UnitError`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    duration(text).map_err(|e| e.to_string())
}

fn duration(text: &str) -> Result<Duration, UnitError> {
    duration_inner(text)
        .map_err(|why| UnitError::new(ValueKind::Duration, text, format!("{why}; {DUR_EXPECTED}")))
}

/// Parse a rate `N/unit` (`500/s`, `30/m`, `2/h`, `0.5/s`) into events per
/// second. Negative is an error; zero parses (callers decide).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    rate_inner(text)
        .map_err(|why| UnitError::new(ValueKind::Rate, text, format!("{why}; {RATE_EXPECTED}")))
        .map_err(|e| e.to_string())
}

/// Parse a percentage `20%` or `0.1%` into a fraction (0.2, 0.001).
pub fn parse_percent(text: &str) -> Result<f64, String> {
    percent_inner(text)
        .map_err(|why| {
            UnitError::new(
                ValueKind::Percentage,
                text,
                format!("{why}; {PERCENT_EXPECTED}"),
            )
        })
        .map_err(|e| e.to_string())
}

/// Format a duration for humans: `850µs`, `250ms`, `1.5s`, `2m`, `1h30m`.
/// At most three decimals in the chosen unit; from one minute up, whole
/// hours/minutes plus seconds (to the millisecond).
pub fn format_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    // Round to three decimals of the unit picked for the raw value, then pick
    // again: rounding may carry into the next unit (999.9996ms -> 1s).
    let step = match human_unit(ns) {
        HumanUnit::Simple(unit, _) => unit / 1_000,
        HumanUnit::Compound => 1_000_000,
    };
    let ns = round_to(ns, step);
    match human_unit(ns) {
        HumanUnit::Simple(unit, name) => {
            let mut out = (ns / unit).to_string();
            push_fraction(&mut out, ns % unit, unit, 3);
            out.push_str(name);
            out
        }
        HumanUnit::Compound => {
            let (h, m, s, sub) = split_hms(ns);
            let mut out = String::new();
            if h > 0 {
                out.push_str(&format!("{h}h"));
            }
            if m > 0 {
                out.push_str(&format!("{m}m"));
            }
            if s > 0 || sub > 0 {
                out.push_str(&s.to_string());
                push_fraction(&mut out, sub, NANOS_PER_SEC, 3);
                out.push('s');
            }
            out
        }
    }
}

enum HumanUnit {
    Simple(u128, &'static str),
    Compound,
}

fn human_unit(ns: u128) -> HumanUnit {
    if ns < 1_000_000 {
        HumanUnit::Simple(1_000, "µs")
    } else if ns < NANOS_PER_SEC {
        HumanUnit::Simple(1_000_000, "ms")
    } else if ns < 60 * NANOS_PER_SEC {
        HumanUnit::Simple(NANOS_PER_SEC, "s")
    } else {
        HumanUnit::Compound
    }
}

fn round_to(ns: u128, step: u128) -> u128 {
    if step <= 1 {
        return ns;
    }
    (ns + step / 2) / step * step
}

/// Hours, minutes, whole seconds and the sub-second nanoseconds of `ns`.
fn split_hms(ns: u128) -> (u128, u128, u128, u128) {
    let secs = ns / NANOS_PER_SEC;
    (secs / 3600, secs % 3600 / 60, secs % 60, ns % NANOS_PER_SEC)
}

/// Append `.ddd` for `rem / unit`, with at most `max_digits` decimals
/// (truncated) and without trailing zeros; nothing when it is zero.
fn push_fraction(out: &mut String, rem: u128, unit: u128, max_digits: u32) {
    let digits = unit.ilog10();
    let mut frac = format!("{rem:0width$}", width = digits as usize);
    frac.truncate(max_digits.min(digits) as usize);
    let frac = frac.trim_end_matches('0');
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
}

/// A duration in scenario syntax that parses back to exactly `d`:
/// `250ms`, `1.5s`, `1h30m`, `1m250ms`, `850us`, `0.005us`.
fn scenario_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns == 0 {
        return "0s".to_string();
    }
    let (h, m, s, sub) = split_hms(ns);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&s.to_string());
        push_fraction(&mut out, sub, NANOS_PER_SEC, 9);
        out.push('s');
    } else if sub >= 1_000_000 {
        out.push_str(&(sub / 1_000_000).to_string());
        push_fraction(&mut out, sub % 1_000_000, 1_000_000, 6);
        out.push_str("ms");
    } else if sub > 0 {
        out.push_str(&(sub / 1_000).to_string());
        push_fraction(&mut out, sub % 1_000, 1_000, 3);
        out.push_str("us");
    }
    out
}

/// `digits[.digits]`, nothing else (no sign, exponent, `inf` or `_`).
fn is_decimal(s: &str) -> bool {
    let (int, frac) = match s.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (s, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    digits(int) && frac.is_none_or(digits)
}

/// A duration unit's length in nanoseconds and its rank (larger units rank
/// higher, so a compound duration must go down: `1h30m`, not `30m1h`).
fn duration_unit(unit: &str) -> Option<(u128, u8)> {
    Some(match unit {
        "h" => (3600 * NANOS_PER_SEC, 4),
        "m" => (60 * NANOS_PER_SEC, 3),
        "s" => (NANOS_PER_SEC, 2),
        "ms" => (1_000_000, 1),
        "us" | "µs" | "μs" => (1_000, 0),
        _ => return None,
    })
}

/// The seconds in the unit after a rate's `/`: `s`, `m`, `h`.
fn rate_unit_secs(unit: &str) -> Option<f64> {
    Some(match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    })
}

fn duration_inner(text: &str) -> Result<Duration, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("the value is empty".into());
    }
    if s.starts_with('-') {
        return Err("a duration cannot be negative".into());
    }
    let mut rest = s;
    let mut total: u128 = 0;
    let mut last_rank: Option<u8> = None;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        rest = &rest[num_len..];
        if num.is_empty() {
            return Err(format!("expected a number at `{rest}`"));
        }
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        rest = &rest[unit_len..];
        if !is_decimal(num) {
            return Err(format!("`{num}` is not a number"));
        }
        let (unit_ns, rank) = match unit {
            "" if last_rank.is_none() && rest.is_empty() => return Err("missing unit".into()),
            "" => return Err(format!("missing unit after `{num}`")),
            other => duration_unit(other).ok_or_else(|| format!("unknown unit `{other}`"))?,
        };
        if last_rank.is_some_and(|last| rank >= last) {
            return Err(
                "the parts of a compound duration must go from the largest unit to the smallest, \
                 each unit once (e.g. `1h30m`)"
                    .into(),
            );
        }
        last_rank = Some(rank);
        total = total
            .checked_add(decimal_times(num, unit_ns).ok_or("the value is too large")?)
            .ok_or("the value is too large")?;
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| "the value is too large")?;
    Ok(Duration::new(secs, (total % NANOS_PER_SEC) as u32))
}

/// `num` (validated by `is_decimal`) times `unit_ns`, rounded to whole
/// nanoseconds; None on overflow.
fn decimal_times(num: &str, unit_ns: u128) -> Option<u128> {
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let int: u128 = int.parse().ok()?;
    let mut total = int.checked_mul(unit_ns)?;
    // 18 decimals are far below a nanosecond for every unit; the rest is noise.
    let frac = &frac[..frac.len().min(18)];
    if !frac.is_empty() {
        let scale = 10u128.pow(frac.len() as u32);
        let digits: u128 = frac.parse().ok()?;
        total = total.checked_add((digits * unit_ns + scale / 2) / scale)?;
    }
    Some(total)
}

fn rate_inner(text: &str) -> Result<f64, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("the value is empty".into());
    }
    if s.starts_with('-') {
        return Err("a rate cannot be negative".into());
    }
    let Some((num, unit)) = s.split_once('/') else {
        return Err(if is_decimal(s) {
            "missing unit".to_string()
        } else {
            format!("`{s}` is not a number per unit")
        });
    };
    let (num, unit) = (num.trim(), unit.trim());
    if !is_decimal(num) {
        return Err(format!("`{num}` is not a number"));
    }
    let per_sec = match unit {
        "" => return Err("missing unit after `/`".into()),
        other => rate_unit_secs(other).ok_or_else(|| format!("unknown unit `/{other}`"))?,
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{num}` is not a number"))?;
    let rate = n / per_sec;
    if !rate.is_finite() {
        return Err("the value is too large".into());
    }
    Ok(rate)
}

fn percent_inner(text: &str) -> Result<f64, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("the value is empty".into());
    }
    if s.starts_with('-') {
        return Err("a percentage cannot be negative".into());
    }
    let Some(num) = s.strip_suffix('%') else {
        return Err("missing `%`".into());
    };
    let num = num.trim();
    if !is_decimal(num) {
        return Err(format!("`{num}` is not a number"));
    }
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{num}` is not a number"))?;
    let fraction = n / 100.0;
    if !fraction.is_finite() {
        return Err("the value is too large".into());
    }
    Ok(fraction)
}

/// Split `a -> b`; None when there is no arrow. More than one arrow is an
/// error.
fn split_ramp(s: &str) -> Result<Option<(&str, &str)>, String> {
    match s.split_once("->") {
        None => Ok(None),
        Some((_, right)) if right.contains("->") => {
            Err("a ramp has exactly one `->` (start -> end)".into())
        }
        Some((left, right)) => Ok(Some((left.trim(), right.trim()))),
    }
}

fn fmt_rate(f: &mut fmt::Formatter<'_>, rate: f64) -> fmt::Result {
    // Below one per second, prefer a per-minute or per-hour spelling when it
    // round-trips exactly (`30/m` rather than `0.5/s`).
    if rate > 0.0 && rate < 1.0 {
        for (mult, unit) in [(60.0, "m"), (3600.0, "h")] {
            let n = (rate * mult).round();
            if n >= 1.0 && n / mult == rate {
                return write!(f, "{n}/{unit}");
            }
        }
    }
    write!(f, "{rate}/s")
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

/// A size in bytes: a whole number (`1048576`) or a string with a unit
/// (`"16MiB"`, `"512KB"`, `"1.5GB"`; KB, MB, GB are powers of 1000, KiB,
/// MiB, GiB of 1024).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

/// The size units, longest names first for matching.
const SIZE_UNITS: [(&str, u128); 7] = [
    ("KiB", 1 << 10),
    ("MiB", 1 << 20),
    ("GiB", 1 << 30),
    ("KB", 1_000),
    ("MB", 1_000_000),
    ("GB", 1_000_000_000),
    ("B", 1),
];

fn size_inner(text: &str) -> Result<u64, String> {
    let s = text.trim();
    if s.is_empty() {
        return Err("the value is empty".into());
    }
    if s.starts_with('-') {
        return Err("a size cannot be negative".into());
    }
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = (&s[..split], s[split..].trim());
    if !is_decimal(num) {
        return Err(format!("`{num}` is not a number"));
    }
    let scale = match unit {
        "" if !num.contains('.') => 1,
        "" => return Err("a number of bytes is whole".into()),
        unit => SIZE_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|&(_, scale)| scale)
            .ok_or_else(|| format!("unknown unit `{unit}`"))?,
    };
    // Whole bytes: a fraction of a byte is dropped (`1.5KiB` is 1536).
    let (int, frac) = num.split_once('.').unwrap_or((num, ""));
    let int: u128 = int.parse().map_err(|_| "the value is too large")?;
    let frac = &frac[..frac.len().min(18)];
    let part = if frac.is_empty() {
        0
    } else {
        frac.parse::<u128>().map_err(|_| "the value is too large")? * scale
            / 10u128.pow(frac.len() as u32)
    };
    int.checked_mul(scale)
        .and_then(|n| n.checked_add(part))
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| "the value is too large".into())
}

impl FromStr for ByteSize {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        size_inner(s)
            .map(ByteSize)
            .map_err(|why| UnitError::new(ValueKind::Size, s, format!("{why}; {SIZE_EXPECTED}")))
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides it (`16MiB`), else bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, scale) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if self.0 >= scale && self.0.is_multiple_of(scale) {
                return write!(f, "{}{name}", self.0 / scale);
            }
        }
        write!(f, "{}B", self.0)
    }
}

/// A fraction written as a percentage string `"20%"`, or as a float in
/// [0, 1] (`0.2`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Fraction(pub f64);

impl FromStr for Dur {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        duration(s).map(Dur)
    }
}

impl FromStr for PositiveDur {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let d = duration(s)?;
        if d.is_zero() {
            return Err(UnitError::new(
                ValueKind::Duration,
                s,
                "must be greater than zero",
            ));
        }
        Ok(PositiveDur(d))
    }
}

impl FromStr for DurRange {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err = |why: String| {
            UnitError::new(
                ValueKind::DurationRange,
                s,
                format!("{why}; {RANGE_EXPECTED}"),
            )
        };
        let Some((min, max)) = s.split_once("..") else {
            let d = duration_inner(s).map_err(err)?;
            return Ok(DurRange { min: d, max: d });
        };
        let (min_text, max_text) = (min.trim(), max.trim());
        let min = duration_inner(min_text)
            .map_err(|why| err(format!("the minimum `{min_text}`: {why}")))?;
        let max = duration_inner(max_text)
            .map_err(|why| err(format!("the maximum `{max_text}`: {why}")))?;
        if min > max {
            return Err(UnitError::new(
                ValueKind::DurationRange,
                s,
                format!("the minimum `{min_text}` is greater than the maximum `{max_text}`"),
            ));
        }
        Ok(DurRange { min, max })
    }
}

impl FromStr for RateCurve {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err = |why: String| {
            UnitError::new(ValueKind::Rate, s, format!("{why}; {RATE_CURVE_EXPECTED}"))
        };
        let curve = match split_ramp(s).map_err(err)? {
            None => {
                let r = rate_inner(s).map_err(err)?;
                RateCurve { from: r, to: r }
            }
            Some((from, to)) => RateCurve {
                from: rate_inner(from).map_err(|why| err(format!("the start `{from}`: {why}")))?,
                to: rate_inner(to).map_err(|why| err(format!("the end `{to}`: {why}")))?,
            },
        };
        if curve.from == 0.0 && curve.to == 0.0 {
            return Err(UnitError::new(
                ValueKind::Rate,
                s,
                "rate must be greater than zero (a ramp may start or end at zero, not both)",
            ));
        }
        Ok(curve)
    }
}

fn vu_inner(s: &str) -> Result<u32, String> {
    if s.is_empty() {
        return Err("the value is empty".into());
    }
    if s.starts_with('-') {
        return Err("a VU count cannot be negative".into());
    }
    if !is_decimal(s) {
        return Err(format!("`{s}` is not a number"));
    }
    if s.contains('.') {
        return Err(format!("`{s}` is not a whole number"));
    }
    s.parse().map_err(|_| format!("`{s}` is too large"))
}

impl VuCurve {
    fn checked(self, text: &str) -> Result<Self, UnitError> {
        if self.from == 0 && self.to == 0 {
            return Err(UnitError::new(
                ValueKind::VuCount,
                text,
                "VU count must be greater than zero (a ramp may start or end at zero, not both)",
            ));
        }
        Ok(self)
    }
}

impl FromStr for VuCurve {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let err =
            |why: String| UnitError::new(ValueKind::VuCount, s, format!("{why}; {VU_EXPECTED}"));
        let curve = match split_ramp(s).map_err(err)? {
            None => {
                let n = vu_inner(s.trim()).map_err(err)?;
                VuCurve { from: n, to: n }
            }
            Some((from, to)) => VuCurve {
                from: vu_inner(from).map_err(|why| err(format!("the start `{from}`: {why}")))?,
                to: vu_inner(to).map_err(|why| err(format!("the end `{to}`: {why}")))?,
            },
        };
        curve.checked(s)
    }
}

impl FromStr for Fraction {
    type Err = UnitError;
    fn from_str(s: &str) -> Result<Self, UnitError> {
        let f = percent_inner(s).map_err(|why| {
            UnitError::new(
                ValueKind::Fraction,
                s,
                format!("{why}; {FRACTION_EXPECTED}"),
            )
        })?;
        if f > 1.0 {
            return Err(UnitError::new(
                ValueKind::Fraction,
                s,
                "must be between 0% and 100%",
            ));
        }
        Ok(Fraction(f))
    }
}

impl Fraction {
    fn from_number(n: f64, shown: &str) -> Result<Self, UnitError> {
        if (0.0..=1.0).contains(&n) {
            Ok(Fraction(n))
        } else {
            Err(UnitError::new(
                ValueKind::Fraction,
                shown,
                "must be between 0 and 1 (or a percentage such as `\"20%\"`)",
            ))
        }
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&scenario_duration(self.0))
    }
}

impl fmt::Display for PositiveDur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&scenario_duration(self.0))
    }
}

impl fmt::Display for DurRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&scenario_duration(self.min))?;
        if self.max != self.min {
            write!(f, "..{}", scenario_duration(self.max))?;
        }
        Ok(())
    }
}

impl fmt::Display for RateCurve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt_rate(f, self.from)?;
        if self.to != self.from {
            f.write_str(" -> ")?;
            fmt_rate(f, self.to)?;
        }
        Ok(())
    }
}

impl fmt::Display for VuCurve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{} -> {}", self.from, self.to)
        }
    }
}

impl fmt::Display for Fraction {
    /// As a percentage, e.g. `20%` (at most four decimals).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = format!("{:.4}", self.0 * 100.0);
        let pct = pct.trim_end_matches('0').trim_end_matches('.');
        write!(f, "{pct}%")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_decimal_and_binary_units() {
        let ok = [
            ("0", 0),
            ("1048576", 1 << 20),
            ("512B", 512),
            ("16MiB", 16 << 20),
            (" 16 MiB ", 16 << 20),
            ("512KB", 512_000),
            ("1.5KiB", 1536),
            ("1.5GB", 1_500_000_000),
            ("2GiB", 2 << 30),
        ];
        for (text, bytes) in ok {
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{text}");
        }
        for bad in [
            "",
            "-1",
            "16mib",
            "16 MiBs",
            "1.5",
            "MiB",
            "1e6",
            "99999999999GiB",
        ] {
            let e = bad.parse::<ByteSize>().unwrap_err();
            assert_eq!(e.kind, ValueKind::Size, "{bad}");
        }
        for bytes in [0, 1, 1000, 1024, 16 << 20, 3 << 30, (1 << 20) + 1] {
            let shown = ByteSize(bytes).to_string();
            assert_eq!(shown.parse::<ByteSize>(), Ok(ByteSize(bytes)), "{shown}");
        }
        assert_eq!(ByteSize(16 << 20).to_string(), "16MiB");
    }

    pub(super) fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations_with_units() {
        assert_eq!(parse_duration("250ms").unwrap(), ms(250));
        assert_eq!(parse_duration("2s").unwrap(), ms(2000));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_duration("850us").unwrap(), Duration::from_micros(850));
        assert_eq!(parse_duration("850µs").unwrap(), Duration::from_micros(850));
        assert_eq!(parse_duration("850μs").unwrap(), Duration::from_micros(850));
        assert_eq!(parse_duration("0s").unwrap(), Duration::ZERO);
        assert_eq!(parse_duration("  5s  ").unwrap(), ms(5000));
    }

    #[test]
    fn durations_with_decimals_and_compounds() {
        assert_eq!(parse_duration("1.5s").unwrap(), ms(1500));
        assert_eq!(
            parse_duration("0.25ms").unwrap(),
            Duration::from_micros(250)
        );
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(
            parse_duration("1h2m3s4ms5us").unwrap(),
            Duration::new(3723, 4_005_000)
        );
        assert_eq!(parse_duration("1m 30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("0.1s").unwrap(), ms(100));
        assert_eq!(parse_duration("0.0000000001s").unwrap(), Duration::ZERO);
        assert_eq!(
            parse_duration("0.0000000006s").unwrap(),
            Duration::from_nanos(1)
        );
    }

    #[test]
    fn duration_errors_quote_input_and_show_example() {
        for (input, why) in [
            ("5", "missing unit"),
            ("", "the value is empty"),
            ("   ", "the value is empty"),
            ("-5s", "cannot be negative"),
            ("5 days", "unknown unit `days`"),
            ("5ns", "unknown unit `ns`"),
            ("1.2.3s", "`1.2.3` is not a number"),
            ("5.s", "`5.` is not a number"),
            ("s", "expected a number at `s`"),
            ("1m30", "missing unit after `30`"),
            ("30s1m", "largest unit to the smallest"),
            ("1s1s", "largest unit to the smallest"),
            ("99999999999999999999999h", "too large"),
        ] {
            let err = parse_duration(input).unwrap_err();
            assert!(err.contains(&format!("`{input}`")), "{input}: {err}");
            assert!(err.contains(why), "{input}: {err}");
            assert!(err.contains("e.g. `250ms`"), "{input}: {err}");
        }
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("500/s").unwrap(), 500.0);
        assert_eq!(parse_rate("30/m").unwrap(), 0.5);
        assert_eq!(parse_rate("36/h").unwrap(), 0.01);
        assert_eq!(parse_rate("0.5/s").unwrap(), 0.5);
        assert_eq!(parse_rate(" 10 / s ").unwrap(), 10.0);
        assert_eq!(parse_rate("0/s").unwrap(), 0.0);
        for (input, why) in [
            ("500", "missing unit"),
            ("-5/s", "cannot be negative"),
            ("", "empty"),
            ("5/ms", "unknown unit `/ms`"),
            ("5/", "missing unit after `/`"),
            ("abc/s", "`abc` is not a number"),
            ("fast", "`fast` is not a number per unit"),
            ("1e3/s", "`1e3` is not a number"),
        ] {
            let err = parse_rate(input).unwrap_err();
            assert!(err.contains(&format!("invalid rate `{input}`")), "{err}");
            assert!(err.contains(why), "{input}: {err}");
            assert!(err.contains("e.g. `500/s`"), "{err}");
        }
    }

    #[test]
    fn percents() {
        assert_eq!(parse_percent("20%").unwrap(), 0.2);
        assert_eq!(parse_percent("0.1%").unwrap(), 0.001);
        assert_eq!(parse_percent(" 100 % ").unwrap(), 1.0);
        for (input, why) in [
            ("20", "missing `%`"),
            ("-5%", "cannot be negative"),
            ("x%", "`x` is not a number"),
            ("", "empty"),
        ] {
            let err = parse_percent(input).unwrap_err();
            assert!(err.contains(&format!("`{input}`")), "{err}");
            assert!(err.contains(why), "{input}: {err}");
            assert!(
                err.contains("e.g. `20%`") || err.contains("such as `20%`"),
                "{err}"
            );
        }
    }

    #[test]
    fn rate_curves() {
        assert_eq!(
            "500/s".parse::<RateCurve>().unwrap(),
            RateCurve {
                from: 500.0,
                to: 500.0
            }
        );
        assert_eq!(
            "20/s -> 200/s".parse::<RateCurve>().unwrap(),
            RateCurve {
                from: 20.0,
                to: 200.0
            }
        );
        assert_eq!(
            "20/s->200/s".parse::<RateCurve>().unwrap(),
            RateCurve {
                from: 20.0,
                to: 200.0
            }
        );
        assert_eq!(
            "0/s -> 60/m".parse::<RateCurve>().unwrap(),
            RateCurve { from: 0.0, to: 1.0 }
        );
        let err = "0/s".parse::<RateCurve>().unwrap_err().to_string();
        assert!(err.contains("rate must be greater than zero"), "{err}");
        let err = "0/s -> 0/m".parse::<RateCurve>().unwrap_err().to_string();
        assert!(err.contains("rate must be greater than zero"), "{err}");
        let err = "20 -> 200/s".parse::<RateCurve>().unwrap_err().to_string();
        assert!(err.contains("the start `20`: missing unit"), "{err}");
        assert!(err.contains("`20/s -> 200/s`"), "{err}");
        let err = "20/s -> -5/s".parse::<RateCurve>().unwrap_err().to_string();
        assert!(
            err.contains("the end `-5/s`: a rate cannot be negative"),
            "{err}"
        );
        let err = "1/s -> 2/s -> 3/s"
            .parse::<RateCurve>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("exactly one `->`"), "{err}");
        let err = "-> 5/s".parse::<RateCurve>().unwrap_err().to_string();
        assert!(err.contains("the start ``: the value is empty"), "{err}");
    }

    #[test]
    fn vu_curves() {
        assert_eq!(
            "300".parse::<VuCurve>().unwrap(),
            VuCurve { from: 300, to: 300 }
        );
        assert_eq!(
            "10 -> 100".parse::<VuCurve>().unwrap(),
            VuCurve { from: 10, to: 100 }
        );
        assert_eq!(
            "100->0".parse::<VuCurve>().unwrap(),
            VuCurve { from: 100, to: 0 }
        );
        for (input, why) in [
            ("0", "VU count must be greater than zero"),
            ("0 -> 0", "VU count must be greater than zero"),
            ("-5", "cannot be negative"),
            ("10 -> -5", "the end `-5`: a VU count cannot be negative"),
            ("1.5", "not a whole number"),
            ("ten", "`ten` is not a number"),
            ("99999999999", "too large"),
        ] {
            let err = input.parse::<VuCurve>().unwrap_err().to_string();
            assert!(
                err.contains(&format!("invalid VU count `{input}`")),
                "{err}"
            );
            assert!(err.contains(why), "{input}: {err}");
        }
    }

    #[test]
    fn dur_ranges_and_positive() {
        assert_eq!(
            "500ms".parse::<DurRange>().unwrap(),
            DurRange {
                min: ms(500),
                max: ms(500)
            }
        );
        assert_eq!(
            "500ms..2s".parse::<DurRange>().unwrap(),
            DurRange {
                min: ms(500),
                max: ms(2000)
            }
        );
        assert_eq!(
            "1.5s .. 2.5s".parse::<DurRange>().unwrap(),
            DurRange {
                min: ms(1500),
                max: ms(2500)
            }
        );
        let err = "2s..500ms".parse::<DurRange>().unwrap_err().to_string();
        assert!(
            err.contains("the minimum `2s` is greater than the maximum `500ms`"),
            "{err}"
        );
        let err = "500..2s".parse::<DurRange>().unwrap_err().to_string();
        assert!(err.contains("the minimum `500`: missing unit"), "{err}");
        assert!(err.contains("`500ms..2s`"), "{err}");
        let err = "1s..".parse::<DurRange>().unwrap_err().to_string();
        assert!(err.contains("the maximum ``: the value is empty"), "{err}");
        let err = "5".parse::<DurRange>().unwrap_err().to_string();
        assert!(
            err.contains("invalid duration range `5`: missing unit"),
            "{err}"
        );

        assert_eq!("1s".parse::<PositiveDur>().unwrap(), PositiveDur(ms(1000)));
        let err = "0s".parse::<PositiveDur>().unwrap_err().to_string();
        assert!(err.contains("`0s`: must be greater than zero"), "{err}");
        let err = "0".parse::<PositiveDur>().unwrap_err().to_string();
        assert!(err.contains("missing unit"), "{err}");
    }

    #[test]
    fn fractions() {
        assert_eq!("20%".parse::<Fraction>().unwrap(), Fraction(0.2));
        assert_eq!("100%".parse::<Fraction>().unwrap(), Fraction(1.0));
        let err = "150%".parse::<Fraction>().unwrap_err().to_string();
        assert!(err.contains("between 0% and 100%"), "{err}");
        let err = "0.2".parse::<Fraction>().unwrap_err().to_string();
        assert!(err.contains("missing `%`"), "{err}");
    }

    #[test]
    fn display_round_trips_in_scenario_syntax() {
        assert_eq!(Dur(ms(250)).to_string(), "250ms");
        assert_eq!(Dur(ms(1500)).to_string(), "1.5s");
        assert_eq!(Dur(Duration::from_secs(5400)).to_string(), "1h30m");
        assert_eq!(Dur(Duration::new(60, 250_000_000)).to_string(), "1m250ms");
        assert_eq!(Dur(Duration::from_micros(850)).to_string(), "850us");
        assert_eq!(Dur(Duration::from_nanos(5)).to_string(), "0.005us");
        assert_eq!(Dur(Duration::ZERO).to_string(), "0s");
        assert_eq!(PositiveDur(ms(2000)).to_string(), "2s");
        for d in [
            Duration::from_nanos(1),
            Duration::from_nanos(1_234_567),
            Duration::new(3723, 4_005_006),
            Duration::new(86_400 * 400, 999_999_999),
            Duration::from_millis(100),
        ] {
            assert_eq!(Dur(d).to_string().parse::<Dur>().unwrap(), Dur(d), "{d:?}");
        }

        assert_eq!(
            RateCurve {
                from: 20.0,
                to: 200.0
            }
            .to_string(),
            "20/s -> 200/s"
        );
        assert_eq!(
            RateCurve {
                from: 500.0,
                to: 500.0
            }
            .to_string(),
            "500/s"
        );
        assert_eq!(RateCurve { from: 0.5, to: 0.5 }.to_string(), "30/m");
        for text in ["20/s -> 200/s", "2/h", "0.25/s", "1/h -> 7/s", "0/s -> 1/m"] {
            let c: RateCurve = text.parse().unwrap();
            assert_eq!(c.to_string().parse::<RateCurve>().unwrap(), c, "{text}");
        }

        assert_eq!(VuCurve { from: 10, to: 100 }.to_string(), "10 -> 100");
        assert_eq!(VuCurve { from: 300, to: 300 }.to_string(), "300");
        assert_eq!(
            DurRange {
                min: ms(500),
                max: ms(2000)
            }
            .to_string(),
            "500ms..2s"
        );
        assert_eq!(
            DurRange {
                min: ms(500),
                max: ms(500)
            }
            .to_string(),
            "500ms"
        );
        assert_eq!(Fraction(0.2).to_string(), "20%");
        assert_eq!(Fraction(0.001).to_string(), "0.1%");
    }

    #[test]
    fn human_durations() {
        assert_eq!(format_duration(ms(250)), "250ms");
        assert_eq!(format_duration(ms(1500)), "1.5s");
        assert_eq!(format_duration(Duration::from_secs(120)), "2m");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_micros(850)), "850µs");
        assert_eq!(format_duration(Duration::from_nanos(850)), "850ns");
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(Duration::from_micros(12_345)), "12.345ms");
        assert_eq!(
            format_duration(Duration::from_nanos(12_345_678)),
            "12.346ms"
        );
        assert_eq!(
            format_duration(Duration::from_nanos(1_234_567_890)),
            "1.235s"
        );
        assert_eq!(format_duration(Duration::from_nanos(999_999_600)), "1s");
        assert_eq!(format_duration(Duration::from_nanos(59_999_999_999)), "1m");
        assert_eq!(format_duration(Duration::new(90, 500_000_000)), "1m30.5s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
    }

    #[test]
    fn errors_carry_the_kind_and_the_value_typed() {
        let err = "0s".parse::<PositiveDur>().unwrap_err();
        assert_eq!(
            err,
            UnitError {
                kind: ValueKind::Duration,
                value: "0s".into(),
                detail: "must be greater than zero".into(),
            }
        );
        let err = "fast".parse::<RateCurve>().unwrap_err();
        assert_eq!((err.kind, err.value.as_str()), (ValueKind::Rate, "fast"));
        assert_eq!(
            err.to_string(),
            format!("invalid rate `fast`: {}", err.detail)
        );
    }
}
