//! The inputs of a merge: each result directory read and checked on its
//! own (a complete, consistent `summary.json` of a segment, its
//! `metrics.hlog` when there is one), then all of them against each other
//! (one scenario, one seed, one segment count, one layout, one set of SLOs,
//! no segment twice). Every refusal is bad input (exit 2) and names the
//! directories at fault.

use crate::error::CommandError;
use crate::plan::Segment;
use crate::report::json::{self, Summary};
use crate::report::rebuild::{self, HLOG_FILE};
use crate::slo::Slo;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

/// One segment's result, read.
pub(super) struct Input {
    /// The directory as given.
    pub dir: PathBuf,
    pub summary: Summary,
    pub segment: Segment,
    pub started_at: DateTime<Utc>,
    /// The bytes of `metrics.hlog`; None when the directory has none.
    pub hlog: Option<Vec<u8>>,
}

fn refuse(message: String) -> CommandError {
    CommandError::BadInput(message)
}

/// Read one result directory (or its `summary.json`).
pub(super) fn read(path: &Path) -> Result<Input, CommandError> {
    let dir = if path.is_file() {
        match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        }
    } else {
        path.to_path_buf()
    };
    if !dir.is_dir() {
        return Err(refuse(format!(
            "{}: no such result directory (give the directories `stampede run --segment i/n` wrote)",
            path.display()
        )));
    }
    let summary_path = dir.join(json::FILE_NAME);
    let summary = rebuild::read_summary(&summary_path)?;
    let (segment, started_at) = checked(&dir, &summary_path, &summary)?;
    let hlog_path = dir.join(HLOG_FILE);
    let hlog = match std::fs::read(&hlog_path) {
        Ok(bytes) if bytes.is_empty() => {
            return Err(refuse(format!(
                "{}: empty (a run writes the log's header first); remove it to merge without it",
                hlog_path.display()
            )))
        }
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(refuse(format!(
                "{}: cannot be read: {e}",
                hlog_path.display()
            )))
        }
    };
    Ok(Input {
        dir: path.to_path_buf(),
        summary,
        segment,
        started_at,
        hlog,
    })
}

/// The checks of one segment's summary (`dir` holds `summary_path`): its
/// segment and start time.
pub(super) fn checked(
    dir: &Path,
    summary_path: &Path,
    summary: &Summary,
) -> Result<(Segment, DateTime<Utc>), CommandError> {
    rebuild::check_summary(summary_path, summary)?;
    let Some(segment) = summary.meta.segment else {
        return Err(refuse(format!(
            "{}: not a segment's result (meta.segment is absent): merge combines the results of \
             `stampede run --segment i/n`, one per segment",
            dir.display()
        )));
    };
    if segment.count == 0 || segment.index >= segment.count {
        return Err(refuse(format!(
            "{}: meta.segment {}/{} is not a segment (the index must be below the count)",
            dir.display(),
            segment.index,
            segment.count
        )));
    }
    let started_at = DateTime::parse_from_rfc3339(&summary.meta.started_at)
        .map_err(|e| {
            refuse(format!(
                "{}: meta.started_at {:?} is not an RFC 3339 time ({e})",
                summary_path.display(),
                summary.meta.started_at
            ))
        })?
        .with_timezone(&Utc);
    Ok((segment, started_at))
}

/// The SLOs the segments were judged on, baseline comparisons left out:
/// `run --baseline` adds one verdict per regression and one overall, all
/// keyed `baseline: …` (see `compare::verdicts`); a merge has no baseline.
pub(super) fn slos(summary: &Summary) -> Vec<Slo> {
    summary
        .verdicts
        .iter()
        .filter(|v| !v.slo.key.starts_with("baseline: "))
        .map(|v| v.slo.clone())
        .collect()
}

/// Check the inputs against each other (sorted by segment on return).
pub(super) fn check_together(inputs: &mut [Input]) -> Result<(), CommandError> {
    let Some(first) = inputs.first() else {
        return Err(refuse(
            "nothing to merge: give the result directories of the segments".into(),
        ));
    };
    let dir = |i: &Input| i.dir.display().to_string();
    let short = |hash: &str| hash.chars().take(12).collect::<String>();
    for other in &inputs[1..] {
        if other.summary.meta.scenario_hash != first.summary.meta.scenario_hash {
            return Err(refuse(format!(
                "results of different scenarios: {} has {} ({}), {} has {} ({}); merge only the \
                 segments of one run of one scenario file",
                dir(first),
                first.summary.meta.name,
                short(&first.summary.meta.scenario_hash),
                dir(other),
                other.summary.meta.name,
                short(&other.summary.meta.scenario_hash)
            )));
        }
        if other.summary.meta.seed != first.summary.meta.seed {
            return Err(refuse(format!(
                "results of different seeds: {} ran seed {}, {} seed {}; every segment of a run \
                 must use the same seed",
                dir(first),
                first.summary.meta.seed,
                dir(other),
                other.summary.meta.seed
            )));
        }
        if other.segment.count != first.segment.count {
            return Err(refuse(format!(
                "mixed segment counts: {} is segment {}, {} is segment {}; merge the segments of \
                 one split",
                dir(first),
                first.segment,
                dir(other),
                other.segment
            )));
        }
        if let Some(what) = layout_difference(&first.summary, &other.summary) {
            return Err(refuse(format!(
                "the results record different series ({what}): {} and {}; were they run with \
                 different `--set` overrides or stampede versions?",
                dir(first),
                dir(other)
            )));
        }
        if slos(&other.summary) != slos(&first.summary) {
            return Err(refuse(format!(
                "the results were judged on different SLOs: {} and {}; were they run with \
                 different `--set slo…` overrides?",
                dir(first),
                dir(other)
            )));
        }
    }
    inputs.sort_by_key(|i| i.segment.index);
    for pair in inputs.windows(2) {
        if pair[0].segment == pair[1].segment {
            return Err(refuse(format!(
                "two results of segment {}: {} and {}; give each segment once",
                pair[0].segment,
                dir(&pair[0]),
                dir(&pair[1])
            )));
        }
    }
    Ok(())
}

/// What differs between two layouts, if anything.
fn layout_difference(a: &Summary, b: &Summary) -> Option<&'static str> {
    let (a, b) = (&a.layout, &b.layout);
    if a.phases != b.phases {
        Some("phases")
    } else if a.hists != b.hists {
        Some("histograms")
    } else if a.counters != b.counters {
        Some("counters")
    } else if a.gauges != b.gauges {
        Some("gauges")
    } else {
        None
    }
}
