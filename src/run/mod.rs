//! `stampede run`: scenario → plan → targets → engine → metrics → SLO
//! verdicts → result directory → exit status.
//!
//! # Layout
//! - `targets`: start the built-in target, resolve origins, preflight.
//! - `fleet`: the agent fleet's descriptors and source addresses.
//! - [`exporter`]: `--metrics-listen`, the live Prometheus endpoint.
//! - `monitor`: the per-second thread: aggregator ticks, gauges,
//!   progress, `abort_on_fail`.
//! - `signals`: Ctrl-C / SIGTERM → drain, then cancel.
//! - `processes`: `--processes N`, N child processes (one segment each),
//!   the built-in target in a process of its own, one merged result.
//! - `conclude`: verdicts, baseline comparison, exit status, result files
//!   and the console's final report.
//! - `results`: the result directory, run metadata, phase spans.
//! - `start`: `--start-at`, the common start of a split run's segments.
//!
//! [`run_scenario`] is the whole sequence in one screen.
//!
//! A segmented run (`--segment i/n`) plays `Plan::new(..).segment(..)`
//! (see [`crate::plan`]) and records its segment and its `--start-at` in
//! the result; `stampede merge` makes one result of the `n`.

mod conclude;
pub mod exporter;
mod fleet;
mod monitor;
pub mod processes;
mod results;
mod signals;
mod start;
mod targets;

pub use monitor::process_cpu;
pub use results::{hostname, phase_spans, redact, result_dir};
pub use start::{format_start_at, parse_start_at};
pub use targets::{prepare_targets, Targets};

use crate::engine::{Engine, Ids, Live, Shared};
use crate::error::CommandError;
use crate::error::ExitStatus;
use crate::metrics::{Aggregator, Metrics, Totals};
use crate::plan::{Plan, Segment};
use crate::protocol::http::Client;
use crate::report::json::Summary;
use crate::scenario::{self, Overrides, Scenario};
use crate::slo::Verdict;
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How progress is shown while the run goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing until the end (CI: `--quiet`).
    Quiet,
    /// A plain line every few seconds, on stderr (not a terminal: no
    /// control characters).
    Lines,
    /// A live line redrawn every second (stderr is a terminal).
    Live,
    /// Nothing at all, not even on failure (the steps of `capacity`, which
    /// reports them itself).
    Silent,
    /// One JSON object per second on stdout and no final report: a child of
    /// `--processes`, whose parent shows the progress (see [`processes`]).
    Json,
}

/// Everything `stampede run` needs, already validated by the CLI.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub scenario: PathBuf,
    pub overrides: Overrides,
    /// Parent of the result directory (`reports/`).
    pub out_dir: PathBuf,
    pub progress: Progress,
    /// How long in-flight work may drain after an interruption.
    pub grace: Duration,
    /// The command line, already redacted.
    pub command_line: Vec<String>,
    /// `--baseline`: a summary.json (or its result directory) to compare
    /// the run against at its end; regressions become failed verdicts.
    pub baseline: Option<PathBuf>,
    /// `--segment i/n`: the share of the plan this process plays
    /// ([`Segment::WHOLE`] for the whole run).
    pub segment: Segment,
    /// `--start-at`: prepare, then start at this instant (None: at once).
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Settings only the parent of `--processes` gives its children.
    pub child: processes::ChildOptions,
}

/// What a finished run produced.
pub struct RunOutcome {
    pub exit: ExitStatus,
    pub result_dir: PathBuf,
    pub verdicts: Vec<Verdict>,
    /// Everything recorded (also in `summary.json`).
    pub totals: Totals,
    /// Measured length of the run.
    pub elapsed: Duration,
}

/// Load a scenario, mapping errors to bad input.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Scenario, CommandError> {
    scenario::load(path, overrides).map_err(|e| CommandError::BadInput(e.to_string()))
}

/// Run a scenario to the end and write its results.
pub async fn run(options: RunOptions) -> Result<RunOutcome, CommandError> {
    let scenario = Arc::new(load(&options.scenario, &options.overrides)?);
    run_scenario(scenario, &options).await
}

/// As [`run`], for a scenario already loaded.
pub async fn run_scenario(
    scenario: Arc<Scenario>,
    options: &RunOptions,
) -> Result<RunOutcome, CommandError> {
    check_exec_allowed(&scenario, &options.overrides)?;
    let mut signals = signals::Signals::listen();
    let plan = Plan::new(&scenario).segment(options.segment);
    // Bad input and unreachable targets stop the run before anything is written.
    let baseline = read_baseline(options.baseline.as_deref())?;
    let targets = prepare_targets(&scenario).await?;
    let (layout, ids) = Ids::register(&scenario, &plan);
    let export = start_exporter(&scenario, &plan, &layout, options.progress)?;
    let fleet = fleet::prepare_fleet(
        &scenario,
        &plan,
        &targets,
        &ids,
        scenario.http.insecure,
        options.child.source_addrs.as_ref(),
    )?;
    // Time zero: now, or the common `--start-at` (waited for; too late or
    // interrupted is exit 3 with nothing written).
    let (start, started_at) = match options.start_at {
        None => (tokio::time::Instant::now(), chrono::Utc::now()),
        Some(at) => {
            if !matches!(options.progress, Progress::Quiet | Progress::Silent) {
                eprintln!("{}", start::waiting(at, plan.segment));
            }
            (start::wait_for(at, plan.segment, &mut signals).await?, at)
        }
    };
    let dir = processes::result_dir_for(options, &dir_name(&scenario, plan.segment), started_at)?;
    let metrics = Metrics::new(layout);
    let (aggregator, hlog) = open_aggregator(&dir, &metrics, started_at)?;
    let live = Arc::new(Live::default());
    let engine = Engine::new(Shared {
        scenario: scenario.clone(),
        plan: plan.clone(),
        client: http_client(&scenario, &targets),
        endpoints: targets.endpoints.clone(),
        metrics,
        ids: ids.clone(),
        live: live.clone(),
        start,
        hub: fleet,
        actions: crate::engine::actions::ActionSetup {
            result_dir: Some(dir.clone()),
            hub: targets.hub.clone(),
        },
    });
    if !matches!(
        options.progress,
        Progress::Quiet | Progress::Silent | Progress::Json
    ) {
        eprintln!("{}", targets::announce(&scenario, &plan, &targets, &dir));
    }
    let monitor = monitor::spawn_aggregator(
        aggregator,
        monitor::TickContext {
            engine: engine.clone(),
            gauges: engine.shared().metrics.layout().gauges.len(),
            ids,
            progress: options.progress,
            plan: plan.clone(),
            scenario: scenario.clone(),
            export: export.as_ref().map(|(_, published)| published.clone()),
            start: std_instant_of(started_at),
            hlog,
        },
    );
    let signal_task = signals.watch(live, options.grace);
    let before = crate::metrics::process::ProcessSample::now();
    let report = engine.run(options.grace).await;
    let process = crate::report::generator::ProcessUse {
        wall: report.elapsed,
        used: crate::metrics::process::ProcessSample::now().since(&before),
        allowance: crate::metrics::process::CpuAllowance::now(),
    };
    signal_task.abort();
    let monitor::Monitored {
        totals,
        aborted,
        hlog_lost,
    } = monitor.finish()?;
    drop(targets);
    let outcome = conclude::conclude(conclude::Finished {
        scenario: &scenario,
        plan: &plan,
        options,
        dir,
        started_at,
        report,
        totals,
        aborted,
        hlog_lost,
        baseline,
        process,
    });
    if let Some((endpoint, _)) = export {
        let linger = scenario.metrics.linger;
        if !linger.is_zero() && !matches!(options.progress, Progress::Quiet | Progress::Silent) {
            eprintln!(
                "metrics: serving the final counts at {} for {} more (Ctrl-C ends it)",
                endpoint.url(),
                crate::units::format_duration(linger)
            );
        }
        endpoint.linger(linger).await;
    }
    outcome
}

/// The live Prometheus endpoint, when the scenario or `--metrics-listen`
/// asks for one: bound now, before any load (a taken port is bad input).
fn start_exporter(
    scenario: &Scenario,
    plan: &Plan,
    layout: &crate::metrics::Layout,
    progress: Progress,
) -> Result<
    Option<(
        exporter::Endpoint,
        Arc<crate::report::prometheus::Published>,
    )>,
    CommandError,
> {
    let Some(addr) = scenario.metrics.listen else {
        return Ok(None);
    };
    let published = Arc::new(crate::report::prometheus::Published::default());
    let exposition = crate::report::prometheus::Exposition::new(
        &scenario.name,
        &plan.segment.to_string(),
        layout.clone(),
        published.clone(),
    );
    let endpoint = exporter::Endpoint::start(addr, exposition)?;
    if !matches!(progress, Progress::Quiet | Progress::Silent) {
        eprintln!("metrics: {} (Prometheus / OpenMetrics)", endpoint.url());
    }
    Ok(Some((endpoint, published)))
}

/// A scenario with `exec` actions runs only with `--allow-exec` (bad
/// input otherwise, before anything starts, naming each action).
pub fn check_exec_allowed(scenario: &Scenario, overrides: &Overrides) -> Result<(), CommandError> {
    match crate::scenario::actions::exec_refusal(&scenario.actions) {
        Some(message) if !overrides.allow_exec => Err(CommandError::BadInput(message)),
        _ => Ok(()),
    }
}

/// `--baseline`: a summary.json or its result directory; unreadable is bad
/// input, found before anything runs.
fn read_baseline(path: Option<&Path>) -> Result<Option<Summary>, CommandError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let file = if path.is_dir() {
        path.join(crate::report::json::FILE_NAME)
    } else {
        path.to_path_buf()
    };
    crate::report::json::read(&file)
        .map(Some)
        .map_err(|e| CommandError::BadInput(format!("--baseline: {e:#}")))
}

/// The result directory's name: the scenario's, with `-seg1of3` for a
/// segment (segments of one run may share an output directory and a start).
fn dir_name(scenario: &Scenario, segment: Segment) -> String {
    if segment.is_whole() {
        scenario.name.clone()
    } else {
        format!("{}-seg{}of{}", scenario.name, segment.index, segment.count)
    }
}

/// The interval aggregator, writing `metrics.hlog` into the result
/// directory; its intervals count from `started_at`. Not being able to
/// create the file stops the run before it starts (exit 3); once it runs, a
/// bad disk only costs the log (see `monitor::HlogWatch`).
fn open_aggregator(
    dir: &Path,
    metrics: &Metrics,
    started_at: chrono::DateTime<chrono::Utc>,
) -> Result<(Aggregator, monitor::HlogFile), CommandError> {
    use std::os::unix::fs::MetadataExt as _;
    let hlog_path = dir.join(crate::report::rebuild::HLOG_FILE);
    let hlog = std::fs::File::create(&hlog_path)
        .with_context(|| format!("creating {}", hlog_path.display()))?;
    let m = hlog
        .metadata()
        .with_context(|| format!("reading {}", hlog_path.display()))?;
    let file = monitor::HlogFile {
        path: hlog_path,
        id: (m.dev(), m.ino()),
    };
    let aggregator = Aggregator::new(
        metrics.clone(),
        // No BufWriter: each interval goes out in one write (HlogWriter),
        // and nothing is left in a buffer after a failure.
        Some(Box::new(hlog)),
        SystemTime::from(started_at),
    );
    Ok((aggregator, file))
}

/// The monotonic instant that was (or will be) the wall-clock time `at`.
fn std_instant_of(at: chrono::DateTime<chrono::Utc>) -> std::time::Instant {
    let now = std::time::Instant::now();
    match (at - chrono::Utc::now()).to_std() {
        Ok(ahead) => now + ahead,
        Err(_) => {
            let behind = (chrono::Utc::now() - at).to_std().unwrap_or_default();
            now.checked_sub(behind).unwrap_or(now)
        }
    }
}

/// The HTTP client every VU connects with (TLS set up only when needed).
fn http_client(scenario: &Scenario, targets: &Targets) -> Client {
    use crate::scenario::actions::{ActionKind, ActionOrigin};
    // HTTP fault actions may go to the hub or a declared https origin.
    let actions_tls = scenario.actions.iter().any(|a| match &a.kind {
        ActionKind::Http {
            origin: ActionOrigin::Url(o),
            ..
        } => o.is_tls(),
        ActionKind::Http {
            origin: ActionOrigin::Hub,
            ..
        } => targets.hub.as_ref().is_some_and(|h| h.origin.is_tls()),
        _ => false,
    });
    let needs_tls = actions_tls
        || targets.endpoints.iter().any(|e| e.origin.is_tls())
        || targets
            .hub_admin
            .as_ref()
            .is_some_and(|(e, _)| e.origin.is_tls());
    Client::new(
        scenario.http.version,
        scenario.http.connect_timeout,
        scenario.http.insecure,
        needs_tls,
    )
    .with_max_body(scenario.http.max_body)
}
