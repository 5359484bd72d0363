//! The table of commands on their way, for `hub.command.fanout` (send →
//! the last agent that received it) and `hub.command.undelivered`. A
//! command is finished when as many agents as expected have it (the
//! expectation comes from the commander's `to` sample or the hub's answer)
//! or when its commander's timeout sweeps it.
//!
//! In a segmented run the table also keeps a [`CommandLog`]: every command
//! this process sent and, for every command id its agents received (its
//! own commanders' or another segment's), how many receipts and when the
//! last one came. The merge computes the fleet's fan-out and undelivered
//! commands from the segments' logs. Its memory is bounded by the
//! commands of the whole run (one entry per command sent here, one per
//! command id received here). The table itself sees only this process's
//! receipts of its own commands: its `hub.command.fanout` is the local
//! view, and it does not count a command short of the whole fleet's
//! expected receipts as undelivered (only the merge can know). A command
//! due while its commander's connection was down is counted undelivered
//! here and logged as sent with no receipt and `expected` at least 1, so
//! the merge, recomputing undelivered from the logs alone, counts it too.

use super::HubIds;
use crate::engine::records::{CommandLog, CommandReceived, CommandSent};
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
    /// Segmented runs only.
    log: Option<Mutex<LogBook>>,
}

/// A [`CommandLog`] being written.
#[derive(Debug, Default)]
struct LogBook {
    sent: Vec<CommandSent>,
    /// Command id → its index in `sent` (the hub's answer updates it).
    sent_at: HashMap<String, usize>,
    /// Command id → (receipts, the last one in µs since the Unix epoch).
    received: HashMap<String, (u64, u64)>,
}

impl LogBook {
    fn sent(&mut self, sent: &Sent<'_>) {
        self.sent_at.insert(sent.id.clone(), self.sent.len());
        self.sent.push(CommandSent {
            id: sent.id.clone(),
            commander: sent.names.0.to_string(),
            phase: sent.names.1.to_string(),
            sent_unix_us: sent.sent_unix_us,
            expected: sent.expected,
        });
    }

    /// The hub's answer: `delivered` is the fleet's expected receipts.
    fn expected(&mut self, id: &str, delivered: u64) {
        if let Some(&i) = self.sent_at.get(id) {
            self.sent[i].expected = Some(delivered);
        }
    }

    /// One of this process's agents received `id` at `now_us` (whoever sent it).
    fn received(&mut self, id: &str, now_us: u64) {
        match self.received.get_mut(id) {
            Some((count, last)) => {
                *count += 1;
                *last = (*last).max(now_us);
            }
            None => {
                self.received.insert(id.to_string(), (1, now_us));
            }
        }
    }

    /// Sent in sending order, received by command id.
    fn into_log(self) -> CommandLog {
        let mut received: Vec<CommandReceived> = self
            .received
            .into_iter()
            .map(|(id, (count, last_unix_us))| CommandReceived {
                id,
                count,
                last_unix_us,
            })
            .collect();
        received.sort_by(|a, b| a.id.cmp(&b.id));
        CommandLog {
            sent: self.sent,
            received,
        }
    }
}

/// What the table knows of a command being sent.
pub struct Sent<'a> {
    pub id: String,
    pub commander: usize,
    pub phase: usize,
    /// The payload's `sent_us`.
    pub sent_unix_us: u64,
    pub expected: Option<u64>,
    /// Names for the log: the commander's and the phase's.
    pub names: (&'a str, &'a str),
}

impl CommandTable {
    /// A table; `logged`: keep a [`CommandLog`] (segmented runs).
    pub fn new(logged: bool) -> CommandTable {
        CommandTable {
            table: Mutex::default(),
            log: logged.then(Mutex::default),
        }
    }

    /// An agent received command `id`.
    pub fn received(&self, shared: &Shared, ids: &HubIds, id: &str) {
        if let Some(log) = &self.log {
            log.lock().received(id, super::unix_us_now());
        }
        let mut table = self.table.lock();
        let Some(state) = table.get_mut(id) else {
            return;
        };
        state.received += 1;
        state.last = Some(Instant::now());
        if state.expected.is_some_and(|e| state.received >= e) {
            let state = table.remove(id).expect("present");
            drop(table);
            self.finish(shared, ids, &state);
        }
    }

    /// A commander sent a command.
    pub fn sent(&self, sent: Sent<'_>) {
        if let Some(log) = &self.log {
            log.lock().sent(&sent);
        }
        self.table.lock().insert(
            sent.id,
            CommandState {
                sent: Instant::now(),
                commander: sent.commander,
                phase: sent.phase,
                expected: sent.expected,
                received: 0,
                last: None,
            },
        );
    }

    /// Does it keep a [`CommandLog`]?
    pub fn logs(&self) -> bool {
        self.log.is_some()
    }

    /// A command due was not sent (its commander's connection was down):
    /// into the log only, as a command no agent received (its `expected`
    /// at least 1), so a merge counts it undelivered as a run does.
    pub fn unsent(&self, sent: &Sent<'_>) {
        if let Some(log) = &self.log {
            log.lock().sent(sent);
        }
    }

    /// The hub said how many agents it delivered command `id` to.
    pub fn expected(&self, shared: &Shared, ids: &HubIds, id: &str, delivered: u64) {
        if let Some(log) = &self.log {
            log.lock().expected(id, delivered);
        }
        let mut table = self.table.lock();
        let Some(state) = table.get_mut(id) else {
            return;
        };
        state.expected = Some(delivered);
        if state.received >= delivered {
            let state = table.remove(id).expect("present");
            drop(table);
            self.finish(shared, ids, &state);
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
            self.finish(shared, ids, state);
        }
    }

    /// The log so far, taken (None unless the table keeps one): sent in
    /// sending order, received by command id.
    pub fn take_log(&self) -> Option<CommandLog> {
        Some(std::mem::take(&mut *self.log.as_ref()?.lock()).into_log())
    }

    /// Record a finished command's fan-out, and whether it fell short
    /// (only in an unsegmented run: a segment sees a share of the receipts).
    fn finish(&self, shared: &Shared, ids: &HubIds, state: &CommandState) {
        let ids = &ids.commanders[state.commander];
        if let Some(last) = state.last {
            let us = last.saturating_duration_since(state.sent).as_micros() as u64;
            shared
                .metrics
                .with(|s| s.record(ids.fanout, state.phase, us));
        }
        if self.log.is_none() && state.expected.is_some_and(|e| state.received < e) {
            shared
                .metrics
                .with(|s| s.add(ids.undelivered, state.phase, 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sent(id: &str, at: u64, expected: Option<u64>) -> Sent<'static> {
        Sent {
            id: id.to_string(),
            commander: 0,
            phase: 1,
            sent_unix_us: at,
            expected,
            names: ("ops", "commands"),
        }
    }

    #[test]
    fn the_log_keeps_sends_answers_and_every_receipt() {
        let mut book = LogBook::default();
        book.sent(&sent("ops-1", 1_000, None));
        book.sent(&sent("ops-4", 2_000, Some(3)));
        // The hub's answer updates the command it names, only ours.
        book.expected("ops-1", 30);
        book.expected("ops-2", 7);
        // Receipts of our commands and of another segment's (ops-2).
        book.received("ops-2", 1_500);
        book.received("ops-1", 1_100);
        book.received("ops-1", 1_300);
        book.received("ops-1", 1_200);
        let log = book.into_log();
        assert_eq!(
            log.sent,
            vec![
                CommandSent {
                    id: "ops-1".into(),
                    commander: "ops".into(),
                    phase: "commands".into(),
                    sent_unix_us: 1_000,
                    expected: Some(30),
                },
                CommandSent {
                    id: "ops-4".into(),
                    commander: "ops".into(),
                    phase: "commands".into(),
                    sent_unix_us: 2_000,
                    expected: Some(3),
                },
            ]
        );
        assert_eq!(
            log.received,
            vec![
                CommandReceived {
                    id: "ops-1".into(),
                    count: 3,
                    last_unix_us: 1_300,
                },
                CommandReceived {
                    id: "ops-2".into(),
                    count: 1,
                    last_unix_us: 1_500,
                },
            ]
        );
        // Only a segmented run's table keeps one.
        let whole = CommandTable::new(false);
        whole.unsent(&sent("ops-7", 3_000, Some(1)));
        assert!(!whole.logs() && whole.take_log().is_none());
        let segment = CommandTable::new(true);
        assert_eq!(segment.take_log(), Some(CommandLog::default()));
        // A command not sent: in the log, no receipt, nothing in flight.
        segment.unsent(&sent("ops-7", 3_000, Some(1)));
        assert!(segment.table.lock().is_empty());
        let log = segment.take_log().unwrap();
        assert_eq!(
            (log.sent.len(), log.sent[0].expected, log.received.len()),
            (1, Some(1), 0)
        );
    }
}
