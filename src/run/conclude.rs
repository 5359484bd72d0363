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
    /// What was lost of `metrics.hlog`, as a note (see `monitor::Monitored`).
    pub hlog_lost: Option<String>,
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
        hlog_lost,
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
            &totals.series(),
            scenario.http.max_in_flight,
        ),
        scenario.generator_health,
    );
    // A lost result file is exit 3 like an interruption, whatever the
    // verdicts: they stand (summary.json holds every histogram), but a CI
    // job must not pass on results that are not all there (README: "Result
    // files"). Exit 1 would blame the system under test for our disk.
    let exit = if interrupted || hlog_lost.is_some() {
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
    notes.extend(hlog_lost);
    meta.exit_code = exit.code();
    meta.notes = notes.clone();
    let mut summary = crate::report::json::build(meta, &spans, &totals, &verdicts);
    summary.disruptions = report.records.disruptions;
    summary.commands = report.records.commands;
    summary.actions = report.records.actions;
    summary.http_disruptions = http_disruptions;
    summary.generator = Some(generator);
    summary.set_models(|name| phase_model(plan, name));
    // A result file that could not be written is exit 3 as well (each
    // failure is on stderr, naming the file; the others are still written).
    let exit = if write_results(&dir, &summary, comparison.as_ref()) {
        exit
    } else {
        ExitStatus::NotCarriedOut
    };
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
/// Every file is tried whatever became of the others (each is written
/// atomically: complete or absent); each failure is an error on stderr
/// naming the file. Returns whether all were written.
fn write_results(
    dir: &Path,
    summary: &Summary,
    comparison: Option<&crate::compare::Comparison>,
) -> bool {
    let mut ok = true;
    let mut failed = |what: String| {
        eprintln!("stampede: error: {what}");
        ok = false;
    };
    let summary_path = dir.join(crate::report::json::FILE_NAME);
    if let Err(e) = crate::report::json::write(dir, summary) {
        failed(format!("writing {}: {e}", summary_path.display()));
    }
    if let Some(c) = comparison {
        let files = [
            (
                "comparison.json",
                serde_json::to_vec_pretty(c).map_err(std::io::Error::other),
            ),
            (
                "comparison.md",
                Ok(crate::compare::markdown(c).into_bytes()),
            ),
        ];
        for (name, bytes) in files {
            let path = dir.join(name);
            if let Err(e) = bytes.and_then(|b| crate::report::write_atomic(&path, &b)) {
                failed(format!("writing {}: {e}", path.display()));
            }
        }
    }
    match crate::report::rebuild::write_reports(dir, summary) {
        Ok(written) => {
            for warning in &written.warnings {
                eprintln!("stampede: warning: {warning}");
            }
            for (path, e) in &written.failed {
                failed(format!("writing {}: {e}", path.display()));
            }
        }
        Err(e) => failed(format!("{e:#}")),
    }
    ok
}
