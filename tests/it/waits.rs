//! Steps that poll (`until`, `every`, `within`), `http.wait`,
//! `http.wait.polls`, `http.journey` and the built-in target's job queue,
//! all under tokio's paused clock against the built-in target on
//! 127.0.0.1:0 in the same runtime, so the schedule is played exactly.

use crate::common::{api, count, step, table_rows, Fixture};
use hdrhistogram::Histogram;
use stampede::metrics::{TagFilter, Totals};
use stampede::report::json;
use stampede::target::{self, Latency, TargetConfig};
use std::time::Duration;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A built-in target whose jobs take `job` on `workers` workers.
async fn job_target(workers: usize, job: Duration) -> target::RunningTarget {
    let config = TargetConfig {
        job_workers: workers,
        job_duration: Latency::Fixed(job),
        ..TargetConfig::default()
    };
    target::spawn("127.0.0.1:0".parse().unwrap(), config)
        .await
        .unwrap()
}

fn hist(totals: &Totals, metric: &str, filter: &TagFilter) -> Option<Histogram<u64>> {
    totals.select_hist(metric, filter).filter(|h| !h.is_empty())
}

/// Values of `h` (each bucket's lowest value, µs), one per sample.
fn samples(h: &Histogram<u64>) -> Vec<u64> {
    let mut out = Vec::new();
    for v in h.iter_recorded() {
        let value = h.lowest_equivalent(v.value_iterated_to());
        out.extend(std::iter::repeat_n(value, v.count_at_value() as usize));
    }
    out
}

/// `ms` as [`samples`] shows it.
fn bucket(h: &Histogram<u64>, ms: u64) -> u64 {
    h.lowest_equivalent(ms * 1000)
}

/// A journey: log in, submit a job, poll it `every` until done `within`.
fn job_scenario(every: &str, within: &str, phases: &str) -> String {
    format!(
        r#"
name = "jobs"
[target]
api = "http://127.0.0.1:9"
[[users]]
name = "shopper"
steps = [
  {{ name = "login", post = "/api/login", json = {{ user = "u" }}, extract = {{ token = "$.token" }} }},
  {{ name = "submit", post = "/api/jobs", headers = {{ Authorization = "Bearer {{{{ token }}}}" }}, check = {{ status = 202 }}, extract = {{ job = "$.id" }} }},
  {{ name = "status", get = "/api/jobs/{{{{ job }}}}", until = {{ json = {{ "$.status" = "done" }} }}, every = "{every}", within = "{within}", extract = {{ state = "$.status" }} }},
  {{ name = "after", post = "/api/login", json = {{ user = "{{{{ state }}}}" }}, check = {{ body_contains = "tok-done-" }} }},
]
{phases}
"#
    )
}

/// One job of 350 ms, polled every 100 ms from its submission: polls at 0,
/// 100, 200, 300 ms see it running, the fifth at 400 ms sees it done. The
/// wait is 400 ms over 5 polls, each poll a request; the value extracted is
/// the final answer's (the next step logs in as `done`); the journey (all
/// steps, no think time) took the same 400 ms.
#[tokio::test(start_paused = true)]
async fn a_step_polls_until_its_condition_holds() {
    let target = job_target(1, ms(350)).await;
    let fixture = Fixture::new(&job_scenario(
        "100ms",
        "5s",
        r#"
[[phases]]
name = "one"
duration = "1s"
users = { rate = "1/s" }
[[phases]]
name = "quiet"
duration = "1s"
[slo]
"http.wait{step=status}.mean" = "< 500ms"
"http.journey{population=shopper}.p95" = "< 300ms"
"#,
    ));
    let outcome = fixture.run(api(target.addr)).await;
    let t = &outcome.totals;
    assert_eq!(count(t, "http.errors", None), 0);
    // The SLOs judge the new series: the wait holds, the journey not.
    let verdicts: Vec<(&str, bool)> = (outcome.verdicts.iter())
        .map(|v| (v.slo.key.as_str(), v.pass))
        .collect();
    assert_eq!(
        verdicts,
        [
            ("http.journey{population=shopper}.p95", false),
            ("http.wait{step=status}.mean", true)
        ]
    );
    // Every report shows them.
    let summary = json::read(&outcome.result_dir.join("summary.json")).unwrap();
    let console = stampede::report::console::final_report(&summary);
    let rows = table_rows(&console, Some("waits and journeys:"), 4);
    assert_eq!(
        rows[0],
        ["series", "count", "mean", "p50", "p95", "p99", "max"]
    );
    assert_eq!(rows[1][..3], ["http.wait", "status", "1"]);
    assert_eq!(rows[2][..4], ["http.wait.polls", "status", "1", "5"]);
    assert_eq!(rows[3][..3], ["http.journey", "shopper", "1"]);
    let md = std::fs::read_to_string(outcome.result_dir.join("summary.md")).unwrap();
    assert!(md.contains("**Waits and journeys**"), "{md}");
    assert!(
        md.contains("| `http.wait{step=status}` | `shopper` | 1 |"),
        "{md}"
    );
    let html = std::fs::read_to_string(outcome.result_dir.join("report.html")).unwrap();
    assert!(html.contains("<section id=\"waits\">"));
    assert!(html.contains("<a href=\"#waits\">Waits</a>"));
    assert!(html.contains("http.journey shopper"));
    assert_eq!(t.sum_counters("http.requests", None, &step("status")), 5);
    assert_eq!(count(t, "http.requests", None), 8);
    let wait = hist(t, "http.wait", &step("status")).expect("a wait");
    assert_eq!(samples(&wait), [bucket(&wait, 400)]);
    let polls = hist(t, "http.wait.polls", &step("status")).unwrap();
    assert_eq!((polls.len(), polls.max()), (1, 5));
    // Each poll's latency counts from its own due time: the target answers
    // at once.
    let latency = hist(t, "http.latency", &step("status")).unwrap();
    assert_eq!((latency.len(), latency.max()), (5, 0));
    let journey = hist(t, "http.journey", &TagFilter::default()).unwrap();
    assert_eq!(samples(&journey), [bucket(&journey, 400)]);
}

/// A job of 10 s polled every second within 3 s: polls at 0, 1, 2 and 3 s,
/// the next would be past the limit, so the step fails there with
/// `wait_timeout` (counted on its last poll), no wait is recorded, the
/// polls are, and the failed journey is not a journey sample.
#[tokio::test(start_paused = true)]
async fn a_wait_past_within_fails_with_wait_timeout() {
    let target = job_target(1, ms(10_000)).await;
    let fixture = Fixture::new(&job_scenario(
        "1s",
        "3s",
        r#"
[[phases]]
name = "one"
duration = "1s"
users = { rate = "1/s" }
[[phases]]
name = "quiet"
duration = "5s"
"#,
    ));
    let outcome = fixture.run(api(target.addr)).await;
    let t = &outcome.totals;
    assert_eq!(t.sum_counters("http.requests", None, &step("status")), 4);
    assert_eq!(count(t, "http.errors", Some("wait_timeout")), 1);
    assert_eq!(count(t, "http.errors", None), 1);
    assert_eq!(t.sum_counters("http.requests", None, &step("after")), 0);
    assert!(hist(t, "http.wait", &TagFilter::default()).is_none());
    let polls = hist(t, "http.wait.polls", &step("status")).unwrap();
    assert_eq!((polls.len(), polls.max()), (1, 4));
    assert!(hist(t, "http.journey", &TagFilter::default()).is_none());
}

/// The end of the run stops a wait at once: a 10 s job polled every 700 ms
/// within 60 s, a plan of 2 s. Polls at 0, 0.7 and 1.4 s; the one due at
/// 2.1 s is never sent and the run ends with its plan, not 58 s later,
/// with no error and no `http.wait`: the wait is still open, counted in
/// `http.wait.open` with its 2 s so far.
#[tokio::test(start_paused = true)]
async fn the_end_of_the_run_stops_a_wait() {
    let target = job_target(1, ms(10_000)).await;
    let fixture = Fixture::new(&job_scenario(
        "700ms",
        "60s",
        r#"
[[phases]]
name = "one"
duration = "2s"
users = { rate = "0.5/s" }
"#,
    ));
    let outcome = fixture.run(api(target.addr)).await;
    let t = &outcome.totals;
    assert_eq!(t.sum_counters("http.requests", None, &step("status")), 3);
    assert_eq!(count(t, "http.errors", None), 0);
    assert!(hist(t, "http.wait", &TagFilter::default()).is_none());
    // Still open at the end: its 2 s so far, in `http.wait.open`.
    let open = hist(t, "http.wait.open", &step("status")).expect("an open wait");
    assert_eq!(samples(&open), [bucket(&open, 2000)]);
    assert!(
        outcome.elapsed < Duration::from_secs(3),
        "{:?}",
        outcome.elapsed
    );
}

/// What the queue arithmetic predicts for FIFO jobs submitted every
/// `gap` onto `workers` workers taking `job` each: each job's time from
/// submission to done.
fn predicted_waits(n: usize, gap: Duration, workers: usize, job: Duration) -> Vec<Duration> {
    let mut free = vec![Duration::ZERO; workers];
    (0..n)
        .map(|k| {
            let submitted = gap * k as u32;
            let (w, _) = (free.iter().enumerate()).min_by_key(|(_, t)| **t).unwrap();
            let start = free[w].max(submitted);
            free[w] = start + job;
            free[w] - submitted
        })
        .collect()
}

/// The q-quantile of `values` (nearest rank).
fn quantile(values: &mut [Duration], q: f64) -> Duration {
    values.sort();
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// The queue runs: 2 workers of 100 ms jobs (capacity 20/s), polled
/// every 40 ms.
const WORKERS: usize = 2;
const JOB: Duration = Duration::from_millis(100);
const EVERY: Duration = Duration::from_millis(40);

/// Submit jobs at `rate` for 3 s, then give the backlog time to drain:
/// the measured waits and the arithmetic's.
async fn queue_run(rate: u32) -> (Histogram<u64>, Vec<Duration>) {
    let target = job_target(WORKERS, JOB).await;
    let fixture = Fixture::new(&job_scenario(
        &stampede::target::format_duration(EVERY),
        "30s",
        &format!(
            r#"
[[phases]]
name = "submit"
duration = "3s"
users = {{ rate = "{rate}/s" }}
[[phases]]
name = "drain"
duration = "5s"
"#
        ),
    ));
    let outcome = fixture.run(api(target.addr)).await;
    let t = &outcome.totals;
    assert_eq!(count(t, "http.errors", None), 0);
    let n = 3 * rate as usize;
    let wait = hist(t, "http.wait", &step("status")).unwrap();
    assert_eq!(wait.len(), n as u64, "every job was waited for");
    let predicted = predicted_waits(n, Duration::from_secs(1) / rate, WORKERS, JOB);
    (wait, predicted)
}

/// `http.wait` sees the queue: below capacity (10/s onto 20/s) every job
/// waits about its own 100 ms; at twice the capacity (40/s) the backlog
/// grows by 20 jobs a second, so the wait grows over the run (the k-th
/// job waits k·25 ms more than the first) and its p95 is many times the
/// job's duration. Each measured quantile lies between the arithmetic's
/// and that plus one poll interval (a poll sees `done` at most 40 ms
/// late), within the histogram's precision.
#[tokio::test(start_paused = true)]
async fn http_wait_sees_the_job_queue_grow_beyond_capacity() {
    let micros = |d: Duration| d.as_micros() as u64;
    let within = |measured: u64, predicted: Duration| {
        let p = micros(predicted);
        let slack = p / 100 + 1000;
        (p.saturating_sub(slack)..=p + micros(EVERY) + slack).contains(&measured)
    };
    for rate in [10, 40] {
        let (wait, mut predicted) = queue_run(rate).await;
        for q in [0.0, 0.5, 0.95, 1.0] {
            let (measured, expected) = (wait.value_at_quantile(q), quantile(&mut predicted, q));
            assert!(
                within(measured, expected),
                "{rate}/s: p{}: measured {measured} µs, predicted {expected:?}",
                q * 100.0
            );
        }
        let p95 = wait.value_at_quantile(0.95);
        if rate == 10 {
            // Below capacity: about the job's own duration.
            assert!(p95 < 2 * micros(JOB), "{p95}");
        } else {
            // Beyond capacity: the queue dominates, and grew over the run.
            assert!(p95 > 10 * micros(JOB), "{p95}");
            assert!(
                wait.max() > 10 * wait.min(),
                "{} vs {}",
                wait.max(),
                wait.min()
            );
        }
    }
}

/// A run split in two segments, merged: the merged `http.wait`,
/// `http.wait.polls` and `http.journey` hold every segment's samples (the
/// whole run's), and the wait_timeout errors add up. Each segment submits
/// 12 jobs at 10/s onto one worker of 150 ms jobs (6.7/s), polled every
/// 100 ms within 500 ms, so the backlog makes its later jobs time out.
#[tokio::test(start_paused = true)]
async fn segments_merge_their_waits_and_journeys() {
    use stampede::merge::{merge, MergeOptions};
    use stampede::plan::Segment;
    let target = job_target(1, ms(150)).await;
    let fixture = Fixture::new(&job_scenario(
        "100ms",
        "500ms",
        r#"
[[phases]]
name = "submit"
duration = "1200ms"
users = { rate = "20/s" }
[[phases]]
name = "drain"
duration = "3s"
"#,
    ));
    let mut dirs = Vec::new();
    let mut segments = Vec::new();
    for index in 0..2 {
        let mut options = fixture.options(api(target.addr));
        options.segment = Segment { index, count: 2 };
        let scenario =
            stampede::scenario::load(&fixture.scenario_path(), &options.overrides).unwrap();
        let outcome = stampede::run::run_scenario(std::sync::Arc::new(scenario), &options)
            .await
            .unwrap();
        dirs.push(outcome.result_dir.clone());
        segments.push(outcome.totals);
    }
    let merged = merge(
        &dirs,
        &MergeOptions {
            out: Some(fixture.dir.path().join("merged")),
            quiet: true,
            silent: true,
            command_line: vec!["test".into()],
        },
    )
    .unwrap();
    let merged = &merged.summary;
    let merged_count = |metric: &str| -> u64 {
        (merged.histograms.iter())
            .filter(|h| h.phase.is_none() && h.metric == metric)
            .map(|h| h.count)
            .sum()
    };
    let all = TagFilter::default();
    let n = |t: &Totals, metric: &str| hist(t, metric, &all).map_or(0, |h| h.len());
    for metric in ["http.wait", "http.wait.polls", "http.journey"] {
        let summed: u64 = segments.iter().map(|t| n(t, metric)).sum();
        assert!(summed > 0, "{metric}");
        assert_eq!(merged_count(metric), summed, "{metric}");
    }
    let timeouts: u64 = (segments.iter())
        .map(|t| count(t, "http.errors", Some("wait_timeout")))
        .sum();
    assert!(timeouts > 0);
    let merged_timeouts: u64 = (merged.counters.iter())
        .filter(|c| c.metric == "http.errors" && c.kind.as_deref() == Some("wait_timeout"))
        .map(|c| c.total)
        .sum();
    assert_eq!(merged_timeouts, timeouts);
    // Every journey either completed or timed out waiting.
    assert_eq!(merged_count("http.journey") + timeouts, 24);
}

/// What the queue arithmetic predicts for a run that ends at `end` while
/// jobs submitted every `gap` (from 0, while before `end`) queue for one
/// worker taking `job` each, each polled every `every` from its
/// submission: the waits that ended (first poll → the poll that saw the
/// job done) and those still open at the end (first poll → `end`).
fn predicted_at_end(
    gap: Duration,
    job: Duration,
    every: Duration,
    end: Duration,
) -> (Vec<Duration>, Vec<Duration>) {
    let (mut met, mut open) = (Vec::new(), Vec::new());
    let mut free = Duration::ZERO;
    let mut submitted = Duration::ZERO;
    while submitted < end {
        let done = free.max(submitted) + job;
        free = done;
        // The first poll at or after `done` (none falls exactly on it, nor
        // on `end`: the scenario is chosen so).
        let mut poll = submitted;
        while poll < done && poll < end {
            poll += every;
        }
        if poll < end {
            met.push(poll - submitted);
        } else {
            open.push(end - submitted);
        }
        submitted += gap;
    }
    (met, open)
}

/// An overloaded run ends with waits still open: jobs of 1 s submitted
/// twice a second onto one worker (capacity 1/s), polled every 350 ms, the
/// run over after 3 s. `http.wait` has only the waits that ended (its
/// condition met); `http.wait.open` has every open one with how long it
/// had waited, the reports and notes say how many and the longest, and
/// an SLO on `http.wait` says it left them out — and fails when counting
/// them at their time so far already breaks it. Played once whole and
/// once as two segments at once, merged: the same counts.
#[tokio::test(start_paused = true)]
async fn waits_still_open_at_the_end_are_counted_and_said() {
    const GAP: Duration = Duration::from_millis(500);
    const JOB: Duration = Duration::from_secs(1);
    const EVERY: Duration = Duration::from_millis(350);
    const END: Duration = Duration::from_secs(3);
    let (met, open) = predicted_at_end(GAP, JOB, EVERY, END);
    assert!(!met.is_empty() && !open.is_empty(), "{met:?} {open:?}");
    let longest_met = *met.iter().max().unwrap();
    let longest_open = *open.iter().max().unwrap();
    assert!(longest_open > longest_met);
    // Between the longest ended wait and the longest open one: holds for
    // the waits that ended, not when the open ones count.
    let max_slo = (longest_met + longest_open) / 2;
    let text = job_scenario(
        "350ms",
        "60s",
        &format!(
            r#"
[[phases]]
name = "submit"
duration = "3s"
users = {{ rate = "2/s" }}
[slo]
"http.wait{{step=status}}.max" = "< {}ms"
"http.wait{{step=status}}.p50" = "< 60s"
"#,
            max_slo.as_millis()
        ),
    );
    let micros = |d: &Duration| d.as_micros() as u64;
    let note = format!(
        "{} waits of step status (shopper) were still open at the end (the longest for {}): http.wait leaves them out",
        open.len(),
        stampede::units::format::latency(micros(&longest_open))
    );
    // What every summary.json (whole or merged) must say.
    let check = |s: &json::Summary| {
        let hist = |metric: &str| {
            let e = (s.histograms.iter())
                .find(|h| h.phase.is_none() && h.metric == metric && h.step == "status")
                .unwrap_or_else(|| panic!("{metric} in summary.json"));
            json::decode_histogram(&e.hdr).unwrap()
        };
        let wait = hist("http.wait");
        let want: Vec<u64> = met
            .iter()
            .map(|d| wait.lowest_equivalent(micros(d)))
            .collect();
        assert_eq!(samples(&wait), want, "the waits that ended");
        let still = hist("http.wait.open");
        let mut want: Vec<u64> = open
            .iter()
            .map(|d| still.lowest_equivalent(micros(d)))
            .collect();
        want.sort();
        assert_eq!(samples(&still), want, "the waits still open");
        assert!(s.meta.notes.contains(&note), "{:?}", s.meta.notes);
        let v: Vec<(&str, bool, &str)> = (s.verdicts.iter())
            .map(|v| (v.slo.key.as_str(), v.pass, v.measured_text.as_str()))
            .collect();
        let left_out = format!("{} waits still open at the end, left out", open.len());
        assert_eq!(v.len(), 2);
        assert!(!v[0].1 && v[0].2.contains(&left_out), "{v:?}");
        assert!(v[0].2.contains("counting them: at least"), "{v:?}");
        assert!(
            v[1].1 && v[1].2.ends_with(&format!("({left_out})")),
            "{v:?}"
        );
    };

    // Whole.
    let target = job_target(1, JOB).await;
    let fixture = Fixture::new(&text);
    let outcome = fixture.run(api(target.addr)).await;
    assert_eq!(count(&outcome.totals, "http.errors", None), 0);
    let summary = json::read(&outcome.result_dir.join("summary.json")).unwrap();
    check(&summary);
    assert_eq!(outcome.exit, stampede::error::ExitStatus::SloFailed);
    let console = stampede::report::console::final_report(&summary);
    let rows = table_rows(&console, Some("waits and journeys:"), 5);
    assert_eq!(
        rows[3][..3],
        ["http.wait.open", "status", &open.len().to_string()]
    );
    assert!(console.contains(&note), "{console}");
    let md = std::fs::read_to_string(outcome.result_dir.join("summary.md")).unwrap();
    assert!(
        md.contains(&format!(
            "| `http.wait.open{{step=status}}` | `shopper` | {} |",
            open.len()
        )),
        "{md}"
    );
    assert!(md.contains(&note), "{md}");
    let html = std::fs::read_to_string(outcome.result_dir.join("report.html")).unwrap();
    assert!(html.contains("http.wait.open status"), "waits table");
    assert!(html.contains(&note), "the note");
    target.shutdown().await;

    // Two segments at once against one fresh target (the same arrivals,
    // striped, so the same queue), merged.
    use stampede::merge::{merge, MergeOptions};
    use stampede::plan::Segment;
    let target = job_target(1, JOB).await;
    let fixture = Fixture::new(&text);
    let options: Vec<_> = (0..2)
        .map(|index| {
            let mut o = fixture.options(api(target.addr));
            o.segment = Segment { index, count: 2 };
            o
        })
        .collect();
    let scenario = |o: &stampede::run::RunOptions| {
        let s = stampede::scenario::load(&fixture.scenario_path(), &o.overrides).unwrap();
        std::sync::Arc::new(s)
    };
    let (a, b) = tokio::join!(
        stampede::run::run_scenario(scenario(&options[0]), &options[0]),
        stampede::run::run_scenario(scenario(&options[1]), &options[1])
    );
    let dirs = vec![a.unwrap().result_dir, b.unwrap().result_dir];
    let merged = merge(
        &dirs,
        &MergeOptions {
            out: Some(fixture.dir.path().join("merged")),
            quiet: true,
            silent: true,
            command_line: vec!["test".into()],
        },
    )
    .unwrap();
    check(&merged.summary);
    assert_eq!(merged.exit, stampede::error::ExitStatus::SloFailed);
    // The whole run's note once, not each segment's.
    assert_eq!(
        (merged.summary.meta.notes.iter())
            .filter(|n| n.contains("still open at the end"))
            .count(),
        1,
        "{:?}",
        merged.summary.meta.notes
    );
    target.shutdown().await;
}
