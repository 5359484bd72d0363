//! Hub agents and commanders against the built-in hub on 127.0.0.1:0:
//! lifecycle in both protocols, registration failures, drops by close,
//! reset and server kick with exact counts, recovery, commanders through
//! the hub and the API, pacing and scale-down.

use crate::common::{count, Fixture};
use stampede::metrics::{TagFilter, Totals};
use stampede::target::{self, HubStats, RunningTarget, TargetConfig};
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

async fn stats(t: &RunningTarget) -> HubStats {
    t.hub().stats()
}

fn pop(name: &str) -> TagFilter {
    TagFilter {
        population: Some(name.into()),
        ..TagFilter::default()
    }
}

fn in_phase(phase: usize) -> TagFilter {
    TagFilter {
        phase: Some(phase),
        ..TagFilter::default()
    }
}

fn hist_count(totals: &Totals, metric: &str, filter: &TagFilter) -> u64 {
    totals.select_hist(metric, filter).map_or(0, |h| h.len())
}

fn kind(totals: &Totals, metric: &str, kind: &str) -> u64 {
    count(totals, metric, Some(kind))
}

const AGENTS: &str = r#"
[[agents]]
name = "sio"
protocol = "socketio"
register = { event = "register", data = { id = "s-{{ agent.id }}" }, ack = true, match = { ok = true } }
heartbeat = { every = "200ms", jitter = "10%", ack = true }
status = { every = "250ms", data = { load = "{{ rand(0, 100) }}" }, ack = true }
on_command = { event = "command", reply = "result", delay = "1ms..5ms" }
reconnect = { base = "50ms", max = "200ms", jitter = "full" }

[[agents]]
name = "ws"
protocol = "websocket"
register = { event = "register", data = { id = "w-{{ agent.id }}" }, ack = "registered", match = { type = "registered" } }
heartbeat = { every = "200ms", ack = "heartbeat_ack" }
on_command = { event = "command", reply = "result" }
reconnect = { base = "50ms", max = "200ms", jitter = "full" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_connect_register_heartbeat_in_both_protocols() {
    let t = hub().await;
    let fixture = Fixture::new(&format!(
        r#"
name = "lifecycle"
[target]
hub = "http://{addr}"
{AGENTS}
[[phases]]
name = "steady"
duration = "1500ms"
agents = {{ connected = 40, connect_rate = "max" }}
[slo]
"hub.connect.p99" = "< 2s"
"hub.errors.rate" = "< 0.1%"
"#,
        addr = t.addr
    ));
    let outcome = fixture.run(Default::default()).await;
    let totals = &outcome.totals;
    // Weights 1:1: 20 agents of each protocol, each connected and registered once.
    for name in ["sio", "ws"] {
        let f = pop(name);
        assert_eq!(totals.sum_counters("hub.connects", None, &f), 20, "{name}");
        assert_eq!(
            totals.sum_counters("hub.registrations", None, &f),
            20,
            "{name}"
        );
        assert_eq!(totals.sum_counters("hub.errors", None, &f), 0, "{name}");
        assert_eq!(
            totals.sum_counters("hub.disconnects", None, &f),
            0,
            "{name}"
        );
        assert_eq!(hist_count(totals, "hub.connect", &f), 20);
        assert_eq!(hist_count(totals, "hub.register", &f), 20);
        // ~7 heartbeats each over 1.5 s (every 200 ms ± 10 %), all acked.
        let rtt = hist_count(
            totals,
            "hub.message.rtt",
            &TagFilter {
                population: Some(name.into()),
                step: Some("heartbeat".into()),
                phase: None,
            },
        );
        assert!(
            (20 * 5..=20 * 8).contains(&rtt),
            "{name}: {rtt} heartbeat acks"
        );
    }
    let status_acks = hist_count(
        totals,
        "hub.message.rtt",
        &TagFilter {
            step: Some("status".into()),
            ..TagFilter::default()
        },
    );
    assert!(status_acks >= 20 * 4, "{status_acks} status acks");
    // Alive across at least two Socket.IO ping intervals (300 ms): no ping timeouts.
    assert_eq!(kind(totals, "hub.disconnects", "ping_timeout"), 0);
    assert_eq!(outcome.exit, stampede::error::ExitStatus::Passed);
    // The hub saw them all, and saw them leave at the end.
    let s = stats(&t).await;
    assert!(s.heartbeats >= 200, "{s:?}");
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while stats(&t).await.connected > 0 {
        assert!(std::time::Instant::now() < deadline, "agents did not close");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_register_ack_that_does_not_match_fails_and_retries_by_policy() {
    let t = hub().await;
    let fixture = Fixture::new(&format!(
        r#"
name = "mismatch"
[target]
hub = "http://{addr}"
[[agents]]
name = "a"
register = {{ event = "register", data = {{ id = "a-{{{{ agent.id }}}}" }}, ack = true, match = {{ ok = false }} }}
reconnect = {{ base = "10ms", max = "20ms", jitter = "none", max_attempts = 2 }}
[[phases]]
name = "p"
duration = "1s"
agents = {{ connected = 5 }}
"#,
        addr = t.addr
    ));
    let totals = fixture.run(Default::default()).await.totals;
    // 1 try + 2 retries each; every one refused by the match.
    assert_eq!(count(&totals, "hub.connects", None), 15);
    assert_eq!(kind(&totals, "hub.errors", "register"), 15);
    assert_eq!(count(&totals, "hub.registrations", None), 0);
    t.shutdown().await;
}

/// 30 agents, a third dropped in the second phase by `how`.
async fn drop_wave(how: &str) -> Totals {
    let t = hub().await;
    let fixture = Fixture::new(&format!(
        r#"
name = "wave"
[target]
hub = "http://{addr}"
hub_admin = "http://{addr}/admin/hub/kick"
[hub]
timeout = "2s"
[[agents]]
name = "a"
register = {{ event = "register", data = {{ id = "a-{{{{ agent.id }}}}" }}, ack = true }}
heartbeat = {{ every = "200ms", ack = true }}
reconnect = {{ base = "50ms", max = "200ms", jitter = "equal" }}
[[phases]]
name = "up"
duration = "700ms"
agents = {{ connected = 30, connect_rate = "max" }}
[[phases]]
name = "wave"
duration = "1500ms"
agents = {{ drop = {{ fraction = 0.34, how = "{how}" }} }}
[slo]
"hub.recovery" = "< 1s"
"#,
        addr = t.addr
    ));
    let outcome = fixture.run(Default::default()).await;
    t.shutdown().await;
    assert_eq!(outcome.exit, stampede::error::ExitStatus::Passed, "{how}");
    outcome.totals
}

fn assert_wave(totals: &Totals, disconnect_kind: &str) {
    // round(0.34 × 30) = 10 agents down, all 10 back.
    assert_eq!(kind(totals, "hub.disconnects", disconnect_kind), 10);
    assert_eq!(count(totals, "hub.disconnects", None), 10);
    assert_eq!(count(totals, "hub.reconnects", None), 10);
    assert_eq!(count(totals, "hub.registrations", None), 40);
    assert_eq!(
        hist_count(totals, "hub.reconnect", &TagFilter::default()),
        10
    );
    assert_eq!(count(totals, "hub.errors", None), 0);
    // One drop event, recovered once.
    assert_eq!(hist_count(totals, "hub.recovery", &TagFilter::default()), 1);
    let attempts = totals
        .select_hist("hub.reconnect.attempts", &TagFilter::default())
        .unwrap();
    assert_eq!((attempts.len(), attempts.max()), (10, 1));
    // Reconnects happen in the wave phase.
    assert_eq!(
        totals.sum_counters("hub.reconnects", None, &in_phase(1)),
        10
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_by_close_takes_down_exactly_the_fraction_and_all_come_back() {
    assert_wave(&drop_wave("close").await, "client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drop_by_reset_takes_down_exactly_the_fraction_and_all_come_back() {
    assert_wave(&drop_wave("reset").await, "client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_kick_is_attributed_and_recovered() {
    assert_wave(&drop_wave("server").await, "server_close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commanders_through_the_hub_and_the_api_reach_the_agents() {
    let t = hub().await;
    let fixture = Fixture::new(&format!(
        r#"
name = "commands"
[target]
api = "http://{addr}"
hub = "http://{addr}"
{AGENTS}
[[commanders]]
name = "ops"
send = {{ event = "command", to = "agents", data = {{ op = "update" }} }}
[[commanders]]
name = "api"
send = {{ post = "/api/commands", to = {{ sample = 3 }}, data = {{ op = "restart" }} }}
[[phases]]
name = "connect"
duration = "500ms"
agents = {{ connected = 10, connect_rate = "max" }}
[[phases]]
name = "commands"
duration = "1s"
commanders = {{ rate = "5/s" }}
[[phases]]
name = "settle"
duration = "500ms"
[slo]
"hub.command.delivery.p99" = "< 500ms"
"#,
        addr = t.addr
    ));
    let outcome = fixture.run(Default::default()).await;
    let totals = &outcome.totals;
    assert_eq!(outcome.exit, stampede::error::ExitStatus::Passed);
    let sent = |name: &str| totals.sum_counters("hub.commands", None, &pop(name));
    assert_eq!((sent("ops"), sent("api")), (5, 5));
    // The hub commander's 5 commands reach all 10 agents; the API's 5 reach 3 each.
    assert_eq!(count(totals, "hub.command.received", None), 5 * 10 + 5 * 3);
    assert_eq!(
        hist_count(totals, "hub.command.delivery", &TagFilter::default()),
        65
    );
    assert_eq!(hist_count(totals, "hub.command.fanout", &pop("ops")), 5);
    assert_eq!(hist_count(totals, "hub.command.fanout", &pop("api")), 5);
    assert_eq!(count(totals, "hub.command.undelivered", None), 0);
    // Results come back to the hub commander (the first per command).
    assert_eq!(hist_count(totals, "hub.command.rtt", &pop("ops")), 5);
    let s = stats(&t).await;
    assert_eq!(s.commands, 10);
    assert_eq!(s.results, 65);
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_rate_paces_the_fleet_and_scale_down_sends_agents_away() {
    let t = hub().await;
    let fixture = Fixture::new(&format!(
        r#"
name = "pacing"
[target]
hub = "http://{addr}"
[[agents]]
name = "a"
register = {{ event = "register", data = {{ id = "a-{{{{ agent.id }}}}" }}, ack = true }}
[[phases]]
name = "ramp"
duration = "1s"
agents = {{ connected = 20, connect_rate = "10/s" }}
[[phases]]
name = "rest"
duration = "1500ms"
[[phases]]
name = "down"
duration = "1500ms"
agents = {{ connected = 5 }}
"#,
        addr = t.addr
    ));
    let outcome = fixture.run(Default::default()).await;
    let totals = &outcome.totals;
    // 10/s: agents 0..=9 start in the first second, 10..=19 after it.
    let first = totals.sum_counters("hub.connects", None, &in_phase(0));
    assert!(
        (10..=11).contains(&first),
        "{first} connects in the first second"
    );
    assert_eq!(count(totals, "hub.connects", None), 20);
    assert_eq!(count(totals, "hub.registrations", None), 20);
    // Scale-down is not a disconnect nor a reconnect.
    assert_eq!(count(totals, "hub.disconnects", None), 0);
    assert_eq!(count(totals, "hub.reconnects", None), 0);
    let registered = totals.gauge_values("hub.registered");
    // Up to 20, later down to 5 in the last phase (sampled once a second:
    // at least one sample falls in its 1.5 s), and 0 once everyone closed.
    let twenty = registered.iter().position(|&r| r == 20.0);
    let five = registered.iter().rposition(|&r| r == 5.0);
    assert!(twenty.is_some() && five > twenty, "{registered:?}");
    assert_eq!(registered.last(), Some(&0.0), "{registered:?}");
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_that_never_come_back_fail_the_recovery_slo() {
    let t = hub().await;
    let fixture = Fixture::new(&format!(
        r#"
name = "unrecovered"
[target]
hub = "http://{addr}"
[[agents]]
name = "a"
reconnect = {{ base = "5s", max = "5s", jitter = "none" }}
[[phases]]
name = "up"
duration = "500ms"
agents = {{ connected = 10, connect_rate = "max" }}
[[phases]]
name = "wave"
duration = "700ms"
agents = {{ drop = {{ fraction = 0.5, how = "close" }} }}
[slo]
"hub.recovery" = "< 30s"
"#,
        addr = t.addr
    ));
    let outcome = fixture.run(Default::default()).await;
    assert_eq!(count(&outcome.totals, "hub.disconnects", None), 5);
    assert_eq!(count(&outcome.totals, "hub.unrecovered", None), 1);
    assert_eq!(outcome.exit, stampede::error::ExitStatus::SloFailed);
    let verdict = &outcome.verdicts[0];
    assert!(!verdict.pass);
    assert!(
        verdict.measured_text.starts_with("not recovered"),
        "{}",
        verdict.measured_text
    );
    t.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_larger_than_the_descriptor_limit_is_refused_up_front() {
    let fixture = Fixture::new(
        r#"
name = "too-big"
[target]
hub = "builtin"
[[agents]]
name = "a"
[[phases]]
name = "p"
duration = "1s"
agents = { connected = 5000000, connect_rate = "max" }
"#,
    );
    let path = fixture.scenario_path();
    let scenario = stampede::scenario::load(&path, &Default::default()).unwrap();
    let options = stampede::run::RunOptions {
        scenario: path,
        overrides: Default::default(),
        out_dir: fixture.out_dir(),
        progress: stampede::run::Progress::Quiet,
        grace: Duration::from_secs(1),
        command_line: vec![],
        baseline: None,
    };
    let started = std::time::Instant::now();
    let err = match stampede::run::run_scenario(std::sync::Arc::new(scenario), &options).await {
        Ok(_) => panic!("a 5,000,000-agent fleet ran in one process"),
        Err(e) => e,
    };
    assert_eq!(err.exit_status(), stampede::error::ExitStatus::BadInput);
    let message = err.to_string();
    assert!(
        message.contains("needs 10000")
            && message.contains("file descriptors")
            && message.contains("--processes"),
        "{message}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused only after trying"
    );
    assert!(
        !fixture.out_dir().exists(),
        "a refused run leaves no result directory"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_connections_are_spread_over_the_source_addresses() {
    // A listener that records where each connection comes from and hangs up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        loop {
            let (stream, peer) = listener.accept().await.unwrap();
            drop(stream);
            let _ = tx.send(peer.ip());
        }
    });
    let fixture = Fixture::new(&format!(
        r#"
name = "sources"
[target]
hub = "http://{addr}"
[hub]
sources = "127.0.0.2-127.0.0.3"
timeout = "1s"
[[agents]]
name = "a"
reconnect = {{ base = "10ms", max = "10ms", max_attempts = 0 }}
[[phases]]
name = "p"
duration = "500ms"
agents = {{ connected = 6, connect_rate = "max" }}
"#
    ));
    let totals = fixture.run(Default::default()).await.totals;
    server.abort();
    assert_eq!(count(&totals, "hub.connects", None), 6);
    assert_eq!(kind(&totals, "hub.errors", "handshake"), 6);
    let mut from = std::collections::BTreeMap::new();
    while let Ok(ip) = rx.try_recv() {
        *from.entry(ip.to_string()).or_insert(0) += 1;
    }
    // The start-up reachability check comes from the default address.
    from.remove("127.0.0.1");
    assert_eq!(
        from,
        [("127.0.0.2".to_string(), 3), ("127.0.0.3".to_string(), 3)].into()
    );
}
