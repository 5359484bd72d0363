//! `--start-at TIME`: a common start for the segments of a split run.
//!
//! Every segment prepares first (targets, preflight, the fleet's
//! descriptors), then waits for the instant, and that instant *is* the
//! run's time zero: the engine's start, the aggregator's start (so the
//! per-second intervals of every segment are the same wall-clock seconds),
//! `started_at` in the result. A segment ready more than [`SLACK`] after
//! the instant does not start late, which would shift its series against
//! the others': it says so and the run is not carried out (exit 3, no
//! result directory). Ctrl-C while waiting ends it the same way.
//!
//! Accepted forms: RFC 3339 (`2026-11-30T18:30:00Z`, any offset) or Unix
//! seconds (`1796063400`, fractions allowed: `1796063400.25`).

use super::signals::Signals;
use crate::error::CommandError;
use crate::plan::Segment;
use chrono::{DateTime, Utc};
use std::time::Duration;

/// How late after `--start-at` a segment may still start (its first
/// arrivals are then made late, and their lateness recorded).
pub const SLACK: Duration = Duration::from_millis(250);

/// Parse `--start-at`: RFC 3339 or Unix seconds (fractions allowed).
pub fn parse_start_at(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    let bad = || {
        format!(
            "--start-at {text:?}: write an RFC 3339 time (2026-11-30T18:30:00Z) or Unix seconds (1796063400)"
        )
    };
    if !text.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(bad());
    }
    let seconds: f64 = text.parse().map_err(|_| bad())?;
    if !seconds.is_finite() || seconds > 1e12 {
        return Err(bad());
    }
    let (whole, nanos) = match text.split_once('.') {
        // Exact to the nanosecond, not through a float.
        Some((whole, fraction)) => {
            let digits: String = fraction
                .chars()
                .chain("000000000".chars())
                .take(9)
                .collect();
            (whole.parse::<i64>(), digits.parse::<u32>())
        }
        None => (text.parse::<i64>(), Ok(0)),
    };
    match (whole, nanos) {
        (Ok(whole), Ok(nanos)) => DateTime::from_timestamp(whole, nanos).ok_or_else(bad),
        _ => Err(bad()),
    }
}

/// `at` as written in a result: RFC 3339, UTC, milliseconds.
pub fn format_start_at(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Wait for `at`; returns the engine clock's instant that is `at` (in the
/// past by up to [`SLACK`] when the segment was ready a little late).
/// Ready later than that, or interrupted while waiting: not carried out.
pub async fn wait_for(
    at: DateTime<Utc>,
    segment: Segment,
    signals: &mut Signals,
) -> Result<tokio::time::Instant, CommandError> {
    let now = tokio::time::Instant::now();
    let ahead = (at - Utc::now()).to_std();
    let zero = match ahead {
        Ok(wait) => now + wait,
        Err(_) => {
            let late = (Utc::now() - at).to_std().unwrap_or_default();
            if late > SLACK {
                return Err(CommandError::Failed(anyhow::anyhow!(
                    "{} was ready {:.1} s after --start-at {}; choose a later start \
                     (one that leaves every segment time to prepare: a start more than {} \
                     late would not line up with the others); nothing was run",
                    who(segment),
                    late.as_secs_f64(),
                    format_start_at(at),
                    crate::units::format_duration(SLACK),
                )));
            }
            now.checked_sub(late).unwrap_or(now)
        }
    };
    tokio::select! {
        _ = tokio::time::sleep_until(zero) => Ok(zero),
        _ = signals.next() => Err(CommandError::Failed(anyhow::anyhow!(
            "interrupted while waiting for --start-at {}: nothing was run",
            format_start_at(at)
        ))),
    }
}

/// The line a run prints when it is ready and starts waiting.
pub fn waiting(at: DateTime<Utc>, segment: Segment) -> String {
    let ahead = (at - Utc::now()).to_std().unwrap_or_default();
    format!(
        "stampede: {} is ready; it starts at {} (in {:.1} s; Ctrl-C to cancel)",
        who(segment),
        format_start_at(at),
        ahead.as_secs_f64()
    )
}

/// "segment 1/3", or "the run" when it is whole.
fn who(segment: Segment) -> String {
    if segment.is_whole() {
        "the run".into()
    } else {
        format!("segment {segment}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_and_unix_seconds_are_the_same_instant() {
        let a = parse_start_at("2026-11-30T18:30:00Z").unwrap();
        assert_eq!(a.timestamp(), 1_796_063_400);
        assert_eq!(parse_start_at("1796063400").unwrap(), a);
        assert_eq!(parse_start_at("2026-11-30T19:30:00+01:00").unwrap(), a);
        let f = parse_start_at("1796063400.25").unwrap();
        assert_eq!(f.timestamp_millis(), 1_796_063_400_250);
        assert_eq!(format_start_at(f), "2026-11-30T18:30:00.250Z");
        assert_eq!(
            parse_start_at("1796063400.000000001")
                .unwrap()
                .timestamp_subsec_nanos(),
            1
        );
        for bad in ["", "soon", "-5", "18:30", "2026-11-30", "1e9", "12.x"] {
            let e = parse_start_at(bad).unwrap_err();
            assert!(
                e.contains("RFC 3339") && e.contains("Unix seconds"),
                "{bad}: {e}"
            );
        }
    }
}
