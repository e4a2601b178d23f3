//! Between nodes: the instance's network placement from IMDS (`host.network`) and the
//! two-node path probe (`probe.pair`).

use std::collections::BTreeMap;

use super::{Check, Context, Needs};
use crate::facts::Facts;
use crate::native::NativeState;
use crate::native::pair::{PairResult, PortCounters, StageError};
use crate::verdict::{Evidence, Outcome};

pub struct HostNetwork;

impl Check for HostNetwork {
    fn id(&self) -> &'static str {
        "host.network"
    }

    fn needs(&self) -> Needs {
        Needs::IMDS | Needs::RDMA
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![host_network(cx.facts)]
    }
}

fn host_network(f: &Facts) -> Outcome {
    let m = &f.imds;
    match m.state {
        NativeState::Ok => {}
        NativeState::NotRun => {
            return Outcome::skip(m.error.clone().unwrap_or_else(|| "IMDS not asked".into()));
        }
        _ => {
            return Outcome::skip(format!(
                "IMDS unavailable: {}",
                m.error.as_deref().unwrap_or("no answer")
            ))
            .evidence(
                Evidence::new(m.endpoint.clone().unwrap_or_default())
                    .observed(m.error.clone().unwrap_or_default()),
            );
        }
    }
    let src = m.endpoint.clone().unwrap_or_default();
    let mut ev = vec![Evidence::new(format!("{src} placement/")).observed(format!(
        "{} in {} ({}), placement group {}",
        m.instance_type.as_deref().unwrap_or("?"),
        m.availability_zone.as_deref().unwrap_or("?"),
        m.availability_zone_id.as_deref().unwrap_or("?"),
        m.placement_group.as_deref().unwrap_or("none")
    ))];
    for i in &m.interfaces {
        ev.push(Evidence::new(format!("{src} network/interfaces/macs/{}/", i.mac)).observed(
            format!(
                "card {} device {}: subnet {} in VPC {} (primary {}, all {})",
                i.network_card_index.map_or("?".into(), |v| v.to_string()),
                i.device_number.map_or("?".into(), |v| v.to_string()),
                i.subnet_cidr.as_deref().unwrap_or("?"),
                i.vpc_id.as_deref().unwrap_or("?"),
                i.vpc_cidr.as_deref().unwrap_or("?"),
                i.vpc_cidrs.join(" ")
            ),
        ));
    }
    let secondary: Vec<&str> = m
        .interfaces
        .iter()
        .filter(|i| i.secondary_cidr == Some(true))
        .filter_map(|i| i.subnet_cidr.as_deref())
        .collect();
    let efa = f.rdma.has_efa();
    let details = serde_json::to_value(m).unwrap_or_default();
    if !secondary.is_empty() {
        let mut s = secondary.clone();
        s.sort_unstable();
        s.dedup();
        return Outcome::warn(format!(
            "subnet(s) {} lie in a secondary VPC CIDR: SRD traffic there has been reported to drop silently (tx_pkts rise, rx_pkts stay flat); AWS documentation does not confirm this",
            s.join(", ")
        ))
        .with_evidence(ev)
        .details(details)
        .value("secondary-cidr")
        .remediation("If `efa-doctor probe pair` between two nodes fails with tx rising and rx flat, move the EFA interfaces to subnets in the VPC's primary CIDR.");
    }
    if efa && m.placement_group.is_none() {
        return Outcome::warn(format!(
            "{} in {} is in no placement group: EFA traffic between instances spread across the AZ has more hops and latency",
            m.instance_type.as_deref().unwrap_or("this instance"),
            m.availability_zone.as_deref().unwrap_or("its AZ")
        ))
        .with_evidence(ev)
        .details(details)
        .value("no-placement-group")
        .remediation("Launch multi-node EFA instances in one cluster placement group (or a capacity block / UltraServer that places them together), all in one availability zone: EFA does not cross AZs.");
    }
    Outcome::pass(format!(
        "{} in {}{}",
        m.instance_type.as_deref().unwrap_or("instance"),
        m.availability_zone.as_deref().unwrap_or("?"),
        m.placement_group.as_deref().map(|g| format!(", placement group {g}")).unwrap_or_default()
    ))
    .with_evidence(ev)
    .details(details)
}

pub struct PairProbe;

impl Check for PairProbe {
    fn id(&self) -> &'static str {
        "probe.pair"
    }

    fn needs(&self) -> Needs {
        Needs::PAIR
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![pair(cx.facts)]
    }
}

fn sum(c: &BTreeMap<String, PortCounters>, pick: fn(&PortCounters) -> Option<u64>) -> Option<u64> {
    let v: Vec<u64> = c.values().filter_map(pick).collect();
    (!v.is_empty()).then(|| v.iter().sum())
}

/// Packets counted between two readings, summed over the EFA devices.
fn delta(
    before: Option<&BTreeMap<String, PortCounters>>,
    after: Option<&BTreeMap<String, PortCounters>>,
    pick: fn(&PortCounters) -> Option<u64>,
) -> Option<u64> {
    Some(sum(after?, pick)?.saturating_sub(sum(before?, pick)?))
}

fn size_text(n: usize) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1024 && n % 1024 == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

fn pair(f: &Facts) -> Outcome {
    let Some(p) = &f.pair else {
        return Outcome::skip(
            "needs two nodes: `efa-doctor probe pair --listen` on one, `efa-doctor probe pair --connect HOST` on the other",
        );
    };
    let r = match (p.state, &p.result) {
        (NativeState::Ok, Some(r)) => r,
        (NativeState::NotRun, _) => return Outcome::skip(p.error.clone().unwrap_or_default()),
        _ => {
            let why = p.error.clone().unwrap_or_default();
            return Outcome::error(format!("the pair probe failed: {why}"))
                .evidence(Evidence::new("efa-doctor __native probe-pair").observed(why));
        }
    };
    let mut ev = vec![
        Evidence::new(format!("{} ({})", r.lib, r.libfabric_version.as_deref().unwrap_or("?")))
            .observed(format!(
                "provider {}, fabric {}, domain {}; side channel {}",
                r.provider,
                r.fabric.as_deref().unwrap_or("?"),
                r.domain.as_deref().unwrap_or("?"),
                if r.side_channel.is_empty() { "not connected" } else { &r.side_channel }
            )),
    ];
    let node = |n: &crate::native::pair::NodeId| {
        format!(
            "{} ({}, {}{})",
            n.hostname.as_deref().unwrap_or("?"),
            n.instance_id.as_deref().unwrap_or("no instance id"),
            n.availability_zone.as_deref().unwrap_or("AZ unknown"),
            n.placement_group.as_deref().map(|g| format!(", group {g}")).unwrap_or_default()
        )
    };
    ev.push(Evidence::new("this node").observed(node(&r.node)));
    if let Some(peer) = &r.peer {
        ev.push(Evidence::new("peer node").observed(node(peer)));
    }
    let same_node =
        r.peer.as_ref().is_some_and(|p| p.boot_id.is_some() && p.boot_id == r.node.boot_id);
    let mut details = serde_json::to_value(r).unwrap_or_default();
    if !r.results.is_empty() {
        // The human report shows this as a table.
        details["matrix"] = serde_json::json!({
            "rows": r.results.iter().map(|s| format!("{} {}", s.test, size_text(s.size))).collect::<Vec<_>>(),
            "cols": ["iterations", "usec/xfer", "MB/s"],
            "names": true,
            "corner": format!("{} provider, measured from {} to {}", r.provider, r.node.hostname.as_deref().unwrap_or("this node"), r.side_channel),
            "cells": r.results.iter().map(|s| vec![s.iterations.to_string(), format!("{:.2}", s.usec_per_xfer), format!("{:.1}", s.mb_per_sec)]).collect::<Vec<_>>(),
        });
    }
    let failure = r.error.as_ref().or(r.peer_error.as_ref());
    let Some(e) = failure else {
        return passed(r, ev, same_node).details(details);
    };
    match e.stage.as_str() {
        "fabric" => Outcome::error(format!("could not open an RDM endpoint of provider {}: {}", r.provider, e.message))
            .with_evidence(ev)
            .remediation("See libfabric.efa-provider: the efa provider needs the EFA devices in this container or node, and the EFA installer's libfabric.")
            .details(details),
        "side-channel" => Outcome::error(format!("side channel: {}", e.message))
            .with_evidence(ev)
            .remediation("Start `efa-doctor probe pair --listen` on the other node first and let TCP reach its --port (it carries only addresses and counters); the nodes' security group must allow traffic between them anyway.")
            .details(details),
        _ => diagnose(r, e, ev, same_node).details(details),
    }
}

fn passed(r: &PairResult, mut ev: Vec<Evidence>, same_node: bool) -> Outcome {
    for s in &r.results {
        ev.push(Evidence::new(format!("{} {}", s.test, size_text(s.size))).observed(format!(
            "{} x in {:.3} s: {:.2} usec/xfer, {:.2} MB/s",
            s.iterations, s.seconds, s.usec_per_xfer, s.mb_per_sec
        )));
    }
    if r.data_ok == Some(false) {
        return Outcome::fail("messages arrived but their contents differ from what was sent").with_evidence(ev).value("corrupt").remediation("Data corruption on the path: check efa.errors and the devices' firmware; report it to AWS support with this output.");
    }
    let lat = r.results.iter().filter(|s| s.test == "pingpong").min_by_key(|s| s.size);
    let bw = r.results.iter().filter(|s| s.test == "stream").max_by_key(|s| s.size);
    let mut summary = format!("messages cross the {} path", r.provider);
    if let Some(l) = lat {
        summary.push_str(&format!(": {} latency {:.2} usec", size_text(l.size), l.usec_per_xfer));
    }
    if let Some(b) = bw {
        summary.push_str(&format!(", {} stream {:.0} MB/s", size_text(b.size), b.mb_per_sec));
    }
    if r.results.is_empty() {
        summary = format!(
            "this end ({}) completed its side of the transfers; the connecting end reports the measurements",
            r.role
        );
    }
    if same_node {
        summary.push_str(" (both ends on the same node)");
    }
    Outcome::pass(summary).with_evidence(ev).value("ok")
}

fn diagnose(r: &PairResult, e: &StageError, mut ev: Vec<Evidence>, same_node: bool) -> Outcome {
    let tx = |c: &PortCounters| c.tx_pkts;
    let rx = |c: &PortCounters| c.rx_pkts;
    let local_tx = delta(Some(&r.counters_before), Some(&r.counters_after), tx);
    let local_rx = delta(Some(&r.counters_before), Some(&r.counters_after), rx);
    let peer_tx = delta(r.peer_counters_before.as_ref(), r.peer_counters_after.as_ref(), tx);
    let peer_rx = delta(r.peer_counters_before.as_ref(), r.peer_counters_after.as_ref(), rx);
    let show = |v: Option<u64>| v.map_or("no EFA counters".into(), |v| format!("+{v}"));
    ev.push(Evidence::new("EFA port counters (this node)").observed(format!(
        "tx_pkts {}, rx_pkts {}",
        show(local_tx),
        show(local_rx)
    )));
    ev.push(Evidence::new("EFA port counters (peer)").observed(format!(
        "tx_pkts {}, rx_pkts {}",
        show(peer_tx),
        show(peer_rx)
    )));
    ev.push(Evidence::new(format!("stage {}", e.stage)).observed(e.message.clone()));
    let what = format!(
        "{}{}",
        e.stage,
        e.size.map(|s| format!(" of {}", size_text(s))).unwrap_or_default()
    );
    if !e.timed_out {
        return Outcome::fail(format!("the {} path failed during {what}: {}", r.provider, e.message))
            .with_evidence(ev)
            .value("error")
            .remediation("The provider reported the error itself: see its text above, efa.errors and libfabric.efa-provider.");
    }
    let az = |n: Option<&crate::native::pair::NodeId>| n.and_then(|n| n.availability_zone.clone());
    let (here, there) = (az(Some(&r.node)), az(r.peer.as_ref()));
    if let (Some(a), Some(b)) = (&here, &there) {
        if a != b {
            return Outcome::fail(format!("no message crossed during {what}: the nodes are in different availability zones ({a}, {b}), and EFA does not cross availability zones"))
                .with_evidence(ev)
                .value("cross-az")
                .remediation("Run the nodes that exchange EFA traffic in one availability zone, ideally one cluster placement group.");
        }
    }
    // Both ends on one node is a valid test: libfabric's efa provider carries traffic between
    // two endpoints of one node over the device (the EFA installer's test runs fi_pingpong
    // -p efa to localhost with FI_EFA_ENABLE_SHM_TRANSFER=0). It is said, never blamed.
    let here_too = if same_node && r.provider == "efa" {
        " (both ends are on this node, which the efa provider carries over the device: not the cause)"
    } else {
        ""
    };
    let secondary: Vec<&String> = r
        .node
        .secondary_cidr_subnets
        .iter()
        .chain(r.peer.iter().flat_map(|p| p.secondary_cidr_subnets.iter()))
        .collect();
    let o = match (local_tx, peer_rx) {
        (Some(t), Some(0)) if t > 0 => {
            let cidr = if secondary.is_empty() {
                String::new()
            } else {
                format!("; subnet(s) {} lie in a secondary VPC CIDR, the other reported cause (unconfirmed by AWS documentation)", secondary.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))
            };
            Outcome::fail(format!(
                "silent drop during {what}: this node sent (tx_pkts +{t}) and the peer received nothing (rx_pkts +0): the security group lacks the self-referencing all-traffic rules{cidr}"
            ))
            .with_evidence(ev)
            .value("silent-drop")
            .remediation("Give the EFA interfaces a security group that allows all inbound and all outbound traffic to and from itself (both rules are needed; the default outbound-to-anywhere rule does not cover SRD), keep both nodes in one AZ, and keep their subnets in the VPC's primary CIDR.")
        }
        (Some(0), _) => Outcome::fail(format!("nothing left this node's EFA devices during {what} (tx_pkts +0): the provider never sent"))
            .with_evidence(ev)
            .value("not-sent")
            .remediation("The endpoint or address vector is wrong rather than the network: check libfabric.efa-provider, efa.errors and the provider's log (FI_LOG_LEVEL=warn).")
            ,
        _ => Outcome::fail(format!(
            "no message crossed the {} path during {what} within the stall deadline, while the side channel between the same nodes worked: traffic between them is blocked",
            r.provider
        ))
        .with_evidence(ev)
        .value("blocked")
        .remediation("Allow all traffic between the nodes (for EFA: the security group's self-referencing inbound and outbound rules); for other providers, the firewall between the hosts."),
    };
    Outcome { summary: format!("{}{here_too}", o.summary), ..o }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::pair::PairFacts;
    use crate::native::pair::NodeId;
    use crate::verdict::Status;

    fn counters(tx: u64, rx: u64) -> BTreeMap<String, PortCounters> {
        [(
            "rdmap79s0".to_string(),
            PortCounters { tx_pkts: Some(tx), rx_pkts: Some(rx), tx_bytes: None, rx_bytes: None },
        )]
        .into()
    }

    fn node(boot: &str, az: &str) -> NodeId {
        NodeId {
            boot_id: Some(boot.into()),
            availability_zone: Some(az.into()),
            ..NodeId::default()
        }
    }

    /// A connecting end whose first ping-pong never completed.
    fn stalled(local_tx: u64, peer_rx: u64, peer: NodeId) -> Facts {
        let r = PairResult {
            role: "connect".into(),
            provider: "efa".into(),
            node: node("boot-a", "us-east-2b"),
            peer: Some(peer),
            counters_before: counters(100, 100),
            counters_after: counters(100 + local_tx, 100),
            peer_counters_before: Some(counters(50, 50)),
            peer_counters_after: Some(counters(50, 50 + peer_rx)),
            error: Some(StageError {
                stage: "pingpong/receive".into(),
                size: Some(64),
                message: "no completion of the receive within 5 s".into(),
                timed_out: true,
            }),
            ..PairResult::default()
        };
        Facts {
            pair: Some(PairFacts {
                state: NativeState::Ok,
                result: Some(r),
                ..PairFacts::default()
            }),
            ..Facts::default()
        }
    }

    #[test]
    fn diagnosis_from_counters_and_identity() {
        let cases = [
            (stalled(37, 0, node("boot-b", "us-east-2b")), "silent-drop", "tx_pkts +37"),
            (
                stalled(37, 0, node("boot-b", "us-east-2a")),
                "cross-az",
                "different availability zones",
            ),
            // Same node is no diagnosis of its own: EFA loops back over the device.
            (
                stalled(37, 0, node("boot-a", "us-east-2b")),
                "silent-drop",
                "both ends are on this node",
            ),
            (stalled(0, 0, node("boot-b", "us-east-2b")), "not-sent", "tx_pkts +0"),
            (stalled(37, 37, node("boot-b", "us-east-2b")), "blocked", "blocked"),
        ];
        for (f, value, text) in cases {
            let o = pair(&f);
            assert_eq!(o.status, Status::Fail, "{}", o.summary);
            assert_eq!(o.value.as_deref(), Some(value), "{}", o.summary);
            assert!(o.summary.contains(text), "{value}: {}", o.summary);
            assert!(o.remediation.as_deref().is_some_and(|r| r.len() > 40));
        }
        // The silent drop names the secondary CIDR when IMDS saw one.
        let mut f = stalled(37, 0, node("boot-b", "us-east-2b"));
        if let Some(PairFacts { result: Some(r), .. }) = f.pair.as_mut() {
            r.node.secondary_cidr_subnets = vec!["100.64.8.0/22".into()];
        }
        assert!(pair(&f).summary.contains("100.64.8.0/22 lie in a secondary VPC CIDR"));
    }

    #[test]
    fn without_a_pair_run_the_check_explains_how() {
        let o = pair(&Facts::default());
        assert_eq!(o.status, Status::Skip);
        assert!(o.summary.contains("--listen") && o.summary.contains("--connect"));
    }
}
