//! Integration tests of the built-in reference target over real HTTP.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{json, Value};
use stampede::target::{self, Latency, RunningTarget, TargetConfig};

const LOOPBACK: &str = "127.0.0.1:0";

async fn start(config: TargetConfig) -> (RunningTarget, reqwest::Client) {
    let t = target::spawn(LOOPBACK.parse().unwrap(), config)
        .await
        .expect("target starts");
    (t, reqwest::Client::new())
}

async fn login(c: &reqwest::Client, t: &RunningTarget) -> String {
    let r = c
        .post(format!("{}/api/login", t.url()))
        .json(&json!({"user": "alice", "password": "pw"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let body: Value = r.json().await.unwrap();
    body["token"].as_str().unwrap().to_string()
}

async fn get_json(c: &reqwest::Client, url: String) -> (StatusCode, Value) {
    let r = c.get(url).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

async fn post_json(c: &reqwest::Client, url: String, body: Value) -> (StatusCode, Value) {
    let r = c.post(url).json(&body).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[tokio::test]
async fn health_is_ok() {
    let (t, c) = start(TargetConfig::default()).await;
    let (s, b) = get_json(&c, format!("{}/health", t.url())).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, json!({"status": "ok"}));
    t.shutdown().await;
}

#[tokio::test]
async fn login_issues_tokens_and_requires_a_user() {
    let (t, c) = start(TargetConfig::default()).await;
    let url = format!("{}/api/login", t.url());
    let (s, b) = post_json(&c, url.clone(), json!({"user": "bob", "password": "x"})).await;
    assert_eq!(s, StatusCode::OK);
    let token = b["token"].as_str().unwrap();
    assert!(token.starts_with("tok-bob-"), "{token}");
    let (_, b2) = post_json(&c, url.clone(), json!({"user": "bob"})).await;
    assert_ne!(b2["token"], b["token"], "tokens are distinct");

    for bad in [
        json!({"password": "x"}),
        json!({"user": ""}),
        json!({"user": 5}),
        json!([]),
    ] {
        let (s, b) = post_json(&c, url.clone(), bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert!(b["error"].is_string());
    }
    let r = c.post(&url).body("{not json").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn servers_are_listed_in_pages() {
    let (t, c) = start(TargetConfig::default()).await;
    let base = format!("{}/api/servers", t.url());

    let (s, b) = get_json(&c, base.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["page"], 1);
    assert_eq!(b["per_page"], 20);
    assert_eq!(b["total"], 1000);
    let items = b["items"].as_array().unwrap();
    assert_eq!(items.len(), 20);
    assert_eq!(items[0]["id"], "srv-00001");
    for item in items {
        assert!(item["id"].is_string() && item["name"].is_string());
        let status = item["status"].as_str().unwrap();
        assert!(["running", "stopped", "provisioning"].contains(&status));
    }

    let (_, b) = get_json(&c, format!("{base}?page=2&per_page=5")).await;
    assert_eq!(b["page"], 2);
    assert_eq!(b["per_page"], 5);
    assert_eq!(b["items"][0]["id"], "srv-00006");
    assert_eq!(b["items"].as_array().unwrap().len(), 5);

    // Deterministic: the same page twice is the same.
    let (_, again) = get_json(&c, format!("{base}?page=2&per_page=5")).await;
    assert_eq!(again, b);

    let (_, b) = get_json(&c, format!("{base}?page=34&per_page=30")).await;
    assert_eq!(
        b["items"].as_array().unwrap().len(),
        10,
        "last partial page"
    );
    let (s, b) = get_json(&c, format!("{base}?page=1000")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["items"], json!([]));
    assert_eq!(b["total"], 1000);

    for bad in [
        "page=0",
        "page=abc",
        "per_page=0",
        "per_page=5000",
        "page=-1",
    ] {
        let (s, b) = get_json(&c, format!("{base}?{bad}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert!(b["error"].is_string());
    }
}

#[tokio::test]
async fn creating_servers_needs_a_token_and_a_name() {
    let (t, c) = start(TargetConfig::default()).await;
    let url = format!("{}/api/servers", t.url());

    let (s, b) = post_json(&c, url.clone(), json!({"name": "web-1"})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert!(b["error"].is_string());
    let r = c
        .post(&url)
        .header("Authorization", "Bearer nope")
        .json(&json!({"name": "web-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let token = login(&c, &t).await;
    let auth = format!("Bearer {token}");
    for bad in [json!({}), json!({"name": ""}), json!({"name": 3})] {
        let r = c
            .post(&url)
            .header("Authorization", &auth)
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let r = c
        .post(&url)
        .header("Authorization", &auth)
        .body("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = c
        .post(&url)
        .header("Authorization", &auth)
        .json(&json!({"name": "web-1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["name"], "web-1");
    let id = created["id"].as_str().unwrap().to_string();

    // The created server is listed after the synthetic ones.
    let (_, b) = get_json(&c, format!("{url}?page=1001&per_page=1")).await;
    assert_eq!(b["total"], 1001);
    assert_eq!(b["items"][0]["id"], id.as_str());
    assert_eq!(b["items"][0]["name"], "web-1");
}

#[tokio::test]
async fn jobs_need_a_token_and_unknown_ids_are_404() {
    let (t, c) = start(TargetConfig::default()).await;
    let url = format!("{}/api/jobs", t.url());

    let (s, _) = post_json(&c, url.clone(), json!({"kind": "backup"})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);

    let auth = format!("Bearer {}", login(&c, &t).await);
    let r = c
        .post(&url)
        .header("Authorization", &auth)
        .body("{broken")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);

    let r = c
        .post(&url)
        .header("Authorization", &auth)
        .json(&json!({"kind": "backup"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let job: Value = r.json().await.unwrap();
    assert_eq!(job["status"], "queued");
    let id = job["id"].as_str().unwrap();
    assert!(id.starts_with("job-"), "{id}");

    // An empty body is fine too.
    let r = c
        .post(&url)
        .header("Authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);

    let (s, b) = get_json(&c, format!("{url}/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["id"], id);

    for bad in [
        "nope",
        "job-",
        "job-1-0",
        "job-abc-1",
        "job-99999999999999-0",
        &format!("{id}-1"),
        &id.rsplit_once('-')
            .map(|(a, _)| format!("{a}-999"))
            .unwrap(),
    ] {
        let (s, b) = get_json(&c, format!("{url}/{bad}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{bad}");
        assert!(b["error"].is_string());
    }
}

/// Jobs go through a FIFO queue served by `job_workers` workers. Paused
/// clock, one worker, 2 s jobs, two jobs submitted at once: the first runs
/// at once, the second waits for it (queued 2 s, then running), each
/// answer carries its timestamps (Unix ms) and queue / run times.
#[tokio::test(start_paused = true)]
async fn jobs_queue_behind_busy_workers() {
    let job = ms(2000);
    let (t, c) = start(TargetConfig {
        job_workers: 1,
        job_duration: Latency::Fixed(job),
        ..Default::default()
    })
    .await;
    let auth = format!("Bearer {}", login(&c, &t).await);
    let mut urls = Vec::new();
    for _ in 0..2 {
        let r = c
            .post(format!("{}/api/jobs", t.url()))
            .header("Authorization", &auth)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let job: Value = r.json().await.unwrap();
        assert_eq!(job["status"], "queued");
        urls.push(format!(
            "{}/api/jobs/{}",
            t.url(),
            job["id"].as_str().unwrap()
        ));
    }
    let get = |i: usize| get_json(&c, urls[i].clone());
    let (s, first) = get(0).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(first["status"], "running");
    assert_eq!(first["started_at"], first["queued_at"]);
    assert_eq!(first["done_at"], Value::Null);
    let (_, second) = get(1).await;
    assert_eq!(second["status"], "queued");
    assert_eq!(second["started_at"], Value::Null);
    let (_, stats) = get_json(&c, format!("{}/admin/stats", t.url())).await;
    assert_eq!(
        (
            stats["jobs_queued"].as_u64(),
            stats["jobs_running"].as_u64()
        ),
        (Some(1), Some(1))
    );
    let queued_at = second["queued_at"].as_u64().unwrap();

    tokio::time::sleep(job).await;
    let (_, first) = get(0).await;
    assert_eq!(first["status"], "done");
    assert_eq!(
        (first["queue_ms"].as_u64(), first["run_ms"].as_u64()),
        (Some(0), Some(2000))
    );
    let (_, second) = get(1).await;
    assert_eq!(second["status"], "running");
    assert_eq!(second["started_at"].as_u64(), Some(queued_at + 2000));

    tokio::time::sleep(job).await;
    let (_, second) = get(1).await;
    assert_eq!(second["status"], "done");
    assert_eq!(second["done_at"].as_u64(), Some(queued_at + 4000));
    assert_eq!(
        (second["queue_ms"].as_u64(), second["run_ms"].as_u64()),
        (Some(2000), Some(2000))
    );
}

/// Yields until `cond` holds. The test task never waits on I/O or a timer
/// meanwhile, so under the paused clock virtual time stands still (the
/// runtime only auto-advances when it has nothing to do) while the target
/// accepts and serves what was sent. Bounded by 30 s of wall-clock time,
/// then fails naming `what`.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::task::yield_now().await;
    }
}

/// One `GET /api/servers` in its own task (a connection of its own when
/// the others are busy); call [`until`] before awaiting anything else.
fn fire(c: &reqwest::Client, t: &RunningTarget) -> tokio::task::JoinHandle<StatusCode> {
    let c = c.clone();
    let url = format!("{}/api/servers?per_page=1", t.url());
    tokio::spawn(async move { c.get(url).send().await.unwrap().status() })
}

async fn statuses(tasks: Vec<tokio::task::JoinHandle<StatusCode>>) -> Vec<StatusCode> {
    let mut out = Vec::new();
    for task in tasks {
        out.push(task.await.unwrap());
    }
    out
}

/// `concurrency = 2`, `queue = 1`, 200 ms of service: two requests are
/// served, a third waits, a fourth is refused; the third is served when a
/// permit frees. Each request is sent once the previous one is where it
/// should be (paused clock: no service time passes meanwhile).
#[tokio::test(start_paused = true)]
async fn concurrency_limit_queues_then_rejects() {
    let (t, c) = start(TargetConfig {
        concurrency: Some(2),
        latency: Latency::Fixed(ms(200)),
        queue: 1,
        ..Default::default()
    })
    .await;
    let stats = || t.state().stats();
    let started = tokio::time::Instant::now();
    let first = vec![fire(&c, &t), fire(&c, &t)];
    until("two requests served", || stats().in_flight == 2).await;
    let third = fire(&c, &t);
    until("a third queued", || stats().queued == 1).await;
    let fourth = fire(&c, &t);
    until("a fourth refused", || stats().rejected == 1).await;
    assert_eq!(fourth.await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(statuses(first).await, [StatusCode::OK; 2]);
    assert_eq!(third.await.unwrap(), StatusCode::OK);
    // Two waves of 200 ms (virtual time; timers have 1 ms resolution).
    let elapsed = started.elapsed();
    assert!(
        (ms(400)..=ms(402)).contains(&elapsed),
        "two waves of 200 ms took {elapsed:?}"
    );

    let (_, stats) = get_json(&c, format!("{}/admin/stats", t.url())).await;
    assert_eq!(
        stats,
        json!({"requests": 4, "in_flight": 0, "queued": 0, "stalled": 0,
               "rejected": 1, "errors_injected": 0, "jobs_queued": 0, "jobs_running": 0})
    );
}

/// A real server's queue: a request whose client gave up keeps its place
/// and its service time. `concurrency = 1`, 200 ms of service: A is
/// served, B queues and its client goes away (its connection closes), C
/// queues behind B. C is answered after three services (A, the abandoned
/// B, then C), not two; the stats show B queued, then in service, though
/// nobody waits for it.
#[tokio::test(start_paused = true)]
async fn an_abandoned_request_keeps_its_place_in_the_queue() {
    let (t, c) = start(TargetConfig {
        concurrency: Some(1),
        latency: Latency::Fixed(ms(200)),
        queue: 10,
        ..Default::default()
    })
    .await;
    let stats = || t.state().stats();
    let started = tokio::time::Instant::now();
    let a = fire(&c, &t);
    until("A served", || stats().in_flight == 1).await;
    // B's client has its own connection pool: dropping it closes B's
    // connection, as a client that timed out would.
    let b = {
        let own = reqwest::Client::new();
        let url = format!("{}/api/servers?per_page=1", t.url());
        tokio::spawn(async move { own.get(url).send().await.map(|r| r.status()) })
    };
    until("B queued", || stats().queued == 1).await;
    b.abort();
    assert!(b.await.unwrap_err().is_cancelled());
    let c_task = fire(&c, &t);
    until("C queued behind the abandoned B", || stats().queued == 2).await;
    assert_eq!(a.await.unwrap(), StatusCode::OK);
    until("the abandoned B in service, C still waiting", || {
        let s = stats();
        s.in_flight == 1 && s.queued == 1
    })
    .await;
    assert_eq!(c_task.await.unwrap(), StatusCode::OK);
    // Three services of 200 ms (virtual time; 1 ms timer resolution).
    let elapsed = started.elapsed();
    assert!(
        (ms(600)..=ms(603)).contains(&elapsed),
        "C waited for A and the abandoned B: {elapsed:?}"
    );
    let after = stats();
    assert_eq!((after.requests, after.in_flight, after.queued), (3, 0, 0));
}

#[tokio::test(start_paused = true)]
async fn overloaded_body_is_json() {
    let (t, c) = start(TargetConfig {
        concurrency: Some(1),
        latency: Latency::Fixed(ms(300)),
        queue: 0,
        ..Default::default()
    })
    .await;
    let first = fire(&c, &t);
    until("the first request holds the only permit", || {
        t.state().stats().in_flight == 1
    })
    .await;
    let second = tokio::spawn({
        let c = c.clone();
        let url = format!("{}/api/servers", t.url());
        async move {
            let r = c.get(url).send().await.unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }
    });
    until("the second request refused", || {
        t.state().stats().rejected == 1
    })
    .await;
    let (s, b) = second.await.unwrap();
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(b, json!({"error": "overloaded"}));
    assert_eq!(first.await.unwrap(), StatusCode::OK);
}

#[tokio::test(start_paused = true)]
async fn concurrency_can_change_at_runtime() {
    let (t, c) = start(TargetConfig {
        latency: Latency::Fixed(ms(200)),
        ..Default::default()
    })
    .await;
    let stats = || t.state().stats();
    // No limit: three at once are all served together.
    let tasks = vec![fire(&c, &t), fire(&c, &t), fire(&c, &t)];
    until("three served at once", || stats().in_flight == 3).await;
    assert_eq!(statuses(tasks).await, [StatusCode::OK; 3]);

    let (s, b) = post_json(
        &c,
        format!("{}/admin/config", t.url()),
        json!({"concurrency": 1, "queue": 0}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    // One permit, no queue: while one is served, two more are refused.
    let first = fire(&c, &t);
    until("one served", || stats().in_flight == 1).await;
    let others = vec![fire(&c, &t), fire(&c, &t)];
    until("two refused", || stats().rejected == 2).await;
    assert_eq!(statuses(others).await, [StatusCode::SERVICE_UNAVAILABLE; 2]);
    assert_eq!(first.await.unwrap(), StatusCode::OK);

    let (s, _) = post_json(
        &c,
        format!("{}/admin/config", t.url()),
        json!({"concurrency": null}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let tasks = vec![fire(&c, &t), fire(&c, &t), fire(&c, &t)];
    until("three served at once again", || stats().in_flight == 3).await;
    assert_eq!(statuses(tasks).await, [StatusCode::OK; 3]);
    assert_eq!(stats().rejected, 2);
}

/// Polls (wall clock, every 2 ms, at most 30 s) until `cond` holds.
async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cond() {
        assert!(Instant::now() < deadline, "not within 30 s: {what}");
        tokio::time::sleep(ms(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_delays_api_requests_but_not_health_or_admin() {
    let (t, c) = start(TargetConfig::default()).await;
    let base = t.url();
    let stall = |duration: &str| {
        post_json(
            &c,
            format!("{base}/admin/stall"),
            json!({ "duration": duration }),
        )
    };

    // A stall far longer than the test: an API request is held while
    // /health and /admin answer; ending the stall releases it.
    let (s, b) = stall("10m").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let held = tokio::spawn({
        let c = c.clone();
        let url = format!("{base}/api/servers");
        async move { c.get(url).send().await.unwrap().status() }
    });
    wait_for("the request is held by the stall", || {
        t.state().stats().stalled == 1
    })
    .await;
    let r = c.get(format!("{base}/health")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let (s, stats) = get_json(&c, format!("{base}/admin/stats")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(stats["stalled"], 1);
    let (s, config) = get_json(&c, format!("{base}/admin/config")).await;
    assert_eq!(s, StatusCode::OK, "{config}");
    assert!(!held.is_finished(), "the stall did not hold the request");
    let (s, b) = stall("0s").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let status = tokio::time::timeout(Duration::from_secs(30), held)
        .await
        .expect("ending the stall releases the request")
        .unwrap();
    assert_eq!(status, StatusCode::OK);
    assert_eq!(t.state().stats().stalled, 0);

    // A short stall ends by itself: the request sent during it is answered
    // no sooner than the stall's end (counted from before the stall was
    // asked for), and (30 s bound: a wall clock on a loaded machine) then.
    let asked = Instant::now();
    let (s, b) = stall("300ms").await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let r = tokio::time::timeout(
        Duration::from_secs(30),
        c.get(format!("{base}/api/servers")).send(),
    )
    .await
    .expect("the stall ended by itself")
    .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let took = asked.elapsed();
    assert!(
        took >= ms(300),
        "answered {took:?} after a 300 ms stall began"
    );
    // Over: the next request is not held at all.
    let (s, _) = get_json(&c, format!("{base}/api/servers")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(t.state().stats().stalled, 0);

    let (s, _) = stall("soon").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = post_json(&c, format!("{base}/admin/stall"), json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn error_rate_one_fails_every_api_request() {
    let (t, c) = start(TargetConfig {
        error_rate: 1.0,
        ..Default::default()
    })
    .await;
    let base = t.url();
    for _ in 0..20 {
        let (s, b) = get_json(&c, format!("{base}/api/servers")).await;
        assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(b, json!({"error": "injected"}));
    }
    let (s, _) = post_json(&c, format!("{base}/api/login"), json!({"user": "a"})).await;
    assert_eq!(s, StatusCode::INTERNAL_SERVER_ERROR);
    // Exempt endpoints still work.
    let (s, _) = get_json(&c, format!("{base}/health")).await;
    assert_eq!(s, StatusCode::OK);
    let (_, stats) = get_json(&c, format!("{base}/admin/stats")).await;
    assert_eq!(stats["errors_injected"], 21);
    assert_eq!(stats["requests"], 21);
}

#[tokio::test]
async fn admin_config_round_trips_and_rejects_bad_values() {
    let (t, c) = start(TargetConfig::default()).await;
    let url = format!("{}/admin/config", t.url());

    let (s, initial) = get_json(&c, url.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        initial,
        json!({"latency": "0", "error_rate": 0.0, "concurrency": null, "queue": 1024,
               "job_workers": 4, "job_duration": "2s", "page_size": 20})
    );

    let (s, b) = post_json(
        &c,
        url.clone(),
        json!({"latency": "2ms..5ms", "error_rate": 0.01, "concurrency": 8, "queue": 100}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    let expected = json!({"latency": "2ms..5ms", "error_rate": 0.01, "concurrency": 8,
                          "queue": 100, "job_workers": 4, "job_duration": "2s", "page_size": 20});
    assert_eq!(b, expected);
    let (_, now) = get_json(&c, url.clone()).await;
    assert_eq!(now, expected);
    assert_eq!(t.state().config().concurrency, Some(8));

    // The GET output is itself a valid POST body.
    let (s, b) = post_json(&c, url.clone(), now.clone()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b, expected);

    let (s, b) = post_json(
        &c,
        url.clone(),
        json!({"latency": "exp:5ms", "concurrency": null}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(b["latency"], "exp:5ms");
    assert_eq!(b["concurrency"], Value::Null);
    assert_eq!(b["queue"], 100);

    let (s, b) = post_json(
        &c,
        url.clone(),
        json!({"job_workers": 2, "job_duration": "50ms..150ms"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{b}");
    assert_eq!(
        (b["job_workers"].as_u64(), b["job_duration"].as_str()),
        (Some(2), Some("50ms..150ms"))
    );

    let before = get_json(&c, url.clone()).await.1;
    for bad in [
        json!({"error_rate": 1.5}),
        json!({"error_rate": -1}),
        json!({"error_rate": "lots"}),
        json!({"latency": "fast"}),
        json!({"latency": "10ms..2ms"}),
        json!({"concurrency": 0}),
        json!({"concurrency": -3}),
        json!({"queue": "big"}),
        json!({"page_size": 0}),
        json!({"job_duration": "2"}),
        json!({"job_workers": 0}),
        json!({"bogus": 1}),
        json!("latency"),
    ] {
        let (s, b) = post_json(&c, url.clone(), bad.clone()).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert!(b["error"].as_str().is_some_and(|e| !e.is_empty()), "{b}");
    }
    let r = c.post(&url).body("{").send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        get_json(&c, url.clone()).await.1,
        before,
        "bad posts change nothing"
    );
}

/// Virtual time: the request takes the service time set at run time.
#[tokio::test(start_paused = true)]
async fn admin_latency_applies_to_api_requests() {
    let (t, c) = start(TargetConfig::default()).await;
    let (s, _) = post_json(
        &c,
        format!("{}/admin/config", t.url()),
        json!({"latency": "150ms"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let start = tokio::time::Instant::now();
    let request = fire(&c, &t);
    until("the request is served", || t.state().stats().in_flight == 1).await;
    assert_eq!(request.await.unwrap(), StatusCode::OK);
    // Timers have 1 ms resolution.
    let took = start.elapsed();
    assert!((ms(150)..=ms(151)).contains(&took), "{took:?}");
}

#[tokio::test]
async fn serve_stops_on_its_shutdown_future() {
    let listener = tokio::net::TcpListener::bind(LOOPBACK).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(target::serve(
        listener,
        TargetConfig::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let c = reqwest::Client::new();
    let (s, _) = get_json(&c, format!("http://{addr}/health")).await;
    assert_eq!(s, StatusCode::OK);
    drop(c);
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("serve returns after shutdown")
        .unwrap()
        .unwrap();
    assert!(reqwest::get(format!("http://{addr}/health")).await.is_err());
}

#[tokio::test]
async fn running_target_shuts_down() {
    let (t, c) = start(TargetConfig::default()).await;
    let addr = t.addr;
    assert!(addr.ip().is_loopback());
    assert_ne!(addr.port(), 0);
    let (s, _) = get_json(&c, format!("http://{addr}/health")).await;
    assert_eq!(s, StatusCode::OK);
    t.shutdown().await;
    let fresh = reqwest::Client::new();
    assert!(fresh
        .get(format!("http://{addr}/health"))
        .send()
        .await
        .is_err());
}

#[tokio::test]
async fn invalid_config_is_refused() {
    let bad = TargetConfig {
        error_rate: 2.0,
        ..Default::default()
    };
    let e = target::spawn(LOOPBACK.parse().unwrap(), bad)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    assert!(e.to_string().contains("error_rate"), "{e}");
}

#[test]
fn check_listen_refuses_non_loopback() {
    for a in ["0.0.0.0:8080", "10.0.0.1:8080"] {
        let addr: SocketAddr = a.parse().unwrap();
        let e = target::check_listen(addr, false).unwrap_err();
        assert!(e.contains("--allow-non-loopback"), "{e}");
        assert!(e.contains("loopback"), "{e}");
    }
    for a in ["127.0.0.1:8080", "[::1]:8080"] {
        assert!(
            target::check_listen(a.parse().unwrap(), false).is_ok(),
            "{a}"
        );
    }
}

#[test]
fn latency_text_forms() {
    assert_eq!("0".parse::<Latency>().unwrap(), Latency::None);
    assert_eq!("5ms".parse::<Latency>().unwrap(), Latency::Fixed(ms(5)));
    assert_eq!(
        "2ms..10ms".parse::<Latency>().unwrap(),
        Latency::Uniform {
            min: ms(2),
            max: ms(10)
        }
    );
    assert_eq!(
        "exp:5ms".parse::<Latency>().unwrap(),
        Latency::Exponential { mean: ms(5) }
    );
    let e = "quick".parse::<Latency>().unwrap_err();
    assert!(e.contains("exp:"), "{e}");
}
