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
pub mod schema;

use serde::{Deserialize, Serialize};

/// The JSON schema identifier. Bump only on incompatible changes.
pub const SCHEMA: &str = "efa-doctor/1";

pub use crate::verdict::{CheckResult, Evidence, Outcome, Status};

/// Which root the report judged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RootInfo {
    pub path: String,
    pub kind: crate::root::RootKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Counts per status and the exit code they give.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub skip: usize,
    pub error: usize,
    pub exit_code: i32,
    /// The `--fail-on` the exit code was counted with (a report saved before this field
    /// existed reads as `fail`, the default).
    #[serde(default)]
    pub fail_on: FailOn,
}

/// When the run counts as failed.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum FailOn {
    /// Exit 1 only when a check fails.
    #[default]
    Fail,
    /// Exit 1 when a check fails or warns.
    Warn,
}

impl FailOn {
    pub fn as_str(self) -> &'static str {
        match self {
            FailOn::Fail => "fail",
            FailOn::Warn => "warn",
        }
    }
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
        s.fail_on = fail_on;
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
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Report {
    pub schema: String,
    pub tool: ToolInfo,
    /// When, where and how the run was made. Every command that writes a report fills it;
    /// a report built in-process (a test, a library user) or saved by an older efa-doctor
    /// has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunInfo>,
    pub root: RootInfo,
    pub facts: crate::facts::Facts,
    pub results: Vec<CheckResult>,
    pub summary: Summary,
}

/// The result id of a run that could not do its job (exit 2 before any check was judged).
pub const RUN_RESULT_ID: &str = "efa-doctor.run";

/// Run metadata: when the run started, how long it took, on which machine and with which
/// arguments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunInfo {
    /// When the run started, RFC 3339 in UTC (`2026-12-02T06:25:53Z`).
    pub started: String,
    /// The same instant in seconds since the Unix epoch (what Prometheus and JUnit use).
    pub started_unix: f64,
    /// Seconds from the start until the report was complete (gathering and judging).
    pub duration_seconds: f64,
    /// Host name of the machine efa-doctor ran on (`uname -n`); for `--root` or
    /// `--snapshot` that is not the judged node's. `null` when it cannot be read.
    pub hostname: Option<String>,
    /// The command line, the program name first, secrets redacted.
    pub arguments: Vec<String>,
    /// Why the run could not do its job (exit 2): the report then holds only the
    /// `efa-doctor.run` error result and no facts. Absent on a run that completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ToolInfo {
    pub name: String,
    pub version: String,
}

impl ToolInfo {
    pub fn current() -> ToolInfo {
        ToolInfo { name: env!("CARGO_PKG_NAME").into(), version: env!("CARGO_PKG_VERSION").into() }
    }
}

impl Report {
    /// The report of a run that could not do its job (an unreadable root, a log that cannot
    /// be read, an unknown check id): no facts, one `error` result for the run itself that
    /// says why, exit code 2. `root` is the root the run was asked to judge.
    pub fn failed(root: RootInfo, error: &str, fail_on: FailOn) -> Report {
        let results = vec![CheckResult::new(
            RUN_RESULT_ID,
            Status::Error,
            format!("efa-doctor could not run: {error}"),
        )];
        Report {
            schema: SCHEMA.into(),
            tool: ToolInfo::current(),
            run: None,
            root,
            facts: crate::facts::Facts::none_gathered(
                "the run failed before its facts were judged",
            ),
            summary: Summary::of(&results, fail_on),
            results,
        }
    }

    /// Why the run could not do its job, when it could not.
    pub fn run_error(&self) -> Option<&str> {
        self.run.as_ref().and_then(|r| r.error.as_deref())
    }

    /// The host name of the machine the run was made on, when known.
    pub fn hostname(&self) -> Option<&str> {
        self.run.as_ref().and_then(|r| r.hostname.as_deref()).filter(|h| !h.is_empty())
    }
}

/// How bad a status is for the run, by the exit code's rule: a definite `fail` outranks an
/// `error` elsewhere (the problem it found is certain), an `error` outranks a `warn` (the
/// run is incomplete, exit 2 even under `--fail-on warn`), then `warn`, `skip`, `pass`.
/// The worst result of a check is the one of highest rank.
pub fn severity(s: Status) -> u8 {
    match s {
        Status::Pass => 0,
        Status::Skip => 1,
        Status::Warn => 2,
        Status::Error => 3,
        Status::Fail => 4,
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

impl Format {
    /// The format's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Format::Human => "human",
            Format::Json => "json",
            Format::Junit => "junit",
            Format::Prometheus => "prometheus",
            Format::Npd => "npd",
        }
    }
}

/// How a renderer shows a report, beyond the report itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOptions {
    /// Colour, in the human format.
    pub color: bool,
    /// Which hardware counters the Prometheus format carries.
    pub counters: prometheus::CounterSeries,
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

/// Renders a report in `format`.
pub fn render(report: &Report, format: Format, options: &RenderOptions) -> String {
    match format {
        Format::Human => human::render(report, options.color),
        Format::Json => json::render(report),
        Format::Junit => junit::render(report),
        Format::Prometheus => prometheus::render(report, options.counters),
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
