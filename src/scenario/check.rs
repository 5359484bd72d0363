//! Extractors (values taken from a response for later steps) and checks
//! (assertions on a response; a failed check is an error of kind `check`).
//!
//! Scenario syntax (step keys):
//! `extract = { token = "$.token", sid = { header = "X-Session" }, csrf = { regex = "csrf=(\\w+)" } }`
//! (a plain string is a JSON path; a regex yields its first capture group,
//! or the whole match when it has none);
//! `check = { status = 200 | [200, 201], body_contains = "ok", json = { "$.ok" = true }, max_latency = "200ms" }`.
//!
//! CONTRACT (stub): helper implements the bodies; signatures are fixed.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::time::Duration;

/// How a value is extracted (deserialized from the scenario).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(untagged)]
pub enum ExtractSpec {
    JsonPath(String),
    Json { json: String },
    Header { header: String },
    Regex { regex: String },
}

/// Expected status: one code or a set.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(untagged)]
pub enum StatusSpec {
    One(u16),
    Many(Vec<u16>),
}

/// A step's checks (deserialized from the scenario; unknown keys refused).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    pub status: Option<StatusSpec>,
    pub body_contains: Option<String>,
    /// JSON path -> expected value.
    pub json: Option<BTreeMap<String, toml::Value>>,
    pub max_latency: Option<super::units::Dur>,
}

/// A response as extractors and checks see it. The body is parsed as JSON
/// at most once, on first use.
pub struct ResponseView<'a> {
    pub status: u16,
    pub headers: &'a http::HeaderMap,
    pub body: &'a [u8],
    json: OnceCell<Option<serde_json::Value>>,
}

impl<'a> ResponseView<'a> {
    pub fn new(status: u16, headers: &'a http::HeaderMap, body: &'a [u8]) -> Self {
        ResponseView { status, headers, body, json: OnceCell::new() }
    }
    /// The body as JSON, parsed once; `None` when it is not JSON.
    pub fn json(&self) -> Option<&serde_json::Value> {
        self.json.get_or_init(|| serde_json::from_slice(self.body).ok()).as_ref()
    }
}

/// A compiled extractor.
#[derive(Debug, Clone)]
pub struct Extractor {}

impl Extractor {
    /// Errors: an invalid JSON path, header name or regex (message says which).
    pub fn compile(spec: &ExtractSpec) -> Result<Extractor, String> {
        let _ = spec;
        todo!()
    }
    /// The extracted value as text (JSON strings unquoted, other JSON values
    /// serialized), or `None` when absent.
    pub fn extract(&self, response: &ResponseView<'_>) -> Option<String> {
        let _ = response;
        todo!()
    }
    /// Whether this extractor needs the body (a header extractor does not).
    pub fn needs_body(&self) -> bool {
        todo!()
    }
}

/// Compiled checks.
#[derive(Debug, Clone, Default)]
pub struct Check {}

impl Check {
    pub fn compile(spec: &CheckSpec) -> Result<Check, String> {
        let _ = spec;
        todo!()
    }
    /// Whether `status` is expected: the listed codes when `status` is set,
    /// otherwise any status below 400.
    pub fn status_allowed(&self, status: u16) -> bool {
        let _ = status;
        todo!()
    }
    /// Whether a status check was written (then an unexpected 2xx/3xx counts as `check`).
    pub fn has_status(&self) -> bool {
        todo!()
    }
    /// The non-status checks: body_contains, json equals, max_latency.
    /// `Err` says which check failed and what was seen (short).
    pub fn evaluate(&self, response: &ResponseView<'_>, latency: Duration) -> Result<(), String> {
        let _ = (response, latency);
        todo!()
    }
    /// Whether evaluating needs the body.
    pub fn needs_body(&self) -> bool {
        todo!()
    }
}
