//! How values read, for every output a person reads: the console's
//! tables, `summary.md`, `report.html`, `junit.xml`, the comparison and
//! the capacity search's reports.
//!
//! One function per kind of value, so the same number reads the same
//! everywhere: a p95 of 12 345 µs is `12.3ms` and 20 requests per second
//! are `20/s` in the terminal, in the Markdown summary, in the HTML report
//! and in a comparison.
//!
//! - Durations and latencies (µs): [`latency`] / [`micros`] — `850µs`,
//!   `183.2ms`, `1.5s`; [`optional_latency`] reads `-` without samples.
//!   Chart axes, which are drawn in ms, use [`number`].
//! - Rates: [`per_second`] — `1021.3/s`, `20/s`; a comparison's columns
//!   keep one decimal ([`per_second_fixed`], `100.0/s`).
//! - Fractions as percentages: [`fraction`] (`0.04%`, SLO values),
//!   [`percent`] (a fixed number of decimals).
//! - Counts: [`count`] (plain); [`grouped`] (`12,345`) in the HTML
//!   report's tables, where long columns of large counts are read.
//! - Time since the start of a run: [`clock`] (`1:05`, `1:02:03`); a
//!   length for tools: [`seconds`] (`140.012`).
//! - A value in an SLO unit: [`crate::slo::format_value`], built on these.

/// `value` with at most `decimals` decimals, trailing zeros removed.
fn trim_decimals(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

/// A duration in µs for people: `850µs`, `183.2ms`, `1.5s`.
pub fn micros(us: f64) -> String {
    if us < 1e3 {
        format!("{}µs", trim_decimals(us, 1))
    } else if us < 1e6 {
        format!("{}ms", trim_decimals(us / 1e3, 1))
    } else {
        format!("{}s", trim_decimals(us / 1e6, 2))
    }
}

/// A latency (a histogram value, µs) for people: see [`micros`].
pub fn latency(us: u64) -> String {
    micros(us as f64)
}

/// A latency, or `-` when there is none (no samples).
pub fn optional_latency(us: Option<u64>) -> String {
    us.map_or_else(|| "-".into(), latency)
}

/// A fraction in [0, 1] as a percentage: `0.04%`, `12.5%`; four decimals
/// for tiny non-zero values so they do not read as 0.
pub fn fraction(value: f64) -> String {
    let percent = value * 100.0;
    let decimals = if percent == 0.0 || percent >= 0.01 {
        2
    } else {
        4
    };
    format!("{}%", trim_decimals(percent, decimals))
}

/// A fraction as a percentage with exactly `decimals` decimals: `5%`,
/// `0.125%`.
pub fn percent(value: f64, decimals: usize) -> String {
    format!("{:.decimals$}%", value * 100.0)
}

/// Events per second, trailing zeros dropped: `1021.3/s`, `20/s`.
pub fn per_second(value: f64) -> String {
    format!("{}/s", trim_decimals(value, 1))
}

/// Events per second with exactly one decimal: `100.0/s`, for a
/// comparison's columns, where a baseline and a current value are read side
/// by side.
pub fn per_second_fixed(value: f64) -> String {
    format!("{value:.1}/s")
}

/// A plain count (rounded).
pub fn count(value: f64) -> String {
    format!("{}", value.round() as u64)
}

/// `12,345`.
pub fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A number for an axis label or a short figure: at most 3 significant
/// digits, k / M suffix.
pub fn number(value: f64) -> String {
    let abs = value.abs();
    let (scaled, suffix) = if abs >= 1e6 {
        (value / 1e6, "M")
    } else if abs >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    let text = if scaled.abs() >= 100.0 || scaled.fract() == 0.0 {
        format!("{scaled:.0}")
    } else if scaled.abs() >= 10.0 {
        format!("{scaled:.1}")
    } else {
        format!("{scaled:.2}")
    };
    let text = if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    };
    format!("{text}{suffix}")
}

/// A length in seconds as tools read it (JUnit's `time`): `140.012`.
pub fn seconds(seconds: f64) -> String {
    format!("{:.3}", seconds.max(0.0))
}

/// Seconds since the start as `m:ss` (or `h:mm:ss`).
pub fn clock(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_read_the_same_everywhere() {
        assert_eq!(latency(850), "850µs");
        assert_eq!(latency(12_000), "12ms");
        assert_eq!(latency(183_249), "183.2ms");
        assert_eq!(latency(1_500_000), "1.5s");
        assert_eq!(micros(12.34), "12.3µs");
    }

    #[test]
    fn rates_percentages_and_counts() {
        assert_eq!(per_second(1021.34), "1021.3/s");
        assert_eq!(per_second(20.0), "20/s");
        assert_eq!(per_second_fixed(20.0), "20.0/s");
        assert_eq!(fraction(0.0004), "0.04%");
        assert_eq!(fraction(0.000_001), "0.0001%");
        assert_eq!(fraction(0.0), "0%");
        assert_eq!(percent(0.05, 0), "5%");
        assert_eq!(grouped(12_345), "12,345");
        assert_eq!(count(2.6), "3");
    }
}
