//! `stampede target --processes N`: the built-in target served by N worker
//! processes on one port, so it can hold more connections than one
//! process's descriptor limit (20,000 here) allows.
//!
//! # How
//! The parent reserves the port: a socket bound with `SO_REUSEPORT` but
//! never listening (the kernel hands connections only to listening
//! sockets, so it takes none). Each worker binds the same address with
//! `SO_REUSEPORT` and listens; the kernel then spreads new connections over
//! the workers by a hash of the 4-tuple, roughly evenly. Once every worker
//! says it is listening (one line, [`READY`], on its stdout) the parent
//! prints the address and waits. Ctrl-C / SIGTERM to the parent reaches
//! every worker as SIGTERM (the workers are in their own process group, so
//! a terminal's Ctrl-C does not reach them twice); a worker that dies makes
//! the parent stop the others and fail. No worker outlives the parent: each
//! is killed when its handle drops, and on Linux gets SIGTERM when the
//! parent dies, even by SIGKILL (`PR_SET_PDEATHSIG`).
//!
//! # What does not span workers
//! Each worker is a whole built-in target with its own state: the hub's
//! registry (a command posted to `/api/commands` or sent by a commander
//! reaches only the agents connected to the worker that took it; `to =
//! {sample = k}` samples that worker's agents), kicks and restarts
//! (`/admin/hub/*` acts on one worker), `/admin/config` and `/admin/stats`
//! (one worker's knobs and counters), and the concurrency knob (each worker
//! has its own `--concurrency` permits, so the knee is N times higher).
//! Use it for connection counts and heartbeats; run scenarios with
//! commands, kicks or knees against a single-process target.

use std::io;
use std::net::SocketAddr;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, TcpSocket};
use tokio::process::{Child, Command};

/// What a worker prints on stdout once it listens.
pub const READY: &str = "stampede-target-worker ready";

fn socket_for(addr: SocketAddr) -> io::Result<TcpSocket> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    Ok(socket)
}

/// Reserve `listen` for the workers: bound with `SO_REUSEPORT`, not
/// listening (so it takes no connection). Returns the socket (keep it until
/// the workers listen) and the real address (port 0 resolved).
pub fn reserve(listen: SocketAddr) -> io::Result<(TcpSocket, SocketAddr)> {
    let socket = socket_for(listen)?;
    socket.bind(listen)?;
    let addr = socket.local_addr()?;
    Ok((socket, addr))
}

/// A worker's listener: `addr` bound with `SO_REUSEPORT`, listening with
/// [`super::BACKLOG`].
pub fn bind_shared(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = socket_for(addr)?;
    socket.bind(addr)?;
    socket.listen(super::BACKLOG)
}

/// The running workers.
pub struct Workers {
    children: Vec<Child>,
    /// How to start one (kept to replace a worker that died).
    program: std::path::PathBuf,
    args: Vec<String>,
    ready_within: Duration,
}

impl Workers {
    /// Start `n` workers: `program args…` each (the args make it a worker
    /// on the reserved address), and wait until every one listens (at most
    /// `ready_within`). A worker that exits or says nothing in time is an
    /// error carrying what it printed on stderr.
    pub async fn start(
        program: &std::path::Path,
        args: &[String],
        n: usize,
        ready_within: Duration,
    ) -> io::Result<Workers> {
        let mut workers = Workers {
            children: Vec::with_capacity(n),
            program: program.to_path_buf(),
            args: args.to_vec(),
            ready_within,
        };
        for _ in 0..n {
            let child = workers.spawn()?;
            workers.children.push(child);
        }
        for i in 0..n {
            workers.await_ready(i).await?;
        }
        Ok(workers)
    }

    /// Start one worker (not yet listening: see [`Self::await_ready`]).
    fn spawn(&self) -> io::Result<Child> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            .kill_on_drop(true);
        // SAFETY: prctl(2) only, between fork and exec.
        #[cfg(target_os = "linux")]
        unsafe {
            command.pre_exec(|| {
                // The parent gone, even killed: the worker stops too.
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        command.spawn()
    }

    /// Wait until worker `i` says it listens, then keep draining its stdout.
    async fn await_ready(&mut self, i: usize) -> io::Result<()> {
        let ready_within = self.ready_within;
        let stdout = self.children[i].stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(ready_within, async {
            while let Some(line) = lines.next_line().await? {
                if line.trim() == READY {
                    return Ok(true);
                }
            }
            Ok::<bool, io::Error>(false)
        })
        .await;
        match ready {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) | Ok(Err(_)) => {
                return Err(io::Error::other(format!(
                    "target worker {i} exited before it listened (see its messages above)"
                )))
            }
            Err(_) => {
                return Err(io::Error::other(format!(
                    "target worker {i} did not listen within {ready_within:?}"
                )))
            }
        }
        // Keep draining its stdout so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(())
    }

    /// Process ids of the workers.
    pub fn pids(&self) -> Vec<u32> {
        self.children.iter().filter_map(Child::id).collect()
    }

    /// Send `signal` to every worker still running.
    pub fn signal(&self, signal: i32) {
        for pid in self.pids() {
            // SAFETY: kill(2) on a child's pid with a valid signal number.
            unsafe {
                libc::kill(pid as libc::pid_t, signal);
            }
        }
    }

    /// Wait until `stop` completes (Ctrl-C / SIGTERM) or a worker exits.
    /// With `respawn`, a worker that exits is replaced by a new one after
    /// that delay (as an orchestrator restarts a crashed instance: the
    /// others keep serving meanwhile) and the wait goes on; without it,
    /// the first exit ends the wait. Then every worker gets SIGTERM and up
    /// to `grace` to finish (then SIGKILL). Ok when stopped by `stop`; an
    /// error naming the worker and its exit status when one died first
    /// (or a replacement could not start).
    pub async fn serve_until(
        mut self,
        stop: impl std::future::Future<Output = ()>,
        grace: Duration,
        respawn: Option<Duration>,
    ) -> io::Result<()> {
        let mut stop = std::pin::pin!(stop);
        let died = loop {
            let first_exit = {
                let waits = self
                    .children
                    .iter_mut()
                    .enumerate()
                    .map(|(i, c)| Box::pin(async move { (i, c.wait().await) }));
                futures_util::future::select_all(waits)
            };
            let (i, status) = tokio::select! {
                _ = &mut stop => break None,
                ((i, status), _, _) = first_exit => (i, status),
            };
            let Some(delay) = respawn else {
                break Some((i, describe(&status)));
            };
            say(&format!(
                "stampede target: worker {i} stopped ({}); starting a new one in {}\n",
                describe(&status),
                super::format_duration(delay)
            ));
            tokio::select! {
                _ = &mut stop => break None,
                _ = tokio::time::sleep(delay) => {}
            }
            match self.spawn() {
                Ok(child) => self.children[i] = child,
                Err(e) => break Some((i, format!("its replacement could not start: {e}"))),
            }
            if let Err(e) = self.await_ready(i).await {
                break Some((i, format!("its replacement failed: {e}")));
            }
            say(&format!(
                "stampede target: worker {i} serving again (pid {})\n",
                self.children[i].id().unwrap_or(0)
            ));
        };
        self.signal(libc::SIGTERM);
        let all = async {
            for child in &mut self.children {
                let _ = child.wait().await;
            }
        };
        if tokio::time::timeout(grace, all).await.is_err() {
            for child in &mut self.children {
                let _ = child.start_kill();
            }
        }
        match died {
            None => Ok(()),
            Some((i, why)) => Err(io::Error::other(format!(
                "target worker {i} stopped unexpectedly ({why}); the others were stopped"
            ))),
        }
    }
}

/// A line on stderr (the parent's own messages; a closed stderr is not an error).
fn say(text: &str) {
    use std::io::Write as _;
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

fn describe(status: &io::Result<std::process::ExitStatus>) -> String {
    match status {
        Ok(s) => s.to_string(),
        Err(e) => e.to_string(),
    }
}

/// Ctrl-C or SIGTERM, whichever comes first.
pub async fn interrupted() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reserved_port_takes_no_connection_and_workers_share_it() {
        let (reserved, addr) = reserve("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_ne!(addr.port(), 0);
        let a = bind_shared(addr).unwrap();
        let b = bind_shared(addr).unwrap();
        drop(reserved);
        // Every connection lands on one of the two listeners, none is lost.
        let mut clients = Vec::new();
        for _ in 0..64 {
            clients.push(tokio::net::TcpStream::connect(addr).await.unwrap());
        }
        let (mut on_a, mut on_b) = (0, 0);
        for _ in 0..64 {
            tokio::select! {
                r = a.accept() => { r.unwrap(); on_a += 1; }
                r = b.accept() => { r.unwrap(); on_b += 1; }
            }
        }
        assert_eq!(on_a + on_b, 64);
        // The kernel spreads by a hash of the 4-tuple: both get some.
        assert!(on_a > 0 && on_b > 0, "{on_a} / {on_b}");
    }

    #[test]
    fn a_port_in_plain_use_cannot_be_shared() {
        let plain = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = plain.local_addr().unwrap();
        assert!(reserve(addr).is_err());
    }
}
