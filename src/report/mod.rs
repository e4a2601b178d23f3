//! The report model: what a run found, independent of how it is shown.
//!
//! Checks return [`CheckResult`]s; the runner collects them with the facts into a
//! [`Report`]; the renderers in this module's children only format a `Report`. The JSON form
//! of `Report` is a documented contract (`"schema": "efa-doctor/1"`, see README.md).

pub mod human;
pub mod json;
pub mod junit;
pub mod npd;
pub mod prometheus;

use serde::{Deserialize, Serialize};

/// The JSON schema identifier. Bump only on incompatible changes.
pub const SCHEMA: &str = "efa-doctor/1";

pub use crate::verdict::{CheckResult, Evidence, Outcome, Status};

/// Which root the report judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootInfo {
    pub path: String,
    pub kind: crate::root::RootKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Counts per status and the exit code they give.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
    pub error: usize,
    pub exit_code: i32,
}

/// When the run counts as failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    /// Exit 1 only when a check fails.
    #[default]
    Fail,
    /// Exit 1 when a check fails or warns.
    Warn,
}

/// Exit codes, node-problem-detector's custom-plugin contract: 0 OK, 1 NonOK, 2 Unknown.
pub mod exit {
    pub const OK: i32 = 0;
    pub const PROBLEM: i32 = 1;
    pub const UNKNOWN: i32 = 2;
}

impl Summary {
    /// Counts results. A definite `fail` gives 1 even when another check errored: the problem
    /// it found is certain. Otherwise an `error` gives 2 (the run is incomplete).
    pub fn of(results: &[CheckResult], fail_on: FailOn) -> Summary {
        let mut s = Summary::default();
        for r in results {
            match r.status {
                Status::Pass => s.pass += 1,
                Status::Warn => s.warn += 1,
                Status::Fail => s.fail += 1,
                Status::Skip => s.skip += 1,
                Status::Error => s.error += 1,
            }
        }
        s.exit_code = if s.fail > 0 || (fail_on == FailOn::Warn && s.warn > 0 && s.error == 0) {
            exit::PROBLEM
        } else if s.error > 0 {
            exit::UNKNOWN
        } else {
            exit::OK
        };
        s
    }
}

/// Everything one run produced.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub schema: String,
    pub tool: ToolInfo,
    pub root: RootInfo,
    pub facts: crate::facts::Facts,
    pub results: Vec<CheckResult>,
    pub summary: Summary,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
}

impl ToolInfo {
    pub fn current() -> ToolInfo {
        ToolInfo { name: env!("CARGO_PKG_NAME").into(), version: env!("CARGO_PKG_VERSION").into() }
    }
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// A table for people, with remediation for every fail and warn.
    #[default]
    Human,
    /// The versioned JSON report (`efa-doctor/1`).
    Json,
    /// JUnit XML for CI: fail is a failure, warn and skip are skipped.
    Junit,
    /// Prometheus text exposition, for node-exporter's textfile collector.
    Prometheus,
    /// One short line for node-problem-detector's custom-plugin monitor.
    Npd,
}

/// Untrusted text as a renderer may show it: redacted ([`crate::redact::text`]), then with
/// control characters written visibly ([`crate::escape::visible`]). Every string a
/// renderer takes from a report (facts, results, evidence, notes, paths) goes through it or,
/// for JSON, through [`crate::redact::to_json`], which applies the same rules.
pub fn show(s: &str) -> String {
    crate::escape::visible(&crate::redact::text(s)).into_owned()
}

/// As [`show`], for text of several lines (an error message on stderr): newlines and tabs
/// are kept.
pub fn show_lines(s: &str) -> String {
    crate::escape::visible_lines(&crate::redact::text(s)).into_owned()
}

/// Renders a report in `format`. `color` applies to the human format only.
pub fn render(report: &Report, format: Format, color: bool) -> String {
    match format {
        Format::Human => human::render(report, color),
        Format::Json => json::render(report),
        Format::Junit => junit::render(report),
        Format::Prometheus => prometheus::render(report),
        Format::Npd => npd::render(report),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(status: Status) -> CheckResult {
        CheckResult::new("x.y", status, "s")
    }

    #[test]
    fn exit_codes_follow_npd_contract() {
        assert_eq!(Summary::of(&[r(Status::Pass), r(Status::Skip)], FailOn::Fail).exit_code, 0);
        assert_eq!(Summary::of(&[r(Status::Warn)], FailOn::Fail).exit_code, 0);
        assert_eq!(Summary::of(&[r(Status::Warn)], FailOn::Warn).exit_code, 1);
        assert_eq!(Summary::of(&[r(Status::Fail), r(Status::Error)], FailOn::Fail).exit_code, 1);
        assert_eq!(Summary::of(&[r(Status::Error)], FailOn::Fail).exit_code, 2);
        assert_eq!(Summary::of(&[r(Status::Warn), r(Status::Error)], FailOn::Warn).exit_code, 2);
    }
}
