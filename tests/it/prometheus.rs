//! The live metrics endpoint (`run --metrics-listen`) scraped by a real
//! Prometheus (Debian's `prometheus` package; `.ci/run` installs it).
//!
//! Each test starts its own Prometheus (scrape interval 1 s, its own data
//! directory and port) pointed at where the stampede binary will serve,
//! runs a short scenario against the built-in target with the endpoint
//! lingering after the run, waits until Prometheus has scraped the final
//! counts (`stampede_run_finished == 1`), then asks Prometheus's HTTP API:
//! - the request and error counts equal summary.json's, exactly, in total
//!   and per phase;
//! - `histogram_quantile(0.95, …)` over the buckets lands in the bucket
//!   that holds stampede's own p95 (they agree within the bucket's width);
//! - split over `--processes 2`, the two segments' series add up in PromQL
//!   to the merged result.
//!
//! Without `prometheus` on PATH a test fails in CI and is skipped (said
//! loudly) elsewhere.

use super::common::{counter_total, summary_value, ChildGuard};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Latency bounds of the exported buckets, in seconds (as the endpoint
/// writes them in `le`).
fn bounds_s() -> Vec<f64> {
    stampede::metrics::buckets::LATENCY_BOUNDS_US
        .iter()
        .map(|&b| b as f64 / 1e6)
        .collect()
}

/// Users on the built-in API; with `hub`, agents and a commander on the
/// built-in hub too, and half the agents dropped in `steady`.
fn scenario(name: &str, hub: bool) -> String {
    let (hub_target, hub_part, steady_agents) = if hub {
        (
            "hub = \"builtin\"",
            super::common::AGENTS_AND_OPS,
            "\nagents = { drop = { fraction = 0.5, how = \"reset\" } }",
        )
    } else {
        ("", "", "")
    };
    let warm_agents = if hub {
        "\nagents = { connected = 20 }\ncommanders = { rate = \"4/s\" }"
    } else {
        ""
    };
    format!(
        r#"
name = "{name}"
seed = 7
[target]
api = "builtin"
{hub_target}
[target.builtin]
latency = "2ms..80ms"
error_rate = 0.03
[[users]]
name = "shopper"
steps = [{{ name = "list", get = "/api/servers" }}]
[[users]]
name = "buyer"
steps = [{{ name = "order", post = "/api/jobs", json = {{ kind = "order" }}, check = {{ status = 202 }} }}]
{hub_part}
[[phases]]
name = "warm"
duration = "2s"
users = {{ rate = "80/s" }}{warm_agents}
[[phases]]
name = "steady"
duration = "3s"
users = {{ rate = "150/s" }}{steady_agents}
"#
    )
}

fn prometheus_missing() -> bool {
    std::process::Command::new("prometheus")
        .arg("--version")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
}

fn skip_without_prometheus() -> bool {
    if !prometheus_missing() {
        return false;
    }
    let message = "prometheus missing: the live metrics endpoint was NOT checked against a \
                   real Prometheus (apt-get install prometheus)";
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    eprintln!("\n!!! SKIPPED: {message}\n");
    true
}

/// `n` consecutive free loopback ports (bound and released: the kernel
/// hands ephemeral ports out in a random order, so a reuse between here
/// and the bind is unlikely; the run fails loudly, exit 2, if it happens).
fn free_ports(n: u16) -> u16 {
    for _ in 0..50 {
        let first = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = first.local_addr().unwrap().port();
        if port.checked_add(n).is_none() {
            continue;
        }
        let rest: Result<Vec<_>, _> = (1..n)
            .map(|i| TcpListener::bind(("127.0.0.1", port + i)))
            .collect();
        if rest.is_ok() {
            return port;
        }
    }
    panic!("no {n} consecutive free ports on 127.0.0.1");
}

/// A Prometheus of the test's own, scraping `targets` every second.
struct Prometheus {
    _process: ChildGuard,
    url: String,
    client: reqwest::Client,
}

impl Prometheus {
    async fn start(dir: &Path, targets: &[SocketAddr]) -> Prometheus {
        Prometheus::start_with(dir, targets, &[]).await
    }

    /// As [`Prometheus::start`], with `flags` (e.g. a feature flag).
    async fn start_with(dir: &Path, targets: &[SocketAddr], flags: &[&str]) -> Prometheus {
        let list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
                 scrape_configs:\n  - job_name: stampede\n    static_configs:\n      - targets: [{list}]\n"
            ),
        )
        .unwrap();
        let port = free_ports(1);
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let process = std::process::Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(flags)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start prometheus");
        let prometheus = Prometheus {
            _process: ChildGuard(process),
            url: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        // Ready to watch a run: every target has been tried once (down, as
        // nothing serves there yet). Readiness alone is not enough: the
        // scrape manager takes up new targets only after its discovery
        // reload interval (5 s), and the run must not start before.
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let tried = match prometheus
                .client
                .get(format!("{}/api/v1/targets", prometheus.url))
                .send()
                .await
            {
                Ok(response) => response
                    .json::<serde_json::Value>()
                    .await
                    .map(|t| {
                        let active = t["data"]["activeTargets"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        active.len() == targets.len()
                            && active.iter().all(|a| a["health"] == "down")
                    })
                    .unwrap_or(false),
                Err(_) => false,
            };
            if tried {
                break prometheus;
            }
            assert!(
                Instant::now() < until,
                "prometheus not ready after 60 s:\n{}",
                std::fs::read_to_string(dir.join("prometheus.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An instant query: each result's labels and value.
    async fn query(&self, promql: &str) -> Vec<(serde_json::Value, f64)> {
        let response: serde_json::Value = self
            .client
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", promql)])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(response["status"], "success", "{promql}: {response}");
        response["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let value = r["value"][1].as_str().unwrap().parse::<f64>().unwrap();
                (r["metric"].clone(), value)
            })
            .collect()
    }

    /// A range query from `start` (Unix seconds) to now, step 1 s: each
    /// series' labels and values.
    async fn query_range(&self, promql: &str, start: f64) -> Vec<(serde_json::Value, Vec<f64>)> {
        let end = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let response: serde_json::Value = self
            .client
            .get(format!("{}/api/v1/query_range", self.url))
            .query(&[
                ("query", promql.to_string()),
                ("start", format!("{start:.3}")),
                ("end", format!("{end:.3}")),
                ("step", "1".to_string()),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(response["status"], "success", "{promql}: {response}");
        response["data"]["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                let values = r["values"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v[1].as_str().unwrap().parse::<f64>().unwrap_or(f64::NAN))
                    .collect();
                (r["metric"].clone(), values)
            })
            .collect()
    }

    /// The one value of a query that aggregates to a single series.
    async fn value(&self, promql: &str) -> f64 {
        let results = self.query(promql).await;
        assert_eq!(results.len(), 1, "{promql}: {results:?}");
        results[0].1
    }

    /// Wait until Prometheus has scraped `segments` endpoints' final counts.
    async fn wait_for_final_scrapes(&self, scenario: &str, segments: usize) {
        let promql = format!(
            "count(max_over_time(stampede_run_finished{{scenario=\"{scenario}\"}}[5m]) == 1)"
        );
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            let results = self.query(&promql).await;
            if results
                .first()
                .is_some_and(|(_, n)| *n as usize == segments)
            {
                return;
            }
            assert!(
                Instant::now() < until,
                "prometheus never scraped the final counts of {segments} segment(s): {results:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Run the stampede binary to its end (with the endpoint lingering).
async fn run_stampede(dir: &Path, scenario: &Path, args: &[String]) -> PathBuf {
    let out = dir.join("reports");
    let mut command = std::process::Command::new(assert_cmd::cargo::cargo_bin("stampede"));
    command
        .arg("run")
        .arg(scenario)
        .arg("--out")
        .arg(&out)
        .args(args);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    super::common::succeeded(&output, "stampede run --metrics-listen");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("/metrics"),
        "the run says where it serves: {stderr}"
    );
    let dirs: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.into_iter().next().unwrap()
}

/// Run the stampede binary serving on `endpoint`, lingering 4 s: when it
/// started (Unix seconds) and its result directory.
async fn run_serving(dir: &Path, scenario: &Path, endpoint: SocketAddr) -> (f64, PathBuf) {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let args = [
        "--metrics-listen".to_string(),
        endpoint.to_string(),
        "--metrics-linger".into(),
        "4s".into(),
    ];
    (started, run_stampede(dir, scenario, &args).await)
}

/// stampede's own p95 of `http.latency` over everything, in seconds.
fn stampede_p95_s(result: &Path) -> f64 {
    let summary = stampede::report::json::read(&result.join("summary.json")).unwrap();
    let totals = summary.to_totals().unwrap();
    let merged = totals
        .select_hist("http.latency", &stampede::metrics::TagFilter::default())
        .unwrap();
    merged.value_at_quantile(0.95) as f64 / 1e6
}

/// The bucket `(lower, upper]` of the exported bounds that holds `value`.
fn bucket_of(value: f64) -> (f64, f64) {
    let bounds = bounds_s();
    let upper = bounds.partition_point(|&b| b < value);
    let lower = if upper == 0 { 0.0 } else { bounds[upper - 1] };
    (lower, bounds.get(upper).copied().unwrap_or(f64::INFINITY))
}

async fn check_against_summary(prometheus: &Prometheus, name: &str, result: &Path) {
    let summary = summary_value(result);
    let sel = format!("{{scenario=\"{name}\"}}");
    let requests = counter_total(&summary, "http.requests");
    let errors = counter_total(&summary, "http.errors");
    assert!(requests > 500, "a real run: {requests} requests");
    assert!(errors > 0, "the target injects errors: {errors}");
    let exported = prometheus
        .value(&format!(
            "sum(last_over_time(stampede_http_requests_total{sel}[5m]))"
        ))
        .await;
    assert_eq!(
        exported as u64, requests,
        "requests: Prometheus vs summary.json"
    );
    let exported_errors = prometheus
        .value(&format!(
            "sum(last_over_time(stampede_http_errors_total{sel}[5m]))"
        ))
        .await;
    assert_eq!(
        exported_errors as u64, errors,
        "errors: Prometheus vs summary.json"
    );

    // Per phase too.
    let by_phase = prometheus
        .query(&format!(
            "sum by (phase) (last_over_time(stampede_http_requests_total{sel}[5m]))"
        ))
        .await;
    assert_eq!(by_phase.len(), 2, "{by_phase:?}");
    for (labels, value) in by_phase {
        let phase = labels["phase"].as_str().unwrap().to_string();
        let expected: u64 = summary["counters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["metric"] == "http.requests")
            .map(|c| c["phases"][&phase].as_u64().unwrap())
            .sum();
        assert_eq!(value as u64, expected, "requests in phase {phase}");
    }

    // The latency histogram: Prometheus's p95 from the buckets lands in
    // the bucket that holds stampede's own p95.
    let p95 = prometheus
        .value(&format!(
            "histogram_quantile(0.95, sum by (le) (last_over_time(stampede_http_latency_seconds_bucket{sel}[5m])))"
        ))
        .await;
    let own = stampede_p95_s(result);
    let (lower, upper) = bucket_of(own);
    assert!(
        lower <= p95 && p95 <= upper,
        "histogram_quantile(0.95) = {p95} s, stampede's p95 = {own} s: not within its bucket \
         ({lower} s, {upper} s]"
    );
    // And the histogram's count is the number of latencies recorded.
    let count = prometheus
        .value(&format!(
            "sum(last_over_time(stampede_http_latency_seconds_count{sel}[5m]))"
        ))
        .await;
    let recorded = stampede::report::json::read(&result.join("summary.json"))
        .unwrap()
        .to_totals()
        .unwrap()
        .select_hist("http.latency", &stampede::metrics::TagFilter::default())
        .unwrap()
        .len();
    assert_eq!(
        count as u64, recorded,
        "latencies: Prometheus vs summary.json"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_counts_and_latency_summary_json_has() {
    if skip_without_prometheus() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let name = "prom-one";
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, scenario(name, true)).unwrap();
    let port = free_ports(1);
    let endpoint: SocketAddr = ([127, 0, 0, 1], port).into();
    let prometheus = Prometheus::start(tmp.path(), &[endpoint]).await;
    let (started, result) = run_serving(tmp.path(), &file, endpoint).await;
    prometheus.wait_for_final_scrapes(name, 1).await;
    check_against_summary(&prometheus, name, &result).await;
    // The labels a dashboard groups by.
    let series = prometheus
        .query(&format!(
            "last_over_time(stampede_http_requests_total{{scenario=\"{name}\",phase=\"steady\"}}[5m])"
        ))
        .await;
    let mut populations: Vec<_> = series
        .iter()
        .map(|(labels, _)| {
            assert_eq!(labels["segment"], "0/1");
            format!(
                "{}/{}",
                labels["population"].as_str().unwrap(),
                labels["step"].as_str().unwrap()
            )
        })
        .collect();
    populations.sort();
    assert_eq!(populations, ["buyer/order", "shopper/list"]);
    dashboard_panels_show_data(&prometheus, name, started).await;
}

/// Every query of the Grafana dashboard (dashboards/stampede.json), with
/// its variables set as Grafana would, is valid PromQL to a real
/// Prometheus and draws a line from this run (users, agents, a drop).
async fn dashboard_panels_show_data(prometheus: &Prometheus, name: &str, started: f64) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("dashboards/stampede.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let mut exprs: Vec<(String, String)> = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.push((
                panel["title"].as_str().unwrap().to_string(),
                target["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    for annotation in dashboard["annotations"]["list"].as_array().unwrap() {
        exprs.push((
            annotation["name"].as_str().unwrap().to_string(),
            annotation["expr"].as_str().unwrap().to_string(),
        ));
    }
    assert!(exprs.len() >= 15, "{} queries", exprs.len());

    for (title, expr) in exprs {
        let promql = expr
            .replace("$scenario", name)
            .replace("$segment", ".*")
            .replace("$population", ".*")
            .replace("$__rate_interval", "5s");
        let series = prometheus.query_range(&promql, started).await;
        assert!(
            series
                .iter()
                .any(|(_, values)| values.iter().any(|v| v.is_finite())),
            "panel `{title}`: `{promql}` drew nothing: {series:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_segments_of_a_split_run_add_up_in_promql_to_the_merged_result() {
    if skip_without_prometheus() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let name = "prom-split";
    let file = tmp.path().join("s.toml");
    // The endpoint in the scenario this time; child i serves on port + i.
    let port = free_ports(2);
    std::fs::write(
        &file,
        format!(
            "{}\n[metrics]\nlisten = \"127.0.0.1:{port}\"\nlinger = \"4s\"\n",
            scenario(name, false)
        ),
    )
    .unwrap();
    let endpoints: Vec<SocketAddr> = (0..2).map(|i| ([127, 0, 0, 1], port + i).into()).collect();
    let prometheus = Prometheus::start(tmp.path(), &endpoints).await;
    let result = run_stampede(tmp.path(), &file, &["--processes".into(), "2".into()]).await;
    prometheus.wait_for_final_scrapes(name, 2).await;
    let segments = prometheus
        .query(&format!(
            "sum by (segment) (last_over_time(stampede_http_requests_total{{scenario=\"{name}\"}}[5m]))"
        ))
        .await;
    let mut labels: Vec<_> = segments
        .iter()
        .map(|(l, v)| {
            assert!(*v > 0.0, "{l}: every segment sent requests");
            l["segment"].as_str().unwrap().to_string()
        })
        .collect();
    labels.sort();
    assert_eq!(labels, ["0/2", "1/2"]);
    check_against_summary(&prometheus, name, &result).await;
}

/// A taken port is bad input found before anything runs: exit 2, the
/// address and the way out named, no result directory.
#[test]
fn a_taken_metrics_port_is_bad_input_before_anything_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, scenario("taken", false)).unwrap();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let out = tmp.path().join("reports");
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .arg("run")
        .arg(&file)
        .args(["--out".as_ref(), out.as_os_str()])
        .args(["--metrics-listen", &addr.to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")) && stderr.contains("port 0"),
        "{stderr}"
    );
    assert!(!out.exists(), "nothing written");
    // A bare port is that port on loopback.
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .arg("run")
        .arg(&file)
        .args(["--out".as_ref(), out.as_os_str()])
        .args(["--metrics-listen", &addr.port().to_string()])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot listen on {addr}")),
        "{stderr}"
    );
}

/// `[metrics] listen` that is not an address is located in the file.
#[test]
fn a_metrics_listen_that_is_not_an_address_is_located() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("s.toml");
    let text = format!(
        "{}\n[metrics]\nlisten = \"localhost:9464\"\n",
        scenario("bad", false)
    );
    let line = text.lines().position(|l| l.starts_with("listen")).unwrap() + 1;
    std::fs::write(&file, text).unwrap();
    let output = std::process::Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("[metrics] listen is an IP:port address or a port, not `localhost:9464`")
            && stderr.contains(&format!("s.toml:{line}:")),
        "{stderr}"
    );
}

/// The last finite value of a range query's one series.
async fn last_value(prometheus: &Prometheus, promql: &str, started: f64) -> f64 {
    let series = prometheus.query_range(promql, started).await;
    assert_eq!(series.len(), 1, "{promql}: {series:?}");
    *series[0]
        .1
        .iter()
        .rev()
        .find(|v| v.is_finite())
        .unwrap_or_else(|| panic!("{promql}: no value: {series:?}"))
}

/// A Prometheus with native histograms asks for the protobuf format and
/// gets every histogram with exponential buckets: its count is the
/// number of latencies recorded and its p95 lands in the native bucket
/// (about 9 % wide) that holds stampede's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_with_native_histograms_reads_the_same_latencies() {
    if skip_without_prometheus() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let name = "prom-native";
    let file = tmp.path().join("s.toml");
    std::fs::write(&file, scenario(name, false)).unwrap();
    let endpoint: SocketAddr = ([127, 0, 0, 1], free_ports(1)).into();
    let prometheus = Prometheus::start_with(
        tmp.path(),
        &[endpoint],
        &["--enable-feature=native-histograms"],
    )
    .await;
    let (started, result) = run_serving(tmp.path(), &file, endpoint).await;
    prometheus.wait_for_final_scrapes(name, 1).await;
    let sel = format!("{{scenario=\"{name}\"}}");
    // Native series have no `_bucket`: the histogram is one sample.
    let count = last_value(
        &prometheus,
        &format!("histogram_count(sum(stampede_http_latency_seconds{sel}))"),
        started,
    )
    .await;
    let totals = stampede::report::json::read(&result.join("summary.json"))
        .unwrap()
        .to_totals()
        .unwrap();
    let merged = totals
        .select_hist("http.latency", &stampede::metrics::TagFilter::default())
        .unwrap();
    assert_eq!(
        count as u64,
        merged.len(),
        "native histogram count vs summary.json"
    );
    let p95 = last_value(
        &prometheus,
        &format!("histogram_quantile(0.95, sum(stampede_http_latency_seconds{sel}))"),
        started,
    )
    .await;
    let own = merged.value_at_quantile(0.95) as f64 / 1e6;
    // The native bucket holding it, computed here from the schema's
    // definition (bucket i = (2^((i-1)/2^schema), 2^(i/2^schema)]).
    let scale = f64::from(1u32 << stampede::metrics::buckets::NATIVE_SCHEMA);
    let index = (own.log2() * scale).ceil() as i32;
    let (lower, upper) = (
        2f64.powf(f64::from(index - 1) / scale),
        2f64.powf(f64::from(index) / scale),
    );
    assert!(
        lower <= p95 && p95 <= upper * (1.0 + 1e-9),
        "native histogram_quantile(0.95) = {p95} s, stampede's p95 = {own} s: not within its \
         native bucket ({lower} s, {upper} s]"
    );
}
