//! [`JsonTemplate`]: a TOML value (a request body, a message's data)
//! compiled to JSON text with holes; a hole that is the whole of a string
//! and always numeric renders as a bare number, any other renders inside a
//! JSON string, escaped.

use super::expr::Expr;
use super::{compile_pieces, feeders_of, syntax, Piece, RenderCtx, Symbols, TemplateError};
use crate::protocol::json::push_json_escaped;

#[derive(Debug, Clone, PartialEq)]
enum JsonPiece {
    /// Pre-serialized JSON text.
    Raw(String),
    /// A value inside a JSON string (escaped as needed).
    InString(Expr),
    /// A numeric value outside any string (a bare JSON number).
    Number(Expr),
}

/// A compiled JSON body template built from a TOML value (table, array,
/// scalar). Strings are templates rendered with JSON escaping; a string that
/// is exactly one `{{ expr }}` whose value is numeric (`rand`, `now_ms`,
/// `vu.id`, `agent.id`, `iteration`) renders as a JSON number.
///
/// Table keys are literal (not templates) and keep the order of the
/// `toml::Value` table's iteration.
#[derive(Debug, Clone)]
pub struct JsonTemplate {
    pieces: Vec<JsonPiece>,
}

struct JsonBuilder {
    pieces: Vec<JsonPiece>,
}

impl JsonBuilder {
    fn raw(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(JsonPiece::Raw(prev)) = self.pieces.last_mut() {
            prev.push_str(text);
        } else {
            self.pieces.push(JsonPiece::Raw(text.to_string()));
        }
    }

    fn string_literal(&mut self, text: &str) {
        let mut escaped = String::with_capacity(text.len() + 2);
        escaped.push('"');
        push_json_escaped(&mut escaped, text);
        escaped.push('"');
        self.raw(&escaped);
    }

    fn value(&mut self, value: &toml::Value, symbols: &Symbols<'_>) -> Result<(), TemplateError> {
        match value {
            toml::Value::String(src) => {
                let mut pieces = compile_pieces(src, symbols)?;
                if let [Piece::Hole(expr)] = pieces.as_slice() {
                    if expr.is_numeric() {
                        let Some(Piece::Hole(expr)) = pieces.pop() else {
                            unreachable!()
                        };
                        self.pieces.push(JsonPiece::Number(expr));
                        return Ok(());
                    }
                }
                let mut escaped = String::new();
                self.raw("\"");
                for piece in pieces {
                    match piece {
                        Piece::Lit(text) => {
                            escaped.clear();
                            push_json_escaped(&mut escaped, &text);
                            self.raw(&escaped);
                        }
                        Piece::Hole(expr) => self.pieces.push(JsonPiece::InString(expr)),
                    }
                }
                self.raw("\"");
            }
            toml::Value::Integer(n) => self.raw(&n.to_string()),
            toml::Value::Float(f) => match serde_json::Number::from_f64(*f) {
                Some(n) => self.raw(&n.to_string()),
                None => return Err(syntax(format!("JSON cannot represent the number `{f}`"))),
            },
            toml::Value::Boolean(b) => self.raw(if *b { "true" } else { "false" }),
            toml::Value::Datetime(dt) => self.string_literal(&dt.to_string()),
            toml::Value::Array(items) => {
                self.raw("[");
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.raw(",");
                    }
                    self.value(item, symbols)?;
                }
                self.raw("]");
            }
            toml::Value::Table(table) => {
                self.raw("{");
                for (i, (key, item)) in table.iter().enumerate() {
                    if i > 0 {
                        self.raw(",");
                    }
                    self.string_literal(key);
                    self.raw(":");
                    self.value(item, symbols)?;
                }
                self.raw("}");
            }
        }
        Ok(())
    }
}

impl JsonTemplate {
    pub fn compile(
        value: &toml::Value,
        symbols: &Symbols<'_>,
    ) -> Result<JsonTemplate, TemplateError> {
        let mut builder = JsonBuilder { pieces: Vec::new() };
        builder.value(value, symbols)?;
        Ok(JsonTemplate {
            pieces: builder.pieces,
        })
    }

    /// Append valid JSON text to `out`.
    pub fn render(&self, ctx: &mut RenderCtx<'_>, out: &mut String) {
        for piece in &self.pieces {
            match piece {
                JsonPiece::Raw(text) => out.push_str(text),
                JsonPiece::InString(expr) => expr.render(ctx, out, !expr.is_json_safe()),
                JsonPiece::Number(expr) => expr.render(ctx, out, false),
            }
        }
    }

    /// The JSON text, when the body has no holes (lets callers pre-build).
    pub fn as_static(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [JsonPiece::Raw(text)] => Some(text),
            _ => None,
        }
    }

    pub fn feeders_used(&self) -> Vec<usize> {
        feeders_of(self.pieces.iter().filter_map(|p| match p {
            JsonPiece::InString(e) | JsonPiece::Number(e) => Some(e),
            JsonPiece::Raw(_) => None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::Env;
    use super::*;

    #[test]
    fn json_escaping_and_numbers() {
        let env = Env::new();
        let v = env.json_value(
            r#"[v]
name = "{{ feed.name }}"
id = "{{ vu.id }}"
it = "{{iteration}}"
agent = "{{ agent.id }}"
n = "{{ rand(5, 9) }}"
t = "{{ now_ms }}"
mixed = "n-{{ vu.id }}"
lit = "say \"hi\"\\"
cart = "{{ cart }}"
none = "{{ token }}"
u = "{{ uuid() }}"
p = "{{ pick('x\"y') }}"
"#,
        );
        assert_eq!(v["name"], "back\\slash\nline\t\u{1}");
        assert_eq!(v["id"], 17);
        assert_eq!(v["it"], 3);
        assert_eq!(v["agent"], 17);
        assert!((5..=9).contains(&v["n"].as_i64().unwrap()));
        assert!(v["t"].as_u64().unwrap() > 1_600_000_000_000);
        assert_eq!(v["mixed"], "n-17");
        assert_eq!(v["lit"], "say \"hi\"\\");
        assert_eq!(v["cart"], "c-42");
        assert_eq!(v["none"], "");
        assert!(uuid::Uuid::parse_str(v["u"].as_str().unwrap()).is_ok());
        assert_eq!(v["p"], "x\"y");
    }

    #[test]
    fn json_feed_and_var_holes_stay_strings() {
        let env = Env::new();
        let v = env.json_value(r#"v = { sku = "{{ feed.products.sku }}", cart = "{{ cart }}" }"#);
        assert_eq!(v, serde_json::json!({ "sku": "B2", "cart": "c-42" }));
    }

    #[test]
    fn json_scalars_arrays_and_datetimes() {
        let env = Env::new();
        let v = env.json_value(
            r#"[v]
a = [1, -2, 2.5, true, false, "s", [], {}]
d = 1979-05-27T07:32:00Z
ld = 1979-05-27
nested = { "key \"q\"" = { deep = ["{{ vu.id }}", "x{{ iteration }}"] } }
"#,
        );
        assert_eq!(
            v["a"],
            serde_json::json!([1, -2, 2.5, true, false, "s", [], {}])
        );
        assert_eq!(v["d"], "1979-05-27T07:32:00Z");
        assert_eq!(v["ld"], "1979-05-27");
        assert_eq!(
            v["nested"]["key \"q\""]["deep"],
            serde_json::json!([17, "x3"])
        );
        for top in [
            "v = 5",
            "v = \"{{ rand(1, 2) }}\"",
            "v = \"plain\"",
            "v = [\"{{ feed.user }}\"]",
        ] {
            let (_, out) = env.json(top, 3);
            serde_json::from_str::<serde_json::Value>(&out)
                .unwrap_or_else(|e| panic!("{top}: {out}: {e}"));
        }
    }

    #[test]
    fn json_key_order_follows_table() {
        let env = Env::new();
        let (_, out) = env.json(r#"v = { b = 1, a = 2, c = 3 }"#, 0);
        let table: toml::Table = toml::from_str("b = 1\na = 2\nc = 3").unwrap();
        let keys: Vec<String> = table.keys().map(|k| format!("\"{k}\"")).collect();
        let positions: Vec<usize> = keys.iter().map(|k| out.find(k.as_str()).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{out}");
    }

    #[test]
    fn json_static_and_feeders_used() {
        let env = Env::new();
        let (t, out) = env.json(r#"v = { op = "update", n = [1, 2] }"#, 0);
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed, serde_json::json!({ "op": "update", "n": [1, 2] }));
        assert!(!out.contains(' '), "compact: {out}");
        assert_eq!(t.as_static(), Some(out.as_str()));
        assert!(t.feeders_used().is_empty());
        let (t, _) = env.json(
            r#"v = { a = "{{ feed.accounts.user }}", b = "{{ feed.accounts.sku }}" }"#,
            0,
        );
        assert_eq!(t.feeders_used(), vec![1]);
        assert!(t.as_static().is_none());
    }

    #[test]
    fn json_reproducible_for_a_seed() {
        let env = Env::new();
        let src = r#"v = { n = "{{ rand(0, 1000000) }}", u = "{{ uuid() }}", p = "{{ pick('a', 'b', 'c') }}" }"#;
        assert_eq!(env.json(src, 9).1, env.json(src, 9).1);
        assert_ne!(env.json(src, 9).1, env.json(src, 10).1);
    }

    #[test]
    fn json_errors() {
        let env = Env::new();
        let table: toml::Table = toml::from_str("v = { a = \"{{ nope }}\" }\nf = nan").unwrap();
        let err = JsonTemplate::compile(&table["v"], &env.symbols()).unwrap_err();
        assert!(matches!(err, TemplateError::UnknownVariable { .. }));
        let err = JsonTemplate::compile(&table["f"], &env.symbols()).unwrap_err();
        assert!(err.to_string().contains("JSON cannot represent"), "{err}");
    }

    #[test]
    fn json_escape_all_control_chars() {
        let mut s = String::new();
        let input: String = (0u8..0x20)
            .map(char::from)
            .chain("\"\\é/".chars())
            .collect();
        push_json_escaped(&mut s, &input);
        let quoted = format!("\"{s}\"");
        let back: String = serde_json::from_str(&quoted).unwrap();
        assert_eq!(back, input);
        assert!(s.contains("\\u0001") && s.contains("\\n") && s.contains("\\\""));
    }
}
