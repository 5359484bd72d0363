//! The scenario loader: TOML text with `--set` overrides, as `stampede run`
//! and `validate` load a file. The input is the `--set` arguments, one per
//! line, each line starting `--set `, then the scenario's text.
//! Feeder paths resolve in an empty directory that does not exist, so a
//! feeder is a read error, never a read of some file of this machine.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stampede::scenario::overrides::parse_set;
use stampede::scenario::{load_str, Overrides};
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // An absolute feeder path could name a device (`/dev/zero`) that is
    // read for ever: not something a scenario file can do by mistake.
    if text.contains("/dev") || text.contains("/proc") || text.contains("/sys") {
        return;
    }
    let mut overrides = Overrides::default();
    let mut rest = text;
    while let Some(line) = rest.strip_prefix("--set ") {
        let (arg, after) = line.split_once('\n').unwrap_or((line, ""));
        rest = after;
        match parse_set(arg) {
            Ok(set) => overrides.sets.push(set),
            // As the CLI: a bad `--set` stops the command before loading.
            Err(_) => return,
        }
    }
    let _ = load_str(
        Path::new("fuzz.toml"),
        Path::new("/nonexistent/stampede-fuzz"),
        rest,
        &overrides,
    );
});
