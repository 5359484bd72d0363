//! The real hub topology of hub-and-agents-scaling.md, on loopback, stood
//! up by `ci/topology/up.sh` as a user would: nginx with `hash $remote_addr
//! consistent` (WebSocket upgrade proxying) in front of three instances of
//! the reference Socket.IO hub (tests/node/server.js) sharing a Redis
//! adapter on redis-server.
//!
//! `stampede` runs as its own process: agents from several loopback source
//! addresses (`[hub] sources`), so nginx spreads them over the three hubs by
//! address; a commander through nginx; one hub killed mid-run with `kill -9`,
//! by the scenario's own fault action (`--allow-exec`) in one test, from
//! outside stampede (a crash it did not cause) in the other. Checked against
//! the hubs' own output (each hub prints what it registered, fanned out and
//! routed back):
//!
//! - the disruption is found, caused by the action or detected, with
//!   exactly the agents the killed hub held;
//! - every one of them registers again through the other two hubs;
//! - `hub.recovery` is measured and judged by the scenario's SLO;
//! - commands sent through one hub reach the agents of all three (the Redis
//!   adapter's fan-out), exactly: the agents received, in total, what the
//!   hub said it delivered to, and no command reached fewer.
//!
//! Needs node (with tests/node's packages), nginx and redis-server (`.ci/run`
//! installs them). Without them the test says so loudly and passes outside
//! CI; in CI (`CI` set) it fails.

use crate::common::{counter_total as counter, summary_value as summary};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

const HUBS: usize = 3;
/// Agents, spread over `SOURCES` loopback source addresses
/// (127.0.0.1..127.0.0.12), which nginx hashes onto the hubs.
const AGENTS: u64 = 300;
const SOURCES: u8 = 12;
/// Commands per second in the phases before and after the kill.
const COMMAND_RATE: u64 = 2;
/// Stand-ups tried until every hub gets at least one source address and the
/// commander's address is not on the only hub that could be killed (the
/// hash ring depends on the hubs' ports, which are new each time).
const STAND_UPS: usize = 5;
/// The stand-up script's own limit: everything goes by itself after this
/// even if the test crashed without cleaning up.
const LIFETIME_S: u64 = 240;
/// Stand-up to `READY`, and the run, however broken things are.
const READY_WITHIN: Duration = Duration::from_secs(90);
const RUN_LIMIT: Duration = Duration::from_secs(150);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// PATH with the sbin directories, where Debian puts nginx and
/// redis-server (as ci/topology/up.sh extends it).
fn path() -> String {
    format!(
        "{}:/usr/sbin:/sbin",
        std::env::var("PATH").unwrap_or_default()
    )
}

/// What is missing to stand the topology up, if anything.
fn missing() -> Option<String> {
    let mut missing = Vec::new();
    for (tool, arg) in [
        ("node", "--version"),
        ("nginx", "-v"),
        ("redis-server", "--version"),
    ] {
        let ok = Command::new("sh")
            .args(["-c", &format!("{tool} {arg}")])
            .env("PATH", path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            missing.push(tool.to_owned());
        }
    }
    if !repo()
        .join("tests/node/node_modules/@socket.io/redis-adapter/package.json")
        .is_file()
    {
        missing.push("tests/node's packages (npm ci --prefix tests/node)".to_owned());
    }
    (!missing.is_empty()).then(|| missing.join(", "))
}

/// ci/topology/up.sh running with its files in `dir`; stopped on drop (end
/// of its input), every process it listed killed should it not stop.
struct Topology {
    script: Child,
    stdin: Option<ChildStdin>,
    dir: PathBuf,
    env: BTreeMap<String, String>,
    output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Topology {
    fn up(dir: &Path) -> Topology {
        let mut script = Command::new("bash")
            .arg(repo().join("ci/topology/up.sh"))
            .arg("--dir")
            .arg(dir)
            .env("HUBS", HUBS.to_string())
            .env("LIFETIME", LIFETIME_S.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run ci/topology/up.sh");
        let stdin = script.stdin.take();
        let output = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(script.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(script.stderr.take().unwrap()),
        ] {
            let output = std::sync::Arc::clone(&output);
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    output.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            });
        }
        drop(tx);
        let mut topology = Topology {
            script,
            stdin,
            dir: dir.to_owned(),
            env: BTreeMap::new(),
            output,
        };
        let deadline = std::time::Instant::now() + READY_WITHIN;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with("READY ") => break,
                Ok(_) => {}
                Err(e) => panic!(
                    "ci/topology/up.sh: no READY ({e}); its output:\n{}",
                    topology.output()
                ),
            }
        }
        let env = std::fs::read_to_string(dir.join("topology.env")).expect("topology.env");
        topology.env = env
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        topology
    }

    fn var(&self, name: &str) -> &str {
        self.env
            .get(name)
            .unwrap_or_else(|| panic!("{name} not in topology.env: {:?}", self.env))
    }

    /// Hub `i` (1-based): its name as it reports itself.
    fn name(i: usize) -> String {
        format!("hub-{i}")
    }

    /// Everything a hub printed (it goes on printing until it exits).
    fn log(&self, i: usize) -> Vec<String> {
        std::fs::read_to_string(self.var(&format!("HUB{i}_LOG")))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// What each hub printed last, for failure messages.
    fn context(&self) -> String {
        let mut out = format!("up.sh:\n{}\n", self.output());
        for i in 1..=HUBS {
            let log = self.log(i);
            out.push_str(&format!(
                "{} ({} lines, last 15):\n{}\n",
                Topology::name(i),
                log.len(),
                log[log.len().saturating_sub(15)..].join("\n")
            ));
        }
        if let Ok(nginx) = std::fs::read_to_string(self.dir.join("nginx/error.log")) {
            let lines: Vec<&str> = nginx.lines().collect();
            out.push_str(&format!(
                "nginx error.log (last 10):\n{}\n",
                lines[lines.len().saturating_sub(10)..].join("\n")
            ));
        }
        out
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        // End of input: the script takes everything down.
        drop(self.stdin.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let mut stopped = false;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.script.try_wait() {
                stopped = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.script.kill();
        let _ = self.script.wait();
        if stopped {
            return;
        }
        // It did not stop them: every process it listed that is still one
        // of this topology's (its command line names the Redis port or the
        // nginx prefix), not a later process that got the same pid.
        let redis_port = self
            .env
            .get("REDIS_URL")
            .and_then(|u| u.rsplit_once(':'))
            .map(|(_, port)| format!(":{port}"));
        let prefix = self.dir.to_string_lossy().into_owned();
        for (k, v) in &self.env {
            let Some(pid) = k.strip_suffix("_PID").and(v.parse::<i32>().ok()) else {
                continue;
            };
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
                .unwrap_or_default();
            let ours = cmdline.contains(&prefix)
                || redis_port
                    .as_ref()
                    .is_some_and(|p| cmdline.contains(p.as_str()));
            if ours {
                // nginx's master stops its workers on TERM (they would
                // outlive a KILLed master).
                let signal = if k == "NGINX_PID" {
                    libc::SIGTERM
                } else {
                    libc::SIGKILL
                };
                // SAFETY: kill(2) of a process this topology started.
                unsafe { libc::kill(pid, signal) };
            }
        }
    }
}

/// Which hub a connection from `source` lands on through nginx: its name
/// from GET /stats.
async fn hub_of(url: &str, source: Ipv4Addr) -> String {
    let client = reqwest::Client::builder()
        .local_address(IpAddr::V4(source))
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let stats: Value = client
        .get(format!("{url}/stats"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}/stats from {source}: {e}"))
        .json()
        .await
        .unwrap();
    stats["name"].as_str().expect("stats.name").to_owned()
}

/// The agent ids a hub's log shows registered and not disconnected at its
/// end, and the command fan-outs (delivered counts) it printed.
fn registered_at_end(log: &[String]) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for line in log {
        if let Some(id) = line.strip_prefix("REGISTER ") {
            ids.insert(id.to_owned());
        } else if let Some(rest) = line.strip_prefix("DISCONNECT ") {
            if let Some((id, _)) = rest.split_once(' ') {
                ids.remove(id);
            }
        }
    }
    ids
}

fn registrations(log: &[String]) -> Vec<&str> {
    log.iter()
        .filter_map(|l| l.strip_prefix("REGISTER "))
        .collect()
}

fn fanouts(log: &[String]) -> Vec<(String, Option<u64>)> {
    log.iter()
        .filter_map(|l| l.strip_prefix("COMMAND "))
        .map(|l| {
            let (id, n) = l.rsplit_once(' ').expect("COMMAND <id> <delivered>");
            (id.to_owned(), n.parse().ok())
        })
        .collect()
}

/// How the victim dies.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Kill {
    /// By the scenario's own fault action, 1 s into `failover`.
    Action,
    /// By the test, from outside stampede (a crash nobody announced), once
    /// the commander's hub has fanned out every command of `steady`.
    Outside,
}

/// The scenario: the fleet settles, commands go out, the victim is killed
/// (by the scenario's own action, or from outside), more commands once the
/// fleet is back.
fn scenario(hub_url: &str, kill: Kill) -> String {
    let actions = match kill {
        Kill::Action => {
            r#"actions = [
  { at = "1s", name = "kill-hub", exec = ["kill", "-9", "{{ env.VICTIM_PID }}"], timeout = "10s" },
]"#
        }
        Kill::Outside => "",
    };
    format!(
        r#"
name = "topology"
seed = 17

[target]
hub = "{hub_url}"

[hub]
timeout = "5s"
sources = {SOURCES}
recovered = "100%"

[[agents]]
name = "agent"
protocol = "socketio"
register = {{ event = "register", data = {{ id = "agent-{{{{ agent.id }}}}" }}, ack = true, match = {{ ok = true }} }}
heartbeat = {{ every = "1s", ack = true }}
on_command = {{ event = "command", reply = "result", delay = "1ms..5ms" }}
reconnect = {{ base = "200ms", max = "1s", factor = 2.0, jitter = "full", max_attempts = 30 }}

[[commanders]]
name = "ops"
protocol = "socketio"
send = {{ event = "command", to = "agents", data = {{ op = "update" }} }}
result = "result"
timeout = "3s"

[[phases]]
name = "connect"
duration = "5s"
agents = {{ connected = {AGENTS}, connect_rate = "max" }}

[[phases]]
name = "steady"
duration = "5s"
commanders = {{ rate = "{COMMAND_RATE}/s" }}

[[phases]]
name = "failover"
duration = "12s"
{actions}

[[phases]]
name = "after"
duration = "5s"
commanders = {{ rate = "{COMMAND_RATE}/s" }}

[slo]
# The failover phase leaves 11 s after the kill before the commands of
# "after", which must reach the whole fleet again.
"hub.recovery" = "< 10s"
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_by_the_scenarios_action_is_a_disruption_the_fleet_recovers_from() {
    failover(Kill::Action).await;
}

/// The failover of issue 13 as a user first met it: the hub crashes and
/// stampede did not cause it. The wave of lost agents is detected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_crash_stampede_did_not_cause_is_detected_and_recovered_from() {
    failover(Kill::Outside).await;
}

async fn failover(kill: Kill) {
    if let Some(what) = missing() {
        let message = format!(
            "{what} missing: the hub topology (nginx, three node hubs, Redis) was NOT tested \
             (apt-get install nodejs npm nginx redis-server; npm ci --prefix tests/node)"
        );
        if std::env::var_os("CI").is_some() {
            panic!("{message}");
        }
        eprintln!("\n!!! SKIPPED: {message}\n");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();

    // Stand up until the ring suits the test: every hub gets source
    // addresses (so there are agents on all three), and the commander's
    // (127.0.0.1, the address of an unbound loopback connection) is on a
    // hub other than the one killed.
    let mut chosen = None;
    for attempt in 0..STAND_UPS {
        let topology = Topology::up(&tmp.path().join(format!("topology-{attempt}")));
        let url = topology.var("HUB_URL").to_owned();
        let mut sources: BTreeMap<String, Vec<Ipv4Addr>> = BTreeMap::new();
        for i in 1..=SOURCES {
            let source = Ipv4Addr::new(127, 0, 0, i);
            sources
                .entry(hub_of(&url, source).await)
                .or_default()
                .push(source);
        }
        let commander = hub_of(&url, Ipv4Addr::LOCALHOST).await;
        eprintln!(
            "topology attempt {attempt}: sources by hub {sources:?}; commander on {commander}"
        );
        if sources.len() == HUBS {
            // The victim: the hub with the most sources, other than the
            // commander's.
            let victim = (1..=HUBS)
                .filter(|&i| Topology::name(i) != commander)
                .max_by_key(|&i| sources[&Topology::name(i)].len())
                .unwrap();
            chosen = Some((topology, commander, victim, sources));
            break;
        }
    }
    let (topology, commander, victim, sources) = chosen
        .unwrap_or_else(|| panic!("no stand-up in {STAND_UPS} put source addresses on every hub"));
    let victim_pid = topology.var(&format!("HUB{victim}_PID")).to_owned();
    let url = topology.var("HUB_URL").to_owned();

    let commander_hub = (1..=HUBS)
        .find(|&i| Topology::name(i) == commander)
        .unwrap();
    let steady = (COMMAND_RATE * 5) as usize;

    let scenario_path = tmp.path().join("scenario.toml");
    std::fs::write(&scenario_path, scenario(&url, kill)).unwrap();
    let out_dir = tmp.path().join("out");
    let mut run = tokio::process::Command::new(assert_cmd::cargo::cargo_bin("stampede"));
    run.arg("run").arg(&scenario_path);
    if kill == Kill::Action {
        run.arg("--allow-exec").env("VICTIM_PID", &victim_pid);
    }
    run.arg("--quiet")
        .arg("--out")
        .arg(&out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let child = run.spawn().expect("run stampede");
    // From outside: kill -9 once the last command of `steady` went out and
    // every agent of the victim answered it (conditions on the hubs' own
    // output, polled), so that no command is cut short by the kill.
    let outside = async {
        if kill == Kill::Outside {
            let deadline = tokio::time::Instant::now() + RUN_LIMIT;
            let answered = || {
                let sent = fanouts(&topology.log(commander_hub));
                let Some((last, _)) = sent.get(steady - 1) else {
                    return false;
                };
                let log = topology.log(victim);
                let results = log
                    .iter()
                    .filter(|l| {
                        l.strip_prefix("RESULT ").and_then(|r| r.split(' ').next()) == Some(last)
                    })
                    .count();
                results > 0 && results == registered_at_end(&log).len()
            };
            while !answered() {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the victim's agents never answered the last command of steady\n{}",
                    topology.context()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let pid: i32 = victim_pid.parse().unwrap();
            // SAFETY: kill(2) of the hub process the script started.
            assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0, "kill {pid}");
        }
    };
    let (output, ()) = tokio::join!(
        tokio::time::timeout(RUN_LIMIT, child.wait_with_output()),
        outside
    );
    let output = output
        .unwrap_or_else(|_| {
            panic!(
                "the run did not end within {RUN_LIMIT:?}\n{}",
                topology.context()
            )
        })
        .expect("run stampede");
    let console = format!(
        "stampede {}:\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let context = format!("{console}\n{}", topology.context());
    let result_dir = std::fs::read_dir(&out_dir)
        .unwrap_or_else(|e| panic!("{}: {e}\n{context}", out_dir.display()))
        .map(|e| e.unwrap().path())
        .find(|p| p.join("summary.json").is_file())
        .unwrap_or_else(|| panic!("no summary.json under {}\n{context}", out_dir.display()));
    let s = summary(&result_dir);

    // The hubs' own account. The victim's log ends where it was killed:
    // the agents it held then are the ones the kill took down.
    let logs: Vec<Vec<String>> = (1..=HUBS).map(|i| topology.log(i)).collect();
    let victim_log = &logs[victim - 1];
    let lost = registered_at_end(victim_log);
    assert!(
        !lost.is_empty(),
        "the victim {} held no agents when killed (sources {:?})\n{context}",
        Topology::name(victim),
        sources
    );
    assert!(
        !victim_log.iter().any(|l| l.starts_with("EXIT ")),
        "the victim exited by itself instead of being killed\n{context}"
    );

    // With an action: the kill was it, and it succeeded.
    let actions = s["actions"].as_array().cloned().unwrap_or_default();
    if kill == Kill::Action {
        assert_eq!(actions.len(), 1, "actions {actions:?}\n{context}");
        assert_eq!(actions[0]["name"], "kill-hub", "{context}");
        assert_eq!(
            actions[0]["ok"], true,
            "the kill action failed: {:?}\n{context}",
            actions[0]
        );
        assert_eq!(actions[0]["exit_status"], 0, "{context}");
    } else {
        assert!(actions.is_empty(), "actions {actions:?}\n{context}");
    }

    // Detected: one disruption, exactly the agents the victim held, all back.
    let disruptions = s["disruptions"]
        .as_array()
        .unwrap_or_else(|| panic!("no disruptions in summary.json\n{context}"));
    assert_eq!(
        disruptions.len(),
        1,
        "disruptions {disruptions:?}\n{context}"
    );
    let d = &disruptions[0];
    match kill {
        Kill::Action => {
            assert_eq!(d["phase"], "failover", "{d}\n{context}");
            assert_eq!(d["cause"], "action", "{d}\n{context}");
            assert_eq!(d["action"], "kill-hub", "{d}\n{context}");
        }
        Kill::Outside => {
            // Killed right after the last command of steady: at the end of
            // steady or early in failover.
            assert!(
                d["phase"] == "steady" || d["phase"] == "failover",
                "{d}\n{context}"
            );
            assert_eq!(d["cause"], "detected", "{d}\n{context}");
        }
    }
    assert_eq!(
        d["lost"].as_u64(),
        Some(lost.len() as u64),
        "agents lost (the victim held {:?})\n{context}",
        lost.len()
    );
    assert_eq!(
        d["back_unix_us"].as_array().map(Vec::len),
        Some(lost.len()),
        "agents back\n{context}"
    );

    // Every lost agent registered again, through the other hubs (the
    // victim is dead; nginx passes its addresses on).
    for id in &lost {
        let again: Vec<String> = (1..=HUBS)
            .filter(|&i| i != victim && registrations(&logs[i - 1]).contains(&id.as_str()))
            .map(Topology::name)
            .collect();
        assert_eq!(
            again.len(),
            1,
            "{id} (lost with {}) registered again on {again:?}\n{context}",
            Topology::name(victim)
        );
    }
    assert_eq!(
        counter(&s, "hub.reconnects"),
        lost.len() as u64,
        "{context}"
    );
    assert_eq!(
        counter(&s, "hub.registrations"),
        AGENTS + lost.len() as u64,
        "every agent once, the lost ones twice\n{context}"
    );
    assert_eq!(counter(&s, "hub.unrecovered"), 0, "{context}");

    // hub.recovery measured (a duration, not "no data") and judged.
    let verdicts = s["verdicts"].as_array().unwrap();
    let recovery = verdicts
        .iter()
        .find(|v| v["slo"]["key"] == "hub.recovery")
        .unwrap_or_else(|| panic!("no hub.recovery verdict\n{context}"));
    let measured = recovery["measured"]
        .as_f64()
        .unwrap_or_else(|| panic!("hub.recovery not measured: {recovery}\n{context}"));
    assert!(measured > 0.0, "hub.recovery {measured} µs\n{context}");
    eprintln!(
        "killed {} ({kill:?}) holding {} of {AGENTS} agents: disruption {}, hub.recovery {:.0} ms",
        Topology::name(victim),
        lost.len(),
        d["cause"],
        measured / 1000.0
    );
    assert_eq!(
        recovery["pass"], true,
        "hub.recovery: {recovery}\n{context}"
    );
    for v in verdicts {
        assert_eq!(v["pass"], true, "SLO {}\n{context}", v["slo"]["key"]);
    }
    assert!(output.status.success(), "exit status\n{context}");

    // Commands: all through the commander's hub (nginx kept its address
    // there), each delivered — by the Redis adapter — to agents on all
    // three hubs.
    let sent = fanouts(&logs[commander_hub - 1]);
    let commands = counter(&s, "hub.commands");
    assert_eq!(
        sent.len() as u64,
        commands,
        "COMMAND lines of {commander}\n{context}"
    );
    assert_eq!(
        commands,
        2 * COMMAND_RATE * 5,
        "commands (rate × the 5 s of steady and after)\n{context}"
    );
    for (i, log) in logs.iter().enumerate() {
        if i + 1 != commander_hub {
            assert!(
                fanouts(log).is_empty(),
                "commands on hub-{}\n{context}",
                i + 1
            );
        }
    }
    // Where the agents were before the kill: the victim's, and on each
    // other hub those that never left it (only the lost ones reconnected).
    // Every hub held some, the commander's fewer than the fleet; each
    // command then reached the whole fleet.
    let mut placed = BTreeSet::new();
    let mut held = Vec::new();
    for (i, log) in logs.iter().enumerate() {
        let on_hub: BTreeSet<&str> = if i + 1 == victim {
            lost.iter().map(String::as_str).collect()
        } else {
            registrations(log)
                .into_iter()
                .filter(|id| !lost.contains(*id))
                .collect()
        };
        held.push(on_hub.len() as u64);
        placed.extend(on_hub);
    }
    assert_eq!(
        placed.len() as u64,
        AGENTS,
        "agents placed on the hubs\n{context}"
    );
    assert_eq!(
        held.iter().sum::<u64>(),
        AGENTS,
        "each agent on one hub\n{context}"
    );
    assert!(
        held.iter().all(|&n| n > 0),
        "agents by hub {held:?}\n{context}"
    );
    let local = held[commander_hub - 1];
    for (id, delivered) in &sent[..steady] {
        assert_eq!(
            *delivered,
            Some(AGENTS),
            "{id} through {commander} (which held {local}): delivered\n{context}"
        );
    }
    // After the recovery (judged above: within 10 s, the failover phase's
    // 11 s after the kill) the whole fleet again, now on two hubs.
    for (id, delivered) in &sent[steady..] {
        assert_eq!(
            *delivered,
            Some(AGENTS),
            "{id} after the failover\n{context}"
        );
    }
    // Exact: the agents received in total what the hub delivered to, and
    // no command reached fewer (so none reached more either).
    let delivered: u64 = sent.iter().map(|(_, n)| n.unwrap()).sum();
    assert_eq!(
        counter(&s, "hub.command.received"),
        delivered,
        "receipts\n{context}"
    );
    assert_eq!(counter(&s, "hub.command.undelivered"), 0, "{context}");
}

/// scenarios/hub-failover.toml needs the topology and `--allow-exec` to
/// run (`stampede run` by hand, README "Hub topology on loopback"); here it
/// is validated: its fleet, the kill action, the recovery SLO, and refused
/// without `--allow-exec` before anything starts.
#[test]
fn the_hub_failover_scenario_is_valid_and_asks_for_allow_exec() {
    let scenario = repo().join("scenarios/hub-failover.toml");
    let out = Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .arg("validate")
        .arg(&scenario)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "scenario `hub-failover` is valid",
        "peak hub connections: 3001 (3000 agents + 1 commanders)",
        "hub.recovery < 30s",
        "needs --allow-exec",
        "action `kill-hub-2` (exec, ",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
    let text = std::fs::read_to_string(&scenario).unwrap();
    assert!(
        text.contains("sources = 24") && text.contains("${HUB2_PID:?"),
        "24 source addresses, the PID from ci/topology/up.sh's topology.env"
    );

    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .arg("run")
        .arg(&scenario)
        .arg("--out")
        .arg(out_dir.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("`kill-hub-2`") && stderr.contains("--allow-exec"),
        "{stderr}"
    );
    assert!(!out_dir.path().join("out").exists(), "nothing was run");
}
