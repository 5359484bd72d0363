//! The `metrics.hlog` reader, as `stampede report` reads it (every
//! interval decoded, samples counted per tag) and as `merge` reads a
//! segment's (its intervals placed on the merged timeline beside the
//! segment's summary, added up and written out again). The summary is
//! the one of a real two-second run (fuzz/seeds/segment-summary.json).
//!
//! Merge reads a log with the same `HlogReader` as report, interval by
//! interval, and stops at the first bad one; what it does with a log is in
//! what it does with the intervals before that. So merge is run on the logs
//! report reads whole (and on the short ones): a corrupt log costs only
//! report's reading, which keeps this target fast enough for its ten
//! million executions (merge builds and writes full-size histograms).
#![no_main]

use chrono::{DateTime, Utc};
use libfuzzer_sys::fuzz_target;
use stampede::merge::{merge_segment_hlog, read_segment_summary};
use stampede::plan::Segment;
use stampede::report::json::Summary;
use stampede::report::rebuild::hlog_counts;
use std::path::Path;
use std::sync::OnceLock;

fn segment() -> &'static (Summary, Segment, DateTime<Utc>) {
    static SEGMENT: OnceLock<(Summary, Segment, DateTime<Utc>)> = OnceLock::new();
    SEGMENT.get_or_init(|| {
        let bytes = include_bytes!("../seeds/segment-summary.json");
        read_segment_summary(Path::new("segment-summary.json"), bytes)
            .expect("the seed summary reads")
    })
}

fuzz_target!(|data: &[u8]| {
    let report = hlog_counts(Path::new("result/metrics.hlog"), data);
    if report.is_err() && data.len() > 256 {
        return;
    }
    let (summary, segment, started_at) = segment();
    let _ = merge_segment_hlog(summary.clone(), *segment, *started_at, data.to_vec());
});
