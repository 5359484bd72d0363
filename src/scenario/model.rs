//! The scenario file as written (serde model). Unknown keys are refused
//! (`deny_unknown_fields`), values with units are parsed by [`crate::units`]
//! while deserializing so their errors carry the value's span. Cross-field
//! rules (names, hosts, feeders, SLO metrics) are checked in
//! [`super::compile`], which turns this model into the runtime scenario.
//! The hub half of the model (`[hub]`, `[[agents]]`, `[[commanders]]`)
//! lives in [`super::hub`].

use super::check::{CheckSpec, ExtractSpec};
use super::feeder::FeedMode;
use super::hub::{AgentSpec, AgentsLoadSpec, CommanderSpec, CommandersLoadSpec, HubSection};
pub use crate::protocol::HttpVersion;
use crate::target::TargetConfig;
use crate::units::{DurRange, PositiveDur, RateCurve, VuCurve};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

fn default_seed() -> u64 {
    1
}
fn default_weight() -> u32 {
    1
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Every random choice derives from it.
    #[serde(default = "default_seed")]
    pub seed: u64,
    pub target: Spanned<TargetSection>,
    #[serde(default)]
    pub http: HttpSection,
    #[serde(default)]
    pub feeders: Vec<FeederSpec>,
    #[serde(default)]
    pub users: Vec<UsersSpec>,
    /// `[hub]`: settings of agents and hub commanders.
    #[serde(default)]
    pub hub: HubSection,
    #[serde(default)]
    pub agents: Vec<AgentSpec>,
    #[serde(default)]
    pub commanders: Vec<CommanderSpec>,
    #[serde(default)]
    pub phases: Vec<PhaseSpec>,
    /// `[capacity]`: defaults of `stampede capacity` (flags override them).
    #[serde(default)]
    pub capacity: CapacitySpec,
    /// `[metrics]`: live metrics while the run goes (a Prometheus endpoint).
    #[serde(default)]
    pub metrics: MetricsSpec,
    /// `[compare]`: tolerances of `run --baseline` (`p95 = "10%"`,
    /// `errors = "0.05pp"`, …).
    #[serde(default)]
    pub compare: BTreeMap<String, Spanned<String>>,
    /// `"metric{tags}.stat" = "op value"`, plus `abort_on_fail = true`.
    #[serde(default)]
    pub slo: BTreeMap<String, Spanned<toml::Value>>,
}

/// What `stampede capacity` varies.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    /// Journeys per second of the `[[users]]` (open model).
    Users,
    /// Connected `[[agents]]`.
    Agents,
}

/// `[capacity]`: how `stampede capacity` searches this scenario.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CapacitySpec {
    /// `"users"` (arrival rate) or `"agents"` (connected agents).
    pub vary: Option<Axis>,
    /// First load tried.
    pub start: Option<f64>,
    /// e.g. `"5%"`.
    pub precision: Option<crate::units::Fraction>,
    pub budget: Option<PositiveDur>,
    pub warmup: Option<PositiveDur>,
    pub step: Option<PositiveDur>,
    /// The longest cool-down after a failing step (`0s`: none).
    pub cool_down: Option<crate::units::Dur>,
}

/// `[metrics]`: live metrics while the run goes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSpec {
    /// Serve Prometheus / OpenMetrics text at `http://ADDR/metrics` while
    /// the run goes, e.g. `"127.0.0.1:9464"` (`run --metrics-listen`
    /// overrides it). Only this address is bound.
    pub listen: Option<Spanned<String>>,
    /// How long the endpoint stays up after the run ends, so the last
    /// scrape sees the final counts (default `5s`; `0s`: none).
    pub linger: Option<crate::units::Dur>,
}

/// `[target]`: where load may go. Nothing else is ever sent to.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// `"builtin"` or an `http(s)://host[:port]` base URL.
    pub api: Option<Spanned<String>>,
    /// The hub agents connect to: `"builtin"` or `ws(s)://` / `http(s)://host[:port]`.
    pub hub: Option<Spanned<String>>,
    /// The hub's kick endpoint (a full URL; POST `{"fraction": f}`), for
    /// `drop = { how = "server" }` against a hub that is not built in.
    pub hub_admin: Option<Spanned<String>>,
    /// Further hosts absolute step URLs may use, as base URLs.
    #[serde(default)]
    pub hosts: Vec<Spanned<String>>,
    /// Knobs for the built-in target when `api = "builtin"`.
    pub builtin: Option<TargetConfig>,
}

/// `[http]`: client and load-model settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    pub version: HttpVersion,
    /// Default per-request timeout (a step's `timeout` overrides it).
    pub timeout: PositiveDur,
    /// Keep each VU's connection across journeys; `false` opens a fresh
    /// connection per journey.
    pub keep_alive: bool,
    /// Skip TLS certificate verification (also `--insecure`).
    pub insecure: bool,
    /// Open model: at most this many arrivals in flight (VUs in the pool).
    pub max_in_flight: usize,
    /// Open model: arrivals that may wait for a free VU; beyond it they are dropped.
    pub queue: Option<usize>,
    /// Open model: an arrival that waited longer than this is dropped
    /// (default: the request timeout).
    pub queue_timeout: Option<PositiveDur>,
    /// Connect timeout.
    pub connect_timeout: PositiveDur,
}

impl Default for HttpSection {
    fn default() -> Self {
        HttpSection {
            version: HttpVersion::Auto,
            timeout: PositiveDur(std::time::Duration::from_secs(10)),
            keep_alive: true,
            insecure: false,
            max_in_flight: 1000,
            queue: None,
            queue_timeout: None,
            connect_timeout: PositiveDur(std::time::Duration::from_secs(5)),
        }
    }
}

/// `[[feeders]]`: a CSV file of test data.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeederSpec {
    pub name: String,
    /// Relative to the scenario file's directory.
    pub file: Spanned<String>,
    #[serde(default)]
    pub mode: FeedMode,
}

/// `[[users]]`: an HTTP population; each arrival walks `steps` once.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersSpec {
    pub name: Spanned<String>,
    /// Share of arrivals (open model) or VUs (closed model).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Pause after each step (a step's own `think` overrides it).
    pub think: Option<DurRange>,
    pub steps: Vec<StepSpec>,
}

/// One request of a journey.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepSpec {
    pub name: Option<String>,
    pub get: Option<Spanned<String>>,
    pub post: Option<Spanned<String>>,
    pub put: Option<Spanned<String>>,
    pub patch: Option<Spanned<String>>,
    pub delete: Option<Spanned<String>>,
    pub head: Option<Spanned<String>>,
    #[serde(default)]
    pub headers: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    pub query: BTreeMap<String, Spanned<String>>,
    pub body: Option<Spanned<String>>,
    pub json: Option<Spanned<toml::Value>>,
    pub timeout: Option<PositiveDur>,
    pub check: Option<CheckSpec>,
    #[serde(default)]
    pub extract: BTreeMap<String, ExtractSpec>,
    pub think: Option<DurRange>,
    /// Poll: resend the request until this holds (any check).
    pub until: Option<CheckSpec>,
    /// Poll interval (with `until`; default 1s).
    pub every: Option<PositiveDur>,
    /// Give up polling after this long, error `wait_timeout` (with
    /// `until`; default 60s).
    pub within: Option<PositiveDur>,
}

/// `[[phases]]`: one stretch of the timeline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    pub name: Spanned<String>,
    pub duration: PositiveDur,
    pub users: Option<Spanned<UsersLoad>>,
    pub agents: Option<Spanned<AgentsLoadSpec>>,
    pub commanders: Option<Spanned<CommandersLoadSpec>>,
    /// Fault actions at offsets into the phase (see [`super::actions`]).
    #[serde(default)]
    pub actions: Vec<Spanned<super::actions::ActionSpec>>,
}

/// A phase's HTTP load: `rate` (open model) or `vus` (closed model).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersLoad {
    pub rate: Option<RateCurve>,
    pub vus: Option<VuCurve>,
}
