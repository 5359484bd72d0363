//! The SLO grammar: a key (`metric{tags}.stat`) and a target (`op value`)
//! into an [`Slo`], with a message that says what is wrong and, for an
//! unknown metric, which known one was probably meant. Metric names, kinds
//! and the stats they allow come from [`crate::metrics::catalogue`]; the
//! threshold's value is read by [`crate::units`]' SLO forms.

use super::{Op, Slo, SloError, Stat, Unit};
use crate::metrics::catalogue::{bare_metric, kind_of, known_metrics};
use crate::units::{threshold_count, threshold_fraction, threshold_micros, threshold_per_second};

/// Parse one `[slo]` entry.
pub fn parse(key: &str, target: &str) -> Result<Slo, SloError> {
    let invalid = |detail: String| SloError::Invalid {
        key: key.to_owned(),
        detail,
    };
    let key_trimmed = key.trim();
    let parts = match bare_metric(key_trimmed) {
        Some((name, _)) => KeyParts {
            metric: name,
            tags: None,
            stat: "",
        },
        None => split_key(key_trimmed).map_err(invalid)?,
    };
    let Some(kind) = kind_of(parts.metric) else {
        return Err(SloError::UnknownMetric {
            metric: parts.metric.to_owned(),
            suggestion: suggest_metric(parts.metric).map(str::to_owned),
        });
    };
    let mut population = None;
    let mut step = None;
    let mut phase = None;
    if let Some(tags) = parts.tags {
        for item in tags.split(',') {
            let item = item.trim();
            let Some((name, value)) = item.split_once('=') else {
                return Err(invalid(format!("tag `{item}` needs a value: `name=value`")));
            };
            let (name, value) = (name.trim(), value.trim());
            let slot = match name {
                "population" => &mut population,
                "step" => &mut step,
                "phase" => &mut phase,
                _ => {
                    return Err(invalid(format!(
                        "unknown tag `{name}`; tags are population, step and phase"
                    )))
                }
            };
            if value.is_empty() {
                return Err(invalid(format!("tag `{name}` has an empty value")));
            }
            if slot.replace(value.to_owned()).is_some() {
                return Err(invalid(format!("tag `{name}` is given twice")));
            }
        }
    }
    let bare = bare_metric(parts.metric)
        .filter(|_| parts.stat.is_empty())
        .map(|(_, stat)| stat);
    let stat = bare
        .or_else(|| parse_stat(parts.stat))
        .filter(|stat| kind.allows(*stat))
        .ok_or_else(|| {
            invalid(format!(
                "`{}` is not a stat of {}; use one of: {}",
                parts.stat,
                parts.metric,
                kind.valid_stats()
            ))
        })?;
    if let Stat::Percentile(p) = stat {
        if !(p > 0.0 && p <= 100.0) {
            return Err(invalid(format!(
                "percentile `{}` must be above 0 and at most 100",
                parts.stat
            )));
        }
    }
    let (op, value) = split_target(target).map_err(invalid)?;
    let threshold = match kind.unit(stat) {
        Unit::Micros => threshold_micros(value),
        Unit::Count => threshold_count(value),
        Unit::Fraction => threshold_fraction(value),
        Unit::PerSecond => threshold_per_second(value),
    }
    .map_err(|expected| invalid(format!("target `{}`: {expected}", target.trim())))?;
    Ok(Slo {
        key: key.to_owned(),
        target: target.trim().to_owned(),
        metric: parts.metric.to_owned(),
        population,
        step,
        phase,
        stat,
        op,
        threshold,
    })
}

/// The pieces of a key, not yet validated.
struct KeyParts<'a> {
    metric: &'a str,
    /// Inside the braces, when present.
    tags: Option<&'a str>,
    stat: &'a str,
}

fn split_key(key: &str) -> Result<KeyParts<'_>, String> {
    const SHAPE: &str = "expected `metric{tags}.stat` or `metric.stat`, e.g. `http.latency.p95`";
    if let Some(open) = key.find('{') {
        let Some(close) = key[open..].find('}').map(|i| open + i) else {
            return Err(format!("missing `}}` after the tags; {SHAPE}"));
        };
        let Some(stat) = key[close + 1..].strip_prefix('.') else {
            return Err(format!(
                "expected `.stat` after the tags, e.g. `}}.p99`; {SHAPE}"
            ));
        };
        return Ok(KeyParts {
            metric: key[..open].trim(),
            tags: Some(&key[open + 1..close]),
            stat,
        });
    }
    if known_metrics().contains(&key) {
        return Err(format!("no stat; {SHAPE}"));
    }
    // Metric names and `p99.9` both contain dots: a known metric prefix
    // wins; otherwise the first split whose rest reads as a stat; otherwise
    // the last dot.
    let split = known_metrics()
        .iter()
        .filter(|name| {
            key.strip_prefix(*name)
                .is_some_and(|rest| rest.starts_with('.') && parse_stat(&rest[1..]).is_some())
        })
        .map(|name| name.len())
        .max()
        .or_else(|| {
            key.match_indices('.')
                .map(|(i, _)| i)
                .find(|&i| parse_stat(&key[i + 1..]).is_some())
        })
        .or_else(|| key.rfind('.'));
    match split {
        Some(i) if i > 0 && i + 1 < key.len() => Ok(KeyParts {
            metric: &key[..i],
            tags: None,
            stat: &key[i + 1..],
        }),
        _ => Err(format!("no stat; {SHAPE}")),
    }
}

/// A stat's syntax (percentile range is checked by the caller).
fn parse_stat(text: &str) -> Option<Stat> {
    match text {
        "max" => Some(Stat::Max),
        "min" => Some(Stat::Min),
        "mean" => Some(Stat::Mean),
        "count" => Some(Stat::Count),
        "rate" => Some(Stat::Rate),
        _ => {
            let digits = text.strip_prefix('p')?;
            let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
            let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            (all_digits(whole) && all_digits(fraction))
                .then(|| digits.parse().ok().map(Stat::Percentile))
                .flatten()
        }
    }
}

/// The closest known metric, if one is plausibly meant.
fn suggest_metric(metric: &str) -> Option<&'static str> {
    if let Some(name) = known_metrics().iter().find(|name| {
        !metric.is_empty()
            && name.ends_with(metric)
            && name[..name.len() - metric.len()].ends_with('.')
    }) {
        return Some(name);
    }
    known_metrics()
        .iter()
        .map(|name| (strsim::normalized_damerau_levenshtein(metric, name), *name))
        .filter(|(score, _)| *score >= 0.6)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}

fn split_target(target: &str) -> Result<(Op, &str), String> {
    let text = target.trim();
    let (op, rest) = [("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)]
        .into_iter()
        .find_map(|(symbol, op)| text.strip_prefix(symbol).map(|rest| (op, rest.trim())))
        .ok_or_else(|| {
            format!(
                "target `{text}`: expected an operator (<, <=, >, >=) and a value, e.g. `< 200ms`"
            )
        })?;
    if rest.is_empty() {
        return Err(format!("target `{text}`: missing the value after `{op}`"));
    }
    Ok((op, rest))
}

#[cfg(test)]
mod tests {
    use super::super::tests::ok;
    use super::*;
    use crate::slo::known_metrics;

    fn invalid(key: &str, target: &str) -> String {
        match parse(key, target) {
            Err(SloError::Invalid { key: k, detail }) => {
                assert_eq!(k, key);
                detail
            }
            other => panic!("{key} = {target}: expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn parses_percentiles_durations_and_tags() {
        let slo = ok("http.latency.p95", "< 200ms");
        assert_eq!(
            slo,
            Slo {
                key: "http.latency.p95".into(),
                target: "< 200ms".into(),
                metric: "http.latency".into(),
                population: None,
                step: None,
                phase: None,
                stat: Stat::Percentile(95.0),
                op: Op::Lt,
                threshold: 200_000.0,
            }
        );
        let slo = ok("http.latency{step=checkout}.p99", "<500ms");
        assert_eq!(
            (slo.step.as_deref(), slo.op, slo.threshold),
            (Some("checkout"), Op::Lt, 500_000.0)
        );
        let slo = ok(
            "http.latency{population=shopper, step = checkout,phase=spike}.p99.9",
            "<= 1.5s",
        );
        assert_eq!(slo.population.as_deref(), Some("shopper"));
        assert_eq!(slo.step.as_deref(), Some("checkout"));
        assert_eq!(slo.phase.as_deref(), Some("spike"));
        assert_eq!(
            (slo.stat, slo.op, slo.threshold),
            (Stat::Percentile(99.9), Op::Le, 1_500_000.0)
        );
        assert_eq!(
            ok("http.latency.p99.99", "<1s").stat,
            Stat::Percentile(99.99)
        );
        assert_eq!(ok("http.latency.p100", "<1s").stat, Stat::Percentile(100.0));
        let slo = ok("http.service_time.max", ">= 850us");
        assert_eq!(
            (slo.stat, slo.op, slo.threshold),
            (Stat::Max, Op::Ge, 850.0)
        );
        assert_eq!(ok("http.service_time.max", ">850µs").threshold, 850.0);
        assert_eq!(ok("generator.lag.mean", "< 2m").threshold, 120e6);
        assert_eq!(ok("generator.lag.min", "> 1h").threshold, 3600e6);
        let slo = ok("http.latency.count", ">= 100");
        assert_eq!(
            (slo.stat, slo.threshold, slo.unit()),
            (Stat::Count, 100.0, Unit::Count)
        );
    }

    #[test]
    fn parses_counter_stats() {
        let slo = ok("http.errors.rate", "< 0.1%");
        assert_eq!(
            (slo.stat, slo.op, slo.unit()),
            (Stat::Rate, Op::Lt, Unit::Fraction)
        );
        assert!((slo.threshold - 0.001).abs() < 1e-12);
        assert_eq!(ok("http.errors.rate", "<0.001").threshold, 0.001);
        assert_eq!(ok("http.errors.rate", "<= 100%").threshold, 1.0);
        assert_eq!(ok("http.errors.count", "<= 5").threshold, 5.0);
        let slo = ok("http.requests.rate", "> 500/s");
        assert_eq!(
            (slo.op, slo.threshold, slo.unit()),
            (Op::Gt, 500.0, Unit::PerSecond)
        );
        assert_eq!(ok("http.requests.rate", ">= 30/m").threshold, 0.5);
        assert_eq!(ok("http.requests.rate", ">= 7200/h").threshold, 2.0);
        assert_eq!(ok("http.requests.rate", ">= 1000").threshold, 1000.0);
        assert_eq!(ok("http.requests.count", ">= 10000").threshold, 10_000.0);
        assert_eq!(
            ok("http.requests{phase=spike}.rate", ">= 1000/s")
                .phase
                .as_deref(),
            Some("spike")
        );
    }

    #[test]
    fn wait_and_journey_metrics_parse_with_their_units() {
        let slo = ok("http.wait{step=status}.mean", "< 5s");
        assert_eq!((slo.metric.as_str(), slo.stat), ("http.wait", Stat::Mean));
        assert_eq!((slo.unit(), slo.threshold), (Unit::Micros, 5e6));
        assert_eq!(slo.step.as_deref(), Some("status"));
        let slo = ok("http.wait.polls.p95", "<= 10");
        assert_eq!(slo.metric, "http.wait.polls");
        assert_eq!((slo.unit(), slo.threshold), (Unit::Count, 10.0));
        let slo = ok("http.journey{population=shopper}.p95", "< 2s");
        assert_eq!(slo.metric, "http.journey");
        assert_eq!(slo.population.as_deref(), Some("shopper"));
    }

    #[test]
    fn hub_metrics_parse_with_their_units() {
        let slo = ok("hub.recovery", "< 30s");
        assert_eq!((slo.metric.as_str(), slo.stat), ("hub.recovery", Stat::Max));
        assert_eq!(slo.threshold, 30e6);
        let slo = ok("hub.reconnect.attempts.p99", "<= 5");
        assert_eq!(slo.metric, "hub.reconnect.attempts");
        assert_eq!((slo.unit(), slo.threshold), (Unit::Count, 5.0));
        let slo = ok("hub.reconnect.p95", "< 10s");
        assert_eq!(slo.metric, "hub.reconnect");
        assert_eq!(ok("hub.errors.rate", "< 1%").unit(), Unit::Fraction);
        assert_eq!(ok("hub.connects.rate", "> 100/s").unit(), Unit::PerSecond);
        let slo = ok("hub.command.delivery{population=agent}.p99", "< 250ms");
        assert_eq!(slo.population.as_deref(), Some("agent"));
        assert!(
            parse("hub.connect", "< 1s").is_err(),
            "only hub.recovery may omit its stat"
        );
    }

    #[test]
    fn unknown_metrics_come_with_a_suggestion_when_close() {
        let unknown = |key: &str| match parse(key, "< 1s") {
            Err(SloError::UnknownMetric { metric, suggestion }) => (metric, suggestion),
            other => panic!("{key}: {other:?}"),
        };
        assert_eq!(
            unknown("http.latncy.p95"),
            ("http.latncy".into(), Some("http.latency".into()))
        );
        assert_eq!(
            unknown("latency.p95"),
            ("latency".into(), Some("http.latency".into()))
        );
        assert_eq!(
            unknown("http.eror{step=a}.rate"),
            ("http.eror".into(), Some("http.errors".into()))
        );
        assert_eq!(
            unknown("hub.conect.p99"),
            ("hub.conect".into(), Some("hub.connect".into()))
        );
        let err = parse("http.latncy.p95", "< 1s").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown metric `http.latncy` (did you mean `http.latency`?)"
        );
        assert_eq!(known_metrics().len(), 28);
        assert!(known_metrics().contains(&"http.wait"));
        assert!(known_metrics().contains(&"http.wait.open"));
        assert!(known_metrics().contains(&"http.journey"));
        assert!(known_metrics().contains(&"http.recovery"));
        assert!(known_metrics().contains(&"hub.recovery"));
        assert!(known_metrics().contains(&"generator.lag"));
    }

    #[test]
    fn malformed_keys_are_refused_with_what_is_wrong() {
        assert!(invalid("http.latency", "< 1s").contains("no stat"));
        assert!(invalid("http.latency{step=a", "< 1s").contains("missing `}`"));
        assert!(invalid("http.latency{step=a}p99", "< 1s").contains("`.stat` after the tags"));
        let d = invalid("http.latency{region=eu}.p99", "< 1s");
        assert!(
            d.contains("unknown tag `region`") && d.contains("population, step and phase"),
            "{d}"
        );
        assert!(invalid("http.latency{step}.p99", "< 1s").contains("needs a value"));
        assert!(invalid("http.latency{step=}.p99", "< 1s").contains("empty value"));
        assert!(invalid("http.latency{step=a,step=b}.p99", "< 1s").contains("given twice"));
        assert!(invalid("http.latency{}.p99", "< 1s").contains("needs a value"));
    }

    #[test]
    fn stats_must_fit_the_metric() {
        let d = invalid("http.latency.rate", "< 1s");
        assert!(d.contains("`rate` is not a stat of http.latency"), "{d}");
        assert!(
            d.contains("p99.9") && d.contains("mean") && d.contains("count"),
            "{d}"
        );
        let d = invalid("http.requests.p99", "< 1");
        assert!(d.contains("use one of: count, rate"), "{d}");
        assert!(invalid("http.errors.max", "< 1").contains("count, rate"));
        assert!(invalid("http.latency.median", "< 1s").contains("not a stat"));
        assert!(invalid("http.latency.p9x", "< 1s").contains("not a stat"));
        assert!(invalid("http.latency.p0", "< 1s").contains("above 0 and at most 100"));
        assert!(invalid("http.latency.p100.5", "< 1s").contains("above 0 and at most 100"));
    }

    #[test]
    fn targets_must_have_an_operator_and_the_right_unit() {
        assert!(invalid("http.latency.p95", "200ms").contains("expected an operator"));
        assert!(invalid("http.latency.p95", "= 200ms").contains("expected an operator"));
        assert!(invalid("http.latency.p95", "<").contains("missing the value after `<`"));
        let d = invalid("http.latency.p95", "< 200");
        assert!(
            d.contains("target `< 200`") && d.contains("duration with a unit"),
            "{d}"
        );
        assert!(invalid("http.latency.p95", "< 200ns").contains("duration with a unit"));
        assert!(invalid("http.latency.p95", "< -5ms").contains("duration with a unit"));
        assert!(invalid("http.latency.p95", "< 200ms extra").contains("duration with a unit"));
        assert!(invalid("http.latency.p95", "< 1e3ms").contains("duration with a unit"));
        assert!(invalid("http.latency.count", "> 1.5").contains("whole number"));
        assert!(invalid("http.errors.rate", "< 150%").contains("percentage"));
        assert!(invalid("http.errors.rate", "< 2").contains("fraction between 0 and 1"));
        assert!(invalid("http.errors.rate", "< 1ms").contains("percentage"));
        assert!(invalid("http.requests.rate", "> 5/d").contains("a rate"));
        assert!(invalid("http.requests.rate", "> fast").contains("a rate"));
        assert!(invalid("http.requests.count", "> -1").contains("whole number"));
    }
}
