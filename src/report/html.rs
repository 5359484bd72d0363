//! `report.html` — PLACEHOLDER. The real self-contained report (charts,
//! tables, capacity estimate) is being written on another branch with this
//! same signature and replaces this file when it is merged. Until then this
//! renders a minimal valid page: the verdicts, escaped.

use super::json::Summary;

/// Render `report.html` from a summary.
pub fn render(summary: &Summary) -> anyhow::Result<String> {
    let name = escape(&summary.meta.name);
    let mut rows = String::new();
    for v in &summary.verdicts {
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&v.slo.key),
            escape(&v.slo.target),
            escape(&v.measured_text),
            if v.pass { "pass" } else { "FAIL" }
        ));
    }
    Ok(format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>stampede: {name}</title></head>\n<body><h1>stampede: {name}</h1>\n<table><tr><th>SLO</th><th>target</th><th>measured</th><th>verdict</th></tr>\n{rows}</table></body></html>\n"
    ))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
