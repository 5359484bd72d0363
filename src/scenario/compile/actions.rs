//! The phases' `actions`: offsets inside their phase, exactly one of
//! `exec` / `get` / `post` / `put` / `delete`, URLs only to a declared host
//! (`[target] api`, `hub`, `hub_admin` or `hosts`; a relative URL goes to
//! the api, or to the hub when there is no api), templates of `env.*`
//! only, names unique.

use super::target::Targets;
use super::{ApiTarget, Diags, HubTarget};
use crate::protocol::Origin;
use crate::scenario::actions::{Action, ActionKind, ActionOrigin, ActionSpec, DEFAULT_TIMEOUT};
use crate::scenario::diagnostic::Diagnostic;
use crate::scenario::model::PhaseSpec;
use crate::scenario::template::{Symbols, Template};
use std::ops::Range;
use toml::Spanned;

/// Every phase's actions, in phase order then file order.
pub(super) fn actions(
    specs: &[PhaseSpec],
    targets: &Targets,
    diags: &mut Diags<'_>,
) -> Vec<Action> {
    let mut out: Vec<Action> = Vec::new();
    let mut number = 0;
    for (phase, spec) in specs.iter().enumerate() {
        for action in &spec.actions {
            number += 1;
            let span = action.span();
            let a = action.get_ref();
            let name = a.name.as_ref().map_or_else(
                || format!("action-{number}"),
                |n| n.get_ref().trim().to_string(),
            );
            let name_span = a.name.as_ref().map_or(span.clone(), |n| n.span());
            if name.is_empty() {
                diags.at(name_span, "an action's name is empty", None);
            } else if out.iter().any(|o| o.name == name) {
                diags.at(
                    name_span,
                    format!("two actions are named `{name}`"),
                    Some(
                        "give each action a distinct `name` (its output file is named after it)"
                            .into(),
                    ),
                );
            }
            if a.at.0 >= spec.duration.0 {
                diags.at(
                    span.clone(),
                    format!(
                        "action `{name}`: `at` is past the end of phase `{}`",
                        spec.name.get_ref()
                    ),
                    None,
                );
            }
            let before = diags.list.len();
            let kind = kind(&name, a, span.clone(), targets, diags);
            if diags.list.len() > before {
                continue;
            }
            let Some(kind) = kind else { continue };
            let location = {
                let d = Diagnostic::at_span(diags.file, diags.src, span.clone(), "", None);
                format!("{}:{}:{}", d.file.display(), d.line, d.column)
            };
            out.push(Action {
                name,
                phase,
                at: a.at.0,
                kind,
                timeout: a.timeout.map_or(DEFAULT_TIMEOUT, |t| t.0),
                fail: a.fail,
                expect: a.expect.as_ref().map(|e| *e.get_ref()),
                location,
            });
        }
    }
    out
}

/// A template of `env.*` only, rendered now.
fn fixed(name: &str, text: &Spanned<String>, diags: &mut Diags<'_>) -> Option<String> {
    let symbols = Symbols {
        vars: &[],
        feeders: &[],
    };
    match Template::compile(text.get_ref(), &symbols) {
        Ok(t) => match t.as_static() {
            Some(s) => Some(s.to_string()),
            None => {
                diags.at(
                    text.span(),
                    format!("action `{name}`: an action's templates may use only `env.NAME`"),
                    None,
                );
                None
            }
        },
        Err(e) => {
            diags.at(text.span(), format!("action `{name}`: {e}"), None);
            None
        }
    }
}

fn kind(
    name: &str,
    a: &ActionSpec,
    span: Range<usize>,
    targets: &Targets,
    diags: &mut Diags<'_>,
) -> Option<ActionKind> {
    let urls = [
        (http::Method::GET, &a.get),
        (http::Method::POST, &a.post),
        (http::Method::PUT, &a.put),
        (http::Method::DELETE, &a.delete),
    ];
    let mut found = urls
        .into_iter()
        .filter_map(|(m, u)| u.as_ref().map(|u| (m, u)));
    let http = found.next();
    let what = match (&a.exec, http, found.next()) {
        (Some(_), Some(_), _) | (_, Some(_), Some(_)) | (None, None, _) => {
            diags.at(
                span,
                format!("action `{name}` has exactly one of exec / get / post / put / delete"),
                Some("e.g. exec = [\"kill\", \"-9\", \"{{ env.HUB_PID }}\"] or post = \"/admin/hub/kick\"".into()),
            );
            return None;
        }
        (Some(argv), None, _) => {
            if argv.get_ref().is_empty() {
                diags.at(
                    argv.span(),
                    format!("action `{name}`: exec needs a command"),
                    None,
                );
                return None;
            }
            if a.body.is_some() || a.json.is_some() || !a.headers.is_empty() {
                diags.at(
                    span,
                    format!(
                        "action `{name}`: headers / body / json go with an HTTP action, not exec"
                    ),
                    None,
                );
                return None;
            }
            let argv: Vec<Option<String>> = argv
                .get_ref()
                .iter()
                .map(|arg| fixed(name, arg, diags))
                .collect();
            ActionKind::Exec(argv.into_iter().collect::<Option<Vec<_>>>()?)
        }
        (None, Some((method, url)), _) => {
            let text = fixed(name, url, diags)?;
            let (origin, path) = route(name, &text, url.span(), targets, diags)?;
            let mut headers = Vec::new();
            for (k, v) in &a.headers {
                let value = fixed(name, v, diags)?;
                match (
                    http::HeaderName::from_bytes(k.as_bytes()),
                    http::HeaderValue::from_str(&value),
                ) {
                    (Ok(k), Ok(v)) => headers.push((k, v)),
                    _ => {
                        diags.at(
                            v.span(),
                            format!("action `{name}`: `{k}` is not a valid header"),
                            None,
                        );
                        return None;
                    }
                }
            }
            let body = match (&a.body, &a.json) {
                (Some(_), Some(j)) => {
                    diags.at(
                        j.span(),
                        format!("action `{name}`: use `body` or `json`, not both"),
                        None,
                    );
                    return None;
                }
                (Some(b), None) => fixed(name, b, diags)?,
                (None, Some(j)) => {
                    if !headers.iter().any(|(k, _)| k == http::header::CONTENT_TYPE) {
                        headers.push((
                            http::header::CONTENT_TYPE,
                            http::HeaderValue::from_static("application/json"),
                        ));
                    }
                    serde_json::to_string(j.get_ref()).unwrap_or_default()
                }
                (None, None) => String::new(),
            };
            ActionKind::Http {
                method,
                origin,
                path,
                headers,
                body,
            }
        }
    };
    Some(what)
}

/// A URL → where it goes and its path; only declared hosts.
fn route(
    name: &str,
    text: &str,
    span: Range<usize>,
    targets: &Targets,
    diags: &mut Diags<'_>,
) -> Option<(ActionOrigin, String)> {
    if text.starts_with('/') {
        let origin = match (&targets.api, &targets.hub) {
            (Some(_), _) => ActionOrigin::Api,
            (None, Some(_)) => ActionOrigin::Hub,
            (None, None) => {
                diags.at(
                    span,
                    format!("action `{name}`: a relative URL needs [target] api or hub"),
                    None,
                );
                return None;
            }
        };
        return Some((origin, text.to_string()));
    }
    let Some((base, path)) = super::steps::split_absolute(text) else {
        diags.at(span, format!("action `{name}`: URL `{text}` must start with `/` (relative to [target] api) or http(s)://"), None);
        return None;
    };
    let origin = match Origin::parse(base) {
        Ok(o) => o,
        Err(e) => {
            diags.at(span, format!("action `{name}`: {e}"), None);
            return None;
        }
    };
    let mut declared: Vec<&Origin> = targets.extra_origins.iter().collect();
    if let Some(ApiTarget::Url(o)) = &targets.api {
        declared.push(o);
    }
    if let Some(HubTarget::Url(o)) = &targets.hub {
        declared.push(o);
    }
    if let Some((o, _)) = &targets.hub_admin {
        declared.push(o);
    }
    if !declared.contains(&&origin) {
        diags.at(
            span,
            format!("action `{name}`: host `{origin}` is not declared in [target]; actions go only where the scenario says"),
            Some("use a path relative to [target] api (\"/admin/...\"), or add the host to [target] hosts".into()),
        );
        return None;
    }
    Some((ActionOrigin::Url(origin), path.to_string()))
}
