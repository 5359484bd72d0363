//! The open-model schedule under tokio's paused clock: every arrival is made
//! exactly at its intended time, and the counts are exact.

use stampede::engine::driver::{dispatch_open, Weights};
use stampede::engine::Live;
use stampede::plan::{arrival_offset, Plan, PlannedPhase};
use stampede::scenario::units::{RateCurve, VuCurve};
use stampede::scenario::UserLoad;
use std::time::Duration;
use tokio::time::Instant;

fn plan() -> Plan {
    let phases = vec![
        PlannedPhase {
            name: "ramp".into(),
            start: Duration::ZERO,
            duration: Duration::from_secs(10),
            users: Some(UserLoad::Open(RateCurve {
                from: 0.0,
                to: 100.0,
            })),
        },
        PlannedPhase {
            name: "closed".into(),
            start: Duration::from_secs(10),
            duration: Duration::from_secs(5),
            users: Some(UserLoad::Closed(VuCurve { from: 3, to: 3 })),
        },
        PlannedPhase {
            name: "steady".into(),
            start: Duration::from_secs(15),
            duration: Duration::from_secs(2),
            users: Some(UserLoad::Open(RateCurve {
                from: 50.0,
                to: 50.0,
            })),
        },
    ];
    Plan {
        total: Duration::from_secs(17),
        phases,
    }
}

#[tokio::test(start_paused = true)]
async fn arrivals_are_made_on_time_and_counted_exactly() {
    let plan = plan();
    let live = Live::default();
    let start = Instant::now();
    let mut seen = Vec::new();
    dispatch_open(
        &plan,
        start,
        1,
        &Weights::new([3, 1]),
        &live,
        |arrival, lag| {
            seen.push((arrival, lag, Instant::now()));
        },
    )
    .await;
    // 0 -> 100/s over 10 s carries 500; 50/s over 2 s carries 100; the closed phase none.
    assert_eq!(seen.len(), 600);
    assert_eq!(seen.iter().filter(|(a, _, _)| a.phase == 0).count(), 500);
    assert_eq!(seen.iter().filter(|(a, _, _)| a.phase == 2).count(), 100);
    // tokio's timer wheel has a 1 ms resolution (paused or not): an arrival
    // is made at most 1 ms after it was due, and the lag says exactly how late.
    for (i, (arrival, lag, made_at)) in seen.iter().enumerate() {
        assert!(*lag < Duration::from_millis(1), "arrival {i} {lag:?} late");
        assert_eq!(*made_at - arrival.intended, *lag);
        assert_eq!(arrival.seq, i as u64);
    }
    // Intended times follow the curve.
    let ramp = RateCurve {
        from: 0.0,
        to: 100.0,
    };
    for k in [0u64, 1, 250, 499] {
        let expected = start + arrival_offset(ramp, Duration::from_secs(10), k).unwrap();
        assert_eq!(seen[k as usize].0.intended, expected);
    }
    let steady_first = &seen[500].0;
    assert_eq!(steady_first.intended, start + Duration::from_secs(15));
    assert_eq!(
        seen[501].0.intended - steady_first.intended,
        Duration::from_millis(20)
    );
    // Weighted populations, seeded: 3:1.
    let second = seen.iter().filter(|(a, _, _)| a.population == 1).count();
    assert!((100..200).contains(&second), "{second}");
    // Nothing past the plan's end.
    assert!(Instant::now() - start <= Duration::from_secs(17));
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_gives_the_same_choices() {
    let plan = plan();
    let picks = |seed| {
        let plan = plan.clone();
        async move {
            let live = Live::default();
            let mut out = Vec::new();
            dispatch_open(
                &plan,
                Instant::now(),
                seed,
                &Weights::new([1, 1, 1]),
                &live,
                |a, _| out.push(a.population),
            )
            .await;
            out
        }
    };
    let a = picks(7).await;
    let b = picks(7).await;
    let c = picks(8).await;
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[tokio::test(start_paused = true)]
async fn interrupt_stops_new_arrivals() {
    let plan = plan();
    let live = std::sync::Arc::new(Live::default());
    let stopper = live.clone();
    let start = Instant::now();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(5050)).await;
        stopper.interrupt();
    });
    let mut n = 0;
    dispatch_open(&plan, start, 1, &Weights::new([1]), &live, |_, _| n += 1).await;
    // Arrivals before 5.05 s of a 0 -> 100/s ramp over 10 s: N(t) = 5t², k < 127.5.
    assert_eq!(n, 128);
    assert_eq!(Instant::now() - start, Duration::from_millis(5050));
}
