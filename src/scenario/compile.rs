//! Model → runtime scenario. Every template, extractor and check is compiled
//! here, once; every cross-field rule is checked here with a located
//! diagnostic: names unique, hosts declared, feeders readable and not empty,
//! SLO metrics and tags known, exactly one load model per phase.

use super::check::{Check, Extractor};
use super::diagnostic::Diagnostic;
use super::feeder::Feeder;
use super::hub::{
    AgentLoad, AgentPopulation, Commander, ConnectRate, DropHow, HubCompiler, HubSettings,
};
use super::model::{HttpVersion, ScenarioFile, StepSpec};
use super::template::{JsonTemplate, Symbols, Template};
pub use crate::protocol::Origin;
use crate::slo::Slo;
use crate::target::TargetConfig;
use crate::units::{DurRange, RateCurve, VuCurve};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

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
    pub check: Check,
    /// (variable slot, extractor).
    pub extract: Vec<(usize, Extractor)>,
    pub think: Option<DurRange>,
    /// Whether the response body is needed (checks or extractors).
    pub needs_body: bool,
}

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

/// Parse a hub URL: `ws(s)://` or `http(s)://host[:port]`.
pub fn parse_hub_url(text: &str) -> Result<Origin, String> {
    let mapped = if let Some(rest) = text.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = text.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        text.to_string()
    };
    Origin::parse(&mapped).map_err(|e| e.replace("http or https", "ws, wss, http or https"))
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
    pub slos: Vec<Slo>,
    pub abort_on_fail: bool,
    /// Tolerances of a baseline comparison (`[compare]`).
    pub compare: super::Tolerances,
    /// `[capacity]` as written (flags of `stampede capacity` override it).
    pub capacity: super::model::CapacitySpec,
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

fn step_url(step: &StepSpec) -> Result<Option<(http::Method, &Spanned<String>)>, String> {
    let candidates = [
        (http::Method::GET, &step.get),
        (http::Method::POST, &step.post),
        (http::Method::PUT, &step.put),
        (http::Method::PATCH, &step.patch),
        (http::Method::DELETE, &step.delete),
        (http::Method::HEAD, &step.head),
    ];
    let mut found = candidates
        .into_iter()
        .filter_map(|(m, url)| url.as_ref().map(|u| (m, u)));
    let first = found.next();
    if found.next().is_some() {
        return Err("a step has exactly one of get / post / put / patch / delete / head".into());
    }
    Ok(first)
}

/// Compile the parsed file. `dir` resolves feeder paths.
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

    // Targets: the only places load may go.
    let target_span = file.target.span();
    let target = file.target.into_inner();
    let api = match &target.api {
        None => None,
        Some(api) if api.get_ref() == "builtin" => Some(ApiTarget::Builtin(
            target.builtin.clone().unwrap_or_default(),
        )),
        Some(api) => match Origin::parse(api.get_ref()) {
            Ok(origin) => Some(ApiTarget::Url(origin)),
            Err(e) => {
                diags.at(
                    api.span(),
                    e,
                    Some("e.g. api = \"http://127.0.0.1:8080\" or api = \"builtin\"".into()),
                );
                None
            }
        },
    };
    // [target.builtin] knobs are ignored when `api` points elsewhere (e.g.
    // `--api URL`): the same scenario runs against the built-in target and
    // against staging without an edit.
    let mut extra_origins = Vec::new();
    for host in &target.hosts {
        match Origin::parse(host.get_ref()) {
            Ok(o) => extra_origins.push(o),
            Err(e) => diags.at(host.span(), e, None),
        }
    }
    let hub = match &target.hub {
        None => None,
        Some(h) if h.get_ref() == "builtin" => Some(HubTarget::Builtin(
            target.builtin.clone().unwrap_or_default(),
        )),
        Some(h) => match parse_hub_url(h.get_ref()) {
            Ok(o) => Some(HubTarget::Url(o)),
            Err(e) => {
                diags.at(
                    h.span(),
                    e,
                    Some("e.g. hub = \"ws://127.0.0.1:3000\" or hub = \"builtin\"".into()),
                );
                None
            }
        },
    };
    let hub_admin = match &target.hub_admin {
        None => None,
        Some(a) => {
            let text = a.get_ref();
            let split = text
                .find("://")
                .and_then(|i| text[i + 3..].find('/').map(|j| i + 3 + j));
            match split.map(|at| (Origin::parse(&text[..at]), &text[at..])) {
                Some((Ok(o), path)) => Some((o, path.to_string())),
                Some((Err(e), _)) => {
                    diags.at(a.span(), e, None);
                    None
                }
                None => {
                    diags.at(
                        a.span(),
                        format!("hub_admin `{text}` is the kick endpoint's full URL"),
                        Some("e.g. hub_admin = \"http://127.0.0.1:3000/admin/hub/kick\"".into()),
                    );
                    None
                }
            }
        }
    };

    let h = &file.http;
    let http = HttpSettings {
        version: h.version,
        timeout: h.timeout.0,
        connect_timeout: h.connect_timeout.0,
        keep_alive: h.keep_alive,
        insecure: h.insecure,
        max_in_flight: h.max_in_flight.max(1),
        queue: h.queue.unwrap_or(h.max_in_flight.max(1)),
        queue_timeout: h.queue_timeout.map(|d| d.0).unwrap_or(h.timeout.0),
    };
    if h.max_in_flight == 0 {
        let span = find_key(diags.src, "max_in_flight");
        diags.at(span, "max_in_flight must be at least 1", None);
    }

    // Feeders.
    let mut feeders = Vec::new();
    for spec in &file.feeders {
        let path = dir.join(spec.file.get_ref());
        match Feeder::load(&spec.name, &path, spec.mode) {
            Ok(f) => feeders.push(f),
            Err(e) => diags.at(spec.file.span(), e.to_string(), None),
        }
    }
    if feeders.len() != file.feeders.len() {
        // Templates that use feed.* would report confusing errors.
        return None;
    }

    // Populations.
    let mut populations = Vec::new();
    let mut seen_pop: Vec<String> = Vec::new();
    for users in &file.users {
        let pop_name = users.name.get_ref().clone();
        if seen_pop.contains(&pop_name) {
            diags.at(
                users.name.span(),
                format!("two [[users]] are named `{pop_name}`"),
                None,
            );
        }
        seen_pop.push(pop_name.clone());
        if users.weight == 0 {
            let span = users.name.span();
            diags.at(
                span,
                format!("users `{pop_name}`: weight must be at least 1"),
                None,
            );
        }
        if users.steps.is_empty() {
            diags.at(
                users.name.span(),
                format!("users `{pop_name}` has no steps"),
                None,
            );
        }
        let mut vars: Vec<String> = Vec::new();
        let mut steps = Vec::new();
        let mut step_names: Vec<String> = Vec::new();
        for (index, spec) in users.steps.iter().enumerate() {
            if let Some(step) = compile_step(
                spec,
                index,
                &users.name,
                &mut vars,
                &feeders,
                &api,
                &extra_origins,
                &http,
                users.think,
                diags,
            ) {
                if step_names.contains(&step.name) {
                    diags.at(
                        users.name.span(),
                        format!("users `{pop_name}`: two steps are named `{}`", step.name),
                        Some("give each step a distinct `name`".into()),
                    );
                }
                step_names.push(step.name.clone());
                steps.push(step);
            }
        }
        let mut feeders_used: Vec<usize> = Vec::new();
        for step in &steps {
            let mut add = |v: Vec<usize>| {
                for f in v {
                    if !feeders_used.contains(&f) {
                        feeders_used.push(f);
                    }
                }
            };
            add(step.path.feeders_used());
            for (_, t) in &step.query {
                add(t.feeders_used());
            }
            for (_, t) in &step.headers {
                add(t.feeders_used());
            }
            match &step.body {
                Body::None => {}
                Body::Text(t) => add(t.feeders_used()),
                Body::Json(j) => add(j.feeders_used()),
            }
        }
        populations.push(Population {
            name: pop_name,
            weight: users.weight.max(1),
            steps,
            vars: vars.len(),
            feeders_used,
        });
    }

    // Agents and commanders.
    let hub_settings = HubSettings {
        timeout: file.hub.timeout.0,
        sources: match &file.hub.sources {
            None => None,
            Some(s) => match super::hub::sources(s.get_ref()) {
                Ok(a) => Some(a),
                Err(e) => {
                    diags.at(s.span(), format!("[hub] sources: {e}"), None);
                    None
                }
            },
        },
        recovered: file.hub.recovered.0,
    };
    let no_vars: Vec<String> = Vec::new();
    let mut hc = HubCompiler {
        symbols: Symbols {
            vars: &no_vars,
            feeders: &feeders,
        },
        errors: Vec::new(),
    };
    let mut agents: Vec<AgentPopulation> = Vec::new();
    for spec in &file.agents {
        if let Some(a) = hc.agent(spec) {
            if agents.iter().any(|b| b.name == a.name)
                || populations.iter().any(|p| p.name == a.name)
            {
                hc.errors.push((
                    spec.name.span(),
                    format!("two populations are named `{}`", a.name),
                    None,
                ));
            }
            agents.push(a);
        }
    }
    let mut commanders: Vec<Commander> = Vec::new();
    for spec in &file.commanders {
        if let Some(c) = hc.commander(
            spec,
            api.is_some(),
            hub.is_some(),
            hub_settings.timeout.max(Duration::from_secs(10)),
        ) {
            if commanders.iter().any(|b| b.name == c.name)
                || agents.iter().any(|b| b.name == c.name)
                || populations.iter().any(|p| p.name == c.name)
            {
                hc.errors.push((
                    spec.name.span(),
                    format!("two populations are named `{}`", c.name),
                    None,
                ));
            }
            commanders.push(c);
        }
    }
    for (span, message, help) in std::mem::take(&mut hc.errors) {
        diags.at(span, message, help);
    }
    if !agents.is_empty() && hub.is_none() {
        diags.at(
            target_span.clone(),
            "the scenario has [[agents]] but [target] has no `hub`",
            Some("set hub = \"builtin\" or hub = \"ws://HOST:PORT\", or pass --hub URL".into()),
        );
    }
    let mut carried: Option<AgentLoad> = None;

    // Phases.
    let mut phases = Vec::new();
    for spec in &file.phases {
        let phase_name = spec.name.get_ref().clone();
        if phases.iter().any(|p: &Phase| p.name == phase_name) {
            diags.at(
                spec.name.span(),
                format!("two phases are named `{phase_name}`"),
                None,
            );
        }
        let users = match &spec.users {
            None => None,
            Some(load) => {
                let l = load.get_ref();
                match (l.rate, l.vus) {
                    (Some(rate), None) => Some(UserLoad::Open(rate)),
                    (None, Some(vus)) => Some(UserLoad::Closed(vus)),
                    (Some(_), Some(_)) => {
                        diags.at(load.span(), "a phase's users load has either `rate` (open model) or `vus` (closed model), not both", None);
                        None
                    }
                    (None, None) => {
                        diags.at(
                            load.span(),
                            "a phase's users load needs `rate` (e.g. \"100/s\") or `vus` (e.g. 50)",
                            None,
                        );
                        None
                    }
                }
            }
        };
        if users.is_some() && populations.is_empty() {
            diags.at(
                spec.name.span(),
                format!("phase `{phase_name}` loads users but the scenario has no [[users]]"),
                None,
            );
        }
        let agents = match &spec.agents {
            None => carried.clone(),
            Some(load) => {
                let l = load.get_ref();
                if agents.is_empty() {
                    diags.at(
                        load.span(),
                        format!(
                            "phase `{phase_name}` sets agents but the scenario has no [[agents]]"
                        ),
                        None,
                    );
                }
                let before = carried.as_ref();
                let connected = l.connected.or(before.map(|b| b.connected));
                let connect_rate = l
                    .connect_rate
                    .or(before.map(|b| b.connect_rate))
                    .unwrap_or(ConnectRate::Max);
                match connected {
                    None => {
                        diags.at(
                            load.span(),
                            format!("phase `{phase_name}`: how many agents? set `connected` (e.g. agents = {{ connected = 1000 }})"),
                            None,
                        );
                        None
                    }
                    Some(connected) => {
                        let drop = l.drop.as_ref().map(|d| super::hub::Drop {
                            fraction: d.fraction.0,
                            how: d.how,
                            at: d.at.map_or(Duration::ZERO, |a| a.0),
                        });
                        if let Some(d) = &drop {
                            if d.at >= spec.duration.0 {
                                diags.at(load.span(), format!("phase `{phase_name}`: the drop's `at` is past the phase's end"), None);
                            }
                            if d.how == DropHow::Server
                                && !matches!(hub, Some(HubTarget::Builtin(_)))
                                && hub_admin.is_none()
                            {
                                diags.at(load.span(), format!("phase `{phase_name}`: how = \"server\" asks the hub's admin endpoint to kick agents, but the hub is not built in and [target] has no hub_admin"), Some("set hub_admin = \"http://HOST:PORT/admin/hub/kick\", or drop with how = \"close\" or \"reset\"".into()));
                            }
                        }
                        Some(AgentLoad {
                            connected,
                            connect_rate,
                            drop,
                        })
                    }
                }
            }
        };
        carried = agents.clone().map(|mut a| {
            a.drop = None;
            a
        });
        let commanders_load = spec.commanders.as_ref().map(|c| {
            if commanders.is_empty() {
                diags.at(
                    c.span(),
                    format!("phase `{phase_name}` sets commanders but the scenario has no [[commanders]]"),
                    None,
                );
            }
            c.get_ref().rate
        });
        phases.push(Phase {
            name: phase_name,
            duration: spec.duration.0,
            users,
            agents,
            commanders: commanders_load,
        });
    }
    if phases.is_empty() {
        diags.at(0..0, "the scenario has no [[phases]]", Some("add e.g. [[phases]] name = \"steady\", duration = \"30s\", users = { rate = \"50/s\" }".into()));
    }
    if !populations.is_empty()
        && api.is_none()
        && populations
            .iter()
            .any(|p| p.steps.iter().any(|s| s.origin == OriginRef::Api))
    {
        diags.at(
            target_span,
            "[target] has no `api`, but [[users]] steps use relative URLs",
            Some(
                "set api = \"builtin\" or api = \"http://127.0.0.1:8080\", or pass --api URL"
                    .into(),
            ),
        );
    }

    // SLOs.
    let mut slos = Vec::new();
    let mut abort_on_fail = false;
    for (key, value) in &file.slo {
        if key == "abort_on_fail" {
            match value.get_ref() {
                toml::Value::Boolean(b) => abort_on_fail = *b,
                _ => diags.at(value.span(), "abort_on_fail is true or false", None),
            }
            continue;
        }
        let Some(text) = value.get_ref().as_str() else {
            diags.at(
                value.span(),
                format!("SLO `{key}`: the target is a string such as \"< 200ms\""),
                None,
            );
            continue;
        };
        match crate::slo::parse(key, text) {
            Ok(slo) => {
                let mut bad_tag = |what: &str, name: &Option<String>, known: Vec<&str>| {
                    if let Some(n) = name {
                        if !known.contains(&n.as_str()) {
                            let help = super::diagnostic::suggest(n, &known)
                                .map(|s| format!("did you mean `{s}`?"));
                            diags.at(
                                value.span(),
                                format!("SLO `{key}`: no {what} is named `{n}`"),
                                help,
                            );
                        }
                    }
                };
                bad_tag(
                    "population",
                    &slo.population,
                    populations
                        .iter()
                        .map(|p| p.name.as_str())
                        .chain(agents.iter().map(|a| a.name.as_str()))
                        .chain(commanders.iter().map(|c| c.name.as_str()))
                        .collect(),
                );
                bad_tag(
                    "step",
                    &slo.step,
                    populations
                        .iter()
                        .flat_map(|p| p.steps.iter().map(|s| s.name.as_str()))
                        .collect(),
                );
                bad_tag(
                    "phase",
                    &slo.phase,
                    phases.iter().map(|p| p.name.as_str()).collect(),
                );
                slos.push(slo);
            }
            Err(e) => {
                let help = match &e {
                    crate::slo::SloError::UnknownMetric { .. } => Some(format!(
                        "known metrics: {}",
                        crate::slo::known_metrics().join(", ")
                    )),
                    _ => None,
                };
                diags.at(value.span(), format!("SLO `{key}`: {e}"), help);
            }
        }
    }

    let mut compare = super::Tolerances::default();
    for (key, value) in &file.compare {
        if let Err(e) = compare.set(key, value.get_ref()) {
            diags.at(value.span(), format!("[compare] {e}"), None);
        }
    }

    if !diags.list.is_empty() {
        return None;
    }
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
        slos,
        abort_on_fail,
        compare,
        capacity: file.capacity,
    })
}

/// Byte span of the first `key =` in the source (for errors on defaulted
/// sections whose values carry no span).
fn find_key(src: &str, key: &str) -> Range<usize> {
    src.find(key).map(|i| i..i + key.len()).unwrap_or(0..0)
}

#[allow(clippy::too_many_arguments)]
fn compile_step(
    spec: &StepSpec,
    index: usize,
    pop: &Spanned<String>,
    vars: &mut Vec<String>,
    feeders: &[Feeder],
    api: &Option<ApiTarget>,
    extra: &[Origin],
    http: &HttpSettings,
    pop_think: Option<DurRange>,
    diags: &mut Diags<'_>,
) -> Option<Step> {
    let pop_name = pop.get_ref();
    let (method, url) = match step_url(spec) {
        Ok(Some(found)) => found,
        Ok(None) => {
            diags.at(
                pop.span(),
                format!("users `{pop_name}`, step {}: no URL", index + 1),
                Some("write e.g. get = \"/api/servers\"".into()),
            );
            return None;
        }
        Err(e) => {
            diags.at(
                pop.span(),
                format!("users `{pop_name}`, step {}: {e}", index + 1),
                None,
            );
            return None;
        }
    };
    let name = spec.name.clone().unwrap_or_else(|| {
        let path = url.get_ref().split('?').next().unwrap_or("");
        format!("{} {}", method, path)
    });
    let symbols = Symbols { vars, feeders };
    let before = diags.list.len();

    // URL: relative to the api, or absolute to a declared origin.
    let text = url.get_ref();
    let (origin, path_text) = if text.starts_with('/') {
        (OriginRef::Api, text.as_str())
    } else if let Some(rest) = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
    {
        let scheme_len = text.len() - rest.len();
        let authority_end = rest.find('/').map(|i| scheme_len + i).unwrap_or(text.len());
        let base = &text[..authority_end];
        if base.contains("{{") {
            diags.at(
                url.span(),
                format!("step `{name}`: the host of a URL cannot be a template"),
                Some("declare hosts in [target] and template only the path".into()),
            );
            return None;
        }
        let origin = match Origin::parse(base) {
            Ok(o) => o,
            Err(e) => {
                diags.at(url.span(), format!("step `{name}`: {e}"), None);
                return None;
            }
        };
        let api_origin = match api {
            Some(ApiTarget::Url(o)) => Some(o),
            _ => None,
        };
        let origin_ref = if api_origin == Some(&origin) {
            OriginRef::Api
        } else if let Some(i) = extra.iter().position(|o| *o == origin) {
            OriginRef::Extra(i)
        } else {
            diags.at(
                url.span(),
                format!("step `{name}`: host `{origin}` is not declared in [target]; load goes only where the scenario says"),
                Some("use a path relative to [target] api (\"/api/...\"), or add the host to [target] hosts".into()),
            );
            return None;
        };
        let path = if authority_end == text.len() {
            "/"
        } else {
            &text[authority_end..]
        };
        (origin_ref, path)
    } else {
        diags.at(url.span(), format!("step `{name}`: URL `{text}` must start with `/` (relative to [target] api) or http(s)://"), None);
        return None;
    };

    let compile_t = |diags: &mut Diags<'_>, span: Range<usize>, text: &str| -> Option<Template> {
        match Template::compile(text, &symbols) {
            Ok(t) => Some(t),
            Err(e) => {
                diags.at(span, format!("step `{name}`: {e}"), None);
                None
            }
        }
    };
    let path = compile_t(diags, url.span(), path_text);
    let mut query = Vec::new();
    for (k, v) in &spec.query {
        if let Some(t) = compile_t(diags, v.span(), v.get_ref()) {
            query.push((k.clone(), t));
        }
    }
    let mut headers = Vec::new();
    for (k, v) in &spec.headers {
        match http::HeaderName::from_bytes(k.as_bytes()) {
            Ok(h) => {
                if let Some(t) = compile_t(diags, v.span(), v.get_ref()) {
                    headers.push((h, t));
                }
            }
            Err(_) => diags.at(
                v.span(),
                format!("step `{name}`: `{k}` is not a valid header name"),
                None,
            ),
        }
    }
    let body = match (&spec.body, &spec.json) {
        (Some(_), Some(j)) => {
            diags.at(
                j.span(),
                format!("step `{name}`: use `body` or `json`, not both"),
                None,
            );
            Body::None
        }
        (Some(b), None) => compile_t(diags, b.span(), b.get_ref())
            .map(Body::Text)
            .unwrap_or(Body::None),
        (None, Some(j)) => match JsonTemplate::compile(j.get_ref(), &symbols) {
            Ok(t) => Body::Json(t),
            Err(e) => {
                diags.at(j.span(), format!("step `{name}`: {e}"), None);
                Body::None
            }
        },
        (None, None) => Body::None,
    };
    if spec.json.is_some()
        && !spec
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("content-type"))
    {
        headers.push((
            http::header::CONTENT_TYPE,
            Template::compile("application/json", &symbols).ok()?,
        ));
    }
    let check = match spec.check.as_ref().map(Check::compile).transpose() {
        Ok(c) => c.unwrap_or_default(),
        Err(e) => {
            let span = url.span();
            diags.at(span, format!("step `{name}`: check: {e}"), None);
            Check::default()
        }
    };
    // Values this step extracts become visible to the following steps.
    let mut extract = Vec::new();
    for (var, spec_x) in &spec.extract {
        match Extractor::compile(spec_x) {
            Ok(x) => {
                let slot = match vars.iter().position(|v| v == var) {
                    Some(i) => i,
                    None => {
                        vars.push(var.clone());
                        vars.len() - 1
                    }
                };
                extract.push((slot, x));
            }
            Err(e) => diags.at(
                url.span(),
                format!("step `{name}`: extract `{var}`: {e}"),
                None,
            ),
        }
    }
    if diags.list.len() > before {
        return None;
    }
    let needs_body = check.needs_body() || extract.iter().any(|(_, x)| x.needs_body());
    Some(Step {
        name,
        method,
        origin,
        path: path?,
        query,
        headers,
        body,
        timeout: spec.timeout.map(|t| t.0).unwrap_or(http.timeout),
        check,
        extract,
        think: spec.think.or(pop_think),
        needs_body,
    })
}
