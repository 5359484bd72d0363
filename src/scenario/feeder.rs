//! CSV feeders: rows of test data (accounts, SKUs…) handed to journeys.
//! Modes: `sequential` (a shared cursor, wraps), `random` (seeded rng),
//! `unique` (each VU keeps its own row: VU n gets row n mod len, so VUs do
//! not share rows while there are at least as many rows as VUs).
//!
//! CONTRACT (stub): helper implements the bodies; signatures are fixed.

use rand::rngs::SmallRng;
use std::path::{Path, PathBuf};

/// How rows are handed out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FeedMode {
    #[default]
    Sequential,
    Random,
    Unique,
}

#[derive(Debug, thiserror::Error)]
pub enum FeederError {
    #[error("feeder `{name}`: cannot read {}: {source}", path.display())]
    Read { name: String, path: PathBuf, source: std::io::Error },
    #[error("feeder `{name}`: {} has no data rows", path.display())]
    Empty { name: String, path: PathBuf },
    #[error("feeder `{name}`: {}: {detail}", path.display())]
    Csv { name: String, path: PathBuf, detail: String },
}

/// A loaded CSV file (header row = column names). Shared by all VUs.
#[derive(Debug)]
pub struct Feeder {}

impl Feeder {
    pub fn load(name: &str, path: &Path, mode: FeedMode) -> Result<Feeder, FeederError> {
        let _ = (name, path, mode);
        todo!()
    }
    pub fn from_rows(name: &str, columns: Vec<String>, rows: Vec<Vec<String>>, mode: FeedMode) -> Feeder {
        let _ = (name, columns, rows, mode);
        todo!()
    }
    pub fn name(&self) -> &str {
        todo!()
    }
    pub fn columns(&self) -> &[String] {
        todo!()
    }
    pub fn column(&self, name: &str) -> Option<usize> {
        let _ = name;
        todo!()
    }
    pub fn len(&self) -> usize {
        todo!()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The row for this journey, by the feeder's mode.
    pub fn pick(&self, vu_id: u64, rng: &mut SmallRng) -> usize {
        let _ = (vu_id, rng);
        todo!()
    }
    pub fn get(&self, row: usize, col: usize) -> &str {
        let _ = (row, col);
        todo!()
    }
}
