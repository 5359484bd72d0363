//! `Deserialize` for the unit types: a TOML string goes through the same
//! grammar as `FromStr`, a TOML number gets a message saying how to write
//! it (`"5s"`, not `5`), and because the value is deserialized in place the
//! toml crate attaches its span to the error (file, line and column come
//! for free in [`crate::scenario::diagnostic`]).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, Visitor};

use super::{
    ByteSize, Dur, DurRange, Fraction, PositiveDur, RateCurve, UnitError, ValueKind, VuCurve,
};

/// A TOML number, as seen by a visitor.
#[derive(Clone, Copy)]
enum Num {
    Int(i128),
    Float(f64),
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::Int(n) => write!(f, "{n}"),
            Num::Float(x) => write!(f, "{x:?}"),
        }
    }
}

/// A visitor for a unit-carrying value: strings go through `from_str`,
/// numbers through `from_num`; any other TOML type is an `invalid_type`
/// error naming `expecting`.
struct UnitVisitor<T> {
    expecting: &'static str,
    from_str: fn(&str) -> Result<T, UnitError>,
    from_num: fn(Num) -> Result<T, UnitError>,
    marker: PhantomData<T>,
}

impl<T> UnitVisitor<T> {
    fn run<'de, D: Deserializer<'de>>(
        d: D,
        expecting: &'static str,
        from_str: fn(&str) -> Result<T, UnitError>,
        from_num: fn(Num) -> Result<T, UnitError>,
    ) -> Result<T, D::Error> {
        d.deserialize_any(UnitVisitor {
            expecting,
            from_str,
            from_num,
            marker: PhantomData,
        })
    }
}

impl<'de, T> Visitor<'de> for UnitVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.from_str)(v).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        (self.from_num)(Num::Int(v.into())).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        (self.from_num)(Num::Int(v.into())).map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        (self.from_num)(Num::Float(v)).map_err(E::custom)
    }
}

fn duration_number<T>(n: Num) -> Result<T, UnitError> {
    Err(UnitError::new(
        ValueKind::Duration,
        n,
        format!(
            "a duration needs a unit and is written as a string, e.g. `\"{n}s\"` or `\"250ms\"`"
        ),
    ))
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        UnitVisitor::run(
            d,
            "a duration string with a unit, e.g. \"250ms\"",
            str::parse,
            duration_number,
        )
    }
}

impl<'de> Deserialize<'de> for PositiveDur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        UnitVisitor::run(
            d,
            "a duration string with a unit, e.g. \"250ms\"",
            str::parse,
            duration_number,
        )
    }
}

impl<'de> Deserialize<'de> for DurRange {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        UnitVisitor::run(
            d,
            "a duration or a duration range string, e.g. \"500ms..2s\"",
            str::parse,
            duration_number,
        )
    }
}

impl<'de> Deserialize<'de> for RateCurve {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        UnitVisitor::run(
            d,
            "a rate string such as \"500/s\" or \"20/s -> 200/s\"",
            str::parse,
            |n| {
                Err(UnitError::new(
                    ValueKind::Rate,
                    n,
                    format!(
                        "a rate needs a unit and is written as a string, \
                         e.g. `\"{n}/s\"` or `\"20/s -> 200/s\"`"
                    ),
                ))
            },
        )
    }
}

impl<'de> Deserialize<'de> for VuCurve {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        UnitVisitor::run(
            d,
            "a VU count such as 300 or a ramp such as \"10 -> 100\"",
            str::parse,
            |n| match n {
                Num::Int(i) if i < 0 => Err(UnitError::new(
                    ValueKind::VuCount,
                    n,
                    "a VU count cannot be negative",
                )),
                Num::Int(i) => {
                    let v = u32::try_from(i).map_err(|_| {
                        UnitError::new(ValueKind::VuCount, n, "the value is too large")
                    })?;
                    VuCurve { from: v, to: v }.checked(&n.to_string())
                }
                Num::Float(_) => Err(UnitError::new(
                    ValueKind::VuCount,
                    n,
                    "a VU count is a whole number, e.g. `300`",
                )),
            },
        )
    }
}

impl<'de> Deserialize<'de> for Fraction {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        UnitVisitor::run(
            d,
            "a percentage string such as \"20%\" or a number between 0 and 1",
            str::parse,
            |n| match n {
                Num::Int(i) => Fraction::from_number(i as f64, &n.to_string()),
                Num::Float(x) => Fraction::from_number(x, &n.to_string()),
            },
        )
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        UnitVisitor::run(
            d,
            "a number of bytes or a size string such as \"16MiB\"",
            str::parse,
            |n| match n {
                Num::Int(i) => u64::try_from(i).map(ByteSize).map_err(|_| {
                    UnitError::new(ValueKind::Size, n, "a size is a whole number of bytes")
                }),
                Num::Float(_) => Err(UnitError::new(
                    ValueKind::Size,
                    n,
                    "a number of bytes is whole; with a unit write a string, e.g. `\"1.5MiB\"`",
                )),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::ms;
    use super::*;
    use crate::scenario::diagnostic::Diagnostic;
    use std::path::Path;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Sample {
        think: Option<DurRange>,
        duration: Option<PositiveDur>,
        timeout: Option<Dur>,
        rate: Option<RateCurve>,
        vus: Option<VuCurve>,
        fraction: Option<Fraction>,
    }

    fn sample(src: &str) -> Result<Sample, toml::de::Error> {
        toml::from_str(src)
    }

    #[test]
    fn deserialize_valid_values() {
        let s = sample(
            "think = \"500ms..2s\"\nduration = \"1m\"\ntimeout = \"250ms\"\n\
             rate = \"20/s -> 200/s\"\nvus = 300\nfraction = \"20%\"\n",
        )
        .unwrap();
        assert_eq!(
            s.think,
            Some(DurRange {
                min: ms(500),
                max: ms(2000)
            })
        );
        assert_eq!(s.duration, Some(PositiveDur(ms(60_000))));
        assert_eq!(s.timeout, Some(Dur(ms(250))));
        assert_eq!(
            s.rate,
            Some(RateCurve {
                from: 20.0,
                to: 200.0
            })
        );
        assert_eq!(s.vus, Some(VuCurve { from: 300, to: 300 }));
        assert_eq!(s.fraction, Some(Fraction(0.2)));

        let s = sample("vus = \"10 -> 100\"\nfraction = 0.33\n").unwrap();
        assert_eq!(s.vus, Some(VuCurve { from: 10, to: 100 }));
        assert_eq!(s.fraction, Some(Fraction(0.33)));
        let s = sample("fraction = 1\n").unwrap();
        assert_eq!(s.fraction, Some(Fraction(1.0)));
    }

    #[test]
    fn deserialize_errors_name_the_value() {
        for (src, want) in [
            (
                "timeout = 5",
                "invalid duration `5`: a duration needs a unit",
            ),
            ("timeout = 1.5", "`\"1.5s\"`"),
            ("timeout = true", "expected a duration string with a unit"),
            ("timeout = [1]", "expected a duration string with a unit"),
            ("duration = \"0s\"", "must be greater than zero"),
            ("think = 3", "invalid duration `3`"),
            ("rate = 500", "invalid rate `500`: a rate needs a unit"),
            ("rate = \"0/s\"", "rate must be greater than zero"),
            (
                "vus = -5",
                "invalid VU count `-5`: a VU count cannot be negative",
            ),
            ("vus = 0", "VU count must be greater than zero"),
            ("vus = 5000000000", "too large"),
            ("vus = 1.5", "whole number"),
            ("vus = \"0 -> 0\"", "VU count must be greater than zero"),
            (
                "fraction = 1.5",
                "invalid fraction `1.5`: must be between 0 and 1",
            ),
            ("fraction = -0.1", "must be between 0 and 1"),
            ("fraction = 2", "invalid fraction `2`"),
            ("fraction = nan", "must be between 0 and 1"),
            ("fraction = \"120%\"", "between 0% and 100%"),
        ] {
            let err = sample(src).unwrap_err();
            assert!(err.message().contains(want), "{src}: {}", err.message());
        }
    }

    #[test]
    fn deserialize_error_span_points_at_the_value() {
        let src = "timeout = \"250ms\"\n\nthink = \"2s..1s\"\nrate =   \"fast\"\n";
        let err = sample(src).unwrap_err();
        let diag = Diagnostic::from_toml(Path::new("x.toml"), src, &err);
        assert_eq!((diag.line, diag.column), (3, 9));
        assert_eq!(diag.width, "\"2s..1s\"".len());
        assert!(diag.message.contains("invalid duration range `2s..1s`"));

        let src = "timeout = \"250ms\"\nrate =   \"fast\"\n";
        let err = sample(src).unwrap_err();
        let diag = Diagnostic::from_toml(Path::new("x.toml"), src, &err);
        assert_eq!((diag.line, diag.column), (2, 10));
        assert_eq!(diag.source_line, "rate =   \"fast\"");
        assert!(
            diag.message.contains("invalid rate `fast`"),
            "{}",
            diag.message
        );

        let nested: Result<std::collections::BTreeMap<String, Sample>, _> =
            toml::from_str("[a]\ntimeout = \"1s\"\n[b]\nvus = -3\n");
        let err = nested.unwrap_err();
        let diag = Diagnostic::from_toml(
            Path::new("x.toml"),
            "[a]\ntimeout = \"1s\"\n[b]\nvus = -3\n",
            &err,
        );
        assert_eq!((diag.line, diag.column, diag.width), (4, 7, 2));
    }

    #[test]
    fn unknown_field_gets_a_suggestion() {
        let src = "timeout = \"1s\"\nthinkk = \"1s\"\n";
        let err = sample(src).unwrap_err();
        let diag = Diagnostic::from_toml(Path::new("x.toml"), src, &err);
        assert_eq!((diag.line, diag.column), (2, 1));
        assert!(
            diag.message.starts_with("unknown field `thinkk`"),
            "{}",
            diag.message
        );
        assert_eq!(diag.help.as_deref(), Some("did you mean `think`?"));
    }
}
