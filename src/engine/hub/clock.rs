//! This process's clock offset against the hub, measured NTP-style from
//! the acks of the agents' periodic messages (heartbeat, status) when they
//! carry the hub's wall time: `ts`, Unix milliseconds (the built-in hub's
//! heartbeat ack does; a hub whose acks have none gives no measurement,
//! which is not an error).
//!
//! Why: a split run's cross-segment latencies (command delivery and
//! fan-out, whole-fleet recovery) subtract times taken on different
//! hosts, so they include the hosts' clock skew. Every segment measuring
//! its offset against the one hub they share bounds that skew (the merge
//! reports it, see `merge`).
//!
//! # The estimate
//! For one ack: t1 = this process's clock when the message was sent, t4 =
//! when its ack arrived, both [`super::unix_us_now`] (the very clock that
//! stamps command sends, receipts and drops, so the offset is that
//! clock's). Then `offset = ts − (t1 + t4) / 2` and `rtt = t4 − t1`. The
//! hub took `ts` somewhere between t1 and t4, so the true offset is within
//! `rtt / 2` of the estimate, plus the resolution of `ts` (1 ms when every
//! `ts` seen was a whole number, else 1 µs). The estimate is the offset of
//! the sample with the smallest RTT (NTP's clock filter): the tightest of
//! those bounds, `± (min rtt / 2 + resolution)`. Queueing in the hub or
//! the network makes RTTs larger and the split of a round trip asymmetric;
//! the fastest round trip is the one least affected by either.
//!
//! Offsets are positive when the hub's clock is ahead of this process's.
//! A `ts` more than [`IMPLAUSIBLE_MS`] away from this clock is not Unix
//! milliseconds (Unix seconds or µs are some 1.7 × 10¹² ms away): such
//! acks are no samples.
//!
//! # Cost
//! 50,000 agents heartbeat, so the hot path takes no lock: each agent
//! keeps its own best sample and count in a [`Sampler`] (a few words on
//! its stack) and folds it into the fleet's sampler when a session ends
//! (one lock per session, not per ack). The fold keeps the best sample and
//! adds the counts; [`Sampler::estimate`] turns it into the
//! [`ClockOffset`] of the run's records.

use crate::engine::records::ClockOffset;
use serde_json::Value;

/// Offsets beyond this (30 days, ms) mean `ts` is not Unix milliseconds.
pub const IMPLAUSIBLE_MS: f64 = 30.0 * 86_400_000.0;

/// One ack with the hub's time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// t4 − t1, µs.
    pub rtt_us: u64,
    /// ts − (t1 + t4) / 2, µs (the hub's clock minus ours).
    pub offset_us: f64,
}

impl Sample {
    /// A sample from the send time `t1_us`, the ack's arrival `t4_us` (µs
    /// since the Unix epoch, this process's clock) and the hub's `ts_ms`
    /// (Unix ms). None when t4 is before t1 (cannot happen with one
    /// monotonic clock), `ts` is not a finite number, or the offset is
    /// implausible ([`IMPLAUSIBLE_MS`]).
    pub fn new(t1_us: u64, t4_us: u64, ts_ms: f64) -> Option<Sample> {
        if t4_us < t1_us || !ts_ms.is_finite() {
            return None;
        }
        // Whole µs: ts is ~1.7e12 ms, so µs still fit an f64 exactly.
        let ts_us = ts_ms * 1000.0;
        let midpoint = t1_us as f64 + (t4_us - t1_us) as f64 / 2.0;
        let offset_us = ts_us - midpoint;
        (offset_us.abs() <= IMPLAUSIBLE_MS * 1000.0).then_some(Sample {
            rtt_us: t4_us - t1_us,
            offset_us,
        })
    }
}

/// The hub's time in an ack: a numeric `ts` field (Unix ms; fractional ms
/// allowed).
pub fn ack_ts(ack: &Value) -> Option<f64> {
    ack.get("ts").and_then(Value::as_f64)
}

/// The best sample (smallest RTT) of some acks, and how many there were.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sampler {
    best: Option<Sample>,
    /// Acks with a `ts`.
    samples: u64,
    /// Some `ts` had a fractional part: its resolution is finer than 1 ms.
    fractional: bool,
}

impl Sampler {
    /// Take one ack: sent at `t1_us`, answered at `t4_us` with `ts_ms`.
    pub fn add(&mut self, t1_us: u64, t4_us: u64, ts_ms: f64) {
        let Some(sample) = Sample::new(t1_us, t4_us, ts_ms) else {
            return;
        };
        self.samples += 1;
        self.fractional |= ts_ms.fract() != 0.0;
        // Ties keep the earlier sample.
        if self.best.is_none_or(|b| sample.rtt_us < b.rtt_us) {
            self.best = Some(sample);
        }
    }

    /// Fold `other`'s samples into these (and leave `other` empty).
    pub fn fold(&mut self, other: &mut Sampler) {
        let other = std::mem::take(other);
        self.samples += other.samples;
        self.fractional |= other.fractional;
        if let Some(b) = other.best {
            if self.best.is_none_or(|mine| b.rtt_us < mine.rtt_us) {
                self.best = Some(b);
            }
        }
    }

    /// Acks taken so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The offset against the hub at `against`; None without a sample.
    pub fn estimate(&self, against: &str) -> Option<ClockOffset> {
        let best = self.best?;
        let resolution_ms = if self.fractional { 0.001 } else { 1.0 };
        let rtt_min_ms = best.rtt_us as f64 / 1000.0;
        Some(ClockOffset {
            offset_ms: best.offset_us / 1000.0,
            uncertainty_ms: rtt_min_ms / 2.0 + resolution_ms,
            rtt_min_ms,
            samples: self.samples,
            against: against.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-01-01T00:00:00Z in µs.
    const T0: u64 = 1_767_225_600_000_000;

    /// An ack to a message sent at `T0 + t1` (µs) that took `up` µs to
    /// reach the hub, whose clock is `offset` µs ahead of ours, and `down`
    /// µs to come back: (t1, t4, ts in ms as the hub would send it, with
    /// µs precision).
    fn ack(t1: u64, up: u64, down: u64, offset: i64) -> (u64, u64, f64) {
        let hub_us = (T0 + t1 + up) as i64 + offset;
        (T0 + t1, T0 + t1 + up + down, hub_us as f64 / 1000.0)
    }

    /// Equal to a nanosecond (`ts` in ms as an f64 is not exact in µs).
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-6
    }

    fn sampler(acks: &[(u64, u64, f64)]) -> Sampler {
        let mut s = Sampler::default();
        for &(t1, t4, ts) in acks {
            s.add(t1, t4, ts);
        }
        s
    }

    #[test]
    fn no_samples_no_estimate() {
        assert_eq!(Sampler::default().estimate("hub"), None);
        // Not a number, or an ack before its send: ignored.
        let mut s = Sampler::default();
        s.add(T0 + 10, T0 + 20, f64::NAN);
        s.add(T0 + 30, T0 + 20, 1.0);
        assert_eq!(s.samples(), 0);
        assert_eq!(s.estimate("hub"), None);
    }

    #[test]
    fn a_ts_in_seconds_or_microseconds_is_no_sample() {
        let mut s = Sampler::default();
        s.add(T0, T0 + 100, (T0 / 1_000_000) as f64);
        s.add(T0, T0 + 100, T0 as f64);
        assert_eq!((s.samples(), s.estimate("hub")), (0, None));
        // A clock a day off is a clock a day off.
        s.add(T0, T0 + 100, (T0 / 1000 + 86_400_000) as f64);
        assert_eq!(s.samples(), 1);
        let e = s.estimate("hub").unwrap();
        assert!(close(e.offset_ms, 86_400_000.0 - 0.05), "{e:?}");
    }

    #[test]
    fn the_sample_with_the_smallest_rtt_gives_the_offset() {
        // The hub is 2.5 ms ahead. A slow round trip with a late reply
        // (asymmetric: 9 ms up, 1 ms down) misleads by 4 ms; the fastest
        // (300 µs, symmetric) is right.
        let s = sampler(&[
            ack(0, 9_000, 1_000, 2_500),
            ack(1_000_000, 150, 150, 2_500),
            ack(2_000_000, 2_000, 2_000, 2_500),
        ]);
        let e = s.estimate("http://hub:80").unwrap();
        assert!(close(e.offset_ms, 2.5), "{e:?}");
        assert_eq!(e.rtt_min_ms, 0.3);
        assert_eq!(e.samples, 3);
        // µs-precise ts: the resolution is 1 µs.
        assert!(close(e.uncertainty_ms, 0.151), "{e:?}");
        assert_eq!(e.against, "http://hub:80");
    }

    #[test]
    fn an_asymmetric_fastest_trip_is_wrong_by_at_most_half_its_rtt() {
        // The hub is 1 ms behind; the only trip spends 800 µs going, 200
        // coming back: the estimate is off by 300 µs, within ±rtt/2.
        let s = sampler(&[ack(0, 800, 200, -1_000)]);
        let e = s.estimate("hub").unwrap();
        assert!(close(e.offset_ms, -0.7), "{e:?}");
        assert!((e.offset_ms - -1.0).abs() <= e.uncertainty_ms);
        assert_eq!(e.rtt_min_ms, 1.0);
    }

    #[test]
    fn whole_millisecond_ts_adds_a_millisecond_of_uncertainty() {
        // A hub that sends whole ms (the built-in one): ts is truncated.
        let mut s = Sampler::default();
        s.add(T0 + 100, T0 + 500, ((T0 + 300) / 1000) as f64);
        let e = s.estimate("hub").unwrap();
        assert!(close(e.offset_ms, -0.3), "{e:?}");
        assert_eq!(e.uncertainty_ms, 0.2 + 1.0);
    }

    #[test]
    fn folding_keeps_the_best_sample_and_adds_the_counts() {
        let mut fleet = Sampler::default();
        let mut a = sampler(&[ack(0, 500, 500, 100), ack(10, 400, 400, 100)]);
        let mut b = sampler(&[ack(20, 50, 50, 100)]);
        fleet.fold(&mut a);
        fleet.fold(&mut b);
        assert_eq!(a, Sampler::default(), "folding empties the agent's sampler");
        let e = fleet.estimate("hub").unwrap();
        assert_eq!((e.samples, e.rtt_min_ms), (3, 0.1));
        assert!(close(e.offset_ms, 0.1), "{e:?}");
        // Folding an empty sampler changes nothing.
        let before = fleet;
        fleet.fold(&mut Sampler::default());
        assert_eq!(fleet, before);
    }

    #[test]
    fn ts_is_read_as_a_number_whole_or_fractional() {
        use serde_json::json;
        assert_eq!(
            ack_ts(&json!({"ok": true, "ts": 1_767_225_600_123u64})),
            Some(1_767_225_600_123.0)
        );
        assert_eq!(
            ack_ts(&json!({"type": "heartbeat_ack", "ts": 12.25})),
            Some(12.25)
        );
        assert_eq!(ack_ts(&json!({"ok": true})), None);
        assert_eq!(ack_ts(&json!({"ts": "12"})), None);
        assert_eq!(ack_ts(&Value::Null), None);
    }
}
