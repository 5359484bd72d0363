//! Where a run's results go and what they say about the run: the result
//! directory, the run's metadata (host, command line with secrets hidden),
//! and the phases as they happened.

use crate::plan::Plan;
use crate::slo::PhaseSpan;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A new result directory `<out>/<name>-<UTC time>` (suffixed if taken).
pub fn result_dir(
    out: &Path,
    name: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> std::io::Result<PathBuf> {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let stamp = at.format("%Y%m%dT%H%M%SZ");
    std::fs::create_dir_all(out)?;
    for n in 0..1000 {
        let dir = if n == 0 {
            out.join(format!("{safe}-{stamp}"))
        } else {
            out.join(format!("{safe}-{stamp}-{n}"))
        };
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::other("no free result directory name"))
}

/// The plan's phases as they happened: clipped to the measured length.
pub fn phase_spans(plan: &Plan, elapsed: Duration) -> Vec<PhaseSpan> {
    plan.phases
        .iter()
        .filter(|p| p.start < elapsed || p.start.is_zero())
        .map(|p| PhaseSpan {
            name: p.name.clone(),
            start: p.start,
            end: p.end().min(elapsed.max(p.start)),
        })
        .collect()
}

/// The machine's name, for run metadata.
pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

/// Hide secrets in a command line: values of `--set` keys that look like
/// secrets, and passwords in URLs.
pub fn redact(args: &[String]) -> Vec<String> {
    let url_password = regex::Regex::new(r"(://[^:/@\s]+):[^@/\s]+@").expect("valid regex");
    args.iter()
        .map(|a| {
            let a = url_password.replace_all(a, "$1:***@").to_string();
            match a.split_once('=') {
                Some((k, _)) if crate::redact::secret_name(k) => {
                    format!("{k}={}", crate::redact::MASK)
                }
                _ => a,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted() {
        let args: Vec<String> = [
            "run",
            "x.toml",
            "--set",
            "users.0.token=abc",
            "--api",
            "http://u:pw@host:1",
            "--set",
            "seed=3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let r = redact(&args);
        assert_eq!(r[3], "users.0.token=***");
        assert_eq!(r[5], "http://u:***@host:1");
        assert_eq!(r[7], "seed=3");
    }

    #[test]
    fn result_dirs_do_not_collide() {
        let tmp = tempfile::tempdir().unwrap();
        let at = chrono::Utc::now();
        let a = result_dir(tmp.path(), "black friday", at).unwrap();
        let b = result_dir(tmp.path(), "black friday", at).unwrap();
        assert_ne!(a, b);
        assert!(a
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("black-friday-"));
    }
}
