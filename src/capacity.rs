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
//! **Rule** of a passing step, shared with `report.html`'s capacity
//! estimate ([`crate::report::capacity::sustained`],
//! [`crate::report::capacity::generator_kept_up`]): the load was
//! sustained (successful requests ≥ 95 % of those offered; the generator's
//! scheduling lag p99 ≤ 10 ms in every second of the measured phase) and
//! every SLO held on the measured phase. Both outputs print it
//! ([`rules`]).
//!
//! **Steps that do not poison each other.** A server that queues is still
//! working off a failing step's backlog when the next step starts. So:
//!
//! - **Cool-down**: after a failing step, or a passing one whose measured
//!   p50 is above the quiet limit below (it ended near the knee, with a
//!   queue), the target (users axis) is probed
//!   at a low load — the first passing step's load, else a quarter of the
//!   first step's — in probe runs of 1 s (after a 200 ms warm-up),
//!   until a probe is **quiet**: it sustained its load and its p50 is at
//!   most 1.5 × the first passing step's measured p50 + 2 ms; before any
//!   step passed, two sustained probes in a row whose p50 differ by at most
//!   20 % of the larger + 2 ms. The cool-down stops unquiet when the next
//!   probe would pass the maximum (`--cool-down`, `[capacity] cool_down`,
//!   default [`DEFAULT_COOL_DOWN`]; `0s`: no cool-down). Each step records
//!   its cool-down ([`CoolDown`]: seconds, probes, quiet, p50 at the end).
//! - **Backlog check**: a failing step (not the first) is discarded and
//!   run again (once, after a cool-down) when its warm-up p50 is above 2 × the
//!   quiet p50 + 5 ms while its measured p50 fell below two thirds of the
//!   warm-up's: a backlog draining, not the step's own overload (which
//!   grows). A failing step during which the generator fell behind is run
//!   again too (it says nothing about the target); at most twice in all.
//! - With `api = "builtin"`, the built-in target is started once for the
//!   whole search (in this process, or in its own with `--processes`), so
//!   its queue carries over from step to step as a real server's does.
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
use crate::scenario::{ApiTarget, HubTarget, Overrides, Scenario};
use anyhow::Context as _;
// The reports of a search are rendered in `report::capacity`.
use crate::report::capacity::{generator_kept_up, load_text, sustained};
// The search's result types live with their renderers in `report::capacity`
// (a report is a layer below the commands); re-exported here.
pub use crate::report::capacity::{
    curve_svg, html, markdown, rules, CoolDown, SearchReport as Report, Step,
};
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
    /// `--cool-down`: the longest cool-down after a failing step (0: none).
    pub cool_down: Option<Duration>,
    pub command_line: Vec<String>,
}

/// The longest cool-down after a failing step, unless `--cool-down` or
/// `[capacity] cool_down` says otherwise.
pub const DEFAULT_COOL_DOWN: Duration = Duration::from_secs(60);
/// A cool-down probe's measured length.
const PROBE: Duration = Duration::from_secs(1);
/// A cool-down probe's warm-up (its first arrivals, not judged).
const PROBE_WARMUP: Duration = Duration::from_millis(200);
/// Quiet, against the first passing step's p50 `q`: p50 ≤ `q` × this + [`QUIET_SLACK_US`].
const QUIET_FACTOR: f64 = 1.5;
const QUIET_SLACK_US: u64 = 2_000;
/// Quiet, before any step passed: two probes in a row whose p50 differ by
/// at most this share of the larger + [`QUIET_SLACK_US`].
const AGREE_SHARE: f64 = 0.2;
/// A backlog at a step's start: warm-up p50 above `q` × this + [`BACKLOG_SLACK_US`]...
const BACKLOG_FACTOR: f64 = 2.0;
const BACKLOG_SLACK_US: u64 = 5_000;
/// ...while the measured p50 fell below this share of the warm-up's.
const DRAINING_SHARE: f64 = 2.0 / 3.0;
/// How often a step is run again: because of a backlog at its start
/// (once), or because the generator fell behind (the step said nothing
/// about the target); at most twice in all.
const MAX_RERUNS: u32 = 2;

fn measure_filter() -> TagFilter {
    TagFilter {
        phase: Some(1),
        ..TagFilter::default()
    }
}

/// A step's offered and achieved load, p50 / p95 / p99, errors and what
/// failed, by the rule `report.html`'s estimate uses too
/// ([`sustained`], [`generator_kept_up`], every SLO held).
fn judge(
    outcome: &RunOutcome,
    axis: Axis,
    load: f64,
    warmup: Duration,
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
    if !sustained(offered, achieved) {
        failed.push(format!(
            "carried {:.0} of {:.0} offered ({:.0}%)",
            achieved,
            offered,
            achieved / offered.max(1e-9) * 100.0
        ));
    }
    // The generator kept up over the measured phase (users: the seconds
    // after the warm-up; the series is per wall-clock second).
    if axis == Axis::Users {
        let lag = lag_p99_per_second(totals, warmup);
        if !generator_kept_up(lag.iter().copied()) {
            let worst = lag.iter().flatten().max().copied().unwrap_or(0);
            failed.push(format!(
                "{GENERATOR_BEHIND} (scheduling lag p99 {} in a second, above {})",
                crate::units::format::latency(worst),
                crate::units::format::latency(crate::report::console::SATURATED_LAG_P99_US)
            ));
        }
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

/// How [`judge`] names a step the generator did not keep up with.
const GENERATOR_BEHIND: &str = "generator behind";

/// Per wall-clock second after `warmup`, the worst `generator.lag` p99
/// of any series (µs; None: no arrival that second).
fn lag_p99_per_second(totals: &crate::metrics::Totals, warmup: Duration) -> Vec<Option<u64>> {
    let ids: Vec<usize> = (totals.layout().hists.iter().enumerate())
        .filter(|(_, d)| d.metric == "generator.lag")
        .map(|(i, _)| i)
        .collect();
    (totals.series().iter())
        .filter(|p| p.elapsed_s > warmup.as_secs_f64())
        .map(|p| {
            (ids.iter())
                .filter_map(|&i| p.hists.get(i))
                .filter(|s| s.count > 0)
                .map(|s| s.p99)
                .max()
        })
        .collect()
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
    let spec_cool_down = spec.cool_down.map(|d| d.0);
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
    // In this process: the built-in API target, once for the whole search
    // (its queue carries over from step to step, as a real server's does).
    let _builtin = match fleet {
        None => start_builtin(&base, &mut options.overrides).await?,
        Some(_) => None,
    };
    drop(base);
    let cool_down = options
        .cool_down
        .or(spec_cool_down)
        .unwrap_or(DEFAULT_COOL_DOWN);
    let clock = Instant::now();
    let mut search = Search {
        options: &options,
        fleet,
        axis,
        dir: &dir,
        cool_down,
        steps: Vec::new(),
        quiet: None,
        first: None,
    };
    let mut pass: Option<f64> = None;
    let mut fail: Option<f64> = None;
    let stopped;
    let mut interrupted = false;
    // Up, then bisect.
    loop {
        let kind = if fail.is_none() { "up" } else { "bisect" };
        let (ok, carried_out) = match search.step(load, kind).await {
            Ok(step) => step,
            // A step this process cannot run (e.g. more agents than it may
            // hold descriptors for) ends the search with what it found.
            Err(e) if !search.steps.is_empty() => {
                stopped = format!("the step at {} cannot run here: {e}", load_text(axis, load));
                break;
            }
            Err(e) => return Err(e),
        };
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
        // Failed only because the generator fell behind, again and again:
        // this machine cannot offer the load, so the search cannot tell
        // where the target stops; the last pass is a lower bound.
        let last = search.steps.last().expect("a step was added");
        if !ok && last.failed.iter().all(|f| f.starts_with(GENERATOR_BEHIND)) {
            stopped = format!(
                "the generator fell behind at {} (each run of it): this machine could not offer more, so the capacity is at least the last passing load; give the generator more CPU (fewer arrivals per process, --processes, more cores)",
                load_text(axis, load)
            );
            break;
        }
        let next = match (pass, fail) {
            (_, None) => load * 2.0,
            (None, Some(f)) => {
                if f <= 1.0 || search.steps.len() >= 3 && f < peak / 1000.0 {
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
            let (ok, carried_out) = search.step(c, "confirm").await?;
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
    let steps = search.steps;
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

/// Start the built-in API target in this process when the scenario has
/// one, and point the steps at it (`overrides`, as `--api URL` would; the
/// built-in hub too when there is one): the same target, never restarted,
/// serves every step and cool-down probe.
async fn start_builtin(
    base: &Scenario,
    overrides: &mut Overrides,
) -> Result<Option<crate::target::RunningTarget>, CommandError> {
    let Some(ApiTarget::Builtin(config)) = &base.api else {
        return Ok(None);
    };
    let running = crate::target::spawn("127.0.0.1:0".parse().expect("literal"), config.clone())
        .await
        .context("starting the built-in target")?;
    let url = running.url();
    overrides.api = Some(url.clone());
    if matches!(base.hub, Some(HubTarget::Builtin(_))) {
        overrides.hub = Some(url.clone());
        if base.hub_admin.is_none() {
            overrides
                .sets
                .push(("target.hub_admin".into(), format!("{url}/admin/hub/kick")));
        }
    }
    Ok(Some(running))
}

/// A search in progress: its settings and the steps so far.
struct Search<'a> {
    options: &'a Options,
    fleet: Option<&'a Processes>,
    axis: Axis,
    dir: &'a std::path::Path,
    /// The longest cool-down (zero: none).
    cool_down: Duration,
    steps: Vec<Step>,
    /// The first passing step's load and measured p50 (users): what quiet is.
    quiet: Option<(f64, u64)>,
    /// The first step's load.
    first: Option<f64>,
}

impl Search<'_> {
    /// One step at `load`: after a cool-down when the previous step failed,
    /// and run again (at most [`MAX_RERUNS`] times) when it failed with the
    /// previous step's backlog at its start or with the generator behind.
    /// Adds its rows; the last row's (pass, carried out).
    async fn step(&mut self, load: f64, kind: &'static str) -> Result<(bool, bool), CommandError> {
        let mut reruns = 0;
        loop {
            // After a failing step, or a passing one that ended loaded (its
            // p50 above the quiet rule's: near the knee it leaves a queue).
            let threshold = self.quiet.map(|(_, q)| quiet_threshold(q));
            let loaded =
                |s: &Step| !s.pass || threshold.is_some_and(|t| s.p50.is_some_and(|p50| p50 > t));
            let cool_down = if self.steps.last().is_some_and(loaded) {
                self.cool_down().await?
            } else {
                None
            };
            let (mut step, warm_p50, behind) = self.run_step(load, kind).await?;
            self.first.get_or_insert(load);
            let carried_out = !step.result_dir.is_empty();
            let reference = (self.quiet.map(|(_, p50)| p50))
                .or(cool_down.as_ref().filter(|c| c.quiet).and_then(|c| c.p50));
            step.cool_down = cool_down;
            let discard = if !carried_out || step.pass || reruns >= MAX_RERUNS {
                None
            } else if behind {
                Some("the generator fell behind, so the load was not offered as planned".into())
            } else if !self.steps.is_empty() && reruns == 0 {
                backlog(reference, warm_p50, step.p50)
            } else {
                None
            };
            if let Some(why) = discard {
                step.discarded = Some(why);
                print_step(self.options, &step);
                self.steps.push(step);
                reruns += 1;
                continue;
            }
            if step.pass && self.axis == Axis::Users && self.quiet.is_none() {
                self.quiet = step.p50.map(|p50| (load, p50));
            }
            print_step(self.options, &step);
            let ok = step.pass;
            self.steps.push(step);
            return Ok((ok, carried_out));
        }
    }

    /// Play the scenario shaped to one load (a step or a probe), its
    /// results under `out`.
    async fn play(
        &self,
        load: f64,
        warmup: Duration,
        step: Duration,
        out: PathBuf,
    ) -> Result<RunOutcome, CommandError> {
        let options = self.options;
        let scenario = shaped(
            crate::run::load(&options.scenario, &options.overrides)?,
            self.axis,
            load,
            warmup,
            step,
        );
        let run = RunOptions {
            scenario: options.scenario.clone(),
            overrides: options.overrides.clone(),
            out_dir: out,
            progress: Progress::Silent,
            grace: Duration::from_secs(2),
            command_line: options.command_line.clone(),
            baseline: None,
            segment: crate::plan::Segment::WHOLE,
            start_at: None,
            child: Default::default(),
        };
        match self.fleet {
            None => crate::run::run_scenario(Arc::new(scenario), &run).await,
            Some(fleet) => {
                let spec = step_spec(self.axis, load, warmup, step);
                let extra = ["--capacity-step".to_string(), spec];
                fleet.run(&scenario, &run, &extra).await
            }
        }
    }

    /// A step at `load`, judged; its warm-up's p50 (µs); whether the
    /// generator fell behind.
    async fn run_step(
        &self,
        load: f64,
        kind: &'static str,
    ) -> Result<(Step, Option<u64>, bool), CommandError> {
        let warmup = self.options.warmup.unwrap_or_default();
        let step_len = self.options.step.unwrap_or_default();
        let outcome = self
            .play(load, warmup, step_len, self.dir.join("steps"))
            .await?;
        let (offered, achieved, [p50, p95, p99], errors, failed) =
            judge(&outcome, self.axis, load, warmup, step_len);
        let behind = failed.iter().any(|f| f.starts_with(GENERATOR_BEHIND));
        let warm_p50 = p50_of(&outcome, 0);
        let carried_out = outcome.exit != ExitStatus::NotCarriedOut;
        let step = Step {
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
            cool_down: None,
            discarded: None,
        };
        Ok((step, warm_p50, behind))
    }

    /// The cool-down after a failing step (users; none when the maximum is
    /// zero): probes of [`PROBE`] at the first passing step's load (else a
    /// quarter of the first step's) until one is quiet (see [`quiet`]) or
    /// the maximum cool-down would be passed.
    async fn cool_down(&self) -> Result<Option<CoolDown>, CommandError> {
        if self.axis != Axis::Users || self.cool_down.is_zero() {
            return Ok(None);
        }
        let load = match self.quiet {
            Some((load, _)) => load,
            None => (self.first.unwrap_or(4.0) / 4.0).max(1.0),
        };
        let target = self.quiet.map(|(_, p50)| quiet_threshold(p50));
        // tokio's clock: the paused clock of the tests, else the wall clock.
        let started = tokio::time::Instant::now();
        let (mut probes, mut p50, mut previous, mut is_quiet) = (0, None, None, false);
        loop {
            let outcome = self
                .play(load, PROBE_WARMUP, PROBE, self.dir.join("cool-down"))
                .await?;
            probes += 1;
            if outcome.exit == ExitStatus::NotCarriedOut {
                break; // interrupted: the next step says so
            }
            let f = measure_filter();
            let requests = outcome.totals.sum_counters("http.requests", None, &f) as f64;
            let errors = outcome.totals.sum_counters("http.errors", None, &f) as f64;
            let carried = sustained(requests, requests - errors);
            p50 = p50_of(&outcome, 1);
            is_quiet = quiet(target, carried, p50, previous);
            previous = p50.filter(|_| carried);
            if is_quiet || started.elapsed() + PROBE_WARMUP + PROBE > self.cool_down {
                break;
            }
        }
        Ok(Some(CoolDown {
            seconds: started.elapsed().as_secs_f64(),
            probes,
            load,
            quiet: is_quiet,
            p50,
            quiet_p50: target,
        }))
    }
}

/// The quiet rule's p50 limit (µs) for the first passing step's p50 `q`:
/// 1.5 × `q` + 2 ms.
fn quiet_threshold(q: u64) -> u64 {
    (q as f64 * QUIET_FACTOR) as u64 + QUIET_SLACK_US
}

/// p50 of `http.latency` in phase `phase` (µs; None: no sample).
fn p50_of(outcome: &RunOutcome, phase: usize) -> Option<u64> {
    let f = TagFilter {
        phase: Some(phase),
        ..TagFilter::default()
    };
    (outcome.totals.select_hist("http.latency", &f))
        .filter(|h| !h.is_empty())
        .map(|h| h.value_at_quantile(0.5))
}

/// Whether a cool-down probe found the target quiet: it sustained its load
/// (`carried`) and its p50 is at most `target` (1.5 × the first passing
/// step's p50 + 2 ms); with no target yet (no step passed), its p50 agrees
/// with the previous sustained probe's within 20 % of the larger + 2 ms.
fn quiet(target: Option<u64>, carried: bool, p50: Option<u64>, previous: Option<u64>) -> bool {
    let Some(p50) = p50.filter(|_| carried) else {
        return false;
    };
    match (target, previous) {
        (Some(target), _) => p50 <= target,
        (None, Some(prev)) => {
            p50.abs_diff(prev) as f64 <= AGREE_SHARE * p50.max(prev) as f64 + QUIET_SLACK_US as f64
        }
        (None, None) => false,
    }
}

/// Why a failing step's start shows the previous step's backlog, if it
/// does: its warm-up p50 is above 2 × the quiet p50 + 5 ms while its
/// measured p50 fell below two thirds of the warm-up's (a backlog
/// draining, not the step's own overload, which grows).
fn backlog(quiet: Option<u64>, warm_up: Option<u64>, measured: Option<u64>) -> Option<String> {
    let (quiet, warm_up, measured) = (quiet?, warm_up?, measured?);
    let high = (quiet as f64 * BACKLOG_FACTOR) as u64 + BACKLOG_SLACK_US;
    let draining = (measured as f64) < DRAINING_SHARE * warm_up as f64;
    (warm_up > high && draining).then(|| {
        use crate::units::format::latency;
        format!(
            "backlog at its start (warm-up p50 {}, quiet {}, measured p50 {})",
            latency(warm_up),
            latency(quiet),
            latency(measured)
        )
    })
}

/// The hidden `--capacity-step` value: `AXIS/LOAD/WARMUP_NS/STEP_NS`
/// (the load printed so it reads back exactly).
fn step_spec(axis: Axis, load: f64, warmup: Duration, step: Duration) -> String {
    let axis = match axis {
        Axis::Users => "users",
        Axis::Agents => "agents",
    };
    format!("{axis}/{load}/{}/{}", warmup.as_nanos(), step.as_nanos())
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
        if let Some(why) = &step.discarded {
            format!("discarded: {why}; run again")
        } else if step.pass {
            "pass".to_string()
        } else {
            format!("FAIL: {}", step.failed.join("; "))
        }
    );
    if let Some(c) = &step.cool_down {
        eprintln!("capacity:          cool-down before it: {}", c.text());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cool-down's quiet rule: against the first passing step's p50,
    /// else two probes that agree; a probe that did not sustain its load
    /// is never quiet.
    #[test]
    fn quiet_is_near_the_first_passing_step_or_two_probes_that_agree() {
        let target = Some(20_000 * 3 / 2 + QUIET_SLACK_US); // q = 20 ms
        assert!(quiet(target, true, Some(32_000), None));
        assert!(!quiet(target, true, Some(32_001), None));
        assert!(!quiet(target, false, Some(20_000), None));
        assert!(!quiet(target, true, None, None));
        // No step passed yet: the first probe alone says nothing.
        assert!(!quiet(None, true, Some(20_000), None));
        // 30 ms and 25 ms: |5 ms| <= 20 % of 30 ms + 2 ms = 8 ms.
        assert!(quiet(None, true, Some(25_000), Some(30_000)));
        // 300 ms then 200 ms: still draining.
        assert!(!quiet(None, true, Some(200_000), Some(300_000)));
    }

    /// A failing step's start shows a backlog when its warm-up is slow
    /// and its measured phase faster (draining), not when it grows (its
    /// own overload).
    #[test]
    fn a_draining_warm_up_is_a_backlog_a_growing_one_is_not() {
        let q = Some(20_000);
        // 2 × 20 ms + 5 ms = 45 ms.
        let why = backlog(q, Some(400_000), Some(60_000)).expect("a backlog");
        assert!(why.contains("400ms") && why.contains("60ms"), "{why}");
        assert_eq!(backlog(q, Some(45_000), Some(21_000)), None);
        assert_eq!(backlog(q, Some(100_000), Some(300_000)), None);
        assert_eq!(backlog(q, Some(300_000), Some(200_001)), None);
        assert_eq!(backlog(None, Some(400_000), Some(60_000)), None);
    }

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
            cool_down: None,
            command_line: Vec::new(),
        };
        let load = 10.0 / 3.0;
        let spec = step_spec(
            Axis::Users,
            load,
            options.warmup.unwrap(),
            options.step.unwrap(),
        );
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
