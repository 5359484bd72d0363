//! Integration tests: one binary, one module per topic.

mod cli;
mod common;
mod engine;
mod hub;
mod hub_faults;
mod protocol;
mod schedule;
mod target;
