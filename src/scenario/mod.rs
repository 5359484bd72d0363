//! Scenario files: the TOML model, its units, located diagnostics,
//! `--set` overrides, templates, feeders, extractors and checks.

pub mod check;
pub mod diagnostic;
pub mod feeder;
pub mod overrides;
pub mod template;
pub mod units;
