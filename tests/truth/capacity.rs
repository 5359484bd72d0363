//! A known capacity: `stampede target --concurrency L --latency S` serves
//! at most L / S requests per second; beyond it requests wait in its deep
//! FIFO queue (100,000 places), and a request whose client gave up keeps
//! its place until served, as in a real server. The target runs as its own
//! process, started once and never restarted, so a failing step's backlog
//! is still there when the next step starts: the search's cool-down has to
//! wait it out (issue 14: without one, 4 × 20 ms answered 165/s).
//!
//! Known answer: L / S. Stated tolerance: 5 %. The search stops when its
//! last pass and first fail are within 5 % of each other, and a step
//! (1 s warm-up, 2 s measured) above L / S fails only once its queue wait
//! passes the SLO, so the answer lies a little below or above L / S; the
//! target's timer (1 ms resolution) lengthens S by under 1 ms, i.e. under
//! 2 % of the 50 ms used here. The answer is compared with L / S within 5 %.
//!
//! A step during which the generator fell behind (its scheduling lag p99
//! above 10 ms in a second: a machine short of CPU) is run again; if it
//! keeps falling behind, the search stops with a lower bound and says so,
//! and this test fails with that table: the truth cannot be measured on a
//! machine that cannot offer the load.

use crate::common::ChildGuard;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const TOLERANCE: f64 = 0.05;

/// `stampede target` on a free loopback port; the guard and its URL.
fn start_target(concurrency: u32, latency_ms: u32) -> (ChildGuard, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .args(["target", "--listen", "127.0.0.1:0", "--queue", "100000"])
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--latency", &format!("{latency_ms}ms")])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start stampede target");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_string();
    (ChildGuard(child), url)
}

/// Run `stampede capacity` against `url` with a p95 SLO; its capacity.json.
fn search(dir: &Path, url: &str, start: f64, slo_ms: u32) -> serde_json::Value {
    let scenario = dir.join("knee.toml");
    std::fs::write(
        &scenario,
        format!(
            r#"
name = "knee"
[target]
api = "{url}"
[http]
timeout = "10s"
[capacity]
vary = "users"
start = {start}
precision = "5%"
warmup = "1s"
step = "2s"
budget = "90s"
cool_down = "20s"
[[users]]
name = "u"
steps = [{{ name = "list", get = "/api/servers?per_page=1" }}]
[[phases]]
name = "p"
duration = "10s"
users = {{ rate = "{start}/s" }}
[slo]
"http.latency.p95" = "< {slo_ms}ms"
"#
        ),
    )
    .unwrap();
    let out = dir.join("reports");
    let run = Command::new(env!("CARGO_BIN_EXE_stampede"))
        .arg("capacity")
        .arg(&scenario)
        .arg("--out")
        .arg(&out)
        .output()
        .expect("run stampede capacity");
    let text = String::from_utf8_lossy(&run.stdout);
    let log = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{text}\n{log}");
    let result = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .expect("a result directory")
        .unwrap()
        .path();
    let json = std::fs::read(result.join("capacity.json")).unwrap();
    let report: serde_json::Value = serde_json::from_slice(&json).unwrap();
    // Shown when the test fails (and with --nocapture).
    println!("{text}");
    report
}

/// The search finds L / S against a target that keeps its backlog, and
/// the table shows the cool-downs that waited it out.
fn finds(concurrency: u32, latency_ms: u32, start: f64, slo_ms: u32) {
    let truth = f64::from(concurrency) * 1000.0 / f64::from(latency_ms);
    let (mut target, url) = start_target(concurrency, latency_ms);
    let dir = tempfile::tempdir().unwrap();
    let report = search(dir.path(), &url, start, slo_ms);
    // The same target process served the whole search.
    assert!(target.0.try_wait().unwrap().is_none(), "the target exited");
    let capacity = report["capacity"].as_f64().expect("a capacity");
    let table = serde_json::to_string_pretty(&report["steps"]).unwrap();
    assert!(
        (capacity - truth).abs() <= TOLERANCE * truth,
        "capacity {capacity}/s, truth {truth}/s (±{}%): {table}",
        TOLERANCE * 100.0
    );
    let steps = report["steps"].as_array().unwrap();
    // Some step failed (the search went past the knee), and every step
    // after a failing one had a cool-down that found the target quiet
    // within the maximum (a passing step that ended loaded may have one
    // too; the first step never does).
    assert!(steps.iter().any(|s| s["pass"] == false), "{table}");
    assert!(steps[0]["cool_down"].is_null(), "{table}");
    let mut cooled = 0;
    for pair in steps.windows(2) {
        if pair[0]["pass"] == false {
            let c = &pair[1]["cool_down"];
            assert!(c["probes"].as_u64().unwrap_or(0) >= 1, "{table}");
            assert_eq!(c["quiet"], true, "{table}");
            cooled += 1;
        }
    }
    assert!(cooled >= 1, "{table}");
}

/// 10 slots × 50 ms = 200/s (the issue's 200/s, with a service time long
/// enough that the timer's 1 ms rounding stays under 2 %), p95 < 150 ms.
#[test]
fn capacity_finds_10_slots_of_50ms_against_a_target_that_keeps_its_backlog() {
    let _one = crate::serial();
    finds(10, 50, 50.0, 150);
}

/// 5 slots × 50 ms = 100/s, p95 < 150 ms.
#[test]
fn capacity_finds_5_slots_of_50ms_against_a_target_that_keeps_its_backlog() {
    let _one = crate::serial();
    finds(5, 50, 25.0, 150);
}
