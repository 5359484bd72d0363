//! A bad disk under a running `stampede run` (the real binary, real kernel
//! failures): `metrics.hlog` on a full device (ENOSPC), a file size limit
//! reached mid-run (RLIMIT_FSIZE: EFBIG for the log and for the larger
//! result files), and the log removed while it is written. The run goes
//! on, warns once, writes what it can, notes what was lost and exits 3.

#![cfg(target_os = "linux")]

use stampede::report::json::{self, Summary};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Six steps, so the log grows by about 2 KiB a second.
const SCENARIO: &str = r#"
name = "disk"
[target]
api = "builtin"
[[users]]
name = "u"
steps = [
  { name = "s1", get = "/api/servers" },
  { name = "s2", get = "/api/servers" },
  { name = "s3", get = "/api/servers" },
  { name = "s4", get = "/api/servers" },
  { name = "s5", get = "/api/servers" },
  { name = "s6", get = "/api/servers" },
]
[[phases]]
name = "p"
duration = "4s"
users = { rate = "20/s" }
"#;

/// `stampede run scenario.toml --result-dir DIR --quiet`, not yet spawned.
fn run_into(scenario_dir: &Path, result: &Path) -> Command {
    let scenario = scenario_dir.join("scenario.toml");
    std::fs::write(&scenario, SCENARIO).unwrap();
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("stampede"));
    cmd.env_remove("STAMPEDE_LOG")
        .env_remove("GITHUB_STEP_SUMMARY")
        .arg("run")
        .arg(&scenario)
        .arg("--result-dir")
        .arg(result)
        .arg("--quiet")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// The lines of `stderr` that contain `needle`: exactly one, returned.
fn one_line<'a>(stderr: &'a str, needle: &str) -> &'a str {
    let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(needle)).collect();
    assert_eq!(lines.len(), 1, "`{needle}` once in:\n{stderr}");
    lines[0]
}

/// summary.json parses, and counts every request of the 4 s at 20/s: six
/// per arrival, each with its latency recorded.
fn complete_summary(result: &Path) -> Summary {
    let summary = json::read(&result.join(json::FILE_NAME)).unwrap();
    let requests: u64 = (summary.counters.iter())
        .filter(|c| c.metric == "http.requests")
        .map(|c| c.total)
        .sum();
    let latencies: u64 = (summary.histograms.iter())
        .filter(|h| h.metric == "http.latency" && h.phase.is_none())
        .map(|h| h.count)
        .sum();
    assert!(requests >= 6 * 70, "{requests} requests");
    assert_eq!(requests % 6, 0, "{requests} requests");
    assert_eq!(latencies, requests);
    summary
}

/// The note (starting with `start`) in summary.json, returned.
fn note(summary: &Summary, start: &str) -> String {
    let notes: Vec<&String> = (summary.meta.notes.iter())
        .filter(|n| n.starts_with(start))
        .collect();
    assert_eq!(notes.len(), 1, "`{start}` in {:?}", summary.meta.notes);
    notes[0].clone()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A tool of the test's is missing: fail in CI, skip (saying why) elsewhere.
fn missing(what: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "{what}: this test cannot run here (CI is set)"
    );
    eprintln!("skipped: {what}");
}

/// `metrics.hlog` on /dev/full (a symlink the run opens through): every
/// write fails with ENOSPC from the first interval on.
#[test]
fn a_full_device_costs_the_log_and_nothing_else() {
    if !Path::new("/dev/full").exists() {
        return missing("no /dev/full");
    }
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("result");
    std::fs::create_dir(&result).unwrap();
    std::os::unix::fs::symlink("/dev/full", result.join("metrics.hlog")).unwrap();
    let output = run_into(dir.path(), &result).output().unwrap();
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let warning = one_line(&stderr, "metrics.hlog");
    assert_eq!(
        warning,
        format!(
            "stampede: warning: writing {}/metrics.hlog failed after 0s: No space left on \
             device (os error 28); the run goes on without its interval log (summary.json and \
             the reports will hold every histogram)",
            result.display()
        )
    );
    let summary = complete_summary(&result);
    assert_eq!(summary.meta.exit_code, 3);
    assert!(!summary.meta.interrupted);
    let note = note(&summary, "metrics.hlog");
    assert_eq!(
        note,
        "metrics.hlog is empty: writing it failed (No space left on device (os error 28)); \
         summary.json and the reports hold every histogram"
    );
    for report in ["summary.md", "junit.xml", "report.html"] {
        let text = std::fs::read_to_string(result.join(report)).unwrap();
        assert!(text.contains(&note), "{report}: {text}");
    }
}

/// A file size limit of 4 KiB (RLIMIT_FSIZE, the kernel's own, inherited
/// by the run; SIGXFSZ ignored so a write past it fails with EFBIG): the
/// log passes it after its first interval, mid-run; at the end summary.json
/// and report.html (larger) fail too and are named, junit.xml and
/// summary.md (smaller) are written with the note.
#[test]
fn a_size_limit_mid_run_cuts_the_log_and_names_each_file_not_written() {
    const LIMIT: u64 = 4096;
    let dir = tempfile::tempdir().unwrap();
    let result = dir.path().join("result");
    let mut cmd = run_into(dir.path(), &result);
    // SAFETY: between fork and exec, only async-signal-safe calls (signal,
    // setrlimit) on plain data.
    unsafe {
        cmd.pre_exec(|| {
            if libc::signal(libc::SIGXFSZ, libc::SIG_IGN) == libc::SIG_ERR {
                return Err(std::io::Error::last_os_error());
            }
            let limit = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = cmd.output().unwrap();
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let hlog = result.join("metrics.hlog");
    let warning = one_line(&stderr, "metrics.hlog");
    let prefix = format!(
        "stampede: warning: writing {} failed after ",
        hlog.display()
    );
    let after = warning
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{warning}"));
    let (seconds, rest) = after.split_once("s: ").unwrap();
    let seconds: u64 = seconds.parse().unwrap();
    assert!((1..4).contains(&seconds), "mid-run: {warning}");
    assert!(
        rest.starts_with("File too large (os error 27); the run goes on"),
        "{warning}"
    );
    // The log is cut back to its whole intervals: a valid log up to there.
    let bytes = std::fs::read(&hlog).unwrap();
    assert!(bytes.len() as u64 <= LIMIT && bytes.ends_with(b"\n"));
    let mut intervals = 0;
    let mut last_start = Duration::ZERO;
    for interval in stampede::metrics::HlogReader::new(&bytes) {
        let interval = interval.unwrap();
        intervals += 1;
        last_start = last_start.max(interval.start);
    }
    assert!(intervals > 0 && last_start < Duration::from_secs(seconds));
    for file in ["summary.json", "report.html"] {
        let path = result.join(file);
        one_line(
            &stderr,
            &format!(
                "stampede: error: writing {}: File too large",
                path.display()
            ),
        );
        assert!(!path.exists(), "{file}");
    }
    let note = format!(
        "metrics.hlog is incomplete after {seconds}s: writing it failed (File too large (os \
         error 27)); summary.json and the reports hold every histogram"
    );
    for file in ["junit.xml", "summary.md"] {
        let text = std::fs::read_to_string(result.join(file)).unwrap();
        assert!(text.contains(&note), "{file}: {text}");
    }
    // No temporary file is left.
    let mut names = crate::common::file_names(&result);
    names.sort();
    assert_eq!(names, ["junit.xml", "metrics.hlog", "summary.md"]);
}

/// Waits (polling, at most 60 s) for `path` to exist.
fn wait_for(path: &Path, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !path.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "the run exited ({status}) before creating {}",
                path.display()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("no {} within 60 s", path.display());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `metrics.hlog` removed while the run writes it (its writes then go to a
/// file nobody can open again): noticed, warned about once, noted.
#[test]
fn a_log_removed_mid_run_is_noted_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let result: PathBuf = dir.path().join("result");
    let hlog = result.join("metrics.hlog");
    let mut child = run_into(dir.path(), &result).spawn().unwrap();
    wait_for(&hlog, &mut child);
    std::fs::remove_file(&hlog).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    let warning = one_line(&stderr, "metrics.hlog");
    assert!(
        warning.starts_with(&format!(
            "stampede: warning: {} was removed during the run (noticed after ",
            hlog.display()
        )),
        "{warning}"
    );
    let summary = complete_summary(&result);
    assert_eq!(summary.meta.exit_code, 3);
    let note = note(&summary, "metrics.hlog");
    assert!(
        note.starts_with("metrics.hlog was removed during the run (noticed after ")
            && note.ends_with(
                "its intervals are lost; summary.json and the reports hold every histogram"
            ),
        "{note}"
    );
    let md = std::fs::read_to_string(result.join("summary.md")).unwrap();
    assert!(
        md.starts_with("### ⚠️ stampede `disk`: results incomplete (see the notes)\n"),
        "{md}"
    );
    assert!(md.contains(&note), "{md}");
    assert!(!hlog.exists());
    // The results stand: `stampede report` rebuilds them, warning of the log.
    let rebuilt = Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .env_remove("GITHUB_STEP_SUMMARY")
        .arg("report")
        .arg(&result)
        .output()
        .unwrap();
    let rebuilt_err = String::from_utf8_lossy(&rebuilt.stderr);
    assert_eq!(rebuilt.status.code(), Some(0), "{rebuilt_err}");
    one_line(&rebuilt_err, "metrics.hlog is missing");
}
