//! JUnit XML for CI systems: `fail` is a failure, `error` an error, `warn` and `skip` are
//! skipped, `pass` a plain test case. Each case keeps its full result as JSON in
//! system-out so no evidence is lost (kube-bench's convention).
//!
//! XML 1.0 cannot hold most control characters even as character references, so every
//! string is passed through [`show`] (and system-out through [`crate::redact::to_json`]):
//! the document stays well-formed whatever the node's text holds.

use quick_junit::{NonSuccessKind, Report as JReport, TestCase, TestCaseStatus, TestSuite};

use super::{Report, Status, show};

pub fn render(report: &Report) -> String {
    let mut suite = TestSuite::new("efa-doctor");
    let mut seen = std::collections::HashMap::<&str, usize>::new();
    for r in &report.results {
        let n = seen.entry(r.id.as_str()).or_default();
        *n += 1;
        let id = show(&r.id);
        let summary = show(&r.summary);
        let name = if *n > 1 { format!("{id} #{n}") } else { id.clone() };
        let detail = {
            let mut d = summary.clone();
            if let Some(rem) = &r.remediation {
                d.push_str("\nremediation: ");
                d.push_str(&show(rem));
            }
            d
        };
        let status = match r.status {
            Status::Pass => TestCaseStatus::success(),
            Status::Fail | Status::Error => {
                let kind = if r.status == Status::Fail {
                    NonSuccessKind::Failure
                } else {
                    NonSuccessKind::Error
                };
                let mut s = TestCaseStatus::non_success(kind);
                s.set_message(summary.clone());
                s.set_description(detail);
                s
            }
            Status::Warn | Status::Skip => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(format!("{}: {summary}", r.status));
                s
            }
        };
        let mut case = TestCase::new(name, status);
        case.set_classname(id.split('.').next().unwrap_or("efa-doctor").to_string());
        case.set_system_out(crate::redact::to_json(r, false).unwrap_or_default());
        suite.add_test_case(case);
    }
    let mut jr = JReport::new("efa-doctor");
    jr.add_test_suite(suite);
    jr.to_string().unwrap_or_else(|e| format!("<!-- junit serialisation failed: {e} -->\n"))
}
