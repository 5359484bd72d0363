//! `stampede target --processes N`: worker processes sharing one port
//! (SO_REUSEPORT), run as a user runs them (the binary, real processes).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The parent of the workers, stopped if a test fails before it does:
/// SIGINT (it stops its workers), then SIGKILL (its workers then get
/// SIGTERM from the kernel, `PR_SET_PDEATHSIG`).
struct Parent(Child);

impl Drop for Parent {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            // SIGINT: the parent stops its workers before it exits.
            unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
            let until = Instant::now() + Duration::from_secs(10);
            while self.0.try_wait().ok().flatten().is_none() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Start `stampede target --processes n` on a free loopback port; returns
/// the parent and the address it printed.
fn start(n: usize) -> (Parent, String) {
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .args(["target", "--listen", "127.0.0.1:0", "--processes"])
        .arg(n.to_string())
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
