//! Integration tests of the built-in hub: plain WebSocket and Socket.IO
//! (spoken by hand over tokio-tungstenite), commands, kicks and restarts.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use stampede::target::{self, HubStats, RunningTarget, TargetConfig};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a wall-clock wait on a condition may take before failing:
/// generous, for a loaded machine (the waits end as soon as the condition holds).
const WAIT: Duration = Duration::from_secs(30);

async fn start(config: TargetConfig) -> RunningTarget {
    target::spawn("127.0.0.1:0".parse().unwrap(), config)
        .await
        .expect("target starts")
}

async fn stats(t: &RunningTarget) -> HubStats {
    let r = reqwest::get(format!("{}/admin/hub/stats", t.url()))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.unwrap()
}

/// Polls the hub stats until `ok` holds (at most [`WAIT`]).
async fn stats_until(t: &RunningTarget, what: &str, ok: impl Fn(&HubStats) -> bool) -> HubStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = stats(t).await;
        if ok(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn post(t: &RunningTarget, path: &str, body: Value) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}{path}", t.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// An ack's `ts` (Unix ms, taken by the hub between `before` and now).
fn assert_within_ms(ts: &Value, before: u64) {
    let ts = ts.as_u64().unwrap_or_else(|| panic!("ts {ts}"));
    let after = unix_ms();
    assert!(
        (before..=after).contains(&ts),
        "ts {ts} not in [{before}, {after}]"
    );
}

// ---- plain WebSocket -------------------------------------------------------

async fn ws_connect(addr: SocketAddr) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/ws"))
        .await
        .expect("ws connects");
    ws
}

async fn ws_send(ws: &mut Ws, v: Value) {
    ws.send(Message::text(v.to_string())).await.unwrap();
}

/// The next JSON text frame (pings are answered by tungstenite).
async fn ws_recv(ws: &mut Ws) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, ws.next())
            .await
            .expect("timed out waiting for a frame")
            .expect("connection open")
            .expect("frame");
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

async fn ws_register(addr: SocketAddr, id: &str) -> Ws {
    let mut ws = ws_connect(addr).await;
    ws_send(&mut ws, json!({"type": "register", "id": id})).await;
    assert_eq!(
        ws_recv(&mut ws).await,
        json!({"type": "registered", "id": id})
    );
    ws
}

/// Waits until the server ends the connection (close frame, reset or EOF),
/// skipping other frames.
async fn expect_closed(ws: &mut Ws, who: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, ws.next()).await {
            Err(_) => panic!("{who} was not closed"),
            Ok(None | Some(Err(_)) | Some(Ok(Message::Close(_)))) => return,
            Ok(Some(Ok(_))) => {}
        }
    }
}

// ---- Socket.IO by hand -----------------------------------------------------

/// A Socket.IO v5 client over an Engine.IO v4 WebSocket, spoken by hand.
struct Sio {
    ws: Ws,
    /// `""` for `/`, else `"/agents,"`: the packet prefix of the namespace.
    ns: String,
    pings: usize,
}

impl Sio {
    /// Opens the Engine.IO session (returns its open packet) without
    /// joining a namespace.
    async fn open(addr: SocketAddr) -> (Sio, Value) {
        let url = format!("ws://{addr}/socket.io/?EIO=4&transport=websocket");
        let (ws, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("socket.io connects");
        let mut s = Sio {
            ws,
            ns: String::new(),
            pings: 0,
        };
        let open = s.packet().await;
        let body = open.strip_prefix('0').expect("an Engine.IO open packet");
        (s, serde_json::from_str(body).unwrap())
    }

    /// Opens a session and joins namespace `ns` with `auth`.
    async fn connect(addr: SocketAddr, ns: &str, auth: Option<Value>) -> Sio {
        let (mut s, _) = Sio::open(addr).await;
        let reply = s.join(ns, auth).await;
        let sid = reply
            .strip_prefix(&format!("40{}", s.ns))
            .unwrap_or_else(|| panic!("a CONNECT answer, got {reply}"));
        let sid: Value = serde_json::from_str(sid).unwrap();
        assert!(sid["sid"].is_string(), "{sid}");
        s
    }

    /// Sends CONNECT for `ns`; returns the answer packet (CONNECT or CONNECT_ERROR).
    async fn join(&mut self, ns: &str, auth: Option<Value>) -> String {
        self.ns = if ns == "/" {
            String::new()
        } else {
            format!("{ns},")
        };
        let auth = auth.map(|a| a.to_string()).unwrap_or_default();
        let packet = format!("40{}{auth}", self.ns);
        self.send(packet).await;
        self.packet().await
    }

    async fn send(&mut self, packet: String) {
        self.ws.send(Message::text(packet)).await.unwrap();
    }

    /// Emits `event` with `data`, asking for an ack with this id if given.
    async fn emit(&mut self, event: &str, data: Value, ack: Option<u64>) {
        let ack = ack.map(|a| a.to_string()).unwrap_or_default();
        let packet = format!("42{}{ack}{}", self.ns, json!([event, data]));
        self.send(packet).await;
    }

    /// The next Engine.IO packet that is not a ping (pings are answered).
    async fn packet(&mut self) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let msg = tokio::time::timeout(left, self.ws.next())
                .await
                .expect("timed out waiting for a packet")
                .expect("connection open")
                .expect("frame");
            let Message::Text(t) = msg else { continue };
            if t.as_str() == "2" {
                self.pings += 1;
                self.send("3".into()).await;
                continue;
            }
            return t.as_str().to_string();
        }
    }

    /// The next Socket.IO EVENT: `(name, data)`.
    async fn event(&mut self) -> (String, Value) {
        let p = self.packet().await;
        let body = p
            .strip_prefix(&format!("42{}", self.ns))
            .unwrap_or_else(|| panic!("an EVENT, got {p}"));
        let v: Value = serde_json::from_str(body).unwrap();
        (v[0].as_str().unwrap().to_string(), v[1].clone())
    }

    /// The next ACK, which must have this id: its first argument.
    async fn ack(&mut self, id: u64) -> Value {
        let p = self.packet().await;
        let body = p
            .strip_prefix(&format!("43{}{id}", self.ns))
            .unwrap_or_else(|| panic!("an ACK {id}, got {p}"));
        let v: Value = serde_json::from_str(body).unwrap();
        v[0].clone()
    }

    async fn register(&mut self, id: &str) {
        self.emit("register", json!({"id": id}), Some(1)).await;
        assert_eq!(self.ack(1).await, json!({"ok": true, "id": id}));
    }
}

async fn sio_agent(addr: SocketAddr, ns: &str, id: &str) -> Sio {
    let mut s = Sio::connect(addr, ns, Some(json!({"token": "t"}))).await;
    s.register(id).await;
    s
}

// ---- tests -----------------------------------------------------------------

#[tokio::test]
async fn plain_ws_register_heartbeat_and_http_command_fanout() {
    let t = start(TargetConfig::default()).await;
    let mut a = ws_register(t.addr, "w1").await;
    let mut b = ws_register(t.addr, "w2").await;

    let before = unix_ms();
    ws_send(&mut a, json!({"type": "heartbeat"})).await;
    let ack = ws_recv(&mut a).await;
    assert_eq!(ack["type"], "heartbeat_ack");
    assert_within_ms(&ack["ts"], before);
    ws_send(&mut b, json!({"type": "status", "load": 0.5})).await;

    // WebSocket pings are answered.
    a.send(Message::Ping(b"hi".to_vec().into())).await.unwrap();
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, a.next()).await.unwrap().unwrap();
        if let Message::Pong(p) = msg.unwrap() {
            assert_eq!(&p[..], b"hi");
            break;
        }
    }

    let command = json!({"id": "c1", "to": "agents", "data": {"op": "deploy"}, "sent_ms": 42});
    let (s, body) = post(&t, "/api/commands", command).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["delivered"], 2);
    for ws in [&mut a, &mut b] {
        let got = ws_recv(ws).await;
        assert_eq!(
            got,
            json!({"type": "command", "id": "c1", "to": "agents", "data": {"op": "deploy"}, "sent_ms": 42})
        );
    }

    // Targeted, and a command without an id gets one.
    let (s, body) = post(
        &t,
        "/api/commands",
        json!({"to": ["w2", "nobody"], "data": 1}),
    )
    .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    assert_eq!(body["delivered"], 1);
    let got = ws_recv(&mut b).await;
    assert_eq!(got["id"], body["id"]);
    assert_eq!(got["data"], 1);

    ws_send(
        &mut b,
        json!({"type": "result", "command_id": "c1", "ok": true}),
    )
    .await;
    let (s, _) = post(&t, "/api/commands", json!({"to": 5})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    ws_send(&mut a, json!({"type": "bogus"})).await;
    assert_eq!(ws_recv(&mut a).await["type"], "error");

    let st = stats_until(&t, "the result", |s| s.results == 1).await;
    assert_eq!(
        st,
        HubStats {
            connected: 2,
            registered: 2,
            commands: 2,
            delivered: 3,
            results: 1,
            heartbeats: 1,
            statuses: 1,
            refusing: false,
        }
    );
    drop(a);
    stats_until(&t, "the disconnect", |s| {
        s.connected == 1 && s.registered == 1
    })
    .await;
    t.shutdown().await;
}

#[tokio::test]
async fn socketio_handshake_register_and_ping_pong() {
    let t = start(TargetConfig {
        hub_ping_interval: Duration::from_millis(300),
        hub_ping_timeout: Duration::from_millis(300),
        ..TargetConfig::default()
    })
    .await;
    let (mut s, open) = Sio::open(t.addr).await;
    assert_eq!(open["pingInterval"], 300);
    assert_eq!(open["pingTimeout"], 300);
    assert!(open["sid"].is_string());
    let reply = s.join("/", None).await;
    assert!(reply.starts_with("40{\"sid\":"), "{reply}");
    s.register("a1").await;

    // A client that never answers pings is dropped…
    let (mut mute, _) = Sio::open(t.addr).await;
    mute.send("40".into()).await;

    // …while one that does survives three intervals and more.
    let start = Instant::now();
    let mut heartbeats = 0;
    while s.pings < 4 {
        assert!(start.elapsed() < WAIT, "only {} pings", s.pings);
        let before = unix_ms();
        s.emit("heartbeat", json!({}), Some(7)).await;
        heartbeats += 1;
        let ack = s.ack(7).await;
        assert_eq!(ack["ok"], true);
        assert_within_ms(&ack["ts"], before);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(start.elapsed() >= Duration::from_millis(900));
    expect_closed(&mut mute.ws, "the client that ignores pings").await;

    s.emit("status", json!({"cpu": 3}), None).await;
    s.emit("heartbeat", json!({}), Some(8)).await;
    assert_eq!(s.ack(8).await["ok"], true);
    let st = stats_until(&t, "one socket", |s| s.connected == 1).await;
    assert_eq!(st.registered, 1);
    assert_eq!(st.heartbeats, heartbeats + 1, "{st:?}");
    assert_eq!(st.statuses, 1);
    t.shutdown().await;
}

#[tokio::test]
async fn socketio_commander_reaches_every_kind_of_agent_and_gets_results() {
    let t = start(TargetConfig::default()).await;
    let mut a1 = sio_agent(t.addr, "/", "a1").await;
    let mut a2 = sio_agent(t.addr, "/agents", "a2").await;
    let mut w3 = ws_register(t.addr, "w3").await;
    let mut boss = Sio::connect(t.addr, "/", None).await;

    let command = json!({"id": "k1", "to": "agents", "data": {"op": "ping"}, "sent_ms": 123});
    boss.emit("command", command.clone(), Some(1)).await;
    let ack = boss.ack(1).await;
    assert_eq!(ack["delivered"], 3, "{ack}");
    for agent in [&mut a1, &mut a2] {
        assert_eq!(
            agent.event().await,
            ("command".to_string(), command.clone())
        );
    }
    let mut framed = command.clone();
    framed["type"] = json!("command");
    assert_eq!(ws_recv(&mut w3).await, framed);

    a1.emit("result", json!({"command_id": "k1", "ok": true}), None)
        .await;
    assert_eq!(
        boss.event().await,
        (
            "result".to_string(),
            json!({"command_id": "k1", "ok": true})
        )
    );
    ws_send(
        &mut w3,
        json!({"type": "result", "command_id": "k1", "rc": 0}),
    )
    .await;
    assert_eq!(
        boss.event().await,
        ("result".to_string(), json!({"command_id": "k1", "rc": 0}))
    );

    // To a list of ids, and to a random sample.
    boss.emit(
        "command",
        json!({"id": "k2", "to": ["a2"], "data": 2}),
        Some(2),
    )
    .await;
    assert_eq!(boss.ack(2).await["delivered"], 1);
    assert_eq!(a2.event().await.1["id"], "k2");
    boss.emit("command", json!({"id": "k3", "to": {"sample": 2}}), Some(3))
        .await;
    assert_eq!(boss.ack(3).await["delivered"], 2);
    boss.emit("command", json!({"id": "k4", "to": "nobody"}), Some(4))
        .await;
    let ack = boss.ack(4).await;
    assert_eq!(ack["delivered"], 0);
    assert!(ack["error"].as_str().unwrap().contains("sample"), "{ack}");

    let st = stats(&t).await;
    assert_eq!((st.connected, st.registered), (4, 3));
    assert_eq!((st.commands, st.delivered, st.results), (3, 6, 2));
    t.shutdown().await;
}

#[tokio::test]
async fn socketio_connect_error_when_auth_asks_for_it() {
    let t = start(TargetConfig::default()).await;
    let (mut s, _) = Sio::open(t.addr).await;
    let reply = s.join("/", Some(json!({"reject": true}))).await;
    let body = reply
        .strip_prefix("44")
        .unwrap_or_else(|| panic!("a CONNECT_ERROR, got {reply}"));
    let v: Value = serde_json::from_str(body).unwrap();
    assert!(v["message"].as_str().unwrap().contains("reject"), "{v}");
    assert_eq!(stats(&t).await.connected, 0);

    // The same session may connect again with acceptable auth.
    let reply = s.join("/agents", Some(json!({"reject": false}))).await;
    assert!(reply.starts_with("40/agents,{\"sid\":"), "{reply}");
    assert_eq!(stats(&t).await.connected, 1);
    t.shutdown().await;
}

/// Engine.IO packets of one long-polling response (separated by 0x1e).
async fn poll(c: &reqwest::Client, url: &str) -> Vec<String> {
    let r = c.get(url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.unwrap();
    body.split('\u{1e}').map(str::to_string).collect()
}

#[tokio::test]
async fn socketio_long_polling_upgrades_to_websocket_and_can_be_kicked() {
    let t = start(TargetConfig::default()).await;
    let c = reqwest::Client::new();
    let base = format!("{}/socket.io/?EIO=4&transport=polling", t.url());
    let open = poll(&c, &base).await;
    let open: Value = serde_json::from_str(open[0].strip_prefix('0').unwrap()).unwrap();
    assert_eq!(open["upgrades"], json!(["websocket"]));
    let sid = open["sid"].as_str().unwrap().to_string();
    let url = format!("{base}&sid={sid}");
    let r = c.post(&url).body("40").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let deadline = Instant::now() + WAIT;
    'connected: loop {
        assert!(Instant::now() < deadline, "no CONNECT answer over polling");
        for p in poll(&c, &url).await {
            if p == "2" {
                c.post(&url).body("3").send().await.unwrap();
            } else if p.starts_with("40{") {
                break 'connected;
            }
        }
    }

    let ws_url = format!(
        "ws://{}/socket.io/?EIO=4&transport=websocket&sid={sid}",
        t.addr
    );
    let (ws, _) = tokio_tungstenite::connect_async(ws_url).await.unwrap();
    let mut s = Sio {
        ws,
        ns: String::new(),
        pings: 0,
    };
    s.send("2probe".into()).await;
    assert_eq!(s.packet().await, "3probe");
    s.send("5".into()).await;
    s.register("p1").await;
    let st = stats(&t).await;
    assert_eq!((st.connected, st.registered), (1, 1));

    // The upgraded transport is cut like any other.
    let (_, body) = post(&t, "/admin/hub/kick", json!({"fraction": 1})).await;
    assert_eq!(body, json!({"kicked": 1}));
    expect_closed(&mut s.ws, "the upgraded session").await;
    stats_until(&t, "no sockets", |s| s.connected == 0).await;
    t.shutdown().await;
}

#[tokio::test]
async fn kick_closes_the_requested_fraction() {
    let t = start(TargetConfig::default()).await;
    // Connection order: w1, w2, s1, s2; half of four is every second one.
    let mut w1 = ws_register(t.addr, "w1").await;
    let mut w2 = ws_register(t.addr, "w2").await;
    let mut s1 = sio_agent(t.addr, "/", "s1").await;
    let mut s2 = sio_agent(t.addr, "/", "s2").await;
    assert_eq!(stats(&t).await.connected, 4);

    let (s, body) = post(&t, "/admin/hub/kick", json!({"fraction": 0.5})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(body, json!({"kicked": 2}));
    expect_closed(&mut w2, "w2").await;
    expect_closed(&mut s2.ws, "s2").await;
    let st = stats_until(&t, "two left", |s| s.connected == 2).await;
    assert_eq!(st.registered, 2);

    ws_send(&mut w1, json!({"type": "heartbeat"})).await;
    assert_eq!(ws_recv(&mut w1).await["type"], "heartbeat_ack");
    s1.emit("heartbeat", json!({}), Some(2)).await;
    assert_eq!(s1.ack(2).await["ok"], true);
    let (_, body) = post(&t, "/api/commands", json!({"id": "after"})).await;
    assert_eq!(body["delivered"], 2);

    for bad in [
        json!({"fraction": 1.5}),
        json!({"fraction": -0.1}),
        json!({}),
    ] {
        let (s, _) = post(&t, "/admin/hub/kick", bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
    }
    let (_, body) = post(&t, "/admin/hub/kick", json!({"fraction": 1.0})).await;
    assert_eq!(body, json!({"kicked": 2}));
    stats_until(&t, "none left", |s| s.connected == 0 && s.registered == 0).await;
    t.shutdown().await;
}

/// Every kind of new hub connection is answered 503 (with `Retry-After`).
async fn assert_refused(t: &RunningTarget) {
    for url in [
        format!("ws://{}/ws", t.addr),
        format!("ws://{}/socket.io/?EIO=4&transport=websocket", t.addr),
    ] {
        match tokio_tungstenite::connect_async(&url).await {
            Err(tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 503, "{url}");
                assert_eq!(resp.headers()["retry-after"], "1", "{url}");
            }
            Err(e) => panic!("{url}: expected a 503, got {e}"),
            Ok(_) => panic!("{url}: expected a 503, got a connection"),
        }
    }
    let polling = reqwest::get(format!("{}/socket.io/?EIO=4&transport=polling", t.url()))
        .await
        .unwrap();
    assert_eq!(polling.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn restart_closes_everything_and_refuses_while_it_lasts() {
    let t = start(TargetConfig::default()).await;
    let mut w = ws_register(t.addr, "w").await;
    let mut s = sio_agent(t.addr, "/", "s").await;
    // An Engine.IO session that has not joined a namespace yet.
    let (mut bare, _) = Sio::open(t.addr).await;

    // A refusal that cannot end before the checks below, however slow the
    // machine: they always run (the end of a refusal is the next test).
    let (status, body) = post(&t, "/admin/hub/restart", json!({"refuse_for": "1h"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, json!({"closed": 3, "refusing_for": "1h"}));
    expect_closed(&mut w, "the ws agent").await;
    expect_closed(&mut s.ws, "the socket.io agent").await;
    expect_closed(&mut bare.ws, "the bare Engine.IO session").await;
    assert_refused(&t).await;
    // A shorter restart does not shorten the refusal.
    let (_, body) = post(&t, "/admin/hub/restart", json!({"refuse_for": "0"})).await;
    assert_eq!(body["refusing_for"], "0");
    assert_refused(&t).await;
    let st = stats_until(&t, "every connection gone", |s| s.connected == 0).await;
    assert_eq!(
        st,
        HubStats {
            connected: 0,
            registered: 0,
            commands: 0,
            delivered: 0,
            results: 0,
            heartbeats: 0,
            statuses: 0,
            refusing: true,
        }
    );
    let (status, _) = post(&t, "/admin/hub/restart", json!({"refuse_for": "soon"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    t.shutdown().await;
}

#[tokio::test]
async fn a_restart_refusal_ends_after_its_window_and_agents_come_back() {
    let t = start(TargetConfig::default()).await;
    let _w = ws_register(t.addr, "w").await;
    let window = Duration::from_millis(300);
    let before = Instant::now();
    let (_, body) = post(&t, "/admin/hub/restart", json!({"refuse_for": "300ms"})).await;
    assert_eq!(body, json!({"closed": 1, "refusing_for": "300ms"}));
    // The hub stops refusing `window` after the restart, which came after
    // `before`: never earlier than that (the wait's upper bound is
    // `stats_until`'s generous limit, a loaded machine's delay).
    let st = stats_until(&t, "the end of the refusal", |s| !s.refusing).await;
    assert!(
        before.elapsed() >= window,
        "refusal over after {:?}",
        before.elapsed()
    );
    assert_eq!((st.connected, st.registered), (0, 0));
    let mut w = ws_register(t.addr, "w").await;
    let mut s = sio_agent(t.addr, "/", "s").await;
    ws_send(&mut w, json!({"type": "heartbeat"})).await;
    assert_eq!(ws_recv(&mut w).await["type"], "heartbeat_ack");
    s.emit("heartbeat", json!({}), Some(5)).await;
    assert_eq!(s.ack(5).await["ok"], true);
    let st = stats(&t).await;
    assert_eq!((st.connected, st.registered, st.heartbeats), (2, 2, 2));
    t.shutdown().await;
}

#[tokio::test]
async fn hub_ping_knobs_parse_and_show_in_admin_config_only_when_set() {
    let c: TargetConfig =
        toml::from_str("hub_ping_interval = \"300ms\"\nhub_ping_timeout = \"1s\"").unwrap();
    assert_eq!(c.hub_ping_interval, Duration::from_millis(300));
    assert_eq!(c.hub_ping_timeout, Duration::from_secs(1));
    let d: TargetConfig = toml::from_str("").unwrap();
    assert_eq!(d.hub_ping_interval, Duration::from_secs(25));
    assert_eq!(d.hub_ping_timeout, Duration::from_secs(20));
    assert!(toml::from_str::<TargetConfig>("hub_ping_interval = \"0\"")
        .unwrap()
        .validate()
        .is_err());

    let t = start(c).await;
    let url = format!("{}/admin/config", t.url());
    let now: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    assert_eq!(now["hub_ping_interval"], "300ms");
    let (s, _) = post(&t, "/admin/config", now).await;
    assert_eq!(s, StatusCode::OK);
    let (s, b) = post(&t, "/admin/config", json!({"hub_ping_interval": "1s"})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b}");
    t.shutdown().await;

    let t = start(TargetConfig::default()).await;
    let now: Value = reqwest::get(format!("{}/admin/config", t.url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(now.get("hub_ping_interval").is_none(), "{now}");
    t.shutdown().await;
}
