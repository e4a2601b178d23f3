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
pub mod progress;
pub mod rdma;
pub mod stack;
pub mod topology;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::root::Root;

/// Why facts are unknown, or where they came from, keyed by fact name.
pub type Notes = BTreeMap<String, String>;

/// Everything efa-doctor knows about the node.
///
/// A group no selected check reads is not gathered: it serialises as `null` and
/// [`Facts::not_gathered`] says why (see [`Needs`]). In memory it holds its empty default,
/// which no selected check looks at.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Facts {
    #[serde(deserialize_with = "null_as_default")]
    pub kernel: kernel::KernelFacts,
    #[serde(deserialize_with = "null_as_default")]
    pub modules: kernel::ModulesFacts,
    #[serde(deserialize_with = "null_as_default")]
    pub nvidia_driver: kernel::NvidiaDriverFacts,
    #[serde(deserialize_with = "null_as_default")]
    pub host: host::HostFacts,
    #[serde(deserialize_with = "null_as_default")]
    pub instance: instance::InstanceFacts,
    #[serde(deserialize_with = "null_as_default")]
    pub pci: pci::PciFacts,
    #[serde(deserialize_with = "null_as_default")]
    pub rdma: rdma::RdmaFacts,
    #[serde(deserialize_with = "null_as_default")]
    pub gpu: gpu::GpuFacts,
    #[serde(deserialize_with = "null_as_default")]
    pub libfabric: libfabric::LibfabricFacts,
    #[serde(deserialize_with = "null_as_default")]
    pub efa_stack: stack::EfaStackFacts,
    /// Instance identity and network placement from IMDSv2.
    #[serde(default, deserialize_with = "null_as_default")]
    pub imds: imds::ImdsFacts,
    /// The two-node path probe (`probe pair`), when run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<pair::PairFacts>,
    /// The live memory-registration probe.
    #[serde(default, deserialize_with = "null_as_default")]
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
    /// Groups left out because no selected check reads them, keyed by their field name.
    /// Empty (and absent from JSON) on a full run.
    #[serde(default, skip_serializing_if = "Notes::is_empty")]
    pub not_gathered: Notes,
}

/// A group that was not gathered reads back as its empty default.
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Facts as JSON: the same fields in the same order, with `null` for a group not gathered.
impl Serialize for Facts {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        /// `None`: not gathered (`null`); `Some`: the group.
        type Group<'a, T> = Option<&'a T>;
        /// Outer `None`: not run on this request (field absent, as before); `Some(None)`:
        /// not gathered (`null`).
        type OnRequest<'a, T> = Option<Option<&'a T>>;
        #[derive(Serialize)]
        struct Out<'a> {
            kernel: Group<'a, kernel::KernelFacts>,
            modules: Group<'a, kernel::ModulesFacts>,
            nvidia_driver: Group<'a, kernel::NvidiaDriverFacts>,
            host: Group<'a, host::HostFacts>,
            instance: Group<'a, instance::InstanceFacts>,
            pci: Group<'a, pci::PciFacts>,
            rdma: Group<'a, rdma::RdmaFacts>,
            gpu: Group<'a, gpu::GpuFacts>,
            libfabric: Group<'a, libfabric::LibfabricFacts>,
            efa_stack: Group<'a, stack::EfaStackFacts>,
            imds: Group<'a, imds::ImdsFacts>,
            #[serde(skip_serializing_if = "Option::is_none")]
            pair: OnRequest<'a, pair::PairFacts>,
            probe: Group<'a, probe::ProbeFacts>,
            #[serde(skip_serializing_if = "Option::is_none")]
            processes: OnRequest<'a, process::ProcessesFacts>,
            #[serde(skip_serializing_if = "Option::is_none")]
            metrics: OnRequest<'a, Vec<metrics::Scrape>>,
            #[serde(skip_serializing_if = "Option::is_none")]
            logs: OnRequest<'a, crate::facts::logs::LogSummary>,
            #[serde(skip_serializing_if = "Notes::is_empty")]
            not_gathered: &'a Notes,
        }
        let gathered = |name: &str| !self.not_gathered.contains_key(name);
        let group = |name: &str| gathered(name).then_some(());
        Out {
            kernel: group("kernel").map(|_| &self.kernel),
            modules: group("modules").map(|_| &self.modules),
            nvidia_driver: group("nvidia_driver").map(|_| &self.nvidia_driver),
            host: group("host").map(|_| &self.host),
            instance: group("instance").map(|_| &self.instance),
            pci: group("pci").map(|_| &self.pci),
            rdma: group("rdma").map(|_| &self.rdma),
            gpu: group("gpu").map(|_| &self.gpu),
            libfabric: group("libfabric").map(|_| &self.libfabric),
            efa_stack: group("efa_stack").map(|_| &self.efa_stack),
            imds: group("imds").map(|_| &self.imds),
            pair: on_request_of(gathered("pair"), self.pair.as_ref()),
            probe: group("probe").map(|_| &self.probe),
            processes: on_request_of(gathered("processes"), self.processes.as_ref()),
            metrics: on_request_of(gathered("metrics"), self.metrics.as_ref()),
            logs: on_request_of(gathered("logs"), self.logs.as_ref()),
            not_gathered: &self.not_gathered,
        }
        .serialize(s)
    }
}

/// The JSON Schema of [`Facts`] as its `Serialize` writes them: every group may be `null`
/// (not gathered, see `not_gathered`); the on-request groups are absent when not run.
#[derive(schemars::JsonSchema)]
#[schemars(rename = "Facts")]
#[allow(dead_code)] // Only its schema is used.
struct FactsSchema {
    kernel: Option<kernel::KernelFacts>,
    modules: Option<kernel::ModulesFacts>,
    nvidia_driver: Option<kernel::NvidiaDriverFacts>,
    host: Option<host::HostFacts>,
    instance: Option<instance::InstanceFacts>,
    pci: Option<pci::PciFacts>,
    rdma: Option<rdma::RdmaFacts>,
    gpu: Option<gpu::GpuFacts>,
    libfabric: Option<libfabric::LibfabricFacts>,
    efa_stack: Option<stack::EfaStackFacts>,
    /// Instance identity and network placement from IMDSv2.
    imds: Option<imds::ImdsFacts>,
    /// The two-node path probe (`probe pair`), when run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pair: Option<Option<pair::PairFacts>>,
    /// The live memory-registration probe.
    probe: Option<probe::ProbeFacts>,
    /// Workload processes inspected (`--pid`, or discovered).
    #[serde(skip_serializing_if = "Option::is_none")]
    processes: Option<Option<process::ProcessesFacts>>,
    /// KV-transfer metrics scraped with `--metrics`.
    #[serde(skip_serializing_if = "Option::is_none")]
    metrics: Option<Option<Vec<metrics::Scrape>>>,
    /// The logs analysed with `--log` or `efa-doctor logs`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    logs: Option<Option<crate::facts::logs::LogSummary>>,
    /// Groups left out because no selected check reads them (or because the run failed),
    /// keyed by their field name, with the reason. Absent on a full run.
    #[serde(skip_serializing_if = "Notes::is_empty")]
    not_gathered: Notes,
}

impl schemars::JsonSchema for Facts {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        FactsSchema::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        FactsSchema::json_schema(generator)
    }
}

/// An on-request group: `null` when not gathered, absent when gathered but not run.
fn on_request_of<T>(gathered: bool, v: Option<&T>) -> Option<Option<&T>> {
    match (gathered, v) {
        (false, _) => Some(None),
        (true, None) => None,
        (true, Some(v)) => Some(Some(v)),
    }
}

impl Facts {
    /// Facts of a run that gathered nothing it could stand by (it failed): every group is
    /// `null` in JSON, with `reason` in `not_gathered`.
    pub fn none_gathered(reason: &str) -> Facts {
        let mut facts = Facts::default();
        for (_, name) in GROUPS {
            facts.not_gathered.insert((*name).into(), reason.into());
        }
        facts
    }

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

bitflags::bitflags! {
    /// Groups of facts. Each check declares the groups it reads; a run gathers only the
    /// union over the selected checks (plus what those gatherers depend on, see
    /// [`Needs::closure`]), so `check --only host` never starts libfabric or NVML.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub struct Needs: u32 {
        /// Kernel release, architecture, page size.
        const KERNEL = 1 << 0;
        /// Loaded and built-in modules, versions, taint.
        const MODULES = 1 << 1;
        /// The NVIDIA kernel driver (version, open or proprietary).
        const NVIDIA_DRIVER = 1 << 2;
        /// Hugepages, memlock, capabilities, /dev/shm, uverbs nodes.
        const HOST = 1 << 3;
        /// DMI identity and the instance table.
        const INSTANCE = 1 << 4;
        /// The PCI tree.
        const PCI = 1 << 5;
        /// RDMA devices, ports and counters.
        const RDMA = 1 << 6;
        /// The second counter reading of `--sample` (sleeps for the interval).
        const SAMPLE = 1 << 7;
        /// NVML, in a helper process.
        const GPU = 1 << 8;
        /// libfabric's providers, in a helper process.
        const LIBFABRIC = 1 << 9;
        /// ELF scans of the EFA stack's libraries and plugins.
        const EFA_STACK = 1 << 10;
        /// IMDSv2, over the network.
        const IMDS = 1 << 11;
        /// The two-node path probe (`probe pair`).
        const PAIR = 1 << 12;
        /// The live memory-registration probe (allocates GPU memory).
        const PROBE = 1 << 13;
        /// Workload processes.
        const PROCESSES = 1 << 14;
        /// `--metrics` scrapes.
        const METRICS = 1 << 15;
        /// Logs given with `--log` or captured in the root.
        const LOGS = 1 << 16;
        /// What every report's header shows (node line, Prometheus info): cheap file reads.
        const REPORT = Self::KERNEL.bits() | Self::NVIDIA_DRIVER.bits() | Self::INSTANCE.bits();
    }
}

impl Needs {
    /// Adds the groups that the gatherers of `self` take as inputs.
    pub fn closure(self) -> Needs {
        // Each entry: a group and the groups its gatherer reads. Listed so that one pass in
        // this order reaches a fixed point (a group's inputs come later in the list).
        const DEPENDS: &[(Needs, Needs)] = &[
            (Needs::PAIR, Needs::LIBFABRIC.union(Needs::IMDS).union(Needs::INSTANCE)),
            (Needs::PROBE, Needs::LIBFABRIC.union(Needs::GPU).union(Needs::PCI).union(Needs::RDMA)),
            (Needs::IMDS, Needs::INSTANCE.union(Needs::RDMA)),
            (Needs::SAMPLE, Needs::RDMA),
            (Needs::LIBFABRIC, Needs::KERNEL),
            (Needs::EFA_STACK, Needs::KERNEL),
            // The modules installed on disk are those of the running kernel's release.
            (Needs::MODULES, Needs::KERNEL),
        ];
        DEPENDS
            .iter()
            .fold(self, |n, (group, inputs)| if n.contains(*group) { n | *inputs } else { n })
    }
}

/// Why a group is `null`.
pub const NOT_GATHERED: &str = "not gathered: no selected check reads it";

/// What the gatherers may do beyond reading files.
#[derive(Debug, Clone)]
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
    /// The groups to gather (closed over their inputs here). All by default: `snapshot`
    /// captures everything.
    pub needs: Needs,
    /// Where the waits (`--sample`, the probes) are reported; nowhere by default.
    pub progress: progress::Progress,
}

impl Default for GatherOptions {
    fn default() -> Self {
        GatherOptions {
            manifest: None,
            sample: None,
            pids: Vec::new(),
            probe: probe::ProbeRequest::default(),
            pair: None,
            needs: Needs::all(),
            progress: progress::Progress::default(),
        }
    }
}

/// Reads the facts `opts.needs` asks for from `root`; every other group is left empty and
/// listed in [`Facts::not_gathered`].
///
/// The slow sources run concurrently, each under its own deadline: libfabric (then the ELF
/// scans, which need its loader directories), NVML and IMDS on their own threads, while this
/// thread reads the node's files. The probe and the pair probe need their results, so they
/// run after; workload processes are discovered last.
pub fn gather(root: &Root, opts: &GatherOptions) -> Facts {
    let needs = opts.needs.closure();
    let want = |n: Needs| needs.contains(n);
    let kernel = if want(Needs::KERNEL) {
        kernel::gather_kernel(root, opts.manifest.as_ref())
    } else {
        kernel::KernelFacts::default()
    };
    let captured = opts.manifest.as_ref().and_then(|m| m.native.clone()).unwrap_or_default();
    let captured_process_libs = captured.process_libs.clone();
    // Native libraries answer for the live node or a mounted node root (in a helper chrooted
    // into it); elsewhere the manifest's captured results stand in for them.
    let native_here = root.kind().runs_native();
    let arch = kernel.arch.as_deref();
    let (libfabric, efa_stack, gpu, rest) = std::thread::scope(|s| {
        let fabric = s.spawn(|| {
            let libfabric = match (want(Needs::LIBFABRIC), captured.libfabric) {
                (false, _) => None,
                (true, Some(l)) => Some(l),
                (true, None) => Some(libfabric::gather(root, arch, native_here)),
            };
            let efa_stack = match (want(Needs::EFA_STACK), captured.efa_stack) {
                (false, _) => None,
                (true, Some(st)) => Some(st),
                (true, None) => {
                    // The loader directories alone, without starting libfabric, when no
                    // selected check reads libfabric itself.
                    let search = match &libfabric {
                        Some(l) => l.search.clone(),
                        None => libfabric::gather(root, arch, false).search,
                    };
                    Some(stack::gather(root, &search))
                }
            };
            (libfabric, efa_stack)
        });
        let gpu = s.spawn(|| match (want(Needs::GPU), captured.gpu) {
            (false, _) => None,
            (true, Some(g)) => Some(g),
            (true, None) if native_here => Some(gpu::gather_live(root)),
            (true, None) => Some(gpu::GpuFacts::not_run(
                "NVML runs only on the live node; this root holds no captured NVML result",
            )),
        });
        let rest = gather_files(root, opts, needs, captured.imds, kernel.release.clone(), s);
        let (libfabric, efa_stack) = fabric.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        let gpu = gpu.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
        (libfabric, efa_stack, gpu, rest)
    });
    let Files { modules, nvidia_driver, host, instance, pci, rdma, imds } = rest;
    let probe = match (want(Needs::PROBE), captured.probe) {
        (false, _) => None,
        (true, Some(p)) => Some(p),
        (true, None) => Some(probe::gather(
            root,
            &opts.probe,
            &probe::ProbeInputs {
                libfabric: libfabric.as_ref().expect("probe needs libfabric"),
                gpu: gpu.as_ref().expect("probe needs gpu"),
                pci: pci.as_ref().expect("probe needs pci"),
                rdma: rdma.as_ref().expect("probe needs rdma"),
                progress: &opts.progress,
            },
        )),
    };
    let pair = match (&opts.pair, want(Needs::PAIR)) {
        (Some(req), true) => {
            let (lf, inst, im) = (
                libfabric.as_ref().expect("pair needs libfabric"),
                instance.as_ref().expect("pair needs instance"),
                imds.as_ref().expect("pair needs imds"),
            );
            Some(pair::run(root, req, lf, pair::node_id(root, inst, im), &opts.progress))
        }
        _ => None,
    };
    // Last, when no helper of ours is running: discovery would take one for a workload (it
    // maps libfabric).
    let processes = want(Needs::PROCESSES)
        .then(|| process::gather(root, &opts.pids, captured_process_libs.as_ref()));
    let mut facts = Facts {
        kernel,
        modules: modules.unwrap_or_default(),
        nvidia_driver: nvidia_driver.unwrap_or_default(),
        host: host.unwrap_or_default(),
        instance: instance.unwrap_or_default(),
        pci: pci.unwrap_or_default(),
        rdma: rdma.unwrap_or_default(),
        gpu: gpu.unwrap_or_default(),
        libfabric: libfabric.unwrap_or_default(),
        efa_stack: efa_stack.unwrap_or_default(),
        imds: imds.unwrap_or_default(),
        pair,
        probe: probe.unwrap_or_default(),
        processes,
        metrics: None,
        logs: None,
        not_gathered: Notes::new(),
    };
    for (group, name) in GROUPS {
        if !needs.contains(*group) {
            facts.not_gathered.insert((*name).into(), NOT_GATHERED.into());
        }
    }
    facts
}

/// Each group and its field name in [`Facts`] (and in JSON).
const GROUPS: &[(Needs, &str)] = &[
    (Needs::KERNEL, "kernel"),
    (Needs::MODULES, "modules"),
    (Needs::NVIDIA_DRIVER, "nvidia_driver"),
    (Needs::HOST, "host"),
    (Needs::INSTANCE, "instance"),
    (Needs::PCI, "pci"),
    (Needs::RDMA, "rdma"),
    (Needs::GPU, "gpu"),
    (Needs::LIBFABRIC, "libfabric"),
    (Needs::EFA_STACK, "efa_stack"),
    (Needs::IMDS, "imds"),
    (Needs::PAIR, "pair"),
    (Needs::PROBE, "probe"),
    (Needs::PROCESSES, "processes"),
    (Needs::METRICS, "metrics"),
    (Needs::LOGS, "logs"),
];

/// What [`gather_files`] reads: `None` for a group not asked for.
struct Files {
    modules: Option<kernel::ModulesFacts>,
    nvidia_driver: Option<kernel::NvidiaDriverFacts>,
    host: Option<host::HostFacts>,
    instance: Option<instance::InstanceFacts>,
    pci: Option<pci::PciFacts>,
    rdma: Option<rdma::RdmaFacts>,
    imds: Option<imds::ImdsFacts>,
}

/// The node's files, read on the calling thread while the native helpers run; IMDS is
/// asked on its own thread of `scope` as soon as the facts it decides on are read.
fn gather_files<'scope, 'env>(
    root: &'env Root,
    opts: &'env GatherOptions,
    needs: Needs,
    captured_imds: Option<imds::ImdsFacts>,
    release: Option<String>,
    scope: &'scope std::thread::Scope<'scope, 'env>,
) -> Files {
    let want = |n: Needs| needs.contains(n);
    let modules = want(Needs::MODULES).then(|| {
        let mut modules = kernel::gather_modules(root);
        modules.on_disk = kernel::modules_on_disk(root, release.as_deref(), &mut modules.notes);
        modules
    });
    let nvidia_driver = want(Needs::NVIDIA_DRIVER).then(|| kernel::gather_nvidia(root));
    let captured_live = if root.kind().is_live() {
        None
    } else {
        opts.manifest.as_ref().and_then(|m| m.live.as_ref())
    };
    let host = want(Needs::HOST).then(|| host::gather(root, captured_live));
    let instance = want(Needs::INSTANCE).then(|| instance::gather(root));
    let pci = want(Needs::PCI).then(|| pci::gather(root));
    let mut rdma = want(Needs::RDMA).then(|| rdma::gather(root));
    let asking = match (&captured_imds, want(Needs::IMDS)) {
        (None, true) => {
            let inst = instance.clone().expect("imds needs instance");
            let efa = rdma.as_ref().expect("imds needs rdma").has_efa();
            Some(scope.spawn(move || imds::gather(root, &inst, efa)))
        }
        _ => None,
    };
    if let Some(r) = rdma.as_mut() {
        let captured_sample = opts.manifest.as_ref().and_then(|m| m.counter_sample.clone());
        r.sample = match (opts.sample, captured_sample) {
            // A captured second reading (snapshot or fixture) stands for the interval it
            // covered.
            (_, Some(captured)) => Some(captured),
            (Some(interval), None) if want(Needs::SAMPLE) && r.devices.is_some() => {
                Some(rdma::sample(root, r, interval, &opts.progress))
            }
            _ => None,
        };
    }
    let asked = asking.map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)));
    let imds = if want(Needs::IMDS) { captured_imds.or(asked) } else { None };
    Files { modules, nvidia_driver, host, instance, pci, rdma, imds }
}
