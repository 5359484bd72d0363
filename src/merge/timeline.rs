//! The merged per-second series and `metrics.hlog`, aligned on wall-clock
//! seconds.
//!
//! Segment j started `offset_j` = its `started_at` − the earliest
//! `started_at` after the first segment; its point at `elapsed_s` lands at
//! merged second `round(offset_j + elapsed_s)`, and so does each interval of
//! its `metrics.hlog` (the interval ending at that point). Per merged
//! second:
//!
//! - counters are summed (a segment's points that land on one second are
//!   added); gauges are summed over the segments running then, each with its
//!   latest value at that second (a second a segment skipped by rounding
//!   keeps its previous value; before its first point or after its last it
//!   adds nothing);
//! - histogram stats (count, p50, p95, p99, max) are those of the sum of
//!   the segments' interval histograms of that second, exactly, when every
//!   segment that recorded samples then has them in its `metrics.hlog`
//!   (same count as its series says). Otherwise the count is the sum and
//!   the max the maximum, both exact, and each percentile is the highest
//!   segment's: an upper bound, as a quantile of a sum never exceeds the
//!   largest of the parts' quantiles. A note says which segments.
//! - the recomputed series ([`super::fleet`]) take their samples at the
//!   second they were measured (clamped into the run), counts at the last.
//!
//! Seconds no segment has a point for, between the first and the last, are
//! filled (zero counts). The merged log has one interval per second, ending
//! at it, with the summed histogram of each series.
//!
//! Logs are read one interval at a time, all segments in step, so memory
//! holds one second's histograms whatever the run's length.

use super::fleet::Recomputed;
use super::inputs::Input;
use crate::error::CommandError;
use crate::metrics::{
    hlog_tag, new_histogram, HlogInterval, HlogReader, HlogWriter, IntervalStats, Layout, Point,
};
use chrono::{DateTime, Utc};
use hdrhistogram::Histogram;
use std::collections::HashMap;
use std::io::Write;
use std::iter::Peekable;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The merged series and log.
pub(super) struct Timeline {
    pub points: Vec<Point>,
    /// The merged `metrics.hlog`.
    pub hlog: Vec<u8>,
    pub notes: Vec<String>,
}

/// One segment's points, placed on the merged timeline.
struct Placed {
    /// Seconds since the segment's start, of each point, ascending.
    elapsed: Vec<f64>,
    /// The merged second of each point.
    second: Vec<i64>,
    offset_s: f64,
}

impl Placed {
    fn new(input: &Input, earliest: DateTime<Utc>) -> Placed {
        let offset_s = (input.started_at - earliest)
            .to_std()
            .unwrap_or_default()
            .as_secs_f64();
        let elapsed: Vec<f64> = input.summary.series.iter().map(|p| p.elapsed_s).collect();
        let second = elapsed.iter().map(|e| place(offset_s + e)).collect();
        Placed {
            elapsed,
            second,
            offset_s,
        }
    }

    /// The merged second of a log interval ending at `end`: that of the
    /// point it belongs to (the log keeps milliseconds), else by rounding.
    fn second_of(&self, end: Duration) -> i64 {
        let end = end.as_secs_f64();
        let i = self.elapsed.partition_point(|&e| e < end - 0.002);
        match self.elapsed.get(i) {
            Some(&e) if (e - end).abs() <= 0.002 => self.second[i],
            _ => place(self.offset_s + end),
        }
    }
}

fn place(seconds: f64) -> i64 {
    seconds.round().max(0.0) as i64
}

/// A `Write` the merged log goes to, read back when done.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("not poisoned").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A segment's log, read in step with the others.
struct LogCursor<'a> {
    input: usize,
    intervals: Peekable<HlogReader<'a>>,
    /// Samples per series its log had in the current second.
    counts: Vec<u64>,
}

/// Build the merged series and log (see the module docs).
pub(super) fn merge(
    inputs: &[Input],
    layout: &Layout,
    earliest: DateTime<Utc>,
    recomputed: &Recomputed,
) -> Result<Timeline, CommandError> {
    let n_hists = layout.hists.len();
    let placed: Vec<Placed> = inputs.iter().map(|i| Placed::new(i, earliest)).collect();
    let buffer = Buffer::default();
    let started = std::time::SystemTime::from(earliest);
    let mut writer = HlogWriter::new(Box::new(buffer.clone()), started, &layout.hists);
    let Some((first, last)) = span(&placed) else {
        writer.finish().map_err(anyhow::Error::from)?;
        return Ok(Timeline {
            points: Vec::new(),
            hlog: take(&buffer),
            notes: Vec::new(),
        });
    };
    let len = (last - first + 1) as usize;
    let mut points: Vec<Point> = (0..len)
        .map(|k| Point {
            elapsed_s: (first + k as i64) as f64,
            hists: vec![IntervalStats::default(); n_hists],
            counters: vec![0; layout.counters.len()],
            gauges: vec![0.0; layout.gauges.len()],
        })
        .collect();
    // Per segment, per merged second: its samples per series (to check its
    // log against).
    let mut counts: Vec<Vec<Vec<u64>>> = vec![Vec::new(); inputs.len()];
    for (j, (input, place)) in inputs.iter().zip(&placed).enumerate() {
        counts[j] = vec![vec![0; n_hists]; len];
        add_points(input, place, first, &mut points, &mut counts[j], recomputed);
        add_gauges(input, place, first, &mut points);
    }
    let tag_ids: HashMap<String, usize> = (layout.hists.iter().enumerate())
        .rev()
        .map(|(i, d)| (hlog_tag(d), i))
        .collect();
    let mut cursors: Vec<LogCursor<'_>> = (inputs.iter().enumerate())
        .filter_map(|(j, i)| {
            i.hlog.as_deref().map(|bytes| LogCursor {
                input: j,
                intervals: HlogReader::new(bytes).peekable(),
                counts: vec![0; n_hists],
            })
        })
        .collect();
    let mut recomputed_at: HashMap<i64, Vec<&super::fleet::Sample>> = HashMap::new();
    for sample in &recomputed.samples {
        let at = Duration::from_micros(sample.at_unix_us);
        let since = at
            .checked_sub(
                started
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default(),
            )
            .unwrap_or_default();
        let second = place(since.as_secs_f64()).clamp(first, last);
        recomputed_at.entry(second).or_default().push(sample);
    }
    // Per segment: seconds whose stats could not be exact.
    let mut inexact: Vec<usize> = vec![0; inputs.len()];
    let mut previous_end = first.saturating_sub(1).max(0);
    for (k, point) in points.iter_mut().enumerate() {
        let second = first + k as i64;
        let mut sums: Vec<Option<Histogram<u64>>> = vec![None; n_hists];
        for cursor in &mut cursors {
            cursor.counts.iter_mut().for_each(|c| *c = 0);
            let place = &placed[cursor.input];
            while let Some(next) = cursor.intervals.peek() {
                let due = match next {
                    Ok(interval) => place.second_of(interval.start + interval.length) <= second,
                    Err(_) => true,
                };
                if !due {
                    break;
                }
                let interval = cursor
                    .intervals
                    .next()
                    .expect("peeked")
                    .map_err(|e| corrupt(&inputs[cursor.input], e))?;
                let HlogInterval { tag, histogram, .. } = interval;
                let Some(&id) = tag_ids.get(&tag) else {
                    continue;
                };
                if recomputed.hists.contains(&id) {
                    continue;
                }
                cursor.counts[id] += histogram.len();
                crate::metrics::merge_into(sums[id].get_or_insert_with(new_histogram), &histogram);
            }
        }
        for id in 0..n_hists {
            if recomputed.hists.contains(&id) {
                continue;
            }
            // Exact when every segment's log has what its series counted.
            let mut exact = true;
            for (j, segment_counts) in counts.iter().enumerate() {
                let logged = cursors
                    .iter()
                    .find(|c| c.input == j)
                    .map_or(0, |c| c.counts[id]);
                if segment_counts[k][id] != logged {
                    exact = false;
                    inexact[j] += 1;
                }
            }
            if exact {
                point.hists[id] = sums[id]
                    .as_ref()
                    .map_or_else(IntervalStats::default, IntervalStats::of);
            }
        }
        for sample in recomputed_at.get(&second).into_iter().flatten() {
            let h = sums[sample.id.0 as usize].get_or_insert_with(new_histogram);
            h.saturating_record(sample.value_us);
        }
        for &id in &recomputed.hists {
            point.hists[id] = sums[id]
                .as_ref()
                .map_or_else(IntervalStats::default, IntervalStats::of);
        }
        let start = Duration::from_secs(previous_end as u64);
        let end = Duration::from_secs(second as u64);
        writer.write_interval(start, end.saturating_sub(start), &sums);
        previous_end = second;
    }
    // Recomputed counts: at the run's end, as a run counts them.
    if let Some(point) = points.last_mut() {
        for &id in &recomputed.counters {
            point.counters[id] = 0;
        }
        for count in &recomputed.counts {
            point.counters[count.id.0 as usize] += count.n;
        }
    }
    writer.finish().map_err(anyhow::Error::from)?;
    let mut notes = Vec::new();
    let without: Vec<String> = (inputs.iter().zip(&inexact))
        .filter(|(_, &n)| n > 0)
        .map(|(i, _)| {
            if i.hlog.is_some() {
                format!("{} (its metrics.hlog disagrees with its series)", i.segment)
            } else {
                format!("{} (no metrics.hlog)", i.segment)
            }
        })
        .collect();
    if !without.is_empty() {
        notes.push(format!(
            "per-second p50/p95/p99 of the series are upper bounds (the highest segment's), not \
             exact, where segment {} recorded samples; per-second counts and maxima are exact, \
             and so are the run's histograms",
            without.join(", ")
        ));
    }
    Ok(Timeline {
        points,
        hlog: take(&buffer),
        notes,
    })
}

fn take(buffer: &Buffer) -> Vec<u8> {
    std::mem::take(&mut *buffer.0.lock().expect("not poisoned"))
}

fn corrupt(input: &Input, e: crate::metrics::HlogReadError) -> CommandError {
    CommandError::BadInput(format!(
        "{}: corrupt: {e}; remove it to merge without it (per-second percentiles then become \
         upper bounds)",
        input.dir.join(crate::report::rebuild::HLOG_FILE).display()
    ))
}

/// The first and last merged seconds any segment has a point at.
fn span(placed: &[Placed]) -> Option<(i64, i64)> {
    let seconds = placed.iter().flat_map(|p| p.second.iter().copied());
    let (min, max) = seconds.fold((i64::MAX, i64::MIN), |(lo, hi), s| (lo.min(s), hi.max(s)));
    (min <= max).then_some((min, max))
}

/// Counters summed; histogram stats as the approximation (count summed,
/// max and percentiles the highest), replaced where the logs are exact.
fn add_points(
    input: &Input,
    place: &Placed,
    first: i64,
    points: &mut [Point],
    counts: &mut [Vec<u64>],
    recomputed: &Recomputed,
) {
    for (p, &second) in input.summary.series.iter().zip(&place.second) {
        let k = (second - first) as usize;
        let merged = &mut points[k];
        for (id, (sum, n)) in merged.counters.iter_mut().zip(&p.counters).enumerate() {
            if !recomputed.counters.contains(&id) {
                *sum += n;
            }
        }
        for (id, (sum, s)) in merged.hists.iter_mut().zip(&p.hists).enumerate() {
            if s.count == 0 || recomputed.hists.contains(&id) {
                continue;
            }
            counts[k][id] += s.count;
            sum.count += s.count;
            sum.p50 = sum.p50.max(s.p50);
            sum.p95 = sum.p95.max(s.p95);
            sum.p99 = sum.p99.max(s.p99);
            sum.max = sum.max.max(s.max);
        }
    }
}

/// Each segment's latest gauges at each second it ran, added.
fn add_gauges(input: &Input, place: &Placed, first: i64, points: &mut [Point]) {
    let series = &input.summary.series;
    let (Some(&start), Some(&end)) = (place.second.first(), place.second.last()) else {
        return;
    };
    let mut next = 0;
    let mut current: Option<&[f64]> = None;
    for second in start..=end {
        while next < series.len() && place.second[next] <= second {
            current = Some(&series[next].gauges);
            next += 1;
        }
        if let Some(values) = current {
            let point = &mut points[(second - first) as usize];
            for (sum, v) in point.gauges.iter_mut().zip(values) {
                *sum += v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::{summary_with, SummaryOptions};
    use std::path::PathBuf;

    /// A segment of the fixture run (4 points at 1..4 s: 100 requests
    /// each, gauge 0, 0.25, 0.5, 0.75), started `offset_ms` after 10:00:00.
    fn input(index: u32, offset_ms: i64) -> Input {
        let summary = summary_with(SummaryOptions::default());
        let start = DateTime::parse_from_rfc3339("2024-11-29T10:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        Input {
            dir: PathBuf::from(format!("seg-{index}")),
            summary,
            segment: crate::plan::Segment { index, count: 2 },
            started_at: start + chrono::Duration::milliseconds(offset_ms),
            hlog: None,
        }
    }

    fn merged(inputs: &[Input]) -> Timeline {
        let layout = inputs[0].summary.layout.clone();
        let earliest = inputs.iter().map(|i| i.started_at).min().unwrap();
        merge(inputs, &layout, earliest, &Recomputed::default()).unwrap()
    }

    #[test]
    fn points_land_on_the_wall_clock_second_of_their_segment() {
        // Segment 1 started 1.5 s later: its points at 1..4 s land on
        // round(2.5..5.5) = 3..6.
        let timeline = merged(&[input(0, 0), input(1, 1_500)]);
        let seconds: Vec<f64> = timeline.points.iter().map(|p| p.elapsed_s).collect();
        assert_eq!(seconds, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let requests: Vec<u64> = timeline.points.iter().map(|p| p.counters[0]).collect();
        assert_eq!(requests, vec![100, 100, 200, 200, 100, 100]);
        let cpu: Vec<f64> = timeline.points.iter().map(|p| p.gauges[0]).collect();
        assert_eq!(cpu, vec![0.0, 0.25, 0.5, 1.0, 0.5, 0.75]);
        // Without logs: counts summed and maxima exact, percentiles the
        // highest segment's, said in a note.
        let at3 = timeline.points[2].hists[0];
        assert_eq!(at3.count, 200);
        let (warm, spike) = (
            input(0, 0).summary.series[0].hists[0],
            input(0, 0).summary.series[2].hists[0],
        );
        assert_eq!((at3.p50, at3.max), (warm.p50.max(spike.p50), spike.max));
        assert_eq!(timeline.notes.len(), 1);
        assert!(
            timeline.notes[0].contains("upper bounds"),
            "{:?}",
            timeline.notes
        );
        assert!(timeline.notes[0].contains("0/2 (no metrics.hlog), 1/2 (no metrics.hlog)"));
    }

    #[test]
    fn a_second_skipped_by_rounding_is_filled_and_gauges_carry_over() {
        let mut only = input(0, 0);
        only.summary.series[2].elapsed_s = 3.6; // lands on 4, like the next
        let timeline = merged(&[only]);
        let requests: Vec<u64> = timeline.points.iter().map(|p| p.counters[0]).collect();
        assert_eq!(requests, vec![100, 100, 0, 200]);
        let cpu: Vec<f64> = timeline.points.iter().map(|p| p.gauges[0]).collect();
        assert_eq!(
            cpu,
            vec![0.0, 0.25, 0.25, 0.75],
            "second 3 keeps second 2's value"
        );
        assert_eq!(timeline.points[2].hists[0].count, 0);
    }
}
