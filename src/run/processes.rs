//! `stampede run --processes N` (and `capacity --processes N`): one machine,
//! N child processes of this same binary, one segment each, one merged
//! result.
//!
//! # Design
//!
//! The parent loads and checks the scenario (bad input is exit 2 before
//! anything starts), then:
//!
//! 1. **The built-in target runs once, in a process of its own**, when the
//!    scenario's API and/or hub is `builtin`: `stampede run SCENARIO
//!    --serve-builtin-target` (a hidden flag, [`serve_builtin_target`])
//!    starts exactly the target `run` would start in-process, prints its URL
//!    on stdout and serves until its stdin closes or SIGTERM. Every child
//!    gets that URL as `--api` / `--hub` (and the kick endpoint as
//!    `--set target.hub_admin=…` when the scenario relies on the built-in
//!    one), the same flags for all, so every segment's content hash is the
//!    same. `capacity` starts it once for the whole search.
//! 2. **Children**: `stampede run SCENARIO --segment i/N --start-at T
//!    --result-dir DIR/segments/i --progress-json [--source-addrs LIST]`
//!    with the user's `--set`, `--api`, `--hub`, `--insecure` and `--grace`.
//!    `T` is now plus a setup margin that grows with N ([`setup_margin`]); a
//!    child that could not start by then exits 3 and the parent names the
//!    margin. Each child is its own process group, so a terminal's Ctrl-C
//!    reaches only the parent, which forwards SIGINT to each (a second
//!    Ctrl-C is forwarded too: the children stop draining). On Linux a child
//!    also gets SIGTERM if the parent dies (`PR_SET_PDEATHSIG`), so none is
//!    left behind even then.
//! 3. **Source addresses** (`[hub] sources`, or the loopback spread the
//!    whole fleet needs) are split into N disjoint lists, one per child, by
//!    a hidden flag that is not part of the scenario text.
//! 4. **Progress**: each child prints a [`ProgressReport`] JSON line a
//!    second; the parent shows one line built from the latest of each
//!    (sums, and the max of the p95s and lags, marked `max`).
//! 5. **Result**: `<out>/<name>-<UTC>/segments/<i>/` holds each child's
//!    result and `<out>/<name>-<UTC>/` the merged one ([`crate::merge`]): SLOs
//!    judged on the merge, whose verdict is the exit status. A child that
//!    ended without a result (a crash) leaves a partial merge of the others
//!    and exit 3, with the child's stderr tail.

mod child;
mod progress;
mod target;

pub use target::serve_builtin_target;

pub use super::monitor::ProgressReport;
use super::{Progress, RunOptions, RunOutcome};
use crate::error::{CommandError, ExitStatus};
use crate::plan::{Plan, Segment};
use crate::protocol::net::{self, SourceAddrs};
use crate::scenario::{ApiTarget, HubTarget, Overrides, Scenario};
use anyhow::Context as _;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Settings only the parent of `--processes` gives its children (hidden
/// flags of `run`).
#[derive(Debug, Clone, Default)]
pub struct ChildOptions {
    /// `--result-dir`: write the result exactly here (created when
    /// missing) instead of a new directory under `out_dir`.
    pub result_dir: Option<PathBuf>,
    /// `--source-addrs`: this process's share of the fleet's source
    /// addresses; kept out of the scenario text so every segment's content
    /// hash is the same.
    pub source_addrs: Option<SourceAddrs>,
}

/// The run's result directory: the one the parent chose for this child, or
/// a new `<out>/<name>-<UTC time>`.
pub(super) fn result_dir_for(
    options: &RunOptions,
    name: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<PathBuf, CommandError> {
    let made = match &options.child.result_dir {
        Some(dir) => std::fs::create_dir_all(dir).map(|()| dir.clone()),
        None => super::result_dir(&options.out_dir, name, at),
    };
    Ok(made.with_context(|| {
        format!(
            "creating a result directory in {}",
            options.out_dir.display()
        )
    })?)
}

/// How long before the common start the children are launched: process
/// start, scenario load, target preflight and fleet set-up for all of them
/// on a machine they share.
pub fn setup_margin(processes: u32) -> Duration {
    Duration::from_secs(2) + Duration::from_millis(300) * processes
}

/// `stampede run --processes N`.
pub async fn run(options: RunOptions, processes: u32) -> Result<RunOutcome, CommandError> {
    let scenario = super::load(&options.scenario, &options.overrides)?;
    super::check_exec_allowed(&scenario, &options.overrides)?;
    if !options.segment.is_whole() || options.start_at.is_some() {
        return Err(CommandError::BadInput(
            "--processes chooses each child's --segment and a common --start-at itself: give \
             either --processes N (one machine) or --segment i/n with --start-at (one command \
             per segment), not both"
                .into(),
        ));
    }
    if options.baseline.is_some() {
        return Err(CommandError::BadInput(
            "--baseline cannot be combined with --processes yet: run, then compare the merged \
             result with `stampede compare BASELINE DIR`"
                .into(),
        ));
    }
    let fleet = Processes::start(&options.scenario, &options.overrides, &scenario, processes)?;
    let outcome = fleet.run(&scenario, &options, &[]).await;
    fleet.stop();
    outcome
}

/// N children and, when the scenario has one, the built-in target process
/// they share: started once, used for one run or for every step of a
/// capacity search.
pub struct Processes {
    count: u32,
    scenario_path: PathBuf,
    /// The user's overrides plus the built-in target's URLs.
    overrides: Overrides,
    target: Option<target::TargetProcess>,
}

impl Processes {
    /// Start the built-in target's process when `scenario` (loaded from
    /// `path` with `overrides`) has one.
    pub fn start(
        path: &Path,
        overrides: &Overrides,
        scenario: &Scenario,
        count: u32,
    ) -> Result<Processes, CommandError> {
        if count == 0 {
            return Err(CommandError::BadInput(
                "--processes must be at least 1".into(),
            ));
        }
        let mut overrides = overrides.clone();
        let builtin_api = matches!(scenario.api, Some(ApiTarget::Builtin(_)));
        let builtin_hub = matches!(scenario.hub, Some(HubTarget::Builtin(_)));
        let target = if builtin_api || builtin_hub {
            let running = target::TargetProcess::spawn(path, &overrides)?;
            let url = running.url.clone();
            if builtin_api {
                overrides.api = Some(url.clone());
            }
            if builtin_hub {
                overrides.hub = Some(url.clone());
                if scenario.hub_admin.is_none() {
                    overrides
                        .sets
                        .push(("target.hub_admin".into(), format!("{url}/admin/hub/kick")));
                }
            }
            Some(running)
        } else {
            None
        };
        Ok(Processes {
            count,
            scenario_path: path.to_path_buf(),
            overrides,
            target,
        })
    }

    /// The built-in target's URL, when it runs.
    pub fn target_url(&self) -> Option<&str> {
        self.target.as_ref().map(|t| t.url.as_str())
    }

    /// Stop the built-in target's process (also done on drop).
    pub fn stop(mut self) {
        if let Some(target) = self.target.take() {
            target.stop();
        }
    }

    /// Play `scenario` (as loaded by the children: `extra` are hidden flags
    /// that reshape it the same way in each, e.g. a capacity step) in N
    /// segments, merge their results and judge the merge.
    pub async fn run(
        &self,
        scenario: &Scenario,
        options: &RunOptions,
        extra: &[String],
    ) -> Result<RunOutcome, CommandError> {
        let plan = Plan::new(scenario);
        self.check_descriptors(scenario, &plan)?;
        let sources = split_sources(&self.source_list(scenario, &plan).await, self.count);
        let started_at = chrono::Utc::now();
        let dir = result_dir_for(options, &scenario.name, started_at)?;
        let margin = setup_margin(self.count);
        let start_at =
            started_at + chrono::Duration::from_std(margin).expect("a margin of seconds fits");
        let start_text = start_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        if !matches!(options.progress, Progress::Quiet | Progress::Silent) {
            eprintln!(
                "stampede: running `{}` in {} processes (segments 0/{n} … {}/{n}), starting at {start_text} → {}",
                scenario.name,
                self.count,
                self.count - 1,
                dir.display(),
                n = self.count,
            );
        }
        let metrics = metrics_listen(scenario, self.count)?;
        if let (Some(addrs), false) = (
            &metrics,
            matches!(options.progress, Progress::Quiet | Progress::Silent),
        ) {
            for (index, addr) in addrs.iter().enumerate() {
                eprintln!(
                    "metrics: segment {index}/{}: http://{addr}/metrics",
                    self.count
                );
            }
        }
        let mut children = Vec::new();
        for index in 0..self.count {
            let segment = Segment {
                index,
                count: self.count,
            };
            let seg_dir = dir.join("segments").join(index.to_string());
            let mut args = self.child_args(options, segment, &start_text, &seg_dir);
            if let Some(list) = &sources[index as usize] {
                args.push("--source-addrs".into());
                args.push(list.into());
            }
            if let Some(addrs) = &metrics {
                args.push("--metrics-listen".into());
                args.push(addrs[index as usize].to_string().into());
                args.push("--metrics-linger".into());
                args.push(format!("{}ms", scenario.metrics.linger.as_millis()).into());
            }
            args.extend(extra.iter().map(OsString::from));
            children.push(child::Child::spawn(segment, seg_dir, &args)?);
        }
        let ended = child::supervise(
            &mut children,
            progress::Board::new(options.progress, &plan, self.count),
            options.grace,
        )
        .await;
        finish(&dir, children, ended, margin, options)
    }

    /// The flags every child gets (besides its segment, result directory
    /// and share of source addresses).
    fn child_args(
        &self,
        options: &RunOptions,
        segment: Segment,
        start_at: &str,
        dir: &Path,
    ) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["run".into(), self.scenario_path.clone().into()];
        args.extend(scenario_flags(&self.overrides));
        args.extend(
            [
                "--grace".to_string(),
                format!("{}ms", options.grace.as_millis()),
                "--segment".into(),
                segment.to_string(),
                "--start-at".into(),
                start_at.to_string(),
                "--progress-json".into(),
                "--result-dir".into(),
            ]
            .map(OsString::from),
        );
        args.push(dir.into());
        args
    }

    /// The whole fleet's source addresses: `[hub] sources`, else the
    /// loopback spread the whole fleet needs towards a loopback hub (as
    /// one process would use), else none (the kernel chooses).
    async fn source_list(&self, scenario: &Scenario, plan: &Plan) -> Vec<std::net::IpAddr> {
        if scenario.agents.is_empty() && scenario.commanders.is_empty() {
            return Vec::new();
        }
        if let Some(s) = &scenario.hub_settings.sources {
            return s.addrs().to_vec();
        }
        let connections = hub_connections(scenario, plan);
        let needed = net::sources_needed(connections);
        let loopback = match self.target_url().is_some() {
            true => true,
            false => hub_is_loopback(scenario).await,
        };
        if needed > 1 && loopback {
            // At least one address per child, so the lists stay disjoint.
            SourceAddrs::loopback(needed.max(u64::from(self.count)) as u32)
                .addrs()
                .to_vec()
        } else {
            Vec::new()
        }
    }

    /// Refuse, before anything starts, a fleet the built-in target's one
    /// process cannot hold (its connections are all in that process).
    fn check_descriptors(&self, scenario: &Scenario, plan: &Plan) -> Result<(), CommandError> {
        if !matches!(scenario.hub, Some(HubTarget::Builtin(_))) {
            return Ok(());
        }
        let users = if scenario.populations.is_empty() {
            0
        } else {
            scenario.http.max_in_flight as u64 * u64::from(self.count)
        };
        let needed = hub_connections(scenario, plan) + users + 16;
        let Ok((_, hard)) = net::nofile_limit() else {
            return Ok(());
        };
        if needed + net::FD_RESERVE <= hard {
            return Ok(());
        }
        Err(CommandError::BadInput(format!(
            "the built-in hub runs in one process of its own and holds every agent's connection: \
             it needs {needed} file descriptors at the peak (+{} for the process itself), but one \
             process may open at most {hard} (hard RLIMIT_NOFILE). Serve it from several \
             processes yourself (`stampede target --processes N`, then `--hub URL`: commands \
             and kicks then reach one worker's agents only) or raise the hard limit.",
            net::FD_RESERVE
        )))
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        if let Some(target) = self.target.take() {
            target.stop();
        }
    }
}

/// Agents at the plan's peak plus commanders: the fleet's hub connections.
fn hub_connections(scenario: &Scenario, plan: &Plan) -> u64 {
    u64::from(plan.peak_agents()) + scenario.commanders.len() as u64
}

/// True when the hub (or, without one, the API) resolves to IPv4 loopback,
/// the case where one process spreads its connections over 127.0.0.x.
async fn hub_is_loopback(scenario: &Scenario) -> bool {
    let origin = match (&scenario.hub, &scenario.api) {
        (Some(HubTarget::Url(o)), _) => o,
        (None, Some(ApiTarget::Url(o))) => o,
        _ => return false,
    };
    crate::protocol::http::Endpoint::resolve(origin)
        .await
        .ok()
        .and_then(|e| e.addrs.first().copied())
        .is_some_and(|a| a.ip().is_loopback() && a.is_ipv4())
}

/// Each child's metrics endpoint: the scenario's (or `--metrics-listen`'s)
/// address with the port counted up by the segment's index (port 0: any
/// free port for each, which the children print); None without one.
fn metrics_listen(
    scenario: &Scenario,
    count: u32,
) -> Result<Option<Vec<std::net::SocketAddr>>, CommandError> {
    let Some(addr) = scenario.metrics.listen else {
        return Ok(None);
    };
    (0..count)
        .map(|index| {
            let port = if addr.port() == 0 {
                Some(0)
            } else {
                u16::try_from(index)
                    .ok()
                    .and_then(|i| addr.port().checked_add(i))
            };
            port.map(|port| std::net::SocketAddr::new(addr.ip(), port))
                .ok_or_else(|| {
                    CommandError::BadInput(format!(
                        "metrics endpoint {addr}: {count} processes serve on ports {} and up, past 65535",
                        addr.port()
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// `--set`, `--api`, `--hub` and `--insecure` as flags again.
fn scenario_flags(overrides: &Overrides) -> Vec<OsString> {
    let mut args: Vec<OsString> = Vec::new();
    for (key, value) in &overrides.sets {
        args.push("--set".into());
        args.push(format!("{key}={value}").into());
    }
    for (flag, value) in [("--api", &overrides.api), ("--hub", &overrides.hub)] {
        if let Some(value) = value {
            args.push(flag.into());
            args.push(value.into());
        }
    }
    if overrides.insecure {
        args.push("--insecure".into());
    }
    if overrides.allow_exec {
        args.push("--allow-exec".into());
    }
    args
}

/// Split the fleet's source addresses into `n` disjoint lists, contiguous
/// (`127.0.0.1-4` → `1,2` and `3,4`). With fewer addresses than processes
/// every child gets one, shared round-robin. None for everyone when there
/// are none.
pub fn split_sources(addrs: &[std::net::IpAddr], n: u32) -> Vec<Option<String>> {
    let n = n.max(1) as usize;
    if addrs.is_empty() {
        return vec![None; n];
    }
    (0..n)
        .map(|i| {
            let share: Vec<String> = if addrs.len() >= n {
                let (per, extra) = (addrs.len() / n, addrs.len() % n);
                let from = i * per + i.min(extra);
                let to = from + per + usize::from(i < extra);
                addrs[from..to].iter().map(|a| a.to_string()).collect()
            } else {
                vec![addrs[i % addrs.len()].to_string()]
            };
            Some(share.join(","))
        })
        .collect()
}

/// After every child ended: merge what was written, say what went wrong,
/// and turn the merge into the run's outcome.
fn finish(
    dir: &Path,
    children: Vec<child::Child>,
    ended: child::Ended,
    margin: Duration,
    options: &RunOptions,
) -> Result<RunOutcome, CommandError> {
    let written = |c: &child::Child| c.dir.join(crate::report::json::FILE_NAME).is_file();
    if ended.interrupted && !children.iter().any(written) {
        return Err(anyhow::anyhow!(
            "interrupted before the segments started: nothing was written (only {})",
            dir.display()
        )
        .into());
    }
    let mut inputs = Vec::new();
    let mut problems = Vec::new();
    for c in &children {
        if written(c) {
            inputs.push(c.dir.clone());
            continue;
        }
        let status = c.status_text();
        let cause = if c.exit_code() == Some(ExitStatus::NotCarriedOut.code()) && !ended.interrupted
        {
            format!(
                "it could not start (e.g. not ready by the common start, {} after launch: a \
                 busy machine; try fewer --processes)",
                crate::units::format_duration(margin)
            )
        } else {
            "it wrote no result".to_string()
        };
        problems.push(format!(
            "segment {} {status}; {cause}. Its last lines on stderr:\n{}",
            c.segment,
            c.stderr_tail()
        ));
    }
    for p in &problems {
        eprintln!("stampede: {p}");
    }
    if inputs.is_empty() {
        return Err(anyhow::anyhow!(
            "no segment wrote a result, so there is nothing to merge (see above); {} is left \
             with what the segments wrote",
            dir.display()
        )
        .into());
    }
    let merged = crate::merge::merge(
        &inputs,
        &crate::merge::MergeOptions {
            out: Some(dir.to_path_buf()),
            quiet: options.progress == Progress::Quiet,
            silent: options.progress == Progress::Silent,
            command_line: options.command_line.clone(),
        },
    )?;
    let summary = merged.summary;
    let exit = if problems.is_empty() {
        merged.exit
    } else {
        ExitStatus::NotCarriedOut
    };
    Ok(RunOutcome {
        exit,
        result_dir: merged.dir,
        totals: summary.to_totals().context("reading the merged result")?,
        elapsed: Duration::try_from_secs_f64(summary.meta.duration_s).unwrap_or_default(),
        verdicts: summary.verdicts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(n: u32) -> Vec<std::net::IpAddr> {
        SourceAddrs::loopback(n).addrs().to_vec()
    }

    #[test]
    fn source_addresses_split_into_disjoint_contiguous_lists() {
        let lists = split_sources(&addrs(5), 2);
        assert_eq!(
            lists,
            [
                Some("127.0.0.1,127.0.0.2,127.0.0.3".to_string()),
                Some("127.0.0.4,127.0.0.5".to_string())
            ]
        );
        let lists = split_sources(&addrs(4), 4);
        assert_eq!(lists[3].as_deref(), Some("127.0.0.4"));
        // Every address once, in order.
        let all: Vec<String> = split_sources(&addrs(11), 3)
            .into_iter()
            .flat_map(|l| {
                l.unwrap()
                    .split(',')
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect();
        let want: Vec<String> = addrs(11).iter().map(|a| a.to_string()).collect();
        assert_eq!(all, want);
        // Fewer addresses than processes: one each, shared round-robin.
        assert_eq!(
            split_sources(&addrs(2), 3),
            [
                Some("127.0.0.1".to_string()),
                Some("127.0.0.2".to_string()),
                Some("127.0.0.1".to_string())
            ]
        );
        assert_eq!(split_sources(&[], 2), [None, None]);
    }

    #[test]
    fn the_setup_margin_grows_with_the_processes() {
        assert_eq!(setup_margin(1), Duration::from_millis(2300));
        assert_eq!(setup_margin(10), Duration::from_secs(5));
    }
}
