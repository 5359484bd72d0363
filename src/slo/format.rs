//! SLO values for people: a measured value or a threshold in its unit
//! (`183.2ms`, `0.04%`, `1021.3/s`), and a target in normalised form.

use super::{Slo, Unit};

/// A value in `unit`, for people: `850µs`, `183.2ms`, `1.5s`, `0.04%`,
/// `1021.3/s`, `1200`.
pub fn format_value(unit: Unit, value: f64) -> String {
    use crate::units::format;
    match unit {
        Unit::Micros => format::micros(value),
        Unit::Fraction => format::fraction(value),
        Unit::PerSecond => format::per_second(value),
        Unit::Count => format::count(value),
    }
}

/// The target in normalised form, from the parsed threshold: `< 200ms`,
/// `< 0.1%`, `>= 500/s`.
pub fn format_target(slo: &Slo) -> String {
    format!("{} {}", slo.op, format_value(slo.unit(), slo.threshold))
}

#[cfg(test)]
mod tests {
    use super::super::tests::ok;
    use super::*;

    #[test]
    fn values_and_targets_format_for_people() {
        assert_eq!(format_value(Unit::Micros, 850.0), "850µs");
        assert_eq!(format_value(Unit::Micros, 12.46), "12.5µs");
        assert_eq!(format_value(Unit::Micros, 183_240.0), "183.2ms");
        assert_eq!(format_value(Unit::Micros, 200_000.0), "200ms");
        assert_eq!(format_value(Unit::Micros, 1_500_000.0), "1.5s");
        assert_eq!(format_value(Unit::Fraction, 0.0004), "0.04%");
        assert_eq!(format_value(Unit::Fraction, 0.05), "5%");
        assert_eq!(format_value(Unit::Fraction, 0.0), "0%");
        assert_eq!(format_value(Unit::Fraction, 0.000_012), "0.0012%");
        assert_eq!(format_value(Unit::PerSecond, 1021.26), "1021.3/s");
        assert_eq!(format_value(Unit::PerSecond, 300.0), "300/s");
        assert_eq!(format_value(Unit::Count, 1200.0), "1200");
        assert_eq!(format_target(&ok("http.errors.rate", "<0.001")), "< 0.1%");
        assert_eq!(format_target(&ok("http.latency.p99", ">=1.5s")), ">= 1.5s");
        assert_eq!(
            format_target(&ok("http.requests.rate", "> 30/m")),
            "> 0.5/s"
        );
    }
}
