//! What the engine hands to the results besides the metrics: the raw
//! events that a merge of segments needs to compute whole-fleet figures
//! exactly (see `stampede merge`).
//!
//! - [`Disruption`]: one wave of lost agents (a scenario `drop` today):
//!   when it happened, how many agents of this process it took down, and
//!   when each of them was registered again. Merging the segments' lists of
//!   the same drop gives the whole fleet's recovery time to the `recovered`
//!   fraction exactly, which no merge of per-segment `hub.recovery`
//!   histograms can.
//! - [`CommandLog`]: commands this process sent and the receipts its agents
//!   saw (of any segment's commands), so `hub.command.fanout` (send → the
//!   last receipt in *any* segment) and `hub.command.undelivered` are
//!   computed across segments. Kept only in a segmented run.
//!
//! Times are microseconds since the Unix epoch (`hub::unix_us_now`): one
//! clock for every process on a machine; across machines they carry the
//! hosts' clock skew.

/// One wave of lost agents and its recovery, as this process saw it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Disruption {
    /// Its number among this run's disruptions, from 0 (the same drop has
    /// the same ordinal in every segment).
    pub ordinal: u32,
    /// Phase name it happened in.
    pub phase: String,
    /// What caused it: `drop` (a scenario drop by close / reset),
    /// `server` (a scenario drop by the hub's kick endpoint).
    pub cause: String,
    /// When it happened, µs since the Unix epoch.
    pub at_unix_us: u64,
    /// Agents of this process it took down.
    pub lost: u64,
    /// The fraction of `lost` that must be back to call it recovered.
    pub recovered_fraction: f64,
    /// When each agent it took down was registered again, µs since the
    /// Unix epoch, ascending (at most `lost` entries).
    pub back_unix_us: Vec<u64>,
}

/// A command one of this process's commanders sent.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CommandSent {
    /// The command's id (unique across segments).
    pub id: String,
    /// The commander's name.
    pub commander: String,
    /// Phase name it was sent in.
    pub phase: String,
    /// µs since the Unix epoch.
    pub sent_unix_us: u64,
    /// Receipts expected across the whole fleet (from the `to` sample or the
    /// hub's answer); None when unknown.
    pub expected: Option<u64>,
}

/// Receipts of one command by this process's agents.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CommandReceived {
    pub id: String,
    /// Agents of this process that received it.
    pub count: u64,
    /// The last receipt, µs since the Unix epoch.
    pub last_unix_us: u64,
}

/// Commands sent and received by one process of a segmented run.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CommandLog {
    pub sent: Vec<CommandSent>,
    pub received: Vec<CommandReceived>,
}

/// Everything of this module one run produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Records {
    pub disruptions: Vec<Disruption>,
    /// Kept only in a segmented run.
    pub commands: Option<CommandLog>,
}
