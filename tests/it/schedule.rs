//! The open-model schedule under tokio's paused clock: every arrival is made
//! exactly at its intended time, and the counts are exact.

use stampede::engine::driver::{dispatch_open, Weights};
use stampede::engine::Live;
use stampede::plan::{arrival_offset, Plan, PlannedPhase};
use stampede::scenario::UserLoad;
use stampede::units::{RateCurve, VuCurve};
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
            agents: None,
            commanders: None,
        },
        PlannedPhase {
            name: "closed".into(),
            start: Duration::from_secs(10),
            duration: Duration::from_secs(5),
            users: Some(UserLoad::Closed(VuCurve { from: 3, to: 3 })),
            agents: None,
            commanders: None,
        },
        PlannedPhase {
            name: "steady".into(),
            start: Duration::from_secs(15),
            duration: Duration::from_secs(2),
            users: Some(UserLoad::Open(RateCurve {
                from: 50.0,
                to: 50.0,
            })),
            agents: None,
            commanders: None,
        },
    ];
    Plan {
        total: Duration::from_secs(17),
        segment: stampede::plan::Segment::WHOLE,
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

/// Fractional rates: a phase of `r/s` over `d` carries `ceil(r·d)` arrivals,
/// arrival k due exactly k/r after the phase's start (to the nanosecond,
/// `Duration`'s resolution), the last one included; a ramp `a -> b` carries
/// `ceil((a+b)/2·d)`, arrival k due when the curve's integral reaches k.
#[tokio::test(start_paused = true)]
async fn fractional_rates_are_counted_with_ceil_and_evenly_spaced() {
    let open = |name: &str, start: u64, from: f64, to: f64| PlannedPhase {
        name: name.into(),
        start: Duration::from_secs(start),
        duration: Duration::from_secs(3),
        users: Some(UserLoad::Open(RateCurve { from, to })),
        agents: None,
        commanders: None,
    };
    let plan = Plan {
        phases: vec![
            open("2.5/s", 0, 2.5, 2.5),
            open("0.7/s", 3, 0.7, 0.7),
            open("0 -> 3/s", 6, 0.0, 3.0),
        ],
        total: Duration::from_secs(9),
        segment: stampede::plan::Segment::WHOLE,
    };
    let live = Live::default();
    let start = Instant::now();
    let mut seen = Vec::new();
    dispatch_open(
        &plan,
        start,
        1,
        &Weights::new([1]),
        &live,
        |arrival, lag| {
            seen.push((arrival, lag, Instant::now()));
        },
    )
    .await;
    let ms = Duration::from_millis;
    let ns = Duration::from_nanos;
    // 2.5/s · 3 s = 7.5 → 8 arrivals, every 400 ms, the last at 2.8 s.
    let steady: Vec<Duration> = (0..8).map(|k| ms(400 * k)).collect();
    // 0.7/s · 3 s = 2.1 → 3 arrivals, every 1/0.7 s = 1.428571428571… s.
    let slow = vec![Duration::ZERO, ns(1_428_571_429), ns(2_857_142_857)];
    // 0 -> 3/s over 3 s: the integral t²/2 reaches k at √(2k) s; 4.5 → 5
    // arrivals, the last at √8 s = 2.828 s.
    let ramp = vec![
        Duration::ZERO,
        ns(1_414_213_562),
        ms(2000),
        ns(2_449_489_743),
        ns(2_828_427_125),
    ];
    for (phase, expected) in [steady, slow, ramp].into_iter().enumerate() {
        let phase_start = start + plan.phases[phase].start;
        let offsets: Vec<Duration> = seen
            .iter()
            .filter(|(a, _, _)| a.phase == phase)
            .map(|(a, _, _)| a.intended - phase_start)
            .collect();
        assert_eq!(offsets, expected, "phase {phase}");
    }
    assert_eq!(seen.len(), 8 + 3 + 5);
    assert_eq!(plan.expected_arrivals(), 8 + 3 + 5);
    // Each is made when due: tokio's timer has a 1 ms resolution, so an
    // arrival due between two milliseconds is made at the next one.
    for (i, (arrival, lag, made_at)) in seen.iter().enumerate() {
        assert!(*lag < ms(1), "arrival {i} {lag:?} late");
        assert_eq!(*made_at - arrival.intended, *lag);
        assert_eq!(arrival.seq, i as u64);
    }
}
