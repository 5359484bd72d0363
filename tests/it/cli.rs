//! The binary as a user runs it: exit codes 0 / 1 / 2 / 3 and the messages
//! that go with them.

use assert_cmd::Command;
use predicates::prelude::*;
use std::path::Path;

fn stampede() -> Command {
    let mut cmd = Command::cargo_bin("stampede").unwrap();
    cmd.env_remove("STAMPEDE_LOG")
        .env_remove("GITHUB_STEP_SUMMARY");
    cmd
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const GOOD: &str = r#"
name = "good"
[target]
api = "builtin"
[[users]]
name = "u"
steps = [{ name = "list", get = "/api/servers" }]
[[phases]]
name = "p"
duration = "1s"
users = { rate = "20/s" }
"#;

/// Bounded wait (30 s) until a run writing into `reports` is under way: its
/// hlog holds a first interval. True when it started.
fn wait_until_started(reports: &Path) -> bool {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        let hlog = std::fs::read_dir(reports)
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path().join("metrics.hlog"));
        if hlog.is_some_and(|h| std::fs::metadata(h).is_ok_and(|m| m.len() > 0)) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    false
}

fn with(extra: &str) -> String {
    format!("{GOOD}{extra}")
}

/// Run `validate` on `text`; expect exit 2 and every needle in stderr.
fn bad_input(text: &str, needles: &[&str]) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.toml", text);
    let mut assert = stampede().arg("validate").arg(&path).assert().code(2);
    for needle in needles {
        assert = assert.stderr(predicate::str::contains(*needle));
    }
    assert = assert.stderr(predicate::str::contains("error: error").not());
    // Never a panic.
    assert.stderr(predicate::str::contains("panicked").not());
}

#[test]
fn validate_prints_the_resolved_plan() {
    stampede()
        .args(["validate", "scenarios/black-friday.toml"])
        .assert()
        .success()
        .stdout(predicate::str::contains("peak arrival rate: 400/s"))
        .stdout(predicate::str::contains("expected requests"))
        .stdout(predicate::str::contains("total duration: 2m20s"))
        .stdout(predicate::str::contains("spike"));
}

#[test]
fn set_overrides_any_value() {
    stampede()
        .args([
            "validate",
            "scenarios/black-friday.toml",
            "--set",
            "phases.spike.duration=10s",
            "--set",
            "seed=9",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("seed 9"))
        .stdout(predicate::str::contains("total duration: 1m30s"));
}

#[test]
fn api_override_replaces_the_builtin_target() {
    stampede()
        .args([
            "validate",
            "scenarios/quickstart.toml",
            "--api",
            "http://127.0.0.1:8080",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("api: http://127.0.0.1:8080"));
}

#[test]
fn toml_syntax_error_names_file_line_and_column() {
    bad_input(
        "name = \"x\"\n[target\napi = 1\n",
        &["bad.toml:2:", "error"],
    );
}

#[test]
fn unknown_key_suggests_the_nearest() {
    bad_input(
        &GOOD.replace("duration = \"1s\"", "duraton = \"1s\""),
        &["duraton", "did you mean `duration`?", "bad.toml:"],
    );
}

#[test]
fn negative_or_zero_rate_is_refused() {
    bad_input(&GOOD.replace("20/s", "-5/s"), &["bad.toml:11:"]);
    bad_input(&GOOD.replace("20/s", "0/s"), &["bad.toml:11:"]);
}

#[test]
fn zero_duration_is_refused() {
    bad_input(&GOOD.replace("\"1s\"", "\"0s\""), &["bad.toml:10:"]);
}

#[test]
fn duration_without_unit_is_refused() {
    bad_input(&GOOD.replace("\"1s\"", "\"5\""), &["bad.toml:10:", "unit"]);
}

#[test]
fn slo_on_unknown_metric_is_refused() {
    bad_input(
        &with("[slo]\n\"http.latencyy.p95\" = \"< 200ms\"\n"),
        &["unknown metric", "http.latency"],
    );
}

#[test]
fn slo_on_unknown_step_is_refused() {
    bad_input(
        &with("[slo]\n\"http.latency{step=lst}.p95\" = \"< 200ms\"\n"),
        &["no step is named `lst`", "did you mean `list`?"],
    );
}

#[test]
fn undeclared_host_is_refused() {
    bad_input(
        &GOOD.replace(
            "get = \"/api/servers\"",
            "get = \"http://203.0.113.9/steal\"",
        ),
        &["not declared in [target]", "bad.toml:7:33"],
    );
}

#[test]
fn missing_or_empty_feeder_is_refused() {
    let text = with("[[feeders]]\nname = \"f\"\nfile = \"nope.csv\"\n");
    bad_input(&text, &["nope.csv", "feeder `f`"]);
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "empty.csv", "user,password\n");
    let path = write(
        dir.path(),
        "s.toml",
        &with("[[feeders]]\nname = \"f\"\nfile = \"empty.csv\"\n"),
    );
    stampede()
        .arg("validate")
        .arg(&path)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no data rows"));
}

#[test]
fn missing_scenario_file_is_bad_input() {
    stampede()
        .args(["validate", "no/such/file.toml"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("no/such/file.toml"));
}

#[test]
fn bad_set_is_bad_input() {
    stampede()
        .args(["validate", "scenarios/quickstart.toml", "--set", "noequals"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("key=value"));
}

#[test]
fn unreachable_target_at_start_exits_3_with_the_address() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "s.toml", GOOD);
    stampede()
        .arg("run")
        .arg(&path)
        .args([
            "--api",
            &format!("http://127.0.0.1:{port}"),
            "--quiet",
            "--out",
        ])
        .arg(dir.path().join("reports"))
        .assert()
        .code(3)
        .stderr(predicate::str::contains(format!("127.0.0.1:{port}")))
        .stderr(predicate::str::contains("unreachable"));
}

#[test]
fn slo_pass_exits_0_and_fail_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let pass = write(
        dir.path(),
        "pass.toml",
        &with("[slo]\n\"http.latency.p95\" = \"< 5s\"\n\"http.errors.rate\" = \"< 1%\"\n"),
    );
    stampede()
        .arg("run")
        .arg(&pass)
        .args(["--quiet", "--out"])
        .arg(dir.path().join("reports"))
        .assert()
        .code(0)
        .stdout(predicate::str::contains("results:"));
    let fail = write(
        dir.path(),
        "fail.toml",
        &with("[slo]\n\"http.latency.p95\" = \"< 1us\"\n"),
    );
    stampede()
        .arg("run")
        .arg(&fail)
        .args(["--quiet", "--out"])
        .arg(dir.path().join("reports"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("FAIL"));
    // Both runs left a result directory with a summary.
    let dirs: Vec<_> = std::fs::read_dir(dir.path().join("reports"))
        .unwrap()
        .collect();
    assert_eq!(dirs.len(), 2);
    for d in dirs {
        assert!(d.unwrap().path().join("summary.json").is_file());
    }
}

#[cfg(unix)]
#[test]
fn ctrl_c_drains_writes_results_and_exits_3() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "long.toml", &GOOD.replace("\"1s\"", "\"60s\""));
    let reports = dir.path().join("reports");
    let child = std::process::Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .arg("run")
        .arg(&path)
        .arg("--quiet")
        .arg("--out")
        .arg(&reports)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = wait_until_started(&reports);
    // SAFETY: sending a signal to our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let output = child.wait_with_output().unwrap();
    assert!(started, "the run never started");
    assert_eq!(
        output.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result = std::fs::read_dir(&reports)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(result.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["meta"]["interrupted"], true);
    assert_eq!(summary["meta"]["exit_code"], 3);
    // The reports are written for an interrupted run too, and say so.
    let junit = std::fs::read_to_string(result.join("junit.xml")).unwrap();
    assert!(junit.contains("<error message=\"interrupted"), "{junit}");
    let md = std::fs::read_to_string(result.join("summary.md")).unwrap();
    assert!(
        md.starts_with("### ⚠️ stampede `good`: interrupted"),
        "{md}"
    );
    assert!(result.join("report.html").is_file());
}

#[cfg(unix)]
#[test]
fn a_second_ctrl_c_stops_draining_and_counts_cancelled() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    // Requests take 30 s; the grace period is 60 s: only the second Ctrl-C ends it early.
    let text = GOOD
        .replace(
            "api = \"builtin\"",
            "api = \"builtin\"\n[target.builtin]\nlatency = \"30s\"\n[http]\ntimeout = \"60s\"",
        )
        .replace("\"1s\"", "\"60s\"");
    let path = write(dir.path(), "slow.toml", &text);
    let reports = dir.path().join("reports");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .arg("run")
        .arg(&path)
        .args(["--quiet", "--grace", "60s", "--out"])
        .arg(&reports)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    wait_until_started(&reports);
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 && !line.contains("interrupted") {
        line.clear();
    }
    assert!(line.contains("Ctrl-C again"), "{line}");
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(40),
        "did not wait for the 60 s grace"
    );
    let result = std::fs::read_dir(&reports)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(result.join("summary.json")).unwrap())
            .unwrap();
    let cancelled: u64 = summary["counters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["kind"] == "cancelled")
        .map(|c| c["total"].as_u64().unwrap())
        .sum();
    assert!(
        cancelled >= 5,
        "in-flight requests counted as cancelled: {cancelled}"
    );
}

#[test]
fn progress_without_a_terminal_is_plain_lines() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "lines.toml",
        &with("[slo]\n\"http.errors.rate\" = \"< 1%\"\n")
            .replace("duration = \"1s\"", "duration = \"6s\""),
    );
    let output = stampede()
        .arg("run")
        .arg(&scenario)
        .args(["--out"])
        .arg(dir.path().join("reports"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let stderr = String::from_utf8(output.stderr).unwrap();
    // A progress line at 5 s, as plain text: no escape sequences, no carriage returns.
    assert!(stderr.contains("[    5s / 6s]"), "{stderr}");
    assert!(stderr.contains("req/s · p95(5s)"), "{stderr}");
    assert!(
        !stderr.chars().any(|c| c.is_control() && c != '\n'),
        "control characters in: {stderr:?}"
    );
}

/// Run GOOD for 2 s at 50/s against a built-in target with `latency`; the
/// result directory.
fn run_with_latency(dir: &Path, name: &str, latency: &str) -> std::path::PathBuf {
    let scenario = write(
        dir,
        &format!("{name}.toml"),
        &format!(
            "{}[target.builtin]\nlatency = \"{latency}\"\n",
            GOOD.replace("duration = \"1s\"", "duration = \"2s\"")
                .replace("rate = \"20/s\"", "rate = \"50/s\"")
        ),
    );
    let out = dir.join(name);
    stampede()
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "--out"])
        .arg(&out)
        .assert()
        .code(0);
    std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
}

#[test]
fn compare_flags_a_slower_build_and_passes_the_same_one() {
    let dir = tempfile::tempdir().unwrap();
    let fast = run_with_latency(dir.path(), "fast", "2ms");
    let fast_again = run_with_latency(dir.path(), "fast-again", "2ms");
    let slow = run_with_latency(dir.path(), "slow", "20ms");
    // 2 ms → 20 ms: a p50 / p95 / p99 regression; exit 1; Markdown for a CI comment.
    let md = dir.path().join("comment.md");
    stampede()
        .args(["compare", "--format", "markdown", "--output"])
        .arg(&md)
        .arg(&fast)
        .arg(slow.join("summary.json"))
        .assert()
        .code(1)
        .stdout(predicate::str::contains("**REGRESSION**"));
    let comment = std::fs::read_to_string(&md).unwrap();
    assert!(
        comment.contains("| http.latency u/list | p95 |"),
        "{comment}"
    );
    // The scenarios differ (their latency knob): said, not hidden.
    assert!(comment.contains("different scenarios"), "{comment}");
    // The same build twice (generous tolerances: two 2-second runs on a
    // shared machine): no regression, exit 0; JSON for tools.
    let output = stampede()
        .args(["compare", "--format", "json", "--max-regression"])
        .arg("p50=100%,p95=200%,p99=400%,throughput=30%")
        .arg(&fast)
        .arg(&fast_again)
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(json["regressions"], 0);
    assert!(json["rows"].as_array().unwrap().len() >= 5);
    // Bad input names the file.
    stampede()
        .arg("compare")
        .arg(dir.path().join("nope"))
        .arg(&fast)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope"));
    stampede()
        .args(["compare", "--max-regression", "p95=lots"])
        .arg(&fast)
        .arg(&fast)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("--max-regression"));
}

#[test]
fn the_ci_examples_use_flags_stampede_has() {
    // ci/ is documentation that runs elsewhere: keep its command lines true.
    let run_help =
        String::from_utf8(stampede().args(["run", "--help"]).output().unwrap().stdout).unwrap();
    let target_help = String::from_utf8(
        stampede()
            .args(["target", "--help"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    for file in [
        "ci/github/performance-gate.yml",
        "ci/gitlab/stampede-gate.gitlab-ci.yml",
    ] {
        let text =
            std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file)).unwrap();
        // The gate's own lines, and the `--baseline` the scripts splice in.
        for line in text.lines().filter(|l| {
            l.contains("stampede run") || l.contains("stampede target") || l.contains("baseline=(")
        }) {
            let help = if line.contains("stampede target") {
                &target_help
            } else {
                &run_help
            };
            let continued = text[text.find(line).unwrap()..]
                .lines()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ");
            for flag in continued
                .split(|c: char| c.is_whitespace() || c == '(')
                .filter(|w| w.starts_with("--"))
            {
                let flag = flag.trim_matches(|c: char| !(c.is_alphanumeric() || c == '-'));
                assert!(
                    help.contains(flag),
                    "{file}: `{flag}` is not a flag of: {line}"
                );
            }
        }
        assert!(
            text.contains("junit.xml") && text.contains("report.html") || text.contains("reports/")
        );
    }
}

#[test]
fn run_with_a_baseline_fails_on_a_regression_and_says_so_in_its_results() {
    let dir = tempfile::tempdir().unwrap();
    let fast = run_with_latency(dir.path(), "base", "2ms");
    let scenario = write(
        dir.path(),
        "slow.toml",
        &format!(
            "{}[target.builtin]\nlatency = \"25ms\"\n[compare]\np95 = \"20%\"\n",
            GOOD.replace("duration = \"1s\"", "duration = \"2s\"")
                .replace("rate = \"20/s\"", "rate = \"50/s\"")
        ),
    );
    let out = dir.path().join("slow-out");
    stampede()
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "--out"])
        .arg(&out)
        .arg("--baseline")
        .arg(&fast)
        .assert()
        .code(1)
        .stdout(predicate::str::contains(
            "baseline: http.latency u/list p95",
        ))
        .stdout(predicate::str::contains("<= +20% vs baseline"))
        .stdout(predicate::str::contains("different scenarios"));
    let result = std::fs::read_dir(&out)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(result.join("summary.json")).unwrap()).unwrap();
    let keys: Vec<&str> = summary["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["slo"]["key"].as_str().unwrap())
        .collect();
    assert!(keys.contains(&"baseline: no regression"), "{keys:?}");
    assert!(result.join("comparison.md").is_file() && result.join("comparison.json").is_file());
    // A baseline that is not there: bad input, before the run.
    stampede()
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "--baseline"])
        .arg(dir.path().join("missing.json"))
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing.json"));
    // --max-regression is checked like [compare].
    stampede()
        .arg("run")
        .arg(&scenario)
        .args(["--quiet", "--max-regression", "p97=1%", "--baseline"])
        .arg(&fast)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown stat `p97`"));
}
