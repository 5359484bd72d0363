//! `[compare]`: how much worse than the baseline each stat may get before
//! `stampede compare` (and a run with `--baseline`) calls it a regression.
//! The scenario parses them; the comparison in [`crate::compare`] applies
//! them.

/// How much worse each stat may get.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Tolerances {
    /// Relative rises allowed (0.1 = 10 %).
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    /// Relative drop of throughput allowed.
    pub throughput: f64,
    /// Rise of the error rate allowed, as a fraction (0.0005 = 0.05 pp).
    pub errors: f64,
}

impl Default for Tolerances {
    fn default() -> Self {
        Tolerances {
            p50: 0.10,
            p95: 0.10,
            p99: 0.20,
            throughput: 0.10,
            errors: 0.0005,
        }
    }
}

/// A tolerance that cannot be read (`[compare]` or `--max-regression`):
/// what was typed, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToleranceError {
    /// An item of a `--max-regression` list without `=`.
    #[error("`{item}`: expected stat=value, e.g. p95=10%")]
    Syntax { item: String },
    /// A stat that has no tolerance.
    #[error("unknown stat `{stat}`: use p50, p95, p99, throughput, errors")]
    UnknownStat { stat: String },
    /// A known stat with a value that is not a percentage of 0 or more.
    #[error("`{stat}={value}`: {detail}")]
    InvalidValue {
        stat: String,
        value: String,
        detail: String,
    },
}

impl Tolerances {
    /// Apply `p95=10%,p99=20%,errors=0.05pp,throughput=5%` on top of `self`.
    pub fn parse_into(&mut self, spec: &str) -> Result<(), ToleranceError> {
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item.split_once('=').ok_or_else(|| ToleranceError::Syntax {
                item: item.to_owned(),
            })?;
            self.set(key.trim(), value.trim())?;
        }
        Ok(())
    }

    /// Set one tolerance: percentiles and throughput as `10%`, errors as
    /// `0.05pp` (percentage points) or `0.05%`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), ToleranceError> {
        let invalid = |detail: String| ToleranceError::InvalidValue {
            stat: key.to_owned(),
            value: value.to_owned(),
            detail,
        };
        let percent = |v: &str| -> Result<f64, ToleranceError> {
            let number = v
                .strip_suffix("pp")
                .or_else(|| v.strip_suffix('%'))
                .ok_or_else(|| invalid("write a percentage, e.g. 10% (errors: 0.05pp)".into()))?;
            let x: f64 = number
                .trim()
                .parse()
                .map_err(|_| invalid(format!("`{number}` is not a number")))?;
            if !(x.is_finite() && x >= 0.0) {
                return Err(invalid("must be 0 or more".into()));
            }
            Ok(x / 100.0)
        };
        let slot = match key {
            "p50" => &mut self.p50,
            "p95" => &mut self.p95,
            "p99" => &mut self.p99,
            "throughput" => &mut self.throughput,
            "errors" => &mut self.errors,
            _ => {
                return Err(ToleranceError::UnknownStat {
                    stat: key.to_owned(),
                })
            }
        };
        *slot = percent(value)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tolerances_parse_from_the_command_line() {
        let mut t = Tolerances::default();
        t.parse_into("p95=5%, errors=0.1pp,throughput=20%").unwrap();
        assert_eq!((t.p95, t.errors, t.throughput), (0.05, 0.001, 0.2));
        let err = |spec: &str| t.clone().parse_into(spec).unwrap_err();
        assert!(err("p96=5%").to_string().contains("unknown stat"));
        assert!(err("p95=5").to_string().contains("percentage"));
        assert!(err("p95").to_string().contains("stat=value"));
        // The error carries what was typed, for callers that need more
        // than the message.
        assert_eq!(
            err("p95=5"),
            ToleranceError::InvalidValue {
                stat: "p95".into(),
                value: "5".into(),
                detail: "write a percentage, e.g. 10% (errors: 0.05pp)".into(),
            }
        );
        assert_eq!(
            err("p95=5").to_string(),
            "`p95=5`: write a percentage, e.g. 10% (errors: 0.05pp)"
        );
    }
}
