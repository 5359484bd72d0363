//! Command line (clap derive). Flags become core settings here; no clap type
//! goes past this module. Each subcommand's args are destructured
//! exhaustively, so a flag nobody wires up fails to compile.

use crate::error::{CommandError, ExitStatus};
use crate::run::{Progress, RunOptions};
use crate::scenario::overrides::parse_set;
use crate::scenario::Overrides;
use crate::units::parse_duration;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

mod shell;
pub use shell::{CompletionsArgs, ManArgs};

const EXAMPLES: &str = "\
Examples:
  stampede run scenarios/quickstart.toml
  stampede run scenarios/black-friday.toml --api http://127.0.0.1:8080 --quiet
  stampede run scenarios/black-friday.toml --set phases.1.duration=30s --set http.max_in_flight=200
  stampede validate scenarios/black-friday.toml
  stampede target --listen 127.0.0.1:8080 --latency 2ms..10ms --concurrency 64
  stampede run scenarios/reconnect-wave.toml --hub http://127.0.0.1:8080
  stampede report reports/black-friday-20241129T100000Z
  stampede run scenarios/black-friday.toml --quiet --baseline reports/main/summary.json
  stampede compare reports/base reports/current --format markdown
  stampede capacity scenarios/black-friday.toml --precision 5% --budget 15m
  stampede merge results/seg-* --out results/merged
  stampede schema > scenario.schema.json

Exit codes: 0 all SLOs held · 1 an SLO failed · 2 bad input · 3 the run could not be carried out";

/// stampede — load tests and capacity benchmarks from a scenario file.
#[derive(Debug, Parser)]
#[command(name = "stampede", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// Log filter for diagnostics on stderr (e.g. `debug`, `stampede=trace`).
    #[arg(long, global = true, env = "STAMPEDE_LOG", default_value = "warn")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Play a scenario against its target and judge it against its SLOs.
    #[command(after_help = "Examples:
  stampede run scenarios/quickstart.toml
  stampede run scenarios/black-friday.toml --api https://staging.example.internal --quiet
  stampede run scenarios/black-friday.toml --set http.max_in_flight=500 --set 'slo.\"http.latency.p95\"=< 300ms'
  stampede run scenarios/connection-storm.toml --set phases.storm.agents.connected=10000
  stampede run scenarios/reconnect-wave.toml --hub ws://127.0.0.1:3000
  stampede run scenarios/black-friday.toml --segment 1/3 --start-at 2026-11-30T18:30:00Z
  stampede run scenarios/connection-storm.toml --processes 4   # 4 segments, one merged result
  stampede run scenarios/black-friday.toml --metrics-listen 127.0.0.1:9464   # live, for Prometheus

Results go to reports/<name>-<UTC time>/: summary.json, metrics.hlog, report.html,
junit.xml, summary.md (also appended to $GITHUB_STEP_SUMMARY when that is set).
Exit codes: 0 all SLOs held · 1 an SLO failed · 2 bad input · 3 not carried out (unreachable target, interrupted)")]
    Run(RunArgs),
    /// Parse and check a scenario; print the resolved plan.
    #[command(after_help = "Examples:
  stampede validate scenarios/black-friday.toml --set phases.0.duration=10s
  stampede validate scenarios/black-friday.toml --segment 1/3   # that segment's share")]
    Validate(ValidateArgs),
    /// Serve the built-in reference target (API) on loopback.
    #[command(after_help = "Examples:
  stampede target                                   # 127.0.0.1:8080
  stampede target --listen 127.0.0.1:0 --latency exp:5ms --error-rate 0.01
  stampede target --concurrency 8 --latency 10ms    # a knee at 800 req/s

  stampede target --processes 4 --hub-ping-interval 10s   # 60,000+ agents: 4 processes, one port

Knobs can be changed while it runs: POST /admin/config {\"latency\":\"5ms\"},
POST /admin/stall {\"duration\":\"500ms\"}; GET /admin/stats.

With --concurrency, requests beyond the limit wait in a FIFO queue of --queue places, as in a
real server: a request whose client gave up (closed its connection) keeps its place and, once
admitted, holds its slot for its whole service time. A backlog outlives the load that made it.

With --processes N the kernel spreads connections over N worker processes (SO_REUSEPORT).
What does not span them: each worker has its own hub registry (a command reaches only the
agents on the worker that took it, `to = {sample = k}` samples that worker's agents), its own
kicks and restarts (/admin/hub/*), knobs and counters (/admin/config, /admin/stats) and
--concurrency permits (the knee is N times higher). Use it for connection counts and heartbeats;
run commands, kicks and knee searches against one process.")]
    Target(TargetArgs),
    /// Compare two results: per metric and step, the change in p50 / p95 /
    /// p99, throughput and error rate, judged against tolerances and the
    /// run-to-run noise. Exit 1 on a regression.
    #[command(after_help = "Examples:
  stampede compare reports/main-20261120T101500Z reports/black-friday-20261122T093000Z
  stampede compare baseline/summary.json current/summary.json --max-regression p95=5%,errors=0.1pp
  stampede compare base cur --format markdown --output comment.md   # for a CI comment

Tolerances (defaults): p50=10% p95=10% p99=20% throughput=10% (drop) errors=0.05pp.
A change counts only when it is larger than its tolerance and than the noise band
(two standard errors of the difference of the per-second values); error rates need
a two-proportion z above 2. Exit codes: 0 no regression · 1 a regression · 2 bad input.")]
    Compare(CompareArgs),
    /// Find the highest load at which every SLO holds: step the load up
    /// geometrically until an SLO fails, bisect, confirm.
    #[command(after_help = "Examples:
  stampede capacity scenarios/black-friday.toml                    # vary the users' arrival rate
  stampede capacity scenarios/connection-storm.toml --vary agents --start 1000
  stampede capacity scenarios/quickstart.toml --step 30s --warmup 10s --precision 2% --budget 20m
  stampede capacity scenarios/connection-storm.toml --vary agents --processes 4

A [capacity] table in the scenario sets the same (vary, start, precision, budget, warmup,
step, cool_down); flags win. Each step runs the scenario's populations at one load: a warm-up (discarded), then the
measured stretch on which every SLO is judged. After a failing step the target is probed at a
low load until it answers as quiet as before (at most --cool-down); a failing step whose start
still shows the previous step's backlog is run again once. The built-in target is started once. Output: the capacity, the 70% planning load,
a table of every step; files capacity.json and capacity.md, each step's own result directory.
Exit codes: 0 capacity found · 1 even the first load failed · 2 bad input · 3 interrupted.")]
    Capacity(CapacityArgs),
    /// Rebuild report.html, junit.xml and summary.md of a result directory
    /// from its summary.json (metrics.hlog is checked too).
    #[command(after_help = "Examples:
  stampede report reports/black-friday-20241129T100000Z
  stampede report \"$(ls -d reports/black-friday-* | tail -n 1)\"   # the newest run

summary.md is also appended to $GITHUB_STEP_SUMMARY when that is set.
A missing metrics.hlog is a warning: summary.json holds every histogram.
Exit codes: 0 reports written · 2 bad input (missing directory, missing, incomplete or corrupt
summary.json, corrupt metrics.hlog; nothing is written) · 3 a report could not be written")]
    Report(ReportArgs),
    /// Merge the results of a run's segments (`run --segment i/n`) into one
    /// exact result: histograms added, counters summed, per-second series
    /// aligned, recovery and command fan-out measured on the whole fleet,
    /// SLOs judged again, every report rebuilt.
    #[command(after_help = "Examples:
  stampede merge results/seg-*                       # e.g. a Kubernetes Indexed Job's pods
  stampede merge seg-0 seg-1 seg-2 --out reports/black-friday-merged --quiet
  stampede merge /results/run-7 --wait 30m --out /results/run-7/merged   # ci/kubernetes/

Each DIR is a result directory (or its summary.json) written by `stampede run --segment i/n`,
or a directory holding such results (searched two levels down; other results there are
passed over with a warning). With --wait, the merge waits until every segment of the count
the results declare is there, or the time passes; once one segment is there the others get
2 minutes more at most (they play the same plan from the same --start-at).
Refused (exit 2, naming the directories): a missing or corrupt summary.json, a result that
is not a segment, results of different scenarios (content hash) or seeds, mixed segment
counts, the same segment twice. A missing segment is merged, loudly marked PARTIAL, exit 3.
Results go to --out, else reports/<name>-merged-<UTC time of the earliest start>/.
Exit codes: 0 all SLOs held · 1 an SLO failed · 2 bad input · 3 partial (a segment missing)
or interrupted (a segment was)")]
    Merge(MergeArgs),
    /// Print the completion script for a shell (bash, zsh, fish,
    /// powershell, elvish) on stdout.
    #[command(after_help = shell::COMPLETIONS_HELP)]
    Completions(CompletionsArgs),
    /// Print stampede's man page, or write it and one page per subcommand
    /// into a directory (`--out`).
    #[command(after_help = shell::MAN_HELP)]
    Man(ManArgs),
    /// Print the JSON Schema of the scenario file format (for editors and
    /// validators), generated from the types the parser reads.
    #[command(after_help = "Examples:
  stampede schema > scenario.schema.json
  stampede schema --out schema/scenario.schema.json

A scenario file points an editor at it with its first line (a path relative to the file, or a URL):
  #:schema ../schema/scenario.schema.json
Taplo and VS Code's Even Better TOML then check keys, units and enums as you type.
Exit codes: 0 printed or written · 3 the file could not be written")]
    Schema(SchemaArgs),
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Write the schema to this file instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The segments' result directories (or their summary.json).
    #[arg(value_name = "DIR", required = true)]
    pub dirs: Vec<PathBuf>,
    /// The merged result directory (created; must not hold a result).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// No tables when every SLO held (for CI).
    #[arg(long, short)]
    pub quiet: bool,
    /// Wait up to this long for every segment to appear under the DIRs
    /// (e.g. `30m`), then merge what is there: a Kubernetes merge Job
    /// starts with the run and waits on the shared volume.
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub wait: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct CapacityArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// The load axis (default: `[capacity] vary`, else users when the
    /// scenario has any, else agents).
    #[arg(long, value_enum)]
    pub vary: Option<crate::scenario::model::Axis>,
    /// First load tried: journeys/s or agents (default: `[capacity] start`,
    /// else a tenth of the scenario's peak).
    #[arg(long)]
    pub start: Option<f64>,
    /// Stop bisecting when pass and fail are this close (default 5%).
    #[arg(long, value_name = "PERCENT")]
    pub precision: Option<String>,
    /// Stop searching after this long; the confirmation may run past it (default 10m).
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub budget: Option<Duration>,
    /// Discarded start of each step (default 5s).
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub warmup: Option<Duration>,
    /// Measured length of each step (default 20s).
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub step: Option<Duration>,
    /// Parent directory of the result directory.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,
    /// Only the final table.
    #[arg(long, short)]
    pub quiet: bool,
    /// Run every step in N processes on this machine (as `run --processes`);
    /// the built-in target is started once for the whole search.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub processes: u32,
    /// The longest cool-down after a failing step: 1-second probes at a low
    /// load until the target is quiet again (default 60s; 0s: none).
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub cool_down: Option<Duration>,
}

/// Output format of `compare`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CompareFormat {
    Text,
    Markdown,
    Json,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline: a result directory or its summary.json.
    pub baseline: PathBuf,
    /// The run to judge: a result directory or its summary.json.
    pub current: PathBuf,
    /// Tolerances, e.g. `p95=10%,p99=20%,throughput=5%,errors=0.05pp`.
    #[arg(long, value_name = "SPEC")]
    pub max_regression: Option<String>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: CompareFormat,
    /// Also write the output to this file.
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// Flags that change the scenario before it is compiled.
#[derive(Debug, Args)]
pub struct ScenarioArgs {
    /// The scenario file (TOML).
    pub scenario: PathBuf,
    /// Replace `[target] api` (e.g. point a scenario at staging without editing it).
    #[arg(long, value_name = "URL")]
    pub api: Option<String>,
    /// Replace `[target] hub` (`ws://`, `wss://`, `http://`, `https://` host:port, or `builtin`).
    #[arg(long, value_name = "URL")]
    pub hub: Option<String>,
    /// Override any scenario value: `--set seed=7`, `--set phases.0.duration=30s`,
    /// `--set users.shopper.think=1s`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Skip TLS certificate verification.
    #[arg(long)]
    pub insecure: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Parent directory of the result directory.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    pub out: PathBuf,
    /// No progress lines and no tables when every SLO held (for CI).
    #[arg(long, short)]
    pub quiet: bool,
    /// After Ctrl-C / SIGTERM, how long in-flight requests may finish.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = duration_arg)]
    pub grace: Duration,
    /// Compare the run against this result (a summary.json or its
    /// directory): regressions fail the run (exit 1) and show in every report.
    #[arg(long, value_name = "FILE")]
    pub baseline: Option<PathBuf>,
    /// Tolerances of the baseline comparison, e.g. `p95=10%,errors=0.05pp`
    /// (overrides the scenario's `[compare]`).
    #[arg(long, value_name = "SPEC", requires = "baseline")]
    pub max_regression: Option<String>,
    #[command(flatten)]
    pub segment: SegmentArg,
    /// Prepare, then start at this instant: RFC 3339 (`2026-11-30T18:30:00Z`)
    /// or Unix seconds (`1796063400`). Every segment of a split run starts
    /// together; one ready more than 250 ms late exits 3 without results.
    #[arg(long, value_name = "TIME", value_parser = crate::run::parse_start_at)]
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Play the run in N processes on this machine, one segment each, and
    /// merge their results (see README, "--processes").
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub processes: u32,
    /// Let the scenario's `exec` actions run commands on this machine
    /// (a scenario with one is refused without it, exit 2).
    #[arg(long)]
    pub allow_exec: bool,
    /// What an unhealthy generator does (overrides `[slo]
    /// generator_health`): `warn`, `error` (a junit.xml error, exit code
    /// unchanged) or `fail` (the run fails, exit 1).
    #[arg(long, value_name = "MODE", value_parser = ["warn", "error", "fail"])]
    pub generator_health: Option<String>,
    /// Serve live metrics for Prometheus at http://ADDR/metrics while the
    /// run goes: `127.0.0.1:9464`, or a bare port on loopback (`9464`);
    /// overrides `[metrics] listen`. Only this address is bound; port 0
    /// picks a free one and prints it.
    #[arg(long, value_name = "ADDR", value_parser = crate::scenario::compile::parse_metrics_listen)]
    pub metrics_listen: Option<SocketAddr>,
    /// How long the metrics endpoint stays up after the run, so the last
    /// scrape sees the final counts (overrides `[metrics] linger`; default 5s).
    #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
    pub metrics_linger: Option<Duration>,
    #[command(flatten)]
    pub child: ChildArgs,
}

/// Hidden flags the parent of `--processes` gives its children.
#[derive(Debug, Args, Default)]
pub struct ChildArgs {
    #[arg(long, hide = true, value_name = "DIR")]
    pub result_dir: Option<PathBuf>,
    #[arg(long, hide = true, value_name = "LIST")]
    pub source_addrs: Option<String>,
    #[arg(long, hide = true)]
    pub progress_json: bool,
    #[arg(long, hide = true)]
    pub serve_builtin_target: bool,
    #[arg(long, hide = true, value_name = "SPEC")]
    pub capacity_step: Option<String>,
}

/// `--segment i/n` (run and validate).
#[derive(Debug, Args)]
pub struct SegmentArg {
    /// Play segment INDEX of COUNT, 0-based (`0/3`, `1/3`, `2/3`, as
    /// Kubernetes' JOB_COMPLETION_INDEX): arrival k of the whole schedule
    /// goes to segment k mod COUNT at its own time, VUs and agents are
    /// split; the COUNT segments together play exactly the whole scenario.
    #[arg(long, value_name = "INDEX/COUNT", value_parser = plan_segment)]
    pub segment: Option<crate::plan::Segment>,
}

fn plan_segment(text: &str) -> Result<crate::plan::Segment, String> {
    crate::plan::Segment::parse(text)
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    #[command(flatten)]
    pub segment: SegmentArg,
}

#[derive(Debug, Args)]
pub struct TargetArgs {
    /// Address to listen on (loopback unless --allow-non-loopback).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Service time added to each API request: `0`, `5ms`, `2ms..10ms`, `exp:5ms`.
    #[arg(long, default_value = "0")]
    pub latency: String,
    /// Fraction of API requests answered with 500 (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub error_rate: f64,
    /// At most this many API requests served at once (others queue).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Requests that may wait for the concurrency limit; beyond it: 503.
    #[arg(long, default_value_t = 1024)]
    pub queue: usize,
    /// Workers running submitted jobs (FIFO): capacity = workers / mean job duration.
    #[arg(long, default_value_t = crate::target::knobs::DEFAULT_JOB_WORKERS)]
    pub job_workers: usize,
    /// How long each job runs once a worker takes it: `2s`, `50ms..150ms`, `exp:200ms`.
    #[arg(long, default_value = "2s")]
    pub job_duration: String,
    /// Engine.IO ping interval of the built-in Socket.IO hub.
    #[arg(long, default_value = "25s", value_parser = duration_arg)]
    pub hub_ping_interval: Duration,
    /// How long the hub waits for a pong before dropping the connection.
    #[arg(long, default_value = "20s", value_parser = duration_arg)]
    pub hub_ping_timeout: Duration,
    /// Allow listening on a non-loopback address.
    #[arg(long)]
    pub allow_non_loopback: bool,
    /// Serve from this many processes sharing the port (SO_REUSEPORT), to
    /// hold more connections than one process's descriptor limit. Each
    /// process is a whole target with its own state: see below.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub processes: usize,
    /// With --processes: a worker that dies (a crash, `kill -9`,
    /// `POST /admin/crash`) is replaced after this delay, as an
    /// orchestrator restarts a failed instance; the others keep serving.
    /// Without it, a dead worker stops the target (exit 3).
    #[arg(long, value_name = "DELAY", value_parser = duration_arg)]
    pub respawn: Option<Duration>,
    /// Internal: serve as one worker of `--processes` on the reserved port.
    #[arg(long, hide = true)]
    pub worker: bool,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// The result directory (holding summary.json), e.g. reports/quickstart-20241129T100000Z.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

fn duration_arg(text: &str) -> Result<Duration, String> {
    parse_duration(text)
}

fn overrides(args: ScenarioArgs) -> Result<(PathBuf, Overrides), CommandError> {
    let ScenarioArgs {
        scenario,
        api,
        hub,
        sets,
        insecure,
    } = args;
    let sets = sets
        .iter()
        .map(|s| parse_set(s))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CommandError::BadInput(e.to_string()))?;
    Ok((
        scenario,
        Overrides {
            api,
            hub,
            sets,
            insecure,
            allow_exec: false,
            metrics_listen: None,
            metrics_linger: None,
        },
    ))
}

/// Settled form of `stampede run`'s flags.
pub fn run_options(args: RunArgs, command_line: Vec<String>) -> Result<RunOptions, CommandError> {
    let RunArgs {
        scenario,
        out,
        quiet,
        grace,
        baseline,
        max_regression,
        segment: SegmentArg { segment },
        start_at,
        processes: _,
        allow_exec,
        generator_health,
        metrics_listen,
        metrics_linger,
        child:
            ChildArgs {
                result_dir,
                source_addrs,
                progress_json,
                serve_builtin_target: _,
                capacity_step: _,
            },
    } = args;
    let (scenario, mut overrides) = overrides(scenario)?;
    overrides.allow_exec = allow_exec;
    overrides.metrics_listen = metrics_listen;
    overrides.metrics_linger = metrics_linger;
    // `--generator-health fail` is `--set slo.generator_health="fail"`.
    if let Some(mode) = generator_health {
        overrides
            .sets
            .push(("slo.generator_health".into(), format!("{mode:?}")));
    }
    let source_addrs = source_addrs
        .map(|s| crate::protocol::net::SourceAddrs::parse(&s))
        .transpose()
        .map_err(|e| CommandError::BadInput(e.to_string()))?;
    // `--max-regression p95=5%` is `--set compare.p95=5%`: checked where
    // `[compare]` is, with the same messages.
    if let Some(spec) = &max_regression {
        let mut check = crate::scenario::Tolerances::default();
        check
            .parse_into(spec)
            .map_err(|e| CommandError::BadInput(format!("--max-regression: {e}")))?;
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item.split_once('=').expect("checked above");
            overrides.sets.push((
                format!("compare.{}", key.trim()),
                format!("{:?}", value.trim()),
            ));
        }
    }
    Ok(RunOptions {
        scenario,
        overrides,
        out_dir: out,
        progress: if progress_json {
            Progress::Json
        } else if quiet {
            Progress::Quiet
        } else if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            Progress::Live
        } else {
            Progress::Lines
        },
        grace,
        command_line: crate::run::redact(&command_line),
        baseline,
        segment: segment.unwrap_or(crate::plan::Segment::WHOLE),
        start_at,
        child: crate::run::processes::ChildOptions {
            result_dir,
            source_addrs,
        },
    })
}

/// Settled form of `stampede target`'s flags.
pub fn target_config(
    args: TargetArgs,
) -> Result<(SocketAddr, crate::target::TargetConfig), CommandError> {
    let TargetArgs {
        listen,
        latency,
        error_rate,
        concurrency,
        queue,
        job_workers,
        job_duration,
        hub_ping_interval,
        hub_ping_timeout,
        allow_non_loopback,
        processes: _,
        worker: _,
        respawn: _,
    } = args;
    if hub_ping_interval.is_zero() || hub_ping_timeout.is_zero() {
        return Err(CommandError::BadInput(
            "--hub-ping-interval and --hub-ping-timeout must be above 0".into(),
        ));
    }
    crate::target::check_listen(listen, allow_non_loopback).map_err(CommandError::BadInput)?;
    if !(0.0..=1.0).contains(&error_rate) {
        return Err(CommandError::BadInput(format!(
            "--error-rate {error_rate}: expected a fraction between 0 and 1"
        )));
    }
    if concurrency == Some(0) {
        return Err(CommandError::BadInput(
            "--concurrency must be at least 1".into(),
        ));
    }
    let latency = latency
        .parse()
        .map_err(|e: String| CommandError::BadInput(format!("--latency {latency}: {e}")))?;
    if job_workers == 0 {
        return Err(CommandError::BadInput(
            "--job-workers must be at least 1".into(),
        ));
    }
    let job_duration = job_duration.parse().map_err(|e: String| {
        CommandError::BadInput(format!("--job-duration {job_duration}: {e}"))
    })?;
    Ok((
        listen,
        crate::target::TargetConfig {
            latency,
            error_rate,
            concurrency,
            queue,
            job_workers,
            job_duration,
            hub_ping_interval,
            hub_ping_timeout,
            ..Default::default()
        },
    ))
}

/// `stampede target`: one process, a worker of `--processes`, or the
/// parent of N workers ([`crate::target::workers`]).
async fn target(args: TargetArgs) -> Result<ExitStatus, CommandError> {
    use crate::target::workers;
    let (processes, worker, respawn) = (args.processes, args.worker, args.respawn);
    if processes == 0 {
        return Err(CommandError::BadInput(
            "--processes must be at least 1".into(),
        ));
    }
    if respawn.is_some() && processes < 2 {
        return Err(CommandError::BadInput(
            "--respawn replaces a worker of --processes N (N at least 2): \
             a single process has no one to restart it"
                .into(),
        ));
    }
    // A standalone target or a worker may be crashed on purpose (an
    // instance lost in a failover test); an in-process target may not.
    crate::target::admin::allow_crash(true);
    let worker_args = (processes > 1).then(|| worker_args(&args));
    let (listen, config) = target_config(args)?;
    // Thousands of agents each hold a descriptor here too.
    let _ = crate::protocol::net::raise_nofile_limit();
    let cannot =
        |e: std::io::Error| CommandError::BadInput(format!("cannot listen on {listen}: {e}"));
    if let Some(mut args) = worker_args {
        let (reserved, addr) = workers::reserve(listen).map_err(cannot)?;
        args.extend(["--listen".to_string(), addr.to_string(), "--worker".into()]);
        let exe = std::env::current_exe().map_err(anyhow::Error::from)?;
        let running = workers::Workers::start(&exe, &args, processes, Duration::from_secs(30))
            .await
            .map_err(|e| CommandError::Failed(anyhow::anyhow!("{e}")))?;
        drop(reserved);
        let respawning = match respawn {
            Some(d) => format!(
                ", a dead worker replaced after {}",
                crate::target::format_duration(d)
            ),
            None => String::new(),
        };
        crate::report::console::emit(&format!(
            "stampede target listening on http://{addr} ({processes} processes{respawning}; Ctrl-C to stop)\n"
        ));
        running
            .serve_until(workers::interrupted(), Duration::from_secs(10), respawn)
            .await
            .map_err(|e| CommandError::Failed(anyhow::anyhow!("{e}")))?;
        return Ok(ExitStatus::Passed);
    }
    let listener = if worker {
        workers::bind_shared(listen)
    } else {
        crate::target::bind_listener(listen)
    }
    .map_err(cannot)?;
    let addr = listener.local_addr().map_err(anyhow::Error::from)?;
    if worker {
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{}", workers::READY).and_then(|()| out.flush());
    } else {
        crate::report::console::emit(&format!(
            "stampede target listening on http://{addr} (Ctrl-C to stop)\n"
        ));
    }
    crate::target::serve(listener, config, workers::interrupted())
        .await
        .map_err(anyhow::Error::from)?;
    Ok(ExitStatus::Passed)
}

/// The flags that make a worker of `--processes` serve the same knobs.
fn worker_args(args: &TargetArgs) -> Vec<String> {
    let mut out = vec![
        "target".to_string(),
        "--latency".into(),
        args.latency.clone(),
        "--error-rate".into(),
        args.error_rate.to_string(),
        "--queue".into(),
        args.queue.to_string(),
        "--job-workers".into(),
        args.job_workers.to_string(),
        "--job-duration".into(),
        args.job_duration.clone(),
        "--hub-ping-interval".into(),
        crate::target::format_duration(args.hub_ping_interval),
        "--hub-ping-timeout".into(),
        crate::target::format_duration(args.hub_ping_timeout),
    ];
    if let Some(c) = args.concurrency {
        out.extend(["--concurrency".into(), c.to_string()]);
    }
    if args.allow_non_loopback {
        out.push("--allow-non-loopback".into());
    }
    out
}

/// A result directory or a summary.json, read; errors name the file.
fn read_summary(path: &std::path::Path) -> Result<crate::report::json::Summary, CommandError> {
    let file = if path.is_dir() {
        path.join(crate::report::json::FILE_NAME)
    } else {
        path.to_path_buf()
    };
    crate::report::json::read(&file).map_err(|e| CommandError::BadInput(format!("{e:#}")))
}

fn compare(args: CompareArgs) -> Result<ExitStatus, CommandError> {
    let CompareArgs {
        baseline,
        current,
        max_regression,
        format,
        output,
    } = args;
    let mut tolerances = crate::scenario::Tolerances::default();
    if let Some(spec) = &max_regression {
        tolerances
            .parse_into(spec)
            .map_err(|e| CommandError::BadInput(format!("--max-regression: {e}")))?;
    }
    let baseline = read_summary(&baseline)?;
    let current = read_summary(&current)?;
    let comparison = crate::compare::compare(&baseline, &current, &tolerances);
    let text = match format {
        CompareFormat::Text => crate::compare::text(&comparison),
        CompareFormat::Markdown => crate::compare::markdown(&comparison),
        CompareFormat::Json => {
            serde_json::to_string_pretty(&comparison).map_err(anyhow::Error::from)? + "\n"
        }
    };
    if let Some(path) = &output {
        crate::report::write_atomic(path, text.as_bytes())
            .map_err(|e| CommandError::BadInput(format!("cannot write {}: {e}", path.display())))?;
    }
    crate::report::console::emit(&text);
    Ok(if comparison.regressions > 0 {
        ExitStatus::SloFailed
    } else {
        ExitStatus::Passed
    })
}

/// Run a parsed command line; returns the exit status.
pub async fn execute(cli: Cli, command_line: Vec<String>) -> Result<ExitStatus, CommandError> {
    match cli.command {
        Command::Run(mut args) => {
            let processes = args.processes;
            let serve = args.child.serve_builtin_target;
            let step = args.child.capacity_step.take();
            let options = run_options(args, command_line)?;
            if serve {
                return crate::run::processes::serve_builtin_target(
                    &options.scenario,
                    &options.overrides,
                )
                .await;
            }
            if processes > 1 {
                return Ok(crate::run::processes::run(options, processes).await?.exit);
            }
            match step {
                // A child of `capacity --processes`: the step's scenario.
                Some(spec) => {
                    let scenario = crate::capacity::step_scenario(&options, &spec)?;
                    Ok(crate::run::run_scenario(scenario.into(), &options)
                        .await?
                        .exit)
                }
                None => Ok(crate::run::run(options).await?.exit),
            }
        }
        Command::Validate(args) => {
            let ValidateArgs {
                scenario,
                segment: SegmentArg { segment },
            } = args;
            let (path, overrides) = overrides(scenario)?;
            let scenario = crate::run::load(&path, &overrides)?;
            let plan = crate::plan::Plan::new(&scenario);
            let mut text = crate::report::console::describe(&scenario, &plan);
            if let Some(refusal) = crate::scenario::actions::exec_refusal(&scenario.actions) {
                text.push_str(&format!("needs --allow-exec to run: {refusal}\n"));
            }
            if let Some(segment) = segment {
                text.push_str(&crate::report::console::describe_segment(
                    &scenario,
                    &plan.segment(segment),
                ));
            }
            crate::report::console::emit(&text);
            Ok(ExitStatus::Passed)
        }
        Command::Compare(args) => compare(args),
        Command::Capacity(args) => {
            let CapacityArgs {
                scenario,
                vary,
                start,
                precision,
                budget,
                warmup,
                step,
                out,
                quiet,
                processes,
                cool_down,
            } = args;
            let (scenario, overrides) = overrides(scenario)?;
            let precision = match &precision {
                None => None,
                Some(text) => Some(
                    crate::units::parse_percent(text)
                        .ok()
                        .filter(|p| *p > 0.0 && *p < 1.0)
                        .ok_or_else(|| {
                            CommandError::BadInput(format!(
                                "--precision {text}: expected a percentage between 0% and 100%, e.g. 5%"
                            ))
                        })?,
                ),
            };
            if start.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
                return Err(CommandError::BadInput("--start must be above 0".into()));
            }
            if step.is_some_and(|d| d.is_zero()) || warmup.is_some_and(|d| d.is_zero()) {
                return Err(CommandError::BadInput(
                    "--step and --warmup must be above 0".into(),
                ));
            }
            let (_, exit) = crate::capacity::search(crate::capacity::Options {
                scenario,
                overrides,
                out_dir: out,
                vary,
                start,
                precision,
                budget,
                warmup,
                step,
                quiet,
                processes,
                cool_down,
                command_line: crate::run::redact(&command_line),
            })
            .await?;
            Ok(exit)
        }
        Command::Report(args) => {
            let ReportArgs { dir } = args;
            let written = crate::report::rebuild::rebuild(&dir)?;
            for warning in &written.warnings {
                eprintln!("warning: {warning}");
            }
            let mut out = String::new();
            for file in &written.files {
                out.push_str(&format!("wrote {}\n", file.display()));
            }
            if let Some(step) = &written.step_summary {
                out.push_str(&format!("appended summary.md to {}\n", step.display()));
            }
            crate::report::console::emit(&out);
            Ok(ExitStatus::Passed)
        }
        Command::Merge(args) => {
            let MergeArgs {
                dirs,
                out,
                quiet,
                wait,
            } = args;
            let found = crate::merge::gather(
                &dirs,
                &crate::merge::Gather {
                    wait,
                    out: out.clone(),
                    silent: false,
                },
            )
            .await?;
            for passed in &found.passed_over {
                eprintln!("stampede: warning: {passed}");
            }
            let options = crate::merge::MergeOptions {
                out,
                quiet,
                silent: false,
                command_line: crate::run::redact(&command_line),
            };
            Ok(crate::merge::merge(&found.dirs, &options)?.exit)
        }
        Command::Target(args) => target(args).await,
        Command::Completions(args) => shell::completions(args),
        Command::Man(args) => shell::man(args),
        Command::Schema(args) => schema(args),
    }
}

/// `stampede schema [--out FILE]`.
fn schema(args: SchemaArgs) -> Result<ExitStatus, CommandError> {
    let SchemaArgs { out } = args;
    let text = crate::scenario::schema::json_schema_text();
    match out {
        Some(path) => std::fs::write(&path, text).map_err(|e| {
            CommandError::Failed(anyhow::anyhow!("cannot write {}: {e}", path.display()))
        })?,
        None => crate::report::console::emit(&text),
    }
    Ok(ExitStatus::Passed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn target_args(flags: &[&str]) -> TargetArgs {
        let argv = ["stampede", "target"].iter().chain(flags);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Target(args) => args,
            _ => unreachable!("parsed as `target`"),
        }
    }

    #[test]
    fn job_flags_set_the_queue_and_reach_the_workers() {
        let args = target_args(&["--job-workers", "2", "--job-duration", "exp:100ms"]);
        let forwarded = worker_args(&args);
        let (_, config) = target_config(args).unwrap();
        assert_eq!(config.job_workers, 2);
        assert_eq!(
            config.job_duration,
            crate::target::Latency::Exponential {
                mean: Duration::from_millis(100)
            }
        );
        let pairs: Vec<&[String]> = forwarded.windows(2).collect();
        assert!(pairs.contains(&&["--job-workers".to_string(), "2".into()][..]));
        assert!(pairs.contains(&&["--job-duration".to_string(), "exp:100ms".into()][..]));
        let defaults = target_config(target_args(&[])).unwrap().1;
        assert_eq!(defaults, crate::target::TargetConfig::default());
        for bad in [&["--job-workers", "0"][..], &["--job-duration", "soon"]] {
            let e = target_config(target_args(bad)).unwrap_err();
            assert!(e.to_string().contains(bad[0]), "{e}");
        }
    }
}
