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

use super::feeder::Feeder;
use crate::protocol::json::push_json_escaped;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore};
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

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

// ---------------------------------------------------------------------------
// Compiled expressions

/// A resolved hole. Names are gone: only slots and indices remain.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    /// `vu.id` / `agent.id`.
    VuId,
    Iteration,
    /// An extracted value, by slot.
    Var(usize),
    Feed {
        feeder: usize,
        col: usize,
    },
    Rand {
        lo: i64,
        hi: i64,
    },
    Uuid,
    NowMs,
    Pick(Vec<String>),
}

impl Expr {
    /// Whether the value is always a number (so a JSON hole can be bare).
    fn is_numeric(&self) -> bool {
        matches!(
            self,
            Expr::VuId | Expr::Iteration | Expr::Rand { .. } | Expr::NowMs
        )
    }

    /// Whether the value never needs JSON string escaping.
    fn is_json_safe(&self) -> bool {
        self.is_numeric() || matches!(self, Expr::Uuid)
    }

    fn feeder(&self) -> Option<usize> {
        match self {
            Expr::Feed { feeder, .. } => Some(*feeder),
            _ => None,
        }
    }

    /// Append the value; with `json_escape`, as the inside of a JSON string.
    fn render(&self, ctx: &mut RenderCtx<'_>, out: &mut String, json_escape: bool) {
        let text: &str = match self {
            Expr::VuId => return write_num(out, ctx.vu_id),
            Expr::Iteration => return write_num(out, ctx.iteration),
            Expr::Rand { lo, hi } => return write_num(out, ctx.rng.gen_range(*lo..=*hi)),
            Expr::NowMs => return write_num(out, now_ms()),
            Expr::Uuid => {
                let mut bytes = [0u8; 16];
                ctx.rng.fill_bytes(&mut bytes);
                let id = uuid::Builder::from_random_bytes(bytes).into_uuid();
                let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
                out.push_str(id.hyphenated().encode_lower(&mut buf));
                return;
            }
            Expr::Pick(options) => {
                let i = if options.len() == 1 {
                    0
                } else {
                    ctx.rng.gen_range(0..options.len())
                };
                &options[i]
            }
            Expr::Var(slot) => match ctx.vars.get(*slot) {
                Some(Some(value)) => value,
                _ => "",
            },
            Expr::Feed { feeder, col } => match (ctx.feeders.get(*feeder), ctx.rows.get(*feeder)) {
                (Some(f), Some(&row)) if row < f.len() => f.get(row, *col),
                _ => "",
            },
        };
        if json_escape {
            push_json_escaped(out, text);
        } else {
            out.push_str(text);
        }
    }
}

fn write_num(out: &mut String, n: impl std::fmt::Display) {
    // Writing to a String cannot fail.
    let _ = write!(out, "{n}");
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Parsing

/// A parsed (not yet resolved) expression.
enum Ast {
    Str(String),
    Path(Vec<String>),
    Call { name: String, args: Vec<Arg> },
}

enum Arg {
    Int(String),
    Str(String),
}

/// A template piece after resolution.
#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Lit(String),
    Hole(Expr),
}

struct Parser<'s> {
    src: &'s str,
    pos: usize,
}

impl<'s> Parser<'s> {
    fn rest(&self) -> &'s str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    /// What is at the cursor, for error messages.
    fn found(&self) -> String {
        match self.peek() {
            None => "end of template".to_string(),
            Some(_) => {
                let snippet: String = self.rest().chars().take(12).collect();
                format!("`{snippet}`")
            }
        }
    }

    fn ident(&mut self) -> Result<String, TemplateError> {
        let rest = self.rest();
        let mut chars = rest.char_indices();
        match chars.next() {
            Some((_, c)) if c.is_ascii_alphabetic() || c == '_' => {}
            _ => return Err(syntax(format!("expected a name, found {}", self.found()))),
        }
        let end = chars
            .find(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .map(|(i, _)| i)
            .unwrap_or(rest.len());
        self.pos += end;
        Ok(rest[..end].to_string())
    }

    fn string(&mut self) -> Result<String, TemplateError> {
        let quote = self.peek().expect("caller checked the quote");
        self.pos += 1;
        let mut value = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(syntax(format!(
                    "unterminated string literal (missing closing {quote})"
                )));
            };
            self.pos += c.len_utf8();
            match c {
                c if c == quote => return Ok(value),
                '\\' => {
                    let Some(e) = self.peek() else {
                        return Err(syntax("unterminated string literal"));
                    };
                    self.pos += e.len_utf8();
                    value.push(match e {
                        '"' | '\'' | '\\' => e,
                        'n' => '\n',
                        'r' => '\r',
                        't' => '\t',
                        other => {
                            return Err(syntax(format!(
                                "unknown escape `\\{other}` in string literal"
                            )))
                        }
                    });
                }
                c => value.push(c),
            }
        }
    }

    fn int(&mut self) -> String {
        let rest = self.rest();
        let sign = usize::from(rest.starts_with(['-', '+']));
        let digits = rest[sign..].bytes().take_while(u8::is_ascii_digit).count();
        self.pos += sign + digits;
        rest[..sign + digits].to_string()
    }

    /// One expression, the cursor just after `{{`; consumes the closing `}}`.
    fn hole(&mut self) -> Result<Ast, TemplateError> {
        self.skip_ws();
        let ast = match self.peek() {
            None => return Err(syntax("unclosed `{{`")),
            Some('"' | '\'') => Ast::Str(self.string()?),
            Some('}') if self.rest().starts_with("}}") => return Err(syntax("empty `{{ }}`")),
            Some(_) => {
                let mut path = vec![self.ident()?];
                while self.eat('.') {
                    path.push(self.ident()?);
                }
                self.skip_ws();
                if self.eat('(') {
                    Ast::Call {
                        name: path.join("."),
                        args: self.args()?,
                    }
                } else {
                    Ast::Path(path)
                }
            }
        };
        self.skip_ws();
        if self.rest().starts_with("}}") {
            self.pos += 2;
            Ok(ast)
        } else if self.peek().is_none() {
            Err(syntax("unclosed `{{` (missing `}}`)"))
        } else {
            Err(syntax(format!("expected `}}}}`, found {}", self.found())))
        }
    }

    /// Arguments after `(`; consumes the closing `)`.
    fn args(&mut self) -> Result<Vec<Arg>, TemplateError> {
        let mut args = Vec::new();
        self.skip_ws();
        if self.eat(')') {
            return Ok(args);
        }
        loop {
            self.skip_ws();
            let arg = match self.peek() {
                Some('"' | '\'') => Arg::Str(self.string()?),
                Some(c) if c.is_ascii_digit() || c == '-' || c == '+' => {
                    let text = self.int();
                    if matches!(text.as_str(), "-" | "+") {
                        return Err(syntax(format!("expected a number after `{text}`")));
                    }
                    Arg::Int(text)
                }
                _ => {
                    return Err(syntax(format!(
                        "expected an argument (a number or a string literal), found {}",
                        self.found()
                    )))
                }
            };
            args.push(arg);
            self.skip_ws();
            if self.eat(')') {
                return Ok(args);
            }
            if !self.eat(',') {
                return Err(syntax(format!(
                    "expected `,` or `)` in arguments, found {}",
                    self.found()
                )));
            }
        }
    }
}

/// A piece of source: literal text or a parsed hole.
enum Part {
    Text(String),
    Hole(Ast),
}

/// Split `src` into literal text and parsed holes.
fn parse(src: &str) -> Result<Vec<Part>, TemplateError> {
    let mut parts = Vec::new();
    let mut p = Parser { src, pos: 0 };
    while let Some(i) = p.rest().find("{{") {
        if i > 0 {
            parts.push(Part::Text(p.rest()[..i].to_string()));
        }
        p.pos += i + 2;
        parts.push(Part::Hole(p.hole()?));
    }
    if !p.rest().is_empty() {
        parts.push(Part::Text(p.rest().to_string()));
    }
    Ok(parts)
}

// ---------------------------------------------------------------------------
// Resolution

const BUILTIN_NAMES: &[&str] = &[
    "vu.id",
    "agent.id",
    "iteration",
    "now_ms",
    "uuid()",
    "rand(a, b)",
];
const FUNCTIONS: &[&str] = &["rand", "uuid", "now_ms", "pick"];

/// The closest candidate to `name`, when close enough to be a likely typo.
fn suggest<'c>(name: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<String> {
    let limit = (name.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(name, c), c))
        .filter(|&(d, _)| d <= limit)
        .min_by_key(|&(d, _)| d)
        .map(|(_, c)| c.to_string())
}

fn feed_names(feeders: &[Feeder]) -> Vec<String> {
    let mut names = Vec::new();
    for f in feeders {
        for c in f.columns() {
            names.push(format!("feed.{c}"));
            names.push(format!("feed.{}.{c}", f.name()));
        }
    }
    names
}

/// Resolve an expression to a literal (string literals, `env.…`) or a hole.
fn resolve(ast: Ast, symbols: &Symbols<'_>) -> Result<Piece, TemplateError> {
    match ast {
        Ast::Str(s) => Ok(Piece::Lit(s)),
        Ast::Call { name, args } => resolve_call(&name, args).map(Piece::Hole),
        Ast::Path(path) => resolve_path(&path, symbols),
    }
}

fn resolve_path(path: &[String], symbols: &Symbols<'_>) -> Result<Piece, TemplateError> {
    let segs: Vec<&str> = path.iter().map(String::as_str).collect();
    let full = path.join(".");
    let unknown = |extra: &[String]| {
        let mut candidates: Vec<&str> = BUILTIN_NAMES.to_vec();
        candidates.extend(symbols.vars.iter().map(String::as_str));
        candidates.extend(extra.iter().map(String::as_str));
        TemplateError::UnknownVariable {
            suggestion: suggest(&full, candidates),
            name: full.clone(),
        }
    };
    let hole = |e| Ok(Piece::Hole(e));
    match segs.as_slice() {
        ["vu" | "agent", "id"] => hole(Expr::VuId),
        ["iteration"] => hole(Expr::Iteration),
        ["now_ms"] => hole(Expr::NowMs),
        ["env", name] => match std::env::var(name) {
            Ok(value) => Ok(Piece::Lit(value)),
            Err(_) => Err(TemplateError::Env {
                name: name.to_string(),
            }),
        },
        ["feed", column] => {
            let hits: Vec<(usize, usize)> = symbols
                .feeders
                .iter()
                .enumerate()
                .filter_map(|(i, f)| f.column(column).map(|c| (i, c)))
                .collect();
            match hits.as_slice() {
                [(feeder, col)] => hole(Expr::Feed {
                    feeder: *feeder,
                    col: *col,
                }),
                [] => Err(unknown(&feed_names(symbols.feeders))),
                many => {
                    let options: Vec<String> = many
                        .iter()
                        .map(|&(i, _)| format!("`feed.{}.{column}`", symbols.feeders[i].name()))
                        .collect();
                    Err(syntax(format!(
                        "`{full}` is ambiguous: several feeders have a column `{column}`; \
                         use `feed.FEEDER.COLUMN` ({})",
                        options.join(" or ")
                    )))
                }
            }
        }
        ["feed", feeder, column] => {
            let found = symbols
                .feeders
                .iter()
                .enumerate()
                .find(|(_, f)| f.name() == *feeder);
            match found.and_then(|(i, f)| f.column(column).map(|c| (i, c))) {
                Some((feeder, col)) => hole(Expr::Feed { feeder, col }),
                None => Err(unknown(&feed_names(symbols.feeders))),
            }
        }
        [name] => match symbols.vars.iter().position(|v| v == name) {
            Some(slot) => hole(Expr::Var(slot)),
            None => {
                // `sku` meaning `feed.sku`: suggest the feeder column outright.
                if symbols.feeders.iter().any(|f| f.column(name).is_some()) {
                    return Err(TemplateError::UnknownVariable {
                        name: full.clone(),
                        suggestion: Some(format!("feed.{name}")),
                    });
                }
                if FUNCTIONS.contains(name) {
                    return Err(TemplateError::UnknownVariable {
                        name: full.clone(),
                        suggestion: Some(format!("{name}()")),
                    });
                }
                Err(unknown(&[]))
            }
        },
        _ => Err(unknown(&feed_names(symbols.feeders))),
    }
}

fn resolve_call(name: &str, args: Vec<Arg>) -> Result<Expr, TemplateError> {
    let bad = |detail: String| TemplateError::Arguments {
        function: name.to_string(),
        detail,
    };
    let no_args = |args: &[Arg], e: Expr| {
        if args.is_empty() {
            Ok(e)
        } else {
            Err(bad(format!("takes no arguments, got {}", args.len())))
        }
    };
    match name {
        "uuid" => no_args(&args, Expr::Uuid),
        "now_ms" => no_args(&args, Expr::NowMs),
        "rand" => {
            let [a, b] = args.as_slice() else {
                return Err(bad(format!(
                    "expects 2 integers `rand(min, max)`, got {} arguments",
                    args.len()
                )));
            };
            let int = |arg: &Arg| match arg {
                Arg::Int(text) => text
                    .parse::<i64>()
                    .map_err(|_| bad(format!("`{text}` is not a 64-bit integer"))),
                Arg::Str(s) => Err(bad(format!(
                    "expected an integer, found the string \"{s}\""
                ))),
            };
            let (lo, hi) = (int(a)?, int(b)?);
            if lo > hi {
                return Err(bad(format!("min {lo} is greater than max {hi}")));
            }
            Ok(Expr::Rand { lo, hi })
        }
        "pick" => {
            if args.is_empty() {
                return Err(bad("expects at least one string literal".to_string()));
            }
            args.into_iter()
                .map(|a| match a {
                    Arg::Str(s) => Ok(s),
                    Arg::Int(text) => Err(bad(format!(
                        "expected string literals, found `{text}` (quote it)"
                    ))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Expr::Pick)
        }
        _ => Err(TemplateError::UnknownFunction {
            name: name.to_string(),
        }),
    }
}

/// Parse and resolve; adjacent literals merged, empty literals dropped.
fn compile_pieces(src: &str, symbols: &Symbols<'_>) -> Result<Vec<Piece>, TemplateError> {
    let mut pieces: Vec<Piece> = Vec::new();
    for part in parse(src)? {
        let piece = match part {
            Part::Text(text) => Piece::Lit(text),
            Part::Hole(ast) => resolve(ast, symbols)?,
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

// ---------------------------------------------------------------------------
// Template

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

// ---------------------------------------------------------------------------
// JsonTemplate

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

    struct Env {
        vars: Vec<String>,
        feeders: Vec<Feeder>,
        values: Vec<Option<String>>,
        rows: Vec<usize>,
    }

    impl Env {
        fn new() -> Env {
            Env {
                vars: vars(),
                feeders: feeders(),
                values: vec![Some("c-42".to_string()), None],
                rows: vec![1, 0],
            }
        }
        fn symbols(&self) -> Symbols<'_> {
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
        fn json(&self, toml_src: &str, seed: u64) -> (JsonTemplate, String) {
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
        fn json_value(&self, toml_src: &str) -> serde_json::Value {
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
