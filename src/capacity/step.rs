//! A search step's scenario: the base scenario's populations at one load,
//! in a `warm-up` and a `measure` phase. [`shaped`] builds it as a new
//! value from a freshly loaded base (the base is never reused), so every
//! step plays exactly what its load says.

use super::Axis;
use crate::scenario::hub::{AgentLoad, ConnectRate};
use crate::scenario::{Phase, Scenario, UserLoad};
use crate::units::RateCurve;
use std::time::Duration;

/// The scenario's highest open-model arrival rate (journeys per second).
pub(super) fn peak_users(scenario: &Scenario) -> Option<f64> {
    scenario
        .phases
        .iter()
        .filter_map(|p| match p.users {
            Some(UserLoad::Open(r)) => Some(r.from.max(r.to)),
            _ => None,
        })
        .reduce(f64::max)
}

/// The step scenario: `base`'s populations at `load`, in two phases,
/// `warm-up` (`warmup` long) then `measure` (`step` long). A pure function
/// of its inputs: each step is shaped from a freshly loaded base, never
/// from the previous step.
pub(super) fn shaped(
    base: Scenario,
    axis: Axis,
    load: f64,
    warmup: Duration,
    step: Duration,
) -> Scenario {
    let users_rate = peak_users(&base);
    let agents = crate::engine::hub::max_agents(&base);
    let users = match axis {
        Axis::Users => Some(UserLoad::Open(RateCurve {
            from: load,
            to: load,
        })),
        Axis::Agents => users_rate.map(|r| UserLoad::Open(RateCurve { from: r, to: r })),
    };
    let connected = match axis {
        Axis::Agents => load.round().max(1.0) as u32,
        Axis::Users => agents,
    };
    let agent_load = (!base.agents.is_empty() && connected > 0).then_some(AgentLoad {
        connected,
        connect_rate: ConnectRate::Max,
        drop: None,
    });
    let commanders = base.phases.iter().find_map(|p| p.commanders);
    let phases = [("warm-up", warmup), ("measure", step)]
        .into_iter()
        .map(|(name, duration)| Phase {
            name: name.into(),
            duration,
            users,
            agents: agent_load.clone(),
            commanders,
        })
        .collect();
    // Users: the SLOs are judged on the measured stretch only. Agents: the
    // connection storm is the warm-up, and it is part of what is judged
    // (hub.connect happens there), so the SLOs see the whole step.
    let slos = match axis {
        Axis::Users => base
            .slos
            .into_iter()
            .map(|slo| crate::slo::Slo {
                phase: Some("measure".into()),
                ..slo
            })
            .collect(),
        Axis::Agents => base.slos,
    };
    Scenario {
        phases,
        slos,
        abort_on_fail: false,
        // Each step is a short run of its own: no live endpoint per step
        // (it would rebind the port and linger after every step).
        metrics: Default::default(),
        ..base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{load_str, Overrides};
    use std::path::Path;

    fn load(text: &str) -> Scenario {
        load_str(
            Path::new("s.toml"),
            Path::new("."),
            text,
            &Overrides::default(),
        )
        .expect("a valid scenario")
    }

    const BOTH: &str = r#"
name = "both"
[target]
api = "builtin"
hub = "builtin"
[[users]]
name = "u"
steps = [{ name = "list", get = "/api/servers" }]
[[agents]]
name = "a"
[[commanders]]
name = "c"
send = { post = "/api/commands", to = "agents" }
[[phases]]
name = "ramp"
duration = "10s"
users = { rate = "5/s -> 40/s" }
agents = { connected = 30, connect_rate = "10/s" }
commanders = { rate = "2/s" }
[[phases]]
name = "hold"
duration = "20s"
users = { rate = "25/s" }
agents = { connected = 50, connect_rate = "10/s", drop = { fraction = 0.2, how = "reset", at = "5s" } }
[slo]
abort_on_fail = true
"http.latency.p95" = "< 300ms"
"#;

    #[test]
    fn a_users_step_holds_the_rate_and_judges_the_measured_phase() {
        let step = shaped(
            load(BOTH),
            Axis::Users,
            12.5,
            Duration::from_secs(3),
            Duration::from_secs(7),
        );
        let names: Vec<&str> = step.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["warm-up", "measure"]);
        assert_eq!(step.phases[0].duration, Duration::from_secs(3));
        assert_eq!(step.phases[1].duration, Duration::from_secs(7));
        for phase in &step.phases {
            let rate = RateCurve {
                from: 12.5,
                to: 12.5,
            };
            assert_eq!(phase.users, Some(UserLoad::Open(rate)));
            // The agents stay at the base's peak, all at once, no drop.
            let agents = phase.agents.as_ref().expect("agents");
            assert_eq!(
                (agents.connected, agents.connect_rate, agents.drop),
                (50, ConnectRate::Max, None)
            );
            assert_eq!(phase.commanders.map(|c| (c.from, c.to)), Some((2.0, 2.0)));
        }
        assert!(step
            .slos
            .iter()
            .all(|s| s.phase.as_deref() == Some("measure")));
        assert!(!step.abort_on_fail);
    }

    #[test]
    fn an_agents_step_sets_the_fleet_and_keeps_the_users_peak() {
        let step = shaped(
            load(BOTH),
            Axis::Agents,
            120.4,
            Duration::from_secs(1),
            Duration::from_secs(2),
        );
        for phase in &step.phases {
            let peak = RateCurve {
                from: 40.0,
                to: 40.0,
            };
            assert_eq!(phase.users, Some(UserLoad::Open(peak)));
            assert_eq!(phase.agents.as_ref().map(|a| a.connected), Some(120));
        }
        // The SLOs see the whole step (the storm is in the warm-up).
        assert!(step.slos.iter().all(|s| s.phase.is_none()));
    }

    #[test]
    fn shaping_is_a_function_of_the_base_and_the_load() {
        let at = |rate| {
            shaped(
                load(BOTH),
                Axis::Users,
                rate,
                Duration::from_secs(1),
                Duration::from_secs(1),
            )
            .phases
            .iter()
            .map(|p| format!("{p:?}"))
            .collect::<Vec<_>>()
        };
        assert_eq!(at(8.0), at(8.0));
        assert_ne!(at(8.0), at(9.0));
    }
}
