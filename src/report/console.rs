//! What a person reads in the terminal: the resolved plan (`validate`), a
//! progress line during the run, and the final tables: per-step
//! percentiles, the hub tables, errors by kind, SLO verdicts, notes.
//!
//! The final tables ([`final_report`], in `console/final_tables.rs`) are
//! rendered from the run's [`Summary`](crate::report::json::Summary), like
//! every result file, so the terminal and the files give the same numbers;
//! values read as [`crate::units::format`] writes them everywhere.

use crate::engine::{Ids, LiveSnapshot};
use crate::metrics::{Point, TagFilter, Totals};
use crate::plan::{arrival_count, requests_per_arrival, Plan};
use crate::scenario::{Scenario, UserLoad};
use crate::units::format;
use crate::units::format_duration;
use std::fmt::Write;
use std::time::Duration;

mod final_tables;
pub use final_tables::{final_report, hub_report};

/// Write to stdout; a closed pipe (`stampede validate x.toml | head`) is not
/// an error.
pub fn emit(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// A latency as every report writes it ([`format::latency`]).
fn ms(us: u64) -> String {
    format::latency(us)
}

/// Left-aligned first column, right-aligned others.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(|r| r.len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        out.push_str("  ");
        for (c, cell) in row.iter().enumerate() {
            let pad = widths[c] - cell.chars().count();
            if c == 0 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str("  ");
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
        }
        out.push('\n');
    }
    out
}

fn load_text(load: &Option<UserLoad>) -> String {
    match load {
        None => "idle".into(),
        Some(UserLoad::Open(r)) if r.from == r.to => format!("rate {}/s", trim(r.from)),
        Some(UserLoad::Open(r)) => format!("rate {}/s -> {}/s", trim(r.from), trim(r.to)),
        Some(UserLoad::Closed(v)) if v.from == v.to => format!("{} VUs", v.from),
        Some(UserLoad::Closed(v)) => format!("{} -> {} VUs", v.from, v.to),
    }
}

fn trim(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// `stampede validate`: the resolved plan.
fn describe_hub(scenario: &Scenario) -> String {
    use crate::scenario::hub::{CommandVia, ConnectRate};
    let mut out = String::new();
    if scenario.agents.is_empty() && scenario.commanders.is_empty() {
        return out;
    }
    let hub = match &scenario.hub {
        Some(crate::scenario::HubTarget::Builtin(_)) => {
            "builtin (in-process on 127.0.0.1)".to_string()
        }
        Some(crate::scenario::HubTarget::Url(o)) => o.to_string(),
        None => "none".into(),
    };
    let _ = writeln!(out, "hub: {hub}");
    let mut rows = vec![vec![
        "phase".to_string(),
        "agents".into(),
        "connect rate".into(),
        "drop".into(),
        "commands".into(),
    ]];
    for p in &scenario.phases {
        let (agents, rate, drop) = match &p.agents {
            None => ("0".to_string(), "-".to_string(), "-".to_string()),
            Some(a) => (
                a.connected.to_string(),
                match a.connect_rate {
                    ConnectRate::Max => "max".into(),
                    ConnectRate::PerSecond(r) => format!("{}/s", trim(r)),
                },
                a.drop.map_or("-".into(), |d| {
                    format!(
                        "{}% by {} at +{}",
                        trim(d.fraction * 100.0),
                        d.how.name(),
                        format_duration(d.at)
                    )
                }),
            ),
        };
        rows.push(vec![
            p.name.clone(),
            agents,
            rate,
            drop,
            p.commanders.map_or("-".into(), |r| r.to_string()),
        ]);
    }
    out.push_str(&table(&rows));
    let peak = crate::engine::hub::max_agents(scenario);
    let _ = writeln!(
        out,
        "peak hub connections: {} ({peak} agents + {} commanders)",
        peak as usize + scenario.commanders.len(),
        scenario.commanders.len()
    );
    for a in &scenario.agents {
        let mut parts = vec![format!("{} on {}", a.protocol.name(), a.path)];
        if let Some(r) = &a.register {
            parts.push(format!("register `{}`", r.event));
        }
        if let Some(h) = &a.heartbeat {
            parts.push(format!("heartbeat every {}", format_duration(h.every)));
        }
        if let Some(st) = &a.status {
            parts.push(format!("status every {}", format_duration(st.every)));
        }
        if let Some(c) = &a.on_command {
            parts.push(format!("answers `{}`", c.event));
        }
        let _ = writeln!(
            out,
            "agents `{}` (weight {}): {}",
            a.name,
            a.weight,
            parts.join(", ")
        );
    }
    for c in &scenario.commanders {
        let via = match &c.via {
            CommandVia::Hub { event, .. } => format!("hub event `{event}`"),
            CommandVia::Api { .. } => "API POST".to_string(),
        };
        let _ = writeln!(out, "commanders `{}`: {via} to {}", c.name, c.to);
    }
    out
}

fn describe_users(scenario: &Scenario, plan: &Plan) -> String {
    let mut out = String::new();
    let per_arrival = requests_per_arrival(scenario);
    let mut rows = vec![vec![
        "phase".to_string(),
        "start".into(),
        "duration".into(),
        "users".into(),
        "arrivals".into(),
        "requests".into(),
    ]];
    for p in &plan.phases {
        let (arrivals, requests) = match p.users {
            Some(UserLoad::Open(r)) => {
                let n = arrival_count(r, p.duration);
                (n.to_string(), format!("{:.0}", n as f64 * per_arrival))
            }
            Some(UserLoad::Closed(_)) => ("closed".into(), "—".into()),
            None => ("0".into(), "0".into()),
        };
        rows.push(vec![
            p.name.clone(),
            format_duration(p.start),
            format_duration(p.duration),
            load_text(&p.users),
            arrivals,
            requests,
        ]);
    }
    out.push_str(&table(&rows));
    let _ = writeln!(out, "total duration: {}", format_duration(plan.total));
    if let Some(peak) = plan.peak_rate() {
        let _ = writeln!(
            out,
            "peak arrival rate: {}/s ({:.0} requests/s at {:.2} requests per journey)",
            trim(peak),
            peak * per_arrival,
            per_arrival
        );
    }
    if let Some(vus) = plan.peak_vus() {
        let _ = writeln!(out, "peak VUs (closed model): {vus}");
    }
    let arrivals = plan.expected_arrivals();
    if arrivals > 0 {
        let _ = writeln!(
            out,
            "expected requests (open-model phases): {:.0} from {arrivals} journeys",
            arrivals as f64 * per_arrival
        );
    }
    let polling: Vec<&str> = (scenario.populations.iter())
        .flat_map(|p| p.steps.iter())
        .filter_map(|s| s.wait.as_ref().map(|_| s.name.as_str()))
        .collect();
    if !polling.is_empty() {
        let _ = writeln!(
            out,
            "polling steps ({}) count one request each here; they send one per poll",
            polling.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "max in flight: {} · queue: {} · request timeout: {}",
        scenario.http.max_in_flight,
        scenario.http.queue,
        format_duration(scenario.http.timeout)
    );
    for pop in &scenario.populations {
        let steps: Vec<&str> = pop.steps.iter().map(|s| s.name.as_str()).collect();
        let _ = writeln!(
            out,
            "users `{}` (weight {}): {}",
            pop.name,
            pop.weight,
            steps.join(" → ")
        );
    }
    out
}

pub fn describe(scenario: &Scenario, plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "scenario `{}` is valid (seed {})",
        scenario.name, scenario.seed
    );
    let target = match &scenario.api {
        Some(crate::scenario::ApiTarget::Builtin(_)) => {
            "builtin (started in-process on 127.0.0.1)".to_string()
        }
        Some(crate::scenario::ApiTarget::Url(o)) => o.to_string(),
        None => "none".into(),
    };
    let _ = writeln!(out, "api: {target}");
    if !scenario.populations.is_empty() || scenario.agents.is_empty() {
        out.push_str(&describe_users(scenario, plan));
    } else {
        let _ = writeln!(out, "total duration: {}", format_duration(plan.total));
    }
    out.push_str(&describe_hub(scenario));
    if !scenario.actions.is_empty() {
        let _ = writeln!(out, "fault actions (run by segment 0 only in a split run):");
        for (offset, index) in crate::engine::actions::schedule(&scenario.actions, plan) {
            let a = &scenario.actions[index];
            let what = match &a.kind {
                crate::scenario::actions::ActionKind::Exec(argv) => format!("exec {argv:?}"),
                crate::scenario::actions::ActionKind::Http { method, path, .. } => {
                    format!("{method} {path}")
                }
            };
            // An argv or a path may carry an `env.` secret.
            let what = crate::redact::text(&what);
            let _ = writeln!(
                out,
                "  {} at {} ({} + {}): {what}, timeout {}{}",
                a.name,
                format_duration(offset),
                plan.phases.get(a.phase).map_or("", |p| p.name.as_str()),
                format_duration(a.at),
                format_duration(a.timeout),
                if a.fail == crate::scenario::actions::OnFail::Abort {
                    ", aborts the run if it fails"
                } else {
                    ""
                }
            );
        }
    }
    if scenario.slos.is_empty() {
        let _ = writeln!(out, "no SLOs: the run always passes unless interrupted");
    } else {
        let _ = writeln!(
            out,
            "SLOs:{}",
            if scenario.abort_on_fail {
                " (abort_on_fail)"
            } else {
                ""
            }
        );
        for slo in &scenario.slos {
            let _ = writeln!(out, "  {} {}", slo.key, slo.target);
        }
    }
    out
}

/// `stampede validate --segment i/n`: what that segment plays, per phase:
/// its arrivals (exact: the whole schedule's arrivals `k` with
/// `k mod n = i`), its VUs, its agents (global ids below the phase's
/// `connected` that it owns) and its commands (its stripe of every
/// commander's sends).
pub fn describe_segment(scenario: &Scenario, plan: &Plan) -> String {
    use crate::plan::PlannedPhase;
    let segment = plan.segment;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "segment {segment} (0-based): arrival k of the whole schedule is played by segment k mod {}, at its own time",
        segment.count
    );
    let arrivals = plan.owned_events(PlannedPhase::arrival_rate);
    let commands = plan.owned_events(|p| p.commanders);
    let commanders = scenario.commanders.len() as u64;
    let mut rows = vec![vec![
        "phase".to_string(),
        "arrivals".into(),
        "VUs".into(),
        "agents".into(),
        "commands".into(),
    ]];
    for (i, p) in plan.phases.iter().enumerate() {
        let vus = match p.users {
            Some(UserLoad::Closed(v)) if v.from == v.to => segment.share(v.from).to_string(),
            Some(UserLoad::Closed(v)) => {
                format!("{} -> {}", segment.share(v.from), segment.share(v.to))
            }
            _ => "-".into(),
        };
        let agents = p
            .agents
            .as_ref()
            .map_or("-".into(), |a| segment.share(a.connected).to_string());
        rows.push(vec![
            p.name.clone(),
            match p.users {
                Some(UserLoad::Open(_)) => arrivals[i].to_string(),
                _ => "-".into(),
            },
            vus,
            agents,
            if p.commanders.is_some() && commanders > 0 {
                (commands[i] * commanders).to_string()
            } else {
                "-".into()
            },
        ]);
    }
    out.push_str(&table(&rows));
    let total: u64 = arrivals.iter().sum();
    let _ = writeln!(
        out,
        "this segment: {total} of the plan's {} arrivals; these {} shares ({} … {}) together are the whole plan",
        plan.segment(crate::plan::Segment::WHOLE).expected_arrivals(),
        segment.count,
        crate::plan::Segment { index: 0, ..segment },
        crate::plan::Segment {
            index: segment.count - 1,
            ..segment
        },
    );
    out
}

/// One plain progress line (no control characters): the last interval's
/// request rate, worst step p95 and errors, and the live gauges.
pub fn progress_line(
    plan: &Plan,
    ids: &Ids,
    elapsed: Duration,
    point: &Point,
    live: &LiveSnapshot,
    p95_window: Option<u64>,
) -> String {
    let phase = plan
        .phases
        .get(live.phase)
        .map(|p| p.name.as_str())
        .unwrap_or("-");
    let counter =
        |id: crate::metrics::CounterId| point.counters.get(id.0 as usize).copied().unwrap_or(0);
    let steps = ids.steps.iter().flatten();
    let counter = &counter;
    let requests: u64 = steps.clone().map(|s| counter(s.requests)).sum();
    let errors: u64 = steps
        .clone()
        .flat_map(|s| s.errors.iter().map(|&e| counter(e)))
        .sum();
    let p95 = steps
        .map(|s| {
            point
                .hists
                .get(s.latency.0 as usize)
                .map(|h| h.p95)
                .unwrap_or(0)
        })
        .max()
        .unwrap_or(0);
    let mut line = format!(
        "[{:>6} / {}] {phase}",
        format_duration(Duration::from_secs(elapsed.as_secs())),
        format_duration(plan.total),
    );
    if !ids.steps.is_empty() {
        let _ = write!(
            line,
            " · {requests} req/s · p95(5s) {} · {errors} err/s · {} in flight",
            ms(p95_window.unwrap_or(p95)),
            live.in_flight,
        );
        let queued = live.queued;
        if queued > 0 {
            let _ = write!(line, " · {queued} queued");
        }
    }
    if let Some(hub) = &ids.hub {
        let gauge =
            |id: crate::metrics::GaugeId| point.gauges.get(id.0 as usize).copied().unwrap_or(0.0);
        let errors: u64 = hub
            .agents
            .iter()
            .flat_map(|a| a.errors.iter().map(|&e| counter(e)))
            .sum();
        let _ = write!(
            line,
            " · hub {}/{} registered · {errors} hub err/s",
            gauge(hub.registered),
            gauge(hub.connected)
        );
    }
    line
}

/// The generator is saturated when the p99 of `generator.lag` (how late
/// arrivals were made) is above this, in µs: the offered rate was not held
/// (one of the generator-health rules, [`super::generator`]).
pub const SATURATED_LAG_P99_US: u64 = 10_000;

/// How a note on waits still open at the end ends ([`open_wait_notes`]): a
/// merge recomputes them for the whole run and leaves out the segments'.
pub const OPEN_WAIT_NOTE: &str = "http.wait leaves them out";

/// One note per polling step with waits still open at the run's end
/// (`http.wait.open`): how many, the longest, and that `http.wait` does
/// not count them.
pub fn open_wait_notes(totals: &Totals) -> Vec<String> {
    let mut notes = Vec::new();
    let mut seen: Vec<(&str, &str)> = Vec::new();
    for d in &totals.layout().hists {
        if d.metric != crate::metrics::catalogue::HTTP_WAIT_OPEN
            || seen.contains(&(d.population.as_str(), d.step.as_str()))
        {
            continue;
        }
        seen.push((&d.population, &d.step));
        let filter = TagFilter {
            population: Some(d.population.clone()),
            step: Some(d.step.clone()),
            ..TagFilter::default()
        };
        let Some(h) = totals.select_hist(&d.metric, &filter) else {
            continue;
        };
        if h.is_empty() {
            continue;
        }
        let n = h.len();
        notes.push(format!(
            "{n} wait{} of step {} ({}) {} still open at the end (the longest for {}): {OPEN_WAIT_NOTE}",
            if n == 1 { "" } else { "s" },
            d.step,
            d.population,
            if n == 1 { "was" } else { "were" },
            ms(h.max()),
        ));
    }
    notes
}

/// Notes for the summary: model caveats, open waits, dropped arrivals
/// (the generator's health adds its own: [`super::generator`]).
pub fn notes(scenario: &Scenario, plan: &Plan, totals: &Totals) -> Vec<String> {
    let mut notes = Vec::new();
    if plan
        .phases
        .iter()
        .any(|p| matches!(p.users, Some(UserLoad::Closed(_))))
    {
        notes.push(
            "closed-model phases: latency is measured from the actual send (a closed loop cannot correct for coordinated omission)".into(),
        );
    }
    notes.extend(open_wait_notes(totals));
    let dropped = totals.sum_counters("http.errors", Some("dropped"), &TagFilter::default());
    if dropped > 0 {
        notes.push(format!(
            "{dropped} arrivals were dropped: max_in_flight ({}) was reached and they could not start in time",
            scenario.http.max_in_flight
        ));
    }
    notes
}
