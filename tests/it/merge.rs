//! `stampede merge`: segment results merged exactly — histograms bit for
//! bit, counters, series aligned on wall-clock seconds, recovery and command
//! fan-out on the whole fleet, SLOs judged again — and refused (exit 2,
//! naming the directories) when they do not belong together; a missing
//! segment makes a loud partial result (exit 3).
//!
//! Real segment results come from short runs against the built-in target
//! whose summary.json is then marked as a segment (until `run --segment`
//! lands); the cross-segment records are synthetic, built with
//! `report::json::build` from totals filled by hand.

use crate::common::Fixture;
// Two phases of an open-model journey of two steps, on the built-in target.
use crate::reports::SCENARIO;
use assert_cmd::Command;
use stampede::engine::records::{
    ClockOffset, CommandLog, CommandReceived, CommandSent, Disruption,
};
use stampede::error::ExitStatus;
use stampede::merge::{merge, MergeOptions};
use stampede::metrics::{hlog_tag, new_histogram, HlogReader, IntervalStats, Layout, Totals};
use stampede::plan::Segment;
use stampede::report::json::{self, decode_histogram, RunMeta, Summary};
use stampede::slo::{self, PhaseSpan};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn stampede() -> Command {
    let mut cmd = Command::cargo_bin("stampede").unwrap();
    cmd.env_remove("STAMPEDE_LOG")
        .env_remove("GITHUB_STEP_SUMMARY");
    cmd
}

fn options(out: &Path) -> MergeOptions {
    MergeOptions {
        out: Some(out.to_path_buf()),
        quiet: true,
        silent: true,
        command_line: vec!["stampede".into(), "merge".into()],
    }
}

/// Rewrite a result's summary.json as segment `index/count` started at `started_at`.
fn mark_segment(dir: &Path, index: u32, count: u32, started_at: &str) -> Summary {
    let mut summary = json::read(&dir.join("summary.json")).unwrap();
    summary.meta.segment = Some(Segment { index, count });
    summary.meta.started_at = started_at.into();
    json::write(dir, &summary).unwrap();
    summary
}

fn hist_of(
    summary: &Summary,
    id: u32,
    phase: Option<&str>,
) -> Option<hdrhistogram::Histogram<u64>> {
    summary
        .histograms
        .iter()
        .find(|h| h.id == id && h.phase.as_deref() == phase)
        .map(|h| decode_histogram(&h.hdr).unwrap())
}

/// Per merged second, the summed interval histogram of `tag` in the logs
/// of `dirs`, each placed at `round(offset + end of interval)`.
fn logged(dirs: &[(&Path, f64)], tag: &str) -> BTreeMap<i64, hdrhistogram::Histogram<u64>> {
    let mut out: BTreeMap<i64, hdrhistogram::Histogram<u64>> = BTreeMap::new();
    for (dir, offset) in dirs {
        let bytes = std::fs::read(dir.join("metrics.hlog")).unwrap();
        for interval in HlogReader::new(&bytes) {
            let interval = interval.unwrap();
            if interval.tag != tag {
                continue;
            }
            let second = (offset + (interval.start + interval.length).as_secs_f64()).round() as i64;
            out.entry(second)
                .or_insert_with(new_histogram)
                .add(&interval.histogram)
                .unwrap();
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_real_segments_merge_exactly_and_their_series_align_on_wall_clock_seconds() {
    let fixture = Fixture::new(SCENARIO);
    let a = fixture.run(Default::default()).await.result_dir;
    let b = fixture.run(Default::default()).await.result_dir;
    // Segment 1 started one second after segment 0.
    let seg0 = mark_segment(&a, 0, 2, "2026-01-01T00:00:00.000Z");
    let seg1 = mark_segment(&b, 1, 2, "2026-01-01T00:00:01.000Z");
    let out = fixture.dir.path().join("merged");
    let outcome = merge(&[b.clone(), a.clone()], &options(&out)).unwrap();
    assert_eq!(outcome.exit, ExitStatus::Passed, "{:?}", outcome.warnings);
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    assert_eq!(outcome.dir, out);
    let merged = json::read(&out.join("summary.json")).unwrap();
    assert_eq!(merged.meta.segment, None);
    assert_eq!(merged.meta.started_at, "2026-01-01T00:00:00.000Z");
    let from = merged.meta.merged.as_ref().unwrap();
    assert_eq!(from.count, 2);
    assert_eq!(from.missing, Vec::<u32>::new());
    assert_eq!(
        from.sources
            .iter()
            .map(|s| s.segment.index)
            .collect::<Vec<_>>(),
        vec![0, 1]
    );
    assert_eq!(from.sources[1].dir, b.display().to_string());
    assert!(!from.hosts_differ);

    // Every histogram (series × phase, and overall) is the sum, bit for bit.
    let mut compared = 0;
    for entry in &merged.histograms {
        let phase = entry.phase.as_deref();
        let mut sum = new_histogram();
        for part in [&seg0, &seg1] {
            if let Some(h) = hist_of(part, entry.id, phase) {
                sum.add(&h).unwrap();
            }
        }
        let h = decode_histogram(&entry.hdr).unwrap();
        assert_eq!(h, sum, "{} {:?}", entry.metric, entry.phase);
        assert_eq!(entry.count, sum.len());
        compared += 1;
    }
    let latency_entries = merged
        .histograms
        .iter()
        .filter(|h| h.metric == "http.latency")
        .count();
    assert_eq!(latency_entries, 6, "2 steps × (2 phases + overall)");
    assert!(compared > latency_entries);
    // Counters summed, per phase too.
    for (i, entry) in merged.counters.iter().enumerate() {
        assert_eq!(entry.total, seg0.counters[i].total + seg1.counters[i].total);
        for (phase, n) in &entry.phases {
            assert_eq!(
                *n,
                seg0.counters[i].phases[phase] + seg1.counters[i].phases[phase]
            );
        }
    }
    let requests = |s: &Summary| -> u64 {
        (s.counters.iter())
            .filter(|c| c.metric == "http.requests")
            .map(|c| c.total)
            .sum()
    };
    assert!(requests(&seg0) > 0 && requests(&seg1) > 0);
    assert_eq!(requests(&merged), requests(&seg0) + requests(&seg1));

    // Series: segment 1's points land one second later.
    let place = |offset: f64, e: f64| (offset + e).round() as i64;
    let mut expected: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
    for (part, offset) in [(&seg0, 0.0), (&seg1, 1.0)] {
        for p in &part.series {
            let sums = expected
                .entry(place(offset, p.elapsed_s))
                .or_insert_with(|| vec![0; p.counters.len()]);
            for (s, n) in sums.iter_mut().zip(&p.counters) {
                *s += n;
            }
        }
    }
    let first = *expected.keys().next().unwrap();
    let last = *expected.keys().last().unwrap();
    assert_eq!(first, 1);
    assert_eq!(merged.series.len() as i64, last - first + 1);
    for point in &merged.series {
        let second = point.elapsed_s as i64;
        let zeros = vec![0; point.counters.len()];
        assert_eq!(
            &point.counters,
            expected.get(&second).unwrap_or(&zeros),
            "second {second}"
        );
    }
    // Per-second histogram stats: exactly those of the summed logs.
    let (id, desc) = (merged.layout.hists.iter().enumerate())
        .find(|(_, d)| d.metric == "http.latency" && d.step == "list")
        .unwrap();
    let sums = logged(&[(&a, 0.0), (&b, 1.0)], &hlog_tag(desc));
    let mut checked = 0;
    for point in &merged.series {
        let want = sums
            .get(&(point.elapsed_s as i64))
            .map_or_else(IntervalStats::default, IntervalStats::of);
        assert_eq!(point.hists[id], want, "second {}", point.elapsed_s);
        checked += u64::from(want.count > 0);
    }
    assert!(checked >= 2);

    // The merged log reads back, per tag, as the merged histograms.
    let bytes = std::fs::read(out.join("metrics.hlog")).unwrap();
    let mut per_tag: BTreeMap<String, hdrhistogram::Histogram<u64>> = BTreeMap::new();
    for interval in HlogReader::new(&bytes) {
        let interval = interval.unwrap();
        per_tag
            .entry(interval.tag)
            .or_insert_with(new_histogram)
            .add(&interval.histogram)
            .unwrap();
    }
    for entry in merged.histograms.iter().filter(|h| h.phase.is_none()) {
        let tag = hlog_tag(&merged.layout.hists[entry.id as usize]);
        assert_eq!(
            per_tag[&tag],
            decode_histogram(&entry.hdr).unwrap(),
            "{tag}"
        );
    }

    // `stampede report` reads the merged result without a warning.
    for file in ["report.html", "junit.xml", "summary.md"] {
        std::fs::remove_file(out.join(file)).unwrap();
    }
    let output = stampede().arg("report").arg(&out).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("warning"), "{stderr}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("merged from 2 of 2 segments"));
    assert!(!html.contains("banner partial"));
}

/// A synthetic result: one HTTP step plus hub recovery and command series.
struct Synthetic {
    segment: Option<Segment>,
    hash: String,
    seed: u64,
    started_at: String,
    host: String,
    /// Latency samples (µs) in phase 0.
    latencies: Vec<u64>,
    /// The segment's own hub.recovery sample (replaced by the merge).
    recovery: Option<u64>,
    slos: Vec<(&'static str, &'static str)>,
    disruptions: Vec<Disruption>,
    commands: Option<CommandLog>,
    interrupted: bool,
    /// Its clock offset against the hub (`meta.clock`).
    clock: Option<ClockOffset>,
}

impl Synthetic {
    fn segment(index: u32, count: u32) -> Synthetic {
        Synthetic {
            segment: Some(Segment { index, count }),
            hash: "ab".repeat(32),
            seed: 7,
            started_at: "2026-01-01T00:00:00.000Z".into(),
            host: "loadgen-1".into(),
            latencies: vec![1_000, 2_000],
            recovery: None,
            slos: vec![("http.latency.p50", "< 10ms")],
            disruptions: Vec::new(),
            commands: None,
            interrupted: false,
            clock: None,
        }
    }

    /// Written as `dir/name/summary.json`; returns the directory.
    fn write(self, dir: &Path, name: &str) -> PathBuf {
        let mut layout = Layout {
            phases: vec!["steady".into(), "drop".into()],
            ..Layout::default()
        };
        let latency = layout.add_hist("http.latency", "shopper", "list");
        let requests = layout.add_counter("http.requests", "shopper", "list", None);
        layout.add_hist("hub.command.fanout", "ops", "");
        layout.add_counter("hub.command.undelivered", "ops", "", None);
        let recovery = layout.add_hist("hub.recovery", "", "");
        layout.add_counter("hub.unrecovered", "", "", None);
        layout.add_gauge("hub.connected");
        let mut totals = Totals::new(layout);
        let mut h = new_histogram();
        for v in &self.latencies {
            h.record(*v).unwrap();
        }
        totals.merge_hist(latency, 0, &h);
        totals.add_counter(requests, 0, self.latencies.len() as u64);
        if let Some(r) = self.recovery {
            let mut h = new_histogram();
            h.record(r).unwrap();
            totals.merge_hist(recovery, 1, &h);
        }
        let spans = vec![
            PhaseSpan {
                name: "steady".into(),
                start: Duration::ZERO,
                end: Duration::from_secs(5),
            },
            PhaseSpan {
                name: "drop".into(),
                start: Duration::from_secs(5),
                end: Duration::from_secs(10),
            },
        ];
        let slos: Vec<slo::Slo> = (self.slos.iter())
            .map(|(k, t)| slo::parse(k, t).unwrap())
            .collect();
        let verdicts = slo::evaluate(&slos, &totals, &spans, Duration::from_secs(10));
        let meta = RunMeta {
            name: "synthetic".into(),
            scenario_path: "synthetic.toml".into(),
            scenario_hash: self.hash,
            stampede_version: "0.1.0".into(),
            started_at: self.started_at,
            ended_at: "2026-01-01T00:00:10.000Z".into(),
            duration_s: 10.0,
            host: self.host,
            command_line: vec!["stampede".into(), "run".into()],
            seed: self.seed,
            interrupted: self.interrupted,
            exit_code: if self.interrupted {
                3
            } else if verdicts.iter().all(|v| v.pass) {
                0
            } else {
                1
            },
            notes: vec!["a note of its own".into()],
            segment: self.segment,
            start_at: None,
            merged: None,
            clock: self.clock,
        };
        let mut summary = json::build(meta, &spans, &totals, &verdicts);
        summary.disruptions = self.disruptions;
        summary.commands = self.commands;
        let out = dir.join(name);
        std::fs::create_dir_all(&out).unwrap();
        json::write(&out, &summary).unwrap();
        out
    }
}

const T0: u64 = 1_767_225_600_000_000; // 2026-01-01T00:00:00Z in µs

fn drop_at(ordinal: u32, at: u64, lost: u64, back: &[u64]) -> Disruption {
    Disruption {
        ordinal,
        phase: "drop".into(),
        cause: "drop".into(),
        action: None,
        at_unix_us: at,
        lost,
        recovered_fraction: 0.75,
        back_unix_us: back.to_vec(),
    }
}

fn hist_by_metric(summary: &Summary, metric: &str) -> (u32, Option<hdrhistogram::Histogram<u64>>) {
    let id = (summary.layout.hists.iter())
        .position(|d| d.metric == metric)
        .unwrap() as u32;
    (id, hist_of(summary, id, None))
}

fn counter_total(summary: &Summary, metric: &str) -> u64 {
    summary
        .counters
        .iter()
        .filter(|c| c.metric == metric)
        .map(|c| c.total)
        .sum()
}

#[test]
fn recovery_is_measured_on_the_whole_fleet_and_the_slo_judged_again() {
    let tmp = tempfile::tempdir().unwrap();
    let ms = 1_000;
    // Drop 0: 75 % of 4 = 3 agents back. Segment 0 alone needs 2 of its
    // 2 (5 s); segment 1 alone 2 of its 2 (300 ms after its drop at +10 ms).
    // Together the third return is at +300 ms: 300 ms from the first drop.
    let mut s0 = Synthetic::segment(0, 2);
    s0.recovery = Some(5_000 * ms);
    s0.slos = vec![("hub.recovery", "< 1s")];
    s0.disruptions = vec![
        drop_at(0, T0, 2, &[T0 + 100 * ms, T0 + 5_000 * ms]),
        drop_at(1, T0 + 6_000 * ms, 3, &[T0 + 6_100 * ms]),
    ];
    let mut s1 = Synthetic::segment(1, 2);
    s1.recovery = Some(290 * ms);
    s1.slos = s0.slos.clone();
    s1.disruptions = vec![drop_at(0, T0 + 10 * ms, 2, &[T0 + 200 * ms, T0 + 300 * ms])];
    let a = s0.write(tmp.path(), "a");
    let b = s1.write(tmp.path(), "b");
    let seg0 = json::read(&a.join("summary.json")).unwrap();
    assert!(!seg0.verdicts[0].pass, "segment 0 alone fails (5 s)");

    let out = tmp.path().join("merged");
    let outcome = merge(&[a, b], &options(&out)).unwrap();
    let merged = outcome.summary;
    let (_, recovery) = hist_by_metric(&merged, "hub.recovery");
    let mut want = new_histogram();
    want.record(300 * ms).unwrap();
    assert_eq!(
        recovery.unwrap(),
        want,
        "exactly one drop recovered, in 300 ms"
    );
    // Drop 1: 3 lost (segment 0 only), 1 back of the 3 needed.
    assert_eq!(counter_total(&merged, "hub.unrecovered"), 1);
    assert_eq!(merged.disruptions.len(), 2);
    assert_eq!(merged.disruptions[0].lost, 4);
    assert_eq!(merged.disruptions[0].back_unix_us.len(), 4);
    // Judged again: the drop that never recovered fails the SLO.
    assert!(!merged.verdicts[0].pass);
    assert!(merged.verdicts[0]
        .measured_text
        .contains("not recovered (1 disruption)"));
    assert_eq!(outcome.exit, ExitStatus::SloFailed);

    // Without the unrecovered drop the merged recovery (300 ms) passes
    // where segment 0 alone failed.
    let mut s0 = Synthetic::segment(0, 2);
    s0.recovery = Some(5_000 * ms);
    s0.slos = vec![("hub.recovery", "< 1s")];
    s0.disruptions = vec![drop_at(0, T0, 2, &[T0 + 100 * ms, T0 + 5_000 * ms])];
    let mut s1 = Synthetic::segment(1, 2);
    s1.slos = s0.slos.clone();
    s1.disruptions = vec![drop_at(0, T0 + 10 * ms, 2, &[T0 + 200 * ms, T0 + 300 * ms])];
    let dirs = [s0.write(tmp.path(), "c"), s1.write(tmp.path(), "d")];
    let outcome = merge(&dirs, &options(&tmp.path().join("merged-2"))).unwrap();
    assert_eq!(outcome.exit, ExitStatus::Passed);
    // (as HDR reports it: the highest value equivalent to 300 ms)
    let hdr_300ms = new_histogram().highest_equivalent(300 * ms);
    assert_eq!(outcome.summary.verdicts[0].measured, Some(hdr_300ms as f64));
    assert_eq!(counter_total(&outcome.summary, "hub.unrecovered"), 0);
}

#[test]
fn waves_each_segment_detected_of_one_crash_merge_into_one_disruption() {
    let tmp = tempfile::tempdir().unwrap();
    let ms = 1_000;
    let wave = |ordinal: u32, at: u64, lost: u64, back: &[u64]| Disruption {
        cause: "detected".into(),
        ..drop_at(ordinal, at, lost, back)
    };
    // One crash seen by both segments 3 ms apart (their own numbering
    // differs: segment 1 also played drop 0 before it), and a second
    // crash 20 s later seen by segment 0 only.
    let mut s0 = Synthetic::segment(0, 2);
    s0.slos = vec![("hub.recovery", "< 1s")];
    s0.disruptions = vec![
        drop_at(0, T0, 1, &[T0 + 50 * ms]),
        wave(1, T0 + 1_000 * ms, 2, &[T0 + 1_100 * ms, T0 + 1_200 * ms]),
        wave(
            2,
            T0 + 21_000 * ms,
            2,
            &[T0 + 21_100 * ms, T0 + 21_100 * ms],
        ),
    ];
    let mut s1 = Synthetic::segment(1, 2);
    s1.slos = s0.slos.clone();
    s1.disruptions = vec![
        drop_at(0, T0 + 2 * ms, 1, &[T0 + 40 * ms]),
        wave(1, T0 + 1_003 * ms, 2, &[T0 + 1_150 * ms, T0 + 1_900 * ms]),
    ];
    let dirs = [s0.write(tmp.path(), "a"), s1.write(tmp.path(), "b")];
    // Segment 0 ran a fault action just before the first crash: the wave
    // is that action's, though segment 1 (which runs no action) saw it
    // as detected.
    let mut seg0 = json::read(&dirs[0].join("summary.json")).unwrap();
    seg0.actions = vec![stampede::engine::records::ActionRecord {
        name: "kill".into(),
        phase: "drop".into(),
        kind: "exec".into(),
        at_unix_us: T0 + 990 * ms,
        duration_us: 5 * ms,
        exit_status: Some(0),
        http_status: None,
        ok: true,
        error: None,
        output: None,
    }];
    json::write(&dirs[0], &seg0).unwrap();
    let outcome = merge(&dirs, &options(&tmp.path().join("merged"))).unwrap();
    let merged = outcome.summary;
    let causes: Vec<(&str, u32, u64)> = (merged.disruptions.iter())
        .map(|d| (d.cause.as_str(), d.ordinal, d.lost))
        .collect();
    assert_eq!(
        causes,
        vec![("drop", 0, 2), ("action", 1, 4), ("detected", 2, 2)]
    );
    assert_eq!(merged.disruptions[1].action.as_deref(), Some("kill"));
    assert_eq!(merged.actions.len(), 1, "the merge keeps the actions");
    assert_eq!(merged.disruptions[1].at_unix_us, T0 + 1_000 * ms);
    // 75 % of 4 = 3 back: the third return, 1.2 s, is 200 ms after the first loss.
    let (_, recovery) = hist_by_metric(&merged, "hub.recovery");
    let recovery = recovery.unwrap();
    assert_eq!(recovery.len(), 3);
    assert_eq!(recovery.max(), recovery.highest_equivalent(200 * ms));
    assert_eq!(outcome.exit, ExitStatus::Passed);
}

#[test]
fn command_fanout_follows_each_command_into_every_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let ms = 1_000;
    let sent = |id: &str, at: u64| CommandSent {
        id: id.into(),
        commander: "ops".into(),
        phase: "steady".into(),
        sent_unix_us: at,
        expected: Some(3),
    };
    let got = |id: &str, count: u64, last: u64| CommandReceived {
        id: id.into(),
        count,
        last_unix_us: last,
    };
    let mut s0 = Synthetic::segment(0, 2);
    s0.commands = Some(CommandLog {
        sent: vec![sent("c1", T0)],
        received: vec![got("c1", 1, T0 + 5 * ms), got("c2", 1, T0 + 1_070 * ms)],
    });
    let mut s1 = Synthetic::segment(1, 2);
    s1.commands = Some(CommandLog {
        sent: vec![sent("c2", T0 + 1_000 * ms)],
        received: vec![got("c1", 2, T0 + 40 * ms), got("c2", 1, T0 + 1_020 * ms)],
    });
    let dirs = [s0.write(tmp.path(), "a"), s1.write(tmp.path(), "b")];
    let outcome = merge(&dirs, &options(&tmp.path().join("merged"))).unwrap();
    let (_, fanout) = hist_by_metric(&outcome.summary, "hub.command.fanout");
    let mut want = new_histogram();
    want.record(40 * ms).unwrap(); // c1: the last of 3 receipts, in segment 1
    want.record(70 * ms).unwrap(); // c2: sent by segment 1, last received in segment 0
    assert_eq!(fanout.unwrap(), want);
    // c2 reached 2 of the 3 agents it expected.
    assert_eq!(
        counter_total(&outcome.summary, "hub.command.undelivered"),
        1
    );
    let log = outcome.summary.commands.unwrap();
    assert_eq!(log.sent.len(), 2);
    assert_eq!(log.received[0].count, 3);
}

#[test]
fn slos_are_judged_on_the_merged_histograms() {
    // Each segment's p50 is 2 ms (< 2.5ms holds); merged, 3 of the 4
    // samples are 3 ms and up: the p50 fails.
    let tmp = tempfile::tempdir().unwrap();
    let mut s0 = Synthetic::segment(0, 2);
    s0.latencies = vec![2_000, 2_000, 3_000];
    s0.slos = vec![("http.latency.p50", "< 2.5ms")];
    let mut s1 = Synthetic::segment(1, 2);
    s1.latencies = vec![2_000, 3_000, 3_000, 3_000];
    s1.slos = s0.slos.clone();
    let s1_dir = s1.write(tmp.path(), "b");
    let s1_summary = json::read(&s1_dir.join("summary.json")).unwrap();
    assert!(!s1_summary.verdicts[0].pass);
    let dirs = [s0.write(tmp.path(), "a"), s1_dir];
    let outcome = merge(&dirs, &options(&tmp.path().join("merged"))).unwrap();
    assert_eq!(outcome.exit, ExitStatus::SloFailed);
    let hdr_3ms = new_histogram().highest_equivalent(3_000);
    assert_eq!(outcome.summary.verdicts[0].measured, Some(hdr_3ms as f64));
    assert_eq!(outcome.summary.meta.exit_code, 1);
    // Segment notes are kept, prefixed.
    assert!(outcome
        .summary
        .meta
        .notes
        .contains(&"segment 1/2: a note of its own".to_string()));
}

/// `stampede merge` on `dirs`: its exit code and stderr.
fn merge_cli(dirs: &[&Path], out: &Path) -> (i32, String) {
    let output = stampede()
        .arg("merge")
        .args(dirs)
        .arg("--out")
        .arg(out)
        .arg("--quiet")
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn results_that_do_not_belong_together_are_refused_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    let base = Synthetic::segment(0, 3).write(tmp.path(), "seg-0");
    let out = tmp.path().join("merged");
    let mut other_hash = Synthetic::segment(1, 3);
    other_hash.hash = "cd".repeat(32);
    let mut other_seed = Synthetic::segment(1, 3);
    other_seed.seed = 8;
    let mut whole = Synthetic::segment(0, 1);
    whole.segment = None;
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            other_hash.write(tmp.path(), "hash"),
            "results of different scenarios",
        ),
        (
            other_seed.write(tmp.path(), "seed"),
            "results of different seeds",
        ),
        (
            Synthetic::segment(0, 3).write(tmp.path(), "again"),
            "two results of segment 0/3",
        ),
        (
            Synthetic::segment(1, 4).write(tmp.path(), "four"),
            "mixed segment counts",
        ),
        (whole.write(tmp.path(), "whole"), "not a segment's result"),
        (tmp.path().join("nowhere"), "no such result directory"),
    ];
    for (dir, needle) in cases {
        let (code, stderr) = merge_cli(&[&base, &dir], &out);
        assert_eq!(code, 2, "{needle}: {stderr}");
        assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
        let name = dir.file_name().unwrap().to_str().unwrap();
        assert!(stderr.contains(name), "names {name}: {stderr}");
        assert!(
            !out.join("summary.json").exists(),
            "nothing written for {needle}"
        );
    }
    // A corrupt summary.json is named too.
    let corrupt = Synthetic::segment(1, 3).write(tmp.path(), "corrupt");
    std::fs::write(corrupt.join("summary.json"), "{\"schema_version\": 1,").unwrap();
    let (code, stderr) = merge_cli(&[&base, &corrupt], &out);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("corrupt/summary.json: cut short"),
        "{stderr}"
    );
}

#[test]
fn help_shows_examples_and_exit_codes() {
    let output = stampede().args(["merge", "--help"]).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("stampede merge results/seg-*"), "{text}");
    assert!(text.contains("3 partial (a segment missing)"), "{text}");
    let output = stampede().arg("merge").output().unwrap();
    assert_eq!(output.status.code(), Some(2), "DIR is required");
}

#[test]
fn a_missing_segment_is_merged_as_a_loud_partial_result_with_exit_3() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s2 = Synthetic::segment(2, 3);
    s2.host = "loadgen-2".into();
    s2.started_at = "2026-01-01T00:00:00.400Z".into();
    let dirs = [
        Synthetic::segment(0, 3).write(tmp.path(), "seg-0"),
        s2.write(tmp.path(), "seg-2"),
    ];
    let out = tmp.path().join("merged");
    let (code, stderr) = merge_cli(&[&dirs[0], &dirs[1]], &out);
    assert_eq!(code, 3, "partial even though every SLO holds: {stderr}");
    assert!(stderr.contains("PARTIAL RESULT: segment 1/3"), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{SKEW}clock skew not measured: the hub's heartbeat acks carry no `ts`"
        )),
        "{stderr}"
    );
    let merged = json::read(&out.join("summary.json")).unwrap();
    assert!(merged.verdicts.iter().all(|v| v.pass));
    let from = merged.meta.merged.as_ref().unwrap();
    assert_eq!(from.missing, vec![1]);
    assert!(from.hosts_differ);
    assert_eq!(merged.meta.host, "loadgen-1, loadgen-2");
    assert_eq!(merged.meta.exit_code, 3);
    assert!(merged.meta.notes[0].starts_with("PARTIAL RESULT"));
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    assert!(read("report.html")
        .contains("<div class=\"banner partial\">PARTIAL RESULT — segment 1/3 of 3 missing"));
    assert!(read("junit.xml").contains("type=\"partial\""));
    assert!(read("summary.md").contains("PARTIAL: segment 1/3 missing"));
    // Merging into a directory that holds a result is refused.
    let (code, stderr) = merge_cli(&[&dirs[0], &dirs[1]], &out);
    assert_eq!(code, 2);
    assert!(stderr.contains("already holds a result"), "{stderr}");
}

fn clock(offset_ms: f64, uncertainty_ms: f64) -> Option<ClockOffset> {
    clock_against("http://hub:8080", offset_ms, uncertainty_ms)
}

fn clock_against(hub: &str, offset_ms: f64, uncertainty_ms: f64) -> Option<ClockOffset> {
    Some(ClockOffset {
        offset_ms,
        uncertainty_ms,
        rtt_min_ms: 0.4,
        samples: 120,
        against: hub.into(),
    })
}

/// The skew note's beginning, for hosts `loadgen-1, loadgen-2`.
const SKEW: &str = "the segments ran on 2 hosts (loadgen-1, loadgen-2): cross-segment latencies \
    (hub.command.delivery, hub.command.fanout, hub.recovery) include the hosts' clock skew, and \
    the per-second series are aligned on their clocks; ";

/// Three segments on two hosts whose summaries claim clock offsets against
/// the hub: the note names the latencies that cross hosts, lists every
/// offset and bounds the skew by their spread (max − min, ± those two's
/// uncertainties); every report lists each segment's host, start, offset
/// and exit code.
#[test]
fn segments_on_different_hosts_bound_the_clock_skew_by_their_measured_offsets() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s0 = Synthetic::segment(0, 3);
    s0.clock = clock(0.4, 0.3);
    let mut s1 = Synthetic::segment(1, 3);
    s1.host = "loadgen-2".into();
    s1.started_at = "2026-01-01T00:00:00.250Z".into();
    s1.clock = clock(-2.1, 0.5);
    let mut s2 = Synthetic::segment(2, 3);
    s2.host = "loadgen-2".into();
    s2.clock = clock(-2.0, 0.6);
    let dirs = [
        s0.write(tmp.path(), "seg-0"),
        s1.write(tmp.path(), "seg-1"),
        s2.write(tmp.path(), "seg-2"),
    ];
    let out = tmp.path().join("merged");
    let outcome = merge(&dirs, &options(&out)).unwrap();
    assert_eq!(outcome.exit, ExitStatus::Passed, "{:?}", outcome.warnings);
    let note = format!(
        "{SKEW}clock offsets against the hub: 0/3 loadgen-1 +0.400 ms ±0.300 ms, \
         1/3 loadgen-2 -2.100 ms ±0.500 ms, 2/3 loadgen-2 -2.000 ms ±0.600 ms; \
         spread (max − min offset) 2.500 ms ±0.800 ms: the skew in those latencies is at most \
         3.300 ms"
    );
    assert_eq!(outcome.warnings, vec![note.clone()]);
    let merged = json::read(&out.join("summary.json")).unwrap();
    assert_eq!(merged.meta.notes[0], note);
    assert_eq!(merged.meta.clock, None, "the merge's own: none");
    let from = merged.meta.merged.as_ref().unwrap();
    assert!(from.hosts_differ);
    assert_eq!(
        from.sources
            .iter()
            .map(|s| s.clock.clone())
            .collect::<Vec<_>>(),
        vec![clock(0.4, 0.3), clock(-2.1, 0.5), clock(-2.0, 0.6)]
    );
    // Every report lists the segments.
    let console = stampede::report::console::final_report(&merged);
    let rows = crate::common::table_rows(&console, Some("segments (merged 3 of 3):"), 4);
    assert_eq!(
        rows,
        vec![
            vec!["segment", "host", "started", "clock", "vs", "hub", "exit", "code"],
            vec![
                "0/3",
                "loadgen-1",
                "2026-01-01T00:00:00.000Z",
                "+0.400",
                "ms",
                "±0.300",
                "ms",
                "0"
            ],
            vec![
                "1/3",
                "loadgen-2",
                "2026-01-01T00:00:00.250Z",
                "-2.100",
                "ms",
                "±0.500",
                "ms",
                "0"
            ],
            vec![
                "2/3",
                "loadgen-2",
                "2026-01-01T00:00:00.000Z",
                "-2.000",
                "ms",
                "±0.600",
                "ms",
                "0"
            ],
        ],
        "{console}"
    );
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    let md = read("summary.md");
    assert!(
        md.contains(
            "**Segments**\n\n| segment | host | started | clock vs hub | exit code |\n\
             |---|---|---|--:|--:|\n\
             | 0/3 | `loadgen-1` | 2026-01-01T00:00:00.000Z | +0.400 ms ±0.300 ms | 0 |\n\
             | 1/3 | `loadgen-2` | 2026-01-01T00:00:00.250Z | -2.100 ms ±0.500 ms | 0 |\n"
        ),
        "{md}"
    );
    let html = read("report.html");
    assert!(
        html.contains(
            "<tr><td class=\"text\">1/3</td><td class=\"text\">loadgen-2</td>\
             <td class=\"text\">2026-01-01T00:00:00.250Z</td>\
             <td class=\"text\">-2.100 ms ±0.500 ms</td><td class=\"text\">0</td></tr>"
        ),
        "{html}"
    );
}

/// Segments 0/2 on loadgen-1 and 1/2 on loadgen-2 with these clocks, merged.
fn merged_on_two_hosts(clocks: [Option<ClockOffset>; 2]) -> stampede::merge::MergeOutcome {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = clocks.into_iter().enumerate().map(|(i, c)| {
        let mut s = Synthetic::segment(i as u32, 2);
        s.host = format!("loadgen-{}", i + 1);
        s.clock = c;
        s.write(tmp.path(), &format!("seg-{i}"))
    });
    let dirs: Vec<PathBuf> = dirs.collect();
    merge(&dirs, &options(&tmp.path().join("merged"))).unwrap()
}

/// Hosts differ, one segment measured its clock and one did not: the
/// note says which, and gives no spread.
#[test]
fn a_segment_without_a_clock_is_named_as_not_measured() {
    let outcome = merged_on_two_hosts([clock(1.25, 0.75), None]);
    assert_eq!(
        outcome.warnings,
        vec![format!(
            "{SKEW}clock offsets against the hub: 0/2 loadgen-1 +1.250 ms ±0.750 ms; segment 1/2 \
             not measured (no `ts` in the hub's heartbeat acks)"
        )]
    );
    let from = outcome.summary.meta.merged.as_ref().unwrap();
    assert_eq!(
        from.sources_table()[2],
        [
            "1/2",
            "loadgen-2",
            "2026-01-01T00:00:00.000Z",
            "not measured",
            "0"
        ]
        .map(String::from)
    );
}

/// Offsets measured against two different hubs (two clocks) are listed,
/// but their spread bounds nothing.
#[test]
fn offsets_against_different_hubs_give_no_bound() {
    let outcome = merged_on_two_hosts([
        clock(0.5, 1.5),
        clock_against("http://10.0.0.7:8080", -0.5, 1.5),
    ]);
    assert_eq!(
        outcome.warnings,
        vec![format!(
            "{SKEW}clock offsets against the hub: 0/2 loadgen-1 +0.500 ms ±1.500 ms, 1/2 \
             loadgen-2 -0.500 ms ±1.500 ms; measured against different hubs \
             (http://10.0.0.7:8080, http://hub:8080), so their spread is no bound on the skew"
        )]
    );
}

#[test]
fn an_interrupted_segment_makes_the_merge_interrupted() {
    let tmp = tempfile::tempdir().unwrap();
    let mut s1 = Synthetic::segment(1, 2);
    s1.interrupted = true;
    let dirs = [
        Synthetic::segment(0, 2).write(tmp.path(), "a"),
        s1.write(tmp.path(), "b"),
    ];
    let outcome = merge(&dirs, &options(&tmp.path().join("merged"))).unwrap();
    assert_eq!(outcome.exit, ExitStatus::NotCarriedOut);
    let meta = &outcome.summary.meta;
    assert!(meta.interrupted);
    assert_eq!(meta.exit_code, 3);
    assert!(outcome.summary.verdicts.iter().all(|v| v.pass));
    assert_eq!(
        outcome.warnings,
        vec![
            "interrupted: segment 1/2 was stopped before the end of its plan; the merged \
              result covers what ran (exit code 3)"
                .to_string()
        ]
    );
    let sources = &meta.merged.as_ref().unwrap().sources;
    assert_eq!(
        sources
            .iter()
            .map(|s| (s.interrupted, s.exit_code))
            .collect::<Vec<_>>(),
        vec![(false, 0), (true, 3)]
    );
}

/// The scenario's run through the library as `--segment` makes it.
async fn run_segment(fixture: &Fixture, segment: Segment) -> PathBuf {
    let scenario = stampede::scenario::load(&fixture.scenario_path(), &Default::default()).unwrap();
    let options = stampede::run::RunOptions {
        segment,
        ..fixture.options(Default::default())
    };
    let outcome = stampede::run::run_scenario(std::sync::Arc::new(scenario), &options)
        .await
        .unwrap_or_else(|e| panic!("segment {segment}: {e:#}"));
    outcome.result_dir
}

/// Real `run --segment` results (paused clock: every arrival due is made,
/// so counts are exact): the merge of 0/2 and 1/2 counts exactly the
/// requests of the whole run, per step and phase, and its histograms hold
/// as many samples.
#[tokio::test(start_paused = true)]
async fn real_segments_merge_into_the_whole_runs_counts() {
    let fixture = Fixture::new(SCENARIO);
    let whole = run_segment(&fixture, Segment::WHOLE).await;
    let parts = [
        run_segment(&fixture, Segment { index: 0, count: 2 }).await,
        run_segment(&fixture, Segment { index: 1, count: 2 }).await,
    ];
    let out = fixture.dir.path().join("merged");
    let outcome = merge(&parts, &options(&out)).unwrap();
    assert_eq!(outcome.exit, ExitStatus::Passed, "{:?}", outcome.warnings);
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    let merged = outcome.summary;
    let whole = json::read(&whole.join("summary.json")).unwrap();
    let requests = |s: &Summary| -> Vec<(String, BTreeMap<String, u64>)> {
        (s.counters.iter())
            .filter(|c| c.metric == "http.requests")
            .map(|c| (c.step.clone(), c.phases.clone()))
            .collect()
    };
    assert_eq!(requests(&merged), requests(&whole));
    let list = &requests(&merged)[0];
    assert_eq!(list.1["warm-up"] + list.1["peak"], 120, "40 + 80 arrivals");
    let counts = |s: &Summary| -> Vec<(u32, Option<String>, u64)> {
        (s.histograms.iter())
            .filter(|h| h.metric == "http.latency")
            .map(|h| (h.id, h.phase.clone(), h.count))
            .collect()
    };
    assert_eq!(counts(&merged), counts(&whole));
    assert_eq!(merged.verdicts.len(), 2);
    // Each segment says it is a share; the merge, being the whole, does not.
    let part = json::read(&parts[1].join("summary.json")).unwrap();
    assert!(part.meta.notes.iter().any(|n| n == "segment 1/2 of a split run: its numbers are its share; `stampede merge` gives the whole"));
    assert!(
        merged
            .meta
            .notes
            .iter()
            .all(|n| !n.contains("of a split run")),
        "{:?}",
        merged.meta.notes
    );
}

/// A hub scenario played as 3 real `--segment` runs at once against one
/// built-in hub (paused clock): 30 agents, a third dropped by reset at
/// 700 ms and back 50 ms later, 6 commands to every agent. The merge
/// measures the drop on the whole fleet and follows every command into all
/// three segments.
#[tokio::test(start_paused = true)]
async fn a_hub_run_in_three_segments_merges_recovery_and_fanout_across_them() {
    let hub = stampede::target::spawn(
        "127.0.0.1:0".parse().unwrap(),
        stampede::target::TargetConfig::default(),
    )
    .await
    .unwrap();
    let text = crate::hub_segments::scenario_text(hub.addr, "reset", "");
    let fixture = Fixture::new(&format!("{text}[slo]\n\"hub.recovery\" = \"< 1s\"\n"));
    let (a, b, c) = tokio::join!(
        run_segment(&fixture, Segment { index: 0, count: 3 }),
        run_segment(&fixture, Segment { index: 1, count: 3 }),
        run_segment(&fixture, Segment { index: 2, count: 3 }),
    );
    let out = fixture.dir.path().join("merged");
    let parts = [a, b, c];
    let outcome = merge(&parts, &options(&out)).unwrap();
    assert_eq!(outcome.exit, ExitStatus::Passed, "{:?}", outcome.warnings);
    // One host: no clock skew note.
    assert!(outcome.warnings.is_empty(), "{:?}", outcome.warnings);
    let merged = outcome.summary;
    // Each segment measured its clock against the hub from every heartbeat
    // ack (the built-in hub's carry its time); one kernel clock, so the
    // true offset, 0, is within the bound (+ 0.5 ms for the engine clock's
    // wall anchor). The merged sources carry them.
    let sources = &merged.meta.merged.as_ref().unwrap().sources;
    for (part, source) in parts.iter().zip(sources) {
        let summary = json::read(&part.join("summary.json")).unwrap();
        let clock = summary.meta.clock.clone().expect("the hub's acks carry ts");
        let (_, heartbeats) = hist_by_metric(&summary, "hub.message.rtt");
        assert_eq!(clock.samples, heartbeats.unwrap().len(), "{clock:?}");
        assert!(clock.samples > 0);
        assert_eq!(clock.against, format!("http://{}", hub.addr));
        assert!(
            clock.offset_ms.abs() <= clock.uncertainty_ms + 0.5,
            "{clock:?}"
        );
        assert_eq!(source.clock, Some(clock));
    }
    // One drop of 10 agents (round(30 / 3)), all back.
    assert_eq!(merged.disruptions.len(), 1, "{:?}", merged.disruptions);
    let drop = &merged.disruptions[0];
    assert_eq!((drop.lost, drop.back_unix_us.len()), (10, 10));
    let need = (drop.recovered_fraction * 10.0).ceil() as usize;
    let recovered = drop.back_unix_us[need - 1] - drop.at_unix_us;
    let (_, recovery) = hist_by_metric(&merged, "hub.recovery");
    let mut want = new_histogram();
    want.record(recovered).unwrap();
    assert_eq!(recovery.unwrap(), want, "the whole fleet's recovery");
    assert_eq!(counter_total(&merged, "hub.unrecovered"), 0);
    // 6 commands, each received by all 30 agents across the segments.
    let log = merged.commands.as_ref().expect("every segment kept a log");
    assert_eq!(log.sent.len(), 6);
    assert!(
        log.received.iter().all(|r| r.count == 30),
        "{:?}",
        log.received
    );
    let (_, fanout) = hist_by_metric(&merged, "hub.command.fanout");
    assert_eq!(fanout.unwrap().len(), 6);
    assert_eq!(counter_total(&merged, "hub.command.undelivered"), 0);
    assert_eq!(
        counter_total(&merged, "hub.registrations"),
        40,
        "30 + 10 back"
    );
}

/// Each segment's generator health is kept in the merged result, which is
/// flagged when one segment was, naming it; the phases keep their model.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merge_is_flagged_when_one_segment_was_starved_and_names_it() {
    use stampede::report::generator::{Figures, GeneratorHealth};
    use stampede::scenario::GeneratorHealthMode;
    let fixture = Fixture::new(SCENARIO);
    let a = fixture.run(Default::default()).await.result_dir;
    let b = fixture.run(Default::default()).await.result_dir;
    // Judged on figures given here, so a busy machine cannot change them.
    let health = |cpu_s: f64| {
        GeneratorHealth::judge(
            Figures {
                wall_s: 10.0,
                cpu_s,
                cpus_allowed: 1.0,
                cpus_affinity: 1,
                ..Figures::default()
            },
            GeneratorHealthMode::Error,
        )
    };
    for (dir, index, cpu_s, at) in [
        (&a, 0, 1.0, "2026-01-01T00:00:00.000Z"),
        (&b, 1, 9.9, "2026-01-01T00:00:00.500Z"),
    ] {
        let mut summary = mark_segment(dir, index, 2, at);
        summary.generator = Some(health(cpu_s));
        json::write(dir, &summary).unwrap();
    }
    let out = fixture.dir.path().join("merged");
    let outcome = merge(&[a.clone(), b.clone()], &options(&out)).unwrap();
    // `error`: the exit code is the SLOs'.
    assert_eq!(outcome.exit, ExitStatus::Passed, "{:?}", outcome.warnings);
    let merged = json::read(&out.join("summary.json")).unwrap();
    let g = merged.generator.as_ref().expect("merged generator health");
    assert_eq!(g.segments.len(), 2);
    assert_eq!(g.segments[0].figures.cpu_s, 1.0);
    assert_eq!(g.segments[1].figures.cpu_s, 9.9);
    assert!(g.segments[0].causes.is_empty());
    assert_eq!(g.causes.len(), 1, "{g:?}");
    assert_eq!(g.causes[0].kind, "cpu");
    assert_eq!(g.causes[0].segment, Some(Segment { index: 1, count: 2 }));
    let notes = merged.meta.notes.join("\n");
    assert!(
        notes.contains("segment 1/2: cpu: it used 9.9 CPU-seconds"),
        "{notes}"
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        junit.contains("type=\"generator\"") && junit.contains("cpu (segment 1/2)"),
        "{junit}"
    );
    assert!(merged
        .phases
        .iter()
        .all(|p| p.model == Some(json::PhaseModel::Open)));
    // Merged again (a merge of merges keeps the segments' figures).
    assert_eq!(
        GeneratorHealth::merge(&[(Segment::WHOLE, g.clone())])
            .unwrap()
            .segments,
        g.segments
    );
}
