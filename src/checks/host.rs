//! Host resources: instance identity, hugepages, memlock, privileges, /dev/shm.

use super::{Check, Context, Needs, human_bytes};
use crate::facts::pci::PciKind;
use crate::facts::{Facts, NO_EFA};
use crate::verdict::{Evidence, Outcome};

pub struct Instance;

impl Check for Instance {
    fn id(&self) -> &'static str {
        "host.instance"
    }

    fn needs(&self) -> Needs {
        Needs::INSTANCE
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![instance(cx.facts)]
    }
}

fn instance(f: &Facts) -> Outcome {
    let i = &f.instance;
    let src = "sys/devices/virtual/dmi/id/product_name";
    let Some(t) = &i.instance_type else {
        let why = i.notes.get("instance_type").cloned().unwrap_or_default();
        return Outcome::skip(format!("instance type unknown: {why}"));
    };
    let ev = Evidence::new(src).observed(t.clone());
    if i.is_ec2() == Some(false) {
        return Outcome::skip(format!(
            "not an EC2 instance (DMI sys_vendor {:?}, product {t:?})",
            i.sys_vendor.as_deref().unwrap_or("")
        ))
        .evidence(ev);
    }
    match &i.spec {
        // An unverified row never makes a finding: said as information.
        Some(s) if s.efa_devices == 0 && !s.verified => Outcome::skip(format!(
            "{t} offers no EFA according to efa-doctor's table, whose row for it is unverified ({})",
            s.sources.join("; ")
        ))
        .evidence(ev)
        .value(t.clone()),
        Some(s) if s.efa_devices == 0 => Outcome::fail(format!("{t} has no EFA support"))
            .evidence(ev.expected("an EFA-capable instance type"))
            .remediation("Run EFA workloads on an EFA-capable type (p4d, p5, p5e, p5en, p6, g5.8xlarge and larger, g6e.24xlarge and larger, trn1).")
            .value(t.clone()),
        Some(s) => {
            let gbps = s.efa_gbps.map(|g| format!(" at {g} Gb/s")).unwrap_or_default();
            let gdr = if s.gpudirect { "GPUDirect RDMA expected" } else { "no GPUDirect RDMA expected" };
            let caveat = if s.verified {
                ""
            } else {
                " (unverified figures: notes only, never a warning)"
            };
            Outcome::pass(format!(
                "{t}: up to {} EFA device(s){gbps}, {} × {}, {gdr}{caveat}",
                s.efa_devices, s.gpus, s.gpu
            ))
            .evidence(ev)
            .value(t.clone())
            .details(serde_json::to_value(s).unwrap_or_default())
        }
        // Not knowing a type is no fault of the node: information only.
        None => Outcome::skip(format!(
            "{t} is not in efa-doctor's instance table: expected EFA and GPU counts are not checked"
        ))
        .evidence(ev)
        .remediation("If this type supports EFA, compare the EFA device count with `aws ec2 describe-instance-types --instance-types <type> --query 'InstanceTypes[].NetworkInfo.EfaInfo'` and report the type to efa-doctor.")
        .value(t.clone()),
    }
}

/// EKS GPU AMIs pre-allocate this many 2 MiB pages for EFA (doc 001).
const EKS_PREALLOCATED_2M: u64 = 5128;

pub struct Hugepages;

impl Check for Hugepages {
    fn id(&self) -> &'static str {
        "host.hugepages"
    }

    fn needs(&self) -> Needs {
        // PCI and RDMA: with no EFA device the pool is nobody's concern (see efa.devices).
        Needs::HOST | Needs::PCI | Needs::RDMA
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        if cx.bake {
            return vec![hugepages_configured(cx.facts)];
        }
        vec![hugepages(cx.facts)]
    }
}

/// Bake profile: the pool the image reserves at boot (sysctl files, kernel command line),
/// or one already reserved on the build instance.
fn hugepages_configured(f: &Facts) -> Outcome {
    let live = f.host.hugepages.as_ref().and_then(|h| h.nr_2m).unwrap_or(0);
    let mut ev: Vec<Evidence> = f
        .host
        .hugepages_config
        .iter()
        .map(|(src, n)| Evidence::new(src.clone()).observed(format!("{n} pages")))
        .collect();
    ev.push(
        Evidence::new("sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")
            .observed(live.to_string()),
    );
    // The last setting wins, as systemd-sysctl applies files in order.
    let configured = f.host.hugepages_config.last().map(|(_, n)| *n);
    match configured {
        Some(n) if n > 0 => Outcome::pass(format!("the image reserves {n} 2 MiB huge pages at boot"))
            .with_evidence(ev)
            .value(n.to_string()),
        _ if live > 0 => Outcome::pass(format!(
            "{live} 2 MiB huge pages reserved on this build instance (no boot-time setting found in sysctl files or the kernel command line)"
        ))
        .with_evidence(ev)
        .value(live.to_string()),
        // libfabric uses huge pages only when it can get them (FI_EFA_USE_HUGE_PAGE unset):
        // an image without a pool works, so this is information for the image's author.
        _ => Outcome::skip(format!("the image reserves no 2 MiB huge pages at boot: libfabric's EFA provider will use regular pages, which works (a workload setting FI_EFA_USE_HUGE_PAGE=1, or a pod requesting hugepages-2Mi, needs a pool: EKS GPU AMIs reserve {EKS_PREALLOCATED_2M} with vm.nr_hugepages in /etc/sysctl.d/)"))
            .with_evidence(ev)
            .value("0"),
    }
}

fn hugepages(f: &Facts) -> Outcome {
    // The pool is reserved for libfabric's EFA provider: without EFA nothing needs it.
    if f.efa_absent() {
        return Outcome::skip(format!(
            "{NO_EFA}; huge pages are reserved for libfabric's EFA provider"
        ));
    }
    let Some(h) = &f.host.hugepages else {
        return Outcome::skip(format!(
            "hugepage counters not readable ({})",
            f.host.notes.get("hugepages").map_or("", String::as_str)
        ));
    };
    // libfabric sizes its pools by `Hugepagesize` in /proc/meminfo and maps them with
    // MAP_HUGETLB and no size flag (ofi_get_hugepage_size, ofi_alloc_hugepage_buf): it uses
    // the default pool, whatever other pools exist.
    let Some(default_kb) = h.default_size_kb else {
        return Outcome::skip(
            "proc/meminfo has no Hugepagesize: the kernel has no hugetlb pool libfabric could use",
        );
    };
    let size = human_bytes(default_kb * 1024);
    let two_mib = match (h.nr_2m, h.free_2m) {
        (Some(n), Some(fr)) => Some((n, fr)),
        _ => None,
    };
    if default_kb != 2048 {
        // 64K-page arm64 kernels: the default is 512 MiB; a 2 MiB pool may exist beside it
        // for pods that request hugepages-2Mi, but libfabric never maps from it. No AWS
        // document sets a reservation for this pool, so an empty one is information.
        let (nr, free) = (h.total.unwrap_or(0), h.free.unwrap_or(0));
        let mut ev = vec![
            Evidence::new("proc/meminfo Hugepagesize, HugePages_Total, HugePages_Free")
                .observed(format!("{size} default pool: {nr} pages, {free} free")),
        ];
        let side = two_mib.map_or(String::new(), |(n, fr)| {
            ev.push(
                Evidence::new("sys/kernel/mm/hugepages/hugepages-2048kB")
                    .observed(format!("{n} pages, {fr} free (not the pool libfabric maps from)")),
            );
            format!("; the 2 MiB pool ({n} pages, {fr} free) serves pods requesting hugepages-2Mi, not libfabric")
        });
        let judged = if free > 0 {
            format!("{free} of {nr} {size} huge pages free for libfabric's buffers")
        } else {
            format!(
                "no free {size} huge page (the default size here, which libfabric uses): its buffers use regular pages, which works"
            )
        };
        return Outcome::pass(format!("{judged}{side}")).with_evidence(ev).value(free.to_string());
    }
    let (nr, free, src) = match two_mib {
        Some((n, fr)) => (n, fr, "sys/kernel/mm/hugepages/hugepages-2048kB"),
        None => (
            h.total.unwrap_or(0),
            h.free.unwrap_or(0),
            "proc/meminfo HugePages_Total/HugePages_Free",
        ),
    };
    let ev = Evidence::new(src)
        .observed(format!("{nr} pages, {free} free"))
        .expected(format!(">= 1 free (EKS GPU AMIs pre-allocate {EKS_PREALLOCATED_2M})"));
    let fix = format!(
        "Reserve 2 MiB huge pages for EFA: `sudo sysctl -w vm.nr_hugepages={EKS_PREALLOCATED_2M}` (persist in /etc/sysctl.d/, or `settings.kernel.sysctl.\"vm.nr_hugepages\"` on Bottlerocket), and request `hugepages-2Mi` in pods that set FI_EFA_USE_HUGE_PAGE=1."
    );
    if nr == 0 {
        // With FI_EFA_USE_HUGE_PAGE unset the provider uses huge pages only when it gets them
        // (prov/efa efa_env.h: EFA_ENV_HUGE_PAGE_UNSPEC); workers that set it to 1 are judged
        // by process.environment. An empty pool is information, not a fault of the node.
        Outcome::skip(format!("no 2 MiB huge pages reserved: libfabric's EFA provider uses regular pages, which works; a workload that sets FI_EFA_USE_HUGE_PAGE=1 or requests hugepages-2Mi needs a pool ({fix})"))
            .evidence(ev)
            .value("0")
    } else if free == 0 {
        // Pages in use are pages EFA workloads hold: the pool works. A workload that needs
        // more (FI_EFA_USE_HUGE_PAGE=1) is judged by process.environment.
        Outcome::pass(format!(
            "all {nr} 2 MiB huge pages are in use by running workloads (note: a new workload that sets FI_EFA_USE_HUGE_PAGE=1 gets none; process.environment judges that)"
        ))
        .evidence(ev)
        .value("0")
    } else {
        Outcome::pass(format!(
            "{free} of {nr} 2 MiB huge pages free ({})",
            human_bytes(free * 2 * 1024 * 1024)
        ))
        .evidence(ev)
        .value(free.to_string())
    }
}

pub struct Memlock;

impl Check for Memlock {
    fn id(&self) -> &'static str {
        "host.memlock"
    }

    fn needs(&self) -> Needs {
        Needs::HOST
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![memlock(cx.facts)]
    }
}

pub(crate) fn memlock_text(v: Option<u64>) -> String {
    v.map_or("unlimited".into(), human_bytes)
}

/// efa-doctor's own limit (under SSH, sudo or a debug container) is not the workload's: it is
/// information, and `process.memlock` judges the workers' limits.
fn memlock(f: &Facts) -> Outcome {
    let Some(l) = &f.host.memlock else {
        return Outcome::skip(format!(
            "the memlock limit of the inspecting process is not visible in this root ({})",
            f.host.notes.get("memlock").map_or("", String::as_str)
        ));
    };
    let ev = Evidence::new(
        f.host.notes.get("memlock").cloned().unwrap_or_else(|| "proc/self/limits".into()),
    )
    .observed(format!("soft {}, hard {}", memlock_text(l.soft), memlock_text(l.hard)));
    let ipc_lock = f.host.capabilities.as_ref().is_some_and(|c| c.ipc_lock);
    let defer = "efa-doctor's own limit, not the workload's: process.memlock judges the workers";
    // Information in every case: a pass here would rest on the inspector, not the workload.
    let (what, value) = match l.soft {
        None => ("memlock is unlimited for this process".to_string(), "unlimited".to_string()),
        Some(soft) if ipc_lock => (
            format!(
                "memlock is {} but CAP_IPC_LOCK lets this process pin memory beyond it",
                human_bytes(soft)
            ),
            human_bytes(soft),
        ),
        Some(soft) => (
            format!(
                "this process may lock only {} (a workload started the same way would fail EFA registrations with ENOMEM)",
                human_bytes(soft)
            ),
            human_bytes(soft),
        ),
    };
    Outcome::skip(format!("{what}; {defer}")).evidence(ev).value(value)
}

pub struct Privileges;

impl Check for Privileges {
    fn id(&self) -> &'static str {
        "host.privileges"
    }

    fn needs(&self) -> Needs {
        Needs::HOST | Needs::PCI | Needs::RDMA
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![privileges(cx.facts)]
    }
}

fn privileges(f: &Facts) -> Outcome {
    // Device access is judged once, by efa.devices: without EFA, or with none reachable
    // from here, there is nothing this check adds.
    if f.efa_absent() {
        return Outcome::skip(NO_EFA);
    }
    if f.efa_unreachable() {
        return Outcome::skip(crate::facts::NO_EFA_HERE);
    }
    let efa_count = f.rdma.efa().count().max(f.pci.of_kind(PciKind::Efa).count());
    let mut ev = Vec::new();
    let caps = f.host.capabilities.as_ref();
    if let Some(c) = caps {
        ev.push(
            Evidence::new("proc/self/status CapEff")
                .observed(format!(
                    "{} ({})",
                    c.effective_hex,
                    match c.privileged {
                        Some(true) => "all capabilities".to_string(),
                        _ =>
                            format!("IPC_LOCK {}, SYS_ADMIN {}", yes(c.ipc_lock), yes(c.sys_admin)),
                    }
                ))
                .expected("privileged, or at least CAP_IPC_LOCK"),
        );
    }
    let Some(nodes) = &f.host.uverbs else {
        if efa_count > 0 {
            return Outcome::fail(format!(
                "{efa_count} EFA device(s) exist in sysfs but /dev/infiniband is absent: this container has no access to the EFA devices"
            ))
            .with_evidence(ev)
            .evidence(Evidence::new("dev/infiniband").observed("absent").expected("uverbs0..N"))
            .remediation("Request the devices through the EFA device plugin (`vpc.amazonaws.com/efa: <count>` in resources.limits) or run the pod privileged; check the aws-efa-k8s-device-plugin DaemonSet on this node.");
        }
        return Outcome::skip(
            "no EFA device and no /dev/infiniband: nothing to access (see efa.devices)",
        )
        .with_evidence(ev);
    };
    // Only the EFA devices' nodes: a p6-b200 also has two Mellanox NICs in /dev/infiniband,
    // which are not ours to judge. A node whose device is unknown is kept.
    let efa_names: Vec<&str> = f.rdma.efa().map(|d| d.name.as_str()).collect();
    let other = |n: &&crate::facts::host::UverbsNode| {
        n.ibdev.as_deref().is_some_and(|d| !efa_names.contains(&d)) && !efa_names.is_empty()
    };
    let others = nodes.iter().filter(other).count();
    let nodes: Vec<&crate::facts::host::UverbsNode> = nodes.iter().filter(|n| !other(n)).collect();
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    if others > 0 {
        ev.push(
            Evidence::new("sys/class/infiniband_verbs/*/ibdev")
                .observed(format!("{others} verbs node(s) of non-EFA devices, not judged")),
        );
    }
    ev.push(Evidence::new("dev/infiniband").observed(if names.is_empty() {
        "no uverbs nodes".into()
    } else {
        names.join(" ")
    }));
    let unopenable: Vec<_> = nodes.iter().filter(|n| n.openable == Some(false)).collect();
    if let (Some(n), Some(from)) = (
        unopenable.first(),
        f.host.uverbs_opened_from.as_deref().filter(|_| f.host.devices_opened_from_a_container()),
    ) {
        return Outcome::skip(format!(
            "{} of {} verbs device node(s) cannot be opened from {from} ({}): {CONTAINER_DEVICE_ACCESS}",
            unopenable.len(),
            nodes.len(),
            n.open_error.as_deref().unwrap_or("error")
        ))
        .with_evidence(ev);
    }
    if let Some(n) = unopenable.first() {
        return Outcome::fail(format!(
            "{} of {} verbs device node(s) cannot be opened by this process ({})",
            unopenable.len(),
            nodes.len(),
            n.open_error.as_deref().unwrap_or("error")
        ))
        .with_evidence(ev)
        .remediation("Allow the container to use the devices: request `vpc.amazonaws.com/efa` (the device plugin adds them to the device cgroup) or run privileged; outside containers, check the node's permissions (`ls -l /dev/infiniband`, rdma-core's udev rules).");
    }
    if nodes.is_empty() && efa_count > 0 {
        return Outcome::fail(format!("{efa_count} EFA device(s) exist but /dev/infiniband has no uverbs node"))
            .with_evidence(ev)
            .remediation("Load ib_uverbs (`sudo modprobe ib_uverbs`) on the node, and request `vpc.amazonaws.com/efa` in the pod.");
    }
    // A pass needs evidence: every node opened read-write from here, and this process may pin
    // memory (privileged, CAP_IPC_LOCK, or an unlimited memlock). What this process cannot
    // pin is information only: the workload's own limit is process.memlock's to judge.
    let all_open = !nodes.is_empty() && nodes.iter().all(|n| n.openable == Some(true));
    if !all_open {
        return Outcome::skip(format!(
            "{} verbs node(s) present; whether they open is not testable from this root",
            nodes.len()
        ))
        .with_evidence(ev);
    }
    let unlimited = f.host.memlock.as_ref().is_some_and(|l| l.soft.is_none());
    let pin = match caps {
        Some(c) if c.privileged == Some(true) => Some("process is privileged".to_string()),
        // An expectation no AWS document confirms is a note, never a warning.
        Some(c) if c.ipc_lock => Some("process has CAP_IPC_LOCK (not privileged; note: NVIDIA's Dynamo guide reports that NIXL's fi_mr_reg of CUDA memory needs privileged: true, not confirmed by AWS documentation; `efa-doctor probe mr` tests it)".to_string()),
        _ if unlimited => Some("its memlock limit is unlimited".to_string()),
        _ => None,
    };
    match pin {
        Some(pin) => Outcome::pass(format!(
            "{} verbs node(s), all open read-write from this process; {pin}",
            nodes.len()
        ))
        .with_evidence(ev),
        None => Outcome::skip(format!(
            "{} verbs node(s), all open read-write from this process; it may pin memory only up to its memlock limit (efa-doctor's own limit, not the workload's: process.memlock judges the workers)",
            nodes.len()
        ))
        .with_evidence(ev),
    }
}

/// Why a container judging a mounted node root does not judge the node's device access.
pub(crate) const CONTAINER_DEVICE_ACCESS: &str = "that is this container's device access (a pod's device cgroup), not the node's; judge on the node, or run the debug pod privileged (`kubectl debug node/<node> --profile=sysadmin`)";

pub(super) fn yes(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// NCCL's documentation asks for at least `--shm-size=1g` in containers.
const SHM_MIN: u64 = 1 << 30;

pub struct Shm;

impl Check for Shm {
    fn id(&self) -> &'static str {
        "host.shm"
    }

    fn needs(&self) -> Needs {
        // The workers' /dev/shm is what is judged.
        Needs::HOST | Needs::PROCESSES
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![shm(cx.facts)]
    }
}

/// The workers' `/dev/shm` is what NCCL and CUDA IPC use. From a pod or `--root /host`,
/// `proc/self/mounts` is efa-doctor's own mount table (a pod's 64 MiB default), so the
/// inspector's own value is information only; the workers' (from `/proc/PID/mounts`) is judged.
fn shm(f: &Facts) -> Outcome {
    let fix = "Give the workload a larger /dev/shm: `--shm-size=16g` for Docker, or in Kubernetes mount an `emptyDir: {medium: Memory, sizeLimit: 64Gi}` volume at /dev/shm.";
    let workers: Vec<_> = f
        .processes
        .iter()
        .flat_map(|p| &p.processes)
        .filter_map(|p| p.shm.as_ref().map(|s| (p, s)))
        .collect();
    if !workers.is_empty() {
        let ev: Vec<Evidence> = workers
            .iter()
            .map(|(p, s)| {
                Evidence::new(s.source.clone())
                    .observed(format!("pid {}: {}", p.pid, human_bytes(s.size_bytes)))
                    .expected(">= 1 GiB")
            })
            .collect();
        let small: Vec<String> = workers
            .iter()
            .filter(|(_, s)| s.size_bytes < SHM_MIN)
            .map(|(p, s)| {
                format!(
                    "{} (pid {}) {}",
                    p.comm.as_deref().unwrap_or("?"),
                    p.pid,
                    human_bytes(s.size_bytes)
                )
            })
            .collect();
        let min = workers.iter().map(|(_, s)| s.size_bytes).min().unwrap_or(0);
        return if small.is_empty() {
            Outcome::pass(format!(
                "/dev/shm of {} worker(s) is at least {}",
                workers.len(),
                human_bytes(min)
            ))
            .with_evidence(ev)
            .value(min.to_string())
        } else {
            Outcome::fail(format!(
                "the workers' /dev/shm is too small for NCCL and CUDA IPC buffers: {} (Docker's default is 64 MiB)",
                small.join(", ")
            ))
            .with_evidence(ev)
            .remediation(fix)
            .value(min.to_string())
        };
    }
    let Some(s) = &f.host.shm else {
        return Outcome::skip(format!(
            "size of /dev/shm not known in this root ({})",
            f.host.notes.get("shm").map_or("", String::as_str)
        ));
    };
    let ev =
        Evidence::new(s.source.clone()).observed(human_bytes(s.size_bytes)).expected(">= 1 GiB");
    if s.size_bytes < SHM_MIN {
        // efa-doctor's own /dev/shm (its pod's, or its mount namespace's under --root /host)
        // says nothing about the workers'.
        Outcome::skip(format!(
            "efa-doctor's own /dev/shm is {} (information only: the workers' /dev/shm is judged from their /proc/PID/mounts; pass --pid PID)",
            human_bytes(s.size_bytes)
        ))
        .evidence(ev)
        .value(s.size_bytes.to_string())
    } else {
        Outcome::pass(format!("/dev/shm is {}", human_bytes(s.size_bytes)))
            .evidence(ev)
            .value(s.size_bytes.to_string())
    }
}

#[cfg(test)]
mod hugepage_tests {
    use super::*;
    use crate::facts::host::Hugepages as Pools;
    use crate::verdict::Status;

    fn with(p: Pools) -> Facts {
        let mut f = Facts::default();
        f.host.hugepages = Some(p);
        f
    }

    #[test]
    fn arm64_64k_judges_the_default_pool_libfabric_maps_from() {
        // 512 MiB default with 4 free, and an empty 2 MiB pool beside it: libfabric maps
        // MAP_HUGETLB from the default pool, so the empty 2 MiB pool is no finding.
        let o = hugepages(&with(Pools {
            default_size_kb: Some(524_288),
            total: Some(8),
            free: Some(4),
            nr_2m: Some(0),
            free_2m: Some(0),
            ..Pools::default()
        }));
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(o.summary.starts_with("4 of 8 512 MiB huge pages free"), "{}", o.summary);
        assert!(o.summary.contains("2 MiB pool (0 pages, 0 free) serves pods"), "{}", o.summary);
        assert_eq!(o.evidence.len(), 2);
        // An empty default pool there is information: no AWS document sets one.
        let o = hugepages(&with(Pools {
            default_size_kb: Some(524_288),
            total: Some(0),
            free: Some(0),
            ..Pools::default()
        }));
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(o.summary.contains("regular pages"), "{}", o.summary);
    }

    #[test]
    fn x86_empty_2mib_pool_is_information() {
        let o = hugepages(&with(Pools {
            default_size_kb: Some(2048),
            total: Some(0),
            free: Some(0),
            nr_2m: Some(0),
            free_2m: Some(0),
            ..Pools::default()
        }));
        // libfabric uses huge pages only when it gets them: regular pages work.
        assert_eq!(o.status, Status::Skip, "{}", o.summary);
        assert!(o.summary.contains("regular pages, which works"), "{}", o.summary);
        assert!(o.summary.contains("vm.nr_hugepages=5128"), "{}", o.summary);
    }
}

#[cfg(test)]
mod privileges_tests {
    use super::*;
    use crate::facts::host::{Capabilities, UverbsNode};
    use crate::parse::proc::Limit;
    use crate::verdict::Status;

    fn node(openable: Option<bool>, caps: Option<(bool, bool)>, memlock: Option<u64>) -> Facts {
        let error = (openable == Some(false)).then_some("Permission denied");
        let mut f = crate::checks::efa_node_with_uverbs0(openable, error);
        f.host.capabilities = caps.map(|(privileged, ipc_lock)| Capabilities {
            effective_hex: "0".into(),
            privileged: Some(privileged),
            ipc_lock,
            ..Capabilities::default()
        });
        f.host.memlock = Some(Limit { soft: memlock, hard: memlock });
        f
    }

    #[test]
    fn a_pass_needs_nodes_that_opened_and_a_way_to_pin() {
        let o = privileges(&node(Some(true), Some((true, true)), Some(65536)));
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(o.summary.contains("all open read-write") && o.summary.contains("privileged"));
        let o = privileges(&node(Some(true), Some((false, false)), None));
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(o.summary.contains("memlock limit is unlimited"), "{}", o.summary);
        let o = privileges(&node(Some(true), Some((false, true)), Some(65536)));
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(o.summary.contains("not confirmed by AWS documentation"), "{}", o.summary);
    }

    #[test]
    fn what_could_not_be_tested_or_is_the_inspectors_own_limit_is_information() {
        // Device nodes of a file tree cannot be opened: no evidence either way.
        let o = privileges(&node(None, Some((true, true)), None));
        assert_eq!(o.status, Status::Skip, "{}", o.summary);
        assert!(o.summary.contains("not testable from this root"), "{}", o.summary);
        // An SSH user without CAP_IPC_LOCK and a 64 KiB limit: the workload's limit is
        // process.memlock's to judge, never a warning here.
        let o = privileges(&node(Some(true), Some((false, false)), Some(65536)));
        assert_eq!(o.status, Status::Skip, "{}", o.summary);
        assert!(o.summary.contains("process.memlock"), "{}", o.summary);
        assert!(o.remediation.is_none());
    }

    #[test]
    fn a_container_judging_a_mounted_node_root_does_not_judge_the_nodes_device_access() {
        let mut f = node(Some(false), Some((false, false)), Some(65536));
        f.host.uverbs_opened_from =
            Some("this container (the node's root is mounted at /host)".into());
        let o = privileges(&f);
        assert_eq!(o.status, Status::Skip, "{}", o.summary);
        assert!(o.summary.contains("not the node's"), "{}", o.summary);
        assert!(o.remediation.is_none());
    }

    #[test]
    fn mellanox_nodes_beside_the_efa_ones_are_not_judged() {
        // p6-b200: two ConnectX-7 in /dev/infiniband beside the EFA devices.
        let mut f = node(Some(true), Some((true, true)), None);
        f.host.uverbs.as_mut().unwrap().push(UverbsNode {
            name: "uverbs8".into(),
            ibdev: Some("ibp115s0f0".into()),
            openable: Some(false),
            open_error: Some("Permission denied".into()),
        });
        let o = privileges(&f);
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(o.summary.starts_with("1 verbs node(s)"), "{}", o.summary);
        assert!(o.evidence.iter().any(|e| {
            e.observed.as_deref().is_some_and(|x| x.contains("1 verbs node(s) of non-EFA devices"))
        }));
    }

    #[test]
    fn a_node_this_process_cannot_open_fails() {
        let o = privileges(&node(Some(false), Some((false, true)), None));
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(o.summary.contains("cannot be opened") && o.summary.contains("Permission denied"));
        assert!(o.remediation.as_deref().is_some_and(|r| r.contains("vpc.amazonaws.com/efa")));
    }
}

#[cfg(test)]
mod instance_tests {
    use super::*;
    use crate::facts::instance::InstanceSpec;
    use crate::verdict::Status;

    fn on(t: &str, spec: Option<InstanceSpec>) -> Facts {
        let mut f = Facts::default();
        f.instance.instance_type = Some(t.into());
        f.instance.sys_vendor = Some("Amazon EC2".into());
        f.instance.spec = spec;
        f
    }

    fn row(efa: u32, verified: bool) -> InstanceSpec {
        InstanceSpec {
            instance_type: "x".into(),
            gpus: 1,
            gpu: "A10G".into(),
            efa_devices: efa,
            efa_gbps: None,
            gpudirect: false,
            nvswitch: false,
            arch: "x86_64".into(),
            verified,
            sources: vec!["torchx".into()],
            notes: None,
        }
    }

    #[test]
    fn a_type_not_in_the_table_is_information() {
        // Was a warning: not knowing a type is no fault of the node (issue 14).
        let o = instance(&on("g7e.48xlarge", None));
        assert_eq!(o.status, Status::Skip, "{}", o.summary);
        assert!(o.summary.contains("not in efa-doctor's instance table"));
        assert_eq!(o.value.as_deref(), Some("g7e.48xlarge"));
    }

    #[test]
    fn only_a_verified_row_fails_a_type_without_efa() {
        let o = instance(&on("g5.xlarge", Some(row(0, false))));
        assert_eq!(o.status, Status::Skip, "{}", o.summary);
        assert!(o.summary.contains("unverified"), "{}", o.summary);
        let o = instance(&on("g5.xlarge", Some(row(0, true))));
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(o.remediation.is_some());
    }
}
