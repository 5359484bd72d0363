//! Fault actions: real commands (`sh`, `sleep`) and real HTTP requests to
//! the built-in target, run by the engine at their offsets; recorded in
//! summary.json, their output in the result directory, failures counted
//! under `actions.errors` without stopping the run (unless `fail =
//! "abort"`), and `exec` refused without `--allow-exec`.

use crate::common::{count, Fixture};
use serde_json::Value;
use stampede::error::ExitStatus;
use stampede::plan::Plan;
use stampede::scenario::{self, Overrides};
use std::path::Path;
use std::time::Duration;

/// A scenario of 20 requests a second against the built-in target for
/// `duration`, with `actions` (TOML array body) in its one phase.
fn with_actions(duration: &str, actions: &str) -> String {
    format!(
        r#"
name = "actions"
[target]
api = "builtin"
[[users]]
name = "u"
steps = [{{ name = "list", get = "/api/servers" }}]
[[phases]]
name = "p"
duration = "{duration}"
users = {{ rate = "20/s" }}
actions = [
{actions}
]
"#
    )
}

fn allowed() -> Overrides {
    Overrides {
        allow_exec: true,
        ..Overrides::default()
    }
}

fn summary(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_command_is_recorded_with_its_output_and_the_run_goes_on() {
    let fixture = Fixture::new(&with_actions(
        "2s",
        r#"{ at = "200ms", name = "say-hi", exec = ["sh", "-c", "echo hi; echo oops >&2; exit 3"] },"#,
    ));
    let outcome = fixture.run(allowed()).await;
    // The run went on to its end: every planned request was made.
    assert_eq!(count(&outcome.totals, "http.requests", None), 40);
    assert_eq!(count(&outcome.totals, "actions", None), 1);
    assert_eq!(count(&outcome.totals, "actions.errors", Some("action")), 1);
    assert_eq!(outcome.exit, ExitStatus::Passed, "no SLO judges actions");
    let json = summary(&outcome.result_dir);
    let actions = json["actions"].as_array().expect("actions in summary.json");
    assert_eq!(actions.len(), 1);
    let a = &actions[0];
    assert_eq!(a["name"], "say-hi");
    assert_eq!(a["phase"], "p");
    assert_eq!(a["kind"], "exec");
    assert_eq!(a["exit_status"], 3);
    assert_eq!(a["ok"], false);
    assert_eq!(a["error"], "exit status 3");
    assert_eq!(a["output"], "actions/01-say-hi.out");
    let output = std::fs::read_to_string(outcome.result_dir.join("actions/01-say-hi.out")).unwrap();
    assert!(
        output.contains("hi\n") && output.contains("oops\n"),
        "{output:?}"
    );
    // Not before its time: at least `at` after the run's start.
    let started = chrono::DateTime::parse_from_rfc3339(json["meta"]["started_at"].as_str().unwrap())
        .unwrap()
        .timestamp_micros() as u64;
    let at = a["at_unix_us"].as_u64().unwrap();
    assert!(
        at + 5_000 >= started + 200_000,
        "started {started}, action at {at}"
    );
    // The reader is told, in every report.
    let notes = json["meta"]["notes"].to_string();
    assert!(
        notes.contains("say-hi") && notes.contains("exit status 3"),
        "{notes}"
    );
    let read = |name: &str| std::fs::read_to_string(outcome.result_dir.join(name)).unwrap();
    let md = read("summary.md");
    assert!(
        md.contains("**Fault actions**") && md.contains("`FAILED: exit status 3`"),
        "{md}"
    );
    let html = read("report.html");
    assert!(html.contains("<h3>Fault actions</h3>") && html.contains("say-hi"));
    assert!(html.contains("action say-hi"), "marked on the time charts");
    let junit = read("junit.xml");
    assert!(
        junit.contains("name=\"action say-hi\"") && junit.contains("type=\"action\""),
        "{junit}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_past_its_timeout_is_killed_and_recorded() {
    let fixture = Fixture::new(&with_actions(
        "1s",
        r#"{ at = "0s", name = "hang", exec = ["sleep", "30"], timeout = "300ms" },
           { at = "100ms", name = "fine", exec = ["true"] },"#,
    ));
    let outcome = fixture.run(allowed()).await;
    let json = summary(&outcome.result_dir);
    let actions = json["actions"].as_array().unwrap();
    let hang = actions.iter().find(|a| a["name"] == "hang").unwrap();
    assert_eq!(hang["ok"], false);
    assert!(hang["exit_status"].is_null(), "{hang}");
    assert_eq!(hang["error"], "timed out after 300ms, killed");
    // Killed, not waited for: far less than the 30 s it asked for.
    assert!(hang["duration_us"].as_u64().unwrap() < 10_000_000, "{hang}");
    let fine = actions.iter().find(|a| a["name"] == "fine").unwrap();
    assert_eq!(fine["ok"], true);
    assert_eq!(fine["exit_status"], 0);
    assert_eq!(count(&outcome.totals, "actions", None), 2);
    assert_eq!(count(&outcome.totals, "actions.errors", None), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_action_reaches_the_builtin_target_and_a_failed_abort_action_stops_the_run() {
    // An HTTP action: the built-in target's stats, then an abort on a 404.
    let fixture = Fixture::new(&with_actions(
        "3s",
        r#"{ at = "100ms", name = "stats", get = "/admin/stats" },
           { at = "500ms", name = "missing", post = "/admin/nothing-here", json = { a = 1 }, fail = "abort" },"#,
    ));
    let outcome = fixture.run(Overrides::default()).await;
    assert_eq!(outcome.exit, ExitStatus::NotCarriedOut);
    // Stopped after the abort: not the 60 requests of the whole phase.
    assert!(count(&outcome.totals, "http.requests", None) < 60);
    let json = summary(&outcome.result_dir);
    let actions = json["actions"].as_array().unwrap();
    assert_eq!(actions[0]["name"], "stats");
    assert_eq!(actions[0]["kind"], "http");
    assert_eq!(actions[0]["http_status"], 200);
    assert_eq!(actions[0]["ok"], true);
    let body = std::fs::read_to_string(outcome.result_dir.join("actions/01-stats.out")).unwrap();
    assert!(serde_json::from_str::<Value>(&body).is_ok(), "{body}");
    assert_eq!(actions[1]["http_status"], 404);
    assert_eq!(actions[1]["ok"], false);
    let notes = json["meta"]["notes"].to_string();
    assert!(
        notes.contains("`missing`") && notes.contains("abort"),
        "{notes}"
    );
}

#[test]
fn actions_are_due_at_their_phase_start_plus_at() {
    let fixture = Fixture::new(
        r#"
name = "sched"
[target]
api = "builtin"
[[users]]
name = "u"
steps = [{ get = "/" }]
[[phases]]
name = "a"
duration = "10s"
users = { rate = "1/s" }
actions = [{ at = "7s", get = "/x" }, { at = "2s", name = "early", get = "/y" }]
[[phases]]
name = "b"
duration = "5s"
users = { rate = "1/s" }
actions = [{ at = "1s", name = "in-b", post = "/z" }]
"#,
    );
    let loaded = scenario::load(&fixture.scenario_path(), &Overrides::default()).unwrap();
    let plan = Plan::new(&loaded);
    let due: Vec<(Duration, String)> = stampede::engine::actions::schedule(&loaded.actions, &plan)
        .into_iter()
        .map(|(at, i)| (at, loaded.actions[i].name.clone()))
        .collect();
    assert_eq!(
        due,
        vec![
            (Duration::from_secs(2), "early".to_string()),
            (Duration::from_secs(7), "action-1".to_string()),
            (Duration::from_secs(11), "in-b".to_string()),
        ]
    );
}

#[test]
fn an_action_to_an_undeclared_host_is_a_located_load_error() {
    let fixture = Fixture::new(&with_actions(
        "2s",
        r#"{ at = "1s", name = "elsewhere", post = "http://10.1.2.3:8080/admin/kick" },"#,
    ));
    let err = scenario::load(&fixture.scenario_path(), &Overrides::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("scenario.toml:13:"), "{err}");
    assert!(
        err.contains("host `http://10.1.2.3:8080` is not declared"),
        "{err}"
    );
}

#[test]
fn exec_without_allow_exec_is_refused_before_anything_starts() {
    let fixture = Fixture::new(&with_actions(
        "2s",
        r#"{ at = "1s", name = "kill-hub", exec = ["kill", "-9", "1"] },"#,
    ));
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .arg("run")
        .arg(fixture.scenario_path())
        .arg("--out")
        .arg(fixture.out_dir())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("`kill-hub`")
            && stderr.contains("scenario.toml:13:")
            && stderr.contains("--allow-exec"),
        "{stderr}"
    );
    assert!(!fixture.out_dir().exists(), "nothing was written");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .arg("validate")
        .arg(fixture.scenario_path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("kill-hub at 1s (p + 1s): exec [\"kill\", \"-9\", \"1\"]"),
        "{stdout}"
    );
    assert!(
        stdout.contains("needs --allow-exec") && stdout.contains("`kill-hub`"),
        "{stdout}"
    );
}

#[test]
fn in_a_run_of_three_processes_only_segment_0_runs_the_actions_and_the_merge_keeps_them() {
    let fixture = Fixture::new(&with_actions(
        "2s",
        r#"{ at = "500ms", name = "mark", exec = ["sh", "-c", "echo ran >> \"$MARKER\""] },"#,
    ));
    let marker = fixture.dir.path().join("marker");
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .env("MARKER", &marker)
        .args([
            "run",
            "--quiet",
            "--processes",
            "3",
            "--allow-exec",
            "--out",
        ])
        .arg(fixture.out_dir())
        .arg(fixture.scenario_path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // Ran once, not once per process.
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "ran\n");
    let dirs: Vec<_> = std::fs::read_dir(fixture.out_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    let merged = summary(&dirs[0]);
    let actions = merged["actions"].as_array().expect("merged actions");
    assert_eq!(actions.len(), 1);
    assert_eq!(
        (actions[0]["name"].as_str(), actions[0]["ok"].as_bool()),
        (Some("mark"), Some(true))
    );
    let segment = |i: usize| summary(&dirs[0].join("segments").join(i.to_string()));
    assert_eq!(segment(0)["actions"].as_array().map(Vec::len), Some(1));
    assert!(segment(1).get("actions").is_none() && segment(2).get("actions").is_none());
    assert!(dirs[0].join("segments/0/actions/01-mark.out").exists());
    // The merged list points at it, from the merged directory.
    assert_eq!(actions[0]["output"], "segments/0/actions/01-mark.out");
}

#[test]
fn bad_actions_are_located_load_errors() {
    let cases = [
        (
            r#"{ at = "1s", name = "a", get = "/x" }, { at = "1s", name = "a", get = "/y" },"#,
            "two actions are named `a`",
        ),
        (
            r#"{ at = "1s", exec = ["true"], post = "/x" },"#,
            "exactly one of exec / get / post / put / delete",
        ),
        (
            r#"{ at = "5s", get = "/x" },"#,
            "`at` is past the end of phase `p`",
        ),
        (
            r#"{ at = "1s", exec = ["echo", "{{ vu.id }}"] },"#,
            "may use only `env.NAME`",
        ),
        (r#"{ at = "1s", exec = [] },"#, "exec needs a command"),
        (
            r#"{ at = "1s", get = "/x", retries = 3 },"#,
            "unknown field `retries`",
        ),
    ];
    for (actions, needle) in cases {
        let fixture = Fixture::new(&with_actions("2s", actions));
        let err = scenario::load(&fixture.scenario_path(), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(needle), "{actions}: {err}");
        assert!(err.contains("scenario.toml:13:"), "{actions}: {err}");
    }
}
