//! The engine against the built-in target on 127.0.0.1:0: open-model
//! counts, coordinated-omission correction, the closed model, journeys with
//! checks, extraction and feeders.

use crate::common::{api, count, quantile, step, summary_exists, Fixture};
use hdrhistogram::Histogram;
use stampede::error::ExitStatus;
use stampede::metrics::{TagFilter, Totals};
use stampede::target::{self, TargetConfig};
use std::time::Duration;

fn loopback() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Under tokio's paused clock (current-thread runtime, the built-in target in
/// the same runtime) the schedule is played exactly: every arrival due in a
/// phase is made, so the counts are `ceil(r·d)` per phase, not "about".
#[tokio::test(start_paused = true)]
async fn open_model_request_count_matches_rate_times_duration() {
    let fixture = Fixture::new(
        r#"
name = "count"
[target]
api = "builtin"
[[users]]
name = "u"
steps = [{ name = "health", get = "/api/servers" }]
[[phases]]
name = "a"
duration = "2s"
users = { rate = "150/s" }
[[phases]]
name = "b"
duration = "2s"
users = { rate = "150/s -> 350/s" }
[slo]
"http.errors.rate" = "< 1%"
"#,
    );
    let outcome = fixture.run(Default::default()).await;
    let per_phase = |phase: usize| {
        outcome.totals.sum_counters(
            "http.requests",
            None,
            &TagFilter {
                phase: Some(phase),
                ..TagFilter::default()
            },
        )
    };
    // 150/s · 2 s = 300; (150 + 350)/2 /s · 2 s = 500: journeys of one request.
    assert_eq!(per_phase(0), 300);
    assert_eq!(per_phase(1), 500);
    assert_eq!(count(&outcome.totals, "http.requests", None), 800);
    assert_eq!(count(&outcome.totals, "http.errors", None), 0);
    assert_eq!(outcome.exit, ExitStatus::Passed);
    assert!(summary_exists(&outcome.result_dir));
    assert!(outcome.result_dir.join("metrics.hlog").is_file());
}

/// A 500 ms stall with max_in_flight = 2: arrivals queue behind it, so
/// latency (from the intended start) shows the stall, while service time
/// (from the actual send) shows it only for the two requests that were in
/// flight — under 1% of the requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stall_shows_in_latency_but_not_in_service_time() {
    let target = target::spawn(loopback(), TargetConfig::default())
        .await
        .unwrap();
    let addr = target.addr;
    let fixture = Fixture::new(
        r#"
name = "stall"
[target]
api = "http://127.0.0.1:9"
[http]
max_in_flight = 2
queue = 10000
[[users]]
name = "u"
steps = [{ name = "list", get = "/api/servers" }]
[[phases]]
name = "steady"
duration = "4s"
users = { rate = "200/s" }
"#,
    );
    // Start the stall once the run is under way (condition, not a sleep).
    let stall = tokio::spawn(async move {
        let http = reqwest::Client::new();
        loop {
            let stats: serde_json::Value = http
                .get(format!("http://{addr}/admin/stats"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if stats["requests"].as_u64().unwrap_or(0) >= 200 {
                break;
            }
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let r = http
            .post(format!("http://{addr}/admin/stall"))
            .json(&serde_json::json!({ "duration": "500ms" }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    });
    let outcome = fixture.run(api(addr)).await;
    stall.await.unwrap();
    let all = TagFilter::default();
    let latency_p99 = quantile(&outcome.totals, "http.latency", &all, 0.99);
    let service_p99 = quantile(&outcome.totals, "http.service_time", &all, 0.99);
    let service_max = outcome
        .totals
        .select_hist("http.service_time", &all)
        .unwrap()
        .max();
    // The stall is 500 ms; the arrivals queued behind it (about 100, at
    // 200/s) drain in milliseconds once it ends. The upper bounds leave 1 s
    // for a loaded machine's scheduling (wall clock: the stall knob runs on
    // std time, so this test cannot use the paused clock; the exact
    // coordinated-omission numbers are in the paused-clock tests below).
    assert!(
        (300_000..1_500_000).contains(&latency_p99),
        "latency p99 {latency_p99}µs should show the 500ms stall"
    );
    assert!(
        (1..100_000).contains(&service_p99),
        "service p99 {service_p99}µs should not"
    );
    assert!(
        (300_000..1_500_000).contains(&service_max),
        "the in-flight requests did see the stall ({service_max}µs)"
    );
    assert_eq!(count(&outcome.totals, "http.errors", None), 0);
    // Every arrival made was sent (none dropped): one `generator.lag` sample
    // per arrival made.
    let requests = count(&outcome.totals, "http.requests", None);
    let made = outcome
        .totals
        .select_hist("generator.lag", &all)
        .unwrap()
        .len();
    assert_eq!(requests, made);
    // 200/s · 4 s = 800 are due, and the schedule makes every arrival due
    // before the plan's end, a late one too (`Schedule::finishing`).
    assert_eq!(requests, 800);
}

/// A built-in target with a fixed service time, in this (paused) runtime.
async fn target_with_latency(latency: &str) -> target::RunningTarget {
    let config = TargetConfig {
        latency: latency.parse().unwrap(),
        ..TargetConfig::default()
    };
    target::spawn(loopback(), config).await.unwrap()
}

/// The values recorded in `h`, as (lowest value of its bucket, count),
/// ascending: what the histogram can tell apart at its 3 significant digits.
fn recorded(h: &Histogram<u64>) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| {
            (
                h.lowest_equivalent(v.value_iterated_to()),
                v.count_at_value(),
            )
        })
        .collect()
}

/// `expected` (milliseconds, count) as [`recorded`] would show it.
fn buckets(h: &Histogram<u64>, expected: &[(u64, u64)]) -> Vec<(u64, u64)> {
    expected
        .iter()
        .map(|&(ms, n)| (h.lowest_equivalent(ms * 1000), n))
        .collect()
}

fn hist(totals: &Totals, metric: &str, filter: &TagFilter) -> Histogram<u64> {
    totals
        .select_hist(metric, filter)
        .unwrap_or_else(|| panic!("no {metric} data"))
}

/// max_in_flight reached and the queue full: arrivals are dropped and counted.
/// Paused clock: a 103 ms service time never ends on an arrival's 10 ms grid
/// (103·k and 10 + 103·k are not multiples of 10 for k < 10), so there is no
/// tie to break and the count is exact.
#[tokio::test(start_paused = true)]
async fn arrivals_beyond_max_in_flight_and_queue_are_dropped_and_counted() {
    let target = target_with_latency("103ms").await;
    let fixture = Fixture::new(
        r#"
name = "drops"
[target]
api = "http://127.0.0.1:9"
[http]
max_in_flight = 2
queue = 2
[[users]]
name = "u"
steps = [{ name = "list", get = "/api/servers" }]
[[phases]]
name = "steady"
duration = "1s"
users = { rate = "100/s" }
"#,
    );
    let outcome = fixture.run(api(target.addr)).await;
    let totals = &outcome.totals;
    let requests = count(totals, "http.requests", None);
    let dropped = count(totals, "http.errors", Some("dropped"));
    // VU 0 starts arrivals at 0, 103, …, 927 ms and VU 1 at 10, 113, …,
    // 937 ms, always finding the queue non-empty (an arrival comes every
    // 10 ms, a VU frees every 103 ms); the two left queued at the end start at
    // 1030 and 1040 ms. 2 × 10 + 2 = 22 served; the other 78 of the 100
    // arrivals found both VUs busy and the queue (2) full.
    assert_eq!(requests, 100, "every arrival is accounted for");
    assert_eq!(dropped, 78);
    assert_eq!(count(totals, "http.errors", None), 78);
    let all = TagFilter::default();
    assert_eq!(hist(totals, "http.latency", &all).len(), 22);
    // Every served request took the target's 103 ms, measured from the send.
    let service = hist(totals, "http.service_time", &all);
    assert_eq!(recorded(&service), buckets(&service, &[(103, 22)]));
}

/// Coordinated-omission correction through the engine: one VU
/// (max_in_flight = 1), a target taking exactly 50 ms, an arrival due every
/// 20 ms. Arrival k (due at 20k ms) waits behind the k before it, is sent
/// at 50k and done at 50(k + 1): its latency is 50 + 30k ms, queue wait
/// included, while its service time is the target's 50 ms.
#[tokio::test(start_paused = true)]
async fn latency_counts_from_the_intended_start_queue_wait_included() {
    let target = target_with_latency("50ms").await;
    let fixture = Fixture::new(
        r#"
name = "co"
[target]
api = "http://127.0.0.1:9"
[http]
max_in_flight = 1
queue = 100
[[users]]
name = "u"
steps = [{ name = "list", get = "/api/servers" }]
[[phases]]
name = "steady"
duration = "200ms"
users = { rate = "50/s" }
"#,
    );
    let outcome = fixture.run(api(target.addr)).await;
    let totals = &outcome.totals;
    assert_eq!(count(totals, "http.requests", None), 10);
    assert_eq!(count(totals, "http.errors", None), 0);
    let all = TagFilter::default();
    let latency = hist(totals, "http.latency", &all);
    let expected: Vec<(u64, u64)> = (0..10).map(|k| (50 + 30 * k, 1)).collect();
    assert_eq!(recorded(&latency), buckets(&latency, &expected));
    let service = hist(totals, "http.service_time", &all);
    assert_eq!(recorded(&service), buckets(&service, &[(50, 10)]));
}

/// A journey's later steps count from their own intended start, which the
/// engine (src/engine/user.rs) sets to the moment the previous step and its
/// think time are over: neither the queue wait of the arrival nor the
/// earlier steps nor the think time are in a later step's latency.
///
/// One VU, a 50 ms target, `login` (think 30 ms) then `list`: a journey
/// takes 130 ms, arrivals come every 100 ms. Journey k starts at 130k ms
/// (due at 100k): `login` latency 50 + 30k ms; `list` is due at
/// 130k + 80 ms and done 50 ms later.
#[tokio::test(start_paused = true)]
async fn later_journey_steps_count_from_their_own_intended_start() {
    let target = target_with_latency("50ms").await;
    let fixture = Fixture::new(
        r#"
name = "co-journey"
[target]
api = "http://127.0.0.1:9"
[http]
max_in_flight = 1
queue = 100
[[users]]
name = "u"
steps = [
  { name = "login", post = "/api/login", json = { user = "u" }, think = "30ms" },
  { name = "list", get = "/api/servers" },
]
# Arrivals for 500 ms, then a quiet phase so that the last journey (done at
# 650 ms) ends inside the plan and its think time is not cut short.
[[phases]]
name = "arrive"
duration = "500ms"
users = { rate = "10/s" }
[[phases]]
name = "quiet"
duration = "1s"
"#,
    );
    let outcome = fixture.run(api(target.addr)).await;
    let t = &outcome.totals;
    assert_eq!(count(t, "http.requests", None), 10);
    assert_eq!(count(t, "http.errors", None), 0);
    let login = hist(t, "http.latency", &step("login"));
    let expected: Vec<(u64, u64)> = (0..5).map(|k| (50 + 30 * k, 1)).collect();
    assert_eq!(recorded(&login), buckets(&login, &expected));
    let list = hist(t, "http.latency", &step("list"));
    assert_eq!(recorded(&list), buckets(&list, &[(50, 5)]));
    for name in ["login", "list"] {
        let service = hist(t, "http.service_time", &step(name));
        assert_eq!(recorded(&service), buckets(&service, &[(50, 5)]), "{name}");
    }
}

/// An arrival that waited in the queue longer than `queue_timeout` is
/// dropped and counted (the queue, 100, never fills: 50 arrivals in all).
///
/// One VU, a 100 ms target, an arrival due every 20 ms, queue_timeout
/// 150 ms. Each time the VU frees (at 100 m ms) it drops the queued
/// arrivals due more than 150 ms ago and starts the next one (a wait is a
/// multiple of 20 ms, never exactly 150): it starts arrivals 0, 1, 3, then
/// every 5th (8, 13, …, 48), at 0, 100, 200, … 1100 ms: 12 served,
/// latencies 100, 180, then 240 ms (10×); arrival 49, due at 980 ms, has
/// waited 220 ms when the VU frees at 1200 ms and is dropped too.
#[tokio::test(start_paused = true)]
async fn arrivals_waiting_longer_than_queue_timeout_are_dropped_and_counted() {
    let target = target_with_latency("100ms").await;
    let fixture = Fixture::new(
        r#"
name = "queue-timeout"
[target]
api = "http://127.0.0.1:9"
[http]
max_in_flight = 1
queue = 100
queue_timeout = "150ms"
[[users]]
name = "u"
steps = [{ name = "list", get = "/api/servers" }]
[[phases]]
name = "steady"
duration = "1s"
users = { rate = "50/s" }
"#,
    );
    let outcome = fixture.run(api(target.addr)).await;
    let totals = &outcome.totals;
    assert_eq!(count(totals, "http.requests", None), 50);
    assert_eq!(count(totals, "http.errors", Some("dropped")), 38);
    assert_eq!(count(totals, "http.errors", None), 38);
    let latency = hist(totals, "http.latency", &TagFilter::default());
    assert_eq!(
        recorded(&latency),
        buckets(&latency, &[(100, 1), (180, 1), (240, 10)])
    );
}

/// A target that refuses a 6th concurrent request (concurrency 5, queue 0)
/// proves at most 5 VUs; the exact count proves 5 VUs looping all along.
/// Paused clock: each VU sends a request every 7 ms from 0 to 1995 ms (the
/// plan ends at 2000 ms, between two of them, so there is no tie): 286
/// journeys each.
#[tokio::test(start_paused = true)]
async fn closed_model_keeps_the_vu_count() {
    let config = TargetConfig {
        latency: "7ms".parse().unwrap(),
        concurrency: Some(5),
        queue: 0,
        ..TargetConfig::default()
    };
    let target = target::spawn(loopback(), config).await.unwrap();
    let fixture = Fixture::new(
        r#"
name = "closed"
[target]
api = "http://127.0.0.1:9"
[[users]]
name = "u"
steps = [{ name = "list", get = "/api/servers" }]
[[phases]]
name = "loop"
duration = "2s"
users = { vus = 5 }
"#,
    );
    let outcome = fixture.run(api(target.addr)).await;
    let totals = &outcome.totals;
    assert_eq!(
        count(totals, "http.errors", None),
        0,
        "never more than 5 at once"
    );
    assert_eq!(count(totals, "http.requests", None), 5 * 286);
    let all = TagFilter::default();
    let latency = hist(totals, "http.latency", &all);
    assert_eq!(recorded(&latency), buckets(&latency, &[(7, 5 * 286)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn journeys_extract_check_and_feed() {
    let fixture = Fixture::new(
        r#"
name = "journey"
seed = 3
[target]
api = "builtin"
[[feeders]]
name = "accounts"
file = "accounts.csv"
mode = "sequential"
[[users]]
name = "op"
steps = [
  { name = "login", post = "/api/login", json = { user = "{{ feed.user }}", password = "{{ feed.password }}" }, check = { status = 200, body_contains = "tok-" }, extract = { token = "$.token" } },
  { name = "create", post = "/api/servers", headers = { Authorization = "Bearer {{ token }}" }, json = { name = "{{ feed.user }}-srv" }, check = { status = 201, body_contains = "-srv" }, extract = { id = "$.id" } },
  { name = "wrong", get = "/api/servers?page=2", check = { json = { "$.page" = 99 } } },
]
[[phases]]
name = "p"
duration = "1s"
users = { rate = "50/s" }
"#,
    );
    fixture.file(
        "accounts.csv",
        "user,password\nalice,a1\nbob,b2\ncarol,c3\n",
    );
    let outcome = fixture.run(Default::default()).await;
    let t = &outcome.totals;
    // Login and create succeed (create needs the extracted token: 401 otherwise).
    assert_eq!(t.sum_counters("http.requests", None, &step("login")), 50);
    assert_eq!(t.sum_counters("http.errors", None, &step("login")), 0);
    assert_eq!(t.sum_counters("http.requests", None, &step("create")), 50);
    assert_eq!(t.sum_counters("http.errors", None, &step("create")), 0);
    // The last step's check fails every time, as kind `check`.
    assert_eq!(
        t.sum_counters("http.errors", Some("check"), &step("wrong")),
        50
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_extraction_fails_the_dependent_step_with_http_4xx() {
    let fixture = Fixture::new(
        r#"
name = "no-token"
[target]
api = "builtin"
[[users]]
name = "op"
steps = [
  { name = "login", post = "/api/login", json = { user = "x" }, extract = { token = "$.no_such_field" } },
  { name = "create", post = "/api/servers", headers = { Authorization = "Bearer {{ token }}" }, json = { name = "s" } },
]
[[phases]]
name = "p"
duration = "1s"
users = { rate = "20/s" }
[slo]
"http.errors.rate" = "< 1%"
"#,
    );
    let outcome = fixture.run(Default::default()).await;
    let t = &outcome.totals;
    assert_eq!(
        t.sum_counters("http.errors", Some("http_4xx"), &step("create")),
        20
    );
    assert_eq!(outcome.exit, ExitStatus::SloFailed);
    let verdict = &outcome.verdicts[0];
    assert!(!verdict.pass);
    assert!(
        (verdict.measured.unwrap() - 0.5).abs() < 1e-9,
        "20 of 40 requests failed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_on_fail_stops_the_run_early_with_exit_1() {
    let fixture = Fixture::new(
        r#"
name = "abort"
[target]
api = "builtin"
[[users]]
name = "u"
steps = [{ name = "list", get = "/api/servers" }]
[[phases]]
name = "long"
duration = "30s"
users = { rate = "50/s" }
[slo]
"http.latency.p95" = "< 1us"
abort_on_fail = true
"#,
    );
    let outcome = fixture.run(Default::default()).await;
    assert_eq!(outcome.exit, ExitStatus::SloFailed);
    assert!(
        outcome.elapsed < Duration::from_secs(10),
        "stopped after {:?}",
        outcome.elapsed
    );
    assert!(!outcome.verdicts[0].pass);
    let summary = std::fs::read_to_string(outcome.result_dir.join("summary.json")).unwrap();
    assert!(
        summary.contains("abort_on_fail"),
        "the summary says why it stopped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_are_counted_by_kind_timeout_and_5xx() {
    let slow = target::spawn(
        loopback(),
        TargetConfig {
            latency: "300ms".parse().unwrap(),
            ..TargetConfig::default()
        },
    )
    .await
    .unwrap();
    let failing = target::spawn(
        loopback(),
        TargetConfig {
            error_rate: 1.0,
            ..TargetConfig::default()
        },
    )
    .await
    .unwrap();
    let text = r#"
name = "kinds"
[target]
api = "http://127.0.0.1:9"
[[users]]
name = "u"
steps = [{ name = "list", get = "/api/servers", timeout = "50ms" }]
[[phases]]
name = "p"
duration = "1s"
users = { rate = "10/s" }
"#;
    let outcome = Fixture::new(text).run(api(slow.addr)).await;
    assert_eq!(count(&outcome.totals, "http.errors", Some("timeout")), 10);
    assert_eq!(count(&outcome.totals, "http.errors", None), 10);
    // A timed-out request's latency is recorded (it is what the user waited).
    let p50 = quantile(&outcome.totals, "http.latency", &TagFilter::default(), 0.5);
    assert!((50_000..150_000).contains(&p50), "{p50}µs");

    let outcome = Fixture::new(text).run(api(failing.addr)).await;
    assert_eq!(count(&outcome.totals, "http.errors", Some("http_5xx")), 10);
    assert_eq!(count(&outcome.totals, "http.errors", None), 10);
}
