//! `efa-doctor probe mr` and `probe pair`: one live probe on this node, reported as its check.

use anyhow::Result;

use super::check::{build_report_with, root_info};
use super::{Invocation, check_outputs, finish};
use crate::cli::{CheckArgs, OutputArgs};
use crate::{cli, facts, report, root};

/// `probe mr`: the registration probe on this node, reported as the `probe.mr` check.
pub fn probe_mr_cmd(a: &cli::ProbeMrArgs, inv: &Invocation) -> Result<i32> {
    let request = facts::probe::ProbeRequest::Explicit {
        provider: a.provider.clone(),
        gpus: a.gpus.clone(),
        deadline: a.timeout,
    };
    check_outputs(&a.output)?;
    run_probe("probe.mr", a.fail_on, &a.output, request, None, inv)
}

/// Runs one probe on this node and reports it as its check.
fn run_probe(
    id: &str,
    fail_on: report::FailOn,
    output: &OutputArgs,
    probe: facts::probe::ProbeRequest,
    pair: Option<facts::pair::PairRequest>,
    inv: &Invocation,
) -> Result<i32> {
    let args = CheckArgs {
        only: vec![id.into()],
        fail_on,
        output: output.clone(),
        ..CheckArgs::default()
    };
    let root = root::auto_root();
    let built = build_report_with(&root, &args, probe, pair);
    finish(built, || root_info(&root), fail_on, &args.output, inv)
}

/// `probe pair`: one end of the two-node path probe, reported as the `probe.pair` check.
pub fn probe_pair_cmd(a: &cli::ProbePairArgs, inv: &Invocation) -> Result<i32> {
    check_outputs(&a.output)?;
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
    run_probe("probe.pair", a.fail_on, &a.output, off, Some(request), inv)
}
