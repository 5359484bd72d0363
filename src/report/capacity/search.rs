//! The reports of `stampede capacity`, a search made of runs (the search
//! is the `capacity` command's).
//!
//! - `capacity.md` ([`markdown`], also printed): the capacity and the load
//!   to plan at (70 % of it), why the search stopped, then one table row
//!   per step: load, offered and achieved (requests/s or agents), p50 /
//!   p95 / p99, errors and the verdict (`FAIL:` and the SLOs that failed).
//! - `capacity.html` ([`html`]): the same on `report.html`'s page — the
//!   headline, the capacity curve ([`curve_svg`]: achieved load against
//!   p95 for every step, the knee and the planning load marked) and the
//!   table of steps.
//! - `capacity.json` is the search's [`SearchReport`] as JSON.

use crate::report::charts;
use crate::report::html::page::{self, escape};
use crate::scenario::model::Axis;
use crate::units::format;
use std::fmt::Write as _;

/// One step of the search.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Step {
    /// Load: journeys/s or agents.
    pub load: f64,
    /// `up`, `bisect` or `confirm`.
    pub kind: &'static str,
    /// Offered requests/s (users) or agents.
    pub offered: f64,
    /// Successful requests/s (users) or registered agents.
    pub achieved: f64,
    /// µs, of `http.latency` (users) or `hub.connect` (agents).
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
    pub errors: u64,
    pub pass: bool,
    /// The SLOs that failed, and a carried-load shortfall.
    pub failed: Vec<String>,
    pub result_dir: String,
    /// The cool-down run before this step (after a failing step).
    pub cool_down: Option<CoolDown>,
    /// Set when this step was discarded because its start still showed
    /// the previous step's backlog (and it was run again): why.
    pub discarded: Option<String>,
}

/// The cool-down before a step: short probe runs at a low load until the
/// target answers as it did when quiet (see `stampede capacity`'s rule).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CoolDown {
    /// Time spent probing, seconds.
    pub seconds: f64,
    /// Probe runs made.
    pub probes: u32,
    /// The probes' load (journeys/s).
    pub load: f64,
    /// Whether the target got quiet (false: the maximum cool-down ran out).
    pub quiet: bool,
    /// p50 of `http.latency` in the last probe, µs (None: no success).
    pub p50: Option<u64>,
    /// The p50 the rule asked for, µs (None: two probes had to agree).
    pub quiet_p50: Option<u64>,
}

impl CoolDown {
    /// `3.0s, 3 probes at 20/s → quiet (p50 21ms)` (what the tables show).
    pub fn text(&self) -> String {
        format!(
            "{:.1}s, {} probe{} at {} → {} (p50 {})",
            self.seconds,
            self.probes,
            if self.probes == 1 { "" } else { "s" },
            format::per_second(self.load),
            if self.quiet { "quiet" } else { "NOT quiet" },
            format::optional_latency(self.p50),
        )
    }
}

/// The answer of a search (`capacity.json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct SearchReport {
    pub scenario: String,
    pub axis: Axis,
    /// The highest confirmed passing load; None when even the first step failed.
    pub capacity: Option<f64>,
    /// 70 % of it.
    pub planning: Option<f64>,
    pub precision: f64,
    /// Why the search stopped.
    pub stopped: String,
    pub steps: Vec<Step>,
}

/// A search step's load: `12.5/s` (journeys per second) or `40 agents`.
pub fn load_text(axis: Axis, load: f64) -> String {
    match axis {
        Axis::Users => format::per_second(load),
        Axis::Agents => format!("{load:.0} agents"),
    }
}

/// A step's row in both tables: step, load, offered, achieved, p50, p95,
/// p99, errors, the cool-down before it, and the verdict (`pass`, `FAIL: `
/// and why, or `discarded: ` and why).
fn step_cells(axis: Axis, index: usize, step: &Step) -> [String; 10] {
    [
        format!("{} {}", index + 1, step.kind),
        load_text(axis, step.load),
        format!("{:.1}", step.offered),
        format!("{:.1}", step.achieved),
        format::optional_latency(step.p50),
        format::optional_latency(step.p95),
        format::optional_latency(step.p99),
        step.errors.to_string(),
        step.cool_down
            .as_ref()
            .map_or_else(|| "–".to_string(), CoolDown::text),
        if let Some(why) = &step.discarded {
            format!("discarded: {why}; run again")
        } else if step.pass {
            "pass".to_string()
        } else {
            format!("FAIL: {}", step.failed.join("; "))
        },
    ]
}

/// The headline: the capacity and the load to plan at, or why there is none.
fn headline(report: &SearchReport) -> String {
    match report.capacity {
        Some(c) => format!(
            "Capacity: {} · plan to scale at {}",
            load_text(report.axis, c),
            load_text(report.axis, c * PLANNING_SHARE)
        ),
        None => format!("Capacity not found: {}", report.stopped),
    }
}

/// What a step's verdict means: the shared rule of "sustained" and "met
/// the SLOs" (also `report.html`'s), then the cool-down and backlog rules
/// of the search.
pub fn rules(axis: Axis) -> String {
    let mut text = super::rule_sentence(match axis {
        Axis::Users => "the step's measured phase (exact percentiles)",
        Axis::Agents => "the whole step",
    });
    text.push_str(" A step passes when its load was sustained and met the SLOs.");
    if axis == Axis::Users {
        text.push_str(COOL_DOWN_RULE);
    }
    text
}

/// The search's cool-down and backlog rules, as the reports state them
/// (the numbers are `stampede capacity`'s, see its module docs).
pub const COOL_DOWN_RULE: &str = " After a failing step (or a passing one whose p50 was above the quiet limit) the target is probed at a low load (the first passing step's, else a quarter of the first step's) in 1-second probe runs until it is quiet: the probe sustained its load and its p50 was at most 1.5 × the first passing step's p50 + 2ms (before any step passed: two probes in a row whose p50 agree within 20% + 2ms), or the maximum cool-down ran out. A failing step whose warm-up p50 was above 2 × the quiet p50 + 5ms while its measured p50 fell below two thirds of that (the previous step's backlog draining, not its own overload) is discarded and run once more; so is a failing step during which the generator fell behind (at most twice in all: then its failure stands).";

/// The load where the search advises to scale, as a share of the capacity.
const PLANNING_SHARE: f64 = 0.7;

/// `capacity.md`, the search's report as Markdown (also what the terminal
/// shows): the answer, why the search stopped, and the table of steps.
pub fn markdown(report: &SearchReport) -> String {
    let mut out = String::new();
    let axis = report.axis;
    match report.capacity {
        Some(c) => {
            let _ = writeln!(
                out,
                "capacity: {} (every SLO held; confirmed) · plan to scale at 70%: {}",
                load_text(axis, c),
                load_text(axis, c * PLANNING_SHARE)
            );
        }
        None => {
            let _ = writeln!(out, "capacity: not found — {}", report.stopped);
        }
    }
    let _ = writeln!(out, "search stopped: {}", report.stopped);
    let _ = writeln!(out, "rule: {}\n", rules(report.axis));
    let unit = match axis {
        Axis::Users => "req/s",
        Axis::Agents => "agents",
    };
    let _ = writeln!(
        out,
        "| step | load | offered ({unit}) | achieved ({unit}) | p50 | p95 | p99 | errors | cool-down before | verdict |"
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---|---|");
    for (i, step) in report.steps.iter().enumerate() {
        let cells = step_cells(axis, i, step).map(|c| c.replace('|', "\\|"));
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

/// The capacity curve: achieved load against p95 latency for every step,
/// passing steps filled, failing ones hollow, the capacity (the knee) and
/// the 70 % planning load marked (see [`charts::curve_chart`]).
pub fn curve_svg(report: &SearchReport) -> anyhow::Result<String> {
    let points = (report.steps.iter())
        .filter_map(|s| Some((s.achieved, s.p95? as f64 / 1000.0, s.pass)))
        .collect();
    // The knee sits at the capacity's achieved load (the confirmation
    // step's, if any).
    let markers = match report.capacity {
        Some(capacity) => {
            let knee = (report.steps.iter().rev())
                .find(|s| s.pass && (s.load - capacity).abs() < 1e-9)
                .map_or(capacity, |s| s.achieved);
            vec![
                (knee, "capacity", charts::PASS),
                (
                    knee * PLANNING_SHARE,
                    "70% (plan to scale)",
                    charts::PALETTE[0],
                ),
            ]
        }
        None => Vec::new(),
    };
    charts::curve_chart(&charts::Curve {
        points,
        x_desc: match report.axis {
            Axis::Users => "achieved (successful requests/s)",
            Axis::Agents => "registered agents",
        },
        y_desc: "p95 latency",
        markers,
    })
}

/// `capacity.html`: the search on the page of `report.html` (its skeleton,
/// style sheet and charts, see [`page`]): the verdict first, then the
/// curve and the table of steps.
pub fn html(report: &SearchReport) -> anyhow::Result<String> {
    let svg = curve_svg(report)?;
    let axis = report.axis;
    let title = format!("stampede capacity · {}", report.scenario);
    let mut main = String::new();
    let _ = write!(
        main,
        "<header>\n<h1>{title}</h1>\n</header>\n<section id=\"verdicts\">\n<p class=\"capacity\">{headline}</p>\n<p>Search stopped: {stopped}. Precision {precision}.</p>\n<p class=\"muted\">Rule: {rule}</p>\n</section>\n\
         <section id=\"curve\">\n<h2>Capacity curve</h2>\n<figure>\n{svg}<p class=\"muted\">Each point is a step: achieved load against p95 latency; filled = every SLO held, hollow = a failure. \
         The vertical lines mark the capacity (the knee) and 70 % of it.</p>\n</figure>\n</section>\n\
         <section id=\"steps\">\n<h2>Steps</h2>\n<table>\n<tr><th>step</th><th>load</th><th>offered</th><th>achieved</th><th>p50</th><th>p95</th><th>p99</th><th>errors</th><th class=\"text\">cool-down before</th><th class=\"text\">verdict</th></tr>\n",
        title = escape(&title),
        headline = escape(&headline(report)),
        stopped = escape(&report.stopped),
        precision = format::percent(report.precision, 0),
        rule = escape(&rules(axis)),
    );
    for (i, step) in report.steps.iter().enumerate() {
        let cells = step_cells(axis, i, step).map(|c| escape(&c));
        let (verdict, rest) = cells.split_last().expect("a step has cells");
        let (cool_down, numbers) = rest.split_last().expect("a step has cells");
        main.push_str("<tr>");
        for cell in numbers {
            let _ = write!(main, "<td>{cell}</td>");
        }
        let _ = write!(main, "<td class=\"text\">{cool_down}</td>");
        let class = if step.discarded.is_some() {
            "muted"
        } else if step.pass {
            "verdict-pass"
        } else {
            "verdict-fail"
        };
        let _ = writeln!(main, "<td class=\"text {class}\">{verdict}</td></tr>");
    }
    main.push_str("</table>\n</section>\n");
    Ok(page::document(&title, &main))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A search: two passing steps, a failing one, a passing confirmation.
    fn search_report() -> SearchReport {
        let step = |load: f64, kind: &'static str, p95: u64, pass: bool| Step {
            load,
            kind,
            offered: load * 3.0,
            achieved: if pass { load * 3.0 } else { load * 2.0 },
            p50: Some(p95 / 2),
            p95: Some(p95),
            p99: Some(p95 * 2),
            errors: u64::from(!pass),
            pass,
            failed: if pass {
                vec![]
            } else {
                vec!["http.latency.p95 < 200ms | measured 1.2s".into()]
            },
            result_dir: String::new(),
            cool_down: None,
            discarded: None,
        };
        SearchReport {
            scenario: "<shop>.toml".into(),
            axis: Axis::Users,
            capacity: Some(20.0),
            planning: Some(14.0),
            precision: 0.05,
            stopped: "within 5%".into(),
            steps: vec![
                step(10.0, "up", 12_000, true),
                step(20.0, "up", 40_000, true),
                step(40.0, "up", 1_200_000, false),
                Step {
                    cool_down: Some(CoolDown {
                        seconds: 2.6,
                        probes: 2,
                        load: 10.0,
                        quiet: true,
                        p50: Some(6_500),
                        quiet_p50: Some(11_000),
                    }),
                    ..step(20.0, "confirm", 41_000, true)
                },
            ],
        }
    }

    #[test]
    fn the_search_page_is_report_html_s_page_with_the_curve_and_the_steps() {
        let report = search_report();
        let page = html(&report).unwrap();
        // The skeleton and style sheet of report.html, nothing fetched.
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains(page::STYLE));
        assert!(page.contains("default-src 'none'"));
        assert!(!page.contains("src=") && !page.contains("url("));
        assert!(page.contains("&lt;shop&gt;.toml") && !page.contains("<shop>"));
        // One point per step, the knee and the planning load labelled.
        assert_eq!(page.matches("<circle").count(), 4);
        assert!(page.contains(">\ncapacity\n</text>"));
        assert!(page.contains(">\n70% (plan to scale)\n</text>"));
        assert!(page.contains("Capacity: 20/s · plan to scale at 14/s"));
        assert_eq!(
            page.matches("<td class=\"text verdict-pass\">pass</td>")
                .count(),
            3
        );
        assert!(page.contains("<td>41ms</td><td>82ms</td>"));
        // The Markdown table: the same cells, `|` escaped.
        let md = markdown(&report);
        assert!(md.starts_with(
            "capacity: 20/s (every SLO held; confirmed) · plan to scale at 70%: 14/s\n"
        ));
        // The cool-down before the confirmation, in both tables.
        let cool = "2.6s, 2 probes at 10/s → quiet (p50 6.5ms)";
        assert!(
            page.contains(&format!("<td class=\"text\">{cool}</td>")),
            "{page}"
        );
        assert!(md.contains(&format!("| 0 | {cool} | pass |")), "{md}");
        // Both state the rule they used: the one report.html states too.
        let shared = super::super::rule_sentence("the step's measured phase (exact percentiles)");
        assert!(
            md.contains(&format!("rule: {shared} A step passes when")),
            "{md}"
        );
        assert!(
            page.contains(&format!("Rule: {}", escape(&shared))),
            "{page}"
        );
        assert!(md.contains("| 3 up | 40/s | 120.0 | 80.0 | 600ms | 1.2s | 2.4s | 1 | – | FAIL: http.latency.p95 < 200ms \\| measured 1.2s |"));
    }
}
