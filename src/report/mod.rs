//! Result files and console output: everything a run (or `stampede report
//! DIR`, `stampede compare`, `stampede capacity`) tells a person or a tool.
//!
//! Every report of a run is rendered from one [`json::Summary`], so they
//! all say the same thing: the files through an [`Exporter`] each, the
//! console's final tables through [`console::final_report`]. Values are
//! formatted by [`crate::units::format`] everywhere (a layer below, so the
//! SLO verdicts' measured values read the same).
//!
//! # Layout
//! - [`json`]: `summary.json`, the machine-readable result every other
//!   report is rendered from (its schema is documented there).
//! - [`html`], [`junit`], [`markdown`]: `report.html`, `junit.xml`,
//!   `summary.md`, each documented next to its writer. `report.html`'s
//!   charts are drawn by [`charts`] from the per-second [`timeline`].
//! - [`rebuild`]: writes the [`REPORTS`] at the end of a run and for
//!   `stampede report DIR`, after checking `summary.json` and `metrics.hlog`.
//! - [`capacity`]: the capacity estimate of a run (in `report.html`) and
//!   the capacity search's result and its `capacity.md` / `capacity.html`
//!   (on `report.html`'s page, [`html::page`]).
//! - [`compare`]: the result of comparing two runs, as Markdown and plain
//!   text.
//! - [`generator`]: the generator's health: run-queue delay, CPU against
//!   its allowance, scheduling lag, the in-flight ceiling; each cause with
//!   its figure, threshold and fix.
//! - [`console`]: what the terminal shows.
//! - [`prometheus`]: the live metrics of a run in the OpenMetrics text
//!   format, for `run --metrics-listen`.
//! - [`events`]: disruptions and fault actions as rows and chart marks,
//!   alike in every report.

pub mod capacity;
pub mod charts;
pub mod compare;
pub mod console;
pub mod events;
pub mod generator;
pub mod html;
pub mod json;
pub mod junit;
pub mod markdown;
pub mod prometheus;
pub mod rebuild;
#[cfg(test)]
pub(crate) mod testing;
pub mod timeline;

use json::Summary;
use std::io::Write;
use std::path::Path;

/// One result file rendered from a run's [`Summary`] (the shape of
/// hyperfine's `Exporter`): its name in the result directory and its
/// content. Rendering is pure; [`rebuild::write_reports`] renders every
/// report before it writes any, and writes each with [`write_atomic`].
pub trait Exporter: Sync {
    /// File name inside a result directory: `report.html`.
    fn file_name(&self) -> &'static str;
    /// The whole file.
    fn render(&self, summary: &Summary) -> anyhow::Result<String>;
}

/// `summary.json` (written first, on its own, at the end of a run; the
/// source the [`REPORTS`] are rebuilt from).
pub const SUMMARY: &dyn Exporter = &json::Json;

/// The reports rendered from `summary.json`, in the order they are written:
/// `report.html`, `junit.xml`, `summary.md`.
pub const REPORTS: [&dyn Exporter; 3] = [&html::Html, &junit::Junit, &markdown::Markdown];

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
