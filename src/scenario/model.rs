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
use crate::units::{ByteSize, DurRange, PositiveDur, RateCurve, VuCurve};
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

fn default_seed() -> u64 {
    1
}
fn default_weight() -> u32 {
    1
}

/// The whole file: where load may go (`[target]`), who sends it
/// (`[[users]]`, `[[agents]]`, `[[commanders]]`), when (`[[phases]]`) and
/// what the run is judged by (`[slo]`).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScenarioFile {
    /// The scenario's name: in reports and result directory names.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// A line or two on what the scenario plays, for reports.
    #[serde(default)]
    pub description: Option<String>,
    /// Every random choice derives from it.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// `[target]`: where load may go (nothing else is ever sent to).
    #[schemars(with = "TargetSection")]
    pub target: Spanned<TargetSection>,
    /// `[http]`: HTTP client and load-model settings.
    #[serde(default)]
    pub http: HttpSection,
    /// `[[feeders]]`: CSV files of test data (`{{ feed.COLUMN }}` in steps).
    #[serde(default)]
    pub feeders: Vec<FeederSpec>,
    /// `[[users]]`: HTTP populations; each arrival walks its steps once.
    #[serde(default)]
    pub users: Vec<UsersSpec>,
    /// `[hub]`: settings of agents and hub commanders.
    #[serde(default)]
    pub hub: HubSection,
    /// `[[agents]]`: populations of long-lived hub connections (Socket.IO or
    /// plain WebSocket) that register, heartbeat and answer commands.
    #[serde(default)]
    pub agents: Vec<AgentSpec>,
    /// `[[commanders]]`: hub clients that send commands to agents.
    #[serde(default)]
    pub commanders: Vec<CommanderSpec>,
    /// `[[phases]]`: the timeline, one stretch after the other, each with its
    /// loads and fault actions.
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
    #[schemars(schema_with = "super::schema::compare")]
    pub compare: BTreeMap<String, Spanned<String>>,
    /// `[slo]`: what the run is judged by, `"metric{tags}.stat" = "op value"`
    /// (`"http.latency.p95" = "< 300ms"`, `"http.latency{step=checkout}.p99"
    /// = "< 800ms"`, `"http.errors.rate" = "< 1%"`; tags population, step,
    /// phase), plus `abort_on_fail` and `generator_health`.
    #[serde(default)]
    #[schemars(schema_with = "super::schema::slo")]
    pub slo: BTreeMap<String, Spanned<toml::Value>>,
}

/// What `stampede capacity` varies.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    /// Journeys per second of the `[[users]]` (open model).
    Users,
    /// Connected `[[agents]]`.
    Agents,
}

/// `[capacity]`: how `stampede capacity` searches this scenario.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CapacitySpec {
    /// `"users"` (arrival rate) or `"agents"` (connected agents).
    pub vary: Option<Axis>,
    /// First load tried.
    pub start: Option<f64>,
    /// e.g. `"5%"`.
    pub precision: Option<crate::units::Fraction>,
    /// Stop searching after this long (default 10m).
    pub budget: Option<PositiveDur>,
    /// Discarded start of each step (default 5s).
    pub warmup: Option<PositiveDur>,
    /// Measured length of each step (default 20s).
    pub step: Option<PositiveDur>,
    /// The longest cool-down after a failing step (`0s`: none).
    pub cool_down: Option<crate::units::Dur>,
}

/// `[metrics]`: live metrics while the run goes.
#[derive(Debug, Clone, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricsSpec {
    /// Serve Prometheus / OpenMetrics text at `http://ADDR/metrics` while
    /// the run goes: `"127.0.0.1:9464"`, or a bare port on loopback
    /// (`"9464"`); `"0.0.0.0:9464"` serves beyond this machine (`run
    /// --metrics-listen` overrides it). Only this address is bound.
    #[schemars(with = "Option<String>")]
    pub listen: Option<Spanned<String>>,
    /// How long the endpoint stays up after the run ends, so the last
    /// scrape sees the final counts (default `5s`; `0s`: none).
    #[schemars(extend("default" = crate::units::Dur(super::compile::DEFAULT_METRICS_LINGER).to_string()))]
    pub linger: Option<crate::units::Dur>,
}

/// `[target]`: where load may go. Nothing else is ever sent to.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetSection {
    /// `"builtin"` or an `http(s)://host[:port]` base URL.
    #[schemars(with = "Option<String>")]
    pub api: Option<Spanned<String>>,
    /// The hub agents connect to: `"builtin"` or `ws(s)://` / `http(s)://host[:port]`.
    #[schemars(with = "Option<String>")]
    pub hub: Option<Spanned<String>>,
    /// The hub's kick endpoint (a full URL; POST `{"fraction": f}`), for
    /// `drop = { how = "server" }` against a hub that is not built in.
    #[schemars(with = "Option<String>")]
    pub hub_admin: Option<Spanned<String>>,
    /// Further hosts absolute step URLs may use, as base URLs.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub hosts: Vec<Spanned<String>>,
    /// Knobs for the built-in target when `api = "builtin"`.
    pub builtin: Option<TargetConfig>,
}

/// `[http]`: client and load-model settings.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSection {
    /// `"auto"`, `"1.1"` or `"2"`.
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
    /// Longest response body read: past it the request fails with kind
    /// `body_too_large` and the rest is not read (bytes, or `"16MiB"`).
    pub max_body: ByteSize,
    /// Redirects (301, 302, 303, 307, 308) followed per request, to hosts
    /// the scenario declares; `0` makes a 3xx the answer (a step's
    /// `max_redirects` overrides it).
    pub max_redirects: u32,
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
            max_body: ByteSize(crate::protocol::http::DEFAULT_MAX_BODY),
            max_redirects: 10,
        }
    }
}

/// `[[feeders]]`: a CSV file of test data.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FeederSpec {
    /// Used in templates as `{{ feed.NAME.COLUMN }}`.
    pub name: String,
    /// Relative to the scenario file's directory.
    #[schemars(with = "String")]
    pub file: Spanned<String>,
    /// How rows are handed out: `sequential`, `random` or `unique` (each VU
    /// keeps its own row).
    #[serde(default)]
    pub mode: FeedMode,
}

/// `[[users]]`: an HTTP population; each arrival walks `steps` once.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UsersSpec {
    /// The population's name (SLO tag `population=`).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Share of arrivals (open model) or VUs (closed model).
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Pause after each step (a step's own `think` overrides it).
    pub think: Option<DurRange>,
    /// The journey: requests in order.
    pub steps: Vec<StepSpec>,
}

/// One request of a journey: exactly one of `get`, `post`, `put`, `patch`,
/// `delete`, `head`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(transform = super::schema::one_step_method)]
pub struct StepSpec {
    /// The step's name (SLO tag `step=`); default: method and path.
    pub name: Option<String>,
    /// GET this URL: a path on `[target] api` or an absolute URL of a
    /// declared host (templates allowed). One method key per step.
    #[schemars(with = "Option<String>")]
    pub get: Option<Spanned<String>>,
    /// POST this URL (see `get`).
    #[schemars(with = "Option<String>")]
    pub post: Option<Spanned<String>>,
    /// PUT this URL (see `get`).
    #[schemars(with = "Option<String>")]
    pub put: Option<Spanned<String>>,
    /// PATCH this URL (see `get`).
    #[schemars(with = "Option<String>")]
    pub patch: Option<Spanned<String>>,
    /// DELETE this URL (see `get`).
    #[schemars(with = "Option<String>")]
    pub delete: Option<Spanned<String>>,
    /// HEAD this URL (see `get`).
    #[schemars(with = "Option<String>")]
    pub head: Option<Spanned<String>>,
    /// Request headers (templates allowed).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub headers: BTreeMap<String, Spanned<String>>,
    /// Query parameters (templates allowed).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub query: BTreeMap<String, Spanned<String>>,
    /// A text body (templates allowed).
    #[schemars(with = "Option<String>")]
    pub body: Option<Spanned<String>>,
    /// A JSON body, written as TOML (templates allowed in strings).
    #[schemars(with = "Option<serde_json::Value>")]
    pub json: Option<Spanned<toml::Value>>,
    /// This request's timeout (default `[http] timeout`); it covers the
    /// whole answer, redirects and body included.
    pub timeout: Option<PositiveDur>,
    /// Redirects this request follows (default `[http] max_redirects`; `0`:
    /// a 3xx is the answer, e.g. to check a login's `302`).
    pub max_redirects: Option<u32>,
    /// Assertions on the response; a failed one is an error of kind `check`.
    pub check: Option<CheckSpec>,
    /// Values taken from the response for later steps: `name = "$.json.path"`,
    /// `{ header = "X-Name" }` or `{ regex = "id=(\\w+)" }`.
    #[serde(default)]
    pub extract: BTreeMap<String, ExtractSpec>,
    /// Pause after this step (a duration or a range `"1s..3s"`).
    pub think: Option<DurRange>,
    /// Poll: resend the request until this holds (any check).
    pub until: Option<CheckSpec>,
    /// Poll interval (with `until`; default 1s).
    #[schemars(extend("default" = crate::units::Dur(super::compile::DEFAULT_WAIT_EVERY).to_string()))]
    pub every: Option<PositiveDur>,
    /// Give up polling after this long, error `wait_timeout` (with
    /// `until`; default 60s).
    #[schemars(extend("default" = crate::units::Dur(super::compile::DEFAULT_WAIT_WITHIN).to_string()))]
    pub within: Option<PositiveDur>,
}

/// `[[phases]]`: one stretch of the timeline.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    /// The phase's name (SLO tag `phase=`).
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// How long the phase lasts.
    pub duration: PositiveDur,
    /// The HTTP load: `{ rate = "50/s -> 500/s" }` (open model) or
    /// `{ vus = 100 }` (closed model).
    #[schemars(with = "Option<UsersLoad>")]
    pub users: Option<Spanned<UsersLoad>>,
    /// The connected agents: `{ connected = 5000, connect_rate = "500/s" }`,
    /// and an optional `drop`.
    #[schemars(with = "Option<AgentsLoadSpec>")]
    pub agents: Option<Spanned<AgentsLoadSpec>>,
    /// The commanders' rate: `{ rate = "2/s" }`.
    #[schemars(with = "Option<CommandersLoadSpec>")]
    pub commanders: Option<Spanned<CommandersLoadSpec>>,
    /// Fault actions at offsets into the phase (see [`super::actions`]).
    #[serde(default)]
    #[schemars(with = "Vec<super::actions::ActionSpec>")]
    pub actions: Vec<Spanned<super::actions::ActionSpec>>,
}

/// A phase's HTTP load: `rate` (open model) or `vus` (closed model).
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UsersLoad {
    /// Arrivals per second (open model), constant or a ramp.
    pub rate: Option<RateCurve>,
    /// Virtual users looping (closed model), constant or a ramp.
    pub vus: Option<VuCurve>,
}
