//! `[hub]`, `[[agents]]` and `[[commanders]]`: the hub settings after
//! defaults and every agent and commander population compiled (by
//! [`crate::scenario::hub`]'s compiler), names unique across every kind of
//! population.

use std::ops::Range;
use std::time::Duration;

use super::target::Targets;
use super::{Diags, Population};
use crate::scenario::feeder::Feeder;
use crate::scenario::hub::{self, AgentPopulation, Commander, HubCompiler, HubSettings};
use crate::scenario::model::ScenarioFile;
use crate::scenario::template::Symbols;

/// The hub side of a scenario.
pub(super) struct Crowd {
    pub hub_settings: HubSettings,
    pub agents: Vec<AgentPopulation>,
    pub commanders: Vec<Commander>,
}

/// Compile the hub settings, the agents and the commanders.
pub(super) fn crowd(
    file: &ScenarioFile,
    feeders: &[Feeder],
    populations: &[Population],
    targets: &Targets,
    target_span: Range<usize>,
    diags: &mut Diags<'_>,
) -> Crowd {
    let hub_settings = HubSettings {
        timeout: file.hub.timeout.0,
        sources: match &file.hub.sources {
            None => None,
            Some(s) => match hub::sources(s.get_ref()) {
                Ok(a) => Some(a),
                Err(e) => {
                    diags.at(s.span(), format!("[hub] sources: {e}"), None);
                    None
                }
            },
        },
        recovered: file.hub.recovered.0,
        disruption: file.hub.disruption,
    };
    let no_vars: Vec<String> = Vec::new();
    let mut hc = HubCompiler {
        symbols: Symbols {
            vars: &no_vars,
            feeders,
        },
        errors: Vec::new(),
    };
    // Users, agents and commanders share one namespace (an SLO's
    // `population` tag names any of them).
    let mut names: Vec<String> = populations.iter().map(|p| p.name.clone()).collect();
    let mut claim = |hc: &mut HubCompiler<'_>, name: &str, span: Range<usize>| {
        if names.iter().any(|n| n == name) {
            hc.errors
                .push((span, format!("two populations are named `{name}`"), None));
        }
        names.push(name.to_owned());
    };
    let mut agents: Vec<AgentPopulation> = Vec::new();
    for spec in &file.agents {
        if let Some(a) = hc.agent(spec) {
            claim(&mut hc, &a.name, spec.name.span());
            agents.push(a);
        }
    }
    let mut commanders: Vec<Commander> = Vec::new();
    for spec in &file.commanders {
        if let Some(c) = hc.commander(
            spec,
            targets.api.is_some(),
            targets.hub.is_some(),
            hub_settings.timeout.max(Duration::from_secs(10)),
        ) {
            claim(&mut hc, &c.name, spec.name.span());
            commanders.push(c);
        }
    }
    for (span, message, help) in std::mem::take(&mut hc.errors) {
        diags.at(span, message, help);
    }
    if !agents.is_empty() && targets.hub.is_none() {
        diags.at(
            target_span,
            "the scenario has [[agents]] but [target] has no `hub`",
            Some("set hub = \"builtin\" or hub = \"ws://HOST:PORT\", or pass --hub URL".into()),
        );
    }
    Crowd {
        hub_settings,
        agents,
        commanders,
    }
}
