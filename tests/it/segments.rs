//! Segments (`--segment i/n`) and the common start (`--start-at`): the n
//! shares of a plan together are exactly the whole plan (striped arrivals
//! with their times and populations, split VUs), an HTTP scenario played
//! as three segments sends exactly the requests the whole run sends, and
//! the flags behave as documented from the command line.

use crate::common::Fixture;
use assert_cmd::Command;
use predicates::prelude::*;
use stampede::engine::driver::{arrival_of, Weights};
use stampede::engine::schedule::Schedule;
use stampede::error::ExitStatus;
use stampede::metrics::{TagFilter, Totals};
use stampede::plan::{Plan, PlannedPhase, Segment};
use stampede::run::{Progress, RunOptions, RunOutcome};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The built-in target and two populations (3:1) whose journeys differ in
/// length, so per-step counts depend on which population each arrival got.
const USERS: &str = r#"
[target]
api = "builtin"
[[users]]
name = "browse"
weight = 3
steps = [{ name = "list", get = "/api/servers" }]
[[users]]
name = "buy"
weight = 1
steps = [
  { name = "list", get = "/api/servers" },
  { name = "detail", get = "/api/servers?page=2" },
]
"#;

/// A scenario of [`USERS`] over `phases`.
fn scenario(name: &str, phases: &str) -> String {
    format!("name = {name:?}\nseed = 11\n{USERS}{phases}")
}

/// Ramps up and down, a steady stretch, a closed phase and a fractional
/// rate, so arrivals are numbered across phases of every shape.
const MULTI_PHASE: &str = r#"
[[phases]]
name = "up"
duration = "3s"
users = { rate = "0/s -> 70/s" }
[[phases]]
name = "steady"
duration = "2s"
users = { rate = "40/s" }
[[phases]]
name = "closed"
duration = "2s"
users = { vus = "10 -> 3" }
[[phases]]
name = "down"
duration = "3s"
users = { rate = "55.5/s -> 7/s" }
[[phases]]
name = "slow"
duration = "3s"
users = { rate = "0.7/s" }
"#;

fn load(name: &str, phases: &str) -> (Fixture, Arc<stampede::scenario::Scenario>) {
    let fixture = Fixture::new(&scenario(name, phases));
    let scenario = stampede::scenario::load(&fixture.scenario_path(), &Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    (fixture, Arc::new(scenario))
}

/// Every arrival a plan's (striped) schedule makes: (global number,
/// intended time, phase, population).
fn arrivals(plan: &Plan, start: Instant, seed: u64) -> Vec<(u64, Instant, usize, usize)> {
    let weights = Weights::new([3, 1]);
    let mut schedule = Schedule::of_plan(plan, start, PlannedPhase::arrival_rate);
    let end = start + plan.total + Duration::from_secs(1);
    std::iter::from_fn(|| schedule.take_due(end))
        .map(|due| {
            let a = arrival_of(due, seed, &weights);
            (a.seq, a.intended, a.phase, a.population)
        })
        .collect()
}

#[test]
fn striped_segments_together_are_exactly_the_whole_schedule() {
    let (_fixture, scenario) = load("segments", MULTI_PHASE);
    let whole = Plan::new(&scenario);
    let start = Instant::now();
    let all = arrivals(&whole, start, scenario.seed);
    // 0 -> 70/s over 3 s: 105; 40/s over 2 s: 80; (55.5 + 7)/2 · 3 = 93.75
    // → 94; 0.7/s · 3 s = 2.1 → 3.
    assert_eq!(all.len(), 105 + 80 + 94 + 3);
    assert_eq!(whole.expected_arrivals(), all.len() as u64);
    assert!(all.iter().enumerate().all(|(k, a)| a.0 == k as u64));
    // Every arrival has its own instant in the whole schedule…
    let mut instants: Vec<Instant> = all.iter().map(|a| a.1).collect();
    instants.dedup();
    assert_eq!(instants.len(), all.len());
    for count in 1..=5u32 {
        let mut union = Vec::new();
        for index in 0..count {
            let segment = Segment { index, count };
            let plan = whole.segment(segment);
            let mine = arrivals(&plan, start, scenario.seed);
            assert!(
                mine.iter()
                    .all(|a| a.0 % u64::from(count) == u64::from(index)),
                "{segment} plays only its stripe"
            );
            assert_eq!(plan.expected_arrivals(), mine.len() as u64, "{segment}");
            union.extend(mine);
        }
        // …so the segments, which play them at the same instants, never
        // fire together; and together they are the whole schedule: the
        // same numbers, times, phases and populations.
        union.sort_by_key(|a| a.0);
        assert_eq!(union, all, "{count} segments");
    }
}

#[test]
fn closed_vus_split_sums_to_the_whole_at_every_instant() {
    let (_fixture, scenario) = load("segments", MULTI_PHASE);
    let whole = Plan::new(&scenario);
    let closed = Duration::from_secs(5)..Duration::from_secs(7);
    for count in 1..=5u32 {
        let parts: Vec<Plan> = (0..count)
            .map(|index| whole.segment(Segment { index, count }))
            .collect();
        for ms in (0..13_000u64).step_by(5) {
            let at = Duration::from_millis(ms);
            let total = whole.vu_target(at);
            let shares: Vec<u32> = parts.iter().map(|p| p.vu_target(at)).collect();
            assert_eq!(
                shares.iter().sum::<u32>(),
                total,
                "{count} segments at {ms} ms"
            );
            if !closed.contains(&at) {
                assert_eq!(total, 0);
            }
            // The VUs a segment runs are the whole run's VUs g < total with
            // g mod n = i: each of the whole's VUs once, by its global id.
            let mut ids: Vec<u64> = parts
                .iter()
                .zip(&shares)
                .flat_map(|(p, &n)| (0..u64::from(n)).map(|j| p.segment.global(j)))
                .collect();
            ids.sort_unstable();
            assert_eq!(ids, (0..u64::from(total)).collect::<Vec<_>>());
        }
    }
    // 10 -> 3 over 2 s: 10 at the start, 7 (6.5 rounded up) halfway.
    assert_eq!(whole.vu_target(Duration::from_secs(5)), 10);
    assert_eq!(whole.vu_target(Duration::from_secs(6)), 7);
    let third = whole.segment(Segment { index: 2, count: 3 });
    assert_eq!(third.vu_target(Duration::from_secs(6)), 2);
}

/// One run through the library, quietly, as `--segment` / `--start-at`
/// would make it.
async fn run(
    fixture: &Fixture,
    scenario: &Arc<stampede::scenario::Scenario>,
    segment: Segment,
    start_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<RunOutcome, stampede::error::CommandError> {
    let options = RunOptions {
        scenario: fixture.scenario_path(),
        overrides: Default::default(),
        out_dir: fixture.out_dir(),
        progress: Progress::Quiet,
        grace: Duration::from_secs(2),
        command_line: vec!["test".into()],
        baseline: None,
        segment,
        start_at,
        child: Default::default(),
    };
    stampede::run::run_scenario(scenario.clone(), &options).await
}

fn requests(totals: &Totals, phase: Option<usize>, step: Option<&str>) -> u64 {
    let filter = TagFilter {
        phase,
        step: step.map(str::to_owned),
        ..TagFilter::default()
    };
    totals.sum_counters("http.requests", None, &filter)
}

/// Open-model phases only (the closed model's counts depend on response
/// times, not on the plan). Paused clock: every arrival due is made, so
/// the counts are exact.
const OPEN_ONLY: &str = r#"
[[phases]]
name = "up"
duration = "2s"
users = { rate = "10/s -> 90/s" }
[[phases]]
name = "steady"
duration = "1s"
users = { rate = "70/s" }
[[phases]]
name = "down"
duration = "1500ms"
users = { rate = "33.3/s -> 0/s" }
"#;

#[tokio::test(start_paused = true)]
async fn three_segments_send_exactly_the_requests_of_the_whole_run() {
    let (fixture, scenario) = load("segments-open", OPEN_ONLY);
    let whole = run(&fixture, &scenario, Segment::WHOLE, None)
        .await
        .expect("whole run");
    assert_eq!(whole.exit, ExitStatus::Passed);
    let mut parts = Vec::new();
    for index in 0..3 {
        let segment = Segment { index, count: 3 };
        let outcome = run(&fixture, &scenario, segment, None)
            .await
            .expect("segment run");
        assert_eq!(outcome.exit, ExitStatus::Passed);
        let summary =
            stampede::report::json::read(&outcome.result_dir.join("summary.json")).unwrap();
        assert_eq!(summary.meta.segment, Some(segment));
        assert_eq!(summary.meta.start_at, None);
        assert!(
            summary.meta.notes.iter().any(|n| n.contains(&format!(
                "segment {index}/3 of a split run: its numbers are its share"
            ))),
            "{:?}",
            summary.meta.notes
        );
        assert!(outcome
            .result_dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&format!("segments-open-seg{index}of3-")));
        parts.push(outcome);
    }
    // 10 -> 90/s over 2 s: 100 arrivals; 70/s over 1 s: 70; 33.3 -> 0/s
    // over 1.5 s: 24.975 → 25. A quarter (by weight) send two requests.
    let arrivals = [100u64, 70, 25];
    let summed = |phase: Option<usize>, step: Option<&str>| -> u64 {
        parts.iter().map(|p| requests(&p.totals, phase, step)).sum()
    };
    for (phase, &n) in arrivals.iter().enumerate() {
        let list = requests(&whole.totals, Some(phase), Some("list"));
        assert_eq!(list, n, "every arrival lists once in phase {phase}");
        for step in [None, Some("list"), Some("detail")] {
            assert_eq!(
                summed(Some(phase), step),
                requests(&whole.totals, Some(phase), step),
                "phase {phase} step {step:?}"
            );
        }
    }
    let detail = requests(&whole.totals, None, Some("detail"));
    assert!((20..80).contains(&detail), "about a quarter buy: {detail}");
    assert_eq!(summed(None, None), 195 + detail);
    assert_eq!(requests(&whole.totals, None, None), 195 + detail);
    // Each segment played its stripe: 195 arrivals split 65 / 65 / 65.
    for p in &parts {
        assert_eq!(requests(&p.totals, None, Some("list")), 65);
    }
    for o in parts.iter().chain([&whole]) {
        assert_eq!(count_errors(o), 0);
    }
    let whole_meta = stampede::report::json::read(&whole.result_dir.join("summary.json"))
        .unwrap()
        .meta;
    assert_eq!(whole_meta.segment, None);
}

/// Closed model, 4 VUs by weight 3:1 (VUs 0, 1, 2 browse, VU 3 buys) in 2
/// segments: segment 0 runs the whole run's VUs 0 and 2, segment 1 VUs 1
/// and 3, each VU with its population. Paused clock and a 7 ms target:
/// every VU loops the same journeys in either run (a browse every 7 ms
/// from 0 to 1995 ms: 286; a two-step buy every 14 ms: 143), so the
/// per-population counts add up exactly.
#[tokio::test(start_paused = true)]
async fn closed_model_segments_run_the_whole_runs_vus_by_their_global_ids() {
    let phases = "[target.builtin]\nlatency = \"7ms\"\n[[phases]]\nname = \"loop\"\nduration = \"2s\"\nusers = { vus = 4 }\n";
    let (fixture, scenario) = load("segments-closed", phases);
    let by = |outcome: &RunOutcome, population: &str, step: &str| {
        let filter = TagFilter {
            population: Some(population.into()),
            step: Some(step.into()),
            phase: None,
        };
        outcome.totals.sum_counters("http.requests", None, &filter)
    };
    let counts = |o: &RunOutcome| {
        [
            by(o, "browse", "list"),
            by(o, "buy", "list"),
            by(o, "buy", "detail"),
        ]
    };
    let whole = run(&fixture, &scenario, Segment::WHOLE, None)
        .await
        .expect("whole run");
    assert_eq!(counts(&whole), [3 * 286, 143, 143]);
    let first = run(&fixture, &scenario, Segment { index: 0, count: 2 }, None)
        .await
        .expect("segment 0/2");
    let second = run(&fixture, &scenario, Segment { index: 1, count: 2 }, None)
        .await
        .expect("segment 1/2");
    assert_eq!(counts(&first), [2 * 286, 0, 0], "VUs 0 and 2 browse");
    assert_eq!(counts(&second), [286, 143, 143], "VU 1 browses, VU 3 buys");
    assert_eq!(
        counts(&whole).to_vec(),
        [0, 1, 2]
            .map(|i| counts(&first)[i] + counts(&second)[i])
            .to_vec()
    );
    for o in [&whole, &first, &second] {
        assert_eq!(count_errors(o), 0);
    }
}

fn count_errors(outcome: &RunOutcome) -> u64 {
    crate::common::count(&outcome.totals, "http.errors", None)
}

#[tokio::test(start_paused = true)]
async fn a_start_already_past_is_refused_and_writes_nothing() {
    let (fixture, scenario) = load("segments-open", OPEN_ONLY);
    let past = chrono::Utc::now() - chrono::Duration::seconds(10);
    let segment = Segment { index: 1, count: 3 };
    let err = match run(&fixture, &scenario, segment, Some(past)).await {
        Ok(_) => panic!("a run 10 s after its --start-at was carried out"),
        Err(e) => e,
    };
    assert_eq!(err.exit_status(), ExitStatus::NotCarriedOut);
    let message = format!("{err:#}");
    assert!(
        message.contains("segment 1/3 was ready 10.0 s after --start-at")
            && message.contains("after --start-at")
            && message.contains("choose a later start"),
        "{message}"
    );
    assert!(!fixture.out_dir().exists(), "no result directory");
}

fn stampede() -> Command {
    let mut cmd = Command::cargo_bin("stampede").unwrap();
    cmd.env_remove("STAMPEDE_LOG")
        .env_remove("GITHUB_STEP_SUMMARY");
    cmd
}

#[test]
fn one_based_segments_are_refused_with_the_hint() {
    let fixture = Fixture::new(&scenario("segments-open", OPEN_ONLY));
    for command in ["run", "validate"] {
        stampede()
            .current_dir(fixture.dir.path())
            .arg(command)
            .arg(fixture.scenario_path())
            .args(["--segment", "3/3"])
            .assert()
            .code(2)
            .stderr(
                predicate::str::contains("numbered from 0")
                    .and(predicate::str::contains("did you mean 2/3?")),
            );
    }
    stampede()
        .current_dir(fixture.dir.path())
        .arg("run")
        .arg(fixture.scenario_path())
        .args(["--start-at", "tomorrow"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("RFC 3339"));
    // `reports` in the working directory: nothing written.
    assert!(!fixture.out_dir().exists());
}

#[test]
fn the_binary_refuses_a_past_start_with_exit_3() {
    let fixture = Fixture::new(&scenario("segments-open", OPEN_ONLY));
    let past = (chrono::Utc::now() - chrono::Duration::seconds(10)).timestamp();
    stampede()
        .arg("run")
        .arg(fixture.scenario_path())
        .args([
            "--quiet",
            "--segment",
            "0/2",
            "--start-at",
            &past.to_string(),
        ])
        .arg("--out")
        .arg(fixture.out_dir())
        .assert()
        .code(3)
        .stderr(
            predicate::str::contains("segment 0/2 was ready")
                .and(predicate::str::contains("choose a later start")),
        );
    assert!(!fixture.out_dir().exists(), "no result directory");
}

/// Ctrl-C while a segment waits for its start ends it: exit 3, nothing
/// written.
#[cfg(unix)]
#[test]
fn ctrl_c_while_waiting_for_the_start_ends_the_run() {
    use std::io::BufRead;
    let fixture = Fixture::new(&scenario("segments-open", OPEN_ONLY));
    let at = chrono::Utc::now() + chrono::Duration::seconds(120);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .env_remove("STAMPEDE_LOG")
        .env_remove("GITHUB_STEP_SUMMARY")
        .arg("run")
        .arg(fixture.scenario_path())
        .args(["--segment", "2/3", "--start-at"])
        .arg(stampede::run::format_start_at(at))
        .arg("--out")
        .arg(fixture.out_dir())
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Its stderr, line by line, from a thread: the waiting line is the
    // condition to send Ctrl-C on.
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines() {
            let _ = tx.send(line.unwrap_or_default());
        }
    });
    let waiting = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("a line within 60 s");
    assert!(
        waiting.starts_with("stampede: segment 2/3 is ready; it starts at ")
            && waiting.ends_with("Ctrl-C to cancel)"),
        "{waiting}"
    );
    // SAFETY: kill(2) on the pid of a child we have not reaped yet.
    assert_eq!(
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) },
        0
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("still waiting 60 s after Ctrl-C");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(3));
    let rest: Vec<String> = rx.iter().collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("interrupted while waiting for --start-at")),
        "{rest:?}"
    );
    assert!(!fixture.out_dir().exists(), "no result directory");
}

/// A start 2 s ahead (time for the process to start and prepare on a
/// loaded machine): the segment waits for it, and the instant is its time
/// zero everywhere it is recorded.
#[test]
fn a_future_start_is_the_runs_time_zero() {
    let one_second = "[[phases]]\nname = \"p\"\nduration = \"1s\"\nusers = { rate = \"20/s\" }\n";
    let fixture = Fixture::new(&scenario("start-at", one_second));
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    // Whole milliseconds, as a user would write it.
    let at = chrono::DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap();
    let written = stampede::run::format_start_at(at);
    let output = stampede()
        .arg("run")
        .arg(fixture.scenario_path())
        .args(["--segment", "0/2", "--start-at", &written, "--out"])
        .arg(fixture.out_dir())
        .assert()
        .code(0)
        .get_output()
        .clone();
    assert!(
        chrono::Utc::now() >= at + chrono::Duration::seconds(1),
        "it waited"
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(
        stderr.contains(&format!(
            "stampede: segment 0/2 is ready; it starts at {written} (in "
        )) && stderr.contains("stampede: running `start-at` (segment 0/2) for 1s against api "),
        "{stderr}"
    );
    let dirs = crate::common::file_names(&fixture.out_dir());
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    assert!(dirs[0].starts_with("start-at-seg0of2-"), "{dirs:?}");
    let dir = fixture.out_dir().join(&dirs[0]);
    let meta = stampede::report::json::read(&dir.join("summary.json"))
        .unwrap()
        .meta;
    assert_eq!(meta.started_at, written);
    assert_eq!(meta.start_at.as_deref(), Some(written.as_str()));
    assert_eq!(meta.segment, Some(Segment { index: 0, count: 2 }));
    // The interval log counts from the same instant.
    let hlog = std::fs::read_to_string(dir.join("metrics.hlog")).unwrap();
    let seconds = format!(
        "#[StartTime: {}.{:03} ",
        at.timestamp(),
        at.timestamp_subsec_millis()
    );
    assert!(hlog.contains(&seconds), "{seconds} in:\n{}", &hlog[..300]);
}

#[test]
fn validate_prints_a_segments_share() {
    let fixture = Fixture::new(
        r#"
name = "share"
[target]
api = "builtin"
hub = "builtin"
[[agents]]
name = "a"
[[commanders]]
name = "ops"
send = { event = "command", to = "agents", data = { op = "x" } }
[[users]]
name = "u"
steps = [{ name = "list", get = "/api/servers" }]
[[phases]]
name = "warm"
duration = "2s"
users = { rate = "0/s -> 30/s" }
agents = { connected = 7, connect_rate = "max" }
commanders = { rate = "5/s" }
[[phases]]
name = "peak"
duration = "1s"
users = { rate = "10/s" }
agents = { connected = 11 }
[[phases]]
name = "closed"
duration = "1s"
users = { vus = "10 -> 4" }
"#,
    );
    let output = stampede()
        .arg("validate")
        .arg(fixture.scenario_path())
        .args(["--segment", "1/3"])
        .assert()
        .code(0)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(output).unwrap();
    let share = &text[text.find("segment 1/3").expect("the share")..];
    // warm: arrivals 0..30, this segment 1, 4, … 28: 10; commands 0..10:
    // 1, 4, 7: 3; agents 1, 4 of 0..7: 2. peak: arrivals 30..40: 31, 34,
    // 37: 3; agents of 0..11: 1, 4, 7, 10: 4. closed: 10 VUs → 3, 4 → 1.
    let rows = crate::common::table_rows(share, None, 4);
    assert_eq!(
        rows,
        [
            vec!["phase", "arrivals", "VUs", "agents", "commands"],
            vec!["warm", "10", "-", "2", "3"],
            vec!["peak", "3", "-", "4", "-"],
            vec!["closed", "-", "3", "->", "1", "4", "-"],
        ],
        "{share}"
    );
    assert!(
        share.contains("this segment: 13 of the plan's 40 arrivals; these 3 shares (0/3 … 2/3) together are the whole plan"),
        "{share}"
    );
}
