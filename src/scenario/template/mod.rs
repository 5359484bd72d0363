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
//! A string literal (`"…"` or `'…'`, escapes `\"`, `\'`, `\\`, `\n`, `\r`,
//! `\t`) is an expression too, which is how a literal `{{` is written:
//! `{{ "{{" }}`. A lone `}}` outside a hole is plain text.
//!
//! The built-in names `iteration` and `now_ms` win over an extracted value
//! of the same name.
//!
//! # Layout
//! - `parse`: template source into literal text and parsed holes.
//! - `resolve`: names and functions of the holes into slots and indices
//!   (unknown names come with a suggestion).
//! - `expr`: the resolved expressions and how each renders.
//! - `json`: [`JsonTemplate`], a TOML value rendered as JSON with holes.
//! - this file: [`Template`], the string form, and the shared types.

use super::feeder::Feeder;
use rand::rngs::SmallRng;

mod expr;
mod json;
mod parse;
mod resolve;

use expr::Expr;
pub use json::JsonTemplate;

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
    UnknownVariable {
        name: String,
        suggestion: Option<String>,
    },
    #[error("unknown function `{name}`")]
    UnknownFunction { name: String },
    #[error("environment variable `{name}` is not set")]
    Env { name: String },
    #[error("bad arguments to `{function}`: {detail}")]
    Arguments { function: String, detail: String },
}

fn syntax(detail: impl Into<String>) -> TemplateError {
    TemplateError::Syntax {
        detail: detail.into(),
    }
}

/// A template piece after resolution.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(String),
    Hole(Expr),
}

/// Parse and resolve; adjacent literals merged, empty literals dropped.
fn compile_pieces(src: &str, symbols: &Symbols<'_>) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces: Vec<Piece> = Vec::new();
    for part in parse::parse(src)? {
        let piece = match part {
            parse::Part::Text(text) => Piece::Lit(text),
            parse::Part::Hole(ast) => resolve::resolve(ast, symbols)?,
        };
        match (pieces.last_mut(), piece) {
            (_, Piece::Lit(text)) if text.is_empty() => {}
            (Some(Piece::Lit(prev)), Piece::Lit(text)) => prev.push_str(&text),
            (_, piece) => pieces.push(piece),
        }
    }
    Ok(pieces)
}

fn feeders_of<'e>(exprs: impl Iterator<Item = &'e Expr>) -> Vec<usize> {
    let mut used: Vec<usize> = exprs.filter_map(Expr::feeder).collect();
    used.sort_unstable();
    used.dedup();
    used
}

/// A compiled string template.
#[derive(Debug, Clone)]
pub struct Template {
    pieces: Vec<Piece>,
}

impl Template {
    pub fn compile(src: &str, symbols: &Symbols<'_>) -> Result<Template, TemplateError> {
        Ok(Template {
            pieces: compile_pieces(src, symbols)?,
        })
    }

    /// Append the rendered text to `out`.
    pub fn render(&self, ctx: &mut RenderCtx<'_>, out: &mut String) {
        for piece in &self.pieces {
            match piece {
                Piece::Lit(text) => out.push_str(text),
                Piece::Hole(expr) => expr.render(ctx, out, false),
            }
        }
    }

    /// The text, when the template has no holes (lets callers pre-build).
    pub fn as_static(&self) -> Option<&str> {
        match self.pieces.as_slice() {
            [] => Some(""),
            [Piece::Lit(text)] => Some(text),
            _ => None,
        }
    }

    /// Indices of the feeders this template reads (so only those pick rows).
    pub fn feeders_used(&self) -> Vec<usize> {
        feeders_of(self.pieces.iter().filter_map(|p| match p {
            Piece::Hole(e) => Some(e),
            Piece::Lit(_) => None,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::expr::now_ms;
    use super::*;
    use crate::scenario::feeder::FeedMode;
    use rand::SeedableRng;

    fn feeders() -> Vec<Feeder> {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        vec![
            Feeder::from_rows(
                "products",
                s(&["sku", "name"]),
                vec![
                    s(&["A1", "Tea \"green\""]),
                    s(&["B2", "back\\slash\nline\t\u{1}"]),
                ],
                FeedMode::Sequential,
            ),
            Feeder::from_rows(
                "accounts",
                s(&["user", "sku"]),
                vec![s(&["alice", "Z9"]), s(&["bob", "Y8"])],
                FeedMode::Unique,
            ),
        ]
    }

    fn vars() -> Vec<String> {
        vec!["cart".to_string(), "token".to_string()]
    }

    pub(super) struct Env {
        vars: Vec<String>,
        feeders: Vec<Feeder>,
        values: Vec<Option<String>>,
        rows: Vec<usize>,
    }

    impl Env {
        pub(super) fn new() -> Env {
            Env {
                vars: vars(),
                feeders: feeders(),
                values: vec![Some("c-42".to_string()), None],
                rows: vec![1, 0],
            }
        }
        pub(super) fn symbols(&self) -> Symbols<'_> {
            Symbols {
                vars: &self.vars,
                feeders: &self.feeders,
            }
        }
        fn compile(&self, src: &str) -> Result<Template, TemplateError> {
            Template::compile(src, &self.symbols())
        }
        fn render_seeded(&self, t: &Template, seed: u64) -> String {
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut ctx = RenderCtx {
                vu_id: 17,
                iteration: 3,
                rng: &mut rng,
                vars: &self.values,
                feeders: &self.feeders,
                rows: &self.rows,
            };
            let mut out = String::from(">");
            t.render(&mut ctx, &mut out);
            out[1..].to_string()
        }
        fn render(&self, src: &str) -> String {
            self.render_seeded(&self.compile(src).unwrap(), 1)
        }
        pub(super) fn json(&self, toml_src: &str, seed: u64) -> (JsonTemplate, String) {
            let table: toml::Table = toml::from_str(toml_src).unwrap();
            let value = table.get("v").unwrap();
            let t = JsonTemplate::compile(value, &self.symbols()).unwrap();
            let mut rng = SmallRng::seed_from_u64(seed);
            let mut ctx = RenderCtx {
                vu_id: 17,
                iteration: 3,
                rng: &mut rng,
                vars: &self.values,
                feeders: &self.feeders,
                rows: &self.rows,
            };
            let mut out = String::new();
            t.render(&mut ctx, &mut out);
            (t, out)
        }
        pub(super) fn json_value(&self, toml_src: &str) -> serde_json::Value {
            let (_, out) = self.json(toml_src, 1);
            serde_json::from_str(&out).unwrap_or_else(|e| panic!("invalid JSON {out:?}: {e}"))
        }
    }

    #[test]
    fn literal_text_is_static() {
        let env = Env::new();
        let t = env.compile("/api/products?x=}}").unwrap();
        assert_eq!(t.as_static(), Some("/api/products?x=}}"));
        assert_eq!(env.render_seeded(&t, 0), "/api/products?x=}}");
        assert_eq!(env.compile("").unwrap().as_static(), Some(""));
        assert!(env.compile("a{{ vu.id }}").unwrap().as_static().is_none());
    }

    #[test]
    fn builtins_render() {
        let env = Env::new();
        assert_eq!(
            env.render("u{{vu.id}}/a{{ agent.id }}/i{{  iteration  }}"),
            "u17/a17/i3"
        );
    }

    #[test]
    fn string_literals_escape_braces_and_merge() {
        let env = Env::new();
        let t = env
            .compile(r#"a {{ "{{" }} b {{ '}}' }} {{ "q\"\\" }}"#)
            .unwrap();
        assert_eq!(
            t.as_static(),
            Some("a {{ b }} q\"\\"),
            "literal holes merge into one static piece"
        );
        assert_eq!(t.pieces.len(), 1);
    }

    #[test]
    fn env_resolves_at_compile() {
        let env = Env::new();
        let path = std::env::var("PATH").expect("PATH is set under cargo test");
        let t = env.compile("p={{ env.PATH }};").unwrap();
        assert_eq!(t.as_static(), Some(format!("p={path};").as_str()));
        let err = env
            .compile("{{ env.STAMPEDE_SURELY_UNSET_VAR_123 }}")
            .unwrap_err();
        assert_eq!(
            err,
            TemplateError::Env {
                name: "STAMPEDE_SURELY_UNSET_VAR_123".into()
            }
        );
    }

    #[test]
    fn extracted_vars_by_slot() {
        let env = Env::new();
        assert_eq!(
            env.render("/cart/{{ cart }}/x{{ token }}y"),
            "/cart/c-42/xy"
        );
        let t = env.compile("{{ token }}").unwrap();
        assert!(t.feeders_used().is_empty());
    }

    #[test]
    fn feed_columns() {
        let env = Env::new();
        assert_eq!(env.render("{{ feed.name }}"), "back\\slash\nline\t\u{1}");
        assert_eq!(env.render("{{ feed.user }}"), "alice");
        assert_eq!(
            env.render("{{ feed.products.sku }}-{{ feed.accounts.sku }}"),
            "B2-Z9"
        );
        let t = env
            .compile("{{ feed.user }}{{ feed.products.sku }}{{ feed.accounts.sku }}")
            .unwrap();
        assert_eq!(t.feeders_used(), vec![0, 1]);
        assert_eq!(
            env.compile("{{ feed.name }}").unwrap().feeders_used(),
            vec![0]
        );
    }

    #[test]
    fn ambiguous_feed_column() {
        let env = Env::new();
        let err = env.compile("{{ feed.sku }}").unwrap_err();
        let msg = err.to_string();
        assert!(matches!(err, TemplateError::Syntax { .. }));
        assert!(msg.contains("ambiguous"), "{msg}");
        assert!(msg.contains("feed.FEEDER.COLUMN"), "{msg}");
        assert!(
            msg.contains("`feed.products.sku`") && msg.contains("`feed.accounts.sku`"),
            "{msg}"
        );
    }

    #[test]
    fn unknown_variables_suggest() {
        let env = Env::new();
        let unknown = |src: &str| match env.compile(src).unwrap_err() {
            TemplateError::UnknownVariable { name, suggestion } => (name, suggestion),
            other => panic!("{src}: {other:?}"),
        };
        assert_eq!(unknown("{{ crt }}"), ("crt".into(), Some("cart".into())));
        assert_eq!(
            unknown("{{ vu.idd }}"),
            ("vu.idd".into(), Some("vu.id".into()))
        );
        assert_eq!(
            unknown("{{ iteraton }}"),
            ("iteraton".into(), Some("iteration".into()))
        );
        assert_eq!(
            unknown("{{ feed.usr }}"),
            ("feed.usr".into(), Some("feed.user".into()))
        );
        assert_eq!(
            unknown("{{ feed.product.sku }}"),
            ("feed.product.sku".into(), Some("feed.products.sku".into()))
        );
        assert_eq!(
            unknown("{{ user }}"),
            ("user".into(), Some("feed.user".into()))
        );
        assert_eq!(
            unknown("{{ uuid }}"),
            ("uuid".into(), Some("uuid()".into()))
        );
        assert_eq!(
            unknown("{{ completely_different }}"),
            ("completely_different".into(), None)
        );
        let msg = env.compile("{{ crt }}").unwrap_err().to_string();
        assert_eq!(msg, "unknown variable `crt` (did you mean `cart`?)");
    }

    #[test]
    fn rand_in_range_and_reproducible() {
        let env = Env::new();
        let t = env.compile("{{ rand(1, 50) }}").unwrap();
        let mut seen = std::collections::HashSet::new();
        for seed in 0..200 {
            let a = env.render_seeded(&t, seed);
            assert_eq!(a, env.render_seeded(&t, seed), "same seed, same output");
            let n: i64 = a.parse().unwrap();
            assert!((1..=50).contains(&n), "{n}");
            seen.insert(n);
        }
        assert!(seen.len() > 20, "rand spreads over the range");
        assert_eq!(env.render("{{ rand(-3, -3) }}"), "-3");
        assert_eq!(env.render("{{ rand(+7,7) }}"), "7");
    }

    #[test]
    fn uuid_is_v4_and_seeded() {
        let env = Env::new();
        let t = env.compile("{{ uuid() }}").unwrap();
        let a = env.render_seeded(&t, 5);
        let id = uuid::Uuid::parse_str(&a).unwrap();
        assert_eq!(id.get_version_num(), 4);
        assert_eq!(a, env.render_seeded(&t, 5));
        assert_ne!(a, env.render_seeded(&t, 6));
        assert_eq!(a, a.to_lowercase());
    }

    #[test]
    fn now_ms_with_or_without_parens() {
        let env = Env::new();
        let before = now_ms();
        for src in ["{{ now_ms() }}", "{{ now_ms }}"] {
            let n: u128 = env.render(src).parse().unwrap();
            assert!(n >= before && n <= now_ms(), "{src}: {n}");
        }
    }

    #[test]
    fn pick_chooses_a_literal() {
        let env = Env::new();
        let t = env
            .compile(r#"{{ pick("red", 'green', "blue") }}"#)
            .unwrap();
        let mut seen = std::collections::HashSet::new();
        for seed in 0..50 {
            let v = env.render_seeded(&t, seed);
            assert_eq!(v, env.render_seeded(&t, seed));
            assert!(["red", "green", "blue"].contains(&v.as_str()), "{v}");
            seen.insert(v);
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(env.render(r#"{{ pick("only") }}"#), "only");
    }

    #[test]
    fn render_appends() {
        let env = Env::new();
        let t = env.compile("-{{ vu.id }}").unwrap();
        let mut rng = SmallRng::seed_from_u64(0);
        let mut ctx = RenderCtx {
            vu_id: 1,
            iteration: 0,
            rng: &mut rng,
            vars: &env.values,
            feeders: &env.feeders,
            rows: &env.rows,
        };
        let mut out = String::from("x");
        t.render(&mut ctx, &mut out);
        t.render(&mut ctx, &mut out);
        assert_eq!(out, "x-1-1");
    }

    #[test]
    fn syntax_errors() {
        let env = Env::new();
        for src in [
            "a {{ vu.id",
            "a {{",
            "{{ vu.id }",
            "{{ }}",
            "{{ \"open }}",
            "{{ vu.id extra }}",
            "{{ 12 }}",
            "{{ rand(1 2) }}",
            "{{ rand(1, }}",
            "{{ pick(\"a\\q\") }}",
            "{{ rand(-, 2) }}",
        ] {
            match env.compile(src) {
                Err(TemplateError::Syntax { detail }) => assert!(!detail.is_empty()),
                other => panic!("{src:?}: expected a syntax error, got {other:?}"),
            }
        }
        let msg = env.compile("x {{ vu.id").unwrap_err().to_string();
        assert!(msg.contains("unclosed `{{`"), "{msg}");
    }

    #[test]
    fn function_errors() {
        let env = Env::new();
        assert_eq!(
            env.compile("{{ randint(1, 2) }}").unwrap_err(),
            TemplateError::UnknownFunction {
                name: "randint".into()
            }
        );
        assert_eq!(
            env.compile("{{ vu.id() }}").unwrap_err(),
            TemplateError::UnknownFunction {
                name: "vu.id".into()
            }
        );
        let args = |src: &str| match env.compile(src).unwrap_err() {
            TemplateError::Arguments { function, detail } => format!("{function}: {detail}"),
            other => panic!("{src}: {other:?}"),
        };
        assert!(args("{{ rand(5, 1) }}").contains("min 5 is greater than max 1"));
        assert!(args("{{ rand(1) }}").starts_with("rand: expects 2"));
        assert!(args("{{ rand(1, \"2\") }}").contains("expected an integer"));
        assert!(args("{{ rand(1, 99999999999999999999) }}").contains("not a 64-bit integer"));
        assert!(args("{{ pick() }}").contains("at least one"));
        assert!(args("{{ pick(\"a\", 2) }}").contains("quote it"));
        assert!(args("{{ uuid(1) }}").starts_with("uuid: takes no arguments"));
        assert!(args("{{ now_ms(1) }}").starts_with("now_ms: takes no arguments"));
    }
}
