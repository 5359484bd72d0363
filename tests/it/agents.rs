//! Hub agents and commanders against the built-in hub on 127.0.0.1:0:
//! lifecycle in both protocols, registration failures, drops by close,
//! reset and server kick with exact counts, recovery, commanders through
//! the hub and the API, pacing and scale-down.
//!
//! Time is the subject here, so most tests run under tokio's paused clock
//! (current-thread runtime, the built-in hub spawned in the same runtime):
//! loopback I/O takes no virtual time, every timer fires at its exact
//! instant, and counts, delays and recovery times are exact. The run's
//! aggregator thread still ticks on the wall clock: its per-second gauges
//! are not asserted mid-run; the hub's own counters are sampled at exact
//! virtual instants instead.

use crate::common::{count, Fixture};
use stampede::metrics::{TagFilter, Totals};
use stampede::target::{self, HubStats, RunningTarget, TargetConfig};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

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

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Every value of histogram `metric` is `us` (µs), `n` of them.
fn assert_all(totals: &Totals, metric: &str, n: u64, us: u64) {
    let h = totals
        .select_hist(metric, &TagFilter::default())
        .unwrap_or_else(|| panic!("no {metric}"));
    assert_eq!(
        (h.len(), h.min(), h.max()),
        (n, h.lowest_equivalent(us), h.highest_equivalent(us)),
        "{metric}: {} values in [{}, {}] µs, want {n} of {us} µs",
        h.len(),
        h.min(),
        h.max()
    );
}

/// Waits (virtual time, wall-clock bounded) until the hub has no connection left.
async fn until_hub_empty(t: &RunningTarget) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stats(t).await.connected > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "agents did not close: {:?}",
            stats(t).await
        );
        tokio::time::sleep(ms(1)).await;
    }
}

const AGENTS: &str = r#"
[[agents]]
name = "sio"
protocol = "socketio"
register = { event = "register", data = { id = "s-{{ agent.id }}" }, ack = true, match = { ok = true } }
heartbeat = { every = "200ms", ack = true }
status = { every = "400ms", data = { load = "{{ rand(0, 100) }}" }, ack = true }
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

#[tokio::test(start_paused = true)]
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
        // All registered at 0: heartbeats at 200, 400, …, 1400 ms (the next
        // is due after the end at 1500), 7 each, all acked.
        let rtt = hist_count(
            totals,
            "hub.message.rtt",
            &TagFilter {
                population: Some(name.into()),
                step: Some("heartbeat".into()),
                phase: None,
            },
        );
        assert_eq!(rtt, 20 * 7, "{name}: heartbeat acks");
    }
    // Status (sio only) at 400, 800, 1200 ms: 3 each.
    let status_acks = hist_count(
        totals,
        "hub.message.rtt",
        &TagFilter {
            step: Some("status".into()),
            ..TagFilter::default()
        },
    );
    assert_eq!(status_acks, 20 * 3, "status acks");
    // Loopback I/O takes no virtual time: every connect, register and ack
    // took 0 µs (the premise of the exact counts above).
    assert_all(totals, "hub.connect", 40, 0);
    assert_all(totals, "hub.register", 40, 0);
    assert_all(totals, "hub.message.rtt", 40 * 7 + 20 * 3, 0);
    // Alive across five Socket.IO ping intervals (300 ms): no ping timeouts.
    assert_eq!(kind(totals, "hub.disconnects", "ping_timeout"), 0);
    assert_eq!(outcome.exit, stampede::error::ExitStatus::Passed);
    // The hub saw them all, and saw them leave at the end.
    let s = stats(&t).await;
    assert_eq!((s.heartbeats, s.statuses), (40 * 7, 20 * 3), "{s:?}");
    until_hub_empty(&t).await;
    assert_eq!(stats(&t).await.registered, 0);
    t.shutdown().await;
}

#[tokio::test(start_paused = true)]
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
reconnect = {{ base = "50ms", max = "200ms", jitter = "none" }}
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
    // Dropped at 700 ms (no I/O takes virtual time), each back after its
    // one backoff delay: attempt 0, 50 ms without jitter. One drop event,
    // recovered once, 50 ms after it.
    assert_all(totals, "hub.reconnect", 10, 50_000);
    assert_all(totals, "hub.recovery", 1, 50_000);
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

#[tokio::test(start_paused = true)]
async fn a_drop_by_close_takes_down_exactly_the_fraction_and_all_come_back() {
    assert_wave(&drop_wave("close").await, "client");
}

#[tokio::test(start_paused = true)]
async fn a_drop_by_reset_takes_down_exactly_the_fraction_and_all_come_back() {
    assert_wave(&drop_wave("reset").await, "client");
}

#[tokio::test(start_paused = true)]
async fn a_server_kick_is_attributed_and_recovered() {
    assert_wave(&drop_wave("server").await, "server_close");
}

#[tokio::test(start_paused = true)]
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
# Delivery is timed on the wall clock (`sent_us`, also under the paused
# clock): generous, so a stalled moment of a loaded machine cannot fail it;
# the counts below are the subject.
[slo]
"hub.command.delivery.p99" = "< 10s"
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

/// Samples the hub's registered agents at these virtual instants after `t0`.
fn sample_registered(
    t: &RunningTarget,
    t0: Instant,
    at: Vec<Duration>,
) -> tokio::task::JoinHandle<Vec<(Duration, u64)>> {
    let hub = Arc::clone(t.hub());
    tokio::spawn(async move {
        let mut seen = Vec::new();
        for offset in at {
            tokio::time::sleep_until(t0 + offset).await;
            seen.push((offset, hub.stats().registered));
        }
        seen
    })
}

#[tokio::test(start_paused = true)]
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
duration = "950ms"
agents = {{ connected = 20, connect_rate = "10/s" }}
[[phases]]
name = "rest"
duration = "1050ms"
[[phases]]
name = "down"
duration = "1s"
agents = {{ connected = 5 }}
"#,
        addr = t.addr
    ));
    // The run starts now (nothing before it takes virtual time: checked below).
    let t0 = Instant::now();
    // 10/s: agent k starts (and registers) at k × 100 ms; the hub's count
    // halfway between two starts is exact. 20 until the scale-down at
    // 2000 ms, then 5.
    let mut at: Vec<Duration> = (0..20).map(|k| ms(100 * k + 50)).collect();
    at.extend([ms(1999), ms(2001), ms(2999)]);
    let samples = sample_registered(&t, t0, at);
    let outcome = fixture.run(Default::default()).await;
    assert_eq!(t0.elapsed(), ms(3000), "the run did not start at t0");
    assert_eq!(outcome.elapsed, ms(3000));
    let mut want: Vec<(Duration, u64)> = (0..20).map(|k| (ms(100 * k + 50), k + 1)).collect();
    want.extend([(ms(1999), 20), (ms(2001), 5), (ms(2999), 5)]);
    assert_eq!(samples.await.unwrap(), want);
    let totals = &outcome.totals;
    // Agents 0..=9 start in the ramp (0 to 900 ms), 10..=19 in the rest
    // (1000 to 1900 ms).
    for (phase, n) in [(0, 10), (1, 10), (2, 0)] {
        assert_eq!(
            totals.sum_counters("hub.connects", None, &in_phase(phase)),
            n,
            "connects in phase {phase}"
        );
        assert_eq!(
            totals.sum_counters("hub.registrations", None, &in_phase(phase)),
            n,
            "registrations in phase {phase}"
        );
    }
    // Scale-down is not a disconnect nor a reconnect.
    assert_eq!(count(totals, "hub.disconnects", None), 0);
    assert_eq!(count(totals, "hub.reconnects", None), 0);
    // The gauges are sampled on the wall clock, where this run takes a
    // moment: only their last sample, taken once every agent closed, is
    // exact.
    let registered = totals.gauge_values("hub.registered");
    assert_eq!(registered.last(), Some(&0.0), "{registered:?}");
    let connected = totals.gauge_values("hub.connected");
    assert_eq!(connected.last(), Some(&0.0), "{connected:?}");
    t.shutdown().await;
}

#[tokio::test(start_paused = true)]
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
        segment: stampede::plan::Segment::WHOLE,
        start_at: None,
        child: Default::default(),
    };
    let err = match stampede::run::run_scenario(std::sync::Arc::new(scenario), &options).await {
        Ok(_) => panic!("a 5,000,000-agent fleet ran in one process"),
        Err(e) => e,
    };
    assert_eq!(err.exit_status(), stampede::error::ExitStatus::BadInput);
    let message = err.to_string();
    // 5,000,000 agent connections, counted twice (both ends are in this
    // process with the built-in hub), + 16 spare.
    assert!(
        message.contains(" needs 10000016 file descriptors ") && message.contains("--processes"),
        "{message}"
    );
    // Refused before anything ran: the result directory, created right
    // after the check and before any agent starts, does not exist.
    assert!(
        !fixture.out_dir().exists(),
        "a refused run leaves no result directory"
    );
}

#[tokio::test(start_paused = true)]
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

#[tokio::test(start_paused = true)]
async fn failed_connects_are_retried_at_exactly_the_policys_delays() {
    // A hub that accepts and hangs up: every attempt is a handshake error.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let t0 = Instant::now();
    let accepted = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let server = tokio::spawn({
        let accepted = accepted.clone();
        async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                accepted.lock().push(t0.elapsed());
                drop(stream);
            }
        }
    });
    let fixture = Fixture::new(&format!(
        r#"
name = "backoff"
[target]
hub = "http://{addr}"
[hub]
timeout = "10s"
[[agents]]
name = "a"
reconnect = {{ base = "100ms", factor = 2.0, max = "500ms", jitter = "none", max_attempts = 4 }}
[[phases]]
name = "p"
duration = "3s"
agents = {{ connected = 1 }}
"#
    ));
    let totals = fixture.run(Default::default()).await.totals;
    server.abort();
    // The start-up reachability check, then the agent at 0 and its 4
    // retries after min(500, 100 × 2^attempt) ms: 100, 200, 400, 500; then
    // its attempts are used up.
    assert_eq!(*accepted.lock(), [0, 0, 100, 300, 700, 1200].map(ms));
    assert_eq!(count(&totals, "hub.connects", None), 5);
    assert_eq!(kind(&totals, "hub.errors", "handshake"), 5);
    assert_eq!(count(&totals, "hub.errors", None), 5);
}
