//! The target's knobs: [`TargetConfig`] (with its validation and the
//! [`ConfigPatch`] that `POST /admin/config` applies), the [`Latency`]
//! distribution, the duration text they use, and [`KnobError`], the
//! typed error for a knob given a value it does not take.
//!
//! # Durations
//!
//! A duration is written as in scenario files, by the same strict parser:
//! a non-negative decimal number and a unit, `us` (also `µs`), `ms`, `s`,
//! `m` or `h`, parts may be chained — `250us`, `5ms`, `1.5s`, `1m30s`. A
//! bare `0` is also accepted. It is exact: `0.1s` is 100 ms to the
//! nanosecond. [`format_duration`] prints one back.
//!
//! # Latency
//!
//! | text          | meaning                                          |
//! |---------------|--------------------------------------------------|
//! | `0`, `none`   | no added service time                            |
//! | `5ms`         | exactly 5 ms                                     |
//! | `2ms..10ms`   | uniform between 2 ms and 10 ms (inclusive)       |
//! | `exp:5ms`     | exponential with a 5 ms mean                     |

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Parses a target duration: `0`, or a duration with a unit as in scenario
/// files (`250us`, `5ms`, `1.5s`, `1m`): the scenario's strict parser.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    if text.trim() == "0" {
        return Ok(Duration::ZERO);
    }
    crate::units::parse_duration(text)
}

/// Formats a duration so that [`parse_duration`] reads it back exactly.
pub fn format_duration(d: Duration) -> String {
    if d.is_zero() {
        "0".to_string()
    } else {
        crate::units::Dur(d).to_string()
    }
}

/// The added service time of each `/api/*` request, held while the request
/// holds its concurrency permit.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Latency {
    /// No added time.
    #[default]
    None,
    /// Always this long.
    Fixed(Duration),
    /// Uniform in `[min, max]`.
    Uniform { min: Duration, max: Duration },
    /// Exponentially distributed with this mean (capped at 100 × the mean).
    Exponential { mean: Duration },
}

const LATENCY_FORMS: &str =
    "expected `0` (none), a fixed duration like `5ms`, a uniform range like `2ms..10ms`, or an exponential mean like `exp:5ms` (units: us, ms, s)";

impl Latency {
    /// Draws one service time.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match *self {
            Latency::None => Duration::ZERO,
            Latency::Fixed(d) => d,
            Latency::Uniform { min, max } => {
                if min >= max {
                    return min;
                }
                let lo = min.as_nanos() as u64;
                let hi = max.as_nanos() as u64;
                Duration::from_nanos(rng.gen_range(lo..=hi))
            }
            Latency::Exponential { mean } => {
                // Inverse CDF: -mean * ln(1 - u), u in [0, 1). Capped so a
                // freak draw cannot hold a permit for minutes.
                let u: f64 = rng.gen();
                let factor = (-(1.0 - u).ln()).min(100.0);
                Duration::from_secs_f64(mean.as_secs_f64() * factor)
            }
        }
    }

    /// True when no time is ever added.
    pub fn is_none(&self) -> bool {
        matches!(self, Latency::None)
    }
}

impl FromStr for Latency {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let err = |detail: String| format!("invalid latency `{s}`: {detail}; {LATENCY_FORMS}");
        if t.is_empty() {
            return Err(err("empty".into()));
        }
        if t == "0" || t.eq_ignore_ascii_case("none") {
            return Ok(Latency::None);
        }
        if let Some(rest) = t.strip_prefix("exp:") {
            let mean = parse_duration(rest).map_err(err)?;
            return Ok(if mean.is_zero() {
                Latency::None
            } else {
                Latency::Exponential { mean }
            });
        }
        if let Some((a, b)) = t.split_once("..") {
            let min = parse_duration(a).map_err(err)?;
            let max = parse_duration(b).map_err(err)?;
            if min > max {
                return Err(err(format!(
                    "the range minimum {} is above its maximum {}",
                    format_duration(min),
                    format_duration(max)
                )));
            }
            return Ok(if max.is_zero() {
                Latency::None
            } else {
                Latency::Uniform { min, max }
            });
        }
        let d = parse_duration(t).map_err(err)?;
        Ok(if d.is_zero() {
            Latency::None
        } else {
            Latency::Fixed(d)
        })
    }
}

impl fmt::Display for Latency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Latency::None => f.write_str("0"),
            Latency::Fixed(d) => f.write_str(&format_duration(d)),
            Latency::Uniform { min, max } => {
                write!(f, "{}..{}", format_duration(min), format_duration(max))
            }
            Latency::Exponential { mean } => write!(f, "exp:{}", format_duration(mean)),
        }
    }
}

impl Serialize for Latency {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Latency;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a latency string such as \"0\", \"5ms\", \"2ms..10ms\" or \"exp:5ms\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Latency, E> {
                v.parse().map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Latency, E> {
                if v == 0 {
                    Ok(Latency::None)
                } else {
                    Err(E::custom(format!(
                        "a bare number ({v}) has no unit; {LATENCY_FORMS}"
                    )))
                }
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Latency, E> {
                if v == 0 {
                    Ok(Latency::None)
                } else {
                    Err(E::custom(format!(
                        "a bare number ({v}) has no unit; {LATENCY_FORMS}"
                    )))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A target duration: `0`, or a duration with a unit as in scenario files.
fn target_duration_pattern() -> String {
    format!(r"\s*(?:0\s*|{})", crate::units::schema::duration_body())
}

impl schemars::JsonSchema for Latency {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Latency".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let d = target_duration_pattern();
        schemars::json_schema!({
            "description": "A service time: `\"0\"` or `\"none\"` (none), a fixed duration \
                (`\"5ms\"`), a uniform range (`\"2ms..10ms\"`) or an exponential mean \
                (`\"exp:5ms\"`); units us, ms, s, m, h.",
            "anyOf": [
                {
                    "type": "string",
                    "pattern": format!(r"^\s*(?:[nN][oO][nN][eE]\s*|exp:{d}|{d}(?:\.\.{d})?)$"),
                },
                { "type": "integer", "enum": [0] },
            ],
            "examples": ["0", "5ms", "2ms..10ms", "exp:5ms"],
        })
    }
}

/// The schema of a [`duration_str`] field.
struct TargetDuration;

impl schemars::JsonSchema for TargetDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TargetDuration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": format!("^{}$", target_duration_pattern()),
            "not": { "type": "string", "pattern": crate::units::schema::ALL_ZERO_DURATION },
            "description": "A duration greater than zero with a unit (us, ms, s, m, h).",
            "examples": ["25s", "500ms"],
        })
    }
}

/// Serde helpers for a [`Duration`] written as a target duration string.
pub mod duration_str {
    use super::*;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(d)?;
        parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// The most items one page of `GET /api/servers` may hold.
pub const MAX_PAGE_SIZE: usize = 1000;

/// Knobs of the built-in target. In a scenario they sit under
/// `[target.builtin]`:
///
/// ```toml
/// [target.builtin]
/// latency = "2ms..5ms"     # service time per /api request (see Latency)
/// error_rate = 0.01        # fraction of /api requests answered 500
/// concurrency = 8          # permits; absent = unlimited
/// queue = 100              # requests that may wait for a permit; more → 503
/// job_workers = 4          # workers running submitted jobs, in FIFO order
/// job_duration = "2s"      # how long each job runs (a Latency: "exp:200ms", "50ms..150ms")
/// page_size = 20           # default per_page of GET /api/servers
/// hub_ping_interval = "25s" # Engine.IO ping interval of the hub
/// hub_ping_timeout = "20s"  # how long the hub waits for a pong
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TargetConfig {
    /// Service time added to each `/api/*` request while it holds a permit.
    pub latency: Latency,
    /// Fraction (0..=1) of `/api/*` requests answered `500 {"error":"injected"}`.
    #[schemars(range(min = 0, max = 1))]
    pub error_rate: f64,
    /// At most this many `/api/*` requests are served at once; `None` = no limit.
    #[schemars(range(min = 1))]
    pub concurrency: Option<usize>,
    /// With a concurrency limit: how many requests may wait for a permit;
    /// beyond that a request is answered `503 {"error":"overloaded"}` at once.
    pub queue: usize,
    /// Worker tasks running submitted jobs (at least 1): the job
    /// capacity is `job_workers / mean job_duration`.
    #[schemars(range(min = 1))]
    pub job_workers: usize,
    /// How long one job runs once a worker takes it, drawn per job from
    /// this distribution (the [`Latency`] forms).
    pub job_duration: Latency,
    /// Default `per_page` of `GET /api/servers`.
    #[schemars(range(min = 1, max = MAX_PAGE_SIZE))]
    pub page_size: usize,
    /// Engine.IO ping interval of the hub's Socket.IO endpoint. Fixed when
    /// the target starts; shown by `GET /admin/config` only when not the
    /// default.
    #[serde(
        with = "duration_str",
        skip_serializing_if = "is_default_ping_interval"
    )]
    #[schemars(with = "TargetDuration")]
    #[schemars(extend("default" = format_duration(DEFAULT_HUB_PING_INTERVAL)))]
    pub hub_ping_interval: Duration,
    /// How long the hub waits for a pong before dropping a Socket.IO
    /// connection. Fixed when the target starts, like the interval.
    #[serde(with = "duration_str", skip_serializing_if = "is_default_ping_timeout")]
    #[schemars(with = "TargetDuration")]
    #[schemars(extend("default" = format_duration(DEFAULT_HUB_PING_TIMEOUT)))]
    pub hub_ping_timeout: Duration,
}

/// Default number of job workers.
pub const DEFAULT_JOB_WORKERS: usize = 4;

/// Default Engine.IO ping interval of the hub.
pub const DEFAULT_HUB_PING_INTERVAL: Duration = Duration::from_secs(25);
/// Default Engine.IO ping timeout of the hub.
pub const DEFAULT_HUB_PING_TIMEOUT: Duration = Duration::from_secs(20);

fn is_default_ping_interval(d: &Duration) -> bool {
    *d == DEFAULT_HUB_PING_INTERVAL
}

fn is_default_ping_timeout(d: &Duration) -> bool {
    *d == DEFAULT_HUB_PING_TIMEOUT
}

impl Default for TargetConfig {
    fn default() -> Self {
        TargetConfig {
            latency: Latency::None,
            error_rate: 0.0,
            concurrency: None,
            queue: 1024,
            job_workers: DEFAULT_JOB_WORKERS,
            job_duration: Latency::Fixed(Duration::from_secs(2)),
            page_size: 20,
            hub_ping_interval: DEFAULT_HUB_PING_INTERVAL,
            hub_ping_timeout: DEFAULT_HUB_PING_TIMEOUT,
        }
    }
}

impl TargetConfig {
    /// Checks the values serde cannot: the error rate is within 0..=1, the
    /// concurrency limit is at least 1, the page size is 1..=1000, the hub
    /// ping interval and timeout are not zero.
    pub fn validate(&self) -> Result<(), KnobError> {
        if !(self.error_rate.is_finite() && (0.0..=1.0).contains(&self.error_rate)) {
            return Err(KnobError::OutOfRange {
                option: "error_rate",
                value: self.error_rate.to_string(),
                expected: "between 0 and 1 (a fraction)".into(),
            });
        }
        if self.concurrency == Some(0) {
            return Err(KnobError::ZeroConcurrency);
        }
        if self.job_workers == 0 {
            return Err(KnobError::OutOfRange {
                option: "job_workers",
                value: "0".into(),
                expected: "at least 1".into(),
            });
        }
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            return Err(KnobError::OutOfRange {
                option: "page_size",
                value: self.page_size.to_string(),
                expected: format!("between 1 and {MAX_PAGE_SIZE}"),
            });
        }
        for (option, d) in [
            ("hub_ping_interval", self.hub_ping_interval),
            ("hub_ping_timeout", self.hub_ping_timeout),
        ] {
            if d.is_zero() {
                return Err(KnobError::ZeroPing { option });
            }
        }
        Ok(())
    }
}

/// A knob set to a value it does not take: in a scenario's
/// `[target.builtin]`, a `POST /admin/config` or a kick. Each variant
/// carries the knob's name and the value as given; Display is the
/// message the user sees (after `bad config: ` on the admin endpoint).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KnobError {
    /// A number outside the knob's range.
    #[error("{option} must be {expected}, got {value}")]
    OutOfRange {
        option: &'static str,
        value: String,
        /// The range, in words: `between 1 and 1000`.
        expected: String,
    },
    /// `concurrency = 0` (no limit is written by leaving it out).
    #[error("concurrency must be at least 1 (leave it out, or null, for no limit)")]
    ZeroConcurrency,
    /// A zero hub ping interval or timeout; `option` is the one that is.
    #[error("hub_ping_interval and hub_ping_timeout must be above 0")]
    ZeroPing { option: &'static str },
    /// A change to a knob fixed when the target starts.
    #[error("{option} is fixed when the target starts (it is {current})")]
    FixedAtStart {
        option: &'static str,
        /// The value asked for.
        value: String,
        /// The value in force.
        current: String,
    },
}

/// A partial update of the knobs, as posted to `POST /admin/config`.
/// Absent fields are left alone; `"concurrency": null` removes the limit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConfigPatch {
    pub latency: Option<Latency>,
    pub error_rate: Option<f64>,
    #[serde(deserialize_with = "present")]
    pub concurrency: Option<Option<usize>>,
    pub queue: Option<usize>,
    pub job_workers: Option<usize>,
    pub job_duration: Option<Latency>,
    pub page_size: Option<usize>,
    /// Accepted only unchanged (so a `GET /admin/config` body posts back):
    /// the hub's ping settings are fixed when the target starts.
    #[serde(deserialize_with = "present_duration")]
    pub hub_ping_interval: Option<Duration>,
    #[serde(deserialize_with = "present_duration")]
    pub hub_ping_timeout: Option<Duration>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

fn present_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration_str::deserialize(d).map(Some)
}

impl ConfigPatch {
    /// The config with this patch applied, validated.
    pub fn apply(&self, base: &TargetConfig) -> Result<TargetConfig, KnobError> {
        let mut c = base.clone();
        if let Some(l) = self.latency {
            c.latency = l;
        }
        if let Some(e) = self.error_rate {
            c.error_rate = e;
        }
        if let Some(limit) = self.concurrency {
            c.concurrency = limit;
        }
        if let Some(q) = self.queue {
            c.queue = q;
        }
        if let Some(w) = self.job_workers {
            c.job_workers = w;
        }
        if let Some(j) = self.job_duration {
            c.job_duration = j;
        }
        if let Some(p) = self.page_size {
            c.page_size = p;
        }
        for (option, new, current) in [
            (
                "hub_ping_interval",
                self.hub_ping_interval,
                c.hub_ping_interval,
            ),
            (
                "hub_ping_timeout",
                self.hub_ping_timeout,
                c.hub_ping_timeout,
            ),
        ] {
            if let Some(new) = new.filter(|d| *d != current) {
                return Err(KnobError::FixedAtStart {
                    option,
                    value: format_duration(new),
                    current: format_duration(current),
                });
            }
        }
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::SmallRng;
    use rand::SeedableRng;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn durations_format_round_trip() {
        for d in [
            Duration::ZERO,
            ms(5),
            ms(2000),
            ms(1500),
            Duration::from_micros(250),
            Duration::from_micros(1_234),
        ] {
            let text = format_duration(d);
            assert_eq!(parse_duration(&text).unwrap(), d, "{text}");
        }
        assert_eq!(format_duration(Duration::ZERO), "0");
    }

    #[test]
    fn latency_parses_every_form() {
        assert_eq!("0".parse::<Latency>().unwrap(), Latency::None);
        assert_eq!("none".parse::<Latency>().unwrap(), Latency::None);
        assert_eq!("0ms".parse::<Latency>().unwrap(), Latency::None);
        assert_eq!("5ms".parse::<Latency>().unwrap(), Latency::Fixed(ms(5)));
        assert_eq!(
            "2ms..10ms".parse::<Latency>().unwrap(),
            Latency::Uniform {
                min: ms(2),
                max: ms(10)
            }
        );
        assert_eq!(
            "2ms .. 1s".parse::<Latency>().unwrap(),
            Latency::Uniform {
                min: ms(2),
                max: ms(1000)
            }
        );
        assert_eq!(
            "exp:5ms".parse::<Latency>().unwrap(),
            Latency::Exponential { mean: ms(5) }
        );
    }

    #[test]
    fn latency_rejects_bad_text_naming_the_forms() {
        for bad in [
            "",
            "5",
            "fast",
            "10ms..2ms",
            "exp:",
            "exp:5",
            "2ms..",
            "..2ms",
            "1ms..2ms..3ms",
        ] {
            let e = bad.parse::<Latency>().unwrap_err();
            assert!(
                e.contains("exp:5ms") && e.contains("2ms..10ms"),
                "{bad:?}: {e}"
            );
        }
    }

    #[test]
    fn latency_display_round_trips() {
        for text in ["0", "5ms", "2ms..10ms", "exp:5ms", "250us..1s"] {
            let l: Latency = text.parse().unwrap();
            assert_eq!(l.to_string(), text);
            assert_eq!(l.to_string().parse::<Latency>().unwrap(), l);
        }
    }

    #[test]
    fn latency_samples_stay_in_range() {
        let mut rng = SmallRng::seed_from_u64(7);
        let u = Latency::Uniform {
            min: ms(2),
            max: ms(5),
        };
        for _ in 0..1000 {
            let d = u.sample(&mut rng);
            assert!(d >= ms(2) && d <= ms(5));
        }
        let e = Latency::Exponential { mean: ms(10) };
        let n = 20_000;
        let total: Duration = (0..n).map(|_| e.sample(&mut rng)).sum();
        let mean = total / n;
        assert!(mean > ms(9) && mean < ms(11), "mean {mean:?}");
        assert_eq!(Latency::Fixed(ms(3)).sample(&mut rng), ms(3));
        assert_eq!(Latency::None.sample(&mut rng), Duration::ZERO);
    }

    #[test]
    fn config_deserializes_from_toml_with_defaults() {
        let c: TargetConfig = toml::from_str(
            "latency = \"2ms..5ms\"\nerror_rate = 0.01\nconcurrency = 8\nqueue = 100\njob_duration = \"2s\"",
        )
        .unwrap();
        assert_eq!(
            c.latency,
            Latency::Uniform {
                min: ms(2),
                max: ms(5)
            }
        );
        assert_eq!(c.error_rate, 0.01);
        assert_eq!(c.concurrency, Some(8));
        assert_eq!(c.queue, 100);
        assert_eq!(c.job_duration, Latency::Fixed(ms(2000)));
        assert_eq!(c.page_size, 20);
        let d: TargetConfig = toml::from_str("").unwrap();
        assert_eq!(d, TargetConfig::default());
        assert!(toml::from_str::<TargetConfig>("latncy = \"5ms\"").is_err());
        assert!(toml::from_str::<TargetConfig>("latency = \"5\"").is_err());
        assert!(toml::from_str::<TargetConfig>("latency = 0").is_ok());
    }

    #[test]
    fn config_validation() {
        assert!(TargetConfig::default().validate().is_ok());
        let bad = [
            TargetConfig {
                error_rate: 1.5,
                ..Default::default()
            },
            TargetConfig {
                error_rate: -0.1,
                ..Default::default()
            },
            TargetConfig {
                error_rate: f64::NAN,
                ..Default::default()
            },
            TargetConfig {
                concurrency: Some(0),
                ..Default::default()
            },
            TargetConfig {
                page_size: 0,
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }

    #[test]
    fn patch_distinguishes_null_from_absent() {
        let base = TargetConfig {
            concurrency: Some(4),
            ..Default::default()
        };
        let p: ConfigPatch = serde_json::from_str(r#"{"latency":"5ms"}"#).unwrap();
        let c = p.apply(&base).unwrap();
        assert_eq!(c.concurrency, Some(4));
        assert_eq!(c.latency, Latency::Fixed(ms(5)));
        let p: ConfigPatch = serde_json::from_str(r#"{"concurrency":null}"#).unwrap();
        assert_eq!(p.apply(&base).unwrap().concurrency, None);
        let p: ConfigPatch = serde_json::from_str(r#"{"concurrency":0}"#).unwrap();
        assert!(p.apply(&base).is_err());
        assert!(serde_json::from_str::<ConfigPatch>(r#"{"bogus":1}"#).is_err());
        assert!(serde_json::from_str::<ConfigPatch>(r#"{"queue":-1}"#).is_err());
    }

    #[test]
    fn knob_errors_carry_the_value_and_read_as_before() {
        let refused = |c: TargetConfig| c.validate().unwrap_err();
        let e = refused(TargetConfig {
            error_rate: 1.5,
            ..Default::default()
        });
        assert_eq!(
            e,
            KnobError::OutOfRange {
                option: "error_rate",
                value: "1.5".into(),
                expected: "between 0 and 1 (a fraction)".into(),
            }
        );
        assert_eq!(
            e.to_string(),
            "error_rate must be between 0 and 1 (a fraction), got 1.5"
        );
        let e = refused(TargetConfig {
            page_size: 1001,
            ..Default::default()
        });
        assert_eq!(
            e.to_string(),
            "page_size must be between 1 and 1000, got 1001"
        );
        let e = refused(TargetConfig {
            concurrency: Some(0),
            ..Default::default()
        });
        assert_eq!(
            e.to_string(),
            "concurrency must be at least 1 (leave it out, or null, for no limit)"
        );
        let e = refused(TargetConfig {
            hub_ping_timeout: Duration::ZERO,
            ..Default::default()
        });
        assert_eq!(
            e,
            KnobError::ZeroPing {
                option: "hub_ping_timeout"
            }
        );
        assert_eq!(
            e.to_string(),
            "hub_ping_interval and hub_ping_timeout must be above 0"
        );
        let p: ConfigPatch = serde_json::from_str(r#"{"hub_ping_interval":"1s"}"#).unwrap();
        let e = p.apply(&TargetConfig::default()).unwrap_err();
        assert_eq!(
            e,
            KnobError::FixedAtStart {
                option: "hub_ping_interval",
                value: "1s".into(),
                current: "25s".into(),
            }
        );
        assert_eq!(
            e.to_string(),
            "hub_ping_interval is fixed when the target starts (it is 25s)"
        );
    }
}
