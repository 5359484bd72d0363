//! The tables the terminal shows at the end of a run, rendered from the
//! run's [`Summary`] like every result file (so they give the numbers
//! `summary.md` and `report.html` give):
//!
//! - per HTTP step: requests, rate, p50 / p95 / p99 / max of `http.latency`
//!   (from the intended start), errors;
//! - polling steps' waits and polls, and completed journeys: count, mean,
//!   p50 / p95 / p99 / max;
//! - per agent population and commander: connects, errors, connect
//!   percentiles, registrations, disconnects, reconnect and delivery p95,
//!   commands received; per commander: sent, fan-out and round-trip
//!   percentiles, undelivered; errors and disconnects by kind, the peak
//!   connect and reconnect rates, recovery after drops;
//! - a merged result's segments: host, start, clock offset against the
//!   hub, exit code;
//! - HTTP errors by kind, the SLO verdicts and the notes.

use super::table;
use crate::metrics::{merge_into, new_histogram};
use crate::report::json::{decode_histogram, HistogramEntry, Summary};
use crate::units::format;
use crate::units::format_duration;
use std::fmt::Write;
use std::time::Duration;

/// The all-phases numbers of the histogram series matching a filter,
/// merged: what `Totals::select_hist` gives during the run, read from the
/// summary's entries.
struct Merged {
    count: u64,
    p50: u64,
    p95: u64,
    p99: u64,
    max: u64,
}

/// What the final tables read from a run's [`Summary`].
struct Tables<'a> {
    summary: &'a Summary,
}

impl Tables<'_> {
    /// The series of `metric` (of `population` / `step` when given) over
    /// the whole run, merged; None without samples.
    fn hist(&self, metric: &str, population: Option<&str>, step: Option<&str>) -> Option<Merged> {
        let entries: Vec<&HistogramEntry> = (self.summary.histograms.iter())
            .filter(|h| h.phase.is_none() && h.metric == metric && h.count > 0)
            .filter(|h| population.is_none_or(|p| p == h.population))
            .filter(|h| step.is_none_or(|s| s == h.step))
            .collect();
        match entries.as_slice() {
            [] => None,
            [one] => Some(Merged {
                count: one.count,
                p50: one.p50,
                p95: one.p95,
                p99: one.p99,
                max: one.max,
            }),
            several => {
                // Several series (one per step of a population): their
                // percentiles come from the merged histograms.
                let mut merged = new_histogram();
                for h in several.iter().filter_map(|e| decode_histogram(&e.hdr).ok()) {
                    merge_into(&mut merged, &h);
                }
                Some(Merged {
                    count: merged.len(),
                    p50: merged.value_at_quantile(0.5),
                    p95: merged.value_at_quantile(0.95),
                    p99: merged.value_at_quantile(0.99),
                    max: merged.max(),
                })
            }
        }
    }

    /// p50, p95, p99 of [`Tables::hist`], `-` without samples.
    fn pcts(&self, metric: &str, population: Option<&str>) -> [String; 3] {
        let h = self.hist(metric, population, None);
        [|h: &Merged| h.p50, |h: &Merged| h.p95, |h: &Merged| h.p99]
            .map(|pick| format::optional_latency(h.as_ref().map(pick)))
    }

    /// The run's total of the counters of `metric` (of `kind`,
    /// `population`, `step` when given).
    fn counter(
        &self,
        metric: &str,
        kind: Option<&str>,
        population: Option<&str>,
        step: Option<&str>,
    ) -> u64 {
        (self.summary.counters.iter())
            .filter(|c| c.metric == metric)
            .filter(|c| kind.is_none_or(|k| c.kind.as_deref() == Some(k)))
            .filter(|c| population.is_none_or(|p| p == c.population))
            .filter(|c| step.is_none_or(|s| s == c.step))
            .fold(0, |sum, c| sum.saturating_add(c.total))
    }

    /// The populations that have a counter of `metric`, in layout order
    /// (the scenario's).
    fn populations(&self, metric: &str) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for d in self.summary.layout.counters.iter() {
            if d.metric == metric && !names.contains(&d.population.as_str()) {
                names.push(&d.population);
            }
        }
        names
    }

    /// Highest per-interval rate of the counters of `metric`.
    fn peak(&self, metric: &str) -> f64 {
        let ids: Vec<usize> = (self.summary.layout.counters.iter().enumerate())
            .filter(|(_, d)| d.metric == metric)
            .map(|(i, _)| i)
            .collect();
        let mut last = 0.0f64;
        let mut best = 0.0f64;
        for point in &self.summary.series {
            let width = (point.elapsed_s - last).max(1e-3);
            last = point.elapsed_s;
            let n: u64 = ids.iter().filter_map(|&i| point.counters.get(i)).sum();
            best = best.max(n as f64 / width);
        }
        best
    }
}

/// The hub tables: connections per agent population and commander, and
/// command timings. Empty when the run had no agents or commanders.
pub fn hub_report(summary: &Summary) -> String {
    let tables = Tables { summary };
    let t = &tables;
    let mut out = String::new();
    // Every agent population and commander counts its connects.
    let populations = t.populations("hub.connects");
    if populations.is_empty() {
        return out;
    }
    let commanders = t.populations("hub.commands");
    let mut rows = vec![vec![
        "population".to_string(),
        "connects".into(),
        "errors".into(),
        "connect p50".into(),
        "p95".into(),
        "p99".into(),
        "registered".into(),
        "disconnects".into(),
        "reconnect p95".into(),
        "commands in".into(),
        "delivery p95".into(),
    ]];
    let mut kinds: std::collections::BTreeMap<String, u64> = Default::default();
    for &name in &populations {
        let pop = Some(name);
        let connect = t.pcts("hub.connect", pop);
        let reconnect = t.pcts("hub.reconnect", pop);
        let delivery = t.pcts("hub.command.delivery", pop);
        for (metric, label) in [("hub.errors", "error"), ("hub.disconnects", "disconnect")] {
            for desc in (summary.layout.counters.iter())
                .filter(|d| d.metric == metric && d.population == name && d.kind.is_some())
            {
                let kind = desc.kind.as_deref().unwrap_or_default();
                let n = t.counter(metric, Some(kind), pop, None);
                if n > 0 {
                    *kinds.entry(format!("{label} {kind}")).or_default() += n;
                }
            }
        }
        let [connect_p50, connect_p95, connect_p99] = connect;
        rows.push(vec![
            name.to_string(),
            t.counter("hub.connects", None, pop, None).to_string(),
            t.counter("hub.errors", None, pop, None).to_string(),
            connect_p50,
            connect_p95,
            connect_p99,
            t.counter("hub.registrations", None, pop, None).to_string(),
            t.counter("hub.disconnects", None, pop, None).to_string(),
            reconnect[1].clone(),
            t.counter("hub.command.received", None, pop, None)
                .to_string(),
            delivery[1].clone(),
        ]);
    }
    let _ = writeln!(out, "\nhub connections:");
    out.push_str(&table(&rows));
    if !kinds.is_empty() {
        let _ = writeln!(out, "hub errors and disconnects by kind:");
        for (kind, n) in &kinds {
            let _ = writeln!(out, "  {n} × {kind}");
        }
    }
    if !commanders.is_empty() {
        let mut rows = vec![vec![
            "commander".to_string(),
            "sent".into(),
            "fanout p50".into(),
            "p95".into(),
            "p99".into(),
            "rtt p50".into(),
            "p95".into(),
            "p99".into(),
            "undelivered".into(),
        ]];
        for &name in &commanders {
            let pop = Some(name);
            let mut row = vec![
                name.to_string(),
                t.counter("hub.commands", None, pop, None).to_string(),
            ];
            row.extend(t.pcts("hub.command.fanout", pop));
            row.extend(t.pcts("hub.command.rtt", pop));
            row.push(
                t.counter("hub.command.undelivered", None, pop, None)
                    .to_string(),
            );
            rows.push(row);
        }
        let _ = writeln!(out, "commands:");
        out.push_str(&table(&rows));
    }
    let reconnects = t.counter("hub.reconnects", None, None, None);
    let _ = writeln!(
        out,
        "peak connect rate: {:.0}/s{}",
        t.peak("hub.connects"),
        if reconnects > 0 {
            format!(
                " · peak reconnect rate: {:.0}/s ({reconnects} reconnects)",
                t.peak("hub.reconnects")
            )
        } else {
            String::new()
        }
    );
    if summary
        .layout
        .hists
        .iter()
        .any(|d| d.metric == "hub.recovery")
    {
        let recovery = t.hist("hub.recovery", None, None);
        let unrecovered = t.counter(crate::slo::UNRECOVERED, None, None, None);
        if recovery.is_some() || unrecovered > 0 {
            let _ = writeln!(
                out,
                "recovery after disruptions: {} recovered (max {}){}",
                recovery.as_ref().map_or(0, |h| h.count),
                format::optional_latency(recovery.as_ref().map(|h| h.max)),
                if unrecovered > 0 {
                    format!(", {unrecovered} NOT recovered")
                } else {
                    String::new()
                }
            );
        }
    }
    out
}

/// Polling steps (`http.wait`, `http.wait.polls`, `http.wait.open`: waits
/// still open at the end, how long they had waited) and completed journeys
/// (`http.journey`): count, mean and percentiles of each series with
/// samples; empty without any.
fn wait_report(summary: &Summary) -> String {
    use crate::metrics::catalogue::{
        histogram_unit, HTTP_JOURNEY, HTTP_WAIT, HTTP_WAIT_OPEN, HTTP_WAIT_POLLS,
    };
    let mut rows = vec![["series", "count", "mean", "p50", "p95", "p99", "max"]
        .map(String::from)
        .to_vec()];
    for metric in [HTTP_WAIT, HTTP_WAIT_POLLS, HTTP_WAIT_OPEN, HTTP_JOURNEY] {
        for h in (summary.histograms.iter())
            .filter(|h| h.phase.is_none() && h.metric == metric && h.count > 0)
        {
            let unit = histogram_unit(metric);
            let value = |v: f64| crate::slo::format_value(unit, v);
            let tag = if h.step.is_empty() {
                &h.population
            } else {
                &h.step
            };
            rows.push(vec![
                format!("{metric} {tag}"),
                h.count.to_string(),
                value(h.mean),
                value(h.p50 as f64),
                value(h.p95 as f64),
                value(h.p99 as f64),
                value(h.max as f64),
            ]);
        }
    }
    if rows.len() == 1 {
        return String::new();
    }
    format!("waits and journeys:\n{}", table(&rows))
}

/// The disruptions and the fault actions, when there are any.
fn events_tables(out: &mut String, summary: &Summary) {
    use crate::report::events;
    let with_header = |header: [&str; 6], rows: Vec<[String; 6]>| -> Vec<Vec<String>> {
        std::iter::once(header.iter().map(|h| h.to_string()).collect())
            .chain(rows.into_iter().map(Vec::from))
            .collect()
    };
    let disruptions = events::disruption_rows(summary);
    if !disruptions.is_empty() {
        let _ = writeln!(out, "disruptions:");
        out.push_str(&table(&with_header(events::DISRUPTION_HEADER, disruptions)));
    }
    let actions = events::action_rows(summary);
    if !actions.is_empty() {
        let _ = writeln!(out, "fault actions:");
        out.push_str(&table(&with_header(events::ACTION_HEADER, actions)));
    }
}

/// The tables printed at the end of a run, from its summary (so they say
/// what `summary.md` and `report.html` say): latency, rate and errors per
/// HTTP step, the hub tables, a merged result's segments (host, start,
/// clock offset against the hub, exit code), errors by kind, the SLO
/// verdicts and the notes.
pub fn final_report(summary: &Summary) -> String {
    let t = Tables { summary };
    let mut out = String::new();
    let secs = summary.meta.duration_s.max(1e-9);
    let mut rows = vec![vec![
        "step".to_string(),
        "requests".into(),
        "rate".into(),
        "p50".into(),
        "p95".into(),
        "p99".into(),
        "max".into(),
        "errors".into(),
    ]];
    // Every step of every population counts its requests.
    let steps: Vec<(&str, &str)> = (summary.layout.counters.iter())
        .filter(|d| d.metric == "http.requests")
        .map(|d| (d.population.as_str(), d.step.as_str()))
        .collect();
    let populations = t.populations("http.requests");
    for &(population, step) in &steps {
        let (pop, step_filter) = (Some(population), Some(step));
        let requests = t.counter("http.requests", None, pop, step_filter);
        let errors = t.counter("http.errors", None, pop, step_filter);
        let latency = t.hist("http.latency", pop, step_filter);
        let pick = |f: fn(&Merged) -> u64| format::optional_latency(latency.as_ref().map(f));
        let label = if populations.len() > 1 {
            format!("{population}/{step}")
        } else {
            step.to_string()
        };
        rows.push(vec![
            label,
            requests.to_string(),
            format::per_second(requests as f64 / secs),
            pick(|h| h.p50),
            pick(|h| h.p95),
            pick(|h| h.p99),
            pick(|h| h.max),
            errors.to_string(),
        ]);
    }
    let mut kinds: std::collections::BTreeMap<String, u64> = Default::default();
    for kind in crate::error::ErrorKind::ALL {
        let n = t.counter("http.errors", Some(kind.name()), None, None);
        if n > 0 {
            kinds.insert(kind.name().to_string(), n);
        }
    }
    if !steps.is_empty() {
        let _ = writeln!(
            out,
            "\nlatency ({}) over {}:",
            summary.latency_from().replace(
                crate::report::json::FROM_INTENDED_START,
                "from intended start"
            ),
            format_duration(Duration::from_secs_f64(secs))
        );
        out.push_str(&table(&rows));
    }
    out.push_str(&wait_report(summary));
    out.push_str(&hub_report(summary));
    events_tables(&mut out, summary);
    if let Some(merged) = &summary.meta.merged {
        let _ = writeln!(
            out,
            "segments (merged {} of {}):",
            merged.sources.len(),
            merged.count
        );
        let rows: Vec<Vec<String>> = (merged.sources_table().into_iter())
            .map(Vec::from)
            .collect();
        out.push_str(&table(&rows));
    }
    if !kinds.is_empty() {
        let _ = writeln!(out, "errors by kind:");
        for (kind, n) in &kinds {
            let _ = writeln!(out, "  {n} × {kind}");
        }
    }
    if !summary.verdicts.is_empty() {
        let _ = writeln!(out, "SLOs:");
        let mut rows = vec![vec![
            "slo".to_string(),
            "target".into(),
            "measured".into(),
            "verdict".into(),
        ]];
        for v in &summary.verdicts {
            rows.push(vec![
                v.slo.key.clone(),
                v.slo.target.clone(),
                v.measured_text.clone(),
                if v.pass { "pass".into() } else { "FAIL".into() },
            ]);
        }
        out.push_str(&table(&rows));
    }
    for note in &summary.meta.notes {
        let _ = writeln!(out, "note: {note}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::{summary_with, SummaryOptions};

    #[test]
    fn the_final_tables_come_from_the_summary() {
        let summary = summary_with(SummaryOptions {
            hub: true,
            ..SummaryOptions::default()
        });
        let text = final_report(&summary);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "latency (from intended start) over 4s:");
        assert_eq!(
            lines[3].split_whitespace().collect::<Vec<_>>(),
            ["browse", "400", "100/s", "2ms", "51.9ms", "52ms", "52ms", "2"]
        );
        // summary.md's row for the step has the same values.
        let md = crate::report::markdown::render(&summary);
        assert!(
            md.contains("| `browse` | 400 | 100/s | 2 | 2ms | 51.9ms | 52ms | 52ms |"),
            "{md}"
        );
        assert!(text.contains("\nhub connections:\n"));
        let edge = lines
            .iter()
            .find(|l| l.trim_start().starts_with("edge"))
            .unwrap();
        assert_eq!(
            edge.split_whitespace().collect::<Vec<_>>(),
            ["edge", "4", "4", "4ms", "6ms", "6ms", "0", "0", "-", "0", "-"]
        );
        assert!(text.contains("  4 × error refused\npeak connect rate: 1/s\n"));
        assert!(text.contains("errors by kind:\n  2 × timeout\n"));
        let verdict = lines
            .iter()
            .find(|l| l.contains("http.latency.p95"))
            .unwrap();
        assert_eq!(
            verdict.split_whitespace().collect::<Vec<_>>(),
            ["http.latency.p95", "<", "40ms", "51.9ms", "FAIL"]
        );
        assert!(text.ends_with("note: generator saturated in phase spike\n"));
    }

    #[test]
    fn steps_of_several_populations_are_named_and_empty_ones_read_dashes() {
        let mut summary = summary_with(SummaryOptions::default());
        // A second population whose step never ran.
        let id = summary.layout.counters.len() as u32;
        summary
            .layout
            .add_counter("http.requests", "admin", "login", None);
        summary.counters.push(crate::report::json::CounterEntry {
            id,
            metric: "http.requests".into(),
            population: "admin".into(),
            step: "login".into(),
            kind: None,
            total: 0,
            phases: Default::default(),
        });
        let text = final_report(&summary);
        assert!(text.contains("  shopper/browse  "), "{text}");
        let admin = text.lines().find(|l| l.contains("admin/login")).unwrap();
        assert_eq!(
            admin.split_whitespace().collect::<Vec<_>>(),
            ["admin/login", "0", "0/s", "-", "-", "-", "-", "0"]
        );
        assert!(!text.contains("hub connections"), "no hub without agents");
    }
}
