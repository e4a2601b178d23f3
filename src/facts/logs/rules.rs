//! Log rules: declarative data in `checks/rules/*.toml` (embedded at build time) plus any
//! `--rules DIR` the user adds in the same format.
//!
//! ```toml
//! [[rule]]
//! id = "nccl.using-network"          # unique rule id
//! event = "nccl.network"             # event for the interpreter (built-in kinds), optional
//! literals = ["Using network "]      # prefilter: the line must contain one of these
//! regex = 'Using network (?P<network>[\w ]+?)\s*$'
//! source = "where the string comes from"
//! proves = "what a match means"           # shown with the verdict it feeds
//! checks = ["nccl.network"]               # the verdicts it can feed (built-in rules)
//!
//! [[rule.statement]]                 # the evidence table: one entry per log statement
//! component = "nccl"                 # the program that prints it
//! file = "src/init.cc"               # its source file, at the newest version listed
//! format = "Using network %s"        # the format string, as written in the source
//! versions = "2.6.4-2.30.7"          # the releases whose source holds it
//! example = "NCCL INFO Using network Socket"   # a line the rule must match (tested)
//! example_from = "fixture.log"       # the corpus file holding it, or "format string"
//!
//! [rule.result]                      # optional: emit a result for every matching line
//! id = "site.my-check"
//! status = "fail"                    # pass | warn | fail
//! summary = "saw {network}"          # {name} is replaced by the named capture
//! remediation = "what to do"
//! value = "{network}"
//! ```

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::Regex;
use serde::Deserialize;

use crate::verdict::Status;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/rules.rs"));
}

/// Most user rules (`--rules DIR`, all files together). Every rule whose literal occurs in a
/// line runs its regex on that line, so this bounds the matching cost per log byte.
pub const MAX_USER_RULES: usize = 256;
/// Largest rules file read.
pub const MAX_RULES_FILE_BYTES: u64 = 1024 * 1024;
/// Most `*.toml` files read from a rules directory.
pub const MAX_RULE_FILES: usize = 64;
/// Largest compiled program of one rule's regex (the regex crate's `size_limit`), so a
/// hostile pattern such as `(a{100}){100}` is refused instead of compiled.
pub const MAX_REGEX_PROGRAM_BYTES: usize = 256 * 1024;

#[derive(Debug, Clone, Deserialize)]
struct RawRule {
    id: String,
    #[serde(default)]
    event: Option<String>,
    literals: Vec<String>,
    regex: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    result: Option<RawResult>,
    #[serde(default)]
    proves: Option<String>,
    #[serde(default)]
    checks: Vec<String>,
    #[serde(default)]
    statement: Vec<Statement>,
}

/// One log statement of a component: where it is printed and since when, with a line the rule
/// must match. Together these are the evidence table behind every log verdict.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    pub component: String,
    pub file: String,
    pub format: String,
    pub versions: String,
    pub example: String,
    /// The corpus file (tests/fixtures/logs) the example comes from, or `format string` when
    /// it was composed from the format string.
    pub example_from: String,
}

#[derive(Debug, Clone, Deserialize)]
struct RawResult {
    id: String,
    status: String,
    summary: String,
    #[serde(default)]
    remediation: Option<String>,
    #[serde(default)]
    value: Option<String>,
}

#[derive(Debug, Deserialize)]
struct RawFile {
    #[serde(default)]
    rule: Vec<RawRule>,
}

/// A result a user rule emits for each matching line.
#[derive(Debug, Clone)]
pub struct RuleResult {
    pub id: String,
    pub status: Status,
    pub summary: String,
    pub remediation: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub event: Option<String>,
    pub literals: Vec<String>,
    pub regex: Regex,
    pub source: Option<String>,
    pub result: Option<RuleResult>,
    /// What a match proves, in a sentence.
    pub proves: Option<String>,
    /// The verdicts (check ids) the rule can feed.
    pub checks: Vec<String>,
    /// The log statements the rule recognises.
    pub statements: Vec<Statement>,
    /// The file the rule came from.
    pub origin: String,
}

/// Shortest literal: Teddy, aho-corasick's SIMD searcher, fingerprints up to the first four
/// bytes of every pattern, and one short pattern makes every position a candidate.
pub const MIN_LITERAL: usize = 4;

/// Compiled rules with their literal prefilter.
#[derive(Debug)]
pub struct RuleSet {
    pub rules: Vec<Rule>,
    /// The anchors: the fewest literals such that every rule literal contains one of them,
    /// leftmost-first. They find the next candidate line; with at most 32 anchors of at least
    /// four bytes aho-corasick runs its fastest searcher (slim AVX2 Teddy), as ripgrep does.
    pub prefilter: AhoCorasick,
    /// The anchors themselves.
    pub anchors: Vec<String>,
    /// Every distinct rule literal with standard semantics, to list the literals of one
    /// candidate line.
    pub per_line: AhoCorasick,
    /// For each `per_line` pattern, the rules that declared it.
    pub rules_of_literal: Vec<Vec<usize>>,
}

/// The literals no other literal is a substring of: a line holding any literal holds one of
/// these, so they are a complete prefilter.
fn anchors_of(literals: &[String]) -> Vec<String> {
    let mut sorted: Vec<&String> = literals.iter().collect();
    sorted.sort_by_key(|l| l.len());
    let mut anchors: Vec<String> = Vec::new();
    for l in sorted {
        if !anchors.iter().any(|a| l.contains(a.as_str())) {
            anchors.push(l.clone());
        }
    }
    anchors.sort();
    anchors
}

fn parse_status(s: &str) -> Option<Status> {
    match s {
        "pass" => Some(Status::Pass),
        "warn" => Some(Status::Warn),
        "fail" => Some(Status::Fail),
        _ => None,
    }
}

/// Parses one rules file; errors name the file and rule.
pub fn parse_file(origin: &str, text: &str) -> Result<Vec<Rule>, String> {
    let raw: RawFile = toml::from_str(text).map_err(|e| format!("{origin}: {e}"))?;
    raw.rule
        .into_iter()
        .map(|r| {
            if r.literals.is_empty() || r.literals.iter().any(|l| l.len() < MIN_LITERAL) {
                return Err(format!(
                    "{origin}: rule {}: needs literals of {MIN_LITERAL} or more characters",
                    r.id
                ));
            }
            let regex = regex::bytes::RegexBuilder::new(&r.regex)
                .size_limit(MAX_REGEX_PROGRAM_BYTES)
                .dfa_size_limit(MAX_REGEX_PROGRAM_BYTES)
                .build()
                .map_err(|e| format!("{origin}: rule {}: {e}", r.id))?;
            let result = match r.result {
                Some(res) => {
                    let status = parse_status(&res.status).ok_or_else(|| {
                        format!("{origin}: rule {}: status must be pass, warn or fail", r.id)
                    })?;
                    if !res.id.contains('.') {
                        return Err(format!(
                            "{origin}: rule {}: result id must look like family.name",
                            r.id
                        ));
                    }
                    Some(RuleResult {
                        id: res.id,
                        status,
                        summary: res.summary,
                        remediation: res.remediation,
                        value: res.value,
                    })
                }
                None => None,
            };
            if r.event.is_none() && result.is_none() {
                return Err(format!("{origin}: rule {}: needs an `event` or a `result`", r.id));
            }
            Ok(Rule {
                id: r.id,
                event: r.event,
                literals: r.literals,
                regex,
                source: r.source,
                result,
                proves: r.proves,
                checks: r.checks,
                statements: r.statement,
                origin: origin.to_string(),
            })
        })
        .collect()
}

impl RuleSet {
    /// Compiles rules; rule ids must be unique.
    pub fn new(rules: Vec<Rule>) -> Result<RuleSet, String> {
        let mut seen = std::collections::HashSet::new();
        for r in &rules {
            if !seen.insert(r.id.clone()) {
                return Err(format!("duplicate rule id {} ({})", r.id, r.origin));
            }
        }
        let mut literals: Vec<String> = Vec::new();
        let mut rules_of_literal: Vec<Vec<usize>> = Vec::new();
        for (i, r) in rules.iter().enumerate() {
            for l in &r.literals {
                match literals.iter().position(|x| x == l) {
                    Some(p) => rules_of_literal[p].push(i),
                    None => {
                        literals.push(l.clone());
                        rules_of_literal.push(vec![i]);
                    }
                }
            }
        }
        let build = |kind, patterns: &[String]| {
            AhoCorasickBuilder::new()
                .match_kind(kind)
                .build(patterns)
                .map_err(|e| format!("cannot build the literal prefilter: {e}"))
        };
        let anchors = anchors_of(&literals);
        Ok(RuleSet {
            rules,
            prefilter: build(MatchKind::LeftmostFirst, &anchors)?,
            anchors,
            per_line: build(MatchKind::Standard, &literals)?,
            rules_of_literal,
        })
    }

    /// The built-in rules from `checks/rules/`.
    pub fn builtin() -> Result<Vec<Rule>, String> {
        let mut all = Vec::new();
        for (file, text) in embedded::RULES {
            all.extend(parse_file(&format!("checks/rules/{file}"), text)?);
        }
        Ok(all)
    }

    /// Built-in rules plus every `*.toml` in `dir`, within [`MAX_RULE_FILES`] files of
    /// [`MAX_RULES_FILE_BYTES`] and [`MAX_USER_RULES`] rules. A user rule's result may not
    /// take a built-in check's id (`is_check` tells them; the registry lives above facts).
    pub fn with_user_dir(
        dir: Option<&std::path::Path>,
        is_check: impl Fn(&str) -> bool,
    ) -> Result<RuleSet, String> {
        let mut rules = RuleSet::builtin()?;
        if let Some(d) = dir {
            let files = crate::root::list_user_dir(d)
                .map_err(|e| format!("--rules {}: {e}", d.display()))?;
            let files: Vec<_> =
                files.iter().filter(|f| f.extension().is_some_and(|x| x == "toml")).collect();
            if files.is_empty() {
                return Err(format!("--rules {}: no .toml rule file there", d.display()));
            }
            if files.len() > MAX_RULE_FILES {
                return Err(format!(
                    "--rules {}: {} rule files, more than the {MAX_RULE_FILES}-file limit",
                    d.display(),
                    files.len()
                ));
            }
            let mut user = Vec::new();
            for f in files {
                let data = read_rules_file(f)?;
                user.extend(parse_file(&f.display().to_string(), &String::from_utf8_lossy(&data))?);
                if user.len() > MAX_USER_RULES {
                    return Err(format!(
                        "--rules {}: more than {MAX_USER_RULES} user rules (the limit)",
                        d.display()
                    ));
                }
            }
            for r in &user {
                if let Some(res) = r.result.as_ref().filter(|res| is_check(&res.id)) {
                    return Err(format!(
                        "{}: rule {}: result id {} is a built-in check's; give user results their own id (e.g. site.{})",
                        r.origin,
                        r.id,
                        res.id,
                        res.id.rsplit('.').next().unwrap_or("name")
                    ));
                }
            }
            rules.extend(user);
        }
        RuleSet::new(rules)
    }
}

/// Reads a rules file within [`MAX_RULES_FILE_BYTES`].
fn read_rules_file(f: &std::path::Path) -> Result<Vec<u8>, String> {
    crate::root::read_user_dir_entry(f, MAX_RULES_FILE_BYTES)
        .map_err(|e| format!("{}: {e} (the rules file limit)", f.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_compile_within_the_fast_prefilter() {
        let rules = RuleSet::builtin().unwrap();
        assert!(rules.len() > 40);
        let set = RuleSet::new(rules).unwrap();
        assert!(
            set.anchors.len() <= 32,
            "{} anchors {:?}: slim Teddy takes 32",
            set.anchors.len(),
            set.anchors
        );
        assert!(set.anchors.iter().all(|a| a.len() >= MIN_LITERAL));
        // JSON shippers escape `"` and `\`: an anchor holding one would miss the line.
        assert!(set.anchors.iter().all(|a| !a.contains(['"', '\\'])), "{:?}", set.anchors);
    }

    #[test]
    fn anchors_cover_every_literal() {
        let lits: Vec<String> =
            ["NET/Plugin", "via NET/", "NET/", "Failed to load", "ailed"].map(String::from).into();
        assert_eq!(anchors_of(&lits), ["NET/", "ailed"]);
    }

    #[test]
    fn bad_rules_are_refused_with_their_name() {
        let e = parse_file("x.toml", "[[rule]]\nid='a'\nevent='e'\nliterals=['abcd']\nregex='('\n")
            .unwrap_err();
        assert!(e.contains("x.toml") && e.contains("rule a"), "{e}");
        assert!(
            parse_file("x.toml", "[[rule]]\nid='a'\nliterals=['abcd']\nregex='abc'\n").is_err()
        );
        assert!(
            parse_file("x.toml", "[[rule]]\nid='a'\nevent='e'\nliterals=['abc']\nregex='abc'\n")
                .is_err()
        );
        let ok = "[[rule]]\nid='a'\nliterals=['abcd']\nregex='abc'\n[rule.result]\nid='site.x'\nstatus='warn'\nsummary='s'\n";
        assert_eq!(
            parse_file("x.toml", ok).unwrap()[0].result.as_ref().unwrap().status,
            Status::Warn
        );
    }
}
