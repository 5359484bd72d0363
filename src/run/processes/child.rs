//! One segment's child process: spawned in a process group of its own
//! (a terminal's Ctrl-C reaches only the parent), its stdout read for
//! progress reports, the tail of its stderr kept for when it fails, its end
//! waited for on a thread; and [`supervise`], the parent's loop over all of
//! them (progress, signal forwarding, ends).

use super::progress::Board;
use super::ProgressReport;
use crate::error::CommandError;
use crate::plan::Segment;
use anyhow::Context as _;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Lines of a child's stderr kept for the message when it fails.
const STDERR_TAIL: usize = 20;

/// What the reader and waiter threads tell the parent.
enum Event {
    Progress(usize, ProgressReport),
    Exited(usize, std::process::ExitStatus),
}

/// A running (or ended) segment child.
pub struct Child {
    pub segment: Segment,
    /// Its result directory.
    pub dir: PathBuf,
    pid: u32,
    tail: Arc<Mutex<VecDeque<String>>>,
    /// Taken by [`supervise`], which starts the threads.
    process: Option<std::process::Child>,
    status: Option<std::process::ExitStatus>,
}

/// How the children ended, as a whole.
pub struct Ended {
    /// The parent was interrupted (Ctrl-C / SIGTERM) and told the children.
    pub interrupted: bool,
}

impl Drop for Child {
    /// A child never watched (the run failed while starting the others)
    /// is killed, not left behind.
    fn drop(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

/// `stampede` (this binary) with `args`, in a process group of its own.
pub(super) fn command(args: &[OsString]) -> Result<std::process::Command, CommandError> {
    let exe = std::env::current_exe().context("finding the stampede executable")?;
    let mut command = std::process::Command::new(exe);
    command.args(args);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt as _;
        command.process_group(0);
        #[cfg(target_os = "linux")]
        // SAFETY: prctl is async-signal-safe and touches only the child.
        unsafe {
            command.pre_exec(|| {
                // The parent gone (even killed), the child drains and stops.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
    }
    Ok(command)
}

impl Child {
    /// Start the child for `segment`, writing into `dir`.
    pub fn spawn(segment: Segment, dir: PathBuf, args: &[OsString]) -> Result<Child, CommandError> {
        let process = command(args)?
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .with_context(|| format!("starting the process of segment {segment}"))?;
        Ok(Child {
            segment,
            dir,
            pid: process.id(),
            tail: Arc::default(),
            process: Some(process),
            status: None,
        })
    }

    pub fn exit_code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    /// "exited with code 3", "was killed by signal 9".
    pub fn status_text(&self) -> String {
        use std::os::unix::process::ExitStatusExt as _;
        match self.status {
            None => "did not end".into(),
            Some(s) => match (s.code(), s.signal()) {
                (Some(code), _) => format!("exited with code {code}"),
                (None, Some(sig)) => format!("was killed by signal {sig}"),
                _ => format!("ended ({s})"),
            },
        }
    }

    /// The last lines it wrote on stderr, indented.
    pub fn stderr_tail(&self) -> String {
        let tail = self.tail.lock().expect("tail lock");
        if tail.is_empty() {
            return "    (nothing)".into();
        }
        tail.iter()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Send `signal` unless it has ended (and may have been reaped).
    fn signal(&self, signal: libc::c_int) {
        if self.status.is_none() {
            // SAFETY: kill only sends a signal to our own child.
            unsafe { libc::kill(self.pid as libc::pid_t, signal) };
        }
    }

    /// Reader threads (stdout → progress events, stderr → tail) and a
    /// waiter thread (the exit status, once the readers have seen the end).
    fn watch(&mut self, index: usize, events: mpsc::UnboundedSender<Event>) {
        let mut process = self.process.take().expect("watched once");
        let stdout = process.stdout.take().expect("piped");
        let stderr = process.stderr.take().expect("piped");
        let progress = events.clone();
        let out = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Anything else on stdout is not ours to show.
                if let Ok(report) = serde_json::from_str::<ProgressReport>(&line) {
                    let _ = progress.send(Event::Progress(index, report));
                }
            }
        });
        let tail = self.tail.clone();
        let err = std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let mut tail = tail.lock().expect("tail lock");
                if tail.len() == STDERR_TAIL {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        });
        std::thread::spawn(move || {
            let status = process.wait();
            let _ = out.join();
            let _ = err.join();
            let status = status.unwrap_or_else(|_| {
                use std::os::unix::process::ExitStatusExt as _;
                std::process::ExitStatus::from_raw(0x7f00)
            });
            let _ = events.send(Event::Exited(index, status));
        });
    }
}

/// Until every child has ended: show the progress line each second, read
/// their reports, forward Ctrl-C / SIGTERM to each as SIGINT (the second
/// too: they stop draining).
pub async fn supervise(children: &mut [Child], mut board: Board, grace: Duration) -> Ended {
    let mut signals = crate::run::signals::Signals::listen();
    let (tx, mut rx) = mpsc::unbounded_channel();
    for (i, child) in children.iter_mut().enumerate() {
        child.watch(i, tx.clone());
    }
    drop(tx);
    let mut running = children.len();
    let mut interrupts = 0;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while running > 0 {
        tokio::select! {
            event = rx.recv() => match event {
                Some(Event::Progress(i, report)) => board.update(i, report),
                Some(Event::Exited(i, status)) => {
                    children[i].status = Some(status);
                    board.ended(i);
                    running -= 1;
                }
                None => break,
            },
            _ = signals.next() => {
                interrupts += 1;
                if interrupts == 1 {
                    eprintln!(
                        "stampede: interrupted; each of the {} processes drains for up to {} and writes its result (Ctrl-C again to stop now)",
                        children.len(),
                        crate::units::format_duration(grace)
                    );
                } else {
                    eprintln!("stampede: stopping now; in-flight requests are counted as cancelled");
                }
                for child in children.iter() {
                    child.signal(libc::SIGINT);
                }
            }
            _ = tick.tick() => board.show(),
        }
    }
    board.finish();
    Ended {
        interrupted: interrupts > 0,
    }
}
