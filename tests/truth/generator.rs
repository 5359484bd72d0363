//! A starved generator is flagged, a healthy one is not.
//!
//! Starved on purpose: the stampede binary pinned to one CPU
//! (`sched_setaffinity` before it starts) beside two threads of this test
//! spinning on that same CPU, at 4,000 arrivals/s against the built-in
//! target (loopback). The known answer: the process may use exactly one CPU
//! (its affinity), it has to share it with two busy threads, so its
//! threads wait for the CPU most of the time they want it, a millisecond or
//! more each time (the spinners never sleep, so a waking generator thread
//! waits for a slice to end): `run_queue` must be among the causes, in
//! summary.json and junit.xml, with the run failed (exit 1) because it sets
//! `generator_health = "fail"`.
//!
//! Not starved: 100 arrivals/s, no pinning, no spinners, against a target
//! that takes 20 ms: nothing flagged, the junit case passes.
//!
//! Tolerances: the flag rules' thresholds (see `report::generator`); the
//! starved run's figures are far past them (measured: 84 % of the time
//! waiting, 18.7 ms a wait), the healthy run's far under (below 1 ms a
//! wait, against a latency of 20 ms). The healthy run needs a machine
//! that is not oversubscribed: on 2 cores at load 12 (four compilers in
//! other cgroups beside it, so `nice` does not help) arrivals were made up
//! to 30 ms late at p99, and the lag rule (> 10 ms) rightly flags that.
//! So the test reads whether the run was starved from the OS's figures,
//! apart from the verdict: its threads waited < 30 % of the time they
//! wanted a CPU and < 1 ms a wait → nothing may be flagged; otherwise only
//! the lateness (`lag` or `run_queue`) may be named.

use crate::common::Fixture;
use crate::serial;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn scenario(rate: u32, latency: &str, duration: &str) -> String {
    format!(
        r#"
name = "generator"
[target]
api = "builtin"
[target.builtin]
latency = "{latency}"
[http]
max_in_flight = 200
[[users]]
name = "u"
steps = [{{ name = "list", get = "/api/servers" }}]
[[phases]]
name = "load"
duration = "{duration}"
users = {{ rate = "{rate}/s" }}
[slo]
"http.errors.rate" = "< 100%"
"#
    )
}

/// The first CPU this process may run on.
fn a_cpu() -> usize {
    // SAFETY: sched_getaffinity writes into the set we pass; CPU_ISSET reads it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        assert_eq!(
            libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set),
            0
        );
        (0..libc::CPU_SETSIZE as usize)
            .find(|&c| libc::CPU_ISSET(c, &set))
            .expect("a CPU")
    }
}

/// Pin the calling thread (or, before exec, the child) to `cpu`.
fn pin(cpu: usize) -> std::io::Result<()> {
    // SAFETY: plain syscalls on a set we own.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Threads spinning on `cpu` until dropped (or 60 s at most).
struct Spinners {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Spinners {
    fn start(cpu: usize, n: usize) -> Spinners {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..n)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    pin(cpu).expect("pin a spinner");
                    let until = Instant::now() + Duration::from_secs(60);
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) && Instant::now() < until {
                        for i in 0..10_000u64 {
                            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                        }
                    }
                })
            })
            .collect();
        Spinners { stop, threads }
    }
}

impl Drop for Spinners {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Run the binary; its result directory and exit code.
fn run(fixture: &Fixture, pinned: Option<usize>, sets: &[&str]) -> (std::path::PathBuf, i32) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_stampede"));
    cmd.arg("run")
        .arg(fixture.scenario_path())
        .arg("--quiet")
        .arg("--out")
        .arg(fixture.out_dir())
        .env_remove("STAMPEDE_LOG")
        .env_remove("GITHUB_STEP_SUMMARY");
    for set in sets {
        cmd.args(["--set", set]);
    }
    if let Some(cpu) = pinned {
        // SAFETY: only an async-signal-safe syscall between fork and exec.
        unsafe {
            cmd.pre_exec(move || pin(cpu));
        }
    }
    let output = cmd.output().expect("run stampede");
    let code = output.status.code().expect("exited");
    let dir = std::fs::read_dir(fixture.out_dir())
        .expect("a result directory")
        .map(|e| e.unwrap().path())
        .next()
        .unwrap_or_else(|| panic!("no result: {}", String::from_utf8_lossy(&output.stderr)));
    (dir, code)
}

fn summary(dir: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The `generator health` test case of junit.xml.
fn junit_case(dir: &std::path::Path) -> String {
    let xml = std::fs::read_to_string(dir.join("junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("junit.xml is XML");
    let case = doc
        .descendants()
        .find(|n| n.has_tag_name("testcase") && n.attribute("name") == Some("generator health"))
        .unwrap_or_else(|| panic!("no generator health case in {xml}"));
    xml[case.range()].to_string()
}

#[test]
fn a_starved_generator_is_flagged_and_names_the_cause() {
    let _serial = serial();
    let fixture = Fixture::new(&scenario(4_000, "0ms", "4s"));
    let cpu = a_cpu();
    let (dir, code) = {
        let _spinners = Spinners::start(cpu, 2);
        run(&fixture, Some(cpu), &["slo.generator_health=fail"])
    };
    let s = summary(&dir);
    let g = &s["generator"];
    let figures = &g["figures"];
    assert_eq!(figures["cpus_affinity"], 1, "{g:#}");
    assert!(figures["cpus_allowed"].as_f64().unwrap() <= 1.0, "{g:#}");
    let waited = figures["run_queue_s"].as_f64().expect("run-queue measured");
    let cpu_s = figures["cpu_s"].as_f64().unwrap();
    assert!(waited / (waited + cpu_s) >= 0.30, "{g:#}");
    let kinds: Vec<&str> = (g["causes"].as_array().unwrap().iter())
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert!(kinds.contains(&"run_queue"), "{g:#}");
    let cause = (g["causes"].as_array().unwrap().iter())
        .find(|c| c["kind"] == "run_queue")
        .unwrap();
    assert!(
        cause["fix"].as_str().unwrap().contains("--processes"),
        "{cause:#}"
    );
    assert!(
        cause["threshold"].as_str().unwrap().contains("30%"),
        "{cause:#}"
    );
    // generator_health = "fail": the run fails, junit has a <failure>.
    assert_eq!(code, 1, "{g:#}");
    assert_eq!(s["meta"]["exit_code"], 1);
    let case = junit_case(&dir);
    assert!(
        case.contains("<failure") && case.contains("type=\"generator\""),
        "{case}"
    );
    assert!(case.contains("run_queue"), "{case}");
    let notes = s["meta"]["notes"].to_string();
    assert!(notes.contains("GENERATOR UNHEALTHY"), "{notes}");
    let md = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(md.contains("**GENERATOR UNHEALTHY**"), "{md}");
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert!(html.contains("<strong>run_queue</strong>"));
}

#[test]
fn a_healthy_generator_is_not_flagged() {
    let _serial = serial();
    let fixture = Fixture::new(&scenario(100, "20ms", "3s"));
    let (dir, code) = run(&fixture, None, &[]);
    let s = summary(&dir);
    let g = &s["generator"];
    assert_eq!(g["mode"], "error");
    // `error`: whatever the verdict, the exit code is the SLOs'.
    assert_eq!(code, 0);
    // 100/s for 3 s: every arrival counted.
    assert_eq!(g["figures"]["arrivals"], 300, "{g:#}");
    let case = junit_case(&dir);
    let causes = g["causes"].as_array().unwrap();
    // Was it starved? The OS says, apart from the verdict: how long its
    // threads waited for a CPU, against the time they wanted one, and per wait.
    let f = &g["figures"];
    let waited = f["run_queue_s"].as_f64().expect("run-queue measured");
    let share = waited / (waited + f["cpu_s"].as_f64().unwrap());
    let per_wait_us = waited * 1e6 / f["slices"].as_f64().unwrap().max(1.0);
    if share < 0.30 && per_wait_us < 1_000.0 {
        // Its threads got a CPU when they wanted one: nothing may be flagged.
        assert!(causes.is_empty(), "{g:#}");
        assert!(
            !case.contains("<error") && !case.contains("<failure"),
            "{case}"
        );
        assert!(case.contains("the generator kept up"), "{case}");
    } else {
        // An oversubscribed machine (measured: load 12 on 2 cores, wake-ups
        // up to 30 ms late) may starve any generator: whether it was is
        // for the rules (their unit tests), but only the lateness it
        // measured may be named, never its CPU or the in-flight ceiling.
        eprintln!(
            "its threads waited {:.0}% of the time they wanted a CPU, {per_wait_us:.0} µs a wait: this machine is oversubscribed",
            share * 100.0
        );
        for cause in causes {
            assert!(
                ["lag", "run_queue"].contains(&cause["kind"].as_str().unwrap()),
                "{g:#}"
            );
        }
        let flagged = !causes.is_empty();
        assert_eq!(case.contains("<error"), flagged, "{case}");
    }
}
