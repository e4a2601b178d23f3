//! `efa-doctor logs`: analyse logs alone, without a node root.

use anyhow::Result;

use super::check::{is_check, require_readable_logs, user_results};
use super::{Invocation, UsageError, check_outputs, finish};
use crate::report::{Report, RootInfo, Summary, ToolInfo};
use crate::root::RootKind;
use crate::{checks, cli, facts, report};

pub fn logs_cmd(a: &cli::LogsArgs, inv: &Invocation) -> Result<i32> {
    check_outputs(&a.output)?;
    finish(judge_logs(a), || logs_root(a), a.fail_on, &a.output, inv)
}

/// How a logs-only report names what it judged: the logs, and no node root.
fn logs_root(a: &cli::LogsArgs) -> RootInfo {
    RootInfo {
        path: a.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>().join(" "),
        kind: RootKind::None,
        note: Some("log analysis only: no node root was read".into()),
    }
}

fn judge_logs(a: &cli::LogsArgs) -> Result<Report> {
    let rules = facts::logs::rules::RuleSet::with_user_dir(a.rules.as_deref(), is_check)
        .map_err(UsageError)?;
    let analysis = facts::logs::analyse_paths(&a.files, &rules);
    require_readable_logs(&analysis)?;
    let facts =
        facts::Facts { logs: Some(analysis.summary(rules.rules.len())), ..facts::Facts::default() };
    // No process is inspected here: the logs' verdicts stand.
    let verdicts = checks::logs::interpret::interpret(&analysis, &facts, &[]);
    let cx = checks::Context {
        facts: &facts,
        logs: Some(&verdicts),
        analysis: Some(&analysis),
        bake: false,
    };
    let selected: Vec<&'static dyn checks::Check> = checks::CHECKS
        .iter()
        .copied()
        .filter(|c| checks::logs::interpret::IDS.contains(&c.id()))
        .collect();
    let mut results = checks::run(&selected, &cx);
    results.extend(user_results(&analysis, &[], &[]));
    let summary = Summary::of(&results, a.fail_on);
    Ok(Report {
        schema: report::SCHEMA.into(),
        tool: ToolInfo::current(),
        run: None,
        root: logs_root(a),
        facts,
        results,
        summary,
    })
}
