//! Result files and console output.
//!
//! # Layout
//! - `json`: `summary.json`, the machine-readable result every other report
//!   is rendered from.
//! - `html`, `junit`, `markdown`: `report.html`, `junit.xml`, `summary.md`.
//! - `rebuild`: writes those three at the end of a run and for
//!   `stampede report DIR`, after checking `summary.json` and `metrics.hlog`.
//! - `console`: what the terminal shows.

pub mod capacity;
pub mod charts;
pub mod console;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod rebuild;
#[cfg(test)]
pub(crate) mod testing;
pub mod timeline;

use std::io::Write;
use std::path::Path;

/// Write `bytes` to `path` atomically: a temporary file in the same
/// directory, fsync, then rename over the target. On failure the target is
/// as it was and the temporary file is removed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let written = std::fs::File::create(&tmp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    let result = written.and_then(|()| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
