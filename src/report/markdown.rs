//! `summary.md`: the run in a few lines of GitHub-flavoured Markdown, for
//! CI step summaries and merge-request comments. Also appended to
//! `$GITHUB_STEP_SUMMARY` when that is set (see [`super::rebuild`]).
//!
//! # Content
//! 1. A verdict heading: `✅ all 3 SLOs held`, `❌ 2 of 3 SLOs failed`,
//!    `⚠️ interrupted`, `⚠️ results incomplete` (exit 3 without an
//!    interruption: a result file lost on a bad disk), or `✅ completed (no
//!    SLOs)`, with the scenario name,
//!    then one line of run facts (length, start, host, version, exit code).
//! 2. `SLOs`: slo, target, measured, ✅ / ❌.
//! 3. `HTTP steps`: per step, requests, rate, errors, p50, p95, p99, max
//!    (`http.latency`, from the intended start, over the whole run).
//!    Then `Waits and journeys`: per `http.wait`, `http.wait.polls`,
//!    `http.wait.open` and `http.journey` series with samples, count, mean,
//!    p50, p95, p99, max.
//! 4. `Hub`: per hub histogram series (`hub.connect`, `hub.reconnect`…) and
//!    population, count, p50, p95, p99, max — when the run had agents.
//! 5. `Disruptions` (hub waves and HTTP bursts: when, cause, lost, back,
//!    recovery) and `Fault actions` (when, phase, status, duration,
//!    result), when there are any.
//! 6. `Segments` (a merged result): per segment its `i/n`, host, start,
//!    clock offset against the hub and exit code.
//! 7. `Errors by kind` and `Notes`, when there are any.
//!
//! # Escaping
//! Names that come from a scenario (scenario, population, step, SLO key)
//! are written as code spans, so no Markdown, HTML, mention or emoji inside
//! them is interpreted; the span's fence is longer than any backtick run in
//! the name. Other text taken from the summary (targets, measured values,
//! notes) has Markdown punctuation backslash-escaped. Inside tables `|` is
//! written `\|` (GFM splits cells before it reads code spans), and line
//! breaks become spaces everywhere.

use super::json::{HistogramEntry, Summary};
use crate::slo::{histogram_unit, Unit};
use crate::units::format;
use std::collections::BTreeMap;
use std::fmt::Write;

/// File name of the Markdown summary inside a result directory.
pub const FILE_NAME: &str = "summary.md";

/// The [`Exporter`](super::Exporter) of `summary.md`.
pub struct Markdown;

impl super::Exporter for Markdown {
    fn file_name(&self) -> &'static str {
        FILE_NAME
    }
    fn render(&self, summary: &Summary) -> anyhow::Result<String> {
        Ok(render(summary))
    }
}

/// Render `summary.md` from a summary.
pub fn render(summary: &Summary) -> String {
    let mut out = String::new();
    verdict(&mut out, summary);
    slos(&mut out, summary);
    http_steps(&mut out, summary);
    waits(&mut out, summary);
    hub(&mut out, summary);
    events(&mut out, summary);
    segments(&mut out, summary);
    errors(&mut out, summary);
    // The generator's notes are in the block under the heading.
    let flagged = summary.generator.as_ref().is_some_and(|g| g.flagged());
    let notes: Vec<&String> = (summary.meta.notes.iter())
        .filter(|n| !(flagged && n.starts_with(crate::report::generator::NOTE)))
        .collect();
    if !notes.is_empty() {
        out.push_str("\n**Notes**\n\n");
        for note in notes {
            let _ = writeln!(out, "- {}", text(note));
        }
    }
    out
}

fn verdict(out: &mut String, summary: &Summary) {
    let meta = &summary.meta;
    let total = summary.verdicts.len();
    let failed = summary.verdicts.iter().filter(|v| !v.pass).count();
    let slos = |n: usize| if n == 1 { "SLO" } else { "SLOs" };
    let partial = (meta.merged.as_ref()).and_then(|m| m.missing_text());
    let generator_fails =
        !meta.interrupted && (summary.generator.as_ref()).is_some_and(|g| g.fails_the_run());
    let (icon, what) = match (meta.interrupted, total, failed) {
        _ if partial.is_some() => (
            "⚠️",
            format!(
                "PARTIAL: segment {} missing; {failed} of {total} {} failed on the rest",
                partial.as_deref().unwrap_or_default(),
                slos(total)
            ),
        ),
        (true, 0, _) => ("⚠️", "interrupted".to_string()),
        (true, _, 0) => (
            "⚠️",
            format!("interrupted; {total} {} held so far", slos(total)),
        ),
        (true, _, _) => (
            "⚠️",
            format!("interrupted; {failed} of {total} {} failed", slos(total)),
        ),
        // Not interrupted, yet exit 3: a result file was lost (a bad disk).
        (false, 0, _) if meta.exit_code == 3 => ("⚠️", "results incomplete (see the notes)".into()),
        (false, _, _) if meta.exit_code == 3 => (
            "⚠️",
            format!(
                "results incomplete (see the notes); {failed} of {total} {} failed",
                slos(total)
            ),
        ),
        (false, 0, _) => ("✅", "completed (no SLOs)".to_string()),
        (false, _, 0) if total == 1 => ("✅", "the SLO held".to_string()),
        _ if generator_fails => (
            "❌",
            format!("the generator was unhealthy (generator_health = \"fail\"); {failed} of {total} {} failed", slos(total)),
        ),
        (false, _, 0) => ("✅", format!("all {total} SLOs held")),
        (false, _, _) => ("❌", format!("{failed} of {total} {} failed", slos(total))),
    };
    let _ = writeln!(
        out,
        "### {icon} stampede {}: {what}\n",
        code(&meta.name, false)
    );
    let _ = writeln!(
        out,
        "{} · started {} · host {} · stampede {} · exit code {}",
        format::micros(meta.duration_s.max(0.0) * 1e6),
        text(&meta.started_at),
        code(&meta.host, false),
        text(&meta.stampede_version),
        meta.exit_code
    );
    if let Some(health) = summary.generator.as_ref().filter(|g| g.flagged()) {
        let _ = writeln!(
            out,
            "\n> ⚠️ **{}**: the latencies include the generator's own delay.",
            crate::report::generator::NOTE
        );
        for c in &health.causes {
            let _ = writeln!(out, "> - {}", text(&c.text()));
        }
    }
}

/// A merged result's segments: where and when each ran, its clock
/// against the hub, its exit code.
fn segments(out: &mut String, summary: &Summary) {
    let Some(merged) = &summary.meta.merged else {
        return;
    };
    let table = merged.sources_table();
    out.push_str("\n**Segments**\n\n");
    for (i, row) in table.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, cell)| match (i, c) {
                (0, _) => cell.clone(),
                (_, 1) => code(cell, true),
                _ => text(cell),
            })
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
        if i == 0 {
            out.push_str("|---|---|---|--:|--:|\n");
        }
    }
}

fn slos(out: &mut String, summary: &Summary) {
    if summary.verdicts.is_empty() {
        return;
    }
    out.push_str("\n| SLO | target | measured | |\n|---|---|---|:-:|\n");
    for v in &summary.verdicts {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} |",
            code(&v.slo.key, true),
            text(&v.slo.target),
            text(&v.measured_text),
            if v.pass { "✅" } else { "❌" }
        );
    }
}

/// The all-phases entry of every histogram series, by id.
fn overall(summary: &Summary) -> BTreeMap<u32, &HistogramEntry> {
    summary
        .histograms
        .iter()
        .filter(|h| h.phase.is_none())
        .map(|h| (h.id, h))
        .collect()
}

fn percentiles(unit: Unit, h: Option<&HistogramEntry>) -> [String; 4] {
    match h.filter(|h| h.count > 0) {
        Some(h) => [h.p50, h.p95, h.p99, h.max].map(|v| crate::slo::format_value(unit, v as f64)),
        None => ["–", "–", "–", "–"].map(str::to_owned),
    }
}

fn http_steps(out: &mut String, summary: &Summary) {
    let layout = &summary.layout;
    let steps: Vec<(u32, &str, &str)> = (layout.hists.iter().enumerate())
        .filter(|(_, d)| d.metric == "http.latency")
        .map(|(i, d)| (i as u32, d.population.as_str(), d.step.as_str()))
        .collect();
    if steps.is_empty() {
        return;
    }
    let populations: std::collections::BTreeSet<&str> = steps.iter().map(|s| s.1).collect();
    let counter = |metric: &str, population: &str, step: &str| -> u64 {
        summary
            .counters
            .iter()
            .filter(|c| c.metric == metric && c.population == population && c.step == step)
            .map(|c| c.total)
            .sum()
    };
    let hists = overall(summary);
    let secs = summary.meta.duration_s.max(1e-9);
    let _ = write!(
        out,
        "\n**HTTP steps** (latency {})\n\n",
        text(&summary.latency_from())
    );
    out.push_str("| step | requests | rate | errors | p50 | p95 | p99 | max |\n");
    out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|\n");
    for (id, population, step) in steps {
        let label = if populations.len() > 1 {
            format!("{population}/{step}")
        } else {
            step.to_string()
        };
        let requests = counter("http.requests", population, step);
        let [p50, p95, p99, max] = percentiles(Unit::Micros, hists.get(&id).copied());
        let _ = writeln!(
            out,
            "| {} | {requests} | {} | {} | {p50} | {p95} | {p99} | {max} |",
            code(&label, true),
            format::per_second(requests as f64 / secs),
            counter("http.errors", population, step),
        );
    }
}

/// Polling steps' waits and polls, and whole journeys.
fn waits(out: &mut String, summary: &Summary) {
    use crate::metrics::catalogue::{HTTP_JOURNEY, HTTP_WAIT, HTTP_WAIT_OPEN, HTTP_WAIT_POLLS};
    let hists = overall(summary);
    let rows: Vec<(&crate::metrics::SeriesDesc, &HistogramEntry)> =
        (summary.layout.hists.iter().enumerate())
            .filter(|(_, d)| {
                [HTTP_WAIT, HTTP_WAIT_POLLS, HTTP_WAIT_OPEN, HTTP_JOURNEY]
                    .contains(&d.metric.as_str())
            })
            .filter_map(|(i, d)| hists.get(&(i as u32)).map(|h| (d, *h)))
            .filter(|(_, h)| h.count > 0)
            .collect();
    if rows.is_empty() {
        return;
    }
    out.push_str("\n**Waits and journeys** (a polling step's first send → condition met; `http.wait.open`: waits still open at the end, how long they had waited; a completed journey's intended start → end of its last step)\n\n");
    out.push_str("| series | population | count | mean | p50 | p95 | p99 | max |\n");
    out.push_str("|---|---|--:|--:|--:|--:|--:|--:|\n");
    for (desc, h) in rows {
        let series = if desc.step.is_empty() {
            desc.metric.clone()
        } else {
            format!("{}{{step={}}}", desc.metric, desc.step)
        };
        let unit = histogram_unit(&desc.metric);
        let [p50, p95, p99, max] = percentiles(unit, Some(h));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {p50} | {p95} | {p99} | {max} |",
            code(&series, true),
            code(&desc.population, true),
            h.count,
            crate::slo::format_value(unit, h.mean),
        );
    }
}

fn hub(out: &mut String, summary: &Summary) {
    let hists = overall(summary);
    let rows: Vec<(&crate::metrics::SeriesDesc, &HistogramEntry)> =
        (summary.layout.hists.iter().enumerate())
            .filter(|(_, d)| d.metric.starts_with("hub."))
            .filter_map(|(i, d)| hists.get(&(i as u32)).map(|h| (d, *h)))
            .filter(|(_, h)| h.count > 0)
            .collect();
    if rows.is_empty() {
        return;
    }
    out.push_str("\n**Hub**\n\n");
    out.push_str("| series | population | count | p50 | p95 | p99 | max |\n");
    out.push_str("|---|---|--:|--:|--:|--:|--:|\n");
    for (desc, h) in rows {
        let series = if desc.step.is_empty() {
            desc.metric.clone()
        } else {
            format!("{}{{step={}}}", desc.metric, desc.step)
        };
        let [p50, p95, p99, max] = percentiles(histogram_unit(&desc.metric), Some(h));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {p50} | {p95} | {p99} | {max} |",
            code(&series, true),
            code(&desc.population, true),
            h.count
        );
    }
}

/// `Disruptions` and `Fault actions`, when there are any.
fn events(out: &mut String, summary: &Summary) {
    use super::events;
    for (title, header, rows) in [
        (
            "Disruptions",
            events::DISRUPTION_HEADER,
            events::disruption_rows(summary),
        ),
        (
            "Fault actions",
            events::ACTION_HEADER,
            events::action_rows(summary),
        ),
    ] {
        if rows.is_empty() {
            continue;
        }
        let _ = write!(out, "\n**{title}**\n\n| {} |\n", header.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(header.len()));
        for row in rows {
            let cells: Vec<String> = row.iter().map(|c| code(c, true)).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
    }
}

fn errors(out: &mut String, summary: &Summary) {
    let mut by_metric: BTreeMap<&str, BTreeMap<&str, u64>> = BTreeMap::new();
    for c in &summary.counters {
        let Some(kind) = c.kind.as_deref() else {
            continue;
        };
        if c.total == 0 || !c.metric.ends_with(".errors") {
            continue;
        }
        *by_metric
            .entry(c.metric.as_str())
            .or_default()
            .entry(kind)
            .or_default() += c.total;
    }
    if by_metric.is_empty() {
        return;
    }
    out.push_str("\n**Errors by kind**\n\n");
    for (metric, kinds) in by_metric {
        let mut kinds: Vec<(&str, u64)> = kinds.into_iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let list: Vec<String> = kinds
            .iter()
            .map(|(kind, n)| format!("{n} × {}", code(kind, false)))
            .collect();
        let _ = writeln!(out, "- {}: {}", code(metric, false), list.join(", "));
    }
}

/// `s` as a code span (see "Escaping" above); `–` when empty.
fn code(s: &str, in_table: bool) -> String {
    let s: String = s
        .chars()
        .map(|c| if matches!(c, '\n' | '\r') { ' ' } else { c })
        .collect();
    if s.trim().is_empty() {
        return "–".into();
    }
    let longest_run = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run + 1);
    // A span that starts or ends with a backtick needs a space of padding
    // (stripped again by the renderer).
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    let body = if in_table { s.replace('|', "\\|") } else { s };
    format!("{fence}{pad}{body}{pad}{fence}")
}

/// `s` with Markdown punctuation backslash-escaped (see "Escaping" above).
/// `|` is escaped everywhere: harmless outside tables.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '~' | '&' | '|' | '$' | '@' | '#'
            | '!' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::{summary_with, SummaryOptions};

    /// The cells of the table that follows `header` (a line of the doc).
    fn table(md: &str, header: &str) -> Vec<Vec<String>> {
        let lines: Vec<&str> = md.lines().collect();
        let start = lines
            .iter()
            .position(|l| l.starts_with(header))
            .unwrap_or_else(|| panic!("no table `{header}` in\n{md}"));
        lines[start + 2..]
            .iter()
            .take_while(|l| l.starts_with('|'))
            .map(|l| split_row(l))
            .collect()
    }

    /// Split a GFM table row on unescaped `|`.
    fn split_row(line: &str) -> Vec<String> {
        let mut cells = Vec::new();
        let mut cell = String::new();
        let mut chars = line.trim().trim_start_matches('|').chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&'|') => {
                    cell.push('\\');
                    cell.push(chars.next().unwrap());
                }
                '|' => cells.push(std::mem::take(&mut cell).trim().to_string()),
                c => cell.push(c),
            }
        }
        cells
    }

    #[test]
    fn verdict_slo_table_and_step_percentiles() {
        let md = render(&summary_with(SummaryOptions::default()));
        let first = md.lines().next().unwrap();
        assert_eq!(first, "### ❌ stampede `black-friday`: 2 of 3 SLOs failed");
        assert!(md.contains("4s · started 2024-11-29T10:00:00.000Z · host `loadgen-1`"));
        assert!(md.contains("exit code 1"));
        let slos = table(&md, "| SLO |");
        assert_eq!(slos.len(), 3);
        assert_eq!(slos[0][0], "`http.latency.p95`");
        assert_eq!(slos[0][1], "\\< 40ms");
        assert!(slos[0][2].ends_with("ms") && slos[0][2].starts_with("51"));
        assert_eq!(slos[0][3], "❌");
        assert_eq!(slos[1][3], "❌");
        assert_eq!(slos[2][1], "\\>= 100/s");
        assert_eq!(slos[2][2], "100/s");
        assert_eq!(slos[2][3], "✅");

        let steps = table(&md, "| step |");
        // browse ran, never-ran has no data.
        assert_eq!(steps.len(), 2, "{md}");
        // p50 in warm-up (1.00–1.99 ms), p95 and up in the spike (51.00–51.99 ms).
        assert_eq!(
            steps[0],
            ["`browse`", "400", "100/s", "2", "2ms", "51.9ms", "52ms", "52ms"].map(str::to_owned)
        );
        assert_eq!(
            steps[1][1..],
            ["0", "0/s", "0", "–", "–", "–", "–"].map(str::to_owned)
        );
        assert!(md.contains("- `http.errors`: 2 × `timeout`"));
        assert!(md.contains("**Notes**\n\n- generator saturated in phase spike\n"));
        assert!(!md.contains("**Hub**"), "no hub table without agents");
    }

    #[test]
    fn hub_series_get_their_own_table_in_their_units() {
        let md = render(&summary_with(SummaryOptions {
            hub: true,
            ..SummaryOptions::default()
        }));
        let hub = table(&md, "| series |");
        assert_eq!(
            hub,
            vec![
                ["`hub.connect`", "`edge`", "4", "4ms", "6ms", "6ms", "6ms"].map(str::to_owned),
                // Attempts are counts, not durations.
                [
                    "`hub.reconnect.attempts`",
                    "`edge`",
                    "4",
                    "2",
                    "4",
                    "4",
                    "4"
                ]
                .map(str::to_owned),
            ]
        );
        assert!(md.contains("- `hub.errors`: 4 × `refused`"));
    }

    #[test]
    fn other_verdict_lines() {
        let first = |options: SummaryOptions| {
            render(&summary_with(options))
                .lines()
                .next()
                .unwrap()
                .to_string()
        };
        assert_eq!(
            first(SummaryOptions {
                slos: vec![("http.latency.p95".into(), "< 1s".into())],
                ..SummaryOptions::default()
            }),
            "### ✅ stampede `black-friday`: the SLO held"
        );
        assert_eq!(
            first(SummaryOptions {
                slos: vec![
                    ("http.latency.p95".into(), "< 1s".into()),
                    ("http.latency.p50".into(), "< 1s".into())
                ],
                ..SummaryOptions::default()
            }),
            "### ✅ stampede `black-friday`: all 2 SLOs held"
        );
        assert_eq!(
            first(SummaryOptions {
                slos: vec![],
                ..SummaryOptions::default()
            }),
            "### ✅ stampede `black-friday`: completed (no SLOs)"
        );
        assert_eq!(
            first(SummaryOptions {
                interrupted: true,
                ..SummaryOptions::default()
            }),
            "### ⚠️ stampede `black-friday`: interrupted; 2 of 3 SLOs failed"
        );
        let md = render(&summary_with(SummaryOptions {
            slos: vec![],
            notes: vec![],
            ..SummaryOptions::default()
        }));
        assert!(!md.contains("| SLO |") && !md.contains("**Notes**"));
    }

    #[test]
    fn names_cannot_break_the_tables_or_inject_markdown() {
        let md = render(&summary_with(SummaryOptions {
            name: "shop | `prod` <script>".into(),
            population: "p".into(),
            step: "a|b\n[x](http://evil) **@team** ``".into(),
            slos: vec![(
                "http.latency{step=a|b\n[x](http://evil) **@team** ``}.p95".into(),
                "< 1s".into(),
            )],
            notes: vec!["see <b>|</b> *now* @here".into()],
            ..SummaryOptions::default()
        }));
        assert_eq!(
            md.lines().next().unwrap(),
            "### ✅ stampede ``shop | `prod` <script>``: the SLO held"
        );
        let steps = table(&md, "| step |");
        // Every row keeps its eight cells: no `|` split a name.
        assert!(steps.iter().all(|r| r.len() == 8), "{steps:?}");
        assert_eq!(steps[0][0], "``` a\\|b [x](http://evil) **@team** `` ```");
        let slos = table(&md, "| SLO |");
        assert_eq!(slos[0].len(), 4);
        assert!(md.contains("- see \\<b\\>\\|\\</b\\> \\*now\\* \\@here\n"));
        assert_eq!(code("", true), "–");
        assert_eq!(code("`x", false), "`` `x ``");
    }
}
