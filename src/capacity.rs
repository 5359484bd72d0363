//! `stampede capacity SCENARIO`: the highest load at which every SLO holds.
//!
//! The load axis is the users' arrival rate (`--vary users`, journeys per
//! second) or the number of connected agents (`--vary agents`); by default
//! users when the scenario has any. Each **step** replays the scenario's
//! populations at one load, as two phases: `warm-up` (discarded) and
//! `measure`; for users every SLO is judged on the measure phase only (its
//! `phase` tag is set to `measure`); for agents the warm-up is the
//! connection storm, judged with the rest of the step. A step **passes** when every SLO holds there
//! and the load was really carried: for users, at least 95 % of the offered
//! requests succeeded; for agents, at least 95 % were registered at the end.
//!
//! **Search**: from `--start` (default: a tenth of the scenario's peak, at
//! least 1), multiply by 2 until a step fails; then bisect between the last
//! pass and the first fail until they are within `--precision` (default
//! 5 %) of each other or the time `--budget` runs out. A **confirmation**
//! step at the answer follows; when it fails, the answer steps down by the
//! precision and is confirmed again (at most 3 times). The **planning
//! load** is 70 % of the capacity: alert there, scale before it.
//!
//! Results go to `reports/<name>-capacity-<UTC>/`: every step's own result
//! directory under `steps/`, `capacity.json`, `capacity.md` and
//! `capacity.html` (the capacity curve — achieved load against p95, the knee
//! and the 70 % planning load marked — and the table of steps), rendered by
//! [`crate::report::capacity`].
//!
//! With `--processes N` every step runs as `run --processes N` does
//! ([`crate::run::processes`]): N segment processes, their results merged
//! and the step judged on the merge. The built-in target's process is
//! started once for the whole search; each child shapes the step itself
//! from the hidden `--capacity-step` flag ([`step_scenario`]).

use crate::error::{CommandError, ExitStatus};
use crate::metrics::TagFilter;
use crate::run::processes::Processes;
use crate::run::{Progress, RunOptions, RunOutcome};
use crate::scenario::{Overrides, Scenario};
use anyhow::Context as _;
// The reports of a search are rendered in `report::capacity`.
use crate::report::capacity::load_text;
// The search's result types live with their renderers in `report::capacity`
// (a report is a layer below the commands); re-exported here.
pub use crate::report::capacity::{curve_svg, html, markdown, SearchReport as Report, Step};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::scenario::model::Axis;

mod step;
use step::{peak_users, shaped};

/// Settings of a search. `None`: the scenario's `[capacity]` value, else
/// the default (users if any; a tenth of the peak; 5 %; 10m; 5s; 20s).
#[derive(Debug, Clone)]
pub struct Options {
    pub scenario: PathBuf,
    pub overrides: Overrides,
    pub out_dir: PathBuf,
    pub vary: Option<Axis>,
    pub start: Option<f64>,
    pub precision: Option<f64>,
    pub budget: Option<Duration>,
    pub warmup: Option<Duration>,
    pub step: Option<Duration>,
    pub quiet: bool,
    /// `--processes`: each step in this many processes (1: in this one).
    pub processes: u32,
    pub command_line: Vec<String>,
}

fn measure_filter() -> TagFilter {
    TagFilter {
        phase: Some(1),
        ..TagFilter::default()
    }
}

fn judge(
    outcome: &RunOutcome,
    axis: Axis,
    load: f64,
    step: Duration,
) -> (f64, f64, [Option<u64>; 3], u64, Vec<String>) {
    let totals = &outcome.totals;
    let f = measure_filter();
    let mut failed: Vec<String> = outcome
        .verdicts
        .iter()
        .filter(|v| !v.pass)
        .map(|v| {
            format!(
                "{} {} (measured {})",
                v.slo.key, v.slo.target, v.measured_text
            )
        })
        .collect();
    let secs = step.as_secs_f64().max(1e-9);
    let (offered, achieved, metric, errors) = match axis {
        Axis::Users => {
            let requests = totals.sum_counters("http.requests", None, &f);
            let errors = totals.sum_counters("http.errors", None, &f);
            (
                requests as f64 / secs,
                requests.saturating_sub(errors) as f64 / secs,
                "http.latency",
                errors,
            )
        }
        Axis::Agents => {
            // The last full interval (the final point is after the close).
            let registered = totals
                .gauge_values("hub.registered")
                .iter()
                .rev()
                .nth(1)
                .copied()
                .unwrap_or(0.0);
            (
                load.round(),
                registered,
                "hub.connect",
                totals.sum_counters("hub.errors", None, &TagFilter::default()),
            )
        }
    };
    if achieved < 0.95 * offered {
        failed.push(format!(
            "carried {:.0} of {:.0} offered ({:.0}%)",
            achieved,
            offered,
            achieved / offered.max(1e-9) * 100.0
        ));
    }
    let pct_filter = if axis == Axis::Agents {
        TagFilter::default()
    } else {
        f
    };
    let pcts = totals
        .select_hist(metric, &pct_filter)
        .filter(|h| !h.is_empty())
        .map(|h| [0.5, 0.95, 0.99].map(|q| Some(h.value_at_quantile(q))))
        .unwrap_or([None; 3]);
    (offered, achieved, pcts, errors, failed)
}

/// Run the search.
pub async fn search(mut options: Options) -> Result<(Report, ExitStatus), CommandError> {
    let base = crate::run::load(&options.scenario, &options.overrides)?;
    // Flags, else the scenario's [capacity], else the defaults.
    let spec = &base.capacity;
    options.vary = options.vary.or(spec.vary);
    options.start = options.start.or(spec.start);
    options.precision = Some(
        options
            .precision
            .or(spec.precision.map(|f| f.0))
            .unwrap_or(0.05),
    );
    options.budget = Some(
        options
            .budget
            .or(spec.budget.map(|d| d.0))
            .unwrap_or(Duration::from_secs(600)),
    );
    options.warmup = Some(
        options
            .warmup
            .or(spec.warmup.map(|d| d.0))
            .unwrap_or(Duration::from_secs(5)),
    );
    options.step = Some(
        options
            .step
            .or(spec.step.map(|d| d.0))
            .unwrap_or(Duration::from_secs(20)),
    );
    if !options.precision.is_some_and(|p| p > 0.0 && p < 1.0) {
        return Err(CommandError::BadInput(
            "the precision must be between 0% and 100%, e.g. 5%".into(),
        ));
    }
    if options.start.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
        return Err(CommandError::BadInput(
            "the start load must be above 0".into(),
        ));
    }
    let precision = options.precision.expect("set above");
    let budget = options.budget.expect("set above");
    let warmup = options.warmup.expect("set above");
    let step_len = options.step.expect("set above");
    let axis = match options.vary {
        Some(a) => a,
        None if !base.populations.is_empty() => Axis::Users,
        None if !base.agents.is_empty() => Axis::Agents,
        None => {
            return Err(CommandError::BadInput(
                "the scenario has neither [[users]] nor [[agents]]: nothing to vary".into(),
            ))
        }
    };
    match axis {
        Axis::Users if base.populations.is_empty() => {
            return Err(CommandError::BadInput(
                "--vary users, but the scenario has no [[users]]".into(),
            ))
        }
        Axis::Agents if base.agents.is_empty() => {
            return Err(CommandError::BadInput(
                "--vary agents, but the scenario has no [[agents]]".into(),
            ))
        }
        _ => {}
    }
    if base.slos.is_empty() {
        return Err(CommandError::BadInput(
            "the scenario has no [slo]: capacity is the highest load at which every SLO holds, so it needs some".into(),
        ));
    }
    let peak = match axis {
        Axis::Users => peak_users(&base).unwrap_or(10.0),
        Axis::Agents => f64::from(crate::engine::hub::max_agents(&base).max(10)),
    };
    let mut load = options.start.unwrap_or((peak / 10.0).max(1.0));
    let started = chrono::Utc::now();
    let dir = crate::run::result_dir(
        &options.out_dir,
        &format!("{}-capacity", base.name),
        started,
    )
    .with_context(|| {
        format!(
            "creating a result directory in {}",
            options.out_dir.display()
        )
    })?;
    // One built-in target process for the whole search.
    let fleet = match options.processes {
        0 | 1 => None,
        n => Some(Processes::start(
            &options.scenario,
            &options.overrides,
            &base,
            n,
        )?),
    };
    let fleet = fleet.as_ref();
    drop(base);
    let clock = Instant::now();
    let mut steps: Vec<Step> = Vec::new();
    let mut pass: Option<f64> = None;
    let mut fail: Option<f64> = None;
    let stopped;
    let mut interrupted = false;
    // Up, then bisect.
    loop {
        let kind = if fail.is_none() { "up" } else { "bisect" };
        let step = match probe(&options, fleet, axis, load, kind, &dir).await {
            Ok(step) => step,
            // A step this process cannot run (e.g. more agents than it may
            // hold descriptors for) ends the search with what it found.
            Err(e) if !steps.is_empty() => {
                stopped = format!("the step at {} cannot run here: {e}", load_text(axis, load));
                break;
            }
            Err(e) => return Err(e),
        };
        let ok = step.pass;
        let carried_out = !step.result_dir.is_empty();
        print_step(&options, &step);
        steps.push(step);
        if !carried_out {
            interrupted = true;
            stopped = "interrupted".to_string();
            break;
        }
        if ok {
            pass = Some(load);
        } else {
            fail = Some(load);
        }
        let next = match (pass, fail) {
            (_, None) => load * 2.0,
            (None, Some(f)) => {
                if f <= 1.0 || steps.len() >= 3 && f < peak / 1000.0 {
                    stopped = "even the lowest load failed".to_string();
                    break;
                }
                f / 2.0
            }
            (Some(p), Some(f)) => {
                if (f - p) / p <= precision {
                    stopped = format!("pass and fail within {:.0}%", precision * 100.0);
                    break;
                }
                (p + f) / 2.0
            }
        };
        if clock.elapsed() + warmup + step_len > budget {
            stopped = "time budget used up".to_string();
            break;
        }
        load = if axis == Axis::Agents {
            next.round().max(1.0)
        } else {
            next
        };
    }
    // Confirm.
    let mut capacity = pass;
    if !interrupted {
        let mut tries = 0;
        while let Some(c) = capacity {
            if tries >= 3 || clock.elapsed() + warmup + step_len > budget + budget / 2 {
                break;
            }
            tries += 1;
            let step = probe(&options, fleet, axis, c, "confirm", &dir).await?;
            print_step(&options, &step);
            let ok = step.pass;
            let carried_out = !step.result_dir.is_empty();
            steps.push(step);
            if !carried_out {
                interrupted = true;
                break;
            }
            if ok {
                break;
            }
            capacity = Some(c * (1.0 - precision)).filter(|c| *c >= 1.0);
        }
    }
    let report = Report {
        scenario: options.scenario.display().to_string(),
        axis,
        capacity,
        planning: capacity.map(|c| c * 0.7),
        precision,
        stopped,
        steps,
    };
    let json = serde_json::to_vec_pretty(&report).map_err(anyhow::Error::from)?;
    crate::report::write_atomic(&dir.join("capacity.json"), &json)
        .with_context(|| format!("writing {}", dir.join("capacity.json").display()))?;
    let md = markdown(&report);
    crate::report::write_atomic(&dir.join("capacity.md"), md.as_bytes())
        .with_context(|| format!("writing {}", dir.join("capacity.md").display()))?;
    match html(&report) {
        Ok(page) => crate::report::write_atomic(&dir.join("capacity.html"), page.as_bytes())
            .with_context(|| format!("writing {}", dir.join("capacity.html").display()))?,
        Err(e) => eprintln!("warning: capacity.html: {e:#}"),
    }
    crate::report::console::emit(&md);
    crate::report::console::emit(&format!("results: {}\n", dir.display()));
    let exit = if interrupted {
        ExitStatus::NotCarriedOut
    } else if capacity.is_none() {
        ExitStatus::SloFailed
    } else {
        ExitStatus::Passed
    };
    Ok((report, exit))
}

async fn probe(
    options: &Options,
    fleet: Option<&Processes>,
    axis: Axis,
    load: f64,
    kind: &'static str,
    dir: &std::path::Path,
) -> Result<Step, CommandError> {
    let scenario = shaped(
        crate::run::load(&options.scenario, &options.overrides)?,
        axis,
        load,
        options.warmup.unwrap_or_default(),
        options.step.unwrap_or_default(),
    );
    let run = RunOptions {
        scenario: options.scenario.clone(),
        overrides: options.overrides.clone(),
        out_dir: dir.join("steps"),
        progress: Progress::Silent,
        grace: Duration::from_secs(2),
        command_line: options.command_line.clone(),
        baseline: None,
        segment: crate::plan::Segment::WHOLE,
        start_at: None,
        child: Default::default(),
    };
    let outcome = match fleet {
        None => crate::run::run_scenario(Arc::new(scenario), &run).await?,
        Some(fleet) => {
            let spec = step_spec(axis, load, options);
            let extra = ["--capacity-step".to_string(), spec];
            fleet.run(&scenario, &run, &extra).await?
        }
    };
    let (offered, achieved, [p50, p95, p99], errors, failed) =
        judge(&outcome, axis, load, options.step.unwrap_or_default());
    let carried_out = outcome.exit != ExitStatus::NotCarriedOut;
    Ok(Step {
        load,
        kind,
        offered,
        achieved,
        p50,
        p95,
        p99,
        errors,
        pass: carried_out && failed.is_empty(),
        failed,
        result_dir: if carried_out {
            outcome.result_dir.display().to_string()
        } else {
            String::new()
        },
    })
}

/// The hidden `--capacity-step` value: `AXIS/LOAD/WARMUP_NS/STEP_NS`
/// (the load printed so it reads back exactly).
fn step_spec(axis: Axis, load: f64, options: &Options) -> String {
    let axis = match axis {
        Axis::Users => "users",
        Axis::Agents => "agents",
    };
    let ns = |d: Option<Duration>| d.unwrap_or_default().as_nanos();
    format!("{axis}/{load}/{}/{}", ns(options.warmup), ns(options.step))
}

/// A child of `capacity --processes`: its scenario loaded as `run` would,
/// then shaped to the step `spec` describes (`AXIS/LOAD/WARMUP_NS/STEP_NS`).
pub fn step_scenario(options: &RunOptions, spec: &str) -> Result<Scenario, CommandError> {
    let bad = || CommandError::BadInput(format!("--capacity-step {spec:?}: not a step"));
    let parts: Vec<&str> = spec.split('/').collect();
    let [axis, load, warmup, step] = parts[..] else {
        return Err(bad());
    };
    let axis = match axis {
        "users" => Axis::Users,
        "agents" => Axis::Agents,
        _ => return Err(bad()),
    };
    let load: f64 = load.parse().map_err(|_| bad())?;
    let ns = |t: &str| {
        t.parse::<u64>()
            .map(Duration::from_nanos)
            .map_err(|_| bad())
    };
    let base = crate::run::load(&options.scenario, &options.overrides)?;
    Ok(shaped(base, axis, load, ns(warmup)?, ns(step)?))
}

fn print_step(options: &Options, step: &Step) {
    if options.quiet {
        return;
    }
    eprintln!(
        "capacity: {:<8} load {:>10} · achieved {:.1} of {:.1} · p95 {} · errors {} · {}",
        step.kind,
        format!("{:.1}", step.load),
        step.achieved,
        step.offered,
        crate::units::format::optional_latency(step.p95),
        step.errors,
        if step.pass {
            "pass".to_string()
        } else {
            format!("FAIL: {}", step.failed.join("; "))
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A child of `capacity --processes` plays exactly the step its
    /// parent shaped: the hidden flag carries the load and lengths exactly.
    #[test]
    fn a_step_spec_reshapes_the_scenario_exactly_in_the_child() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s.toml");
        std::fs::write(
            &path,
            "name = \"s\"\n[target]\napi = \"builtin\"\n[[users]]\nname = \"u\"\nsteps = [{ name = \"a\", get = \"/health\" }]\n[[phases]]\nname = \"p\"\nduration = \"10s\"\nusers = { rate = \"10/s\" }\n[slo]\n\"http.errors.rate\" = \"< 1%\"\n",
        )
        .unwrap();
        let options = Options {
            scenario: path.clone(),
            overrides: Overrides::default(),
            out_dir: tmp.path().into(),
            vary: None,
            start: None,
            precision: None,
            budget: None,
            warmup: Some(Duration::from_millis(1500)),
            step: Some(Duration::from_nanos(2_000_000_001)),
            quiet: true,
            processes: 2,
            command_line: Vec::new(),
        };
        let load = 10.0 / 3.0;
        let spec = step_spec(Axis::Users, load, &options);
        let run = RunOptions {
            scenario: path.clone(),
            overrides: Overrides::default(),
            out_dir: tmp.path().into(),
            progress: Progress::Json,
            grace: Duration::from_secs(1),
            command_line: Vec::new(),
            baseline: None,
            segment: crate::plan::Segment::WHOLE,
            start_at: None,
            child: Default::default(),
        };
        let child = step_scenario(&run, &spec).unwrap();
        let parent = shaped(
            crate::run::load(&path, &Overrides::default()).unwrap(),
            Axis::Users,
            load,
            options.warmup.unwrap(),
            options.step.unwrap(),
        );
        let phases = |s: &Scenario| format!("{:?}", s.phases);
        assert_eq!(phases(&child), phases(&parent));
        assert_eq!(
            child.phases[1].duration,
            Duration::from_nanos(2_000_000_001)
        );
        assert!(step_scenario(&run, "users/1").is_err());
        assert!(step_scenario(&run, "bikes/1/1/1").is_err());
    }
}
