//! JUnit XML for CI systems, valid against both schemas CI tools validate with: Jenkins'
//! `junit-10.xsd` (xunit plugin) and the stricter Apache Ant schema. The two agree only on
//! a narrow shape, so this renderer writes exactly that:
//!
//! - `<testsuites>` without attributes (Ant allows none) around one `<testsuite>` with
//!   `id` and `package` (Ant requires them there), `timestamp` (UTC, no zone: Ant's pattern
//!   has none), `hostname`, `time` and the counts;
//! - `<properties>` first, then one `<testcase>` per result (`name`, `classname` = the check
//!   family, `time`), then the suite's `<system-out>` and `<system-err>`, which Ant requires;
//! - a test case holds at most one `<failure>`, `<error>` or `<skipped>` (Ant allows no
//!   more, and no `system-out` inside a case), so each result's full JSON goes into the
//!   suite's `system-out`, one line per result, and the case's element holds its summary,
//!   evidence and remediation as text.
//!
//! `fail` is a failure, `error` an error, `skip` skipped; `warn` is a failure under
//! `--fail-on warn` (the build is red, so the report must say why) and skipped otherwise.
//!
//! XML 1.0 cannot hold most control characters even as character references, so every
//! string is passed through [`show`] (and the JSON through [`crate::redact::to_json`]):
//! the document stays well-formed whatever the node's text holds.

use std::collections::HashMap;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesText, Event};

use super::{CheckResult, FailOn, Report, Status, show};

/// Latest instant Ant's timestamp pattern (a four-digit year) can show: 9999-12-31T23:59:59.
const LAST_FOUR_DIGIT_YEAR_SECOND: f64 = 253_402_300_799.0;

/// What a result becomes in JUnit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    Passed,
    Failure,
    Error,
    Skipped,
}

fn case_of(status: Status, fail_on: FailOn) -> Case {
    match status {
        Status::Pass => Case::Passed,
        Status::Fail => Case::Failure,
        Status::Warn if fail_on == FailOn::Warn => Case::Failure,
        Status::Error => Case::Error,
        Status::Warn | Status::Skip => Case::Skipped,
    }
}

/// The suite's `timestamp`: the run's start in UTC as `YYYY-MM-DDTHH:MM:SS`. A report
/// without run metadata (built in-process, or saved by an older efa-doctor) is stamped with
/// the time it is rendered.
fn timestamp(report: &Report) -> String {
    let unix = match &report.run {
        Some(run) => run.started_unix,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
    };
    // A re-rendered report is user input: keep the value inside what the pattern can show.
    let unix = if unix.is_finite() { unix.clamp(0.0, LAST_FOUR_DIGIT_YEAR_SECOND) } else { 0.0 };
    let t = crate::facts::manifest::rfc3339(unix as u64);
    t.trim_end_matches('Z').to_string()
}

/// A non-negative number of seconds as `xs:decimal`.
fn seconds(v: f64) -> String {
    if v.is_finite() && v >= 0.0 { format!("{v:.3}") } else { "0.000".into() }
}

/// A one-word token (Ant's `xs:token` with `minLength 1`): whitespace runs become `_`.
fn token(s: &str, fallback: &str) -> String {
    let t = show(&s.split_whitespace().collect::<Vec<_>>().join("_"));
    if t.is_empty() { fallback.to_string() } else { t }
}

/// The node and run, as the suite's properties (a fact that is unknown is left out).
fn properties(report: &Report) -> Vec<(&'static str, String)> {
    let f = &report.facts;
    let mut p: Vec<(&'static str, Option<String>)> = vec![
        ("efa-doctor.version", Some(report.tool.version.clone())),
        ("schema", Some(report.schema.clone())),
        ("root.path", Some(report.root.path.clone())),
        (
            "root.kind",
            serde_json::to_value(report.root.kind).ok().and_then(|v| v.as_str().map(String::from)),
        ),
        ("instance_type", f.instance.instance_type.clone()),
        ("kernel", f.kernel.release.clone()),
        ("arch", f.kernel.arch.clone()),
        ("nvidia_driver", f.nvidia_driver.version.clone()),
        ("libfabric", f.libfabric.version.clone()),
        ("efa_installer", f.efa_stack.installer.as_ref().and_then(|i| i.version.clone())),
        ("fail_on", Some(report.summary.fail_on.as_str().to_string())),
        ("exit_code", Some(report.summary.exit_code.to_string())),
    ];
    if let Some(run) = &report.run {
        p.push(("run.started", Some(run.started.clone())));
        p.push(("run.arguments", Some(run.arguments.join(" "))));
        p.push(("run.error", run.error.clone()));
    }
    p.into_iter().filter_map(|(k, v)| v.map(|v| (k, show(&v)))).collect()
}

/// A result's text inside its failure, error or skipped element.
fn detail(r: &CheckResult) -> String {
    let mut d = show(&r.summary);
    for e in &r.evidence {
        d.push_str("\nevidence: ");
        d.push_str(&show(&e.source));
        if let Some(line) = e.line {
            d.push_str(&format!(":{line}"));
        }
        if let Some(o) = &e.observed {
            d.push_str(&format!(": observed {}", show(o)));
        }
        if let Some(x) = &e.expected {
            d.push_str(&format!("; expected {}", show(x)));
        }
    }
    if let Some(rem) = &r.remediation {
        d.push_str("\nremediation: ");
        d.push_str(&show(rem));
    }
    d
}

pub fn render(report: &Report) -> String {
    write(report).unwrap_or_else(|e| format!("<!-- junit serialisation failed: {e} -->\n"))
}

fn write(report: &Report) -> std::io::Result<String> {
    let fail_on = report.summary.fail_on;
    let cases: Vec<(&CheckResult, Case)> =
        report.results.iter().map(|r| (r, case_of(r.status, fail_on))).collect();
    let count = |c: Case| cases.iter().filter(|(_, k)| *k == c).count().to_string();
    let duration = report.run.as_ref().map_or(0.0, |r| r.duration_seconds);
    let hostname = token(report.hostname().unwrap_or(""), "unknown");
    let system_out: String = report
        .results
        .iter()
        .map(|r| crate::redact::to_json(r, false).unwrap_or_default() + "\n")
        .collect();
    let system_err = report.run_error().map(|e| show(e) + "\n").unwrap_or_default();

    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("testsuites").write_inner_content(|w| {
        w.create_element("testsuite")
            .with_attributes([
                ("name", "efa-doctor"),
                ("package", "efa-doctor"),
                ("id", "0"),
                ("tests", &cases.len().to_string()),
                ("failures", &count(Case::Failure)),
                ("errors", &count(Case::Error)),
                ("skipped", &count(Case::Skipped)),
                ("time", &seconds(duration)),
                ("timestamp", &timestamp(report)),
                ("hostname", &hostname),
            ])
            .write_inner_content(|w| {
                w.create_element("properties").write_inner_content(|w| {
                    for (name, value) in properties(report) {
                        w.create_element("property")
                            .with_attributes([("name", name), ("value", value.as_str())])
                            .write_empty()?;
                    }
                    Ok(())
                })?;
                let mut seen = HashMap::<&str, usize>::new();
                for (r, case) in &cases {
                    let n = seen.entry(r.id.as_str()).or_default();
                    *n += 1;
                    let id = token(&r.id, "unnamed");
                    let name = if *n > 1 { format!("{id} #{n}") } else { id.clone() };
                    let family = id.split('.').next().unwrap_or("efa-doctor").to_string();
                    let element = w.create_element("testcase").with_attributes([
                        ("name", name.as_str()),
                        ("classname", family.as_str()),
                        // Checks judge facts gathered once for all of them: the run's time is
                        // the suite's; a check's own share is not measured.
                        ("time", "0"),
                    ]);
                    let (tag, kind) = match case {
                        Case::Passed => {
                            element.write_empty()?;
                            continue;
                        }
                        Case::Failure => ("failure", r.status.as_str()),
                        Case::Error => ("error", "error"),
                        Case::Skipped => ("skipped", r.status.as_str()),
                    };
                    let message = match r.status {
                        Status::Warn | Status::Skip => {
                            format!("{}: {}", r.status, show(&r.summary))
                        }
                        _ => show(&r.summary),
                    };
                    element.write_inner_content(|w| {
                        w.create_element(tag)
                            .with_attributes([("type", kind), ("message", message.as_str())])
                            .write_text_content(BytesText::new(&detail(r)))?;
                        Ok(())
                    })?;
                }
                w.create_element("system-out").write_text_content(BytesText::new(&system_out))?;
                w.create_element("system-err").write_text_content(BytesText::new(&system_err))?;
                Ok(())
            })?;
        Ok(())
    })?;
    let mut xml = String::from_utf8(w.into_inner()).map_err(std::io::Error::other)?;
    xml.push('\n');
    Ok(xml)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warn_is_a_failure_only_under_fail_on_warn() {
        assert_eq!(case_of(Status::Warn, FailOn::Warn), Case::Failure);
        assert_eq!(case_of(Status::Warn, FailOn::Fail), Case::Skipped);
        assert_eq!(case_of(Status::Error, FailOn::Warn), Case::Error);
        assert_eq!(case_of(Status::Skip, FailOn::Warn), Case::Skipped);
    }

    #[test]
    fn tokens_are_one_non_empty_word() {
        assert_eq!(token("  ip-10 0  ", "unknown"), "ip-10_0");
        assert_eq!(token(" \t ", "unknown"), "unknown");
    }

    #[test]
    fn seconds_are_decimals() {
        assert_eq!(seconds(1.23456), "1.235");
        assert_eq!(seconds(f64::NAN), "0.000");
        assert_eq!(seconds(-1.0), "0.000");
    }
}
