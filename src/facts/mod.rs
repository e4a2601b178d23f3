//! Gathering: everything read from the node becomes typed, serialisable facts.
//!
//! Checks are pure functions of these facts. A fact the root cannot give is `None` (shown as
//! `null` in JSON) with the reason in the group's `notes`; it is never filled in from the
//! machine doing the analysis.

pub mod gpu;
pub mod host;
pub mod imds;
pub mod instance;
pub mod kernel;
pub mod libfabric;
pub mod logs;
pub mod manifest;
pub mod metrics;
pub mod pair;
pub mod pci;
pub mod probe;
pub mod process;
pub mod rdma;
pub mod stack;
pub mod topology;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::root::Root;

/// Why facts are unknown, or where they came from, keyed by fact name.
pub type Notes = BTreeMap<String, String>;

/// Everything efa-doctor knows about the node.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Facts {
    pub kernel: kernel::KernelFacts,
    pub modules: kernel::ModulesFacts,
    pub nvidia_driver: kernel::NvidiaDriverFacts,
    pub host: host::HostFacts,
    pub instance: instance::InstanceFacts,
    pub pci: pci::PciFacts,
    pub rdma: rdma::RdmaFacts,
    pub gpu: gpu::GpuFacts,
    pub libfabric: libfabric::LibfabricFacts,
    pub efa_stack: stack::EfaStackFacts,
    /// Instance identity and network placement from IMDSv2.
    #[serde(default)]
    pub imds: imds::ImdsFacts,
    /// The two-node path probe (`probe pair`), when run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<pair::PairFacts>,
    /// The live memory-registration probe.
    #[serde(default)]
    pub probe: probe::ProbeFacts,
    /// Workload processes inspected (`--pid`, or discovered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<process::ProcessesFacts>,
    /// KV-transfer metrics scraped with `--metrics`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<Vec<metrics::Scrape>>,
    /// The logs analysed with `--log` or `efa-doctor logs`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<crate::facts::logs::LogSummary>,
}

impl Facts {
    /// EFA hardware on the node: an EFA PCI function or an EFA RDMA device.
    pub fn efa_hardware(&self) -> bool {
        self.rdma.has_efa() || self.pci.has(pci::PciKind::Efa)
    }

    /// EFA is known to be absent: sysfs is readable and shows neither an EFA function nor an
    /// EFA RDMA device. `efa.devices` reports that once; the checks that need EFA skip and
    /// point at it (one root cause, one failure).
    pub fn efa_absent(&self) -> bool {
        (self.pci.devices.is_some() || self.rdma.devices.is_some()) && !self.efa_hardware()
    }

    /// EFA hardware exists but this process cannot reach any of it (a container given no
    /// `/dev/infiniband` or an empty one). `efa.devices` reports that once.
    pub fn efa_unreachable(&self) -> bool {
        self.efa_hardware()
            && self.host.dev_visible
            && self.host.uverbs.as_ref().is_none_or(|n| n.is_empty())
    }
}

/// The skip reason of a check that needs an EFA device when there is none.
pub const NO_EFA: &str = "skipped: no EFA device (see efa.devices)";
/// The skip reason of a check that needs to open an EFA device when none is reachable here.
pub const NO_EFA_HERE: &str = "skipped: no EFA device is usable from here (see efa.devices)";

/// What the gatherers may do beyond reading files.
#[derive(Debug, Clone, Default)]
pub struct GatherOptions {
    /// Manifest of a snapshot or captured tree, when the root has one: it carries the facts
    /// a file tree cannot (page size, architecture, native-library results).
    pub manifest: Option<crate::facts::manifest::Manifest>,
    /// `--sample`: take a second counter reading after this long.
    pub sample: Option<std::time::Duration>,
    /// Processes to inspect; empty means discover workers.
    pub pids: Vec<u32>,
    /// Whether to run the live registration probe.
    pub probe: probe::ProbeRequest,
    /// `probe pair`: this end of the two-node probe.
    pub pair: Option<pair::PairRequest>,
}

/// Reads every fact from `root`.
pub fn gather(root: &Root, opts: &GatherOptions) -> Facts {
    let kernel = kernel::gather_kernel(root, opts.manifest.as_ref());
    let mut modules = kernel::gather_modules(root);
    modules.on_disk = kernel::modules_on_disk(root, kernel.release.as_deref(), &mut modules.notes);
    let nvidia_driver = kernel::gather_nvidia(root);
    let captured_live = if root.kind().is_live() {
        None
    } else {
        opts.manifest.as_ref().and_then(|m| m.live.as_ref())
    };
    let host = host::gather(root, captured_live);
    let instance = instance::gather(root);
    let pci = pci::gather(root);
    let mut rdma = rdma::gather(root);
    rdma.sample = match (opts.sample, opts.manifest.as_ref().and_then(|m| m.counter_sample.clone()))
    {
        // A captured second reading (snapshot or fixture) stands for the interval it covered.
        (_, Some(captured)) => Some(captured),
        (Some(interval), None) if rdma.devices.is_some() => {
            Some(rdma::sample(root, &rdma, interval))
        }
        _ => None,
    };
    let captured = opts.manifest.as_ref().and_then(|m| m.native.clone()).unwrap_or_default();
    // Native libraries answer for the live node or a mounted node root (in a helper chrooted
    // into it); elsewhere the manifest's captured results stand in for them.
    let native_here = root.kind().runs_native();
    let gpu = match captured.gpu {
        Some(g) => g,
        None if native_here => gpu::gather_live(root),
        None => gpu::GpuFacts::not_run(
            "NVML runs only on the live node; this root holds no captured NVML result",
        ),
    };
    let libfabric = match captured.libfabric {
        Some(l) => l,
        None => libfabric::gather(root, kernel.arch.as_deref(), native_here),
    };
    let efa_stack = match captured.efa_stack {
        Some(s) => s,
        None => stack::gather(root, &libfabric.search),
    };
    let imds = match captured.imds {
        Some(i) => i,
        None => imds::gather(root, &instance, rdma.has_efa()),
    };
    let pair = opts
        .pair
        .as_ref()
        .map(|req| pair::run(root, req, &libfabric, pair::node_id(root, &instance, &imds)));
    let probe = match captured.probe {
        Some(p) => p,
        None => probe::gather(
            root,
            &opts.probe,
            &probe::ProbeInputs { libfabric: &libfabric, gpu: &gpu, pci: &pci, rdma: &rdma },
        ),
    };
    Facts {
        kernel,
        modules,
        nvidia_driver,
        host,
        instance,
        pci,
        rdma,
        gpu,
        libfabric,
        efa_stack,
        imds,
        pair,
        probe,
        processes: Some(process::gather(root, &opts.pids)),
        metrics: None,
        logs: None,
    }
}
