//! The end of a run: SLO verdicts (with the baseline comparison's
//! regressions among them), the exit status, the notes for the reader, the
//! run's metadata (built once), the result files and the console's final
//! report.

use super::results::{hostname, phase_spans};
use super::{Progress, RunOptions, RunOutcome};
use crate::engine::EngineReport;
use crate::error::{CommandError, ExitStatus};
use crate::metrics::Totals;
use crate::plan::Plan;
use crate::report::console;
use crate::report::generator::{Figures, GeneratorHealth};
use crate::report::json::{RunMeta, Summary};
use crate::scenario::Scenario;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// What the run left for judging and writing.
pub struct Finished<'a> {
    pub scenario: &'a Scenario,
    pub plan: &'a Plan,
    pub options: &'a RunOptions,
    pub dir: PathBuf,
    pub started_at: chrono::DateTime<chrono::Utc>,
    pub report: EngineReport,
    pub totals: Totals,
    /// `abort_on_fail` stopped the run.
    pub aborted: bool,
    pub baseline: Option<Summary>,
    /// What the process used while the engine ran (its generator health).
    pub process: crate::report::generator::ProcessUse,
}

/// Judge the run, write its results and say how it went.
pub fn conclude(finished: Finished<'_>) -> Result<RunOutcome, CommandError> {
    let Finished {
        scenario,
        plan,
        options,
        dir,
        started_at,
        report,
        totals,
        aborted,
        baseline,
        process,
    } = finished;
    let spans = phase_spans(plan, report.elapsed);
    let interrupted = report.stopped_early && !aborted;
    let action_abort = report.records.aborted_by.clone();
    let mut meta = RunMeta {
        name: scenario.name.clone(),
        scenario_path: options.scenario.display().to_string(),
        scenario_hash: scenario.content_hash.clone(),
        stampede_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        ended_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        duration_s: report.elapsed.as_secs_f64(),
        host: hostname(),
        command_line: options.command_line.clone(),
        seed: scenario.seed,
        interrupted,
        // Known once judged, below.
        exit_code: 0,
        notes: Vec::new(),
        segment: (!plan.segment.is_whole()).then_some(plan.segment),
        start_at: options.start_at.map(super::format_start_at),
        merged: None,
        clock: report.records.clock.clone(),
    };
    // HTTP bursts, judged on the per-second series against the SLOs.
    let mut totals = totals;
    let http_disruptions = crate::slo::recovery::http_disruptions(
        &scenario.slos,
        &totals,
        &spans,
        &action_marks(&report.records.actions, started_at.timestamp_micros()),
    );
    crate::slo::recovery::record(&mut totals, &http_disruptions);
    let mut verdicts = crate::slo::evaluate(&scenario.slos, &totals, &spans, report.elapsed);
    // The baseline comparison joins the verdicts (and so every report).
    let comparison = baseline.as_ref().map(|b| {
        let current = crate::report::json::build(meta.clone(), &spans, &totals, &[]);
        crate::compare::compare(b, &current, &scenario.compare)
    });
    if let Some(c) = &comparison {
        verdicts.extend(crate::compare::verdicts(c));
    }
    let generator = GeneratorHealth::judge(
        Figures::measure(
            &process,
            &totals,
            totals.series(),
            scenario.http.max_in_flight,
        ),
        scenario.generator_health,
    );
    let exit = if interrupted {
        ExitStatus::NotCarriedOut
    } else if verdicts.iter().any(|v| !v.pass) || generator.fails_the_run() {
        ExitStatus::SloFailed
    } else {
        ExitStatus::Passed
    };
    let mut notes = console::notes(scenario, plan, &totals);
    notes.extend(generator.notes());
    if !plan.segment.is_whole() {
        notes.push(format!(
            "segment {} {}",
            plan.segment,
            crate::report::json::SEGMENT_NOTE
        ));
    }
    if aborted {
        notes.push("stopped early: an SLO failed and abort_on_fail is set".into());
    }
    if let Some(why) = &action_abort {
        notes.push(format!("stopped: {why}"));
    } else if interrupted {
        notes.push("interrupted: the run was stopped before the end of its plan".into());
    }
    let failed_actions: Vec<String> = report
        .records
        .actions
        .iter()
        .filter(|a| !a.ok)
        .map(|a| format!("`{}` ({})", a.name, a.error.as_deref().unwrap_or("failed")))
        .collect();
    if !failed_actions.is_empty() && action_abort.is_none() {
        notes.push(format!(
            "{} fault action(s) failed (error kind `action`), the run went on: {}",
            failed_actions.len(),
            failed_actions.join(", ")
        ));
    }
    if let Some(c) = &comparison {
        notes.extend(c.warnings.iter().map(|w| format!("baseline: {w}")));
    }
    if report.cancelled > 0 {
        notes.push(format!(
            "{} journeys were still in flight after the grace period and were cancelled (counted as `cancelled`)",
            report.cancelled
        ));
    }
    meta.exit_code = exit.code();
    meta.notes = notes.clone();
    let mut summary = crate::report::json::build(meta, &spans, &totals, &verdicts);
    summary.disruptions = report.records.disruptions;
    summary.commands = report.records.commands;
    summary.actions = report.records.actions;
    summary.http_disruptions = http_disruptions;
    summary.generator = Some(generator);
    summary.set_models(|name| phase_model(plan, name));
    write_results(&dir, &summary, comparison.as_ref())?;
    let silent = matches!(options.progress, Progress::Silent | Progress::Json);
    if !silent && (options.progress != Progress::Quiet || exit != ExitStatus::Passed) {
        console::emit(&console::final_report(&summary));
    }
    if !silent {
        console::emit(&format!("results: {}\n", dir.display()));
    }
    Ok(RunOutcome {
        exit,
        result_dir: dir,
        verdicts,
        totals,
        elapsed: report.elapsed,
    })
}

/// The user model of the plan's phase `name` (None without users).
fn phase_model(plan: &Plan, name: &str) -> Option<crate::report::json::PhaseModel> {
    use crate::report::json::PhaseModel;
    use crate::scenario::UserLoad;
    let phase = plan.phases.iter().find(|p| p.name == name)?;
    match phase.users.as_ref()? {
        UserLoad::Open(_) => Some(PhaseModel::Open),
        UserLoad::Closed(_) => Some(PhaseModel::Closed),
    }
}

/// The fault actions on the run's timeline (seconds from `started_us`).
pub fn action_marks(
    actions: &[crate::engine::records::ActionRecord],
    started_us: i64,
) -> Vec<crate::slo::recovery::ActionMark> {
    actions
        .iter()
        .map(|a| crate::slo::recovery::ActionMark {
            name: a.name.clone(),
            at_s: (a.at_unix_us as i64 - started_us) as f64 / 1e6,
        })
        .collect()
}

/// summary.json first (what `stampede report DIR` rebuilds from), the
/// comparison when there is a baseline, then the reports for people and CI.
/// A failure in the latter leaves summary.json and the exit code as they
/// are: `stampede report DIR` can write them again.
fn write_results(
    dir: &Path,
    summary: &Summary,
    comparison: Option<&crate::compare::Comparison>,
) -> Result<(), CommandError> {
    if let Some(c) = comparison {
        let json = serde_json::to_vec_pretty(c).map_err(anyhow::Error::from)?;
        crate::report::write_atomic(&dir.join("comparison.json"), &json)
            .with_context(|| format!("writing {}", dir.join("comparison.json").display()))?;
        crate::report::write_atomic(
            &dir.join("comparison.md"),
            crate::compare::markdown(c).as_bytes(),
        )
        .with_context(|| format!("writing {}", dir.join("comparison.md").display()))?;
    }
    crate::report::json::write(dir, summary)
        .with_context(|| format!("writing {}", dir.join("summary.json").display()))?;
    crate::report::rebuild::write_reports_or_warn(dir, summary);
    Ok(())
}
