//! The live memory-registration probe (`efa-doctor probe mr`, and part of `check` on nodes
//! with an efa provider and GPUs): run in the native helper under a deadline, with
//! libfabric's own warnings captured as evidence.

use std::collections::BTreeMap;
use std::time::Duration;

use super::gpu::GpuFacts;
use super::libfabric::LibfabricFacts;
use super::pci::PciFacts;
use super::rdma::RdmaFacts;
use super::topology;
use crate::native::probe::MrProbe;
use crate::native::{self, NativeRun};
use crate::root::Root;

/// Loading libfabric and libcuda, opening a domain and three registrations.
pub const PROBE_DEADLINE: Duration = Duration::from_secs(30);
/// Added per GPU: a context, an allocation and its registrations.
pub const PROBE_DEADLINE_PER_GPU: Duration = Duration::from_secs(10);

/// What the user asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeRequest {
    /// `check`: probe when the node has an efa provider and GPUs.
    Auto,
    /// `probe mr`: this provider, these GPUs (all when empty).
    Explicit { provider: String, gpus: Vec<u32>, deadline: Option<Duration> },
    /// `--no-probe`, or a caller that never probes.
    Off(String),
}

impl Default for ProbeRequest {
    fn default() -> Self {
        ProbeRequest::Off("not requested".into())
    }
}

/// The probe's measurement. Its log holds libfabric's and the CUDA driver's own lines
/// (FI_LOG_LEVEL=warn unless the caller set another level).
pub type ProbeFacts = NativeRun<MrProbe>;

/// Free device memory below which a GPU is not probed: a CUDA context needs a few hundred
/// MiB.
const MIN_FREE_BYTES: u64 = 1 << 30;

/// `<ibdev>-rdm` of the EFA device NIXL would give each GPU, keyed by GPU PCI address.
fn nearest_domains(pci: &PciFacts, rdma: &RdmaFacts) -> BTreeMap<String, String> {
    let by_bdf: BTreeMap<&str, &str> =
        rdma.efa().filter_map(|d| d.bdf.as_deref().map(|b| (b, d.name.as_str()))).collect();
    topology::build(pci)
        .affinity
        .iter()
        .filter_map(|a| {
            let efa = a.efa.first()?;
            Some((a.gpu.clone(), format!("{}-rdm", by_bdf.get(efa.as_str())?)))
        })
        .collect()
}

/// The facts the probe needs, gathered already.
pub struct ProbeInputs<'a> {
    pub libfabric: &'a LibfabricFacts,
    pub gpu: &'a GpuFacts,
    pub pci: &'a PciFacts,
    pub rdma: &'a RdmaFacts,
    /// Where the probe's run is shown.
    pub progress: &'a super::progress::Progress,
}

/// Why a GPU is left alone: a workload holds it exclusively, or it has no room for a CUDA
/// context.
fn busy(g: &crate::native::nvml::Gpu) -> Option<String> {
    match (g.compute_mode.as_deref(), g.memory_free) {
        (Some("exclusive_process" | "exclusive_thread"), _) => Some(
            "NVML shows it in exclusive-process compute mode: a second CUDA context would fail, or take the workload's".into(),
        ),
        (Some("prohibited"), _) => {
            Some("NVML shows its compute mode as prohibited: no CUDA context can be created".into())
        }
        (_, Some(free)) if free < MIN_FREE_BYTES => Some(format!(
            "NVML shows {} MiB free: too little for a CUDA context and the probe's buffer",
            free >> 20
        )),
        _ => None,
    }
}

/// Runs the probe when the request and the node allow it.
pub fn gather(root: &Root, request: &ProbeRequest, inputs: &ProbeInputs<'_>) -> ProbeFacts {
    if let ProbeRequest::Off(why) = request {
        return ProbeFacts::not_run(why.clone());
    }
    let Some(site) = native::Site::of(root) else {
        return ProbeFacts::not_run(
            "the probe registers memory on the live node only (or from inside a mounted node root); this root is neither",
        );
    };
    let lf = inputs.libfabric;
    let lib = match lf.loadable(root, &site) {
        Ok(l) => l,
        Err(why) => return ProbeFacts::not_run(why),
    };
    let (provider, mut gpus, deadline) = match request {
        ProbeRequest::Explicit { provider, gpus, deadline } => {
            (provider.clone(), gpus.clone(), *deadline)
        }
        _ => {
            if lf.efa_entries().next().is_none() {
                return ProbeFacts::not_run(
                    "this libfabric lists no efa provider: nothing to register through (see libfabric.efa-provider)",
                );
            }
            if inputs.gpu.gpus.is_empty() {
                return ProbeFacts::not_run(format!(
                    "no GPU found through NVML ({})",
                    inputs.gpu.error.as_deref().unwrap_or("see gpu.inventory")
                ));
            }
            ("efa".to_string(), Vec::new(), None)
        }
    };
    if gpus.is_empty() {
        gpus = inputs.gpu.gpus.iter().map(|g| g.index).collect();
    }
    // The probe creates a CUDA context on each GPU it registers memory of (a few hundred
    // MiB of device memory while it runs): on a busy node it leaves alone the GPUs a
    // workload holds exclusively and those without room.
    let mut skipped: Vec<(u32, String)> = Vec::new();
    gpus.retain(|n| {
        let Some(why) = inputs.gpu.gpus.iter().find(|g| g.index == *n).and_then(busy) else {
            return true;
        };
        skipped.push((*n, why));
        false
    });
    if gpus.is_empty() && !skipped.is_empty() {
        let list: Vec<String> = skipped.iter().map(|(n, w)| format!("GPU {n}: {w}")).collect();
        return ProbeFacts::not_run(format!(
            "every GPU is busy, none was probed ({})",
            list.join("; ")
        ));
    }
    let domains = nearest_domains(inputs.pci, inputs.rdma);
    let efa = provider == "efa";
    let mut args: Vec<String> =
        vec!["probe-mr".into(), "--lib".into(), lib, "--provider".into(), provider];
    for n in &gpus {
        let bdf =
            inputs.gpu.gpus.iter().find(|g| g.index == *n).and_then(|g| g.pci_bus_id.as_deref());
        let arg = match bdf.and_then(|b| domains.get(b)) {
            Some(d) if efa => format!("{n}:{d}"),
            _ => n.to_string(),
        };
        args.extend(["--gpu".into(), arg]);
    }
    for (n, why) in &skipped {
        args.extend(["--skip-gpu".into(), format!("{n}:{why}")]);
    }
    let mut env: Vec<(String, String)> = vec![("CUDA_DEVICE_ORDER".into(), "PCI_BUS_ID".into())];
    if std::env::var_os("FI_LOG_LEVEL").is_none() {
        env.push(("FI_LOG_LEVEL".into(), "warn".into()));
    }
    let deadline =
        deadline.unwrap_or(PROBE_DEADLINE + PROBE_DEADLINE_PER_GPU * gpus.len().max(1) as u32);
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let arg_ref: Vec<&str> = args.iter().map(String::as_str).collect();
    // Without NVML's list the helper probes every GPU CUDA finds: their number is unknown.
    let on = match gpus.len() {
        0 => String::new(),
        1 => " on 1 GPU".into(),
        n => format!(" on {n} GPUs"),
    };
    let what = format!("efa-doctor: probe.mr, registering GPU memory{on}");
    inputs.progress.during(&what, Some(deadline), || {
        native::run_json(&site, &arg_ref, &env_ref, deadline, "the probe did not finish")
    })
}

#[cfg(test)]
mod busy_tests {
    use super::*;
    use crate::native::nvml::Gpu;

    #[test]
    fn busy_gpus_are_left_alone() {
        let g = |mode: &str, free: u64| Gpu {
            compute_mode: Some(mode.into()),
            memory_free: Some(free),
            ..Gpu::default()
        };
        assert!(busy(&g("default", 80 << 30)).is_none());
        assert!(busy(&g("exclusive_process", 80 << 30)).unwrap().contains("exclusive-process"));
        assert!(busy(&g("prohibited", 80 << 30)).is_some());
        assert!(busy(&g("default", 100 << 20)).unwrap().contains("100 MiB free"));
        // Unknown (an older NVML, a replayed capture) is not busy.
        assert!(busy(&Gpu::default()).is_none());
    }
}
