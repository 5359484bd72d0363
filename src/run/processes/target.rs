//! The built-in target of a `--processes` run, in a process of its own, so
//! it runs once rather than once per segment: the parent starts
//! `stampede run SCENARIO … --serve-builtin-target` ([`TargetProcess`]),
//! which serves exactly the target `run` would start in-process
//! ([`serve_builtin_target`]), prints its URL as one line on stdout, and
//! serves until its stdin closes (the parent ended, whatever the way) or it
//! gets SIGTERM / SIGINT.

use super::child::command;
use crate::error::{CommandError, ExitStatus};
use crate::scenario::{ApiTarget, HubTarget, Overrides};
use anyhow::Context as _;
use std::io::BufRead as _;
use std::path::Path;
use std::time::Duration;

/// How long the target's process may take to print its URL.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// The built-in target's process, stopped when dropped.
pub struct TargetProcess {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    process: std::process::Child,
}

impl TargetProcess {
    /// Start it for the scenario at `path` with the user's `overrides`
    /// and wait for its URL.
    pub fn spawn(path: &Path, overrides: &Overrides) -> Result<TargetProcess, CommandError> {
        let mut args = vec!["run".into(), path.into()];
        args.extend(super::scenario_flags(overrides));
        args.push("--serve-builtin-target".into());
        let mut process = command(&args)?
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .context("starting the built-in target's process")?;
        let stdout = process.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = std::io::BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let url = rx.recv_timeout(READY_WITHIN).unwrap_or_default();
        let url = url.trim().to_string();
        if !url.starts_with("http://") {
            let _ = process.kill();
            let status = process.wait().ok();
            return Err(anyhow::anyhow!(
                "the built-in target's process did not start ({}); its errors are above",
                status.map_or("no answer within 30s".into(), |s| s.to_string())
            )
            .into());
        }
        Ok(TargetProcess { url, process })
    }

    /// Close its stdin and SIGTERM it; kill it if it has not ended after 5 s.
    pub fn stop(mut self) {
        drop(self.process.stdin.take());
        // SAFETY: kill only sends a signal to our own child.
        unsafe { libc::kill(self.process.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.process.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.process.kill();
        let _ = self.process.wait();
    }
}

/// `run SCENARIO --serve-builtin-target` (hidden): serve the scenario's
/// built-in target (the API's settings when both API and hub are built in,
/// as one process would), print `http://ADDR` on stdout, and serve until
/// stdin closes or SIGTERM / SIGINT.
pub async fn serve_builtin_target(
    path: &Path,
    overrides: &Overrides,
) -> Result<ExitStatus, CommandError> {
    let scenario = super::super::load(path, overrides)?;
    let config = match (&scenario.api, &scenario.hub) {
        (Some(ApiTarget::Builtin(config)), _) | (_, Some(HubTarget::Builtin(config))) => {
            config.clone()
        }
        _ => {
            return Err(CommandError::BadInput(
                "--serve-builtin-target: the scenario has no built-in target".into(),
            ))
        }
    };
    // Every agent of every segment holds a descriptor here.
    let _ = crate::protocol::net::raise_nofile_limit();
    let running = crate::target::spawn("127.0.0.1:0".parse().expect("literal"), config)
        .await
        .context("starting the built-in target")?;
    crate::report::console::emit(&format!("{}\n", running.url()));
    let (closed_tx, closed) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        // EOF (or an error): the parent closed it or is gone.
        let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
        let _ = closed_tx.send(());
    });
    let mut signals = crate::run::signals::Signals::listen();
    tokio::select! {
        _ = closed => {}
        _ = signals.next() => {}
    }
    running.shutdown().await;
    Ok(ExitStatus::Passed)
}
