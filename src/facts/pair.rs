//! This end of the two-node path probe (`efa-doctor probe pair`), run in the native helper
//! with a deadline covering the wait for the peer and every transfer.

use std::time::Duration;

use super::imds::ImdsFacts;
use super::instance::InstanceFacts;
use super::libfabric::LibfabricFacts;
use crate::native::pair::{NodeId, PairResult};
use crate::native::{self, NativeRun};
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

pub type PairFacts = NativeRun<PairResult>;

/// Who this end is, from facts already gathered: the helper sends it to the peer.
pub fn node_id(root: &Root, instance: &InstanceFacts, imds: &ImdsFacts) -> NodeId {
    NodeId {
        hostname: root.read_value("proc/sys/kernel/hostname").ok(),
        boot_id: root.read_value("proc/sys/kernel/random/boot_id").ok(),
        instance_id: imds.instance_id.clone().or_else(|| instance.instance_id.clone()),
        instance_type: imds.instance_type.clone().or_else(|| instance.instance_type.clone()),
        availability_zone: imds.availability_zone.clone(),
        placement_group: imds.placement_group.clone(),
        secondary_cidr_subnets: imds
            .interfaces
            .iter()
            .filter(|i| i.secondary_cidr == Some(true))
            .filter_map(|i| i.subnet_cidr.clone())
            .collect(),
    }
}

/// Runs this end. Live nodes only: the probe moves real traffic.
pub fn run(
    root: &Root,
    req: &PairRequest,
    lf: &LibfabricFacts,
    node: NodeId,
    progress: &super::progress::Progress,
) -> PairFacts {
    let Some(site) = native::Site::of(root) else {
        return PairFacts::not_run("the pair probe runs between two live nodes");
    };
    let lib = match lf.loadable(root, &site) {
        Ok(l) => l,
        Err(why) => return PairFacts::not_run(why),
    };
    let sizes: Vec<String> = req.sizes.iter().map(|s| s.to_string()).collect();
    let mut args: Vec<String> = vec![
        "probe-pair".into(),
        "--lib".into(),
        lib,
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
        "--node".into(),
        serde_json::to_string(&node).unwrap_or_default(),
    ];
    if let Some(d) = &req.domain {
        args.extend(["--domain".into(), d.clone()]);
    }
    match (&req.listen, &req.connect) {
        (Some(l), _) => args.extend(["--listen".into(), l.clone()]),
        (_, Some(c)) => args.extend(["--connect".into(), c.clone()]),
        _ => return PairFacts::not_run("neither --listen nor --connect"),
    }
    // Waiting for the peer, every size's stall deadline, the final exchange, and the
    // transfers themselves (a minute is far more than they take on any working path).
    let deadline =
        req.wait + req.stall * (2 * req.sizes.len() as u32 + 4) + Duration::from_secs(60);
    let arg_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    let what = match (&req.listen, &req.connect) {
        (Some(l), _) => format!("efa-doctor: probe.pair, listening on {l}"),
        (_, Some(c)) => format!("efa-doctor: probe.pair with {c}"),
        _ => "efa-doctor: probe.pair".into(),
    };
    progress.during(&what, Some(deadline), || {
        native::run_json(&site, &arg_ref, &[], deadline, "the pair probe did not finish")
    })
}
