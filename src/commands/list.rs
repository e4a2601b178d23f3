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
            t.set_width(crate::report::human::table_width());
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
        bail!(UsageError(unknown_id(id)));
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

/// Why `explain ID` has nothing to print, and what the user may have meant: a family's
/// checks, or the id closest to a typo.
fn unknown_id(id: &str) -> String {
    let family = id.trim_end_matches('.');
    let members: Vec<&str> = checks::CHECKS
        .iter()
        .map(|c| c.id())
        .filter(|c| c.strip_prefix(family).is_some_and(|rest| rest.starts_with('.')))
        .collect();
    let hint = if !members.is_empty() {
        format!("; '{family}' is a family: explain one of {}", members.join(", "))
    } else {
        // A family is no answer: explain takes one check.
        match checks::suggest(id).filter(|s| s.contains('.')) {
            Some(s) => format!("; did you mean '{s}'?"),
            None => String::new(),
        }
    };
    format!("unknown check id '{id}'{hint} (see `efa-doctor list`)")
}

#[cfg(test)]
mod tests {
    use super::unknown_id;

    #[test]
    fn unknown_ids_say_what_was_meant() {
        assert_eq!(
            unknown_id("kernel.gpudirect"),
            "unknown check id 'kernel.gpudirect'; did you mean 'kernel.gpudirect-path'? (see `efa-doctor list`)"
        );
        assert_eq!(
            unknown_id("pci"),
            "unknown check id 'pci'; 'pci' is a family: explain one of pci.link (see `efa-doctor list`)"
        );
        assert_eq!(unknown_id("nope.nope"), "unknown check id 'nope.nope' (see `efa-doctor list`)");
    }
}
