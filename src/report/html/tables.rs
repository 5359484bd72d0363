//! The tables of `report.html`: per HTTP step, waits and journeys, per hub population and
//! event, and the capacity estimate with every SLO as judged on its window.

use super::{escape, is_count_metric, Report};
use crate::metrics::{merge_into, new_histogram, SeriesDesc};
use crate::report::capacity::{self, Estimate, Limit};
use crate::report::charts;
use crate::report::console::SATURATED_LAG_P99_US;
use crate::report::json::decode_histogram;
use crate::units::format::{self, clock, grouped, latency};
use std::fmt::Write as _;

impl Report<'_> {
    /// `step`, or `population / step` when the run has several populations.
    pub(super) fn step_label(&self, desc: &SeriesDesc) -> String {
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
        let fmt = |v: u64| if counts { grouped(v) } else { latency(v) };
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

    pub(super) fn step_table(&self, out: &mut String) {
        if !self.users {
            return;
        }
        let seconds = self.summary.meta.duration_s.max(1e-9);
        let _ = write!(
            out,
            "<section id=\"steps\">\n<h2>Steps</h2>\n<p class=\"muted\">Latency {}, over the whole run ({}); rate = requests ÷ the run's length.</p>\n<table>\n<tr><th>step</th><th>requests</th><th>rate</th><th>p50</th><th>p95</th><th>p99</th><th>max</th><th>errors</th><th class=\"text\">errors by kind</th></tr>\n",
            escape(&self.latency_from()),
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
                grouped(requests),
                format::per_second(requests as f64 / seconds),
                self.latency_cells(latency.map(|h| (h.p50, h.p95, h.p99, h.max)), false),
                grouped(errors),
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
                grouped(requests),
                format::per_second(requests as f64 / seconds),
                self.latency_cells(stats, false).replace("td>", "th>"),
                grouped(errors),
                self.kinds(|d| d.metric == "http.errors"),
            );
        }
        out.push_str("</table>\n</section>\n");
    }

    /// Polling steps (`http.wait`, `http.wait.polls`, `http.wait.open`) and whole journeys
    /// (`http.journey`), the series that have samples.
    pub(super) fn wait_table(&self, out: &mut String) {
        use crate::metrics::catalogue::{HTTP_JOURNEY, HTTP_WAIT, HTTP_WAIT_OPEN, HTTP_WAIT_POLLS};
        let rows: Vec<(&SeriesDesc, &crate::report::json::HistogramEntry)> =
            (self.summary.layout.hists.iter().enumerate())
                .filter(|(_, d)| {
                    [HTTP_WAIT, HTTP_WAIT_POLLS, HTTP_WAIT_OPEN, HTTP_JOURNEY]
                        .contains(&d.metric.as_str())
                })
                .filter_map(|(i, d)| self.overall(i).map(|h| (d, h)))
                .filter(|(_, h)| h.count > 0)
                .collect();
        if rows.is_empty() {
            return;
        }
        out.push_str("<section id=\"waits\">\n<h2>Waits and journeys</h2>\n<p class=\"muted\">http.wait: a polling step's first send until its condition held; http.wait.polls: polls per wait; http.wait.open: waits still open at the end, how long they had waited (http.wait leaves them out); http.journey: a completed journey's intended start until the end of its last step, think times included.</p>\n<table>\n<tr><th class=\"text\">series</th><th>count</th><th>mean</th><th>p50</th><th>p95</th><th>p99</th><th>max</th></tr>\n");
        for (desc, h) in rows {
            let counts = is_count_metric(&desc.metric);
            let label = if desc.metric == HTTP_JOURNEY {
                format!("{} {}", desc.metric, desc.population)
            } else {
                format!("{} {}", desc.metric, self.step_label(desc))
            };
            let mean = if counts {
                format!("{:.1}", h.mean)
            } else {
                latency(h.mean.round() as u64)
            };
            let _ = writeln!(
                out,
                "<tr><td class=\"text\">{}</td><td>{}</td><td>{}</td>{}</tr>",
                escape(&label),
                grouped(h.count),
                mean,
                self.latency_cells(Some((h.p50, h.p95, h.p99, h.max)), counts),
            );
        }
        out.push_str("</table>\n</section>\n");
    }

    /// The disruptions and the fault actions, when there are any.
    pub(super) fn events(&self, out: &mut String) {
        use crate::report::events;
        let disruptions = events::disruption_rows(self.summary);
        let actions = events::action_rows(self.summary);
        if disruptions.is_empty() && actions.is_empty() {
            return;
        }
        out.push_str("<section id=\"events\">\n<h2>Disruptions and fault actions</h2>\n");
        for (title, header, rows) in [
            ("Disruptions", events::DISRUPTION_HEADER, disruptions),
            ("Fault actions", events::ACTION_HEADER, actions),
        ] {
            if rows.is_empty() {
                continue;
            }
            let _ = write!(out, "<h3>{title}</h3>\n<table>\n<tr>");
            for h in header {
                let _ = write!(out, "<th class=\"text\">{h}</th>");
            }
            out.push_str("</tr>\n");
            for row in rows {
                out.push_str("<tr>");
                for cell in row {
                    let _ = write!(out, "<td class=\"text\">{}</td>", escape(&cell));
                }
                out.push_str("</tr>\n");
            }
            out.push_str("</table>\n");
        }
        out.push_str("</section>\n");
    }

    pub(super) fn hub_tables(&self, out: &mut String) {
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
                grouped(sum("hub.connects")),
                grouped(sum("hub.registrations")),
                grouped(sum("hub.reconnects")),
                grouped(sum("hub.commands")),
                grouped(sum("hub.command.received")),
                grouped(sum("hub.command.undelivered")),
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
                grouped(h.count),
                format::per_second(h.count as f64 / seconds),
                self.latency_cells(Some((h.p50, h.p95, h.p99, h.max)), is_count_metric(&desc.metric)),
            );
        }
        out.push_str("</table>\n<p class=\"muted\"><code>hub.reconnect</code> runs from the drop to registered again, backoff included; <code>hub.reconnect.attempts</code> (when present) is a count of attempts per reconnect, not a time.</p>\n</section>\n");
    }

    pub(super) fn capacity(&self, out: &mut String) {
        // The shared rule (also `stampede capacity`'s), then how a window
        // applies it.
        let rule = format!(
            "Rule: {shared} The capacity estimate is the {w}-second window (of every run of {w} consecutive seconds) with the highest achieved rate that was sustained and met the SLOs; offered there = journeys started × requests per journey. Per-second data holds p50 / p95 / p99 / max, not whole histograms, so a percentile SLO is judged on a bound never in its favour: under <code>&lt;</code> the highest per-second value of the first tracked percentile at or above it (an upper bound on the window's percentile). Error and request rates are exact; count, min and mean SLOs use the run's verdict. <code>stampede capacity</code> applies the same rule to each step's measured phase.",
            shared = escape(&capacity::rule_sentence("the window's own data")),
            w = capacity::WINDOW,
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
                    reasons.push(format!("{} did not achieve the offered load", grouped(*not_achieved as u64)));
                }
                if *generator_behind > 0 {
                    reasons.push(format!("{} had the generator behind", grouped(*generator_behind as u64)));
                }
                for (key, n) in slo_failed {
                    reasons.push(format!("{} failed <code>{}</code>", grouped(*n as u64), escape(key)));
                }
                format!(
                    "<p class=\"capacity verdict-fail\">No window qualified</p><p>Of {} windows: {}.</p>",
                    grouped(*windows as u64),
                    reasons.join("; ")
                )
            }
            Estimate::Found(w) => {
                let mut body = format!(
                    "<p class=\"capacity\">{}{} successful requests</p>\n<p>sustained from {} to {} (phase{} {}): offered {} = {} journeys/s × {} requests per journey; achieved {}% of it.</p>\n",
                    if w.limit.is_some() { "" } else { "≥ " },
                    format::per_second(w.achieved_per_s),
                    clock(w.start_s),
                    clock(w.end_s),
                    if w.phases.len() == 1 { "" } else { "s" },
                    w.phases.iter().map(|p| escape(p)).collect::<Vec<_>>().join(", "),
                    format::per_second(w.offered_per_s),
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
                        latency(SATURATED_LAG_P99_US)
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
