//! JSON Schema of the unit types (`stampede schema`), written by hand: each
//! is a string `pattern` (plus a number form where the parser takes one)
//! that accepts what this module's parser accepts, with a description and
//! examples. `tests/it/schema.rs` runs good and bad examples through both
//! the patterns (read from the generated schema) and the parser, so the two
//! cannot drift apart unnoticed.
//!
//! What a pattern cannot say, the parser still refuses: a value too large
//! for its type, a range whose minimum is above its maximum, a duration
//! below a nanosecond (`0.0000000001s`, which rounds to zero).
//!
//! The unit types also serialize back to scenario syntax (their `Display`),
//! so the schema shows the defaults of the fields that have one.

use std::borrow::Cow;

use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde::{Serialize, Serializer};

use super::{ByteSize, Dur, DurRange, Fraction, PositiveDur, RateCurve, VuCurve};

/// A decimal number as the parser reads it: digits, optionally a point and
/// more digits (no sign, exponent or `_`).
const NUMBER: &str = r"[0-9]+(?:\.[0-9]+)?";

/// The duration units from the largest to the smallest (a compound
/// duration goes down, each unit once).
const DURATION_UNITS: [&str; 5] = ["h", "m", "s", "ms", "us|µs|μs"];

/// A duration with its surrounding whitespace, unanchored: one or more
/// `NUMBER unit` parts in decreasing units (`250ms`, `1.5s`, `1h30m`,
/// `1m 30s`). Used by the target's knobs too (`[target.builtin]`).
pub fn duration_body() -> String {
    let part = |unit: &str| format!(r"{NUMBER}\s*(?:{unit})\s*");
    // Which unit comes first decides which may follow: an alternation over
    // the first part (the regex crate the tests use has no look-ahead).
    let firsts: Vec<String> = (0..DURATION_UNITS.len())
        .map(|first| {
            let mut alt = part(DURATION_UNITS[first]);
            for unit in &DURATION_UNITS[first + 1..] {
                alt.push_str(&format!("(?:{})?", part(unit)));
            }
            alt
        })
        .collect();
    format!(r"\s*(?:{})", firsts.join("|"))
}

/// A rate `N/s`, `N/m` or `N/h` with its surrounding whitespace, unanchored.
pub fn rate_body() -> String {
    format!(r"\s*{NUMBER}\s*/\s*[smh]\s*")
}

/// Matches a value whose every number is zero: with `not`, it refuses a
/// zero duration (the characters of a duration that are not digits 1-9).
pub const ALL_ZERO_DURATION: &str = r"^[\s0.hmsuµμ]*$";
/// Likewise for a rate or a rate ramp.
pub const ALL_ZERO_RATE: &str = r"^[\s0./smh>-]*$";
/// Likewise for a VU count or ramp.
const ALL_ZERO_VUS: &str = r"^[\s0>-]*$";

impl JsonSchema for Dur {
    fn schema_name() -> Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": format!("^{}$", duration_body()),
            "description": "A duration with a unit (us, ms, s, m, h), written as a string; \
                decimals and compounds from the largest unit down are allowed, `0s` too. \
                A bare number is refused: write `\"5s\"`, not `5`.",
            "examples": ["250ms", "1.5s", "1m30s", "0s"],
        })
    }
}

impl JsonSchema for ByteSize {
    fn schema_name() -> Cow<'static, str> {
        "Size".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "oneOf": [
                { "type": "integer", "minimum": 0 },
                {
                    "type": "string",
                    "pattern": format!(r"^\s*(?:[0-9]+|{NUMBER}\s*(?:B|KB|MB|GB|KiB|MiB|GiB))\s*$"),
                },
            ],
            "description": "A size: a whole number of bytes, or a string with a unit (B, KB, MB, \
                GB in powers of 1000; KiB, MiB, GiB in powers of 1024).",
            "examples": ["16MiB", "512KB", 1048576],
        })
    }
}

impl JsonSchema for PositiveDur {
    fn schema_name() -> Cow<'static, str> {
        "PositiveDuration".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": format!("^{}$", duration_body()),
            "not": { "type": "string", "pattern": ALL_ZERO_DURATION },
            "description": "A duration greater than zero with a unit (us, ms, s, m, h), \
                written as a string; decimals and compounds from the largest unit down are \
                allowed. A bare number is refused: write `\"5s\"`, not `5`.",
            "examples": ["250ms", "10s", "1m30s", "2h"],
        })
    }
}

impl JsonSchema for DurRange {
    fn schema_name() -> Cow<'static, str> {
        "DurationRange".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let d = duration_body();
        json_schema!({
            "type": "string",
            "pattern": format!(r"^{d}(?:\.\.{d})?$"),
            "description": "A fixed duration (`\"1s\"`) or a uniform range `min..max` \
                (`\"500ms..2s\"`, min not above max); units us, ms, s, m, h.",
            "examples": ["1s", "500ms..2s", "0s"],
        })
    }
}

impl JsonSchema for RateCurve {
    fn schema_name() -> Cow<'static, str> {
        "Rate".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let r = rate_body();
        json_schema!({
            "type": "string",
            "pattern": format!("^{r}(?:->{r})?$"),
            "not": { "type": "string", "pattern": ALL_ZERO_RATE },
            "description": "Events per second, minute or hour (`\"500/s\"`, `\"30/m\"`), or a \
                linear ramp `start -> end` (`\"20/s -> 200/s\"`; one end may be zero, not both). \
                A bare number is refused: write `\"500/s\"`, not `500`.",
            "examples": ["500/s", "30/m", "20/s -> 200/s"],
        })
    }
}

impl JsonSchema for VuCurve {
    fn schema_name() -> Cow<'static, str> {
        "VuCount".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let v = r"\s*[0-9]+\s*";
        json_schema!({
            "description": "A number of virtual users: a whole number (`300`) or a linear \
                ramp string `\"start -> end\"` (`\"10 -> 100\"`; one end may be zero, not both).",
            "anyOf": [
                { "type": "integer", "minimum": 1, "maximum": u32::MAX },
                {
                    "type": "string",
                    "pattern": format!("^{v}(?:->{v})?$"),
                    "not": { "type": "string", "pattern": ALL_ZERO_VUS },
                },
            ],
            "examples": [300, "10 -> 100"],
        })
    }
}

impl JsonSchema for Fraction {
    fn schema_name() -> Cow<'static, str> {
        "Fraction".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "A fraction: a percentage string from `\"0%\"` to `\"100%\"` \
                (`\"20%\"`, `\"0.5%\"`) or a number from 0 to 1 (`0.2`).",
            "anyOf": [
                {
                    "type": "string",
                    "pattern": r"^\s*0*(?:[0-9]{1,2}(?:\.[0-9]+)?|100(?:\.0+)?)\s*%\s*$",
                },
                { "type": "number", "minimum": 0, "maximum": 1 },
            ],
            "examples": ["20%", "0.5%", 0.2],
        })
    }
}

/// Serialize a unit type as its scenario syntax (its `Display`).
macro_rules! serialize_as_text {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}

serialize_as_text!(ByteSize, Dur, PositiveDur, DurRange, RateCurve, Fraction);

impl Serialize for VuCurve {
    /// A constant count as a number (`300`), a ramp as its string.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.from == self.to {
            s.serialize_u32(self.from)
        } else {
            s.collect_str(self)
        }
    }
}
