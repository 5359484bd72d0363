//! Templates (`{{ … }}`) compiled once when the scenario loads; the hot path
//! only fills slots into a reused `String`.
//!
//! Expressions: `vu.id`, `agent.id` (same number as `vu.id` for agents),
//! `iteration`, `env.NAME` (resolved at compile time; unset is an error),
//! `feed.COLUMN` or `feed.FEEDER.COLUMN` (CSV feeders), bare names of values
//! extracted by earlier steps, and functions `rand(a, b)` (integer, inclusive),
//! `uuid()` (v4 from the seeded rng), `now_ms()` (wall clock ms; also `now_ms`
//! without parentheses), `pick("a", "b", …)` (one of the literals).
//!
//! CONTRACT (stub): helper implements the bodies; signatures are fixed.

use super::feeder::Feeder;
use rand::rngs::SmallRng;

/// What names a template may use, known at compile time.
pub struct Symbols<'a> {
    /// Names of values extracted by earlier steps; a name's slot is its index.
    pub vars: &'a [String],
    /// The scenario's feeders, for `feed.…`.
    pub feeders: &'a [Feeder],
}

/// Values available while rendering.
pub struct RenderCtx<'a> {
    pub vu_id: u64,
    pub iteration: u64,
    /// Seeded per arrival, so every random choice is reproducible.
    pub rng: &'a mut SmallRng,
    /// Extracted values by slot; `None` (not extracted yet / failed) renders as "".
    pub vars: &'a [Option<String>],
    pub feeders: &'a [Feeder],
    /// The current row of each feeder (index = feeder index).
    pub rows: &'a [usize],
}

/// A template that cannot be compiled.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TemplateError {
    #[error("template syntax: {detail}")]
    Syntax { detail: String },
    #[error("unknown variable `{name}`{}", suggestion.as_ref().map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default())]
    UnknownVariable { name: String, suggestion: Option<String> },
    #[error("unknown function `{name}`")]
    UnknownFunction { name: String },
    #[error("environment variable `{name}` is not set")]
    Env { name: String },
    #[error("bad arguments to `{function}`: {detail}")]
    Arguments { function: String, detail: String },
}

/// A compiled string template.
#[derive(Debug, Clone)]
pub struct Template {}

impl Template {
    pub fn compile(src: &str, symbols: &Symbols<'_>) -> Result<Template, TemplateError> {
        let _ = (src, symbols);
        todo!()
    }
    /// Append the rendered text to `out`.
    pub fn render(&self, ctx: &mut RenderCtx<'_>, out: &mut String) {
        let _ = (ctx, out);
        todo!()
    }
    /// The text, when the template has no holes (lets callers pre-build).
    pub fn as_static(&self) -> Option<&str> {
        todo!()
    }
    /// Indices of the feeders this template reads (so only those pick rows).
    pub fn feeders_used(&self) -> Vec<usize> {
        todo!()
    }
}

/// A compiled JSON body template built from a TOML value (table, array,
/// scalar). Strings are templates rendered with JSON escaping; a string that
/// is exactly one `{{ expr }}` whose value is numeric (`rand`, `now_ms`,
/// `vu.id`, `agent.id`, `iteration`) renders as a JSON number.
#[derive(Debug, Clone)]
pub struct JsonTemplate {}

impl JsonTemplate {
    pub fn compile(value: &toml::Value, symbols: &Symbols<'_>) -> Result<JsonTemplate, TemplateError> {
        let _ = (value, symbols);
        todo!()
    }
    /// Append valid JSON text to `out`.
    pub fn render(&self, ctx: &mut RenderCtx<'_>, out: &mut String) {
        let _ = (ctx, out);
        todo!()
    }
    pub fn feeders_used(&self) -> Vec<usize> {
        todo!()
    }
}
