//! The page every HTML document of stampede is built on (`report.html`,
//! the capacity search's `capacity.html`): the head with its
//! Content-Security-Policy, the style sheet, and [`escape`].
//!
//! A page is self-contained: inline CSS, charts as inline SVG, no script,
//! font, image or style sheet fetched — a Content-Security-Policy of
//! `default-src 'none'` makes the browser refuse anything that would be.

use std::fmt::Write as _;

/// Escape `text` for HTML text and attribute values: `& < > " '`.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

pub const STYLE: &str = r#"
:root{--fg:#1d2330;--muted:#5b6475;--line:#dde1e8;--pass:#1a7f37;--fail:#c62828;--warn:#9a5b00;--band:#f4f6fa}
*{box-sizing:border-box;-webkit-print-color-adjust:exact;print-color-adjust:exact}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--fg);background:#fff}
main{max-width:1200px;margin:0 auto;padding:20px 24px 48px}
h1{font-size:26px;margin:0 0 4px}
h2{font-size:19px;margin:34px 0 10px;padding-bottom:4px;border-bottom:2px solid var(--line)}
h3{font-size:15px;margin:20px 0 6px}
p{margin:6px 0}
.muted{color:var(--muted)}
code{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:var(--band);padding:1px 4px;border-radius:3px}
nav{margin:10px 0 0;font-size:13px}
nav a{color:var(--muted);margin-right:14px;text-decoration:none}
.overall{display:flex;align-items:center;gap:22px;margin:18px 0 8px;padding:16px 20px;border-radius:8px;border:2px solid}
.overall.pass{border-color:var(--pass);background:#eaf6ed}
.overall.fail{border-color:var(--fail);background:#fdecec}
.overall.none{border-color:var(--line);background:var(--band)}
.overall .word{font-size:44px;font-weight:800;letter-spacing:2px}
.overall.pass .word{color:var(--pass)}
.overall.fail .word{color:var(--fail)}
.overall .what{font-size:15px}
.banner{margin:14px 0;padding:12px 16px;border-radius:6px;font-weight:600}
.banner.saturated,.banner.partial{background:var(--fail);color:#fff;font-size:17px}
.banner.warn{background:#fff4e0;border:1px solid #f0c36d;color:var(--warn)}
table{border-collapse:collapse;width:100%;margin:6px 0 10px;font-size:13.5px}
th,td{padding:5px 9px;border-bottom:1px solid var(--line);text-align:right;vertical-align:top}
th{background:var(--band);font-weight:600;white-space:nowrap}
th:first-child,td:first-child,td.text,th.text{text-align:left}
td.kinds{text-align:left;color:var(--fail);font-size:12.5px}
tr:nth-child(even) td{background:#fafbfc}
.verdict-pass{color:var(--pass);font-weight:700}
.verdict-fail{color:var(--fail);font-weight:700}
.meta th{width:190px;text-align:left}
.meta td{text-align:left}
.meta .segments{width:auto;margin:0}
.meta .segments th{width:auto}
figure{margin:12px 0 20px;break-inside:avoid;page-break-inside:avoid}
figure svg{display:block;width:100%;height:auto}
figcaption{font-weight:600;margin-bottom:2px}
.legend{font-size:12.5px;color:var(--muted);margin-top:2px}
.legend span{margin-right:16px;white-space:nowrap}
.legend i{display:inline-block;width:18px;height:3px;margin:0 5px 3px 0;vertical-align:middle}
.capacity{font-size:30px;font-weight:700;margin:4px 0}
.headline{font-size:15px;margin:4px 0}
footer{margin-top:40px;font-size:12px;color:var(--muted)}
@page{size:A4 landscape;margin:12mm}
@media print{
 body{font-size:10.5pt}
 main{max-width:none;padding:0}
 nav{display:none}
 h2{break-after:avoid;page-break-after:avoid}
 table,figure,.overall,.banner{break-inside:avoid;page-break-inside:avoid}
 tr:nth-child(even) td{background:none}
}
"#;

/// A whole document: the head (title escaped here, [`STYLE`]) and `main`,
/// the page's content (already HTML), inside `<main>`.
pub fn document(title: &str, main: &str) -> String {
    let mut out = String::with_capacity(main.len() + STYLE.len() + 512);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<main>\n",
        escape(title)
    );
    out.push_str(main);
    out.push_str("</main>\n</body>\n</html>\n");
    out
}
