//! The agent fleet's share of the machine: descriptors (the soft limit is
//! raised; a fleet this process cannot hold is refused before anything is
//! written, with the `--processes N` that fits) and source addresses
//! (spread over enough loopback addresses for the ephemeral port range when
//! the scenario did not choose them).
//!
//! A segment counts its own share of the agents (the ids it owns of the
//! peak fleet), not the whole fleet's; every process needs its commanders'
//! and HTTP connections whatever the split.

use super::targets::Targets;
use crate::engine::hub::Fleet;
use crate::engine::Ids;
use crate::error::CommandError;
use crate::plan::Plan;
use crate::protocol::net;
use crate::scenario::Scenario;
use std::sync::Arc;

/// Descriptors and source addresses for the agent fleet: raise the soft
/// descriptor limit, refuse a fleet this process cannot hold, and spread
/// connections over enough loopback source addresses when the scenario did
/// not choose them.
pub fn prepare_fleet(
    scenario: &Scenario,
    plan: &Plan,
    targets: &Targets,
    ids: &Ids,
    insecure: bool,
    sources: Option<&net::SourceAddrs>,
) -> Result<Option<Arc<Fleet>>, CommandError> {
    let Some(hub_ids) = ids.hub.clone() else {
        return Ok(None);
    };
    let fleet_agents = plan.peak_agents();
    // This process's agents: the ids its segment owns of the peak fleet.
    let agents = u64::from(plan.segment.share(fleet_agents));
    let commanders = scenario.commanders.len() as u64;
    let hub_connections = agents + commanders;
    let users = if scenario.populations.is_empty() {
        0
    } else {
        scenario.http.max_in_flight as u64
    };
    let per_process = commanders + users + 16;
    let mut needed = agents + per_process;
    if targets.hub_in_process {
        needed += hub_connections;
    }
    let _ = net::raise_nofile_limit();
    net::check_fd_budget(net::FdNeed {
        needed,
        per_process,
        agents: u64::from(fleet_agents),
    })
    .map_err(CommandError::BadInput)?;
    let endpoint = match (&targets.hub, targets.endpoints.first()) {
        (Some(hub), _) => hub.clone(),
        (None, Some(api)) => api.clone(),
        (None, None) => return Ok(None),
    };
    // `--processes` gives each child its share of the fleet's addresses.
    let sources = match sources.or(scenario.hub_settings.sources.as_ref()) {
        Some(s) => Some(s.clone()),
        None => {
            let n = net::sources_needed(hub_connections);
            let loopback = endpoint
                .addrs
                .first()
                .is_some_and(|a| a.ip().is_loopback() && a.is_ipv4());
            (n > 1 && loopback).then(|| net::SourceAddrs::loopback(n as u32))
        }
    };
    let tls = endpoint
        .origin
        .is_tls()
        .then(|| crate::protocol::http::tls_connector(insecure, vec![b"http/1.1".to_vec()]));
    Ok(Some(Arc::new(Fleet::new(
        scenario,
        plan,
        endpoint,
        tls,
        sources,
        targets.hub_admin.clone(),
        hub_ids,
    ))))
}
