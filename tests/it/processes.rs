//! `run --processes N` and `capacity --processes N` as a user runs them:
//! the built binary, real child processes, the built-in target on
//! loopback. The N segments together play exactly what one process plays,
//! their histograms add up to the merged one bit for bit, SLOs are judged
//! on the merge, progress is one line summed over the children, Ctrl-C
//! reaches every child and leaves none behind.

use stampede::report::json::{decode_histogram, Summary};
use std::collections::BTreeMap;
use std::io::{BufRead as _, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn stampede() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stampede"));
    cmd.env_remove("STAMPEDE_LOG")
        .env_remove("GITHUB_STEP_SUMMARY");
    cmd
}

fn scenario(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn summary(dir: &Path) -> Summary {
    stampede::report::json::read(&dir.join("summary.json")).unwrap()
}

/// The only result directory under `reports`.
fn result_dir(reports: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(reports)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

fn segment_dirs(dir: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| dir.join("segments").join(i.to_string()))
        .collect()
}

/// Processes (pid, command line) whose command line mentions `needle` (a
/// test's temp dir).
fn processes_mentioning(needle: &Path) -> Vec<(i32, String)> {
    let needle = needle.to_string_lossy().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if text.contains(&needle) {
            found.push((pid, text));
        }
    }
    found
}

/// `http.requests` per (step, phase).
fn requests(s: &Summary) -> BTreeMap<(String, String), u64> {
    s.counters
        .iter()
        .filter(|c| c.metric == "http.requests")
        .flat_map(|c| {
            c.phases
                .iter()
                .map(|(phase, n)| ((c.step.clone(), phase.clone()), *n))
        })
        .collect()
}

/// Open model, two steps, two phases: every count is exact. Each
/// segment plays about a quarter of the 90 journeys, so only the merged
/// totals meet `count >= 90`.
const HTTP: &str = r#"
name = "split"
seed = 11
[target]
api = "builtin"
[[users]]
name = "u"
steps = [
  { name = "list", get = "/api/servers" },
  { name = "health", get = "/health" },
]
[[phases]]
name = "slow"
duration = "2s"
users = { rate = "15/s" }
[[phases]]
name = "fast"
duration = "2s"
users = { rate = "30/s" }
[slo]
"http.latency{step=list}.count" = ">= 90"
"http.errors.rate" = "< 1%"
"#;

#[test]
fn four_processes_play_exactly_what_one_plays_and_merge_bit_for_bit() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(tmp.path(), HTTP);
    let one = tmp.path().join("one");
    let four = tmp.path().join("four");
    let status = stampede()
        .args(["run", "--quiet", "--out"])
        .arg(&one)
        .arg(&path)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let output = stampede()
        .args(["run", "--quiet", "--processes", "4", "--out"])
        .arg(&four)
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let dir = result_dir(&four);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("results: {}", dir.display())),
        "{stdout}"
    );

    let single = summary(&result_dir(&one));
    let merged = summary(&dir);
    // Identical request counts per step and phase (15/s × 2s + 30/s × 2s).
    let counts = requests(&merged);
    assert_eq!(counts, requests(&single));
    assert_eq!(counts[&("list".to_string(), "slow".to_string())], 30);
    assert_eq!(counts[&("health".to_string(), "fast".to_string())], 60);

    // The merged histograms are the sum of the segments', bit for bit.
    let segments: Vec<Summary> = segment_dirs(&dir, 4).iter().map(|d| summary(d)).collect();
    assert_eq!(merged.histograms.len(), single.histograms.len());
    for entry in &merged.histograms {
        let mut sum: Option<hdrhistogram::Histogram<u64>> = None;
        for s in &segments {
            if let Some(e) = s
                .histograms
                .iter()
                .find(|e| e.id == entry.id && e.phase == entry.phase)
            {
                let h = decode_histogram(&e.hdr).unwrap();
                match &mut sum {
                    None => sum = Some(h),
                    Some(sum) => sum.add(&h).unwrap(),
                }
            }
        }
        let sum = sum.expect("some segment recorded it");
        let got = decode_histogram(&entry.hdr).unwrap();
        assert_eq!(got.len(), sum.len(), "{} {:?}", entry.metric, entry.phase);
        let buckets = |h: &hdrhistogram::Histogram<u64>| {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect::<Vec<_>>()
        };
        assert_eq!(buckets(&got), buckets(&sum), "{}", entry.metric);
    }

    // Judged on the merge: each segment alone fails `count >= 90`.
    for s in &segments {
        assert_eq!(s.meta.exit_code, 1, "a quarter of 90 is not 90");
        assert!(s.meta.segment.is_some());
    }
    assert!(
        merged.verdicts.iter().all(|v| v.pass),
        "{:?}",
        merged.verdicts
    );
    assert_eq!(merged.meta.exit_code, 0);

    // The built-in target ran once, in its own process: every child was
    // pointed at the same one URL.
    let urls: Vec<String> = segments
        .iter()
        .map(|s| {
            let line = &s.meta.command_line;
            let at = line.iter().position(|a| a == "--api").expect("--api");
            line[at + 1].clone()
        })
        .collect();
    assert!(urls[0].starts_with("http://127.0.0.1:"), "{urls:?}");
    assert!(urls.iter().all(|u| *u == urls[0]), "{urls:?}");
    assert!(processes_mentioning(tmp.path()).is_empty());
}

/// Agents and users on the built-in target, 8 agents over 4 processes.
const FLEET: &str = r#"
name = "fleet"
[target]
api = "builtin"
hub = "builtin"
[[users]]
name = "u"
steps = [{ name = "list", get = "/api/servers" }]
[[agents]]
name = "a"
protocol = "websocket"
[[phases]]
name = "hold"
duration = "7s"
users = { rate = "10/s" }
agents = { connected = 8, connect_rate = "max" }
"#;

#[test]
fn progress_off_a_tty_is_one_line_summed_over_the_children() {
    let tmp = tempfile::tempdir().unwrap();
    let path = scenario(tmp.path(), FLEET);
    let output = stampede()
        .args(["run", "--processes", "4", "--out"])
        .arg(tmp.path().join("reports"))
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("processes ·"))
        .collect();
    // One line at 5 s (plain lines every 5 s, as one process prints them).
    assert_eq!(lines.len(), 1, "{stderr}");
    let line = lines[0];
    assert!(
        line.starts_with("[    5s / 7s] hold · 4/4 processes"),
        "{line}"
    );
    // Each child holds 2 agents: the line shows the fleet's 8.
    assert!(line.contains("hub 8/8 registered"), "{line}");
    assert!(line.contains("p95(5s) max "), "{line}");
    // No control characters off a terminal.
    assert!(
        !stderr.contains('\r') && !stderr.contains('\x1b'),
        "{stderr:?}"
    );
    let merged = summary(&result_dir(&tmp.path().join("reports")));
    let connects = merged
        .histograms
        .iter()
        .find(|h| h.metric == "hub.connect" && h.phase.is_none())
        .map(|h| h.count);
    assert_eq!(connects, Some(8));
}

#[test]
fn ctrl_c_reaches_every_child_and_each_writes_its_result() {
    let tmp = tempfile::tempdir().unwrap();
    let text = HTTP.replace("duration = \"2s\"", "duration = \"30s\"");
    let path = scenario(tmp.path(), &text);
    let reports = tmp.path().join("reports");
    let mut parent = stampede()
        .args(["run", "--processes", "3", "--grace", "1s", "--out"])
        .arg(&reports)
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first progress line: every child is running.
    let mut err = std::io::BufReader::new(parent.stderr.take().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "stderr closed: {seen}"
        );
        seen.push_str(&line);
        if line.contains("3/3 processes") {
            break;
        }
        assert!(Instant::now() < deadline, "{seen}");
    }
    // SAFETY: kill(2) on the pid of a child we have not reaped yet.
    assert_eq!(
        unsafe { libc::kill(parent.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let status = parent.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{seen}{rest}");
    let dir = result_dir(&reports);
    for seg in segment_dirs(&dir, 3) {
        let s = summary(&seg);
        assert!(s.meta.interrupted, "{}", seg.display());
    }
    let merged = summary(&dir);
    assert!(merged.meta.interrupted);
    assert_eq!(merged.meta.exit_code, 3);
    assert!(merged.meta.duration_s < 25.0);
    assert!(
        processes_mentioning(tmp.path()).is_empty(),
        "left behind: {:?}",
        processes_mentioning(tmp.path())
    );
}

/// A fleet one process refuses under a low descriptor limit runs when the
/// refusal's suggestion is followed.
#[test]
fn the_suggested_process_count_holds_the_fleet() {
    let tmp = tempfile::tempdir().unwrap();
    let text = r#"
name = "fds"
[target]
hub = "builtin"
[[agents]]
name = "a"
protocol = "websocket"
[[phases]]
name = "hold"
duration = "2s"
agents = { connected = 100, connect_rate = "max" }
[slo]
"hub.connect.count" = ">= 100"
"#;
    let path = scenario(tmp.path(), text);
    let limited = |extra: &[&str]| {
        let mut cmd = stampede();
        cmd.arg("run")
            .arg(&path)
            .args(extra)
            .arg("--out")
            .arg(tmp.path().join("reports"));
        use std::os::unix::process::CommandExt as _;
        // SAFETY: setrlimit is async-signal-safe and touches only the child.
        unsafe {
            cmd.pre_exec(|| {
                let lim = libc::rlimit {
                    rlim_cur: 256,
                    rlim_max: 256,
                };
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
                Ok(())
            });
        }
        cmd.output().unwrap()
    };
    let one = limited(&[]);
    let stderr = String::from_utf8_lossy(&one.stderr);
    assert_eq!(one.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("`--processes 2`"), "{stderr}");
    let two = limited(&["--processes", "2"]);
    let stderr = String::from_utf8_lossy(&two.stderr);
    assert_eq!(two.status.code(), Some(0), "{stderr}");
}

#[test]
fn capacity_runs_every_step_in_processes_against_one_target() {
    let tmp = tempfile::tempdir().unwrap();
    let text = r#"
name = "cap"
[target]
api = "builtin"
[[users]]
name = "u"
steps = [{ name = "list", get = "/api/servers" }]
[[phases]]
name = "p"
duration = "1s"
users = { rate = "20/s" }
[slo]
"http.errors.rate" = "< 1%"
"#;
    let path = scenario(tmp.path(), text);
    let output = stampede()
        .args([
            "capacity",
            "--processes",
            "2",
            "--start",
            "10",
            "--warmup",
            "1s",
            "--step",
            "1s",
            "--budget",
            "9s",
            "--quiet",
            "--out",
        ])
        .arg(tmp.path().join("reports"))
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    let dir = result_dir(&tmp.path().join("reports"));
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("capacity.json")).unwrap()).unwrap();
    let steps = report["steps"].as_array().unwrap();
    // Up at 10/s, up at 20/s, then the budget is used up (and a
    // confirmation may follow). A step the generator fell behind in (a
    // busy machine) is discarded and run again: not counted here.
    let kept: Vec<_> = steps.iter().filter(|s| s["discarded"].is_null()).collect();
    assert!(kept.len() >= 2, "{report:#}");
    assert_eq!(kept[1]["load"].as_f64(), Some(20.0), "{report:#}");
    let mut urls = Vec::new();
    for step in steps {
        let step_dir = PathBuf::from(step["result_dir"].as_str().unwrap());
        // The load for 2 s (warm-up and measure), merged from 2 segments.
        let merged = summary(&step_dir);
        let total: u64 = requests(&merged).values().sum();
        let load = step["load"].as_f64().unwrap() as u64;
        assert_eq!(total, load * 2, "{}", step_dir.display());
        for seg in segment_dirs(&step_dir, 2) {
            let s = summary(&seg);
            let line = &s.meta.command_line;
            let at = line.iter().position(|a| a == "--api").expect("--api");
            urls.push(line[at + 1].clone());
        }
    }
    // One target for the whole search.
    assert_eq!(urls.len(), steps.len() * 2);
    assert!(urls.iter().all(|u| *u == urls[0]), "{urls:?}");
    assert!(processes_mentioning(tmp.path()).is_empty());
}

/// A child that dies leaves a partial merge of the others, its stderr and
/// exit 3.
#[test]
fn a_crashed_child_leaves_a_partial_merge_and_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    let text = HTTP.replace("duration = \"2s\"", "duration = \"4s\"");
    let path = scenario(tmp.path(), &text);
    let reports = tmp.path().join("reports");
    let mut parent = stampede()
        .args(["run", "--processes", "3", "--out"])
        .arg(&reports)
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(parent.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            err.read_line(&mut line).unwrap() > 0,
            "stderr closed: {seen}"
        );
        seen.push_str(&line);
        if line.contains("3/3 processes") {
            break;
        }
    }
    let (pid, _) = processes_mentioning(tmp.path())
        .into_iter()
        .find(|(_, line)| line.contains("--segment 1/3"))
        .expect("segment 1 runs");
    // SAFETY: kill(2) on a process this test started (through the parent).
    assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
    let mut rest = String::new();
    err.read_to_string(&mut rest).unwrap();
    let status = parent.wait().unwrap();
    assert_eq!(status.code(), Some(3), "{seen}{rest}");
    assert!(
        rest.contains("segment 1/3 was killed by signal 9"),
        "{rest}"
    );
    let dir = result_dir(&reports);
    let merged = summary(&dir);
    let from = merged.meta.merged.expect("a merged result");
    assert_eq!(from.missing, [1]);
    assert_eq!(from.sources.len(), 2);
    assert!(processes_mentioning(tmp.path()).is_empty());
}
