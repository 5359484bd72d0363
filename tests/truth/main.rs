//! Truth tests: does stampede report the numbers a correct tool must?
//!
//! Each test here sets up a system whose answer is known in advance (a
//! closed form, a distribution's quantiles, an exact count, a known
//! capacity, a generator starved on purpose) and checks stampede's figure
//! against it, within HDR precision plus a tolerance stated in the test.
//!
//! They measure time and CPU, so they run **one at a time** ([`serial`]),
//! in their own test binary: cargo runs test binaries one after another,
//! so nothing else of the suite runs beside them.

#[allow(dead_code)]
#[path = "../it/common.rs"]
mod common;

/// Holds the truth tests to one at a time: take it first in every test.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

mod capacity;
mod generator;
mod latency;
