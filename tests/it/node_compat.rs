//! Compatibility with the reference Socket.IO server: the `socket.io` 4.x
//! npm package run by node (tests/node/server.js, installed by
//! `npm ci --prefix tests/node`), as the hub of socketio agents and a hub
//! commander, with 300 ms pings; then a hub restart on the same port.
//!
//! A third test needs no engine: the crate's Socket.IO codec
//! (`protocol::socketio`) against the same server, restart included.
//!
//! They run by default: without node, npm or the npm packages they fail,
//! saying how to install them (CI or not).
//!
//! The node server runs in its own process, on the wall clock: the tests
//! wait on conditions (its output lines, the engine's counts) with generous
//! limits and assert counts, not speed.

use crate::common::{count, step, Fixture};
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use stampede::error::ExitStatus;
use stampede::metrics::{CounterId, HistId, TagFilter, Totals};
use stampede::protocol::socketio as sio;
use stampede::scenario::Overrides;
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// Ping interval the reference server announces (ms): short, so every run
/// crosses many pings that must be answered.
const PING_MS: u32 = 300;
/// Ping timeout it announces (ms): how long the server waits for a pong (and
/// we for the next ping after the interval). Long next to the interval, so a
/// process stalled for a moment on a loaded 2-core machine is not dropped
/// (300 ms made the suite flaky), and short enough that the idle check below
/// outlasts two whole ping deadlines.
const PING_TIMEOUT_MS: u32 = 2000;
/// node start-up to `LISTENING`.
const START: Duration = Duration::from_secs(30);
/// A whole run, however broken the engine is.
const RUN_LIMIT: Duration = Duration::from_secs(60);
/// Agents (re-)registering with the server.
const REGISTER_WITHIN: Duration = Duration::from_secs(30);

fn node_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node")
}

/// Install the locked npm packages once when they are missing (so a plain
/// `cargo test` on a fresh machine with node and npm runs these tests);
/// concurrent tests wait for the one install.
fn install_packages() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if node_dir()
            .join("node_modules/socket.io/package.json")
            .is_file()
        {
            return;
        }
        let _ = writeln!(
            std::io::stderr(),
            "node_compat: installing tests/node packages (npm ci --prefix tests/node)"
        );
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund", "--prefix"])
            .arg(node_dir())
            .stdout(std::process::Stdio::null())
            .status();
        if let Err(e) = status {
            let _ = writeln!(std::io::stderr(), "node_compat: cannot run npm: {e}");
        }
    });
}

/// How to get what these tests need.
const INSTALL_HINT: &str =
    "install node and npm (apt-get install nodejs npm), then the packages (npm ci --prefix tests/node)";

/// Panics, saying what is missing and how to install it, unless node and
/// the `socket.io` package are there (installing the package when npm is).
fn require_node(test: &str) {
    install_packages();
    let problem = match Command::new("node").arg("--version").output() {
        Err(e) => Some(format!("cannot run `node`: {e}")),
        Ok(out) if !out.status.success() => Some(format!("`node --version` failed: {out:?}")),
        Ok(_)
            if !node_dir()
                .join("node_modules/socket.io/package.json")
                .is_file() =>
        {
            Some(
                "tests/node/node_modules/socket.io is missing (run `npm ci --prefix tests/node`)"
                    .to_owned(),
            )
        }
        Ok(_) => None,
    };
    if let Some(problem) = problem {
        panic!("node_compat::{test} needs node: {problem}; {INSTALL_HINT}");
    }
}

/// tests/node/server.js running under node; killed (and reaped) on drop.
/// Its stdin is held: should this process die, node sees EOF and exits.
struct NodeHub {
    child: Child,
    _stdin: ChildStdin,
    port: u16,
    lines: mpsc::UnboundedReceiver<String>,
    log: Arc<Mutex<Vec<String>>>,
}

impl NodeHub {
    /// Starts the server on `port` (0: any) and waits for `LISTENING`.
    async fn start(port: u16) -> NodeHub {
        let mut child = Command::new("node")
            .arg(node_dir().join("server.js"))
            .args(["--port", &port.to_string()])
            .args(["--ping-interval", &PING_MS.to_string()])
            .args(["--ping-timeout", &PING_TIMEOUT_MS.to_string()])
            .args(["--max-lifetime", "120000"])
            .current_dir(node_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn node tests/node/server.js");
        let stdin = child.stdin.take().expect("piped stdin");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, lines) = mpsc::unbounded_channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let reader_log = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                reader_log.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let mut hub = NodeHub {
            child,
            _stdin: stdin,
            port: 0,
            lines,
            log,
        };
        let listening = hub
            .wait_line("LISTENING", START, |l| l.starts_with("LISTENING "))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        hub.port = listening["LISTENING ".len()..]
            .trim()
            .parse()
            .expect("LISTENING <port>");
        if port != 0 {
            assert_eq!(hub.port, port, "restarted on another port");
        }
        hub
    }

    /// The next output line matching `ok`, within `within`.
    async fn wait_line(
        &mut self,
        what: &str,
        within: Duration,
        ok: impl Fn(&str) -> bool,
    ) -> Result<String, String> {
        let lines = &mut self.lines;
        let found = tokio::time::timeout(within, async {
            while let Some(line) = lines.recv().await {
                if ok(&line) {
                    return Some(line);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(line)) => Ok(line),
            Ok(None) => Err(format!(
                "the node server exited before {what}; its output:\n{}",
                self.tail(60)
            )),
            Err(_) => Err(format!(
                "no {what} within {within:?}; the node server's output:\n{}",
                self.tail(60)
            )),
        }
    }

    /// Waits until `n` distinct agent ids registered (counted from now on).
    async fn wait_registered(&mut self, n: usize, within: Duration) -> Result<(), String> {
        let deadline = Instant::now() + within;
        let mut ids = HashSet::new();
        while ids.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            let what = format!("{n} registrations (have {})", ids.len());
            let line = self
                .wait_line(&what, left, |l| l.starts_with("REGISTER "))
                .await?;
            ids.insert(line["REGISTER ".len()..].to_owned());
        }
        Ok(())
    }

    fn output(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn tail(&self, n: usize) -> String {
        let log = self.log.lock().unwrap();
        log[log.len().saturating_sub(n)..].join("\n")
    }

    /// SIGKILL (a crashed hub), reaped; returns everything it printed.
    fn kill(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.output()
    }
}

impl Drop for NodeHub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every non-zero hub counter and histogram sample count, for failure messages.
fn digest(totals: &Totals) -> String {
    let layout = totals.layout();
    let mut out = Vec::new();
    for (i, d) in layout.counters.iter().enumerate() {
        let n = totals.counter(CounterId(i as u32), None);
        if d.metric.starts_with("hub.") && n > 0 {
            let kind = d
                .kind
                .as_deref()
                .map(|k| format!("{{{k}}}"))
                .unwrap_or_default();
            out.push(format!(
                "  {}{kind} [{}/{}] = {n}",
                d.metric, d.population, d.step
            ));
        }
    }
    for (i, d) in layout.hists.iter().enumerate() {
        let h = totals.hist(HistId(i as u32), None);
        if d.metric.starts_with("hub.") && !h.is_empty() {
            out.push(format!(
                "  {} [{}/{}]: {} samples, p50 {} max {}",
                d.metric,
                d.population,
                d.step,
                h.len(),
                h.value_at_quantile(0.5),
                h.max()
            ));
        }
    }
    if out.is_empty() {
        "  (no hub.* series recorded anything)".to_owned()
    } else {
        out.join("\n")
    }
}

/// Samples of `metric` over every series matching `filter` (0 when none).
fn samples(totals: &Totals, metric: &str, filter: &TagFilter) -> u64 {
    totals.select_hist(metric, filter).map_or(0, |h| h.len())
}

/// Lines of `log` starting with `prefix`, without it.
fn lines<'a>(log: &'a [String], prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    log.iter().filter_map(move |l| l.strip_prefix(prefix))
}

const AGENTS: u64 = 20;
/// Commands per second during the 1.5 s `steady` phase…
const COMMAND_RATE: u64 = 4;
/// …so exactly this many commands (rate × duration).
const COMMANDS: u64 = 6;
/// The whole plan: connect 2 s, steady 1.5 s, settle 2 s.
const PLAN_MS: u64 = 5500;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn socketio_agents_and_commander_against_the_reference_server() {
    require_node("socketio_agents_and_commander_against_the_reference_server");
    let hub = NodeHub::start(0).await;
    // 2 s to connect (20 loopback connections to a local node take
    // milliseconds: generous, so that every agent is in the room when the
    // first command goes out), then 1.5 s of heartbeats, statuses and
    // commands (several 300 ms ping intervals, so pongs must be answered),
    // then 2 s for the last command's results to come back.
    let fixture = Fixture::new(&format!(
        r#"
name = "node-compat"
seed = 7

[target]
hub = "http://127.0.0.1:{port}"

[hub]
timeout = "5s"

[[agents]]
name = "agent"
protocol = "socketio"
auth = {{ token = "t-{{{{ agent.id }}}}" }}
register = {{ event = "register", data = {{ id = "agent-{{{{ agent.id }}}}" }}, ack = true, match = {{ ok = true }} }}
heartbeat = {{ every = "200ms", event = "heartbeat", ack = true }}
status = {{ every = "300ms", event = "status", ack = true, data = {{ load = "{{{{ rand(0, 100) }}}}" }} }}
on_command = {{ event = "command", reply = "result", delay = "1ms..5ms" }}

[[commanders]]
name = "ops"
protocol = "socketio"
send = {{ event = "command", to = "agents", data = {{ op = "update" }} }}
result = "result"
timeout = "2s"

[[phases]]
name = "connect"
duration = "2s"
agents = {{ connected = {AGENTS}, connect_rate = "max" }}

[[phases]]
name = "steady"
duration = "1500ms"
commanders = {{ rate = "{COMMAND_RATE}/s" }}

[[phases]]
name = "settle"
duration = "2s"

[slo]
"hub.connect.p99" = "< 2s"
"hub.command.delivery.p99" = "< 1s"
"#,
        port = hub.port
    ));
    let outcome = tokio::time::timeout(RUN_LIMIT, fixture.run(Overrides::default()))
        .await
        .unwrap_or_else(|_| panic!("the run did not end within {RUN_LIMIT:?}"));
    let totals = &outcome.totals;
    let log = hub.output();
    let context = format!(
        "totals:\n{}\nnode server (last lines):\n{}",
        digest(totals),
        hub.tail(40)
    );

    // Connected and registered once each (no fault, so no reconnect), with
    // the auth payload and the register ack.
    assert_eq!(
        count(totals, "hub.registrations", None),
        AGENTS,
        "registrations\n{context}"
    );
    let agents_only = TagFilter {
        population: Some("agent".into()),
        ..TagFilter::default()
    };
    assert_eq!(
        samples(totals, "hub.connect", &agents_only),
        AGENTS,
        "hub.connect samples\n{context}"
    );
    assert_eq!(
        samples(totals, "hub.register", &TagFilter::default()),
        AGENTS,
        "hub.register samples\n{context}"
    );
    let mut registered: Vec<&str> = lines(&log, "REGISTER ").collect();
    registered.sort_unstable();
    let mut expected: Vec<String> = (0..AGENTS).map(|i| format!("agent-{i}")).collect();
    expected.sort_unstable();
    assert_eq!(
        registered, expected,
        "the server's registrations\n{context}"
    );
    let mut tokens: Vec<&str> = lines(&log, "CONNECT ")
        .filter_map(|l| l.split_once(' ').map(|(_, auth)| auth))
        .filter(|auth| auth.starts_with(r#"{"token":"#))
        .collect();
    tokens.sort_unstable();
    let mut expected: Vec<String> = (0..AGENTS)
        .map(|i| format!(r#"{{"token":"t-{i}"}}"#))
        .collect();
    expected.sort_unstable();
    assert_eq!(tokens, expected, "auth tokens the server saw\n{context}");

    // No fault: nothing failed, and pings were answered in time both ways.
    assert_eq!(
        count(totals, "hub.errors", None),
        0,
        "hub.errors\n{context}"
    );
    for kind in ["ping_timeout", "server_close", "reset", "protocol"] {
        assert_eq!(
            count(totals, "hub.disconnects", Some(kind)),
            0,
            "hub.disconnects{{{kind}}}\n{context}"
        );
    }
    assert!(
        !lines(&log, "DISCONNECT ").any(|l| l.ends_with("ping timeout")),
        "the server dropped a client that did not answer its pings\n{context}"
    );

    // Acked heartbeats and statuses: how many depends on when each agent
    // registered (wall clock), so a range: at least one each, at most one
    // per period of the whole plan, plus one, each.
    for (message, every_ms) in [("heartbeat", 200), ("status", 300)] {
        let n = samples(totals, "hub.message.rtt", &step(message));
        let most = AGENTS * (PLAN_MS / every_ms + 1);
        assert!(
            (AGENTS..=most).contains(&n),
            "{n} {message} rtt samples, expected {AGENTS}..={most}\n{context}"
        );
    }

    // Commands through the hub: the commander's schedule (rate × duration)
    // sent exactly COMMANDS, each fanned out to the whole room, each
    // answered by every agent, every result routed back.
    let commands = count(totals, "hub.commands", None);
    assert_eq!(commands, COMMANDS, "hub.commands\n{context}");
    let received = count(totals, "hub.command.received", None);
    assert_eq!(
        received,
        COMMANDS * AGENTS,
        "commands received by the agents\n{context}"
    );
    assert_eq!(
        samples(totals, "hub.command.delivery", &TagFilter::default()),
        COMMANDS * AGENTS,
        "one hub.command.delivery sample per received command\n{context}"
    );
    assert_eq!(
        count(totals, "hub.command.undelivered", None),
        0,
        "hub.command.undelivered\n{context}"
    );
    // One fan-out time per command (send → the last agent that got it) and
    // one rtt (send → its first result). Loopback hops through node, and a
    // 1–5 ms reply delay: milliseconds; 1 s (the delivery SLO's bound)
    // leaves room for a loaded machine.
    for metric in ["hub.command.fanout", "hub.command.rtt"] {
        let h = totals
            .select_hist(metric, &TagFilter::default())
            .unwrap_or_else(|| panic!("no {metric}\n{context}"));
        assert_eq!(h.len(), COMMANDS, "{metric} samples\n{context}");
        assert!(
            h.min() > 0 && h.max() < 1_000_000,
            "{metric} from {} to {} µs\n{context}",
            h.min(),
            h.max()
        );
    }
    let fanouts: Vec<u64> = lines(&log, "COMMAND ")
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    assert_eq!(
        fanouts,
        vec![AGENTS; COMMANDS as usize],
        "the server's fan-outs, one per command\n{context}"
    );
    let results: Vec<&str> = lines(&log, "RESULT ").collect();
    assert_eq!(
        results.len() as u64,
        COMMANDS * AGENTS,
        "results the server routed\n{context}"
    );
    assert!(
        results.iter().all(|l| l.ends_with(" 1")),
        "every result routed back to the commander\n{context}"
    );

    assert_eq!(outcome.exit, ExitStatus::Passed, "SLOs\n{context}");
}

const RESTART_AGENTS: u64 = 10;
/// The restart run's only phase. The restart and the re-registration of
/// every agent need a node start-up and a few backoff delays (≤ 500 ms):
/// a second or two, more on a loaded machine; the phase leaves ample room
/// and the test waits on the registrations themselves, not on a time.
const HOLD: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_reconnect_when_the_reference_server_restarts_on_the_same_port() {
    require_node("agents_reconnect_when_the_reference_server_restarts_on_the_same_port");
    let mut first = NodeHub::start(0).await;
    let port = first.port;
    let fixture = Fixture::new(&format!(
        r#"
name = "node-restart"
seed = 7

[target]
hub = "http://127.0.0.1:{port}"

[hub]
timeout = "5s"

[[agents]]
name = "agent"
protocol = "socketio"
register = {{ event = "register", data = {{ id = "agent-{{{{ agent.id }}}}" }}, ack = true, match = {{ ok = true }} }}
heartbeat = {{ every = "200ms", event = "heartbeat", ack = true }}
reconnect = {{ base = "100ms", max = "500ms", jitter = "full" }}

[[phases]]
name = "hold"
duration = "{hold}s"
agents = {{ connected = {RESTART_AGENTS}, connect_rate = "max" }}
"#,
        hold = HOLD.as_secs()
    ));
    let started = Instant::now();
    // The hub goes down under a registered, heartbeating population (once
    // every agent registered) and comes back on the same port while the
    // run goes on; then every agent registers again, before the run ends.
    let restart = async move {
        first
            .wait_registered(RESTART_AGENTS as usize, REGISTER_WITHIN)
            .await?;
        let first_log = first.kill();
        let killed = Instant::now();
        let mut second = NodeHub::start(port).await;
        let left = (started + HOLD).saturating_duration_since(Instant::now());
        second
            .wait_registered(RESTART_AGENTS as usize, left)
            .await?;
        Ok::<_, String>((first_log, second, killed))
    };
    let (outcome, restarted) = tokio::time::timeout(RUN_LIMIT, async {
        tokio::join!(fixture.run(Overrides::default()), restart)
    })
    .await
    .unwrap_or_else(|_| panic!("the run did not end within {RUN_LIMIT:?}"));
    let totals = &outcome.totals;
    let ended = Instant::now();
    let (first_log, second, killed) =
        restarted.unwrap_or_else(|e| panic!("{e}\ntotals:\n{}", digest(totals)));
    let context = format!(
        "totals:\n{}\nfirst node server (last lines):\n{}\nrestarted node server (last lines):\n{}",
        digest(totals),
        first_log[first_log.len().saturating_sub(20)..].join("\n"),
        second.tail(30)
    );

    // Each agent registered once with each server.
    let ids = |log: &[String]| {
        let mut ids: Vec<String> = lines(log, "REGISTER ").map(str::to_owned).collect();
        ids.sort_unstable();
        ids
    };
    let mut expected: Vec<String> = (0..RESTART_AGENTS).map(|i| format!("agent-{i}")).collect();
    expected.sort_unstable();
    assert_eq!(ids(&first_log), expected, "first server\n{context}");
    assert_eq!(ids(&second.output()), expected, "second server\n{context}");
    // Every agent lost its connection once and came back once.
    assert_eq!(
        count(totals, "hub.disconnects", None),
        RESTART_AGENTS,
        "hub.disconnects\n{context}"
    );
    assert_eq!(
        count(totals, "hub.reconnects", None),
        RESTART_AGENTS,
        "hub.reconnects\n{context}"
    );
    assert_eq!(
        count(totals, "hub.registrations", None),
        2 * RESTART_AGENTS,
        "hub.registrations (first time and again)\n{context}"
    );
    // Every attempt either got in (and registered) or failed.
    assert_eq!(
        count(totals, "hub.connects", None),
        2 * RESTART_AGENTS + count(totals, "hub.errors", None),
        "attempts = registrations + failures\n{context}"
    );
    let reconnect = totals
        .select_hist("hub.reconnect", &TagFilter::default())
        .unwrap_or_else(|| panic!("no hub.reconnect series\n{context}"));
    assert_eq!(
        reconnect.len(),
        RESTART_AGENTS,
        "hub.reconnect samples\n{context}"
    );
    // Each agent was down from the moment it saw the kill (not before it)
    // until it registered again (before the run ended): a reconnect lasts
    // more than 0 and at most from the kill to the end of the run.
    let at_most = u64::try_from((ended - killed).as_micros()).unwrap();
    assert!(
        reconnect.min() > 0 && reconnect.max() <= at_most,
        "hub.reconnect from {} to {} µs, the run ended {at_most} µs after the kill\n{context}",
        reconnect.min(),
        reconnect.max()
    );
    let attempts = totals
        .select_hist("hub.reconnect.attempts", &TagFilter::default())
        .unwrap_or_else(|| panic!("no hub.reconnect.attempts\n{context}"));
    assert_eq!(
        attempts.len(),
        RESTART_AGENTS,
        "hub.reconnect.attempts samples\n{context}"
    );
    // Refused connections while the hub is down are expected; protocol
    // faults and failed registrations are not.
    for kind in ["protocol", "register", "rejected", "handshake"] {
        assert_eq!(
            count(totals, "hub.errors", Some(kind)),
            0,
            "hub.errors{{{kind}}}\n{context}"
        );
    }
}

// ---- the crate's Socket.IO codec against the reference server ---------------
//
// Needs no engine: stampede's `protocol::socketio` codec over
// tokio-tungstenite, with the same NodeHub harness (start, wait on output
// lines, kill, restart on the same port) the runs above use.

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Generous: a wait for something the server does, never for time to pass.
const WAIT: Duration = Duration::from_secs(30);

/// One Socket.IO client on namespace `/`, built from the crate's codec.
struct CodecClient {
    ws: Ws,
    decoder: sio::Decoder,
    out: String,
    open: sio::OpenInfo,
    pings: u32,
    /// When the Engine.IO open packet arrived (the server's ping clock starts).
    opened: Instant,
}

impl CodecClient {
    async fn connect(port: u16, auth: Option<&str>) -> CodecClient {
        let url = format!("ws://127.0.0.1:{port}/socket.io/?EIO=4&transport=websocket");
        let (mut ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(url))
            .await
            .expect("WebSocket upgrade in time")
            .expect("WebSocket upgrade");
        let first = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("Engine.IO open in time")
            .expect("a frame")
            .expect("a frame");
        let Message::Text(text) = first else {
            panic!("Engine.IO open: {first:?}")
        };
        let open = match sio::parse_eio_text(text.as_str()).expect("a valid open packet") {
            sio::EioPacket::Open(open) => open,
            other => panic!("Engine.IO open, got {other:?}"),
        };
        let opened = Instant::now();
        let mut client = CodecClient {
            ws,
            decoder: sio::Decoder::new(open.max_payload),
            out: String::new(),
            open,
            pings: 0,
            opened,
        };
        sio::encode_connect("/", auth, &mut client.out);
        client.flush().await;
        let reply = client.packet().await.expect("CONNECT answer");
        assert_eq!(reply.kind, sio::SioKind::Connect, "{reply:?}");
        assert!(reply.connect_sid().is_some(), "{reply:?}");
        client
    }

    async fn flush(&mut self) {
        let frame = std::mem::take(&mut self.out);
        self.ws.send(Message::text(frame)).await.expect("send");
    }

    async fn emit(&mut self, event: &str, args_json: &str, ack_id: Option<u64>) {
        sio::encode_event("/", event, args_json, ack_id, &mut self.out);
        self.flush().await;
    }

    /// The next Socket.IO packet, answering pings on the way; Err when the
    /// connection ends or nothing comes within `WAIT`.
    async fn packet(&mut self) -> Result<sio::SioPacket, String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let frame = match tokio::time::timeout(left, self.ws.next()).await {
                Err(_) => return Err(format!("nothing within {WAIT:?}")),
                Ok(None) => return Err("connection ended".into()),
                Ok(Some(Err(e))) => return Err(format!("connection failed: {e}")),
                Ok(Some(Ok(frame))) => frame,
            };
            let packet = match frame {
                Message::Text(text) => {
                    match sio::parse_eio_text(text.as_str()).map_err(|e| e.to_string())? {
                        sio::EioPacket::Ping(data) => {
                            self.pings += 1;
                            sio::pong_with(data, &mut self.out);
                            self.flush().await;
                            None
                        }
                        sio::EioPacket::Message(payload) => {
                            self.decoder.feed_text(payload).map_err(|e| e.to_string())?
                        }
                        sio::EioPacket::Close => return Err("Engine.IO close".into()),
                        _ => None,
                    }
                }
                Message::Binary(bytes) => {
                    self.decoder.feed_binary(bytes).map_err(|e| e.to_string())?
                }
                Message::Close(_) => return Err("WebSocket close".into()),
                _ => None,
            };
            if let Some(packet) = packet {
                return Ok(packet);
            }
        }
    }

    /// The first argument of the ack `id` (the next packet must be it).
    async fn ack(&mut self, id: u64) -> serde_json::Value {
        let p = self.packet().await.expect("an ack");
        assert!(p.kind.is_ack() && p.ack_id == Some(id), "ack {id}: {p:?}");
        p.event_args().first().cloned().expect("an ack argument")
    }

    /// The next event: (name, first argument).
    async fn event(&mut self) -> (String, serde_json::Value) {
        let p = self.packet().await.expect("an event");
        assert!(p.kind.is_event(), "an event: {p:?}");
        let name = p.event_name().expect("event name").to_owned();
        (name, p.event_args().first().cloned().unwrap_or_default())
    }

    /// Answers pings for `d`; nothing else may arrive, nor the end.
    async fn idle(&mut self, d: Duration) {
        match tokio::time::timeout(d, self.packet()).await {
            Err(_) => {}
            Ok(p) => panic!("while idle: {p:?}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_socketio_codec_speaks_to_the_reference_server() {
    require_node("the_socketio_codec_speaks_to_the_reference_server");
    let mut hub = NodeHub::start(0).await;

    // Handshake: the announced pings, CONNECT with an auth payload.
    let mut agents = Vec::new();
    for i in 0..2 {
        let auth = format!(r#"{{"token":"t-{i}"}}"#);
        let mut a = CodecClient::connect(hub.port, Some(&auth)).await;
        assert_eq!(a.open.ping_interval, Duration::from_millis(PING_MS.into()));
        assert_eq!(
            a.open.ping_timeout,
            Duration::from_millis(PING_TIMEOUT_MS.into())
        );
        hub.wait_line("CONNECT with auth", WAIT, |l| {
            l.starts_with("CONNECT ") && l.ends_with(&format!(" {auth}"))
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        a.emit("register", &format!(r#"{{"id":"agent-{i}"}}"#), Some(1))
            .await;
        assert_eq!(
            a.ack(1).await,
            json!({"ok": true, "id": format!("agent-{i}")})
        );
        a.emit("heartbeat", "", Some(2)).await;
        assert_eq!(a.ack(2).await, json!({"ok": true}));
        a.emit("status", r#"{"load":42}"#, Some(3)).await;
        assert_eq!(a.ack(3).await, json!({"ok": true}));
        agents.push(a);
    }

    // A command fanned out to the room, results routed to its sender.
    let mut ops = CodecClient::connect(hub.port, None).await;
    let command = json!({"id": "ops-1", "to": "agents", "sent_us": 1_700_000_000_000_000u64, "data": {"op": "update"}});
    ops.emit("command", &command.to_string(), Some(1)).await;
    assert_eq!(ops.ack(1).await, json!({"delivered": 2}));
    for (i, a) in agents.iter_mut().enumerate() {
        let (name, payload) = a.event().await;
        assert_eq!((name.as_str(), &payload), ("command", &command));
        let result = json!({"command_id": "ops-1", "sent_us": payload["sent_us"], "agent": format!("agent-{i}")});
        a.emit("result", &result.to_string(), None).await;
    }
    let mut from = Vec::new();
    for _ in 0..2 {
        let (name, payload) = ops.event().await;
        assert_eq!(name, "result");
        assert_eq!(payload["command_id"], "ops-1");
        assert_eq!(payload["sent_us"], command["sent_us"]);
        from.push(payload["agent"].as_str().unwrap_or_default().to_owned());
    }
    from.sort();
    assert_eq!(from, ["agent-0", "agent-1"]);

    // Two ping deadlines (interval + timeout) pass: pongs keep all three in
    // (a client that did not answer would be dropped within one).
    let idle = Duration::from_millis(2 * u64::from(PING_MS + PING_TIMEOUT_MS));
    let [a0, a1] = &mut agents[..] else {
        unreachable!()
    };
    tokio::join!(a0.idle(idle), a1.idle(idle), ops.idle(idle));
    // The server pings every PING_MS at most (the next ping is scheduled
    // when the pong arrives): at most one per interval since the open
    // packet, one more for timer rounding between node and us.
    for c in agents.iter().chain([&ops]) {
        let interval = Duration::from_millis(PING_MS.into());
        let most = (c.opened.elapsed().as_millis() / interval.as_millis()) as u32 + 1;
        assert!(
            (2..=most).contains(&c.pings),
            "{} pings in {idle:?} idle, expected 2..={most}",
            c.pings
        );
    }
    assert!(
        !hub.output().iter().any(|l| l.ends_with("ping timeout")),
        "{}",
        hub.tail(20)
    );

    // A hub restart on the same port: the connection ends, a new one registers.
    let port = hub.port;
    hub.kill();
    let ended = agents[0].packet().await;
    assert!(
        ended.is_err(),
        "the connection outlived the server: {ended:?}"
    );
    let mut hub = NodeHub::start(port).await;
    let mut again = CodecClient::connect(port, None).await;
    again.emit("register", r#"{"id":"agent-0"}"#, Some(7)).await;
    assert_eq!(again.ack(7).await, json!({"ok": true, "id": "agent-0"}));
    hub.wait_registered(1, WAIT)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
}
