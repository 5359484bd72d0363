//! Reconnect waves and their recovery: a [`DropEvent`] is when a drop
//! happened and how many agents it took down; each of them counts itself
//! back once registered again, and `hub.recovery` records the time since
//! the drop when `recovered` of them are back. For a server kick, the
//! agents the server closes within a few seconds of the kick are
//! attributed to it (see the `# Recovery` section of [`super`]).

use super::HubIds;
use crate::engine::Shared;
use crate::scenario::hub::DropHow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// A kick whose answer did not say how many connections it closed.
pub(super) const KICKED_UNKNOWN: u64 = u64::MAX - 1;

/// One reconnect wave.
#[derive(Debug)]
pub struct DropEvent {
    pub at: Instant,
    pub how: DropHow,
    /// Agents it took down (`u64::MAX` while a server kick's answer is awaited).
    expected: AtomicU64,
    /// Server kicks: agents attributed so far.
    attributed: AtomicU64,
    /// Server kicks: attribution stops here.
    window_end: Instant,
    back: AtomicU64,
    recovered: f64,
    done: AtomicBool,
    phase: usize,
}

impl DropEvent {
    pub(super) fn new(how: DropHow, expected: u64, recovered: f64, phase: usize) -> DropEvent {
        let at = Instant::now();
        DropEvent {
            at,
            how,
            expected: AtomicU64::new(expected),
            attributed: AtomicU64::new(0),
            window_end: at + Duration::from_secs(5),
            back: AtomicU64::new(0),
            recovered,
            done: AtomicBool::new(false),
            phase,
        }
    }

    fn threshold(&self) -> Option<u64> {
        let mut expected = self.expected.load(Ordering::Acquire);
        if expected == KICKED_UNKNOWN && Instant::now() > self.window_end {
            // The hub did not say how many it kicked: those it closed in
            // the attribution window.
            expected = self.attributed.load(Ordering::Acquire);
            self.expected.store(expected, Ordering::Release);
        }
        (expected < KICKED_UNKNOWN).then(|| (self.recovered * expected as f64).ceil() as u64)
    }

    /// Record `hub.recovery` once enough agents are back.
    pub(super) fn check(&self, shared: &Shared, ids: &HubIds) {
        let Some(threshold) = self.threshold() else {
            return;
        };
        if self.back.load(Ordering::Acquire) >= threshold && !self.done.swap(true, Ordering::AcqRel)
        {
            let us = self.at.elapsed().as_micros() as u64;
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

    /// At the run's end: true when it took agents down and not enough of
    /// them came back (`hub.unrecovered`).
    pub(super) fn unrecovered(&self, shared: &Shared, ids: &HubIds) -> bool {
        self.check(shared, ids);
        let expected = self.expected.load(Ordering::Acquire);
        !self.done.load(Ordering::Acquire) && expected > 0 && expected < KICKED_UNKNOWN
    }

    /// One of its agents is registered again.
    pub fn came_back(&self, shared: &Shared, ids: &HubIds) {
        self.back.fetch_add(1, Ordering::AcqRel);
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
}
