//! The hub side of a segmented run: one hub scenario played as 3 segments
//! at once against ONE built-in hub, each segment an engine of its own
//! (`plan.segment` = `i/3`), as `--processes 3` plays it in 3 processes.
//!
//! What must hold: each segment runs exactly the agent ids it owns (the
//! union is the whole fleet, ids unique); a client drop takes exactly the
//! scenario's fraction of the whole fleet, the same ids a single process
//! would choose among the planned fleet, each segment its own; every
//! segment's `Disruption` lists its lost agents and when each came back;
//! commands sent by one segment reach agents of all three (the segments'
//! command logs add up to every command's expected receipts) and command
//! ids are unique across segments and those of an unsegmented run.
//!
//! Time: tokio's paused clock (current-thread runtime; the hub, the three
//! engines and the test share it), so the drop, the reconnects and the
//! commands happen at exact virtual instants, and the test looks at the
//! fleets at instants between them.
//!
//! The paused clock auto-advances to the next timer whenever the runtime
//! finds nothing to run, even while bytes are still on their way through
//! the kernel's loopback (on a loaded machine their delivery can wait for
//! a CPU). So where the test asserts exact virtual times (an agent back
//! exactly its 50 ms backoff after the drop) or exact fleets, it first
//! [holds](hold) the clock at the instant the I/O starts until the
//! fleets show that it is done: the first connects at 0, the drop's
//! closes and kicks at 700 ms, the reconnects at 750 ms.

use rand::rngs::SmallRng;
use rand::SeedableRng;
use stampede::engine::driver::mix_seed;
use stampede::engine::hub::manager::drop_choice;
use stampede::engine::hub::{slot, Fleet};
use stampede::engine::records::Records;
use stampede::engine::{Engine, Ids, Live, Shared};
use stampede::metrics::{Aggregator, Metrics, TagFilter, Totals};
use stampede::plan::{Plan, Segment};
use stampede::protocol::http::Client;
use stampede::scenario::Scenario;
use stampede::target::{self, RunningTarget, TargetConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

const AGENTS: u32 = 30;
const SEGMENTS: u32 = 3;
/// round(30 × 0.3333333).
const DROPPED: usize = 10;
/// Commands at 6/s over the 1 s `commands` phase.
const COMMANDS: u64 = 6;
const SEED: u64 = 4242;
/// When the wave tests look at the fleets, between the events: all up
/// (600 ms), a third down (720 ms: dropped at 700, back at 750), all up
/// again (900 ms).
const WAVE_LOOKS: &[u64] = &[600, 720, 900];
/// The drop (700 ms) and the reconnects (750 ms).
const DROP_AT: u64 = 700;
const BACK_AT: u64 = 750;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The built-in hub, the scenario against it, its resolved targets.
async fn setup(how: &str) -> (RunningTarget, Arc<Scenario>, stampede::run::Targets) {
    let t = target::spawn("127.0.0.1:0".parse().unwrap(), TargetConfig::default())
        .await
        .expect("target starts");
    let scenario = scenario(&t, how);
    let targets = stampede::run::prepare_targets(&scenario)
        .await
        .expect("targets");
    (t, scenario, targets)
}

/// 30 agents at once; at 700 ms a third of them dropped (`how`), back
/// 50 ms later; from 1.2 s a commander sends 6 commands to every agent.
fn scenario(t: &RunningTarget, how: &str) -> Arc<Scenario> {
    scenario_with(t, how, "")
}

/// [`scenario`] with more settings for the commander.
fn scenario_with(t: &RunningTarget, how: &str, commander: &str) -> Arc<Scenario> {
    load(&scenario_text(t.addr, how, commander))
}

/// The text of [`scenario_with`] (also played by `tests/it/merge.rs` as
/// real segment runs).
pub(crate) fn scenario_text(addr: std::net::SocketAddr, how: &str, commander: &str) -> String {
    format!(
        r#"
name = "segments"
seed = {SEED}
[target]
hub = "http://{addr}"
hub_admin = "http://{addr}/admin/hub/kick"
[hub]
timeout = "2s"
[[agents]]
name = "a"
register = {{ event = "register", data = {{ id = "a-{{{{ agent.id }}}}" }}, ack = true }}
heartbeat = {{ every = "200ms", ack = true }}
on_command = {{ event = "command", reply = "result" }}
reconnect = {{ base = "50ms", max = "200ms", jitter = "none" }}
[[commanders]]
name = "ops"
send = {{ event = "command", to = "agents", data = {{ op = "update" }} }}
{commander}
[[phases]]
name = "up"
duration = "700ms"
agents = {{ connected = {AGENTS}, connect_rate = "max" }}
[[phases]]
name = "wave"
duration = "500ms"
agents = {{ drop = {{ fraction = 0.3333333, how = "{how}" }} }}
[[phases]]
name = "commands"
duration = "1s"
commanders = {{ rate = "6/s" }}
[[phases]]
name = "settle"
duration = "500ms"
"#
    )
}

/// The 3 segments' parts, with one time zero.
fn segments(scenario: &Arc<Scenario>, targets: &stampede::run::Targets) -> Vec<Part> {
    let start = Instant::now();
    (0..SEGMENTS)
        .map(|index| {
            let segment = Segment {
                index,
                count: SEGMENTS,
            };
            part(scenario, segment, targets, start)
        })
        .collect()
}

/// A scenario from its text.
fn load(text: &str) -> Arc<Scenario> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    Arc::new(stampede::scenario::load(&path, &Default::default()).expect("scenario"))
}

/// One process's engine for `segment`, and its aggregator.
struct Part {
    engine: Engine,
    fleet: Arc<Fleet>,
    aggregator: Aggregator,
}

fn part(
    scenario: &Arc<Scenario>,
    segment: Segment,
    targets: &stampede::run::Targets,
    start: Instant,
) -> Part {
    let mut plan = Plan::new(scenario);
    plan.segment = segment;
    let (layout, ids) = Ids::register(scenario, &plan);
    let fleet = Arc::new(Fleet::new(
        scenario,
        &plan,
        targets.hub.clone().expect("a hub"),
        None,
        None,
        targets.hub_admin.clone(),
        ids.hub.clone().expect("hub series"),
    ));
    let metrics = Metrics::new(layout);
    let aggregator = Aggregator::new(metrics.clone(), None, SystemTime::now());
    let engine = Engine::new(Shared {
        scenario: scenario.clone(),
        plan,
        client: Client::new(
            scenario.http.version,
            scenario.http.connect_timeout,
            false,
            false,
        ),
        endpoints: targets.endpoints.clone(),
        metrics,
        ids,
        live: Arc::new(Live::default()),
        start,
        hub: Some(fleet.clone()),
        actions: Default::default(),
    });
    Part {
        engine,
        fleet,
        aggregator,
    }
}

/// Says of the fleets whether a [`Hold`] is over.
type Done<'a> = Box<dyn Fn(&[Arc<Fleet>]) -> bool + 'a>;

/// A moment where virtual time must stand still until the real I/O it
/// starts is done: at `at` ms, [`hold`] until `done` says so of the fleets.
struct Hold<'a> {
    at: u64,
    what: &'a str,
    done: Done<'a>,
}

impl<'a> Hold<'a> {
    fn new(at: u64, what: &'a str, done: impl Fn(&[Arc<Fleet>]) -> bool + 'a) -> Hold<'a> {
        Hold {
            at,
            what,
            done: Box::new(done),
        }
    }
}

/// How many of the fleets' agents are in `state`.
fn in_state(fleets: &[Arc<Fleet>], state: u8) -> usize {
    fleets.iter().map(|f| f.ids_in(state).len()).sum()
}

/// At the start until every agent is up (all connect at once).
fn all_up<'a>() -> Hold<'a> {
    Hold::new(0, "every agent up", |f| {
        in_state(f, slot::UP) == AGENTS as usize
    })
}

/// The wave tests' holds for a drop of `DROPPED` agents that they see at
/// once (a client close): at the start until all are up; at the drop until
/// they are all in their backoff and the others up; at the end of the
/// backoff until all are up again.
fn wave_holds<'a>() -> Vec<Hold<'a>> {
    vec![
        all_up(),
        Hold::new(DROP_AT, "the dropped agents in their backoff", |f| {
            in_state(f, slot::WAITING) == DROPPED
                && in_state(f, slot::UP) == AGENTS as usize - DROPPED
        }),
        Hold::new(BACK_AT, "every agent up again", |f| {
            in_state(f, slot::UP) == AGENTS as usize
        }),
    ]
}

/// Yields until `done` holds. The test task never waits on I/O or a timer
/// meanwhile, so the runtime always has something to run and the paused
/// clock does not auto-advance: virtual time stands still while the
/// kernel delivers what was sent on loopback, however long that takes in
/// real time. Bounded by 30 s of wall-clock time, then fails naming `what`.
async fn hold(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let at = Instant::now();
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(Instant::now(), at, "the clock moved while holding: {what}");
}

/// Run every part at once to its end; `during` looks at the fleets at
/// each of `looks` (ms after the start), and each of `holds` holds the
/// clock at its instant. Their records and totals.
async fn run_all(
    parts: Vec<Part>,
    looks: &[u64],
    holds: Vec<Hold<'_>>,
    mut during: impl FnMut(Instant, &[Arc<Fleet>]),
) -> Vec<(Records, Totals)> {
    let fleets: Vec<Arc<Fleet>> = parts.iter().map(|p| p.fleet.clone()).collect();
    let mut tasks = Vec::new();
    let mut aggregators = Vec::new();
    for part in parts {
        let engine = part.engine.clone();
        tasks.push(tokio::spawn(async move { engine.run(ms(500)).await }));
        aggregators.push(part.aggregator);
    }
    let start = Instant::now();
    // Looks and holds in time order (a hold first at the same instant).
    let mut moments: Vec<(u64, Option<&Hold<'_>>)> = (holds.iter())
        .map(|h| (h.at, Some(h)))
        .chain(looks.iter().map(|&at| (at, None)))
        .collect();
    moments.sort_by_key(|m| (m.0, m.1.is_none()));
    for (at, moment) in moments {
        tokio::time::sleep_until(start + ms(at)).await;
        match moment {
            Some(h) => hold(h.what, || (h.done)(&fleets)).await,
            None => during(start + ms(at), &fleets),
        }
    }
    let mut out = Vec::new();
    for (task, mut aggregator) in tasks.into_iter().zip(aggregators) {
        let report = task.await.expect("engine");
        aggregator.tick(report.elapsed, &[]);
        out.push((report.records, aggregator.finish().expect("totals")));
    }
    out
}

fn counter(totals: &Totals, metric: &str, kind: Option<&str>) -> u64 {
    totals.sum_counters(metric, kind, &Default::default())
}

/// The agents' series (not the commander's).
fn agents() -> TagFilter {
    TagFilter {
        population: Some("a".into()),
        ..TagFilter::default()
    }
}

fn hist_len(totals: &Totals, metric: &str) -> u64 {
    totals
        .select_hist(metric, &Default::default())
        .map_or(0, |h| h.len())
}

#[tokio::test(start_paused = true)]
async fn three_segments_share_one_hub_exactly() {
    let (t, scenario, targets) = setup("close").await;
    let hub = format!("http://{}", t.addr);
    let parts = segments(&scenario, &targets);
    // The ids a single process would drop: the same seeded choice among
    // the planned fleet (the manager's drop rng).
    let chosen: BTreeSet<u32> = drop_choice(
        AGENTS,
        0.3333333,
        &mut SmallRng::seed_from_u64(mix_seed(SEED, 0xD809)),
    )
    .into_iter()
    .collect();
    assert_eq!(chosen.len(), DROPPED);
    let owned =
        |index: u32| -> BTreeSet<u32> { (0..AGENTS).filter(|k| k % SEGMENTS == index).collect() };
    let mut looked = 0;
    let results = run_all(parts, WAVE_LOOKS, wave_holds(), |_, fleets| {
        looked += 1;
        let up: Vec<BTreeSet<u32>> = fleets
            .iter()
            .map(|f| f.up_ids().into_iter().collect())
            .collect();
        for (index, up) in up.iter().enumerate() {
            let index = index as u32;
            let want: BTreeSet<u32> = match looked {
                // Each segment runs exactly its own ids.
                1 | 3 => owned(index),
                // During the wave: its own ids but the chosen ones.
                _ => owned(index).difference(&chosen).copied().collect(),
            };
            assert_eq!(up, &want, "segment {index}, look {looked}");
        }
        // The union is the whole fleet (ids unique: the sets are disjoint).
        let all: usize = up.iter().map(BTreeSet::len).sum();
        let union: BTreeSet<u32> = up.iter().flatten().copied().collect();
        assert_eq!(all, union.len());
        let expect = if looked == 2 {
            AGENTS as usize - DROPPED
        } else {
            AGENTS as usize
        };
        assert_eq!(union.len(), expect, "look {looked}");
    })
    .await;
    assert_eq!(looked, 3);
    t.shutdown().await;

    // Registrations: the first 30, one per agent, and the 10 dropped back.
    let registrations: u64 = results
        .iter()
        .map(|(_, totals)| counter(totals, "hub.registrations", None))
        .sum();
    assert_eq!(registrations, u64::from(AGENTS) + DROPPED as u64);
    let mut lost_total = 0;
    for (index, (records, totals)) in results.iter().enumerate() {
        let mine = owned(index as u32).intersection(&chosen).count() as u64;
        // Its own agents: 10 registered, its chosen ones once more.
        assert_eq!(counter(totals, "hub.registrations", None), 10 + mine);
        assert_eq!(counter(totals, "hub.disconnects", Some("client")), mine);
        assert_eq!(counter(totals, "hub.errors", None), 0, "segment {index}");
        // Its clock against the one hub, from every heartbeat ack.
        let clock = records
            .clock
            .as_ref()
            .expect("the built-in hub's acks carry ts");
        assert_eq!(
            clock.samples,
            hist_len(totals, "hub.message.rtt"),
            "{clock:?}"
        );
        assert_eq!(clock.against, hub);
        // One disruption, the same ordinal and phase in every segment.
        assert_eq!(records.disruptions.len(), 1, "segment {index}");
        let d = &records.disruptions[0];
        assert_eq!(
            (d.ordinal, d.phase.as_str(), d.cause.as_str(), d.lost),
            (0, "wave", "drop", mine)
        );
        assert_eq!(d.back_unix_us.len() as u64, mine);
        // Each back exactly 50 ms (its backoff) after the drop.
        assert!(
            d.back_unix_us.iter().all(|&b| b == d.at_unix_us + 50_000),
            "{d:?}"
        );
        assert!((d.recovered_fraction - 0.99).abs() < 1e-9, "{d:?}");
        // Its local recovery: its own agents, 50 ms.
        if mine > 0 {
            let h = totals
                .select_hist("hub.recovery", &Default::default())
                .expect("recovery");
            assert_eq!(
                (h.len(), h.lowest_equivalent(h.max())),
                (1, h.lowest_equivalent(50_000))
            );
        }
        lost_total += d.lost;
    }
    assert_eq!(lost_total, DROPPED as u64);

    // Commands: each segment sent its stripe (global numbers), every
    // command reached all 30 agents, 10 in each segment.
    let mut sent: BTreeMap<String, usize> = BTreeMap::new();
    let mut received: BTreeMap<String, u64> = BTreeMap::new();
    for (index, (records, totals)) in results.iter().enumerate() {
        let log = records
            .commands
            .as_ref()
            .expect("a segment keeps a command log");
        let want: Vec<String> = (1..=COMMANDS)
            .filter(|n| (n - 1) % u64::from(SEGMENTS) == index as u64)
            .map(|n| format!("ops-{n}"))
            .collect();
        let ids: Vec<String> = log.sent.iter().map(|c| c.id.clone()).collect();
        assert_eq!(ids, want, "segment {index}");
        assert_eq!(counter(totals, "hub.commands", None), want.len() as u64);
        for c in &log.sent {
            assert_eq!(
                (c.commander.as_str(), c.phase.as_str(), c.expected),
                ("ops", "commands", Some(u64::from(AGENTS))),
                "{c:?}"
            );
            *sent.entry(c.id.clone()).or_default() += 1;
        }
        // Every command, whoever sent it, reached this segment's 10 agents.
        assert_eq!(log.received.len() as u64, COMMANDS, "segment {index}");
        for r in &log.received {
            assert_eq!(r.count, 10, "{r:?} in segment {index}");
            *received.entry(r.id.clone()).or_default() += r.count;
        }
        assert_eq!(counter(totals, "hub.command.received", None), COMMANDS * 10);
        // A segment does not judge the fleet's shortfalls.
        assert_eq!(counter(totals, "hub.command.undelivered", None), 0);
    }
    // Ids unique across segments, every command's receipts add up.
    assert_eq!(sent.len() as u64, COMMANDS);
    assert!(sent.values().all(|&n| n == 1), "{sent:?}");
    assert_eq!(
        received.keys().collect::<Vec<_>>(),
        sent.keys().collect::<Vec<_>>()
    );
    assert!(
        received.values().all(|&n| n == u64::from(AGENTS)),
        "{received:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn unsegmented_run_gives_the_same_ids_and_no_command_log() {
    let (t, scenario, targets) = setup("close").await;
    let whole = part(&scenario, Segment::WHOLE, &targets, Instant::now());
    let mut looked = 0;
    let results = run_all(vec![whole], WAVE_LOOKS, wave_holds(), |_, fleets| {
        looked += 1;
        let up = fleets[0].up_ids().len();
        assert_eq!(up, if looked == 2 { 20 } else { 30 }, "look {looked}");
    })
    .await;
    t.shutdown().await;
    let (records, totals) = &results[0];
    assert!(records.commands.is_none());
    assert_eq!(records.disruptions.len(), 1);
    let d = &records.disruptions[0];
    assert_eq!((d.lost, d.back_unix_us.len()), (10, 10));
    assert!(d.back_unix_us.iter().all(|&b| b == d.at_unix_us + 50_000));
    assert_eq!(hist_len(totals, "hub.recovery"), 1);
    assert_eq!(hist_len(totals, "hub.command.fanout"), COMMANDS);
    assert_eq!(counter(totals, "hub.command.received", None), COMMANDS * 30);
    assert_eq!(counter(totals, "hub.command.undelivered", None), 0);
}

/// A server kick in a segmented run: one kick (segment 0's) of a third of
/// the hub's connections, every segment's; each segment attributes the
/// closes its own agents see, and together they are the kick's 10.
#[tokio::test(start_paused = true)]
async fn a_server_kick_in_segments_is_one_kick_attributed_where_it_lands() {
    let (t, scenario, targets) = setup("server").await;
    let parts = segments(&scenario, &targets);
    let hub = t.hub().clone();
    // The kick closes connections the hub picks; it unregisters their
    // agents at once. Done when the agents it unregistered are all in
    // their backoff and the others still up.
    let holds = vec![
        all_up(),
        Hold::new(DROP_AT, "the kicked agents in their backoff", |f| {
            let up = in_state(f, slot::UP);
            up < AGENTS as usize
                && up as u64 == hub.stats().registered
                && up + in_state(f, slot::WAITING) == AGENTS as usize
        }),
        Hold::new(BACK_AT, "every agent up again", |f| {
            in_state(f, slot::UP) == AGENTS as usize
        }),
    ];
    let mut down_at_720 = 0;
    let mut looked = 0;
    let results = run_all(parts, WAVE_LOOKS, holds, |_, fleets| {
        looked += 1;
        let up: usize = fleets.iter().map(|f| f.up_ids().len()).sum();
        if looked == 2 {
            down_at_720 = AGENTS as usize - up;
        } else {
            assert_eq!(up, AGENTS as usize, "look {looked}");
        }
    })
    .await;
    t.shutdown().await;
    // 30 agents and each segment's commander connection (its commands
    // come later): round(33 / 3) = 11 connections kicked, evenly spread
    // over connection order, once.
    let kicked = results
        .iter()
        .map(|(records, totals)| {
            let d = &records.disruptions[0];
            assert_eq!(
                (d.ordinal, d.phase.as_str(), d.cause.as_str()),
                (0, "wave", "server")
            );
            assert_eq!(
                totals.sum_counters("hub.disconnects", Some("server_close"), &agents()),
                d.lost
            );
            assert_eq!(d.back_unix_us.len() as u64, d.lost);
            assert!(
                d.back_unix_us.iter().all(|&b| b == d.at_unix_us + 50_000),
                "{d:?}"
            );
            assert_eq!(counter(totals, "hub.unrecovered", None), 0);
            if d.lost > 0 {
                let h = totals
                    .select_hist("hub.recovery", &Default::default())
                    .expect("recovery");
                assert_eq!((h.len(), h.max()), (1, h.highest_equivalent(50_000)));
            }
            d.lost
        })
        .sum::<u64>();
    let server_closes: u64 = results
        .iter()
        .map(|(_, totals)| counter(totals, "hub.disconnects", Some("server_close")))
        .sum();
    assert_eq!(server_closes, 11);
    assert!(kicked > 0);
    assert_eq!(kicked as usize, down_at_720);
}

/// Connects striped at the whole fleet's pace (100/s: agent k due at
/// k × 10 ms, in the segment that owns k), then a scale-down to 12 that
/// sends each segment's own ids past 12 away.
#[tokio::test(start_paused = true)]
async fn connects_and_scale_down_follow_the_whole_fleets_schedule() {
    let t = target::spawn("127.0.0.1:0".parse().unwrap(), TargetConfig::default())
        .await
        .expect("target starts");
    let scenario = load(&format!(
        r#"
name = "paced"
[target]
hub = "http://{addr}"
[[agents]]
name = "a"
register = {{ event = "register", data = {{ id = "a-{{{{ agent.id }}}}" }}, ack = true }}
[[phases]]
name = "ramp"
duration = "700ms"
agents = {{ connected = {AGENTS}, connect_rate = "100/s" }}
[[phases]]
name = "down"
duration = "500ms"
agents = {{ connected = 12 }}
"#,
        addr = t.addr
    ));
    let targets = stampede::run::prepare_targets(&scenario).await.unwrap();
    let parts = segments(&scenario, &targets);
    // 55 ms: agents 0..=5 started; 295 ms: 0..=29; 900 ms: 0..12 left.
    let looks: &[(u64, u32)] = &[(55, 6), (155, 16), (295, 30), (900, 12)];
    let at: Vec<u64> = looks.iter().map(|l| l.0).collect();
    // The clock held where the last agent of each look connects (50 ms:
    // agent 5) and at the scale-down, until those agents are up (gone).
    let holds = [(50, 6), (150, 16), (290, 30), (700, 12)]
        .into_iter()
        .map(|(at, n)| {
            Hold::new(at, "the fleet at its size", move |f| {
                in_state(f, slot::UP) == n
            })
        })
        .collect();
    let mut looked = 0;
    let results = run_all(parts, &at, holds, |_, fleets| {
        let (when, upto) = looks[looked];
        looked += 1;
        for (index, fleet) in fleets.iter().enumerate() {
            let want: Vec<u32> = (0..upto).filter(|k| k % SEGMENTS == index as u32).collect();
            assert_eq!(fleet.up_ids(), want, "segment {index} at {when} ms");
        }
    })
    .await;
    assert_eq!(looked, looks.len());
    t.shutdown().await;
    for (index, (_, totals)) in results.iter().enumerate() {
        // Each segment connected its 10 agents once, none failed.
        assert_eq!(counter(totals, "hub.registrations", None), 10, "{index}");
        assert_eq!(counter(totals, "hub.errors", None), 0, "{index}");
    }
}

/// The whole path: three `run --segment i/3` runs at once against one hub
/// (through `stampede::run`, so their results land in summary.json), then
/// `stampede merge`: the whole fleet's counts, one recovery for the one
/// drop, each command's fan-out across the three segments, none
/// undelivered, and the merged verdict.
///
/// The merged recovery is the last needed back time minus the earliest
/// segment's drop time, computed here from the segments' own records:
/// each segment reads the wall clock at its drop (µs apart, more on a
/// loaded machine), and these runs go through `stampede::run`, where the
/// test cannot hold the clock while the drop's I/O is on the wire (see the
/// module docs), so an agent is back at least its 50 ms backoff after
/// the drop, not exactly then.
#[tokio::test(start_paused = true)]
async fn three_segment_results_merge_into_the_whole_fleet() {
    let (t, scenario, _) = setup("close").await;
    let dir = tempfile::tempdir().unwrap();
    let (summaries, merged) = run_and_merge(t, scenario, dir.path()).await;
    // Each summary.json carries its records.
    for (index, s) in summaries.iter().enumerate() {
        assert_eq!(s.disruptions.len(), 1, "segment {index}");
        let log = s.commands.as_ref().expect("a command log");
        assert_eq!(log.sent.len(), 2, "segment {index}");
        assert_eq!(log.received.len() as u64, COMMANDS, "segment {index}");
    }
    assert_eq!(merged.exit, stampede::error::ExitStatus::Passed);
    let s = &merged.summary;
    assert_eq!(
        total(s, "hub.registrations"),
        u64::from(AGENTS) + DROPPED as u64
    );
    assert_eq!(total(s, "hub.commands"), COMMANDS);
    assert_eq!(
        total(s, "hub.command.received"),
        COMMANDS * u64::from(AGENTS)
    );
    assert_eq!(total(s, "hub.command.undelivered"), 0);
    assert_eq!(total(s, "hub.unrecovered"), 0);
    let recovery = hist(s, "hub.recovery").expect("merged recovery");
    assert_eq!(recovery.len(), 1);
    // From the segments' records: the 10 lost agents (need = ⌈0.99 × 10⌉),
    // each back at least its backoff after its segment's drop; the last of
    // them minus the earliest drop.
    let drops: Vec<_> = summaries.iter().map(|s| &s.disruptions[0]).collect();
    assert_eq!(drops.iter().map(|d| d.lost).sum::<u64>(), DROPPED as u64);
    for d in &drops {
        assert!(
            d.back_unix_us.iter().all(|&b| b >= d.at_unix_us + 50_000),
            "{d:?}"
        );
    }
    let earliest = drops.iter().map(|d| d.at_unix_us).min().unwrap();
    let last_back = (drops.iter())
        .flat_map(|d| d.back_unix_us.iter().copied())
        .max()
        .expect("agents back");
    assert_eq!(
        recovery.max(),
        recovery.highest_equivalent(last_back - earliest),
        "merged recovery"
    );
    assert!(recovery.max() >= 50_000);
    assert_eq!(
        hist(s, "hub.command.fanout").expect("fan-out").len(),
        COMMANDS
    );
}

/// A counter's total in a summary.
fn total(s: &stampede::report::json::Summary, metric: &str) -> u64 {
    (s.counters.iter())
        .filter(|c| c.metric == metric)
        .map(|c| c.total)
        .sum()
}

/// A histogram's whole-run values in a summary.
fn hist(s: &stampede::report::json::Summary, metric: &str) -> Option<hdrhistogram::Histogram<u64>> {
    let id = (s.layout.hists.iter())
        .position(|d| d.metric == metric)
        .unwrap() as u32;
    (s.histograms.iter())
        .find(|h| h.id == id && h.phase.is_none())
        .map(|h| stampede::report::json::decode_histogram(&h.hdr).unwrap())
}

/// A commander whose connection never opens (the hub has no such path):
/// each segment counts its stripe of commands undelivered and logs them,
/// so the merge counts every one of them, as a single process would.
#[tokio::test(start_paused = true)]
async fn commands_a_segment_could_not_send_stay_undelivered_in_the_merge() {
    let t = target::spawn("127.0.0.1:0".parse().unwrap(), TargetConfig::default())
        .await
        .expect("target starts");
    let scenario = scenario_with(&t, "close", r#"path = "/nowhere/""#);
    let dir = tempfile::tempdir().unwrap();
    let (summaries, merged) = run_and_merge(t, scenario, dir.path()).await;
    for (index, s) in summaries.iter().enumerate() {
        let log = s.commands.as_ref().expect("a command log");
        let ids: Vec<&str> = log.sent.iter().map(|c| c.id.as_str()).collect();
        let want: Vec<String> = (1..=COMMANDS)
            .filter(|n| (n - 1) % u64::from(SEGMENTS) == index as u64)
            .map(|n| format!("ops-{n}"))
            .collect();
        assert_eq!(ids, want, "segment {index}");
        assert!(log.sent.iter().all(|c| c.expected == Some(1)));
        assert!(log.received.is_empty());
        assert_eq!(total(s, "hub.command.undelivered"), 2, "segment {index}");
        assert_eq!(total(s, "hub.commands"), 0, "segment {index}");
    }
    assert_eq!(total(&merged.summary, "hub.command.undelivered"), COMMANDS);
    assert!(hist(&merged.summary, "hub.command.fanout").is_none_or(|h| h.is_empty()));
}

/// Play `scenario` as 3 segments at once through `stampede::run` (results
/// under `dir`), stop the hub, merge them; the segments' summaries and
/// the merge.
async fn run_and_merge(
    t: RunningTarget,
    scenario: Arc<Scenario>,
    dir: &std::path::Path,
) -> (
    Vec<stampede::report::json::Summary>,
    stampede::merge::MergeOutcome,
) {
    let path = dir.join("scenario.toml");
    let out = dir.join("reports");
    let options = |index: u32| stampede::run::RunOptions {
        scenario: path.clone(),
        overrides: Default::default(),
        out_dir: out.clone(),
        progress: stampede::run::Progress::Quiet,
        grace: ms(500),
        command_line: vec!["test".into()],
        baseline: None,
        segment: Segment {
            index,
            count: SEGMENTS,
        },
        start_at: None,
        child: Default::default(),
    };
    let (o0, o1, o2) = (options(0), options(1), options(2));
    let run = |o| stampede::run::run_scenario(scenario.clone(), o);
    let (r0, r1, r2) = tokio::join!(run(&o0), run(&o1), run(&o2));
    t.shutdown().await;
    let dirs: Vec<std::path::PathBuf> = [r0, r1, r2]
        .into_iter()
        .map(|r| {
            let r = r.expect("segment runs");
            assert_eq!(r.exit, stampede::error::ExitStatus::Passed);
            r.result_dir
        })
        .collect();
    let summaries = (dirs.iter())
        .map(|d| stampede::report::json::read(&d.join("summary.json")).unwrap())
        .collect();
    let merged = stampede::merge::merge(
        &dirs,
        &stampede::merge::MergeOptions {
            out: Some(dir.join("merged")),
            quiet: true,
            silent: false,
            command_line: vec!["test".into()],
        },
    )
    .expect("merge");
    (summaries, merged)
}
