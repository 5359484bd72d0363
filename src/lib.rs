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
//! 1. [`error`] (exit codes, error kinds) and [`units`] (durations, rates,
//!    ramps, fractions as scenario files write them).
//! 2. [`metrics`]: per-thread recorders, the interval aggregator, hlog.
//! 3. [`slo`]: SLO grammar and evaluation on merged histograms.
//! 4. [`protocol`]: HTTP/1.1, HTTP/2, WebSocket and Socket.IO client
//!    connections; origins, source addresses, the descriptor budget.
//! 5. [`target`]: the built-in reference target (API and hub), loopback by
//!    default.
//! 6. [`scenario`]: the TOML model, diagnostics with file/line/column,
//!    `--set` overrides, templates, feeders, extractors and checks.
//! 7. [`plan`]: every workload of every phase as curves with real durations
//!    and rates: what the engine plays.
//! 8. [`engine`]: plays a plan: users (open and closed model), hub agents,
//!    commanders; shutdown.
//! 9. [`report`]: result files (summary.json, report.html, junit.xml,
//!    summary.md), `stampede report DIR`, console output.
//! 10. The commands, each using only those before it: [`compare`] (baseline
//!     diffs), [`run`] (scenario + plan + engine + metrics + reports → exit
//!     code), [`capacity`] (a search made of runs).
//! 11. [`cli`]: flags → commands; `main.rs` only calls it.

pub mod capacity;
pub mod cli;
pub mod compare;
pub mod engine;
pub mod error;
pub mod metrics;
pub mod plan;
pub mod protocol;
pub mod report;
pub mod run;
pub mod scenario;
pub mod slo;
pub mod target;
pub mod units;
