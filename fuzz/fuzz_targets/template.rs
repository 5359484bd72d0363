//! The template parser and renderer: `{{ … }}` strings compiled against
//! known names (two extracted values, two CSV feeders), rendered with a
//! seeded rng; and the same text as a JSON body template (a TOML value),
//! whose rendering must always be valid JSON.
//!
//! Input: the template source. When it parses as a TOML document with a
//! key `v`, that value (a table, array, string…) is compiled as a JSON body
//! too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rand::rngs::SmallRng;
use rand::SeedableRng;
use stampede::scenario::feeder::{FeedMode, Feeder};
use stampede::scenario::template::{JsonTemplate, RenderCtx, Symbols, Template};
use std::sync::OnceLock;

struct Env {
    vars: Vec<String>,
    values: Vec<Option<String>>,
    feeders: Vec<Feeder>,
    rows: Vec<usize>,
}

fn env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(|| {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        Env {
            vars: s(&["cart", "token"]),
            values: vec![Some("c-42\"\\\n".to_string()), None],
            feeders: vec![
                Feeder::from_rows(
                    "products",
                    s(&["sku", "name"]),
                    vec![s(&["A1", "Tea \"green\""]), s(&["B2", "back\\slash\u{1}"])],
                    FeedMode::Sequential,
                ),
                Feeder::from_rows(
                    "accounts",
                    s(&["user", "sku"]),
                    vec![s(&["alice", "Z9"])],
                    FeedMode::Unique,
                ),
            ],
            rows: vec![1, 0],
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let env = env();
    let symbols = Symbols {
        vars: &env.vars,
        feeders: &env.feeders,
    };
    let mut rng = SmallRng::seed_from_u64(7);
    let mut out = String::new();
    if let Ok(template) = Template::compile(src, &symbols) {
        let mut ctx = RenderCtx {
            vu_id: 17,
            iteration: 3,
            rng: &mut rng,
            vars: &env.values,
            feeders: &env.feeders,
            rows: &env.rows,
        };
        template.render(&mut ctx, &mut out);
        if let Some(text) = template.as_static() {
            assert_eq!(text, out, "a static template renders as its text");
        }
        for feeder in template.feeders_used() {
            assert!(feeder < env.feeders.len());
        }
    }
    let Ok(doc) = toml::from_str::<toml::Table>(src) else {
        return;
    };
    let Some(value) = doc.get("v") else {
        return;
    };
    if let Ok(template) = JsonTemplate::compile(value, &symbols) {
        out.clear();
        let mut ctx = RenderCtx {
            vu_id: 17,
            iteration: 3,
            rng: &mut rng,
            vars: &env.values,
            feeders: &env.feeders,
            rows: &env.rows,
        };
        template.render(&mut ctx, &mut out);
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&out) {
            // serde_json refuses nesting deeper than 128; not the template's fault.
            if !e.to_string().contains("recursion limit") {
                panic!("JSON body template rendered invalid JSON ({e}): {out}");
            }
        }
    }
});
