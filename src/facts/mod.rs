//! Gathering: everything read from the node becomes typed, serialisable facts.
//!
//! Checks are pure functions of these facts. A fact the root cannot give is `None` (shown as
//! `null` in JSON) with the reason in the group's `notes`; it is never filled in from the
//! machine doing the analysis.

pub mod host;
pub mod instance;
pub mod kernel;
pub mod pci;
pub mod rdma;

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
}

/// What the gatherers may do beyond reading files.
#[derive(Debug, Clone, Default)]
pub struct GatherOptions {
    /// Manifest of a snapshot or captured tree, when the root has one: it carries the facts
    /// a file tree cannot (page size, architecture, native-library results).
    pub manifest: Option<crate::snapshot::Manifest>,
    /// `--sample`: take a second counter reading after this long.
    pub sample: Option<std::time::Duration>,
}

/// Reads every fact from `root`.
pub fn gather(root: &Root, opts: &GatherOptions) -> Facts {
    let kernel = kernel::gather_kernel(root, opts.manifest.as_ref());
    let modules = kernel::gather_modules(root);
    let nvidia_driver = kernel::gather_nvidia(root);
    let host = host::gather(root);
    let instance = instance::gather(root);
    let pci = pci::gather(root);
    let mut rdma = rdma::gather(root);
    rdma.sample = match (
        opts.sample,
        opts.manifest
            .as_ref()
            .and_then(|m| m.counter_sample.clone()),
    ) {
        // A captured second reading (snapshot or fixture) stands for the interval it covered.
        (_, Some(captured)) => Some(captured),
        (Some(interval), None) if rdma.devices.is_some() => {
            Some(rdma::sample(root, &rdma, interval))
        }
        _ => None,
    };
    Facts {
        kernel,
        modules,
        nvidia_driver,
        host,
        instance,
        pci,
        rdma,
    }
}
