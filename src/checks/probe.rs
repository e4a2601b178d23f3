//! `probe.mr`: can the NIC register GPU memory through the node's libfabric, and if not,
//! why (REFERENCE §4.3, §4.4). The measurement is `facts.probe`; this only judges it.

use super::{Check, Context, Needs};
use crate::facts::Facts;
use crate::native::NativeState;
use crate::native::probe::{CallError, GpuProbe, MrProbe, Registration};
use crate::verdict::{Evidence, Outcome};

const FI_EPERM: i32 = 1;
const FI_ENOMEM: i32 = 12;
const FI_EACCES: i32 = 13;
const FI_EFAULT: i32 = 14;
const FI_ENOSYS: i32 = 38;
const FI_EOPNOTSUPP: i32 = 95;
const CUDA_ERROR_NO_DEVICE: i32 = 100;

const FIX_12019: &str = "Update libfabric to 2.5.0 or newer (EFA installer 1.50.0 ships 2.6.0amzn1.0), whose efa provider registers CUDA memory through dma-buf (libfabric #12019, fixed by the dma-buf try/fallback rewrite). Until then, register with an explicit dma-buf fd (FI_MR_DMABUF).";
const FIX_NO_IMPORT: &str = "Give the EFA device a way to reach GPU memory: kernel >= 5.12 with the NVIDIA open kernel module (dma-buf), or the out-of-tree EFA driver with its NVIDIA P2P provider (kernel.gpudirect-path); run the workload privileged if the device nodes or memlock are restricted.";
const FIX_NO_HMEM: &str = "Use a libfabric built with CUDA support, as the EFA installer's (/opt/amazon/efa/lib) is: distribution packages (Debian/Ubuntu libfabric1) are built without it. Make sure the workload loads that libfabric (stack.libfabric-copies) and that libcuda.so.1 is on the loader path.";
const FIX_NO_P2P: &str = "Give the EFA device a peer-to-peer path to GPU memory: dma-buf (kernel >= 5.12, the NVIDIA open kernel module, FI_HMEM_CUDA_USE_DMABUF not 0) or the out-of-tree EFA driver's NVIDIA P2P provider (`device/p2p` reads NVIDIA; kernel.gpudirect-path), and unset FI_HMEM_DISABLE_P2P. Then check that the provider's start-up no longer logs `Failed to register CUDA buffer with the EFA device`.";
const FIX_MEMLOCK: &str = "Raise RLIMIT_MEMLOCK to unlimited where the workload runs (`ulimit -l unlimited`, LimitMEMLOCK=infinity, `--ulimit memlock=-1:-1`) or grant CAP_IPC_LOCK (host.memlock, process.memlock).";
const FIX_PRIVILEGES: &str = "Expose /dev/infiniband/uverbs* to the workload and give it CAP_IPC_LOCK (or run it privileged, as NVIDIA's Dynamo guide does for EFA pods) (host.privileges).";

pub struct MrProbeCheck;

impl Check for MrProbeCheck {
    fn id(&self) -> &'static str {
        "probe.mr"
    }

    fn needs(&self) -> Needs {
        // HOST: whether any EFA device is usable from here (see efa.devices).
        Needs::PROBE | Needs::HOST
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        judge(cx.facts)
    }
}

fn judge(f: &Facts) -> Vec<Outcome> {
    let p = &f.probe;
    let why = p.error.clone().unwrap_or_default();
    let log_ev = || -> Vec<Evidence> {
        p.log
            .iter()
            .filter(|l| l.contains("libfabric:") || l.contains("warn") || l.contains("error"))
            .take(6)
            .map(|l| Evidence::new("libfabric log (probe)").observed(l.clone()))
            .collect()
    };
    let r = match (p.state, &p.result) {
        (NativeState::NotRun, _) => return vec![Outcome::skip(why)],
        (NativeState::Timeout, _) => {
            return vec![Outcome::error(why.clone())
                .evidence(Evidence::new("efa-doctor __native probe-mr").observed(why))
                .with_evidence(log_ev())
                .remediation("A registration or CUDA call that never returns points at a wedged device or driver: check `dmesg` for efa/nvidia errors and gpu.memory-health.")];
        }
        (NativeState::Ok, Some(r)) => r,
        _ => {
            return vec![
                Outcome::error(format!("the probe failed: {why}"))
                    .evidence(Evidence::new("efa-doctor __native probe-mr").observed(why))
                    .with_evidence(log_ev()),
            ];
        }
    };
    let lib = format!(
        "{} (libfabric {}, API {})",
        r.lib,
        r.libfabric_version.as_deref().unwrap_or("?"),
        r.api_version.as_deref().unwrap_or("?")
    );
    if let Some(e) = &r.load_error {
        return vec![
            Outcome::error(format!("cannot load {}: {e}", r.lib))
                .evidence(Evidence::new(r.lib.clone()).observed(e.clone())),
        ];
    }
    // Without an EFA device the efa provider has nothing to open: efa.devices says so once.
    if r.provider == "efa" && (f.efa_absent() || f.efa_unreachable()) {
        let why = if f.efa_absent() { crate::facts::NO_EFA } else { crate::facts::NO_EFA_HERE };
        return vec![Outcome::skip(format!(
            "{why}; `--provider tcp` exercises the CUDA registration path without EFA"
        ))];
    }
    if r.hmem.is_none() || (r.entries.is_empty() && r.hmem == Some(false)) {
        let e = r.getinfo_error.as_ref();
        let text = e.map_or("no entry".to_string(), call_text);
        return vec![Outcome::error(format!("the {} provider of {lib} offers no RDM endpoint to register with: {text}", r.provider))
            .evidence(Evidence::new(lib.clone()).observed(text).expected(format!("an FI_EP_RDM entry of provider {}", r.provider)))
            .remediation("Probe a provider this libfabric has (`fi_info -l`; `--provider tcp` exercises the path without EFA), or see libfabric.efa-provider.")];
    }
    if let Some(e) = &r.cuda_error {
        let text = call_text(e);
        let o = if e.code == CUDA_ERROR_NO_DEVICE || e.call.starts_with("dlopen") {
            Outcome::skip(format!("no CUDA device to register: {text}"))
        } else {
            Outcome::error(format!("the CUDA driver failed before any registration: {text}"))
                .remediation("Check the NVIDIA driver (gpu.inventory, `nvidia-smi`): the probe needs a working CUDA driver.")
        };
        return vec![o.evidence(Evidence::new("libcuda.so.1").observed(text))];
    }
    if r.gpus.is_empty() && r.skipped.is_empty() {
        return vec![Outcome::skip(format!(
            "the CUDA driver reports {} device(s): nothing to register",
            r.cuda_devices.unwrap_or(0)
        ))];
    }
    let log = log_ev();
    let mut out: Vec<Outcome> =
        r.gpus.iter().map(|g| gpu_outcome(r, g, &lib).with_evidence(log.clone())).collect();
    out.extend(
        r.skipped.iter().map(|(n, why)| Outcome::skip(format!("GPU {n} not probed: {why}"))),
    );
    out
}

fn call_text(e: &CallError) -> String {
    if e.call.starts_with("dlopen") {
        return format!("{}: {}", e.call, e.text);
    }
    format!("{} returned {} ({})", e.call, e.code, e.text)
}

fn reg_text(r: &Registration) -> String {
    match (&r.skipped, r.ret) {
        (Some(why), _) => format!("not attempted: {why}"),
        (_, Some(0)) => "registered".into(),
        (_, Some(code)) => format!("{code} ({})", r.error.as_deref().unwrap_or("?")),
        _ => "not attempted".into(),
    }
}

/// The verdict for one GPU: value, status and summary, remediation.
pub(crate) fn classify(r: &MrProbe, g: &GpuProbe) -> (&'static str, Outcome) {
    let who = format!(
        "GPU {}{}",
        g.ordinal,
        g.name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
    );
    if let Some(e) = &g.cuda_error {
        return ("cuda-error", Outcome::error(format!("{who}: {}", call_text(e))).remediation("Check the GPU with nvidia-smi (gpu.inventory, gpu.memory-health): the probe could not allocate device memory."));
    }
    let errno_outcome = |code: i32, what: &str| -> Option<(&'static str, Outcome)> {
        match -code {
            FI_ENOMEM => Some((
                "memlock",
                Outcome::fail(format!(
                    "{who}: {what} failed with ENOMEM: the memlock limit is too low to pin memory"
                ))
                .remediation(FIX_MEMLOCK),
            )),
            FI_EPERM | FI_EACCES => Some((
                "privileges",
                Outcome::fail(format!(
                    "{who}: {what} was refused ({}): missing privileges",
                    if -code == FI_EPERM { "EPERM" } else { "EACCES" }
                ))
                .remediation(FIX_PRIVILEGES),
            )),
            _ => None,
        }
    };
    if let Some(e) = &g.domain_error {
        if let Some(v) = errno_outcome(e.code, "opening the domain") {
            return v;
        }
        return (
            "domain-error",
            Outcome::error(format!(
                "{who}: could not open a {} domain: {}",
                r.provider,
                call_text(e)
            )),
        );
    }
    if let Some(code) = g.host.failed_with() {
        if let Some(v) = errno_outcome(code, "registering host memory") {
            return v;
        }
        return (
            "host-failed",
            Outcome::fail(format!("{who}: the {} provider cannot register even host memory: {}", r.provider, reg_text(&g.host)))
                .remediation("The provider's registrations fail regardless of GPU memory: check the device (efa.errors reg_mr_err), memlock and privileges."),
        );
    }
    if r.hmem == Some(false) {
        return (
            "no-hmem",
            Outcome::fail(format!(
                "{who}: libfabric {}'s {} provider offers no FI_HMEM, so CUDA memory cannot be registered as such: NIXL falls back to registering GPU memory as host memory",
                r.libfabric_version.as_deref().unwrap_or("?"),
                r.provider
            ))
            .remediation(FIX_NO_HMEM),
        );
    }
    let implicit = g.implicit.failed_with();
    let dmabuf_ok = g.dmabuf.ok();
    // The efa provider's RDM path, without P2P, skips ibv_reg_mr for CUDA memory and
    // returns success with a key of its own (>= 2^32, wider than the device's 4-byte
    // keys); it then moves that memory with CUDA copies through host memory, and refuses
    // FI_OPT_CUDA_API_PERMITTED=false.
    let software_key =
        g.implicit_key.zip(g.mr_key_size).is_some_and(|(k, n)| n < 8 && k >> (8 * n) != 0);
    let needs_cuda_copies = g.no_cuda_api.failed_with() == Some(-FI_EOPNOTSUPP);
    if g.implicit.ok() && (software_key || needs_cuda_copies) {
        let mut why = Vec::new();
        if software_key {
            why.push(format!(
                "the provider gave it key 0x{:x}, wider than the domain's {}-byte keys (no device registration)",
                g.implicit_key.unwrap_or(0),
                g.mr_key_size.unwrap_or(0)
            ));
        }
        if needs_cuda_copies {
            why.push("fi_setopt(FI_OPT_CUDA_API_PERMITTED=false) is refused (EOPNOTSUPP): the provider can move this memory only with CUDA copies".into());
        }
        return (
            "no-p2p",
            Outcome::fail(format!(
                "{who}: CUDA registration through the {} provider succeeded without GPUDirect: {}. Transfers from GPU memory are staged through host memory",
                r.provider,
                why.join("; ")
            ))
            .remediation(FIX_NO_P2P),
        );
    }
    match implicit.map(|c| -c) {
        None if g.implicit.ok() => {
            let how = if dmabuf_ok { "; an explicit dma-buf registration works too" } else { "" };
            ("ok", Outcome::pass(format!("{who}: CUDA memory registers through the {} provider{how}", r.provider)))
        }
        None => ("not-attempted", Outcome::skip(format!("{who}: {}", reg_text(&g.implicit)))),
        Some(FI_EFAULT) if dmabuf_ok => (
            "efault-12019",
            Outcome::fail(format!(
                "{who}: implicit CUDA registration fails with EFAULT while an explicit dma-buf registration works: libfabric {} registers CUDA memory with ibv_reg_mr instead of dma-buf (libfabric #12019, the GB200 bug)",
                r.libfabric_version.as_deref().unwrap_or("?")
            ))
            .remediation(FIX_12019),
        ),
        Some(FI_EFAULT) => (
            "efault",
            Outcome::fail(format!(
                "{who}: CUDA registration fails with EFAULT{}: the EFA device cannot import this GPU memory (no dma-buf import and no peer-memory path)",
                if g.dmabuf.failed_with() == Some(-FI_EFAULT) { ", and so does the explicit dma-buf one" } else { "" }
            ))
            .remediation(FIX_NO_IMPORT),
        ),
        Some(FI_EOPNOTSUPP) => (
            "eopnotsupp",
            Outcome::fail(format!(
                "{who}: CUDA registration is not supported (EOPNOTSUPP): the dma-buf export failed without a fallback{}",
                if g.dmabuf_supported == Some(false) { " (the GPU reports no dma-buf support)" } else { "" }
            ))
            .remediation("dma-buf needs kernel >= 5.12, the NVIDIA open kernel module and a current CUDA context on the registering thread (NIXL sets one); check kernel.gpudirect-path and the provider's message below."),
        ),
        Some(FI_ENOSYS) => (
            "hmem-uninitialised",
            Outcome::fail(format!("{who}: libfabric's CUDA support is not initialised (ENOSYS): it was built without CUDA or could not load libcuda.so.1 itself"))
                .remediation(FIX_NO_HMEM),
        ),
        Some(code) => match errno_outcome(-code, "registering CUDA memory") {
            Some(v) => v,
            None => (
                "other",
                Outcome::fail(format!("{who}: CUDA registration fails: {}", reg_text(&g.implicit)))
                    .remediation("Read the provider's own message below; REFERENCE §4.3 lists the known causes."),
            ),
        },
    }
}

fn gpu_outcome(r: &MrProbe, g: &GpuProbe, lib: &str) -> Outcome {
    let (value, o) = classify(r, g);
    let dev = |b: Option<bool>| b.map_or("unknown", |b| if b { "yes" } else { "no" });
    let mut ev = vec![
        Evidence::new(lib.to_string()).observed(format!(
            "provider {}, domain {}, FI_HMEM {}",
            r.provider,
            g.domain.as_deref().unwrap_or("none"),
            dev(r.hmem)
        )),
        Evidence::new(format!("CUDA device {}", g.ordinal)).observed(format!(
            "{} at {}: memory type {}, dma-buf supported {}, GPUDirect RDMA supported {}, dma-buf export {}",
            g.name.as_deref().unwrap_or("?"),
            g.pci_bus_id.as_deref().unwrap_or("?"),
            g.memory_type.as_deref().unwrap_or("?"),
            dev(g.dmabuf_supported),
            dev(g.gdr_supported),
            g.dmabuf_export.clone().or_else(|| g.dmabuf_error.as_ref().map(call_text)).unwrap_or_else(|| "?".into())
        )),
    ];
    for (what, reg) in [
        ("host memory (control)", &g.host),
        ("FI_HMEM_CUDA (implicit, as NIXL)", &g.implicit),
        ("FI_MR_DMABUF (explicit fd)", &g.dmabuf),
    ] {
        let key = match (what.starts_with("FI_HMEM_CUDA"), g.implicit_key) {
            (true, Some(k)) => format!(
                ", key 0x{k:x} (domain mr_key_size {})",
                g.mr_key_size.map_or("?".into(), |n| n.to_string())
            ),
            _ => String::new(),
        };
        ev.push(
            Evidence::new(format!("fi_mr_regattr {what}"))
                .observed(format!("{}{key}", reg_text(reg))),
        );
    }
    ev.push(
        Evidence::new("fi_setopt FI_OPT_CUDA_API_PERMITTED=false (as aws-ofi-nccl)")
            .observed(if g.no_cuda_api.ok() { "accepted".into() } else { reg_text(&g.no_cuda_api) })
            .expected("accepted: the NIC reaches GPU memory without CUDA copies"),
    );
    o.with_evidence(ev).value(value).details(serde_json::to_value(g).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Status;

    fn reg(ret: i32) -> Registration {
        Registration { ret: Some(ret), error: (ret != 0).then(|| "x".into()), skipped: None }
    }

    fn probe(hmem: bool) -> MrProbe {
        MrProbe {
            provider: "efa".into(),
            hmem: Some(hmem),
            libfabric_version: Some("2.4.0amzn3.0".into()),
            ..MrProbe::default()
        }
    }

    fn gpu(host: i32, implicit: i32, dmabuf: i32) -> GpuProbe {
        GpuProbe {
            ordinal: 0,
            host: reg(host),
            implicit: reg(implicit),
            dmabuf: reg(dmabuf),
            ..GpuProbe::default()
        }
    }

    /// The table of REFERENCE §4.3/§4.4 as pure logic; tests/probe.rs drives the same cases
    /// through a real libfabric.
    #[test]
    fn classification_table() {
        // (provider has FI_HMEM, (host, implicit, dma-buf) return codes, value, status)
        type Case = (bool, (i32, i32, i32), &'static str, Status);
        let cases: [Case; 10] = [
            (true, (0, 0, 0), "ok", Status::Pass),
            (true, (0, -14, 0), "efault-12019", Status::Fail),
            (true, (0, -14, -14), "efault", Status::Fail),
            (true, (0, -95, 0), "eopnotsupp", Status::Fail),
            (true, (0, -38, 0), "hmem-uninitialised", Status::Fail),
            (true, (0, -12, 0), "memlock", Status::Fail),
            (true, (0, -13, 0), "privileges", Status::Fail),
            (true, (-12, 0, 0), "memlock", Status::Fail),
            (true, (-5, 0, 0), "host-failed", Status::Fail),
            (false, (0, 0, 0), "no-hmem", Status::Fail),
        ];
        for (hmem, (h, i, d), value, status) in cases {
            let (v, o) = classify(&probe(hmem), &gpu(h, i, d));
            assert_eq!((v, o.status), (value, status), "{hmem} {h} {i} {d}: {}", o.summary);
            if status == Status::Fail {
                assert!(o.remediation.as_deref().is_some_and(|r| r.len() > 30), "{value}");
            }
        }
    }

    /// Issue 15 item 1: the efa provider's no-P2P fallback "succeeds" (libfabric v2.6.0
    /// prov/efa/src/rdm/efa_rdm_mr.c: no ibv_reg_mr, key from NON_P2P_MR_KEYGEN_INIT =
    /// 2^32); either sign alone is the failure it is.
    #[test]
    fn registration_without_p2p_is_a_failure() {
        let device_key =
            GpuProbe { implicit_key: Some(0x1234), mr_key_size: Some(4), ..gpu(0, 0, 0) };
        assert_eq!(classify(&probe(true), &device_key).0, "ok");
        let soft_key =
            GpuProbe { implicit_key: Some(1 << 32), mr_key_size: Some(4), ..gpu(0, 0, 0) };
        let (v, o) = classify(&probe(true), &soft_key);
        assert_eq!((v, o.status), ("no-p2p", Status::Fail), "{}", o.summary);
        assert!(
            o.summary.contains("without GPUDirect") && o.summary.contains("0x100000000"),
            "{}",
            o.summary
        );
        let refused = GpuProbe { no_cuda_api: reg(-95), ..gpu(0, 0, 0) };
        let (v, o) = classify(&probe(true), &refused);
        assert_eq!((v, o.status), ("no-p2p", Status::Fail), "{}", o.summary);
        assert!(o.summary.contains("FI_OPT_CUDA_API_PERMITTED"), "{}", o.summary);
        // A provider without the option (libfabric < 1.18: ENOPROTOOPT) proves nothing.
        let unknown = GpuProbe {
            no_cuda_api: reg(-92),
            implicit_key: Some(7),
            mr_key_size: Some(8),
            ..gpu(0, 0, 0)
        };
        assert_eq!(classify(&probe(true), &unknown).0, "ok");
    }
}
