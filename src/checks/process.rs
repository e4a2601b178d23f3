//! Running workloads: the NIXL backend a worker really uses, whether the memory it
//! registered is GPU memory, its libfabric copies, its EFA environment and memlock limit, and
//! its transfer metrics.

use super::{Check, Context, Needs, human_bytes};
use crate::facts::Facts;
use crate::facts::process::{ProcessFacts, RegionClass};
use crate::parse::Version;
use crate::verdict::{Evidence, Outcome};

/// Runs `judge` on every inspected process, or explains why there is none.
fn per_process(f: &Facts, judge: impl Fn(&ProcessFacts) -> Option<Outcome>) -> Vec<Outcome> {
    let Some(ps) = &f.processes else {
        return vec![Outcome::skip("no process inspected")];
    };
    if ps.processes.is_empty() {
        let why = if ps.selection == "--pid" {
            format!(
                "none of the given processes exists in this root ({})",
                ps.notes.values().cloned().collect::<Vec<_>>().join("; ")
            )
        } else {
            "no inference or training worker found (vllm, sglang, trtllm, dynamo, or a process with libnixl, libnccl or libfabric mapped); pass --pid PID".into()
        };
        return vec![Outcome::skip(why)];
    }
    let mut out: Vec<Outcome> = ps.processes.iter().filter_map(&judge).collect();
    if out.is_empty() {
        out.push(Outcome::skip("nothing to judge in the inspected processes"));
    }
    if ps.not_inspected() > 0 {
        out.push(Outcome::skip(format!(
            "{} more workers were found but not inspected: discovery stops at {} of {} (pass --pid to choose)",
            ps.not_inspected(),
            ps.processes.len(),
            ps.discovered
        )));
    }
    out
}

fn who(p: &ProcessFacts) -> String {
    let name = p.framework.clone().or_else(|| p.comm.clone()).unwrap_or_else(|| "process".into());
    format!("{name} (pid {})", p.pid)
}

fn unreadable(p: &ProcessFacts, file: &str) -> Option<Outcome> {
    p.unreadable
        .get(file)
        .map(|e| Outcome::skip(format!("{}: cannot read /proc/{}/{file}: {e}", who(p), p.pid)))
}

/// The backend a framework was configured with, and where that was read.
fn configured_backend(p: &ProcessFacts) -> Option<(String, String)> {
    // vLLM: --kv-transfer-config '{"kv_connector":"NixlConnector", ..., "kv_connector_extra_config":{"backends":[...]}}'
    let args = &p.cmdline;
    let json = args.iter().enumerate().find_map(|(i, a)| {
        if a == "--kv-transfer-config" {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix("--kv-transfer-config=").map(String::from)
        }
    });
    if let Some(j) = json {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&j) {
            if v["kv_connector"].as_str().is_some_and(|c| c.contains("Nixl")) {
                let backends = v["kv_connector_extra_config"]["backends"]
                    .as_array()
                    .map(|b| b.iter().filter_map(|x| x.as_str()).collect::<Vec<_>>().join(","));
                return Some(match backends {
                    Some(b) if !b.is_empty() => (b.to_ascii_uppercase(), "--kv-transfer-config kv_connector_extra_config.backends".into()),
                    _ => ("UCX".into(), "--kv-transfer-config without kv_connector_extra_config.backends (vLLM's default is UCX)".into()),
                });
            }
        }
    }
    for (var, label) in [
        ("SGLANG_DISAGGREGATION_NIXL_BACKEND", "SGLANG_DISAGGREGATION_NIXL_BACKEND"),
        ("TRTLLM_NIXL_KVCACHE_BACKEND", "TRTLLM_NIXL_KVCACHE_BACKEND"),
    ] {
        if let Some(v) = p.env.get(var) {
            return Some((v.to_ascii_uppercase(), label.into()));
        }
    }
    if let Some(v) = p.env.get("DYN_KVBM_NIXL_BACKEND_LIBFABRIC") {
        let on = matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on");
        return Some((
            if on { "LIBFABRIC" } else { "UCX" }.into(),
            "DYN_KVBM_NIXL_BACKEND_LIBFABRIC".into(),
        ));
    }
    None
}

/// How to select LIBFABRIC, for the framework this process runs.
fn backend_fix(p: &ProcessFacts) -> String {
    match p.framework.as_deref() {
        Some("vllm") => "vLLM: add `\"kv_connector_extra_config\":{\"backends\":[\"LIBFABRIC\"]}` to --kv-transfer-config (vLLM ignores NIXL_* backend variables).".into(),
        Some("sglang") => "SGLang: set SGLANG_DISAGGREGATION_NIXL_BACKEND=LIBFABRIC in the worker's environment.".into(),
        Some("trtllm") => "TensorRT-LLM: set TRTLLM_NIXL_KVCACHE_BACKEND=LIBFABRIC.".into(),
        Some("dynamo") => "Dynamo: select LIBFABRIC for the engine (see above per framework); for KVBM set DYN_KVBM_NIXL_BACKEND_LIBFABRIC=true.".into(),
        _ => "Create the NIXL agent with backends=[\"LIBFABRIC\"] (nixl_agent_config), or set the framework's backend option (vLLM kv_connector_extra_config.backends, SGLANG_DISAGGREGATION_NIXL_BACKEND, TRTLLM_NIXL_KVCACHE_BACKEND, DYN_KVBM_NIXL_BACKEND_LIBFABRIC).".into(),
    }
}

pub struct NixlBackend;

impl Check for NixlBackend {
    fn id(&self) -> &'static str {
        "process.nixl-backend"
    }

    fn needs(&self) -> Needs {
        Needs::PROCESSES | Needs::RDMA
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        let f = cx.facts;
        per_process(f, |p| nixl_backend(f, p))
    }
}

fn nixl_backend(f: &Facts, p: &ProcessFacts) -> Option<Outcome> {
    if let Some(o) = unreadable(p, "maps") {
        return Some(o);
    }
    let configured = configured_backend(p);
    let nixl = p.has_lib("libnixl");
    if !nixl && configured.is_none() {
        return None; // not a NIXL process (e.g. an NCCL trainer)
    }
    let mut ev: Vec<Evidence> = p
        .lib("libplugin_")
        .map(|l| {
            Evidence::new(format!("proc/{}/maps", p.pid)).observed(format!(
                "{} {}",
                l.path,
                if l.executable { "r-xp (executed)" } else { "mapped without r-xp (opened only)" }
            ))
        })
        .collect();
    if ev.is_empty() {
        let nixl_paths: Vec<&str> = p.lib("libnixl").map(|l| l.path.as_str()).collect();
        ev.push(
            Evidence::new(format!("proc/{}/maps", p.pid))
                .observed(format!(
                    "no libplugin_*.so mapped; {}",
                    if nixl_paths.is_empty() { "no libnixl".into() } else { nixl_paths.join(", ") }
                ))
                .expected("libplugin_LIBFABRIC.so with an r-xp mapping"),
        );
    }
    if let Some((b, src)) = &configured {
        ev.push(Evidence::new(src.clone()).observed(b.clone()));
    }
    let lf: Vec<_> = p.lib("libplugin_LIBFABRIC").collect();
    let ucx: Vec<_> = p.lib("libplugin_UCX").collect();
    let lf_exec = lf.iter().any(|l| l.executable);
    let ucx_exec = ucx.iter().any(|l| l.executable);
    let efa = f.rdma.has_efa();
    let o = if lf_exec {
        Outcome::pass(format!("{} runs NIXL's LIBFABRIC plugin (executable mapping)", who(p)))
            .value("LIBFABRIC")
    } else if !lf.is_empty() {
        Outcome::fail(format!(
            "{}: libplugin_LIBFABRIC.so is mapped but was never executed (no r-xp mapping): the configuration did not apply and NIXL chose {}",
            who(p),
            if ucx_exec { "UCX" } else { "another backend" }
        ))
        .remediation(backend_fix(p))
        .value(if ucx_exec { "UCX" } else { "none" })
    } else if ucx_exec && efa {
        let cfg = configured
            .as_ref()
            .map(|(b, s)| format!(" (configured: {b} via {s})"))
            .unwrap_or_default();
        Outcome::fail(format!(
            "{} moves KV cache with NIXL's UCX backend on an EFA node{cfg}: transfers bypass EFA",
            who(p)
        ))
        .remediation(backend_fix(p))
        .value("UCX")
    } else if ucx_exec {
        Outcome::pass(format!("{} runs NIXL's UCX backend (no EFA device on this node)", who(p)))
            .value("UCX")
    } else if let Some((b, src)) = &configured {
        let status_ok = b.contains("LIBFABRIC") || !efa;
        let o = Outcome::new(
            if status_ok { crate::verdict::Status::Pass } else { crate::verdict::Status::Fail },
            format!(
                "{}: configured backend {b} ({src}); no NIXL backend plugin is mapped yet",
                who(p)
            ),
        )
        .value(b.clone());
        if status_ok { o } else { o.remediation(backend_fix(p)) }
    } else {
        Outcome::warn(format!(
            "{}: NIXL is loaded but no backend plugin is mapped: no agent exists yet, or every configured plugin failed to load",
            who(p)
        ))
        .remediation("If the worker is already serving, NIXL has no backend: read its log (efa-doctor logs FILE, nixl.backend-init) for `Failed to load plugin`, and see stack.nixl for a LIBFABRIC plugin that needs a newer libfabric.")
    };
    Some(o.with_evidence(ev))
}

/// Registrations this large in host memory are KV caches bounced through the CPU, not the
/// small bounce buffers libfabric and NIXL register for themselves.
const HOST_KV_BYTES: u64 = 64 * 1024 * 1024;

pub struct RegisteredMemory;

impl Check for RegisteredMemory {
    fn id(&self) -> &'static str {
        "process.registered-memory"
    }

    fn needs(&self) -> Needs {
        Needs::PROCESSES | Needs::LOGS
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        per_process(cx.facts, registered_memory)
    }
}

fn registered_memory(p: &ProcessFacts) -> Option<Outcome> {
    if let Some(o) = unreadable(p, "maps") {
        return Some(o);
    }
    if p.regions.is_empty() {
        return Some(Outcome::skip(format!(
            "{}: no registered address to classify (pass --log with FI_LOG_LEVEL=info output, or --addr ADDR[:SIZE])",
            who(p)
        )));
    }
    let details = serde_json::json!({
        "pid": p.pid,
        "regions": p.regions.iter().map(|r| serde_json::json!({"address": r.address, "size": r.size, "class": r.class, "vma": r.vma, "source": r.source})).collect::<Vec<_>>(),
    });
    let ev: Vec<Evidence> = p
        .regions
        .iter()
        .take(6)
        .map(|r| {
            Evidence::new(format!("proc/{}/maps", p.pid))
                .observed(format!(
                    "{} ({}) → {} in `{}`",
                    r.address,
                    r.size.map_or("size unknown".into(), human_bytes),
                    serde_json::to_value(r.class)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default(),
                    r.vma.as_deref().unwrap_or("no mapping")
                ))
                .expected("device (inside a CUDA ---p reservation)")
        })
        .collect();
    let count = |c: RegionClass| p.regions.iter().filter(|r| r.class == c).count();
    let (dev, host, unmapped) =
        (count(RegionClass::Device), count(RegionClass::Host), count(RegionClass::Unmapped));
    let big_host: Vec<_> = p
        .regions
        .iter()
        .filter(|r| r.class == RegionClass::Host && r.size.is_none_or(|s| s >= HOST_KV_BYTES))
        .collect();
    let summary =
        format!("{}: {dev} device, {host} host, {unmapped} unmapped registration(s)", who(p));
    let o = if !big_host.is_empty() {
        Outcome::fail(format!(
            "{summary}: {} KV-cache-sized registration(s) in host memory, so the NIC reads through the CPU (no GPUDirect)",
            big_host.len()
        ))
        .remediation("Keep the KV cache in GPU memory (vLLM `\"kv_buffer_device\":\"cuda\"`; no host buffer) and give EFA a GPU memory path (kernel.gpudirect-path, libfabric with FI_HMEM, probe.mr): NIXL falls back to registering host memory when the provider lacks FI_HMEM.")
    } else if dev == 0 && unmapped > 0 {
        Outcome::warn(format!("{summary}: the addresses are not in this process (another process, or freed)"))
            .remediation("Take the addresses from this worker's own log (FI_LOG_LEVEL=info prints `Registered memory at ...`), or pass --pid for the process that registered them.")
    } else {
        Outcome::pass(format!("{summary}: GPU memory is registered directly"))
    };
    Some(o.with_evidence(ev).details(details).value(if big_host.is_empty() {
        "device"
    } else {
        "host"
    }))
}

pub struct LibfabricCopies;

impl Check for LibfabricCopies {
    fn id(&self) -> &'static str {
        "process.libfabric-copies"
    }

    fn needs(&self) -> Needs {
        Needs::PROCESSES | Needs::EFA_STACK
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        let f = cx.facts;
        per_process(f, |p| libfabric_copies(f, p))
    }
}

fn libfabric_copies(f: &Facts, p: &ProcessFacts) -> Option<Outcome> {
    if let Some(o) = unreadable(p, "maps") {
        return Some(o);
    }
    let copies: Vec<&str> = p.lib("libfabric").map(|l| l.path.as_str()).collect();
    if copies.is_empty() {
        return None;
    }
    let ev: Vec<Evidence> = copies
        .iter()
        .map(|c| Evidence::new(format!("proc/{}/maps", p.pid)).observed(c.to_string()))
        .collect();
    if copies.len() > 1 {
        return Some(
            Outcome::fail(format!("{} maps {} different libfabric libraries: two ABIs in one process", who(p), copies.len()))
                .with_evidence(ev)
                .remediation("Make every consumer (aws-ofi-nccl, NIXL's plugin, the application) resolve the same libfabric.so.1: one copy per image, the EFA installer's first on LD_LIBRARY_PATH, and rebuild plugins against it.")
                .value(copies.len().to_string()),
        );
    }
    // aws-ofi-nccl mapped here: it must use the libfabric it was built to resolve.
    let ofi_mapped = p.has_lib("libnccl-net");
    let expected = f.efa_stack.aws_ofi_nccl.iter().find_map(|c| c.resolves_to.clone());
    if let (true, Some(exp)) = (ofi_mapped, expected) {
        let mapped = copies[0];
        let same_dir =
            mapped.rsplit_once('/').map(|(d, _)| d) == exp.rsplit_once('/').map(|(d, _)| d);
        if !same_dir {
            return Some(
                Outcome::fail(format!("{} runs aws-ofi-nccl with {mapped}, but the plugin resolves {exp} on this node", who(p)))
                    .with_evidence(ev)
                    .remediation("Rebuild aws-ofi-nccl against the libfabric the workload loads, or fix LD_LIBRARY_PATH so both are the same.")
                    .value("mismatch"),
            );
        }
    }
    Some(
        Outcome::pass(format!("{} maps one libfabric: {}", who(p), copies[0]))
            .with_evidence(ev)
            .value("1"),
    )
}

pub struct Environment;

impl Check for Environment {
    fn id(&self) -> &'static str {
        "process.environment"
    }

    fn needs(&self) -> Needs {
        Needs::PROCESSES | Needs::EFA_STACK | Needs::HOST | Needs::LIBFABRIC | Needs::RDMA
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        let f = cx.facts;
        per_process(f, |p| environment(f, p))
    }
}

fn environment(f: &Facts, p: &ProcessFacts) -> Option<Outcome> {
    if let Some(o) = unreadable(p, "environ") {
        return Some(o);
    }
    let env = &p.env;
    let mut ev = Vec::new();
    let (mut fails, mut warns, mut fixes) = (Vec::new(), Vec::new(), Vec::new());
    let shown: Vec<String> = env
        .iter()
        .filter(|(k, _)| {
            k.starts_with("FI_")
                || k.starts_with("NIXL_")
                || k.starts_with("UCX_")
                || *k == "NCCL_NET_PLUGIN"
                || *k == "LD_LIBRARY_PATH"
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    ev.push(
        Evidence::new(format!("proc/{}/environ (allow-listed variables)", p.pid))
            .observed(if shown.is_empty() { "none set".into() } else { shown.join(" ") }),
    );
    let efa = f.rdma.has_efa();
    if let Some(prov) = env.get("FI_PROVIDER") {
        if efa && !prov.split(',').any(|x| x.trim() == "efa") {
            fails.push(format!("FI_PROVIDER={prov} excludes the efa provider"));
            fixes.push("Set FI_PROVIDER=efa (or unset it: libfabric picks efa itself).");
        }
    }
    let lib_version = f.libfabric.version.as_deref().and_then(Version::parse);
    if env.get("FI_EFA_USE_DEVICE_RDMA").map(String::as_str) == Some("0") && efa {
        warns.push("FI_EFA_USE_DEVICE_RDMA=0 turns off the device's RDMA read".to_string());
        fixes.push("Unset FI_EFA_USE_DEVICE_RDMA (libfabric >= 1.18 enables RDMA read where the device supports it).");
    } else if env.get("FI_EFA_USE_DEVICE_RDMA").is_none()
        && efa
        && lib_version.as_ref().is_some_and(|v| v.below(&[1, 18]))
    {
        warns.push(format!(
            "libfabric {} needs FI_EFA_USE_DEVICE_RDMA=1 for RDMA read (>= 1.18 enables it itself)",
            lib_version.as_ref().map(|v| v.to_string()).unwrap_or_default()
        ));
        fixes.push("Set FI_EFA_USE_DEVICE_RDMA=1, or update libfabric.");
    }
    if env.get("FI_EFA_USE_HUGE_PAGE").map(String::as_str) == Some("1") {
        let free = f.host.hugepages.as_ref().and_then(|h| h.free_2m.or(h.free));
        if free == Some(0) {
            fails.push("FI_EFA_USE_HUGE_PAGE=1 but the node has no free 2 MiB huge pages".into());
            fixes.push("Reserve huge pages (host.hugepages) and request hugepages-2Mi in the pod, or unset FI_EFA_USE_HUGE_PAGE.");
        }
    }
    if let Some(ldp) = env.get("LD_LIBRARY_PATH") {
        let efa_pos = ldp.split(':').position(|d| d.starts_with("/opt/amazon/efa/lib"));
        let other = ldp.split(':').enumerate().find(|(i, d)| {
            efa_pos.is_none_or(|e| *i < e)
                && !d.starts_with("/opt/amazon/efa")
                && f.efa_stack
                    .libfabric
                    .iter()
                    .any(|c| c.path.rsplit_once('/').is_some_and(|(dir, _)| dir == *d))
        });
        if let Some((_, d)) = other {
            fails.push(format!("LD_LIBRARY_PATH puts {d} (which holds another libfabric) before /opt/amazon/efa/lib"));
            fixes.push("Put /opt/amazon/efa/lib:/opt/amazon/efa/lib64 first in LD_LIBRARY_PATH.");
        }
    }
    // UCX_LOG_* only sets verbosity: harmless anywhere.
    let ucx_vars: Vec<&String> =
        env.keys().filter(|k| k.starts_with("UCX_") && !k.starts_with("UCX_LOG")).collect();
    if !ucx_vars.is_empty() {
        let ucx_used = p.has_lib("libucp") || p.has_lib("libplugin_UCX");
        if !ucx_used && !p.unreadable.contains_key("maps") {
            warns.push(format!(
                "{} set but UCX is not loaded in this process",
                ucx_vars.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ));
            fixes.push("UCX_* variables do nothing for LIBFABRIC/NCCL paths; remove them to avoid confusion.");
        } else if env.get("UCX_TLS").is_some_and(|t| {
            t.split(',').any(|x| x == "ib" || x.starts_with("rc") || x.starts_with("dc"))
        }) && efa
        {
            warns.push(format!(
                "UCX_TLS={} asks for InfiniBand transports, which EFA does not provide",
                env["UCX_TLS"]
            ));
            fixes.push("On EFA use NIXL's LIBFABRIC backend rather than tuning UCX_TLS.");
        }
    }
    if let Some(dir) = env.get("NIXL_PLUGIN_DIR") {
        match &p.nixl_plugin_dir {
            Some(names) if names.iter().any(|n| n.starts_with("libplugin_")) => {
                if !names.iter().any(|n| n == "libplugin_LIBFABRIC.so") && efa {
                    fails.push(format!("NIXL_PLUGIN_DIR={dir} has no libplugin_LIBFABRIC.so"));
                    fixes.push("Point NIXL_PLUGIN_DIR at the directory of the NIXL build that has the LIBFABRIC plugin (or unset it: NIXL then uses the plugins beside libnixl).");
                }
            }
            Some(_) => {
                fails.push(format!("NIXL_PLUGIN_DIR={dir} holds no NIXL plugin"));
                fixes
                    .push("Point NIXL_PLUGIN_DIR at a directory with libplugin_*.so, or unset it.");
            }
            None => {
                fails.push(format!("NIXL_PLUGIN_DIR={dir} does not exist"));
                fixes.push("Point NIXL_PLUGIN_DIR at an existing plugin directory, or unset it.");
            }
        }
    }
    if let Some(plugin) = env.get("NCCL_NET_PLUGIN") {
        if plugin.eq_ignore_ascii_case("none") && efa {
            fails.push("NCCL_NET_PLUGIN=none disables aws-ofi-nccl".into());
            fixes.push("Unset NCCL_NET_PLUGIN or set it to ofi.");
        }
    }
    let o = if !fails.is_empty() {
        let also =
            if warns.is_empty() { String::new() } else { format!("; also {}", warns.join("; ")) };
        Outcome::fail(format!("{}: {}{also}", who(p), fails.join("; ")))
    } else if !warns.is_empty() {
        Outcome::warn(format!("{}: {}", who(p), warns.join("; ")))
    } else {
        return Some(
            Outcome::pass(format!("{}: EFA-related environment consistent", who(p)))
                .with_evidence(ev),
        );
    };
    Some(o.with_evidence(ev).remediation(fixes.join(" ")))
}

pub struct Memlock;

impl Check for Memlock {
    fn id(&self) -> &'static str {
        "process.memlock"
    }

    fn needs(&self) -> Needs {
        Needs::PROCESSES
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        per_process(cx.facts, memlock)
    }
}

fn memlock(p: &ProcessFacts) -> Option<Outcome> {
    if let Some(o) = unreadable(p, "limits") {
        return Some(o);
    }
    let l = p.memlock?;
    let text = super::host::memlock_text;
    let ev = Evidence::new(format!("proc/{}/limits", p.pid))
        .observed(format!(
            "soft {}, hard {}; CAP_IPC_LOCK {}",
            text(l.soft),
            text(l.hard),
            super::host::yes(p.ipc_lock == Some(true))
        ))
        .expected("unlimited (or CAP_IPC_LOCK)");
    Some(match (l.soft, p.ipc_lock) {
        (None, _) => Outcome::pass(format!("{}: memlock unlimited", who(p))).evidence(ev).value("unlimited"),
        (Some(_), Some(true)) => Outcome::pass(format!("{}: memlock {} but CAP_IPC_LOCK", who(p), text(l.soft))).evidence(ev).value(text(l.soft)),
        (Some(s), _) => Outcome::fail(format!(
            "{}: may lock only {}: registrations beyond it fail with ENOMEM (EFA error 4112 at start-up)",
            who(p),
            human_bytes(s)
        ))
        .evidence(ev)
        .remediation("Restart the worker with an unlimited memlock limit (`--ulimit memlock=-1:-1`, LimitMEMLOCK=infinity, or the container runtime's default ulimits) or with CAP_IPC_LOCK.")
        .value(human_bytes(s)),
    })
}

pub struct Metrics;

impl Check for Metrics {
    fn id(&self) -> &'static str {
        "kv.metrics"
    }

    fn needs(&self) -> Needs {
        Needs::METRICS
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        let Some(scrapes) = &cx.facts.metrics else {
            return vec![Outcome::skip(
                "no metrics endpoint given (--metrics http://127.0.0.1:8000/metrics)",
            )];
        };
        scrapes.iter().map(metrics_outcome).collect()
    }
}

fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 { format!("{}", v as i64) } else { format!("{v}") }
}

fn metrics_outcome(s: &crate::facts::metrics::Scrape) -> Outcome {
    let ev = |t: &crate::facts::metrics::KvTotals, when: &str| {
        Evidence::new(format!("{} ({when})", s.url))
            .observed(format!(
                "{} bytes, {} transfers, {} failed{}",
                t.bytes.map_or("no".into(), |b| human_bytes(b as u64)),
                t.transfers.map_or("?".into(), number),
                t.failures.map_or("?".into(), number),
                t.failed_notifications
                    .map_or(String::new(), |n| format!(", {} failed notifications", number(n)))
            ))
            .expected("bytes moving, 0 failed")
    };
    if let Some(e) = &s.error {
        return Outcome::error(e.clone())
            .evidence(Evidence::new(s.url.clone()).observed(e.clone()));
    }
    let t = &s.first;
    if !t.any() {
        return Outcome::warn(format!("{}: no NIXL series (vllm:nixl_* or agent_*)", s.url))
            .evidence(Evidence::new(s.url.clone()).observed("no vllm:nixl_* or agent_* series").expected("vllm:nixl_bytes_transferred, or NIXL's agent_tx_bytes_total"))
            .remediation("Scrape the worker that moves KV cache: vLLM exports vllm:nixl_* on its API port only while the NixlConnector is active (a missing series means the connector is not in use); NIXL's own exporter needs NIXL_TELEMETRY_ENABLE=y and NIXL_TELEMETRY_EXPORTER=prometheus.");
    }
    let mut evidence = vec![ev(t, "first reading")];
    let last = s.second.as_ref().unwrap_or(t);
    if let Some(second) = &s.second {
        evidence.push(ev(second, &format!("after {}s", number(s.interval_secs.unwrap_or(0.0)))));
    }
    let details = serde_json::json!({"url": s.url, "first": t, "second": s.second, "interval_secs": s.interval_secs});
    let failed = last.failures.unwrap_or(0.0) + last.failed_notifications.unwrap_or(0.0);
    let new_failures = s
        .second
        .as_ref()
        .map(|_| failed - t.failures.unwrap_or(0.0) - t.failed_notifications.unwrap_or(0.0));
    let bytes = last.bytes.unwrap_or(0.0);
    let moved = s.second.as_ref().map(|b| b.bytes.unwrap_or(0.0) - t.bytes.unwrap_or(0.0));
    let o = if failed > 0.0 {
        let recent =
            new_failures.map_or(String::new(), |n| format!(" ({} during the sample)", number(n)));
        Outcome::fail(format!("{}: {} failed KV transfers or notifications{recent}", s.url, number(failed)))
            .remediation("Look at the workers' logs for the NIXL error (efa-doctor logs FILE): failed transfers are usually an unreachable peer (security group without self-referencing all-traffic rules), a registration failure or expired KV requests on the prefill side.")
    } else if bytes == 0.0 {
        Outcome::warn(format!("{}: NIXL metrics present but no KV bytes moved yet", s.url))
            .remediation("Send a request through the prefill/decode pair and scrape again (with --sample to see bytes moving); if TTFT is high and bytes stay 0, the KV cache is not moving through NIXL.")
    } else if moved == Some(0.0) {
        Outcome::warn(format!("{}: {} moved so far, none during the {}s sample", s.url, human_bytes(bytes as u64), number(s.interval_secs.unwrap_or(0.0))))
            .remediation("Idle is fine without traffic; under load, bytes that stop moving mean transfers are stuck.")
    } else {
        Outcome::pass(format!(
            "{}: {} moved, no failed transfers",
            s.url,
            human_bytes(bytes as u64)
        ))
    };
    o.with_evidence(evidence).details(details).value(number(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::root::{ReadError, ReadErrorKind};
    use crate::verdict::Status;

    /// Another user's process read without privileges: every file is permission denied.
    fn unreadable_process() -> ProcessFacts {
        let denied = crate::facts::process::why(&ReadError::new(
            "proc/77/maps",
            ReadErrorKind::PermissionDenied,
        ));
        let mut p =
            ProcessFacts { pid: 77, framework: Some("vllm".into()), ..ProcessFacts::default() };
        for file in ["maps", "environ", "limits", "cmdline"] {
            p.unreadable.insert(file.into(), denied.clone());
        }
        p
    }

    #[test]
    fn permission_denied_is_a_skip_that_names_the_privilege() {
        let p = unreadable_process();
        let f = Facts::default();
        for o in [
            nixl_backend(&f, &p),
            registered_memory(&p),
            libfabric_copies(&f, &p),
            environment(&f, &p),
            memlock(&p),
        ] {
            let o = o.expect("an outcome");
            assert_eq!(o.status, Status::Skip, "{}", o.summary);
            assert!(
                o.summary.contains("permission denied") && o.summary.contains("CAP_SYS_PTRACE"),
                "{}",
                o.summary
            );
        }
    }
}
