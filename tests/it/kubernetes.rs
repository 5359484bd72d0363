//! `ci/kubernetes/` and `Containerfile`, proven without a cluster.
//!
//! - The manifests parse, say what a split run needs (an Indexed Job of
//!   SEGMENTS pods, a merge Job that is never retried, a ReadWriteMany
//!   volume, non-root pods spread over nodes, resources), every stampede
//!   flag they use exists, every `$(VAR)` is set, and the settings reach
//!   the Jobs through Kustomize (`kubectl kustomize`, where kubectl is).
//! - **The Job's own command lines on separate hosts**: N network
//!   namespaces, each with its own address on a veth pair, play the pods:
//!   the settings are edited in one place (`settings.env`) and prepared by
//!   `run.sh --render` as a user does; each "pod" runs the run Job's
//!   container args with `$(VAR)`s expanded from the settings ConfigMap and
//!   `JOB_COMPLETION_INDEX` set as Kubernetes sets it, as the manifest's
//!   non-root user, with its own host name, its volume mounts mapped to
//!   directories (the ReadWriteMany volume is one shared directory), against
//!   a built-in target on the host side. The merge "pod" starts with them
//!   and waits, as the merge Job does. Checked: requests and agents exact,
//!   merged histograms the sum of the segments', one verdict, each pod's
//!   progress lines, and a missing pod's segment reported as partial.
//!
//! Namespaces need root and iproute2 (`.ci/run` installs it). Where they
//! cannot be made, the test says so loudly and passes outside CI; in CI
//! (`CI` set) it fails.

use crate::common::{
    counter_total as counter, succeeded, summary_value as summary, AGENTS_AND_OPS,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use yaml_rust2::{Yaml, YamlLoader};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn kube_dir() -> PathBuf {
    repo().join("ci/kubernetes")
}

/// Every YAML document in a file; the test fails on one that does not parse.
fn yaml_file(path: &Path) -> Vec<Yaml> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    YamlLoader::load_from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn s(y: &Yaml) -> String {
    match y {
        Yaml::String(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Real(r) => r.clone(),
        Yaml::Boolean(b) => b.to_string(),
        other => panic!("not a scalar: {other:?}"),
    }
}

fn strings(y: &Yaml) -> Vec<String> {
    y.as_vec()
        .unwrap_or_else(|| panic!("not a list: {y:?}"))
        .iter()
        .map(s)
        .collect()
}

/// `KEY=VALUE` lines of an env file (as `configMapGenerator.envs` reads it).
fn env_file(path: &Path) -> BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("not KEY=VALUE: {l}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// Kubernetes' expansion of `$(VAR)` in container args: a defined variable
/// is replaced, `$$` is a `$`, anything else stays as written.
fn expand(arg: &str, env: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = arg;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
        } else if let Some(close) = tail.strip_prefix("$(").and_then(|t| t.find(')')) {
            let name = &tail[2..2 + close];
            match env.get(name) {
                Some(value) => out.push_str(value),
                None => out.push_str(&tail[..3 + close]),
            }
            rest = &tail[3 + close..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    out
}

/// The manifests as applied: `kubectl kustomize DIR` where kubectl is,
/// else the files of DIR read as they are (the settings ConfigMap built
/// from settings.env, the replacements left out: then said loudly).
struct Applied {
    docs: Vec<Yaml>,
    kustomized: bool,
}

impl Applied {
    fn of(dir: &Path) -> Applied {
        if let Some(text) = kustomize(dir) {
            let docs = YamlLoader::load_from_str(&text).expect("kubectl kustomize output parses");
            return Applied {
                docs,
                kustomized: true,
            };
        }
        eprintln!(
            "NOTE: kubectl not found: the manifests of {} are read as files, without Kustomize",
            dir.display()
        );
        let mut docs = Vec::new();
        for file in ["results-pvc.yaml", "run-job.yaml", "merge-job.yaml"] {
            docs.extend(yaml_file(&dir.join(file)));
        }
        let settings = env_file(&dir.join("settings.env"));
        let mut data = yaml_rust2::yaml::Hash::new();
        for (k, v) in settings {
            data.insert(Yaml::String(k), Yaml::String(v));
        }
        let mut scenario = yaml_rust2::yaml::Hash::new();
        scenario.insert(
            Yaml::String("scenario.toml".into()),
            Yaml::String(std::fs::read_to_string(dir.join("scenario.toml")).unwrap()),
        );
        for (name, data) in [("stampede-settings", data), ("stampede-scenario", scenario)] {
            let doc = format!("kind: ConfigMap\nmetadata:\n  name: {name}\n");
            let mut doc = YamlLoader::load_from_str(&doc).unwrap().remove(0);
            if let Yaml::Hash(h) = &mut doc {
                h.insert(Yaml::String("data".into()), Yaml::Hash(data));
            }
            docs.push(doc);
        }
        Applied {
            docs,
            kustomized: false,
        }
    }

    fn get(&self, kind: &str, name: &str) -> &Yaml {
        self.docs
            .iter()
            .find(|d| {
                d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name)
            })
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    }

    fn config_map(&self, name: &str) -> BTreeMap<String, String> {
        let data = self.get("ConfigMap", name)["data"]
            .as_hash()
            .unwrap_or_else(|| panic!("ConfigMap {name} has no data"));
        data.iter().map(|(k, v)| (s(k), s(v))).collect()
    }
}

/// `kubectl kustomize DIR`, or None when kubectl is not installed.
fn kustomize(dir: &Path) -> Option<String> {
    let output = Command::new("kubectl")
        .arg("kustomize")
        .arg(dir)
        .output()
        .ok()?;
    assert!(
        output.status.success(),
        "kubectl kustomize {}: {}",
        dir.display(),
        String::from_utf8_lossy(&output.stderr)
    );
    Some(String::from_utf8(output.stdout).unwrap())
}

/// The one container of a Job's pods, and the pod spec.
fn pod_of(job: &Yaml) -> (&Yaml, &Yaml) {
    let pod = &job["spec"]["template"]["spec"];
    let containers = pod["containers"].as_vec().expect("containers");
    assert_eq!(containers.len(), 1, "one container per pod");
    (pod, &containers[0])
}

fn help(sub: &str) -> String {
    let output = Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .args([sub, "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    String::from_utf8(output.stdout).unwrap()
}

/// The `--flags` of an args list, each checked against `stampede SUB --help`.
fn check_flags(file: &str, args: &[String]) {
    let sub = &args[0];
    let help = help(sub);
    for flag in args.iter().filter(|a| a.starts_with("--")) {
        assert!(
            help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")),
            "{file}: `{flag}` is not a flag of `stampede {sub}`"
        );
    }
}

/// The final stage's `USER` of the Containerfile.
fn containerfile_user() -> String {
    let text = std::fs::read_to_string(repo().join("Containerfile")).unwrap();
    let last_from = text.rfind("\nFROM ").expect("a FROM");
    text[last_from..]
        .lines()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("the runtime stage sets USER")
        .trim()
        .to_string()
}

#[test]
fn manifests_parse_and_hold_what_a_split_run_needs() {
    let dir = kube_dir();
    for file in [
        "kustomization.yaml",
        "results-pvc.yaml",
        "run-job.yaml",
        "merge-job.yaml",
        "target.yaml",
    ] {
        assert!(!yaml_file(&dir.join(file)).is_empty(), "{file} is empty");
    }
    let kustomization = &yaml_file(&dir.join("kustomization.yaml"))[0];
    let resources = strings(&kustomization["resources"]);
    for r in &resources {
        assert!(dir.join(r).is_file(), "kustomization.yaml: no {r}");
    }
    let settings = env_file(&dir.join("settings.env"));
    for key in [
        "SEGMENTS",
        "API_URL",
        "HUB_URL",
        "START_AT",
        "RUN_ID",
        "MERGE_WAIT",
    ] {
        assert!(settings.contains_key(key), "settings.env: no {key}");
    }
    // SEGMENTS reaches the run Job's completions and parallelism.
    let replacement = &kustomization["replacements"][0];
    assert_eq!(
        replacement["source"]["fieldPath"].as_str(),
        Some("data.SEGMENTS")
    );
    assert_eq!(
        strings(&replacement["targets"][0]["fieldPaths"]),
        ["spec.completions", "spec.parallelism"]
    );
    assert_eq!(
        replacement["targets"][0]["select"]["name"].as_str(),
        Some("stampede-run")
    );
    // The image tag is the crate's version.
    assert_eq!(
        s(&kustomization["images"][0]["newTag"]),
        env!("CARGO_PKG_VERSION")
    );

    let pvc = &yaml_file(&dir.join("results-pvc.yaml"))[0];
    assert_eq!(strings(&pvc["spec"]["accessModes"]), ["ReadWriteMany"]);

    let user = containerfile_user();
    let run = &yaml_file(&dir.join("run-job.yaml"))[0];
    assert_eq!(run["spec"]["completionMode"].as_str(), Some("Indexed"));
    assert_eq!(run["spec"]["backoffLimitPerIndex"].as_i64(), Some(0));
    let merge = &yaml_file(&dir.join("merge-job.yaml"))[0];
    assert_eq!(merge["spec"]["backoffLimit"].as_i64(), Some(0));
    for (file, job) in [("run-job.yaml", run), ("merge-job.yaml", merge)] {
        let (pod, container) = pod_of(job);
        assert_eq!(pod["restartPolicy"].as_str(), Some("Never"), "{file}");
        let security = &pod["securityContext"];
        assert_eq!(security["runAsNonRoot"].as_bool(), Some(true), "{file}");
        assert_eq!(
            format!(
                "{}:{}",
                s(&security["runAsUser"]),
                s(&security["runAsGroup"])
            ),
            user,
            "{file}: the Containerfile's USER"
        );
        assert_eq!(
            container["securityContext"]["readOnlyRootFilesystem"].as_bool(),
            Some(true),
            "{file}"
        );
        assert!(
            !container["resources"]["requests"]["memory"].is_badvalue()
                && !container["resources"]["limits"]["memory"].is_badvalue(),
            "{file}: resources"
        );
        // Every $(VAR) of the args is set by the settings or the pod's env.
        let mut defined: Vec<String> = settings.keys().cloned().collect();
        if let Some(env) = container["env"].as_vec() {
            defined.extend(env.iter().map(|e| s(&e["name"])));
        }
        let args = strings(&container["args"]);
        for arg in &args {
            for var in arg.split("$(").skip(1) {
                let var = var.split(')').next().unwrap();
                assert!(
                    defined.iter().any(|d| d == var),
                    "{file}: $({var}) is set nowhere"
                );
            }
        }
        check_flags(file, &args);
    }
    // Run pods: the index as Kubernetes gives it, spread over nodes,
    // Guaranteed QoS.
    let (pod, container) = pod_of(run);
    let index = container["env"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|e| e["name"].as_str() == Some("JOB_COMPLETION_INDEX"))
        .expect("JOB_COMPLETION_INDEX");
    assert_eq!(
        index["valueFrom"]["fieldRef"]["fieldPath"].as_str(),
        Some("metadata.annotations['batch.kubernetes.io/job-completion-index']")
    );
    assert_eq!(
        pod["topologySpreadConstraints"][0]["topologyKey"].as_str(),
        Some("kubernetes.io/hostname")
    );
    assert_eq!(
        container["resources"]["requests"], container["resources"]["limits"],
        "requests = limits"
    );
    let args = strings(&container["args"]);
    let at = |flag: &str| args[args.iter().position(|a| a == flag).unwrap() + 1].clone();
    assert_eq!(at("--segment"), "$(JOB_COMPLETION_INDEX)/$(SEGMENTS)");
    // Live metrics: each pod serves on its `metrics` port, and the
    // PodMonitor scrapes exactly the run's pods there.
    let listen: std::net::SocketAddr = at("--metrics-listen").parse().unwrap();
    let ports = container["ports"].as_vec().unwrap();
    let metrics_port = ports
        .iter()
        .find(|p| p["name"].as_str() == Some("metrics"))
        .expect("a port named metrics");
    assert_eq!(
        metrics_port["containerPort"].as_i64(),
        Some(i64::from(listen.port()))
    );
    let monitor = &yaml_file(&dir.join("podmonitor.yaml"))[0];
    assert_eq!(monitor["kind"].as_str(), Some("PodMonitor"));
    let pod_labels = &run["spec"]["template"]["metadata"]["labels"];
    let selector = monitor["spec"]["selector"]["matchLabels"]
        .as_hash()
        .unwrap();
    assert!(!selector.is_empty());
    for (key, value) in selector {
        assert_eq!(
            &pod_labels[key.as_str().unwrap()],
            value,
            "selector {key:?}"
        );
    }
    let endpoint = &monitor["spec"]["podMetricsEndpoints"][0];
    assert_eq!(endpoint["port"].as_str(), Some("metrics"));
    assert_eq!(endpoint["path"].as_str(), Some("/metrics"));
    // The merge waits on the volume.
    let (_, merge_container) = pod_of(merge);
    let merge_args = strings(&merge_container["args"]);
    assert_eq!(merge_args[0], "merge");
    assert!(merge_args.iter().any(|a| a == "--wait"));

    // target.yaml serves the built-in target with flags that exist.
    let target = yaml_file(&dir.join("target.yaml"));
    let deployment = target
        .iter()
        .find(|d| d["kind"].as_str() == Some("Deployment"))
        .unwrap();
    let (_, target_container) = pod_of(deployment);
    check_flags("target.yaml", &strings(&target_container["args"]));

    // The shipped scenario is valid, segmented as the settings say.
    let output = Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .arg("validate")
        .arg(dir.join("scenario.toml"))
        .args(["--segment", &format!("0/{}", settings["SEGMENTS"])])
        .args(["--api", &settings["API_URL"], "--hub", &settings["HUB_URL"]])
        .output()
        .unwrap();
    succeeded(&output, "stampede");
}

#[test]
fn run_sh_renders_the_settings_into_the_jobs() {
    let tmp = tempfile::tempdir().unwrap();
    let checkout = tmp.path().join("kubernetes");
    copy_dir(&kube_dir(), &checkout);
    edit_settings(&checkout, &[("SEGMENTS", "7")]);
    let prepared = tmp.path().join("prepared");
    let before = chrono::Utc::now().timestamp();
    render(
        &checkout,
        &prepared,
        &repo().join("scenarios/quickstart.toml"),
        300,
        "run-42",
    );
    let applied = Applied::of(&prepared);
    let settings = applied.config_map("stampede-settings");
    assert_eq!(settings["SEGMENTS"], "7");
    assert_eq!(settings["RUN_ID"], "run-42");
    let start = chrono::DateTime::parse_from_rfc3339(&settings["START_AT"])
        .unwrap()
        .timestamp();
    assert!(
        (before + 299..=chrono::Utc::now().timestamp() + 300).contains(&start),
        "START_AT {} is not now + 300 s",
        settings["START_AT"]
    );
    assert_eq!(
        applied.config_map("stampede-scenario")["scenario.toml"],
        std::fs::read_to_string(repo().join("scenarios/quickstart.toml")).unwrap()
    );
    // The files of the checkout are not edited: only the prepared copy.
    assert_eq!(env_file(&checkout.join("settings.env"))["RUN_ID"], "run-1");
    if applied.kustomized {
        let run = applied.get("Job", "stampede-run");
        assert_eq!(run["spec"]["completions"].as_i64(), Some(7));
        assert_eq!(run["spec"]["parallelism"].as_i64(), Some(7));
        let (_, container) = pod_of(run);
        assert_eq!(
            container["image"].as_str().map(str::to_string),
            Some(format!("stampede:{}", env!("CARGO_PKG_VERSION")))
        );
    }
}

/// The build stage copies enough to build: `cargo check --locked` on a copy
/// of exactly what `Containerfile` copies (no container engine runs here).
#[test]
#[ignore = "checks a copy of the build context (~30 s); CI runs it"]
fn the_containerfile_copies_what_the_build_needs() {
    let text = std::fs::read_to_string(repo().join("Containerfile")).unwrap();
    let build = &text[..text.rfind("\nFROM ").unwrap()];
    let tmp = tempfile::tempdir().unwrap();
    let mut copied = 0;
    for line in build.lines().filter_map(|l| l.strip_prefix("COPY ")) {
        let words: Vec<&str> = line.split_whitespace().collect();
        let (sources, _dest) = words.split_at(words.len() - 1);
        for source in sources {
            let from = repo().join(source);
            let to = tmp.path().join(source);
            if from.is_dir() {
                copy_dir(&from, &to);
            } else {
                std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("{source}: {e}"));
            }
            copied += 1;
        }
    }
    assert!(copied >= 3, "{copied} sources copied");
    // The runtime stage runs what the build stage installed, as non-root.
    let runtime = &text[text.rfind("\nFROM ").unwrap()..];
    assert!(runtime.contains("COPY --from=build /usr/local/bin/stampede /usr/local/bin/stampede"));
    assert!(runtime.contains("ENTRYPOINT [\"/usr/local/bin/stampede\"]"));
    assert!(runtime.contains("COPY scenarios /opt/stampede/scenarios"));
    assert!(!containerfile_user().starts_with("0") && !containerfile_user().starts_with("root"));
    let build_line = build
        .lines()
        .find(|l| l.contains("cargo build"))
        .expect("cargo build in the build stage");
    assert!(build_line.contains("--locked") && build_line.contains("--release"));
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo().join("target"));
    let output = Command::new(env!("CARGO"))
        .args([
            "check",
            "--locked",
            "--offline",
            "--bin",
            "stampede",
            "--quiet",
        ])
        .current_dir(tmp.path())
        .env("CARGO_TARGET_DIR", target_dir)
        .output()
        .unwrap();
    succeeded(&output, "cargo check of the build context");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

/// Edit `KEY=VALUE` lines of a checkout's settings.env, as a user does.
fn edit_settings(checkout: &Path, values: &[(&str, &str)]) {
    let path = checkout.join("settings.env");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut out = String::new();
    for line in text.lines() {
        match values
            .iter()
            .find(|(k, _)| line.starts_with(&format!("{k}=")))
        {
            Some((k, v)) => out.push_str(&format!("{k}={v}\n")),
            None => out.push_str(&format!("{line}\n")),
        }
    }
    std::fs::write(&path, out).unwrap();
}

/// `run.sh --render DIR SCENARIO` of a checkout.
fn render(checkout: &Path, into: &Path, scenario: &Path, start_in: u64, run_id: &str) {
    let output = Command::new("bash")
        .arg(checkout.join("run.sh"))
        .arg("--render")
        .arg(into)
        .arg(scenario)
        .env("START_IN", start_in.to_string())
        .env("RUN_ID", run_id)
        .output()
        .unwrap();
    succeeded(&output, "run.sh --render");
}

// ---------------------------------------------------------------------------
// The Job's command lines on separate hosts (network namespaces).

const AGENTS: u64 = 30;
/// 20 arrivals/s for 6 s, two requests each.
const ARRIVALS: u64 = 120;
const STEPS: u64 = 2;
/// 1 command/s for the 4 s of `steady`.
const COMMANDS: u64 = 4;
const PODS: u32 = 3;

fn scenario() -> String {
    format!(
        r#"# The scenario of tests/it/kubernetes.rs: HTTP users and hub agents,
# with commands crossing the pods.
name = "cluster-proof"
seed = 5
[target]
api = "http://127.0.0.1:9"
hub = "ws://127.0.0.1:9"
[hub]
timeout = "5s"
{AGENTS_AND_OPS}
[[users]]
name = "browser"
steps = [
  {{ name = "list", get = "/api/servers?page=1", check = {{ status = 200 }} }},
  {{ name = "next", get = "/api/servers?page=2", check = {{ status = 200 }} }},
]
[[phases]]
name = "up"
duration = "2s"
agents = {{ connected = {AGENTS}, connect_rate = "max" }}
users = {{ rate = "20/s" }}
[[phases]]
name = "steady"
duration = "4s"
users = {{ rate = "20/s" }}
commanders = {{ rate = "1/s" }}
[slo]
"http.errors.rate" = "< 1%"
"hub.errors.rate" = "< 1%"
"hub.command.fanout.max" = "< 5s"
"#
    )
}

fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The test's hosts: a namespace per pod, each with a veth pair to the
/// host (`198.18.X.4i+1` host side, `.4i+2` in the namespace: RFC 2544's
/// benchmarking range, never routed). Removed on drop.
struct Hosts {
    names: Vec<String>,
    subnet: u8,
}

impl Hosts {
    fn create(count: u32) -> Result<Hosts, String> {
        let pid = std::process::id();
        let mut hosts = Hosts {
            names: Vec::new(),
            subnet: 100 + (pid % 100) as u8,
        };
        for i in 0..count {
            let ns = format!("stk{pid}-{i}");
            ip(&["netns", "add", &ns])?;
            hosts.names.push(ns.clone());
            let host_if = format!("stk{pid}h{i}");
            let ns_if = format!("stk{pid}n{i}");
            ip(&[
                "link", "add", &host_if, "type", "veth", "peer", "name", &ns_if,
            ])?;
            ip(&["link", "set", &ns_if, "netns", &ns])?;
            ip(&["-n", &ns, "link", "set", &ns_if, "name", "eth0"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/30", hosts.addr(i, 2)),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&[
                "addr",
                "add",
                &format!("{}/30", hosts.addr(i, 1)),
                "dev",
                &host_if,
            ])?;
            ip(&["link", "set", &host_if, "up"])?;
            ip(&[
                "-n",
                &ns,
                "route",
                "add",
                "default",
                "via",
                &hosts.addr(i, 1),
            ])?;
        }
        Ok(hosts)
    }

    /// Address `end` (1 host side, 2 namespace side) of pair `i`.
    fn addr(&self, i: u32, end: u32) -> String {
        format!("198.18.{}.{}", self.subnet, 4 * i + end)
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        // Deleting a namespace deletes its veth end, and so the pair.
        for ns in &self.names {
            let _ = ip(&["netns", "del", ns]);
        }
    }
}

/// Processes stopped (SIGKILL) on drop, whatever the test did.
#[derive(Default)]
struct Procs(Vec<Child>);

impl Drop for Procs {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Can namespaces be made here? Err: why not.
fn namespaces_available() -> Result<(), String> {
    let probe = format!("stk{}-probe", std::process::id());
    ip(&["netns", "add", &probe])?;
    ip(&["netns", "del", &probe])
}

/// A pod of a Job, as the kubelet would start it here.
struct PodSpec {
    args: Vec<String>,
    env: BTreeMap<String, String>,
    uid: String,
    gid: String,
    sysctls: Vec<(String, String)>,
}

/// What the kubelet does for pod `index` of `job`: the env from envFrom and
/// env (JOB_COMPLETION_INDEX from the index annotation), `$(VAR)`s
/// expanded, the volume mounts mapped to host directories.
fn pod_spec(
    applied: &Applied,
    job: &str,
    index: u32,
    mounts: &BTreeMap<String, PathBuf>,
) -> PodSpec {
    let (pod, container) = pod_of(applied.get("Job", job));
    let mut env = BTreeMap::new();
    for from in container["envFrom"].as_vec().unwrap() {
        env.extend(applied.config_map(from["configMapRef"]["name"].as_str().unwrap()));
    }
    if let Some(list) = container["env"].as_vec() {
        for e in list {
            let path = e["valueFrom"]["fieldRef"]["fieldPath"].as_str();
            assert_eq!(
                path,
                Some("metadata.annotations['batch.kubernetes.io/job-completion-index']"),
                "an env entry this test does not know"
            );
            env.insert(s(&e["name"]), index.to_string());
        }
    }
    let volumes = pod["volumes"].as_vec().unwrap();
    let mut args: Vec<String> = strings(&container["args"])
        .iter()
        .map(|a| expand(a, &env))
        .collect();
    for mount in container["volumeMounts"].as_vec().unwrap() {
        let name = mount["name"].as_str().unwrap();
        let volume = volumes
            .iter()
            .find(|v| v["name"].as_str() == Some(name))
            .unwrap();
        let key = if let Some(claim) = volume["persistentVolumeClaim"]["claimName"].as_str() {
            format!("pvc/{claim}")
        } else {
            format!(
                "configmap/{}",
                volume["configMap"]["name"].as_str().unwrap()
            )
        };
        let host = &mounts[&key];
        let path = mount["mountPath"].as_str().unwrap();
        for arg in &mut args {
            if arg == path || arg.starts_with(&format!("{path}/")) {
                *arg = format!("{}{}", host.display(), &arg[path.len()..]);
            }
        }
    }
    let security = &pod["securityContext"];
    let sysctls = security["sysctls"]
        .as_vec()
        .map(|l| l.iter().map(|x| (s(&x["name"]), s(&x["value"]))).collect())
        .unwrap_or_default();
    PodSpec {
        args,
        env,
        uid: s(&security["runAsUser"]),
        gid: s(&security["runAsGroup"]),
        sysctls,
    }
}

/// Start a pod's container in namespace `ns` with host name `name`: the
/// pod's sysctls, then the image's entrypoint (`bin`) with the args, as
/// the pod's user; stdout and stderr go to `<logs>/<name>.log`.
fn start_pod(ns: &str, name: &str, spec: &PodSpec, bin: &Path, logs: &Path) -> Child {
    for (key, value) in &spec.sysctls {
        let file = format!("/proc/sys/{}", key.replace('.', "/"));
        ip(&[
            "netns",
            "exec",
            ns,
            "sh",
            "-c",
            &format!("echo '{value}' > {file}"),
        ])
        .unwrap_or_else(|e| panic!("sysctl {key}: {e}"));
    }
    let log = std::fs::File::create(logs.join(format!("{name}.log"))).unwrap();
    Command::new("ip")
        .args(["netns", "exec", ns, "unshare", "--uts", "--", "sh", "-c"])
        .arg(r#"h=$1; u=$2; g=$3; shift 3; hostname "$h" && exec setpriv --reuid "$u" --regid "$g" --clear-groups -- "$@""#)
        .args(["sh", name, &spec.uid, &spec.gid])
        .arg(bin)
        .args(&spec.args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(&spec.env)
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start a pod")
}

/// Wait for every process to end (generous limit); their exit codes.
fn wait_all(procs: &mut Procs, limit: Duration) -> Vec<Option<i32>> {
    let deadline = Instant::now() + limit;
    let mut codes = vec![None; procs.0.len()];
    loop {
        let mut running = false;
        for (i, child) in procs.0.iter_mut().enumerate() {
            if codes[i].is_none() {
                match child.try_wait().unwrap() {
                    Some(status) => codes[i] = Some(status.code().unwrap_or(-1)),
                    None => running = true,
                }
            }
        }
        if !running || Instant::now() > deadline {
            return codes;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `stampede target` on the host side, at `listen`; its address.
fn host_target(listen: &str, procs: &mut Procs) -> String {
    use std::io::BufRead as _;
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("stampede"))
        .args(["target", "--listen", listen, "--allow-non-loopback"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start stampede target");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    procs.0.push(child);
    line.split("http://")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string()
}

/// The result directories of the segments under `dir` (one level down).
fn segment_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("summary.json").is_file() && summary(p)["meta"]["segment"].is_object())
        .collect();
    dirs.sort_by_key(|d| summary(d)["meta"]["segment"]["index"].as_u64());
    dirs
}

#[test]
fn the_jobs_command_lines_on_separate_hosts_merge_into_one_exact_result() {
    if let Err(why) = namespaces_available() {
        let message = format!(
            "network namespaces cannot be made here ({why}): the Kubernetes Job's command \
             lines were NOT proven on separate hosts (needs root and iproute2)"
        );
        if std::env::var_os("CI").is_some() {
            panic!("{message}");
        }
        eprintln!("\n!!! SKIPPED: {message}\n");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // The pods run as the manifest's non-root user: what they read and
    // write must be theirs (the volume's fsGroup), the image's binary
    // readable by all.
    std::fs::set_permissions(root, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let image_bin = root.join("bin/stampede");
    std::fs::create_dir_all(image_bin.parent().unwrap()).unwrap();
    let built = assert_cmd::cargo::cargo_bin("stampede");
    if std::fs::hard_link(&built, &image_bin).is_err() {
        std::fs::copy(&built, &image_bin).unwrap();
    }

    let hosts = Hosts::create(PODS + 1).expect("create the test's hosts");
    let mut serving = Procs::default();
    let target = host_target(&format!("{}:0", hosts.addr(0, 1)), &mut serving);

    // The one place: settings.env of a checkout, then run.sh --render.
    let checkout = root.join("checkout");
    copy_dir(&kube_dir(), &checkout);
    edit_settings(
        &checkout,
        &[
            ("SEGMENTS", &PODS.to_string()),
            ("API_URL", &format!("http://{target}")),
            ("HUB_URL", &format!("ws://{target}")),
            ("MERGE_WAIT", "2m"),
        ],
    );
    let scenario_file = root.join("cluster-proof.toml");
    std::fs::write(&scenario_file, scenario()).unwrap();
    let prepared = root.join("prepared");
    render(&checkout, &prepared, &scenario_file, 6, "run-7");
    let applied = Applied::of(&prepared);

    // The volumes: the ReadWriteMany claim is one directory all pods
    // share; a ConfigMap is a directory of its data's files.
    let volume = root.join("volume");
    std::fs::create_dir_all(&volume).unwrap();
    let scenario_volume = root.join("configmap-scenario");
    std::fs::create_dir_all(&scenario_volume).unwrap();
    for (file, text) in applied.config_map("stampede-scenario") {
        std::fs::write(scenario_volume.join(file), text).unwrap();
    }
    let run_spec = pod_spec(
        &applied,
        "stampede-run",
        0,
        &mounts(&volume, &scenario_volume),
    );
    let chown = Command::new("chown")
        .arg(format!("{}:{}", run_spec.uid, run_spec.gid))
        .arg(&volume)
        .status()
        .unwrap();
    assert!(chown.success());
    let logs = root.join("logs");
    std::fs::create_dir_all(&logs).unwrap();

    // kubectl apply: the run Job's pods and the merge Job's pod together.
    let mut procs = Procs::default();
    let mounts = mounts(&volume, &scenario_volume);
    for i in 0..PODS {
        let spec = pod_spec(&applied, "stampede-run", i, &mounts);
        assert_eq!(spec.env["JOB_COMPLETION_INDEX"], i.to_string());
        procs.0.push(start_pod(
            &hosts.names[i as usize],
            &format!("stampede-run-{i}"),
            &spec,
            &image_bin,
            &logs,
        ));
    }
    let merge_spec = pod_spec(&applied, "stampede-merge", 0, &mounts);
    procs.0.push(start_pod(
        &hosts.names[PODS as usize],
        "stampede-merge",
        &merge_spec,
        &image_bin,
        &logs,
    ));
    let codes = wait_all(&mut procs, Duration::from_secs(180));
    let log = |name: &str| std::fs::read_to_string(logs.join(format!("{name}.log"))).unwrap();
    for (i, code) in codes.iter().take(PODS as usize).enumerate() {
        let name = format!("stampede-run-{i}");
        assert_eq!(*code, Some(0), "{name}:\n{}", log(&name));
        // Plain progress lines, readable with `kubectl logs`.
        assert!(
            log(&name).lines().any(|l| l.starts_with("[    5s /")),
            "{name}: no progress line:\n{}",
            log(&name)
        );
    }
    let merge_log = log("stampede-merge");
    assert_eq!(codes[PODS as usize], Some(0), "merge:\n{merge_log}");

    // The segments, on the shared volume, written by the pods' user.
    let run_dir = volume.join("run-7");
    let segments = segment_dirs(&run_dir);
    assert_eq!(segments.len(), PODS as usize, "{segments:?}");
    let seg: Vec<Value> = segments.iter().map(|d| summary(d)).collect();
    for (i, s) in seg.iter().enumerate() {
        assert_eq!(s["meta"]["segment"]["index"], i as u64);
        assert_eq!(s["meta"]["host"], format!("stampede-run-{i}"));
        let owner = std::os::unix::fs::MetadataExt::uid(
            &std::fs::metadata(segments[i].join("summary.json")).unwrap(),
        );
        assert_eq!(owner.to_string(), run_spec.uid);
    }

    // One merged result, one verdict, the whole run exactly.
    let merged_dir = run_dir.join("merged");
    let merged = summary(&merged_dir);
    assert_eq!(merged["meta"]["exit_code"], 0);
    let verdicts = merged["verdicts"].as_array().unwrap();
    assert_eq!(verdicts.len(), 3, "the scenario's three SLOs, judged once");
    assert!(verdicts.iter().all(|v| v["pass"] == true), "{verdicts:?}");
    let from = &merged["meta"]["merged"];
    assert_eq!(from["count"], PODS);
    assert_eq!(from["missing"], serde_json::json!([]));
    assert_eq!(from["hosts_differ"], true);
    let hosts_seen: Vec<&str> = from["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["host"].as_str().unwrap())
        .collect();
    assert_eq!(
        hosts_seen,
        ["stampede-run-0", "stampede-run-1", "stampede-run-2"]
    );
    // Each pod measured its clock against the hub from the heartbeat acks
    // (one kernel clock here: offsets within their uncertainty), and the
    // merged note bounds the skew in the cross-pod latencies by them.
    for source in from["sources"].as_array().unwrap() {
        let clock = &source["clock"];
        assert!(clock["samples"].as_u64().unwrap() > 10, "{source}");
        assert_eq!(clock["against"], format!("http://{target}"));
        let (offset, uncertainty) = (
            clock["offset_ms"].as_f64().unwrap(),
            clock["uncertainty_ms"].as_f64().unwrap(),
        );
        assert!(offset.abs() <= uncertainty + 0.5, "{source}");
    }
    let notes: Vec<&str> = merged["meta"]["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    let skew = notes
        .iter()
        .find(|n| n.contains("clock skew"))
        .unwrap_or_else(|| panic!("no clock skew note in {notes:?}"));
    assert!(
        skew.contains("clock offsets against the hub: 0/3 stampede-run-0 ")
            && skew.contains("the skew in those latencies is at most"),
        "{skew}"
    );
    assert_eq!(counter(&merged, "http.requests"), ARRIVALS * STEPS);
    assert_eq!(counter(&merged, "http.errors"), 0);
    assert_eq!(counter(&merged, "hub.registrations"), AGENTS);
    assert_eq!(counter(&merged, "hub.commands"), COMMANDS);
    assert_eq!(counter(&merged, "hub.command.undelivered"), 0);
    // Each pod played its share: arrivals striped, agents split by id.
    let requests: Vec<u64> = seg.iter().map(|s| counter(s, "http.requests")).collect();
    assert_eq!(requests, vec![ARRIVALS / 3 * STEPS; 3]);
    let registered: Vec<u64> = seg
        .iter()
        .map(|s| counter(s, "hub.registrations"))
        .collect();
    assert_eq!(registered, vec![AGENTS / 3; 3]);

    // Merged histograms are the segments' sums, bit for bit (but the
    // whole-fleet measures, recomputed from the records).
    let parts: Vec<stampede::report::json::Summary> = segments
        .iter()
        .map(|d| stampede::report::json::read(&d.join("summary.json")).unwrap())
        .collect();
    let whole = stampede::report::json::read(&merged_dir.join("summary.json")).unwrap();
    let mut compared = 0;
    for entry in &whole.histograms {
        if ["hub.command.fanout", "hub.recovery"].contains(&entry.metric.as_str()) {
            continue;
        }
        let mut sum = stampede::metrics::new_histogram();
        for part in &parts {
            if let Some(h) = part
                .histograms
                .iter()
                .find(|h| h.id == entry.id && h.phase == entry.phase)
            {
                sum.add(stampede::report::json::decode_histogram(&h.hdr).unwrap())
                    .unwrap();
            }
        }
        let merged_hist = stampede::report::json::decode_histogram(&entry.hdr).unwrap();
        assert_eq!(merged_hist, sum, "{} {:?}", entry.metric, entry.phase);
        compared += 1;
    }
    assert!(compared >= 10, "{compared} histograms compared");
    let latency_samples: u64 = whole
        .histograms
        .iter()
        .filter(|h| h.metric == "http.latency" && h.phase.is_none())
        .map(|h| h.count)
        .sum();
    assert_eq!(latency_samples, ARRIVALS * STEPS);

    // A pod that never wrote its result: the merge Job's command line on a
    // volume where segment 1 is missing says PARTIAL and exits 3.
    let partial_run = volume.join("run-8");
    std::fs::create_dir_all(&partial_run).unwrap();
    for (i, dir) in segments.iter().enumerate() {
        if i != 1 {
            copy_dir(dir, &partial_run.join(dir.file_name().unwrap()));
        }
    }
    let chown = Command::new("chown")
        .arg("-R")
        .arg(format!("{}:{}", run_spec.uid, run_spec.gid))
        .arg(&partial_run)
        .status()
        .unwrap();
    assert!(chown.success());
    let mut partial_settings = applied;
    set_config(
        &mut partial_settings,
        "stampede-settings",
        &[("RUN_ID", "run-8"), ("MERGE_WAIT", "3s")],
    );
    let spec = pod_spec(&partial_settings, "stampede-merge", 0, &mounts);
    let mut merge_again = Procs::default();
    merge_again.0.push(start_pod(
        &hosts.names[PODS as usize],
        "stampede-merge-partial",
        &spec,
        &image_bin,
        &logs,
    ));
    let codes = wait_all(&mut merge_again, Duration::from_secs(60));
    let partial_log = log("stampede-merge-partial");
    assert_eq!(codes[0], Some(3), "{partial_log}");
    assert!(partial_log.contains("PARTIAL"), "{partial_log}");
    let partial = summary(&partial_run.join("merged"));
    assert_eq!(partial["meta"]["merged"]["missing"], serde_json::json!([1]));
    assert_eq!(partial["meta"]["exit_code"], 3);
    assert_eq!(
        counter(&partial, "http.requests"),
        ARRIVALS * STEPS - requests[1]
    );
    drop(serving);
    drop(hosts);
}

/// The host directories of the manifests' volumes, by kind and name.
fn mounts(volume: &Path, scenario: &Path) -> BTreeMap<String, PathBuf> {
    BTreeMap::from([
        ("pvc/stampede-results".to_string(), volume.to_path_buf()),
        (
            "configmap/stampede-scenario".to_string(),
            scenario.to_path_buf(),
        ),
    ])
}

/// Change values of an applied ConfigMap (as editing settings.env and
/// applying again would).
fn set_config(applied: &mut Applied, name: &str, values: &[(&str, &str)]) {
    let doc = applied
        .docs
        .iter_mut()
        .find(|d| {
            d["kind"].as_str() == Some("ConfigMap") && d["metadata"]["name"].as_str() == Some(name)
        })
        .unwrap();
    let Yaml::Hash(top) = doc else { panic!() };
    let Some(Yaml::Hash(data)) = top.get_mut(&Yaml::String("data".into())) else {
        panic!()
    };
    for (k, v) in values {
        data.insert(Yaml::String(k.to_string()), Yaml::String(v.to_string()));
    }
}

/// run.sh's steps against a stand-in `kubectl` (no cluster runs here): it
/// records each call and answers as a cluster would after the merge pod
/// ended with `exit`. run.sh must delete the previous Jobs before it
/// applies the prepared copy (settings filled in), follow the merge, copy
/// the merged result out and exit with the merge's code.
fn run_sh_with_stand_in_kubectl(exit: &str) -> (i32, Vec<String>, PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let bin = tmp.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let calls = tmp.path().join("calls");
    let applied = tmp.path().join("applied");
    let kubectl = format!(
        r#"#!/usr/bin/env bash
# A stand-in for kubectl: records the call, answers like a cluster.
echo "$*" >> '{calls}'
args=("$@")
[[ $1 == --namespace ]] && args=("${{@:3}}")
case "${{args[0]}}" in
  apply) cp -r "${{args[2]}}" '{applied}' ;;
  get)
    case "$*" in
      *status.phase*) echo Running ;;
      *exitCode*) echo '{exit}' ;;
    esac ;;
  logs) echo "results: /results/x/merged" ;;
  cp) mkdir -p "${{args[2]}}" && touch "${{args[2]}}/summary.json" ;;
esac
exit 0
"#,
        calls = calls.display(),
        applied = applied.display(),
    );
    std::fs::write(bin.join("kubectl"), kubectl).unwrap();
    std::fs::set_permissions(
        bin.join("kubectl"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let output = Command::new("bash")
        .arg(kube_dir().join("run.sh"))
        .current_dir(tmp.path())
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("NAMESPACE", "perf")
        .env("RUN_ID", "run-9")
        .env("RESULTS", tmp.path().join("reports"))
        .output()
        .unwrap();
    let calls = std::fs::read_to_string(&calls)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    (output.status.code().unwrap_or(-1), calls, applied, tmp)
}

#[test]
fn run_sh_applies_the_prepared_copy_and_exits_with_the_merges_code() {
    for exit in ["0", "1", "3"] {
        let (code, calls, applied, tmp) = run_sh_with_stand_in_kubectl(exit);
        assert_eq!(code.to_string(), exit, "{calls:#?}");
        let position = |prefix: &str| {
            calls
                .iter()
                .position(|c| c.starts_with(prefix))
                .unwrap_or_else(|| panic!("no `kubectl {prefix}…` in {calls:#?}"))
        };
        // Every call in the namespace asked for.
        assert!(
            calls.iter().all(|c| c.starts_with("--namespace perf ")),
            "{calls:#?}"
        );
        let delete = position("--namespace perf delete job stampede-run stampede-merge");
        let apply = position("--namespace perf apply -k ");
        let logs = position("--namespace perf logs -f job/stampede-merge");
        let copy = position("--namespace perf cp ");
        assert!(delete < apply && apply < logs && logs < copy, "{calls:#?}");
        // What was applied: the prepared copy, this run's settings in it.
        let settings = env_file(&applied.join("settings.env"));
        assert_eq!(settings["RUN_ID"], "run-9");
        assert!(chrono::DateTime::parse_from_rfc3339(&settings["START_AT"]).is_ok());
        assert_eq!(
            std::fs::read_to_string(applied.join("scenario.toml")).unwrap(),
            std::fs::read_to_string(kube_dir().join("scenario.toml")).unwrap()
        );
        // The merged result copied out of the volume.
        assert!(
            calls[copy].contains("/results/run-9/merged"),
            "{}",
            calls[copy]
        );
        assert!(tmp
            .path()
            .join("reports/run-9-merged/summary.json")
            .is_file());
    }
}
