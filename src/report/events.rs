//! The run's events for people: each disruption (a wave of lost agents,
//! an HTTP error burst) and each fault action, as rows every report shows
//! alike (console, `summary.md`, `report.html`), and as marks on the time
//! charts (seconds from the run's start, a label).

use super::json::Summary;
use crate::units::format;

/// Header of [`disruption_rows`].
pub const DISRUPTION_HEADER: [&str; 6] = ["at", "what", "cause", "lost", "back", "recovery"];
/// Header of [`action_rows`].
pub const ACTION_HEADER: [&str; 6] = ["at", "action", "phase", "status", "took", "result"];

/// A vertical mark on a time chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    /// Seconds from the run's start.
    pub at_s: f64,
    pub label: String,
}

fn started_us(summary: &Summary) -> i64 {
    chrono::DateTime::parse_from_rfc3339(&summary.meta.started_at)
        .map_or(0, |t| t.timestamp_micros())
}

fn offset_s(summary: &Summary, unix_us: u64) -> f64 {
    (unix_us as i64 - started_us(summary)) as f64 / 1e6
}

fn at_text(s: f64) -> String {
    format!("{:.1}s", s.max(0.0))
}

fn cause_text(cause: &str, action: Option<&str>) -> String {
    match action {
        Some(name) => format!("{cause} {name}"),
        None => cause.to_string(),
    }
}

/// One row per disruption, in time order: hub waves (`what` = `hub`) and
/// HTTP bursts (`what` = `http`).
pub fn disruption_rows(summary: &Summary) -> Vec<[String; 6]> {
    let mut rows: Vec<(f64, [String; 6])> = Vec::new();
    for d in &summary.disruptions {
        let at = offset_s(summary, d.at_unix_us);
        let need = ((d.recovered_fraction * d.lost as f64).ceil() as usize).min(d.lost as usize);
        let recovery = if d.lost == 0 {
            "-".to_string()
        } else {
            match d.back_unix_us.get(need.max(1) - 1) {
                Some(&back) => format::latency(back.saturating_sub(d.at_unix_us)),
                None => "NOT recovered".to_string(),
            }
        };
        rows.push((
            at,
            [
                at_text(at),
                "hub".into(),
                cause_text(&d.cause, d.action.as_deref()),
                d.lost.to_string(),
                d.back_unix_us.len().to_string(),
                recovery,
            ],
        ));
    }
    for d in &summary.http_disruptions {
        rows.push((
            d.start_s,
            [
                at_text(d.start_s),
                "http".into(),
                cause_text(&d.cause, d.action.as_deref()),
                "-".into(),
                "-".into(),
                d.recovery_s.map_or_else(
                    || "NOT recovered".to_string(),
                    |s| format::latency((s * 1e6) as u64),
                ),
            ],
        ));
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    rows.into_iter().map(|(_, r)| r).collect()
}

/// One row per fault action, in the order they started.
pub fn action_rows(summary: &Summary) -> Vec<[String; 6]> {
    summary
        .actions
        .iter()
        .map(|a| {
            let status = match (a.exit_status, a.http_status) {
                (Some(code), _) => format!("exit {code}"),
                (_, Some(code)) => format!("HTTP {code}"),
                _ => "-".to_string(),
            };
            let result = if a.ok {
                "ok".to_string()
            } else {
                format!("FAILED: {}", a.error.as_deref().unwrap_or("failed"))
            };
            [
                at_text(offset_s(summary, a.at_unix_us)),
                a.name.clone(),
                a.phase.clone(),
                status,
                format::latency(a.duration_us),
                result,
            ]
        })
        .collect()
}

/// The marks of the time charts: each action and each disruption.
pub fn marks(summary: &Summary) -> Vec<Mark> {
    let mut marks: Vec<Mark> = summary
        .actions
        .iter()
        .map(|a| Mark {
            at_s: offset_s(summary, a.at_unix_us),
            label: format!("action {}", a.name),
        })
        .collect();
    marks.extend(summary.disruptions.iter().map(|d| Mark {
        at_s: offset_s(summary, d.at_unix_us),
        label: format!("{} lost ({})", d.lost, d.cause),
    }));
    marks.extend(summary.http_disruptions.iter().map(|d| Mark {
        at_s: d.start_s,
        label: format!("http {}", d.cause),
    }));
    marks.sort_by(|a, b| a.at_s.total_cmp(&b.at_s));
    marks
}
