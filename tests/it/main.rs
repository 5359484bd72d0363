//! Integration tests: one binary, one module per topic.

mod actions;
mod agents;
mod browser;
mod cli;
mod common;
mod disruptions;
mod distributed;
mod engine;
mod http_recovery;
mod hub;
mod hub_clock;
mod hub_faults;
mod hub_segments;
mod kubernetes;
mod layers;
mod merge;
mod node_compat;
mod processes;
mod protocol;
mod reports;
mod schedule;
mod segments;
mod target;
mod target_processes;
mod topology;
