//! Scenario files: the TOML model, located diagnostics, `--set` overrides,
//! templates, feeders, extractors and checks. Values with units (durations,
//! rates, fractions) are read by [`crate::units`], a layer below.
//!
//! [`load`] is the one entry point: read the file, apply overrides, parse
//! (unknown keys and bad units are errors with file, line and column),
//! compile (templates, extractors, checks, SLOs, feeders) and return a
//! [`Scenario`] ready to plan and run.
//!
//! # Layout
//! - `model`: the file as written (serde); `hub` adds its hub half (model,
//!   runtime form and compiler).
//! - `overrides`: `--set key=value` applied to the TOML text.
//! - `compile`: model → runtime [`Scenario`], one module per section.
//! - `template`, `check`, `feeder`: what a step or message is made of.
//! - `diagnostic`: errors located in the file.
//! - `tolerances`: `[compare]`; `backoff`: agents' reconnect delays.
//! - `actions`: the phases' fault actions (model and runtime form).
//! - `schema`: the JSON Schema of the file, from the model (`stampede schema`).

pub mod actions;
pub mod backoff;
pub mod check;
pub mod compile;
pub mod diagnostic;
pub mod feeder;
pub mod hub;
pub mod model;
pub mod overrides;
pub mod schema;
pub mod template;
pub mod tolerances;

pub use compile::{
    ApiTarget, Body, GeneratorHealthMode, HubTarget, Origin, OriginRef, Phase, Population,
    Scenario, Step, UserLoad, Wait,
};
pub use diagnostic::Diagnostic;
pub use tolerances::{ToleranceError, Tolerances};

use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// Why a scenario could not be loaded. Every variant is bad input (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read scenario {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Override(#[from] overrides::OverrideError),
    #[error("{}", render(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render(list: &[Diagnostic]) -> String {
    let mut out = String::new();
    for (i, d) in list.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&d.to_string());
    }
    if list.len() > 1 {
        out.push_str(&format!("\n{} errors", list.len()));
    }
    out
}

/// What the command line changes in a scenario before it is compiled.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--api URL`: replaces `[target] api`.
    pub api: Option<String>,
    /// `--hub URL`: replaces `[target] hub`.
    pub hub: Option<String>,
    /// `--set key=value`, in order.
    pub sets: Vec<(String, String)>,
    /// `--insecure`: skip TLS verification.
    pub insecure: bool,
    /// `run --metrics-listen ADDR`: replaces `[metrics] listen` (applied
    /// after compiling, like `insecure`, so the segments of one run that
    /// serve on different ports keep one content hash).
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// `run --metrics-linger D`: replaces `[metrics] linger`.
    pub metrics_linger: Option<std::time::Duration>,
    /// `stampede run --allow-exec`: the scenario's `exec` actions may run
    /// (without it a scenario with one is refused before anything starts).
    pub allow_exec: bool,
}

/// Load, override, parse and compile a scenario file.
pub fn load(path: &Path, overrides: &Overrides) -> Result<Scenario, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    load_str(path, dir, &text, overrides)
}

/// As [`load`], from text already read (`file` names it in errors, `dir`
/// resolves feeder paths).
pub fn load_str(
    file: &Path,
    dir: &Path,
    text: &str,
    overrides: &Overrides,
) -> Result<Scenario, LoadError> {
    let mut sets = overrides.sets.clone();
    if let Some(api) = &overrides.api {
        sets.push(("target.api".into(), format!("{api:?}")));
    }
    if let Some(hub) = &overrides.hub {
        sets.push(("target.hub".into(), format!("{hub:?}")));
    }
    let resolved = if sets.is_empty() {
        text.to_string()
    } else {
        overrides::apply(text, &sets)?
    };
    let parsed: model::ScenarioFile = toml::from_str(&resolved)
        .map_err(|e| LoadError::Invalid(vec![Diagnostic::from_toml(file, &resolved, &e)]))?;
    let hash = hex::encode(Sha256::digest(resolved.as_bytes()));
    let mut diags = compile::Diags {
        file,
        src: &resolved,
        list: Vec::new(),
    };
    let compiled = compile::compile(parsed, dir, hash, &mut diags);
    match compiled {
        Some(mut scenario) if diags.list.is_empty() => {
            if overrides.insecure {
                scenario.http.insecure = true;
            }
            if let Some(listen) = overrides.metrics_listen {
                scenario.metrics.listen = Some(listen);
            }
            if let Some(linger) = overrides.metrics_linger {
                scenario.metrics.linger = linger;
            }
            Ok(scenario)
        }
        _ => Err(LoadError::Invalid(diags.list)),
    }
}
