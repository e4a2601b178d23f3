//! This end of the two-node path probe (`efa-doctor probe pair`), run in the native helper
//! with a deadline covering the wait for the peer and every transfer.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::libfabric::LibfabricFacts;
use crate::native::pair::PairResult;
use crate::native::{self, NativeState};
use crate::root::Root;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairRequest {
    /// `ADDR:PORT` to listen on, or
    pub listen: Option<String>,
    /// `HOST:PORT` to connect to.
    pub connect: Option<String>,
    pub provider: String,
    pub domain: Option<String>,
    pub sizes: Vec<usize>,
    pub iters: usize,
    /// Longest wait for one completion.
    pub stall: Duration,
    /// Longest wait for the peer's side channel.
    pub wait: Duration,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PairFacts {
    pub state: NativeState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<PairResult>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub log: Vec<String>,
}

/// Runs this end. Live nodes only: the probe moves real traffic.
pub fn run(root: &Root, req: &PairRequest, lf: &LibfabricFacts) -> PairFacts {
    let fail = |state, why: String| PairFacts { state, error: Some(why), ..PairFacts::default() };
    if !root.kind().is_live() {
        return fail(NativeState::NotRun, "the pair probe runs between two live nodes".into());
    }
    let Some(path) = lf.path.as_deref().filter(|_| lf.state == NativeState::Ok) else {
        return fail(
            NativeState::NotRun,
            format!(
                "no loadable libfabric ({})",
                lf.error.as_deref().unwrap_or("see libfabric.efa-provider")
            ),
        );
    };
    let Some(lib) = root.host_path(path) else {
        return fail(NativeState::NotRun, "this root has no files to load".into());
    };
    let sizes: Vec<String> = req.sizes.iter().map(|s| s.to_string()).collect();
    let mut args: Vec<String> = vec![
        "probe-pair".into(),
        "--lib".into(),
        lib.display().to_string(),
        "--provider".into(),
        req.provider.clone(),
        "--sizes".into(),
        sizes.join(","),
        "--iters".into(),
        req.iters.to_string(),
        "--stall".into(),
        req.stall.as_secs_f64().to_string(),
        "--wait".into(),
        req.wait.as_secs_f64().to_string(),
    ];
    if let Some(d) = &req.domain {
        args.extend(["--domain".into(), d.clone()]);
    }
    match (&req.listen, &req.connect) {
        (Some(l), _) => args.extend(["--listen".into(), l.clone()]),
        (_, Some(c)) => args.extend(["--connect".into(), c.clone()]),
        _ => return fail(NativeState::NotRun, "neither --listen nor --connect".into()),
    }
    // Waiting for the peer, every size's stall deadline, the final exchange, and the
    // transfers themselves (a minute is far more than they take on any working path).
    let deadline =
        req.wait + req.stall * (2 * req.sizes.len() as u32 + 4) + Duration::from_secs(60);
    let arg_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    match native::run_child(&arg_ref, &[], deadline) {
        Ok(out) => match serde_json::from_slice::<PairResult>(&out.stdout) {
            Ok(r) => {
                PairFacts { state: NativeState::Ok, error: None, result: Some(r), log: out.log }
            }
            Err(e) => PairFacts {
                state: NativeState::Failed,
                error: Some(format!("unreadable helper output: {e}")),
                log: out.log,
                ..PairFacts::default()
            },
        },
        Err(native::ChildError::Timeout { secs, last_step }) => fail(
            NativeState::Timeout,
            format!("the pair probe did not finish within {secs} s (stuck in {last_step})"),
        ),
        Err(e) => fail(NativeState::Failed, e.to_string()),
    }
}
