//! EFA hardware: devices visible and usable, link, traffic counters, error counters, and
//! GPU affinity.

use std::collections::BTreeMap;

use super::{Check, Context, Needs};
use crate::facts::Facts;
use crate::facts::pci::PciKind;
use crate::facts::rdma::{Counters, RdmaDevice};
use crate::facts::topology::{self, Relation};
use crate::report::{Evidence, Outcome};

fn gpu_node(f: &Facts) -> bool {
    f.pci.has(PciKind::Gpu)
        || f.instance
            .spec
            .as_ref()
            .is_some_and(|s| s.gpus > 0 && s.gpu.contains(|c: char| c.is_ascii_digit()))
        || !f.gpu.gpus.is_empty()
}

fn in_container(f: &Facts) -> bool {
    !f.host.container_clues.is_empty()
}

pub struct Devices;

impl Check for Devices {
    fn id(&self) -> &'static str {
        "efa.devices"
    }

    fn needs(&self) -> Needs {
        Needs::HOST | Needs::INSTANCE | Needs::PCI | Needs::RDMA | Needs::GPU
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![devices(cx.facts)]
    }
}

fn devices(f: &Facts) -> Outcome {
    let pci_efa: Vec<_> = f.pci.of_kind(PciKind::Efa).collect();
    let rdma_efa: Vec<&RdmaDevice> = f.rdma.efa().collect();
    let expected = f.instance.spec.as_ref().map(|s| s.efa_devices);
    let itype = f.instance.instance_type.clone().unwrap_or_else(|| "this instance".into());
    let mut ev = vec![
        Evidence::new("sys/bus/pci/devices (vendor 0x1d0f, device 0xefa0-0xefa3)")
            .observed(format!("{} EFA function(s)", pci_efa.len())),
        Evidence::new("sys/class/infiniband").observed(format!(
            "{} EFA RDMA device(s){}",
            rdma_efa.len(),
            if rdma_efa.is_empty() {
                String::new()
            } else {
                format!(
                    ": {}",
                    rdma_efa.iter().map(|d| d.name.as_str()).collect::<Vec<_>>().join(" ")
                )
            }
        )),
    ];
    if let Some(n) = expected {
        ev[0].expected = Some(format!("{n} on {itype}"));
    }
    if f.pci.devices.is_none() && f.rdma.devices.is_none() {
        return Outcome::skip(
            "neither sys/bus/pci nor sys/class/infiniband is readable in this root",
        );
    }
    if pci_efa.is_empty() && rdma_efa.is_empty() {
        if gpu_node(f) || expected.is_some_and(|n| n > 0) {
            let why = match expected {
                Some(0) => format!(" ({itype} does not support EFA)"),
                Some(n) => {
                    format!(" ({itype} supports {n}: were EFA interfaces attached at launch?)")
                }
                None => String::new(),
            };
            return Outcome::fail(format!("no EFA devices: this GPU node has no EFA PCI function and no EFA RDMA device{why}"))
                .with_evidence(ev)
                .remediation("Launch the instance with EFA interfaces (eksctl `efaEnabled: true`, `InterfaceType: efa` or `efa-only` in the launch template, one per network card) on an EFA-capable instance type.")
                .value("0");
        }
        return Outcome::skip("no EFA device and no NVIDIA GPU: not an EFA GPU node")
            .with_evidence(ev);
    }
    if rdma_efa.is_empty() {
        return Outcome::fail(format!(
            "{} EFA PCI function(s) but no EFA RDMA device: the efa driver is not bound",
            pci_efa.len()
        ))
        .with_evidence(ev)
        .remediation("Load the EFA driver (`sudo modprobe efa`) and check `dmesg | grep -i efa` for probe errors; install it with the EFA installer if absent.")
        .value("0");
    }
    if rdma_efa.len() < pci_efa.len() {
        return Outcome::fail(format!(
            "only {} of {} EFA PCI functions have an RDMA device",
            rdma_efa.len(),
            pci_efa.len()
        ))
        .with_evidence(ev)
        .remediation("Check `dmesg | grep -i efa` for devices the driver failed to probe; a reboot or instance replacement may be needed.")
        .value(rdma_efa.len().to_string());
    }
    let count = rdma_efa.len();
    // How many devices this process can reach through /dev/infiniband; `None` without it.
    let visible: Option<usize> = f.host.uverbs.as_ref().map(|nodes| {
        ev.push(
            Evidence::new("dev/infiniband").observed(format!("{} uverbs node(s)", nodes.len())),
        );
        let usable = nodes
            .iter()
            .filter_map(|n| n.ibdev.as_deref())
            .filter(|d| rdma_efa.iter().any(|e| e.name == *d))
            .count();
        // Without ibdev links, count the nodes themselves.
        if usable > 0 { usable } else { nodes.len().min(count) }
    });
    if visible.is_none() && f.host.dev_visible {
        return Outcome::fail(format!("none of the {count} EFA devices is usable here: /dev/infiniband does not exist"))
            .with_evidence(ev)
            .evidence(Evidence::new("dev/infiniband").observed("absent").expected(format!("{count} uverbs nodes")))
            .remediation(format!("Request the devices: `vpc.amazonaws.com/efa: {count}` in the pod's resources (or run privileged) and check that the aws-efa-k8s-device-plugin DaemonSet runs on this node; on the host, load ib_uverbs."))
            .value(format!("0/{count}"));
    }
    if let Some(visible) = visible.filter(|v| *v < count) {
        let msg = format!(
            "{visible} of {count} EFA devices are usable here (uverbs nodes in /dev/infiniband)"
        );
        return if in_container(f) {
            Outcome::warn(format!("partial EFA allocation: {msg}"))
                .with_evidence(ev)
                .remediation(format!("Request every EFA device of the node: `vpc.amazonaws.com/efa: {count}` in the pod's resources (partial allocation degrades NCCL's and NIXL's topology mapping); for fewer GPUs per pod, request the EFA devices near those GPUs."))
                .value(format!("{visible}/{count}"))
        } else {
            Outcome::fail(msg)
                .with_evidence(ev)
                .remediation(
                    "Load ib_uverbs (`sudo modprobe ib_uverbs`) and check rdma-core's udev rules.",
                )
                .value(format!("{visible}/{count}"))
        };
    }
    match expected {
        Some(n) if count < n as usize => Outcome::warn(format!(
            "{count} EFA device(s) attached; {itype} supports up to {n}"
        ))
        .with_evidence(ev)
        .remediation("The attached count depends on the launch template's network interfaces: add one EFA (or efa-only) interface per network card to use the full bandwidth.")
        .value(count.to_string()),
        _ => {
            let of = expected.map(|n| format!(" of {n} supported")).unwrap_or_default();
            Outcome::pass(format!("{count} EFA device(s){of}, all usable")).with_evidence(ev).value(count.to_string())
        }
    }
}

pub struct Link;

impl Check for Link {
    fn id(&self) -> &'static str {
        "efa.link"
    }

    fn needs(&self) -> Needs {
        Needs::INSTANCE | Needs::RDMA | Needs::SAMPLE
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![link(cx.facts)]
    }
}

fn link(f: &Facts) -> Outcome {
    let efa: Vec<&RdmaDevice> = f.rdma.efa().collect();
    if efa.is_empty() {
        return Outcome::skip("no EFA device (see efa.devices)");
    }
    let mut ev = Vec::new();
    let mut down = Vec::new();
    // An operstate that could not be read is unknown: neither up nor down.
    let mut unknown = Vec::new();
    let mut rates: BTreeMap<u32, usize> = BTreeMap::new();
    for d in &efa {
        for p in &d.ports {
            if let Some(r) = p.rate_gbps {
                *rates.entry(r).or_default() += 1;
            }
        }
        for n in &d.netdevs {
            let up = n.operstate.as_deref() == Some("up") && n.carrier != Some(false);
            ev.push(
                Evidence::new(format!(
                    "sys/class/infiniband/{}/device/net/{}/operstate",
                    d.name, n.name
                ))
                .observed(format!(
                    "{} carrier {:?}",
                    n.operstate.as_deref().unwrap_or("?"),
                    n.carrier
                ))
                .expected("up"),
            );
            if n.operstate.is_none() {
                unknown.push(format!("{} ({})", d.name, n.name));
            } else if !up {
                down.push(format!("{} ({})", d.name, n.name));
            }
        }
    }
    let rate_text =
        rates.iter().map(|(r, n)| format!("{n} × {r} Gb/s")).collect::<Vec<_>>().join(", ");
    if let Some(d) = efa.first() {
        if let Some(p) = d.ports.first() {
            ev.push(
                Evidence::new(format!("sys/class/infiniband/{}/ports/{}/rate", d.name, p.port))
                    .observed(p.rate.clone().unwrap_or_else(|| "absent".into())),
            );
            ev.push(
                Evidence::new(format!("sys/class/infiniband/{}/ports/{}/state", d.name, p.port))
                    .observed(format!(
                        "{} (hard-coded by the EFA driver: not used)",
                        p.state.as_deref().unwrap_or("absent")
                    )),
            );
        }
    }
    if !down.is_empty() {
        return Outcome::fail(format!("network interface down for {}", down.join(", ")))
            .with_evidence(ev)
            .remediation("Check the interface (`ip link`), the instance's network interface attachments and `dmesg`; an EFA whose interface is down carries no traffic.");
    }
    let netdevs = efa.iter().filter(|d| !d.netdevs.is_empty()).count();
    let expected_rate = f.instance.spec.as_ref().and_then(|s| s.efa_gbps);
    if let (Some(exp), Some((&low, _))) = (expected_rate, rates.iter().next()) {
        if low < exp {
            // Drivers before 2.13.0 always report 100 Gb/s; only newer ones read the device.
            let old = f
                .modules
                .versions
                .get("efa")
                .and_then(|v| crate::parse::Version::parse(v))
                .is_some_and(|v| v.below(&[2, 13]));
            if !old {
                return Outcome::warn(format!("EFA ports report {rate_text}; {} devices run at {exp} Gb/s", f.instance.instance_type.as_deref().unwrap_or("these")))
                    .with_evidence(ev)
                    .remediation("Update the EFA driver (drivers >= 2.13.0 report the device's real link speed) and compare with the instance type's documented bandwidth.");
            }
        }
    }
    let link_note = if netdevs == 0 {
        "EFA functions have no network interface, so link health comes from the counters (efa.traffic)".to_string()
    } else if !unknown.is_empty() {
        format!("operstate unreadable for {}: link state unknown there", unknown.join(", "))
    } else {
        "network interfaces up".to_string()
    };
    Outcome::pass(format!("{} EFA port(s): {rate_text}; {link_note}", efa.len()))
        .with_evidence(ev)
        .value(rate_text)
}

/// Counter deltas per device over the `--sample` interval, `None` without a sample.
fn deltas(f: &Facts, d: &RdmaDevice) -> Option<(Counters, f64)> {
    let s = f.rdma.sample.as_ref()?;
    Some((s.delta(d)?, (s.interval_ms as f64 / 1000.0).max(0.001)))
}

fn port_counter(c: &Counters, name: &str) -> Option<u64> {
    c.iter().find(|(k, _)| k.starts_with("port") && counter_name(k) == name).map(|(_, v)| *v)
}

/// Where a device's counter lives in sysfs (`name` empty: the directory).
fn counter_path(dev: &str, port: bool, name: &str) -> String {
    let dir = if port {
        format!("sys/class/infiniband/{dev}/ports/1/hw_counters")
    } else {
        format!("sys/class/infiniband/{dev}/hw_counters")
    };
    if name.is_empty() { dir } else { format!("{dir}/{name}") }
}

pub struct Traffic;

impl Check for Traffic {
    fn id(&self) -> &'static str {
        "efa.traffic"
    }

    fn needs(&self) -> Needs {
        Needs::RDMA | Needs::SAMPLE
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![traffic(cx.facts)]
    }
}

const SILENT_DROP_CAUSES: &str = "the security group has no self-referencing egress rule (all traffic to itself; 0.0.0.0/0 is not enough for SRD), the ENI's subnet is on a secondary VPC CIDR, or the peer is this same node (EFA does not loop back)";

fn traffic(f: &Facts) -> Outcome {
    let efa: Vec<&RdmaDevice> = f.rdma.efa().collect();
    if efa.is_empty() {
        return Outcome::skip("no EFA device (see efa.devices)");
    }
    let mut ev = Vec::new();
    let mut silent = Vec::new();
    let mut silent_since_boot = Vec::new();
    let mut moving = 0usize;
    let sampled = f.rdma.sample.is_some();
    // rdma_write_bytes = 0 is normal when the device lacks RDMA write (REFERENCE §1.6): noted,
    // never judged.
    let mut no_write = true;
    // Devices whose tx_pkts/rx_pkts could not be read, and those whose driver has none: a
    // device judged on counters we do not have would be a pass without evidence.
    let (mut unreadable, mut absent) = (Vec::new(), Vec::new());
    let mut judged = 0usize;
    let traffic_counter = |n: &str| n == "tx_pkts" || n == "rx_pkts";
    for d in &efa {
        let all = d.all_counters();
        no_write &= port_counter(&all, "rdma_write_bytes").unwrap_or(0) == 0;
        let failures = d.counter_read_failures(traffic_counter);
        let (Some(tx), Some(rx)) = (port_counter(&all, "tx_pkts"), port_counter(&all, "rx_pkts"))
        else {
            if failures.is_empty() {
                absent.push(d.name.clone());
            }
            unreadable.extend(failures.into_iter().map(|(p, why)| format!("{p}: {why}")));
            continue;
        };
        if sampled && deltas(f, d).is_none() {
            unreadable.push(format!("{}: no second reading in the sample", d.name));
            continue;
        }
        if let Some((delta, secs)) = deltas(f, d) {
            let (Some(dtx), Some(drx)) =
                (port_counter(&delta, "tx_pkts"), port_counter(&delta, "rx_pkts"))
            else {
                unreadable.push(format!(
                    "{}: tx_pkts/rx_pkts missing from the second reading",
                    counter_path(&d.name, true, "")
                ));
                continue;
            };
            judged += 1;
            if dtx > 0 && drx == 0 {
                silent.push(d.name.clone());
                ev.push(
                    Evidence::new(counter_path(&d.name, true, ""))
                        .observed(format!("tx_pkts +{dtx}, rx_pkts +0 in {secs:.1} s"))
                        .expected("rx_pkts rising with tx_pkts"),
                );
            } else if dtx > 0 || drx > 0 {
                moving += 1;
            }
        } else if tx > 0 && rx == 0 {
            judged += 1;
            silent_since_boot.push(d.name.clone());
            ev.push(
                Evidence::new(counter_path(&d.name, true, ""))
                    .observed(format!("tx_pkts {tx}, rx_pkts 0 since the driver loaded"))
                    .expected("rx_pkts > 0 once traffic flowed"),
            );
        } else {
            judged += 1;
        }
    }
    let write_note = if no_write {
        "; rdma_write_bytes = 0 is normal (SRD uses sends; RDMA write is optional)"
    } else {
        ""
    };
    if !silent.is_empty() {
        return Outcome::fail(format!(
            "silent drop on {}: packets leave but nothing comes back",
            silent.join(", ")
        ))
        .with_evidence(ev)
        .remediation(format!("Likely causes: {SILENT_DROP_CAUSES}. Add an outbound rule 'All traffic' to the security group itself, keep EFA ENIs on the VPC's primary CIDR, and prove the path with `efa-doctor probe pair` between two nodes."))
        .value("silent-drop");
    }
    if !silent_since_boot.is_empty() {
        return Outcome::warn(format!(
            "{} EFA device(s) have sent packets and never received one since the driver loaded ({})",
            silent_since_boot.len(),
            silent_since_boot.join(", ")
        ))
        .with_evidence(ev)
        .remediation(format!("Re-run with `--sample 10` during traffic to confirm. If rx stays flat: {SILENT_DROP_CAUSES}."))
        .value("silent-drop-suspected");
    }
    if !unreadable.is_empty() {
        return unreadable_counters("traffic", &unreadable, ev);
    }
    if judged == 0 {
        return Outcome::skip(format!(
            "no EFA device exposes tx_pkts/rx_pkts ({}): nothing to judge traffic on",
            absent.join(", ")
        ))
        .with_evidence(ev);
    }
    let coverage = if absent.is_empty() {
        String::new()
    } else {
        format!(
            " ({} of {} judged; no tx_pkts/rx_pkts on {})",
            judged,
            efa.len(),
            absent.join(", ")
        )
    };
    if sampled {
        Outcome::pass(format!("{moving} of {} EFA device(s) moved traffic in the sample; none sent without receiving{write_note}{coverage}", efa.len()))
            .with_evidence(ev)
    } else {
        Outcome::pass(format!("no device has sent without receiving since the driver loaded{write_note}{coverage} (use --sample SECS to watch live traffic)"))
            .with_evidence(ev)
    }
}

/// Most unreadable counters named in a summary; the evidence lists them all.
const UNREADABLE_SHOWN: usize = 4;

/// `error`: counters the check needs could not be read. Names each one and why (permission
/// denied, not found, unparsable), so an unreadable counter is never judged as a zero.
fn unreadable_counters(what: &str, unreadable: &[String], mut ev: Vec<Evidence>) -> Outcome {
    for u in unreadable {
        let (path, why) = u.split_once(": ").unwrap_or((u, "unreadable"));
        ev.push(Evidence::new(path).observed(format!("unreadable: {why}")));
    }
    let shown: Vec<&str> = unreadable.iter().take(UNREADABLE_SHOWN).map(String::as_str).collect();
    let more = unreadable.len().saturating_sub(UNREADABLE_SHOWN);
    let more = if more > 0 { format!("; and {more} more") } else { String::new() };
    Outcome::error(format!(
        "could not read {} EFA {what} counter(s), so they are not judged: {}{more}",
        unreadable.len(),
        shown.join("; ")
    ))
    .with_evidence(ev)
    .remediation("EFA hw_counters are world-readable on a stock kernel: `permission denied` points at a restricted container (mount /sys read-only from the host) or a security module; `unparsable` or read errors point at the driver or firmware (`dmesg | grep -i efa`).")
    .value("unreadable")
}

/// Error counters and whether a rise fails or warns.
const ERROR_COUNTERS: [(&str, bool); 15] = [
    ("rdma_read_wr_err", true),
    ("rdma_write_wr_err", true),
    ("unresponsive_remote_events", true),
    ("impaired_remote_conn_events", true),
    ("retrans_timeout_events", true),
    ("rx_drops", false),
    ("cmds_err", true),
    ("no_completion_cmds", true),
    ("reg_mr_err", true),
    ("alloc_pd_err", true),
    ("create_qp_err", true),
    ("create_cq_err", true),
    ("alloc_ucontext_err", true),
    ("create_ah_err", true),
    ("mmap_err", true),
];

/// Retransmissions happen on a healthy fabric; this rate is the EKS node monitoring agent's
/// burst limit for `retrans_pkts`.
const RETRANS_PKTS_PER_SEC: f64 = 1000.0;

pub struct Errors;

impl Check for Errors {
    fn id(&self) -> &'static str {
        "efa.errors"
    }

    fn needs(&self) -> Needs {
        Needs::RDMA | Needs::SAMPLE
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![errors(cx.facts)]
    }
}

fn counter_name(key: &str) -> &str {
    key.rsplit('/').next().unwrap_or(key)
}

fn errors(f: &Facts) -> Outcome {
    let efa: Vec<&RdmaDevice> = f.rdma.efa().collect();
    if efa.is_empty() {
        return Outcome::skip("no EFA device (see efa.devices)");
    }
    let mut ev = Vec::new();
    let (mut fail, mut warn, mut static_nonzero) = (Vec::new(), Vec::new(), Vec::new());
    let is_error_counter = |n: &str| ERROR_COUNTERS.iter().any(|(e, _)| *e == n);
    // Error counters (and counter directories) that could not be read: never zeros.
    let mut unreadable = Vec::new();
    // Devices whose driver exposes no error counter at all: not judged, never a pass.
    let mut absent = Vec::new();
    let sampled = f.rdma.sample.is_some();
    for d in &efa {
        let failures = d.counter_read_failures(is_error_counter);
        let all = d.all_counters();
        if failures.is_empty() && !all.keys().any(|k| is_error_counter(counter_name(k))) {
            absent.push(d.name.clone());
        }
        unreadable.extend(failures.into_iter().map(|(p, why)| format!("{p}: {why}")));
        let delta = deltas(f, d);
        if sampled && delta.is_none() {
            unreadable.push(format!("{}: no second reading in the sample", d.name));
            continue;
        }
        for (key, value) in &all {
            let name = counter_name(key);
            let Some(&(_, hard)) = ERROR_COUNTERS.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            let path = counter_path(&d.name, key.starts_with("port"), name);
            match &delta {
                Some((dl, secs)) => {
                    let Some(rise) = dl.get(key).copied() else {
                        unreadable.push(format!("{path}: missing from the second reading"));
                        continue;
                    };
                    if rise > 0 {
                        ev.push(
                            Evidence::new(path)
                                .observed(format!("+{rise} in {secs:.1} s (total {value})"))
                                .expected("+0"),
                        );
                        let item = format!("{}/{name} +{rise}", d.name);
                        if hard { fail.push(item) } else { warn.push(item) }
                    } else if *value > 0 {
                        static_nonzero.push(format!("{}/{name} = {value}", d.name));
                    }
                }
                None if *value > 0 => {
                    ev.push(
                        Evidence::new(path)
                            .observed(format!("{value} since the driver loaded"))
                            .expected("0"),
                    );
                    warn.push(format!("{}/{name} = {value}", d.name));
                }
                None => {}
            }
        }
        if let Some((dl, secs)) = &delta {
            if let Some(r) = port_counter(dl, "retrans_pkts") {
                let rate = r as f64 / secs;
                if rate > RETRANS_PKTS_PER_SEC {
                    warn.push(format!("{}/retrans_pkts {rate:.0}/s", d.name));
                    ev.push(
                        Evidence::new(counter_path(&d.name, true, "retrans_pkts"))
                            .observed(format!("{rate:.0} packets/s"))
                            .expected(format!("< {RETRANS_PKTS_PER_SEC} packets/s")),
                    );
                }
            }
        }
    }
    let fix = "Rising RDMA work-request errors and unresponsive/impaired remote events point at the peer or the path: check the peer nodes, the security group and `efa-doctor probe pair`. reg_mr_err rising means memory registrations fail (run `efa-doctor probe mr`). cmds_err/no_completion_cmds rising mean the device's admin queue is failing: stop the instance and start it again (a new host), and report it to AWS if it persists.";
    // A rise or a non-zero count is certain whatever else could not be read; the unreadable
    // counters are still listed as evidence.
    let unreadable_ev = |ev: &mut Vec<Evidence>| {
        for u in &unreadable {
            let (path, why) = u.split_once(": ").unwrap_or((u, "unreadable"));
            ev.push(Evidence::new(path).observed(format!("unreadable: {why}")));
        }
    };
    if !fail.is_empty() {
        unreadable_ev(&mut ev);
        return Outcome::fail(format!("error counters rising: {}", fail.join(", ")))
            .with_evidence(ev)
            .remediation(fix)
            .value("rising");
    }
    if !warn.is_empty() {
        unreadable_ev(&mut ev);
        let summary = if sampled {
            format!("counters rising: {}", warn.join(", "))
        } else {
            format!(
                "non-zero error counters since the driver loaded: {} (use --sample SECS to see whether they rise)",
                warn.join(", ")
            )
        };
        return Outcome::warn(summary).with_evidence(ev).remediation(fix).value(if sampled {
            "rising"
        } else {
            "non-zero"
        });
    }
    if !unreadable.is_empty() {
        return unreadable_counters("error", &unreadable, ev);
    }
    let judged = efa.len() - absent.len();
    if judged == 0 {
        return Outcome::skip(format!(
            "no EFA device exposes an error counter ({}): nothing to judge",
            absent.join(", ")
        ))
        .with_evidence(ev);
    }
    let mut note = Vec::new();
    if !static_nonzero.is_empty() {
        note.push(format!("not rising: {}", static_nonzero.join(", ")));
    }
    if !absent.is_empty() {
        note.push(format!("no error counter on {}", absent.join(", ")));
    }
    let note = if note.is_empty() { String::new() } else { format!(" ({})", note.join("; ")) };
    let how = if sampled {
        "no error counter rose during the sample"
    } else {
        "all error counters are zero"
    };
    Outcome::pass(format!("{how} on {judged} EFA device(s){note}")).with_evidence(ev)
}

pub struct Topology;

impl Check for Topology {
    fn id(&self) -> &'static str {
        "efa.topology"
    }

    fn needs(&self) -> Needs {
        Needs::INSTANCE | Needs::PCI
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![topology_check(cx.facts)]
    }
}

fn topology_check(f: &Facts) -> Outcome {
    let t = topology::build(&f.pci);
    if t.gpus.is_empty() || t.efas.is_empty() {
        return Outcome::skip(format!(
            "{} GPU(s) and {} EFA function(s) on the PCI bus: nothing to map",
            t.gpus.len(),
            t.efas.len()
        ));
    }
    let details = serde_json::json!({
        "matrix": {
            "corner": "EFA \\ GPU",
            "rows": t.efas,
            "cols": t.gpus,
            "cells": t.relations.iter().map(|r| r.iter().map(|x| format!("{x:?}")).collect::<Vec<_>>()).collect::<Vec<_>>(),
        },
        "affinity": t.affinity,
        "unassigned_efa": t.unassigned_efa,
    });
    let far: Vec<_> =
        t.affinity.iter().filter(|a| !a.nearest.is_some_and(Relation::is_near)).collect();
    let ev: Vec<Evidence> = t
        .affinity
        .iter()
        .map(|a| {
            Evidence::new(format!("sys/bus/pci/devices/{}", a.gpu)).observed(format!(
                "NUMA {}, nearest EFA {:?}, assigned {}",
                a.numa_node.map_or("?".into(), |n| n.to_string()),
                a.nearest,
                if a.efa.is_empty() { "none".into() } else { a.efa.join(" ") }
            ))
        })
        .collect();
    let gdr = f.instance.spec.as_ref().is_none_or(|s| s.gpudirect);
    if !far.is_empty() && gdr {
        return Outcome::warn(format!(
            "{} of {} GPU(s) have no EFA under the same PCIe host bridge: {}",
            far.len(),
            t.gpus.len(),
            far.iter().map(|a| format!("{} ({:?})", a.gpu, a.nearest.unwrap_or(Relation::SYS))).collect::<Vec<_>>().join(", ")
        ))
        .with_evidence(ev)
        .details(details)
        .remediation("GPUDirect traffic from these GPUs crosses the CPU interconnect. On EC2 the topology is fixed by the instance type: check that every EFA interface is attached (efa.devices), and pin workers to the GPUs near their EFA devices (NIXL and NCCL do this when all devices are visible).");
    }
    let per: Vec<usize> = t.affinity.iter().map(|a| a.efa.len()).collect();
    let same = per.windows(2).all(|w| w[0] == w[1]);
    let spread = if same {
        format!("{} EFA per GPU", per.first().copied().unwrap_or(0))
    } else {
        format!("EFA per GPU {per:?}")
    };
    Outcome::pass(format!("every GPU has a near EFA device ({spread})"))
        .with_evidence(ev)
        .details(details)
}
