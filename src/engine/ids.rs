//! The metric series of a run, registered before it starts so that the hot
//! path records by index.
//!
//! Per population × step: `http.latency` (from the intended start: corrected
//! for coordinated omission), `http.service_time` (from the actual send),
//! `http.requests` and `http.errors{kind}`; a step that polls also
//! `http.wait`, `http.wait.polls` and `http.wait.open`. Per population: `http.journey`
//! (journeys that completed). Per run: `generator.lag` (how
//! late the dispatcher made each arrival) and gauges.

use crate::error::ErrorKind;
use crate::metrics::catalogue::{HTTP_JOURNEY, HTTP_WAIT, HTTP_WAIT_OPEN, HTTP_WAIT_POLLS};
use crate::metrics::{CounterId, GaugeId, HistId, Layout};
use crate::plan::Plan;
use crate::scenario::Scenario;

/// Series of one step.
#[derive(Debug, Clone)]
pub struct StepIds {
    pub latency: HistId,
    pub service: HistId,
    pub requests: CounterId,
    /// Index = [`ErrorKind::index`].
    pub errors: Vec<CounterId>,
    /// A polling step's wait series.
    pub wait: Option<WaitIds>,
}

/// Series of a polling step.
#[derive(Debug, Clone, Copy)]
pub struct WaitIds {
    /// `http.wait`: waits whose condition held.
    pub wait: HistId,
    /// `http.wait.polls`: polls per wait that ended (met or timed out).
    pub polls: HistId,
    /// `http.wait.open`: waits still open at the run's end.
    pub open: HistId,
}

/// Series of a run.
#[derive(Debug, Clone)]
pub struct Ids {
    /// `[population][step]`.
    pub steps: Vec<Vec<StepIds>>,
    /// `http.journey` per population.
    pub journeys: Vec<HistId>,
    pub lag: HistId,
    pub cpu: GaugeId,
    /// `generator.runqueue`: ms its threads waited for a CPU in the
    /// interval, summed over threads (`/proc/self/task/*/schedstat`).
    pub run_queue: GaugeId,
    pub in_flight: GaugeId,
    pub vus: GaugeId,
    pub queued: GaugeId,
    pub offered: GaugeId,
    /// Agents and commanders (None without them).
    pub hub: Option<super::hub::HubIds>,
    /// Fault actions (None without them).
    pub actions: Option<super::actions::ActionIds>,
}

impl Ids {
    /// Register every series of `scenario` in a new layout, tagged with
    /// `plan`'s phases.
    pub fn register(scenario: &Scenario, plan: &Plan) -> (Layout, Ids) {
        let mut layout = Layout {
            phases: plan.phase_names().map(str::to_owned).collect(),
            ..Layout::default()
        };
        let steps = scenario
            .populations
            .iter()
            .map(|pop| {
                pop.steps
                    .iter()
                    .map(|step| StepIds {
                        latency: layout.add_hist("http.latency", &pop.name, &step.name),
                        service: layout.add_hist("http.service_time", &pop.name, &step.name),
                        requests: layout.add_counter("http.requests", &pop.name, &step.name, None),
                        errors: ErrorKind::ALL
                            .iter()
                            .map(|k| {
                                layout.add_counter(
                                    "http.errors",
                                    &pop.name,
                                    &step.name,
                                    Some(k.name()),
                                )
                            })
                            .collect(),
                        wait: step.wait.as_ref().map(|_| WaitIds {
                            wait: layout.add_hist(HTTP_WAIT, &pop.name, &step.name),
                            polls: layout.add_hist(HTTP_WAIT_POLLS, &pop.name, &step.name),
                            open: layout.add_hist(HTTP_WAIT_OPEN, &pop.name, &step.name),
                        }),
                    })
                    .collect()
            })
            .collect();
        let journeys = (scenario.populations.iter())
            .map(|pop| layout.add_hist(HTTP_JOURNEY, &pop.name, ""))
            .collect();
        let ids = Ids {
            steps,
            journeys,
            lag: layout.add_hist("generator.lag", "", ""),
            cpu: layout.add_gauge("generator.cpu"),
            run_queue: layout.add_gauge("generator.runqueue"),
            in_flight: layout.add_gauge("users.in_flight"),
            vus: layout.add_gauge("users.vus"),
            queued: layout.add_gauge("users.queued"),
            offered: layout.add_gauge("users.arrivals"),
            hub: None,
            actions: None,
        };
        // `http.recovery` is measured after the run, from the per-second
        // series (`slo::recovery`): its series are registered here so the
        // layout is the same in every segment.
        if !scenario.populations.is_empty() {
            layout.add_hist(crate::metrics::catalogue::HTTP_RECOVERY, "", "");
            layout.add_counter(crate::slo::recovery::HTTP_UNRECOVERED, "", "", None);
        }
        let mut ids = ids;
        ids.hub = super::hub::HubIds::register(&mut layout, scenario);
        ids.actions = super::actions::ActionIds::register(&mut layout, scenario);
        (layout, ids)
    }
}
