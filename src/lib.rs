//! stampede — a load-testing and capacity-benchmark harness.
//!
//! One scenario file describes a crowd (HTTP users now; hub agents and
//! commanders later), a timeline of phases shapes it, the engine plays it
//! against a target, every latency lands in HDR histograms, and the run is
//! judged against the scenario's SLOs.
//!
//! # Layout
//! - [`scenario`]: the TOML model, units, diagnostics with file/line/column,
//!   `--set` overrides, templates, feeders, extractors and checks.
//! - [`plan`]: phases normalised into rate / VU curves with real durations.
//! - [`engine`]: the one driver (open and closed model), users, shutdown.
//! - [`protocol`]: HTTP/1.1 and HTTP/2 client connections, one per VU.
//! - [`metrics`]: per-thread recorders, the interval aggregator, hlog.
//! - [`slo`]: SLO parsing and evaluation on merged histograms.
//! - [`report`]: result files (summary.json, report.html, junit.xml,
//!   summary.md), `stampede report DIR`, and console tables.
//! - [`target`]: the built-in reference target (API), loopback by default.
//! - [`run`]: glue: scenario + plan + engine + metrics + reports → exit code.

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
