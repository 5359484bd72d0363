//! The reports of a result directory: written at the end of a run,
//! rebuilt by `stampede report DIR` (and refused, naming the file, on a
//! missing, cut-short or corrupt result), and `metrics.hlog` read back by an
//! independent HdrHistogram implementation — the Python `hdrhistogram`
//! package (PyPI), in a venv at `hdrh-venv` in cargo's target directory
//! (`target/hdrh-venv`, or under `$CARGO_TARGET_DIR` when that is set).
//!
//! `.ci/run` creates that venv; a plain `cargo test` creates it on first
//! use when python3 and PyPI are reachable. Without it the hlog test fails,
//! saying what is missing (never a silent pass).

use crate::common::Fixture;
use assert_cmd::Command;
use predicates::prelude::*;
use stampede::metrics::hlog_tag;
use stampede::report::json::{self, Summary};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Two phases, two steps, an SLO: every report has something to show
/// (also the segments `tests/it/merge.rs` merges).
pub(crate) const SCENARIO: &str = r#"
name = "reports"
[target]
api = "builtin"
[target.builtin]
latency = "1ms..3ms"
[[users]]
name = "shopper"
steps = [
  { name = "list", get = "/api/servers" },
  { name = "health", get = "/health" },
]
[[phases]]
name = "warm-up"
duration = "1s"
users = { rate = "40/s" }
[[phases]]
name = "peak"
duration = "1s"
users = { rate = "80/s" }
[slo]
"http.latency.p99" = "< 5s"
"http.errors.rate" = "< 1%"
"#;

const REPORTS: [&str; 3] = ["report.html", "junit.xml", "summary.md"];

fn stampede() -> Command {
    let mut cmd = Command::cargo_bin("stampede").unwrap();
    cmd.env_remove("STAMPEDE_LOG")
        .env_remove("GITHUB_STEP_SUMMARY");
    cmd
}

/// A real result directory, from a short run through the library.
async fn result_dir() -> (Fixture, PathBuf) {
    let fixture = Fixture::new(SCENARIO);
    let outcome = fixture.run(Default::default()).await;
    let dir = outcome.result_dir.clone();
    (fixture, dir)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_writes_every_report_and_report_rebuilds_them_identically() {
    let (_fixture, dir) = result_dir().await;
    let summary = json::read(&dir.join("summary.json")).unwrap();
    let at_run_end: Vec<Vec<u8>> = REPORTS.iter().map(|f| read(&dir.join(f))).collect();

    // The run's reports say what summary.json says.
    let xml = String::from_utf8(at_run_end[1].clone()).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("junit.xml is XML");
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .unwrap();
    assert_eq!(suite.attribute("name"), Some("reports"));
    // One case per SLO, and the generator's health.
    assert_eq!(suite.attribute("tests"), Some("3"));
    assert_eq!(suite.attribute("failures"), Some("0"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .map(|n| n.attribute("name").unwrap())
        .collect();
    let mut keys: Vec<&str> = summary
        .verdicts
        .iter()
        .map(|v| v.slo.key.as_str())
        .collect();
    keys.push("generator health");
    assert_eq!(
        cases, keys,
        "one case per verdict, in order, then the generator's"
    );
    // Flagged or not (a loaded machine may starve it), it is an <error> at
    // most: the failures and the exit code are the SLOs'.
    let generator = summary.generator.as_ref().expect("the generator judged");
    assert_eq!(
        suite.attribute("errors"),
        Some(if generator.flagged() { "1" } else { "0" })
    );
    let mut sorted = cases.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["generator health", "http.errors.rate", "http.latency.p99"]
    );
    let md = String::from_utf8(at_run_end[2].clone()).unwrap();
    assert!(
        md.starts_with("### ✅ stampede `reports`: all 2 SLOs held\n"),
        "{md}"
    );
    let list = summary
        .counters
        .iter()
        .find(|c| c.metric == "http.requests" && c.step == "list")
        .unwrap();
    // 1 s at 40/s then 1 s at 80/s: exactly 120 journeys.
    assert_eq!(list.total, 120);
    assert!(
        md.contains(&format!("| `list` | {} |", list.total)),
        "step table counts the requests of summary.json: {md}"
    );
    let html = String::from_utf8(at_run_end[0].clone()).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("http.latency.p99"));

    // Gone, then rebuilt from summary.json and metrics.hlog: the same bytes.
    for file in REPORTS {
        std::fs::remove_file(dir.join(file)).unwrap();
    }
    let step_summary = dir.join("step-summary.md");
    stampede()
        .arg("report")
        .arg(&dir)
        .env("GITHUB_STEP_SUMMARY", &step_summary)
        .assert()
        .code(0)
        .stdout(predicate::str::contains(format!(
            "wrote {}",
            dir.join("junit.xml").display()
        )))
        .stderr(predicate::str::contains("warning").not());
    for (file, before) in REPORTS.iter().zip(&at_run_end) {
        assert_eq!(&read(&dir.join(file)), before, "{file} rebuilt identically");
    }
    assert_eq!(
        String::from_utf8(read(&step_summary)).unwrap(),
        format!("\n{md}"),
        "summary.md appended to $GITHUB_STEP_SUMMARY"
    );
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(left.is_empty(), "temporary files left: {left:?}");

    // Without metrics.hlog: a warning, the reports all the same.
    std::fs::remove_file(dir.join("metrics.hlog")).unwrap();
    std::fs::remove_file(dir.join("report.html")).unwrap();
    stampede()
        .arg("report")
        .arg(&dir)
        .assert()
        .code(0)
        .stderr(predicate::str::contains("metrics.hlog is missing"));
    assert_eq!(read(&dir.join("report.html")), at_run_end[0]);
}

/// Reports are replaced atomically: `stampede report DIR` rewrites all
/// three again and again while a reader keeps opening them; every read is
/// the whole document (the rebuilt reports are byte-identical, so anything
/// else is a truncated or half-written file), and no temporary file stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_are_replaced_atomically_while_being_read() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    const REBUILDS: usize = 25;
    let (_fixture, dir) = result_dir().await;
    let whole: Vec<(PathBuf, Vec<u8>)> = REPORTS
        .iter()
        .map(|f| (dir.join(f), read(&dir.join(f))))
        .collect();
    let done = Arc::new(AtomicBool::new(false));
    let reader = std::thread::spawn({
        let done = done.clone();
        move || {
            let mut reads = 0u64;
            let mut bad = Vec::new();
            while !done.load(Ordering::Acquire) {
                for (path, expected) in &whole {
                    match std::fs::read(path) {
                        Ok(bytes) if &bytes == expected => {}
                        Ok(bytes) => bad.push(format!(
                            "{}: {} bytes of {}",
                            path.display(),
                            bytes.len(),
                            expected.len()
                        )),
                        Err(e) => bad.push(format!("{}: {e}", path.display())),
                    }
                    reads += 1;
                }
            }
            (reads, bad)
        }
    });
    for _ in 0..REBUILDS {
        stampede().arg("report").arg(&dir).assert().code(0);
    }
    done.store(true, Ordering::Release);
    let (reads, bad) = reader.join().unwrap();
    assert!(bad.is_empty(), "incomplete reads: {bad:#?}");
    // The reader really ran alongside: at least one pass per rebuild.
    assert!(reads >= (REBUILDS * REPORTS.len()) as u64, "{reads} reads");
    assert_eq!(
        crate::common::file_names(&dir),
        [
            "junit.xml",
            "metrics.hlog",
            "report.html",
            "summary.json",
            "summary.md"
        ],
        "only the result files, no temporary file"
    );
}

/// `stampede report` on `dir` fails with exit 2, naming `file` with
/// `needle`; no report.html is written and one already there is untouched.
fn refused(dir: &Path, file: &Path, needle: &str) {
    let html = dir.join("report.html");
    let before = std::fs::read(&html).ok();
    let output = stampede().arg("report").arg(dir).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("error: {}: ", file.display())),
        "names {}: {stderr}",
        file.display()
    );
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(std::fs::read(&html).ok(), before, "report.html untouched");
    if dir.is_dir() {
        let temp: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(temp.is_empty(), "{temp:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_result_directories_are_refused_naming_the_file() {
    let (fixture, dir) = result_dir().await;
    let summary_path = dir.join("summary.json");
    let hlog_path = dir.join("metrics.hlog");
    let good_summary = read(&summary_path);
    let good_hlog = read(&hlog_path);

    let missing = fixture.dir.path().join("reports/no-such-run");
    refused(&missing, &missing, "no such result directory");

    // No report.html at all: none may appear.
    std::fs::remove_file(dir.join("report.html")).unwrap();
    std::fs::write(&summary_path, &good_summary[..good_summary.len() * 2 / 3]).unwrap();
    refused(&dir, &summary_path, "cut short");
    assert!(!dir.join("report.html").exists());

    // With the run's report.html there: it stays as it was.
    std::fs::write(&summary_path, &good_summary).unwrap();
    stampede().arg("report").arg(&dir).assert().code(0);
    std::fs::remove_file(&summary_path).unwrap();
    refused(&dir, &summary_path, "missing");
    std::fs::write(
        &summary_path,
        String::from_utf8(good_summary.clone()).unwrap().replacen(
            "\"verdicts\"",
            "\"verdicts_\"",
            1,
        ),
    )
    .unwrap();
    refused(&dir, &summary_path, "missing field `verdicts`");

    // A corrupt hlog: one interval's histogram garbled.
    std::fs::write(&summary_path, &good_summary).unwrap();
    let text = String::from_utf8(good_hlog.clone()).unwrap();
    let line = text.lines().position(|l| l.starts_with("Tag=")).unwrap();
    let garbled: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == line {
                format!("{}AAAA{}", &l[..l.len() - 8], "====")
            } else {
                l.to_string()
            }
        })
        .collect();
    std::fs::write(&hlog_path, garbled.join("\n") + "\n").unwrap();
    refused(&dir, &hlog_path, &format!("corrupt: line {}", line + 1));
    // Cut short mid-line, as a crash would leave it.
    std::fs::write(&hlog_path, &good_hlog[..good_hlog.len() - 20]).unwrap();
    refused(&dir, &hlog_path, "is not an interval log line");
}

// --- metrics.hlog through an independent reader --------------------------

/// The pinned version `.ci/run` installs too.
const HDRH_PACKAGE: &str = "hdrhistogram==0.10.8";

fn venv() -> PathBuf {
    super::common::target_dir().join("hdrh-venv")
}

/// The venv's python with `hdrh` importable, creating the venv on first
/// use; Err says why not.
fn python_with_hdrh() -> Result<PathBuf, String> {
    super::common::python_venv("hdrh-venv", HDRH_PACKAGE, "import hdrh.log")
}

/// Reads an hlog with the Python package's `HistogramLogReader` and prints,
/// per tag, the merged histogram's count, p99 and max as JSON.
const READER: &str = r#"
import json, sys
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader
reader = HistogramLogReader(sys.argv[1], HdrHistogram(1, 3600000000, 3))
merged = {}
intervals = 0
while True:
    h = reader.get_next_interval_histogram()
    if h is None:
        break
    intervals += 1
    tag = h.get_tag()
    if tag in merged:
        merged[tag].add(h)
    else:
        merged[tag] = h
print(json.dumps({
    "start_time": reader.get_start_time_sec(),
    "intervals": intervals,
    "tags": {t: [h.get_total_count(), h.get_value_at_percentile(99.0), h.get_max_value()]
             for t, h in merged.items()},
}))
"#;

#[derive(serde::Deserialize)]
struct PythonView {
    start_time: f64,
    intervals: u64,
    tags: BTreeMap<String, (u64, u64, u64)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hlog_reads_back_in_python_hdrhistogram_as_in_summary_json() {
    let python = python_with_hdrh().unwrap_or_else(|problem| {
        panic!(
            "the independent hlog reader cannot run: {problem}. It needs python3 with venv and \
             pip (apt-get install python3-venv python3-pip) and PyPI, or the venv .ci/run \
             creates at {}",
            venv().display()
        )
    });
    let (_fixture, dir) = result_dir().await;
    let summary: Summary = json::read(&dir.join("summary.json")).unwrap();
    let out = std::process::Command::new(&python)
        .args(["-c", READER])
        .arg(dir.join("metrics.hlog"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python reader failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view: PythonView = serde_json::from_slice(&out.stdout).unwrap();

    // The log's StartTime is the run's start.
    let started = chrono::DateTime::parse_from_rfc3339(&summary.meta.started_at).unwrap();
    assert!(
        (view.start_time - started.timestamp_millis() as f64 / 1e3).abs() < 1.0,
        "StartTime {} vs started_at {}",
        view.start_time,
        summary.meta.started_at
    );
    // The reader took every interval line of the file (how many there are
    // depends on where the wall-clock ticks fell: 1 s intervals, a line per
    // series that recorded something in it).
    let hlog_text = std::fs::read_to_string(dir.join("metrics.hlog")).unwrap();
    let lines = hlog_text.lines().filter(|l| l.starts_with("Tag=")).count() as u64;
    assert_eq!(view.intervals, lines, "python read every interval line");

    let overall: Vec<_> = summary
        .histograms
        .iter()
        .filter(|h| h.phase.is_none())
        .collect();
    let expected_tags: Vec<String> = overall
        .iter()
        .map(|h| hlog_tag(&summary.layout.hists[h.id as usize]))
        .collect();
    assert_eq!(
        view.tags.keys().cloned().collect::<Vec<_>>(),
        {
            let mut t = expected_tags.clone();
            t.sort();
            t
        },
        "one tag per recorded series"
    );
    assert!(expected_tags.contains(&"http.latency|shopper|list".to_string()));
    let mut total = 0;
    for (entry, tag) in overall.iter().zip(&expected_tags) {
        let (count, p99, max) = view.tags[tag];
        assert_eq!(count, entry.count, "{tag}: total count");
        total += count;
        // Both sides report the highest value equivalent to the
        // percentile's bucket (3 significant digits): the same bucket.
        let h = json::decode_histogram(&entry.hdr).unwrap();
        assert!(
            h.equivalent(p99, entry.p99),
            "{tag}: p99 {p99} (python) vs {} (summary.json)",
            entry.p99
        );
        assert!(
            h.equivalent(max, entry.max),
            "{tag}: max {max} vs {}",
            entry.max
        );
    }
    // The schedule is exact: 1 s at 40/s then 1 s at 80/s is 120 journeys
    // of two steps, 240 requests.
    let requests: Vec<(&str, u64)> = summary
        .counters
        .iter()
        .filter(|c| c.metric == "http.requests")
        .map(|c| (c.step.as_str(), c.total))
        .collect();
    assert_eq!(requests, [("list", 120), ("health", 120)]);
    // Per request a latency and a service time (2 × 240), per journey a
    // generator lag and a journey time (2 × 120): every sample is in the log.
    let per_tag: BTreeMap<&str, u64> = view.tags.iter().map(|(t, v)| (t.as_str(), v.0)).collect();
    assert_eq!(
        per_tag,
        BTreeMap::from([
            ("generator.lag||", 120),
            ("http.journey|shopper|", 120),
            ("http.latency|shopper|health", 120),
            ("http.latency|shopper|list", 120),
            ("http.service_time|shopper|health", 120),
            ("http.service_time|shopper|list", 120),
        ])
    );
    assert_eq!(total, 2 * 240 + 2 * 120);
}
