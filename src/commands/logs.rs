//! `efa-doctor logs`: analyse logs alone, without a node root.

use anyhow::Result;

use super::check::{is_check, require_readable_logs, user_results};
use super::{UsageError, emit};
use crate::report::{Report, RootInfo, Summary, ToolInfo};
use crate::root::RootKind;
use crate::{checks, cli, facts, report};

pub fn logs_cmd(a: &cli::LogsArgs) -> Result<i32> {
    let rules = facts::logs::rules::RuleSet::with_user_dir(a.rules.as_deref(), is_check)
        .map_err(UsageError)?;
    let analysis = facts::logs::analyse_paths(&a.files, &rules);
    require_readable_logs(&analysis)?;
    let facts =
        facts::Facts { logs: Some(analysis.summary(rules.rules.len())), ..facts::Facts::default() };
    let verdicts = checks::logs::interpret::interpret(&analysis, &facts);
    let cx = checks::Context { facts: &facts, logs: Some(&verdicts), bake: false };
    let selected: Vec<&'static dyn checks::Check> = checks::CHECKS
        .iter()
        .copied()
        .filter(|c| checks::logs::interpret::IDS.contains(&c.id()))
        .collect();
    let mut results = checks::run(&selected, &cx);
    results.extend(user_results(&analysis, &[], &[]));
    let summary = Summary::of(&results, a.fail_on);
    let report = Report {
        schema: report::SCHEMA.into(),
        tool: ToolInfo::current(),
        root: RootInfo {
            path: a.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" "),
            kind: RootKind::None,
            note: Some("log analysis only: no node root was read".into()),
        },
        facts,
        results,
        summary,
    };
    emit(&report, &a.output)?;
    Ok(report.summary.exit_code)
}
