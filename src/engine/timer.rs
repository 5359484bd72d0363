//! A wait to a deadline precise to the microsecond, for [`super::schedule`].
//!
//! tokio's timer wheel has a 1 ms resolution: `sleep_until(t)` wakes at the
//! first millisecond tick at or after `t`, so an event due every 50 µs is
//! made up to a millisecond late (0.6 ms at the median on an idle core).
//! A [`Timer`] waits instead on a Linux `timerfd` registered with tokio's
//! own reactor: the kernel's high-resolution timer makes the fd readable
//! at the deadline (timerfds have no timer slack), which wakes the runtime
//! out of `epoll_wait` at once, or is seen at its next poll of the reactor
//! when it is busy. No extra thread, no spinning: the cost is two system
//! calls per wait (arm, read), measured in `benches/scheduler.sh`.
//!
//! Which wait is used, per wait:
//! - tokio's **paused clock** (tests, `start_paused`): tokio's timer, the
//!   only one the paused clock moves (it auto-advances to the next tokio
//!   timer when the runtime is idle). The clock is paused when
//!   [`tokio::time::Instant::now`] stands still while the real clock ticks;
//!   that is checked at each wait (three clock reads), so a test may pause
//!   or resume the clock whenever it likes.
//! - otherwise the timerfd, created at the first wait and kept for the
//!   timer's life (no allocation or fd per event);
//! - where there is no timerfd (not Linux, or its creation failed), tokio's
//!   timer again.
//!
//! Either way the wait never ends before the deadline: each wake re-reads
//! the clock and waits again if it came early.

use std::time::Duration;
use tokio::time::Instant;

/// Waits to deadlines; see the module docs. One per waiting player (a
/// [`super::schedule::Schedule`]). A clone starts without a timerfd of its
/// own (it makes one at its first wait).
#[derive(Default)]
pub struct Timer {
    fd: Fd,
}

#[derive(Default)]
enum Fd {
    /// None made yet.
    #[default]
    Unmade,
    /// None to be had: use tokio's timer.
    Unavailable,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    Made(timerfd::TimerFd),
}

impl Clone for Timer {
    fn clone(&self) -> Timer {
        Timer::default()
    }
}

impl std::fmt::Debug for Timer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.fd {
            Fd::Unmade => "unmade",
            Fd::Unavailable => "tokio",
            #[cfg(any(target_os = "linux", target_os = "android"))]
            Fd::Made(_) => "timerfd",
        };
        f.debug_struct("Timer").field("fd", &kind).finish()
    }
}

/// Whether tokio's clock is paused: it stands still while the real one
/// ticks. (With the clock running, tokio's `now` is the real clock, or the
/// real clock's time since it was resumed: it moves whenever the real one
/// does.)
fn clock_is_paused() -> bool {
    let before = Instant::now();
    let real = std::time::Instant::now();
    while std::time::Instant::now() == real {
        std::hint::spin_loop();
    }
    Instant::now() == before
}

impl Timer {
    /// Wait until `deadline` (at once if it has passed). Cancel-safe: a
    /// dropped wait leaves nothing behind but an armed timerfd, re-armed by
    /// the next wait.
    pub async fn sleep_until(&mut self, deadline: Instant) {
        if Instant::now() >= deadline {
            return;
        }
        if clock_is_paused() {
            return tokio::time::sleep_until(deadline).await;
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            if matches!(self.fd, Fd::Unmade) {
                self.fd = match timerfd::TimerFd::new() {
                    Ok(fd) => Fd::Made(fd),
                    Err(e) => {
                        tracing::debug!("no timerfd ({e}): tokio's 1 ms timer instead");
                        Fd::Unavailable
                    }
                };
            }
            if let Fd::Made(fd) = &self.fd {
                match fd.sleep_until(deadline).await {
                    Ok(()) => return,
                    Err(e) => {
                        tracing::debug!("timerfd failed ({e}): tokio's 1 ms timer instead");
                        self.fd = Fd::Unavailable;
                    }
                }
            }
        }
        tokio::time::sleep_until(deadline).await
    }
}

/// The timerfd: made with `libc` (already a dependency, for socket options
/// and rlimits) since neither std nor tokio expose one.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod timerfd {
    use super::*;
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use tokio::io::unix::AsyncFd;

    pub struct TimerFd(AsyncFd<OwnedFd>);

    impl TimerFd {
        pub fn new() -> io::Result<TimerFd> {
            // SAFETY: plain system call; the fd returned is owned here.
            let raw = unsafe {
                libc::timerfd_create(
                    libc::CLOCK_MONOTONIC,
                    libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
                )
            };
            if raw < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: `raw` is a fresh fd nobody else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            // SAFETY: the `OwnedFd` is valid, open and owned by the
            // `AsyncFd` until it is dropped, which deregisters it first.
            let registered =
                unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) };
            Ok(TimerFd(registered.map_err(io::Error::from)?))
        }

        /// Arm to expire once, `after` from now (relative: `Instant` and
        /// `CLOCK_MONOTONIC` are the same clock on Linux, but std does not
        /// expose the raw value; arming after reading `now` can only make
        /// the expiry later, never earlier). `after` is never zero (zero
        /// would disarm).
        fn arm(&self, after: Duration) -> io::Result<()> {
            let after = after.max(Duration::from_nanos(1));
            let spec = libc::itimerspec {
                it_interval: libc::timespec {
                    tv_sec: 0,
                    tv_nsec: 0,
                },
                it_value: libc::timespec {
                    tv_sec: after.as_secs().min(libc::time_t::MAX as u64) as libc::time_t,
                    tv_nsec: after.subsec_nanos() as libc::c_long,
                },
            };
            // SAFETY: valid fd and pointers for the call's duration.
            let rc = unsafe {
                libc::timerfd_settime(self.0.as_raw_fd(), 0, &spec, std::ptr::null_mut())
            };
            if rc < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        }

        pub async fn sleep_until(&self, deadline: Instant) -> io::Result<()> {
            loop {
                let now = Instant::now();
                if now >= deadline {
                    return Ok(());
                }
                // Re-armed at every turn: arming also clears an expiry left
                // by a cancelled wait, whose readiness then reads as
                // `WouldBlock` below.
                self.arm(deadline - now)?;
                let mut ready = self.0.readable().await?;
                let _ = ready.try_io(|fd| {
                    let mut expirations = 0u64;
                    // SAFETY: reads 8 bytes into a u64 on the stack.
                    let n = unsafe {
                        libc::read(
                            fd.as_raw_fd(),
                            (&mut expirations as *mut u64).cast(),
                            std::mem::size_of::<u64>(),
                        )
                    };
                    if n < 0 {
                        Err(io::Error::last_os_error())
                    } else {
                        Ok(())
                    }
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_paused_clock_is_seen_and_moves_the_wait() {
        assert!(clock_is_paused());
        let mut timer = Timer::default();
        let start = Instant::now();
        timer.sleep_until(start + Duration::from_secs(3600)).await;
        assert_eq!(Instant::now() - start, Duration::from_secs(3600));
        assert!(matches!(timer.fd, Fd::Unmade), "tokio's timer was used");
    }

    #[tokio::test]
    async fn a_running_clock_is_seen() {
        assert!(!clock_is_paused());
    }

    /// The real clock, current-thread and multi-thread runtimes: never a
    /// wake before the deadline, a cancelled wait leaves nothing behind,
    /// and a clone has its own fd.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn with_the_real_clock_it_never_wakes_early() {
        for multi in [false, true] {
            let mut builder = if multi {
                tokio::runtime::Builder::new_multi_thread()
            } else {
                tokio::runtime::Builder::new_current_thread()
            };
            let rt = builder.worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async {
                let mut timer = Timer::default();
                let mut deadline = Instant::now();
                for k in 0..200u64 {
                    deadline += Duration::from_micros(37 + k % 50);
                    timer.sleep_until(deadline).await;
                    assert!(Instant::now() >= deadline, "woke before deadline {k}");
                }
                assert!(matches!(timer.fd, Fd::Made(_)));
                // Cancelled waits: the far one is dropped, a near one then
                // ends at its own deadline, not the stale one's or earlier.
                let far = Instant::now() + Duration::from_secs(3600);
                let near = Instant::now() + Duration::from_millis(2);
                let cancelled =
                    tokio::time::timeout(Duration::from_micros(200), timer.sleep_until(far)).await;
                assert!(cancelled.is_err());
                timer.sleep_until(near).await;
                assert!(Instant::now() >= near);
                assert!(Instant::now() < far);
                let clone = timer.clone();
                assert!(matches!(clone.fd, Fd::Unmade));
            });
        }
    }
}
