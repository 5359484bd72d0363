//! `stampede merge`: the results of a run's segments (`stampede run
//! --segment i/n`, or the children of `run --processes N`) merged into one
//! exact result, judged once, with every report rebuilt.
//!
//! # What is merged, and how
//! - **Checks** (`inputs`): every input is a complete segment result; all
//!   are of one scenario (content hash), one seed, one segment count, one
//!   layout and one set of SLOs, each segment at most once. Anything else is
//!   refused as bad input (exit 2) naming the directories. A *missing*
//!   segment is not refused: the result is marked partial
//!   (`meta.merged.missing`), said loudly (stderr, a note in every report,
//!   an HTML banner, a JUnit error) and the exit code is 3, whatever the
//!   SLOs say. An interrupted segment makes the merge interrupted (exit 3),
//!   as `run` does.
//! - **Histograms** are added per series × phase (`Summary::to_totals`
//!   then `Totals::merge_hist`): the merged histogram is the sum of the
//!   segments' bit for bit. **Counters** are summed.
//! - **Whole-fleet measures** (`fleet`): `hub.recovery`,
//!   `hub.unrecovered`, `hub.command.fanout` and `hub.command.undelivered`
//!   are recomputed from the segments' disruption and command records,
//!   replacing the segments' own values.
//! - **The per-second series and `metrics.hlog`** (`timeline`) are aligned
//!   on wall-clock seconds; per-second histogram stats are rebuilt exactly
//!   from the segments' interval logs.
//! - **Time**: the merged run starts at the earliest segment's start and
//!   lasts as long as the longest segment (all play the same plan, so that
//!   is the plan's length as played; rates are judged over it); the phases
//!   are the plan's, as the segments played them.
//! - **SLOs** are judged again on the merged totals with the segments' SLOs
//!   (their verdicts carry them; baseline comparisons, keyed `baseline: …`,
//!   are left out: a merge has no baseline). The exit code is the merged
//!   verdict: 0 pass · 1 an SLO failed · 3 partial or interrupted.
//! - **Metadata**: `meta.merged` lists each segment's host, start,
//!   directory, interruption, exit code and clock offset against the hub
//!   (its `meta.clock`, see `engine::hub::clock`); `meta.host` names the
//!   hosts. When they differ, `meta.merged.hosts_differ` is set and a note
//!   says which cross-segment latencies (command delivery and fan-out,
//!   recovery) include the hosts' clock skew, with the segments' measured
//!   offsets and their spread as the bound on it ("not measured" when the
//!   hub's acks carry no time). Segments on one host share a clock: no
//!   note. Notes: the merge's own first, then each segment's, prefixed
//!   `segment i/n: ` (but for the one saying it is a segment).
//!
//! The result directory gets `summary.json`, `metrics.hlog`, `report.html`,
//! `junit.xml` and `summary.md`, so `stampede report DIR` and `stampede
//! compare` read it like any run's.

mod discover;
mod fleet;
mod inputs;
mod timeline;

use crate::engine::records::{CommandLog, CommandReceived, Disruption};
use crate::error::{CommandError, ExitStatus};
use crate::metrics::{new_histogram, CounterId, HistId, Totals};
use crate::plan::Segment;
use crate::report::generator::GeneratorHealth;
use crate::report::json::{
    self, MergedFrom, MergedSource, PhaseEntry, RunMeta, Summary, PARTIAL_NOTE,
};
use crate::report::{console, rebuild};
use anyhow::Context as _;
use chrono::{DateTime, Utc};
use inputs::Input;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use discover::{gather, Found, Gather, SETTLE};

/// How `merge` reads one segment's `summary.json` from its bytes (`path`
/// names it in errors): parsed and checked as `stampede report` does, then
/// its segment and start time. For the fuzz targets (fuzz/).
#[doc(hidden)]
pub fn read_segment_summary(
    path: &Path,
    bytes: &[u8],
) -> Result<(Summary, Segment, DateTime<Utc>), CommandError> {
    let summary = rebuild::parse_summary(path, bytes)?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let (segment, started_at) = inputs::checked(dir, path, &summary)?;
    Ok((summary, segment, started_at))
}

/// How `merge` reads one segment's `metrics.hlog` (`hlog`), its summary
/// read by [`read_segment_summary`]: the merged log of that one segment.
/// For the fuzz targets (fuzz/).
#[doc(hidden)]
pub fn merge_segment_hlog(
    summary: Summary,
    segment: Segment,
    started_at: DateTime<Utc>,
    hlog: Vec<u8>,
) -> Result<Vec<u8>, CommandError> {
    let layout = summary.layout.clone();
    let input = [Input {
        dir: PathBuf::from("segment"),
        summary,
        segment,
        started_at,
        hlog: Some(hlog),
    }];
    let recomputed = fleet::recompute(&input, &layout);
    Ok(timeline::merge(&input, &layout, started_at, &recomputed)?.hlog)
}

/// What `stampede merge` (or `run --processes`) asks for.
#[derive(Debug, Clone, Default)]
pub struct MergeOptions {
    /// The merged result directory; None: `reports/<name>-merged-<UTC
    /// time of the earliest start>` (suffixed if taken). A given directory
    /// is created if needed and must not hold a result already.
    pub out: Option<PathBuf>,
    /// Print the final tables only when the merged run did not pass (as
    /// `run --quiet`); warnings and the `results:` line are always printed.
    pub quiet: bool,
    /// Print nothing at all, not even warnings (the steps of `capacity`,
    /// which report them themselves): the warnings are in
    /// [`MergeOutcome::warnings`] and in the notes of every report.
    pub silent: bool,
    /// The command line, already redacted (goes to `meta.command_line`).
    pub command_line: Vec<String>,
}

/// What a merge produced.
#[derive(Debug)]
pub struct MergeOutcome {
    /// The merged verdict: 0 pass · 1 an SLO failed · 3 partial or interrupted.
    pub exit: ExitStatus,
    /// The merged result directory.
    pub dir: PathBuf,
    /// The merged `summary.json`.
    pub summary: Summary,
    /// The merge's own notes (already printed on stderr): partial,
    /// interrupted, clock skew, approximate figures.
    pub warnings: Vec<String>,
}

/// Merge the segment results in `inputs` (result directories, or their
/// `summary.json`) into one result; see the module docs.
pub fn merge(inputs: &[PathBuf], options: &MergeOptions) -> Result<MergeOutcome, CommandError> {
    let mut segments = inputs
        .iter()
        .map(|p| inputs::read(p))
        .collect::<Result<Vec<Input>, _>>()?;
    inputs::check_together(&mut segments)?;
    if let Some(dir) = &options.out {
        check_out(dir)?;
    }
    let Merged {
        mut summary,
        hlog,
        warnings,
    } = merged_summary(&segments, options)?;
    let dir = match &options.out {
        Some(dir) => create_out(dir)?,
        None => default_dir(&summary)?,
    };
    if let Ok(base) = std::fs::canonicalize(&dir) {
        for action in &mut summary.actions {
            let inside = (action.output.as_deref())
                .and_then(|o| Path::new(o).strip_prefix(&base).ok())
                .map(|rel| rel.display().to_string());
            if inside.is_some() {
                action.output = inside;
            }
        }
    }
    write(&dir, &summary, &hlog)?;
    let exit = match summary.meta.exit_code {
        0 => ExitStatus::Passed,
        1 => ExitStatus::SloFailed,
        _ => ExitStatus::NotCarriedOut,
    };
    if !options.silent {
        for warning in &warnings {
            eprintln!("stampede: warning: {warning}");
        }
        if !options.quiet || exit != ExitStatus::Passed {
            console::emit(&console::final_report(&summary));
        }
        console::emit(&format!("results: {}\n", dir.display()));
    }
    Ok(MergeOutcome {
        exit,
        dir,
        summary,
        warnings,
    })
}

/// The merge, before it is written.
struct Merged {
    summary: Summary,
    /// The merged `metrics.hlog`.
    hlog: Vec<u8>,
    /// The merge's own notes.
    warnings: Vec<String>,
}

fn merged_summary(segments: &[Input], options: &MergeOptions) -> Result<Merged, CommandError> {
    let first = &segments[0];
    let count = first.segment.count;
    let layout = first.summary.layout.clone();
    let earliest = segments
        .iter()
        .map(|s| s.started_at)
        .min()
        .expect("one input");
    let recomputed = fleet::recompute(segments, &layout);
    let mut totals = Totals::new(layout.clone());
    let phases = layout.phases.len().max(1);
    for segment in segments {
        let part = segment
            .summary
            .to_totals()
            .map_err(|e| CommandError::BadInput(format!("{}: {e:#}", segment.dir.display())))?;
        for id in (0..layout.hists.len()).filter(|i| !recomputed.hists.contains(i)) {
            let id = HistId(id as u32);
            for p in 0..phases {
                totals.merge_hist(id, p, &part.hist(id, Some(p)));
            }
        }
        for id in (0..layout.counters.len()).filter(|i| !recomputed.counters.contains(i)) {
            let id = CounterId(id as u32);
            for p in 0..phases {
                totals.add_counter(id, p, part.counter(id, Some(p)));
            }
        }
    }
    for sample in &recomputed.samples {
        let mut h = new_histogram();
        h.saturating_record(sample.value_us);
        totals.merge_hist(sample.id, sample.phase, &h);
    }
    for count in &recomputed.counts {
        totals.add_counter(count.id, count.phase, count.n);
    }
    let timeline = timeline::merge(segments, &layout, earliest, &recomputed)?;
    for point in timeline.points {
        totals.push_point(point);
    }
    let hlog = timeline.hlog;

    let duration_s = segments
        .iter()
        .map(|s| s.summary.meta.duration_s)
        .fold(0.0, f64::max);
    let phase_entries = phases_of(segments);
    let present: Vec<u32> = segments.iter().map(|s| s.segment.index).collect();
    let missing: Vec<u32> = (0..count).filter(|i| !present.contains(i)).collect();
    let interrupted: Vec<&Input> = segments
        .iter()
        .filter(|s| s.summary.meta.interrupted)
        .collect();
    let mut hosts: Vec<&str> = Vec::new();
    for s in segments {
        if !hosts.contains(&s.summary.meta.host.as_str()) {
            hosts.push(&s.summary.meta.host);
        }
    }

    let mut warnings = Vec::new();
    if !missing.is_empty() {
        let names: Vec<String> = missing
            .iter()
            .map(|&index| Segment { index, count }.to_string())
            .collect();
        warnings.push(format!(
            "{PARTIAL_NOTE}: segment {} of this {count}-segment run {} missing; it covers {} of {count} \
             segments, so counts, rates and the SLO verdicts are those of a part of the load \
             (exit code 3)",
            names.join(", "),
            if missing.len() == 1 { "is" } else { "are" },
            segments.len()
        ));
    }
    for s in &interrupted {
        warnings.push(format!(
            "interrupted: segment {} was stopped before the end of its plan; the merged result \
             covers what ran (exit code 3)",
            s.segment
        ));
    }
    if hosts.len() > 1 {
        warnings.push(fleet::skew_note(segments, &hosts));
    }
    let versions: Vec<&str> = segments
        .iter()
        .map(|s| s.summary.meta.stampede_version.as_str())
        .collect();
    if versions.iter().any(|v| *v != versions[0]) {
        warnings.push(format!(
            "the segments ran different stampede versions ({})",
            versions.join(", ")
        ));
    }
    warnings.extend(recomputed.notes.iter().cloned());
    warnings.extend(timeline.notes);

    let spans = phase_spans(&phase_entries);
    let slos = inputs::slos(&first.summary);
    // HTTP bursts, judged on the merged series (actions: segment 0's).
    let marks: Vec<crate::slo::recovery::ActionMark> = (segments.iter())
        .flat_map(|s| &s.summary.actions)
        .map(|a| crate::slo::recovery::ActionMark {
            name: a.name.clone(),
            at_s: (a.at_unix_us as i64 - earliest.timestamp_micros()) as f64 / 1e6,
        })
        .collect();
    let http_disruptions = crate::slo::recovery::http_disruptions(&slos, &totals, &spans, &marks);
    crate::slo::recovery::record(&mut totals, &http_disruptions);
    let verdicts = crate::slo::evaluate(
        &slos,
        &totals,
        &spans,
        Duration::try_from_secs_f64(duration_s).unwrap_or_default(),
    );
    // Each segment's health kept; flagged when any segment was.
    let generator = GeneratorHealth::merge(
        &(segments.iter())
            .filter_map(|s| Some((s.segment, s.summary.generator.clone()?)))
            .collect::<Vec<_>>(),
    );
    let exit = if !missing.is_empty() || !interrupted.is_empty() {
        ExitStatus::NotCarriedOut
    } else if verdicts.iter().any(|v| !v.pass)
        || generator.as_ref().is_some_and(|g| g.fails_the_run())
    {
        ExitStatus::SloFailed
    } else {
        ExitStatus::Passed
    };
    let mut notes = warnings.clone();
    // Waits still open at the end, for the whole run (not per segment).
    notes.extend(crate::report::console::open_wait_notes(&totals));
    // The generator's, each naming its segment.
    notes.extend(generator.iter().flat_map(|g| g.notes()));
    for s in segments {
        notes.extend(
            (s.summary.meta.notes.iter())
                .filter(|n| !n.ends_with(crate::report::json::SEGMENT_NOTE))
                .filter(|n| !n.starts_with(crate::report::generator::NOTE))
                .filter(|n| !n.ends_with(crate::report::console::OPEN_WAIT_NOTE))
                .map(|n| format!("segment {}: {n}", s.segment)),
        );
    }
    let start_ats: Vec<&Option<String>> =
        segments.iter().map(|s| &s.summary.meta.start_at).collect();
    let meta = RunMeta {
        name: first.summary.meta.name.clone(),
        scenario_path: first.summary.meta.scenario_path.clone(),
        scenario_hash: first.summary.meta.scenario_hash.clone(),
        stampede_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: earliest.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ended_at: (segments.iter())
            .filter_map(|s| DateTime::parse_from_rfc3339(&s.summary.meta.ended_at).ok())
            .max()
            .map_or_else(
                || first.summary.meta.ended_at.clone(),
                |t| {
                    t.with_timezone(&Utc)
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                },
            ),
        duration_s,
        host: hosts.join(", "),
        command_line: options.command_line.clone(),
        seed: first.summary.meta.seed,
        interrupted: !interrupted.is_empty(),
        exit_code: exit.code(),
        notes,
        segment: None,
        start_at: start_ats
            .iter()
            .all(|s| *s == start_ats[0])
            .then(|| start_ats[0].clone())
            .flatten(),
        merged: Some(MergedFrom {
            count,
            sources: segments
                .iter()
                .map(|s| MergedSource {
                    segment: s.segment,
                    host: s.summary.meta.host.clone(),
                    started_at: s.summary.meta.started_at.clone(),
                    dir: s.dir.display().to_string(),
                    interrupted: s.summary.meta.interrupted,
                    exit_code: s.summary.meta.exit_code,
                    clock: s.summary.meta.clock.clone(),
                })
                .collect(),
            missing,
            hosts_differ: hosts.len() > 1,
        }),
        clock: None,
    };
    let mut summary = json::build(meta, &spans, &totals, &verdicts);
    summary.disruptions = whole_fleet_disruptions(segments);
    summary.commands = whole_fleet_commands(segments);
    // Only segment 0 runs actions: its list is the run's. Their output
    // files stay in the segment's directory: the path is made absolute
    // here, and relative to the merged directory once that is known.
    summary.actions = segments
        .iter()
        .flat_map(|s| {
            s.summary.actions.iter().cloned().map(|mut a| {
                a.output = a.output.map(|o| {
                    let path = s.dir.join(o);
                    std::fs::canonicalize(&path)
                        .unwrap_or(path)
                        .display()
                        .to_string()
                });
                a
            })
        })
        .collect();
    summary.actions.sort_by_key(|a| a.at_unix_us);
    summary.http_disruptions = http_disruptions;
    summary.generator = generator;
    summary.set_models(|name| {
        (phase_entries.iter())
            .find(|p| p.name == name)
            .and_then(|p| p.model)
    });
    Ok(Merged {
        summary,
        hlog,
        warnings,
    })
}

/// The plan's phases as the segments played them: each phase from where
/// it starts to where the segment that played most of it ended it.
fn phases_of(segments: &[Input]) -> Vec<PhaseEntry> {
    let mut phases: Vec<PhaseEntry> = Vec::new();
    for s in segments {
        for p in &s.summary.phases {
            match phases.iter_mut().find(|q| q.name == p.name) {
                Some(q) => {
                    q.start_s = q.start_s.min(p.start_s);
                    q.end_s = q.end_s.max(p.end_s);
                }
                None => phases.push(p.clone()),
            }
        }
    }
    phases.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    phases
}

fn phase_spans(phases: &[PhaseEntry]) -> Vec<crate::slo::PhaseSpan> {
    phases
        .iter()
        .map(|p| crate::slo::PhaseSpan {
            name: p.name.clone(),
            start: Duration::try_from_secs_f64(p.start_s).unwrap_or_default(),
            end: Duration::try_from_secs_f64(p.end_s).unwrap_or_default(),
        })
        .collect()
}

/// Each disruption once, for the whole fleet (grouped as
/// [`fleet::disruption_groups`] says): lost summed, every agent's return;
/// numbered again in order.
fn whole_fleet_disruptions(segments: &[Input]) -> Vec<Disruption> {
    let mut all: Vec<Disruption> = fleet::disruption_groups(segments)
        .into_iter()
        .filter_map(|parts| {
            let mut whole = (*parts.first()?).clone();
            for d in &parts[1..] {
                whole.lost += d.lost;
                whole.at_unix_us = whole.at_unix_us.min(d.at_unix_us);
                whole.back_unix_us.extend(&d.back_unix_us);
            }
            whole.back_unix_us.sort_unstable();
            Some(whole)
        })
        .collect();
    // Only segment 0 runs the fault actions: the other segments saw the
    // same wave as `detected`. A wave that started within the action
    // window after an action is that action's, as in a whole run.
    let actions: Vec<&crate::engine::records::ActionRecord> =
        segments.iter().flat_map(|s| &s.summary.actions).collect();
    let window_us = crate::engine::hub::recovery::ACTION_WINDOW.as_micros() as u64;
    for d in all.iter_mut().filter(|d| is_wave(d)) {
        let by = (actions.iter())
            .filter(|a| {
                a.at_unix_us <= d.at_unix_us + 1_000 && d.at_unix_us <= a.at_unix_us + window_us
            })
            .max_by_key(|a| a.at_unix_us);
        if let Some(action) = by {
            d.cause = "action".into();
            d.action = Some(action.name.clone());
        }
    }
    all.sort_by_key(|d| d.at_unix_us);
    // Waves keep the numbers after the drops', in time order.
    let drops = all.iter().filter(|d| !is_wave(d)).count() as u32;
    for (k, d) in all.iter_mut().filter(|d| is_wave(d)).enumerate() {
        d.ordinal = drops + k as u32;
    }
    all
}

fn is_wave(d: &Disruption) -> bool {
    matches!(d.cause.as_str(), "detected" | "action")
}

/// Every command sent, with its receipts in all segments; None unless
/// every segment kept a log.
fn whole_fleet_commands(segments: &[Input]) -> Option<CommandLog> {
    let logs: Vec<&CommandLog> = segments
        .iter()
        .map(|s| s.summary.commands.as_ref())
        .collect::<Option<_>>()?;
    let mut received: BTreeMap<&str, CommandReceived> = BTreeMap::new();
    for r in logs.iter().flat_map(|l| &l.received) {
        let entry = received.entry(&r.id).or_insert_with(|| CommandReceived {
            id: r.id.clone(),
            count: 0,
            last_unix_us: 0,
        });
        entry.count += r.count;
        entry.last_unix_us = entry.last_unix_us.max(r.last_unix_us);
    }
    Some(CommandLog {
        sent: logs.iter().flat_map(|l| l.sent.iter().cloned()).collect(),
        received: received.into_values().collect(),
    })
}

/// A given `--out` is refused when it holds a result (checked before the
/// merge, created after it: a refused merge leaves nothing behind).
fn check_out(dir: &Path) -> Result<(), CommandError> {
    if dir.join(json::FILE_NAME).exists() {
        return Err(CommandError::BadInput(format!(
            "--out {}: already holds a result (summary.json); give a new directory",
            dir.display()
        )));
    }
    Ok(())
}

fn create_out(dir: &Path) -> Result<PathBuf, CommandError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| CommandError::BadInput(format!("--out {}: {e}", dir.display())))?;
    Ok(dir.to_path_buf())
}

/// `reports/<name>-merged-<UTC time of the earliest start>`, suffixed
/// `-1`, `-2`… when taken.
fn default_dir(summary: &Summary) -> Result<PathBuf, CommandError> {
    let name: String = (summary.meta.name.chars())
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let stamp = DateTime::parse_from_rfc3339(&summary.meta.started_at)
        .map(|t| t.with_timezone(&Utc).format("%Y%m%dT%H%M%SZ").to_string())
        .unwrap_or_default();
    let base = format!("{name}-merged-{stamp}");
    let parent = Path::new("reports");
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    let mut attempt = 0;
    loop {
        let dir = match attempt {
            0 => parent.join(&base),
            n => parent.join(format!("{base}-{n}")),
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 1000 => {
                attempt += 1
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context(format!("creating {}", dir.display()))
                    .into())
            }
        }
    }
}

/// summary.json, metrics.hlog, then the reports (a failure in the latter
/// is a warning: `stampede report DIR` writes them again).
fn write(dir: &Path, summary: &Summary, hlog: &[u8]) -> Result<(), CommandError> {
    json::write(dir, summary)
        .with_context(|| format!("writing {}", dir.join(json::FILE_NAME).display()))?;
    let hlog_path = dir.join(rebuild::HLOG_FILE);
    crate::report::write_atomic(&hlog_path, hlog)
        .with_context(|| format!("writing {}", hlog_path.display()))?;
    rebuild::write_reports_or_warn(dir, summary);
    Ok(())
}
