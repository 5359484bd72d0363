//! Ctrl-C and SIGTERM. The first stops new work and lets in-flight work
//! drain for the grace period; the second cancels what is still in flight.
//! Either way the results are written and the exit status is 3.
//!
//! The signal streams are registered when the run starts, before its result
//! directory exists, so a signal that arrives while targets are prepared is
//! not the default "terminate now" that would leave an empty directory: it
//! is kept and interrupts the engine as soon as it starts.
//!
//! The parent of `--processes` listens with the same [`Signals`] and
//! forwards each signal to its children (`processes::child`).

use crate::engine::Live;
use std::sync::Arc;
use std::time::Duration;

/// Ctrl-C and SIGTERM, listened for from the moment this is made.
pub struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    /// Start listening (inside the runtime). A stream that cannot be made
    /// (no signal support) leaves that signal its default action.
    pub fn listen() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                interrupt: signal(SignalKind::interrupt()).ok(),
                terminate: signal(SignalKind::terminate()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// Waits for the next Ctrl-C or SIGTERM (also while waiting for
    /// `--start-at`).
    pub(super) async fn next(&mut self) {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = recv(&mut self.interrupt) => {}
                _ = recv(&mut self.terminate) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }

    /// Acts on signals for the engine behind `live`: the first interrupts
    /// (drain for `grace`), the second hurries (cancel in-flight work).
    /// Abort the returned task when the engine is done.
    pub fn watch(mut self, live: Arc<Live>, grace: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            self.next().await;
            eprintln!(
                "stampede: interrupted; draining in-flight work for up to {} (Ctrl-C again to stop now); results will be written",
                crate::units::format_duration(grace)
            );
            live.interrupt();
            self.next().await;
            eprintln!("stampede: stopping now; in-flight requests are counted as cancelled");
            live.hurry();
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SIGTERM that arrives after the run began but before the engine
    /// started (targets being prepared, the result directory being made) is
    /// kept: it does not kill the process, and it interrupts the engine as
    /// soon as the watch starts. The second one hurries the drain.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_signal_before_the_engine_starts_is_kept_and_interrupts_it() {
        let signals = Signals::listen();
        // SAFETY: raise only delivers a signal to this process, whose
        // handler tokio installed above.
        assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
        let live = Arc::new(Live::default());
        assert!(!live.is_interrupted());
        let task = signals.watch(live.clone(), Duration::from_secs(1));
        tokio::time::timeout(Duration::from_secs(30), live.ended())
            .await
            .expect("the kept SIGTERM interrupts the run");
        assert!(live.is_interrupted());
        let hurried = live.clone();
        let waiter = tokio::spawn(async move { hurried.hurried().await });
        // SAFETY: as above.
        assert_eq!(unsafe { libc::raise(libc::SIGTERM) }, 0);
        tokio::time::timeout(Duration::from_secs(30), waiter)
            .await
            .expect("the second SIGTERM hurries the drain")
            .expect("waiter task");
        task.await.expect("the watch ends after the second signal");
    }
}
