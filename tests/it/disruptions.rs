//! Disruptions nobody planned in the scenario: the built-in hub kicks or
//! restarts while agents are registered, asked from outside the run (the
//! test posts to its admin endpoints, as an operator or a crash would), or
//! by a fault action. The engine must find the wave of losses, count it,
//! measure its recovery and say what caused it.
//!
//! Time is the subject: the tests run under tokio's paused clock with the
//! built-in hub in the same runtime (see `agents.rs`), so the kicks happen
//! at exact virtual instants and recovery times are exact; but for the
//! restart, whose refusal the hub times on the wall clock.

use crate::common::{count, Fixture};
use serde_json::{json, Value};
use stampede::error::ExitStatus;
use stampede::metrics::TagFilter;
use stampede::scenario::Overrides;
use stampede::target::{self, RunningTarget, TargetConfig};
use std::time::Duration;

async fn hub() -> RunningTarget {
    let config = TargetConfig {
        hub_ping_interval: Duration::from_millis(300),
        hub_ping_timeout: Duration::from_millis(300),
        ..TargetConfig::default()
    };
    target::spawn("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("target starts")
}

/// 30 agents up in 700 ms, then `steady` long enough for a wave and its
/// recovery; reconnects after 50 ms, doubling to 200 ms, no jitter.
/// `extra` goes into the steady phase (actions).
fn fleet(addr: std::net::SocketAddr, extra: &str) -> String {
    format!(
        r#"
name = "disrupted"
[target]
hub = "http://{addr}"
[hub]
timeout = "2s"
[[agents]]
name = "a"
register = {{ event = "register", data = {{ id = "a-{{{{ agent.id }}}}" }}, ack = true }}
heartbeat = {{ every = "200ms", ack = true }}
reconnect = {{ base = "50ms", max = "200ms", jitter = "none" }}
[[phases]]
name = "up"
duration = "700ms"
agents = {{ connected = 30, connect_rate = "max" }}
[[phases]]
name = "steady"
duration = "3s"
{extra}
[slo]
"hub.recovery" = "< 2s"
"#
    )
}

fn summary(dir: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("summary.json")).unwrap()).unwrap()
}

fn recovery(totals: &stampede::metrics::Totals) -> hdrhistogram::Histogram<u64> {
    totals
        .select_hist("hub.recovery", &TagFilter::default())
        .expect("hub.recovery")
}

#[tokio::test(start_paused = true)]
async fn a_kick_from_outside_the_run_is_a_detected_disruption_and_recovers() {
    let t = hub().await;
    let fixture = Fixture::new(&fleet(t.addr, ""));
    let url = t.url();
    // One second in (the agents are up): an operator kicks a third.
    let kick = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let body: Value = reqwest::Client::new()
            .post(format!("{url}/admin/hub/kick"))
            .json(&json!({"fraction": 0.34}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["kicked"].as_u64().unwrap()
    });
    let outcome = fixture.run(Overrides::default()).await;
    let kicked = kick.await.unwrap();
    t.shutdown().await;
    assert!(kicked >= 10, "the hub kicked {kicked}");
    assert_eq!(outcome.exit, ExitStatus::Passed);
    let json = summary(&outcome.result_dir);
    let disruptions = json["disruptions"].as_array().expect("disruptions");
    assert_eq!(disruptions.len(), 1, "{disruptions:?}");
    let d = &disruptions[0];
    assert_eq!(d["cause"], "detected");
    assert_eq!(d["phase"], "steady");
    assert_eq!(d["lost"].as_u64(), Some(kicked));
    assert_eq!(d["back_unix_us"].as_array().unwrap().len() as u64, kicked);
    // Every kicked agent back after its one 50 ms backoff: recovered then.
    let h = recovery(&outcome.totals);
    assert_eq!(h.len(), 1);
    assert_eq!(h.max(), h.highest_equivalent(50_000));
    assert_eq!(count(&outcome.totals, "hub.reconnects", None), kicked);
    // Listed in the reports, marked on the charts.
    let md = std::fs::read_to_string(outcome.result_dir.join("summary.md")).unwrap();
    assert!(
        md.contains("**Disruptions**") && md.contains("`detected`"),
        "{md}"
    );
    let html = std::fs::read_to_string(outcome.result_dir.join("report.html")).unwrap();
    assert!(
        html.contains(&format!("{kicked} lost (detected)")),
        "chart mark"
    );
}

// The built-in hub times its refusal on the wall clock: this one runs in
// real time (its assertions are counts and a lower bound).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_restart_is_detected_and_recovery_counts_the_refusal() {
    let t = hub().await;
    let fixture = Fixture::new(&fleet(t.addr, ""));
    let url = t.url();
    let restart = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        let body: Value = reqwest::Client::new()
            .post(format!("{url}/admin/hub/restart"))
            .json(&json!({"refuse_for": "400ms"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["closed"].as_u64().unwrap()
    });
    let outcome = fixture.run(Overrides::default()).await;
    let closed = restart.await.unwrap();
    t.shutdown().await;
    assert_eq!(closed, 30, "every agent was connected");
    let json = summary(&outcome.result_dir);
    let disruptions = json["disruptions"].as_array().expect("disruptions");
    assert_eq!(disruptions.len(), 1, "{disruptions:?}");
    assert_eq!(disruptions[0]["cause"], "detected");
    assert_eq!(disruptions[0]["lost"], 30);
    assert_eq!(disruptions[0]["back_unix_us"].as_array().unwrap().len(), 30);
    // Nobody gets back in while the hub refuses.
    let h = recovery(&outcome.totals);
    assert_eq!(h.len(), 1);
    assert!(h.min() >= h.lowest_equivalent(400_000), "{}", h.min());
    assert_eq!(outcome.exit, ExitStatus::Passed);
}

#[tokio::test(start_paused = true)]
async fn a_wave_after_a_fault_action_is_that_actions() {
    let t = hub().await;
    let fixture = Fixture::new(&fleet(
        t.addr,
        r#"actions = [{ at = "300ms", name = "kick-third", post = "/admin/hub/kick", json = { fraction = 0.34 } }]"#,
    ));
    let outcome = fixture.run(Overrides::default()).await;
    let stats = t.hub().stats();
    t.shutdown().await;
    let json = summary(&outcome.result_dir);
    let action = &json["actions"][0];
    assert_eq!(action["name"], "kick-third");
    assert_eq!(action["http_status"], 200);
    let body = std::fs::read_to_string(outcome.result_dir.join(action["output"].as_str().unwrap()))
        .unwrap();
    let kicked = serde_json::from_str::<Value>(&body).unwrap()["kicked"]
        .as_u64()
        .unwrap();
    assert!(kicked >= 10, "{body}");
    let d = &json["disruptions"][0];
    assert_eq!(d["cause"], "action");
    assert_eq!(d["action"], "kick-third");
    assert_eq!(d["lost"].as_u64(), Some(kicked));
    assert_eq!(recovery(&outcome.totals).len(), 1);
    assert_eq!(stats.registered, 0, "everyone left at the end");
}

#[tokio::test(start_paused = true)]
async fn a_few_lost_agents_are_no_disruption() {
    let t = hub().await;
    // Two agents of thirty: under `min = 5`.
    let fixture = Fixture::new(&fleet(t.addr, ""));
    let url = t.url();
    let kick = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        reqwest::Client::new()
            .post(format!("{url}/admin/hub/kick"))
            .json(&json!({"fraction": 0.067}))
            .send()
            .await
            .unwrap();
    });
    let outcome = fixture.run(Overrides::default()).await;
    kick.await.unwrap();
    t.shutdown().await;
    assert_eq!(count(&outcome.totals, "hub.reconnects", None), 2);
    let json = summary(&outcome.result_dir);
    assert!(json.get("disruptions").is_none(), "{}", json["disruptions"]);
    // The recovery SLO had nothing to judge, and says so.
    assert_eq!(outcome.verdicts[0].measured_text, "nothing was disrupted");
    assert!(outcome.verdicts[0].pass);
}

/// A kick from outside during a run of two processes: each segment finds
/// its share of the wave, the merge makes one disruption of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kick_seen_by_two_processes_is_one_disruption_in_the_merge() {
    let t = hub().await;
    let text = fleet(t.addr, "").replace("duration = \"3s\"", "duration = \"4s\"");
    let fixture = Fixture::new(&text);
    let mut child = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .env_remove("STAMPEDE_LOG")
        .args(["run", "--quiet", "--processes", "2", "--out"])
        .arg(fixture.out_dir())
        .arg(fixture.scenario_path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait (bounded) until the whole fleet is registered, then kick half.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while t.hub().stats().registered < 30 {
        assert!(
            std::time::Instant::now() < deadline,
            "{:?}",
            t.hub().stats()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let body: Value = reqwest::Client::new()
        .post(format!("{}/admin/hub/kick", t.url()))
        .json(&json!({"fraction": 0.5}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kicked = body["kicked"].as_u64().unwrap();
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
        .await
        .expect("the run ends")
        .unwrap();
    t.shutdown().await;
    assert_eq!(status.code(), Some(0));
    let dirs: Vec<_> = std::fs::read_dir(fixture.out_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let merged = summary(&dirs[0]);
    let list = merged["disruptions"]
        .as_array()
        .expect("merged disruptions");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["cause"], "detected");
    assert_eq!(list[0]["lost"].as_u64(), Some(kicked));
    assert_eq!(
        list[0]["back_unix_us"].as_array().unwrap().len() as u64,
        kicked
    );
    let parts: Vec<u64> = (0..2)
        .map(|i| {
            let s = summary(&dirs[0].join("segments").join(i.to_string()));
            s["disruptions"][0]["lost"].as_u64().unwrap_or(0)
        })
        .collect();
    assert!(
        parts.iter().all(|&n| n > 0),
        "each segment saw its share: {parts:?}"
    );
    assert_eq!(parts.iter().sum::<u64>(), kicked);
}
