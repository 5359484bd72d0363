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

/// `stampede run SCENARIO --out REPORTS EXTRA…` as a child process, stdout
/// and stderr piped.
#[cfg(unix)]
fn spawn_run(scenario: &Path, reports: &Path, extra: &[&str]) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .env_remove("STAMPEDE_LOG")
        .env_remove("GITHUB_STEP_SUMMARY")
        .arg("run")
        .arg(scenario)
        .args(extra)
        .arg("--out")
        .arg(reports)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Sends `signal` to our child.
#[cfg(unix)]
fn signal(child: &std::process::Child, signal: libc::c_int) {
    // SAFETY: kill(2) on the pid of a child we have not reaped yet.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill: {}", std::io::Error::last_os_error());
}

/// Waits (polling, at most 60 s) until the run writing into `reports` has
/// logged a first interval in its metrics.hlog: the aggregator's first tick,
/// a second into the run, long after the run installed its Ctrl-C / SIGTERM
/// handlers (before the engine starts). Panics, killing the child, if the
/// run exits or does not get there.
#[cfg(unix)]
fn wait_for_first_interval(reports: &Path, child: &mut std::process::Child) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let logged = std::fs::read_dir(reports)
            .ok()
            .and_then(|mut d| d.next())
            .and_then(|e| std::fs::read_to_string(e.unwrap().path().join("metrics.hlog")).ok())
            .is_some_and(|hlog| hlog.lines().any(|l| l.starts_with("Tag=")));
        if logged {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr);
            panic!("the run exited ({status}) before logging an interval: {stderr}");
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!(
                "no interval in metrics.hlog under {} within 60 s",
                reports.display()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// The one result directory under `reports`.
fn only_result(reports: &Path) -> std::path::PathBuf {
    let dirs: Vec<_> = std::fs::read_dir(reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().unwrap()
}

/// Samples per tag of an interval log, decoded here line by line: every
/// line is a `#` comment, the legend or a complete interval line, and the
/// file ends with a line break (a log cut short ends mid-line).
fn hlog_counts(path: &Path) -> std::collections::BTreeMap<String, u64> {
    use base64::Engine as _;
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.ends_with('\n'), "{} ends mid-line", path.display());
    let mut counts = std::collections::BTreeMap::new();
    let mut decoder = hdrhistogram::serialization::Deserializer::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.starts_with("\"StartTimestamp\"") {
            continue;
        }
        let fields: Vec<&str> = line.split(',').collect();
        let [tag, start, length, max, encoded] = fields[..] else {
            panic!("{}:{}: not an interval line: {line}", path.display(), i + 1);
        };
        for number in [start, length, max] {
            assert!(number.parse::<f64>().is_ok(), "line {}: {line}", i + 1);
        }
        let tag = tag
            .strip_prefix("Tag=")
            .unwrap_or_else(|| panic!("line {}: no tag: {line}", i + 1));
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        let h: hdrhistogram::Histogram<u64> = decoder
            .deserialize(&mut bytes.as_slice())
            .unwrap_or_else(|e| panic!("line {}: {e:?}", i + 1));
        *counts.entry(tag.to_string()).or_default() += h.len();
    }
    counts
}

/// An interrupted run's result directory is complete: summary.json says
/// interrupted / exit 3; junit.xml is XML with the `run` error; summary.md
/// and report.html are whole; metrics.hlog decodes to exactly the samples
/// summary.json counts, per series; `stampede report` rebuilds the same
/// reports without a warning; no temporary file is left.
fn assert_complete_interrupted_results(result: &Path) {
    use stampede::report::json;
    let summary = json::read(&result.join("summary.json")).unwrap();
    assert!(summary.meta.interrupted);
    assert_eq!(summary.meta.exit_code, 3);
    let junit = std::fs::read_to_string(result.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&junit).expect("junit.xml is XML");
    let error = doc
        .descendants()
        .find(|n| n.has_tag_name("error"))
        .unwrap_or_else(|| panic!("no <error> in {junit}"));
    assert!(
        error
            .attribute("message")
            .unwrap()
            .starts_with("interrupted"),
        "{junit}"
    );
    let md = std::fs::read_to_string(result.join("summary.md")).unwrap();
    assert!(
        md.starts_with("### ⚠️ stampede `good`: interrupted"),
        "{md}"
    );
    let html = std::fs::read_to_string(result.join("report.html")).unwrap();
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"),
        "report.html is not a whole document"
    );
    // Every sample of the run is in the log.
    let mut expected = std::collections::BTreeMap::new();
    for h in summary.histograms.iter().filter(|h| h.phase.is_none()) {
        let tag = stampede::metrics::hlog_tag(&summary.layout.hists[h.id as usize]);
        *expected.entry(tag).or_insert(0u64) += h.count;
    }
    assert!(
        expected["http.latency|u|list"] > 0,
        "nothing recorded: {expected:?}"
    );
    assert_eq!(hlog_counts(&result.join("metrics.hlog")), expected);
    // The reports rebuilt from the results are the run's own: they were whole.
    let reports: Vec<(&str, Vec<u8>)> = ["report.html", "junit.xml", "summary.md"]
        .into_iter()
        .map(|f| (f, std::fs::read(result.join(f)).unwrap()))
        .collect();
    stampede()
        .arg("report")
        .arg(result)
        .assert()
        .code(0)
        .stderr(predicate::str::is_empty());
    for (file, before) in reports {
        assert_eq!(std::fs::read(result.join(file)).unwrap(), before, "{file}");
    }
    assert_eq!(
        crate::common::file_names(result),
        [
            "junit.xml",
            "metrics.hlog",
            "report.html",
            "summary.json",
            "summary.md"
        ]
    );
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

/// The stdout of a successful `stampede ARGS`, as lines without trailing
/// spaces.
fn stdout_lines(args: &[&str]) -> Vec<String> {
    let output = stampede().args(args).output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim_end().to_string())
        .collect()
}

/// `line` is one of `lines`, whole.
fn has_line(lines: &[String], line: &str) {
    assert!(
        lines.iter().any(|l| l == line),
        "no line {line:?} in:\n{}",
        lines.join("\n")
    );
}

/// A row of the plan table, compared cell by cell (the columns are padded).
fn has_row(lines: &[String], cells: &[&str]) {
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == cells),
        "no row {cells:?} in:\n{}",
        lines.join("\n")
    );
}

#[test]
fn validate_prints_the_resolved_plan() {
    // scenarios/black-friday.toml: four steps per journey (login, browse,
    // checkout, order-status, which polls: counted once); arrivals per
    // phase = the rate's integral:
    //   normal     30 s × 40/s            =  1200 journeys,  4800 requests
    //   ramp       20 s × (40 + 400)/2 /s =  4400 journeys, 17600 requests
    //   spike      60 s × 400/s           = 24000 journeys, 96000 requests
    //   cool-down  30 s × (400 + 40)/2 /s =  6600 journeys, 26400 requests
    //   total                               36200 journeys, 144800 requests
    let out = stdout_lines(&["validate", "scenarios/black-friday.toml"]);
    has_line(&out, "scenario `black-friday` is valid (seed 7)");
    has_row(
        &out,
        &["normal", "0s", "30s", "rate", "40/s", "1200", "4800"],
    );
    has_row(
        &out,
        &[
            "ramp", "30s", "20s", "rate", "40/s", "->", "400/s", "4400", "17600",
        ],
    );
    has_row(
        &out,
        &["spike", "50s", "1m", "rate", "400/s", "24000", "96000"],
    );
    has_row(
        &out,
        &[
            "cool-down",
            "1m50s",
            "30s",
            "rate",
            "400/s",
            "->",
            "40/s",
            "6600",
            "26400",
        ],
    );
    has_line(&out, "total duration: 2m20s");
    has_line(
        &out,
        "peak arrival rate: 400/s (1600 requests/s at 4.00 requests per journey)",
    );
    has_line(
        &out,
        "expected requests (open-model phases): 144800 from 36200 journeys",
    );
    has_line(
        &out,
        "polling steps (order-status) count one request each here; they send one per poll",
    );
}

#[test]
fn set_overrides_any_value() {
    let out = stdout_lines(&[
        "validate",
        "scenarios/black-friday.toml",
        "--set",
        "phases.spike.duration=10s",
        "--set",
        "seed=9",
    ]);
    has_line(&out, "scenario `black-friday` is valid (seed 9)");
    // The spike is 10 s instead of 60 s: 2m20s - 50s, 4000 journeys.
    has_row(
        &out,
        &["spike", "50s", "10s", "rate", "400/s", "4000", "16000"],
    );
    has_line(&out, "total duration: 1m30s");
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
fn generator_health_is_one_of_three_modes() {
    bad_input(
        &with("[slo]\ngenerator_health = \"fial\"\n"),
        &[
            "generator_health is one of warn, error, fail, not `fial`",
            "did you mean `fail`?",
            "bad.toml:",
        ],
    );
    bad_input(
        &with("[slo]\ngenerator_health = true\n"),
        &["generator_health is a string", "bad.toml:"],
    );
}

#[test]
fn polling_keys_are_checked_where_they_are_written() {
    let step = |keys: &str| {
        GOOD.replace(
            "get = \"/api/servers\"",
            &format!("get = \"/api/servers\", {keys}"),
        )
    };
    bad_input(
        &step("every = \"1s\""),
        &[
            "only apply to a step that polls",
            "until = {",
            "bad.toml:7:",
        ],
    );
    bad_input(
        &step("until = { jsn = { \"$.status\" = \"done\" } }"),
        &["jsn", "bad.toml:7:"],
    );
    bad_input(
        &step("until = { json = { \"status\" = \"done\" } }"),
        &[
            "step `list`: until: check `json`: invalid JSON path",
            "bad.toml:7:",
        ],
    );
    bad_input(
        &step("until = { status = 200 }, within = \"0s\""),
        &["bad.toml:7:"],
    );
    let dir = tempfile::tempdir().unwrap();
    let good =
        step("until = { json = { \"$.total\" = 1000 } }, every = \"250ms\", within = \"5s\"");
    let path = write(dir.path(), "good.toml", &good);
    stampede().arg("validate").arg(&path).assert().success();
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

/// `--quiet` (README: "for CI: nothing is printed unless an SLO fails"):
/// when every SLO holds, no progress and no tables, only the line naming the
/// result directory; when one fails, the tables are printed (as without
/// `--quiet`), still without progress.
#[test]
fn quiet_leaves_the_tables_out_unless_an_slo_fails() {
    let dir = tempfile::tempdir().unwrap();
    let reports = dir.path().join("reports");
    let run = |name: &str, slo: &str, quiet: bool| -> (i32, String, String) {
        let path = write(dir.path(), &format!("{name}.toml"), &with(slo));
        let mut cmd = stampede();
        cmd.arg("run").arg(&path).arg("--out").arg(&reports);
        if quiet {
            cmd.arg("--quiet");
        }
        let output = cmd.output().unwrap();
        (
            output.status.code().unwrap(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };
    let results_line = |stdout: &str| -> String {
        let dir = stdout
            .lines()
            .find_map(|l| l.strip_prefix("results: "))
            .unwrap_or_else(|| panic!("no results line: {stdout}"));
        assert!(Path::new(dir).join("summary.json").is_file(), "{dir}");
        format!("results: {dir}\n")
    };
    // The tables: per-step latency and the SLOs.
    let step_table = "latency (from intended start) over ";
    let step_header =
        regex::Regex::new(r"(?m)^\s*step\s+requests\s+rate\s+p50\s+p95\s+p99\s+max\s+errors$")
            .unwrap();
    let slo_header =
        regex::Regex::new(r"(?m)^SLOs:\n\s*slo\s+target\s+measured\s+verdict$").unwrap();
    let pass = "[slo]\n\"http.errors.rate\" = \"< 1%\"\n";
    let fail = "[slo]\n\"http.latency.p95\" = \"< 1us\"\n";

    // Without --quiet the tables are there (so their absence below is --quiet's doing).
    let (code, stdout, stderr) = run("loud", pass, false);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains(step_table), "{stdout}");
    assert!(
        step_header.is_match(&stdout) && slo_header.is_match(&stdout),
        "{stdout}"
    );
    assert!(stderr.starts_with("stampede: running `good`"), "{stderr}");

    // --quiet, every SLO held: the results line alone, nothing on stderr.
    let (code, stdout, stderr) = run("quiet-pass", pass, true);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, results_line(&stdout));
    assert_eq!(stderr, "");

    // --quiet, an SLO failed: the tables, the failed verdict, no progress.
    let (code, stdout, stderr) = run("quiet-fail", fail, true);
    assert_eq!(code, 1, "{stderr}");
    assert!(stdout.starts_with(&format!("\n{step_table}")), "{stdout}");
    assert!(
        step_header.is_match(&stdout) && slo_header.is_match(&stdout),
        "{stdout}"
    );
    let verdict = regex::Regex::new(r"(?m)^\s*http\.latency\.p95\s+< 1us\s+\S+\s+FAIL$").unwrap();
    assert!(verdict.is_match(&stdout), "{stdout}");
    assert!(stdout.ends_with(&results_line(&stdout)), "{stdout}");
    assert_eq!(stderr, "");
}

/// `stampede target` refuses a non-loopback listen address (exit 2, the
/// reason and the way out), before binding it: port P is held here on
/// 127.0.0.1, so a bind of 0.0.0.0:P would fail with "address in use", and
/// 192.0.2.1 (TEST-NET-1) is on no interface, so its bind would fail with
/// "cannot assign". No traffic goes anywhere.
#[test]
fn target_refuses_a_non_loopback_address_before_binding() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    for listen in [
        format!("0.0.0.0:{port}"),
        format!("192.0.2.1:{port}"),
        format!("[::]:{port}"),
    ] {
        let output = stampede()
            .args(["target", "--listen", &listen])
            .timeout(std::time::Duration::from_secs(30))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{listen}: {stderr}");
        assert!(
            stderr.starts_with(&format!(
                "error: refusing to listen on {listen}: it is not a loopback address"
            )),
            "{listen}: {stderr}"
        );
        assert!(stderr.contains("--allow-non-loopback"), "{stderr}");
        assert!(output.stdout.is_empty(), "{listen}: it started");
    }
    // With --allow-non-loopback the check is skipped and the bind itself
    // fails (192.0.2.1 is not this machine's): the refusal above was the
    // check, not a failed bind.
    let output = stampede()
        .args(["target", "--allow-non-loopback", "--listen"])
        .arg(format!("192.0.2.1:{port}"))
        .timeout(std::time::Duration::from_secs(30))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: cannot listen on 192.0.2.1:{port}: ")),
        "{stderr}"
    );
    drop(held);
}

/// Interrupt a 60 s run with `sig` once it is under way: it drains, writes
/// complete results and exits 3.
#[cfg(unix)]
fn interrupted_run_writes_complete_results(sig: libc::c_int) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "long.toml", &GOOD.replace("\"1s\"", "\"60s\""));
    let reports = dir.path().join("reports");
    let mut child = spawn_run(&path, &reports, &["--quiet"]);
    wait_for_first_interval(&reports, &mut child);
    signal(&child, sig);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.starts_with("stampede: interrupted; draining in-flight work for up to 5s"),
        "{stderr}"
    );
    assert_complete_interrupted_results(&only_result(&reports));
}

#[cfg(unix)]
#[test]
fn ctrl_c_drains_writes_complete_results_and_exits_3() {
    interrupted_run_writes_complete_results(libc::SIGINT);
}

#[cfg(unix)]
#[test]
fn sigterm_drains_writes_complete_results_and_exits_3() {
    interrupted_run_writes_complete_results(libc::SIGTERM);
}

/// Ctrl-C stops a step that is polling: jobs of an hour, polled every
/// 100 ms within 10 minutes, and a grace period of 5 s. The waits end at
/// the interruption (inside the grace period, so nothing is counted
/// `cancelled`), none is recorded and none fails as `wait_timeout`.
#[cfg(unix)]
#[test]
fn ctrl_c_stops_polling_steps() {
    let dir = tempfile::tempdir().unwrap();
    let text = r#"
name = "polling"
[target]
api = "builtin"
[target.builtin]
job_workers = 1
job_duration = "1h"
[[users]]
name = "u"
steps = [
  { name = "login", post = "/api/login", json = { user = "u" }, extract = { token = "$.token" } },
  { name = "submit", post = "/api/jobs", headers = { Authorization = "Bearer {{ token }}" }, extract = { job = "$.id" } },
  { name = "status", get = "/api/jobs/{{ job }}", until = { json = { "$.status" = "done" } }, every = "100ms", within = "10m" },
]
[[phases]]
name = "p"
duration = "1h"
users = { rate = "5/s" }
"#;
    let path = write(dir.path(), "polling.toml", text);
    let reports = dir.path().join("reports");
    let mut child = spawn_run(&path, &reports, &["--quiet", "--grace", "5s"]);
    wait_for_first_interval(&reports, &mut child);
    signal(&child, libc::SIGINT);
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let summary = crate::common::summary_value(&only_result(&reports));
    let polls = summary["counters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["metric"] == "http.requests" && c["step"] == "status")
        .map(|c| c["total"].as_u64().unwrap())
        .sum::<u64>();
    assert!(polls > 0, "it was polling");
    assert_eq!(crate::common::counter_total(&summary, "http.errors"), 0);
    let notes = summary["meta"]["notes"].as_array().unwrap();
    assert!(
        !notes
            .iter()
            .any(|n| n.as_str().unwrap().contains("cancelled")),
        "every wait ended within the grace period: {notes:?}"
    );
    let waits = summary["histograms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["metric"] == "http.wait" && h["phase"].is_null())
        .map(|h| h["count"].as_u64().unwrap())
        .sum::<u64>();
    assert_eq!(waits, 0);
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
    let mut child = spawn_run(&path, &reports, &["--quiet", "--grace", "60s"]);
    let started = std::time::Instant::now();
    wait_for_first_interval(&reports, &mut child);
    signal(&child, libc::SIGINT);
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 && !line.contains("interrupted") {
        line.clear();
    }
    assert!(line.contains("Ctrl-C again"), "{line}");
    signal(&child, libc::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(40),
        "did not wait for the 60 s grace"
    );
    let summary =
        stampede::report::json::read(&only_result(&reports).join("summary.json")).unwrap();
    let total = |metric: &str, kind: Option<&str>| -> u64 {
        summary
            .counters
            .iter()
            .filter(|c| c.metric == metric && c.kind.as_deref() == kind)
            .map(|c| c.total)
            .sum()
    };
    // No request can finish in 30 s: every one sent was still in flight and
    // is counted cancelled; an arrival made just before the first Ctrl-C
    // that no VU had taken yet is counted dropped. Every arrival (one
    // `generator.lag` sample each, one step each) is one or the other.
    let cancelled = total("http.errors", Some("cancelled"));
    let dropped = total("http.errors", Some("dropped"));
    let requests = total("http.requests", None);
    let errors: u64 = summary
        .counters
        .iter()
        .filter(|c| c.metric == "http.errors")
        .map(|c| c.total)
        .sum();
    assert_eq!(errors, requests, "none completed");
    assert_eq!(cancelled + dropped, requests);
    // A dropped one can only be the last arrival or two (a new VU not yet
    // started when the run was stopped), never a request that was sent.
    assert!(dropped <= 2, "{dropped} dropped");
    let journeys: u64 = summary
        .histograms
        .iter()
        .filter(|h| {
            h.phase.is_none() && summary.layout.hists[h.id as usize].metric == "generator.lag"
        })
        .map(|h| h.count)
        .sum();
    assert_eq!(requests, journeys, "every arrival accounted for");
    // Interrupted after the first interval (≥ 1 s in) at 20/s: about 20
    // arrivals, how many exactly depends on the wall clock (and a loaded
    // machine makes the last ones late): at least half of them.
    assert!(cancelled >= 10, "{cancelled} cancelled");
    let note = format!(
        "{cancelled} journeys were still in flight after the grace period and were cancelled (counted as `cancelled`)"
    );
    assert!(
        summary.meta.notes.contains(&note),
        "{:?}",
        summary.meta.notes
    );
}

/// Without a terminal, progress is a plain line every 5 s on stderr. The
/// run is 60 s long and is interrupted once the first progress line has
/// arrived (waited for, up to 60 s): nothing depends on when that is.
#[cfg(unix)]
#[test]
fn progress_without_a_terminal_is_plain_lines() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let scenario = write(
        dir.path(),
        "lines.toml",
        &with("[slo]\n\"http.errors.rate\" = \"< 1%\"\n")
            .replace("duration = \"1s\"", "duration = \"60s\""),
    );
    let reports = dir.path().join("reports");
    let mut child = spawn_run(&scenario, &reports, &[]);
    // Raw lines (`lines()` would hide a carriage return), as they come.
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let reader = std::thread::spawn(move || loop {
        let mut line = Vec::new();
        if stderr.read_until(b'\n', &mut line).unwrap() == 0 || tx.send(line).is_err() {
            break;
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen: Vec<String> = Vec::new();
    while !seen.last().is_some_and(|l| l.starts_with('[')) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => seen.push(String::from_utf8(line).unwrap()),
            Err(_) => {
                let _ = child.kill();
                panic!("no progress line within 60 s: {seen:?}");
            }
        }
    }
    signal(&child, libc::SIGINT);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    let after: Vec<String> = rx
        .try_iter()
        .map(|l| String::from_utf8(l).unwrap())
        .collect();
    assert_eq!(status.code(), Some(3), "{seen:?} {after:?}");
    let result = only_result(&reports);
    let start = regex::Regex::new(&format!(
        r"^stampede: running `good` for 1m against api http://127\.0\.0\.1:\d+ → {}\n$",
        regex::escape(&result.display().to_string())
    ))
    .unwrap();
    assert!(start.is_match(&seen[0]), "{seen:?}");
    // The first progress line: at a multiple of 5 s (5 s unless the machine
    // stalled past a tick), phase `p`, nothing failed. A loaded machine may
    // have arrivals waiting for a VU at that instant: then the line says
    // how many are queued.
    let progress = regex::Regex::new(
        r"^\[ *(\d+)s / 1m\] p · \d+ req/s · p95\(5s\) \d+(\.\d)?(µs|ms|s) · 0 err/s · \d+ in flight( · \d+ queued)?\n$",
    )
    .unwrap();
    assert_eq!(seen.len(), 2, "one line before the progress line: {seen:?}");
    let line = &seen[1];
    let at: u64 = progress
        .captures(line)
        .unwrap_or_else(|| panic!("not a progress line: {line:?}"))[1]
        .parse()
        .unwrap();
    assert!(
        at > 0 && at.is_multiple_of(5),
        "progress at {at} s: {line:?}"
    );
    // Plain text all along: no escape sequences, no carriage returns.
    let all = seen.concat() + &after.concat();
    assert!(
        !all.chars().any(|c| c.is_control() && c != '\n'),
        "control characters in: {all:?}"
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
        // Each gate publishes the run's junit.xml and summary.md, and keeps
        // report.html: by name, or with the whole reports/ directory.
        for published in ["reports/*/junit.xml", "reports/*/summary.md"] {
            assert!(text.contains(published), "{file}: no {published}");
        }
        assert!(
            text.contains("reports/*/report.html")
                || text.lines().any(|l| l.trim() == "- reports/"),
            "{file}: report.html is not kept"
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
