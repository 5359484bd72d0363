//! The `summary.json` reader, as `stampede report` reads it (parse, schema,
//! consistency checks) and then as `merge` reads a segment's (the same,
//! then its segment and start time, then every histogram into totals).
#![no_main]

use libfuzzer_sys::fuzz_target;
use stampede::merge::read_segment_summary;
use stampede::report::rebuild::{check_summary, parse_summary};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("result/summary.json");
    let Ok(summary) = parse_summary(path, data) else {
        return;
    };
    if check_summary(path, &summary).is_err() {
        return;
    }
    let _ = summary.to_totals();
    if let Ok((summary, segment, _)) = read_segment_summary(path, data) {
        assert!(segment.index < segment.count);
        let _ = summary.to_totals();
    }
});
