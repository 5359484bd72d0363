//! `stampede target --processes N`: worker processes sharing one port
//! (SO_REUSEPORT), run as a user runs them (the binary, real processes).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The parent of the workers, stopped if a test fails before it does.
use crate::common::ChildGuard as Parent;

/// Start `stampede target --processes n` on a free loopback port; returns
/// the parent and the address it printed.
fn start(n: usize) -> (Parent, String) {
    start_with(n, &[])
}

/// [`start`] with more flags.
fn start_with(n: usize, flags: &[&str]) -> (Parent, String) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .args(["target", "--listen", "127.0.0.1:0", "--processes"])
        .arg(n.to_string())
        .args(flags)
        .stdout(Stdio::piped())
        .stderr(if flags.is_empty() {
            Stdio::inherit()
        } else {
            Stdio::piped()
        })
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
    assert!(line.contains(&format!("({n} processes")), "{line}");
    (Parent(child), addr)
}

/// One request on its own connection; the body.
fn get(addr: &str, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    text.split("\r\n\r\n").nth(1).unwrap_or("").to_string()
}

/// The parent's stderr lines up to the first that `done` accepts (read
/// on a thread, so a silent parent fails the test after `limit`).
fn stderr_lines(parent: &mut Parent, limit: Duration, done: impl Fn(&str) -> bool) -> Vec<String> {
    let stderr = parent.0.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let until = Instant::now() + limit;
    let mut lines = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                let last = done(&line);
                lines.push(line);
                if last {
                    return lines;
                }
            }
            Err(_) => panic!("not said within {limit:?}: {lines:?}"),
        }
    }
}

/// One POST without a body on its own connection; the status line and body.
fn post(addr: &str, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

/// The worker processes of `parent` (its children, from /proc).
fn workers(parent: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect()
}

fn alive(pid: u32) -> bool {
    // Listed in /proc and not a zombie.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| !s.contains(") Z "))
        .unwrap_or(false)
}

fn wait_exit(child: &mut Child, limit: Duration) -> std::process::ExitStatus {
    let until = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < until, "did not exit within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn workers_share_one_port_and_each_counts_its_own_requests() {
    let (mut parent, addr) = start(2);
    assert_eq!(workers(parent.0.id()).len(), 2);
    // 200 API requests, each on a new connection: the kernel spreads them.
    for _ in 0..200 {
        get(&addr, "/api/servers");
    }
    // /admin/stats is per worker: over many connections we see both
    // workers' counts (100 tries: missing one has odds 2^-99), and they add
    // up to exactly the requests sent.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..100 {
        let stats: serde_json::Value = serde_json::from_str(&get(&addr, "/admin/stats")).unwrap();
        seen.insert(stats["requests"].as_u64().unwrap());
    }
    // Two workers' counts, or one value when both served exactly half
    // (then each has 100: a worker that served all 200 would show 200).
    match seen.iter().copied().collect::<Vec<u64>>().as_slice() {
        [a, b] => assert_eq!(a + b, 200, "{seen:?}"),
        [a] => assert_eq!(*a, 100, "one count seen: each worker served half"),
        _ => panic!("more counts than workers: {seen:?}"),
    }

    let pids = workers(parent.0.id());
    unsafe { libc::kill(parent.0.id() as i32, libc::SIGINT) };
    assert!(wait_exit(&mut parent.0, Duration::from_secs(20)).success());
    assert!(
        pids.iter().all(|&p| !alive(p)),
        "a worker outlived the parent"
    );
}

#[test]
fn a_dead_worker_stops_the_rest_and_fails() {
    let (mut parent, _addr) = start(3);
    let pids = workers(parent.0.id());
    assert_eq!(pids.len(), 3);
    unsafe { libc::kill(pids[1] as i32, libc::SIGKILL) };
    let status = wait_exit(&mut parent.0, Duration::from_secs(20));
    assert_eq!(status.code(), Some(3), "{status}");
    assert!(
        pids.iter().all(|&p| !alive(p)),
        "a worker outlived the parent"
    );
}

#[test]
fn a_crashed_worker_is_replaced_while_the_others_serve() {
    let (mut parent, addr) = start_with(3, &["--respawn", "300ms"]);
    let before = workers(parent.0.id());
    assert_eq!(before.len(), 3);
    // The worker that takes the request answers, then dies as `kill -9`
    // kills it.
    let (status, body) = post(&addr, "/admin/crash");
    assert!(status.starts_with("HTTP/1.1 202"), "{status} {body}");
    let crashed: serde_json::Value = serde_json::from_str(&body).unwrap();
    let crashed = crashed["crashing"].as_u64().unwrap() as u32;
    assert!(before.contains(&crashed), "{crashed} not in {before:?}");
    // Until a new worker stands in its place, every new connection is
    // served by the two left (the kernel hands connections only to
    // listening sockets): no request fails in the gap.
    let until = Instant::now() + Duration::from_secs(30);
    let mut served = 0;
    let after = loop {
        get(&addr, "/health");
        served += 1;
        let now = workers(parent.0.id());
        if now.len() == 3 && !now.contains(&crashed) && now.iter().all(|&p| alive(p)) {
            break now;
        }
        assert!(Instant::now() < until, "no replacement: {now:?}");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(!alive(crashed), "the crashed worker still runs");
    assert!(served > 0);
    assert_eq!(
        before.iter().filter(|p| after.contains(p)).count(),
        2,
        "the two others kept running: {before:?} -> {after:?}"
    );
    // The parent says so once the replacement listens (it printed the
    // worker's ready line).
    let new = after.iter().find(|p| !before.contains(p)).unwrap();
    let said = stderr_lines(&mut parent, Duration::from_secs(30), |l| {
        l.contains(&format!("serving again (pid {new})"))
    });
    assert!(
        said.iter()
            .any(|l| l.contains("worker") && l.contains("stopped (signal: 9")),
        "{said:?}"
    );
    assert!(parent.0.try_wait().unwrap().is_none(), "the parent stopped");
    unsafe { libc::kill(parent.0.id() as i32, libc::SIGINT) };
    assert!(wait_exit(&mut parent.0, Duration::from_secs(20)).success());
    assert!(
        after.iter().all(|&p| !alive(p)),
        "a worker outlived the parent"
    );
}

#[test]
fn respawn_needs_several_processes() {
    let out = Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .args(["target", "--listen", "127.0.0.1:0", "--respawn", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--respawn"), "{err}");
}

#[tokio::test]
async fn an_in_process_target_refuses_to_crash() {
    // A run's own target would take the run down with it.
    let t = stampede::target::spawn("127.0.0.1:0".parse().unwrap(), Default::default())
        .await
        .unwrap();
    let r = reqwest::Client::new()
        .post(format!("{}/admin/crash", t.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CONFLICT);
    let body = r.text().await.unwrap();
    assert!(body.contains("--respawn"), "{body}");
    // Still serving.
    let health = reqwest::get(format!("{}/health", t.url())).await.unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK);
}
