//! Before a run: start the built-in target when the scenario asks for it,
//! resolve every declared origin once, and check each one that load will go
//! to accepts a TCP connection (unreachable at start → exit 3, nothing
//! written).

use crate::error::CommandError;
use crate::plan::Plan;
use crate::protocol::http::Endpoint;
use crate::scenario::{self, ApiTarget, Origin, Scenario};
use anyhow::Context;
use std::path::Path;
use std::time::Duration;

/// Keeps the in-process built-in target alive for the run.
pub struct Targets {
    pub endpoints: Vec<Endpoint>,
    /// Where agents connect.
    pub hub: Option<Endpoint>,
    /// The kick endpoint (`drop = { how = "server" }`) and its path.
    pub hub_admin: Option<(Endpoint, String)>,
    /// True when the hub runs in this process (its connections count
    /// against this process's descriptors too).
    pub hub_in_process: bool,
    _builtin: Option<crate::target::RunningTarget>,
}

/// Start the built-in target if asked, resolve every origin, and check each
/// one accepts a TCP connection (unreachable at start → exit 3).
pub async fn prepare_targets(scenario: &Scenario) -> Result<Targets, CommandError> {
    let mut builtin = None;
    let mut origins: Vec<Origin> = Vec::new();
    match &scenario.api {
        Some(ApiTarget::Builtin(config)) => {
            let running =
                crate::target::spawn("127.0.0.1:0".parse().expect("literal"), config.clone())
                    .await
                    .context("starting the built-in target")?;
            origins.push(Origin {
                scheme: "http".into(),
                host: running.addr.ip().to_string(),
                port: running.addr.port(),
            });
            builtin = Some(running);
        }
        Some(ApiTarget::Url(origin)) => origins.push(origin.clone()),
        None => origins.push(Origin {
            // Never used: compile refuses relative steps without an api.
            scheme: "http".into(),
            host: "127.0.0.1".into(),
            port: 9,
        }),
    }
    origins.extend(scenario.extra_origins.iter().cloned());
    let mut endpoints = Vec::new();
    for (i, origin) in origins.iter().enumerate() {
        let endpoint = resolve(origin).await?;
        let used = scenario.populations.iter().any(|p| {
            p.steps.iter().any(|s| match s.origin {
                scenario::OriginRef::Api => i == 0,
                scenario::OriginRef::Extra(x) => x + 1 == i,
            })
        });
        if used {
            preflight(&endpoint, scenario.http.connect_timeout).await?;
        }
        endpoints.push(endpoint);
    }
    // The hub.
    let mut hub = None;
    let mut hub_admin = None;
    let mut hub_in_process = false;
    match &scenario.hub {
        None => {}
        Some(scenario::HubTarget::Builtin(config)) => {
            if builtin.is_none() {
                let running =
                    crate::target::spawn("127.0.0.1:0".parse().expect("literal"), config.clone())
                        .await
                        .context("starting the built-in hub")?;
                builtin = Some(running);
            }
            let addr = builtin.as_ref().expect("started").addr;
            let origin = Origin {
                scheme: "http".into(),
                host: addr.ip().to_string(),
                port: addr.port(),
            };
            let endpoint = Endpoint::resolve(&origin)
                .await
                .context("resolving the built-in hub")?;
            hub_admin = Some((endpoint.clone(), "/admin/hub/kick".to_string()));
            hub = Some(endpoint);
            hub_in_process = true;
        }
        Some(scenario::HubTarget::Url(origin)) => {
            let endpoint = resolve(origin).await?;
            if !scenario.agents.is_empty() {
                preflight(&endpoint, scenario.hub_settings.timeout).await?;
            }
            hub = Some(endpoint);
        }
    }
    if let Some((origin, path)) = &scenario.hub_admin {
        let endpoint = resolve(origin).await?;
        hub_admin = Some((endpoint, path.clone()));
    }
    Ok(Targets {
        endpoints,
        hub,
        hub_admin,
        hub_in_process,
        _builtin: builtin,
    })
}

/// Resolve a declared origin (DNS once, at start); failure is exit 3.
async fn resolve(origin: &Origin) -> Result<Endpoint, CommandError> {
    Endpoint::resolve(origin)
        .await
        .map_err(|e| CommandError::Unreachable {
            target: origin.to_string(),
            detail: format!("cannot resolve: {e}"),
        })
}

async fn preflight(endpoint: &Endpoint, timeout: Duration) -> Result<(), CommandError> {
    let addrs = &endpoint.addrs[..];
    let shown = || {
        let list: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        format!("{} ({})", endpoint.origin, list.join(", "))
    };
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addrs)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(CommandError::Unreachable {
            target: shown(),
            detail: e.to_string(),
        }),
        Err(_) => Err(CommandError::Unreachable {
            target: shown(),
            detail: format!(
                "no TCP connection within {}",
                crate::units::format_duration(timeout)
            ),
        }),
    }
}

/// The line that opens a run: what (which segment of it), for how long,
/// against what, where the results go.
pub fn announce(scenario: &Scenario, plan: &Plan, targets: &Targets, dir: &Path) -> String {
    let mut against = Vec::new();
    if scenario.api.is_some() {
        if let Some(e) = targets.endpoints.first() {
            against.push(format!("api {}", e.origin));
        }
    }
    if let Some(e) = &targets.hub {
        against.push(format!("hub {}", e.origin));
    }
    let share = if plan.segment.is_whole() {
        String::new()
    } else {
        format!(" (segment {})", plan.segment)
    };
    format!(
        "stampede: running `{}`{share} for {} against {} → {}",
        scenario.name,
        crate::units::format_duration(plan.total),
        against.join(" and "),
        dir.display()
    )
}
