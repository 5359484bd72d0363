//! The clock offset against the hub (`meta.clock`): real runs of agents
//! against the built-in hub, whose heartbeat acks carry its time (`ts`),
//! in both protocols; and a hub whose acks carry none, which gives no
//! measurement and no error.
//!
//! The hub and the agents run in one process on one kernel clock, so the
//! true offset is 0: the estimate must be within its uncertainty of it
//! (plus half a millisecond for the engine clock's wall anchor, taken once
//! per process). Time: tokio's paused clock, so every heartbeat due is
//! sent and acked and the counts are exact; the round trips the clock
//! measures are real (the wall clock), as across hosts.

use crate::common::Fixture;
use stampede::metrics::TagFilter;
use stampede::report::json;
use stampede::target::{self, RunningTarget, TargetConfig};

async fn hub() -> RunningTarget {
    target::spawn("127.0.0.1:0".parse().unwrap(), TargetConfig::default())
        .await
        .expect("target starts")
}

/// A scenario against `t`: Socket.IO agents `sio` whose periodic messages
/// are `sio` (TOML lines, maybe followed by more agents); `connected`
/// agents all up at 0 for 1.5 s, and no hub error allowed.
fn scenario(t: &RunningTarget, sio: &str, connected: u32) -> String {
    format!(
        r#"
name = "clock"
[target]
hub = "http://{addr}"
[[agents]]
name = "sio"
register = {{ event = "register", data = {{ id = "s-{{{{ agent.id }}}}" }}, ack = true }}
{sio}
[[phases]]
name = "steady"
duration = "1500ms"
agents = {{ connected = {connected}, connect_rate = "max" }}
[slo]
"hub.errors.rate" = "<= 0%"
"#,
        addr = t.addr
    )
}

/// Acks of the messages sent as event `step` the run measured.
fn acks(totals: &stampede::metrics::Totals, step: &str) -> u64 {
    let filter = TagFilter {
        step: Some(step.into()),
        ..TagFilter::default()
    };
    totals
        .select_hist("hub.message.rtt", &filter)
        .map_or(0, |h| h.len())
}

/// 20 Socket.IO agents (heartbeat acked `{"ok":true,"ts":…}`, status acked
/// `{"ok":true}`) and 20 plain WebSocket agents (`{"type":"heartbeat_ack",
/// "ts":…}`), all up at 0, heartbeats every 200 ms for 1.5 s: 7 each.
#[tokio::test(start_paused = true)]
async fn heartbeat_acks_measure_the_clock_offset_against_the_hub_in_both_protocols() {
    let t = hub().await;
    let fixture = Fixture::new(&scenario(
        &t,
        r#"
heartbeat = { every = "200ms", ack = true }
status = { every = "400ms", ack = true }
[[agents]]
name = "ws"
protocol = "websocket"
register = { event = "register", data = { id = "w-{{ agent.id }}" }, ack = "registered" }
heartbeat = { every = "200ms", ack = "heartbeat_ack" }
"#,
        40,
    ));
    let outcome = fixture.run(Default::default()).await;
    assert_eq!(acks(&outcome.totals, "heartbeat"), 40 * 7);
    assert_eq!(acks(&outcome.totals, "status"), 20 * 3);
    let summary = json::read(&outcome.result_dir.join("summary.json")).unwrap();
    let clock = summary.meta.clock.clone().expect("the hub's acks carry ts");
    // Every heartbeat ack, of both protocols; no status ack (no ts).
    assert_eq!(clock.samples, 40 * 7, "{clock:?}");
    assert_eq!(clock.against, format!("http://{}", t.addr));
    // Whole-ms ts: ± (half the fastest round trip + 1 ms).
    assert!(
        (clock.uncertainty_ms - (clock.rtt_min_ms / 2.0 + 1.0)).abs() < 1e-9,
        "{clock:?}"
    );
    // A debug build on one thread, 40 heartbeats at each instant: the
    // fastest round trip is a few ms (the hub answers the burst in turn).
    assert!(
        clock.rtt_min_ms > 0.0 && clock.rtt_min_ms < 100.0,
        "{clock:?}"
    );
    // One kernel clock: the true offset, 0, is within the bound.
    assert!(
        clock.offset_ms.abs() <= clock.uncertainty_ms + 0.5,
        "{clock:?}"
    );
    // The run report says it.
    let html = std::fs::read_to_string(outcome.result_dir.join("report.html")).unwrap();
    assert!(
        html.contains(&format!("<tr><th>clock vs hub</th><td>{} ", clock.text())),
        "{html}"
    );
    t.shutdown().await;
}

/// A hub whose acks carry no `ts` (the built-in hub's `status` ack,
/// `{"ok":true}`, as every heartbeat's ack): no measurement, no error.
#[tokio::test(start_paused = true)]
async fn a_hub_whose_acks_carry_no_ts_gives_no_clock() {
    let t = hub().await;
    let fixture = Fixture::new(&scenario(
        &t,
        r#"heartbeat = { event = "status", every = "200ms", ack = true }"#,
        10,
    ));
    let outcome = fixture.run(Default::default()).await;
    assert_eq!(outcome.exit, stampede::error::ExitStatus::Passed);
    // The step is the event's name: the heartbeat sent as `status`.
    assert_eq!(acks(&outcome.totals, "status"), 10 * 7, "acked, without ts");
    let text = std::fs::read_to_string(outcome.result_dir.join("summary.json")).unwrap();
    let summary = json::read(&outcome.result_dir.join("summary.json")).unwrap();
    assert_eq!(summary.meta.clock, None);
    assert!(!text.contains("\"clock\":"), "no clock field: {text}");
    t.shutdown().await;
}
