//! The verdict vocabulary every layer above the facts speaks: a check's [`Status`], the
//! [`Evidence`] it rests on, the [`Outcome`] a check returns and the [`CheckResult`] a report
//! holds. It sits at the bottom (beside `redact` and `escape`) because the log rules engine
//! in `facts` carries a rule's declared status and evidence, the checks judge with them and
//! the report renders them; none of them may import the others upward.

use serde::{Deserialize, Serialize};

/// Outcome of one check.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Not applicable here, or not visible from this vantage point; always with a reason.
    Skip,
    Warn,
    Fail,
    /// The check itself could not run (a deadline, an unreadable file it needed).
    Error,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Skip => "skip",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Error => "error",
        }
    }

    pub const ALL: [Status; 5] =
        [Status::Pass, Status::Warn, Status::Fail, Status::Skip, Status::Error];
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a finding is based on: a file, counter, log line or call result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Evidence {
    /// Where the observation comes from: a path in the root (`sys/class/infiniband/...`), a
    /// call (`fi_getinfo`), or a log file.
    pub source: String,
    /// 1-based line number when the source is a log.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// What was observed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<String>,
    /// What a healthy node shows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
}

impl Evidence {
    pub fn new(source: impl Into<String>) -> Evidence {
        Evidence { source: source.into(), ..Evidence::default() }
    }

    pub fn observed(mut self, v: impl Into<String>) -> Evidence {
        self.observed = Some(v.into());
        self
    }

    pub fn expected(mut self, v: impl Into<String>) -> Evidence {
        self.expected = Some(v.into());
        self
    }

    pub fn line(mut self, n: u64) -> Evidence {
        self.line = Some(n);
        self
    }
}

/// One result line of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckResult {
    pub id: String,
    pub status: Status,
    /// One line saying what was found.
    pub summary: String,
    #[serde(default)]
    pub evidence: Vec<Evidence>,
    /// What to change; present for `fail` and `warn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    /// A short machine-readable verdict (e.g. `LIBFABRIC`, `efault`), when the check has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Structured data for tools (e.g. classified memory regions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl CheckResult {
    pub fn new(id: &str, status: Status, summary: impl Into<String>) -> CheckResult {
        CheckResult {
            id: id.to_string(),
            status,
            summary: summary.into(),
            evidence: Vec::new(),
            remediation: None,
            value: None,
            details: None,
        }
    }
}

/// A check's verdict before the runner stamps it with the check's id.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: Status,
    pub summary: String,
    pub evidence: Vec<Evidence>,
    pub remediation: Option<String>,
    pub value: Option<String>,
    pub details: Option<serde_json::Value>,
}

impl Outcome {
    pub fn new(status: Status, summary: impl Into<String>) -> Outcome {
        Outcome {
            status,
            summary: summary.into(),
            evidence: Vec::new(),
            remediation: None,
            value: None,
            details: None,
        }
    }

    pub fn pass(summary: impl Into<String>) -> Outcome {
        Outcome::new(Status::Pass, summary)
    }

    pub fn warn(summary: impl Into<String>) -> Outcome {
        Outcome::new(Status::Warn, summary)
    }

    pub fn fail(summary: impl Into<String>) -> Outcome {
        Outcome::new(Status::Fail, summary)
    }

    pub fn skip(reason: impl Into<String>) -> Outcome {
        Outcome::new(Status::Skip, reason)
    }

    pub fn error(summary: impl Into<String>) -> Outcome {
        Outcome::new(Status::Error, summary)
    }

    pub fn evidence(mut self, e: Evidence) -> Outcome {
        self.evidence.push(e);
        self
    }

    pub fn with_evidence(mut self, e: impl IntoIterator<Item = Evidence>) -> Outcome {
        self.evidence.extend(e);
        self
    }

    pub fn remediation(mut self, r: impl Into<String>) -> Outcome {
        self.remediation = Some(r.into());
        self
    }

    pub fn value(mut self, v: impl Into<String>) -> Outcome {
        self.value = Some(v.into());
        self
    }

    pub fn details(mut self, d: serde_json::Value) -> Outcome {
        self.details = Some(d);
        self
    }

    pub fn into_result(self, id: &str) -> CheckResult {
        CheckResult {
            id: id.to_string(),
            status: self.status,
            summary: self.summary,
            evidence: self.evidence,
            remediation: self.remediation,
            value: self.value,
            details: self.details,
        }
    }
}
