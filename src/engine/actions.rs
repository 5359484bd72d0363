//! Fault actions: the scenario's `actions`, each started at its phase's
//! start plus its `at` on the engine's clock, each in its own task (a slow
//! one never delays the next).
//!
//! - `exec`: the argv runs without a shell (`tokio::process`), stdin
//!   closed; stdout and stderr go, interleaved as read, to
//!   `<result dir>/actions/NN-name.out` (at most [`OUTPUT_LIMIT`] bytes,
//!   the rest counted and dropped). Past its `timeout` it is killed
//!   (SIGKILL) and recorded as failed. Success is exit status 0 (or
//!   `expect`).
//! - HTTP: one request to the declared origin; the response body goes to
//!   the output file. Success is any 2xx (or `expect`).
//!
//! Every action becomes an [`ActionRecord`] (summary.json `actions`). A
//! failed one counts in `actions.errors{kind=action}` and the run goes on,
//! unless it says `fail = "abort"`: then the run stops as interrupted
//! (exit 3) and [`ActionsOutcome::aborted_by`] names it.
//!
//! An action also opens a disruption window on the fleet (see
//! `hub::recovery`): agents lost soon after it are attributed to it.
//!
//! In a segmented run (`--segment i/n`, `--processes N`) only segment 0
//! runs the actions: there is one system under test, so one kill. Its
//! summary carries the records and a merge keeps them.

use super::records::ActionRecord;
use super::Shared;
use crate::metrics::{CounterId, Layout};
use crate::plan::Plan;
use crate::protocol::http::{Conn, Endpoint, OutRequest};
use crate::scenario::actions::{Action, ActionKind, ActionOrigin, OnFail};
use crate::scenario::Scenario;
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The most output kept of one action (stdout + stderr, or a body).
pub const OUTPUT_LIMIT: usize = 1 << 20;

/// The actions' series.
#[derive(Debug, Clone)]
pub struct ActionIds {
    /// `actions`: actions run.
    pub run: CounterId,
    /// `actions.errors{kind=action}`: actions that failed.
    pub errors: CounterId,
}

impl ActionIds {
    /// Registered only when the scenario has actions.
    pub fn register(layout: &mut Layout, scenario: &Scenario) -> Option<ActionIds> {
        (!scenario.actions.is_empty()).then(|| ActionIds {
            run: layout.add_counter(crate::metrics::catalogue::ACTIONS, "", "", None),
            errors: layout.add_counter(
                crate::metrics::catalogue::ACTIONS_ERRORS,
                "",
                "",
                Some("action"),
            ),
        })
    }
}

/// Where actions write and send, set up by the run.
#[derive(Debug, Clone, Default)]
pub struct ActionSetup {
    /// The result directory: outputs go to `actions/` in it (None: not kept).
    pub result_dir: Option<PathBuf>,
    /// The hub, for a relative URL when the scenario has no api.
    pub hub: Option<Endpoint>,
}

/// What the actions of a run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActionsOutcome {
    /// In the order they started.
    pub records: Vec<ActionRecord>,
    /// A failed action with `fail = "abort"` that stopped the run.
    pub aborted_by: Option<String>,
}

/// When each action is due (its phase's start plus its `at`, from the
/// run's start) with its index in `actions`, ordered by time.
pub fn schedule(actions: &[Action], plan: &Plan) -> Vec<(Duration, usize)> {
    let mut due: Vec<(Duration, usize)> = actions
        .iter()
        .enumerate()
        .filter_map(|(i, a)| {
            let phase = plan.phases.get(a.phase)?;
            Some((phase.start + a.at, i))
        })
        .collect();
    due.sort();
    due
}

/// Play the scenario's actions (segment 0 only): each at its time, until
/// the plan ends; then wait for those still running (each bounded by its
/// timeout).
pub async fn run(shared: Arc<Shared>) -> ActionsOutcome {
    if shared.scenario.actions.is_empty() || shared.plan.segment.index != 0 {
        return ActionsOutcome::default();
    }
    let outcome = Arc::new(Mutex::new(ActionsOutcome::default()));
    let mut tasks = JoinSet::new();
    for (offset, index) in schedule(&shared.scenario.actions, &shared.plan) {
        tokio::select! {
            _ = tokio::time::sleep_until(shared.start + offset) => {}
            _ = shared.live.ended() => break,
        }
        if shared.live.is_over() {
            break;
        }
        let action = &shared.scenario.actions[index];
        if let Some(fleet) = &shared.hub {
            fleet.action_started(&action.name);
        }
        let (shared, outcome) = (shared.clone(), outcome.clone());
        tasks.spawn(async move {
            let record = perform(&shared, index).await;
            count(&shared, &record);
            let action = &shared.scenario.actions[index];
            let mut outcome = outcome.lock();
            if !record.ok && action.fail == OnFail::Abort && outcome.aborted_by.is_none() {
                outcome.aborted_by = Some(format!(
                    "action {} failed ({}) and has fail = \"abort\"",
                    action.describe(),
                    record.error.as_deref().unwrap_or("failed")
                ));
                shared.live.interrupt();
            }
            outcome.records.push(record);
        });
    }
    while let Some(result) = tasks.join_next().await {
        if let Err(e) = result {
            if e.is_panic() {
                std::panic::resume_unwind(e.into_panic());
            }
        }
    }
    let mut outcome = outcome.lock().clone();
    outcome.records.sort_by_key(|r| r.at_unix_us);
    outcome
}

fn count(shared: &Shared, record: &ActionRecord) {
    let Some(ids) = &shared.ids.actions else {
        return;
    };
    let phase = shared.live.phase.load(std::sync::atomic::Ordering::Relaxed);
    shared.metrics.with(|s| {
        s.add(ids.run, phase, 1);
        if !record.ok {
            s.add(ids.errors, phase, 1);
        }
    });
}

/// `03-kill-hub.out`: the output file's name (the name made file-safe).
pub fn output_name(index: usize, name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{:02}-{safe}.out", index + 1)
}

/// What one action did, before it is a record.
struct Done {
    exit_status: Option<i64>,
    http_status: Option<u16>,
    error: Option<String>,
    output: Vec<u8>,
}

/// Run action `index` now and record it.
async fn perform(shared: &Shared, index: usize) -> ActionRecord {
    let action: &Action = &shared.scenario.actions[index];
    let at_unix_us = super::hub::unix_us_now();
    let started = Instant::now();
    let done = match &action.kind {
        ActionKind::Exec(argv) => exec(argv, action.timeout).await,
        ActionKind::Http { .. } => send(shared, action).await,
    };
    let duration_us = started.elapsed().as_micros() as u64;
    let status = done.exit_status.or(done.http_status.map(i64::from));
    let ok = done.error.is_none() && status.is_some_and(|s| action.succeeded(s));
    let error = done.error.or_else(|| {
        (!ok).then(|| match (done.exit_status, done.http_status) {
            (Some(code), _) => format!("exit status {code}"),
            (_, Some(code)) => format!("HTTP {code}"),
            _ => "failed".to_string(),
        })
    });
    // A command line, a URL or a body may carry a secret: never written.
    let error = error.map(|e| crate::redact::text(&e).into_owned());
    let output = shared.actions.result_dir.as_deref().and_then(|dir| {
        let name = output_name(index, &action.name);
        write_output(dir, &name, &crate::redact::bytes(&done.output))
            .then(|| format!("actions/{name}"))
    });
    ActionRecord {
        name: action.name.clone(),
        phase: shared
            .plan
            .phases
            .get(action.phase)
            .map_or_else(String::new, |p| p.name.clone()),
        kind: if action.is_exec() { "exec" } else { "http" }.to_string(),
        at_unix_us,
        duration_us,
        exit_status: done.exit_status,
        http_status: done.http_status,
        ok,
        error,
        output,
    }
}

fn write_output(dir: &Path, name: &str, output: &[u8]) -> bool {
    let dir = dir.join("actions");
    std::fs::create_dir_all(&dir).is_ok() && std::fs::write(dir.join(name), output).is_ok()
}

/// Appends what a pipe gives to a shared buffer, up to the limit (the rest
/// is read and counted, so the command never blocks on a full pipe).
async fn drain(mut pipe: impl tokio::io::AsyncRead + Unpin, into: Arc<Mutex<(Vec<u8>, u64)>>) {
    let mut chunk = vec![0u8; 16 * 1024];
    while let Ok(n) = pipe.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        let mut kept = into.lock();
        let room = OUTPUT_LIMIT.saturating_sub(kept.0.len());
        let take = room.min(n);
        kept.0.extend_from_slice(&chunk[..take]);
        kept.1 += (n - take) as u64;
    }
}

async fn exec(argv: &[String], timeout: Duration) -> Done {
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Done {
                exit_status: None,
                http_status: None,
                error: Some(format!("cannot start `{}`: {e}", argv[0])),
                output: Vec::new(),
            }
        }
    };
    let kept = Arc::new(Mutex::new((Vec::new(), 0u64)));
    let mut readers = JoinSet::new();
    if let Some(out) = child.stdout.take() {
        readers.spawn(drain(out, kept.clone()));
    }
    if let Some(err) = child.stderr.take() {
        readers.spawn(drain(err, kept.clone()));
    }
    let (status, mut error) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(Ok(status)) => (Some(status), None),
        Ok(Err(e)) => (None, Some(format!("waiting for `{}`: {e}", argv[0]))),
        Err(_) => {
            let _ = child.kill().await;
            (
                None,
                Some(format!(
                    "timed out after {}, killed",
                    crate::units::format::latency(timeout.as_micros() as u64)
                )),
            )
        }
    };
    // A command's children may keep its pipes open: read what is there,
    // briefly, then stop.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while readers.join_next().await.is_some() {}
    })
    .await;
    readers.abort_all();
    let exit_status = status.and_then(|s| s.code()).map(i64::from);
    if let (Some(s), None, None) = (status, exit_status, &error) {
        use std::os::unix::process::ExitStatusExt;
        error = Some(format!(
            "killed by signal {}",
            s.signal().map_or_else(|| "?".into(), |n| n.to_string())
        ));
    }
    let (mut output, dropped) = std::mem::take(&mut *kept.lock());
    if dropped > 0 {
        output.extend_from_slice(format!("\n[{dropped} more bytes not kept]\n").as_bytes());
    }
    Done {
        exit_status,
        http_status: None,
        error,
        output,
    }
}

async fn send(shared: &Shared, action: &Action) -> Done {
    let ActionKind::Http {
        method,
        origin,
        path,
        headers,
        body,
    } = &action.kind
    else {
        unreachable!("an HTTP action")
    };
    let failed = |error: String| Done {
        exit_status: None,
        http_status: None,
        error: Some(error),
        output: Vec::new(),
    };
    let endpoint = match origin {
        ActionOrigin::Api => shared.endpoints.first().cloned(),
        ActionOrigin::Hub => shared.actions.hub.clone(),
        ActionOrigin::Url(o) => match Endpoint::resolve(o).await {
            Ok(e) => Some(e),
            Err(e) => return failed(format!("resolving {o}: {e}")),
        },
    };
    let Some(endpoint) = endpoint else {
        return failed("no endpoint to send to".into());
    };
    let mut request = OutRequest {
        method: method.clone(),
        path: path.clone(),
        body: body.clone(),
        ..Default::default()
    };
    for (k, v) in headers {
        request.headers.insert(k.clone(), v.clone());
    }
    let mut conn = Conn::default();
    match tokio::time::timeout(
        action.timeout,
        conn.send(&shared.client, &endpoint, &request, true),
    )
    .await
    {
        Ok(Ok(response)) => {
            let mut output = response.body.to_vec();
            output.truncate(OUTPUT_LIMIT);
            Done {
                exit_status: None,
                http_status: Some(response.status),
                error: None,
                output,
            }
        }
        Ok(Err(e)) => failed(e.to_string()),
        Err(_) => failed(format!(
            "timed out after {}",
            crate::units::format::latency(action.timeout.as_micros() as u64)
        )),
    }
}
