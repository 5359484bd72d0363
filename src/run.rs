//! `stampede run`: scenario → plan → targets → engine → metrics → SLO
//! verdicts → result directory → exit status.
//!
//! The aggregator runs on its own thread: once a second it swaps the
//! recorders out, samples the gauges (CPU, in flight, VUs, queue), prints a
//! progress line and, with `abort_on_fail`, judges the SLOs so far.
//! Ctrl-C or SIGTERM interrupts the run: no new arrivals, in-flight work
//! drains for the grace period, results are written, exit 3.

use crate::engine::{Engine, Ids, Live, Shared};
use crate::error::{CommandError, ExitStatus};
use crate::metrics::{Aggregator, Metrics, Totals};
use crate::plan::Plan;
use crate::protocol::http::{Client, Endpoint};
use crate::report::console;
use crate::scenario::{self, ApiTarget, Origin, Overrides, Scenario};
use crate::slo::{PhaseSpan, Verdict};
use anyhow::Context;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
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

/// Keeps the in-process built-in target alive for the run.
pub struct Targets {
    pub endpoints: Vec<Endpoint>,
    /// Where agents connect.
    pub hub: Option<Endpoint>,
    /// The kick endpoint (`drop = { how = "server" }`) and its path.
    pub hub_admin: Option<(Endpoint, String)>,
    /// True when the hub runs in this process (its connections count
    /// against this process's descriptors too).
    pub hub_in_process: bool,
    _builtin: Option<crate::target::RunningTarget>,
}

/// Start the built-in target if asked, resolve every origin, and check each
/// one accepts a TCP connection (unreachable at start → exit 3).
pub async fn prepare_targets(scenario: &Scenario) -> Result<Targets, CommandError> {
    let mut builtin = None;
    let mut origins: Vec<Origin> = Vec::new();
    match &scenario.api {
        Some(ApiTarget::Builtin(config)) => {
            let running =
                crate::target::spawn("127.0.0.1:0".parse().expect("literal"), config.clone())
                    .await
                    .context("starting the built-in target")?;
            origins.push(Origin {
                scheme: "http".into(),
                host: running.addr.ip().to_string(),
                port: running.addr.port(),
            });
            builtin = Some(running);
        }
        Some(ApiTarget::Url(origin)) => origins.push(origin.clone()),
        None => origins.push(Origin {
            // Never used: compile refuses relative steps without an api.
            scheme: "http".into(),
            host: "127.0.0.1".into(),
            port: 9,
        }),
    }
    origins.extend(scenario.extra_origins.iter().cloned());
    let mut endpoints = Vec::new();
    for (i, origin) in origins.iter().enumerate() {
        let endpoint = resolve(origin).await?;
        let used = scenario.populations.iter().any(|p| {
            p.steps.iter().any(|s| match s.origin {
                scenario::OriginRef::Api => i == 0,
                scenario::OriginRef::Extra(x) => x + 1 == i,
            })
        });
        if used {
            preflight(&endpoint, scenario.http.connect_timeout).await?;
        }
        endpoints.push(endpoint);
    }
    // The hub.
    let mut hub = None;
    let mut hub_admin = None;
    let mut hub_in_process = false;
    match &scenario.hub {
        None => {}
        Some(scenario::HubTarget::Builtin(config)) => {
            if builtin.is_none() {
                let running =
                    crate::target::spawn("127.0.0.1:0".parse().expect("literal"), config.clone())
                        .await
                        .context("starting the built-in hub")?;
                builtin = Some(running);
            }
            let addr = builtin.as_ref().expect("started").addr;
            let origin = Origin {
                scheme: "http".into(),
                host: addr.ip().to_string(),
                port: addr.port(),
            };
            let endpoint = Endpoint::resolve(&origin)
                .await
                .context("resolving the built-in hub")?;
            hub_admin = Some((endpoint.clone(), "/admin/hub/kick".to_string()));
            hub = Some(endpoint);
            hub_in_process = true;
        }
        Some(scenario::HubTarget::Url(origin)) => {
            let endpoint = resolve(origin).await?;
            if !scenario.agents.is_empty() {
                preflight(&endpoint, scenario.hub_settings.timeout).await?;
            }
            hub = Some(endpoint);
        }
    }
    if let Some((origin, path)) = &scenario.hub_admin {
        let endpoint = resolve(origin).await?;
        hub_admin = Some((endpoint, path.clone()));
    }
    Ok(Targets {
        endpoints,
        hub,
        hub_admin,
        hub_in_process,
        _builtin: builtin,
    })
}

/// Descriptors and source addresses for the agent fleet: raise the soft
/// descriptor limit, refuse a fleet this process cannot hold, and spread
/// connections over enough loopback source addresses when the scenario did
/// not choose them.
fn prepare_fleet(
    scenario: &Scenario,
    targets: &Targets,
    ids: &Ids,
    insecure: bool,
) -> Result<Option<Arc<crate::engine::hub::Fleet>>, CommandError> {
    let Some(hub_ids) = ids.hub.clone() else {
        return Ok(None);
    };
    let agents = u64::from(crate::engine::hub::max_agents(scenario));
    let commanders = scenario.commanders.len() as u64;
    let hub_connections = agents + commanders;
    let users = if scenario.populations.is_empty() {
        0
    } else {
        scenario.http.max_in_flight as u64
    };
    let mut needed = hub_connections + users + 16;
    if targets.hub_in_process {
        needed += hub_connections;
    }
    let _ = crate::protocol::net::raise_nofile_limit();
    crate::protocol::net::check_fd_budget(needed).map_err(CommandError::BadInput)?;
    let endpoint = match (&targets.hub, targets.endpoints.first()) {
        (Some(hub), _) => hub.clone(),
        (None, Some(api)) => api.clone(),
        (None, None) => return Ok(None),
    };
    let sources = match &scenario.hub_settings.sources {
        Some(s) => Some(s.clone()),
        None => {
            let n = crate::protocol::net::sources_needed(hub_connections);
            let loopback = endpoint
                .addrs
                .first()
                .is_some_and(|a| a.ip().is_loopback() && a.is_ipv4());
            (n > 1 && loopback).then(|| crate::protocol::net::SourceAddrs::loopback(n as u32))
        }
    };
    let tls = endpoint
        .origin
        .is_tls()
        .then(|| crate::protocol::http::tls_connector(insecure, vec![b"http/1.1".to_vec()]));
    Ok(Some(Arc::new(crate::engine::hub::Fleet::new(
        scenario,
        endpoint,
        tls,
        sources,
        targets.hub_admin.clone(),
        hub_ids,
    ))))
}

/// Resolve a declared origin (DNS once, at start); failure is exit 3.
async fn resolve(origin: &Origin) -> Result<Endpoint, CommandError> {
    Endpoint::resolve(origin)
        .await
        .map_err(|e| CommandError::Unreachable {
            target: origin.to_string(),
            detail: format!("cannot resolve: {e}"),
        })
}

async fn preflight(endpoint: &Endpoint, timeout: Duration) -> Result<(), CommandError> {
    let addrs = &endpoint.addrs[..];
    let shown = || {
        let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        format!("{} ({})", endpoint.origin, list.join(", "))
    };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addrs)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(CommandError::Unreachable {
            target: shown(),
            detail: e.to_string(),
        }),
        Err(_) => Err(CommandError::Unreachable {
            target: shown(),
            detail: format!(
                "no TCP connection within {}",
                crate::units::format_duration(timeout)
            ),
        }),
    }
}

/// A new result directory `<out>/<name>-<UTC time>` (suffixed if taken).
pub fn result_dir(
    out: &Path,
    name: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> std::io::Result<PathBuf> {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let stamp = at.format("%Y%m%dT%H%M%SZ");
    std::fs::create_dir_all(out)?;
    for n in 0..1000 {
        let dir = if n == 0 {
            out.join(format!("{safe}-{stamp}"))
        } else {
            out.join(format!("{safe}-{stamp}-{n}"))
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free result directory name"))
}

/// CPU time (user + system) this process has used.
pub fn process_cpu() -> Duration {
    // SAFETY: getrusage only writes into the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return Duration::ZERO;
    }
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, (t.tv_usec as u32) * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

enum AggregatorMsg {
    Stop,
}

struct AggregatorThread {
    tx: std::sync::mpsc::Sender<AggregatorMsg>,
    handle: std::thread::JoinHandle<std::io::Result<(Totals, bool)>>,
}

struct TickContext {
    live: Arc<Live>,
    /// Number of gauges in the layout.
    gauges: usize,
    ids: Ids,
    progress: Progress,
    plan: Plan,
    scenario: Arc<Scenario>,
    fleet: Option<Arc<crate::engine::hub::Fleet>>,
}

fn spawn_aggregator(mut aggregator: Aggregator, ctx: TickContext) -> AggregatorThread {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("stampede-aggregator".into())
        .spawn(move || {
            let start = std::time::Instant::now();
            let mut last_cpu = process_cpu();
            let mut last_wall = start;
            let mut n = 1u32;
            let mut aborted = false;
            let latency: Vec<crate::metrics::HistId> =
                ctx.ids.steps.iter().flatten().map(|s| s.latency).collect();
            aggregator.watch(&latency, 5);
            // A TTY: one live line (indicatif) redrawn every second.
            let bar = (ctx.progress == Progress::Live).then(|| {
                let bar = indicatif::ProgressBar::with_draw_target(
                    Some(ctx.plan.total.as_secs().max(1)),
                    indicatif::ProgressDrawTarget::stderr(),
                );
                bar.set_style(
                    indicatif::ProgressStyle::with_template("{bar:16.cyan/blue} {msg}")
                        .expect("a valid template")
                        .progress_chars("█▉ "),
                );
                bar
            });
            loop {
                let due = start + Duration::from_secs(n as u64);
                let wait = due.saturating_duration_since(std::time::Instant::now());
                let stop = matches!(
                    rx.recv_timeout(wait),
                    Ok(AggregatorMsg::Stop) | Err(std::sync::mpsc::RecvTimeoutError::Disconnected)
                );
                let now = std::time::Instant::now();
                let cpu = process_cpu();
                let wall = now.duration_since(last_wall).as_secs_f64().max(1e-9);
                let cpu_percent = (cpu.saturating_sub(last_cpu)).as_secs_f64() / wall * 100.0;
                last_cpu = cpu;
                last_wall = now;
                let mut gauges = vec![0.0; ctx.gauges];
                gauges[ctx.ids.cpu.0 as usize] = cpu_percent;
                gauges[ctx.ids.in_flight.0 as usize] =
                    ctx.live.in_flight.load(Ordering::Relaxed) as f64;
                gauges[ctx.ids.vus.0 as usize] = ctx.live.vus.load(Ordering::Relaxed) as f64;
                gauges[ctx.ids.queued.0 as usize] = ctx.live.queued.load(Ordering::Relaxed) as f64;
                gauges[ctx.ids.offered.0 as usize] =
                    ctx.live.arrivals.load(Ordering::Relaxed) as f64;
                if let (Some(fleet), Some(hub)) = (&ctx.fleet, &ctx.ids.hub) {
                    gauges[hub.connected.0 as usize] =
                        fleet.connected.load(Ordering::Relaxed) as f64;
                    gauges[hub.registered.0 as usize] =
                        fleet.registered.load(Ordering::Relaxed) as f64;
                }
                let elapsed = now.duration_since(start);
                let point = aggregator.tick(elapsed, &gauges).clone();
                let line = || {
                    console::progress_line(
                        &ctx.plan,
                        &ctx.ids,
                        elapsed,
                        &point,
                        &ctx.live,
                        aggregator.window_quantile(0.95),
                    )
                };
                match (&bar, ctx.progress) {
                    (Some(bar), _) if !stop => {
                        bar.set_position(elapsed.as_secs().min(bar.length().unwrap_or(0)));
                        bar.set_message(line());
                    }
                    (None, Progress::Lines) if n.is_multiple_of(5) && !stop => {
                        eprintln!("{}", line());
                    }
                    _ => {}
                }
                if ctx.scenario.abort_on_fail && !aborted && !stop {
                    let spans = phase_spans(&ctx.plan, elapsed);
                    let verdicts = crate::slo::evaluate(
                        &ctx.scenario.slos,
                        aggregator.totals(),
                        &spans,
                        elapsed,
                    );
                    if let Some(failed) = verdicts.iter().find(|v| !v.pass && v.measured.is_some())
                    {
                        eprintln!(
                            "abort_on_fail: SLO `{}` {} failed (measured {}); stopping the run",
                            failed.slo.key, failed.slo.target, failed.measured_text
                        );
                        aborted = true;
                        ctx.live.interrupt();
                    }
                }
                if stop {
                    break;
                }
                // Skip ticks that were missed (a stalled machine) rather than bunching them.
                n = (now.duration_since(start).as_secs() as u32 + 1).max(n + 1);
            }
            if let Some(bar) = bar {
                bar.finish_and_clear();
            }
            let totals = aggregator.finish()?;
            Ok((totals, aborted))
        })
        .expect("spawn aggregator thread");
    AggregatorThread { tx, handle }
}

/// The plan's phases as they happened: clipped to the measured length.
pub fn phase_spans(plan: &Plan, elapsed: Duration) -> Vec<PhaseSpan> {
    plan.phases
        .iter()
        .filter(|p| p.start < elapsed || p.start.is_zero())
        .map(|p| PhaseSpan {
            name: p.name.clone(),
            start: p.start,
            end: p.end().min(elapsed.max(p.start)),
        })
        .collect()
}

/// Waits for Ctrl-C or SIGTERM.
async fn interrupted() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
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
    let plan = Plan::new(&scenario);
    // A baseline that cannot be read is bad input, before anything runs.
    let baseline = match &options.baseline {
        None => None,
        Some(path) => {
            let file = if path.is_dir() {
                path.join(crate::report::json::FILE_NAME)
            } else {
                path.clone()
            };
            Some(
                crate::report::json::read(&file)
                    .map_err(|e| CommandError::BadInput(format!("--baseline: {e:#}")))?,
            )
        }
    };
    let targets = prepare_targets(&scenario).await?;
    let (layout, ids) = Ids::register(&scenario);
    // Before anything is written: a fleet this process cannot hold is refused.
    let fleet = prepare_fleet(&scenario, &targets, &ids, scenario.http.insecure)?;
    let started_at = chrono::Utc::now();
    let dir = result_dir(&options.out_dir, &scenario.name, started_at).with_context(|| {
        format!(
            "creating a result directory in {}",
            options.out_dir.display()
        )
    })?;

    let metrics = Metrics::new(layout);
    let hlog_path = dir.join("metrics.hlog");
    let hlog = std::fs::File::create(&hlog_path)
        .with_context(|| format!("creating {}", hlog_path.display()))?;
    let aggregator = Aggregator::new(
        metrics.clone(),
        Some(Box::new(std::io::BufWriter::new(hlog))),
        SystemTime::now(),
    );
    let live = Arc::new(Live::default());
    let needs_tls = targets.endpoints.iter().any(|e| e.origin.is_tls())
        || targets
            .hub_admin
            .as_ref()
            .is_some_and(|(e, _)| e.origin.is_tls());
    let client = Client::new(
        scenario.http.version,
        scenario.http.connect_timeout,
        scenario.http.insecure,
        needs_tls,
    );
    let engine = Engine::new(Shared {
        scenario: scenario.clone(),
        plan: plan.clone(),
        client,
        endpoints: targets.endpoints.clone(),
        metrics,
        ids: ids.clone(),
        live: live.clone(),
        start: tokio::time::Instant::now(),
        hub: fleet.clone(),
    });
    if !matches!(options.progress, Progress::Quiet | Progress::Silent) {
        eprintln!(
            "stampede: running `{}` for {} against {} → {}",
            scenario.name,
            crate::units::format_duration(plan.total),
            {
                let mut against = Vec::new();
                if scenario.api.is_some() {
                    if let Some(e) = targets.endpoints.first() {
                        against.push(format!("api {}", e.origin));
                    }
                }
                if let Some(e) = &targets.hub {
                    against.push(format!("hub {}", e.origin));
                }
                against.join(" and ")
            },
            dir.display()
        );
    }
    let agg = spawn_aggregator(
        aggregator,
        TickContext {
            live: live.clone(),
            gauges: engine.shared().metrics.layout().gauges.len(),
            ids: ids.clone(),
            progress: options.progress,
            plan: plan.clone(),
            scenario: scenario.clone(),
            fleet: fleet.clone(),
        },
    );

    let signal_live = live.clone();
    let grace = options.grace;
    let signals = tokio::spawn(async move {
        interrupted().await;
        eprintln!(
            "stampede: interrupted; draining in-flight work for up to {} (Ctrl-C again to stop now); results will be written",
            crate::units::format_duration(grace)
        );
        signal_live.interrupt();
        interrupted().await;
        eprintln!("stampede: stopping now; in-flight requests are counted as cancelled");
        signal_live.hurry();
    });
    let report = engine.run(options.grace).await;
    signals.abort();
    let _ = agg.tx.send(AggregatorMsg::Stop);
    let (totals, aborted) = agg
        .handle
        .join()
        .map_err(|_| anyhow::anyhow!("the aggregator thread panicked"))?
        .context("writing metrics.hlog")?;
    drop(targets);

    let spans = phase_spans(&plan, report.elapsed);
    let mut verdicts = crate::slo::evaluate(&scenario.slos, &totals, &spans, report.elapsed);
    let interrupted = report.stopped_early && !aborted;
    // The baseline comparison joins the verdicts (and so every report).
    let comparison = baseline.as_ref().map(|b| {
        let meta = crate::report::json::RunMeta {
            name: scenario.name.clone(),
            scenario_path: String::new(),
            scenario_hash: scenario.content_hash.clone(),
            stampede_version: String::new(),
            started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            ended_at: String::new(),
            duration_s: report.elapsed.as_secs_f64(),
            host: String::new(),
            command_line: Vec::new(),
            seed: scenario.seed,
            interrupted,
            exit_code: 0,
            notes: Vec::new(),
        };
        let current = crate::report::json::build(meta, &spans, &totals, &[]);
        crate::compare::compare(b, &current, &scenario.compare)
    });
    if let Some(c) = &comparison {
        verdicts.extend(crate::compare::verdicts(c));
    }
    let exit = if interrupted {
        ExitStatus::NotCarriedOut
    } else if verdicts.iter().any(|v| !v.pass) {
        ExitStatus::SloFailed
    } else {
        ExitStatus::Passed
    };

    let mut notes = console::notes(&scenario, &plan, &totals);
    if aborted {
        notes.push("stopped early: an SLO failed and abort_on_fail is set".into());
    }
    if interrupted {
        notes.push("interrupted: the run was stopped before the end of its plan".into());
    }
    if let Some(c) = &comparison {
        notes.extend(c.warnings.iter().map(|w| format!("baseline: {w}")));
    }
    if report.cancelled > 0 {
        notes.push(format!(
            "{} journeys were still in flight after the grace period and were cancelled (counted as `cancelled`)",
            report.cancelled
        ));
    }
    let meta = crate::report::json::RunMeta {
        name: scenario.name.clone(),
        scenario_path: options.scenario.display().to_string(),
        scenario_hash: scenario.content_hash.clone(),
        stampede_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ended_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        duration_s: report.elapsed.as_secs_f64(),
        host: hostname(),
        command_line: options.command_line.clone(),
        seed: scenario.seed,
        interrupted,
        exit_code: exit.code(),
        notes: notes.clone(),
    };
    let summary = crate::report::json::build(meta, &spans, &totals, &verdicts);
    if let Some(c) = &comparison {
        let json = serde_json::to_vec_pretty(c).map_err(anyhow::Error::from)?;
        crate::report::write_atomic(&dir.join("comparison.json"), &json)
            .with_context(|| format!("writing {}", dir.join("comparison.json").display()))?;
        crate::report::write_atomic(
            &dir.join("comparison.md"),
            crate::compare::markdown(c).as_bytes(),
        )
        .with_context(|| format!("writing {}", dir.join("comparison.md").display()))?;
    }
    crate::report::json::write(&dir, &summary)
        .with_context(|| format!("writing {}", dir.join("summary.json").display()))?;
    // The reports for people and CI. A failure here leaves summary.json and
    // the exit code as they are: `stampede report DIR` can write them again.
    match crate::report::rebuild::write_reports(&dir, &summary) {
        Ok(written) => {
            for warning in &written.warnings {
                eprintln!("stampede: warning: {warning}");
            }
        }
        Err(e) => eprintln!(
            "stampede: warning: {e:#}; the results are in summary.json (retry with `stampede report {}`)",
            dir.display()
        ),
    }

    if options.progress != Progress::Silent
        && (options.progress != Progress::Quiet || exit != ExitStatus::Passed)
    {
        console::emit(&console::final_report(
            &scenario,
            &totals,
            report.elapsed,
            &verdicts,
            &notes,
        ));
    }
    if options.progress != Progress::Silent {
        console::emit(&format!("results: {}\n", dir.display()));
    }
    Ok(RunOutcome {
        exit,
        result_dir: dir,
        verdicts,
        totals,
        elapsed: report.elapsed,
    })
}

/// The machine's name, for run metadata.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Hide secrets in a command line: values of `--set` keys that look like
/// secrets, and passwords in URLs.
pub fn redact(args: &[String]) -> Vec<String> {
    let secret_key = |k: &str| {
        let k = k.to_ascii_lowercase();
        [
            "password", "passwd", "secret", "token", "key", "auth", "cookie",
        ]
        .iter()
        .any(|s| k.contains(s))
    };
    let url_password = regex::Regex::new(r"(://[^:/@\s]+):[^@/\s]+@").expect("valid regex");
    args.iter()
        .map(|a| {
            let a = url_password.replace_all(a, "$1:***@").to_string();
            match a.split_once('=') {
                Some((k, _)) if secret_key(k) => format!("{k}=***"),
                _ => a,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let args: Vec<String> = [
            "run",
            "x.toml",
            "--set",
            "users.0.token=abc",
            "--api",
            "http://u:pw@host:1",
            "--set",
            "seed=3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = redact(&args);
        assert_eq!(r[3], "users.0.token=***");
        assert_eq!(r[5], "http://u:***@host:1");
        assert_eq!(r[7], "seed=3");
    }

    #[test]
    fn result_dirs_do_not_collide() {
        let tmp = tempfile::tempdir().unwrap();
        let at = chrono::Utc::now();
        let a = result_dir(tmp.path(), "black friday", at).unwrap();
        let b = result_dir(tmp.path(), "black friday", at).unwrap();
        assert_ne!(a, b);
        assert!(a
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("black-friday-"));
    }
}
