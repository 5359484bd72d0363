//! Writing the reports of a result directory: at the end of every run
//! ([`write_reports`], called right after `summary.json` is written, also
//! for interrupted runs) and again on demand (`stampede report DIR`,
//! [`rebuild`]).
//!
//! # What is written
//! - The [`super::REPORTS`]: `report.html` ([`super::html`]), `junit.xml`
//!   ([`super::junit`]), `summary.md` ([`super::markdown`]), all rendered
//!   from `summary.json` by their [`super::Exporter`].
//!   Every report is rendered in memory before the first is written, and
//!   each is written atomically (temp file + rename, [`super::write_atomic`]),
//!   so a failure never leaves a half-written report: an old report stays
//!   whole, a new one is either complete or absent.
//! - When `$GITHUB_STEP_SUMMARY` is set (and not empty), `summary.md` is
//!   appended to the file it names, as GitHub Actions expects; failing to
//!   append is a warning, not an error (the result files are written).
//!
//! # Rebuilding (`stampede report DIR`)
//! 1. `DIR/summary.json` is read and checked: it must exist, be complete
//!    JSON, have `schema_version` 1, match the schema (a missing field is
//!    named), and be consistent (every `hdr` decodes to a histogram of the
//!    stated count, ids and phases exist in `layout`, every point of
//!    `series` has one entry per series).
//! 2. `DIR/metrics.hlog` is decoded entirely with the `hdrhistogram`
//!    crate's interval-log reader; a line that does not parse or a histogram
//!    that does not decode is an error naming the file and line. Its sample
//!    count per tag is compared with `summary.json`; a difference is a
//!    warning. A **missing** `metrics.hlog` is only a warning: the reports
//!    are drawn from `summary.json`, which holds every histogram in full
//!    (per phase and overall) and the 1-second time series.
//! 3. Every report is written as above.
//!
//! Bad input (a missing directory, a missing, cut-short, corrupt or
//! foreign `summary.json`, a corrupt `metrics.hlog`) is
//! [`ReportError::BadInput`], which names the file and what is wrong and
//! maps to exit code 2; nothing is written then. A failure to write a report
//! (disk full, read-only directory) is [`ReportError::Write`] (exit 3).

use super::json::{self, Summary};
use super::{html, markdown, write_atomic};
use crate::error::CommandError;
use crate::metrics::{hlog_tag, HlogReader};
use std::collections::BTreeMap;
use std::fmt;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// File name of the HTML report inside a result directory.
pub const HTML_FILE: &str = html::FILE_NAME;

/// File name of the HdrHistogram interval log inside a result directory.
pub const HLOG_FILE: &str = "metrics.hlog";

/// The environment variable naming GitHub Actions' step summary file.
pub const STEP_SUMMARY_ENV: &str = "GITHUB_STEP_SUMMARY";

/// Why the reports could not be (re)built.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A result file is missing, incomplete or not what it should be.
    #[error("{}: {detail}", path.display())]
    BadInput {
        /// The file (or directory) at fault.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A renderer failed; nothing was written.
    #[error("rendering {file}: {detail}")]
    Render { file: &'static str, detail: String },
    /// A report could not be written (it was left as it was).
    #[error("writing {}: {error}", path.display())]
    Write { path: PathBuf, error: io::Error },
}

impl From<ReportError> for CommandError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::BadInput { .. } => CommandError::BadInput(e.to_string()),
            ReportError::Render { .. } | ReportError::Write { .. } => {
                CommandError::Failed(anyhow::Error::new(e))
            }
        }
    }
}

/// Something the reader should know, with what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Warning {
    pub message: String,
    pub hint: String,
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.hint)
    }
}

/// What was written.
#[derive(Debug, Default)]
pub struct Written {
    /// The reports, in the order written.
    pub files: Vec<PathBuf>,
    /// The step summary file `summary.md` was appended to, if any.
    pub step_summary: Option<PathBuf>,
    pub warnings: Vec<Warning>,
    /// The reports that could not be written (disk full, read-only
    /// directory), with why; the others were still written.
    pub failed: Vec<(PathBuf, io::Error)>,
}

/// Write every report of `summary` into `dir`, and append `summary.md` to
/// `$GITHUB_STEP_SUMMARY` when it is set.
pub fn write_reports(dir: &Path, summary: &Summary) -> Result<Written, ReportError> {
    let step_summary = std::env::var_os(STEP_SUMMARY_ENV)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    write_reports_to(dir, summary, step_summary.as_deref())
}

/// [`write_reports`] at the end of a command whose `summary.json` is
/// written: a failure, and any warning, is printed on stderr rather than
/// returned (the result stands; `stampede report DIR` can write them again).
pub fn write_reports_or_warn(dir: &Path, summary: &Summary) {
    match write_reports(dir, summary) {
        Ok(written) => {
            for warning in &written.warnings {
                eprintln!("stampede: warning: {warning}");
            }
            for (path, error) in &written.failed {
                eprintln!(
                    "stampede: warning: writing {}: {error}; the results are in summary.json (retry with `stampede report {}`)",
                    path.display(),
                    dir.display()
                );
            }
        }
        Err(e) => eprintln!(
            "stampede: warning: {e:#}; the results are in summary.json (retry with `stampede report {}`)",
            dir.display()
        ),
    }
}

/// [`write_reports`] with the step summary file given rather than read
/// from the environment.
pub fn write_reports_to(
    dir: &Path,
    summary: &Summary,
    step_summary: Option<&Path>,
) -> Result<Written, ReportError> {
    // Everything rendered before anything is written.
    let rendered = super::REPORTS
        .iter()
        .map(|report| {
            let file = report.file_name();
            let content = report.render(summary).map_err(|e| ReportError::Render {
                file,
                detail: format!("{e:#}"),
            })?;
            Ok((file, content))
        })
        .collect::<Result<Vec<_>, ReportError>>()?;
    // Each is tried whatever became of the others.
    let mut written = Written::default();
    for (name, content) in &rendered {
        let path = dir.join(name);
        match write_atomic(&path, content.as_bytes()) {
            Ok(()) => written.files.push(path),
            Err(error) => written.failed.push((path, error)),
        }
    }
    let markdown = rendered
        .iter()
        .find(|(name, _)| *name == markdown::FILE_NAME)
        .map_or("", |(_, content)| content.as_str());
    if let Some(path) = step_summary {
        match append(path, markdown) {
            Ok(()) => written.step_summary = Some(path.to_owned()),
            Err(e) => written.warnings.push(Warning {
                message: format!(
                    "cannot append the summary to ${STEP_SUMMARY_ENV} ({}): {e}",
                    path.display()
                ),
                hint: format!(
                    "{} in the result directory has the same text",
                    markdown::FILE_NAME
                ),
            }),
        }
    }
    Ok(written)
}

/// Append `text` to the step summary, separated from what is there by a
/// blank line (GitHub renders the file's whole content as Markdown).
fn append(path: &Path, text: &str) -> io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    file.write_all(b"\n")?;
    file.write_all(text.as_bytes())?;
    file.flush()
}

/// `stampede report DIR`: read and check `summary.json` and `metrics.hlog`,
/// then write every report (see the module docs).
pub fn rebuild(dir: &Path) -> Result<Written, ReportError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(bad(
                dir,
                "not a directory (expected a result directory holding summary.json)",
            ))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(bad(dir, "no such result directory"))
        }
        Err(e) => return Err(bad(dir, format!("cannot be read: {e}"))),
    }
    let summary_path = dir.join(json::FILE_NAME);
    let summary = read_summary(&summary_path)?;
    check_summary(&summary_path, &summary)?;
    let hlog_path = dir.join(HLOG_FILE);
    let mut warnings = Vec::new();
    match read_hlog(&hlog_path)? {
        Some(counts) => warnings.extend(compare_counts(&hlog_path, &summary, &counts)),
        None => warnings.push(Warning {
            message: format!("{} is missing", hlog_path.display()),
            hint: "the reports come from summary.json, which holds every histogram; only the \
                   per-second log for HdrHistogram tools is lost"
                .into(),
        }),
    }
    let mut written = write_reports(dir, &summary)?;
    if let Some((path, error)) = written.failed.drain(..).next() {
        return Err(ReportError::Write { path, error });
    }
    warnings.append(&mut written.warnings);
    written.warnings = warnings;
    Ok(written)
}

fn bad(path: &Path, detail: impl Into<String>) -> ReportError {
    ReportError::BadInput {
        path: path.to_owned(),
        detail: detail.into(),
    }
}

/// Read `summary.json`, saying precisely what is wrong with a bad one.
pub fn read_summary(path: &Path) -> Result<Summary, ReportError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(bad(
                path,
                "missing; a run writes it when it ends (a run still going, or killed outright, has none)",
            ))
        }
        Err(e) => return Err(bad(path, format!("cannot be read: {e}"))),
    };
    parse_summary(path, &bytes)
}

/// [`read_summary`] of bytes already read (`path` names them in errors).
pub fn parse_summary(path: &Path, bytes: &[u8]) -> Result<Summary, ReportError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(bad(path, "empty"));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        if e.is_eof() {
            bad(path, format!("cut short ({e}): the file is incomplete"))
        } else {
            bad(path, format!("not valid JSON: {e}"))
        }
    })?;
    let Some(object) = value.as_object() else {
        return Err(bad(path, "not a stampede summary (expected a JSON object)"));
    };
    match object.get("schema_version") {
        None => return Err(bad(path, "no `schema_version`: not a stampede summary")),
        Some(v) if v.as_u64() == Some(u64::from(json::SCHEMA_VERSION)) => {}
        Some(v) => {
            return Err(bad(
                path,
                format!(
                    "schema_version {v} is not supported (this stampede reads {})",
                    json::SCHEMA_VERSION
                ),
            ))
        }
    }
    // Parsed again, typed, so errors carry a line and column.
    serde_json::from_slice(bytes).map_err(|e| {
        bad(
            path,
            format!(
                "does not match summary schema {}: {e}",
                json::SCHEMA_VERSION
            ),
        )
    })
}

/// The checks a well-formed summary must also pass before anything is
/// rendered from it (see the module docs).
pub fn check_summary(path: &Path, summary: &Summary) -> Result<(), ReportError> {
    let layout = &summary.layout;
    for (index, entry) in summary.histograms.iter().enumerate() {
        let what = || {
            format!(
                "histograms[{index}] ({}, {})",
                entry.metric,
                entry.phase.as_deref().unwrap_or("all phases")
            )
        };
        if entry.id as usize >= layout.hists.len() {
            return Err(bad(
                path,
                format!("{}: id {} is not in layout.hists", what(), entry.id),
            ));
        }
        if let Some(phase) = &entry.phase {
            if layout.phase_index(phase).is_none() {
                return Err(bad(
                    path,
                    format!("{}: phase `{phase}` is not in layout.phases", what()),
                ));
            }
        }
        let h = json::decode_histogram(&entry.hdr)
            .map_err(|e| bad(path, format!("{}: `hdr`: {e:#}", what())))?;
        if h.len() != entry.count {
            return Err(bad(
                path,
                format!(
                    "{}: `hdr` holds {} samples but `count` says {}",
                    what(),
                    h.len(),
                    entry.count
                ),
            ));
        }
    }
    for (index, entry) in summary.counters.iter().enumerate() {
        if entry.id as usize >= layout.counters.len() {
            return Err(bad(
                path,
                format!(
                    "counters[{index}] ({}): id {} is not in layout.counters",
                    entry.metric, entry.id
                ),
            ));
        }
        if let Some(phase) = entry
            .phases
            .keys()
            .find(|p| layout.phase_index(p).is_none())
        {
            return Err(bad(
                path,
                format!(
                    "counters[{index}] ({}): phase `{phase}` is not in layout.phases",
                    entry.metric
                ),
            ));
        }
    }
    for (index, point) in summary.series.iter().enumerate() {
        let lengths = [
            ("hists", point.hists.len(), layout.hists.len()),
            ("counters", point.counters.len(), layout.counters.len()),
            ("gauges", point.gauges.len(), layout.gauges.len()),
        ];
        for (field, found, expected) in lengths {
            if found != expected {
                return Err(bad(
                    path,
                    format!(
                        "series[{index}].{field} has {found} entries, layout.{field} {expected}"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Decode every interval of an hlog: samples per tag, or None when the
/// file does not exist.
pub fn read_hlog(path: &Path) -> Result<Option<BTreeMap<String, u64>>, ReportError> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(bad(path, format!("cannot be read: {e}"))),
    };
    hlog_counts(path, &bytes).map(Some)
}

/// [`read_hlog`] of bytes already read (`path` names them in errors).
pub fn hlog_counts(path: &Path, bytes: &[u8]) -> Result<BTreeMap<String, u64>, ReportError> {
    if bytes.is_empty() {
        return Err(bad(
            path,
            "empty (a run writes the log's header before anything else)",
        ));
    }
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    for interval in HlogReader::new(bytes) {
        let interval = interval.map_err(|e| bad(path, format!("corrupt: {e}")))?;
        *counts.entry(interval.tag).or_default() += interval.histogram.len();
    }
    Ok(counts)
}

/// One warning when the hlog's sample counts per tag differ from the
/// summary's.
fn compare_counts(path: &Path, summary: &Summary, hlog: &BTreeMap<String, u64>) -> Option<Warning> {
    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for entry in summary.histograms.iter().filter(|h| h.phase.is_none()) {
        let tag = hlog_tag(&summary.layout.hists[entry.id as usize]);
        *expected.entry(tag).or_default() += entry.count;
    }
    let tags: std::collections::BTreeSet<&String> = expected.keys().chain(hlog.keys()).collect();
    let differences: Vec<String> = tags
        .into_iter()
        .filter_map(|tag| {
            let (log, json) = (
                hlog.get(tag).copied().unwrap_or(0),
                expected.get(tag).copied().unwrap_or(0),
            );
            (log != json).then(|| format!("`{tag}` {log} vs {json}"))
        })
        .collect();
    if differences.is_empty() {
        return None;
    }
    Some(Warning {
        message: format!(
            "{} disagrees with summary.json on the samples of {} series (log vs summary): {}",
            path.display(),
            differences.len(),
            differences.join(", ")
        ),
        hint: "the log may have stopped early (a write error during the run) or belong to another run; the reports use summary.json".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::junit;
    use crate::report::testing::{summary_with, SummaryOptions};
    use base64::Engine as _;

    fn result_dir() -> (tempfile::TempDir, Summary) {
        let dir = tempfile::tempdir().unwrap();
        let summary = summary_with(SummaryOptions::default());
        json::write(dir.path(), &summary).unwrap();
        (dir, summary)
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    fn message(e: ReportError) -> String {
        assert!(matches!(e, ReportError::BadInput { .. }), "{e:?}");
        let text = e.to_string();
        assert!(
            matches!(
                CommandError::from(e).exit_status(),
                crate::error::ExitStatus::BadInput
            ),
            "bad input is exit 2"
        );
        text
    }

    #[test]
    fn write_reports_writes_the_three_reports_and_appends_the_step_summary() {
        let (dir, summary) = result_dir();
        let step = dir.path().join("step-summary.md");
        std::fs::write(&step, "# earlier step\n").unwrap();
        let written = write_reports_to(dir.path(), &summary, Some(&step)).unwrap();
        assert_eq!(
            written.files,
            vec![
                dir.path().join("report.html"),
                dir.path().join("junit.xml"),
                dir.path().join("summary.md")
            ]
        );
        assert!(written.warnings.is_empty());
        assert_eq!(
            files(dir.path()),
            [
                "junit.xml",
                "report.html",
                "step-summary.md",
                "summary.json",
                "summary.md"
            ],
            "no temp file left"
        );
        let md = std::fs::read_to_string(dir.path().join("summary.md")).unwrap();
        assert_eq!(md, markdown::render(&summary));
        assert_eq!(
            std::fs::read_to_string(&step).unwrap(),
            format!("# earlier step\n\n{md}"),
            "appended, not replaced"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("junit.xml")).unwrap(),
            junit::render(&summary)
        );
        // An unwritable step summary is a warning; the reports are written.
        let nowhere = dir.path().join("no-such-dir").join("step.md");
        let written = write_reports_to(dir.path(), &summary, Some(&nowhere)).unwrap();
        assert_eq!(written.files.len(), 3);
        assert_eq!(written.step_summary, None);
        assert!(written.warnings[0].message.contains("GITHUB_STEP_SUMMARY"));
    }

    #[test]
    fn rebuild_without_hlog_warns_and_writes_everything() {
        let (dir, _) = result_dir();
        let written = rebuild(dir.path()).unwrap();
        assert_eq!(written.files.len(), 3);
        assert_eq!(written.warnings.len(), 1, "{:?}", written.warnings);
        assert!(written.warnings[0]
            .message
            .ends_with("metrics.hlog is missing"));
        assert!(dir.path().join("report.html").is_file());
    }

    #[test]
    fn bad_summaries_are_named_with_what_is_wrong_and_nothing_is_written() {
        let (dir, summary) = result_dir();
        let path = dir.path().join("summary.json");
        let good = std::fs::read_to_string(&path).unwrap();
        let cases: Vec<(String, &str)> = vec![
            (good[..good.len() / 2].to_string(), "cut short"),
            (String::new(), "empty"),
            ("{\"schema_version\": 1,, }".into(), "not valid JSON"),
            ("[1, 2]".into(), "expected a JSON object"),
            ("{\"meta\": {}}".into(), "no `schema_version`"),
            (
                good.replacen("\"schema_version\": 1", "\"schema_version\": 2", 1),
                "schema_version 2 is not supported",
            ),
            (
                good.replacen("\"host\"", "\"hostname\"", 1),
                "missing field `host`",
            ),
            (
                good.replacen(&summary.histograms[0].hdr, "bm90IGhkcg==", 1),
                "histograms[0] (http.latency, warm-up): `hdr`: histogram is not a valid HdrHistogram encoding",
            ),
        ];
        for (content, needle) in cases {
            std::fs::write(&path, &content).unwrap();
            let text = message(rebuild(dir.path()).unwrap_err());
            assert!(
                text.starts_with(&format!("{}: ", path.display())),
                "names the file: {text}"
            );
            assert!(text.contains(needle), "{needle:?} not in {text}");
            assert_eq!(
                files(dir.path()),
                ["summary.json"],
                "nothing written for {needle:?}"
            );
        }
        std::fs::remove_file(&path).unwrap();
        let text = message(rebuild(dir.path()).unwrap_err());
        assert!(text.contains("summary.json: missing"), "{text}");
        let text = message(rebuild(&dir.path().join("nope")).unwrap_err());
        assert!(text.ends_with("nope: no such result directory"), "{text}");
    }

    #[test]
    fn inconsistent_summaries_are_refused() {
        let (dir, summary) = result_dir();
        let path = dir.path().join("summary.json");
        let check = |summary: &Summary| message(check_summary(&path, summary).unwrap_err());
        let mut s = summary.clone();
        s.histograms[0].count += 1;
        assert!(check(&s).contains("`hdr` holds 200 samples but `count` says 201"));
        let mut s = summary.clone();
        s.histograms[1].phase = Some("cooldown".into());
        assert!(check(&s).contains("phase `cooldown` is not in layout.phases"));
        let mut s = summary.clone();
        s.counters[0].id = 99;
        assert!(check(&s).contains("id 99 is not in layout.counters"));
        let mut s = summary.clone();
        s.series[2].gauges.clear();
        assert!(check(&s).contains("series[2].gauges has 0 entries, layout.gauges 1"));
        assert!(check_summary(&path, &summary).is_ok());
    }

    /// An hlog of `summary`'s all-phases histograms, one interval each.
    fn hlog_of(summary: &Summary) -> String {
        let mut out = String::new();
        out.push_str("#[Histogram log format version 1.3]\n#[StartTime: 1700000000.000 (seconds since epoch)]\n#[BaseTime: 1700000000.000 (seconds since epoch)]\n\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n");
        for entry in summary.histograms.iter().filter(|h| h.phase.is_none()) {
            let tag = hlog_tag(&summary.layout.hists[entry.id as usize]);
            let h = json::decode_histogram(&entry.hdr).unwrap();
            let mut bytes = Vec::new();
            hdrhistogram::serialization::Serializer::serialize(
                &mut hdrhistogram::serialization::V2DeflateSerializer::new(),
                &h,
                &mut bytes,
            )
            .unwrap();
            out.push_str(&format!(
                "Tag={tag},0.000,4.000,{}.000,{}\n",
                h.max(),
                base64::engine::general_purpose::STANDARD.encode(bytes)
            ));
        }
        out
    }

    #[test]
    fn the_hlog_is_decoded_and_compared_with_the_summary() {
        let (dir, summary) = result_dir();
        let hlog = dir.path().join("metrics.hlog");
        let good = hlog_of(&summary);
        std::fs::write(&hlog, &good).unwrap();
        let counts = read_hlog(&hlog).unwrap().unwrap();
        assert_eq!(
            counts,
            BTreeMap::from([
                ("http.latency|shopper|browse".to_string(), 400),
                ("generator.lag||".to_string(), 4)
            ])
        );
        let written = rebuild(dir.path()).unwrap();
        assert!(written.warnings.is_empty(), "{:?}", written.warnings);

        // A log that stopped early: a warning, the reports still written.
        let without_lag = good.lines().take(5).collect::<Vec<_>>().join("\n") + "\n";
        std::fs::write(&hlog, without_lag).unwrap();
        let written = rebuild(dir.path()).unwrap();
        assert_eq!(written.warnings.len(), 1);
        assert!(
            written.warnings[0]
                .message
                .contains("`generator.lag||` 0 vs 4"),
            "{}",
            written.warnings[0]
        );
    }

    #[test]
    fn a_corrupt_hlog_is_named_with_its_line_and_nothing_is_written() {
        let (dir, summary) = result_dir();
        let hlog = dir.path().join("metrics.hlog");
        let good = hlog_of(&summary);
        let lines: Vec<&str> = good.lines().collect();
        let with_line = |n: usize, replacement: &str| {
            let mut l = lines.clone();
            l[n] = replacement;
            l.join("\n") + "\n"
        };
        let payload_start = lines[4].rfind(',').unwrap() + 1;
        let cases = vec![
            (
                with_line(4, "garbage"),
                "line 5 is not an interval log line",
            ),
            (
                with_line(4, &format!("{}!!!!", &lines[4][..payload_start])),
                "line 5: the histogram is not valid base64",
            ),
            (
                with_line(
                    5,
                    &format!(
                        "{}SGVsbG8gd29ybGQ=",
                        &lines[5][..lines[5].rfind(',').unwrap() + 1]
                    ),
                ),
                "line 6: the histogram is not a valid HdrHistogram encoding",
            ),
            // Cut in the middle of a line (no final line break).
            (
                good[..good.len() - 10].to_string(),
                "line 6 is not an interval log line",
            ),
            (String::new(), "empty"),
        ];
        for (content, needle) in cases {
            std::fs::write(&hlog, &content).unwrap();
            let text = message(rebuild(dir.path()).unwrap_err());
            assert!(
                text.starts_with(&format!("{}: corrupt", hlog.display()))
                    || text.starts_with(&format!("{}: empty", hlog.display())),
                "{text}"
            );
            assert!(text.contains(needle), "{needle:?} not in {text}");
            assert_eq!(files(dir.path()), ["metrics.hlog", "summary.json"]);
        }
    }
}
