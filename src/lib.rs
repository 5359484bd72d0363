//! stampede — a load-testing and capacity-benchmark harness.
//!
//! One scenario file describes a crowd (HTTP users on an API, Socket.IO /
//! WebSocket agents on a hub, commanders pushing commands through it), a
//! timeline of phases shapes it, the engine plays it against a target, every
//! latency lands in HDR histograms, and the run is judged against the
//! scenario's SLOs.
//!
//! # Layout
//! Layers, bottom to top. A module uses only its own layer and those below
//! it (`tests/it/layers.rs` fails on an upward import), so each layer can be
//! read, tested and reused without the ones built on it.
//! 1. [`error`] (exit codes, error kinds), [`units`] (durations, rates,
//!    ramps, fractions as scenario files and SLOs write them, and
//!    [`units::format`]: how they read in every output) and [`redact`]
//!    (what is a secret, hidden as `***` in every result).
//! 2. [`metrics`]: per-thread recorders, the interval aggregator, hlog, and
//!    the [`metrics::catalogue`] of metric names, kinds and stats.
//! 3. [`slo`]: SLO grammar and evaluation on merged histograms.
//! 4. [`protocol`]: HTTP/1.1, HTTP/2, WebSocket and Socket.IO client
//!    connections; origins, source addresses, the descriptor budget.
//! 5. [`target`]: the built-in reference target (API and hub), loopback by
//!    default.
//! 6. [`scenario`]: the TOML model, diagnostics with file/line/column,
//!    `--set` overrides, templates, feeders, extractors and checks.
//! 7. [`plan`]: every workload of every phase as curves with real durations
//!    and rates: what the engine plays.
//! 8. [`engine`]: plays a plan: one open-loop scheduler for arrivals,
//!    commands and connects; users (open and closed model), hub agents,
//!    commanders; shutdown; a snapshot of its live gauges.
//! 9. [`report`]: one exporter per result file (summary.json, report.html,
//!    junit.xml, summary.md), the comparison's and the capacity search's
//!    results and pages, `stampede report DIR`, console output; all
//!    rendered from data (a `Summary`), never from live engine state. The
//!    result types of `compare` and `capacity` live here, not in those
//!    commands, so reports never reach up into a command.
//! 10. The commands, each using only those before it: [`compare`] (baseline
//!     diffs), [`merge`] (segments' results → one exact result), [`run`]
//!     (scenario + plan + engine + metrics + reports → exit code; with
//!     `--processes` it merges its children's segments), [`capacity`] (a
//!     search made of runs).
//! 11. [`cli`]: flags → commands; `main.rs` only calls it.
//!
//! Where this order differs from a first guess, the code decided: `units`
//! sits at the bottom because the target's knobs, the SLO grammar and the
//! scenario all parse durations; `Origin` and the HTTP version policy live
//! in `protocol` (the connections use them, the scenario only parses
//! them); the reconnect backoff policy is part of the scenario (what the
//! user asked for), which the engine applies.

pub mod capacity;
pub mod cli;
pub mod compare;
pub mod engine;
pub mod error;
pub mod merge;
pub mod metrics;
pub mod plan;
pub mod protocol;
pub mod redact;
pub mod report;
pub mod run;
pub mod scenario;
pub mod slo;
pub mod target;
pub mod units;
