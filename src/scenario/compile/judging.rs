//! `[slo]` and `[compare]`: what the run is judged by. SLO keys are parsed
//! by [`crate::slo`] and their tags checked against the scenario's
//! populations, steps and phases; `[compare]` sets the tolerances of a
//! baseline comparison.

use std::collections::BTreeMap;

use toml::Spanned;

use super::{Diags, GeneratorHealthMode, Phase, Population};
use crate::scenario::diagnostic::suggest;
use crate::scenario::hub::{AgentPopulation, Commander};
use crate::scenario::Tolerances;
use crate::slo::{self, known_metrics, Slo, SloError};

/// Every SLO, `abort_on_fail` and `generator_health`.
pub(super) fn slos(
    specs: &BTreeMap<String, Spanned<toml::Value>>,
    populations: &[Population],
    agents: &[AgentPopulation],
    commanders: &[Commander],
    phases: &[Phase],
    diags: &mut Diags<'_>,
) -> (Vec<Slo>, bool, GeneratorHealthMode) {
    let mut slos = Vec::new();
    let mut abort_on_fail = false;
    let mut generator_health = GeneratorHealthMode::default();
    for (key, value) in specs {
        if key == "generator_health" {
            let names: Vec<&str> = GeneratorHealthMode::ALL.iter().map(|m| m.name()).collect();
            match value.get_ref().as_str() {
                Some(text) => match GeneratorHealthMode::ALL.iter().find(|m| m.name() == text) {
                    Some(mode) => generator_health = *mode,
                    None => diags.at(
                        value.span(),
                        format!(
                            "generator_health is one of {}, not `{text}`",
                            names.join(", ")
                        ),
                        suggest(text, &names).map(|s| format!("did you mean `{s}`?")),
                    ),
                },
                None => diags.at(
                    value.span(),
                    format!("generator_health is a string: one of {}", names.join(", ")),
                    None,
                ),
            }
            continue;
        }
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
        match slo::parse(key, text) {
            Ok(slo) => {
                let mut bad_tag = |what: &str, name: &Option<String>, known: Vec<&str>| {
                    if let Some(n) = name {
                        if !known.contains(&n.as_str()) {
                            let help = suggest(n, &known).map(|s| format!("did you mean `{s}`?"));
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
                    SloError::UnknownMetric { .. } => {
                        Some(format!("known metrics: {}", known_metrics().join(", ")))
                    }
                    _ => None,
                };
                diags.at(value.span(), format!("SLO `{key}`: {e}"), help);
            }
        }
    }
    (slos, abort_on_fail, generator_health)
}

/// `[compare]`: the tolerances of `run --baseline`.
pub(super) fn compare(
    specs: &BTreeMap<String, Spanned<String>>,
    diags: &mut Diags<'_>,
) -> Tolerances {
    let mut compare = Tolerances::default();
    for (key, value) in specs {
        if let Err(e) = compare.set(key, value.get_ref()) {
            diags.at(value.span(), format!("[compare] {e}"), None);
        }
    }
    compare
}
