//! Shared state of a running target: the live knobs, the concurrency
//! limiter, stalls, counters and the bounded store of created servers.
//!
//! Hot path cost per `/api/*` request: one `RwLock` read (to clone an `Arc`
//! of the live knobs), a few relaxed atomics, one `Instant::now()`, and —
//! only with a concurrency limit — a semaphore acquire. Writers (the admin
//! endpoints) swap the whole `Arc`, so readers never wait on a long lock.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::RwLock;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use serde::Serialize;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, TryAcquireError};

use super::jobs::JobQueue;
use super::knobs::{KnobError, TargetConfig};

/// How many synthetic servers `GET /api/servers` lists before created ones.
pub const SYNTHETIC_SERVERS: usize = 1000;
/// At most this many created servers are kept; the oldest are evicted.
pub const MAX_CREATED_SERVERS: usize = 10_000;

thread_local! {
    static RNG: RefCell<SmallRng> = RefCell::new(SmallRng::from_entropy());
}

/// Runs `f` with this thread's fast, non-cryptographic rng.
pub(crate) fn with_rng<T>(f: impl FnOnce(&mut SmallRng) -> T) -> T {
    RNG.with(|r| f(&mut r.borrow_mut()))
}

/// The knobs in force, swapped as a whole by the admin endpoints.
pub(crate) struct Live {
    pub(crate) config: TargetConfig,
    /// `Some` when `config.concurrency` is `Some`: a semaphore of that many permits.
    pub(crate) limiter: Option<Arc<Semaphore>>,
}

impl Live {
    fn new(config: TargetConfig, limiter: Option<Arc<Semaphore>>) -> Arc<Live> {
        Arc::new(Live { config, limiter })
    }
}

/// A snapshot of the target's counters, as served by `GET /admin/stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TargetStats {
    /// `/api/*` requests received (including rejected and failed ones).
    pub requests: u64,
    /// `/api/*` requests being served now (holding a permit, if limited).
    pub in_flight: u64,
    /// Requests waiting for a concurrency permit.
    pub queued: u64,
    /// Requests held by an active stall.
    pub stalled: u64,
    /// Requests answered 503 because the queue was full.
    pub rejected: u64,
    /// Requests answered 500 by error injection.
    pub errors_injected: u64,
    /// Jobs waiting for a worker.
    pub jobs_queued: u64,
    /// Jobs a worker is running.
    pub jobs_running: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    in_flight: AtomicU64,
    queued: AtomicU64,
    stalled: AtomicU64,
    rejected: AtomicU64,
    errors_injected: AtomicU64,
}

/// Increments a gauge now and decrements it when dropped (also when the
/// request's future is dropped because the client went away).
pub(crate) struct Gauge<'a>(&'a AtomicU64);

impl<'a> Gauge<'a> {
    fn enter(g: &'a AtomicU64) -> (Gauge<'a>, u64) {
        let prev = g.fetch_add(1, Ordering::AcqRel);
        (Gauge(g), prev)
    }
}

impl Drop for Gauge<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A server as listed by `GET /api/servers`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Server {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) status: &'static str,
}

struct CreatedServers {
    items: VecDeque<Server>,
    next_number: u64,
}

/// The outcome of waiting for a concurrency permit.
pub(crate) enum Admission {
    /// Go ahead; the permit (if the target is limited) is held until dropped.
    Admitted(Option<OwnedSemaphorePermit>),
    /// The wait queue is full.
    Overloaded,
}

/// Everything a running target shares between its handlers.
pub struct TargetState {
    live: RwLock<Arc<Live>>,
    /// Serialises admin updates (read-modify-write of the config).
    update: parking_lot::Mutex<()>,
    /// End of the current stall, in nanoseconds since `start`; 0 = none.
    stall_until: AtomicU64,
    stall_changed: Notify,
    start: Instant,
    counters: Counters,
    next_token: AtomicU64,
    /// Submitted jobs and the workers that run them.
    pub(crate) jobs: Arc<JobQueue>,
    created: RwLock<CreatedServers>,
}

impl std::fmt::Debug for TargetState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TargetState")
            .field("config", &self.config())
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch (0 if the clock says before it).
pub(crate) fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl TargetState {
    /// A fresh state with these knobs (validated).
    pub fn new(config: TargetConfig) -> Result<Arc<TargetState>, KnobError> {
        config.validate()?;
        let limiter = config.concurrency.map(|n| Arc::new(Semaphore::new(n)));
        let jobs = JobQueue::new(config.job_workers, unix_ms());
        Ok(Arc::new(TargetState {
            live: RwLock::new(Live::new(config, limiter)),
            update: parking_lot::Mutex::new(()),
            stall_until: AtomicU64::new(0),
            stall_changed: Notify::new(),
            start: Instant::now(),
            counters: Counters::default(),
            next_token: AtomicU64::new(1),
            jobs,
            created: RwLock::new(CreatedServers {
                items: VecDeque::new(),
                next_number: SYNTHETIC_SERVERS as u64 + 1,
            }),
        }))
    }

    pub(crate) fn live(&self) -> Arc<Live> {
        self.live.read().clone()
    }

    /// The knobs in force.
    pub fn config(&self) -> TargetConfig {
        self.live.read().config.clone()
    }

    /// Replaces the knobs. A changed concurrency limit takes effect for new
    /// requests at once (a new semaphore); requests already holding or
    /// waiting for a permit of the old one finish under the old limit.
    pub fn set_config(&self, config: TargetConfig) -> Result<(), KnobError> {
        self.update_config(|_| Ok(config)).map(|_| ())
    }

    /// Read-modify-write of the knobs; returns the new config.
    pub fn update_config(
        &self,
        f: impl FnOnce(&TargetConfig) -> Result<TargetConfig, KnobError>,
    ) -> Result<TargetConfig, KnobError> {
        let _serial = self.update.lock();
        let current = self.live();
        let config = f(&current.config)?;
        config.validate()?;
        let limiter = if config.concurrency == current.config.concurrency {
            current.limiter.clone()
        } else {
            config.concurrency.map(|n| Arc::new(Semaphore::new(n)))
        };
        if config.job_workers != current.config.job_workers {
            self.jobs.set_workers(config.job_workers);
        }
        *self.live.write() = Live::new(config.clone(), limiter);
        Ok(config)
    }

    /// The counters now.
    pub fn stats(&self) -> TargetStats {
        let c = &self.counters;
        let (jobs_queued, jobs_running) = self.jobs.depth();
        TargetStats {
            requests: c.requests.load(Ordering::Relaxed),
            in_flight: c.in_flight.load(Ordering::Relaxed),
            queued: c.queued.load(Ordering::Relaxed),
            stalled: c.stalled.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            errors_injected: c.errors_injected.load(Ordering::Relaxed),
            jobs_queued: jobs_queued as u64,
            jobs_running: jobs_running as u64,
        }
    }

    fn now_nanos(&self) -> u64 {
        self.start.elapsed().as_nanos() as u64
    }

    /// Starts a stall now: every `/api/*` request (waiting or new) waits
    /// until it ends. An active longer stall is not shortened; a zero
    /// duration ends any stall at once.
    pub fn stall(&self, duration: Duration) {
        if duration.is_zero() {
            self.end_stall();
            return;
        }
        let until = self
            .now_nanos()
            .saturating_add(duration.as_nanos().min(u64::MAX as u128) as u64);
        self.stall_until.fetch_max(until, Ordering::AcqRel);
    }

    /// Ends any stall and releases the requests it holds.
    pub fn end_stall(&self) {
        self.stall_until.store(0, Ordering::Release);
        self.stall_changed.notify_waiters();
    }

    /// Waits while a stall is active (re-checking if it is extended or ended).
    pub(crate) async fn wait_stall(&self) {
        let until = self.stall_until.load(Ordering::Acquire);
        if until == 0 || until <= self.now_nanos() {
            return;
        }
        let (_stalled, _) = Gauge::enter(&self.counters.stalled);
        loop {
            let notified = self.stall_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let until = self.stall_until.load(Ordering::Acquire);
            if until <= self.now_nanos() {
                return;
            }
            let deadline = self.start + Duration::from_nanos(until);
            tokio::select! {
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {}
                _ = notified => {}
            }
        }
    }

    /// Counts a received `/api/*` request.
    pub(crate) fn count_request(&self) {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts an injected error.
    pub(crate) fn count_injected(&self) {
        self.counters
            .errors_injected
            .fetch_add(1, Ordering::Relaxed);
    }

    /// Marks a request as being served until the guard drops.
    pub(crate) fn in_flight(&self) -> Gauge<'_> {
        Gauge::enter(&self.counters.in_flight).0
    }

    /// Takes a concurrency permit: at once if one is free, else by waiting
    /// in the bounded queue, else (queue full) `Overloaded`.
    pub(crate) async fn admit(&self, live: &Live) -> Admission {
        let Some(sem) = &live.limiter else {
            return Admission::Admitted(None);
        };
        match sem.clone().try_acquire_owned() {
            Ok(permit) => return Admission::Admitted(Some(permit)),
            Err(TryAcquireError::Closed) => return Admission::Admitted(None),
            Err(TryAcquireError::NoPermits) => {}
        }
        let (waiting, ahead) = Gauge::enter(&self.counters.queued);
        if ahead >= live.config.queue as u64 {
            drop(waiting);
            self.counters.rejected.fetch_add(1, Ordering::Relaxed);
            return Admission::Overloaded;
        }
        let permit = sem.clone().acquire_owned().await.ok();
        drop(waiting);
        Admission::Admitted(permit)
    }

    /// A new login token for `user`.
    pub(crate) fn token(&self, user: &str) -> String {
        let n = self.next_token.fetch_add(1, Ordering::Relaxed);
        format!("tok-{user}-{n}")
    }

    /// Queue a job whose duration is drawn from `job_duration` now; its
    /// id, or why it was refused.
    pub(crate) fn new_job(&self) -> Result<String, super::jobs::Refused> {
        let duration = with_rng(|rng| self.live().config.job_duration.sample(rng));
        self.jobs.submit(duration)
    }

    /// Stop the job workers (the target is stopping).
    pub fn close_jobs(&self) {
        self.jobs.close();
    }

    /// Creates a server (kept in a bounded store).
    pub(crate) fn create_server(&self, name: &str) -> Server {
        let mut store = self.created.write();
        let number = store.next_number;
        store.next_number += 1;
        let server = Server {
            id: format!("srv-{number:05}"),
            name: name.to_string(),
            status: "provisioning",
        };
        if store.items.len() >= MAX_CREATED_SERVERS {
            store.items.pop_front();
        }
        store.items.push_back(server.clone());
        server
    }

    /// One page (1-based) of the synthetic servers followed by the created
    /// ones, and the total count.
    pub(crate) fn list_servers(&self, page: usize, per_page: usize) -> (Vec<Server>, usize) {
        let store = self.created.read();
        let total = SYNTHETIC_SERVERS + store.items.len();
        let start = page.saturating_sub(1).saturating_mul(per_page);
        let end = start.saturating_add(per_page).min(total);
        let items = (start..end)
            .map(|i| {
                if i < SYNTHETIC_SERVERS {
                    synthetic_server(i)
                } else {
                    store.items[i - SYNTHETIC_SERVERS].clone()
                }
            })
            .collect();
        (items, total)
    }
}

/// The i-th (0-based) synthetic server: `srv-00001` / `server-0001`, with
/// a status fixed by its index (7 in 10 running, 2 stopped, 1 provisioning).
fn synthetic_server(i: usize) -> Server {
    const STATUS: [&str; 10] = [
        "running",
        "running",
        "stopped",
        "running",
        "running",
        "provisioning",
        "running",
        "stopped",
        "running",
        "running",
    ];
    Server {
        id: format!("srv-{:05}", i + 1),
        name: format!("server-{:04}", i + 1),
        status: STATUS[(i * 7) % 10],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_servers_are_bounded() {
        let s = TargetState::new(TargetConfig::default()).unwrap();
        for i in 0..MAX_CREATED_SERVERS + 5 {
            s.create_server(&format!("n{i}"));
        }
        let (items, total) = s.list_servers(1, 1);
        assert_eq!(total, SYNTHETIC_SERVERS + MAX_CREATED_SERVERS);
        assert_eq!(items[0].id, "srv-00001");
        let (items, _) = s.list_servers(SYNTHETIC_SERVERS + 1, 1);
        assert_eq!(items[0].name, "n5");
        let (items, _) = s.list_servers(usize::MAX, usize::MAX);
        assert!(items.is_empty());
    }
}
