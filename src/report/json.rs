//! The JSON report: the documented, versioned contract (`"schema": "efa-doctor/1"`).

use super::Report;

pub fn render(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).unwrap_or_else(|e| {
        // Serialising plain data cannot fail; keep the output valid JSON regardless.
        format!("{{\"schema\":\"{}\",\"error\":{:?}}}", super::SCHEMA, e.to_string())
    });
    s.push('\n');
    s
}
