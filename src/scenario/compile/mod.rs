//! Model → runtime scenario. Every template, extractor and check is compiled
//! here, once; every cross-field rule is checked here with a located
//! diagnostic: names unique, hosts declared, feeders readable and not empty,
//! SLO metrics and tags known, exactly one load model per phase.
//!
//! # Layout
//! This file holds the runtime types ([`Scenario`] and its parts) and the
//! driver, `compile`; each section of the file compiles in its own module:
//! - `target`: `[target]` and `[http]`, where load may go.
//! - `steps`: `[[feeders]]` and `[[users]]` with their steps.
//! - `crowd`: `[hub]`, `[[agents]]` and `[[commanders]]`.
//! - `phases`: `[[phases]]`, the load of each population per phase.
//! - `judging`: `[slo]` and `[compare]`.
//! - `actions`: the phases' fault actions.

use super::check::{Check, Extractor};
use super::diagnostic::Diagnostic;
use super::feeder::Feeder;
use super::hub::{AgentLoad, AgentPopulation, Commander, HubSettings};
use super::model::{HttpVersion, ScenarioFile};
use super::template::{JsonTemplate, Template};
pub use crate::protocol::Origin;
use crate::slo::Slo;
use crate::target::TargetConfig;
use crate::units::{DurRange, RateCurve, VuCurve};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

mod actions;
mod crowd;
mod judging;
mod phases;
mod steps;
mod target;

pub use target::parse_hub_url;

/// Where the API is.
#[derive(Debug, Clone)]
pub enum ApiTarget {
    /// Start the built-in target in-process on 127.0.0.1:0 with these knobs.
    Builtin(TargetConfig),
    Url(Origin),
}

/// Which origin a step's URL goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OriginRef {
    /// The `[target] api`.
    Api,
    /// Index into [`Scenario::extra_origins`].
    Extra(usize),
}

/// HTTP settings after defaults.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub version: HttpVersion,
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub keep_alive: bool,
    pub insecure: bool,
    pub max_in_flight: usize,
    pub queue: usize,
    pub queue_timeout: Duration,
    /// `max_body` in bytes.
    pub max_body: u64,
    pub max_redirects: u32,
}

/// A request body.
#[derive(Debug, Clone)]
pub enum Body {
    None,
    Text(Template),
    Json(JsonTemplate),
}

/// One compiled step.
#[derive(Debug, Clone)]
pub struct Step {
    pub name: String,
    pub method: http::Method,
    pub origin: OriginRef,
    /// Path and query (`/api/x?a=1`), template.
    pub path: Template,
    /// Extra query parameters (name, value template), URL-encoded when sent.
    pub query: Vec<(String, Template)>,
    pub headers: Vec<(http::HeaderName, Template)>,
    pub body: Body,
    pub timeout: Duration,
    /// Redirects followed (0: a 3xx is the answer).
    pub max_redirects: u32,
    pub check: Check,
    /// (variable slot, extractor).
    pub extract: Vec<(usize, Extractor)>,
    pub think: Option<DurRange>,
    /// Whether the response body is needed (checks or extractors).
    pub needs_body: bool,
    /// Polling (`until`, `every`, `within`): None for a plain step.
    pub wait: Option<Wait>,
}

/// How a step polls: the request is sent again every `every` until the
/// `until` check holds, for at most `within` from its first send.
#[derive(Debug, Clone)]
pub struct Wait {
    pub until: Check,
    pub every: Duration,
    pub within: Duration,
}

/// Poll interval when a step with `until` gives no `every`.
pub const DEFAULT_WAIT_EVERY: Duration = Duration::from_secs(1);
/// Polling limit when a step with `until` gives no `within`.
pub const DEFAULT_WAIT_WITHIN: Duration = Duration::from_secs(60);

/// One compiled `[[users]]` population.
#[derive(Debug, Clone)]
pub struct Population {
    pub name: String,
    pub weight: u32,
    pub steps: Vec<Step>,
    /// Number of variable slots (extracted values).
    pub vars: usize,
    /// Feeders this population's templates read.
    pub feeders_used: Vec<usize>,
}

/// A phase's user load.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum UserLoad {
    /// Open model: arrivals per second.
    Open(RateCurve),
    /// Closed model: VUs looping journeys.
    Closed(VuCurve),
}

/// One phase as declared.
#[derive(Debug, Clone)]
pub struct Phase {
    pub name: String,
    pub duration: Duration,
    pub users: Option<UserLoad>,
    /// The agent population during this phase (carried over from earlier
    /// phases when the phase does not say); None before the first phase
    /// that declares agents.
    pub agents: Option<AgentLoad>,
    /// Commands per second of every commander (split by nothing: each
    /// commander sends at this rate).
    pub commanders: Option<RateCurve>,
}

/// Where the hub is.
#[derive(Debug, Clone)]
pub enum HubTarget {
    /// The built-in hub (in the built-in target, started in-process with
    /// these knobs, shared with the built-in API when both are built in).
    Builtin(TargetConfig),
    /// `http` for ws:// and http://, `https` for wss:// and https://.
    Url(Origin),
}

/// The runtime scenario: everything compiled, every rule checked.
#[derive(Debug)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    pub seed: u64,
    /// Hex SHA-256 of the resolved scenario text (after `--set`).
    pub content_hash: String,
    pub api: Option<ApiTarget>,
    pub hub: Option<HubTarget>,
    /// The kick endpoint for `drop = { how = "server" }`: origin and path.
    pub hub_admin: Option<(Origin, String)>,
    pub hub_settings: HubSettings,
    pub agents: Vec<AgentPopulation>,
    pub commanders: Vec<Commander>,
    pub extra_origins: Vec<Origin>,
    pub http: HttpSettings,
    pub feeders: Vec<Feeder>,
    pub populations: Vec<Population>,
    pub phases: Vec<Phase>,
    /// Every phase's fault actions, in phase order.
    pub actions: Vec<super::actions::Action>,
    pub slos: Vec<Slo>,
    pub abort_on_fail: bool,
    /// `[slo] generator_health`: what an unhealthy generator does to the
    /// run's result.
    pub generator_health: GeneratorHealthMode,
    /// Tolerances of a baseline comparison (`[compare]`).
    pub compare: super::Tolerances,
    /// `[capacity]` as written (flags of `stampede capacity` override it).
    pub capacity: super::model::CapacitySpec,
    /// `[metrics]`: the live Prometheus endpoint.
    pub metrics: MetricsSettings,
}

/// `[metrics]` after defaults (`run --metrics-listen` overrides `listen`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Where to serve `/metrics`; None: no endpoint.
    pub listen: Option<std::net::SocketAddr>,
    /// How long the endpoint stays up after the run.
    pub linger: Duration,
}

/// How long the metrics endpoint stays up after a run by default: longer
/// than a 1–2 s scrape interval twice over, short enough not to hold CI.
pub const DEFAULT_METRICS_LINGER: Duration = Duration::from_secs(5);

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            listen: None,
            linger: DEFAULT_METRICS_LINGER,
        }
    }
}

/// Where the metrics endpoint listens: `IP:port`, or a bare port on
/// loopback (`9464` is `127.0.0.1:9464`), so that serving beyond this
/// machine is always written out.
pub fn parse_metrics_listen(text: &str) -> Result<std::net::SocketAddr, String> {
    let text = text.trim();
    if let Ok(port) = text.parse::<u16>() {
        return Ok(std::net::SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| {
        format!(
            "`{text}` is not an IP:port address or a port (e.g. 127.0.0.1:9464, [::1]:9464, 9464)"
        )
    })
}

/// `[metrics]`: `listen` must be an `IP:port` socket address or a port.
fn metrics_settings(spec: &super::model::MetricsSpec, diags: &mut Diags<'_>) -> MetricsSettings {
    let listen = spec.listen.as_ref().and_then(|listen| {
        let text = listen.get_ref().trim();
        match parse_metrics_listen(text) {
            Ok(addr) => Some(addr),
            Err(_) => {
                diags.at(
                    listen.span(),
                    format!("[metrics] listen is an IP:port address or a port, not `{text}`"),
                    Some(
                        "e.g. listen = \"127.0.0.1:9464\" (loopback), or \"0.0.0.0:9464\" in a pod"
                            .into(),
                    ),
                );
                None
            }
        }
    });
    MetricsSettings {
        listen,
        linger: spec.linger.map_or(DEFAULT_METRICS_LINGER, |d| d.0),
    }
}

/// What an unhealthy generator (its latencies include its own delay, see
/// `report::generator`) does to the run's result: `[slo] generator_health`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum GeneratorHealthMode {
    /// A note and a banner; junit.xml's `generator health` case passes
    /// with the causes in its output.
    Warn,
    /// As `warn`, and the junit.xml case is an `<error>`; the exit code is
    /// unchanged (the default).
    #[default]
    Error,
    /// The run fails like a failed SLO: a junit.xml `<failure>`, exit 1.
    Fail,
}

impl GeneratorHealthMode {
    /// Every mode, in the order the documentation lists them.
    pub const ALL: [GeneratorHealthMode; 3] = [
        GeneratorHealthMode::Warn,
        GeneratorHealthMode::Error,
        GeneratorHealthMode::Fail,
    ];

    /// As written in a scenario.
    pub fn name(self) -> &'static str {
        match self {
            GeneratorHealthMode::Warn => "warn",
            GeneratorHealthMode::Error => "error",
            GeneratorHealthMode::Fail => "fail",
        }
    }
}

/// Collects diagnostics for one file.
pub(crate) struct Diags<'a> {
    pub file: &'a Path,
    pub src: &'a str,
    pub list: Vec<Diagnostic>,
}

impl Diags<'_> {
    fn at(&mut self, span: Range<usize>, message: impl Into<String>, help: Option<String>) {
        self.list.push(Diagnostic::at_span(
            self.file, self.src, span, message, help,
        ));
    }
}

/// Compile the parsed file. `dir` resolves feeder paths. Sections compile
/// in file order, each adding its diagnostics; None when any was found.
pub(crate) fn compile(
    file: ScenarioFile,
    dir: &Path,
    content_hash: String,
    diags: &mut Diags<'_>,
) -> Option<Scenario> {
    let name = file.name.get_ref().trim().to_string();
    if name.is_empty() {
        diags.at(file.name.span(), "the scenario name is empty", None);
    }
    let target_span = file.target.span();
    let targets = target::targets(file.target.get_ref(), diags);
    let http = target::http_settings(&file.http, diags);
    let feeders = steps::feeders(&file.feeders, dir, diags)?;
    let step_context = steps::StepContext {
        feeders: &feeders,
        api: &targets.api,
        extra_origins: &targets.extra_origins,
        http: &http,
    };
    let populations = steps::populations(&file.users, &step_context, diags);
    let crowd::Crowd {
        hub_settings,
        agents,
        commanders,
    } = crowd::crowd(
        &file,
        &feeders,
        &populations,
        &targets,
        target_span.clone(),
        diags,
    );
    let phases = phases::phases(
        &file.phases,
        &populations,
        &agents,
        &commanders,
        &targets,
        diags,
    );
    let actions = actions::actions(&file.phases, &targets, diags);
    target::check_api_declared(&targets, &populations, target_span, diags);
    let (slos, abort_on_fail, generator_health) = judging::slos(
        &file.slo,
        &populations,
        &agents,
        &commanders,
        &phases,
        diags,
    );
    let compare = judging::compare(&file.compare, diags);
    let metrics = metrics_settings(&file.metrics, diags);

    if !diags.list.is_empty() {
        return None;
    }
    let target::Targets {
        api,
        hub,
        hub_admin,
        extra_origins,
    } = targets;
    Some(Scenario {
        name,
        description: file.description,
        seed: file.seed,
        content_hash,
        api,
        hub,
        hub_admin,
        hub_settings,
        agents,
        commanders,
        extra_origins,
        http,
        feeders,
        populations,
        phases,
        actions,
        slos,
        abort_on_fail,
        generator_health,
        compare,
        capacity: file.capacity,
        metrics,
    })
}

/// Byte span of the first `key =` in the source (for errors on defaulted
/// sections whose values carry no span).
fn find_key(src: &str, key: &str) -> Range<usize> {
    src.find(key).map(|i| i..i + key.len()).unwrap_or(0..0)
}
