//! `report.html`: the report a person reads, rebuilt from a [`Summary`].
//!
//! One self-contained document ([`page`]): inline CSS, charts as inline SVG
//! (see [`super::charts`]), no script, font, image or style sheet fetched —
//! a Content-Security-Policy of `default-src 'none'` makes the browser
//! refuse anything that would be. Every string that came from a scenario or a
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
//! 4. Per-step table; hub tables per population and per event; the
//!    disruptions and fault actions (also marked on the time charts).
//! 5. Generator health (scheduling lag, CPU).
//! 6. Run metadata; the clock offset against the hub when measured; a
//!    merged result's segments (host, start, clock offset, exit code).
//! 7. The capacity estimate, with every SLO as judged on its window (see
//!    [`super::capacity`]).
//!
//! Sections without data (no users, no hub, no reconnects) are left out.
//!
//! # Layout
//! - [`page`]: the document's skeleton, style sheet and [`escape`] (shared
//!   with the capacity search's `capacity.html`).
//! - `figures`: the charts (sections 2, 3 and 5).
//! - `tables`: the step and hub tables and the capacity estimate (4, 7).
//! - here: what the sections share, the header, verdicts and run metadata.

mod figures;
pub mod page;
mod tables;

pub use page::escape;

use crate::report::capacity::{self, Estimate};
use crate::report::console::SATURATED_LAG_P99_US;
use crate::report::generator::{Cause, NOTE};
use crate::report::json::{CounterEntry, HistogramEntry, Summary, PARTIAL_NOTE};
use crate::report::timeline::Timeline;
use crate::units::format::{self, clock, latency};
use anyhow::Context as _;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// File name of the report inside a result directory.
pub const FILE_NAME: &str = "report.html";

/// The [`Exporter`](super::Exporter) of `report.html`.
pub struct Html;

impl super::Exporter for Html {
    fn file_name(&self) -> &'static str {
        FILE_NAME
    }
    fn render(&self, summary: &Summary) -> anyhow::Result<String> {
        render(summary)
    }
}

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
    let mut body = String::with_capacity(512 * 1024);
    report.verdicts(&mut body);
    report.over_time(&mut body)?;
    report.spectrum(&mut body)?;
    report.step_table(&mut body);
    report.wait_table(&mut body);
    report.hub_tables(&mut body);
    report.events(&mut body);
    report.generator(&mut body)?;
    report.metadata(&mut body);
    report.capacity(&mut body);
    let mut main = String::with_capacity(body.len() + 4096);
    report.header(&mut main, &body);
    main.push_str(&body);
    let _ = writeln!(
        main,
        "<footer>stampede {} · generated from summary.json (schema {})</footer>",
        escape(&summary.meta.stampede_version),
        summary.schema_version
    );
    let title = format!("{} — stampede report", summary.meta.name);
    Ok(page::document(&title, &main))
}

/// Histogram series whose values are counts, not durations.
fn is_count_metric(metric: &str) -> bool {
    metric == "hub.reconnect.attempts" || metric == crate::metrics::catalogue::HTTP_WAIT_POLLS
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
    /// Fault actions and disruptions, marked on the time charts.
    marks: Vec<crate::report::events::Mark>,
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
            marks: crate::report::events::marks(summary),
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
            .map(|(kind, n)| format!("{} × {}", format::grouped(*n), escape(kind)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Why the generator is flagged: its judged causes, or (a result
    /// written before they were) the p99 lag above
    /// [`SATURATED_LAG_P99_US`].
    fn unhealthy(&self) -> Vec<Cause> {
        if let Some(health) = &self.summary.generator {
            return health.causes.clone();
        }
        let ids = self.timeline.hists(|d| d.metric == "generator.lag");
        let Some(entry) = ids.iter().find_map(|&id| self.overall(id)) else {
            return Vec::new();
        };
        if entry.p99 <= SATURATED_LAG_P99_US {
            return Vec::new();
        }
        vec![Cause {
            kind: "lag".into(),
            figure: format!(
                "1% of arrivals were made more than {} late (p99 generator.lag; max {})",
                latency(entry.p99),
                latency(entry.max)
            ),
            threshold: format!("> {}", latency(SATURATED_LAG_P99_US)),
            fix: "fewer arrivals per process, `--processes N` on more cores, or more cores / CPU quota".into(),
            segment: None,
        }]
    }

    /// What the step latencies count from, with why.
    fn latency_from(&self) -> String {
        use crate::report::json::{FROM_ACTUAL_SEND, FROM_INTENDED_START};
        match self.summary.latency_from() {
            t if t == FROM_INTENDED_START => {
                format!("{t} (corrected for coordinated omission)")
            }
            t if t == FROM_ACTUAL_SEND => {
                format!("{t} (closed model: a closed loop cannot correct for coordinated omission)")
            }
            mixed => mixed,
        }
    }

    fn generator_fails(&self) -> bool {
        (self.summary.generator.as_ref()).is_some_and(|g| g.fails_the_run())
    }

    /// The banner of an unhealthy generator: each cause, its figure, its
    /// threshold and its fix.
    fn generator_banner(&self, out: &mut String) {
        let causes = self.unhealthy();
        if causes.is_empty() {
            return;
        }
        let _ = write!(
            out,
            "<div class=\"banner saturated\">{NOTE} — the latencies include the generator's own delay, so they overstate the target's (and arrivals may not have been made as planned):<ul>"
        );
        for c in &causes {
            let _ = write!(
                out,
                "<li>{}<strong>{}</strong>: {} (flagged at {}). <strong>Fix</strong>: {}.</li>",
                c.segment
                    .map_or(String::new(), |s| format!("segment {s}: ")),
                escape(&c.kind),
                escape(&c.figure),
                escape(&c.threshold),
                escape(&c.fix)
            );
        }
        out.push_str("</ul></div>\n");
    }

    /// The title, a line about the run, and links to the sections `body`
    /// has.
    fn header(&self, out: &mut String, body: &str) {
        let meta = &self.summary.meta;
        let _ = write!(
            out,
            "<header>\n<h1>{}</h1>\n<p class=\"muted\">{} · started {} · {} on {}{}{}</p>\n",
            escape(&meta.name),
            escape(&meta.scenario_path),
            escape(&meta.started_at),
            clock(meta.duration_s),
            escape(&meta.host),
            meta.merged.as_ref().map_or(String::new(), |m| format!(
                " · merged from {} of {} segments",
                m.sources.len(),
                m.count
            )),
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
            ("waits", "Waits"),
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
        } else if failed == 0 && self.generator_fails() {
            (
                "fail",
                "FAIL",
                format!(
                    "all {} SLOs met, but the generator was unhealthy and generator_health = \"fail\"",
                    verdicts.len()
                ),
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
        self.generator_banner(out);
        if let Estimate::Found(w) = &self.estimate {
            let _ = writeln!(
                out,
                "<p class=\"headline\">Capacity estimate: <strong>{}{}</strong> successful requests sustained for {} s with every SLO met ({} – {}). <a href=\"#capacity\">How it is measured</a></p>",
                if w.limit.is_some() { "" } else { "at least " },
                format::per_second(w.achieved_per_s),
                (w.end_s - w.start_s).round(),
                clock(w.start_s),
                clock(w.end_s)
            );
        }
        let merged = self.summary.meta.merged.as_ref();
        let partial = merged.and_then(|m| Some((m, m.missing_text()?)));
        if let Some((m, missing)) = &partial {
            let _ = writeln!(
                out,
                "<div class=\"banner partial\">{PARTIAL_NOTE} — segment {missing} of {} missing: these figures and verdicts cover {} of {} segments, a part of the load (exit code 3).</div>",
                m.count,
                m.sources.len(),
                m.count
            );
        }
        for note in &self.summary.meta.notes {
            // The generator's and the partial notes have their own banners.
            if (!self.unhealthy().is_empty() && note.starts_with(NOTE))
                || (partial.is_some() && note.starts_with(PARTIAL_NOTE))
            {
                continue;
            }
            let _ = writeln!(out, "<div class=\"banner warn\">{}</div>", escape(note));
        }
        out.push_str("</section>\n");
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
        let mut rows: Vec<(&str, String)> = vec![
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
        if let Some(c) = &meta.clock {
            rows.push((
                "clock vs hub",
                format!(
                    "{} <span class=\"muted\">(against {}; smallest round trip {:.3} ms of {} acks)</span>",
                    escape(&c.text()),
                    escape(&c.against),
                    c.rtt_min_ms,
                    c.samples
                ),
            ));
        }
        if let Some(merged) = &meta.merged {
            let mut table = String::from("<table class=\"segments\">");
            for (i, row) in merged.sources_table().iter().enumerate() {
                let cell = if i == 0 { "th" } else { "td" };
                table.push_str("<tr>");
                for value in row {
                    let _ = write!(table, "<{cell} class=\"text\">{}</{cell}>", escape(value));
                }
                table.push_str("</tr>");
            }
            table.push_str("</table>");
            rows.push(("segments", table));
        }
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{Aggregator, Layout, Metrics};
    use crate::report::charts;
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
            segment: None,
            start_at: None,
            merged: None,
            clock: None,
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
        assert!(late.contains("<div class=\"banner saturated\">GENERATOR UNHEALTHY"));
        assert!(late.contains("<strong>lag</strong>: 1% of arrivals"));
        // One at the top, one in the generator section.
        assert_eq!(late.matches("banner saturated").count(), 2);
        assert!(late.find("banner saturated").unwrap() < late.find("id=\"over-time\"").unwrap());
    }

    #[test]
    fn the_banner_names_each_cause_and_its_fix() {
        use crate::report::generator::{Figures, GeneratorHealth};
        let mut flagged = summary(FULL);
        let figures = Figures {
            wall_s: 10.0,
            cpu_s: 9.8,
            cpus_allowed: 1.0,
            cpus_affinity: 1,
            ..Figures::default()
        };
        let health = GeneratorHealth::judge(figures, crate::scenario::GeneratorHealthMode::Fail);
        assert!(health.flagged());
        flagged.generator = Some(health);
        let html = render(&flagged).unwrap();
        assert!(
            html.contains("<strong>cpu</strong>: it used 9.8 CPU-seconds"),
            "{html}"
        );
        assert!(html.contains("<strong>Fix</strong>: fewer arrivals per process, `--processes N`"));
        assert!(html.contains("<div class=\"word\">FAIL</div>"));
        // Judged healthy: no banner, even with a late generator's lag
        // series (the judgement is the summary's).
        let mut healthy = summary(Shape {
            lag_us: 50_000,
            ..FULL
        });
        healthy.generator = Some(GeneratorHealth::judge(
            Figures::default(),
            crate::scenario::GeneratorHealthMode::Error,
        ));
        assert!(!render(&healthy).unwrap().contains("banner saturated"));
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
        // The rule it used, in the words `stampede capacity` uses too.
        let shared = crate::report::capacity::rule_sentence("the window's own data");
        assert!(
            section.contains(&format!("Rule: {}", escape(&shared))),
            "{section}"
        );
    }
}
