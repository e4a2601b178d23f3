//! The JSON report: the documented, versioned contract (`"schema": "efa-doctor/1"`),
//! written by [`crate::redact::to_json`]: every string redacted, and nothing a terminal or an
//! XML document would act on left raw.

use super::Report;

pub fn render(report: &Report) -> String {
    let mut s = crate::redact::to_json(report, true).unwrap_or_else(|e| {
        // Serialising plain data cannot fail; keep the output valid JSON regardless.
        format!("{{\"schema\":\"{}\",\"error\":{:?}}}", super::SCHEMA, e.to_string())
    });
    s.push('\n');
    s
}
