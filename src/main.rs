//! The `stampede` binary: parse, init tracing, build the runtime, call the
//! library, map the outcome to the documented exit code.

use clap::Parser;
use stampede::cli::{execute, Cli};

fn main() {
    let command_line: Vec<String> = std::env::args().collect();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    // With one core (e.g. pinned with taskset) a current-thread runtime does
    // the same work without the work-stealing machinery. The aggregator has
    // its own thread either way.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut builder = if cores == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(3);
        }
    };
    let status = runtime.block_on(execute(cli, command_line));
    let code = match status {
        Ok(status) => status.code(),
        Err(e) => {
            let message = format!("{e:#}");
            // Diagnostics already start with "error:".
            if message.starts_with("error") {
                eprintln!("{message}");
            } else {
                eprintln!("error: {message}");
            }
            e.exit_status().code()
        }
    };
    // Don't wait for lingering connection tasks.
    runtime.shutdown_background();
    std::process::exit(code);
}
