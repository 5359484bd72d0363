//! `[[phases]]`: each phase's users load (open or closed model, exactly
//! one), its agent load (carried over from the phase before when not
//! given; a drop is never carried) and its commanders' rate, each checked
//! against the populations the scenario declares.

use std::time::Duration;

use super::target::Targets;
use super::{Diags, HubTarget, Phase, Population, UserLoad};
use crate::scenario::hub::{AgentLoad, AgentPopulation, Commander, ConnectRate, Drop, DropHow};
use crate::scenario::model::PhaseSpec;

/// Compile every phase, in order.
pub(super) fn phases(
    specs: &[PhaseSpec],
    populations: &[Population],
    agents: &[AgentPopulation],
    commanders: &[Commander],
    targets: &Targets,
    diags: &mut Diags<'_>,
) -> Vec<Phase> {
    let mut carried: Option<AgentLoad> = None;
    let mut phases = Vec::new();
    for spec in specs {
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
                        let drop = l.drop.as_ref().map(|d| Drop {
                            fraction: d.fraction.0,
                            how: d.how,
                            at: d.at.map_or(Duration::ZERO, |a| a.0),
                        });
                        if let Some(d) = &drop {
                            if d.at >= spec.duration.0 {
                                diags.at(load.span(), format!("phase `{phase_name}`: the drop's `at` is past the phase's end"), None);
                            }
                            if d.how == DropHow::Server
                                && !matches!(targets.hub, Some(HubTarget::Builtin(_)))
                                && targets.hub_admin.is_none()
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
    phases
}
