//! Integration tests: one binary, one module per topic.

mod cli;
mod common;
mod engine;
mod schedule;
mod target;
