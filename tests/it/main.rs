//! Integration tests: one binary, one module per topic.

mod cli;
mod common;
mod engine;
mod hub;
mod protocol;
mod schedule;
mod target;
