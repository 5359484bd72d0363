//! `junit.xml`: the run as a JUnit test report, for CI systems that show
//! test results (GitLab `artifacts:reports:junit`, GitHub actions such as
//! dorny/test-reporter and mikepenz/action-junit-report, Jenkins `junit`).
//!
//! # Format
//! The Ant JUnit form those readers share:
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <testsuites name="stampede" tests="3" failures="1" errors="0" time="140.012">
//!   <testsuite name="black-friday" tests="3" failures="1" errors="0" skipped="0"
//!              time="140.012" timestamp="2024-11-29T10:00:00" hostname="loadgen-1">
//!     <properties>
//!       <property name="scenario_hash" value="…"/> …
//!     </properties>
//!     <testcase name="http.latency.p95" classname="stampede.black-friday" time="0">
//!       <failure message="measured 512.3ms, target &lt; 300ms" type="slo">…</failure>
//!     </testcase>
//!     <testcase name="http.errors.rate" classname="stampede.black-friday" time="0">
//!       <system-out>measured 0.02%, target &lt; 0.1%: held</system-out>
//!     </testcase>
//!     <system-out>notes of the run, one per line</system-out>
//!   </testsuite>
//! </testsuites>
//! ```
//!
//! - One `<testsuite>` per run, named after the scenario; `timestamp` is the
//!   run's start in UTC without a zone suffix (the Ant schema's form), `time`
//!   its measured length in seconds.
//! - One `<testcase>` per SLO, in the order of `verdicts`: `name` is the SLO key as
//!   written, `classname` is `stampede.<scenario name>`. A failed SLO has a
//!   `<failure type="slo" message="measured X, target Y">` (`measured no
//!   data` when nothing matched); a held one says the same in `<system-out>`.
//! - One `<testcase>` per fault action, named `action <name>`: a failed
//!   one has a `<failure type="action">` saying why.
//! - The run itself is a test case named `run` only when there is something
//!   to say about it: an **interrupted** run has one with
//!   `<error type="interrupted">` (the SLO cases of the partial run are
//!   still listed), a **partial merge** (`stampede merge` with a segment
//!   missing) one with `<error type="partial">`, and a run **without SLOs** has one passing `run` case
//!   rather than an empty suite, because Jenkins and several GitHub actions
//!   treat a report without test cases as a broken report.
//! - A run measured with the generator's health (see
//!   [`super::generator`]) has a `generator health` case after them: passing
//!   with its figures when healthy; when flagged, by `[slo]
//!   generator_health`: an `<error type="generator">` (`error`, the
//!   default), a `<failure type="generator">` (`fail`, and the run exits 1)
//!   or a passing case that names the causes (`warn`).
//! - Every attribute and text is XML-escaped; characters XML 1.0 cannot
//!   carry (control characters) become U+FFFD.

use super::generator::GeneratorHealth;
use super::json::Summary;
use crate::scenario::GeneratorHealthMode;
use std::fmt::Write;

/// File name of the JUnit report inside a result directory.
pub const FILE_NAME: &str = "junit.xml";

/// The test case that stands for the run itself.
const RUN_CASE: &str = "run";

/// The test case of the generator's health.
pub const GENERATOR_CASE: &str = "generator health";

/// The [`Exporter`](super::Exporter) of `junit.xml`.
pub struct Junit;

impl super::Exporter for Junit {
    fn file_name(&self) -> &'static str {
        FILE_NAME
    }
    fn render(&self, summary: &Summary) -> anyhow::Result<String> {
        Ok(render(summary))
    }
}

/// Render `junit.xml` from a summary.
pub fn render(summary: &Summary) -> String {
    let meta = &summary.meta;
    let classname = format!("stampede.{}", meta.name);
    let run_case = run_case(summary);
    let generator = summary.generator.as_ref();
    let flagged = |mode: GeneratorHealthMode| {
        usize::from(generator.is_some_and(|g| g.flagged() && g.mode == mode))
    };
    let tests = summary.verdicts.len()
        + summary.actions.len()
        + usize::from(run_case.is_some())
        + usize::from(generator.is_some());
    let failures = summary.verdicts.iter().filter(|v| !v.pass).count()
        + summary.actions.iter().filter(|a| !a.ok).count()
        + flagged(GeneratorHealthMode::Fail);
    let errors = usize::from(matches!(
        run_case,
        Some(RunCase::Interrupted | RunCase::Partial(_))
    )) + flagged(GeneratorHealthMode::Error);
    let time = crate::units::format::seconds(meta.duration_s);

    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"stampede\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" time=\"{time}\">"
    );
    let _ = write!(
        out,
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{errors}\" skipped=\"0\" time=\"{time}\"",
        attr(&meta.name)
    );
    if let Some(timestamp) = schema_timestamp(&meta.started_at) {
        let _ = write!(out, " timestamp=\"{timestamp}\"");
    }
    let _ = writeln!(out, " hostname=\"{}\">", attr(&meta.host));

    out.push_str("    <properties>\n");
    let properties = [
        ("scenario_path", meta.scenario_path.clone()),
        ("scenario_hash", meta.scenario_hash.clone()),
        ("stampede_version", meta.stampede_version.clone()),
        ("started_at", meta.started_at.clone()),
        ("ended_at", meta.ended_at.clone()),
        ("seed", meta.seed.to_string()),
        ("interrupted", meta.interrupted.to_string()),
        ("exit_code", meta.exit_code.to_string()),
        ("command_line", meta.command_line.join(" ")),
    ];
    for (name, value) in properties {
        let _ = writeln!(
            out,
            "      <property name=\"{name}\" value=\"{}\"/>",
            attr(&value)
        );
    }
    out.push_str("    </properties>\n");

    for verdict in &summary.verdicts {
        let slo = &verdict.slo;
        let outcome = format!("measured {}, target {}", verdict.measured_text, slo.target);
        let _ = write!(
            out,
            "    <testcase name=\"{}\" classname=\"{}\" time=\"0\">",
            attr(&slo.key),
            attr(&classname)
        );
        if verdict.pass {
            let _ = write!(
                out,
                "\n      <system-out>{}: held</system-out>",
                text(&outcome)
            );
        } else {
            let mut detail = format!("SLO `{}` = `{}` failed: {outcome}", slo.key, slo.target);
            if let Some(phase) = &slo.phase {
                let _ = write!(detail, " (phase {phase})");
            }
            let _ = write!(
                out,
                "\n      <failure message=\"{}\" type=\"slo\">{}</failure>",
                attr(&outcome),
                text(&detail)
            );
        }
        out.push_str("\n    </testcase>\n");
    }
    for action in &summary.actions {
        let _ = write!(
            out,
            "    <testcase name=\"action {}\" classname=\"{}\" time=\"{}\">",
            attr(&action.name),
            attr(&classname),
            crate::units::format::seconds(action.duration_us as f64 / 1e6)
        );
        if action.ok {
            out.push_str("\n      <system-out>the fault action succeeded</system-out>");
        } else {
            let message = format!(
                "fault action `{}` failed: {}",
                action.name,
                action.error.as_deref().unwrap_or("failed")
            );
            let _ = write!(
                out,
                "\n      <failure message=\"{}\" type=\"action\">{}; the run went on unless it said fail = \"abort\"</failure>",
                attr(&message),
                text(&message)
            );
        }
        out.push_str("\n    </testcase>\n");
    }
    if let Some(case) = run_case {
        let _ = write!(
            out,
            "    <testcase name=\"{RUN_CASE}\" classname=\"{}\" time=\"{time}\">",
            attr(&classname)
        );
        match case {
            RunCase::Interrupted => {
                let message = "interrupted: the run was stopped before the end of its plan";
                let _ = write!(
                    out,
                    "\n      <error message=\"{message}\" type=\"interrupted\">{message}; the SLO verdicts cover what ran (exit code {})</error>",
                    meta.exit_code
                );
            }
            RunCase::Partial(missing) => {
                let message = format!("partial: segment {missing} missing from the merged result");
                let _ = write!(
                    out,
                    "\n      <error message=\"{}\" type=\"partial\">{}; the SLO verdicts cover the segments merged (exit code {})</error>",
                    attr(&message),
                    text(&message),
                    meta.exit_code
                );
            }
            RunCase::NoSlos => {
                out.push_str(
                    "\n      <system-out>the run completed; the scenario has no SLOs, so nothing was judged</system-out>",
                );
            }
        }
        out.push_str("\n    </testcase>\n");
    }
    if let Some(health) = generator {
        generator_case(&mut out, health, &classname);
    }
    if !meta.notes.is_empty() {
        let _ = writeln!(
            out,
            "    <system-out>{}</system-out>",
            text(&meta.notes.join("\n"))
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

/// The `generator health` case: passing with the figures when healthy;
/// when flagged, an `<error type="generator">` (mode `error`), a
/// `<failure type="generator">` (mode `fail`) or a passing case whose
/// output names the causes (mode `warn`).
fn generator_case(out: &mut String, health: &GeneratorHealth, classname: &str) {
    let _ = write!(
        out,
        "    <testcase name=\"{GENERATOR_CASE}\" classname=\"{}\" time=\"0\">",
        attr(classname)
    );
    let causes: Vec<String> = health.causes.iter().map(|c| c.text()).collect();
    let kinds: Vec<String> = (health.causes.iter())
        .map(|c| match c.segment {
            Some(s) => format!("{} (segment {s})", c.kind),
            None => c.kind.clone(),
        })
        .collect();
    let message = format!(
        "the generator's own delay is in the latencies: {}",
        kinds.join(", ")
    );
    let body = format!("{message}\n{}", causes.join("\n"));
    match (health.flagged(), health.mode) {
        (false, _) => {
            let _ = write!(
                out,
                "\n      <system-out>{}</system-out>",
                text(&health.healthy_text())
            );
        }
        (true, GeneratorHealthMode::Warn) => {
            let _ = write!(
                out,
                "\n      <system-out>warning: {}</system-out>",
                text(&body)
            );
        }
        (true, GeneratorHealthMode::Error) => {
            let _ = write!(
                out,
                "\n      <error message=\"{}\" type=\"generator\">{}</error>",
                attr(&message),
                text(&body)
            );
        }
        (true, GeneratorHealthMode::Fail) => {
            let _ = write!(
                out,
                "\n      <failure message=\"{}\" type=\"generator\">{}</failure>",
                attr(&message),
                text(&body)
            );
        }
    }
    out.push_str("\n    </testcase>\n");
}

/// Why the run gets a test case of its own.
enum RunCase {
    Interrupted,
    /// A merge with these segments missing (`1/3, 2/3`).
    Partial(String),
    NoSlos,
}

fn run_case(summary: &Summary) -> Option<RunCase> {
    let missing = (summary.meta.merged.as_ref()).and_then(|m| m.missing_text());
    if summary.meta.interrupted {
        Some(RunCase::Interrupted)
    } else if let Some(missing) = missing {
        Some(RunCase::Partial(missing))
    } else if summary.verdicts.is_empty() {
        Some(RunCase::NoSlos)
    } else {
        None
    }
}

/// `2024-11-29T10:00:00.123Z` → `2024-11-29T10:00:00` (UTC, no zone: the
/// Ant schema's `timestamp`); None when the start is not RFC 3339.
fn schema_timestamp(rfc3339: &str) -> Option<String> {
    let at = chrono::DateTime::parse_from_rfc3339(rfc3339).ok()?;
    Some(
        at.with_timezone(&chrono::Utc)
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string(),
    )
}

/// Escape for an attribute value (double-quoted); line breaks and tabs are
/// kept as character references so parsers do not fold them into spaces.
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(xml_char(c)),
        }
    }
    out
}

/// Escape for element text.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\n' | '\t' => out.push(c),
            '\r' => out.push_str("&#13;"),
            c => out.push(xml_char(c)),
        }
    }
    out
}

/// `c`, or U+FFFD when XML 1.0 cannot carry it (control characters,
/// U+FFFE, U+FFFF).
fn xml_char(c: char) -> char {
    match c {
        '\t' | '\n' | '\r' => c,
        '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => '\u{fffd}',
        c => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::testing::{summary_with, SummaryOptions};

    /// Parse with a real XML parser; panic with the document on error.
    fn parse(xml: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(xml).unwrap_or_else(|e| panic!("invalid XML: {e}\n{xml}"))
    }

    fn suite<'a>(doc: &'a roxmltree::Document<'a>) -> roxmltree::Node<'a, 'a> {
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "testsuites");
        let suites: Vec<_> = root
            .children()
            .filter(|n| n.has_tag_name("testsuite"))
            .collect();
        assert_eq!(suites.len(), 1, "one suite per run");
        suites[0]
    }

    fn cases<'a>(suite: roxmltree::Node<'a, 'a>) -> Vec<roxmltree::Node<'a, 'a>> {
        suite
            .children()
            .filter(|n| n.has_tag_name("testcase"))
            .collect()
    }

    fn child<'a>(node: roxmltree::Node<'a, 'a>, name: &str) -> Option<roxmltree::Node<'a, 'a>> {
        node.children().find(|n| n.has_tag_name(name))
    }

    #[test]
    fn one_case_per_slo_with_failures_carrying_measured_and_target() {
        let summary = summary_with(SummaryOptions::default());
        let xml = render(&summary);
        let doc = parse(&xml);
        let suite = suite(&doc);
        assert_eq!(suite.attribute("name"), Some("black-friday"));
        assert_eq!(suite.attribute("tests"), Some("3"));
        assert_eq!(suite.attribute("failures"), Some("2"));
        assert_eq!(suite.attribute("errors"), Some("0"));
        assert_eq!(suite.attribute("time"), Some("4.000"));
        assert_eq!(suite.attribute("timestamp"), Some("2024-11-29T10:00:00"));
        assert_eq!(suite.attribute("hostname"), Some("loadgen-1"));
        let root = doc.root_element();
        assert_eq!(root.attribute("tests"), Some("3"));
        assert_eq!(root.attribute("failures"), Some("2"));

        let cases = cases(suite);
        let names: Vec<_> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
        assert_eq!(
            names,
            vec![
                "http.latency.p95",
                "http.errors{phase=spike}.rate",
                "http.requests.rate"
            ]
        );
        for case in &cases {
            assert_eq!(case.attribute("classname"), Some("stampede.black-friday"));
        }
        // p95 of the spike (~51 ms) fails the 40 ms target.
        let failure = child(cases[0], "failure").expect("p95 failed");
        assert_eq!(failure.attribute("type"), Some("slo"));
        let message = failure.attribute("message").unwrap();
        assert!(
            message.starts_with("measured 5") && message.ends_with("ms, target < 40ms"),
            "{message}"
        );
        assert!(child(cases[1], "failure")
            .unwrap()
            .attribute("message")
            .unwrap()
            .ends_with("target < 0.5%"));
        assert!(child(cases[1], "failure")
            .unwrap()
            .text()
            .unwrap()
            .contains("(phase spike)"));
        // The rate held: no failure, the values in system-out.
        assert!(child(cases[2], "failure").is_none());
        let out = child(cases[2], "system-out").unwrap().text().unwrap();
        assert!(out.starts_with("measured ") && out.ends_with("target >= 100/s: held"));

        let properties: Vec<_> = child(suite, "properties")
            .unwrap()
            .children()
            .filter(|n| n.has_tag_name("property"))
            .map(|p| (p.attribute("name").unwrap(), p.attribute("value").unwrap()))
            .collect();
        assert!(properties.contains(&("seed", "7")));
        assert!(properties.contains(&("exit_code", "1")));
        assert!(properties.contains(&("scenario_hash", "ab".repeat(32).as_str())));
        // Notes go to the suite's system-out.
        let notes = suite
            .children()
            .filter(|n| n.has_tag_name("system-out"))
            .map(|n| n.text().unwrap_or(""))
            .collect::<Vec<_>>();
        assert_eq!(notes, vec!["generator saturated in phase spike"]);
    }

    #[test]
    fn names_are_escaped_and_control_characters_replaced() {
        let summary = summary_with(SummaryOptions {
            name: "a&b <c> \"d\" 'e'\u{1}".into(),
            population: "shop]]>pers".into(),
            step: "br<o>wse & \"buy\"".into(),
            notes: vec!["note <b>&amp;</b>\nsecond line".into()],
            slos: vec![(
                "http.latency{step=br<o>wse & \"buy\"}.p95".into(),
                "< 40ms".into(),
            )],
            command_line: vec!["run".into(), "--set".into(), "a=1\nb=2".into()],
            ..SummaryOptions::default()
        });
        let xml = render(&summary);
        assert!(!xml.contains('\u{1}'));
        let doc = parse(&xml);
        let suite = suite(&doc);
        assert_eq!(suite.attribute("name"), Some("a&b <c> \"d\" 'e'\u{fffd}"));
        let cases = cases(suite);
        assert_eq!(
            cases[0].attribute("classname"),
            Some("stampede.a&b <c> \"d\" 'e'\u{fffd}")
        );
        let key = "http.latency{step=br<o>wse & \"buy\"}.p95";
        assert_eq!(cases[0].attribute("name"), Some(key));
        let detail = child(cases[0], "failure").unwrap().text().unwrap();
        assert!(detail.contains(key), "{detail}");
        let notes = suite
            .children()
            .find(|n| n.has_tag_name("system-out"))
            .unwrap();
        assert_eq!(
            notes.text(),
            Some("note <b>&amp;</b>\nsecond line"),
            "text kept exactly, line break included"
        );
        // An attribute keeps its line break too.
        let command = child(suite, "properties")
            .unwrap()
            .children()
            .find(|p| p.attribute("name") == Some("command_line"))
            .unwrap();
        assert!(command.attribute("value").unwrap().contains("\n"));
    }

    #[test]
    fn a_run_without_slos_is_one_passing_run_case() {
        let summary = summary_with(SummaryOptions {
            slos: vec![],
            ..SummaryOptions::default()
        });
        let xml = render(&summary);
        let doc = parse(&xml);
        let suite = suite(&doc);
        assert_eq!(suite.attribute("tests"), Some("1"));
        assert_eq!(suite.attribute("failures"), Some("0"));
        assert_eq!(suite.attribute("errors"), Some("0"));
        let cases = cases(suite);
        assert_eq!(cases.len(), 1);
        assert_eq!(cases[0].attribute("name"), Some("run"));
        assert!(child(cases[0], "failure").is_none() && child(cases[0], "error").is_none());
        assert!(child(cases[0], "system-out")
            .unwrap()
            .text()
            .unwrap()
            .contains("no SLOs"));
    }

    #[test]
    fn the_generator_case_follows_its_mode() {
        use crate::report::generator::{Figures, GeneratorHealth};
        // 9.9 CPU-seconds of 10 on one CPU: flagged for `cpu`.
        let starved = Figures {
            wall_s: 10.0,
            cpu_s: 9.9,
            cpus_allowed: 1.0,
            cpus_affinity: 1,
            ..Figures::default()
        };
        let render_with = |figures: &Figures, mode| {
            let mut summary = summary_with(SummaryOptions::default());
            let slo_failures = summary.verdicts.iter().filter(|v| !v.pass).count();
            summary.generator = Some(GeneratorHealth::judge(figures.clone(), mode));
            (render(&summary), summary.verdicts.len(), slo_failures)
        };
        for (mode, error, failure) in [
            (GeneratorHealthMode::Warn, 0, 0),
            (GeneratorHealthMode::Error, 1, 0),
            (GeneratorHealthMode::Fail, 0, 1),
        ] {
            let (xml, slos, slo_failures) = render_with(&starved, mode);
            let doc = parse(&xml);
            let suite = suite(&doc);
            assert_eq!(
                suite.attribute("tests"),
                Some((slos + 1).to_string().as_str())
            );
            assert_eq!(
                suite.attribute("errors"),
                Some(error.to_string().as_str()),
                "{xml}"
            );
            let failures = (slo_failures + failure).to_string();
            assert_eq!(
                suite.attribute("failures"),
                Some(failures.as_str()),
                "{xml}"
            );
            let case = *cases(suite).last().unwrap();
            assert_eq!(case.attribute("name"), Some(GENERATOR_CASE));
            assert_eq!(child(case, "error").is_some(), error == 1, "{xml}");
            assert_eq!(child(case, "failure").is_some(), failure == 1, "{xml}");
            let said = (child(case, "error").or(child(case, "failure")))
                .or(child(case, "system-out"))
                .unwrap()
                .text()
                .unwrap()
                .to_string();
            assert!(said.contains("cpu: it used 9.9 CPU-seconds"), "{said}");
            assert!(said.contains("fix: fewer arrivals per process"), "{said}");
        }
        // Healthy: a passing case with its figures, whatever the mode.
        let (xml, _, _) = render_with(&Figures::default(), GeneratorHealthMode::Fail);
        let doc = parse(&xml);
        let case = *cases(suite(&doc)).last().unwrap();
        assert!(child(case, "failure").is_none() && child(case, "error").is_none());
        assert!(child(case, "system-out")
            .unwrap()
            .text()
            .unwrap()
            .starts_with("the generator kept up"));
    }

    #[test]
    fn an_interrupted_run_has_an_error_case_besides_its_slos() {
        let summary = summary_with(SummaryOptions {
            interrupted: true,
            ..SummaryOptions::default()
        });
        let xml = render(&summary);
        let doc = parse(&xml);
        let suite = suite(&doc);
        assert_eq!(suite.attribute("tests"), Some("4"));
        assert_eq!(suite.attribute("failures"), Some("2"));
        assert_eq!(suite.attribute("errors"), Some("1"));
        let cases = cases(suite);
        let run = cases.last().unwrap();
        assert_eq!(run.attribute("name"), Some("run"));
        let error = child(*run, "error").expect("an <error> for the interruption");
        assert_eq!(error.attribute("type"), Some("interrupted"));
        assert!(error
            .attribute("message")
            .unwrap()
            .starts_with("interrupted"));

        // Interrupted without SLOs: just the error case.
        let summary = summary_with(SummaryOptions {
            interrupted: true,
            slos: vec![],
            ..SummaryOptions::default()
        });
        let xml = render(&summary);
        let doc = parse(&xml);
        let only = super::tests::cases(super::tests::suite(&doc));
        assert_eq!(only.len(), 1);
        assert!(child(only[0], "error").is_some());
    }

    #[test]
    fn an_unparsable_start_leaves_the_timestamp_out() {
        let mut summary = summary_with(SummaryOptions::default());
        summary.meta.started_at = "yesterday".into();
        let xml = render(&summary);
        let doc = parse(&xml);
        assert_eq!(suite(&doc).attribute("timestamp"), None);
        assert_eq!(
            schema_timestamp("2024-11-29T11:00:00.250+01:00").as_deref(),
            Some("2024-11-29T10:00:00")
        );
    }
}
