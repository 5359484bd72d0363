//! `--set key=value` overrides applied to the scenario's TOML text before it
//! is parsed, so that every value can be changed from the command line and
//! errors still point into the file.

use toml_edit::{DocumentMut, InlineTable, Item, Table, TableLike, Value};

/// An override that cannot be applied.
#[derive(Debug, thiserror::Error)]
pub enum OverrideError {
    /// The `--set` argument as typed, without a `=`.
    #[error("--set `{0}`: expected key=value")]
    Syntax(String),
    /// The key cannot be set to the value typed: `detail` says why.
    #[error("--set `{key}`: {detail}")]
    Path {
        key: String,
        value: String,
        detail: String,
    },
}

/// Apply overrides in order. `key` is a dotted path: `seed`, `target.api`,
/// `phases.0.duration` (array of tables by index), `users.shopper.think`
/// (array of tables by the element's `name`), `slo."http.latency.p95"`
/// (quoted segment), `users.0.steps.1.timeout` (inline arrays too).
/// Missing tables on the way are created; a missing array element is an
/// error. The value is parsed as a TOML value when it parses (`42`, `true`,
/// `"x"`, `[1, 2]`, `{ status = 200 }`), otherwise taken as a plain string
/// (`30s`, `http://127.0.0.1:8080`). Formatting of untouched lines is kept
/// (toml_edit), so line numbers in later errors still match the file.
///
/// A table missing at the top level is created as a `[table]` section at the
/// end of the file; one missing inside another table is written with dotted
/// keys (`drop.fraction = 0.5`) and one inside an inline table as an inline
/// table. A quoted segment (`users."0"`) is always a key or element name,
/// never an index. With no overrides the text is returned unchanged.
pub fn apply(src: &str, sets: &[(String, String)]) -> Result<String, OverrideError> {
    let Some((first_key, first_value)) = sets.first() else {
        return Ok(src.to_string());
    };
    let mut doc: DocumentMut =
        src.parse()
            .map_err(|e: toml_edit::TomlError| OverrideError::Path {
                key: first_key.clone(),
                value: first_value.clone(),
                detail: format!(
                    "cannot apply overrides: the scenario is not valid TOML ({})",
                    e.message().trim()
                ),
            })?;
    for (key, value) in sets {
        let fail = |detail: String| OverrideError::Path {
            key: key.clone(),
            value: value.clone(),
            detail,
        };
        let segs = parse_path(key).map_err(fail)?;
        set_in_table(
            doc.as_table_mut(),
            Kind::Root,
            &segs,
            parse_value(value),
            "",
        )
        .map_err(fail)?;
    }
    Ok(doc.to_string())
}

/// Split `key=value` at the first `=` (outside a quoted key segment, so that
/// `slo."http.latency{step=checkout}.p99"=< 500ms` works). The key is
/// trimmed and must not be empty; the value is kept as given.
pub fn parse_set(text: &str) -> Result<(String, String), OverrideError> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match quote {
            Some('"') if escaped => escaped = false,
            Some('"') if c == '\\' => escaped = true,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == '"' || c == '\'' => quote = Some(c),
            None if c == '=' => {
                let key = text[..i].trim();
                if key.is_empty() {
                    return Err(OverrideError::Syntax(text.to_string()));
                }
                return Ok((key.to_string(), text[i + 1..].to_string()));
            }
            None => {}
        }
    }
    Err(OverrideError::Syntax(text.to_string()))
}

/// One segment of a dotted key.
#[derive(Debug, Clone, PartialEq)]
struct Seg {
    /// The key itself (quotes removed, escapes resolved).
    name: String,
    /// As written, for messages.
    raw: String,
    quoted: bool,
}

impl Seg {
    /// An array index: an unquoted segment made of digits.
    fn index(&self) -> Option<usize> {
        if self.quoted || !self.name.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        // Too many digits for a usize is simply out of range.
        Some(self.name.parse().unwrap_or(usize::MAX))
    }
}

/// Parse `a.b."c.d".'e'.0` into segments.
fn parse_path(key: &str) -> Result<Vec<Seg>, String> {
    let mut segs = Vec::new();
    let mut rest = key.trim_start();
    loop {
        let (seg, after) = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let end = closing_quote(rest, q)
                    .ok_or_else(|| format!("unterminated quote in key `{key}`"))?;
                let raw = &rest[..=end];
                let name = if q == '\'' {
                    raw[1..raw.len() - 1].to_string()
                } else {
                    raw.parse::<Value>()
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .ok_or_else(|| format!("invalid quoted segment {raw} in key `{key}`"))?
                };
                let seg = Seg {
                    name,
                    raw: raw.to_string(),
                    quoted: true,
                };
                (seg, &rest[end + 1..])
            }
            _ => {
                let len = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
                    .unwrap_or(rest.len());
                if len == 0 {
                    return Err(match rest.chars().next() {
                        None | Some('.') => format!("empty segment in key `{key}`"),
                        Some(c) => format!(
                            "unexpected `{c}` in key `{key}` (quote a segment that holds \
                             other characters than letters, digits, `_` and `-`, e.g. \
                             `slo.\"http.latency.p95\"`)"
                        ),
                    });
                }
                let seg = Seg {
                    name: rest[..len].to_string(),
                    raw: rest[..len].to_string(),
                    quoted: false,
                };
                (seg, &rest[len..])
            }
        };
        segs.push(seg);
        let after = after.trim_start();
        if after.is_empty() {
            return Ok(segs);
        }
        let Some(next) = after.strip_prefix('.') else {
            let c = after.chars().next().unwrap_or_default();
            return Err(format!("unexpected `{c}` in key `{key}`"));
        };
        rest = next.trim_start();
    }
}

/// Byte index of the quote closing the string that opens `s`.
fn closing_quote(s: &str, q: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in s.char_indices().skip(1) {
        if escaped {
            escaped = false;
        } else if c == '\\' && q == '"' {
            escaped = true;
        } else if c == q {
            return Some(i);
        }
    }
    None
}

/// The override's value: a TOML value when the text parses as one, else the
/// text as a string.
fn parse_value(text: &str) -> Value {
    match text.trim().parse::<Value>() {
        Ok(mut v) => {
            v.decor_mut().clear();
            v
        }
        Err(_) => Value::from(text),
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Root,
    Table,
    Inline,
}

fn join(here: &str, seg: &Seg) -> String {
    if here.is_empty() {
        seg.raw.clone()
    } else {
        format!("{here}.{}", seg.raw)
    }
}

fn elements(n: usize) -> String {
    if n == 1 {
        "1 element".into()
    } else {
        format!("{n} elements")
    }
}

/// Set `segs` (non-empty) below the table `t`, which sits at path `here`.
fn set_in_table(
    t: &mut dyn TableLike,
    kind: Kind,
    segs: &[Seg],
    value: Value,
    here: &str,
) -> Result<(), String> {
    let (seg, rest) = segs.split_first().expect("a key has at least one segment");
    let path = join(here, seg);
    if rest.is_empty() {
        match t.get_mut(&seg.name) {
            Some(item) => replace_item(item, value),
            None => insert(t, kind, &seg.name, Item::Value(value)),
        }
        return Ok(());
    }
    if t.get(&seg.name).is_none() {
        if rest[0].index().is_some() {
            return Err(format!(
                "`{path}` does not exist, so it has no element {}",
                rest[0].raw
            ));
        }
        let child = match kind {
            Kind::Inline => Item::Value(Value::InlineTable(InlineTable::new())),
            Kind::Root => Item::Table(Table::new()),
            Kind::Table => {
                let mut table = Table::new();
                table.set_dotted(true);
                Item::Table(table)
            }
        };
        insert(t, kind, &seg.name, child);
    }
    let child = t.get_mut(&seg.name).expect("present or just inserted");
    set_in_item(child, rest, value, &path)
}

/// Insert a new key. In an inline table the space before the closing brace
/// belongs to the last value; move it to the new last value so that the
/// result reads `{ a = 1, b = 2 }`, not `{ a = 1 , b = 2 }`.
fn insert(t: &mut dyn TableLike, kind: Kind, name: &str, item: Item) {
    let mut trailing = None;
    if kind == Kind::Inline {
        if let Some(last) = t.iter_mut().last().and_then(|(_, v)| v.as_value_mut()) {
            let suffix = last.decor().suffix().cloned();
            if suffix
                .as_ref()
                .and_then(|s| s.as_str())
                .is_some_and(|s| s.trim().is_empty())
            {
                last.decor_mut().set_suffix("");
                trailing = suffix;
            }
        }
    }
    t.insert(name, item);
    if let Some(suffix) = trailing {
        if let Some(new) = t.get_mut(name).and_then(Item::as_value_mut) {
            new.decor_mut().set_suffix(suffix);
        }
    }
}

/// Set `segs` (non-empty) below `item`, which sits at path `here`.
fn set_in_item(item: &mut Item, segs: &[Seg], value: Value, here: &str) -> Result<(), String> {
    match item {
        Item::Table(t) => set_in_table(t, Kind::Table, segs, value, here),
        Item::Value(v) => set_in_value(v, segs, value, here),
        Item::ArrayOfTables(aot) => {
            let (seg, rest) = segs.split_first().expect("non-empty");
            let names = aot.iter().map(|t| t.get("name").and_then(Item::as_str));
            let idx = find_element(seg, aot.len(), names, here)?;
            let path = join(here, seg);
            let elem = aot.get_mut(idx).expect("index checked");
            if !rest.is_empty() {
                return set_in_table(elem, Kind::Table, rest, value, &path);
            }
            let Value::InlineTable(inline) = value else {
                return Err(format!(
                    "`{path}` is an element of an array of tables and can only be replaced \
                     by a table, e.g. `{{ name = \"x\" }}`; got {} {}",
                    article(value.type_name()),
                    value.type_name()
                ));
            };
            *elem = table_in_place_of(elem, inline);
            Ok(())
        }
        Item::None => Err(format!("`{here}` has no value")),
    }
}

/// Set `segs` (non-empty) below the value `v`, which sits at path `here`.
fn set_in_value(v: &mut Value, segs: &[Seg], value: Value, here: &str) -> Result<(), String> {
    match v {
        Value::InlineTable(t) => set_in_table(t, Kind::Inline, segs, value, here),
        Value::Array(arr) => {
            let (seg, rest) = segs.split_first().expect("non-empty");
            let names = arr.iter().map(|v| {
                v.as_inline_table()
                    .and_then(|t| t.get("name"))
                    .and_then(Value::as_str)
            });
            let idx = find_element(seg, arr.len(), names, here)?;
            let path = join(here, seg);
            let elem = arr.get_mut(idx).expect("index checked");
            if rest.is_empty() {
                replace_value(elem, value);
                Ok(())
            } else {
                set_in_value(elem, rest, value, &path)
            }
        }
        other => Err(format!(
            "`{here}` is {} {}, not a table or an array, so it has no `{}`",
            article(other.type_name()),
            other.type_name(),
            segs[0].raw
        )),
    }
}

fn article(type_name: &str) -> &'static str {
    if type_name.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    }
}

/// The element `seg` selects in an array at `here`: an index, or the
/// element whose `name` is `seg`.
fn find_element<'a>(
    seg: &Seg,
    len: usize,
    names: impl Iterator<Item = Option<&'a str>>,
    here: &str,
) -> Result<usize, String> {
    if let Some(i) = seg.index() {
        return if i < len {
            Ok(i)
        } else {
            Err(format!(
                "index {} out of range ({}) in `{here}`",
                seg.name,
                elements(len)
            ))
        };
    }
    let mut known = Vec::new();
    for (i, name) in names.enumerate() {
        match name {
            Some(n) if n == seg.name => return Ok(i),
            Some(n) => known.push(format!("`{n}`")),
            None => {}
        }
    }
    let mut detail = format!("no element named `{}` in `{here}`", seg.name);
    if known.is_empty() {
        detail.push_str(&format!(" ({}, none named; use an index)", elements(len)));
    } else {
        detail.push_str(&format!(" (names: {})", known.join(", ")));
    }
    Err(detail)
}

/// Replace a value, keeping the whitespace and comments around the old one.
fn replace_value(old: &mut Value, value: Value) {
    let decor = old.decor().clone();
    *old = value;
    *old.decor_mut() = decor;
}

/// A `[table]` built from `inline`, taking the place (position and comments)
/// of `old`.
fn table_in_place_of(old: &Table, inline: InlineTable) -> Table {
    let mut table = inline.into_table();
    if let Some(pos) = old.position() {
        table.set_position(pos);
    }
    *table.decor_mut() = old.decor().clone();
    table
}

fn replace_item(item: &mut Item, value: Value) {
    match (item, value) {
        (Item::Value(old), value) => replace_value(old, value),
        // Keep a `[section]` a section when it is replaced by a table.
        (Item::Table(old), Value::InlineTable(inline)) => {
            *old = table_in_place_of(old, inline);
        }
        (item, value) => *item = Item::Value(value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(src: &str, pairs: &[(&str, &str)]) -> Result<String, OverrideError> {
        let sets: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        apply(src, &sets)
    }

    fn detail(err: OverrideError) -> String {
        match err {
            OverrideError::Path { detail, .. } => detail,
            other => panic!("unexpected {other:?}"),
        }
    }

    const SCENARIO: &str = r#"name = "black-friday"
seed = 7   # reproducible

[target]
api = "builtin"

[[users]]
name = "shopper"
weight = 9
think = "500ms..2s"
steps = [
  { name = "browse", get = "/api/products", check = { status = 200 } },
  { name = "add", post = "/api/cart" },
]

[[users]]
name = "browser"
weight = 1

[[phases]]
name = "warm-up"
duration = "1m"
users = { rate = "20/s -> 200/s" }

[[phases]]
name = "spike"
duration = "3m"

[slo]
"http.latency.p95" = "< 200ms"
"#;

    fn parsed(text: &str) -> toml::Table {
        toml::from_str(text).expect("result is valid TOML")
    }

    #[test]
    fn parse_set_splits_at_first_equals() {
        assert_eq!(
            parse_set("seed=42").unwrap(),
            ("seed".to_string(), "42".to_string())
        );
        assert_eq!(
            parse_set(" target.api =http://x?a=b").unwrap(),
            ("target.api".to_string(), "http://x?a=b".to_string())
        );
        assert_eq!(
            parse_set("name=").unwrap(),
            ("name".to_string(), String::new())
        );
        assert_eq!(
            parse_set(r#"slo."http.latency{step=checkout}.p99"=< 500ms"#).unwrap(),
            (
                r#"slo."http.latency{step=checkout}.p99""#.to_string(),
                "< 500ms".to_string()
            )
        );
        assert_eq!(
            parse_set(r#"a."x\"=y"=1"#).unwrap(),
            (r#"a."x\"=y""#.to_string(), "1".to_string())
        );
        assert_eq!(
            parse_set("a.'k=v'=1").unwrap(),
            ("a.'k=v'".to_string(), "1".to_string())
        );
        for bad in ["seed", "=5", "  = 5", ""] {
            let err = parse_set(bad).unwrap_err();
            assert!(
                matches!(&err, OverrideError::Syntax(t) if t == bad),
                "{err:?}"
            );
            assert_eq!(
                err.to_string(),
                format!("--set `{bad}`: expected key=value")
            );
        }
    }

    #[test]
    fn paths_parse_with_quotes() {
        let segs = parse_path(r#"slo."http.latency.p95""#).unwrap();
        assert_eq!(segs.len(), 2);
        assert_eq!(segs[1].name, "http.latency.p95");
        assert!(segs[1].quoted);
        let segs = parse_path(r#"a . 'b.c' . "d\"e" . 0"#).unwrap();
        let names: Vec<_> = segs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b.c", "d\"e", "0"]);
        assert_eq!(segs[3].index(), Some(0));
        assert_eq!(parse_path("users.\"0\"").unwrap()[1].index(), None);
        for (bad, why) in [
            ("a..b", "empty segment"),
            ("a.", "empty segment"),
            (".a", "empty segment"),
            ("a.\"b", "unterminated quote"),
            ("a.b{c}", "unexpected `{`"),
            ("a.\"b\"c", "unexpected `c`"),
        ] {
            let err = parse_path(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn no_overrides_returns_the_text() {
        assert_eq!(set("not [valid", &[]).unwrap(), "not [valid");
    }

    #[test]
    fn top_level_value_keeps_comment_and_lines() {
        let out = set(SCENARIO, &[("seed", "42")]).unwrap();
        assert!(out.contains("seed = 42   # reproducible\n"), "{out}");
        assert_eq!(out.lines().count(), SCENARIO.lines().count());
        let diff: Vec<_> = SCENARIO
            .lines()
            .zip(out.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(
            diff,
            [("seed = 7   # reproducible", "seed = 42   # reproducible")]
        );
    }

    #[test]
    fn values_are_toml_when_they_parse_else_strings() {
        let out = set(
            SCENARIO,
            &[
                ("target.api", "http://127.0.0.1:8080"),
                ("phases.1.duration", "30s"),
                ("seed", "true"),
                ("name", "\"quoted\""),
                ("users.1.weight", "[1, 2]"),
                ("users.browser.check", "{ status = 200 }"),
                ("phases.spike.label", "hello world"),
            ],
        )
        .unwrap();
        let doc = parsed(&out);
        assert_eq!(doc["target"]["api"].as_str(), Some("http://127.0.0.1:8080"));
        assert_eq!(doc["phases"][1]["duration"].as_str(), Some("30s"));
        assert_eq!(doc["seed"].as_bool(), Some(true));
        assert_eq!(doc["name"].as_str(), Some("quoted"));
        assert_eq!(
            doc["users"][1]["weight"],
            toml::Value::Array(vec![1.into(), 2.into()])
        );
        assert_eq!(doc["users"][1]["check"]["status"].as_integer(), Some(200));
        assert_eq!(doc["phases"][1]["label"].as_str(), Some("hello world"));
    }

    #[test]
    fn arrays_of_tables_by_index_and_by_name() {
        let out = set(
            SCENARIO,
            &[
                ("phases.0.duration", "2m"),
                ("users.browser.weight", "5"),
                ("users.shopper.think", "1s"),
            ],
        )
        .unwrap();
        let doc = parsed(&out);
        assert_eq!(doc["phases"][0]["duration"].as_str(), Some("2m"));
        assert_eq!(doc["users"][1]["weight"].as_integer(), Some(5));
        assert_eq!(doc["users"][0]["think"].as_str(), Some("1s"));
        assert_eq!(out.lines().count(), SCENARIO.lines().count());
    }

    #[test]
    fn inline_arrays_and_inline_tables() {
        let out = set(
            SCENARIO,
            &[
                ("users.0.steps.1.timeout", "5s"),
                ("users.shopper.steps.browse.check.status", "201"),
                ("users.0.steps.add.check.status", "[200, 201]"),
                ("phases.warm-up.users.rate", "50/s"),
            ],
        )
        .unwrap();
        let doc = parsed(&out);
        let steps = &doc["users"][0]["steps"];
        assert_eq!(steps[1]["timeout"].as_str(), Some("5s"));
        assert_eq!(steps[0]["check"]["status"].as_integer(), Some(201));
        assert_eq!(
            steps[1]["check"]["status"],
            toml::Value::Array(vec![200.into(), 201.into()])
        );
        assert_eq!(doc["phases"][0]["users"]["rate"].as_str(), Some("50/s"));
        // Still one line per step: the inline arrays stay inline.
        assert_eq!(out.lines().count(), SCENARIO.lines().count());
        assert!(
            out.contains(r#"{ name = "add", post = "/api/cart", timeout = "5s", check = { status = [200, 201] } }"#),
            "{out}"
        );
    }

    #[test]
    fn quoted_segments() {
        let out = set(
            SCENARIO,
            &[
                (r#"slo."http.latency.p95""#, "< 150ms"),
                (r#"slo."http.latency{step=checkout}.p99""#, "< 500ms"),
            ],
        )
        .unwrap();
        let doc = parsed(&out);
        assert_eq!(doc["slo"]["http.latency.p95"].as_str(), Some("< 150ms"));
        assert_eq!(
            doc["slo"]["http.latency{step=checkout}.p99"].as_str(),
            Some("< 500ms")
        );
        assert!(
            out.contains("\"http.latency.p95\" = \"< 150ms\"\n"),
            "{out}"
        );
    }

    #[test]
    fn missing_tables_are_created() {
        let src = "name = \"x\"\n\n[[phases]]\nname = \"a\"\nduration = \"1m\"\n";
        let out = set(
            src,
            &[
                ("target.api", "http://h"),
                ("target.tls.verify", "false"),
                ("phases.a.agents.drop.fraction", "0.5"),
                (r#"slo."hub.recovery""#, "< 30s"),
            ],
        )
        .unwrap();
        let doc = parsed(&out);
        assert_eq!(doc["target"]["api"].as_str(), Some("http://h"));
        assert_eq!(doc["target"]["tls"]["verify"].as_bool(), Some(false));
        assert_eq!(
            doc["phases"][0]["agents"]["drop"]["fraction"].as_float(),
            Some(0.5)
        );
        assert_eq!(doc["slo"]["hub.recovery"].as_str(), Some("< 30s"));
        // The original lines come first, unchanged, apart from the dotted
        // key added inside the phase.
        assert!(out.starts_with(src), "{out}");
        assert!(out.contains("agents.drop.fraction = 0.5"), "{out}");
        assert!(out.contains("\n[target]\napi = \"http://h\"\n"), "{out}");
        assert!(
            out.contains("\n[slo]\n\"hub.recovery\" = \"< 30s\""),
            "{out}"
        );
    }

    #[test]
    fn replacing_a_section_with_a_table_keeps_it_a_section() {
        let out = set(
            SCENARIO,
            &[("target", "{ api = \"http://h\", hub = \"ws://h\" }")],
        )
        .unwrap();
        let doc = parsed(&out);
        assert_eq!(doc["target"]["hub"].as_str(), Some("ws://h"));
        assert!(
            out.contains("[target]\napi = \"http://h\"\nhub = \"ws://h\"\n"),
            "{out}"
        );

        let out = set(
            SCENARIO,
            &[("phases.spike", "{ name = \"peak\", duration = \"5m\" }")],
        )
        .unwrap();
        let doc = parsed(&out);
        assert_eq!(doc["phases"][1]["name"].as_str(), Some("peak"));
        assert_eq!(doc["phases"][1]["duration"].as_str(), Some("5m"));
        assert_eq!(doc["phases"][0]["name"].as_str(), Some("warm-up"));
    }

    #[test]
    fn errors_name_the_key_and_what_is_missing() {
        let cases = [
            (
                "users.nobody.weight",
                "no element named `nobody` in `users` (names: `shopper`, `browser`)",
            ),
            (
                "users.3.weight",
                "index 3 out of range (2 elements) in `users`",
            ),
            (
                "users.0.steps.7.timeout",
                "index 7 out of range (2 elements) in `users.0.steps`",
            ),
            (
                "users.0.steps.pay.timeout",
                "no element named `pay` in `users.0.steps`",
            ),
            (
                "seed.x",
                "`seed` is an integer, not a table or an array, so it has no `x`",
            ),
            ("target.api.host", "`target.api` is a string"),
            (
                "agents.0.name",
                "`agents` does not exist, so it has no element 0",
            ),
            ("phases.0", "can only be replaced by a table"),
            ("users.\"1\".weight", "no element named `1` in `users`"),
            ("a..b", "empty segment"),
        ];
        for (key, want) in cases {
            let err = set(SCENARIO, &[(key, "1")]).unwrap_err();
            assert!(
                err.to_string().starts_with(&format!("--set `{key}`: ")),
                "{err}"
            );
            let detail = detail(err);
            assert!(detail.contains(want), "{key}: {detail}");
        }
        let err = set("x = [1]\n", &[("x.1", "2")]).unwrap_err();
        assert_eq!(detail(err), "index 1 out of range (1 element) in `x`");
        let err = set("x = [1, 2]\n", &[("x.a", "2")]).unwrap_err();
        assert!(detail(err).contains("none named; use an index"));
    }

    #[test]
    fn invalid_source_is_reported() {
        let err = set("name = [", &[("seed", "1")]).unwrap_err();
        assert!(matches!(&err, OverrideError::Path { key, .. } if key == "seed"));
        assert!(detail(err).contains("not valid TOML"));
    }

    #[test]
    fn overrides_apply_in_order() {
        let out = set("seed = 1\n", &[("seed", "2"), ("seed", "3")]).unwrap();
        assert_eq!(out, "seed = 3\n");
        let out = set("a = 1\n", &[("b", "x y")]).unwrap();
        assert_eq!(out, "a = 1\nb = \"x y\"\n");
    }
}
