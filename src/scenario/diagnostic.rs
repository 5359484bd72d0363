//! Diagnostics for scenario files: every error names the file, line and
//! column, shows the offending line with a caret, and where a key or value
//! is unknown suggests the nearest valid one.
//!
//! CONTRACT (stub): helper implements the bodies; signatures are fixed.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// One located error in a scenario file.
#[derive(Debug, Clone)]
pub struct Diagnostic {
    /// The scenario file as the user named it.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What is wrong, one sentence.
    pub message: String,
    /// A hint, e.g. "did you mean `think`?".
    pub help: Option<String>,
    /// The source line, for display.
    pub source_line: String,
    /// Length of the underlined region on that line (>= 1).
    pub width: usize,
}

impl Diagnostic {
    /// A diagnostic at a byte span of `src`.
    pub fn at_span(
        file: &Path,
        src: &str,
        span: Range<usize>,
        message: impl Into<String>,
        help: Option<String>,
    ) -> Diagnostic {
        let _ = (file, src, span, message.into(), help);
        todo!()
    }

    /// A diagnostic from a toml deserialization error: uses its span and
    /// message; for "unknown field `x`, expected one of `a`, `b`" (and unknown
    /// variants) adds `help: did you mean `a`?` when one candidate is close.
    pub fn from_toml(file: &Path, src: &str, err: &toml::de::Error) -> Diagnostic {
        let _ = (file, src, err);
        todo!()
    }
}

impl fmt::Display for Diagnostic {
    /// Renders like rustc:
    /// ```text
    /// error: unknown field `thinkk`
    ///   --> scenarios/x.toml:12:1
    ///    |
    /// 12 | thinkk = "1s"
    ///    | ^^^^^^
    ///    = help: did you mean `think`?
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!()
    }
}

/// The candidate closest to `unknown` (Jaro-Winkler or Levenshtein from
/// strsim), if it is close enough to be a plausible typo.
pub fn suggest<'a>(unknown: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let _ = (unknown, candidates);
    todo!()
}
