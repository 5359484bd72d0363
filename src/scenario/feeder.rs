//! CSV feeders: rows of test data (accounts, SKUs…) handed to journeys.
//! Modes: `sequential` (a shared cursor, wraps), `random` (seeded rng),
//! `unique` (each VU keeps its own row: VU n gets row n mod len, so VUs do
//! not share rows while there are at least as many rows as VUs).
//!
//! Cells are stored in one string buffer with an end offset per cell
//! (row-major), so a feeder of a million rows costs two allocations.

use rand::rngs::SmallRng;
use rand::Rng;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// How rows are handed out.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Deserialize,
    serde::Serialize,
    schemars::JsonSchema,
)]
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
    Read {
        name: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("feeder `{name}`: {} has no data rows", path.display())]
    Empty { name: String, path: PathBuf },
    #[error("feeder `{name}`: {}: {detail}", path.display())]
    Csv {
        name: String,
        path: PathBuf,
        detail: String,
    },
}

/// A loaded CSV file (header row = column names). Shared by all VUs.
#[derive(Debug)]
pub struct Feeder {
    name: String,
    mode: FeedMode,
    columns: Vec<String>,
    /// All cells, concatenated row-major.
    text: String,
    /// End offset in `text` of each cell (row-major, `rows * columns.len()` entries).
    ends: Vec<usize>,
    rows: usize,
    /// Next row for `sequential`.
    cursor: AtomicUsize,
}

impl Feeder {
    pub fn load(name: &str, path: &Path, mode: FeedMode) -> Result<Feeder, FeederError> {
        let read_err = |source: std::io::Error| FeederError::Read {
            name: name.to_string(),
            path: path.to_path_buf(),
            source,
        };
        let csv_err = |detail: String| FeederError::Csv {
            name: name.to_string(),
            path: path.to_path_buf(),
            detail,
        };
        // Map a csv error: I/O problems are `Read`, the rest `Csv`.
        let map_csv = |e: csv::Error| -> FeederError {
            let at = |pos: Option<&csv::Position>| {
                pos.map(|p| format!("line {}: ", p.line()))
                    .unwrap_or_default()
            };
            let detail = match e.kind() {
                csv::ErrorKind::Io(_) => match e.into_kind() {
                    csv::ErrorKind::Io(source) => return read_err(source),
                    _ => unreachable!(),
                },
                csv::ErrorKind::UnequalLengths {
                    expected_len,
                    len,
                    pos,
                } => {
                    format!(
                        "{}expected {expected_len} fields (as in the header), found {len}",
                        at(pos.as_ref())
                    )
                }
                csv::ErrorKind::Utf8 { pos, err } => {
                    format!(
                        "{}invalid UTF-8 in field {}",
                        at(pos.as_ref()),
                        err.field() + 1
                    )
                }
                _ => e.to_string(),
            };
            csv_err(detail)
        };

        let file = std::fs::File::open(path).map_err(read_err)?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .trim(csv::Trim::Headers)
            .from_reader(std::io::BufReader::new(file));

        let header = reader.headers().map_err(map_csv)?.clone();
        let columns: Vec<String> = header.iter().map(str::to_string).collect();
        if columns.is_empty() || (columns.len() == 1 && columns[0].is_empty()) {
            return Err(FeederError::Empty {
                name: name.to_string(),
                path: path.to_path_buf(),
            });
        }
        for (i, c) in columns.iter().enumerate() {
            if c.is_empty() {
                return Err(csv_err(format!("header column {} has no name", i + 1)));
            }
            if columns[..i].contains(c) {
                return Err(csv_err(format!("duplicate column `{c}` in the header")));
            }
        }

        let mut text = String::new();
        let mut ends = Vec::new();
        let mut rows = 0usize;
        let mut record = csv::StringRecord::new();
        while reader.read_record(&mut record).map_err(map_csv)? {
            for field in record.iter() {
                text.push_str(field);
                ends.push(text.len());
            }
            rows += 1;
        }
        if rows == 0 {
            return Err(FeederError::Empty {
                name: name.to_string(),
                path: path.to_path_buf(),
            });
        }
        text.shrink_to_fit();
        ends.shrink_to_fit();
        Ok(Feeder {
            name: name.to_string(),
            mode,
            columns,
            text,
            ends,
            rows,
            cursor: AtomicUsize::new(0),
        })
    }

    /// An in-memory feeder. Rows shorter than `columns` are padded with empty
    /// cells; extra cells are dropped.
    pub fn from_rows(
        name: &str,
        columns: Vec<String>,
        rows: Vec<Vec<String>>,
        mode: FeedMode,
    ) -> Feeder {
        let mut text = String::new();
        let mut ends = Vec::with_capacity(rows.len() * columns.len());
        for row in &rows {
            for col in 0..columns.len() {
                if let Some(cell) = row.get(col) {
                    text.push_str(cell);
                }
                ends.push(text.len());
            }
        }
        Feeder {
            name: name.to_string(),
            mode,
            columns,
            text,
            ends,
            rows: rows.len(),
            cursor: AtomicUsize::new(0),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn mode(&self) -> FeedMode {
        self.mode
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The row for this journey, by the feeder's mode. An empty feeder
    /// always answers 0 (and has no cells to `get`).
    pub fn pick(&self, vu_id: u64, rng: &mut SmallRng) -> usize {
        let len = self.rows;
        if len == 0 {
            return 0;
        }
        match self.mode {
            FeedMode::Sequential => self.cursor.fetch_add(1, Ordering::Relaxed) % len,
            FeedMode::Random => rng.gen_range(0..len),
            FeedMode::Unique => (vu_id % len as u64) as usize,
        }
    }

    /// The cell at `row`, `col`. Panics when either is out of range.
    pub fn get(&self, row: usize, col: usize) -> &str {
        let ncols = self.columns.len();
        assert!(
            row < self.rows && col < ncols,
            "feeder `{}`: no cell ({row}, {col})",
            self.name
        );
        let idx = row * ncols + col;
        let start = if idx == 0 { 0 } else { self.ends[idx - 1] };
        &self.text[start..self.ends[idx]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn cols(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn rows(n: usize) -> Vec<Vec<String>> {
        (0..n)
            .map(|i| vec![format!("sku-{i}"), format!("{}", i * 10)])
            .collect()
    }

    fn write(dir: &tempfile::TempDir, file: &str, text: &[u8]) -> PathBuf {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn load_reads_header_and_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "skus.csv",
            b"sku, price\nA1,10\n\"B,2\",\"20\"\n\nC3,\n",
        );
        let f = Feeder::load("skus", &path, FeedMode::Sequential).unwrap();
        assert_eq!(f.name(), "skus");
        assert_eq!(f.columns(), &["sku".to_string(), "price".to_string()]);
        assert_eq!(f.column("price"), Some(1));
        assert_eq!(f.column("nope"), None);
        assert_eq!(f.len(), 3);
        assert!(!f.is_empty());
        assert_eq!(f.get(0, 0), "A1");
        assert_eq!(f.get(0, 1), "10");
        assert_eq!(f.get(1, 0), "B,2");
        assert_eq!(f.get(1, 1), "20");
        assert_eq!(f.get(2, 0), "C3");
        assert_eq!(f.get(2, 1), "");
        assert_eq!(f.mode(), FeedMode::Sequential);
    }

    #[test]
    fn missing_file_is_read_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nope.csv");
        let err = Feeder::load("x", &path, FeedMode::Random).unwrap_err();
        assert!(
            matches!(&err, FeederError::Read { name, .. } if name == "x"),
            "{err:?}"
        );
        assert!(err.to_string().contains("cannot read"), "{err}");
        assert!(err.to_string().contains("nope.csv"), "{err}");
    }

    #[test]
    fn header_only_or_empty_is_empty_error() {
        let dir = tempfile::tempdir().unwrap();
        for (file, text) in [("h.csv", &b"a,b\n"[..]), ("e.csv", &b""[..])] {
            let path = write(&dir, file, text);
            let err = Feeder::load("x", &path, FeedMode::Sequential).unwrap_err();
            assert!(matches!(err, FeederError::Empty { .. }), "{file}: {err:?}");
            assert!(err.to_string().contains("no data rows"), "{err}");
        }
    }

    #[test]
    fn ragged_row_is_csv_error_with_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "r.csv", b"a,b\n1,2\n3\n");
        let err = Feeder::load("x", &path, FeedMode::Sequential).unwrap_err();
        match &err {
            FeederError::Csv { detail, .. } => {
                assert!(detail.contains("line 3"), "{detail}");
                assert!(detail.contains("expected 2 fields"), "{detail}");
                assert!(detail.contains("found 1"), "{detail}");
            }
            other => panic!("expected Csv, got {other:?}"),
        }
    }

    #[test]
    fn bad_utf8_and_duplicate_header_are_csv_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "u.csv", b"a,b\n1,\xff\xfe\n");
        let err = Feeder::load("x", &path, FeedMode::Sequential).unwrap_err();
        assert!(
            matches!(&err, FeederError::Csv { detail, .. } if detail.contains("UTF-8")),
            "{err:?}"
        );

        let path = write(&dir, "d.csv", b"a,a\n1,2\n");
        let err = Feeder::load("x", &path, FeedMode::Sequential).unwrap_err();
        assert!(
            matches!(&err, FeederError::Csv { detail, .. } if detail.contains("duplicate column `a`")),
            "{err:?}"
        );
    }

    #[test]
    fn sequential_wraps_and_is_shared() {
        let f = Feeder::from_rows("s", cols(&["sku", "price"]), rows(3), FeedMode::Sequential);
        let mut rng = SmallRng::seed_from_u64(1);
        let picks: Vec<usize> = (0..7).map(|vu| f.pick(vu, &mut rng)).collect();
        assert_eq!(picks, vec![0, 1, 2, 0, 1, 2, 0]);
    }

    #[test]
    fn unique_is_per_vu() {
        let f = Feeder::from_rows("s", cols(&["sku", "price"]), rows(4), FeedMode::Unique);
        let mut rng = SmallRng::seed_from_u64(1);
        assert_eq!(f.pick(0, &mut rng), 0);
        assert_eq!(f.pick(3, &mut rng), 3);
        assert_eq!(f.pick(3, &mut rng), 3, "same VU keeps its row");
        assert_eq!(f.pick(5, &mut rng), 1);
        let distinct: std::collections::HashSet<usize> =
            (0..4).map(|vu| f.pick(vu, &mut rng)).collect();
        assert_eq!(distinct.len(), 4, "VUs do not share rows while rows >= VUs");
    }

    #[test]
    fn random_is_deterministic_for_a_seed() {
        let f = Feeder::from_rows("s", cols(&["sku", "price"]), rows(50), FeedMode::Random);
        let run = |seed| {
            let mut rng = SmallRng::seed_from_u64(seed);
            (0..100).map(|vu| f.pick(vu, &mut rng)).collect::<Vec<_>>()
        };
        let a = run(7);
        assert_eq!(a, run(7));
        assert_ne!(a, run(8));
        assert!(a.iter().all(|&r| r < 50));
        let distinct: std::collections::HashSet<_> = a.iter().collect();
        assert!(distinct.len() > 10, "random picks spread over rows");
    }

    #[test]
    fn from_rows_pads_and_truncates() {
        let rows = vec![
            vec!["a".to_string()],
            vec!["b".into(), "c".into(), "extra".into()],
        ];
        let f = Feeder::from_rows("s", cols(&["x", "y"]), rows, FeedMode::Sequential);
        assert_eq!(f.len(), 2);
        assert_eq!((f.get(0, 0), f.get(0, 1)), ("a", ""));
        assert_eq!((f.get(1, 0), f.get(1, 1)), ("b", "c"));
    }

    #[test]
    fn empty_from_rows_picks_zero() {
        let f = Feeder::from_rows("s", cols(&["x"]), vec![], FeedMode::Sequential);
        assert!(f.is_empty());
        assert_eq!(f.pick(3, &mut SmallRng::seed_from_u64(0)), 0);
    }

    #[test]
    fn feed_mode_deserializes_lowercase() {
        #[derive(serde::Deserialize)]
        struct W {
            mode: FeedMode,
        }
        let w: W = toml::from_str("mode = \"unique\"").unwrap();
        assert_eq!(w.mode, FeedMode::Unique);
        assert!(toml::from_str::<W>("mode = \"Unique\"").is_err());
    }
}
