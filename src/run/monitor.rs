//! The run's monitor: a thread of its own, on the wall clock, that once a
//! second swaps the recorders out (the interval aggregator), samples the
//! gauges (CPU, in flight, VUs, queue, agents), shows progress and, with
//! `abort_on_fail`, judges the SLOs so far and stops the run on the first
//! failure. It runs beside the engine's tokio runtime so a busy runtime
//! cannot delay the per-second series.
//!
//! A child of `--processes` ([`Progress::Json`]) prints its progress as one
//! [`ProgressReport`] per second, a JSON object on a line of stdout, which
//! the parent sums into the one line it shows.

use super::results::phase_spans;
use super::Progress;
use crate::engine::{Engine, Ids};
use crate::metrics::{Aggregator, Totals};
use crate::plan::Plan;
use crate::report::console;
use crate::scenario::Scenario;
use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

pub use crate::metrics::process::process_cpu;

/// One second of a run, as a child of `--processes` reports it to its
/// parent (one JSON object per line on stdout). Rates are the last
/// interval's; `arrivals` counts from the start.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProgressReport {
    /// Whole seconds since the run started.
    pub elapsed_s: u64,
    /// Index of the phase the timeline is in.
    pub phase: usize,
    /// HTTP requests completed in the last interval.
    pub requests: u64,
    /// HTTP errors in the last interval.
    pub errors: u64,
    /// p95 of `http.latency` over the last seconds (µs), when any.
    pub p95_us: Option<u64>,
    /// p95 of `generator.lag` in the last interval (µs), when any.
    pub lag_p95_us: Option<u64>,
    pub in_flight: u64,
    pub queued: u64,
    /// Arrivals made so far (offered load).
    pub arrivals: u64,
    /// Agents registered / connected, hub errors in the last interval.
    pub hub: Option<[u64; 3]>,
}

impl ProgressReport {
    fn new(
        ids: &Ids,
        elapsed: Duration,
        point: &crate::metrics::Point,
        live: &crate::engine::LiveSnapshot,
        p95_window: Option<u64>,
    ) -> ProgressReport {
        let counter = |id: crate::metrics::CounterId| point.counters[id.0 as usize];
        let steps = ids.steps.iter().flatten();
        let lag = &point.hists[ids.lag.0 as usize];
        ProgressReport {
            elapsed_s: elapsed.as_secs(),
            phase: live.phase,
            requests: steps.clone().map(|s| counter(s.requests)).sum(),
            errors: steps
                .flat_map(|s| s.errors.iter().map(|&e| counter(e)))
                .sum(),
            p95_us: p95_window,
            lag_p95_us: (lag.count > 0).then_some(lag.p95),
            in_flight: live.in_flight as u64,
            queued: live.queued as u64,
            arrivals: live.arrivals,
            hub: ids.hub.as_ref().map(|hub| {
                let errors = hub.agents.iter().flat_map(|a| a.errors.iter());
                [
                    live.registered.max(0) as u64,
                    live.connected.max(0) as u64,
                    errors.map(|&e| counter(e)).sum(),
                ]
            }),
        }
    }
}

enum AggregatorMsg {
    Stop,
}

pub struct AggregatorThread {
    tx: std::sync::mpsc::Sender<AggregatorMsg>,
    handle: std::thread::JoinHandle<Monitored>,
}

/// What the monitor hands back at the end of a run.
pub struct Monitored {
    /// Everything recorded.
    pub totals: Totals,
    /// `abort_on_fail` stopped the run.
    pub aborted: bool,
    /// What was lost of `metrics.hlog` (a write failed, or the file was
    /// removed during the run), as a note for the results; None when the
    /// log is whole.
    pub hlog_lost: Option<String>,
}

/// The run's `metrics.hlog` as it was opened, so a tick can tell that it
/// was removed or replaced (writes into a removed file succeed, into an
/// inode nobody can read again).
#[derive(Debug, Clone)]
pub struct HlogFile {
    pub path: std::path::PathBuf,
    /// `(st_dev, st_ino)` of the open file.
    pub id: (u64, u64),
}

impl HlogFile {
    /// Whether `path` no longer names the file being written.
    fn removed(&self) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        match std::fs::metadata(&self.path) {
            Ok(m) => (m.dev(), m.ino()) != self.id,
            Err(e) => e.kind() == std::io::ErrorKind::NotFound,
        }
    }
}

/// How a bad disk is handled: the run goes on, one warning goes to stderr
/// the moment `metrics.hlog` is lost (a write failed: disk full, quota,
/// I/O error; or the file was removed), and the note returned here goes
/// into summary.json's notes (and so every report). Nothing else is lost:
/// summary.json holds every histogram and the per-second series.
struct HlogWatch {
    file: HlogFile,
    lost: Option<String>,
}

impl HlogWatch {
    /// After a tick at `elapsed`: has the log just been lost? Then warn (once).
    fn check(
        &mut self,
        aggregator: &Aggregator,
        elapsed: Duration,
        bar: Option<&indicatif::ProgressBar>,
    ) {
        if self.lost.is_some() {
            return;
        }
        let name = crate::report::rebuild::HLOG_FILE;
        let (warning, note) = if let Some(failure) = aggregator.hlog_failure() {
            let (at, error) = (failure.at, failure.error);
            // Cut back to its whole intervals, so it stays a valid log
            // (`stampede report` reads it). Best effort: on a full disk
            // shrinking a file works; /dev/full cannot be truncated.
            if !self.file.removed() {
                let _ = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&self.file.path)
                    .and_then(|f| f.set_len(failure.whole_bytes));
            }
            let whole = if at.is_zero() {
                format!("{name} is empty")
            } else {
                format!("{name} is incomplete after {}s", at.as_secs())
            };
            (
                format!(
                    "writing {} failed after {}s: {error}; the run goes on without its interval \
                     log (summary.json and the reports will hold every histogram)",
                    self.file.path.display(),
                    at.as_secs()
                ),
                format!(
                    "{whole}: writing it failed ({error}); summary.json and the reports hold \
                     every histogram"
                ),
            )
        } else if self.file.removed() {
            (
                format!(
                    "{} was removed during the run (noticed after {}s); the run goes on, its \
                     interval log is lost (summary.json and the reports will hold every histogram)",
                    self.file.path.display(),
                    elapsed.as_secs()
                ),
                format!(
                    "{name} was removed during the run (noticed after {}s): its intervals are \
                     lost; summary.json and the reports hold every histogram",
                    elapsed.as_secs()
                ),
            )
        } else {
            return;
        };
        let warn = || eprintln!("stampede: warning: {warning}");
        match bar {
            Some(bar) => bar.suspend(warn),
            None => warn(),
        }
        self.lost = Some(note);
    }

    /// The end: a failure of the last flush counts too.
    fn finish(mut self, aggregator: Aggregator, elapsed: Duration) -> (Totals, Option<String>) {
        self.check(&aggregator, elapsed, None);
        let (totals, result) = aggregator.into_totals();
        if let (Err(error), None) = (&result, &self.lost) {
            eprintln!(
                "stampede: warning: writing {} failed at the end of the run: {error}",
                self.file.path.display()
            );
            self.lost = Some(format!(
                "{} is incomplete at the end: writing it failed ({error}); summary.json and the \
                 reports hold every histogram",
                crate::report::rebuild::HLOG_FILE
            ));
        }
        (totals, self.lost)
    }
}

/// What the monitor reads each second.
pub struct TickContext {
    /// A handle on the running engine: its gauges ([`Engine::snapshot`])
    /// and its stop signal.
    pub engine: Engine,
    /// Number of gauges in the layout.
    pub gauges: usize,
    pub ids: Ids,
    pub progress: Progress,
    pub plan: Plan,
    pub scenario: Arc<Scenario>,
    /// Where the live Prometheus endpoint reads its snapshot, once per
    /// interval (None: no endpoint).
    pub export: Option<Arc<crate::report::prometheus::Published>>,
    /// The run's time zero on this clock (the common `--start-at` of a
    /// split run), so every segment's intervals are the same seconds.
    pub start: std::time::Instant,
    /// The run's `metrics.hlog`, watched for a failed write or removal.
    pub hlog: HlogFile,
}

impl AggregatorThread {
    /// Stops the thread after one last tick and returns everything
    /// recorded, whether `abort_on_fail` stopped the run, and what was lost
    /// of `metrics.hlog` (not an error: the run is judged and reported
    /// from the totals).
    pub fn finish(self) -> Result<Monitored, crate::error::CommandError> {
        let _ = self.tx.send(AggregatorMsg::Stop);
        let finished = self
            .handle
            .join()
            .map_err(|_| anyhow::anyhow!("the aggregator thread panicked"))?;
        Ok(finished)
    }
}

/// What the live endpoint serves after this tick: the totals so far.
fn snapshot(
    aggregator: &Aggregator,
    ctx: &TickContext,
    point: &crate::metrics::Point,
    live: &crate::engine::LiveSnapshot,
    elapsed: Duration,
    finished: bool,
) -> crate::report::prometheus::Snapshot {
    let totals = aggregator.totals();
    let layout = totals.layout();
    let phases = layout.phases.len().max(1);
    let counters = (0..phases)
        .flat_map(|phase| {
            (0..layout.counters.len())
                .map(move |id| totals.counter(crate::metrics::CounterId(id as u32), Some(phase)))
        })
        .collect();
    crate::report::prometheus::Snapshot {
        counters,
        buckets: aggregator
            .buckets()
            .cloned()
            .expect("keep_buckets was called with an export"),
        gauges: point.gauges.clone(),
        phase: live.phase,
        elapsed,
        finished,
        disruptions: ctx.ids.hub.is_some().then_some(live.disruptions),
        arrivals: live.arrivals,
    }
}

pub fn spawn_aggregator(mut aggregator: Aggregator, ctx: TickContext) -> AggregatorThread {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name("stampede-aggregator".into())
        .spawn(move || {
            let start = ctx.start;
            let mut last_cpu = process_cpu();
            let mut last_sample = crate::metrics::process::ProcessSample::now();
            let mut last_wall = start;
            let mut n = 1u32;
            let mut aborted = false;
            let mut watch = HlogWatch {
                file: ctx.hlog.clone(),
                lost: None,
            };
            let mut elapsed;
            let latency: Vec<crate::metrics::HistId> =
                ctx.ids.steps.iter().flatten().map(|s| s.latency).collect();
            aggregator.watch(&latency, 5);
            if let Some(export) = &ctx.export {
                aggregator.keep_buckets();
                // Every series from 0 before the first interval, so the
                // first event of each is an increase a scrape can see.
                let empty = crate::metrics::Point {
                    gauges: vec![0.0; ctx.gauges],
                    ..Default::default()
                };
                let live = ctx.engine.snapshot();
                export.publish(snapshot(
                    &aggregator,
                    &ctx,
                    &empty,
                    &live,
                    Duration::ZERO,
                    false,
                ));
            }
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
                let sample = crate::metrics::process::ProcessSample::now();
                let waited = sample.since(&last_sample).run_queue.unwrap_or_default();
                last_sample = sample;
                gauges[ctx.ids.run_queue.0 as usize] = waited.as_secs_f64() * 1e3 / wall;
                let live = ctx.engine.snapshot();
                gauges[ctx.ids.in_flight.0 as usize] = live.in_flight as f64;
                gauges[ctx.ids.vus.0 as usize] = live.vus as f64;
                gauges[ctx.ids.queued.0 as usize] = live.queued as f64;
                gauges[ctx.ids.offered.0 as usize] = live.arrivals as f64;
                if let Some(hub) = &ctx.ids.hub {
                    gauges[hub.connected.0 as usize] = live.connected as f64;
                    gauges[hub.registered.0 as usize] = live.registered as f64;
                }
                elapsed = now.duration_since(start);
                let point = aggregator.tick(elapsed, &gauges).clone();
                watch.check(&aggregator, elapsed, bar.as_ref());
                if let Some(export) = &ctx.export {
                    export.publish(snapshot(&aggregator, &ctx, &point, &live, elapsed, stop));
                }
                let line = || {
                    console::progress_line(
                        &ctx.plan,
                        &ctx.ids,
                        elapsed,
                        &point,
                        &live,
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
                    (None, Progress::Json) if !stop => {
                        let window = aggregator.window_quantile(0.95);
                        let report = ProgressReport::new(&ctx.ids, elapsed, &point, &live, window);
                        let json = serde_json::to_string(&report).expect("plain data");
                        // A closed pipe (the parent is gone) is not an error.
                        let _ = writeln!(std::io::stdout().lock(), "{json}");
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
                        ctx.engine.live().interrupt();
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
            let (totals, hlog_lost) = watch.finish(aggregator, elapsed);
            Monitored {
                totals,
                aborted,
                hlog_lost,
            }
        })
        .expect("spawn aggregator thread");
    AggregatorThread { tx, handle }
}
