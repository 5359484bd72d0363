//! report.html in a real browser: headless Chromium loads a report from a
//! real run (HTTP users and hub agents against the built-in target), dumps
//! the DOM it ended up with and takes a screenshot. The page must load
//! without console errors or failed requests, and every chart must be an
//! SVG that draws something.
//!
//! They need Chromium, so they are `#[ignore]`d with the reason: a plain
//! `cargo test` lists them as ignored (never as passed), and `.ci/run`,
//! which installs Debian's `chromium`, runs them with
//! `cargo test -- --include-ignored`. Run without Chromium they fail,
//! saying so.

use crate::common::Fixture;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn chromium() -> Option<PathBuf> {
    [
        "chromium",
        "chromium-browser",
        "google-chrome",
        "google-chrome-stable",
    ]
    .iter()
    .find_map(|name| {
        std::env::split_paths(&std::env::var_os("PATH")?)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Why the tests here are ignored by default: the `#[ignore]` reason, and
/// the panic when one is run without Chromium.
const NEEDS_CHROMIUM: &str =
    "needs chromium (apt-get install chromium); .ci/run runs it: cargo test -- --include-ignored";

/// The browser, or a panic saying what is missing.
fn chromium_or_fail() -> PathBuf {
    chromium().unwrap_or_else(|| panic!("no chromium on PATH: {NEEDS_CHROMIUM}"))
}

/// What Chromium made of a page.
struct Rendered {
    dom: String,
    /// Errors, failed loads, console output and resources fetched.
    errors: Vec<String>,
}

/// Run headless Chromium on `page` with the issue's flags plus `extra`;
/// returns its stdout and its log (stderr). Bounded: killed after 60 s.
fn chromium_run(browser: &Path, page: &Path, profile: &Path, extra: &[&str]) -> (String, String) {
    let child = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-extensions",
            "--disable-sync",
            "--enable-logging=stderr",
            "--log-level=0",
            "--window-size=1280,2400",
            "--virtual-time-budget=3000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start chromium");
    // Output is read while it runs (a DOM dump is larger than a pipe's
    // buffer); bounded: killed after 60 s.
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(output) => output.expect("chromium output"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("chromium did not finish within 60 s");
        }
    };
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Watches the page from inside: errors (uncaught, failed resource loads,
/// `console.error` / `console.warn`) and every resource the page fetched,
/// written onto `<html>` at `load` so `--dump-dom` carries them out.
const PROBE: &str = r#"<script>(function () {
  var errors = [];
  window.addEventListener('error', function (e) {
    var t = e.target || {};
    errors.push(e.message || ('failed to load ' + (t.src || t.href || t.tagName)));
  }, true);
  ['error', 'warn'].forEach(function (level) {
    var original = console[level];
    console[level] = function () {
      errors.push(level + ': ' + Array.prototype.join.call(arguments, ' '));
      original.apply(console, arguments);
    };
  });
  window.addEventListener('load', function () {
    var fetched = performance.getEntriesByType('resource').map(function (r) { return r.name; });
    document.documentElement.setAttribute('data-probe-errors', JSON.stringify(errors));
    document.documentElement.setAttribute('data-probe-resources', JSON.stringify(fetched));
    document.documentElement.setAttribute('data-probe-done', 'yes');
  });
})();</script>"#;

fn render(browser: &Path, page: &Path, screenshot: &Path) -> Rendered {
    let profile = tempfile::tempdir().expect("profile dir");
    // The probe goes into a copy, first thing in the document.
    let html = std::fs::read_to_string(page).expect("read the page");
    // The copy drops the page's Content-Security-Policy (it would block the
    // probe, an inline script) — so anything the page tried to fetch is
    // fetched there, and seen.
    let html = match html.find("<meta http-equiv=\"Content-Security-Policy\"") {
        Some(i) => {
            let end = i + html[i..].find('>').expect("a closed meta") + 1;
            format!("{}{}", &html[..i], &html[end..])
        }
        None => html,
    };
    let probed = profile.path().join("probed.html");
    let at = html
        .find("<head>")
        .map(|i| i + "<head>".len())
        .or_else(|| {
            html.find("<html")
                .and_then(|i| html[i..].find('>').map(|j| i + j + 1))
        })
        .unwrap_or(0);
    std::fs::write(&probed, format!("{}{PROBE}{}", &html[..at], &html[at..])).expect("write probe");
    let (dom, log) = chromium_run(browser, &probed, profile.path(), &["--dump-dom"]);
    let shot = format!("--screenshot={}", screenshot.display());
    let (_, shot_log) = chromium_run(browser, page, profile.path(), &[&shot]);
    assert!(
        dom.contains("data-probe-done=\"yes\""),
        "the page never finished loading:\n{log}"
    );
    let attr = |name: &str| -> Vec<String> {
        let key = format!("{name}=\"");
        let Some(i) = dom.find(&key) else {
            return vec![format!("{name} missing")];
        };
        let raw = &dom[i + key.len()..];
        let raw = &raw[..raw.find('"').unwrap_or(raw.len())];
        let json = raw.replace("&quot;", "\"").replace("&amp;", "&");
        serde_json::from_str(&json).unwrap_or_else(|e| vec![format!("{name}: {e}: {json}")])
    };
    let mut errors = attr("data-probe-errors");
    errors.extend(
        attr("data-probe-resources")
            .into_iter()
            .map(|r| format!("fetched a resource: {r}")),
    );
    // Whatever the page logged to the console at all (the report has no
    // reason to log): Chromium writes `CONSOLE` lines to its log.
    errors.extend(
        log.lines()
            .chain(shot_log.lines())
            .filter(|l| l.contains(":CONSOLE") || l.contains("CONSOLE("))
            .map(str::to_owned),
    );
    Rendered { dom, errors }
}

/// The `<svg …>…</svg>` elements of a DOM dump.
fn svgs(dom: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = dom;
    while let Some(start) = rest.find("<svg") {
        let Some(len) = rest[start..].find("</svg>") else {
            break;
        };
        out.push(&rest[start..start + len + "</svg>".len()]);
        rest = &rest[start + len..];
    }
    out
}

/// True when an SVG draws something: a path with points, a polyline, a
/// line, a rect or a circle.
fn draws(svg: &str) -> bool {
    [
        "<path",
        "<polyline",
        "<line",
        "<rect",
        "<circle",
        "<polygon",
    ]
    .iter()
    .any(|tag| svg.matches(tag).count() > 1)
}

#[test]
#[ignore = "needs chromium (apt-get install chromium); .ci/run runs it: cargo test -- --include-ignored"]
fn the_error_detector_catches_a_broken_page() {
    // The checks below can fail: a page with a console error and a missing
    // image is caught.
    let browser = chromium_or_fail();
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("broken.html");
    std::fs::write(
        &page,
        "<!doctype html><html><body><svg></svg><img src=\"missing.png\">\
         <script>console.error('deliberate failure')</script></body></html>",
    )
    .unwrap();
    let rendered = render(&browser, &page, &dir.path().join("broken.png"));
    assert!(
        rendered
            .errors
            .iter()
            .any(|e| e.contains("deliberate failure")),
        "console.error not seen: {:?}",
        rendered.errors
    );
    assert!(svgs(&rendered.dom).iter().all(|s| !draws(s)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium (apt-get install chromium); .ci/run runs it: cargo test -- --include-ignored"]
async fn report_html_renders_in_chromium_without_errors() {
    let browser = chromium_or_fail();
    let fixture = Fixture::new(
        r#"
name = "browser <check> & \"quotes\""
[target]
api = "builtin"
hub = "builtin"
[target.builtin]
latency = "1ms..3ms"
[[users]]
name = "shopper"
steps = [
  { name = "list", get = "/api/servers", check = { status = 200 } },
  { name = "missing <b>", get = "/api/nope" },
]
[[agents]]
name = "agent"
register = { event = "register", data = { id = "a-{{ agent.id }}" }, ack = true }
heartbeat = { every = "300ms", ack = true }
reconnect = { base = "50ms", max = "200ms" }
[[phases]]
name = "warm"
duration = "2s"
users = { rate = "20/s" }
agents = { connected = 20, connect_rate = "max" }
[[phases]]
name = "wave"
duration = "2s"
users = { rate = "40/s" }
agents = { drop = { fraction = 0.5, how = "reset" } }
[slo]
"http.latency.p95" = "< 1s"
"http.errors.rate" = "< 1%"
"hub.recovery" = "< 10s"
"#,
    );
    let outcome = fixture.run(Default::default()).await;
    let page = outcome.result_dir.join("report.html");
    assert!(
        page.is_file(),
        "no report.html in {}",
        outcome.result_dir.display()
    );
    let screenshot = outcome.result_dir.join("report.png");
    let rendered = render(&browser, &page, &screenshot);
    assert!(
        rendered.errors.is_empty(),
        "console errors: {:#?}",
        rendered.errors
    );
    // Chromium loaded the page (the dump is the DOM after load).
    assert!(rendered.dom.contains("<body"), "no DOM: {}", rendered.dom);
    // Scenario strings arrive escaped: the name shows as text, no <check> element.
    assert!(!rendered.dom.contains("<check>"), "unescaped scenario name");
    assert!(
        rendered.dom.contains("browser &lt;check&gt;"),
        "scenario name missing"
    );
    // Every chart is an SVG that draws something.
    let charts = svgs(&rendered.dom);
    assert!(charts.len() >= 5, "{} charts", charts.len());
    for (i, svg) in charts.iter().enumerate() {
        assert!(
            draws(svg),
            "chart {i} draws nothing: {}",
            &svg[..svg.len().min(400)]
        );
    }
    // A real screenshot (not a blank page): a PNG of some size.
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert_eq!(&png[1..4], b"PNG");
    assert!(png.len() > 20_000, "screenshot of {} bytes", png.len());
    // Kept for a person to look at when asked.
    if let Ok(dir) = std::env::var("STAMPEDE_KEEP_SCREENSHOT") {
        let _ = std::fs::copy(&screenshot, Path::new(&dir).join("report.png"));
        let _ = std::fs::copy(&page, Path::new(&dir).join("report.html"));
    }
}
