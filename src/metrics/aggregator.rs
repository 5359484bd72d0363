//! The [`Aggregator`]: once per interval it swaps every shard's data out,
//! merges it into the [`Totals`], appends a [`Point`] to the time series and
//! streams the interval histograms to the `.hlog`.
//!
//! Allocation: the aggregator owns one spare [`Buffers`]. Harvesting a shard
//! swaps the shard's buffers with the spare (the thread keeps recording into
//! the cleared spare at once), merges what came out, resets those histograms
//! (keeping their memory) and keeps them as the spare for the next shard. In
//! steady state a tick allocates only the new [`Point`], which replaces the
//! previous one, and appends its compact record to the series (`series`:
//! ~0.2 KiB a second in fixed 64 KiB blocks).

use super::hlog::HlogWriter;
use super::recorder::Buffers;
use super::{merge_into, new_histogram, Dims, IntervalStats, Metrics, Point, Totals};
use hdrhistogram::Histogram;
use std::io::Write;
use std::time::{Duration, SystemTime};

/// Swaps shards out once per interval and keeps totals, series and the hlog.
pub struct Aggregator {
    metrics: Metrics,
    dims: Dims,
    /// Cleared buffers, swapped into the next shard harvested.
    spare: Buffers,
    /// This interval, merged over shards and phases; index = HistId.
    interval_hists: Vec<Option<Histogram<u64>>>,
    /// This interval's increments; index = CounterId.
    interval_counters: Vec<u64>,
    totals: Totals,
    /// End of the previous interval, since the start.
    last_elapsed: Duration,
    hlog: Option<HlogWriter>,
    /// A rolling window for live views: the watched series merged per
    /// interval, the last `window_len` intervals.
    window_ids: Vec<usize>,
    window_len: usize,
    window: std::collections::VecDeque<Histogram<u64>>,
    /// Classic buckets of every series × phase, for the live Prometheus
    /// endpoint; None unless [`Aggregator::keep_buckets`] asked for them.
    buckets: Option<super::Buckets>,
    /// The point of the last interval, as [`Aggregator::tick`] returns it
    /// (the series keeps it only in compact form).
    last: Point,
}

impl Aggregator {
    /// Keep the last `intervals` intervals of the series `ids` (merged) for
    /// [`Aggregator::window_quantile`] — e.g. "p95 of the last 5 s".
    pub fn watch(&mut self, ids: &[super::HistId], intervals: usize) {
        self.window_ids = ids.iter().map(|id| id.0 as usize).collect();
        self.window_len = intervals;
        self.window.clear();
    }

    /// Also count every histogram series × phase into classic buckets
    /// ([`super::Buckets`]), read by [`Aggregator::buckets`].
    pub fn keep_buckets(&mut self) {
        self.buckets = Some(super::Buckets::new(self.metrics.layout()));
    }

    /// Everything recorded so far, bucketed (when [`Aggregator::keep_buckets`]).
    pub fn buckets(&self) -> Option<&super::Buckets> {
        self.buckets.as_ref()
    }

    /// Quantile `q` (0..1) of the watched series over the window; None
    /// when nothing was recorded in it.
    pub fn window_quantile(&self, q: f64) -> Option<u64> {
        let mut merged = new_histogram();
        for h in &self.window {
            merge_into(&mut merged, h);
        }
        (!merged.is_empty()).then(|| merged.value_at_quantile(q))
    }

    /// `hlog`: where interval histograms stream (HdrHistogram interval log,
    /// one tag per histogram series), or None.
    pub fn new(
        metrics: Metrics,
        hlog: Option<Box<dyn Write + Send>>,
        started_at: SystemTime,
    ) -> Aggregator {
        let dims = metrics.dims();
        let layout = metrics.layout().clone();
        Aggregator {
            spare: Buffers::new(dims),
            interval_hists: (0..dims.hists).map(|_| None).collect(),
            interval_counters: vec![0; dims.counters],
            hlog: hlog.map(|sink| HlogWriter::new(sink, started_at, &layout.hists)),
            totals: Totals::new(layout),
            last_elapsed: Duration::ZERO,
            metrics,
            dims,
            window_ids: Vec::new(),
            window_len: 0,
            window: std::collections::VecDeque::new(),
            buckets: None,
            last: Point::default(),
        }
    }
    /// Close the interval ending at `elapsed` (since start): swap every
    /// shard out, merge into totals, append a point with `gauges`
    /// (index = GaugeId), write hlog entries.
    ///
    /// Missing or non-finite gauges read 0, extra ones are ignored. A failed hlog write is
    /// logged, ends the log, and is returned by [`Aggregator::finish`].
    pub fn tick(&mut self, elapsed: Duration, gauges: &[f64]) -> &Point {
        let metrics = self.metrics.clone();
        metrics.harvest(|shard| {
            std::mem::swap(&mut shard.lock().data, &mut self.spare);
            self.absorb_spare();
        });

        let start = self.last_elapsed.min(elapsed);
        if let Some(hlog) = &mut self.hlog {
            hlog.write_interval(start, elapsed - start, &self.interval_hists);
        }
        // Non-finite values would not survive JSON (NaN becomes null).
        let gauges = (0..self.metrics.layout().gauges.len())
            .map(|i| {
                gauges
                    .get(i)
                    .copied()
                    .filter(|g| g.is_finite())
                    .unwrap_or(0.0)
            })
            .collect();
        let point = Point {
            elapsed_s: elapsed.as_secs_f64(),
            hists: self
                .interval_hists
                .iter()
                .map(|h| h.as_ref().map(IntervalStats::of).unwrap_or_default())
                .collect(),
            counters: self.interval_counters.clone(),
            gauges,
        };
        if self.window_len > 0 {
            // Reuse the oldest interval's histogram once the window is full.
            let mut merged = if self.window.len() >= self.window_len {
                let mut h = self.window.pop_front().expect("window is full");
                h.reset();
                h
            } else {
                new_histogram()
            };
            for &i in &self.window_ids {
                if let Some(Some(h)) = self.interval_hists.get(i) {
                    merge_into(&mut merged, h);
                }
            }
            self.window.push_back(merged);
        }
        for h in self.interval_hists.iter_mut().flatten() {
            h.reset();
        }
        self.interval_counters.fill(0);
        self.last_elapsed = elapsed;
        self.totals.push_point_ref(&point);
        self.last = point;
        &self.last
    }
    pub fn totals(&self) -> &Totals {
        &self.totals
    }
    /// The write error that ended the hlog, if any, with how far into the
    /// run the log is complete (see [`HlogWriter::failure`]).
    pub fn hlog_failure(&self) -> Option<super::hlog::HlogFailure<'_>> {
        self.hlog.as_ref().and_then(HlogWriter::failure)
    }
    /// Final tick is the caller's job; this flushes the hlog and returns totals.
    pub fn finish(self) -> std::io::Result<Totals> {
        let (totals, hlog) = self.into_totals();
        hlog.map(|()| totals)
    }
    /// Like [`Aggregator::finish`], but the totals survive a failed hlog
    /// (a run whose log broke can still be judged and reported).
    pub fn into_totals(self) -> (Totals, std::io::Result<()>) {
        let hlog = self.hlog.map_or(Ok(()), HlogWriter::finish);
        (self.totals, hlog)
    }

    /// Merge the spare (a shard's interval just swapped out) into the totals
    /// and this interval, then clear it for the next swap.
    fn absorb_spare(&mut self) {
        let Dims {
            hists: n_hists,
            counters: n_counters,
            ..
        } = self.dims;
        for (index, slot) in self.spare.hists.iter_mut().enumerate() {
            let Some(h) = slot.as_mut().filter(|h| !h.is_empty()) else {
                continue;
            };
            self.totals.merge_flat(index, h);
            if let Some(buckets) = &mut self.buckets {
                buckets.add(index, h);
            }
            merge_into(
                self.interval_hists[index % n_hists].get_or_insert_with(new_histogram),
                h,
            );
            h.reset();
        }
        for (index, n) in self.spare.counters.iter_mut().enumerate() {
            if *n != 0 {
                self.totals.add_flat(index, *n);
                let interval = &mut self.interval_counters[index % n_counters];
                *interval = interval.saturating_add(*n);
                *n = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{CounterId, HistId, Layout, TagFilter, MAX_TRACKABLE_US};
    use std::sync::{Arc, Barrier};

    struct Fixture {
        metrics: Metrics,
        latency: HistId,
        checkout: HistId,
        service: HistId,
        requests: CounterId,
        timeouts: CounterId,
        http_5xx: CounterId,
    }

    fn fixture() -> Fixture {
        let mut layout = Layout {
            phases: vec!["warm-up".into(), "spike".into()],
            ..Layout::default()
        };
        let latency = layout.add_hist("http.latency", "shopper", "browse");
        let checkout = layout.add_hist("http.latency", "shopper", "checkout");
        let service = layout.add_hist("http.service_time", "shopper", "browse");
        let requests = layout.add_counter("http.requests", "shopper", "browse", None);
        let timeouts = layout.add_counter("http.errors", "shopper", "browse", Some("timeout"));
        let http_5xx = layout.add_counter("http.errors", "shopper", "checkout", Some("http_5xx"));
        layout.add_gauge("generator.cpu");
        Fixture {
            metrics: Metrics::new(layout),
            latency,
            checkout,
            service,
            requests,
            timeouts,
            http_5xx,
        }
    }

    #[test]
    fn handles_can_move_to_other_threads() {
        fn send<T: Send>() {}
        fn shared<T: Send + Sync>() {}
        send::<Aggregator>();
        shared::<Metrics>();
        shared::<Totals>();
    }

    #[test]
    fn layout_hands_out_consecutive_ids() {
        let mut layout = Layout::default();
        assert_eq!(layout.add_hist("a", "", ""), HistId(0));
        assert_eq!(layout.add_hist("b", "p", "s"), HistId(1));
        assert_eq!(
            layout.add_counter("c", "", "", Some("timeout")),
            CounterId(0)
        );
        assert_eq!(layout.add_gauge("g").0, 0);
        assert_eq!(layout.hists[1].step, "s");
        assert_eq!(layout.counters[0].kind.as_deref(), Some("timeout"));
    }

    #[test]
    fn samples_from_many_threads_are_all_counted() {
        let f = fixture();
        let mut agg = Aggregator::new(f.metrics.clone(), None, SystemTime::now());
        std::thread::scope(|scope| {
            for t in 0..4u64 {
                let (metrics, latency, requests) = (&f.metrics, f.latency, f.requests);
                scope.spawn(move || {
                    for i in 0..1000 {
                        metrics.with(|s| {
                            s.record(latency, 0, 100 + t * 1000 + i);
                            s.add(requests, 0, 1);
                        });
                    }
                    for _ in 0..500 {
                        metrics.with(|s| s.record(latency, 1, 50_000));
                    }
                });
            }
        });
        let point = agg.tick(Duration::from_secs(1), &[0.5]).clone();
        assert_eq!(point.hists[f.latency.0 as usize].count, 6000);
        assert_eq!(point.counters[f.requests.0 as usize], 4000);
        assert_eq!(point.gauges, vec![0.5]);
        assert_eq!(point.elapsed_s, 1.0);

        let totals = agg.finish().unwrap();
        assert_eq!(totals.hist(f.latency, Some(0)).len(), 4000);
        assert_eq!(totals.hist(f.latency, Some(1)).len(), 2000);
        assert_eq!(totals.hist(f.latency, None).len(), 6000);
        assert_eq!(totals.counter(f.requests, None), 4000);
        assert_eq!(totals.hist(f.checkout, None).len(), 0);
    }

    #[test]
    fn two_runs_on_one_thread_do_not_mix() {
        let a = fixture();
        let b = fixture();
        let mut agg_a = Aggregator::new(a.metrics.clone(), None, SystemTime::now());
        let mut agg_b = Aggregator::new(b.metrics.clone(), None, SystemTime::now());
        for _ in 0..10 {
            a.metrics.with(|s| s.record(a.latency, 0, 1_000));
        }
        for _ in 0..3 {
            b.metrics.with(|s| s.record(b.latency, 0, 9_000));
            // Nested use of another run from inside `with` works too.
            a.metrics.with(|s| {
                b.metrics.with(|t| {
                    s.add(a.requests, 0, 1);
                    t.add(b.requests, 0, 2);
                })
            });
        }
        agg_a.tick(Duration::from_secs(1), &[]);
        agg_b.tick(Duration::from_secs(1), &[]);
        let (ta, tb) = (agg_a.totals(), agg_b.totals());
        assert_eq!(ta.hist(a.latency, None).len(), 10);
        assert_eq!(ta.hist(a.latency, None).max(), a.metrics_value(1_000));
        assert_eq!(tb.hist(b.latency, None).len(), 3);
        assert_eq!(tb.hist(b.latency, None).min(), 9_000);
        assert_eq!(ta.counter(a.requests, None), 3);
        assert_eq!(tb.counter(b.requests, None), 6);
    }

    impl Fixture {
        /// The value a histogram reports for `v` (highest equivalent).
        fn metrics_value(&self, v: u64) -> u64 {
            new_histogram().highest_equivalent(v)
        }
    }

    #[test]
    fn phases_are_kept_apart() {
        let f = fixture();
        let mut agg = Aggregator::new(f.metrics.clone(), None, SystemTime::now());
        f.metrics.with(|s| {
            s.record(f.latency, 0, 10);
            s.record(f.latency, 0, 20);
            s.record(f.latency, 1, 5_000);
            s.add(f.requests, 0, 2);
            s.add(f.requests, 1, 7);
        });
        agg.tick(Duration::from_secs(1), &[]);
        let totals = agg.totals();
        let warm = totals.hist(f.latency, Some(0));
        let spike = totals.hist(f.latency, Some(1));
        assert_eq!((warm.len(), warm.min(), warm.max()), (2, 10, 20));
        assert_eq!((spike.len(), spike.min()), (1, 5_000));
        assert_eq!(totals.counter(f.requests, Some(0)), 2);
        assert_eq!(totals.counter(f.requests, Some(1)), 7);
        assert_eq!(totals.counter(f.requests, None), 9);
        // A phase the layout does not have holds nothing.
        assert_eq!(totals.hist(f.latency, Some(9)).len(), 0);
        assert_eq!(totals.counter(f.requests, Some(9)), 0);
    }

    #[test]
    fn counters_sum_by_metric_kind_and_tags() {
        let f = fixture();
        let mut agg = Aggregator::new(f.metrics.clone(), None, SystemTime::now());
        f.metrics.with(|s| {
            s.add(f.requests, 0, 100);
            s.add(f.timeouts, 0, 3);
            s.add(f.timeouts, 1, 4);
            s.add(f.http_5xx, 1, 5);
        });
        agg.tick(Duration::from_secs(1), &[]);
        let t = agg.totals();
        let all = TagFilter::default();
        assert_eq!(t.sum_counters("http.errors", None, &all), 12);
        assert_eq!(t.sum_counters("http.errors", Some("timeout"), &all), 7);
        assert_eq!(t.sum_counters("http.errors", Some("refused"), &all), 0);
        assert_eq!(
            t.select_counters("http.errors", Some("refused"), &all),
            None
        );
        let checkout = TagFilter {
            step: Some("checkout".into()),
            ..TagFilter::default()
        };
        assert_eq!(t.sum_counters("http.errors", None, &checkout), 5);
        let spike = TagFilter {
            phase: Some(1),
            ..TagFilter::default()
        };
        assert_eq!(t.sum_counters("http.errors", None, &spike), 9);
        assert_eq!(t.sum_counters("http.requests", None, &spike), 0);
        assert_eq!(t.select_counters("http.requests", None, &spike), Some(0));
        let nowhere = TagFilter {
            phase: Some(7),
            ..TagFilter::default()
        };
        assert_eq!(t.select_counters("http.requests", None, &nowhere), None);
    }

    #[test]
    fn select_hist_merges_matching_series() {
        let f = fixture();
        let mut agg = Aggregator::new(f.metrics.clone(), None, SystemTime::now());
        f.metrics.with(|s| {
            s.record(f.latency, 0, 100);
            s.record(f.checkout, 1, 300);
            s.record(f.checkout, 1, 400);
            s.record(f.service, 0, 50);
        });
        agg.tick(Duration::from_secs(1), &[]);
        let t = agg.totals();
        let all = TagFilter::default();
        assert_eq!(t.select_hist("http.latency", &all).unwrap().len(), 3);
        assert_eq!(t.select_hist("http.service_time", &all).unwrap().len(), 1);
        let checkout = TagFilter {
            step: Some("checkout".into()),
            ..all.clone()
        };
        assert_eq!(t.select_hist("http.latency", &checkout).unwrap().min(), 300);
        let warm_checkout = TagFilter {
            phase: Some(0),
            ..checkout.clone()
        };
        assert_eq!(
            t.select_hist("http.latency", &warm_checkout).unwrap().len(),
            0
        );
        let other_pop = TagFilter {
            population: Some("admin".into()),
            ..all.clone()
        };
        assert!(t.select_hist("http.latency", &other_pop).is_none());
        assert!(t.select_hist("hub.connect", &all).is_none());
        let nowhere = TagFilter {
            phase: Some(5),
            ..all
        };
        assert!(t.select_hist("http.latency", &nowhere).is_none());
    }

    #[test]
    fn values_above_the_range_are_clamped_not_dropped() {
        let f = fixture();
        let mut agg = Aggregator::new(f.metrics.clone(), None, SystemTime::now());
        f.metrics.with(|s| s.record(f.latency, 0, u64::MAX));
        agg.tick(Duration::from_secs(1), &[]);
        let h = agg.totals().hist(f.latency, None);
        assert_eq!(h.len(), 1);
        assert!(h.max() >= MAX_TRACKABLE_US && h.max() < MAX_TRACKABLE_US / 500 * 501);
    }

    #[test]
    fn each_interval_gets_its_own_point() {
        let f = fixture();
        let mut agg = Aggregator::new(f.metrics.clone(), None, SystemTime::now());
        for second in 1..=3u64 {
            for _ in 0..second {
                f.metrics.with(|s| {
                    s.record(f.latency, 0, second * 100);
                    s.add(f.requests, 0, 1);
                });
            }
            agg.tick(Duration::from_secs(second), &[second as f64]);
        }
        agg.tick(Duration::from_secs(4), &[]);
        let series = agg.totals().series();
        assert_eq!(series.len(), 4);
        let counts: Vec<u64> = series.iter().map(|p| p.hists[0].count).collect();
        assert_eq!(counts, vec![1, 2, 3, 0]);
        let p99: Vec<u64> = series.iter().map(|p| p.hists[0].p99).collect();
        assert_eq!(p99, vec![100, 200, 300, 0]);
        assert_eq!(series[2].counters[f.requests.0 as usize], 3);
        assert_eq!(series[3].counters[f.requests.0 as usize], 0);
        assert_eq!(series[3].gauges, vec![0.0]);
        assert_eq!(agg.totals().hist(f.latency, None).len(), 6);
    }

    #[test]
    fn the_window_holds_the_last_intervals_of_the_watched_series() {
        let f = fixture();
        let mut agg = Aggregator::new(f.metrics.clone(), None, SystemTime::now());
        agg.watch(&[f.latency, f.checkout], 2);
        assert_eq!(agg.window_quantile(0.5), None);
        // Interval 1: 100 (latency) and 900 (service: not watched).
        f.metrics.with(|s| {
            s.record(f.latency, 0, 100);
            s.record(f.service, 0, 900);
        });
        agg.tick(Duration::from_secs(1), &[]);
        assert_eq!(agg.window_quantile(1.0), Some(100));
        // Interval 2: 300 (checkout, watched too).
        f.metrics.with(|s| s.record(f.checkout, 1, 300));
        agg.tick(Duration::from_secs(2), &[]);
        assert_eq!(agg.window_quantile(1.0), Some(300));
        assert_eq!(agg.window_quantile(0.0), Some(100));
        // Intervals 3 and 4: 1 s each of nothing, then 200; interval 1 and 2 leave.
        agg.tick(Duration::from_secs(3), &[]);
        assert_eq!(agg.window_quantile(0.0), Some(300));
        f.metrics.with(|s| s.record(f.latency, 0, 200));
        agg.tick(Duration::from_secs(4), &[]);
        assert_eq!(agg.window_quantile(1.0), Some(200));
        agg.tick(Duration::from_secs(5), &[]);
        agg.tick(Duration::from_secs(6), &[]);
        assert_eq!(agg.window_quantile(0.5), None);
    }

    #[test]
    fn ticks_reuse_shards_and_prune_exited_threads() {
        let f = fixture();
        let mut agg = Aggregator::new(f.metrics.clone(), None, SystemTime::now());
        let workers = 3;
        let rounds = 50u64;
        // Long-lived workers: record, then wait for the tick, each round.
        let barrier = Arc::new(Barrier::new(workers + 1));
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    let (metrics, barrier, latency) = (&f.metrics, barrier.clone(), f.latency);
                    scope.spawn(move || {
                        for round in 0..rounds {
                            metrics.with(|s| s.record(latency, 0, 10 + round));
                            barrier.wait(); // recorded
                            barrier.wait(); // ticked
                        }
                    })
                })
                .collect();
            for round in 0..rounds {
                barrier.wait();
                let point = agg.tick(Duration::from_secs(round + 1), &[]);
                assert_eq!(point.hists[f.latency.0 as usize].count, workers as u64);
                assert_eq!(f.metrics.shard_count(), workers, "round {round}");
                barrier.wait();
            }
            // Joined explicitly: the end of a scope only waits for the
            // closures to return, not for the threads' thread-local
            // destructors (which hand the shards back); a join waits for
            // the thread to exit. Without it this test failed now and then.
            for handle in handles {
                handle.join().unwrap();
            }
        });
        // The workers are gone; one more tick collects and unregisters them.
        agg.tick(Duration::from_secs(rounds + 1), &[]);
        assert_eq!(f.metrics.shard_count(), 0);
        assert_eq!(
            agg.totals().hist(f.latency, None).len(),
            workers as u64 * rounds
        );
        assert_eq!(agg.totals().series().len(), rounds as usize + 1);
    }

    #[test]
    fn data_recorded_just_before_a_thread_exits_is_kept() {
        let f = fixture();
        let mut agg = Aggregator::new(f.metrics.clone(), None, SystemTime::now());
        for i in 0..20 {
            let metrics = f.metrics.clone();
            let latency = f.latency;
            std::thread::spawn(move || metrics.with(|s| s.record(latency, 0, 5)))
                .join()
                .unwrap();
            if i % 5 == 0 {
                agg.tick(Duration::from_secs(i), &[]);
            }
        }
        agg.tick(Duration::from_secs(30), &[]);
        assert_eq!(agg.totals().hist(f.latency, None).len(), 20);
        assert_eq!(f.metrics.shard_count(), 0);
    }

    #[test]
    fn harvested_histograms_are_recycled_not_reallocated() {
        let f = fixture();
        let mut agg = Aggregator::new(f.metrics.clone(), None, SystemTime::now());
        let index = f.latency.0 as usize;
        f.metrics.with(|s| s.record(f.latency, 0, 7));
        agg.tick(Duration::from_secs(1), &[]);
        // The first swap handed the thread the never-used spare ...
        assert!(f.metrics.with(|s| s.data.hists[index].is_none()));
        f.metrics.with(|s| s.record(f.latency, 0, 8));
        agg.tick(Duration::from_secs(2), &[]);
        // ... the second hands back the histogram harvested first, cleared.
        let recycled = f
            .metrics
            .with(|s| s.data.hists[index].as_ref().map(|h| h.len()));
        assert_eq!(recycled, Some(0));
        assert_eq!(agg.totals().hist(f.latency, None).len(), 2);
    }
}
