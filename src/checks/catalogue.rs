//! The user-facing check catalogue: one Markdown document per check in `checks/`, embedded
//! at build time. It is the single source of every check's title, default severity,
//! failure-mode coverage and explanation (`efa-doctor list`, `efa-doctor explain`).
//!
//! A document starts with TOML front matter between `+++` lines:
//!
//! ```text
//! +++
//! id = "kernel.gpudirect-path"
//! title = "A GPUDirect RDMA path exists between the NIC and GPU memory"
//! severity = "fail"
//! covers = ["FM08"]
//! +++
//! ## What it checks
//! ...
//! ```
//!
//! followed by the sections in [`REQUIRED_SECTIONS`].

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/catalogue.rs"));
}

/// Sections every document must have, in this order.
pub const REQUIRED_SECTIONS: [&str; 4] =
    ["## What it checks", "## Why it matters", "## Evidence", "## Remediation"];

/// The status a check gives when it finds the problem it looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warn,
    Fail,
}

#[derive(Debug, Clone, Deserialize)]
struct FrontMatter {
    id: String,
    title: String,
    severity: Severity,
    covers: Vec<String>,
}

/// One catalogue document.
#[derive(Debug, Clone, Serialize)]
pub struct Doc {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub covers: Vec<String>,
    /// The Markdown body after the front matter.
    #[serde(skip)]
    pub body: String,
    #[serde(skip)]
    pub file: String,
}

impl Doc {
    /// The text of one `## ` section, without its heading.
    pub fn section(&self, heading: &str) -> Option<&str> {
        let start = self.body.find(heading)? + heading.len();
        let rest = &self.body[start..];
        let end = rest.find("\n## ").map_or(rest.len(), |i| i + 1);
        Some(rest[..end].trim())
    }
}

/// Parses one document; errors name the file and the problem.
pub fn parse_doc(file: &str, text: &str) -> Result<Doc, String> {
    let rest =
        text.strip_prefix("+++\n").ok_or_else(|| format!("{file}: must start with '+++'"))?;
    let end = rest
        .find("\n+++\n")
        .ok_or_else(|| format!("{file}: front matter is not closed by '+++'"))?;
    let fm: FrontMatter =
        toml::from_str(&rest[..end]).map_err(|e| format!("{file}: front matter: {e}"))?;
    let body = rest[end + 5..].to_string();
    let mut last = 0;
    for s in REQUIRED_SECTIONS {
        match body.find(&format!("{s}\n")) {
            Some(i) if i >= last => last = i,
            Some(_) => return Err(format!("{file}: section '{s}' is out of order")),
            None => return Err(format!("{file}: missing section '{s}'")),
        }
    }
    if format!("{}.md", fm.id) != file {
        return Err(format!("{file}: file name must be '{}.md'", fm.id));
    }
    for c in &fm.covers {
        let ok = c.len() == 4 && c.starts_with("FM") && c[2..].bytes().all(|b| b.is_ascii_digit());
        if !ok {
            return Err(format!("{file}: '{c}' is not a failure-mode id like FM08"));
        }
    }
    Ok(Doc {
        id: fm.id,
        title: fm.title,
        severity: fm.severity,
        covers: fm.covers,
        body,
        file: file.into(),
    })
}

/// Every catalogue document, parsed once. A malformed document is a build defect caught by
/// the catalogue tests; at run time it is left out rather than crashing a node check.
pub fn docs() -> &'static [Doc] {
    static DOCS: OnceLock<Vec<Doc>> = OnceLock::new();
    DOCS.get_or_init(|| {
        embedded::DOCS.iter().filter_map(|(file, text)| parse_doc(file, text).ok()).collect()
    })
}

/// Parse errors of the embedded documents (for tests and `efa-doctor list`'s sanity).
pub fn doc_errors() -> Vec<String> {
    embedded::DOCS.iter().filter_map(|(file, text)| parse_doc(file, text).err()).collect()
}

pub fn doc(id: &str) -> Option<&'static Doc> {
    docs().iter().find(|d| d.id == id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_malformed_documents() {
        assert!(parse_doc("a.b.md", "no front matter").is_err());
        let good = "+++\nid = \"a.b\"\ntitle = \"t\"\nseverity = \"warn\"\ncovers = [\"FM01\"]\n+++\n\
                    ## What it checks\nx\n## Why it matters\nx\n## Evidence\nx\n## Remediation\nx\n";
        let d = parse_doc("a.b.md", good).unwrap();
        assert_eq!(d.section("## Evidence"), Some("x"));
        assert!(parse_doc("other.md", good).is_err());
        assert!(parse_doc("a.b.md", &good.replace("## Evidence\nx\n", "")).is_err());
        assert!(parse_doc("a.b.md", &good.replace("FM01", "F1")).is_err());
    }
}
