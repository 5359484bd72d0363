//! The library's layers, enforced: no module imports from a layer above
//! its own (see `src/lib.rs`, `# Layout`). Lower layers know nothing of the
//! ones built on them, so a segment, a new report or a new command can be
//! added on top without reaching back down through a cycle.
//!
//! The check reads the sources as text: every `crate::<module>` path outside
//! comments and outside the file's `#[cfg(test)]` module (tests may use any
//! layer, e.g. a protocol test against the built-in target) must name a
//! module of the same layer or below. Within the commands the order is
//! strict too (`compare` → `run` → `capacity`), so no two commands import
//! each other.

use std::path::{Path, PathBuf};

/// Bottom to top. A module may use its own layer and those before it.
const LAYERS: &[&[&str]] = &[
    &["error", "units", "redact"],
    &["metrics"],
    &["slo"],
    &["protocol"],
    &["target"],
    &["scenario"],
    &["plan"],
    &["engine"],
    &["report"],
    &["compare"],
    &["merge"],
    &["run"],
    &["capacity"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level module a source file belongs to (`src/engine/hub/mod.rs`
/// → `engine`), or `None` for `lib.rs` / `main.rs`.
fn module_of(src: &Path, file: &Path) -> Option<String> {
    let rel = file.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_string())
}

/// The upward imports in one file's text: `(line number, module used)`.
fn upward_imports(module: &str, text: &str) -> Vec<(usize, String)> {
    let own = layer_of(module).unwrap_or_else(|| panic!("module `{module}` is in no layer"));
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let used: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            match layer_of(&used) {
                Some(layer) if layer > own => found.push((n + 1, used)),
                Some(_) => {}
                // `crate::{a::X, b::Y}` would hide its modules from this
                // check: one `use crate::module::…` per module instead.
                None if used.is_empty() => panic!(
                    "line {}: write one `use crate::<module>::…` per module, not `crate::{{…}}` or `crate::*`",
                    n + 1
                ),
                None => panic!("`crate::{used}` (line {}) names no layer", n + 1),
            }
        }
    }
    found
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    assert!(files.len() > 50, "found only {} source files", files.len());
    let mut violations = Vec::new();
    for file in &files {
        let Some(module) = module_of(&src, file) else {
            continue;
        };
        let text = std::fs::read_to_string(file).expect("read source");
        for (line, used) in upward_imports(&module, &text) {
            violations.push(format!(
                "{}:{line}: `{module}` uses `crate::{used}`, a layer above it",
                file.strip_prefix(&src).unwrap_or(file).display()
            ));
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn every_top_level_module_is_in_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("read lib.rs");
    let declared: Vec<&str> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|l| l.trim_end_matches(';'))
        .collect();
    assert!(declared.len() >= 10, "lib.rs declares {declared:?}");
    for module in declared {
        assert!(layer_of(module).is_some(), "`{module}` is in no layer");
    }
}

#[test]
fn the_check_finds_an_upward_import_and_ignores_tests_and_comments() {
    let text = "use crate::metrics::Totals;\n\
                // crate::run is mentioned in a comment\n\
                fn f() { crate::engine::hub::max_agents(x); }\n\
                #[cfg(test)]\n\
                mod tests { use crate::target::spawn; }\n";
    assert_eq!(
        upward_imports("protocol", text),
        vec![(3, "engine".to_string())]
    );
    assert!(upward_imports("engine", text).is_empty());
    assert_eq!(
        upward_imports("compare", "use crate::run::load;"),
        vec![(1, "run".to_string())]
    );
}
