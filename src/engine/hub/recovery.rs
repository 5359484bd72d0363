//! Reconnect waves and their recovery: a [`DropEvent`] is when a drop
//! happened and how many agents it took down; each of them counts itself
//! back once registered again, and `hub.recovery` records the time since
//! the drop when `recovered` of them are back. For a server kick, the
//! agents the server closes within a few seconds of the kick are
//! attributed to it (see the `# Recovery` section of [`super`]). A wave of
//! unplanned losses is an event of the same kind (`DropEvent::detected`),
//! gathering the losses of its window; it counts as a disruption only if
//! they reach the `[hub] disruption` threshold.
//!
//! Every event keeps the moment each of its agents came back, so the run
//! hands a merge of segments the raw [`Disruption`] (see
//! [`crate::engine::records`]): the whole fleet's recovery is then exact.
//! A back time is the drop's wall-clock time ([`super::unix_us_now`]) plus
//! the engine clock's time since the drop, so back minus drop is exactly
//! what `hub.recovery` measures here (also under a test's paused clock).

use super::HubIds;
use crate::engine::records::Disruption;
use crate::engine::Shared;
use crate::scenario::hub::DropHow;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// A kick whose answer did not say how many connections it closed (and,
/// in a segmented run, every segment's share of a kick: the hub's count
/// is the whole fleet's).
pub(super) const KICKED_UNKNOWN: u64 = u64::MAX - 1;

/// How long after a kick the server's closes are attributed to it.
const ATTRIBUTION_WINDOW: Duration = Duration::from_secs(5);

/// A wave of unplanned losses that starts this soon after a fault action
/// is that action's doing (cause `action`).
pub const ACTION_WINDOW: Duration = Duration::from_secs(10);

/// One reconnect wave.
#[derive(Debug)]
pub struct DropEvent {
    pub at: Instant,
    /// `at` on the wall clock, µs since the Unix epoch.
    pub at_unix_us: u64,
    pub how: DropHow,
    /// Agents it took down (`u64::MAX` while a server kick's answer is awaited).
    expected: AtomicU64,
    /// Server kicks: agents attributed so far.
    attributed: AtomicU64,
    /// Server kicks: attribution stops here.
    window_end: Instant,
    /// When each agent came back, µs after `at`, in the order they did.
    back: Mutex<Vec<u64>>,
    recovered: f64,
    done: AtomicBool,
    phase: usize,
    /// A wave no scenario drop caused, found by watching losses
    /// (`[hub] disruption`): it is a disruption only once at least
    /// `min_lost` agents were lost in its window.
    detected: bool,
    min_lost: u64,
    /// The fault action it followed (cause `action`).
    action: Option<String>,
}

impl DropEvent {
    pub(super) fn new(how: DropHow, expected: u64, recovered: f64, phase: usize) -> DropEvent {
        let at = Instant::now();
        DropEvent {
            at,
            at_unix_us: super::unix_us_now(),
            how,
            expected: AtomicU64::new(expected),
            attributed: AtomicU64::new(0),
            window_end: at + ATTRIBUTION_WINDOW,
            back: Mutex::new(Vec::new()),
            recovered,
            done: AtomicBool::new(false),
            phase,
            detected: false,
            min_lost: 0,
            action: None,
        }
    }

    /// A wave of unplanned losses that starts now (its first loss is
    /// attributed by the caller): it gathers the losses of the next
    /// `within` and is a disruption when they are at least `min_lost`.
    /// `action`: the fault action it follows, if any.
    pub(super) fn detected(
        min_lost: u64,
        within: Duration,
        action: Option<String>,
        recovered: f64,
        phase: usize,
    ) -> DropEvent {
        // Counted like a server kick of unknown size: the losses of its
        // window are attributed to it, and their number is its `lost`.
        let mut event = DropEvent::new(DropHow::Server, KICKED_UNKNOWN, recovered, phase);
        event.window_end = event.at + within;
        event.detected = true;
        event.min_lost = min_lost.max(1);
        event.action = action;
        event
    }

    /// Is it a disruption? A scenario drop always is; a detected wave once
    /// its window is over and it lost enough agents.
    pub(super) fn qualifies(&self) -> bool {
        !self.detected || self.lost().is_some_and(|lost| lost >= self.min_lost)
    }

    /// Still gathering losses (a detected wave inside its window).
    pub(super) fn is_open(&self) -> bool {
        Instant::now() <= self.window_end
    }

    /// The number of agents it took down, once known.
    fn lost(&self) -> Option<u64> {
        let mut expected = self.expected.load(Ordering::Acquire);
        if expected == KICKED_UNKNOWN && Instant::now() > self.window_end {
            // The hub did not say how many it kicked (or said it for the
            // whole fleet): those it closed in the attribution window.
            expected = self.attributed.load(Ordering::Acquire);
            self.expected.store(expected, Ordering::Release);
        }
        (expected < KICKED_UNKNOWN).then_some(expected)
    }

    fn threshold(&self) -> Option<u64> {
        self.lost()
            .map(|lost| (self.recovered * lost as f64).ceil() as u64)
    }

    /// Record `hub.recovery` once enough agents are back: the time the
    /// threshold's agent came back (not the time of the check, which for a
    /// kick of unknown size comes only after the attribution window).
    pub(super) fn check(&self, shared: &Shared, ids: &HubIds) {
        if !self.qualifies() {
            return;
        }
        let Some(threshold) = self.threshold() else {
            return;
        };
        let us = {
            let back = self.back.lock();
            if (back.len() as u64) < threshold {
                return;
            }
            if threshold == 0 {
                0
            } else {
                let mut sorted = back.clone();
                sorted.sort_unstable();
                sorted[threshold as usize - 1]
            }
        };
        if !self.done.swap(true, Ordering::AcqRel) {
            shared
                .metrics
                .with(|s| s.record(ids.recovery, self.phase, us));
        }
    }

    /// A server kick: the hub said it closed `kicked` connections (0: the
    /// kick failed and the event counts no agents).
    pub(super) fn kicked(&self, kicked: u64) {
        self.expected.store(kicked, Ordering::Release);
    }

    /// At the run's end: a kick whose count is still unknown (its window
    /// not over, or its answer never came) took down those attributed to
    /// it, since no more can be.
    pub(super) fn settle(&self) {
        if self.expected.load(Ordering::Acquire) >= KICKED_UNKNOWN {
            self.expected
                .store(self.attributed.load(Ordering::Acquire), Ordering::Release);
        }
    }

    /// At the run's end: true when it took agents down and not enough of
    /// them came back (`hub.unrecovered`).
    pub(super) fn unrecovered(&self, shared: &Shared, ids: &HubIds) -> bool {
        self.check(shared, ids);
        let expected = self.expected.load(Ordering::Acquire);
        self.qualifies()
            && !self.done.load(Ordering::Acquire)
            && expected > 0
            && expected < KICKED_UNKNOWN
    }

    /// One of its agents is registered again.
    pub fn came_back(&self, shared: &Shared, ids: &HubIds) {
        let us = self.at.elapsed().as_micros() as u64;
        self.back.lock().push(us);
        self.check(shared, ids);
    }

    /// A server kick: does a connection the server just closed belong to it?
    pub(super) fn attribute(&self) -> bool {
        if Instant::now() > self.window_end {
            return false;
        }
        let n = self.attributed.fetch_add(1, Ordering::AcqRel);
        if n < self.expected.load(Ordering::Acquire) {
            true
        } else {
            self.attributed.fetch_sub(1, Ordering::AcqRel);
            false
        }
    }

    /// The raw record of this event (call at the run's end): `ordinal` is
    /// its index among the run's drops, `phase` its phase's name.
    pub(super) fn disruption(&self, ordinal: u32, phase: &str) -> Disruption {
        let lost = self.lost().unwrap_or(0);
        let mut back: Vec<u64> = self
            .back
            .lock()
            .iter()
            .map(|us| self.at_unix_us + us)
            .collect();
        back.sort_unstable();
        back.truncate(lost as usize);
        Disruption {
            ordinal,
            phase: phase.to_string(),
            cause: match (self.detected, &self.action, self.how) {
                (true, Some(_), _) => "action",
                (true, None, _) => "detected",
                (false, _, DropHow::Server) => "server",
                (false, _, DropHow::Close | DropHow::Reset) => "drop",
            }
            .to_string(),
            action: self.action.clone(),
            at_unix_us: self.at_unix_us,
            lost,
            recovered_fraction: self.recovered,
            back_unix_us: back,
        }
    }

    /// A detected wave (not a scenario drop).
    pub(super) fn is_detected(&self) -> bool {
        self.detected
    }

    /// The phase it happened in (index in the plan).
    pub(super) fn phase(&self) -> usize {
        self.phase
    }
}
