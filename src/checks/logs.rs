//! Log-derived checks: each one reports the verdicts `logs::interpret` drew from the logs
//! given with `--log` (or to `efa-doctor logs`), or a skip saying why there is none.

pub mod interpret;

use super::{Check, Context, Needs};
use crate::checks::logs::interpret::nothing_for;
use crate::verdict::{Outcome, Status};

/// One log-derived check, identified by its result id.
pub struct LogCheck(pub &'static str);

impl Check for LogCheck {
    fn id(&self) -> &'static str {
        self.0
    }

    fn needs(&self) -> Needs {
        // The verdicts come from `logs::interpret`, which weighs them against the
        // node (EFA devices, instance spec, architecture, the libfabric on disk).
        Needs::LOGS | Needs::REPORT | Needs::RDMA | Needs::PCI | Needs::EFA_STACK
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        let Some(verdicts) = cx.logs else {
            return vec![Outcome::skip(
                "no logs analysed (pass --log FILE, or use `efa-doctor logs`)",
            )];
        };
        match verdicts.get(self.0) {
            Some(v) if !v.is_empty() => v.iter().map(|o| on_this_node(self.0, o, cx)).collect(),
            _ => vec![Outcome::skip(nothing_for(self.0))],
        }
    }
}

/// A log verdict read against the node the logs came from: the UCX backend is only a
/// finding where EFA exists (the logs alone cannot tell, so they warn); on a node without
/// EFA it is the right choice, and efa.devices reports the missing EFA once.
fn on_this_node(id: &str, o: &Outcome, cx: &Context<'_>) -> Outcome {
    if id == "nixl.backend"
        && o.status == Status::Warn
        && o.value.as_deref() == Some("UCX")
        && cx.facts.efa_absent()
    {
        let mut p = o.clone();
        p.status = Status::Pass;
        p.summary = "NIXL instantiated the UCX backend; this node has no EFA device (see efa.devices), so UCX is the right choice".into();
        p.remediation = None;
        return p;
    }
    o.clone()
}

pub static NIXL_BACKEND: LogCheck = LogCheck("nixl.backend");
pub static NIXL_BACKEND_INIT: LogCheck = LogCheck("nixl.backend-init");
pub static NCCL_NET_PLUGIN: LogCheck = LogCheck("nccl.net-plugin");
pub static NCCL_PROVIDER: LogCheck = LogCheck("nccl.provider");
pub static NCCL_NETWORK: LogCheck = LogCheck("nccl.network");
pub static NCCL_GDRDMA: LogCheck = LogCheck("nccl.gdrdma");
pub static MR_REGISTRATION: LogCheck = LogCheck("mr.registration");
pub static MR_MEMLOCK: LogCheck = LogCheck("mr.memlock");
pub static KV_TRANSFER: LogCheck = LogCheck("kv.transfer");
pub static TCP_FALLBACK: LogCheck = LogCheck("transport.tcp-fallback");
