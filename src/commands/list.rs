//! `efa-doctor list` and `explain ID`: the check catalogue.

use anyhow::{Result, bail};

use super::{UsageError, write_stdout};
use crate::checks;
use crate::cli::ListFormat;
use crate::report::exit;

pub fn list(format: ListFormat) -> Result<i32> {
    let docs = checks::CHECKS.iter().filter_map(|c| checks::catalogue::doc(c.id()));
    let text = match format {
        ListFormat::Json => {
            let v: Vec<_> = docs
                .map(|d| serde_json::json!({"id": d.id, "title": d.title, "severity": d.severity, "covers": d.covers}))
                .collect();
            serde_json::to_string_pretty(&v)? + "\n"
        }
        ListFormat::Human => {
            let mut t = comfy_table::Table::new();
            t.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
            t.set_content_arrangement(comfy_table::ContentArrangement::Dynamic);
            if t.width().is_none() {
                t.set_width(120);
            }
            t.set_header(vec!["Check", "Severity", "Covers", "Title"]);
            for d in docs {
                let sev =
                    serde_json::to_value(d.severity)?.as_str().unwrap_or_default().to_string();
                t.add_row(vec![d.id.clone(), sev, d.covers.join(" "), d.title.clone()]);
            }
            format!("{t}\n")
        }
    };
    write_stdout(text.as_bytes())?;
    Ok(exit::OK)
}

/// The built-in log rules that can feed verdict `id`, with their evidence-table statements.
fn log_rules_for(id: &str) -> Vec<crate::facts::logs::rules::Rule> {
    crate::facts::logs::rules::RuleSet::builtin()
        .unwrap_or_default()
        .into_iter()
        .filter(|r| r.checks.iter().any(|c| c == id))
        .collect()
}

pub fn explain(id: &str, format: ListFormat) -> Result<i32> {
    let Some(doc) = checks::catalogue::doc(id) else {
        bail!(UsageError(format!("unknown check id '{id}' (see `efa-doctor list`)")));
    };
    let rules = log_rules_for(id);
    let text = match format {
        ListFormat::Json => {
            let mut v = serde_json::to_value(doc)?;
            for s in checks::catalogue::REQUIRED_SECTIONS {
                let key = s.trim_start_matches("## ").to_lowercase().replace(' ', "_");
                v[key] = doc.section(s).unwrap_or_default().into();
            }
            if !rules.is_empty() {
                v["log_statements"] = rules
                    .iter()
                    .map(|r| {
                        serde_json::json!({"rule": r.id, "proves": r.proves, "statements": r.statements})
                    })
                    .collect();
            }
            serde_json::to_string_pretty(&v)? + "\n"
        }
        ListFormat::Human => {
            let sev = serde_json::to_value(doc.severity)?.as_str().unwrap_or_default().to_string();
            let mut text = format!(
                "{} — {}\nseverity: {sev}; covers: {}\n{}",
                doc.id,
                doc.title,
                doc.covers.join(", "),
                doc.body
            );
            if !rules.is_empty() {
                text.push_str("\n## Log statements behind this verdict\n\n");
                for r in &rules {
                    text.push_str(&format!(
                        "- {}: {}\n",
                        r.id,
                        r.proves.as_deref().unwrap_or("(no description)")
                    ));
                    for st in &r.statements {
                        text.push_str(&format!(
                            "  - {} {} `{}` ({})\n",
                            st.component, st.file, st.format, st.versions
                        ));
                    }
                }
            }
            text
        }
    };
    write_stdout(text.as_bytes())?;
    Ok(exit::OK)
}
