//! The figures of `report.html`: the "Over time" charts (throughput,
//! latency, users, hub connections, errors by kind, reconnect waves), the
//! latency percentile spectrum and the generator's health. Each figure is
//! an SVG drawn by [`crate::report::charts`] with an HTML legend under it.

use super::{escape, is_count_metric, Report};
use crate::report::charts::{self, Line, Scale, TimeChart, PALETTE};
use crate::report::console::SATURATED_LAG_P99_US;
use crate::report::json::{decode_histogram, HistogramEntry};
use crate::units::format::{grouped, latency};
use std::collections::BTreeMap;
use std::fmt::Write as _;

impl<'a> Report<'a> {
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

    fn chart(&self, lines: Vec<Line>, y_desc: &'a str, y_scale: Scale) -> TimeChart<'_> {
        TimeChart {
            lines,
            phases: &self.summary.phases,
            x_end: self.x_end,
            y_desc,
            y_scale,
            y2: None,
            marks: &self.marks,
        }
    }

    pub(super) fn over_time(&self, out: &mut String) -> anyhow::Result<()> {
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
                &format!("Latency per second ({})", escape(&self.summary.latency_from())),
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
                    format!("{label} ({})", grouped(*total)),
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
                    "{} disruption(s) recovered, slowest in {}",
                    h.count,
                    latency(h.max)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        self.figure(out, "Reconnect waves", &escape(&recovery), &chart)
    }

    pub(super) fn spectrum(&self, out: &mut String) -> anyhow::Result<()> {
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
        let http_title = format!(
            "HTTP steps (latency {})",
            escape(&self.summary.latency_from())
        );
        let groups = [
            (http_title.as_str(), http),
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

    pub(super) fn generator(&self, out: &mut String) -> anyhow::Result<()> {
        let tl = &self.timeline;
        out.push_str("<section id=\"generator\">\n<h2>Generator health</h2>\n");
        let lag_ids = tl.hists(|d| d.metric == "generator.lag");
        let lag = lag_ids.iter().find_map(|&id| self.overall(id));
        self.generator_banner(out);
        let cpu = tl.gauge("generator.cpu");
        let mut facts = Vec::new();
        if let Some(h) = lag {
            facts.push(format!(
                "scheduling lag (how late arrivals were made): p50 {}, p99 {}, max {}",
                latency(h.p50),
                latency(h.p99),
                latency(h.max)
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
        let health = self.summary.generator.as_ref();
        if let Some(f) = health.and_then(|g| g.figures.as_ref()) {
            facts.push(escape(&f.summary_text()));
        }
        for s in health.map_or(&[][..], |g| &g.segments[..]) {
            facts.push(format!(
                "segment {}: {}",
                s.segment,
                escape(&s.figures.summary_text())
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
        if let Some(waited) = tl
            .gauge("generator.runqueue")
            .filter(|w| w.iter().any(|&v| v > 0.0))
        {
            lines.push(Line::new(
                "run-queue wait (ms per s)",
                self.points(waited),
                PALETTE[2],
            ));
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
                    "How late arrivals were made, and how long the process's threads waited for a CPU each second (summed over threads). The generator is flagged when either shows in the latencies, among other rules (summary.json's generator.causes); the p99 lag alone flags it above {}.",
                    latency(SATURATED_LAG_P99_US)
                ),
                &chart,
            )?;
        }
        out.push_str("</section>\n");
        Ok(())
    }
}
