//! `report.html`: the report a person reads, rebuilt from a [`Summary`].
//!
//! One self-contained document: inline CSS, charts as inline SVG (see
//! [`super::charts`]), no script, font, image or style sheet fetched — a
//! Content-Security-Policy of `default-src 'none'` makes the browser refuse
//! anything that would be. Every string that came from a scenario or a
//! target (names, steps, phases, error kinds, notes, the command line) goes
//! through [`escape`].
//!
//! # Sections, in order
//! 1. Verdicts: overall PASS / FAIL, each SLO with target, measured value
//!    and verdict; the capacity figure; a banner when the generator was
//!    saturated; notes.
//! 2. Over time, phases shaded and named: achieved vs offered throughput,
//!    latency p50 / p95 / p99, active users, hub connections, errors by
//!    kind, reconnect waves.
//! 3. Latency percentile spectrum (HTTP steps; hub events).
//! 4. Per-step table; hub tables per population and per event.
//! 5. Generator health (scheduling lag, CPU).
//! 6. Run metadata.
//! 7. The capacity estimate, with every SLO as judged on its window (see
//!    [`super::capacity`]).
//!
//! Sections without data (no users, no hub, no reconnects) are left out.

use crate::metrics::{merge_into, new_histogram, SeriesDesc};
use crate::report::capacity::{self, Estimate, Limit};
use crate::report::charts::{self, clock, Line, Scale, TimeChart, PALETTE};
use crate::report::console::SATURATED_LAG_P99_US;
use crate::report::json::{decode_histogram, CounterEntry, HistogramEntry, Summary};
use crate::report::timeline::Timeline;
use crate::slo::{format_value, Unit};
use anyhow::Context as _;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Escape `text` for HTML text and attribute values: `& < > " '`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A duration in µs for people: `850µs`, `183.2ms`, `1.5s`.
fn us(value: u64) -> String {
    format_value(Unit::Micros, value as f64)
}

/// `12,345`.
fn count(n: u64) -> String {
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

/// A rate per second: `1,234/s`, `12.5/s`, `0.25/s`.
fn rate(per_second: f64) -> String {
    if per_second >= 100.0 {
        format!("{}/s", count(per_second.round() as u64))
    } else {
        format!("{}/s", charts::number(per_second))
    }
}

/// Histogram series whose values are counts, not durations.
fn is_count_metric(metric: &str) -> bool {
    metric == "hub.reconnect.attempts"
}

const STYLE: &str = r#"
:root{--fg:#1d2330;--muted:#5b6475;--line:#dde1e8;--pass:#1a7f37;--fail:#c62828;--warn:#9a5b00;--band:#f4f6fa}
*{box-sizing:border-box;-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:#fff}
main{max-width:1200px;margin:0 auto;padding:20px 24px 48px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:19px;margin:34px 0 10px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:15px;margin:20px 0 6px}
p{margin:6px 0}
.muted{color:var(--muted)}
code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--band);padding:1px 4px;border-radius:3px}
nav{margin:10px 0 0;font-size:13px}
nav a{color:var(--muted);margin-right:14px;text-decoration:none}
.overall{display:flex;align-items:center;gap:22px;margin:18px 0 8px;padding:16px 20px;border-radius:8px;border:2px solid}
.overall.pass{border-color:var(--pass);background:#eaf6ed}
.overall.fail{border-color:var(--fail);background:#fdecec}
.overall.none{border-color:var(--line);background:var(--band)}
.overall .word{font-size:44px;font-weight:800;letter-spacing:2px}
.overall.pass .word{color:var(--pass)}
.overall.fail .word{color:var(--fail)}
.overall .what{font-size:15px}
.banner{margin:14px 0;padding:12px 16px;border-radius:6px;font-weight:600}
.banner.saturated{background:var(--fail);color:#fff;font-size:17px}
.banner.warn{background:#fff4e0;border:1px solid #f0c36d;color:var(--warn)}
table{border-collapse:collapse;width:100%;margin:6px 0 10px;font-size:13.5px}
th,td{padding:5px 9px;border-bottom:1px solid var(--line);text-align:right;vertical-align:top}
th{background:var(--band);font-weight:600;white-space:nowrap}
th:first-child,td:first-child,td.text,th.text{text-align:left}
td.kinds{text-align:left;color:var(--fail);font-size:12.5px}
tr:nth-child(even) td{background:#fafbfc}
.verdict-pass{color:var(--pass);font-weight:700}
.verdict-fail{color:var(--fail);font-weight:700}
.meta th{width:190px;text-align:left}
.meta td{text-align:left}
figure{margin:12px 0 20px;break-inside:avoid;page-break-inside:avoid}
figure svg{display:block;width:100%;height:auto}
figcaption{font-weight:600;margin-bottom:2px}
.legend{font-size:12.5px;color:var(--muted);margin-top:2px}
.legend span{margin-right:16px;white-space:nowrap}
.legend i{display:inline-block;width:18px;height:3px;margin:0 5px 3px 0;vertical-align:middle}
.capacity{font-size:30px;font-weight:700;margin:4px 0}
.headline{font-size:15px;margin:4px 0}
footer{margin-top:40px;font-size:12px;color:var(--muted)}
@page{size:A4 landscape;margin:12mm}
@media print{
 body{font-size:10.5pt}
 main{max-width:none;padding:0}
 nav{display:none}
 h2{break-after:avoid;page-break-after:avoid}
 table,figure,.overall,.banner{break-inside:avoid;page-break-inside:avoid}
 tr:nth-child(even) td{background:none}
}
"#;

/// File name of the report inside a result directory.
pub const FILE_NAME: &str = "report.html";

/// Render `summary` and write `dir/report.html` atomically (temp file +
/// rename): the whole document is rendered before anything is written, so
/// a failure never leaves a half-written report. Returns its path.
pub fn write(dir: &Path, summary: &Summary) -> anyhow::Result<PathBuf> {
    let document = render(summary)?;
    let path = dir.join(FILE_NAME);
    crate::report::write_atomic(&path, document.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Render the whole document.
pub fn render(summary: &Summary) -> anyhow::Result<String> {
    let report = Report::new(summary);
    let mut out = String::with_capacity(256 * 1024);
    let title = format!("{} — stampede report", summary.meta.name);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        escape(&title)
    );
    let mut body = String::with_capacity(512 * 1024);
    report.verdicts(&mut body);
    report.over_time(&mut body)?;
    report.spectrum(&mut body)?;
    report.step_table(&mut body);
    report.hub_tables(&mut body);
    report.generator(&mut body)?;
    report.metadata(&mut body);
    report.capacity(&mut body);
    report.header(&mut out, &body);
    out.push_str(&body);
    let _ = write!(
        out,
        "<footer>stampede {} · generated from summary.json (schema {})</footer>\n</main>\n</body>\n</html>\n",
        escape(&summary.meta.stampede_version),
        summary.schema_version
    );
    Ok(out)
}

/// What the sections share.
struct Report<'a> {
    summary: &'a Summary,
    timeline: Timeline<'a>,
    estimate: Estimate,
    /// The run has user populations (HTTP steps).
    users: bool,
    /// The run has hub agents or commanders.
    hub: bool,
    /// Right end of the time axis.
    x_end: f64,
    /// Interval end times (x of every time-series point).
    xs: Vec<f64>,
}

impl<'a> Report<'a> {
    fn new(summary: &'a Summary) -> Report<'a> {
        let timeline = Timeline::new(summary);
        let users = summary
            .layout
            .counters
            .iter()
            .any(|d| d.metric == "http.requests");
        let hub = summary.layout.gauges.iter().any(|g| g == "hub.connected")
            || summary
                .layout
                .counters
                .iter()
                .any(|d| d.metric == "hub.connects");
        let x_end = (timeline.ends.last().copied().unwrap_or(0.0))
            .max(summary.meta.duration_s)
            .max(summary.phases.iter().map(|p| p.end_s).fold(0.0, f64::max));
        let xs = timeline.ends.clone();
        Report {
            estimate: capacity::estimate(summary),
            summary,
            timeline,
            users,
            hub,
            x_end,
            xs,
        }
    }

    /// Pair the interval ends with `ys`.
    fn points(&self, ys: impl IntoIterator<Item = f64>) -> Vec<(f64, f64)> {
        self.xs.iter().copied().zip(ys).collect()
    }

    /// The all-phases histogram entry of series `id`.
    fn overall(&self, id: usize) -> Option<&'a HistogramEntry> {
        self.summary
            .histograms
            .iter()
            .find(|h| h.id as usize == id && h.phase.is_none())
    }

    /// Run total of counters matching `keep`.
    fn total(&self, keep: impl Fn(&CounterEntry) -> bool) -> u64 {
        (self.summary.counters.iter())
            .filter(|c| keep(c))
            .map(|c| c.total)
            .fold(0, u64::saturating_add)
    }

    /// `3 × timeout, 1 × http_5xx` for the counters matching `keep` that
    /// carry a kind; empty when none counted anything.
    fn kinds(&self, keep: impl Fn(&CounterEntry) -> bool) -> String {
        let mut by_kind: BTreeMap<&str, u64> = BTreeMap::new();
        for c in &self.summary.counters {
            if let Some(kind) = c.kind.as_deref().filter(|_| c.total > 0 && keep(c)) {
                *by_kind.entry(kind).or_default() += c.total;
            }
        }
        let mut kinds: Vec<(&str, u64)> = by_kind.into_iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        kinds
            .iter()
            .map(|(kind, n)| format!("{} × {}", count(*n), escape(kind)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn saturated(&self) -> Option<(u64, u64)> {
        let ids = self.timeline.hists(|d| d.metric == "generator.lag");
        let entry = ids.iter().find_map(|&id| self.overall(id))?;
        (entry.p99 > SATURATED_LAG_P99_US).then_some((entry.p99, entry.max))
    }

    /// The title, a line about the run, and links to the sections `body`
    /// has.
    fn header(&self, out: &mut String, body: &str) {
        let meta = &self.summary.meta;
        let _ = write!(
            out,
            "<header>\n<h1>{}</h1>\n<p class=\"muted\">{} · started {} · {} on {}{}</p>\n",
            escape(&meta.name),
            escape(&meta.scenario_path),
            escape(&meta.started_at),
            clock(meta.duration_s),
            escape(&meta.host),
            if meta.interrupted {
                " · <strong>interrupted</strong>"
            } else {
                ""
            }
        );
        out.push_str("<nav>");
        for (id, text) in [
            ("verdicts", "Verdicts"),
            ("over-time", "Over time"),
            ("spectrum", "Percentiles"),
            ("steps", "Steps"),
            ("hub", "Hub"),
            ("generator", "Generator"),
            ("run", "Run"),
            ("capacity", "Capacity"),
        ] {
            if body.contains(&format!("<section id=\"{id}\"")) {
                let _ = write!(out, "<a href=\"#{id}\">{text}</a>");
            }
        }
        out.push_str("</nav>\n</header>\n");
    }

    fn verdicts(&self, out: &mut String) {
        let verdicts = &self.summary.verdicts;
        let failed = verdicts.iter().filter(|v| !v.pass).count();
        let (class, word, what) = if verdicts.is_empty() {
            (
                "none",
                "NO SLOs",
                "nothing to judge: the run passes unless interrupted".to_string(),
            )
        } else if failed == 0 {
            ("pass", "PASS", format!("all {} SLOs met", verdicts.len()))
        } else {
            (
                "fail",
                "FAIL",
                format!("{failed} of {} SLOs failed", verdicts.len()),
            )
        };
        let _ = write!(
            out,
            "<section id=\"verdicts\">\n<div class=\"overall {class}\"><div class=\"word\">{word}</div><div class=\"what\">{what}{}</div></div>\n",
            if self.summary.meta.interrupted {
                "<br><strong>The run was interrupted</strong>: results cover what ran."
            } else {
                ""
            }
        );
        if !verdicts.is_empty() {
            out.push_str("<table>\n<tr><th>SLO</th><th class=\"text\">target</th><th>measured</th><th>verdict</th></tr>\n");
            for v in verdicts {
                let _ = writeln!(
                    out,
                    "<tr><td><code>{}</code></td><td class=\"text\">{}</td><td>{}</td><td class=\"{}\">{}</td></tr>",
                    escape(&v.slo.key),
                    escape(&v.slo.target),
                    escape(&v.measured_text),
                    if v.pass { "verdict-pass" } else { "verdict-fail" },
                    if v.pass { "✓ pass" } else { "✗ FAIL" }
                );
            }
            out.push_str("</table>\n");
        }
        if let Some((p99, max)) = self.saturated() {
            let _ = writeln!(
                out,
                "<div class=\"banner saturated\">GENERATOR SATURATED — 1% of arrivals were made more than {} late (p99 of generator.lag; max {}). The offered load was not held: the results understate what the target was asked to do. Use more CPU, more processes, or a lower rate.</div>",
                us(p99),
                us(max)
            );
        }
        if let Estimate::Found(w) = &self.estimate {
            let _ = writeln!(
                out,
                "<p class=\"headline\">Capacity estimate: <strong>{}{}</strong> successful requests sustained for {} s with every SLO met ({} – {}). <a href=\"#capacity\">How it is measured</a></p>",
                if w.limit.is_some() { "" } else { "at least " },
                rate(w.achieved_per_s),
                (w.end_s - w.start_s).round(),
                clock(w.start_s),
                clock(w.end_s)
            );
        }
        for note in &self.summary.meta.notes {
            // The saturation note has its own banner.
            if self.saturated().is_some() && note.starts_with("GENERATOR SATURATED") {
                continue;
            }
            let _ = writeln!(out, "<div class=\"banner warn\">{}</div>", escape(note));
        }
        out.push_str("</section>\n");
    }

    fn figure(
        &self,
        out: &mut String,
        caption: &str,
        note: &str,
        chart: &TimeChart,
    ) -> anyhow::Result<()> {
        let svg = charts::time_chart(chart)?;
        let _ = write!(
            out,
            "<figure>\n<figcaption>{caption}</figcaption>\n{svg}{}",
            charts::legend_html(&chart.lines, escape)
        );
        if !note.is_empty() {
            let _ = write!(out, "<p class=\"muted\">{note}</p>");
        }
        out.push_str("</figure>\n");
        Ok(())
    }

    fn chart(&self, lines: Vec<Line>, y_desc: &'a str, y_scale: Scale) -> TimeChart<'a> {
        TimeChart {
            lines,
            phases: &self.summary.phases,
            x_end: self.x_end,
            y_desc,
            y_scale,
            y2: None,
        }
    }

    fn over_time(&self, out: &mut String) -> anyhow::Result<()> {
        if !(self.users || self.hub) || self.timeline.is_empty() {
            return Ok(());
        }
        out.push_str("<section id=\"over-time\">\n<h2>Over time</h2>\n");
        let tl = &self.timeline;
        if self.users {
            let requests = tl.counts(&tl.counters_of("http.requests"));
            let errors = tl.counts(&tl.counters_of("http.errors"));
            let achieved = self.points(
                (0..tl.len())
                    .map(|i| requests[i].saturating_sub(errors[i]) as f64 / tl.rate_width(i)),
            );
            let failed = self.points((0..tl.len()).map(|i| errors[i] as f64 / tl.rate_width(i)));
            let mut lines =
                vec![Line::new("achieved (successful requests/s)", achieved, PALETTE[0]).width(2)];
            let mut note = String::new();
            if let (Some(arrivals), Some(k)) = (tl.arrivals(), tl.requests_per_journey()) {
                let offered =
                    self.points((0..tl.len()).map(|i| arrivals[i] * k / tl.rate_width(i)));
                lines.insert(
                    0,
                    Line::new(
                        format!("offered (journeys started/s × {})", charts::number(k)),
                        offered,
                        charts::LIGHT,
                    )
                    .width(3),
                );
                let _ = write!(
                    note,
                    "Offered = journeys started per second × {} requests per journey (a journey's steps, weighted by how many journeys each population started). A journey stops at its first failed step.",
                    charts::number(k)
                );
            }
            if errors.iter().any(|&e| e > 0) {
                lines.push(Line::new("failed requests/s", failed, PALETTE[1]));
            }
            self.figure(
                out,
                "Throughput: achieved vs offered",
                &note,
                &self.chart(lines, "requests/s", Scale::Number),
            )?;

            let latency = tl.hists(|d| d.metric == "http.latency");
            let several = latency.len() > 1;
            let line = |label: &str, pick: fn(&crate::metrics::IntervalStats) -> u64, color| {
                let ys = tl
                    .worst(&latency, pick)
                    .into_iter()
                    .map(|v| v.map_or(f64::NAN, |v| v as f64 / 1e3));
                Line::new(
                    if several {
                        format!("{label} (slowest step)")
                    } else {
                        label.to_string()
                    },
                    self.points(ys),
                    color,
                )
            };
            let lines = vec![
                line("p50", |s| s.p50, PALETTE[2]),
                line("p95", |s| s.p95, PALETTE[3]).width(2),
                line("p99", |s| s.p99, PALETTE[1]),
            ];
            self.figure(
                out,
                "Latency per second (from the intended start)",
                if several {
                    "Each second, the highest value of that percentile over the steps; gaps are seconds without a response."
                } else {
                    "Gaps are seconds without a response."
                },
                &self.chart(lines, "latency", Scale::Millis),
            )?;

            let mut lines = Vec::new();
            for (i, (name, label)) in [
                ("users.vus", "virtual users"),
                ("users.in_flight", "journeys in flight"),
                ("users.queued", "arrivals queued"),
            ]
            .into_iter()
            .enumerate()
            {
                if let Some(values) = tl.gauge(name) {
                    if values.iter().any(|&v| v > 0.0) {
                        lines.push(Line::new(label, self.points(values), PALETTE[i]).width(2));
                    }
                }
            }
            if !lines.is_empty() {
                self.figure(
                    out,
                    "Active users",
                    "",
                    &self.chart(lines, "users", Scale::Number),
                )?;
            }
        }
        if self.hub {
            let mut lines = Vec::new();
            for (i, (name, label)) in [
                ("hub.connected", "connected"),
                ("hub.registered", "registered"),
            ]
            .into_iter()
            .enumerate()
            {
                if let Some(values) = tl.gauge(name) {
                    // Connected is drawn wide and light so that registered,
                    // usually on top of it, leaves it visible.
                    lines.push(if i == 0 {
                        Line::new(label, self.points(values), charts::LIGHT).width(4)
                    } else {
                        Line::new(label, self.points(values), PALETTE[i]).width(2)
                    });
                }
            }
            if !lines.is_empty() {
                self.figure(
                    out,
                    "Hub connections",
                    "",
                    &self.chart(lines, "connections", Scale::Number),
                )?;
            }
        }
        self.errors_chart(out)?;
        self.reconnect_chart(out)?;
        out.push_str("</section>\n");
        Ok(())
    }

    fn errors_chart(&self, out: &mut String) -> anyhow::Result<()> {
        let tl = &self.timeline;
        // (label, counter ids) per metric × kind that counted something.
        let mut groups: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
        for (id, desc) in self.summary.layout.counters.iter().enumerate() {
            let prefix = match desc.metric.as_str() {
                "http.errors" => "http",
                "hub.errors" => "hub error",
                "hub.disconnects" => "hub disconnect",
                _ => continue,
            };
            let Some(kind) = &desc.kind else { continue };
            groups
                .entry((prefix.to_string(), kind.clone()))
                .or_default()
                .push(id);
        }
        let mut totals: Vec<(String, Vec<usize>, u64)> = groups
            .into_iter()
            .map(|((prefix, kind), ids)| {
                let total = tl.total(&ids);
                (format!("{prefix} {kind}"), ids, total)
            })
            .filter(|g| g.2 > 0)
            .collect();
        if totals.is_empty() {
            if self.users || self.hub {
                out.push_str("<h3>Errors by kind</h3>\n<p>No errors were counted.</p>\n");
            }
            return Ok(());
        }
        totals.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
        let max_lines = PALETTE.len();
        if totals.len() > max_lines {
            let rest: Vec<(String, Vec<usize>, u64)> = totals.split_off(max_lines - 1);
            let ids = rest.iter().flat_map(|g| g.1.iter().copied()).collect();
            let total = rest.iter().map(|g| g.2).sum();
            totals.push((format!("{} other kinds", rest.len()), ids, total));
        }
        let lines = totals
            .iter()
            .enumerate()
            .map(|(i, (label, ids, total))| {
                Line::new(
                    format!("{label} ({})", count(*total)),
                    self.points(tl.rates(ids)),
                    PALETTE[(i + 1) % PALETTE.len()],
                )
                .width(2)
            })
            .collect();
        self.figure(
            out,
            "Errors by kind",
            "Per second; the legend gives each kind's total.",
            &self.chart(lines, "per second", Scale::Number),
        )
    }

    fn reconnect_chart(&self, out: &mut String) -> anyhow::Result<()> {
        let tl = &self.timeline;
        let reconnects = tl.counters_of("hub.reconnects");
        let disconnects = tl.counters_of("hub.disconnects");
        if !self.hub || tl.total(&reconnects) + tl.total(&disconnects) == 0 {
            return Ok(());
        }
        let mut lines = vec![
            Line::new(
                "reconnects/s",
                self.points(tl.rates(&reconnects)),
                PALETTE[0],
            )
            .width(2),
            Line::new(
                "disconnects/s",
                self.points(tl.rates(&disconnects)),
                PALETTE[1],
            ),
        ];
        if let Some(registered) = tl.gauge("hub.registered") {
            lines.push(
                Line::new(
                    "registered agents (right axis)",
                    self.points(registered),
                    PALETTE[2],
                )
                .width(2)
                .right(),
            );
        }
        let mut chart = self.chart(lines, "per second", Scale::Number);
        chart.y2 = Some(("registered", Scale::Number));
        let recovery = self
            .timeline
            .hists(|d| d.metric == "hub.recovery")
            .iter()
            .filter_map(|&id| self.overall(id))
            .map(|h| {
                format!(
                    "{} drop event(s) recovered, slowest in {}",
                    h.count,
                    us(h.max)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        self.figure(out, "Reconnect waves", &escape(&recovery), &chart)
    }

    fn spectrum(&self, out: &mut String) -> anyhow::Result<()> {
        let http: Vec<(String, usize)> = (self.timeline.hists(|d| d.metric == "http.latency"))
            .into_iter()
            .map(|id| (self.step_label(&self.summary.layout.hists[id]), id))
            .collect();
        let hub = |keep: &dyn Fn(&str) -> bool| -> Vec<(String, usize)> {
            (self
                .timeline
                .hists(|d| d.metric.starts_with("hub.") && keep(&d.metric)))
            .into_iter()
            .map(|id| {
                let d = &self.summary.layout.hists[id];
                let event = if d.step.is_empty() {
                    d.metric.clone()
                } else {
                    format!("{} `{}`", d.metric, d.step)
                };
                (format!("{event} · {}", d.population), id)
            })
            .collect()
        };
        // Reconnects include the backoff delay: seconds, where the other
        // events take milliseconds; they get their own chart.
        let events = hub(&|m| !is_count_metric(m) && m != "hub.recovery" && m != "hub.reconnect");
        let reconnects = hub(&|m| m == "hub.reconnect");
        let groups = [
            ("HTTP steps (latency from the intended start)", http),
            ("Hub events", events),
            (
                "Hub reconnects (drop → registered again, backoff included)",
                reconnects,
            ),
        ];
        let mut wrote = false;
        for (caption, series) in groups {
            let mut lines = Vec::new();
            let mut x_end: f64 = 100.0;
            let mut with_data: Vec<(String, &HistogramEntry)> = series
                .into_iter()
                .filter_map(|(label, id)| self.overall(id).map(|h| (label, h)))
                .filter(|(_, h)| h.count > 0)
                .collect();
            with_data.sort_by_key(|s| std::cmp::Reverse(s.1.count));
            let shown = with_data.len().min(PALETTE.len());
            let left_out = with_data.len() - shown;
            for (i, (label, entry)) in with_data.into_iter().take(shown).enumerate() {
                let h = decode_histogram(&entry.hdr)?;
                let cap = 10f64.powi((h.len().max(10) as f64).log10().ceil() as i32);
                x_end = x_end.max(cap);
                let mut points: Vec<(f64, f64)> = h
                    .iter_quantiles(4)
                    .map(|v| {
                        let q = v.quantile_iterated_to();
                        let x = if q >= 1.0 {
                            cap
                        } else {
                            charts::spectrum_x(q).min(cap)
                        };
                        (x, v.value_iterated_to() as f64 / 1e3)
                    })
                    .collect();
                points.dedup_by(|b, a| a.0 == b.0 && a.1 == b.1);
                lines.push(Line::new(label, points, PALETTE[i]).width(2));
            }
            if lines.is_empty() {
                continue;
            }
            if !wrote {
                out.push_str("<section id=\"spectrum\">\n<h2>Latency percentile spectrum</h2>\n<p class=\"muted\">Each series over the whole run, as HdrHistogram plots it: the percentile on a log scale of 1/(1−p), so the tail gets the room.</p>\n");
                wrote = true;
            }
            let svg = charts::spectrum_chart(&lines, x_end)?;
            let _ = write!(
                out,
                "<figure>\n<figcaption>{caption}</figcaption>\n{svg}{}",
                charts::legend_html(&lines, escape)
            );
            if left_out > 0 {
                let _ = write!(
                    out,
                    "<p class=\"muted\">The {} series with the most samples are shown; {left_out} more are in the tables.</p>",
                    shown
                );
            }
            out.push_str("</figure>\n");
        }
        if wrote {
            out.push_str("</section>\n");
        }
        Ok(())
    }

    /// `step`, or `population / step` when the run has several populations.
    fn step_label(&self, desc: &SeriesDesc) -> String {
        let mut populations = self
            .summary
            .layout
            .hists
            .iter()
            .filter(|d| d.metric == "http.latency")
            .map(|d| d.population.as_str());
        let first = populations.next();
        if populations.all(|p| Some(p) == first) {
            desc.step.clone()
        } else {
            format!("{} / {}", desc.population, desc.step)
        }
    }

    fn latency_cells(&self, h: Option<(u64, u64, u64, u64)>, counts: bool) -> String {
        let fmt = |v: u64| if counts { count(v) } else { us(v) };
        match h {
            Some((p50, p95, p99, max)) => format!(
                "<td>{}</td><td>{}</td><td>{}</td><td>{}</td>",
                fmt(p50),
                fmt(p95),
                fmt(p99),
                fmt(max)
            ),
            None => "<td>-</td><td>-</td><td>-</td><td>-</td>".into(),
        }
    }

    fn step_table(&self, out: &mut String) {
        if !self.users {
            return;
        }
        let seconds = self.summary.meta.duration_s.max(1e-9);
        let _ = write!(
            out,
            "<section id=\"steps\">\n<h2>Steps</h2>\n<p class=\"muted\">Latency from the intended start (corrected for coordinated omission), over the whole run ({}); rate = requests ÷ the run's length.</p>\n<table>\n<tr><th>step</th><th>requests</th><th>rate</th><th>p50</th><th>p95</th><th>p99</th><th>max</th><th>errors</th><th class=\"text\">errors by kind</th></tr>\n",
            clock(seconds)
        );
        let steps: Vec<&SeriesDesc> = (self.summary.layout.counters.iter())
            .filter(|d| d.metric == "http.requests")
            .collect();
        let mut merged = new_histogram();
        for desc in &steps {
            let same =
                |population: &str, step: &str| population == desc.population && step == desc.step;
            let requests =
                self.total(|c| c.metric == "http.requests" && same(&c.population, &c.step));
            let errors = self.total(|c| c.metric == "http.errors" && same(&c.population, &c.step));
            let latency = (self
                .timeline
                .hists(|d| d.metric == "http.latency" && same(&d.population, &d.step)))
            .first()
            .and_then(|&id| self.overall(id));
            if let Some(h) = latency.and_then(|e| decode_histogram(&e.hdr).ok()) {
                merge_into(&mut merged, &h);
            }
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td>{}<td>{}</td><td class=\"kinds\">{}</td></tr>",
                escape(&self.step_label(desc)),
                count(requests),
                rate(requests as f64 / seconds),
                self.latency_cells(latency.map(|h| (h.p50, h.p95, h.p99, h.max)), false),
                count(errors),
                self.kinds(|c| c.metric == "http.errors" && same(&c.population, &c.step)),
            );
        }
        if steps.len() > 1 {
            let requests = self.total(|d| d.metric == "http.requests");
            let errors = self.total(|d| d.metric == "http.errors");
            let stats = (!merged.is_empty()).then(|| {
                (
                    merged.value_at_quantile(0.5),
                    merged.value_at_quantile(0.95),
                    merged.value_at_quantile(0.99),
                    merged.max(),
                )
            });
            let _ = writeln!(
                out,
                "<tr><th class=\"text\">all steps</th><th>{}</th><th>{}</th>{}<th>{}</th><th class=\"text\">{}</th></tr>",
                count(requests),
                rate(requests as f64 / seconds),
                self.latency_cells(stats, false).replace("td>", "th>"),
                count(errors),
                self.kinds(|d| d.metric == "http.errors"),
            );
        }
        out.push_str("</table>\n</section>\n");
    }

    fn hub_tables(&self, out: &mut String) {
        if !self.hub {
            return;
        }
        let seconds = self.summary.meta.duration_s.max(1e-9);
        out.push_str("<section id=\"hub\">\n<h2>Hub</h2>\n<h3>Connections per population</h3>\n<table>\n<tr><th>population</th><th>connects</th><th>registrations</th><th>reconnects</th><th>commands sent</th><th>received</th><th>undelivered</th><th class=\"text\">errors by kind</th><th class=\"text\">disconnects by kind</th></tr>\n");
        let mut populations: Vec<&str> = Vec::new();
        for d in &self.summary.layout.counters {
            if d.metric.starts_with("hub.")
                && !d.population.is_empty()
                && !populations.contains(&d.population.as_str())
            {
                populations.push(&d.population);
            }
        }
        for pop in &populations {
            let sum = |metric: &str| self.total(|d| d.metric == metric && d.population == *pop);
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"kinds\">{}</td><td class=\"kinds\">{}</td></tr>",
                escape(pop),
                count(sum("hub.connects")),
                count(sum("hub.registrations")),
                count(sum("hub.reconnects")),
                count(sum("hub.commands")),
                count(sum("hub.command.received")),
                count(sum("hub.command.undelivered")),
                self.kinds(|d| d.metric == "hub.errors" && d.population == *pop),
                self.kinds(|d| d.metric == "hub.disconnects" && d.population == *pop),
            );
        }
        out.push_str("</table>\n");

        out.push_str("<h3>Events</h3>\n<table>\n<tr><th>event</th><th class=\"text\">population</th><th>count</th><th>rate</th><th>p50</th><th>p95</th><th>p99</th><th>max</th><th class=\"text\">errors / disconnects by kind</th></tr>\n");
        for (id, desc) in self.summary.layout.hists.iter().enumerate() {
            if !desc.metric.starts_with("hub.") {
                continue;
            }
            let Some(h) = self.overall(id) else { continue };
            let event = if desc.step.is_empty() {
                format!("<code>{}</code>", escape(&desc.metric))
            } else {
                format!(
                    "<code>{}</code> {}",
                    escape(&desc.metric),
                    escape(&desc.step)
                )
            };
            // Connection errors belong to connecting; disconnects are what
            // the reconnects answered.
            let kinds = match desc.metric.as_str() {
                "hub.connect" => {
                    self.kinds(|d| d.metric == "hub.errors" && d.population == desc.population)
                }
                "hub.reconnect" => {
                    self.kinds(|d| d.metric == "hub.disconnects" && d.population == desc.population)
                }
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "<tr><td>{event}</td><td class=\"text\">{}</td><td>{}</td><td>{}</td>{}<td class=\"kinds\">{kinds}</td></tr>",
                escape(if desc.population.is_empty() { "all" } else { &desc.population }),
                count(h.count),
                rate(h.count as f64 / seconds),
                self.latency_cells(Some((h.p50, h.p95, h.p99, h.max)), is_count_metric(&desc.metric)),
            );
        }
        out.push_str("</table>\n<p class=\"muted\"><code>hub.reconnect</code> runs from the drop to registered again, backoff included; <code>hub.reconnect.attempts</code> (when present) is a count of attempts per reconnect, not a time.</p>\n</section>\n");
    }

    fn generator(&self, out: &mut String) -> anyhow::Result<()> {
        let tl = &self.timeline;
        out.push_str("<section id=\"generator\">\n<h2>Generator health</h2>\n");
        let lag_ids = tl.hists(|d| d.metric == "generator.lag");
        let lag = lag_ids.iter().find_map(|&id| self.overall(id));
        if let Some((p99, _)) = self.saturated() {
            let _ = writeln!(
                out,
                "<div class=\"banner saturated\">GENERATOR SATURATED — p99 scheduling lag {} (limit {}). Arrivals were made late, so the target was offered less than planned.</div>",
                us(p99),
                us(SATURATED_LAG_P99_US)
            );
        }
        let cpu = tl.gauge("generator.cpu");
        let mut facts = Vec::new();
        if let Some(h) = lag {
            facts.push(format!(
                "scheduling lag (how late arrivals were made): p50 {}, p99 {}, max {}",
                us(h.p50),
                us(h.p99),
                us(h.max)
            ));
        }
        if let Some(cpu) = cpu.as_ref().filter(|c| !c.is_empty()) {
            let mean = cpu.iter().sum::<f64>() / cpu.len() as f64;
            let peak = cpu.iter().copied().fold(0.0, f64::max);
            facts.push(format!(
                "process CPU: mean {}%, peak {}% (100% = one core)",
                charts::number(mean),
                charts::number(peak)
            ));
        }
        if !facts.is_empty() {
            let _ = writeln!(out, "<p>{}</p>", facts.join(" · "));
        }
        let mut lines = Vec::new();
        if lag.is_some() {
            let ys = tl
                .worst(&lag_ids, |s| s.p99)
                .into_iter()
                .map(|v| v.map_or(f64::NAN, |v| v as f64 / 1e3));
            lines.push(Line::new("lag p99", self.points(ys), PALETTE[1]).width(2));
        }
        let with_lag = !lines.is_empty();
        if let Some(cpu) = cpu {
            lines.push(if with_lag {
                Line::new("CPU (right axis)", self.points(cpu), PALETTE[0]).right()
            } else {
                Line::new("CPU", self.points(cpu), PALETTE[0]).width(2)
            });
        }
        if !lines.is_empty() && !tl.is_empty() {
            let mut chart = if with_lag {
                self.chart(lines, "lag p99", Scale::Millis)
            } else {
                self.chart(lines, "CPU", Scale::Percent)
            };
            if with_lag {
                chart.y2 = Some(("CPU", Scale::Percent));
            }
            self.figure(
                out,
                "Scheduling lag and CPU",
                &format!(
                    "The generator is saturated when the p99 lag exceeds {}.",
                    us(SATURATED_LAG_P99_US)
                ),
                &chart,
            )?;
        }
        out.push_str("</section>\n");
        Ok(())
    }

    fn metadata(&self, out: &mut String) {
        let meta = &self.summary.meta;
        let command = meta
            .command_line
            .iter()
            .map(|arg| {
                if arg.is_empty()
                    || arg.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"')
                {
                    format!("'{}'", arg.replace('\'', "'\\''"))
                } else {
                    arg.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        let phases = self
            .summary
            .phases
            .iter()
            .map(|p| {
                format!(
                    "{} ({} – {})",
                    escape(&p.name),
                    clock(p.start_s),
                    clock(p.end_s)
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        let rows: Vec<(&str, String)> = vec![
            ("scenario", escape(&meta.name)),
            (
                "scenario file",
                format!("<code>{}</code>", escape(&meta.scenario_path)),
            ),
            (
                "content hash (SHA-256)",
                format!("<code>{}</code>", escape(&meta.scenario_hash)),
            ),
            ("stampede version", escape(&meta.stampede_version)),
            ("started", escape(&meta.started_at)),
            ("ended", escape(&meta.ended_at)),
            (
                "duration",
                format!("{} ({:.1} s)", clock(meta.duration_s), meta.duration_s),
            ),
            ("phases", phases),
            ("host", escape(&meta.host)),
            (
                "command line",
                format!(
                    "<code>{}</code> <span class=\"muted\">(secrets redacted)</span>",
                    escape(&command)
                ),
            ),
            ("seed", meta.seed.to_string()),
            ("exit code", meta.exit_code.to_string()),
            (
                "interrupted",
                if meta.interrupted {
                    "yes".into()
                } else {
                    "no".into()
                },
            ),
        ];
        out.push_str("<section id=\"run\">\n<h2>Run</h2>\n<table class=\"meta\">\n");
        for (name, value) in rows {
            let _ = writeln!(out, "<tr><th>{name}</th><td>{value}</td></tr>");
        }
        if !meta.notes.is_empty() {
            let notes: Vec<String> = meta
                .notes
                .iter()
                .map(|n| format!("<li>{}</li>", escape(n)))
                .collect();
            let _ = writeln!(
                out,
                "<tr><th>notes</th><td><ul>{}</ul></td></tr>",
                notes.join("")
            );
        }
        out.push_str("</table>\n</section>\n");
    }

    fn capacity(&self, out: &mut String) {
        let rule = format!(
            "The capacity estimate is the {w}-second window (of every run of {w} consecutive seconds) with the highest achieved rate in which the offered load was achieved (successful requests ≥ {share}% of journeys started × requests per journey), the generator kept up (p99 lag ≤ {lag} every second) and every SLO was met on the window's own data. Per-second data holds p50 / p95 / p99 / max, not whole histograms, so a percentile SLO is judged on a bound never in its favour: under <code>&lt;</code> the highest per-second value of the first tracked percentile at or above it (an upper bound on the window's percentile). Error and request rates are exact; count, min and mean SLOs use the run's verdict.",
            w = capacity::WINDOW,
            share = (capacity::ACHIEVED_SHARE * 100.0).round(),
            lag = us(SATURATED_LAG_P99_US),
        );
        let body = match &self.estimate {
            Estimate::NoUserLoad => return,
            Estimate::TooShort { intervals } => format!(
                "<p>No estimate: the run has {intervals} one-second intervals, fewer than one {}-second window.</p>",
                capacity::WINDOW
            ),
            Estimate::NotFound {
                windows,
                not_achieved,
                generator_behind,
                slo_failed,
            } => {
                let mut reasons = Vec::new();
                if *not_achieved > 0 {
                    reasons.push(format!("{} did not achieve the offered load", count(*not_achieved as u64)));
                }
                if *generator_behind > 0 {
                    reasons.push(format!("{} had the generator behind", count(*generator_behind as u64)));
                }
                for (key, n) in slo_failed {
                    reasons.push(format!("{} failed <code>{}</code>", count(*n as u64), escape(key)));
                }
                format!(
                    "<p class=\"capacity verdict-fail\">No window qualified</p><p>Of {} windows: {}.</p>",
                    count(*windows as u64),
                    reasons.join("; ")
                )
            }
            Estimate::Found(w) => {
                let mut body = format!(
                    "<p class=\"capacity\">{}{} successful requests</p>\n<p>sustained from {} to {} (phase{} {}): offered {} = {} journeys/s × {} requests per journey; achieved {}% of it.</p>\n",
                    if w.limit.is_some() { "" } else { "≥ " },
                    rate(w.achieved_per_s),
                    clock(w.start_s),
                    clock(w.end_s),
                    if w.phases.len() == 1 { "" } else { "s" },
                    w.phases.iter().map(|p| escape(p)).collect::<Vec<_>>().join(", "),
                    rate(w.offered_per_s),
                    charts::number(w.arrivals_per_s),
                    charts::number(w.requests_per_journey),
                    (w.achieved_per_s / w.offered_per_s * 100.0).round(),
                );
                let limit = match &w.limit {
                    Some(Limit::NotAchieved) => format!(
                        "Windows offering more load did not achieve {}% of it: this is where the target stopped keeping up.",
                        (capacity::ACHIEVED_SHARE * 100.0).round()
                    ),
                    Some(Limit::Slo(key)) => format!(
                        "At the next higher load, <code>{}</code> was not met: this is where the target stopped meeting its SLOs.",
                        escape(key)
                    ),
                    Some(Limit::GeneratorBehind) => format!(
                        "<strong>The generator was the limit:</strong> at the next higher load its p99 lag passed {}, so that load was not offered as planned. The target may handle more; use more CPU or more processes to find out.",
                        us(SATURATED_LAG_P99_US)
                    ),
                    None => "<strong>A lower bound:</strong> no window offered more load than the target handled, so the run did not find its limit. Offer more load to find it.".to_string(),
                };
                let _ = writeln!(body, "<p>{limit}</p>");
                if !w.checks.is_empty() {
                    body.push_str("<table>\n<tr><th>SLO</th><th class=\"text\">target</th><th>in the window</th><th class=\"text\">how</th><th>verdict</th></tr>\n");
                    for c in &w.checks {
                        let _ = writeln!(
                            body,
                            "<tr><td><code>{}</code></td><td class=\"text\">{}</td><td>{}</td><td class=\"text\">{}</td><td class=\"{}\">{}</td></tr>",
                            escape(&c.key),
                            escape(&c.target),
                            escape(&c.measured_text),
                            escape(&c.basis.describe()),
                            if c.pass { "verdict-pass" } else { "verdict-fail" },
                            if c.pass { "✓ met" } else { "✗ not met" }
                        );
                    }
                    body.push_str("</table>\n");
                }
                body
            }
        };
        let _ = write!(
            out,
            "<section id=\"capacity\">\n<h2>Capacity estimate</h2>\n{body}<p class=\"muted\">{rule}</p>\n</section>\n"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Aggregator, Layout, Metrics};
    use crate::report::json::{self, RunMeta};
    use crate::slo::PhaseSpan;
    use std::time::{Duration, SystemTime};

    const EVIL_STEP: &str = "<script>alert(\"x\")</script>";
    const EVIL_POPULATION: &str = "shop'\"";

    /// What a crafted run has.
    #[derive(Clone, Copy)]
    struct Shape {
        users: bool,
        hub: bool,
        /// generator.lag of every arrival, µs.
        lag_us: u64,
    }

    fn meta() -> RunMeta {
        RunMeta {
            name: "evil <b>run</b>".into(),
            scenario_path: "scenarios/<evil>.toml".into(),
            scenario_hash: "ab".repeat(32),
            stampede_version: "0.1.0".into(),
            started_at: "2024-11-29T10:00:00Z".into(),
            ended_at: "2024-11-29T10:00:40Z".into(),
            duration_s: 40.0,
            host: "loadgen-1".into(),
            command_line: vec![
                "stampede".into(),
                "run".into(),
                "--header".into(),
                "Authorization: <redacted>".into(),
                "it's".into(),
            ],
            seed: 7,
            interrupted: false,
            exit_code: 1,
            notes: vec!["note with <script>alert('n')</script>".into()],
        }
    }

    /// A 40-second run recorded through the real recorder and aggregator:
    /// phases `warm <up>` and `spike`; users with two steps (one named
    /// like a script), errors of two kinds; hub agents that connect, beat
    /// and reconnect after a drop at 25 s.
    fn summary(shape: Shape) -> Summary {
        let phases = ["warm <up>", "spike"];
        let mut layout = Layout {
            phases: phases.iter().map(|p| p.to_string()).collect(),
            ..Layout::default()
        };
        let steps = shape.users.then(|| {
            ["browse", EVIL_STEP].map(|step| {
                (
                    layout.add_hist("http.latency", EVIL_POPULATION, step),
                    layout.add_counter("http.requests", EVIL_POPULATION, step, None),
                    layout.add_counter("http.errors", EVIL_POPULATION, step, Some("timeout")),
                    layout.add_counter("http.errors", EVIL_POPULATION, step, Some("http_5xx")),
                )
            })
        });
        let lag = layout.add_hist("generator.lag", "", "");
        let hub = shape.hub.then(|| {
            (
                layout.add_hist("hub.connect", EVIL_POPULATION, ""),
                layout.add_hist("hub.message.rtt", EVIL_POPULATION, "heartbeat"),
                layout.add_hist("hub.reconnect", EVIL_POPULATION, ""),
                layout.add_hist("hub.reconnect.attempts", EVIL_POPULATION, ""),
                layout.add_counter("hub.connects", EVIL_POPULATION, "", None),
                layout.add_counter("hub.reconnects", EVIL_POPULATION, "", None),
                layout.add_counter("hub.disconnects", EVIL_POPULATION, "", Some("reset")),
                layout.add_counter("hub.errors", EVIL_POPULATION, "", Some("connect_refused")),
            )
        });
        let mut gauge_names = vec!["generator.cpu"];
        if shape.users {
            gauge_names.extend([
                "users.in_flight",
                "users.vus",
                "users.queued",
                "users.arrivals",
            ]);
        }
        if shape.hub {
            gauge_names.extend(["hub.connected", "hub.registered"]);
        }
        for g in &gauge_names {
            layout.add_gauge(g);
        }
        let metrics = Metrics::new(layout);
        let mut agg = Aggregator::new(metrics.clone(), None, SystemTime::now());
        let mut seed = 12345u64;
        let mut next = move |range: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % range
        };
        let mut arrivals = 0.0;
        let mut registered = 0.0;
        for second in 0..40u64 {
            let phase = usize::from(second >= 20);
            let journeys = 20 + second * 5;
            arrivals += journeys as f64;
            metrics.with(|s| {
                if let Some(steps) = &steps {
                    for (i, (latency, requests, timeout, http_5xx)) in steps.iter().enumerate() {
                        for _ in 0..journeys {
                            let slow = if phase == 1 { 40_000 } else { 0 };
                            s.record(*latency, phase, 2_000 + next(8_000) + slow + i as u64 * 500);
                            s.record(lag, phase, shape.lag_us);
                        }
                        s.add(*requests, phase, journeys);
                        s.add(*timeout, phase, u64::from(second == 30) * 7);
                        s.add(*http_5xx, phase, u64::from(i == 1 && second > 30));
                    }
                }
                if let Some((
                    connect,
                    rtt,
                    reconnect,
                    attempts,
                    connects,
                    reconnects,
                    drops,
                    refused,
                )) = hub
                {
                    if second < 5 || second == 25 {
                        for _ in 0..200 {
                            s.record(connect, phase, 500 + next(3_000));
                        }
                        s.add(connects, phase, 200);
                    }
                    if second == 25 {
                        s.add(drops, phase, 200);
                        s.add(reconnects, phase, 200);
                        s.add(refused, phase, 3);
                        for _ in 0..200 {
                            s.record(reconnect, phase, 100_000 + next(900_000));
                            s.record(attempts, phase, 1 + next(3));
                        }
                    }
                    for _ in 0..100 {
                        s.record(rtt, phase, 100 + next(400));
                    }
                }
            });
            registered = if second < 5 {
                registered + 200.0
            } else if second == 25 {
                800.0
            } else {
                1000.0
            };
            let mut gauges = vec![10.0 + next(30) as f64];
            if shape.users {
                gauges.extend([3.0, 10.0, 0.0, arrivals]);
            }
            if shape.hub {
                gauges.extend([registered, registered]);
            }
            agg.tick(Duration::from_secs(second + 1), &gauges);
        }
        let totals = agg.finish().unwrap();
        let spans: Vec<PhaseSpan> = phases
            .iter()
            .enumerate()
            .map(|(i, name)| PhaseSpan {
                name: name.to_string(),
                start: Duration::from_secs(20 * i as u64),
                end: Duration::from_secs(20 * (i as u64 + 1)),
            })
            .collect();
        let mut slos = vec![];
        if shape.users {
            slos.push(crate::slo::parse("http.latency{step=browse}.p95", "< 30ms").unwrap());
            slos.push(crate::slo::parse("http.errors.rate", "< 1%").unwrap());
        }
        if shape.hub {
            slos.push(crate::slo::parse("hub.connect.p99", "< 1s").unwrap());
        }
        let verdicts = crate::slo::evaluate(&slos, &totals, &spans, Duration::from_secs(40));
        json::build(meta(), &spans, &totals, &verdicts)
    }

    const FULL: Shape = Shape {
        users: true,
        hub: true,
        lag_us: 200,
    };

    /// Every `<svg …</svg>` of the document.
    fn svgs(html: &str) -> Vec<&str> {
        html.match_indices("<svg")
            .map(|(start, _)| {
                let end = html[start..].find("</svg>").expect("closed svg") + start;
                &html[start..end]
            })
            .collect()
    }

    #[test]
    fn escape_neutralises_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;"
        );
        assert_eq!(escape("plain/text µs"), "plain/text µs");
    }

    #[test]
    fn the_document_is_self_contained() {
        let html = render(&summary(FULL)).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        let lower = html.to_lowercase();
        for banned in [
            "<script",
            "<link",
            "<img",
            "<iframe",
            "src=",
            "@import",
            "url(",
            "@font-face",
        ] {
            assert!(!lower.contains(banned), "found `{banned}`");
        }
        // Links only point inside the page.
        for (at, _) in lower.match_indices("href=") {
            let target = &lower[at + 5..at + 7];
            assert_eq!(target, "\"#", "external link at {}", &lower[at..at + 40]);
        }
        // The only URLs are SVG's namespace (an identifier, never fetched).
        let namespaces = lower
            .matches("xmlns=\"http://www.w3.org/2000/svg\"")
            .count();
        assert_eq!(lower.matches("://").count(), namespaces);
        assert!(html.contains("Content-Security-Policy"));
    }

    #[test]
    fn every_chart_has_drawn_lines() {
        let html = render(&summary(FULL)).unwrap();
        let charts = svgs(&html);
        // Throughput, latency, users, hub connections, errors, reconnects,
        // HTTP / hub / reconnect spectra, generator.
        assert_eq!(charts.len(), 10, "{}", charts.len());
        for svg in charts {
            assert!(charts::drawn_lines(svg) > 0, "empty chart: {}", &svg[..200]);
            assert!(svg.contains("<text"), "axis labels");
        }
    }

    #[test]
    fn strings_from_the_scenario_are_escaped() {
        let html = render(&summary(FULL)).unwrap();
        assert!(!html.contains("<script"));
        assert!(!html.contains("<b>"));
        assert!(!html.contains("<evil>"));
        assert!(!html.contains("<up>"));
        assert!(
            html.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"),
            "step"
        );
        assert!(html.contains("shop&#39;&quot;"), "population");
        assert!(html.contains("evil &lt;b&gt;run&lt;/b&gt;"), "name");
        assert!(html.contains("warm &lt;up&gt;"), "phase");
        assert!(html.contains("note with &lt;script&gt;"), "note");
        assert!(
            html.contains("&#39;Authorization: &lt;redacted&gt;&#39;"),
            "command line"
        );
    }

    #[test]
    fn sections_come_in_order_and_verdicts_first() {
        let html = render(&summary(FULL)).unwrap();
        let at = |id: &str| {
            html.find(&format!("<section id=\"{id}\""))
                .unwrap_or_else(|| panic!("no section {id}"))
        };
        let order = [
            "verdicts",
            "over-time",
            "spectrum",
            "steps",
            "hub",
            "generator",
            "run",
            "capacity",
        ];
        let positions: Vec<usize> = order.iter().map(|id| at(id)).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
        // The spike's 40 ms latency fails the browse p95 SLO; errors pass.
        assert!(html.contains("<div class=\"word\">FAIL</div>"));
        assert!(html.contains("1 of 3 SLOs failed"));
        for key in [
            "http.latency{step=browse}.p95",
            "http.errors.rate",
            "hub.connect.p99",
        ] {
            assert!(
                html.contains(&format!("<code>{}</code>", escape(key))),
                "{key}"
            );
        }
        // Tables carry the errors by kind.
        assert!(html.contains("7 × timeout"));
        assert!(html.contains("200 × reset"));
        assert!(html.contains("3 × connect_refused"));
    }

    #[test]
    fn sections_without_data_are_left_out() {
        let users = render(&summary(Shape { hub: false, ..FULL })).unwrap();
        assert!(!users.contains("id=\"hub\""));
        assert!(
            !users.contains("href=\"#hub\""),
            "no link to a section left out"
        );
        assert!(users.contains("href=\"#steps\""));
        assert!(!users.contains("Hub connections"));
        assert!(!users.contains("Reconnect waves"));
        assert!(users.contains("id=\"steps\""));
        assert!(users.contains("id=\"capacity\""));
        assert!(svgs(&users).iter().all(|s| charts::drawn_lines(s) > 0));

        let hub = render(&summary(Shape {
            users: false,
            ..FULL
        }))
        .unwrap();
        assert!(hub.contains("id=\"hub\""));
        assert!(!hub.contains("id=\"steps\""));
        assert!(!hub.contains("Throughput"));
        assert!(!hub.contains("Active users"));
        assert!(
            !hub.contains("id=\"capacity\""),
            "no user load, no estimate"
        );
        assert!(svgs(&hub).iter().all(|s| charts::drawn_lines(s) > 0));
    }

    #[test]
    fn a_saturated_generator_gets_a_banner() {
        let calm = render(&summary(FULL)).unwrap();
        assert!(!calm.contains("banner saturated"));
        let late = render(&summary(Shape {
            lag_us: 50_000,
            ..FULL
        }))
        .unwrap();
        assert!(late.contains("<div class=\"banner saturated\">GENERATOR SATURATED"));
        // One at the top, one in the generator section.
        assert_eq!(late.matches("banner saturated").count(), 2);
        assert!(late.find("banner saturated").unwrap() < late.find("id=\"over-time\"").unwrap());
    }

    #[test]
    fn an_empty_run_still_renders() {
        // Interrupted before the first tick: no phases, no series, no SLOs.
        let mut layout = Layout::default();
        layout.add_hist("http.latency", "web", "home");
        layout.add_counter("http.requests", "web", "home", None);
        layout.add_gauge("users.arrivals");
        let totals = crate::metrics::Totals::new(layout);
        let mut meta = meta();
        meta.interrupted = true;
        let html = render(&json::build(meta, &[], &totals, &[])).unwrap();
        assert!(html.contains("NO SLOs"));
        assert!(html.contains("The run was interrupted"));
        assert!(
            !html.contains("id=\"capacity\""),
            "no journey started: no estimate"
        );
        assert!(svgs(&html).is_empty(), "no chart without data");
        assert!(html.trim_end().ends_with("</html>"));
    }

    #[test]
    fn write_puts_report_html_in_the_result_directory() {
        let dir = tempfile::tempdir().unwrap();
        let summary = summary(FULL);
        let path = write(dir.path(), &summary).unwrap();
        assert_eq!(path, dir.path().join("report.html"));
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            render(&summary).unwrap()
        );
        let files = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files, 1, "no temp file left");
    }

    #[test]
    fn the_capacity_estimate_is_reported() {
        let html = render(&summary(Shape { hub: false, ..FULL })).unwrap();
        let section = &html[html.find("<section id=\"capacity\"").unwrap()..];
        // Latency goes past the SLO in the spike (from 20 s): the best window
        // ends at 20 s; higher loads came after and failed the SLO.
        assert!(section.contains("from 0:10 to 0:20"), "{section}");
        assert!(section.contains("<code>http.latency{step=browse}.p95</code> was not met"));
        assert!(html.contains("Capacity estimate: <strong>"));
    }
}
