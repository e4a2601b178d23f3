//! `efa-doctor check` (the default command): open the root, gather the facts, run the
//! selected checks and write the report.

use std::path::Path;

use anyhow::{Result, bail};

use super::{Invocation, UsageError, check_outputs, finish};
use crate::cli::CheckArgs;
use crate::report::{Report, RootInfo, Summary, ToolInfo};
use crate::root::{Root, RootKind};
use crate::{checks, facts, report, root};

/// Opens the root the user asked for (or the automatic one).
pub fn open_root(args: &CheckArgs) -> Result<Root> {
    let stdin = Path::new("-");
    if args.snapshot.as_deref() == Some(stdin) && args.logs.iter().any(|l| l == stdin) {
        bail!(UsageError("--snapshot - and --log - cannot both read standard input".into()));
    }
    if let Some(file) = &args.snapshot {
        return root::snapshot::load(file).map_err(|e| UsageError(e.to_string()).into());
    }
    open_dir_root(args.root.as_deref())
}

pub fn open_dir_root(dir: Option<&Path>) -> Result<Root> {
    match dir {
        Some(dir) => {
            let kind = if dir == Path::new(root::live::HOST_MOUNT) {
                RootKind::HostMount
            } else {
                RootKind::Directory
            };
            Root::directory(dir, kind)
                .map_err(|e| UsageError(format!("cannot use --root: {e}")).into())
        }
        None => Ok(root::auto_root()),
    }
}

/// Gathers every fact from `root`; `opts` says what beyond reading files (its manifest is
/// read here).
pub fn gather(root: &Root, mut opts: facts::GatherOptions) -> Result<facts::Facts> {
    opts.manifest = facts::manifest::load_manifest(root)
        .map_err(|e| UsageError(format!("cannot read the captured manifest: {e}")))?;
    Ok(facts::gather(root, &opts))
}

pub fn probe_request(no_probe: bool) -> facts::probe::ProbeRequest {
    if no_probe {
        facts::probe::ProbeRequest::Off("disabled with --no-probe".into())
    } else {
        facts::probe::ProbeRequest::Auto
    }
}

/// Gathers facts from `root` and runs the selected checks.
pub fn build_report(root: &Root, args: &CheckArgs) -> Result<Report> {
    build_report_with(root, args, probe_request(args.no_probe), None)
}

pub fn build_report_with(
    root: &Root,
    args: &CheckArgs,
    probe: facts::probe::ProbeRequest,
    pair: Option<facts::pair::PairRequest>,
) -> Result<Report> {
    let selected = checks::select(&args.only, &args.skip).map_err(|e| UsageError(e.to_string()))?;
    // Only what the selected checks read is gathered: `--only host` starts no libfabric or
    // NVML helper, and the probe allocates GPU memory only when probe.mr will judge it.
    let mut needs = checks::needs(&selected);
    // A process named with --pid is checked to exist whatever is selected (a usage error).
    if !args.pids.is_empty() {
        needs |= facts::Needs::PROCESSES;
    }
    let progress = super::status::stderr_status();
    let opts = facts::GatherOptions {
        progress: progress.clone(),
        sample: args.sample,
        pids: args.pids.clone(),
        probe,
        pair,
        needs,
        ..facts::GatherOptions::default()
    };
    let mut facts = gather(root, opts)?;
    require_pids(root, &args.pids, &facts)?;
    // Logs the user named are always read (an unreadable one is a usage error, and user
    // rules judge them); logs captured in the root only when there are some and a selected
    // check or a user rule reads them. Compiling the rules is part of reading logs.
    let read_logs = !args.logs.is_empty()
        || args.rules.is_some()
        || (needs.contains(facts::Needs::LOGS) && facts::logs::has_captured(root));
    let rules = read_logs
        .then(|| facts::logs::rules::RuleSet::with_user_dir(args.rules.as_deref(), is_check))
        .transpose()
        .map_err(UsageError)?;
    let analysis = match &rules {
        None => None,
        Some(rules) if args.logs.is_empty() => facts::logs::analyse_captured(root, rules),
        Some(rules) => {
            let a = facts::logs::analyse_paths(&args.logs, rules);
            require_readable_logs(&a)?;
            Some(a)
        }
    };
    if let Some(ps) = facts.processes.as_mut() {
        facts::process::attach_registrations(ps, &registrations(&args.addrs, analysis.as_ref()));
    }
    // Endpoints the user named are always scraped, like logs they named.
    if !args.metrics.is_empty() {
        facts.metrics = Some(facts::metrics::gather(&args.metrics, args.sample, &progress));
        facts.not_gathered.remove("metrics");
    }
    // Lines a worker's own check reports are judged there (one root cause, one failure).
    let verdicts = analysis.as_ref().map(|a| {
        let claims = checks::process::log_claims(&facts, a);
        checks::logs::interpret::interpret(a, &facts, &claims)
    });
    let cx = checks::Context {
        facts: &facts,
        logs: verdicts.as_ref(),
        analysis: analysis.as_ref(),
        bake: args.profile == crate::cli::Profile::Bake,
    };
    let mut results = checks::run(&selected, &cx);
    if let Some(a) = &analysis {
        results.extend(user_results(a, &args.only, &args.skip));
        facts.logs = Some(a.summary(rules.as_ref().map_or(0, |r| r.rules.len())));
        facts.not_gathered.remove("logs");
    }
    let summary = Summary::of(&results, args.fail_on);
    Ok(Report {
        schema: report::SCHEMA.into(),
        tool: ToolInfo::current(),
        run: None,
        root: root_info(root),
        facts,
        results,
        summary,
    })
}

/// `--pid` names the processes to judge: one that is not there is a usage error, not a run
/// that silently judges nothing.
pub fn require_pids(root: &Root, pids: &[u32], facts: &facts::Facts) -> Result<()> {
    let found = |pid: &u32| {
        facts.processes.as_ref().is_some_and(|ps| ps.processes.iter().any(|p| p.pid == *pid))
    };
    let missing: Vec<String> = pids.iter().filter(|p| !found(p)).map(|p| p.to_string()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    bail!(UsageError(format!(
        "--pid {}: no such process in {} (it does not exist, has exited, or is not visible from this root)",
        missing.join(","),
        root.display()
    )))
}

/// A log the user named that cannot be read is a usage error: judging without it would
/// claim the logs hold no such line.
pub fn require_readable_logs(analysis: &facts::logs::Analysis) -> Result<()> {
    let unreadable: Vec<String> = analysis
        .files
        .iter()
        .filter_map(|f| f.error.as_ref().map(|e| format!("{}: {e}", f.name)))
        .collect();
    if unreadable.is_empty() {
        return Ok(());
    }
    bail!(UsageError(format!("cannot read the logs: {}", unreadable.join("; "))))
}

pub fn check(args: &CheckArgs, inv: &Invocation) -> Result<i32> {
    check_outputs(&args.output)?;
    let mut judged = requested_root(args);
    let built = open_root(args).and_then(|root| {
        judged = root_info(&root);
        build_report(&root, args)
    });
    finish(built, || judged, args.fail_on, &args.output, inv)
}

/// The root a run was asked to judge, as its report names it when it could not be opened.
fn requested_root(args: &CheckArgs) -> RootInfo {
    let (path, kind) = match (&args.snapshot, &args.root) {
        (Some(file), _) => (file.as_path(), RootKind::Snapshot),
        (None, Some(dir)) if dir == Path::new(root::live::HOST_MOUNT) => {
            (dir.as_path(), RootKind::HostMount)
        }
        (None, Some(dir)) => (dir.as_path(), RootKind::Directory),
        (None, None) => (Path::new("/"), RootKind::Live),
    };
    RootInfo { path: path.display().to_string(), kind, note: None }
}

/// How a report names the root it judged.
pub fn root_info(root: &Root) -> RootInfo {
    RootInfo {
        path: root.display().to_string(),
        kind: root.kind(),
        note: root.note().map(String::from),
    }
}

/// Registered addresses to classify: `--addr`, then the logs' registration lines: NIXL's
/// (UCX `registered N bytes at`, LIBFABRIC `Memory Registration SUCCESS`) and the efa
/// provider's `Registered memory at ...` (with the pid of the stream that logged them,
/// when known).
pub fn registrations(
    addrs: &[(u64, Option<u64>)],
    analysis: Option<&facts::logs::Analysis>,
) -> Vec<facts::process::Registration> {
    let mut out: Vec<facts::process::Registration> = addrs
        .iter()
        .map(|(a, s)| facts::process::Registration {
            address: *a,
            size: *s,
            source: "--addr".into(),
            pid: None,
            origin: facts::process::RegOrigin::Workload,
        })
        .collect();
    if let Some(a) = analysis {
        for e in a.of("fabric.mr-registered") {
            let Some(addr) = e.cap("addr").and_then(facts::process::hex_address) else {
                continue;
            };
            out.push(facts::process::Registration {
                address: addr,
                size: e.cap("size").and_then(|s| s.parse().ok()),
                source: format!("{}:{}", a.source_of(e), e.line),
                pid: e.stream.strip_prefix("pid ").and_then(|p| p.parse().ok()),
                // libfabric's own line also reports the provider's packet pools; NIXL's
                // lines name only what the workload registered.
                origin: if e.rule == "fabric.mr-registered" {
                    facts::process::RegOrigin::Provider
                } else {
                    facts::process::RegOrigin::Workload
                },
            });
        }
    }
    out
}

/// Results of user rules (`--rules`), filtered by `--only`/`--skip` on their ids.
pub fn user_results(
    a: &facts::logs::Analysis,
    only: &[String],
    skip: &[String],
) -> Vec<report::CheckResult> {
    let keep = |id: &str| {
        let m = |s: &String| checks::matches(s, id);
        (only.is_empty() || only.iter().any(m)) && !skip.iter().any(m)
    };
    a.user_results
        .iter()
        .filter(|(id, _)| keep(id))
        .map(|(id, o)| o.clone().into_result(id))
        .collect()
}

/// Whether `id` is a registered check's (user log rules may not take one).
pub fn is_check(id: &str) -> bool {
    checks::find(id).is_some()
}
