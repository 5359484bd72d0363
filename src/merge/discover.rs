//! Finding the segments to merge: the directories given on the command
//! line, where a directory that is not itself a result is searched for the
//! segment results under it, and, with `--wait`, waiting for them to
//! appear (a Kubernetes merge Job starts with the run and waits on the
//! shared volume for the run's pods to finish).
//!
//! A result is complete when its `summary.json` exists: a run writes it
//! last and atomically, after `metrics.hlog` is closed. Under a searched
//! directory, results that are not segments (a whole run, an earlier
//! merge) and the merge's own `--out` are passed over with a warning;
//! everything else is left to the checks of [`super::inputs`], which
//! refuse a mixed set loudly.
//!
//! How long `--wait` waits: until every segment `0 … n−1` of the count the
//! results declare is there, or the limit passes. Once the first segment is
//! there, the others are given [`SETTLE`] more at most: all play the same
//! plan from the same `--start-at`, so they end within seconds of each
//! other, and a pod that died must not hold the verdict back for the whole
//! limit. What is missing then is merged as partial (exit 3).

use crate::error::CommandError;
use crate::plan::Segment;
use crate::report::json;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long the other segments may lag the first one found, at most.
pub const SETTLE: Duration = Duration::from_secs(120);

/// How deep under a given directory results are looked for
/// (`DIR/<result>` and `DIR/<group>/<result>`).
const DEPTH: usize = 2;

/// How often the directories are looked at again while waiting.
const POLL: Duration = Duration::from_secs(1);

/// How often a waiting merge says what it waits for.
const SAY_EVERY: Duration = Duration::from_secs(15);

/// What to look for, and how long.
#[derive(Debug, Clone, Default)]
pub struct Gather {
    /// Wait up to this long for the whole set (None: take what is there).
    pub wait: Option<Duration>,
    /// The merge's own output directory, never taken as an input.
    pub out: Option<PathBuf>,
    /// Print nothing while waiting.
    pub silent: bool,
}

/// The segment results found.
#[derive(Debug, Default)]
pub struct Found {
    /// Result directories (or files) to merge, as given or as found.
    pub dirs: Vec<PathBuf>,
    /// Results passed over under a searched directory, with why.
    pub passed_over: Vec<String>,
}

/// What one `summary.json` says about itself (the rest is not parsed).
#[derive(serde::Deserialize)]
struct Head {
    meta: HeadMeta,
}

#[derive(serde::Deserialize)]
struct HeadMeta {
    #[serde(default)]
    segment: Option<Segment>,
    #[serde(default)]
    merged: Option<serde::de::IgnoredAny>,
}

/// A result directory seen under a searched directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Segment(Segment),
    /// Not a segment's result: why.
    Other(&'static str),
}

/// Find the segment results in `given`, waiting as `gather` says.
pub async fn gather(given: &[PathBuf], gather: &Gather) -> Result<Found, CommandError> {
    let mut seen: BTreeMap<PathBuf, Seen> = BTreeMap::new();
    let Some(limit) = gather.wait else {
        return look(given, gather, &mut seen);
    };
    let started = tokio::time::Instant::now();
    let mut deadline = started + limit;
    let mut settled = false;
    let mut said = started;
    loop {
        let found = look(given, gather, &mut seen)?;
        let segments: Vec<Segment> = found
            .dirs
            .iter()
            .filter_map(|d| match seen.get(d) {
                Some(Seen::Segment(s)) => Some(*s),
                _ => None,
            })
            .collect();
        let now = tokio::time::Instant::now();
        if !segments.is_empty() && !settled {
            settled = true;
            deadline = deadline.min(now + SETTLE);
        }
        let missing = missing(&segments, explicit_count(given, &seen));
        if (settled && missing.as_ref().is_some_and(|m| m.is_empty())) || now >= deadline {
            if segments.is_empty() && found.dirs.is_empty() {
                return Err(CommandError::Failed(anyhow::anyhow!(
                    "no segment result appeared under {} within {} (--wait): did the run's \
                     pods start, and do they write where the merge looks?",
                    list(given),
                    crate::units::format_duration(limit)
                )));
            }
            return Ok(found);
        }
        if !gather.silent && now.duration_since(said) >= SAY_EVERY {
            said = now;
            let left = deadline.saturating_duration_since(now);
            eprintln!(
                "stampede merge: waiting for segments: {} found{}; at most {} more",
                segments.len(),
                match &missing {
                    Some(m) if !m.is_empty() => format!(
                        " (missing {})",
                        m.iter()
                            .map(|s| s.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    _ => String::new(),
                },
                crate::units::format_duration(Duration::from_secs(left.as_secs()))
            );
        }
        tokio::time::sleep(POLL.min(deadline.saturating_duration_since(now))).await;
    }
}

/// The segments of the declared count that are not among `found`; None
/// while no count is known (nothing found yet). Mixed counts are left to
/// the checks after (an empty list: stop waiting and let them refuse).
fn missing(found: &[Segment], count: Option<u32>) -> Option<Vec<Segment>> {
    let first = found.first().map(|s| s.count).or(count)?;
    if found.iter().any(|s| s.count != first) {
        return Some(Vec::new());
    }
    Some(
        (0..first)
            .filter(|i| !found.iter().any(|s| s.index == *i))
            .map(|index| Segment {
                index,
                count: first,
            })
            .collect(),
    )
}

/// The count of the explicitly given results, if one of them is a segment.
fn explicit_count(given: &[PathBuf], seen: &BTreeMap<PathBuf, Seen>) -> Option<u32> {
    given.iter().find_map(|g| match seen.get(g) {
        Some(Seen::Segment(s)) => Some(s.count),
        _ => None,
    })
}

fn list(given: &[PathBuf]) -> String {
    given
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// One look at the given paths. A path that is a result (or a
/// `summary.json`) is taken as it is; a directory that is not is searched.
fn look(
    given: &[PathBuf],
    gather: &Gather,
    seen: &mut BTreeMap<PathBuf, Seen>,
) -> Result<Found, CommandError> {
    let mut found = Found::default();
    let out = gather.out.as_deref().and_then(|o| o.canonicalize().ok());
    for path in given {
        if path.is_file() || path.join(json::FILE_NAME).is_file() {
            // Taken as given: inputs::read checks it and refuses what is
            // not a segment, naming it.
            if let Ok(Some(s)) = classify(path) {
                seen.insert(path.clone(), s);
            }
            found.dirs.push(path.clone());
            continue;
        }
        if !path.is_dir() {
            if gather.wait.is_some() {
                // The shared volume may not have the run's directory yet.
                continue;
            }
            return Err(CommandError::BadInput(format!(
                "{}: no such result directory (give the directories `stampede run --segment \
                 i/n` wrote, or a directory that holds them)",
                path.display()
            )));
        }
        let mut results = Vec::new();
        search(path, DEPTH, &mut results);
        results.sort();
        for dir in results {
            if out.is_some() && dir.canonicalize().ok() == out {
                continue;
            }
            let kind = match seen.get(&dir) {
                Some(kind) => *kind,
                None => match classify(&dir) {
                    Ok(Some(kind)) => {
                        seen.insert(dir.clone(), kind);
                        kind
                    }
                    // Being written by someone else, or not ours: look again.
                    Ok(None) => continue,
                    Err(why) => {
                        found.passed_over.push(format!("{}: {why}", dir.display()));
                        continue;
                    }
                },
            };
            match kind {
                Seen::Segment(_) => found.dirs.push(dir),
                Seen::Other(why) => found.passed_over.push(format!("{}: {why}", dir.display())),
            }
        }
    }
    Ok(found)
}

/// Directories holding a `summary.json`, at most `depth` levels down (a
/// result's own subdirectories are not searched).
fn search(dir: &Path, depth: usize, into: &mut Vec<PathBuf>) {
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if path.join(json::FILE_NAME).is_file() {
            into.push(path);
        } else {
            search(&path, depth - 1, into);
        }
    }
}

/// What a result is: a segment, something else, or (Ok(None)) not
/// readable yet.
fn classify(path: &Path) -> Result<Option<Seen>, String> {
    let file = if path.is_file() {
        path.to_path_buf()
    } else {
        path.join(json::FILE_NAME)
    };
    let bytes = match std::fs::read(&file) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot be read: {e}")),
    };
    let head: Head = serde_json::from_slice(&bytes)
        .map_err(|e| format!("not a stampede summary.json ({e}); passed over"))?;
    Ok(Some(match (head.meta.segment, head.meta.merged) {
        (Some(segment), _) => Seen::Segment(segment),
        (None, Some(_)) => Seen::Other("a merged result, not a segment; passed over"),
        (None, None) => Seen::Other("a whole run, not a segment; passed over"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(index: u32, count: u32) -> Segment {
        Segment { index, count }
    }

    #[test]
    fn missing_segments_follow_the_declared_count() {
        assert_eq!(missing(&[], None), None);
        assert_eq!(missing(&[], Some(2)), Some(vec![seg(0, 2), seg(1, 2)]));
        assert_eq!(
            missing(&[seg(1, 3)], None),
            Some(vec![seg(0, 3), seg(2, 3)])
        );
        assert_eq!(missing(&[seg(1, 2), seg(0, 2)], None), Some(vec![]));
        // Mixed counts: stop waiting, the checks after refuse them.
        assert_eq!(missing(&[seg(0, 2), seg(0, 3)], None), Some(vec![]));
    }

    /// A stand-in result: gather reads only `meta` (the merge checks the rest).
    fn result(dir: &Path, meta: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(json::FILE_NAME), format!("{{\"meta\":{meta}}}")).unwrap();
    }

    fn segment_result(root: &Path, name: &str, index: u32, count: u32) -> PathBuf {
        let dir = root.join(name);
        result(
            &dir,
            &format!("{{\"segment\":{{\"index\":{index},\"count\":{count}}}}}"),
        );
        dir
    }

    fn waiting(limit: u64) -> Gather {
        Gather {
            wait: Some(Duration::from_secs(limit)),
            out: None,
            silent: true,
        }
    }

    #[tokio::test]
    async fn a_directory_is_searched_two_levels_down_and_passes_over_what_is_not_a_segment() {
        let tmp = tempfile::tempdir().unwrap();
        let a = segment_result(tmp.path(), "seg-a", 0, 2);
        let b = segment_result(&tmp.path().join("pod-1"), "seg-b", 1, 2);
        segment_result(&tmp.path().join("x/y"), "too-deep", 1, 2);
        result(&tmp.path().join("whole"), "{}");
        result(&tmp.path().join("merged"), "{\"merged\":{}}");
        let out = tmp.path().join("out");
        segment_result(tmp.path(), "out", 0, 2);
        let found = gather(
            &[tmp.path().to_path_buf()],
            &Gather {
                out: Some(out),
                ..Gather::default()
            },
        )
        .await
        .unwrap();
        // Sorted by path: `pod-1/…` before `seg-a`.
        assert_eq!(found.dirs, vec![b, a]);
        assert_eq!(found.passed_over.len(), 2, "{:?}", found.passed_over);
        assert!(found
            .passed_over
            .iter()
            .any(|p| p.contains("merged result")));
        assert!(found.passed_over.iter().any(|p| p.contains("whole run")));
        // Without --wait, a directory that does not exist is bad input.
        let err = gather(&[tmp.path().join("nope")], &Gather::default())
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::BadInput(_)), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_ends_at_once_when_the_set_is_complete() {
        let tmp = tempfile::tempdir().unwrap();
        segment_result(tmp.path(), "a", 0, 2);
        segment_result(tmp.path(), "b", 1, 2);
        let t0 = tokio::time::Instant::now();
        let found = gather(&[tmp.path().to_path_buf()], &waiting(600))
            .await
            .unwrap();
        assert_eq!(found.dirs.len(), 2);
        assert_eq!(t0.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn a_missing_segment_is_waited_for_the_settle_time_not_the_whole_limit() {
        let tmp = tempfile::tempdir().unwrap();
        segment_result(tmp.path(), "a", 0, 3);
        segment_result(tmp.path(), "c", 2, 3);
        let t0 = tokio::time::Instant::now();
        let found = gather(&[tmp.path().to_path_buf()], &waiting(3600))
            .await
            .unwrap();
        assert_eq!(found.dirs.len(), 2);
        assert_eq!(t0.elapsed(), SETTLE);
        // A limit shorter than the settle time wins.
        let t0 = tokio::time::Instant::now();
        gather(&[tmp.path().to_path_buf()], &waiting(30))
            .await
            .unwrap();
        assert_eq!(t0.elapsed(), Duration::from_secs(30));
    }

    #[tokio::test(start_paused = true)]
    async fn segments_that_appear_while_waiting_are_taken() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("run-7");
        let t0 = tokio::time::Instant::now();
        let waiter = tokio::spawn({
            let root = root.clone();
            async move { gather(&[root], &waiting(3600)).await }
        });
        // The run's directory does not exist yet: the merge waits for it.
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        segment_result(&root, "a", 1, 2);
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert!(!waiter.is_finished(), "one of two segments is not the set");
        segment_result(&root, "b", 0, 2);
        let found = waiter.await.unwrap().unwrap();
        assert_eq!(found.dirs.len(), 2);
        // Polled each second: taken at the first look after it appeared.
        assert_eq!(t0.elapsed(), Duration::from_secs(31));
    }

    #[tokio::test(start_paused = true)]
    async fn nothing_appearing_within_the_limit_is_not_carried_out() {
        let tmp = tempfile::tempdir().unwrap();
        let t0 = tokio::time::Instant::now();
        let err = gather(&[tmp.path().join("run-8")], &waiting(300))
            .await
            .unwrap_err();
        assert_eq!(err.exit_status(), crate::error::ExitStatus::NotCarriedOut);
        assert!(
            err.to_string().contains("no segment result appeared"),
            "{err}"
        );
        assert_eq!(t0.elapsed(), Duration::from_secs(300));
    }
}
