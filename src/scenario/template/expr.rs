//! Resolved template expressions: what each hole is once names are gone
//! (a slot, a feeder column, a function), and how it renders into the
//! output, escaped for a JSON string when asked.

use super::RenderCtx;
use crate::protocol::json::push_json_escaped;
use rand::{Rng, RngCore};
use std::fmt::Write as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// A resolved hole. Names are gone: only slots and indices remain.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
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
    pub(super) fn is_numeric(&self) -> bool {
        matches!(
            self,
            Expr::VuId | Expr::Iteration | Expr::Rand { .. } | Expr::NowMs
        )
    }

    /// Whether the value never needs JSON string escaping.
    pub(super) fn is_json_safe(&self) -> bool {
        self.is_numeric() || matches!(self, Expr::Uuid)
    }

    pub(super) fn feeder(&self) -> Option<usize> {
        match self {
            Expr::Feed { feeder, .. } => Some(*feeder),
            _ => None,
        }
    }

    /// Append the value; with `json_escape`, as the inside of a JSON string.
    pub(super) fn render(&self, ctx: &mut RenderCtx<'_>, out: &mut String, json_escape: bool) {
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

pub(super) fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0)
}
