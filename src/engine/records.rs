//! What the engine hands to the results besides the metrics: the raw
//! events that a merge of segments needs to compute whole-fleet figures
//! exactly (see `stampede merge`).
//!
//! - [`Disruption`]: one wave of lost agents (a scenario `drop`, or a wave
//!   of unplanned losses: after a fault action, or detected):
//!   when it happened, how many agents of this process it took down, and
//!   when each of them was registered again. Merging the segments' lists of
//!   the same drop gives the whole fleet's recovery time to the `recovered`
//!   fraction exactly, which no merge of per-segment `hub.recovery`
//!   histograms can.
//! - [`CommandLog`]: commands this process sent and the receipts its agents
//!   saw (of any segment's commands), so `hub.command.fanout` (send → the
//!   last receipt in *any* segment) and `hub.command.undelivered` are
//!   computed across segments. Kept only in a segmented run.
//! - [`ClockOffset`]: this process's clock against the hub's, measured from
//!   the heartbeat acks that carry the hub's time (`hub::clock`), so a merge
//!   can bound the clock skew in the cross-segment times above.
//!
//! Times are microseconds since the Unix epoch (`hub::unix_us_now`): one
//! clock for every process on a machine; across machines they carry the
//! hosts' clock skew.
//!
//! What a merge needs to know of them:
//! - A detected wave (cause `detected` or `action`) is each segment's own
//!   finding, numbered after the plan's drops: the merge joins the
//!   segments' waves that start within 5 s of each other (one crash, seen
//!   by every segment a few milliseconds apart), not by ordinal.
//! - [`ActionRecord`]: a fault action as it ran (segment 0 only).
//! - Every segment plays every drop, so the same drop has the same
//!   `ordinal` (and phase) in every segment; its `at_unix_us` differs by
//!   each process's start and wake-up (a few milliseconds on one machine
//!   with `--start-at`). A back time is `at_unix_us` plus the engine clock's time
//!   since the drop, so back − at is exactly what that segment's
//!   `hub.recovery` measured.
//! - A client drop's `lost` is the chosen agents this segment owned and
//!   had registered; the segments' `lost` add up to the drop's size. A
//!   server kick is asked for once (by segment 0) and each segment's
//!   `lost` is the server closes attributed to it in its window.
//! - A segment's `hub.command.undelivered` counts only commands it could
//!   not send (its commander's connection was down); a command sent whose
//!   receipts across segments fall short of its `expected` is for the
//!   merge to count. A command not sent is in the log too, as sent with no
//!   receipt and `expected` at least 1: undelivered recomputed from the
//!   logs alone counts it. Its `hub.command.fanout` covers its own agents
//!   only.
//! - A command log's memory is bounded by the commands of the run: one
//!   entry per command sent here, one per command id received here.

/// One wave of lost agents and its recovery, as this process saw it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Disruption {
    /// Its number among this run's disruptions, from 0 (the same drop has
    /// the same ordinal in every segment).
    pub ordinal: u32,
    /// Phase name it happened in.
    pub phase: String,
    /// What caused it: `drop` (a scenario drop by close / reset),
    /// `server` (a scenario drop by the hub's kick endpoint), `action` (a
    /// wave of losses right after a fault action), `detected` (a wave of
    /// losses nothing in the scenario caused: a hub crash, a deploy).
    pub cause: String,
    /// The fault action, when `cause` is `action`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
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

/// A command one of this process's commanders sent (or was due to send
/// while its connection was down: then no agent has it and `expected` is
/// at least 1).
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

/// Receipts of one command by this process's agents (of any segment's
/// commands: the ids come from the commands as received).
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

/// This process's clock offset against the hub (`meta.clock` of
/// summary.json), measured NTP-style from acks carrying the hub's time.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ClockOffset {
    /// The hub's clock minus this process's, ms (positive: the hub is
    /// ahead): the offset of the ack with the smallest round trip.
    pub offset_ms: f64,
    /// The true offset is within ± this of `offset_ms`: half the smallest
    /// round trip plus the resolution of the hub's `ts` (1 ms or 1 µs).
    pub uncertainty_ms: f64,
    /// The smallest round trip (message sent → ack), ms.
    pub rtt_min_ms: f64,
    /// Acks that carried the hub's time.
    pub samples: u64,
    /// The hub measured against: its origin, `http(s)://host:port` (a
    /// `ws(s)://` hub URL is written as the origin it maps to).
    pub against: String,
}

impl ClockOffset {
    /// `+0.412 ms ±0.650 ms`: the offset and its uncertainty, for people.
    pub fn text(&self) -> String {
        format!("{:+.3} ms ±{:.3} ms", self.offset_ms, self.uncertainty_ms)
    }
}

/// One fault action as it ran (summary.json `actions`; see
/// [`crate::engine::actions`]). Only segment 0 of a segmented run runs
/// actions; a merge keeps its list.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ActionRecord {
    pub name: String,
    /// Phase name it ran in.
    pub phase: String,
    /// `exec` or `http`.
    pub kind: String,
    /// When it started, µs since the Unix epoch.
    pub at_unix_us: u64,
    /// How long it took (to its exit, answer, or timeout), µs.
    pub duration_us: u64,
    /// An exec action's exit status (None: it did not exit by itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_status: Option<i64>,
    /// An HTTP action's response status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// It succeeded (exit 0 / 2xx, or its `expect`).
    pub ok: bool,
    /// Why not, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its output file, relative to the result directory (in a merged
    /// result: to the merged directory, or absolute when the segment's
    /// directory is elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
}

/// Everything of this module one run produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Records {
    pub disruptions: Vec<Disruption>,
    /// The fault actions run, in the order they started.
    pub actions: Vec<ActionRecord>,
    /// A failed action with `fail = "abort"` that stopped the run.
    pub aborted_by: Option<String>,
    /// Kept only in a segmented run.
    pub commands: Option<CommandLog>,
    /// None without a hub, or when its acks carry no time.
    pub clock: Option<ClockOffset>,
}
