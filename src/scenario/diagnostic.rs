//! Diagnostics for scenario files: every error names the file, line and
//! column, shows the offending line with a caret, and where a key or value
//! is unknown suggests the nearest valid one.

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

/// The largest char boundary of `s` that is <= `at` (clamped to `s.len()`).
fn floor_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
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
        let start = floor_boundary(src, span.start);
        let line_start = src[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = src[start..].find('\n').map_or(src.len(), |i| start + i);
        let line = src[..start].matches('\n').count() + 1;
        let column = src[line_start..start].chars().count() + 1;
        let source_line = src[line_start..line_end].trim_end_matches('\r');
        // Underline to the end of the span, but never past the line.
        let end = floor_boundary(src, span.end.max(start)).min(line_start + source_line.len());
        let width = src[start..end.max(start)].chars().count().max(1);
        Diagnostic {
            file: file.to_path_buf(),
            line,
            column,
            message: message.into(),
            help,
            source_line: source_line.to_string(),
            width,
        }
    }

    /// A diagnostic from a toml deserialization error: uses its span and
    /// message; for "unknown field `x`, expected one of `a`, `b`" (and unknown
    /// variants) adds `help: did you mean `a`?` when one candidate is close.
    pub fn from_toml(file: &Path, src: &str, err: &toml::de::Error) -> Diagnostic {
        let span = err.span().unwrap_or(0..0);
        let (message, help) = split_toml_message(err.message());
        Diagnostic::at_span(file, src, span, message, help)
    }
}

/// Turn a toml/serde error message into a one-line message and a help text.
fn split_toml_message(raw: &str) -> (String, Option<String>) {
    let raw = raw.trim();
    let (first, rest) = raw.split_once('\n').unwrap_or((raw, ""));
    let first = first.trim();
    // serde: "unknown field `x`, expected one of `a`, `b`" / "expected `a` or
    // `b`" / "expected `a`" / "there are no fields"; the same for variants.
    for kind in ["unknown field", "unknown variant"] {
        let Some(after) = first.strip_prefix(kind) else {
            continue;
        };
        let Some((unknown, tail)) = after.trim_start().split_once(", ") else {
            continue;
        };
        let Some(name) = backticked(unknown).into_iter().next() else {
            continue;
        };
        let message = format!("{kind} {unknown}");
        let candidates = backticked(tail);
        let help = if let Some(best) = suggest(name, &candidates) {
            Some(format!("did you mean `{best}`?"))
        } else if candidates.is_empty() {
            Some(tail.to_string())
        } else {
            let list: Vec<String> = candidates.iter().map(|c| format!("`{c}`")).collect();
            Some(format!("expected one of {}", list.join(", ")))
        };
        return (message, help);
    }
    // Parse errors put details on the following lines: what was expected
    // ("invalid table header\nexpected `.`, `]`") becomes the help, anything
    // else ("duplicate key `x` in document root") extends the message.
    let mut message = first.to_string();
    let mut expected = Vec::new();
    for line in rest.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("expected") {
            expected.push(line);
        } else {
            message.push_str(": ");
            message.push_str(line);
        }
    }
    let help = (!expected.is_empty()).then(|| expected.join("; "));
    (message, help)
}

/// The `backticked` names in `text`, in order.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

impl std::error::Error for Diagnostic {}

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
        let number = self.line.to_string();
        let pad = " ".repeat(number.len());
        writeln!(f, "error: {}", self.message)?;
        writeln!(
            f,
            "{pad}--> {}:{}:{}",
            self.file.display(),
            self.line,
            self.column
        )?;
        writeln!(f, "{pad} |")?;
        writeln!(f, "{number} | {}", self.source_line)?;
        // Keep tabs so that the caret lines up under the source.
        let indent: String = self
            .source_line
            .chars()
            .take(self.column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        write!(f, "{pad} | {indent}{}", "^".repeat(self.width.max(1)))?;
        if let Some(help) = &self.help {
            write!(f, "\n{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// The candidate closest to `unknown` (Jaro-Winkler or Levenshtein from
/// strsim), if it is close enough to be a plausible typo.
pub fn suggest<'a>(unknown: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = unknown.to_lowercase();
    let mut best: Option<(f64, &'a str)> = None;
    for &candidate in candidates {
        let cand_lower = candidate.to_lowercase();
        let score = if cand_lower == lower {
            2.0
        } else {
            strsim::jaro_winkler(&lower, &cand_lower)
                .max(strsim::normalized_damerau_levenshtein(&lower, &cand_lower))
        };
        if score >= 0.8 && best.is_none_or(|(b, _)| score > b) {
            best = Some((score, candidate));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path() -> &'static Path {
        Path::new("scenarios/x.toml")
    }

    #[test]
    fn at_span_computes_line_column_and_width() {
        let src = "name = \"a\"\nseed = 7\nthink = \"5\"\n";
        let start = src.find("\"5\"").unwrap();
        let d = Diagnostic::at_span(path(), src, start..start + 3, "bad", None);
        assert_eq!((d.line, d.column, d.width), (3, 9, 3));
        assert_eq!(d.source_line, "think = \"5\"");
        assert_eq!(d.message, "bad");
        assert_eq!(d.file, PathBuf::from("scenarios/x.toml"));
    }

    #[test]
    fn at_span_counts_columns_in_chars_and_clips_width() {
        let src = "a = \"héllo\" # ü\nb = 1\r\nc = [\n  1,\n]\n";
        let start = src.find('#').unwrap();
        let d = Diagnostic::at_span(path(), src, start..start + 4, "x", None);
        assert_eq!((d.line, d.column, d.width), (1, 13, 3));

        // A span running over several lines is clipped to the first one.
        let start = src.find('[').unwrap();
        let d = Diagnostic::at_span(path(), src, start..src.len(), "x", None);
        assert_eq!((d.line, d.column, d.width), (3, 5, 1));
        assert_eq!(d.source_line, "c = [");

        // CRLF: the \r is not part of the line.
        let start = src.find("b =").unwrap();
        let d = Diagnostic::at_span(path(), src, start..start + 10, "x", None);
        assert_eq!((d.line, d.column, d.width), (2, 1, 5));
        assert_eq!(d.source_line, "b = 1");

        // Empty span: width 1. Span past the end: last position.
        let d = Diagnostic::at_span(path(), src, 0..0, "x", None);
        assert_eq!((d.line, d.column, d.width), (1, 1, 1));
        let d = Diagnostic::at_span(path(), "a = 1", 99..120, "x", None);
        assert_eq!((d.line, d.column, d.width), (1, 6, 1));
        // A span in the middle of a multi-byte char snaps back to its start.
        let d = Diagnostic::at_span(path(), "é = 1", 1..3, "x", None);
        assert_eq!((d.line, d.column, d.width), (1, 1, 2));
    }

    #[test]
    fn display_renders_like_rustc() {
        let mut src = String::new();
        for i in 1..12 {
            src.push_str(&format!("k{i} = {i}\n"));
        }
        src.push_str("thinkk = \"1s\"\n");
        let start = src.find("thinkk").unwrap();
        let d = Diagnostic::at_span(
            path(),
            &src,
            start..start + 6,
            "unknown field `thinkk`",
            Some("did you mean `think`?".into()),
        );
        assert_eq!(
            d.to_string(),
            "error: unknown field `thinkk`\n  \
             --> scenarios/x.toml:12:1\n   \
             |\n\
             12 | thinkk = \"1s\"\n   \
             | ^^^^^^\n   \
             = help: did you mean `think`?"
        );

        let d = Diagnostic::at_span(path(), "a = 5\n", 4..5, "bad value", None);
        assert_eq!(
            d.to_string(),
            "error: bad value\n --> scenarios/x.toml:1:5\n  |\n1 | a = 5\n  |     ^"
        );

        let d = Diagnostic::at_span(path(), "\ta = x\n", 5..6, "bad", None);
        assert!(d.to_string().ends_with("1 | \ta = x\n  | \t    ^"), "{d}");
    }

    #[test]
    fn suggest_finds_close_names_only() {
        let names = ["name", "think", "steps", "weight"];
        assert_eq!(suggest("thinkk", &names), Some("think"));
        assert_eq!(suggest("thnik", &names), Some("think"));
        assert_eq!(suggest("wieght", &names), Some("weight"));
        assert_eq!(suggest("Steps", &names), Some("steps"));
        assert_eq!(suggest("step", &names), Some("steps"));
        assert_eq!(suggest("zzz", &names), None);
        assert_eq!(suggest("protocol", &names), None);
        assert_eq!(suggest("x", &[]), None);
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct User {
        name: String,
        think: Option<String>,
        weight: Option<u32>,
        how: Option<How>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(rename_all = "lowercase")]
    enum How {
        Reset,
        Close,
    }

    fn diag_for(src: &str) -> Diagnostic {
        let err = toml::from_str::<User>(src).unwrap_err();
        Diagnostic::from_toml(path(), src, &err)
    }

    #[test]
    fn from_toml_unknown_field_suggests() {
        let src = "name = \"shopper\"\nthinkk = \"1s\"\n";
        let d = diag_for(src);
        assert_eq!(d.message, "unknown field `thinkk`");
        assert_eq!(d.help.as_deref(), Some("did you mean `think`?"));
        assert_eq!((d.line, d.column, d.width), (2, 1, 6));
        assert!(d.to_string().contains("= help: did you mean `think`?"));
    }

    #[test]
    fn from_toml_unknown_field_without_close_match_lists_candidates() {
        let d = diag_for("name = \"shopper\"\nprotocol = 1\n");
        assert_eq!(d.message, "unknown field `protocol`");
        assert_eq!(
            d.help.as_deref(),
            Some("expected one of `name`, `think`, `weight`, `how`")
        );
        assert_eq!((d.line, d.column), (2, 1));
    }

    #[test]
    fn from_toml_unknown_variant_suggests() {
        let src = "name = \"a\"\nhow = \"rest\"\n";
        let d = diag_for(src);
        assert_eq!(d.message, "unknown variant `rest`");
        assert_eq!(d.help.as_deref(), Some("did you mean `reset`?"));
        assert_eq!((d.line, d.column), (2, 7));
    }

    #[test]
    fn from_toml_other_errors_keep_message_and_location() {
        let d = diag_for("name = \"a\"\nweight = \"heavy\"\n");
        assert!(d.message.contains("invalid type"), "{}", d.message);
        assert_eq!((d.line, d.column), (2, 10));
        assert_eq!(d.help, None);

        // A syntax error: first line is the message, the rest becomes help.
        let d = diag_for("name = \"a\"\n[oops\n");
        assert_eq!(d.line, 2);
        assert!(!d.message.contains('\n'), "{}", d.message);
    }

    #[test]
    fn message_splitting() {
        assert_eq!(
            split_toml_message("unknown field `nmae`, expected `name` or `think`"),
            (
                "unknown field `nmae`".to_string(),
                Some("did you mean `name`?".to_string())
            )
        );
        assert_eq!(
            split_toml_message("unknown field `x`, there are no fields"),
            (
                "unknown field `x`".to_string(),
                Some("there are no fields".to_string())
            )
        );
        assert_eq!(
            split_toml_message("unknown variant `x`, expected `name`"),
            (
                "unknown variant `x`".to_string(),
                Some("expected one of `name`".to_string())
            )
        );
        assert_eq!(
            split_toml_message("invalid table header\nexpected `.`, `]`\n"),
            (
                "invalid table header".to_string(),
                Some("expected `.`, `]`".to_string())
            )
        );
        assert_eq!(
            split_toml_message("invalid table header\nduplicate key `x` in document root"),
            (
                "invalid table header: duplicate key `x` in document root".to_string(),
                None
            )
        );
        assert_eq!(
            split_toml_message("missing field `name`"),
            ("missing field `name`".to_string(), None)
        );
    }

    #[test]
    fn from_toml_without_span_is_line_one() {
        let err = <toml::de::Error as serde::de::Error>::custom("something broke");
        assert_eq!(err.span(), None);
        let d = Diagnostic::from_toml(path(), "a = 1\nb = 2\n", &err);
        assert_eq!((d.line, d.column, d.width), (1, 1, 1));
        assert_eq!(d.message, "something broke");
        assert_eq!(d.source_line, "a = 1");
    }
}
