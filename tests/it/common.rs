//! Shared helpers: scenarios from text in a temp dir, runs through the
//! library, the built-in target on 127.0.0.1:0.

use stampede::metrics::{TagFilter, Totals};
use stampede::run::{Progress, RunOptions, RunOutcome};
use stampede::scenario::{self, Overrides};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A temp dir holding `scenario.toml` (and any extra files).
pub struct Fixture {
    pub dir: tempfile::TempDir,
}

impl Fixture {
    pub fn new(scenario_text: &str) -> Fixture {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("scenario.toml"), scenario_text).expect("write scenario");
        Fixture { dir }
    }

    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write file");
        path
    }

    pub fn scenario_path(&self) -> PathBuf {
        self.dir.path().join("scenario.toml")
    }

    pub fn out_dir(&self) -> PathBuf {
        self.dir.path().join("reports")
    }

    /// How [`Fixture::run`] runs it: quietly, the whole plan, results in
    /// [`Fixture::out_dir`].
    pub fn options(&self, overrides: Overrides) -> RunOptions {
        RunOptions {
            scenario: self.scenario_path(),
            overrides,
            out_dir: self.out_dir(),
            progress: Progress::Quiet,
            grace: Duration::from_secs(2),
            command_line: vec!["test".into()],
            baseline: None,
            segment: stampede::plan::Segment::WHOLE,
            start_at: None,
            child: Default::default(),
        }
    }

    /// Load and run through the library, quietly.
    pub async fn run(&self, overrides: Overrides) -> RunOutcome {
        let loaded = scenario::load(&self.scenario_path(), &overrides)
            .unwrap_or_else(|e| panic!("scenario invalid:\n{e}"));
        let options = self.options(overrides);
        match stampede::run::run_scenario(Arc::new(loaded), &options).await {
            Ok(outcome) => outcome,
            Err(e) => panic!("run failed: {e:#}"),
        }
    }
}

pub fn api(addr: std::net::SocketAddr) -> Overrides {
    Overrides {
        api: Some(format!("http://{addr}")),
        ..Overrides::default()
    }
}

pub fn count(totals: &Totals, metric: &str, kind: Option<&str>) -> u64 {
    totals.sum_counters(metric, kind, &TagFilter::default())
}

pub fn step(name: &str) -> TagFilter {
    TagFilter {
        step: Some(name.into()),
        ..TagFilter::default()
    }
}

/// p-quantile (0..1) of a histogram metric over all series, in µs.
pub fn quantile(totals: &Totals, metric: &str, filter: &TagFilter, q: f64) -> u64 {
    totals
        .select_hist(metric, filter)
        .map(|h| h.value_at_quantile(q))
        .unwrap_or_else(|| panic!("no {metric} data"))
}

pub fn summary_exists(dir: &Path) -> bool {
    dir.join("summary.json").is_file()
}

/// The names of the entries of `dir`, sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// A result directory's summary.json as JSON (for tests that read it as a
/// user's script would).
pub fn summary_value(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("summary.json"))
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    serde_json::from_str(&text).unwrap()
}

/// The total of a counter over all its series, in a summary.json value.
pub fn counter_total(s: &serde_json::Value, metric: &str) -> u64 {
    s["counters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["metric"] == metric)
        .map(|c| c["total"].as_u64().unwrap())
        .sum()
}

/// Assert that a command succeeded, showing its stderr if not.
pub fn succeeded(output: &std::process::Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A Socket.IO agent population that registers, heartbeats (with acks) and
/// answers commands, and a commander sending to all of them: the hub part
/// of the split-run tests' scenarios.
pub const AGENTS_AND_OPS: &str = r#"[[agents]]
name = "agent"
protocol = "socketio"
register = { event = "register", data = { id = "a-{{ agent.id }}" }, ack = true }
heartbeat = { every = "500ms", ack = true }
on_command = { event = "command", reply = "result" }
reconnect = { base = "100ms", max = "300ms", jitter = "none" }
[[commanders]]
name = "ops"
send = { event = "command", to = "agents", data = { op = "refresh" } }
"#;

/// The rows of a console table: `take` lines after the line `after` (or
/// after the first line when None), split on whitespace.
pub fn table_rows<'a>(text: &'a str, after: Option<&str>, take: usize) -> Vec<Vec<&'a str>> {
    let mut lines: Box<dyn Iterator<Item = &str>> = Box::new(text.lines());
    if let Some(heading) = after {
        let heading = heading.to_string();
        lines = Box::new(lines.skip_while(move |l| *l != heading));
    }
    lines
        .skip(1)
        .take(take)
        .map(|l| l.split_whitespace().collect())
        .collect()
}

/// A child process (a `stampede target`, say) stopped when the test ends
/// however it ends: SIGINT (a target parent stops its workers), then
/// SIGKILL after 10 s (its workers then get SIGTERM from the kernel,
/// `PR_SET_PDEATHSIG`).
pub struct ChildGuard(pub std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            unsafe { libc::kill(self.0.id() as i32, libc::SIGINT) };
            let until = std::time::Instant::now() + Duration::from_secs(10);
            while self.0.try_wait().ok().flatten().is_none() && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// Cargo's target directory: the one this test binary was built in
/// (`<target>/<profile>/deps/it-…`): `target/` in a clean clone, where
/// `.ci/run` creates the Python venvs, or `$CARGO_TARGET_DIR`. Not found by
/// cargo's `CACHEDIR.TAG`: cargo writes none into a `target/` that existed
/// before it (`.ci/run` creates `target/` for the venvs first).
pub fn target_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let deps = exe.parent().filter(|d| d.ends_with("deps"));
    deps.and_then(|deps| deps.parent()?.parent())
        .unwrap_or_else(|| panic!("{} is not in <target>/<profile>/deps", exe.display()))
        .to_path_buf()
}

/// The python of the venv `<target>/<name>` in which `import` (Python
/// statements) runs, creating the venv with `package` (pinned as
/// `.ci/run` pins it) on first use, one test at a time; Err says why not.
pub fn python_venv(name: &str, package: &str, import: &str) -> Result<std::path::PathBuf, String> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let venv = target_dir().join(name);
    let python = venv.join("bin/python");
    let usable = || {
        std::process::Command::new(&python)
            .args(["-c", import])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if usable() {
        return Ok(python);
    }
    eprintln!(
        "creating {} with {package} (python3 -m venv, pip install)",
        venv.display()
    );
    let run = |cmd: &mut std::process::Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{cmd:?} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    run(std::process::Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv))?;
    run(std::process::Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        package,
    ]))?;
    if usable() {
        Ok(python)
    } else {
        Err(format!("`{import}` fails in {}", python.display()))
    }
}
