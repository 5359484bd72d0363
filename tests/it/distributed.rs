//! A hub scenario split in three, run as a user runs it: one `stampede
//! target` process, three `stampede run --segment i/3 --start-at T`
//! processes against it, then `stampede merge`. The merged result must
//! show the whole fleet exactly: every agent once, a drop's recovery
//! measured over all three segments' agents, commands sent by one segment
//! received and answered by the agents of all three, with fan-out across
//! them.

use crate::common::{counter_total as counter, summary_value as summary, AGENTS_AND_OPS};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

const AGENTS: u64 = 30;

struct Target(Child);

impl Drop for Target {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `stampede target` in its own process; its address.
fn target() -> (Target, String) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .args(["target", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start stampede target");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    (Target(child), addr)
}

fn scenario(dir: &Path, addr: &str) -> PathBuf {
    let path = dir.join("fleet.toml");
    std::fs::write(
        &path,
        format!(
            r#"
name = "fleet"
seed = 11
[target]
hub = "http://{addr}"
[hub]
timeout = "3s"
recovered = "100%"
{AGENTS_AND_OPS}
[[phases]]
name = "up"
duration = "1500ms"
agents = {{ connected = {AGENTS}, connect_rate = "max" }}
[[phases]]
name = "commands"
duration = "2s"
commanders = {{ rate = "2/s" }}
[[phases]]
name = "wave"
duration = "2500ms"
agents = {{ drop = {{ fraction = 0.3, how = "close", at = "300ms" }} }}
[slo]
"hub.recovery" = "< 2s"
"hub.command.fanout.max" = "< 1s"
"#
        ),
    )
    .unwrap();
    path
}

/// Samples of `metric` over all phases (the `phase: null` entries).
fn samples(s: &Value, metric: &str) -> u64 {
    s["histograms"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["metric"] == metric && h["phase"].is_null())
        .map(|h| h["count"].as_u64().unwrap())
        .sum()
}

#[test]
fn three_segment_processes_and_merge_measure_the_whole_fleet() {
    let tmp = tempfile::tempdir().unwrap();
    let (_target, addr) = target();
    let path = scenario(tmp.path(), &addr);
    let start = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 4;
    let runs: Vec<(Child, PathBuf)> = (0..3)
        .map(|i| {
            let out = tmp.path().join(format!("seg{i}"));
            let child = Command::new(assert_cmd::cargo::cargo_bin("stampede"))
                .arg("run")
                .arg(&path)
                .args(["--segment", &format!("{i}/3"), "--start-at"])
                .arg(start.to_string())
                .arg("--out")
                .arg(&out)
                .arg("--quiet")
                .env_remove("GITHUB_STEP_SUMMARY")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (child, out)
        })
        .collect();
    let mut dirs = Vec::new();
    for (child, out) in runs {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{stderr}");
        let dir = std::fs::read_dir(&out)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        dirs.push(dir);
    }
    let segments: Vec<Value> = dirs.iter().map(|d| summary(d)).collect();

    // Agents: each segment registers its own third (global ids mod 3).
    for (i, s) in segments.iter().enumerate() {
        assert_eq!(s["meta"]["segment"]["index"], i as u64);
        assert_eq!(s["meta"]["segment"]["count"], 3);
        let lost: u64 = s["disruptions"]
            .as_array()
            .map_or(0, |d| d.iter().map(|x| x["lost"].as_u64().unwrap()).sum());
        assert_eq!(
            counter(s, "hub.registrations"),
            AGENTS / 3 + lost,
            "segment {i}: its 10 agents, and again each it lost"
        );
    }
    // The drop's union is round(0.3 × 30) = 9 agents of the whole fleet.
    let lost: u64 = segments
        .iter()
        .flat_map(|s| s["disruptions"].as_array().cloned().unwrap_or_default())
        .map(|d| d["lost"].as_u64().unwrap())
        .sum();
    assert_eq!(lost, 9);

    // Commands: 2/s for 2 s = 4 sends, striped 0,1,2,0 over the segments.
    let sent: Vec<u64> = segments
        .iter()
        .map(|s| counter(s, "hub.commands"))
        .collect();
    assert_eq!(sent, vec![2, 1, 1]);
    // Every command, whoever sent it, reached the 10 agents of every segment.
    let mut ids: Vec<String> = segments
        .iter()
        .flat_map(|s| s["commands"]["sent"].as_array().unwrap().clone())
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, vec!["ops-1", "ops-2", "ops-3", "ops-4"]);
    for s in &segments {
        let received = s["commands"]["received"].as_array().unwrap();
        for id in &ids {
            let r = received
                .iter()
                .find(|r| r["id"] == id.as_str())
                .unwrap_or_else(|| panic!("{id} not received in {}", s["meta"]["segment"]));
            assert_eq!(r["count"], AGENTS / 3, "{id}");
        }
    }

    // The merge.
    let merged_dir = tmp.path().join("merged");
    let output = Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .arg("merge")
        .args(&dirs)
        .arg("--out")
        .arg(&merged_dir)
        .arg("--quiet")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let merged = summary(&merged_dir);
    assert_eq!(
        merged["meta"]["merged"]["sources"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(merged["meta"]["merged"]["missing"], serde_json::json!([]));
    assert_eq!(counter(&merged, "hub.registrations"), AGENTS + 9);
    assert_eq!(counter(&merged, "hub.commands"), 4);
    assert_eq!(counter(&merged, "hub.command.undelivered"), 0);
    // One recovery for the one drop, over the whole fleet's 9 agents.
    assert_eq!(samples(&merged, "hub.recovery"), 1);
    assert_eq!(counter(&merged, "hub.unrecovered"), 0);
    // Fan-out: one per command, send → the last receipt in any segment.
    assert_eq!(samples(&merged, "hub.command.fanout"), 4);
    // Answered: each command's first result reached its sender.
    assert_eq!(samples(&merged, "hub.command.rtt"), 4);
    // Every command's merged fan-out is at least its slowest segment's
    // receipt: the latest receipt of each id across the segments.
    let fanout_max = merged["histograms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["metric"] == "hub.command.fanout" && h["phase"].is_null())
        .unwrap()["max"]
        .as_u64()
        .unwrap();
    let mut widest = 0u64;
    for id in &ids {
        let sent_us = segments
            .iter()
            .flat_map(|s| s["commands"]["sent"].as_array().unwrap().clone())
            .find(|c| c["id"] == id.as_str())
            .unwrap()["sent_unix_us"]
            .as_u64()
            .unwrap();
        let last = segments
            .iter()
            .flat_map(|s| s["commands"]["received"].as_array().unwrap().clone())
            .filter(|r| r["id"] == id.as_str())
            .map(|r| r["last_unix_us"].as_u64().unwrap())
            .max()
            .unwrap();
        widest = widest.max(last - sent_us);
    }
    // The histogram keeps 3 significant digits.
    assert!(
        fanout_max >= widest && fanout_max <= widest + widest / 500 + 1,
        "{fanout_max} vs {widest}"
    );
    let verdicts = merged["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 2);
    assert!(verdicts.iter().all(|v| v["pass"] == true), "{verdicts:?}");
    assert_eq!(merged["meta"]["exit_code"], 0);
    // The segments' "this is a share" note does not carry over.
    let notes = merged["meta"]["notes"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .all(|n| !n.as_str().unwrap().contains("of a split run")),
        "{notes:?}"
    );
    assert!(merged_dir.join("report.html").is_file());
    assert!(merged_dir.join("metrics.hlog").is_file());
}
