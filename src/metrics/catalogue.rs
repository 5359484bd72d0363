//! The metric catalogue: every metric name an SLO, a report or a comparison
//! may refer to, what kind of series it is (a histogram in µs, a histogram of
//! counts, a counter, a failure counter read as a share of another), the
//! stats each kind offers and the unit those stats are in.
//!
//! The catalogue lives in the metrics layer so that recording (the engine's
//! series names), judging ([`crate::slo`]) and printing (the reports) all
//! read one table; the SLO grammar and evaluation sit on top of it.

/// End-to-end HTTP latency from the intended start (µs).
pub const HTTP_LATENCY: &str = "http.latency";
/// HTTP latency from the actual send (µs).
pub const HTTP_SERVICE_TIME: &str = "http.service_time";
/// Time a polling step waited for its condition: first send → the
/// response that met `until` (µs).
pub const HTTP_WAIT: &str = "http.wait";
/// Polls a polling step sent per wait (a count, not a duration).
pub const HTTP_WAIT_POLLS: &str = "http.wait.polls";
/// Waits still open when the run ended (their condition not met, `within`
/// not run out): per wait, how long it had waited (µs; first send → the
/// run's end). Its `count` is how many; [`HTTP_WAIT`] leaves them out.
pub const HTTP_WAIT_OPEN: &str = "http.wait.open";
/// Time of a whole journey that completed: intended start → end of its
/// last step's response, think times between steps included (µs).
pub const HTTP_JOURNEY: &str = "http.journey";
/// How late the open-model generator started requests (µs).
pub const GENERATOR_LAG: &str = "generator.lag";
/// HTTP requests sent.
pub const HTTP_REQUESTS: &str = "http.requests";
/// HTTP requests that failed.
pub const HTTP_ERRORS: &str = "http.errors";
/// Hub connection set-up time (µs).
pub const HUB_CONNECT: &str = "hub.connect";
/// Hub registration time (µs).
pub const HUB_REGISTER: &str = "hub.register";
/// Hub message round trip (µs).
pub const HUB_MESSAGE_RTT: &str = "hub.message.rtt";
/// Time to reconnect after a drop (µs).
pub const HUB_RECONNECT: &str = "hub.reconnect";
/// Reconnect attempts per recovery (a count, not a duration).
pub const HUB_RECONNECT_ATTEMPTS: &str = "hub.reconnect.attempts";
/// Time from a disruption (a drop, an action, a detected wave of losses)
/// until its agents are back (µs).
pub const HUB_RECOVERY: &str = "hub.recovery";
/// Command delivery time to one agent (µs).
pub const HUB_COMMAND_DELIVERY: &str = "hub.command.delivery";
/// Time for a command to reach every addressed agent (µs).
pub const HUB_COMMAND_FANOUT: &str = "hub.command.fanout";
/// Command round trip as the commander sees it (µs).
pub const HUB_COMMAND_RTT: &str = "hub.command.rtt";
/// Hub connections attempted.
pub const HUB_CONNECTS: &str = "hub.connects";
/// Hub connections that failed.
pub const HUB_ERRORS: &str = "hub.errors";
/// Hub disconnects.
pub const HUB_DISCONNECTS: &str = "hub.disconnects";
/// Hub registrations.
pub const HUB_REGISTRATIONS: &str = "hub.registrations";
/// Hub reconnects.
pub const HUB_RECONNECTS: &str = "hub.reconnects";
/// Commands sent.
pub const HUB_COMMANDS: &str = "hub.commands";
/// Commands received by agents.
pub const HUB_COMMAND_RECEIVED: &str = "hub.command.received";
/// Drop events that never recovered (a counter; an SLO on
/// [`HUB_RECOVERY`] fails when it is not zero).
pub const UNRECOVERED: &str = "hub.unrecovered";

/// Time from the start of an HTTP error burst (or a fault action) until
/// errors and latency are back within the SLOs for a few seconds (µs).
pub const HTTP_RECOVERY: &str = "http.recovery";
/// Fault actions run.
pub const ACTIONS: &str = "actions";
/// Fault actions that failed (error kind `action`).
pub const ACTIONS_ERRORS: &str = "actions.errors";

/// What a metric is, which decides its stats and units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A latency-like histogram in µs.
    Histogram,
    /// A histogram of plain counts (e.g. reconnect attempts per agent).
    CountHistogram,
    /// A counter: `count`, and `rate` per second.
    Counter,
    /// A counter of failures: `count`, and `rate` as a fraction of the
    /// named counter (`http.errors` / `http.requests`).
    Ratio(&'static str),
}

/// A statistic of a metric, as an SLO key names it (`p99`, `max`, `rate`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Stat {
    /// Percentile, e.g. 99.9.
    Percentile(f64),
    Max,
    Min,
    Mean,
    Count,
    Rate,
}

/// The unit of a stat's value (and of an SLO's threshold).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Microseconds (histogram values).
    Micros,
    /// A fraction in [0, 1], shown as a percentage (error rate).
    Fraction,
    /// Events per second.
    PerSecond,
    /// A plain count.
    Count,
}

impl MetricKind {
    /// The unit `stat` of a metric of this kind is in.
    pub fn unit(self, stat: Stat) -> Unit {
        match (self, stat) {
            (_, Stat::Count) => Unit::Count,
            (MetricKind::Histogram, _) => Unit::Micros,
            (MetricKind::CountHistogram, _) => Unit::Count,
            (MetricKind::Counter, _) => Unit::PerSecond,
            (MetricKind::Ratio(_), _) => Unit::Fraction,
        }
    }

    /// Whether a metric of this kind has `stat`.
    pub fn allows(self, stat: Stat) -> bool {
        match self {
            MetricKind::Histogram | MetricKind::CountHistogram => !matches!(stat, Stat::Rate),
            MetricKind::Counter | MetricKind::Ratio(_) => {
                matches!(stat, Stat::Count | Stat::Rate)
            }
        }
    }

    /// The stats of this kind, for messages.
    pub fn valid_stats(self) -> &'static str {
        match self {
            MetricKind::Histogram | MetricKind::CountHistogram => {
                "p50, p90, p95, p99, p99.9 (any pNN or pNN.N), max, min, mean, count"
            }
            MetricKind::Counter | MetricKind::Ratio(_) => "count, rate",
        }
    }
}

/// Every metric an SLO may name, with its kind.
const METRICS: [(&str, MetricKind); 28] = [
    (HTTP_LATENCY, MetricKind::Histogram),
    (HTTP_SERVICE_TIME, MetricKind::Histogram),
    (GENERATOR_LAG, MetricKind::Histogram),
    (HTTP_WAIT, MetricKind::Histogram),
    (HTTP_WAIT_POLLS, MetricKind::CountHistogram),
    (HTTP_WAIT_OPEN, MetricKind::Histogram),
    (HTTP_JOURNEY, MetricKind::Histogram),
    (HTTP_REQUESTS, MetricKind::Counter),
    (HTTP_ERRORS, MetricKind::Ratio(HTTP_REQUESTS)),
    (HUB_CONNECT, MetricKind::Histogram),
    (HUB_REGISTER, MetricKind::Histogram),
    (HUB_MESSAGE_RTT, MetricKind::Histogram),
    (HUB_RECONNECT, MetricKind::Histogram),
    (HUB_RECONNECT_ATTEMPTS, MetricKind::CountHistogram),
    (HUB_RECOVERY, MetricKind::Histogram),
    (HUB_COMMAND_DELIVERY, MetricKind::Histogram),
    (HUB_COMMAND_FANOUT, MetricKind::Histogram),
    (HUB_COMMAND_RTT, MetricKind::Histogram),
    (HUB_CONNECTS, MetricKind::Counter),
    (HUB_ERRORS, MetricKind::Ratio(HUB_CONNECTS)),
    (HUB_DISCONNECTS, MetricKind::Counter),
    (HUB_REGISTRATIONS, MetricKind::Counter),
    (HUB_RECONNECTS, MetricKind::Counter),
    (HUB_COMMANDS, MetricKind::Counter),
    (HUB_COMMAND_RECEIVED, MetricKind::Counter),
    (HTTP_RECOVERY, MetricKind::Histogram),
    (ACTIONS, MetricKind::Counter),
    (ACTIONS_ERRORS, MetricKind::Ratio(ACTIONS)),
];

/// Metrics whose SLO key may omit the stat; the stat they mean.
const BARE: [(&str, Stat); 2] = [(HUB_RECOVERY, Stat::Max), (HTTP_RECOVERY, Stat::Max)];

const METRIC_NAMES: [&str; METRICS.len()] = {
    let mut names = [""; METRICS.len()];
    let mut i = 0;
    while i < METRICS.len() {
        names[i] = METRICS[i].0;
        i += 1;
    }
    names
};

/// Names of the metrics an SLO may use (for suggestions and checks).
pub fn known_metrics() -> &'static [&'static str] {
    &METRIC_NAMES
}

/// The kind of a catalogued metric; None for a name the catalogue lacks.
pub fn kind_of(metric: &str) -> Option<MetricKind> {
    METRICS
        .iter()
        .find(|(name, _)| *name == metric)
        .map(|(_, kind)| *kind)
}

/// Kind of a metric already checked to be known (a histogram otherwise).
pub fn metric_kind(metric: &str) -> MetricKind {
    kind_of(metric).unwrap_or(MetricKind::Histogram)
}

/// For a metric an SLO key may name without a stat (`hub.recovery`): the
/// catalogued name and the stat it means.
pub fn bare_metric(key: &str) -> Option<(&'static str, Stat)> {
    BARE.iter().find(|(name, _)| *name == key).copied()
}

/// For a failure counter whose `rate` is a share (`http.errors`,
/// `hub.errors`): the counter it is a share of (`http.requests`,
/// `hub.connects`).
pub fn ratio_denominator(metric: &str) -> Option<&'static str> {
    match metric_kind(metric) {
        MetricKind::Ratio(denominator) => Some(denominator),
        _ => None,
    }
}

/// The unit of a histogram metric's values (µs, or a plain count for
/// `hub.reconnect.attempts`), for reports that print its percentiles.
pub fn histogram_unit(metric: &str) -> Unit {
    metric_kind(metric).unit(Stat::Max)
}
