//! The recording side: [`Metrics`], the handle every task shares, and
//! [`Shard`], one thread's interval data.
//!
//! Each thread that records into a run gets its own shard the first time it
//! calls [`Metrics::with`]; the shard is cached in a thread-local list keyed
//! by the run's unique id (several runs may live in one process, e.g. tests
//! running in parallel, and never share a shard) and registered with the run
//! so the aggregator can find it. Afterwards a sample costs a short scan of
//! that list, one uncontended lock and a histogram increment.
//!
//! Lifetimes: the thread-local entry and the run's registry each hold the
//! shard. When a run is dropped its registry goes, and the thread's stale
//! entry (now the only holder) is pruned the next time that thread registers
//! a shard. When a thread exits, its entry goes, and the aggregator harvests
//! the orphaned shard one last time and unregisters it.

use super::{new_histogram, CounterId, Dims, HistId, Layout};
use hdrhistogram::Histogram;
use parking_lot::Mutex;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Source of run identities for the thread-local shard cache.
static NEXT_METRICS_ID: AtomicU64 = AtomicU64::new(1);

/// A shard as shared between its thread and the aggregator.
pub(super) type SharedShard = Arc<Mutex<Shard>>;

thread_local! {
    /// This thread's shards, one per live run it has recorded into, keyed by
    /// the run's id. Usually one entry, so a linear scan is the fastest lookup.
    static SHARDS: RefCell<Vec<(u64, SharedShard)>> = const { RefCell::new(Vec::new()) };
}

/// The data of one interval: histograms and counters at their flat indices
/// (`phase * n + id`). Histograms are allocated on first use and then kept:
/// the aggregator swaps a whole `Buffers` out and hands back a cleared one.
pub(super) struct Buffers {
    /// `None` until the series is first recorded in that phase.
    pub hists: Vec<Option<Histogram<u64>>>,
    /// Increments since the last harvest.
    pub counters: Vec<u64>,
}

impl Buffers {
    pub fn new(dims: Dims) -> Buffers {
        Buffers {
            hists: (0..dims.phases * dims.hists).map(|_| None).collect(),
            counters: vec![0; dims.phases * dims.counters],
        }
    }
}

/// This thread's interval data, locked for the duration of [`Metrics::with`].
pub struct Shard {
    /// Storage sizes, fixed by the layout.
    dims: Dims,
    /// What was recorded since the aggregator last swapped it out.
    pub(super) data: Buffers,
}

impl Shard {
    fn new(dims: Dims) -> Shard {
        Shard {
            dims,
            data: Buffers::new(dims),
        }
    }

    /// Record one value (µs) into histogram `id` for `phase`.
    ///
    /// Values above [`super::MAX_TRACKABLE_US`] are clamped to it. `id` must
    /// come from this run's layout (another layout's id may panic); `phase`
    /// must index `layout.phases` (debug builds assert it, release builds
    /// count a stray sample in the last phase rather than lose it).
    #[inline]
    pub fn record(&mut self, id: HistId, phase: usize, micros: u64) {
        let index = self.dims.hist_index(id, phase);
        self.data.hists[index]
            .get_or_insert_with(new_histogram)
            .saturating_record(micros);
    }
    /// Add `n` to counter `id` for `phase`.
    #[inline]
    pub fn add(&mut self, id: CounterId, phase: usize, n: u64) {
        let index = self.dims.counter_index(id, phase);
        let counter = &mut self.data.counters[index];
        *counter = counter.saturating_add(n);
    }
}

/// The recording handle of a run (cheap to clone; shared by all tasks).
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    /// Unique per run in this process; the key of the thread-local cache.
    id: u64,
    layout: Layout,
    dims: Dims,
    /// Every shard of this run; the aggregator harvests them in order.
    registry: Mutex<Vec<SharedShard>>,
}

impl Metrics {
    /// A new run recording the series of `layout`.
    pub fn new(layout: Layout) -> Metrics {
        Metrics {
            inner: Arc::new(Inner {
                id: NEXT_METRICS_ID.fetch_add(1, Ordering::Relaxed),
                dims: Dims::of(&layout),
                layout,
                registry: Mutex::new(Vec::new()),
            }),
        }
    }
    /// The series this run records.
    pub fn layout(&self) -> &Layout {
        &self.inner.layout
    }
    /// Run `f` on this thread's shard (one uncontended lock; several runs in
    /// one process each get their own shards).
    ///
    /// `f` must not call `with` on the same `Metrics` (the lock is not
    /// reentrant); keep it to a few `record` / `add` calls.
    #[inline]
    pub fn with<R>(&self, f: impl FnOnce(&mut Shard) -> R) -> R {
        let shard = self.local_shard();
        let mut guard = shard.lock();
        f(&mut guard)
    }

    /// Number of shards registered (one per thread that has recorded and
    /// not yet been harvested after exiting).
    pub fn shard_count(&self) -> usize {
        self.inner.registry.lock().len()
    }

    pub(super) fn dims(&self) -> Dims {
        self.inner.dims
    }

    /// Hand every registered shard to `visit` (with whether its thread is
    /// gone), then unregister the shards whose thread is gone. `visit` has
    /// then seen everything those threads will ever record.
    pub(super) fn harvest(&self, mut visit: impl FnMut(&Mutex<Shard>)) {
        self.inner.registry.lock().retain(|shard| {
            // Checked before the visit: a shard whose only holder is the
            // registry cannot gain data any more (its thread is gone and the
            // registry is locked), so this visit is its last.
            let orphan = Arc::strong_count(shard) == 1;
            visit(shard);
            !orphan
        });
    }

    #[inline]
    fn local_shard(&self) -> SharedShard {
        let id = self.inner.id;
        SHARDS
            .try_with(|cache| {
                if let Ok(cache) = cache.try_borrow() {
                    if let Some((_, shard)) = cache.iter().find(|(key, _)| *key == id) {
                        return shard.clone();
                    }
                }
                self.register_shard(Some(cache))
            })
            // The thread-local is gone (thread teardown): use an uncached shard.
            .unwrap_or_else(|_| self.register_shard(None))
    }

    #[cold]
    #[inline(never)]
    fn register_shard(&self, cache: Option<&RefCell<Vec<(u64, SharedShard)>>>) -> SharedShard {
        let shard = Arc::new(Mutex::new(Shard::new(self.inner.dims)));
        self.inner.registry.lock().push(shard.clone());
        if let Some(Ok(mut cache)) = cache.map(RefCell::try_borrow_mut) {
            // Entries of dropped runs are held by nobody else any more.
            cache.retain(|(_, shard)| Arc::strong_count(shard) > 1);
            cache.push((self.inner.id, shard.clone()));
        }
        shard
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cached_runs() -> Vec<u64> {
        SHARDS.with(|cache| cache.borrow().iter().map(|(id, _)| *id).collect())
    }

    #[test]
    fn a_thread_keeps_one_shard_per_run() {
        let mut layout = Layout::default();
        let id = layout.add_hist("http.latency", "", "");
        let metrics = Metrics::new(layout);
        for _ in 0..100 {
            metrics.with(|s| s.record(id, 0, 1));
        }
        assert_eq!(metrics.shard_count(), 1);
        assert_eq!(cached_runs(), vec![metrics.inner.id]);
    }

    #[test]
    fn entries_of_dropped_runs_are_pruned() {
        let mut layout = Layout::default();
        let id = layout.add_hist("http.latency", "", "");
        let first = Metrics::new(layout.clone());
        first.with(|s| s.record(id, 0, 1));
        drop(first);
        let second = Metrics::new(layout);
        second.with(|s| s.record(id, 0, 1));
        assert_eq!(cached_runs(), vec![second.inner.id]);
    }
}
