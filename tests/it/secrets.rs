//! No secret in a result: a run of the real binary that uses secrets the
//! way a user would (an `env.` value in a header and in a login payload, a
//! token from POST /api/login extracted and sent as `Authorization: Bearer`,
//! a Cookie header, a check that fails on the token, an HTTP action whose
//! answer is a token, an exec action that prints an `env.` value, Socket.IO
//! agents with a token in their CONNECT and register payloads), then
//! `stampede compare` of two such runs, a run with `--baseline`, `stampede
//! report` and `stampede validate`: every file of every result directory,
//! the comparisons and all console output (with `--log debug`) are read,
//! and none holds a secret.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The secrets, distinctive so that a leak cannot be a coincidence.
const API_KEY: &str = "s3cr3t-apikey-Q7Z9W2";
const PASSWORD: &str = "s3cr3t-passw0rd-K4M8";
const AGENT_TOKEN: &str = "s3cr3t-agent-H5J3";
const COOKIE: &str = "s3cr3t-c00kie-V6B1";
/// The built-in target's tokens are `tok-<user>-<n>`; every user below
/// logs in as `zq…`, so any of its tokens starts with this.
const TOKEN_PREFIX: &str = "tok-zq";

const SCENARIO: &str = r#"
name = "secrets"
description = "A run that uses secrets"
[target]
api = "builtin"
hub = "builtin"
[[users]]
name = "u"
steps = [
  { name = "login", post = "/api/login", headers = { X-Api-Key = "{{ env.STAMPEDE_TEST_API_KEY }}" }, json = { user = "zq-{{ vu.id }}", password = "{{ env.STAMPEDE_TEST_PASSWORD }}" }, extract = { token = "$.token" } },
  { name = "create", post = "/api/servers", headers = { Authorization = "Bearer {{ token }}", Cookie = "session=s3cr3t-c00kie-V6B1" }, json = { name = "s-{{ uuid() }}" }, check = { status = 201 } },
  { name = "relogin", post = "/api/login", json = { user = "zq-again-{{ vu.id }}", password = "{{ env.STAMPEDE_TEST_PASSWORD }}" }, check = { json = { "$.token" = "not-this" } } },
]
[[agents]]
name = "a"
protocol = "socketio"
auth = { token = "{{ env.STAMPEDE_TEST_AGENT_TOKEN }}" }
register = { event = "register", data = { id = "agent-{{ agent.id }}", token = "{{ env.STAMPEDE_TEST_AGENT_TOKEN }}" } }
[[phases]]
name = "p"
duration = "2s"
users = { rate = "20/s" }
agents = { connected = 5, connect_rate = "max" }
actions = [
  { at = "200ms", name = "login", post = "/api/login", headers = { X-Api-Key = "{{ env.STAMPEDE_TEST_API_KEY }}" }, json = { user = "zq-action", password = "{{ env.STAMPEDE_TEST_PASSWORD }}" } },
  { at = "300ms", name = "echo", exec = ["sh", "-c", "echo key=$0 >&2; echo password: $1; exit 3", "{{ env.STAMPEDE_TEST_API_KEY }}", "{{ env.STAMPEDE_TEST_PASSWORD }}"] },
]
"#;

fn stampede() -> Command {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("stampede"));
    cmd.env("STAMPEDE_TEST_API_KEY", API_KEY)
        .env("STAMPEDE_TEST_PASSWORD", PASSWORD)
        .env("STAMPEDE_TEST_AGENT_TOKEN", AGENT_TOKEN)
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("STAMPEDE_LOG");
    cmd
}

/// Every secret found in `text`, named.
fn leaks(text: &str) -> Vec<&'static str> {
    [API_KEY, PASSWORD, AGENT_TOKEN, COOKIE, TOKEN_PREFIX]
        .into_iter()
        .filter(|s| text.contains(s))
        .collect()
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Runs the scenario (with `extra` arguments) into `out`; its console
/// output (stdout + stderr) and its result directory.
fn run(scenario: &Path, out: &Path, extra: &[&str]) -> (String, PathBuf) {
    let output = stampede()
        .args(["--log", "debug", "run", "--allow-exec", "--out"])
        .arg(out)
        .args(extra)
        .arg(scenario)
        .output()
        .unwrap();
    let console = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The failing check makes no SLO fail: 0 (no SLOs) or 1 (a baseline
    // regression) are both a run that was carried out.
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{:?}\n{console}",
        output.status
    );
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    (console, dirs[0].clone())
}

#[test]
fn no_secret_reaches_a_result_file_a_comparison_or_the_console() {
    let tmp = tempfile::tempdir().unwrap();
    let scenario = tmp.path().join("secrets.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let (console_a, a) = run(&scenario, &tmp.path().join("a"), &[]);
    let (console_b, b) = run(
        &scenario,
        &tmp.path().join("b"),
        &["--baseline", a.to_str().unwrap()],
    );

    // The secrets were used: the step sending the token passed, the check
    // on the token failed, the agents registered with theirs, the actions
    // ran and wrote their output.
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(a.join("summary.json")).unwrap()).unwrap();
    let counter = |metric: &str, step: &str, kind: Option<&str>| -> u64 {
        summary["counters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["metric"] == metric && c["step"] == step && c["kind"].as_str() == kind)
            .map(|c| c["total"].as_u64().unwrap())
            .sum()
    };
    let sent = counter("http.requests", "create", None);
    assert!(sent > 0, "no request sent the token");
    let refused: u64 = ["http_4xx", "check"]
        .map(|k| counter("http.errors", "create", Some(k)))
        .iter()
        .sum();
    assert_eq!(refused, 0, "the token was refused");
    let relogins = counter("http.requests", "relogin", None);
    assert!(relogins > 0);
    assert_eq!(counter("http.errors", "relogin", Some("check")), relogins);
    assert_eq!(counter("hub.registrations", "", None), 5);
    let actions = summary["actions"].as_array().expect("actions");
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert_eq!(actions[0]["http_status"], 200, "{actions:?}");
    assert_eq!(actions[1]["exit_status"], 3, "{actions:?}");
    for action in actions {
        let out = action["output"].as_str().expect("an output file");
        assert!(
            !std::fs::read(a.join(out)).unwrap().is_empty(),
            "{out} is empty"
        );
    }

    // A comparison of the two runs, in every format, on stdout and in a file.
    let mut consoles = vec![
        ("run a".to_string(), console_a),
        ("run b".into(), console_b),
    ];
    for format in ["text", "markdown", "json"] {
        let file = tmp.path().join(format!("compare.{format}"));
        let output = stampede()
            .args(["compare", "--format", format, "--output"])
            .arg(&file)
            .arg(&a)
            .arg(&b)
            .output()
            .unwrap();
        consoles.push((
            format!("compare --format {format}"),
            format!(
                "{}{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr),
                std::fs::read_to_string(&file).unwrap_or_default()
            ),
        ));
    }
    // `stampede validate` describes the plan, the actions' argv included.
    let output = stampede().arg("validate").arg(&scenario).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let described = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(described.contains("echo at 300ms"), "{described}");
    consoles.push(("validate".into(), described));
    // `stampede report` writes the reports again, and says what it did.
    let output = stampede().arg("report").arg(&a).output().unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    consoles.push((
        "report".into(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    ));

    let mut found = Vec::new();
    for (what, text) in &consoles {
        for s in leaks(text) {
            found.push(format!("{what}: {s}"));
        }
    }
    let mut read = 0;
    for dir in [&a, &b] {
        for file in files(dir) {
            let bytes = std::fs::read(&file).unwrap();
            read += 1;
            for s in leaks(&String::from_utf8_lossy(&bytes)) {
                found.push(format!("{}: {s}", file.display()));
            }
        }
    }
    // summary.json, metrics.hlog, report.html, junit.xml, summary.md and
    // two action outputs, in each of the two runs.
    assert!(read >= 14, "only {read} result files");
    assert!(found.is_empty(), "secrets leaked:\n{}", found.join("\n"));
}
