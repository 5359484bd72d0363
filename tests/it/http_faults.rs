//! The HTTP fault matrix: a misbehaving server inside each test, real TCP
//! on loopback, and a run against it that must count every request under
//! the right kind, exactly, without a panic or a hang, and end on time.
//!
//! Each run is 20 arrivals (20/s for 1 s), one step; the server answers
//! every request by a script given the request's number and head.

use crate::common::{api, count, Fixture};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Arrivals per run: 20/s for 1 s.
const N: u64 = 20;

/// A request as the server read it.
#[derive(Debug, Clone)]
struct Request {
    method: String,
    path: String,
    /// Header names, lower case, with their values.
    headers: Vec<(String, String)>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        let found = self.headers.iter().find(|(n, _)| n == name);
        found.map(|(_, v)| v.as_str())
    }
}

/// What the server does with a request.
enum Reply {
    /// Write these bytes, then keep the connection for the next request.
    Keep(Vec<u8>),
    /// Write these bytes, then close (FIN).
    Close(Vec<u8>),
    /// Write these bytes, then hold the connection open without another
    /// byte until the server is dropped (nothing, for a stall).
    Hold(Vec<u8>),
    /// Write `head`, then one byte of body every `every`, forever.
    Trickle { head: Vec<u8>, every: Duration },
    /// Write `head`, then `0` bytes in 64 KiB writes (as chunks when
    /// `chunked`) until the client goes away.
    Flood { head: Vec<u8>, chunked: bool },
    /// The target dies: the listener closes (later connects are refused),
    /// every other connection is reset, and this one gets `partial` and a
    /// reset.
    Die { partial: Vec<u8> },
}

type Script = dyn Fn(u64, &Request) -> Reply + Send + Sync;

/// A server on 127.0.0.1:0 (or `ip`) answering by `script`. Dropping it
/// ends every connection it holds.
struct Faulty {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    connections: Arc<AtomicU64>,
    /// Bytes written by `Flood` and `Trickle` replies.
    flooded: Arc<AtomicU64>,
    _stop: watch::Sender<bool>,
}

struct Shared {
    script: Box<Script>,
    requests: Arc<Mutex<Vec<Request>>>,
    flooded: Arc<AtomicU64>,
    /// True once the target died: every connection resets.
    died: watch::Sender<bool>,
    accept: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Faulty {
    async fn start(
        ip: &str,
        script: impl Fn(u64, &Request) -> Reply + Send + Sync + 'static,
    ) -> Faulty {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, _) = watch::channel(false);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicU64::new(0));
        let flooded = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            script: Box::new(script),
            requests: requests.clone(),
            flooded: flooded.clone(),
            died: watch::channel(false).0,
            accept: Mutex::new(None),
        });
        let (conns, inner, stopped) = (connections.clone(), shared.clone(), stop.subscribe());
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                conns.fetch_add(1, Ordering::SeqCst);
                let (shared, mut stopped) = (inner.clone(), stopped.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        _ = serve(stream, &shared) => {}
                        _ = stopped.changed() => {}
                    }
                });
            }
        });
        *shared.accept.lock().unwrap() = Some(accept);
        Faulty {
            addr,
            requests,
            connections,
            flooded,
            _stop: stop,
        }
    }

    fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    fn paths(&self) -> Vec<String> {
        self.requests().into_iter().map(|r| r.path).collect()
    }
}

/// Reset (RST) and drop.
fn reset(stream: TcpStream) {
    // A zero linger does not block in close(): the kernel sends RST.
    #[allow(deprecated)]
    let _ = stream.set_linger(Some(Duration::ZERO));
}

/// Serve one connection: read requests one at a time and reply by the
/// script, until the client closes or a reply ends the connection.
async fn serve(mut stream: TcpStream, shared: &Shared) {
    let mut died = shared.died.subscribe();
    let mut buf = Vec::new();
    loop {
        let request = tokio::select! {
            r = read_request(&mut stream, &mut buf) => r,
            _ = died.changed() => return reset(stream),
        };
        let Some(request) = request else { return };
        let n = {
            let mut list = shared.requests.lock().unwrap();
            list.push(request.clone());
            list.len() as u64 - 1
        };
        match (shared.script)(n, &request) {
            Reply::Keep(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Reply::Close(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
                // Read to the client's close, so the FIN is all it sees.
                let _ = stream.read_to_end(&mut Vec::new()).await;
                return;
            }
            Reply::Hold(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let _ = died.changed().await;
                return reset(stream);
            }
            Reply::Trickle { head, every } => {
                let _ = stream.write_all(&head).await;
                let mut tick = tokio::time::interval(every);
                loop {
                    tick.tick().await;
                    if stream.write_all(b"x").await.is_err() {
                        return;
                    }
                    shared.flooded.fetch_add(1, Ordering::SeqCst);
                }
            }
            Reply::Flood { head, chunked } => {
                let _ = stream.write_all(&head).await;
                let zeros = vec![b'0'; 64 * 1024];
                let mut chunk = b"10000\r\n".to_vec();
                chunk.extend_from_slice(&zeros);
                chunk.extend_from_slice(b"\r\n");
                let piece = if chunked { &chunk } else { &zeros };
                while stream.write_all(piece).await.is_ok() {
                    shared
                        .flooded
                        .fetch_add(zeros.len() as u64, Ordering::SeqCst);
                }
                return;
            }
            Reply::Die { partial } => {
                // First the listener goes (connects are refused from
                // here), then every other connection is reset.
                let accept = shared.accept.lock().unwrap().take();
                if let Some(accept) = accept {
                    accept.abort();
                    let _ = accept.await;
                }
                shared.died.send_replace(true);
                let _ = stream.write_all(&partial).await;
                return reset(stream);
            }
        }
    }
}

/// Read one request head (and its Content-Length body); None at EOF.
async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Request> {
    let end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let request = Request {
        method,
        path,
        headers,
    };
    let body: usize = request
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    while buf.len() < end + body {
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    buf.drain(..end + body);
    Some(request)
}

/// `|` stands for CRLF.
fn crlf(text: &str) -> Vec<u8> {
    text.replace('|', "\r\n").into_bytes()
}

fn ok() -> Vec<u8> {
    crlf("HTTP/1.1 200 OK|Content-Length: 2||ok")
}

/// One population: `step` (a TOML inline table's inside) at 20/s for 1 s,
/// with `[http]` settings `http` and `[target]` extras `target`.
fn scenario(step: &str, http: &str, target: &str) -> String {
    format!(
        r#"
name = "faults"
[target]
{target}
[http]
timeout = "300ms"
{http}
[[users]]
name = "u"
steps = [{{ name = "s", {step} }}]
[[phases]]
name = "p"
duration = "1s"
users = {{ rate = "20/s" }}
"#
    )
}

/// Run `text` against `addr` (the API); the outcome and its wall time.
async fn run(text: &str, addr: SocketAddr) -> (stampede::run::RunOutcome, Duration) {
    let fixture = Fixture::new(text);
    let started = Instant::now();
    let outcome = fixture.run(api(addr)).await;
    (outcome, started.elapsed())
}

/// Every request counted, `kinds` (kind, count) the only errors, and the
/// run ended on time: its 1 s, the 300 ms timeout and a second of slack
/// (nothing here waits on anything longer).
fn assert_counts(outcome: &stampede::run::RunOutcome, took: Duration, kinds: &[(&str, u64)]) {
    let t = &outcome.totals;
    assert_eq!(count(t, "http.requests", None), N);
    for &(kind, n) in kinds {
        assert_eq!(count(t, "http.errors", Some(kind)), n, "kind {kind}");
    }
    let total: u64 = kinds.iter().map(|k| k.1).sum();
    assert_eq!(
        count(t, "http.errors", None),
        total,
        "only the kinds {kinds:?}"
    );
    assert!(took < Duration::from_millis(2_300), "the run took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_killed_mid_run_is_reset_then_refused() {
    // Request 5 kills it; a POST is never resent, so the reset counts
    // whether or not the partial answer arrived before the RST.
    let server = Faulty::start("127.0.0.1", |n, _| match n {
        0..5 => Reply::Keep(ok()),
        _ => Reply::Die {
            partial: crlf("HTTP/1.1 200 OK|Content-Le"),
        },
    })
    .await;
    let (outcome, took) = run(&scenario(r#"post = "/x""#, "", ""), server.addr).await;
    assert_counts(&outcome, took, &[("reset", 1), ("connect_refused", N - 6)]);
    assert_eq!(server.requests().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_response_times_out() {
    let server = Faulty::start("127.0.0.1", |_, _| Reply::Hold(Vec::new())).await;
    let (outcome, took) = run(&scenario(r#"get = "/x""#, "", ""), server.addr).await;
    assert_counts(&outcome, took, &[("timeout", N)]);
    // A timed-out connection is not reused: one per request (and the
    // run's reachability check).
    assert_eq!(server.connections.load(Ordering::SeqCst), N + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trickled_body_times_out_as_a_whole() {
    // Each byte comes well within the timeout; the whole body never does.
    let server = Faulty::start("127.0.0.1", |_, _| Reply::Trickle {
        head: crlf("HTTP/1.1 200 OK|Content-Length: 1000||"),
        every: Duration::from_millis(10),
    })
    .await;
    let (outcome, took) = run(&scenario(r#"get = "/x""#, "", ""), server.addr).await;
    assert_counts(&outcome, took, &[("timeout", N)]);
    assert!(server.flooded.load(Ordering::SeqCst) >= N * 10);
}

/// The three framings of a body larger than `max_body`: refused as soon as
/// it is known, with the rest not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_past_max_body_is_body_too_large() {
    let heads = [
        (
            "length",
            "HTTP/1.1 200 OK|Content-Length: 1073741824||",
            false,
        ),
        (
            "chunked",
            "HTTP/1.1 200 OK|Transfer-Encoding: chunked||",
            true,
        ),
        ("eof", "HTTP/1.1 200 OK|Connection: close||", false),
    ];
    for (what, head, chunked) in heads {
        let head = crlf(head);
        let server = Faulty::start("127.0.0.1", move |_, _| Reply::Flood {
            head: head.clone(),
            chunked,
        })
        .await;
        let step = r#"get = "/x", check = { body_contains = "never" }"#;
        let text = scenario(step, r#"max_body = "1MiB""#, "");
        let (outcome, took) = run(&text, server.addr).await;
        assert_counts(&outcome, took, &[("body_too_large", N)]);
        let flooded = server.flooded.load(Ordering::SeqCst);
        // Length: refused from the head, before the body (the server's
        // first writes may still land in the socket buffers).
        assert!(flooded < N * (8 << 20), "{what}: {flooded} bytes sent");
    }
}

/// A body far past `max_body`, kept for a check, in the real binary: its
/// peak memory stays near the limit, not the bodies' size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_stays_bounded_under_huge_bodies() {
    let server = Faulty::start("127.0.0.1", |_, _| Reply::Flood {
        head: crlf("HTTP/1.1 200 OK|Transfer-Encoding: chunked||"),
        chunked: true,
    })
    .await;
    let step = r#"get = "/x", check = { body_contains = "never" }"#;
    let text = scenario(
        step,
        r#"max_body = "8MiB"
timeout = "5s""#,
        "",
    )
    .replace("timeout = \"300ms\"\n", "");
    let fixture = Fixture::new(&text);
    let (out, out_dir, path) = (
        fixture.out_dir(),
        fixture.out_dir(),
        fixture.scenario_path(),
    );
    let addr = server.addr;
    let bin = assert_cmd::cargo::cargo_bin("stampede");
    let (status, max_rss_kib) = tokio::task::spawn_blocking(move || {
        let child = std::process::Command::new(bin)
            .args(["run", "--quiet", "--api"])
            .arg(format!("http://{addr}"))
            .arg("--out")
            .arg(&out)
            .arg(path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        wait_with_peak_rss(child)
    })
    .await
    .unwrap();
    let flooded = server.flooded.load(Ordering::SeqCst);
    assert!(status == 0 || status == 1, "exit {status}");
    let dir = std::fs::read_dir(&out_dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let summary = crate::common::summary_value(&dir);
    assert_eq!(crate::common::counter_total(&summary, "http.requests"), N);
    assert_eq!(crate::common::counter_total(&summary, "http.errors"), N);
    // Every request read its 8 MiB before being refused: 160 MiB in all.
    assert!(flooded >= N * (8 << 20), "{flooded} bytes sent");
    // Kept whole, 20 such bodies (or the old 256 MiB limit) would be far
    // past this; bounded, a run of this size peaks near 30 MiB plus the
    // limit per request in flight.
    assert!(max_rss_kib < 96 * 1024, "peak RSS {max_rss_kib} KiB");
    eprintln!("peak RSS {max_rss_kib} KiB after {flooded} bytes of bodies");
}

/// Wait for `child` and read its own peak resident set (wait4's rusage is
/// the child's alone, not every child's of this test process).
fn wait_with_peak_rss(child: std::process::Child) -> (i32, i64) {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: a child of this process, waited for once; `usage` is ours.
    let got = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(got, pid, "wait4: {}", std::io::Error::last_os_error());
    std::mem::forget(child);
    (libc::WEXITSTATUS(status), usage.ru_maxrss)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_answers_are_protocol_or_reset_errors() {
    #[rustfmt::skip]
    let cases: [(&str, Vec<u8>, bool, &str); 5] = [
        ("garbage status line", crlf("HTCPCP/1.0 418 teapot||"), false, "protocol"),
        ("not HTTP at all", b"\x00\x01\x02 hello\r\n\r\n".to_vec(), false, "protocol"),
        ("broken chunked", crlf("HTTP/1.1 200 OK|Transfer-Encoding: chunked||zz|ok|0||"), false, "protocol"),
        ("chunk without CRLF", crlf("HTTP/1.1 200 OK|Transfer-Encoding: chunked||2|okXY0||"), false, "protocol"),
        ("closed mid-body", crlf("HTTP/1.1 200 OK|Content-Length: 100||abc"), true, "reset"),
    ];
    for (what, reply, close, kind) in cases {
        let server = Faulty::start("127.0.0.1", move |_, _| match close {
            true => Reply::Close(reply.clone()),
            false => Reply::Hold(reply.clone()),
        })
        .await;
        let (outcome, took) = run(&scenario(r#"get = "/x""#, "", ""), server.addr).await;
        eprintln!("{what}");
        assert_counts(&outcome, took, &[(kind, N)]);
        // Never resent: the server saw each request once.
        assert_eq!(server.requests().len() as u64, N, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lying_content_length_is_caught_either_way() {
    // Shorter than the body: the answer is whole, the extra bytes make the
    // connection untrustworthy, so each request gets a fresh one.
    let short = Faulty::start("127.0.0.1", |_, _| {
        Reply::Keep(crlf("HTTP/1.1 200 OK|Content-Length: 2||okEXTRA"))
    })
    .await;
    let (outcome, took) = run(&scenario(r#"get = "/x""#, "", ""), short.addr).await;
    assert_counts(&outcome, took, &[]);
    assert_eq!(short.connections.load(Ordering::SeqCst), N + 1);
    // Longer than the body, the connection held: the rest never comes.
    let long = Faulty::start("127.0.0.1", |_, _| {
        Reply::Hold(crlf("HTTP/1.1 200 OK|Content-Length: 100||abc"))
    })
    .await;
    let (outcome, took) = run(&scenario(r#"get = "/x""#, "", ""), long.addr).await;
    assert_counts(&outcome, took, &[("timeout", N)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interim_100_continue_is_skipped() {
    let server = Faulty::start("127.0.0.1", |_, _| {
        let mut reply = crlf("HTTP/1.1 100 Continue||HTTP/1.1 102 Processing||");
        reply.extend(crlf("HTTP/1.1 200 OK|Content-Length: 4||done"));
        Reply::Keep(reply)
    })
    .await;
    let step = r#"post = "/x", body = "hi", check = { status = 200, body_contains = "done" }"#;
    let (outcome, took) = run(&scenario(step, "", ""), server.addr).await;
    assert_counts(&outcome, took, &[]);
    // Keep-alive survived the interim answers.
    assert_eq!(server.connections.load(Ordering::SeqCst), 2);
}

/// `/r/K` redirects to `/r/K-1` (a relative Location); `/r/0` answers.
fn chain(_: u64, request: &Request) -> Reply {
    match request
        .path
        .strip_prefix("/r/")
        .map(|k| k.parse::<u32>().unwrap())
    {
        Some(0) => Reply::Keep(ok()),
        Some(k) => Reply::Keep(crlf(&format!(
            "HTTP/1.1 302 Found|Location: {}|Content-Length: 0||",
            k - 1
        ))),
        None => Reply::Keep(crlf("HTTP/1.1 404 Not Found|Content-Length: 0||")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_up_to_max_redirects() {
    // Three hops within the default ten: one request, four answers.
    let server = Faulty::start("127.0.0.1", chain).await;
    let step = r#"get = "/r/3", check = { status = 200, body_contains = "ok" }"#;
    let (outcome, took) = run(&scenario(step, "", ""), server.addr).await;
    assert_counts(&outcome, took, &[]);
    let paths = server.paths();
    assert_eq!(paths.len() as u64, 4 * N);
    assert_eq!(&paths[..4], ["/r/3", "/r/2", "/r/1", "/r/0"]);

    // Past the limit the last 302 is the answer: a step expecting 200
    // fails its check.
    let server = Faulty::start("127.0.0.1", chain).await;
    let step = r#"get = "/r/3", check = { status = 200 }"#;
    let (outcome, took) = run(&scenario(step, "max_redirects = 2", ""), server.addr).await;
    assert_counts(&outcome, took, &[("check", N)]);
    assert_eq!(server.paths().len() as u64, 3 * N);

    // 0 (here on the step): a 3xx is the answer.
    let server = Faulty::start("127.0.0.1", chain).await;
    let step = r#"get = "/r/3", max_redirects = 0, check = { status = 302 }"#;
    let (outcome, took) = run(&scenario(step, "", ""), server.addr).await;
    assert_counts(&outcome, took, &[]);
    assert_eq!(server.paths().len() as u64, N);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_303_after_a_post_is_a_get_without_the_body() {
    let server = Faulty::start("127.0.0.1", |_, r| match r.path.as_str() {
        "/orders" => Reply::Keep(crlf(
            "HTTP/1.1 303 See Other|Location: /orders/1|Content-Length: 0||",
        )),
        _ => Reply::Keep(ok()),
    })
    .await;
    let step = r#"post = "/orders", json = { item = 1 }, check = { status = 200 }"#;
    let (outcome, took) = run(&scenario(step, "", ""), server.addr).await;
    assert_counts(&outcome, took, &[]);
    let requests = server.requests();
    assert_eq!(requests.len() as u64, 2 * N);
    let after = &requests[1];
    assert_eq!(
        (after.method.as_str(), after.path.as_str()),
        ("GET", "/orders/1")
    );
    assert_eq!(after.header("content-type"), None);
    assert_eq!(after.header("content-length"), None);
}

/// A redirect to another host: followed when the scenario declares it
/// (without the credentials meant for the first), refused with nothing
/// sent when it does not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_to_other_hosts_follow_the_declared_ones_only() {
    let other = Faulty::start("127.0.0.2", |_, _| Reply::Keep(ok())).await;
    let location = format!("http://{}/landing", other.addr);
    let reply = move |_: u64, _: &Request| {
        Reply::Keep(crlf(&format!(
            "HTTP/1.1 307 Temporary Redirect|Location: {location}|Content-Length: 0||"
        )))
    };
    let step = r#"get = "/x", headers = { Authorization = "Bearer sekrit", X-Trace = "t1" }, check = { status = 200 }"#;

    let server = Faulty::start("127.0.0.1", reply.clone()).await;
    let (outcome, took) = run(&scenario(step, "", ""), server.addr).await;
    assert_counts(&outcome, took, &[("redirect_refused", N)]);
    assert_eq!(server.requests().len() as u64, N);
    assert_eq!(
        other.connections.load(Ordering::SeqCst),
        0,
        "sent to an undeclared host"
    );

    let server = Faulty::start("127.0.0.1", reply).await;
    let hosts = format!("hosts = [\"http://{}\"]", other.addr);
    let (outcome, took) = run(&scenario(step, "", &hosts), server.addr).await;
    assert_counts(&outcome, took, &[]);
    let landed = other.requests();
    // The declared host's reachability check, then one connection kept.
    assert_eq!(landed.len() as u64, N);
    assert!(landed.iter().all(|r| r.path == "/landing"));
    assert!(landed.iter().all(|r| r.header("authorization").is_none()));
    assert!(landed.iter().all(|r| r.header("x-trace") == Some("t1")));
    assert!(server
        .requests()
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer sekrit")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_tls_handshake_is_counted_as_tls() {
    // Plain HTTP where TLS is expected: the server answers the
    // ClientHello with an HTTP error, as a misconfigured port does.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let handshakes = Arc::new(AtomicU64::new(0));
    let seen = handshakes.clone();
    let server = tokio::spawn(async move {
        loop {
            let (mut stream, _) = listener.accept().await.unwrap();
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut hello = [0u8; 1];
                // The reachability check sends nothing; a client sends a
                // TLS record (0x16 handshake) first.
                if stream.read(&mut hello).await.unwrap_or(0) == 1 && hello[0] == 0x16 {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                let _ = stream.write_all(&crlf("HTTP/1.1 400 Bad Request||")).await;
            });
        }
    });
    let fixture = Fixture::new(&scenario(r#"get = "/x""#, "", ""));
    let overrides = stampede::scenario::Overrides {
        api: Some(format!("https://{addr}")),
        ..Default::default()
    };
    let started = Instant::now();
    let outcome = fixture.run(overrides).await;
    assert_counts(&outcome, started.elapsed(), &[("tls", N)]);
    assert_eq!(handshakes.load(Ordering::SeqCst), N);
    server.abort();
}

/// A Location that is not an http(s) URL is the target's fault
/// (`protocol`); a 3xx without one is an answer like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_nowhere_is_protocol_and_one_without_location_the_answer() {
    let server = Faulty::start("127.0.0.1", |_, r| match r.path.as_str() {
        "/ftp" => Reply::Keep(crlf(
            "HTTP/1.1 301 Moved|Location: ftp://files.test/x|Content-Length: 0||",
        )),
        _ => Reply::Keep(crlf("HTTP/1.1 302 Found|Content-Length: 0||")),
    })
    .await;
    let (outcome, took) = run(&scenario(r#"get = "/ftp""#, "", ""), server.addr).await;
    assert_counts(&outcome, took, &[("protocol", N)]);
    let step = r#"get = "/none", check = { status = 302 }"#;
    let (outcome, took) = run(&scenario(step, "", ""), server.addr).await;
    assert_counts(&outcome, took, &[]);
    assert_eq!(server.requests().len() as u64, 2 * N);
}

/// HTTP/2 (h2c, against the built-in target) keeps the same limit: its
/// ~2 KB pages pass under 1 MiB and are `body_too_large` under 100 bytes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_body_holds_over_http2_too() {
    use stampede::target::{self, TargetConfig};
    let target = target::spawn("127.0.0.1:0".parse().unwrap(), TargetConfig::default())
        .await
        .unwrap();
    let step = r#"get = "/api/servers""#;
    for (limit, kinds) in [("1MiB", vec![]), ("100B", vec![("body_too_large", N)])] {
        for keep in ["", r#", check = { body_contains = "items" }"#] {
            let http = format!("version = \"2\"\nmax_body = \"{limit}\"");
            let text = scenario(&format!("{step}{keep}"), &http, "");
            let (outcome, took) = run(&text, target.addr).await;
            assert_counts(&outcome, took, &kinds);
        }
    }
    target.shutdown().await;
}
