//! Secrets out of results: one place that decides what is a secret and
//! writes `***` instead.
//!
//! Two kinds of secret are known:
//! - **by name**: a header, JSON field, `--set` key or `key=value` pair whose
//!   name looks like a secret ([`secret_name`]: `Authorization`, `Cookie`,
//!   `Set-Cookie`, `X-Api-Key`, anything with `token`, `secret`, `password`,
//!   `key`, `auth`, …). Its value is hidden wherever text of that shape is
//!   written: a response body kept as an action's output, a check's failure
//!   message;
//! - **by value**: every `env.NAME` value a scenario's templates read is
//!   [`register`]ed when the scenario is compiled, and [`text`] hides it
//!   wherever it appears (an exec action printing it, a body echoing it).
//!
//! Values extracted at run time (a token from a login) are never written by
//! the engine: only counted. Where a response is kept (an action's output)
//! or quoted (a failed check) the by-name rules hide them.

use parking_lot::RwLock;
use regex::Regex;
use std::borrow::Cow;
use std::sync::LazyLock;

/// What a hidden value is written as.
pub const MASK: &str = "***";

/// Values shorter than this are not registered: hiding every `1` or `on`
/// in a result would hide more than it protects.
const MIN_LEN: usize = 4;

static VALUES: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Whether a header, field or key named `name` holds a secret.
pub fn secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password", "passwd", "secret", "token", "key", "auth", "cookie", "session",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// Hide `value` from now on wherever [`text`] or [`bytes()`] is used (an
/// `env.` value read by a template). Short values are ignored.
pub fn register(value: &str) {
    if value.len() < MIN_LEN {
        return;
    }
    let mut values = VALUES.write();
    if !values.iter().any(|v| v == value) {
        values.push(value.to_string());
        // Longest first, so a value containing another is hidden whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }
}

/// `"name": "value"` in JSON, `name: value` (a header line), `name=value`
/// (a query, a form, a cookie, an environment), `Bearer value`.
static SHAPES: LazyLock<[Regex; 4]> = LazyLock::new(|| {
    let re = |s: &str| Regex::new(s).expect("valid regex");
    [
        re(r#""([^"\\]{1,64})"(\s*:\s*)"(?:[^"\\]|\\.)*""#),
        re(r"(?m)^([A-Za-z0-9_-]{1,64})(:[ \t]*)\S[^\r\n]*"),
        re(r"\b([A-Za-z0-9_.-]{1,64})(=)[^\s&;,]+"),
        re(r"(?i)\b(bearer)(\s+)[A-Za-z0-9._~+/=-]+"),
    ]
});

/// `text` with every secret hidden: registered values, and the values of
/// secret-looking names in JSON, header lines, `key=value` pairs and
/// `Bearer` credentials.
pub fn text(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    for value in VALUES.read().iter() {
        if out.contains(value.as_str()) {
            out = Cow::Owned(out.replace(value.as_str(), MASK));
        }
    }
    let [json, header, pair, bearer] = &*SHAPES;
    for re in [json, header, pair] {
        if re.is_match(&out) {
            let replaced = re.replace_all(&out, |c: &regex::Captures<'_>| {
                if secret_name(&c[1]) {
                    let quoted = c[0].ends_with('"') && c[0].starts_with('"');
                    let mask = if quoted {
                        format!("\"{MASK}\"")
                    } else {
                        MASK.to_string()
                    };
                    let name = if quoted {
                        format!("\"{}\"", &c[1])
                    } else {
                        c[1].to_string()
                    };
                    format!("{name}{}{mask}", &c[2])
                } else {
                    c[0].to_string()
                }
            });
            // Matched but nothing secret: the text stays as it was.
            if let Cow::Owned(s) = replaced {
                if *s != *out {
                    out = Cow::Owned(s);
                }
            }
        }
    }
    if bearer.is_match(&out) {
        let replaced = bearer.replace_all(&out, format!("$1$2{MASK}").as_str());
        if let Cow::Owned(s) = replaced {
            out = Cow::Owned(s);
        }
    }
    out
}

/// A JSON value with every secret hidden: the values of secret-looking
/// fields, and [`text`] applied to every string.
pub fn json(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(text(s).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(k, v)| {
                    let v = if secret_name(k) {
                        Value::String(MASK.into())
                    } else {
                        json(v)
                    };
                    (k.clone(), v)
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

/// [`text`] for output that may not be text: UTF-8 is redacted as text;
/// anything else only loses the registered values.
pub fn bytes(output: &[u8]) -> Vec<u8> {
    if let Ok(s) = std::str::from_utf8(output) {
        return text(s).into_owned().into_bytes();
    }
    let mut out = output.to_vec();
    for value in VALUES.read().iter() {
        let needle = value.as_bytes();
        let mut i = 0;
        while i + needle.len() <= out.len() {
            if out[i..].starts_with(needle) {
                out.splice(i..i + needle.len(), MASK.bytes());
                i += MASK.len();
            } else {
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names() {
        for name in [
            "Authorization",
            "Proxy-Authorization",
            "Cookie",
            "Set-Cookie",
            "X-Api-Key",
            "token",
            "access_token",
            "X-Auth-Token",
            "client_secret",
            "password",
        ] {
            assert!(secret_name(name), "{name}");
        }
        for name in ["Content-Type", "id", "user", "name", "status"] {
            assert!(!secret_name(name), "{name}");
        }
    }

    #[test]
    fn json_fields_headers_pairs_and_bearer_values_are_hidden() {
        assert_eq!(
            text(r#"{"token":"tok-a-1","user":"ann","nested":{"api_key" : "k\"1"}}"#),
            r#"{"token":"***","user":"ann","nested":{"api_key" : "***"}}"#
        );
        assert_eq!(
            text("HTTP/1.1 200 OK\r\nSet-Cookie: sid=abc; Path=/\r\nContent-Type: text/plain\r\n"),
            "HTTP/1.1 200 OK\r\nSet-Cookie: ***\r\nContent-Type: text/plain\r\n"
        );
        assert_eq!(
            text("GET /x?page=2&access_token=abc&q=1"),
            "GET /x?page=2&access_token=***&q=1"
        );
        assert_eq!(
            text("sent Bearer eyJ.abc-1, a basic check"),
            "sent Bearer ***, a basic check"
        );
        // Nothing secret: the same text, not copied.
        assert!(matches!(
            text(r#"{"id":"s-1","status":"ok"} a=b"#),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn json_values_lose_secret_fields_and_registered_values() {
        register("z9-json-registered-secret");
        let v = serde_json::json!({
            "id": 7,
            "session": { "user": "ann" },
            "items": [{ "Authorization": "Bearer x" }, "z9-json-registered-secret"],
        });
        assert_eq!(
            json(&v),
            serde_json::json!({
                "id": 7,
                "session": "***",
                "items": [{ "Authorization": "***" }, "***"],
            })
        );
    }

    #[test]
    fn registered_values_are_hidden_anywhere_short_ones_are_not_registered() {
        register("z9-registered-value-secret");
        register("ab");
        assert_eq!(
            text("key was z9-registered-value-secret; ab stays"),
            "key was ***; ab stays"
        );
        assert_eq!(
            bytes(b"\xff\x00z9-registered-value-secret\xfe"),
            b"\xff\x00***\xfe".to_vec()
        );
        assert_eq!(bytes(b"x z9-registered-value-secret"), b"x ***".to_vec());
    }
}
