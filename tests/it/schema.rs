//! `stampede schema`: the JSON Schema of the scenario file.
//!
//! - The committed `schema/scenario.schema.json` is what the binary prints
//!   (a stale file fails, saying how to regenerate it), and every scenario
//!   users copy points at it with a `#:schema` first line.
//! - An independent validator, Python's `jsonschema` package (PyPI, pinned),
//!   checks the schema against the draft-7 meta-schema, accepts every
//!   scenario in `scenarios/` and refuses typical mistakes, naming the key;
//!   stampede itself refuses the same mistakes (`stampede validate`, or
//!   `run` for the built-in target's knobs, checked when it starts), so
//!   schema and parser agree. Every default the schema shows is valid under
//!   its own key. It runs in a venv at
//!   `schema-venv` in cargo's target directory, which `.ci/run` creates (a
//!   plain `cargo test` creates it on first use when python3 and PyPI are
//!   there). Without it the test fails in CI (`CI` set) and is skipped,
//!   loudly, elsewhere.
//! - The hand-written patterns of the unit types (durations, rates, VU
//!   counts, fractions, …) are read from the generated schema and run, with
//!   the regex crate, on good and bad values that go through the units
//!   parser too: each value is accepted by both or refused by both.

use assert_cmd::Command;
use serde_json::{json, Value};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The pinned version `.ci/run` installs too.
const JSONSCHEMA_PACKAGE: &str = "jsonschema==4.26.0";

const REGENERATE: &str = "cargo run -- schema --out schema/scenario.schema.json";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn schema_path() -> PathBuf {
    root().join(stampede::scenario::schema::SCHEMA_PATH)
}

fn stampede() -> Command {
    Command::cargo_bin("stampede").unwrap()
}

/// The scenario files users read and copy: `scenarios/*.toml` and the
/// Kubernetes Job's.
fn scenario_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("scenarios"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "scenarios/ holds {files:?}");
    files.push(root().join("ci/kubernetes/scenario.toml"));
    files
}

// --- the committed file -----------------------------------------------------

#[test]
fn the_committed_schema_is_what_stampede_schema_prints() {
    let out = stampede().arg("schema").output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let printed = String::from_utf8(out.stdout).unwrap();
    let committed = std::fs::read_to_string(schema_path()).unwrap_or_default();
    assert!(
        printed == committed,
        "{} is stale (or missing): it differs from what `stampede schema` prints; \
         regenerate it with `{REGENERATE}` and commit it",
        schema_path().display()
    );
    // It is JSON Schema draft 7 and names itself.
    let schema: Value = serde_json::from_str(&printed).unwrap();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert!(printed.ends_with("}\n"));

    // --out writes the same text.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.json");
    stampede()
        .args(["schema", "--out"])
        .arg(&file)
        .assert()
        .success()
        .stdout("");
    assert_eq!(std::fs::read_to_string(&file).unwrap(), printed);
    // A file that cannot be written: exit 3, naming it.
    stampede()
        .args(["schema", "--out"])
        .arg(dir.path().join("no/such/dir/s.json"))
        .assert()
        .code(3)
        .stderr(predicates::str::contains("no/such/dir/s.json"));
}

#[test]
fn every_scenario_points_at_the_committed_schema_on_its_first_line() {
    let schema = schema_path().canonicalize().unwrap();
    for file in scenario_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let first = text.lines().next().unwrap_or_default();
        let target = first.strip_prefix("#:schema ").unwrap_or_else(|| {
            panic!(
                "{}: the first line is `{first}`, not `#:schema <path to schema/scenario.schema.json>`",
                file.display()
            )
        });
        // Taplo resolves a relative path against the TOML file's directory.
        let resolved = file.parent().unwrap().join(target.trim());
        assert_eq!(
            resolved.canonicalize().ok().as_ref(),
            Some(&schema),
            "{}: `{first}` does not lead to {}",
            file.display(),
            schema.display()
        );
    }
}

// --- an independent validator: Python's jsonschema ---------------------------

fn venv() -> PathBuf {
    super::common::target_dir().join("schema-venv")
}

/// The venv's python with `jsonschema` (and the standard `tomllib`, Python
/// 3.11+) importable, creating the venv on first use; Err says why not.
fn python_with_jsonschema() -> Result<PathBuf, String> {
    super::common::python_venv(
        "schema-venv",
        JSONSCHEMA_PACKAGE,
        "import jsonschema, tomllib",
    )
    .map_err(|e| format!("{e} (tomllib needs Python 3.11+)"))
}

/// Reads `{"schema": path, "documents": {name: toml text}}` on stdin,
/// checks the schema against the draft-7 meta-schema, validates each
/// document and prints `{name: [[path, message], …]}` (path joined by `/`),
/// plus `"(defaults)": [[where, default, valid], …]` for every default in
/// the schema.
const VALIDATOR: &str = r#"
import json, sys, tomllib
import jsonschema
job = json.load(sys.stdin)
with open(job["schema"]) as f:
    schema = json.load(f)
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema)
out = {}
for name, text in job["documents"].items():
    doc = tomllib.loads(text)
    out[name] = [["/".join(str(p) for p in e.absolute_path), e.message]
                 for e in validator.iter_errors(doc)]
# Every default shown is valid under its own key's schema.
defaults = []
def walk(node, where):
    if isinstance(node, dict):
        if "default" in node:
            own = {k: v for k, v in node.items() if k != "default"}
            own["definitions"] = schema.get("definitions", {})
            ok = jsonschema.Draft7Validator(own).is_valid(node["default"])
            defaults.append([where, node["default"], ok])
        for key, value in node.items():
            walk(value, where + "/" + key)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            walk(value, where + "/" + str(i))
walk(schema, "")
out["(defaults)"] = defaults
print(json.dumps(out))
"#;

/// Each document's errors as the Python validator reports them.
fn python_errors(python: &Path, documents: &[(String, String)]) -> Value {
    let documents: serde_json::Map<String, Value> = documents
        .iter()
        .map(|(name, text)| (name.clone(), Value::String(text.clone())))
        .collect();
    let job = json!({ "schema": schema_path(), "documents": documents });
    let mut child = std::process::Command::new(python)
        .args(["-c", VALIDATOR])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(job.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the Python validator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A scenario both the schema and `stampede validate` accept; each mistake
/// below changes one thing in it.
const GOOD: &str = r#"name = "mistakes"
[target]
api = "builtin"
[[users]]
name = "shopper"
steps = [{ get = "/api/servers" }]
[[phases]]
name = "steady"
duration = "10s"
users = { rate = "5/s" }
"#;

struct Mistake {
    what: &'static str,
    /// `(from, to)` replaced in GOOD, or `("", extra)` appended.
    edit: (&'static str, &'static str),
    /// Where the validator points, and what its message says.
    path: &'static str,
    schema_says: &'static str,
    /// What `stampede validate` says.
    stampede_says: &'static str,
    /// Refused when the built-in target starts (`run`, exit 3), not by
    /// `validate`: its knobs are checked then.
    at_start: bool,
}

const MISTAKES: &[Mistake] = &[
    Mistake {
        what: "an unknown key",
        edit: ("", "[http]\ntimout = \"5s\"\n"),
        path: "http",
        schema_says: "'timout' was unexpected",
        stampede_says: "unknown field `timout`",
        at_start: false,
    },
    Mistake {
        what: "an unknown section",
        edit: ("", "[htpp]\ntimeout = \"5s\"\n"),
        path: "",
        schema_says: "'htpp' was unexpected",
        stampede_says: "unknown field `htpp`",
        at_start: false,
    },
    Mistake {
        what: "a duration without unit (a number)",
        edit: ("duration = \"10s\"", "duration = 30"),
        path: "phases/0/duration",
        schema_says: "30 is not of type 'string'",
        stampede_says: "a duration needs a unit",
        at_start: false,
    },
    Mistake {
        what: "a duration without unit (a string)",
        edit: ("", "[http]\ntimeout = \"5\"\n"),
        path: "http/timeout",
        schema_says: "'5' does not match",
        stampede_says: "missing unit",
        at_start: false,
    },
    Mistake {
        what: "a zero duration where it must be positive",
        edit: ("duration = \"10s\"", "duration = \"0s\""),
        path: "phases/0/duration",
        schema_says: "should not be valid",
        stampede_says: "must be greater than zero",
        at_start: false,
    },
    Mistake {
        what: "a rate without unit",
        edit: ("rate = \"5/s\"", "rate = 5"),
        path: "phases/0/users/rate",
        schema_says: "5 is not of type 'string'",
        stampede_says: "a rate needs a unit",
        at_start: false,
    },
    Mistake {
        what: "a step without a method",
        edit: ("{ get = \"/api/servers\" }", "{ name = \"browse\" }"),
        path: "users/0/steps/0",
        schema_says: "is not valid under any of the given schemas",
        stampede_says: "step 1: no URL",
        at_start: false,
    },
    Mistake {
        what: "a step with two methods",
        edit: (
            "{ get = \"/api/servers\" }",
            "{ get = \"/api/servers\", post = \"/api/jobs\" }",
        ),
        path: "users/0/steps/0",
        schema_says: "is valid under each of",
        stampede_says: "a step has exactly one of get / post / put / patch / delete / head",
        at_start: false,
    },
    Mistake {
        what: "a bad protocol name",
        edit: (
            "",
            "[[agents]]\nname = \"fleet\"\nprotocol = \"socket.io\"\n",
        ),
        path: "agents/0/protocol",
        schema_says: "'socket.io' is not one of ['socketio', 'websocket']",
        stampede_says: "unknown variant `socket.io`",
        at_start: false,
    },
    Mistake {
        what: "a bad HTTP version",
        edit: ("", "[http]\nversion = \"3\"\n"),
        path: "http/version",
        schema_says: "'3' is not one of ['auto', '1.1', '2']",
        stampede_says: "unknown variant `3`",
        at_start: false,
    },
    Mistake {
        what: "a bad feeder mode",
        edit: (
            "",
            "[[feeders]]\nname = \"accounts\"\nfile = \"a.csv\"\nmode = \"shuffled\"\n",
        ),
        path: "feeders/0/mode",
        schema_says: "'shuffled' is not one of ['sequential', 'random', 'unique']",
        stampede_says: "unknown variant `shuffled`",
        at_start: false,
    },
    Mistake {
        what: "a percentage above 100%",
        edit: ("", "[hub]\nrecovered = \"120%\"\n"),
        path: "hub/recovered",
        schema_says: "is not valid under any of the given schemas",
        stampede_says: "between 0% and 100%",
        at_start: false,
    },
    Mistake {
        what: "an SLO on an unknown metric",
        edit: ("", "[slo]\n\"http.latncy.p95\" = \"< 300ms\"\n"),
        path: "slo",
        schema_says: "'http.latncy.p95' does not match",
        stampede_says: "unknown metric",
        at_start: false,
    },
    Mistake {
        what: "an SLO target without an operator",
        edit: ("", "[slo]\n\"http.latency.p95\" = \"300ms\"\n"),
        path: "slo/http.latency.p95",
        schema_says: "'300ms' does not match",
        stampede_says: "expected an operator",
        at_start: false,
    },
    Mistake {
        what: "a bad generator_health",
        edit: ("", "[slo]\ngenerator_health = \"ignore\"\n"),
        path: "slo/generator_health",
        schema_says: "'ignore' is not one of ['warn', 'error', 'fail']",
        stampede_says: "generator_health is one of warn, error, fail",
        at_start: false,
    },
    Mistake {
        what: "an unknown [compare] stat",
        edit: ("", "[compare]\np96 = \"10%\"\n"),
        path: "compare",
        schema_says: "'p96' was unexpected",
        stampede_says: "unknown stat `p96`",
        at_start: false,
    },
    Mistake {
        what: "a bad built-in target latency",
        edit: (
            "api = \"builtin\"\n",
            "api = \"builtin\"\n[target.builtin]\nlatency = \"5\"\n",
        ),
        path: "target/builtin/latency",
        schema_says: "is not valid under any of the given schemas",
        stampede_says: "invalid latency `5`",
        at_start: false,
    },
    Mistake {
        what: "a built-in target knob out of range",
        edit: (
            "api = \"builtin\"\n",
            "api = \"builtin\"\n[target.builtin]\npage_size = 0\n",
        ),
        path: "target/builtin/page_size",
        schema_says: "0 is less than the minimum of 1",
        stampede_says: "page_size must be between 1 and 1000, got 0",
        at_start: true,
    },
];

fn apply(mistake: &Mistake) -> String {
    match mistake.edit {
        ("", extra) => format!("{GOOD}{extra}"),
        (from, to) => {
            assert!(
                GOOD.contains(from),
                "{}: `{from}` is not in GOOD",
                mistake.what
            );
            GOOD.replacen(from, to, 1)
        }
    }
}

/// `stampede validate` on `text` (or `run`, when `at_start`): its exit
/// code and stderr.
fn stampede_refusal(text: &str, at_start: bool) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::write(dir.path().join("a.csv"), "user\nann\n").unwrap();
    let mut cmd = stampede();
    if at_start {
        cmd.arg("run")
            .arg(&path)
            .arg("--quiet")
            .arg("--out")
            .arg(dir.path().join("out"));
    } else {
        cmd.arg("validate").arg(&path);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn python_jsonschema_accepts_every_scenario_and_refuses_typical_mistakes() {
    let python = match python_with_jsonschema() {
        Ok(python) => python,
        Err(problem) => {
            let message = format!(
                "the independent schema validator cannot run: {problem}. It needs python3 \
                 (3.11+) with venv and pip (apt-get install python3-venv python3-pip) and \
                 PyPI, or the venv .ci/run creates at {}",
                venv().display()
            );
            if std::env::var_os("CI").is_some() {
                panic!("{message}");
            }
            eprintln!("SKIPPED (not in CI): {message}");
            return;
        }
    };

    let mut documents: Vec<(String, String)> = scenario_files()
        .iter()
        .map(|f| (f.display().to_string(), std::fs::read_to_string(f).unwrap()))
        .collect();
    documents.push(("GOOD".into(), GOOD.into()));
    for mistake in MISTAKES {
        documents.push((mistake.what.into(), apply(mistake)));
    }
    let errors = python_errors(&python, &documents);

    // Every scenario users copy validates.
    for (name, _) in documents.iter().filter(|(n, _)| n.ends_with(".toml")) {
        assert_eq!(errors[name], json!([]), "{name} does not validate");
    }
    // The defaults the schema shows (from the model's Default impls and
    // default functions) are valid values.
    let defaults = errors["(defaults)"].as_array().unwrap();
    assert!(defaults.len() >= 30, "only {} defaults", defaults.len());
    for d in defaults {
        assert_eq!(
            d[2], true,
            "the default {} at {} is not valid under its own schema",
            d[1], d[0]
        );
    }
    // The base of the mistakes is good for both.
    assert_eq!(errors["GOOD"], json!([]));
    let (code, stderr) = stampede_refusal(GOOD, false);
    assert_eq!(code, Some(0), "{stderr}");

    for mistake in MISTAKES {
        let found = errors[mistake.what].as_array().unwrap();
        assert!(
            found
                .iter()
                .any(|e| e[0] == mistake.path
                    && e[1].as_str().unwrap().contains(mistake.schema_says)),
            "{}: the schema should refuse it at `{}` with \"{}\"; the validator said {found:?}",
            mistake.what,
            mistake.path,
            mistake.schema_says
        );
        let (code, stderr) = stampede_refusal(&apply(mistake), mistake.at_start);
        let (command, want) = if mistake.at_start {
            ("run", 3)
        } else {
            ("validate", 2)
        };
        assert_eq!(
            code,
            Some(want),
            "{}: stampede {command} should refuse it: {stderr}",
            mistake.what
        );
        assert!(
            stderr.contains(mistake.stampede_says),
            "{}: stampede {command} should say \"{}\": {stderr}",
            mistake.what,
            mistake.stampede_says
        );
    }
}

// --- the unit patterns against the units parser ------------------------------

/// Is `value` valid under `schema`? The keywords the unit schemas use
/// (`type`, `pattern`, `not`, `anyOf`, `oneOf`, `allOf`, `const`, `enum`,
/// `minimum`, `maximum`, `$ref`), patterns run by the regex crate; any
/// other validation keyword fails the test, so nothing is skipped silently.
fn valid(root: &Value, schema: &Value, value: &Value) -> bool {
    let Value::Object(map) = schema else {
        return schema.as_bool().expect("a schema is an object or a bool");
    };
    map.iter().all(|(keyword, arg)| match keyword.as_str() {
        "description" | "examples" | "title" | "default" | "format" => true,
        "$ref" => {
            let name = arg
                .as_str()
                .unwrap()
                .strip_prefix("#/definitions/")
                .unwrap();
            valid(root, &root["definitions"][name], value)
        }
        "type" => match arg.as_str().unwrap() {
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            other => panic!("type {other}"),
        },
        "pattern" => value.as_str().is_none_or(|s| {
            regex::Regex::new(arg.as_str().unwrap())
                .expect("the pattern compiles in the regex crate")
                .is_match(s)
        }),
        "not" => !valid(root, arg, value),
        "anyOf" | "oneOf" => {
            let n = arg
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| valid(root, s, value))
                .count();
            if keyword == "oneOf" {
                n == 1
            } else {
                n >= 1
            }
        }
        "allOf" => arg
            .as_array()
            .unwrap()
            .iter()
            .all(|s| valid(root, s, value)),
        "const" => value == arg,
        "enum" => arg.as_array().unwrap().contains(value),
        "minimum" => value.as_f64().is_none_or(|v| v >= arg.as_f64().unwrap()),
        "maximum" => value.as_f64().is_none_or(|v| v <= arg.as_f64().unwrap()),
        other => panic!("keyword `{other}` is not checked here"),
    })
}

/// Good and bad values of one unit type: its schema (a definition of the
/// generated schema) and the parser must agree on each.
fn agree(
    root: &Value,
    schema: &Value,
    what: &str,
    parses: impl Fn(&Value) -> Result<(), String>,
    good: &[Value],
    bad: &[Value],
) {
    assert!(schema.is_object(), "{what}: no schema");
    for value in good {
        assert!(
            valid(root, schema, value),
            "{what}: the schema refuses {value}, which is good"
        );
        if let Err(e) = parses(value) {
            panic!("{what}: the parser refuses {value}, which is good: {e}");
        }
    }
    for value in bad {
        assert!(
            !valid(root, schema, value),
            "{what}: the schema accepts {value}, which is bad"
        );
        assert!(
            parses(value).is_err(),
            "{what}: the parser accepts {value}, which is bad"
        );
    }
}

fn vals(items: &[&str]) -> Vec<Value> {
    items.iter().map(|s| json!(s)).collect()
}

/// Deserialize `value` as `T` (the same `Deserialize` the TOML parser
/// uses: strings go through the unit grammar, numbers get their own rules).
fn parses_as<T: serde::de::DeserializeOwned>(value: &Value) -> Result<(), String> {
    serde_json::from_value::<T>(value.clone())
        .map(drop)
        .map_err(|e| e.to_string())
}

#[test]
fn the_unit_patterns_accept_what_the_units_parser_accepts() {
    use stampede::scenario::hub::ConnectRate;
    use stampede::target::TargetConfig;
    use stampede::units::{ByteSize, Dur, DurRange, Fraction, PositiveDur, RateCurve, VuCurve};

    // From the printed schema, as editors and validators see it.
    let out = stampede().arg("schema").output().unwrap();
    let root: Value = serde_json::from_slice(&out.stdout).unwrap();
    let def = |name: &str| root["definitions"][name].clone();

    let durations_good = [
        "250ms",
        "1.5s",
        "1m30s",
        "0s",
        "2h",
        "1h30m",
        "850us",
        "850µs",
        "850μs",
        " 5s ",
        "1m 30s",
        "1 m",
        "0.25ms",
        "1h1m1s1ms1us",
        "007s",
    ];
    let durations_bad = [
        "5", "", "  ", "s", "5 s s", "30m1h", "1h1h", "1.s", ".5s", "-1s", "5sec", "1d", "1m30",
        "1e3s", "5ms5ms", "1,5s", "5ns",
    ];
    let mut bad = vals(&durations_bad);
    bad.extend([json!(5), json!(1.5), json!(true)]);
    agree(
        &root,
        &def("Duration"),
        "Duration",
        parses_as::<Dur>,
        &vals(&durations_good),
        &bad,
    );

    let mut good = vals(&durations_good);
    good.retain(|v| v != "0s");
    good.extend(vals(&["0.001ms", "0m1s"]));
    let mut bad_positive = bad.clone();
    bad_positive.extend(vals(&["0s", "0.0s", "0h0m0s", "0us", " 0ms "]));
    agree(
        &root,
        &def("PositiveDuration"),
        "PositiveDuration",
        parses_as::<PositiveDur>,
        &good,
        &bad_positive,
    );

    let mut good = vals(&durations_good);
    good.extend(vals(&[
        "500ms..2s",
        "0s..1s",
        " 1s .. 2s ",
        "1m30s..2m",
        "1s..1s",
    ]));
    let mut bad_range = bad.clone();
    bad_range.extend(vals(&[
        "1s..",
        "..1s",
        "1s..2s..3s",
        "1..2s",
        "1s...2s",
        "1s-2s",
    ]));
    agree(
        &root,
        &def("DurationRange"),
        "DurationRange",
        parses_as::<DurRange>,
        &good,
        &bad_range,
    );

    let rates_good = ["500/s", "30/m", "2/h", "0.5/s", " 5 / s ", "007/s"];
    let rates_bad = [
        "0/s", "0.0/m", "500", "500/d", "/s", "5/", "-5/s", "5/s/s", "fast", "", "5 /sec",
    ];
    let mut good = vals(&rates_good);
    good.extend(vals(&[
        "20/s -> 200/s",
        "0/s -> 10/s",
        "10/s->0/m",
        "1/h -> 1/s",
    ]));
    let mut bad = vals(&rates_bad);
    bad.extend(vals(&[
        "0/s -> 0/m",
        "5/s -> 6/s -> 7/s",
        "5/s ->",
        "-> 5/s",
        "5 -> 6",
    ]));
    bad.extend([json!(500), json!(0.5)]);
    agree(
        &root,
        &def("Rate"),
        "Rate",
        parses_as::<RateCurve>,
        &good,
        &bad,
    );

    let mut good = vals(&rates_good);
    good.push(json!("max"));
    let mut bad = vals(&rates_bad);
    bad.extend(vals(&["20/s -> 200/s", "maximum"]));
    bad.push(json!(500));
    agree(
        &root,
        &def("ConnectRate"),
        "ConnectRate",
        parses_as::<ConnectRate>,
        &good,
        &bad,
    );

    let mut good = vals(&["10 -> 100", "0 -> 5", "5->0", "300", " 7 "]);
    good.extend([json!(300), json!(1), json!(u32::MAX)]);
    let mut bad = vals(&[
        "0",
        "0 -> 0",
        "1.5",
        "10 ->",
        "-> 10",
        "a",
        "-5",
        "",
        "1 -> 2 -> 3",
    ]);
    bad.extend([
        json!(0),
        json!(-5),
        json!(1.5),
        json!(u64::from(u32::MAX) + 1),
    ]);
    agree(
        &root,
        &def("VuCount"),
        "VuCount",
        parses_as::<VuCurve>,
        &good,
        &bad,
    );

    let mut good = vals(&[
        "20%", "0.5%", "100%", "0%", "100.0%", " 20 % ", "007%", "99.99%",
    ]);
    good.extend([json!(0.2), json!(0), json!(1), json!(1.0)]);
    let mut bad = vals(&[
        "120%", "100.5%", "20", "-5%", "%", "20%%", "", "1e1%", "0.2",
    ]);
    bad.extend([json!(1.5), json!(-0.1), json!(2), json!(true)]);
    agree(
        &root,
        &def("Fraction"),
        "Fraction",
        parses_as::<Fraction>,
        &good,
        &bad,
    );

    // Sizes (`[http] max_body`): bytes as a number, or a string with a unit.
    let mut good = vals(&[
        "16MiB", "512KB", "1.5GB", " 2 GiB ", "0B", "1048576", "007KiB", "1.25MiB",
    ]);
    good.extend([json!(0), json!(1048576)]);
    let mut bad = vals(&[
        "16mib", "16 MiBs", "1.5", "MiB", "1e6", "", "-1KB", "16M", "1,5MB",
    ]);
    bad.extend([json!(-1), json!(1.5), json!(true)]);
    agree(
        &root,
        &def("Size"),
        "Size",
        parses_as::<ByteSize>,
        &good,
        &bad,
    );

    // The built-in target's knobs: a Latency, and the hub's ping durations.
    let knob = |key: &'static str| {
        move |value: &Value| -> Result<(), String> {
            let config: TargetConfig =
                serde_json::from_value(json!({ key: value })).map_err(|e| e.to_string())?;
            config.validate().map_err(|e| e.to_string())
        }
    };
    let mut good = vals(&[
        "0",
        "none",
        "NONE",
        "5ms",
        "2ms..10ms",
        "exp:5ms",
        "0..5ms",
        "exp: 5ms",
        "1m30s",
    ]);
    good.push(json!(0));
    let mut bad = vals(&[
        "5",
        "",
        "exp:5",
        "fast",
        "2ms..",
        "..2ms",
        "exp:",
        "5ms..5ms..6ms",
    ]);
    bad.extend([json!(5), json!(0.0)]);
    agree(
        &root,
        &def("Latency"),
        "Latency",
        knob("latency"),
        &good,
        &bad,
    );
    let good = vals(&["25s", "500ms", "1m30s"]);
    let mut bad = vals(&["0", "0s", "5", "", "none"]);
    bad.push(json!(25));
    agree(
        &root,
        &def("TargetDuration"),
        "TargetDuration",
        knob("hub_ping_interval"),
        &good,
        &bad,
    );
}
