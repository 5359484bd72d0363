//! The scenarios shipped in `scenarios/`, as a user runs them: each one
//! validates, and the ones that model a system are played (scaled down
//! with `--set`, against the built-in target) with their counts checked.

use crate::common::{counter_total, summary_value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stampede(args: &[&str]) -> Output {
    Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .current_dir(repo())
        .args(args)
        .output()
        .expect("run stampede")
}

/// The one result directory under `out`.
fn result_dir(out: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("summary.json").exists())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

#[test]
fn every_shipped_scenario_validates() {
    let mut seen = 0;
    for entry in std::fs::read_dir(repo().join("scenarios")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("toml") {
            continue;
        }
        let out = stampede(&["validate", path.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}: {}\n{}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("is valid"), "{}: {text}", path.display());
        seen += 1;
    }
    assert!(seen >= 8, "only {seen} scenarios found");
}

/// agentic-flow.toml at 1/200 of its size (250 sessions, 50 journeys/s),
/// 4 s a phase: every session registers over plain WebSocket, every
/// arrival is made, every swarm update reaches every session.
#[test]
fn agentic_flow_plays_scaled_down() {
    let out_dir = tempfile::tempdir().unwrap();
    let out = stampede(&[
        "run",
        "scenarios/agentic-flow.toml",
        "--quiet",
        "--out",
        out_dir.path().to_str().unwrap(),
        "--set",
        "phases.connect.duration=4s",
        "--set",
        "phases.peak.duration=4s",
        "--set",
        "phases.connect.agents.connected=250",
        "--set",
        "phases.connect.agents.connect_rate=max",
        "--set",
        "phases.connect.users.rate=50/s",
        "--set",
        "phases.peak.users.rate=50/s",
        "--set",
        "agents.session.heartbeat.every=1s",
    ]);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(1)),
        "{code:?}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary_value(&result_dir(out_dir.path()));
    // 400 journeys (50/s over 8 s), 1 request each for `reader`, 2 for
    // `tool-run`: the weights split them 9:1 by arrival.
    let journeys = 400;
    let requests = counter_total(&s, "http.requests");
    assert!(
        (journeys..=2 * journeys).contains(&requests),
        "{requests} requests from {journeys} journeys"
    );
    assert_eq!(counter_total(&s, "http.errors"), 0);
    assert_eq!(counter_total(&s, "hub.registrations"), 250);
    assert_eq!(counter_total(&s, "hub.errors"), 0);
    assert_eq!(counter_total(&s, "hub.disconnects"), 0);
    // 4 swarm updates (1/s over the peak), each to all 250 sessions.
    let sent = counter_total(&s, "hub.commands");
    assert_eq!(sent, 4);
    assert_eq!(counter_total(&s, "hub.command.received"), sent * 250);
}
