//! One Goose scenario for benches/vs-peers.sh: every user GETs `/` as fast
//! as it can (closed loop), or, with `--throttle-requests RATE`, all users
//! together at most RATE requests/s (Goose's nearest to an open loop).
//! Every other knob (host, users, run time, `--co-mitigation`) comes from
//! Goose's own command line.
//!
//! After Goose's own report it prints one line for the script, from the
//! metrics Goose returns, with Goose's own percentile function:
//! `vs-peers: requests OK P50 P95 P99 MAX CO` (OK: successful requests;
//! times in µs, adjusted for coordinated omission when Goose's mitigation
//! added samples, CO = `co` then, else `raw`). Goose's printed table has no p95
//! and its JSON report rounds to whole milliseconds, hence this line.

use goose::metrics::GooseRequestMetricTimingData;
use goose::prelude::*;

#[tokio::main]
async fn main() -> Result<(), GooseError> {
    let metrics = GooseAttack::initialize()?
        .register_scenario(scenario!("Root").register_transaction(transaction!(root)))
        .execute()
        .await?;
    // One request (`GET /`): its figures.
    let Some(request) = metrics.requests.values().max_by_key(|r| r.raw_data.counter) else {
        println!("vs-peers: no requests");
        return Ok(());
    };
    let (data, co): (&GooseRequestMetricTimingData, _) = match &request.coordinated_omission_data {
        Some(adjusted) => (adjusted, "co"),
        None => (&request.raw_data, "raw"),
    };
    println!(
        "vs-peers: requests {} {} {} {} {} {co}",
        request.success_count,
        data.percentile_us(0.5),
        data.percentile_us(0.95),
        data.percentile_us(0.99),
        data.maximum_time_us,
    );
    Ok(())
}

async fn root(user: &mut GooseUser) -> TransactionResult {
    let _ = user.get("/").await?;
    Ok(())
}
