//! The job queue behind `POST /api/jobs` and `GET /api/jobs/{id}`: a FIFO
//! queue served by `job_workers` worker tasks, each taking the oldest
//! queued job, holding it for its duration (drawn from `job_duration` when
//! it was submitted) and marking it done. A job is `queued`, then
//! `running`, then `done`, with the time of each change; so when jobs are
//! submitted faster than `job_workers / mean job_duration`, the queue (and
//! the time to `done`) grows, as in a real worker pool.
//!
//! Memory is bounded: at most [`MAX_JOBS`] jobs are remembered. When full,
//! the oldest finished job is forgotten (its id answers 404); when every
//! remembered job is still queued or running, a new submission is refused
//! (`503 {"error":"job queue full"}`).
//!
//! Times come from tokio's clock, so a test with a paused clock sees the
//! exact schedule. Workers are spawned when the first job is submitted (or
//! when `job_workers` grows) and end when it shrinks or the target stops.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;

/// At most this many jobs are remembered (queued, running and done).
pub const MAX_JOBS: usize = 100_000;

/// A job as `GET /api/jobs/{id}` shows it. Times are Unix milliseconds
/// (the target's start in Unix time plus tokio's clock since then);
/// `queue_ms` and `run_ms` are the time spent queued and running so far.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobView {
    pub id: String,
    pub status: &'static str,
    pub queued_at: u64,
    pub started_at: Option<u64>,
    pub done_at: Option<u64>,
    pub queue_ms: u64,
    pub run_ms: u64,
}

struct Job {
    /// The Unix ms in the job's id (its submission, by the wall clock).
    id_ms: u64,
    duration: Duration,
    queued: Instant,
    started: Option<Instant>,
    done: Option<Instant>,
}

#[derive(Default)]
struct Jobs {
    next_seq: u64,
    records: HashMap<u64, Job>,
    /// Queued jobs, oldest first.
    pending: VecDeque<u64>,
    /// Done jobs, oldest first: the ones forgotten first.
    finished: VecDeque<u64>,
    /// Worker tasks alive.
    workers: usize,
    /// Worker tasks wanted (`job_workers`).
    wanted: usize,
    closed: bool,
}

/// The queue and its workers' shared state.
pub struct JobQueue {
    inner: Mutex<Jobs>,
    /// A job was queued, or workers must re-check (fewer wanted, closed).
    ready: Notify,
    start: Instant,
    start_unix_ms: u64,
}

/// Why a job was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// [`MAX_JOBS`] jobs are queued or running.
    Full,
    /// The target is stopping.
    Closed,
}

impl JobQueue {
    /// An empty queue served by `workers` workers (spawned on first use).
    pub fn new(workers: usize, start_unix_ms: u64) -> Arc<JobQueue> {
        Arc::new(JobQueue {
            inner: Mutex::new(Jobs {
                wanted: workers,
                ..Jobs::default()
            }),
            ready: Notify::new(),
            start: Instant::now(),
            start_unix_ms,
        })
    }

    fn unix_ms(&self, at: Instant) -> u64 {
        let since = at.saturating_duration_since(self.start).as_millis() as u64;
        self.start_unix_ms.saturating_add(since)
    }

    /// Queue a job that will run for `duration`; its id,
    /// `job-<unix ms>-<seq>`. Must run inside a tokio runtime (it may
    /// spawn workers).
    pub fn submit(self: &Arc<Self>, duration: Duration) -> Result<String, Refused> {
        let now = Instant::now();
        let id_ms = self.unix_ms(now);
        let id = {
            let mut jobs = self.inner.lock();
            if jobs.closed {
                return Err(Refused::Closed);
            }
            if jobs.records.len() >= MAX_JOBS {
                let oldest = jobs.finished.pop_front().ok_or(Refused::Full)?;
                jobs.records.remove(&oldest);
            }
            let seq = jobs.next_seq;
            jobs.next_seq += 1;
            jobs.records.insert(
                seq,
                Job {
                    id_ms,
                    duration,
                    queued: now,
                    started: None,
                    done: None,
                },
            );
            jobs.pending.push_back(seq);
            self.spawn_missing(&mut jobs);
            format!("job-{id_ms}-{seq}")
        };
        self.ready.notify_one();
        Ok(id)
    }

    /// Change the number of workers: more are spawned at once (inside a
    /// runtime; else at the next submission), extra ones end after their
    /// current job.
    pub fn set_workers(self: &Arc<Self>, wanted: usize) {
        let mut jobs = self.inner.lock();
        jobs.wanted = wanted;
        if tokio::runtime::Handle::try_current().is_ok() && !jobs.pending.is_empty() {
            self.spawn_missing(&mut jobs);
        }
        drop(jobs);
        self.ready.notify_waiters();
    }

    /// Stop: no new jobs, idle workers end, busy ones after their job.
    pub fn close(&self) {
        self.inner.lock().closed = true;
        self.ready.notify_waiters();
    }

    fn spawn_missing(self: &Arc<Self>, jobs: &mut Jobs) {
        while jobs.workers < jobs.wanted {
            jobs.workers += 1;
            tokio::spawn(self.clone().worker());
        }
    }

    /// One worker: take the oldest queued job, run it, repeat.
    async fn worker(self: Arc<Self>) {
        loop {
            let notified = self.ready.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let next = {
                let mut jobs = self.inner.lock();
                if jobs.closed || jobs.workers > jobs.wanted {
                    jobs.workers -= 1;
                    return;
                }
                match jobs.pending.pop_front() {
                    Some(seq) => {
                        let job = jobs.records.get_mut(&seq).expect("a queued job is kept");
                        job.started = Some(Instant::now());
                        Some((seq, job.duration))
                    }
                    None => None,
                }
            };
            let Some((seq, duration)) = next else {
                notified.await;
                continue;
            };
            if !duration.is_zero() {
                tokio::time::sleep(duration).await;
            }
            let mut jobs = self.inner.lock();
            if let Some(job) = jobs.records.get_mut(&seq) {
                job.done = Some(Instant::now());
                jobs.finished.push_back(seq);
            }
        }
    }

    /// A job by its id; None when malformed, never issued or forgotten.
    pub fn get(&self, id: &str) -> Option<JobView> {
        let rest = id.strip_prefix("job-")?;
        let (id_ms, seq) = rest.split_once('-')?;
        let (id_ms, seq) = (parse_u64(id_ms)?, parse_u64(seq)?);
        let jobs = self.inner.lock();
        let job = jobs.records.get(&seq).filter(|j| j.id_ms == id_ms)?;
        let now = Instant::now();
        let status = match (job.started, job.done) {
            (_, Some(_)) => "done",
            (Some(_), None) => "running",
            (None, None) => "queued",
        };
        let queue_end = job.started.unwrap_or(now);
        let run = job
            .started
            .map_or(Duration::ZERO, |s| job.done.unwrap_or(now) - s);
        Some(JobView {
            id: id.to_string(),
            status,
            queued_at: self.unix_ms(job.queued),
            started_at: job.started.map(|t| self.unix_ms(t)),
            done_at: job.done.map(|t| self.unix_ms(t)),
            queue_ms: (queue_end - job.queued).as_millis() as u64,
            run_ms: run.as_millis() as u64,
        })
    }

    /// Jobs queued and running now.
    pub fn depth(&self) -> (usize, usize) {
        let jobs = self.inner.lock();
        let running = jobs.records.len() - jobs.pending.len() - jobs.finished.len();
        (jobs.pending.len(), running)
    }
}

fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Let the workers run whatever is due now (paused clock).
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn workers_take_jobs_in_order_and_the_rest_wait() {
        let q = JobQueue::new(2, 1_000_000);
        let ids: Vec<String> = (0..5).map(|_| q.submit(ms(100)).unwrap()).collect();
        settle().await;
        let status = |q: &JobQueue| -> Vec<&'static str> {
            ids.iter().map(|id| q.get(id).unwrap().status).collect()
        };
        assert_eq!(
            status(&q),
            ["running", "running", "queued", "queued", "queued"]
        );
        assert_eq!(q.depth(), (3, 2));
        tokio::time::sleep(ms(100)).await;
        settle().await;
        assert_eq!(status(&q), ["done", "done", "running", "running", "queued"]);
        tokio::time::sleep(ms(200)).await;
        settle().await;
        assert_eq!(status(&q), ["done"; 5]);
        // Two workers, 100 ms each: the fifth job waited two rounds.
        let last = q.get(&ids[4]).unwrap();
        assert_eq!(last.queued_at, 1_000_000);
        assert_eq!(last.started_at, Some(1_000_200));
        assert_eq!(last.done_at, Some(1_000_300));
        assert_eq!((last.queue_ms, last.run_ms), (200, 100));
        let first = q.get(&ids[0]).unwrap();
        assert_eq!((first.queue_ms, first.run_ms), (0, 100));
    }

    #[tokio::test(start_paused = true)]
    async fn more_workers_drain_the_queue_sooner() {
        let q = JobQueue::new(1, 0);
        let ids: Vec<String> = (0..4).map(|_| q.submit(ms(100)).unwrap()).collect();
        settle().await;
        q.set_workers(4);
        settle().await;
        let started: Vec<Option<u64>> =
            ids.iter().map(|id| q.get(id).unwrap().started_at).collect();
        assert_eq!(started, [Some(0); 4]);
        q.set_workers(1);
        tokio::time::sleep(ms(100)).await;
        settle().await;
        assert_eq!(q.inner.lock().workers, 1, "extra workers ended");
        q.close();
        settle().await;
        assert_eq!(q.inner.lock().workers, 0);
        assert_eq!(q.submit(ms(1)), Err(Refused::Closed));
    }

    #[tokio::test(start_paused = true)]
    async fn ids_are_checked() {
        let q = JobQueue::new(1, 5);
        let id = q.submit(ms(10)).unwrap();
        assert_eq!(id, "job-5-0");
        assert!(q.get(&id).is_some());
        for bad in [
            "job-",
            "job-5",
            "job-4-0",
            "job-5-1",
            "job-5-0-1",
            "jobs-5-0",
            "job-+5-0",
        ] {
            assert!(q.get(bad).is_none(), "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn memory_is_bounded() {
        // No worker: every job stays queued, so the queue fills and refuses.
        let idle = JobQueue::new(0, 0);
        for _ in 0..MAX_JOBS {
            idle.submit(ms(1)).unwrap();
        }
        assert_eq!(idle.submit(ms(1)), Err(Refused::Full));
        // Done jobs make room, the oldest forgotten first.
        let q = JobQueue::new(1, 0);
        let first = q.submit(Duration::ZERO).unwrap();
        for _ in 1..MAX_JOBS {
            q.submit(Duration::ZERO).unwrap();
        }
        settle().await;
        assert_eq!(q.depth(), (0, 0));
        let newest = q.submit(Duration::ZERO).unwrap();
        assert!(q.get(&first).is_none(), "the oldest done job is forgotten");
        assert!(q.get(&newest).is_some());
        assert_eq!(q.inner.lock().records.len(), MAX_JOBS);
    }
}
