//! `[[feeders]]` and `[[users]]`: feeder files loaded, each population's
//! steps compiled (URL → declared origin, templates, body, check,
//! extractors) in order, so a value a step extracts is visible to the steps
//! after it.

use std::ops::Range;
use std::path::Path;

use toml::Spanned;

use super::{
    ApiTarget, Body, Diags, HttpSettings, OriginRef, Population, Step, Wait, DEFAULT_WAIT_EVERY,
    DEFAULT_WAIT_WITHIN,
};
use crate::protocol::Origin;
use crate::scenario::check::{Check, Extractor};
use crate::scenario::feeder::Feeder;
use crate::scenario::model::{FeederSpec, StepSpec, UsersSpec};
use crate::scenario::template::{JsonTemplate, Symbols, Template};

/// Load every feeder; None when one fails (templates that use `feed.*`
/// would report confusing errors).
pub(super) fn feeders(
    specs: &[FeederSpec],
    dir: &Path,
    diags: &mut Diags<'_>,
) -> Option<Vec<Feeder>> {
    let mut feeders = Vec::new();
    for spec in specs {
        let path = dir.join(spec.file.get_ref());
        match Feeder::load(&spec.name, &path, spec.mode) {
            Ok(f) => feeders.push(f),
            Err(e) => diags.at(spec.file.span(), e.to_string(), None),
        }
    }
    (feeders.len() == specs.len()).then_some(feeders)
}

/// What every step compiles against: the feeders its templates may read,
/// the origins its URL may name and the HTTP defaults.
pub(super) struct StepContext<'a> {
    pub feeders: &'a [Feeder],
    pub api: &'a Option<ApiTarget>,
    /// `[target] hosts`.
    pub extra_origins: &'a [Origin],
    pub http: &'a HttpSettings,
}

/// Compile every `[[users]]` population: unique names, weights, steps.
pub(super) fn populations(
    users_specs: &[UsersSpec],
    ctx: &StepContext<'_>,
    diags: &mut Diags<'_>,
) -> Vec<Population> {
    let mut populations = Vec::new();
    let mut seen_pop: Vec<String> = Vec::new();
    for users in users_specs {
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
            if let Some(step) = compile_step(ctx, users, index, spec, &mut vars, diags) {
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
        let feeders_used = feeders_used(&steps);
        populations.push(Population {
            name: pop_name,
            weight: users.weight.max(1),
            steps,
            vars: vars.len(),
            feeders_used,
        });
    }
    populations
}

/// The feeders a population's templates read, in first-use order.
fn feeders_used(steps: &[Step]) -> Vec<usize> {
    let mut feeders_used: Vec<usize> = Vec::new();
    for step in steps {
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
    feeders_used
}

/// An absolute `http(s)://host[:port]/path` URL split into its base (scheme
/// and authority) and its path (`/` when it has none); None when `text` is
/// not absolute. Steps and fault actions both go only to declared bases.
pub(super) fn split_absolute(text: &str) -> Option<(&str, &str)> {
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))?;
    let end = text.len() - rest.len() + rest.find('/').unwrap_or(rest.len());
    let path = if end == text.len() { "/" } else { &text[end..] };
    Some((&text[..end], path))
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

/// Compile step `index` of `users`. `vars` holds the names extracted by the
/// steps before it; this step's extractions are added.
fn compile_step(
    ctx: &StepContext<'_>,
    users: &UsersSpec,
    index: usize,
    spec: &StepSpec,
    vars: &mut Vec<String>,
    diags: &mut Diags<'_>,
) -> Option<Step> {
    let StepContext {
        feeders,
        api,
        extra_origins: extra,
        http,
    } = *ctx;
    let pop = &users.name;
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
    } else if let Some((base, path)) = split_absolute(text) {
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
    let wait = match &spec.until {
        Some(until) => match Check::compile(until) {
            Ok(until) => Some(Wait {
                until,
                every: spec.every.map_or(DEFAULT_WAIT_EVERY, |d| d.0),
                within: spec.within.map_or(DEFAULT_WAIT_WITHIN, |d| d.0),
            }),
            Err(e) => {
                diags.at(url.span(), format!("step `{name}`: until: {e}"), None);
                None
            }
        },
        None => {
            if spec.every.is_some() || spec.within.is_some() {
                diags.at(
                    url.span(),
                    format!("step `{name}`: `every` and `within` only apply to a step that polls"),
                    Some("add the condition to wait for, e.g. until = { json = { \"$.status\" = \"done\" } }".into()),
                );
            }
            None
        }
    };
    if diags.list.len() > before {
        return None;
    }
    let needs_body = check.needs_body()
        || extract.iter().any(|(_, x)| x.needs_body())
        || wait.as_ref().is_some_and(|w| w.until.needs_body());
    Some(Step {
        name,
        method,
        origin,
        path: path?,
        query,
        headers,
        body,
        timeout: spec.timeout.map(|t| t.0).unwrap_or(http.timeout),
        max_redirects: spec.max_redirects.unwrap_or(http.max_redirects),
        check,
        extract,
        think: spec.think.or(users.think),
        needs_body,
        wait,
    })
}
