//! Whole-fleet measures that no sum of the segments' histograms gives,
//! recomputed from the raw records each segment keeps
//! (`engine::records`):
//!
//! - `hub.recovery`: the disruptions are grouped, scenario drops by
//!   ordinal (the same drop has the same ordinal in every segment), waves
//!   the segments detected by time ([`disruption_groups`]); `lost` is summed, every
//!   agent's `back_unix_us` sorted, and the drop is recovered when
//!   `need = ceil(recovered_fraction × lost)` agents are back: at
//!   `back[need − 1]`. The recovery time is that minus the earliest
//!   `at_unix_us`, recorded in the drop's phase; a drop not recovered counts
//!   one `hub.unrecovered` (in the last phase, as a run counts it at its
//!   end). A drop that took no agent records nothing.
//! - `hub.command.fanout`: per command sent by any segment, its receipts
//!   in *every* segment are summed and the last one is taken; fan-out = the
//!   last receipt − the send, recorded in the commander's series and the
//!   send's phase. A command with a known expectation and fewer receipts
//!   counts one `hub.command.undelivered`. Only when every segment kept a
//!   command log; else the segments' own figures are summed, with a note.
//!
//! Those and `hub.command.delivery` (a commander's send → an agent's
//! receipt, measured by the agent) subtract times taken by different
//! processes: when the segments ran on different hosts they include the
//! hosts' clock skew. [`skew_note`] says so, with the clock offsets the
//! segments measured against the hub and their spread, the bound on it.
//!
//! The recomputed series replace the segments' values of the same series
//! entirely ([`Recomputed`] says which), in the totals, the per-second
//! series and the merged `metrics.hlog`.

use super::inputs::Input;
use crate::engine::records::{ClockOffset, Disruption};
use crate::metrics::catalogue::{
    HUB_COMMAND_DELIVERY, HUB_COMMAND_FANOUT, HUB_RECOVERY, UNRECOVERED,
};
use crate::metrics::{CounterId, HistId, Layout};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

/// `hub.command.undelivered`.
const UNDELIVERED: &str = "hub.command.undelivered";

/// One recomputed histogram sample.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sample {
    pub id: HistId,
    pub phase: usize,
    pub value_us: u64,
    /// When it was measured (places it in the per-second series).
    pub at_unix_us: u64,
}

/// One recomputed counter increment, counted at the end of the run.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Count {
    pub id: CounterId,
    pub phase: usize,
    pub n: u64,
}

/// The series whose merged values come from the records, and those values.
#[derive(Debug, Default)]
pub(super) struct Recomputed {
    /// Histogram series (indices) taken from `samples` only.
    pub hists: HashSet<usize>,
    /// Counter series (indices) taken from `counts` only.
    pub counters: HashSet<usize>,
    pub samples: Vec<Sample>,
    pub counts: Vec<Count>,
    /// For the reader: what could not be recomputed, and why.
    pub notes: Vec<String>,
}

fn hist_ids(layout: &Layout, metric: &str) -> Vec<usize> {
    (layout.hists.iter().enumerate())
        .filter(|(_, d)| d.metric == metric)
        .map(|(i, _)| i)
        .collect()
}

fn counter_ids(layout: &Layout, metric: &str) -> Vec<usize> {
    (layout.counters.iter().enumerate())
        .filter(|(_, d)| d.metric == metric)
        .map(|(i, _)| i)
        .collect()
}

/// Recompute what the records allow (see the module docs).
pub(super) fn recompute(inputs: &[Input], layout: &Layout) -> Recomputed {
    let mut out = Recomputed::default();
    // `http.recovery` is judged again on the merged per-second series
    // (see `merged_summary`): no segment's own figures are kept.
    out.hists
        .extend(hist_ids(layout, crate::metrics::catalogue::HTTP_RECOVERY));
    out.counters
        .extend(counter_ids(layout, crate::slo::recovery::HTTP_UNRECOVERED));
    recovery(inputs, layout, &mut out);
    fanout(inputs, layout, &mut out);
    out
}

fn recovery(inputs: &[Input], layout: &Layout, out: &mut Recomputed) {
    let recovery = hist_ids(layout, HUB_RECOVERY);
    let unrecovered = counter_ids(layout, UNRECOVERED);
    let (Some(&hist), Some(&counter)) = (recovery.first(), unrecovered.first()) else {
        return;
    };
    if inputs.iter().all(|i| i.summary.disruptions.is_empty()) {
        // No records: a run without drops, or segments from a stampede that
        // kept none. The latter recorded hub.recovery per segment.
        let measured = inputs.iter().any(|i| {
            i.summary
                .histograms
                .iter()
                .any(|h| h.id as usize == hist && h.count > 0)
        });
        if measured {
            out.notes.push(
                "hub.recovery is each segment's own (its share of the fleet), summed: the \
                 segments kept no disruption records to measure the whole fleet with"
                    .into(),
            );
        }
        return;
    }
    out.hists.insert(hist);
    out.counters.insert(counter);
    let last_phase = layout.phases.len().saturating_sub(1);
    for parts in &disruption_groups(inputs) {
        let lost: u64 = parts.iter().map(|d| d.lost).sum();
        if lost == 0 {
            continue;
        }
        let fraction = parts[0].recovered_fraction;
        let at = parts.iter().map(|d| d.at_unix_us).min().unwrap_or(0);
        let mut back: Vec<u64> = parts
            .iter()
            .flat_map(|d| d.back_unix_us.iter().copied())
            .collect();
        back.sort_unstable();
        let need = ((fraction * lost as f64).ceil() as u64).clamp(1, lost) as usize;
        match back.get(need - 1) {
            Some(&when) => out.samples.push(Sample {
                id: HistId(hist as u32),
                phase: layout.phase_index(&parts[0].phase).unwrap_or(last_phase),
                value_us: when.saturating_sub(at),
                at_unix_us: when,
            }),
            None => out.counts.push(Count {
                id: CounterId(counter as u32),
                phase: last_phase,
                n: 1,
            }),
        }
    }
}

/// Two segments' detected waves this close together are one event.
const COALESCE_US: u64 = 5_000_000;

/// The segments' disruptions, one group per real event: scenario drops
/// (`drop`, `server`) by ordinal (every segment plays every drop); waves
/// the segments detected (`detected`, `action`) by time, a segment's wave
/// joining a group that started at most 5 s before it (each segment
/// detects its own share of one crash a few milliseconds apart).
pub(super) fn disruption_groups(inputs: &[Input]) -> Vec<Vec<&Disruption>> {
    let mut by_ordinal: BTreeMap<u32, Vec<&Disruption>> = BTreeMap::new();
    let mut waves: Vec<&Disruption> = Vec::new();
    for d in inputs.iter().flat_map(|i| &i.summary.disruptions) {
        if matches!(d.cause.as_str(), "detected" | "action") {
            waves.push(d);
        } else {
            by_ordinal.entry(d.ordinal).or_default().push(d);
        }
    }
    let mut groups: Vec<Vec<&Disruption>> = by_ordinal.into_values().collect();
    waves.sort_by_key(|d| d.at_unix_us);
    let mut current: Vec<&Disruption> = Vec::new();
    for d in waves {
        if current
            .first()
            .is_some_and(|first| d.at_unix_us > first.at_unix_us + COALESCE_US)
        {
            groups.push(std::mem::take(&mut current));
        }
        current.push(d);
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

fn fanout(inputs: &[Input], layout: &Layout, out: &mut Recomputed) {
    let fanout = hist_ids(layout, HUB_COMMAND_FANOUT);
    if fanout.is_empty() {
        return;
    }
    let logs: Vec<_> = inputs
        .iter()
        .filter_map(|i| i.summary.commands.as_ref())
        .collect();
    if logs.len() < inputs.len() {
        if !logs.is_empty() {
            let without: Vec<String> = (inputs.iter())
                .filter(|i| i.summary.commands.is_none())
                .map(|i| i.segment.to_string())
                .collect();
            out.notes.push(format!(
                "hub.command.fanout and hub.command.undelivered are each segment's own, summed: \
                 segment {} kept no command log, so commands cannot be followed across segments",
                without.join(", ")
            ));
        }
        return;
    }
    let undelivered = counter_ids(layout, UNDELIVERED);
    out.hists.extend(&fanout);
    out.counters.extend(&undelivered);
    let find = |ids: &[usize], population: &str, descs: &[crate::metrics::SeriesDesc]| {
        ids.iter()
            .copied()
            .find(|&i| descs[i].population == population)
    };
    // Every receipt of each command, in any segment.
    let mut received: HashMap<&str, (u64, u64)> = HashMap::new();
    for log in &logs {
        for r in &log.received {
            let entry = received.entry(r.id.as_str()).or_default();
            entry.0 += r.count;
            entry.1 = entry.1.max(r.last_unix_us);
        }
    }
    let mut unknown = std::collections::BTreeSet::new();
    for sent in logs.iter().flat_map(|log| &log.sent) {
        let phase = layout.phase_index(&sent.phase).unwrap_or(0);
        let (count, last) = received.get(sent.id.as_str()).copied().unwrap_or((0, 0));
        let Some(hist) = find(&fanout, &sent.commander, &layout.hists) else {
            unknown.insert(sent.commander.clone());
            continue;
        };
        if count > 0 {
            out.samples.push(Sample {
                id: HistId(hist as u32),
                phase,
                value_us: last.saturating_sub(sent.sent_unix_us),
                at_unix_us: last,
            });
        }
        if sent.expected.is_some_and(|e| count < e) {
            if let Some(counter) = find(&undelivered, &sent.commander, &layout.counters) {
                out.counts.push(Count {
                    id: CounterId(counter as u32),
                    phase,
                    n: 1,
                });
            }
        }
    }
    if !unknown.is_empty() {
        out.notes.push(format!(
            "commands of commander {} are in the command logs but not in the layout; left out",
            unknown.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
}

/// The note of a merge whose segments ran on `hosts` (more than one):
/// which latencies include the hosts' clock skew, each segment's clock
/// offset against the hub (`meta.clock`) and their spread, max − min
/// offset, ± the uncertainties of those two: the bound on the skew in
/// those latencies (when all were measured against one hub). A segment
/// without an offset is named as not measured.
pub(super) fn skew_note(inputs: &[Input], hosts: &[&str]) -> String {
    let mut note = format!(
        "the segments ran on {} hosts ({}): cross-segment latencies ({HUB_COMMAND_DELIVERY}, \
         {HUB_COMMAND_FANOUT}, {HUB_RECOVERY}) include the hosts' clock skew, and the per-second \
         series are aligned on their clocks; ",
        hosts.len(),
        hosts.join(", ")
    );
    let measured: Vec<(&Input, &ClockOffset)> = (inputs.iter())
        .filter_map(|i| Some((i, i.summary.meta.clock.as_ref()?)))
        .collect();
    if measured.is_empty() {
        note.push_str("clock skew not measured: the hub's heartbeat acks carry no `ts`");
        return note;
    }
    let offsets: Vec<String> = (measured.iter())
        .map(|(i, c)| format!("{} {} {}", i.segment, i.summary.meta.host, c.text()))
        .collect();
    let _ = write!(
        note,
        "clock offsets against the hub: {}",
        offsets.join(", ")
    );
    let unmeasured: Vec<String> = (inputs.iter())
        .filter(|i| i.summary.meta.clock.is_none())
        .map(|i| i.segment.to_string())
        .collect();
    if !unmeasured.is_empty() {
        let _ = write!(
            note,
            "; segment {} not measured (no `ts` in the hub's heartbeat acks)",
            unmeasured.join(", ")
        );
    }
    let by_offset = |a: &&(&Input, &ClockOffset), b: &&(&Input, &ClockOffset)| {
        a.1.offset_ms.total_cmp(&b.1.offset_ms)
    };
    let (Some(low), Some(high)) = (
        measured.iter().min_by(by_offset),
        measured.iter().max_by(by_offset),
    ) else {
        return note;
    };
    let mut hubs: Vec<&str> = measured.iter().map(|(_, c)| c.against.as_str()).collect();
    hubs.sort_unstable();
    hubs.dedup();
    if hubs.len() > 1 {
        // Offsets against different clocks do not bound the skew.
        let _ = write!(
            note,
            "; measured against different hubs ({}), so their spread is no bound on the skew",
            hubs.join(", ")
        );
    } else if measured.len() > 1 {
        let spread = high.1.offset_ms - low.1.offset_ms;
        let uncertainty = high.1.uncertainty_ms + low.1.uncertainty_ms;
        let _ = write!(
            note,
            "; spread (max − min offset) {spread:.3} ms ±{uncertainty:.3} ms: the skew in those \
             latencies is at most {:.3} ms{}",
            spread + uncertainty,
            if unmeasured.is_empty() {
                ""
            } else {
                " between the segments measured"
            }
        );
    }
    note
}
