//! The engine against the built-in target on 127.0.0.1:0: open-model
//! counts, coordinated-omission correction, the closed model, journeys with
//! checks, extraction and feeders.

use crate::common::{api, count, quantile, step, summary_exists, Fixture};
use stampede::error::ExitStatus;
use stampede::metrics::TagFilter;
use stampede::target::{self, TargetConfig};
use std::time::Duration;

fn loopback() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
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
    // 150·2 + (150+350)/2·2 = 300 + 500 = 800 journeys of one request.
    let requests = count(&outcome.totals, "http.requests", None);
    let expected = 800.0;
    assert!(
        (requests as f64 - expected).abs() / expected <= 0.02,
        "{requests} requests, expected {expected} ± 2%"
    );
    assert_eq!(count(&outcome.totals, "http.errors", None), 0);
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
    assert_eq!(per_phase(0) + per_phase(1), requests);
    assert!(
        (per_phase(0) as i64 - 300).abs() <= 6,
        "phase a: {}",
        per_phase(0)
    );
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
    assert!(
        latency_p99 >= 300_000,
        "latency p99 {latency_p99}µs should show the 500ms stall"
    );
    assert!(
        service_p99 < 100_000,
        "service p99 {service_p99}µs should not"
    );
    assert!(
        service_max >= 300_000,
        "the in-flight requests did see the stall ({service_max}µs)"
    );
    assert_eq!(count(&outcome.totals, "http.errors", Some("dropped")), 0);
    let requests = count(&outcome.totals, "http.requests", None);
    assert!((requests as i64 - 800).abs() <= 16, "{requests}");
}

/// max_in_flight reached and the queue full: arrivals are dropped and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arrivals_beyond_max_in_flight_and_queue_are_dropped_and_counted() {
    let config = TargetConfig {
        latency: "100ms".parse().unwrap(),
        ..TargetConfig::default()
    };
    let target = target::spawn(loopback(), config).await.unwrap();
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
    // Two in flight at 100 ms each serve ~20/s; most of the 100 arrivals drop.
    assert_eq!(requests, 100, "every arrival is accounted for");
    assert!(dropped >= 50, "{dropped} dropped");
    assert_eq!(count(totals, "http.errors", None), dropped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_model_keeps_the_vu_count() {
    // A target that refuses a 6th concurrent request proves at most 5 VUs.
    let config = TargetConfig {
        latency: "10ms".parse().unwrap(),
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
    let requests = count(totals, "http.requests", None);
    assert_eq!(
        count(totals, "http.errors", None),
        0,
        "never more than 5 at once"
    );
    // 5 VUs × 2 s / ~10 ms ≈ 1000; allow for scheduling on a loaded machine.
    assert!((400..=1000).contains(&requests), "{requests}");
    let vus_gauge = totals
        .layout()
        .gauges
        .iter()
        .position(|g| g == "users.vus")
        .unwrap();
    let peak = totals
        .series()
        .iter()
        .map(|p| p.gauges[vus_gauge])
        .fold(0.0, f64::max);
    assert_eq!(peak, 5.0);
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
