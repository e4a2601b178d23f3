//! EFA hardware: devices visible and usable, link, traffic counters, error counters, and
//! GPU affinity.

use std::collections::BTreeMap;

use super::{Check, Context, Needs};
use crate::facts::Facts;
use crate::facts::pci::PciKind;
use crate::facts::rdma::{Counters, RdmaDevice};
use crate::facts::topology::{self, Relation};
use crate::verdict::{Evidence, Outcome};

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
        Evidence::new("sys/bus/pci/devices (vendor 0x1d0f, device 0xefaN, or driver efa)")
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
            return Outcome::fail(format!("no EFA devices: this GPU node has no EFA PCI function and no EFA RDMA device{why}; the checks that need EFA (the efa part of kernel.modules, host.hugepages, host.privileges, efa.*, libfabric.efa-provider, probe.mr) skip and point here"))
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
    // In a pod with the RDMA subsystem in exclusive network-namespace mode,
    // /sys/class/infiniband lists only the pod's devices while /sys/bus/pci lists all of the
    // node's: fewer RDMA devices than functions is the allocation, not a broken device.
    let mut notes = Vec::new();
    if rdma_efa.len() < pci_efa.len() {
        if !in_container(f) {
            return Outcome::fail(format!(
                "only {} of {} EFA PCI functions have an RDMA device",
                rdma_efa.len(),
                pci_efa.len()
            ))
            .with_evidence(ev)
            .remediation("Check `dmesg | grep -i efa` for devices the driver failed to probe; a reboot or instance replacement may be needed.")
            .value(rdma_efa.len().to_string());
        }
        notes.push(format!(
            "{} of the node's {} EFA functions are in this pod's RDMA namespace (exclusive network-namespace mode)",
            rdma_efa.len(),
            pci_efa.len()
        ));
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
        if !in_container(f) {
            return Outcome::fail(msg)
                .with_evidence(ev)
                .remediation(
                    "Load ib_uverbs (`sudo modprobe ib_uverbs`) and check rdma-core's udev rules.",
                )
                .value(format!("{visible}/{count}"));
        }
        // A pod given some of the node's EFA devices is normal: the EFA DRA driver and the
        // device plugin allocate the EFA near the pod's GPUs (EKS "Manage EFA devices").
        return Outcome::pass(format!(
            "{visible} of the node's {count} EFA devices allocated to this container (topology-aware allocation gives a pod the EFA near its GPUs){}",
            notes.iter().map(|n| format!("; {n}")).collect::<String>()
        ))
        .with_evidence(ev)
        .value(format!("{visible}/{count}"));
    }
    // What is attached to the instance is what the PCI bus shows (a pod's namespace may hold
    // fewer RDMA devices).
    let attached = count.max(pci_efa.len());
    let verified = f.instance.spec.as_ref().is_some_and(|s| s.verified);
    match expected {
        // An unverified row's count is a note on the pass below, never a warning.
        Some(n) if attached < n as usize && verified => Outcome::warn(format!(
            "{attached} EFA device(s) attached; {itype} supports up to {n}"
        ))
        .with_evidence(ev)
        .remediation("The attached count depends on the launch template's network interfaces: add one EFA (or efa-only) interface per network card to use the full bandwidth.")
        .value(attached.to_string()),
        _ => {
            let of = match expected {
                Some(n) if verified => format!(" of {n} supported"),
                Some(n) => format!(" (efa-doctor's unverified table row says up to {n}: a note, not checked)"),
                None => String::new(),
            };
            let notes = notes.iter().map(|n| format!("; {n}")).collect::<String>();
            Outcome::pass(format!("{count} EFA device(s){of}, all usable{notes}")).with_evidence(ev).value(count.to_string())
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
    // Only a verified row sets an expectation that can warn (issue 14).
    let spec = f.instance.spec.as_ref();
    let expected_rate = spec.filter(|s| s.verified).and_then(|s| s.efa_gbps);
    let unverified_rate = spec.filter(|s| !s.verified).and_then(|s| s.efa_gbps);
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
    let rate_note = match (unverified_rate, rates.keys().next()) {
        (Some(exp), Some(&low)) if low < exp => format!(
            "; efa-doctor's unverified table row says {exp} Gb/s per device (a note, not checked)"
        ),
        _ => String::new(),
    };
    Outcome::pass(format!("{} EFA port(s): {rate_text}; {link_note}{rate_note}", efa.len()))
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

const SILENT_DROP_CAUSES: &str = "the security group has no self-referencing egress rule (all traffic to itself; 0.0.0.0/0 is not enough for SRD), the ENI's subnet is on a secondary VPC CIDR, or the peers are in another availability zone. A peer on this same node is not a cause: libfabric's efa provider carries traffic between two endpoints of one node over the device (the EFA installer's own test runs fi_pingpong -p efa to localhost with FI_EFA_ENABLE_SHM_TRANSFER=0)";

/// Counters that corroborate a window of tx without rx: the device retransmits, times out
/// or finds the peer unresponsive (out-of-tree 2.17.0+, upstream ~6.17).
const PATH_EVENT_COUNTERS: [&str; 3] =
    ["retrans_pkts", "retrans_timeout_events", "unresponsive_remote_events"];

fn traffic(f: &Facts) -> Outcome {
    let efa: Vec<&RdmaDevice> = f.rdma.efa().collect();
    if efa.is_empty() {
        return Outcome::skip("no EFA device (see efa.devices)");
    }
    let mut ev = Vec::new();
    let mut silent = Vec::new();
    // tx without rx in the sample window alone: suspected, not proven.
    let mut silent_once = Vec::new();
    let mut silent_since_boot = Vec::new();
    let mut moving = 0usize;
    // Devices that have ever received a packet: the evidence a pass rests on.
    let mut received = 0usize;
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
                // One window is not enough: a peer that just went away looks the same. A
                // device that never received since the driver loaded, or whose path
                // counters rose in the same window, corroborates it.
                let mut why = Vec::new();
                if rx == 0 {
                    why.push(format!("rx_pkts 0 since the driver loaded (tx_pkts {tx})"));
                }
                for n in PATH_EVENT_COUNTERS {
                    if let Some(r) = port_counter(&delta, n).filter(|r| *r > 0) {
                        why.push(format!("{n} +{r}"));
                    }
                }
                if pair_saw_silent_drop(f) {
                    why.push(
                        "the pair probe saw this node send and the peer receive nothing".into(),
                    );
                }
                ev.push(
                    Evidence::new(counter_path(&d.name, true, ""))
                        .observed(format!(
                            "tx_pkts +{dtx}, rx_pkts +0 in {secs:.1} s{}",
                            if why.is_empty() {
                                String::new()
                            } else {
                                format!("; {}", why.join(", "))
                            }
                        ))
                        .expected("rx_pkts rising with tx_pkts"),
                );
                if why.is_empty() {
                    silent_once.push(d.name.clone())
                } else {
                    silent.push(d.name.clone())
                }
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
        if rx > 0 {
            received += 1;
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
    if !silent_once.is_empty() {
        return Outcome::warn(format!(
            "{} sent and received nothing during the sample, with nothing else to corroborate it (a peer that just went away looks the same)",
            silent_once.join(", ")
        ))
        .with_evidence(ev)
        .remediation(format!("Re-run with a longer --sample during traffic, or run `efa-doctor probe pair` between two nodes. If rx stays flat: {SILENT_DROP_CAUSES}."))
        .value("silent-drop-suspected");
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
    if moving == 0 && received == 0 {
        // An idle node: nothing shows the path works, and nothing shows it does not.
        return Outcome::skip(format!(
            "no EFA device has received a packet since the driver loaded{}: idle, nothing to judge (run `--sample SECS` during traffic, or `efa-doctor probe pair`){coverage}",
            if sampled { " or during the sample" } else { "" }
        ))
        .with_evidence(ev)
        .value("idle");
    }
    if sampled {
        Outcome::pass(format!("{moving} of {} EFA device(s) moved traffic in the sample; none sent without receiving{write_note}{coverage}", efa.len()))
            .with_evidence(ev)
    } else {
        Outcome::pass(format!("no device has sent without receiving since the driver loaded{write_note}{coverage} (use --sample SECS to watch live traffic)"))
            .with_evidence(ev)
    }
}

/// The pair probe, run in this invocation, saw packets leave and none arrive at the peer.
fn pair_saw_silent_drop(f: &Facts) -> bool {
    let Some(r) = f.pair.as_ref().and_then(|p| p.result.as_ref()) else {
        return false;
    };
    let sum = |c: Option<&BTreeMap<String, crate::native::pair::PortCounters>>, rx: bool| {
        c.map(|c| c.values().filter_map(|p| if rx { p.rx_pkts } else { p.tx_pkts }).sum::<u64>())
    };
    let tx = sum(Some(&r.counters_after), false).zip(sum(Some(&r.counters_before), false));
    let prx =
        sum(r.peer_counters_after.as_ref(), true).zip(sum(r.peer_counters_before.as_ref(), true));
    r.error.is_some()
        && matches!((tx, prx), (Some((ta, tb)), Some((ra, rb))) if ta > tb && ra == rb)
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

/// What a rise of an error counter says about the node.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ErrorKind {
    /// Peer or path events, the counters the EKS node monitoring agent watches: a rise over
    /// its allowance warns; it fails only when the device's own traffic corroborates it.
    Path,
    /// The device's admin queue did not answer a command.
    AdminTimeout,
    /// A caller's request the device refused (a failed registration, QP, PD...). These rise
    /// on healthy nodes (libfabric's start-up P2P probe makes a registration fail on purpose):
    /// reported, never judged.
    Request,
}

/// An error counter, its kind and the burst it may rise by before it is a finding.
struct ErrorCounter {
    name: &'static str,
    kind: ErrorKind,
    burst: u64,
}

/// The EKS node monitoring agent (aws/eks-node-monitoring-agent
/// `monitors/networking/efa/efa.go`) gives each port counter a token bucket of
/// `rate.NewLimiter(rate.Every(time.Second), burst)`: `burst` at once, refilled by one per
/// second. A rise beyond that is its `EFAErrorMetric` condition, of severity Warning.
const ERROR_COUNTERS: [ErrorCounter; 18] = [
    ErrorCounter { name: "rdma_read_wr_err", kind: ErrorKind::Path, burst: 100 },
    ErrorCounter { name: "rdma_write_wr_err", kind: ErrorKind::Path, burst: 100 },
    ErrorCounter { name: "unresponsive_remote_events", kind: ErrorKind::Path, burst: 100 },
    ErrorCounter { name: "impaired_remote_conn_events", kind: ErrorKind::Path, burst: 100 },
    ErrorCounter { name: "retrans_timeout_events", kind: ErrorKind::Path, burst: 100 },
    ErrorCounter { name: "rx_drops", kind: ErrorKind::Path, burst: 100 },
    ErrorCounter { name: "retrans_pkts", kind: ErrorKind::Path, burst: 1_000 },
    ErrorCounter { name: "retrans_bytes", kind: ErrorKind::Path, burst: 1_000_000 },
    // Not watched by the agent; an admin command that never completed is the device itself.
    ErrorCounter { name: "no_completion_cmds", kind: ErrorKind::AdminTimeout, burst: 0 },
    ErrorCounter { name: "cmds_err", kind: ErrorKind::Request, burst: 0 },
    ErrorCounter { name: "reg_mr_err", kind: ErrorKind::Request, burst: 0 },
    ErrorCounter { name: "alloc_pd_err", kind: ErrorKind::Request, burst: 0 },
    ErrorCounter { name: "create_qp_err", kind: ErrorKind::Request, burst: 0 },
    ErrorCounter { name: "create_cq_err", kind: ErrorKind::Request, burst: 0 },
    ErrorCounter { name: "alloc_ucontext_err", kind: ErrorKind::Request, burst: 0 },
    ErrorCounter { name: "create_ah_err", kind: ErrorKind::Request, burst: 0 },
    ErrorCounter { name: "mmap_err", kind: ErrorKind::Request, burst: 0 },
    // Out-of-tree 2.12.0+ only (kernel verbs); absent elsewhere.
    ErrorCounter { name: "alloc_mr_err", kind: ErrorKind::Request, burst: 0 },
];

fn error_counter(name: &str) -> Option<&'static ErrorCounter> {
    ERROR_COUNTERS.iter().find(|c| c.name == name)
}

/// The rise a counter may show over `secs` seconds before it is a finding: the agent's
/// bucket starts full (`burst`) and refills by one per second.
fn allowance(c: &ErrorCounter, secs: f64) -> u64 {
    c.burst + secs.floor() as u64
}

/// Counters only some drivers have (COUNTERS.md): their absence is normal, never a finding.
const NETWORK_COUNTERS: [&str; 5] = [
    "retrans_bytes",
    "retrans_pkts",
    "retrans_timeout_events",
    "unresponsive_remote_events",
    "impaired_remote_conn_events",
];

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

/// A device's error counters by name, once each: drivers before the stats split (out-of-tree
/// 1.14, upstream 5.15) list the same counters in both the device and the port directory.
fn error_counters_of(all: &Counters) -> BTreeMap<&str, (&str, u64)> {
    let mut out = BTreeMap::new();
    for (key, value) in all {
        let name = counter_name(key);
        if error_counter(name).is_some() {
            out.entry(name).or_insert((key.as_str(), *value));
        }
    }
    out
}

fn errors(f: &Facts) -> Outcome {
    let efa: Vec<&RdmaDevice> = f.rdma.efa().collect();
    if efa.is_empty() {
        return Outcome::skip("no EFA device (see efa.devices)");
    }
    let mut ev = Vec::new();
    // Over the allowance and corroborated / over the allowance alone / within it or a
    // refused request (information).
    let (mut fail, mut warn, mut notes) = (Vec::new(), Vec::new(), Vec::new());
    let is_error_counter = |n: &str| error_counter(n).is_some();
    // Error counters (and counter directories) that could not be read: never zeros.
    let mut unreadable = Vec::new();
    // Devices whose driver exposes no error counter at all: not judged, never a pass.
    let mut absent = Vec::new();
    let mut without_network = 0usize;
    let sampled = f.rdma.sample.is_some();
    for d in &efa {
        let failures = d.counter_read_failures(is_error_counter);
        let all = d.all_counters();
        let counters = error_counters_of(&all);
        if failures.is_empty() && counters.is_empty() {
            absent.push(d.name.clone());
        }
        if !all.keys().any(|k| NETWORK_COUNTERS.contains(&counter_name(k))) {
            without_network += 1;
        }
        unreadable.extend(failures.into_iter().map(|(p, why)| format!("{p}: {why}")));
        let delta = deltas(f, d);
        if sampled && delta.is_none() {
            unreadable.push(format!("{}: no second reading in the sample", d.name));
            continue;
        }
        let Some((dl, secs)) = &delta else {
            // No sample: totals since the driver loaded say nothing about now. Retransmitted
            // packets and bytes accumulate on every healthy fabric: not even a note.
            for (name, (key, value)) in &counters {
                if *value > 0 && !matches!(*name, "retrans_pkts" | "retrans_bytes") {
                    ev.push(
                        Evidence::new(counter_path(&d.name, key.starts_with("port"), name))
                            .observed(format!("{value} since the driver loaded")),
                    );
                    notes.push(format!("{}/{name} = {value}", d.name));
                }
            }
            continue;
        };
        // Nothing comes back while packets leave: the device's own traffic counters
        // corroborate a path counter.
        let silent = matches!(
            (port_counter(dl, "tx_pkts"), port_counter(dl, "rx_pkts")),
            (Some(tx), Some(0)) if tx > 0
        );
        let admin_errors =
            counters.get("cmds_err").and_then(|(key, _)| dl.get(*key)).is_some_and(|r| *r > 0);
        for (name, (key, value)) in &counters {
            let c = error_counter(name).expect("filtered to error counters");
            let path = counter_path(&d.name, key.starts_with("port"), name);
            let Some(rise) = dl.get(*key).copied() else {
                unreadable.push(format!("{path}: missing from the second reading"));
                continue;
            };
            if rise == 0 {
                if *value > 0 {
                    notes.push(format!("{}/{name} = {value}, not rising", d.name));
                }
                continue;
            }
            let allowed = allowance(c, *secs);
            let item = format!("{}/{name} +{rise} in {secs:.1} s", d.name);
            let over = c.kind != ErrorKind::Request && rise > allowed;
            let mut e =
                Evidence::new(path).observed(format!("+{rise} in {secs:.1} s (total {value})"));
            if c.kind != ErrorKind::Request {
                e = e.expected(format!("<= +{allowed} (burst {} plus 1/s)", c.burst));
            }
            ev.push(e);
            match (c.kind, over) {
                (_, false) => notes.push(item),
                (ErrorKind::Path, true) if silent => {
                    fail.push(format!("{item} while rx_pkts stayed flat"))
                }
                (ErrorKind::AdminTimeout, true) if admin_errors => {
                    fail.push(format!("{item} with cmds_err rising"))
                }
                _ => warn.push(item),
            }
        }
    }
    let fix = "Rising path counters (RDMA work-request errors, unresponsive or impaired remote, retransmission timeouts) point at a peer or the path: a peer job that ended raises unresponsive-remote events, so check whether it persists, then the peer nodes, the security group and `efa-doctor probe pair`. no_completion_cmds rising means the device's admin queue stops answering: stop the instance and start it again (a new host), and report it to AWS if it persists. reg_mr_err and the other request counters count refused requests (libfabric's start-up P2P probe makes one on purpose): see probe.mr and mr.registration for registrations that matter.";
    // A rise over the allowance is certain whatever else could not be read; the unreadable
    // counters are still listed as evidence.
    let unreadable_ev = |ev: &mut Vec<Evidence>| {
        for u in &unreadable {
            let (path, why) = u.split_once(": ").unwrap_or((u, "unreadable"));
            ev.push(Evidence::new(path).observed(format!("unreadable: {why}")));
        }
    };
    let mut note = Vec::new();
    if !notes.is_empty() {
        let what = if sampled {
            "within allowance or not judged"
        } else {
            "since the driver loaded, not judged without --sample"
        };
        note.push(format!("{what}: {}", notes.join(", ")));
    }
    if !fail.is_empty() {
        unreadable_ev(&mut ev);
        let mut all = fail.clone();
        all.extend(warn.iter().cloned());
        return Outcome::fail(format!(
            "error counters rising with corroboration: {}",
            all.join(", ")
        ))
        .with_evidence(ev)
        .remediation(fix)
        .value("rising");
    }
    if !warn.is_empty() {
        unreadable_ev(&mut ev);
        return Outcome::warn(format!(
            "error counters rose over the EKS node monitoring agent's burst allowance: {}",
            warn.join(", ")
        ))
        .with_evidence(ev)
        .remediation(fix)
        .value("rising");
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
    if !absent.is_empty() {
        note.push(format!("no error counter on {}", absent.join(", ")));
    }
    if without_network > 0 {
        note.push(format!(
            "{without_network} device(s) have no network counters (retrans_*, unresponsive/impaired remote: out-of-tree driver 2.17.0+, upstream ~6.17)"
        ));
    }
    let note = if note.is_empty() { String::new() } else { format!(" ({})", note.join("; ")) };
    if sampled {
        Outcome::pass(format!("no error counter rose over its allowance during the sample on {judged} EFA device(s){note}"))
            .with_evidence(ev)
    } else if notes.is_empty() {
        // Zero since the driver loaded: no error has ever happened on these devices.
        Outcome::pass(format!("all error counters are zero on {judged} EFA device(s){note}"))
            .with_evidence(ev)
            .value("zero")
    } else {
        // Totals since the driver loaded (a healthy node collects reg_mr_err from libfabric's
        // own P2P probe) say nothing about now: neither a pass nor a warning.
        Outcome::skip(format!(
            "error counters are non-zero since the driver loaded; without --sample SECS their rates are not known, so they are not judged{note}"
        ))
        .with_evidence(ev)
        .value("since-boot")
    }
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
    // EFA with no GPU in their PCIe tree are information: p6e-gb200's CPU-mediated ("C2C")
    // EFA are built that way, and aws-ofi-nccl leaves them out of GPU traffic there.
    let apart = if t.unassigned_efa.is_empty() {
        String::new()
    } else {
        format!(
            "; {} EFA function(s) share no PCIe tree with a GPU (CPU-mediated, as p6e-gb200's C2C EFA are by design): {}",
            t.unassigned_efa.len(),
            t.unassigned_efa.join(" ")
        )
    };
    Outcome::pass(format!("every GPU has a near EFA device ({spread}){apart}"))
        .with_evidence(ev)
        .details(details)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::rdma::{CounterSample, RdmaFacts, RdmaPort};
    use crate::verdict::Status;

    /// One EFA device with a split (>= 2.17) counter layout, and a 10 s sample that adds
    /// `rise` to the named counters (port ones as `port1/NAME`).
    fn node(dev: &[(&str, u64)], port: &[(&str, u64)], rise: &[(&str, u64)]) -> Facts {
        let d = RdmaDevice {
            name: "rdmap79s0".into(),
            is_efa: true,
            counters: dev.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            ports: vec![RdmaPort {
                port: 1,
                counters: port.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
                ..RdmaPort::default()
            }],
            ..RdmaDevice::default()
        };
        let mut after = d.all_counters();
        for (k, r) in rise {
            *after.get_mut(*k).unwrap_or_else(|| panic!("{k} not in the device")) += r;
        }
        Facts {
            rdma: RdmaFacts {
                devices: Some(vec![d]),
                sample: Some(CounterSample {
                    interval_ms: 10_000,
                    after: [("rdmap79s0".to_string(), after)].into(),
                }),
                ..RdmaFacts::default()
            },
            ..Facts::default()
        }
    }

    const DEV: [(&str, u64); 4] =
        [("reg_mr_err", 2), ("cmds_err", 0), ("no_completion_cmds", 0), ("create_qp_err", 0)];
    const PORT: [(&str, u64); 6] = [
        ("tx_pkts", 1000),
        ("rx_pkts", 1000),
        ("rdma_read_wr_err", 0),
        ("unresponsive_remote_events", 0),
        ("retrans_pkts", 0),
        ("retrans_timeout_events", 0),
    ];

    fn without_sample(mut f: Facts) -> Facts {
        f.rdma.sample = None;
        f
    }

    #[test]
    fn refused_registrations_are_only_a_note() {
        // libfabric's start-up P2P probe makes registrations fail on purpose.
        let f = node(
            &DEV,
            &PORT,
            &[("reg_mr_err", 5000), ("cmds_err", 5000), ("port1/tx_pkts", 9), ("port1/rx_pkts", 9)],
        );
        let o = errors(&f);
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(o.summary.contains("rdmap79s0/reg_mr_err +5000"), "{}", o.summary);
    }

    #[test]
    fn a_burst_within_the_agents_allowance_passes() {
        // 100 + 1/s over 10 s: +110 is allowed, as the EKS node monitoring agent allows it.
        let f = node(&DEV, &PORT, &[("port1/rdma_read_wr_err", 110), ("port1/retrans_pkts", 1010)]);
        let o = errors(&f);
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        let e = o.evidence.iter().find(|e| e.source.ends_with("retrans_pkts")).unwrap();
        assert_eq!(e.expected.as_deref(), Some("<= +1010 (burst 1000 plus 1/s)"));
    }

    #[test]
    fn a_peer_job_ending_warns_without_failing() {
        // unresponsive_remote_events over the allowance while rx keeps rising: one peer went
        // away, the path works.
        let f = node(
            &DEV,
            &PORT,
            &[
                ("port1/unresponsive_remote_events", 500),
                ("port1/tx_pkts", 900),
                ("port1/rx_pkts", 800),
            ],
        );
        let o = errors(&f);
        assert_eq!(o.status, Status::Warn, "{}", o.summary);
        assert!(o.summary.contains("unresponsive_remote_events +500 in 10.0 s"), "{}", o.summary);
        assert!(o.summary.contains("burst allowance"));
        assert!(o.remediation.as_deref().is_some_and(|r| r.contains("peer job that ended")));
        assert_eq!(o.value.as_deref(), Some("rising"));
    }

    #[test]
    fn path_counters_fail_when_nothing_comes_back() {
        let f = node(&DEV, &PORT, &[("port1/retrans_timeout_events", 500), ("port1/tx_pkts", 900)]);
        let o = errors(&f);
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(
            o.summary.contains("retrans_timeout_events +500 in 10.0 s while rx_pkts stayed flat")
        );
        let e = o.evidence.iter().find(|e| e.source.ends_with("retrans_timeout_events")).unwrap();
        assert_eq!(
            e.source,
            "sys/class/infiniband/rdmap79s0/ports/1/hw_counters/retrans_timeout_events"
        );
    }

    #[test]
    fn admin_timeouts_warn_alone_and_fail_with_command_errors() {
        let alone = errors(&node(&DEV, &PORT, &[("no_completion_cmds", 40)]));
        assert_eq!(alone.status, Status::Warn, "{}", alone.summary);
        let both = errors(&node(&DEV, &PORT, &[("no_completion_cmds", 40), ("cmds_err", 3)]));
        assert_eq!(both.status, Status::Fail, "{}", both.summary);
        assert!(both.summary.contains("no_completion_cmds +40 in 10.0 s with cmds_err rising"));
        assert!(both.remediation.as_deref().is_some_and(|r| r.contains("stop the instance")));
    }

    #[test]
    fn totals_since_boot_are_a_note_without_a_sample() {
        let mut port = PORT;
        port[2] = ("rdma_read_wr_err", 123_456);
        let o = errors(&without_sample(node(&DEV, &port, &[])));
        // Totals since the driver loaded are no evidence either way: not a pass.
        assert_eq!(o.status, Status::Skip, "{}", o.summary);
        assert!(o.summary.contains("rdmap79s0/rdma_read_wr_err = 123456"), "{}", o.summary);
        assert!(o.summary.contains("without --sample"));
        assert_eq!(o.value.as_deref(), Some("since-boot"));
    }

    #[test]
    fn old_drivers_without_network_counters_are_judged_on_what_they_have() {
        // Before 2.17.0 there are no retrans_* / unresponsive counters: absent, not a finding.
        let port = [("tx_pkts", 1000), ("rx_pkts", 1000), ("rdma_read_wr_err", 0)];
        let o = errors(&node(&DEV, &port, &[]));
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(o.summary.contains("no network counters"), "{}", o.summary);
        // Pre-split drivers list every counter in both directories: counted once.
        let both =
            [("reg_mr_err", 0), ("tx_pkts", 1000), ("rx_pkts", 1000), ("rdma_read_wr_err", 0)];
        let f = node(&both, &both, &[("port1/rdma_read_wr_err", 500), ("rdma_read_wr_err", 500)]);
        let o = errors(&f);
        assert_eq!(o.status, Status::Warn, "{}", o.summary);
        assert_eq!(o.summary.matches("rdma_read_wr_err").count(), 1, "{}", o.summary);
    }

    #[test]
    fn one_window_of_tx_without_rx_warns_and_corroboration_fails() {
        // Received before, nothing in this window, nothing else: suspected only.
        let once = traffic(&node(&DEV, &PORT, &[("port1/tx_pkts", 500)]));
        assert_eq!(once.status, Status::Warn, "{}", once.summary);
        assert_eq!(once.value.as_deref(), Some("silent-drop-suspected"));
        assert!(once.remediation.as_deref().is_some_and(|r| r.contains("probe pair")));
        // The same window with retransmissions: corroborated.
        let f = node(&DEV, &PORT, &[("port1/tx_pkts", 500), ("port1/retrans_pkts", 300)]);
        let o = traffic(&f);
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert_eq!(o.value.as_deref(), Some("silent-drop"));
        assert!(o.evidence[0].observed.as_deref().is_some_and(|x| x.contains("retrans_pkts +300")));
        // A device that never received since the driver loaded: the longer window.
        let mut port = PORT;
        port[1] = ("rx_pkts", 0);
        let o = traffic(&node(&DEV, &port, &[("port1/tx_pkts", 500)]));
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        // The remediation no longer blames a same-node peer.
        assert!(o.remediation.as_deref().is_some_and(|r| r.contains("same node is not a cause")));
    }

    #[test]
    fn an_idle_node_is_not_a_pass() {
        // Nothing ever received, nothing sent: no evidence that the path works.
        let mut port = PORT;
        port[0] = ("tx_pkts", 0);
        port[1] = ("rx_pkts", 0);
        for f in [without_sample(node(&DEV, &port, &[])), node(&DEV, &port, &[])] {
            let o = traffic(&f);
            assert_eq!(o.status, Status::Skip, "{}", o.summary);
            assert_eq!(o.value.as_deref(), Some("idle"));
            assert!(o.summary.contains("probe pair"), "{}", o.summary);
        }
        // Packets received since the driver loaded are the evidence a pass rests on.
        let o = traffic(&without_sample(node(&DEV, &PORT, &[])));
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
    }

    #[test]
    fn zero_totals_pass_without_a_sample() {
        let mut dev = DEV;
        dev[0] = ("reg_mr_err", 0);
        let o = errors(&without_sample(node(&dev, &PORT, &[])));
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert_eq!(o.value.as_deref(), Some("zero"));
    }
}

#[cfg(test)]
mod table_tests {
    use super::*;
    use crate::facts::instance::InstanceSpec;
    use crate::facts::rdma::{RdmaFacts, RdmaPort};
    use crate::verdict::Status;

    /// `n` EFA devices at `gbps` on an instance whose table row says 4 at 400 Gb/s.
    fn node(n: usize, gbps: u32, verified: bool) -> Facts {
        let mut f = Facts {
            rdma: RdmaFacts {
                devices: Some(
                    (0..n)
                        .map(|i| RdmaDevice {
                            name: format!("rdmap{i}s0"),
                            is_efa: true,
                            ports: vec![RdmaPort {
                                port: 1,
                                rate_gbps: Some(gbps),
                                ..RdmaPort::default()
                            }],
                            ..RdmaDevice::default()
                        })
                        .collect(),
                ),
                ..RdmaFacts::default()
            },
            ..Facts::default()
        };
        f.pci.devices = Some(Vec::new());
        f.modules.versions.insert("efa".into(), "2.17.3g".into());
        f.instance.instance_type = Some("p6-x".into());
        f.instance.spec = Some(InstanceSpec {
            instance_type: "p6-x".into(),
            gpus: 8,
            gpu: "B200".into(),
            efa_devices: 4,
            efa_gbps: Some(400),
            gpudirect: true,
            nvswitch: true,
            arch: "x86_64".into(),
            verified,
            sources: vec!["torchx".into()],
            notes: None,
        });
        f
    }

    #[test]
    fn an_unverified_rate_is_a_note_and_a_verified_one_warns() {
        let o = link(&node(4, 100, false));
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(o.summary.contains("unverified table row says 400 Gb/s"), "{}", o.summary);
        let o = link(&node(4, 100, true));
        assert_eq!(o.status, Status::Warn, "{}", o.summary);
    }

    #[test]
    fn an_unverified_count_is_a_note_and_a_verified_one_warns() {
        let o = devices(&node(3, 400, false));
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(o.summary.contains("unverified table row says up to 4"), "{}", o.summary);
        let o = devices(&node(3, 400, true));
        assert_eq!(o.status, Status::Warn, "{}", o.summary);
        assert!(o.summary.contains("supports up to 4"));
    }
}
