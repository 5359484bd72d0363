//! `stampede capacity` against a target of known capacity: the built-in
//! target with a concurrency limit L and a fixed service time S serves at
//! most L / S requests per second (beyond it, its bounded queue fills and
//! answers 503, and what waits in it breaks the latency SLO).
//!
//! Its own test binary, and one search at a time: cargo runs test binaries
//! one after another, so these measure the knee on a machine that is not
//! also running the rest of the suite (a loaded machine stretches S).

#[allow(dead_code)]
#[path = "it/common.rs"]
mod common;

use common::Fixture;
use stampede::capacity::{search, Axis, Options};
use stampede::error::ExitStatus;
use std::time::Duration;

/// One search at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn find(concurrency: u32, latency_ms: u32, start: f64) -> (f64, stampede::capacity::Report) {
    let _one_at_a_time = SERIAL.lock().await;
    let fixture = Fixture::new(&format!(
        r#"
name = "knee"
[target]
api = "builtin"
[target.builtin]
latency = "{latency_ms}ms"
concurrency = {concurrency}
queue = {queue}
[http]
timeout = "2s"
[capacity]
vary = "users"
precision = "5%"
warmup = "1s"
[[users]]
name = "u"
steps = [{{ name = "list", get = "/api/servers" }}]
[[phases]]
name = "p"
duration = "10s"
users = {{ rate = "10/s" }}
[slo]
"http.latency.p95" = "< {}ms"
"http.errors.rate" = "< 1%"
"#,
        latency_ms * 4,
        // Room for scheduling jitter below the knee; past it the queue
        // fills and its wait (2·S) breaks p95 < 4·S soon after.
        queue = concurrency * 2,
    ));
    let (report, exit) = search(Options {
        scenario: fixture.scenario_path(),
        overrides: Default::default(),
        out_dir: fixture.out_dir(),
        vary: None,
        start: Some(start),
        // precision and warm-up from the scenario's [capacity].
        precision: None,
        budget: Some(Duration::from_secs(60)),
        warmup: None,
        step: Some(Duration::from_secs(2)),
        quiet: true,
        command_line: vec![],
    })
    .await
    .expect("the search runs");
    assert_eq!(exit, ExitStatus::Passed, "{report:#?}");
    assert_eq!((report.axis, report.precision), (Axis::Users, 0.05));
    // The files are there.
    let dir = std::fs::read_dir(fixture.out_dir())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(dir.join("capacity.json").is_file() && dir.join("capacity.md").is_file());
    // The curve: one point per step with a latency, the knee marked.
    let page = std::fs::read_to_string(dir.join("capacity.html")).unwrap();
    let with_p95 = report.steps.iter().filter(|s| s.p95.is_some()).count();
    assert!(page.matches("<circle").count() >= with_p95, "{page}");
    let label = |text: &str| page.contains(&format!(">\n{text}\n</text>"));
    assert!(label("capacity") && label("70% (plan to scale)"), "{page}");
    assert!(!page.contains("src=") && !page.contains("url("));
    (report.capacity.expect("a capacity"), report)
}

fn check(found: f64, expected: f64, report: &stampede::capacity::Report) {
    assert!(
        (found - expected).abs() / expected <= 0.10,
        "found {found}/s, expected {expected}/s ± 10 %: {}",
        stampede::capacity::markdown(report)
    );
    // Up geometrically, then bisection, then a passing confirmation.
    let kinds: Vec<&str> = report.steps.iter().map(|s| s.kind).collect();
    assert_eq!(kinds.first(), Some(&"up"));
    assert!(kinds.contains(&"bisect"), "{kinds:?}");
    let last = report.steps.last().unwrap();
    assert_eq!((last.kind, last.pass), ("confirm", true));
    assert_eq!(report.planning, Some(found * 0.7));
    // Every failing step says why.
    assert!(report
        .steps
        .iter()
        .filter(|s| !s.pass)
        .all(|s| !s.failed.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_finds_l_over_s_with_10_workers_of_50ms() {
    // 10 / 50 ms = 200 requests/s. (A long S keeps the timer's ~1 ms of
    // rounding per request small next to it.)
    let (found, report) = find(10, 50, 40.0).await;
    check(found, 200.0, &report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_finds_l_over_s_with_4_workers_of_50ms() {
    // 4 / 50 ms = 80 requests/s.
    let (found, report) = find(4, 50, 20.0).await;
    check(found, 80.0, &report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capacity_varies_the_agent_count() {
    let _one_at_a_time = SERIAL.lock().await;
    // A known limit on the agent axis: at most 300 registrations per step.
    let fixture = Fixture::new(
        r#"
name = "fleet"
[target]
hub = "builtin"
[[agents]]
name = "a"
register = { event = "register", data = { id = "a-{{ agent.id }}" }, ack = true }
[[phases]]
name = "p"
duration = "5s"
agents = { connected = 1000, connect_rate = "max" }
[capacity]
vary = "agents"
start = 100
step = "1s"
warmup = "1s"
[slo]
"hub.registrations.count" = "<= 300"
"hub.errors.rate" = "< 1%"
"#,
    );
    let (report, exit) = search(Options {
        scenario: fixture.scenario_path(),
        overrides: Default::default(),
        out_dir: fixture.out_dir(),
        vary: None,
        start: None,
        precision: None,
        budget: Some(Duration::from_secs(60)),
        warmup: None,
        step: None,
        quiet: true,
        command_line: vec![],
    })
    .await
    .expect("the search runs");
    assert_eq!(exit, ExitStatus::Passed, "{report:#?}");
    assert_eq!(report.axis, Axis::Agents);
    assert_eq!(
        report.capacity,
        Some(300.0),
        "{}",
        stampede::capacity::markdown(&report)
    );
    // Every step carried its agents (registered = load); only the SLO decided.
    for step in &report.steps {
        assert_eq!(step.achieved, step.load, "{step:?}");
        assert_eq!(step.pass, step.load <= 300.0, "{step:?}");
    }
    let loads: Vec<f64> = report.steps.iter().take(3).map(|s| s.load).collect();
    assert_eq!(loads, vec![100.0, 200.0, 400.0]);
}
