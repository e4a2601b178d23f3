//! efa-doctor: diagnoses AWS EFA / GPUDirect RDMA health on GPU nodes.
//!
//! The flow is *gather, then judge*: [`facts::gather`] reads the node through one
//! [`root::Root`] into serialisable [`facts::Facts`]; the checks in [`checks`] are pure
//! functions of those facts; [`report`] renders the results. Snapshots ([`snapshot`]) capture
//! exactly what was read so the same judgement can be replayed anywhere.

pub mod checks;
pub mod cli;
pub mod elf;
pub mod escape;
pub mod facts;
pub mod logs;
pub mod native;
pub mod output;
pub mod parse;
pub mod redact;
pub mod report;
pub mod root;
pub mod snapshot;

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context as _, Result, bail};

use crate::cli::{CheckArgs, Cli, ColorChoice, Command, ListFormat, OutputArgs};
use crate::report::{Report, RootInfo, Summary, ToolInfo, exit};
use crate::root::{Root, RootKind};

/// A usage error: exit code 2, message without a backtrace.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Runs the command line and returns the process exit code.
pub fn run(cli: Cli) -> Result<i32> {
    match cli.command {
        None => check(&cli.check),
        Some(Command::Check(a)) => check(&a),
        Some(Command::Logs(a)) => logs_cmd(&a),
        Some(Command::Snapshot(a)) => snapshot_cmd(&a),
        Some(Command::Probe(cli::ProbeCommand::Mr(a))) => probe_mr_cmd(&a),
        Some(Command::Probe(cli::ProbeCommand::Pair(a))) => probe_pair_cmd(&a),
        Some(Command::List(a)) => list(a.format),
        Some(Command::Explain(a)) => explain(&a.id, a.format),
        Some(Command::Completions { shell }) => {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut cli::command(), "efa-doctor", &mut out);
            write_stdout(&out)?;
            Ok(exit::OK)
        }
        Some(Command::Man) => {
            write_stdout(&man_page()?)?;
            Ok(exit::OK)
        }
    }
}

/// The man page, generated from the clap definition.
pub fn man_page() -> Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cli::command()).render(&mut out)?;
    Ok(out)
}

/// Opens the root the user asked for (or the automatic one).
pub fn open_root(args: &CheckArgs) -> Result<Root> {
    if let Some(file) = &args.snapshot {
        return snapshot::load(file).map_err(|e| UsageError(e.to_string()).into());
    }
    open_dir_root(args.root.as_deref())
}

fn open_dir_root(dir: Option<&Path>) -> Result<Root> {
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
    opts.manifest = snapshot::load_manifest(root)
        .map_err(|e| UsageError(format!("cannot read the captured manifest: {e}")))?;
    Ok(facts::gather(root, &opts))
}

fn probe_request(no_probe: bool) -> facts::probe::ProbeRequest {
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

fn build_report_with(
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
    let opts = facts::GatherOptions {
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
    // rules judge them); logs captured in the root only when a selected check or a user
    // rule reads them. Compiling the rules is part of reading logs.
    let read_logs =
        !args.logs.is_empty() || args.rules.is_some() || needs.contains(facts::Needs::LOGS);
    let rules = read_logs
        .then(|| logs::rules::RuleSet::with_user_dir(args.rules.as_deref()))
        .transpose()
        .map_err(UsageError)?;
    let analysis = match &rules {
        None => None,
        Some(rules) if args.logs.is_empty() => logs::analyse_captured(root, rules),
        Some(rules) => {
            let a = logs::analyse_paths(&args.logs, rules);
            require_readable_logs(&a)?;
            Some(a)
        }
    };
    if let Some(ps) = facts.processes.as_mut() {
        facts::process::attach_registrations(ps, &registrations(&args.addrs, analysis.as_ref()));
    }
    // Endpoints the user named are always scraped, like logs they named.
    if !args.metrics.is_empty() {
        facts.metrics = Some(facts::metrics::gather(&args.metrics, args.sample));
        facts.not_gathered.remove("metrics");
    }
    let verdicts = analysis.as_ref().map(|a| logs::interpret::interpret(a, &facts));
    let cx = checks::Context { facts: &facts, logs: verdicts.as_ref() };
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
        root: RootInfo {
            path: root.display().to_string(),
            kind: root.kind(),
            note: root.note().map(String::from),
        },
        facts,
        results,
        summary,
    })
}

/// `--pid` names the processes to judge: one that is not there is a usage error, not a run
/// that silently judges nothing.
fn require_pids(root: &Root, pids: &[u32], facts: &facts::Facts) -> Result<()> {
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
fn require_readable_logs(analysis: &logs::Analysis) -> Result<()> {
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

fn check(args: &CheckArgs) -> Result<i32> {
    let root = open_root(args)?;
    let report = build_report(&root, args)?;
    emit(&report, &args.output)?;
    Ok(report.summary.exit_code)
}

/// Registered addresses to classify: `--addr`, then the logs' `Registered memory at ...`
/// lines (with the pid of the stream that logged them, when known).
fn registrations(
    addrs: &[(u64, Option<u64>)],
    analysis: Option<&logs::Analysis>,
) -> Vec<facts::process::Registration> {
    let mut out: Vec<facts::process::Registration> = addrs
        .iter()
        .map(|(a, s)| facts::process::Registration {
            address: *a,
            size: *s,
            source: "--addr".into(),
            pid: None,
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
            });
        }
    }
    out
}

/// Results of user rules (`--rules`), filtered by `--only`/`--skip` on their ids.
fn user_results(a: &logs::Analysis, only: &[String], skip: &[String]) -> Vec<report::CheckResult> {
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

fn logs_cmd(a: &cli::LogsArgs) -> Result<i32> {
    let rules = logs::rules::RuleSet::with_user_dir(a.rules.as_deref()).map_err(UsageError)?;
    let analysis = logs::analyse_paths(&a.files, &rules);
    require_readable_logs(&analysis)?;
    let facts =
        facts::Facts { logs: Some(analysis.summary(rules.rules.len())), ..facts::Facts::default() };
    let verdicts = logs::interpret::interpret(&analysis, &facts);
    let cx = checks::Context { facts: &facts, logs: Some(&verdicts) };
    let selected: Vec<&'static dyn checks::Check> =
        checks::CHECKS.iter().copied().filter(|c| logs::interpret::IDS.contains(&c.id())).collect();
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

fn snapshot_cmd(a: &cli::SnapshotArgs) -> Result<i32> {
    let root = open_dir_root(a.root.as_deref())?.recording();
    let opts = facts::GatherOptions {
        sample: a.sample,
        pids: a.pids.clone(),
        probe: probe_request(a.no_probe),
        ..facts::GatherOptions::default()
    };
    let facts = gather(&root, opts)?;
    require_pids(&root, &a.pids, &facts)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let manifest = snapshot::manifest_for(&facts, now, a.description.clone());
    let mut rec = root.take_recording();
    for (i, path) in a.logs.iter().enumerate() {
        let data = logs::read_for_capture(path)
            .with_context(|| format!("cannot read --log {}", path.display()))?;
        let base =
            path.file_name().map_or_else(|| "log".into(), |n| n.to_string_lossy().into_owned());
        rec.files
            .insert(format!("{}/{i:02}-{base}", logs::CAPTURED_LOG_DIR), std::sync::Arc::new(data));
    }
    let (bytes, stats) = snapshot::archive(rec, manifest, a.max_size)
        .map_err(|e| UsageError(format!("cannot capture: {e}")))?;
    write_atomically(&a.output, &bytes)?;
    let written = match output::stdio_alias(&a.output) {
        Some(_) => "standard output".to_string(),
        None => a.output.display().to_string(),
    };
    // The paths are the user's and the root's: shown escaped like every other text.
    eprintln!(
        "{}",
        report::show_lines(&format!(
            "efa-doctor: wrote {written} ({} files, {} links, {} bytes of content, {} bytes compressed) from {}",
            stats.files,
            stats.links,
            stats.content_bytes,
            stats.archive_bytes,
            root.display()
        ))
    );
    Ok(exit::OK)
}

/// `probe mr`: the registration probe on this node, reported as the `probe.mr` check.
fn probe_mr_cmd(a: &cli::ProbeMrArgs) -> Result<i32> {
    let request = facts::probe::ProbeRequest::Explicit {
        provider: a.provider.clone(),
        gpus: a.gpus.clone(),
        deadline: a.timeout,
    };
    run_probe("probe.mr", a.fail_on, &a.output, request, None)
}

/// Runs one probe on this node and reports it as its check.
fn run_probe(
    id: &str,
    fail_on: report::FailOn,
    output: &OutputArgs,
    probe: facts::probe::ProbeRequest,
    pair: Option<facts::pair::PairRequest>,
) -> Result<i32> {
    let args = CheckArgs {
        only: vec![id.into()],
        fail_on,
        output: output.clone(),
        ..CheckArgs::default()
    };
    let report = build_report_with(&root::auto_root(), &args, probe, pair)?;
    emit(&report, &args.output)?;
    Ok(report.summary.exit_code)
}

/// `probe pair`: one end of the two-node path probe, reported as the `probe.pair` check.
fn probe_pair_cmd(a: &cli::ProbePairArgs) -> Result<i32> {
    let listen = a.listen_address();
    if let Some(l) = &listen {
        let provider =
            if a.provider == "efa" { String::new() } else { format!(" --provider {}", a.provider) };
        eprintln!(
            "{}",
            report::show_lines(&format!(
                "efa-doctor: waiting up to {} s for the other node on {l}; there, run: efa-doctor probe pair --connect THIS_NODE:{}{provider}",
                a.wait.as_secs(),
                a.port,
            ))
        );
    }
    let request = facts::pair::PairRequest {
        listen,
        connect: a.connect_target(),
        provider: a.provider.clone(),
        domain: a.domain.clone(),
        sizes: a.sizes.iter().map(|s| *s as usize).collect(),
        iters: a.iters,
        stall: a.stall,
        wait: a.wait,
    };
    let off = facts::probe::ProbeRequest::Off("not part of probe pair".into());
    run_probe("probe.pair", a.fail_on, &a.output, off, Some(request))
}

fn use_color(choice: ColorChoice, to_file: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            !to_file
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stdout().is_terminal()
        }
    }
}

/// Writes the rendered report to stdout or to `--output` (see [`write_atomically`]).
pub fn emit(report: &Report, out: &OutputArgs) -> Result<()> {
    let to_file = out.output.as_deref().is_some_and(|p| output::stdio_alias(p).is_none());
    let color = use_color(out.color, to_file);
    let text = report::render(report, out.format, color);
    match &out.output {
        Some(path) => write_atomically(path, text.as_bytes()),
        None => write_stdout(text.as_bytes()),
    }
}

/// Writes `data` to the output `path` the user named: the only file efa-doctor writes. A
/// regular file is replaced atomically (a reader never sees part of it) through an exclusive,
/// unpredictably named temporary file, keeping the target's mode (0600 when new); links are
/// never written through; devices other than a character device or FIFO named directly are
/// refused. [`output`] has the rules.
pub fn write_atomically(path: &Path, data: &[u8]) -> Result<()> {
    output::write(path, data).map_err(|e| match e {
        output::OutputError::Refused { .. } => UsageError(e.to_string()).into(),
        e => e.into(),
    })
}

/// Writes to stdout; a closed pipe (`efa-doctor | head`) is not an error.
pub fn write_stdout(data: &[u8]) -> Result<()> {
    Ok(output::write_stdout(data)?)
}

fn list(format: ListFormat) -> Result<i32> {
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

fn explain(id: &str, format: ListFormat) -> Result<i32> {
    let Some(doc) = checks::catalogue::doc(id) else {
        bail!(UsageError(format!("unknown check id '{id}' (see `efa-doctor list`)")));
    };
    let text = match format {
        ListFormat::Json => {
            let mut v = serde_json::to_value(doc)?;
            for s in checks::catalogue::REQUIRED_SECTIONS {
                let key = s.trim_start_matches("## ").to_lowercase().replace(' ', "_");
                v[key] = doc.section(s).unwrap_or_default().into();
            }
            serde_json::to_string_pretty(&v)? + "\n"
        }
        ListFormat::Human => {
            let sev = serde_json::to_value(doc.severity)?.as_str().unwrap_or_default().to_string();
            format!(
                "{} — {}\nseverity: {sev}; covers: {}\n{}",
                doc.id,
                doc.title,
                doc.covers.join(", "),
                doc.body
            )
        }
    };
    write_stdout(text.as_bytes())?;
    Ok(exit::OK)
}
