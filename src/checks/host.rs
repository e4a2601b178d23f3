//! Host resources: instance identity, hugepages, memlock, privileges, /dev/shm.

use super::{Check, Context, Needs, human_bytes};
use crate::facts::Facts;
use crate::facts::pci::PciKind;
use crate::report::{Evidence, Outcome};

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
        Some(s) if s.efa_devices == 0 => Outcome::fail(format!("{t} has no EFA support"))
            .evidence(ev.expected("an EFA-capable instance type"))
            .remediation("Run EFA workloads on an EFA-capable type (p4d, p5, p5e, p5en, p6, g5.8xlarge and larger, g6e.24xlarge and larger, trn1).")
            .value(t.clone()),
        Some(s) => {
            let gbps = s.efa_gbps.map(|g| format!(" at {g} Gb/s")).unwrap_or_default();
            let gdr = if s.gpudirect { "GPUDirect RDMA expected" } else { "no GPUDirect RDMA expected" };
            let caveat = if s.verified { "" } else { " (figures from third-party sources)" };
            Outcome::pass(format!(
                "{t}: up to {} EFA device(s){gbps}, {} × {}, {gdr}{caveat}",
                s.efa_devices, s.gpus, s.gpu
            ))
            .evidence(ev)
            .value(t.clone())
            .details(serde_json::to_value(s).unwrap_or_default())
        }
        None => Outcome::warn(format!(
            "{t} is not in efa-doctor's instance table: expected EFA and GPU counts cannot be checked"
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
        Needs::HOST
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![hugepages(cx.facts)]
    }
}

fn hugepages(f: &Facts) -> Outcome {
    let Some(h) = &f.host.hugepages else {
        return Outcome::skip(format!(
            "hugepage counters not readable ({})",
            f.host.notes.get("hugepages").map_or("", String::as_str)
        ));
    };
    let (nr, free, src) = match (h.nr_2m, h.free_2m) {
        (Some(n), Some(fr)) => (n, fr, "sys/kernel/mm/hugepages/hugepages-2048kB"),
        _ if h.default_size_kb == Some(2048) => (
            h.total.unwrap_or(0),
            h.free.unwrap_or(0),
            "proc/meminfo HugePages_Total/HugePages_Free",
        ),
        _ => {
            let size = h.default_size_kb.map_or("unknown".into(), |k| human_bytes(k * 1024));
            return Outcome::warn(format!(
                "no 2 MiB huge page pool on this kernel (default huge page size {size}): libfabric's EFA provider uses regular pages for its buffers"
            ))
            .evidence(Evidence::new("proc/meminfo Hugepagesize").observed(size))
            .remediation("On 64K-page arm64 kernels there is no 2 MiB pool; do not set FI_EFA_USE_HUGE_PAGE=1 or request hugepages-2Mi there.");
        }
    };
    let ev = Evidence::new(src)
        .observed(format!("{nr} pages, {free} free"))
        .expected(format!(">= 1 free (EKS GPU AMIs pre-allocate {EKS_PREALLOCATED_2M})"));
    let fix = format!(
        "Reserve 2 MiB huge pages for EFA: `sudo sysctl -w vm.nr_hugepages={EKS_PREALLOCATED_2M}` (persist in /etc/sysctl.d/, or `settings.kernel.sysctl.\"vm.nr_hugepages\"` on Bottlerocket), and request `hugepages-2Mi` in pods that set FI_EFA_USE_HUGE_PAGE=1."
    );
    if nr == 0 {
        Outcome::warn("no 2 MiB huge pages reserved: libfabric's EFA provider falls back to regular pages, and pods requesting hugepages-2Mi cannot be scheduled")
            .evidence(ev)
            .remediation(fix)
            .value("0")
    } else if free == 0 {
        Outcome::warn(format!("all {nr} 2 MiB huge pages are in use: a new EFA workload gets none"))
            .evidence(ev)
            .remediation(fix)
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
    .observed(format!("soft {}, hard {}", memlock_text(l.soft), memlock_text(l.hard)))
    .expected("unlimited (or CAP_IPC_LOCK)");
    let ipc_lock = f.host.capabilities.as_ref().is_some_and(|c| c.ipc_lock);
    match l.soft {
        None => Outcome::pass("memlock is unlimited for this process").evidence(ev).value("unlimited"),
        Some(_) if ipc_lock => Outcome::pass(format!(
            "memlock is {} but CAP_IPC_LOCK lets this process pin memory beyond it",
            memlock_text(l.soft)
        ))
        .evidence(ev)
        .value(memlock_text(l.soft)),
        Some(soft) => Outcome::fail(format!(
            "this process may lock only {} of memory: EFA registrations beyond it fail with ENOMEM (libfabric EFA error 4112)",
            human_bytes(soft)
        ))
        .evidence(ev)
        .remediation("Raise RLIMIT_MEMLOCK to unlimited where workloads start: `ulimit -l unlimited` (hard limit permitting), `LimitMEMLOCK=infinity` in systemd units, `--ulimit memlock=-1:-1` for Docker, `default-ulimits` in the container runtime for Kubernetes; or grant CAP_IPC_LOCK.")
        .value(human_bytes(soft)),
    }
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
    let names: Vec<&str> = nodes.iter().map(|n| n.name.as_str()).collect();
    ev.push(Evidence::new("dev/infiniband").observed(if names.is_empty() {
        "no uverbs nodes".into()
    } else {
        names.join(" ")
    }));
    let unopenable: Vec<_> = nodes.iter().filter(|n| n.openable == Some(false)).collect();
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
    let open_note = if nodes.iter().all(|n| n.openable == Some(true)) && !nodes.is_empty() {
        "all open read-write"
    } else {
        "openability not testable from this root"
    };
    match caps {
        Some(c) if c.privileged == Some(true) => Outcome::pass(format!(
            "{} verbs node(s), {open_note}; process is privileged",
            nodes.len()
        ))
        .with_evidence(ev),
        Some(c) if c.ipc_lock => Outcome::warn(format!(
            "{} verbs node(s), {open_note}; process has CAP_IPC_LOCK but is not privileged: NVIDIA's Dynamo guide reports that NIXL's fi_mr_reg of CUDA memory needs privileged: true (not confirmed by AWS documentation)",
            nodes.len()
        ))
        .with_evidence(ev)
        .remediation("If GPU memory registration fails with EFAULT or EPERM in this pod, set `securityContext.privileged: true` (run `efa-doctor probe mr` in the pod to test it directly)."),
        Some(_) => Outcome::warn(format!(
            "{} verbs node(s), {open_note}; process lacks CAP_IPC_LOCK and is not privileged, so it cannot pin memory beyond its memlock limit",
            nodes.len()
        ))
        .with_evidence(ev)
        .remediation("Add `IPC_LOCK` to securityContext.capabilities (or run privileged), or raise the memlock limit to unlimited."),
        None => Outcome::pass(format!("{} verbs node(s), {open_note}; capabilities not visible in this root", nodes.len()))
            .with_evidence(ev),
    }
}

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
        Needs::HOST
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![shm(cx.facts)]
    }
}

fn shm(f: &Facts) -> Outcome {
    let Some(s) = &f.host.shm else {
        return Outcome::skip(format!(
            "size of /dev/shm not known in this root ({})",
            f.host.notes.get("shm").map_or("", String::as_str)
        ));
    };
    let ev =
        Evidence::new(s.source.clone()).observed(human_bytes(s.size_bytes)).expected(">= 1 GiB");
    if s.size_bytes < SHM_MIN {
        Outcome::fail(format!(
            "/dev/shm is only {}: NCCL and CUDA IPC buffers do not fit (Docker's default is 64 MiB)",
            human_bytes(s.size_bytes)
        ))
        .evidence(ev)
        .remediation("Give the workload a larger /dev/shm: `--shm-size=16g` for Docker, or in Kubernetes mount an `emptyDir: {medium: Memory, sizeLimit: 64Gi}` volume at /dev/shm.")
        .value(s.size_bytes.to_string())
    } else {
        Outcome::pass(format!("/dev/shm is {}", human_bytes(s.size_bytes)))
            .evidence(ev)
            .value(s.size_bytes.to_string())
    }
}
