//! summary.json (stub until the metrics branch merges).
use crate::metrics::Totals;
use crate::slo::{PhaseSpan, Verdict};
use std::path::{Path, PathBuf};

pub struct RunMeta {
    pub name: String,
    pub scenario_path: String,
    pub scenario_hash: String,
    pub stampede_version: String,
    pub started_at: String,
    pub ended_at: String,
    pub duration_s: f64,
    pub host: String,
    pub command_line: Vec<String>,
    pub seed: u64,
    pub interrupted: bool,
    pub exit_code: i32,
    pub notes: Vec<String>,
}
pub struct Summary;
pub fn build(meta: RunMeta, phases: &[PhaseSpan], totals: &Totals, verdicts: &[Verdict]) -> Summary {
    let _ = (meta, phases, totals, verdicts);
    todo!()
}
pub fn write(dir: &Path, summary: &Summary) -> std::io::Result<PathBuf> {
    let _ = (dir, summary);
    todo!()
}
