//! Name resolution: a parsed hole becomes an [`Expr`] (a slot, a feeder
//! column, a checked function call) or a literal (`env.NAME`, string
//! literals), at compile time; an unknown name comes with the closest known
//! one.

use super::expr::Expr;
use super::parse::{Arg, Ast};
use super::{syntax, Piece, Symbols, TemplateError};
use crate::scenario::feeder::Feeder;

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
pub(super) fn resolve(ast: Ast, symbols: &Symbols<'_>) -> Result<Piece, TemplateError> {
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
            Ok(value) => {
                // An `env.` value is a secret: never in a result.
                crate::redact::register(&value);
                Ok(Piece::Lit(value))
            }
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
