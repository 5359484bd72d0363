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

impl Tolerances {
    /// Apply `p95=10%,p99=20%,errors=0.05pp,throughput=5%` on top of `self`.
    pub fn parse_into(&mut self, spec: &str) -> Result<(), String> {
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| format!("`{item}`: expected stat=value, e.g. p95=10%"))?;
            self.set(key.trim(), value.trim())?;
        }
        Ok(())
    }

    /// Set one tolerance: percentiles and throughput as `10%`, errors as
    /// `0.05pp` (percentage points) or `0.05%`.
    pub fn set(&mut self, key: &str, value: &str) -> Result<(), String> {
        let percent = |v: &str| -> Result<f64, String> {
            let number = v
                .strip_suffix("pp")
                .or_else(|| v.strip_suffix('%'))
                .ok_or_else(|| {
                    format!("`{key}={v}`: write a percentage, e.g. 10% (errors: 0.05pp)")
                })?;
            let x: f64 = number
                .trim()
                .parse()
                .map_err(|_| format!("`{key}={v}`: `{number}` is not a number"))?;
            if !(x.is_finite() && x >= 0.0) {
                return Err(format!("`{key}={v}`: must be 0 or more"));
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
                return Err(format!(
                    "unknown stat `{key}`: use p50, p95, p99, throughput, errors"
                ))
            }
        };
        *slot = percent(value)?;
        Ok(())
    }
}
