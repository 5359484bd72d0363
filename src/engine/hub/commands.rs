//! The table of commands on their way, for `hub.command.fanout` (send →
//! the last agent that received it) and `hub.command.undelivered`. A
//! command is finished when as many agents as expected have it (the
//! expectation comes from the commander's `to` sample or the hub's answer)
//! or when its commander's timeout sweeps it.

use super::HubIds;
use crate::engine::Shared;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::Duration;
use tokio::time::Instant;

/// A command on its way.
#[derive(Debug)]
struct CommandState {
    sent: Instant,
    commander: usize,
    phase: usize,
    expected: Option<u64>,
    received: u64,
    last: Option<Instant>,
}

/// Which commands a sweep finishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sweep {
    /// Every command still on its way (the run's end).
    Every,
    /// This commander's commands sent at least `timeout` ago.
    OlderThan { commander: usize, timeout: Duration },
}

/// Commands on their way, by id.
#[derive(Debug, Default)]
pub struct CommandTable {
    table: Mutex<HashMap<String, CommandState>>,
}

impl CommandTable {
    /// An agent received command `id`.
    pub fn received(&self, shared: &Shared, ids: &HubIds, id: &str) {
        let mut table = self.table.lock();
        let Some(state) = table.get_mut(id) else {
            return;
        };
        state.received += 1;
        state.last = Some(Instant::now());
        if state.expected.is_some_and(|e| state.received >= e) {
            let state = table.remove(id).expect("present");
            drop(table);
            finish(shared, ids, &state);
        }
    }

    /// A commander sent command `id`, expecting `expected` receipts when known.
    pub fn sent(&self, id: String, commander: usize, phase: usize, expected: Option<u64>) {
        self.table.lock().insert(
            id,
            CommandState {
                sent: Instant::now(),
                commander,
                phase,
                expected,
                received: 0,
                last: None,
            },
        );
    }

    /// The hub said how many agents it delivered command `id` to.
    pub fn expected(&self, shared: &Shared, ids: &HubIds, id: &str, delivered: u64) {
        let mut table = self.table.lock();
        let Some(state) = table.get_mut(id) else {
            return;
        };
        state.expected = Some(delivered);
        if state.received >= delivered {
            let state = table.remove(id).expect("present");
            drop(table);
            finish(shared, ids, &state);
        }
    }

    /// Finish the commands `which` selects.
    pub fn sweep(&self, shared: &Shared, ids: &HubIds, which: Sweep) {
        let now = Instant::now();
        let done: Vec<CommandState> = {
            let mut table = self.table.lock();
            let old: Vec<String> = table
                .iter()
                .filter(|(_, s)| match which {
                    Sweep::Every => true,
                    Sweep::OlderThan { commander, timeout } => {
                        s.commander == commander && now.duration_since(s.sent) >= timeout
                    }
                })
                .map(|(k, _)| k.clone())
                .collect();
            old.iter().filter_map(|k| table.remove(k)).collect()
        };
        for state in &done {
            finish(shared, ids, state);
        }
    }
}

/// Record a finished command's fan-out, and whether it fell short.
fn finish(shared: &Shared, ids: &HubIds, state: &CommandState) {
    let ids = &ids.commanders[state.commander];
    if let Some(last) = state.last {
        let us = last.saturating_duration_since(state.sent).as_micros() as u64;
        shared
            .metrics
            .with(|s| s.record(ids.fanout, state.phase, us));
    }
    if state.expected.is_some_and(|e| state.received < e) {
        shared
            .metrics
            .with(|s| s.add(ids.undelivered, state.phase, 1));
    }
}
