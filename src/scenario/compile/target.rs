//! `[target]` and `[http]`: where load may go (the API, the hub, its kick
//! endpoint, further hosts) and the HTTP client settings after defaults.
//! Nothing else is ever sent to, so every URL here is checked with a
//! located diagnostic.

use std::ops::Range;

use super::{find_key, ApiTarget, Diags, HttpSettings, HubTarget, OriginRef, Population};
use crate::protocol::{Origin, OriginError};
use crate::scenario::model::{HttpSection, TargetSection};

/// The places `[target]` lets load go.
pub(super) struct Targets {
    pub api: Option<ApiTarget>,
    pub hub: Option<HubTarget>,
    /// The kick endpoint for `drop = { how = "server" }`: origin and path.
    pub hub_admin: Option<(Origin, String)>,
    /// `[target] hosts`, for absolute step URLs.
    pub extra_origins: Vec<Origin>,
}

/// Parse a hub URL: `ws(s)://` or `http(s)://host[:port]`.
pub fn parse_hub_url(text: &str) -> Result<Origin, OriginError> {
    let mapped = if let Some(rest) = text.strip_prefix("wss://") {
        format!("https://{rest}")
    } else if let Some(rest) = text.strip_prefix("ws://") {
        format!("http://{rest}")
    } else {
        text.to_string()
    };
    Origin::parse(&mapped).map_err(|e| match e.about(text) {
        OriginError::Scheme { url, scheme, .. } => OriginError::Scheme {
            url,
            scheme,
            allowed: "ws, wss, http or https",
        },
        other => other,
    })
}

/// Every URL of `[target]`, parsed; a bad one is a diagnostic and `None`.
pub(super) fn targets(target: &TargetSection, diags: &mut Diags<'_>) -> Targets {
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
                    e.to_string(),
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
            Err(e) => diags.at(host.span(), e.to_string(), None),
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
                    e.to_string(),
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
                    diags.at(a.span(), e.to_string(), None);
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
    Targets {
        api,
        hub,
        hub_admin,
        extra_origins,
    }
}

/// `[http]` after defaults (`queue` and `queue_timeout` follow
/// `max_in_flight` and `timeout` when not given).
pub(super) fn http_settings(h: &HttpSection, diags: &mut Diags<'_>) -> HttpSettings {
    let http = HttpSettings {
        version: h.version,
        timeout: h.timeout.0,
        connect_timeout: h.connect_timeout.0,
        keep_alive: h.keep_alive,
        insecure: h.insecure,
        max_in_flight: h.max_in_flight.max(1),
        queue: h.queue.unwrap_or(h.max_in_flight.max(1)),
        queue_timeout: h.queue_timeout.map(|d| d.0).unwrap_or(h.timeout.0),
        max_body: h.max_body.0,
        max_redirects: h.max_redirects,
    };
    if h.max_in_flight == 0 {
        let span = find_key(diags.src, "max_in_flight");
        diags.at(span, "max_in_flight must be at least 1", None);
    }
    http
}

/// Steps with relative URLs need `[target] api`.
pub(super) fn check_api_declared(
    targets: &Targets,
    populations: &[Population],
    target_span: Range<usize>,
    diags: &mut Diags<'_>,
) {
    if !populations.is_empty()
        && targets.api.is_none()
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
}
