//! The JSON Schema of the scenario file (`stampede schema`), generated from
//! the serde model the parser reads ([`super::model`] and the types it
//! uses): the same `#[serde]` attributes decide the keys, the defaults and
//! which unknown keys are refused, and the doc comments become the
//! descriptions, so the schema cannot drift from the parser. The unit types
//! bring their own patterns ([`crate::units::schema`]).
//!
//! Draft 7, which Taplo (Even Better TOML) and most editors understand. A
//! scenario file points at it with a first line
//! `#:schema ../schema/scenario.schema.json`.
//!
//! `[slo]` and `[compare]` are maps the compiler reads key by key; their
//! schemas ([`slo`], [`compare`]) say what it accepts as far as a schema
//! can: the fixed keys, the known metric names, the shape of a target.

use schemars::generate::SchemaSettings;
use schemars::{json_schema, Schema, SchemaGenerator};

use super::compile::GeneratorHealthMode;
use super::model::ScenarioFile;
use super::tolerances::Tolerances;
use crate::metrics::catalogue::known_metrics;

/// Where the committed schema lives, relative to the repository root.
pub const SCHEMA_PATH: &str = "schema/scenario.schema.json";

/// The schema of a scenario file, as a JSON value.
pub fn json_schema() -> serde_json::Value {
    let generator = SchemaSettings::draft07().into_generator();
    let mut schema = generator.into_root_schema_for::<ScenarioFile>();
    schema.insert(
        "title".into(),
        "stampede scenario (the `stampede run` / `validate` TOML file)".into(),
    );
    let mut value = schema.to_value();
    tidy(&mut value);
    value
}

/// The schema as `stampede schema` prints it and the repository keeps it:
/// pretty-printed, with a final newline.
pub fn json_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&json_schema()).expect("a JSON value serializes");
    text.push('\n');
    text
}

/// TOML has no null: drop the `null` alternatives schemars gives optional
/// fields (`"type": ["string", "null"]`, `anyOf: [..., {"type": "null"}]`)
/// and `"default": null`, so editors neither offer nor show it. An `anyOf`
/// left with one alternative becomes an `allOf`, so a validator reports the
/// error inside it (the key and what is wrong) rather than "not valid under
/// any of the given schemas"; likewise an enum whose variants are `const`s
/// with their descriptions also gets an `enum` of every value, whose error
/// lists them.
fn tidy(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            if let Some(Value::Array(types)) = map.get_mut("type") {
                types.retain(|t| t != "null");
                if types.len() == 1 {
                    let only = types.remove(0);
                    map.insert("type".into(), only);
                }
            }
            for key in ["anyOf", "oneOf"] {
                if let Some(Value::Array(alts)) = map.get_mut(key) {
                    alts.retain(|alt| alt.get("type").is_none_or(|t| t != "null"));
                    let consts: Option<Vec<Value>> =
                        alts.iter().map(|alt| alt.get("const").cloned()).collect();
                    match consts {
                        Some(values) if values.len() > 1 && !map.contains_key("enum") => {
                            map.insert("enum".into(), values.into());
                        }
                        _ => {}
                    }
                }
            }
            if let Some(Value::Array(alts)) = map.get("anyOf") {
                if alts.len() == 1 && !map.contains_key("allOf") {
                    let alts = map.remove("anyOf").expect("just seen");
                    map.insert("allOf".into(), alts);
                }
            }
            if map.get("default") == Some(&Value::Null) {
                map.remove("default");
            }
            map.values_mut().for_each(tidy);
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

/// A step has exactly one method key (`get`, `post`, …): the rule
/// `compile` checks, for editors too.
pub fn one_step_method(schema: &mut Schema) {
    exactly_one_of(schema, &["get", "post", "put", "patch", "delete", "head"]);
}

/// An action is exactly one of a command or a request.
pub fn one_action_kind(schema: &mut Schema) {
    exactly_one_of(schema, &["exec", "get", "post", "put", "delete"]);
}

fn exactly_one_of(schema: &mut Schema, keys: &[&str]) {
    let alternatives: Vec<serde_json::Value> = keys
        .iter()
        .map(|key| serde_json::json!({ "required": [key] }))
        .collect();
    schema.insert("oneOf".into(), alternatives.into());
}

/// `[slo]`: `"metric{tags}.stat" = "op value"`, plus `abort_on_fail` and
/// `generator_health` (the description is the field's doc comment).
pub fn slo(generator: &mut SchemaGenerator) -> Schema {
    let metrics: Vec<String> = known_metrics().iter().map(|m| regex::escape(m)).collect();
    let health = generator.subschema_for::<GeneratorHealthMode>();
    json_schema!({
        "type": "object",
        "properties": {
            "abort_on_fail": {
                "type": "boolean",
                "default": false,
                "description": "`true`: stop the run as soon as an SLO fails (exit 1).",
            },
            "generator_health": {
                "allOf": [health],
                "default": GeneratorHealthMode::default(),
                "description": "What an unhealthy load generator does to the result: \
                    `warn` (a note), `error` (junit.xml error; the exit code is unchanged) or \
                    `fail` (the run fails like a failed SLO).",
            },
        },
        "propertyNames": {
            "pattern": format!(
                r"^\s*(?:abort_on_fail|generator_health|(?:{})\s*(?:\{{|\.|$))",
                metrics.join("|")
            ),
            "description": "A known metric, then its tags and stat.",
        },
        "additionalProperties": {
            "type": "string",
            "pattern": r"^\s*[<>]=?\s*\S",
            "description": "An operator (<, <=, >, >=) and a value: `\"< 300ms\"`, \
                `\"< 1%\"`, `\">= 500/s\"`.",
            "examples": ["< 300ms", "< 1%", ">= 500/s"],
        },
    })
}

/// `[compare]`: the tolerances of `run --baseline` (the description is the
/// field's doc comment).
pub fn compare(_: &mut SchemaGenerator) -> Schema {
    let defaults = Tolerances::default();
    let percent = |default: f64, what: &str| {
        json_schema!({
            "type": "string",
            "pattern": r"^\s*\+?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?\s*(?:%|pp)$",
            "default": format!("{}%", (default * 100.0 * 1e6).round() / 1e6),
            "description": what,
        })
    };
    json_schema!({
        "type": "object",
        "properties": {
            "p50": percent(defaults.p50, "Rise of p50 allowed, e.g. `\"10%\"`."),
            "p95": percent(defaults.p95, "Rise of p95 allowed, e.g. `\"10%\"`."),
            "p99": percent(defaults.p99, "Rise of p99 allowed, e.g. `\"20%\"`."),
            "throughput": percent(defaults.throughput, "Drop of throughput allowed, e.g. `\"10%\"`."),
            "errors": percent(
                defaults.errors,
                "Rise of the error rate allowed, in percentage points: `\"0.05pp\"` (or `\"0.05%\"`)."
            ),
        },
        "additionalProperties": false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_refuses_unknown_keys_and_needs_name_and_target() {
        let schema = json_schema();
        assert_eq!(schema["additionalProperties"], false);
        let required = schema["required"].as_array().unwrap();
        assert!(required.contains(&"name".into()) && required.contains(&"target".into()));
        assert!(schema["properties"]["metrics"].is_object());
        assert!(!json_schema_text().contains("\"null\""));
    }
}
