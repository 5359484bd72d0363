//! Extractors (values taken from a response for later steps) and checks
//! (assertions on a response; a failed check is an error of kind `check`).
//!
//! Scenario syntax (step keys):
//! `extract = { token = "$.token", sid = { header = "X-Session" }, csrf = { regex = "csrf=(\\w+)" } }`
//! (a plain string is a JSON path; a regex yields its first capture group,
//! or the whole match when it has none);
//! `check = { status = 200 | [200, 201], body_contains = "ok", json = { "$.ok" = true }, max_latency = "200ms" }`.

use regex::bytes::Regex;
use serde_json_path::JsonPath;
use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::time::Duration;

/// How a value is extracted (deserialized from the scenario).
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum ExtractSpec {
    JsonPath(String),
    Json { json: String },
    Header { header: String },
    Regex { regex: String },
}

/// Expected status: one code or a set.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(untagged)]
pub enum StatusSpec {
    One(u16),
    Many(Vec<u16>),
}

/// A step's checks (deserialized from the scenario; unknown keys refused).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// The expected status: one code or a list.
    pub status: Option<StatusSpec>,
    /// The body must contain this text.
    pub body_contains: Option<String>,
    /// JSON path -> expected value.
    #[schemars(with = "Option<BTreeMap<String, serde_json::Value>>")]
    pub json: Option<BTreeMap<String, toml::Value>>,
    /// The response must come within this long.
    pub max_latency: Option<crate::units::Dur>,
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
        ResponseView {
            status,
            headers,
            body,
            json: OnceCell::new(),
        }
    }
    /// The body as JSON, parsed once; `None` when it is not JSON.
    pub fn json(&self) -> Option<&serde_json::Value> {
        self.json
            .get_or_init(|| serde_json::from_slice(self.body).ok())
            .as_ref()
    }
}

/// A compiled extractor.
#[derive(Debug, Clone)]
pub struct Extractor {
    kind: ExtractKind,
}

#[derive(Debug, Clone)]
enum ExtractKind {
    Json(JsonPath),
    Header(http::HeaderName),
    /// Whether the regex has a capture group (then group 1 is the value).
    Regex(Regex, bool),
}

/// Parse a JSON path, with an error that names it.
fn compile_path(path: &str) -> Result<JsonPath, String> {
    if !path.trim_start().starts_with('$') {
        return Err(format!(
            "invalid JSON path `{path}`: a path starts with `$` (e.g. `$.{}`)",
            path.trim()
        ));
    }
    JsonPath::parse(path).map_err(|e| format!("invalid JSON path `{path}`: {e}"))
}

/// JSON strings unquoted, other values compact JSON.
fn json_text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Extractor {
    /// Errors: an invalid JSON path, header name or regex (message says which).
    pub fn compile(spec: &ExtractSpec) -> Result<Extractor, String> {
        let kind = match spec {
            ExtractSpec::JsonPath(path) | ExtractSpec::Json { json: path } => {
                ExtractKind::Json(compile_path(path)?)
            }
            ExtractSpec::Header { header } => ExtractKind::Header(
                http::HeaderName::from_bytes(header.as_bytes())
                    .map_err(|_| format!("invalid header name `{header}`"))?,
            ),
            ExtractSpec::Regex { regex } => {
                let re = Regex::new(regex).map_err(|e| format!("invalid regex `{regex}`: {e}"))?;
                let has_group = re.captures_len() > 1;
                ExtractKind::Regex(re, has_group)
            }
        };
        Ok(Extractor { kind })
    }

    /// The extracted value as text (JSON strings unquoted, other JSON values
    /// serialized), or `None` when absent. A JSON path takes its first match.
    pub fn extract(&self, response: &ResponseView<'_>) -> Option<String> {
        match &self.kind {
            ExtractKind::Json(path) => path.query(response.json()?).first().map(json_text),
            ExtractKind::Header(name) => {
                let value = response.headers.get(name)?;
                Some(String::from_utf8_lossy(value.as_bytes()).into_owned())
            }
            ExtractKind::Regex(re, has_group) => {
                let caps = re.captures(response.body)?;
                let m = if *has_group {
                    caps.get(1)?
                } else {
                    caps.get(0)?
                };
                Some(String::from_utf8_lossy(m.as_bytes()).into_owned())
            }
        }
    }

    /// Whether this extractor needs the body (a header extractor does not).
    pub fn needs_body(&self) -> bool {
        !matches!(self.kind, ExtractKind::Header(_))
    }
}

/// One `json = { path = expected }` entry.
#[derive(Debug, Clone)]
struct JsonCheck {
    source: String,
    path: JsonPath,
    expected: serde_json::Value,
}

/// Compiled checks.
#[derive(Debug, Clone, Default)]
pub struct Check {
    status: Option<Vec<u16>>,
    /// The needle and a literal matcher for it.
    body_contains: Option<(String, Regex)>,
    json: Vec<JsonCheck>,
    max_latency: Option<Duration>,
}

/// TOML → JSON (datetimes become strings; NaN/infinity are refused).
fn toml_to_json(value: &toml::Value) -> Result<serde_json::Value, String> {
    use serde_json::Value as J;
    Ok(match value {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(n) => J::from(*n),
        toml::Value::Float(f) => J::Number(
            serde_json::Number::from_f64(*f)
                .ok_or_else(|| format!("JSON cannot represent `{f}`"))?,
        ),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(dt) => J::String(dt.to_string()),
        toml::Value::Array(items) => {
            J::Array(items.iter().map(toml_to_json).collect::<Result<_, _>>()?)
        }
        toml::Value::Table(table) => J::Object(
            table
                .iter()
                .map(|(k, v)| Ok((k.clone(), toml_to_json(v)?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// Equality where numbers compare by value (`1` equals `1.0`).
fn json_eq(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => {
            if let (Some(x), Some(y)) = (x.as_i64(), y.as_i64()) {
                return x == y;
            }
            if let (Some(x), Some(y)) = (x.as_u64(), y.as_u64()) {
                return x == y;
            }
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                _ => false,
            }
        }
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// Compact JSON, cut short for messages.
fn short_json(value: &serde_json::Value) -> String {
    const MAX: usize = 60;
    let text = value.to_string();
    if text.chars().count() <= MAX {
        text
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}…")
    }
}

/// `312ms`; sub-millisecond precision only when needed to tell apart from `limit`.
fn fmt_latency(latency: Duration, limit: Duration) -> String {
    let ms = latency.as_millis();
    if latency.subsec_nanos().is_multiple_of(1_000_000) || ms > limit.as_millis() {
        format!("{ms}ms")
    } else {
        format!("{:.3}ms", latency.as_secs_f64() * 1000.0)
    }
}

fn fmt_limit(limit: Duration) -> String {
    if limit.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", limit.as_millis())
    } else {
        format!("{:.3}ms", limit.as_secs_f64() * 1000.0)
    }
}

impl Check {
    pub fn compile(spec: &CheckSpec) -> Result<Check, String> {
        let status = match &spec.status {
            None => None,
            Some(s) => {
                let codes = match s {
                    StatusSpec::One(code) => vec![*code],
                    StatusSpec::Many(codes) => codes.clone(),
                };
                if codes.is_empty() {
                    return Err("check `status`: the list of codes is empty".to_string());
                }
                if let Some(bad) = codes.iter().find(|c| !(100..=999).contains(*c)) {
                    return Err(format!(
                        "check `status`: {bad} is not an HTTP status code (100..=999)"
                    ));
                }
                Some(codes)
            }
        };
        let body_contains = spec
            .body_contains
            .as_ref()
            .map(|needle| {
                Regex::new(&regex::escape(needle))
                    .map(|re| (needle.clone(), re))
                    .map_err(|e| format!("check `body_contains`: {e}"))
            })
            .transpose()?;
        let mut json = Vec::new();
        for (source, expected) in spec.json.iter().flatten() {
            json.push(JsonCheck {
                path: compile_path(source).map_err(|e| format!("check `json`: {e}"))?,
                expected: toml_to_json(expected)
                    .map_err(|e| format!("check `json` `{source}`: {e}"))?,
                source: source.clone(),
            });
        }
        Ok(Check {
            status,
            body_contains,
            json,
            max_latency: spec.max_latency.map(|d| d.0),
        })
    }

    /// Whether `status` is expected: the listed codes when `status` is set,
    /// otherwise any status below 400.
    pub fn status_allowed(&self, status: u16) -> bool {
        match &self.status {
            Some(codes) => codes.contains(&status),
            None => status < 400,
        }
    }

    /// Whether a status check was written (then an unexpected 2xx/3xx counts as `check`).
    pub fn has_status(&self) -> bool {
        self.status.is_some()
    }

    /// The non-status checks: body_contains, json equals, max_latency.
    /// `Err` says which check failed and what was seen (short).
    pub fn evaluate(&self, response: &ResponseView<'_>, latency: Duration) -> Result<(), String> {
        if let Some((needle, re)) = &self.body_contains {
            if !re.is_match(response.body) {
                return Err(format!("body does not contain `{needle}`"));
            }
        }
        if let Some(first) = self.json.first() {
            let Some(body) = response.json() else {
                return Err(format!("body is not JSON (checking {})", first.source));
            };
            for check in &self.json {
                match check.path.query(body).first() {
                    None => return Err(format!("{} missing", check.source)),
                    Some(seen) if !json_eq(seen, &check.expected) => {
                        // The value seen may be a secret (a token): hidden
                        // by its path's name, or by the names inside it.
                        let seen = if crate::redact::secret_name(&check.source) {
                            crate::redact::MASK.to_string()
                        } else {
                            short_json(&crate::redact::json(seen))
                        };
                        return Err(format!(
                            "{} is {seen}, expected {}",
                            check.source,
                            short_json(&crate::redact::json(&check.expected))
                        ));
                    }
                    Some(_) => {}
                }
            }
        }
        if let Some(limit) = self.max_latency {
            if latency > limit {
                return Err(format!(
                    "latency {} > max_latency {}",
                    fmt_latency(latency, limit),
                    fmt_limit(limit)
                ));
            }
        }
        Ok(())
    }

    /// Whether evaluating needs the body.
    pub fn needs_body(&self) -> bool {
        self.body_contains.is_some() || !self.json.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::Dur;

    const BODY: &[u8] = br#"{"id": "c-42", "n": 7, "ok": true, "price": 2.0, "items": [{"sku": "A1"}, {"sku": "B2"}], "meta": {"a": [1, 2]}, "nil": null} csrf=tok123"#;
    const JSON_BODY: &[u8] = br#"{"id": "c-42", "n": 7, "ok": true, "price": 2.0, "items": [{"sku": "A1"}, {"sku": "B2"}], "meta": {"a": [1, 2]}, "nil": null}"#;

    fn headers() -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("x-session", http::HeaderValue::from_static("s-99"));
        h
    }

    fn extract(spec: ExtractSpec, body: &[u8]) -> Option<String> {
        let h = headers();
        let view = ResponseView::new(200, &h, body);
        Extractor::compile(&spec).unwrap().extract(&view)
    }

    fn path(p: &str) -> ExtractSpec {
        ExtractSpec::JsonPath(p.to_string())
    }

    #[test]
    fn json_extraction() {
        assert_eq!(extract(path("$.id"), JSON_BODY).as_deref(), Some("c-42"));
        assert_eq!(extract(path("$.n"), JSON_BODY).as_deref(), Some("7"));
        assert_eq!(extract(path("$.ok"), JSON_BODY).as_deref(), Some("true"));
        assert_eq!(extract(path("$.price"), JSON_BODY).as_deref(), Some("2.0"));
        assert_eq!(extract(path("$.nil"), JSON_BODY).as_deref(), Some("null"));
        assert_eq!(
            extract(path("$.meta"), JSON_BODY).as_deref(),
            Some(r#"{"a":[1,2]}"#)
        );
        assert_eq!(
            extract(path("$.items[*].sku"), JSON_BODY).as_deref(),
            Some("A1"),
            "first match"
        );
        assert_eq!(extract(path("$..sku"), JSON_BODY).as_deref(), Some("A1"));
        assert_eq!(extract(path("$.missing"), JSON_BODY), None);
        assert_eq!(extract(path("$.id"), b"not json"), None);
        let spec = ExtractSpec::Json {
            json: "$.items[1].sku".into(),
        };
        assert_eq!(extract(spec, JSON_BODY).as_deref(), Some("B2"));
    }

    #[test]
    fn header_extraction() {
        let spec = ExtractSpec::Header {
            header: "X-Session".into(),
        };
        assert_eq!(extract(spec.clone(), b"").as_deref(), Some("s-99"));
        assert!(!Extractor::compile(&spec).unwrap().needs_body());
        assert_eq!(
            extract(
                ExtractSpec::Header {
                    header: "x-other".into()
                },
                b""
            ),
            None
        );
    }

    #[test]
    fn regex_extraction() {
        let group = ExtractSpec::Regex {
            regex: r"csrf=(\w+)".into(),
        };
        assert_eq!(extract(group.clone(), BODY).as_deref(), Some("tok123"));
        assert!(Extractor::compile(&group).unwrap().needs_body());
        let whole = ExtractSpec::Regex {
            regex: r"c-\d+".into(),
        };
        assert_eq!(extract(whole, BODY).as_deref(), Some("c-42"));
        assert_eq!(
            extract(
                ExtractSpec::Regex {
                    regex: r"zzz(\d)".into()
                },
                BODY
            ),
            None
        );
        assert!(Extractor::compile(&path("$.id")).unwrap().needs_body());
    }

    #[test]
    fn extractor_errors_name_the_problem() {
        let err = Extractor::compile(&path("id")).unwrap_err();
        assert!(
            err.contains("invalid JSON path `id`") && err.contains("starts with `$`"),
            "{err}"
        );
        let err = Extractor::compile(&path("$.[")).unwrap_err();
        assert!(
            err.contains("invalid JSON path `$.[`") && err.contains("position"),
            "{err}"
        );
        let err = Extractor::compile(&ExtractSpec::Header {
            header: "bad header".into(),
        })
        .unwrap_err();
        assert!(err.contains("invalid header name `bad header`"), "{err}");
        let err = Extractor::compile(&ExtractSpec::Regex { regex: "(".into() }).unwrap_err();
        assert!(err.contains("invalid regex `(`"), "{err}");
    }

    #[test]
    fn extract_spec_deserializes_untagged() {
        #[derive(serde::Deserialize)]
        struct W {
            extract: BTreeMap<String, ExtractSpec>,
        }
        let w: W = toml::from_str(
            r#"extract = { token = "$.token", sid = { header = "X-Session" }, csrf = { regex = "csrf=(\\w+)" }, j = { json = "$.a" } }"#,
        )
        .unwrap();
        assert_eq!(w.extract["token"], ExtractSpec::JsonPath("$.token".into()));
        assert_eq!(
            w.extract["sid"],
            ExtractSpec::Header {
                header: "X-Session".into()
            }
        );
        assert_eq!(
            w.extract["csrf"],
            ExtractSpec::Regex {
                regex: r"csrf=(\w+)".into()
            }
        );
        assert_eq!(w.extract["j"], ExtractSpec::Json { json: "$.a".into() });
    }

    fn json_spec(pairs: &[(&str, toml::Value)]) -> CheckSpec {
        CheckSpec {
            json: Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.clone()))
                    .collect(),
            ),
            ..CheckSpec::default()
        }
    }

    fn eval(check: &Check, body: &[u8], latency_ms: u64) -> Result<(), String> {
        let h = headers();
        check.evaluate(
            &ResponseView::new(200, &h, body),
            Duration::from_millis(latency_ms),
        )
    }

    #[test]
    fn status_checks() {
        let none = Check::compile(&CheckSpec::default()).unwrap();
        assert!(!none.has_status());
        assert!(none.status_allowed(200) && none.status_allowed(302) && none.status_allowed(399));
        assert!(!none.status_allowed(400) && !none.status_allowed(503));
        assert!(!none.needs_body());
        assert_eq!(eval(&none, b"anything", 10_000), Ok(()));

        let one = Check::compile(&CheckSpec {
            status: Some(StatusSpec::One(201)),
            ..Default::default()
        })
        .unwrap();
        assert!(one.has_status());
        assert!(one.status_allowed(201) && !one.status_allowed(200));

        let many = Check::compile(&CheckSpec {
            status: Some(StatusSpec::Many(vec![200, 404])),
            ..Default::default()
        })
        .unwrap();
        assert!(many.status_allowed(404) && many.status_allowed(200) && !many.status_allowed(201));

        let err = Check::compile(&CheckSpec {
            status: Some(StatusSpec::Many(vec![])),
            ..Default::default()
        });
        assert!(err.unwrap_err().contains("empty"));
        let err = Check::compile(&CheckSpec {
            status: Some(StatusSpec::One(42)),
            ..Default::default()
        });
        assert!(err.unwrap_err().contains("42 is not an HTTP status code"));
    }

    #[test]
    fn body_contains() {
        let check = Check::compile(&CheckSpec {
            body_contains: Some("csrf=tok".into()),
            ..Default::default()
        })
        .unwrap();
        assert!(check.needs_body());
        assert_eq!(eval(&check, BODY, 1), Ok(()));
        let check = Check::compile(&CheckSpec {
            body_contains: Some("ok.".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(
            eval(&check, BODY, 1),
            Err("body does not contain `ok.`".to_string()),
            "literal, not a regex"
        );
    }

    #[test]
    fn a_failed_json_check_does_not_quote_a_secret() {
        let body = br#"{"token":"tok-a-1","user":{"name":"ann","password":"pw-1"}}"#;
        let check =
            Check::compile(&json_spec(&[("$.token", toml::Value::String("x".into()))])).unwrap();
        assert_eq!(
            eval(&check, body, 1),
            Err(r#"$.token is ***, expected "x""#.to_string())
        );
        let check =
            Check::compile(&json_spec(&[("$.user", toml::Value::String("x".into()))])).unwrap();
        assert_eq!(
            eval(&check, body, 1),
            Err(r#"$.user is {"name":"ann","password":"***"}, expected "x""#.to_string())
        );
    }

    #[test]
    fn json_equals() {
        let check = Check::compile(&json_spec(&[
            ("$.ok", toml::Value::Boolean(true)),
            ("$.n", toml::Value::Float(7.0)),
            ("$.price", toml::Value::Integer(2)),
            ("$.id", toml::Value::String("c-42".into())),
            (
                "$.meta",
                toml::from_str::<toml::Table>("a = [1, 2.0]")
                    .unwrap()
                    .into(),
            ),
        ]))
        .unwrap();
        assert!(check.needs_body());
        assert_eq!(eval(&check, JSON_BODY, 1), Ok(()));

        let check = Check::compile(&json_spec(&[("$.ok", toml::Value::Boolean(false))])).unwrap();
        assert_eq!(
            eval(&check, JSON_BODY, 1),
            Err("$.ok is true, expected false".to_string())
        );
        let check =
            Check::compile(&json_spec(&[("$.id", toml::Value::String("x".into()))])).unwrap();
        assert_eq!(
            eval(&check, JSON_BODY, 1),
            Err(r#"$.id is "c-42", expected "x""#.to_string())
        );
        let check = Check::compile(&json_spec(&[("$.n", toml::Value::Integer(8))])).unwrap();
        assert_eq!(
            eval(&check, JSON_BODY, 1),
            Err("$.n is 7, expected 8".to_string())
        );
        let check = Check::compile(&json_spec(&[("$.nope", toml::Value::Integer(1))])).unwrap();
        assert_eq!(
            eval(&check, JSON_BODY, 1),
            Err("$.nope missing".to_string())
        );
        let err = eval(&check, b"<html>", 1).unwrap_err();
        assert!(err.contains("not JSON"), "{err}");
    }

    #[test]
    fn json_check_errors() {
        let err = Check::compile(&json_spec(&[("ok", toml::Value::Boolean(true))])).unwrap_err();
        assert!(err.contains("invalid JSON path `ok`"), "{err}");
        let err = Check::compile(&json_spec(&[("$.x", toml::Value::Float(f64::NAN))])).unwrap_err();
        assert!(
            err.contains("$.x") && err.contains("cannot represent"),
            "{err}"
        );
    }

    #[test]
    fn max_latency() {
        let check = Check::compile(&CheckSpec {
            max_latency: Some(Dur(Duration::from_millis(200))),
            ..Default::default()
        })
        .unwrap();
        assert!(!check.needs_body());
        assert_eq!(eval(&check, b"", 200), Ok(()));
        assert_eq!(
            eval(&check, b"", 312),
            Err("latency 312ms > max_latency 200ms".to_string())
        );
        let h = headers();
        let view = ResponseView::new(200, &h, b"");
        let err = check
            .evaluate(&view, Duration::from_micros(200_400))
            .unwrap_err();
        assert_eq!(err, "latency 200.400ms > max_latency 200ms");
    }

    #[test]
    fn first_failure_reported_in_order() {
        let mut spec = json_spec(&[("$.ok", toml::Value::Boolean(false))]);
        spec.body_contains = Some("csrf".into());
        spec.max_latency = Some(Dur(Duration::from_millis(1)));
        let check = Check::compile(&spec).unwrap();
        assert_eq!(
            eval(&check, BODY, 5),
            Err("body is not JSON (checking $.ok)".to_string())
        );
        assert_eq!(
            eval(&check, JSON_BODY, 5),
            Err("body does not contain `csrf`".to_string())
        );
        spec.body_contains = None;
        let check = Check::compile(&spec).unwrap();
        assert_eq!(
            eval(&check, JSON_BODY, 5),
            Err("$.ok is true, expected false".to_string())
        );
        spec.json = None;
        let check = Check::compile(&spec).unwrap();
        assert_eq!(
            eval(&check, JSON_BODY, 5),
            Err("latency 5ms > max_latency 1ms".to_string())
        );
    }

    #[test]
    fn numeric_tolerance() {
        use serde_json::json;
        assert!(json_eq(&json!(1), &json!(1.0)));
        assert!(json_eq(&json!(0.1 + 0.2), &json!(0.3)));
        assert!(!json_eq(&json!(1), &json!(1.001)));
        assert!(json_eq(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!json_eq(&json!(-1), &json!(u64::MAX)));
        assert!(!json_eq(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(!json_eq(&json!("1"), &json!(1)));
    }
}
