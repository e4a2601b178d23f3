//! Running workloads: the NIXL backend a worker really uses, whether the memory it
//! registered is GPU memory, its libfabric copies, its EFA environment and memlock limit, and
//! its transfer metrics.

use std::collections::BTreeMap;

use super::logs::interpret;
use super::{Check, Context, Needs, human_bytes};
use crate::facts::Facts;
use crate::facts::logs::{Analysis, Event};
use crate::facts::process::{ProcessFacts, ProcessesFacts, RegOrigin, Region, RegionClass};
use crate::parse::Version;
use crate::verdict::{Evidence, Outcome, Status};

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

/// The backends a worker was configured with, where that was read, and whether someone
/// chose them (`explicit`) or they are a default nobody set.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Configured {
    backends: Vec<String>,
    source: String,
    explicit: bool,
}

fn truthy(v: &str) -> bool {
    matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
}

/// vLLM's `--kv-transfer-config` JSON, as the worker's command line gives it.
fn kv_transfer_config(p: &ProcessFacts) -> Option<serde_json::Value> {
    let args = &p.cmdline;
    let json = args.iter().enumerate().find_map(|(i, a)| {
        if a == "--kv-transfer-config" {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix("--kv-transfer-config=").map(String::from)
        }
    })?;
    serde_json::from_str(&json).ok()
}

/// The configuration that keeps KV transfer buffers in host memory on purpose: vLLM's
/// NixlConnector with `"kv_buffer_device":"cpu"` (KVTransferConfig.kv_buffer_device, default
/// "cuda"; `_NIXL_SUPPORTED_DEVICE` allows "cpu" on CUDA, vllm
/// distributed/kv_transfer/kv_connector/v1/nixl_connector.py), which stages the KV cache in a
/// host buffer and registers that with NIXL.
fn host_buffers_configured(p: &ProcessFacts) -> Option<&'static str> {
    let v = kv_transfer_config(p)?;
    let nixl = v["kv_connector"].as_str().is_some_and(|c| c.contains("Nixl"));
    (nixl && v["kv_buffer_device"].as_str().is_some_and(|d| d.eq_ignore_ascii_case("cpu")))
        .then_some("--kv-transfer-config \"kv_buffer_device\":\"cpu\"")
}

/// What each framework reads to pick NIXL's backend (see checks/process.nixl-backend.md for
/// the source of each), then the default of the NIXL package the process maps.
fn configured_backends(p: &ProcessFacts) -> Option<Configured> {
    let list = |v: &str| -> Vec<String> {
        v.split(',').map(|b| b.trim().to_ascii_uppercase()).filter(|b| !b.is_empty()).collect()
    };
    // vLLM (and Dynamo's vLLM worker): --kv-transfer-config '{"kv_connector":"NixlConnector",
    // "kv_connector_extra_config":{"backends":[...]}}'; NixlConnector's default is ["UCX"].
    if let Some(v) = kv_transfer_config(p) {
        if v["kv_connector"].as_str().is_some_and(|c| c.contains("Nixl")) {
            let backends: Vec<String> = v["kv_connector_extra_config"]["backends"]
                .as_array()
                .map(|b| b.iter().filter_map(|x| x.as_str()).map(str::to_ascii_uppercase).collect())
                .unwrap_or_default();
            return Some(if backends.is_empty() {
                Configured {
                    backends: vec!["UCX".into()],
                    source: "--kv-transfer-config without kv_connector_extra_config.backends (NixlConnector's default is [\"UCX\"])".into(),
                    explicit: false,
                }
            } else {
                Configured {
                    backends,
                    source: "--kv-transfer-config kv_connector_extra_config.backends".into(),
                    explicit: true,
                }
            });
        }
    }
    for var in ["SGLANG_DISAGGREGATION_NIXL_BACKEND", "TRTLLM_NIXL_KVCACHE_BACKEND"] {
        if let Some(v) = p.env.get(var) {
            return Some(Configured { backends: list(v), source: var.into(), explicit: true });
        }
    }
    // Dynamo KVBM: DYN_KVBM_NIXL_BACKEND_<NAME>=true enables <NAME>; a name with `_` is a
    // parameter, which KVBM rejects.
    let kvbm: Vec<(String, bool)> = p
        .env
        .iter()
        .filter_map(|(k, v)| {
            let name = k.strip_prefix("DYN_KVBM_NIXL_BACKEND_")?;
            (!name.contains('_')).then(|| (name.to_ascii_uppercase(), truthy(v)))
        })
        .collect();
    if !kvbm.is_empty() {
        let on: Vec<String> = kvbm.iter().filter(|(_, on)| *on).map(|(n, _)| n.clone()).collect();
        let vars: Vec<String> =
            kvbm.iter().map(|(n, _)| format!("DYN_KVBM_NIXL_BACKEND_{n}")).collect();
        return Some(Configured { backends: on, source: vars.join(", "), explicit: true });
    }
    // SGLang and TensorRT-LLM without their variable use UCX.
    let fw_default = match p.framework.as_deref() {
        Some("sglang") => {
            Some("SGLANG_DISAGGREGATION_NIXL_BACKEND unset (SGLang's default is UCX)")
        }
        Some("trtllm") => Some("TRTLLM_NIXL_KVCACHE_BACKEND unset (TensorRT-LLM's default is UCX)"),
        _ => None,
    };
    if let Some(source) = fw_default.filter(|_| p.has_lib("libnixl")) {
        return Some(Configured {
            backends: vec!["UCX".into()],
            source: source.into(),
            explicit: false,
        });
    }
    // A script that builds nixl_agent_config() itself gets the package's default; an image
    // can patch it (SGLang's EFA guide does).
    // NIXL's own default (["UCX"]) says nothing: the script may name its backends.
    let api = p.libs.nixl_api.as_ref()?;
    let backends = api.default_backends.clone().filter(|b| b != &["UCX"])?;
    Some(Configured {
        source: format!(
            "nixl_agent_config default in {} (patched: NIXL ships [\"UCX\"])",
            api.path
        ),
        backends,
        explicit: true,
    })
}

/// One NIXL backend plugin the process maps, and how far it got.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Observed {
    backend: String,
    /// Its code ran and what a live backend needs is there (see [`observe`]).
    live: bool,
    evidence: Vec<String>,
}

/// UCX loads its transport modules (`ucx/libuct_*.so`) in `ucp_init`, which a plugin loaded
/// only to list its parameters never calls.
fn ucx_transports(p: &ProcessFacts) -> Vec<String> {
    let mut t: Vec<String> = p
        .libraries
        .iter()
        .filter_map(|l| {
            let name = l.path.rsplit('/').next()?;
            let module = name.strip_prefix("libuct_")?.split(".so").next()?;
            Some(match module {
                "cuda" => "cuda_copy/cuda_ipc".to_string(),
                "ib_efa" => "ib_efa (EFA through UCX's verbs transport)".to_string(),
                m => m.to_string(),
            })
        })
        .collect();
    t.sort();
    t.dedup();
    t
}

/// Which backends run, from the maps and open files. NIXL opens plugins with
/// RTLD_NODELETE, loads them to list their parameters and keeps them after a failed
/// createBackend, so an `r-xp` plugin mapping proves it was loaded, not used; a live
/// backend also has what only its initialisation brings in.
fn observe(f: &Facts, p: &ProcessFacts) -> Vec<Observed> {
    let efa = f.rdma.has_efa();
    let mut out = Vec::new();
    for l in p.lib("libplugin_") {
        let name = l.path.rsplit('/').next().unwrap_or("");
        let backend = name
            .strip_prefix("libplugin_")
            .and_then(|n| n.strip_suffix(".so"))
            .unwrap_or(name)
            .to_string();
        if out.iter().any(|o: &Observed| o.backend == backend) {
            continue;
        }
        let mut ev = vec![format!(
            "{} {}",
            l.path,
            if l.executable {
                "r-xp (its code was loaded)"
            } else {
                "mapped without r-xp (opened only)"
            }
        )];
        let live = l.executable
            && match backend.as_str() {
                "UCX" => {
                    let t = ucx_transports(p);
                    if t.is_empty() {
                        ev.push(
                            "no UCX transport module (ucx/libuct_*.so) mapped: ucp_init never ran"
                                .into(),
                        );
                    } else {
                        ev.push(format!("UCX transports loaded: {}", t.join(", ")));
                    }
                    !t.is_empty()
                }
                "LIBFABRIC" => {
                    let lf: Vec<&str> = p.lib("libfabric").map(|l| l.path.as_str()).collect();
                    if lf.is_empty() {
                        ev.push("no libfabric mapped".into());
                        false
                    } else if !efa {
                        ev.push(format!(
                            "{} mapped (no EFA device here to prove it opened one)",
                            lf.join(", ")
                        ));
                        true
                    } else {
                        match &p.rdma_fds {
                            Some(fds) if !fds.is_empty() => {
                                ev.push(format!("{}; {} open", lf.join(", "), fds.join(", ")));
                                if p.has_lib("libefa") {
                                    ev.push("libefa mapped".into());
                                }
                                true
                            }
                            Some(_) => {
                                ev.push(format!(
                                    "{} mapped, but no /dev/infiniband/uverbs* open in proc/{}/fd: the efa provider never opened a device",
                                    lf.join(", "),
                                    p.pid
                                ));
                                false
                            }
                            None => {
                                ev.push(format!(
                                    "{} mapped; proc/{}/fd unreadable, open devices unknown",
                                    lf.join(", "),
                                    p.pid
                                ));
                                true
                            }
                        }
                    }
                }
                _ => true,
            };
        out.push(Observed { backend, live, evidence: ev });
    }
    out
}

/// How to select LIBFABRIC, for the framework this process runs.
fn backend_fix(p: &ProcessFacts) -> String {
    match p.framework.as_deref() {
        Some("vllm") => "vLLM: add `\"kv_connector_extra_config\":{\"backends\":[\"LIBFABRIC\"]}` to --kv-transfer-config (vLLM ignores NIXL_* backend variables).".into(),
        Some("sglang") => "SGLang: set SGLANG_DISAGGREGATION_NIXL_BACKEND=LIBFABRIC in the worker's environment (SGLang releases before the variable ignore it: patch nixl's _api.py default instead).".into(),
        Some("trtllm") => "TensorRT-LLM: set TRTLLM_NIXL_KVCACHE_BACKEND=LIBFABRIC.".into(),
        Some("dynamo") => "Dynamo: select LIBFABRIC for the engine (vLLM kv_connector_extra_config.backends, SGLANG_DISAGGREGATION_NIXL_BACKEND, TRTLLM_NIXL_KVCACHE_BACKEND); for KVBM set DYN_KVBM_NIXL_BACKEND_LIBFABRIC=true.".into(),
        _ => "Create the NIXL agent with backends=[\"LIBFABRIC\"] (nixl_agent_config), or set the framework's backend option (vLLM kv_connector_extra_config.backends, SGLANG_DISAGGREGATION_NIXL_BACKEND, TRTLLM_NIXL_KVCACHE_BACKEND, DYN_KVBM_NIXL_BACKEND_LIBFABRIC).".into(),
    }
}

/// Why a configured backend does not run, and how to find out.
const MISMATCH_FIX: &str = "The configuration did not take effect: read the worker's log for `Skipping backend registration`, `Failed to load plugin` or `createBackend` (efa-doctor logs FILE: nixl.backend-init), check that this framework version reads the setting, and see stack.nixl for a LIBFABRIC plugin that cannot load against the node's libfabric. Then restart the worker.";

/// The process a log stream names: `pid N` (libfabric, NCCL, vLLM) or glog's `tid N`
/// (NIXL; the main thread's id is the pid), in this root's pid namespace or the process's
/// own (a container's, `NSpid`). A stream a wrapper qualified with a pod or host counts in
/// that writer's namespace only. Pids repeat across containers, so only a single match
/// counts; lines that match none stay with the run's log verdicts.
pub(crate) fn process_of_stream<'a>(
    ps: &'a ProcessesFacts,
    stream: &str,
) -> Option<&'a ProcessFacts> {
    let mut words = stream.split_whitespace().rev();
    let n: u32 = words.next()?.parse().ok()?;
    if !matches!(words.next()?, "pid" | "tid") {
        return None;
    }
    let placed = words.next().is_some();
    let mut hits = ps.processes.iter().filter(|p| (!placed && p.pid == n) || p.ns_pid == Some(n));
    let one = hits.next()?;
    hits.next().is_none().then_some(one)
}

/// What NIXL's log lines say this process did with its backends.
#[derive(Default)]
struct BackendLog<'a> {
    /// Backends it could not load or create, with the lines.
    failed: BTreeMap<String, Vec<&'a Event>>,
    /// Backends it created (`Backend X was instantiated`, or the plugin's own lines).
    created: BTreeMap<String, Vec<&'a Event>>,
}

impl<'a> BackendLog<'a> {
    fn lines(&self) -> impl Iterator<Item = &'a Event> + '_ {
        self.failed.values().chain(self.created.values()).flatten().copied()
    }
}

fn backend_log<'a>(f: &Facts, a: Option<&'a Analysis>, p: &ProcessFacts) -> BackendLog<'a> {
    let mut out = BackendLog::default();
    let (Some(a), Some(ps)) = (a, f.processes.as_ref()) else { return out };
    // A line that names no process belongs to the process every other line of its file
    // names (a worker's own log: NIXL's Python lines carry no pid, its glog lines do).
    let mut owner: BTreeMap<usize, Option<u32>> = BTreeMap::new();
    for e in a.events.iter().filter(|e| !e.stream.is_empty()) {
        let pid = process_of_stream(ps, &e.stream).map(|q| q.pid);
        // glog's id of a thread other than the main one names no process.
        if pid.is_none() && e.stream.starts_with("tid ") {
            continue;
        }
        let o = owner.entry(e.file).or_insert(pid);
        if *o != pid {
            *o = None;
        }
    }
    let mine = |e: &&Event| match process_of_stream(ps, &e.stream) {
        Some(q) => q.pid == p.pid,
        None => e.stream.is_empty() && owner.get(&e.file) == Some(&Some(p.pid)),
    };
    for e in interpret::BACKEND_FAILURE_KINDS.iter().flat_map(|k| a.of(k)).filter(mine) {
        out.failed.entry(interpret::failed_backend(e)).or_default().push(e);
    }
    for e in a.of("nixl.backend").filter(mine) {
        let b = e.cap("backend").unwrap_or("?").to_ascii_uppercase();
        out.created.entry(b).or_default().push(e);
    }
    for e in a.of("nixl.backend-source").filter(mine) {
        let b = interpret::backend_of_source(e.cap("file").unwrap_or(""));
        if b != "?" {
            out.created.entry(b.to_string()).or_default().push(e);
        }
    }
    for v in out.failed.values_mut().chain(out.created.values_mut()) {
        v.sort_by_key(|e| e.seq);
    }
    out
}

/// The on-disk plugin stack.nixl already fails for, when this process's log shows that very
/// file failing to load for a missing libfabric symbol version: the root cause is there.
/// Only for a process that shares the node's filesystem (no `NSpid` of its own).
fn unloadable_on_disk<'a>(f: &'a Facts, p: &ProcessFacts, log: &BackendLog<'_>) -> Option<&'a str> {
    if p.ns_pid.is_some_and(|n| n != p.pid) {
        return None;
    }
    let failed = log.failed.values().flatten().filter(|e| {
        e.kind == "nixl.plugin-load-failed"
            && e.cap("error").is_some_and(|x| x.contains("FABRIC_1."))
    });
    for e in failed {
        let path = crate::root::lexical(e.cap("path").unwrap_or(""));
        let hit = f.efa_stack.nixl_plugins.iter().find(|c| {
            crate::root::lexical(&c.path) == path
                && c.resolves_to
                    .as_deref()
                    .and_then(|r| f.efa_stack.copy(r))
                    .is_some_and(|lib| c.needs.iter().any(|n| !lib.defines.contains(n)))
        });
        if let Some(c) = hit {
            return Some(c.path.as_str());
        }
    }
    None
}

/// What process.nixl-backend claims of these logs, for `logs::interpret`.
pub fn log_claims(f: &Facts, a: &Analysis) -> Vec<interpret::Claim> {
    let Some(ps) = &f.processes else { return Vec::new() };
    let mut out = Vec::new();
    for p in &ps.processes {
        let log = backend_log(f, Some(a), p);
        let lines: Vec<(usize, u64)> = log.lines().map(|e| (e.file, e.line)).collect();
        if lines.is_empty() {
            continue;
        }
        let Some(o) = nixl_backend(f, Some(a), p) else { continue };
        let check = match o.status {
            Status::Fail => "process.nixl-backend",
            Status::Skip if o.value.as_deref() == Some("plugin-unloadable") => "stack.nixl",
            _ => continue,
        };
        out.push(interpret::Claim { who: who(p), check, lines });
    }
    out
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
        per_process(f, |p| nixl_backend(f, cx.analysis, p))
    }
}

fn nixl_backend(f: &Facts, a: Option<&Analysis>, p: &ProcessFacts) -> Option<Outcome> {
    if let Some(o) = unreadable(p, "maps") {
        return Some(o);
    }
    let configured = configured_backends(p);
    if !p.has_lib("libnixl") && configured.as_ref().is_none_or(|c| !c.explicit) {
        return None; // not a NIXL process (e.g. an NCCL trainer)
    }
    let observed = observe(f, p);
    let log = backend_log(f, a, p);
    let maps = format!("proc/{}/maps", p.pid);
    let mut ev: Vec<Evidence> = Vec::new();
    if let Some(c) = &configured {
        ev.push(Evidence::new(c.source.clone()).observed(format!(
            "configured: {}",
            if c.backends.is_empty() { "none".into() } else { c.backends.join(",") }
        )));
    }
    for o in &observed {
        ev.push(Evidence::new(maps.clone()).observed(format!(
            "{}: {} ({})",
            o.backend,
            if o.live { "running" } else { "loaded, not running" },
            o.evidence.join("; ")
        )));
    }
    if observed.is_empty() {
        let nixl_paths: Vec<&str> = p.lib("libnixl").map(|l| l.path.as_str()).collect();
        ev.push(
            Evidence::new(maps.clone())
                .observed(format!(
                    "no libplugin_*.so mapped; {}",
                    if nixl_paths.is_empty() { "no libnixl".into() } else { nixl_paths.join(", ") }
                ))
                .expected("libplugin_LIBFABRIC.so with an r-xp mapping"),
        );
    }
    let running: Vec<&str> =
        observed.iter().filter(|o| o.live).map(|o| o.backend.as_str()).collect();
    let loaded: Vec<&str> =
        observed.iter().filter(|o| !o.live).map(|o| o.backend.as_str()).collect();
    let details = serde_json::json!({
        "pid": p.pid,
        "configured": configured.as_ref().map(|c| serde_json::json!({"backends": c.backends, "source": c.source, "explicit": c.explicit})),
        "running": running,
        "loaded_not_running": loaded,
        "evidence": observed.iter().map(|o| serde_json::json!({"backend": o.backend, "running": o.live, "evidence": o.evidence})).collect::<Vec<_>>(),
        "log": {
            "failed": log.failed.iter().map(|(b, e)| (b.clone(), interpret::failure_reason(e))).collect::<BTreeMap<_, _>>(),
            "created": log.created.keys().collect::<Vec<_>>(),
        },
    });
    let efa = f.rdma.has_efa();
    let runs = |b: &str| running.contains(&b);
    let cfg_text = configured
        .as_ref()
        .map(|c| format!("configured {} ({})", c.backends.join(","), c.source))
        .unwrap_or_else(|| "no configuration found".into());
    let value = if running.is_empty() { "none".to_string() } else { running.join(",") };
    let o = match &configured {
        // The configuration did not take effect: the silent case (FM02/FM03).
        Some(c) if !running.is_empty() && !c.backends.iter().any(|b| runs(b)) => Outcome::fail(format!(
            "{}: {cfg_text}, but runs {}{}: the configuration did not take effect",
            who(p),
            running.join(","),
            if loaded.is_empty() { String::new() } else { format!(" ({} loaded, not running)", loaded.join(",")) }
        ))
        .remediation(format!("{MISMATCH_FIX} {}", backend_fix(p)))
        .value("mismatch"),
        _ if runs("LIBFABRIC") => Outcome::pass(format!(
            "{} runs NIXL's LIBFABRIC backend ({cfg_text})",
            who(p)
        ))
        .value(value),
        // UCX someone chose stays on NVLink within a node (cuda_ipc): not a failure.
        Some(c) if runs("UCX") && c.explicit => Outcome::pass(format!(
            "{} runs NIXL's UCX backend as configured ({}): right for prefill and decode on one node over NVLink; between nodes it bypasses EFA{}",
            who(p),
            c.source,
            if ucx_transports(p).iter().any(|t| t.starts_with("cuda")) { "" } else { " (and UCX has no CUDA transport loaded)" }
        ))
        .value(value),
        _ if runs("UCX") && efa => Outcome::fail(format!(
            "{} moves KV cache with NIXL's UCX backend on an EFA node ({cfg_text}){}: transfers bypass EFA",
            who(p),
            if loaded.contains(&"LIBFABRIC") { "; LIBFABRIC is loaded but not running" } else { "" }
        ))
        .remediation(backend_fix(p))
        .value(value),
        _ if runs("UCX") => Outcome::pass(format!("{} runs NIXL's UCX backend (no EFA device on this node)", who(p))).value(value),
        _ if !running.is_empty() => Outcome::pass(format!("{} runs NIXL's {} backend ({cfg_text})", who(p), running.join(","))).value(value),
        _ if !loaded.is_empty() => Outcome::fail(format!(
            "{}: NIXL's {} plugin is loaded but no backend runs ({cfg_text}): the configuration did not take effect",
            who(p),
            loaded.join(",")
        ))
        .remediation(format!("{MISMATCH_FIX} {}", backend_fix(p)))
        .value("none"),
        // Nothing runs yet: the configuration alone proves nothing, unless it is UCX on EFA.
        Some(c) if c.backends.iter().any(|b| b == "LIBFABRIC") || !efa => Outcome::skip(format!(
            "{}: {cfg_text}; no NIXL backend plugin is mapped yet (judge again once the worker has created its agent)",
            who(p)
        ))
        .value(c.backends.join(",")),
        Some(c) => Outcome::fail(format!("{}: {cfg_text} on an EFA node; no NIXL backend plugin is mapped yet", who(p)))
            .remediation(backend_fix(p))
            .value(c.backends.join(",")),
        None => Outcome::warn(format!(
            "{}: NIXL is loaded but no backend plugin is mapped: no agent exists yet, or every configured plugin failed to load",
            who(p)
        ))
        .remediation("If the worker is already serving, NIXL has no backend: read its log (efa-doctor logs FILE, nixl.backend-init) for `Failed to load plugin`, and see stack.nixl for a LIBFABRIC plugin that needs a newer libfabric."),
    };
    let o = with_log(f, p, o, &log, &cfg_text);
    if let Some(a) = a {
        // The process's own NIXL lines: the failures first, then what it created.
        ev.extend(log.lines().take(4).map(|e| interpret::ev(a, e)));
    }
    Some(o.with_evidence(ev).details(details))
}

/// The verdict with what NIXL's log says this process did: a backend that failed to load
/// is why the configuration did not take effect, so it joins the finding (and
/// nixl.backend-init skips those lines, see [`log_claims`]); a plugin stack.nixl already
/// fails on disk is the root cause, so the process only points there.
fn with_log(f: &Facts, p: &ProcessFacts, o: Outcome, log: &BackendLog<'_>, cfg: &str) -> Outcome {
    let Some((backend, lines)) = log.failed.iter().next() else { return o };
    let why = interpret::failure_reason(lines);
    let all: Vec<String> =
        log.failed.iter().map(|(b, e)| format!("{b} ({})", interpret::failure_reason(e))).collect();
    let shown = format!("its log shows NIXL could not load or create {}", all.join("; "));
    if let Some(path) = unloadable_on_disk(f, p, log) {
        if o.status != Status::Pass {
            return Outcome::skip(format!(
                "skipped: {}: {}; {shown}: the plugin on disk, {path}, cannot load against the libfabric it resolves (see stack.nixl)",
                who(p),
                o.summary.trim_start_matches(&format!("{}: ", who(p)))
            ))
            .value("plugin-unloadable");
        }
    }
    let fix = interpret::backend_failure_fix(backend, &why);
    match o.status {
        Status::Fail => {
            let rest = o.remediation.clone().unwrap_or_default();
            let mut o = o.remediation(format!("{fix} {rest}").trim_end().to_string());
            o.summary.push_str(&format!("; {shown}"));
            o
        }
        Status::Warn | Status::Skip => {
            Outcome::fail(format!("{}: no NIXL backend runs ({cfg}); {shown}", who(p)))
                .remediation(format!("{fix} {}", backend_fix(p)))
                .value("backend-failed")
        }
        _ => o,
    }
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

/// Whose a registration is, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counted {
    /// The workload's (KV cache, staging): judged.
    Workload,
    /// The provider's own packet pools: ignored.
    ProviderPool,
    /// Only the provider logged it, in host memory, and nothing tells a pool from the
    /// workload's buffer: not judged.
    Unattributed,
}

/// The efa provider registers its packet pools (host memory, huge pages where it can)
/// through the same `efa_mr_reg_impl` that logs the workload's registrations.
fn counted(r: &Region, workload_named_any: bool) -> Counted {
    if r.origin == RegOrigin::Workload {
        return Counted::Workload;
    }
    if r.vma.as_deref().is_some_and(|v| v.contains("/anon_hugepage")) {
        return Counted::ProviderPool;
    }
    // The provider's pools are host memory: a device registration is the workload's.
    if r.class == RegionClass::Device {
        return Counted::Workload;
    }
    if workload_named_any { Counted::ProviderPool } else { Counted::Unattributed }
}

fn region_text(r: &Region) -> String {
    format!(
        "{} ({}) → {} in `{}`{}",
        r.address,
        r.size.map_or("size unknown".into(), human_bytes),
        serde_json::to_value(r.class)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default(),
        r.vma.as_deref().unwrap_or("no mapping"),
        if r.origin == RegOrigin::Provider { " [libfabric's line]" } else { "" }
    )
}

fn registered_memory(p: &ProcessFacts) -> Option<Outcome> {
    if let Some(o) = unreadable(p, "maps") {
        return Some(o);
    }
    if p.regions.is_empty() {
        return Some(Outcome::skip(format!(
            "{}: no registered address to classify (pass --log with NIXL_LOG_LEVEL=DEBUG (UCX) or TRACE (LIBFABRIC) or FI_LOG_LEVEL=info output, or --addr ADDR[:SIZE])",
            who(p)
        )));
    }
    let named = p.regions.iter().any(|r| r.origin == RegOrigin::Workload);
    let tagged: Vec<(&Region, Counted)> =
        p.regions.iter().map(|r| (r, counted(r, named))).collect();
    let of = |c: Counted| tagged.iter().filter(move |(_, x)| *x == c).map(|(r, _)| *r);
    let work: Vec<&Region> = of(Counted::Workload).collect();
    let pools = of(Counted::ProviderPool).count();
    let unattributed: Vec<&Region> = of(Counted::Unattributed).collect();
    let details = serde_json::json!({
        "pid": p.pid,
        "regions": tagged.iter().map(|(r, c)| serde_json::json!({
            "address": r.address, "size": r.size, "class": r.class, "vma": r.vma, "source": r.source,
            "origin": r.origin,
            "counted": match c { Counted::Workload => "workload", Counted::ProviderPool => "provider-pool", Counted::Unattributed => "unattributed" },
        })).collect::<Vec<_>>(),
    });
    let maps = format!("proc/{}/maps", p.pid);
    let ev: Vec<Evidence> = work
        .iter()
        .chain(&unattributed)
        .take(6)
        .map(|r| {
            Evidence::new(maps.clone())
                .observed(region_text(r))
                .expected("device (inside a CUDA ---p reservation)")
        })
        .collect();
    let count = |c: RegionClass| work.iter().filter(|r| r.class == c).count();
    let (dev, host, unmapped) =
        (count(RegionClass::Device), count(RegionClass::Host), count(RegionClass::Unmapped));
    let ignored = if pools > 0 {
        format!("; ignored {pools} of the provider's own (packet pools)")
    } else {
        String::new()
    };
    let summary = format!(
        "{}: counted {} workload registration(s): {dev} device, {host} host, {unmapped} unmapped{ignored}",
        who(p),
        work.len()
    );
    // A registration of unknown size is not evidence of a KV-sized buffer.
    let big_host: Vec<&&Region> = work
        .iter()
        .filter(|r| r.class == RegionClass::Host && r.size.is_some_and(|s| s >= HOST_KV_BYTES))
        .collect();
    const FIX_HOST: &str = "Keep the KV cache in GPU memory (vLLM `\"kv_buffer_device\":\"cuda\"`; no host buffer) and give EFA a GPU memory path (kernel.gpudirect-path, libfabric with FI_HMEM, probe.mr): NIXL falls back to registering host memory when the provider lacks FI_HMEM.";
    let on_purpose = host_buffers_configured(p);
    let (o, value) = if work.is_empty() {
        return Some(
            Outcome::skip(format!(
                "{}: only libfabric's `Registered memory at` lines, {} in host memory: the efa provider logs its own packet pools with the same line, so none is attributed to the workload{ignored} (NIXL_LOG_LEVEL=DEBUG for UCX or TRACE for LIBFABRIC names the workload's registrations)",
                who(p),
                unattributed.len()
            ))
            .with_evidence(ev)
            .details(details),
        );
    } else if let Some(cfg) = on_purpose.filter(|_| host > 0) {
        // Host buffers chosen in the configuration: what it asked for, not a fallback.
        (
            Outcome::skip(format!(
                "{summary}: host memory as configured ({cfg}): the KV cache is staged in host buffers on purpose, so the NIC reads host memory by design"
            )),
            "host-configured",
        )
    } else if dev == 0 && host > 0 {
        (
            Outcome::fail(format!(
                "{summary}: the workload registered only host memory for its transfers, so the NIC reads through the CPU (no GPUDirect)"
            ))
            .remediation(FIX_HOST),
            "host-only",
        )
    } else if !big_host.is_empty() {
        (
            Outcome::fail(format!(
                "{summary}: {} KV-cache-sized registration(s) (>= 64 MiB) in host memory, so the NIC reads through the CPU (no GPUDirect)",
                big_host.len()
            ))
            .remediation(FIX_HOST),
            "host",
        )
    } else if dev == 0 {
        (
            Outcome::warn(format!("{summary}: the addresses are not in this process (another process, or freed)"))
                .remediation("Take the addresses from this worker's own log (NIXL_LOG_LEVEL=DEBUG prints UCX's `registered N bytes at`, FI_LOG_LEVEL=info libfabric's `Registered memory at`), or pass --pid for the process that registered them."),
            "unmapped",
        )
    } else {
        let small = if host > 0 {
            format!(
                " ({host} host buffer(s) below 64 MiB or of unknown size: staging, not KV cache)"
            )
        } else {
            String::new()
        };
        (Outcome::pass(format!("{summary}: GPU memory is registered directly{small}")), "device")
    };
    Some(o.with_evidence(ev).details(details).value(value))
}

pub struct LibfabricCopies;

impl Check for LibfabricCopies {
    fn id(&self) -> &'static str {
        "process.libfabric-copies"
    }

    fn needs(&self) -> Needs {
        Needs::PROCESSES
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        per_process(cx.facts, libfabric_copies)
    }
}

fn libfabric_copies(p: &ProcessFacts) -> Option<Outcome> {
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
    // aws-ofi-nccl mapped here: it must use the libfabric its loader resolves in this
    // process: the process's own filesystem (a container's, through /proc/PID/root) and its
    // LD_LIBRARY_PATH, not the node's files of the same name.
    if let Some(ofi) = p.libs.ofi_nccl.as_ref().filter(|_| p.has_lib("libnccl-net")) {
        let mapped = copies[0];
        let dir = |x: &str| x.rsplit_once('/').map(|(d, _)| d.to_string());
        if let Some(exp) = ofi.resolves_to.as_deref().filter(|e| dir(e) != dir(mapped)) {
            return Some(
                Outcome::fail(format!("{} runs aws-ofi-nccl with {mapped}, but the plugin resolves {exp} in the process's own filesystem", who(p)))
                    .with_evidence(ev)
                    .evidence(
                        Evidence::new(format!("{} (DT_NEEDED libfabric.so.1, read through proc/{}/root)", ofi.path, p.pid))
                            .observed(format!("search order {}", ofi.search.join(":")))
                            .expected(mapped.to_string()),
                    )
                    .remediation("Something loaded another libfabric first (LD_PRELOAD, another plugin's RUNPATH): rebuild aws-ofi-nccl against the libfabric the workload loads, or fix LD_LIBRARY_PATH so both are the same.")
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
                || k.starts_with("OFI_NCCL_")
                || k.ends_with("FORK_SAFE")
                || [
                    "NCCL_NET_PLUGIN",
                    "NCCL_NET",
                    "NCCL_NET_GDR_LEVEL",
                    "NCCL_PROTO",
                    "LD_LIBRARY_PATH",
                ]
                .contains(&k.as_str())
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    ev.push(
        Evidence::new(format!("proc/{}/environ (allow-listed variables)", p.pid))
            .observed(if shown.is_empty() { "none set".into() } else { shown.join(" ") }),
    );
    let efa = f.rdma.has_efa();
    if let Some(prov) = env.get("FI_PROVIDER") {
        if efa && !provider_filter_allows(prov, "efa") {
            fails.push(format!("FI_PROVIDER={prov} excludes the efa provider"));
            fixes.push("Set FI_PROVIDER=efa (or unset it: libfabric picks efa itself).");
        }
    }
    let set = |k: &str| env.get(k).map(String::as_str);
    let on = |k: &str| set(k).is_some_and(truthy);
    let off = |k: &str| {
        set(k).is_some_and(|v| {
            matches!(v.trim().to_ascii_lowercase().as_str(), "0" | "false" | "no" | "off")
        })
    };
    // NCCL matches NCCL_NET against the plugin's name (strcasecmp); aws-ofi-nccl renamed
    // itself "AWS Libfabric" -> "Libfabric" in 1.13.0.
    if set("NCCL_NET").is_some_and(|n| n.trim().eq_ignore_ascii_case("AWS Libfabric")) && efa {
        fails.push("NCCL_NET=\"AWS Libfabric\" names aws-ofi-nccl before 1.13; 1.13 and later call it \"Libfabric\", so NCCL finds no such network".into());
        fixes.push("Set NCCL_NET=Libfabric (aws-ofi-nccl >= 1.13), or unset NCCL_NET.");
    }
    if on("FI_HMEM_DISABLE_P2P") && efa {
        fails.push("FI_HMEM_DISABLE_P2P turns off peer-to-peer: the efa provider registers GPU memory without the device and copies it through host memory".into());
        fixes.push("Unset FI_HMEM_DISABLE_P2P.");
    }
    let in_tree =
        !f.modules.versions.contains_key("efa") && f.modules.is_loaded("efa") == Some(true);
    let arm64 = f.kernel.arch.as_deref() == Some("aarch64");
    // The evidence that the out-of-tree driver's P2P path is there: what kernel.gpudirect-path
    // reads (the devices' p2p/gdr attributes, the peer-memory module).
    let peer_memory = f
        .rdma
        .efa()
        .find_map(|d| d.p2p_provider().map(|(attr, p)| format!("{} {attr} {p:?}", d.name)))
        .or_else(|| {
            (f.modules.is_loaded("efa_nv_peermem") == Some(true))
                .then(|| "efa_nv_peermem loaded".to_string())
        });
    let mut notes: Vec<String> = Vec::new();
    for (var, who_reads) in
        [("FI_HMEM_CUDA_USE_DMABUF", "libfabric"), ("OFI_NCCL_DISABLE_DMABUF", "aws-ofi-nccl")]
    {
        let disabled = if var == "OFI_NCCL_DISABLE_DMABUF" { on(var) } else { off(var) };
        if disabled && efa {
            let msg = format!(
                "{var}={} turns off {who_reads}'s dma-buf registration of GPU memory",
                set(var).unwrap_or("")
            );
            // The in-tree EFA driver has no peer-memory path: dma-buf is the only one. On
            // arm64 (GB200) dma-buf is the GPU memory path too. On x86_64 the out-of-tree
            // driver's P2P provider registers GPU memory without dma-buf (the legacy path
            // kernel.gpudirect-path describes): harmless where that provider is shown.
            if in_tree {
                fails.push(format!("{msg}, the only GPU memory path of the in-tree EFA driver"));
                fixes.push("Unset it: dma-buf is the GPU memory path on current kernels.");
            } else if arm64 {
                fails.push(format!("{msg}: on arm64 (GB200) dma-buf is the GPU memory path"));
                fixes.push("Unset it: dma-buf is the GPU memory path on arm64.");
            } else if let Some(p2p) = &peer_memory {
                notes.push(format!(
                    "{msg}; harmless here: the peer-memory path registers GPU memory ({p2p})"
                ));
            } else {
                warns.push(format!(
                    "{msg} (the out-of-tree driver's P2P provider is then the only GPU memory path, and none is shown: no device/p2p provider, no efa_nv_peermem)"
                ));
                fixes.push(
                    "Unset it, or load the EFA peer-memory module (`modprobe efa_nv_peermem`).",
                );
            }
        }
    }
    if let Some(level) = set("NCCL_NET_GDR_LEVEL")
        .filter(|l| matches!(l.trim().to_ascii_uppercase().as_str(), "LOC" | "0"))
    {
        if efa {
            fails.push(format!("NCCL_NET_GDR_LEVEL={level} never allows GPUDirect RDMA (a NIC is always farther than LOC)"));
            fixes.push("Unset NCCL_NET_GDR_LEVEL (NCCL picks PXB) or set it to the GPU-NIC distance efa.topology shows (PIX/PXB).");
        }
    }
    if set("NCCL_PROTO").is_some_and(|p| p.trim().eq_ignore_ascii_case("simple")) {
        let ofi = f
            .efa_stack
            .aws_ofi_nccl
            .iter()
            .find_map(|c| c.version.as_deref())
            .and_then(Version::parse);
        if ofi.as_ref().is_some_and(|v| !v.below(&[1, 6])) {
            warns.push(format!(
                "NCCL_PROTO=simple was needed only with aws-ofi-nccl 1.5 and older (this node has {}): it turns off NCCL's LL and LL128 protocols",
                ofi.map(|v| v.to_string()).unwrap_or_default()
            ));
            fixes.push("Unset NCCL_PROTO.");
        }
    }
    let fork = ["RDMAV_FORK_SAFE", "IBV_FORK_SAFE", "FI_EFA_FORK_SAFE"]
        .into_iter()
        .find(|k| if *k == "FI_EFA_FORK_SAFE" { on(k) } else { set(k).is_some() });
    if let (Some(fork), true) = (fork, on("FI_EFA_USE_HUGE_PAGE")) {
        fails.push(format!("{fork} with FI_EFA_USE_HUGE_PAGE=1: the efa provider aborts at start-up (rdma-core's fork support cannot protect huge pages)"));
        fixes.push("Unset FI_EFA_USE_HUGE_PAGE if the application forks, else unset the fork-safety variable.");
    }
    if on("FI_EFA_USE_HUGE_PAGE") {
        if let Some(l) = p.hugetlb_2m_limit.as_ref().filter(|l| l.bytes == Some(0)) {
            fails.push(format!(
                "FI_EFA_USE_HUGE_PAGE=1 but the process's hugetlb cgroup allows 0 bytes of 2 MiB pages ({}): the first touch of a huge page raises SIGBUS",
                l.source
            ));
            fixes.push("Request hugepages-2Mi for the pod (resources.limits), or unset FI_EFA_USE_HUGE_PAGE.");
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
        let note =
            if notes.is_empty() { String::new() } else { format!(" (note: {})", notes.join("; ")) };
        return Some(
            Outcome::pass(format!("{}: EFA-related environment consistent{note}", who(p)))
                .with_evidence(ev),
        );
    };
    Some(o.with_evidence(ev).remediation(fixes.join(" ")))
}

/// Whether libfabric's `FI_PROVIDER` filter lets `name` through: a comma-separated list,
/// `^` in front negates the whole list, names compare case-insensitively
/// (`ofi_create_filter` / `ofi_apply_filter`, src/fabric.c, libfabric v2.6.0).
fn provider_filter_allows(filter: &str, name: &str) -> bool {
    let (negated, list) = match filter.trim().strip_prefix('^') {
        Some(rest) => (true, rest),
        None => (false, filter.trim()),
    };
    let listed = list.split(',').any(|x| x.trim().eq_ignore_ascii_case(name));
    listed != negated
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

    /// A log line's pid or glog tid names one inspected process, in the root's namespace or
    /// the process's own; pids that repeat across containers name none.
    #[test]
    fn log_streams_name_a_process_only_when_unambiguous() {
        let proc = |pid, ns| ProcessFacts { pid, ns_pid: Some(ns), ..ProcessFacts::default() };
        let ps = ProcessesFacts {
            processes: vec![proc(30829, 30829), proc(5001, 57), proc(6001, 1), proc(7001, 1)],
            ..ProcessesFacts::default()
        };
        let of = |s: &str| process_of_stream(&ps, s).map(|p| p.pid);
        assert_eq!(of("tid 30829"), Some(30829));
        assert_eq!(of("pid 5001"), Some(5001));
        assert_eq!(of("pid 57"), Some(5001), "a container's own pid");
        assert_eq!(of("pod-a pid 57"), Some(5001));
        assert_eq!(of("pod-a pid 5001"), None, "a pod's line counts in its own namespace");
        assert_eq!(of("pid 1"), None, "two containers' pid 1");
        assert_eq!(of("rank 3"), None);
        assert_eq!(of(""), None);
    }

    #[test]
    fn fi_provider_is_a_negatable_case_insensitive_list() {
        for (filter, allows) in [
            ("efa", true),
            ("EFA", true),
            ("tcp,efa", true),
            ("tcp", false),
            ("^efa", false),
            ("^tcp,shm", true),
            ("^TCP,EFA", false),
            ("efa;ofi_rxm", false),
        ] {
            assert_eq!(provider_filter_allows(filter, "efa"), allows, "{filter}");
        }
    }

    fn env_outcome(vars: &[(&str, &str)], f: &Facts) -> Outcome {
        let p = ProcessFacts {
            pid: 9,
            env: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            ..ProcessFacts::default()
        };
        environment(f, &p).unwrap()
    }

    /// Issue 15 item 4: the variables users get wrong, each judged as the component reads it.
    #[test]
    fn variables_users_get_wrong() {
        let mut f = Facts::default();
        f.rdma.devices = Some(vec![crate::facts::rdma::RdmaDevice {
            name: "rdmap79s0".into(),
            is_efa: true,
            ..Default::default()
        }]);
        for (vars, status, text) in [
            (&[("NCCL_NET", "AWS Libfabric")][..], Status::Fail, "\"Libfabric\""),
            (&[("NCCL_NET", "Libfabric")][..], Status::Pass, "consistent"),
            (&[("FI_HMEM_DISABLE_P2P", "1")][..], Status::Fail, "peer-to-peer"),
            (&[("FI_HMEM_CUDA_USE_DMABUF", "0")][..], Status::Warn, "dma-buf"),
            (&[("OFI_NCCL_DISABLE_DMABUF", "1")][..], Status::Warn, "aws-ofi-nccl's dma-buf"),
            (&[("NCCL_NET_GDR_LEVEL", "LOC")][..], Status::Fail, "never allows GPUDirect"),
            (&[("NCCL_NET_GDR_LEVEL", "PXB")][..], Status::Pass, "consistent"),
            (
                &[("RDMAV_FORK_SAFE", "1"), ("FI_EFA_USE_HUGE_PAGE", "1")][..],
                Status::Fail,
                "aborts",
            ),
            (&[("RDMAV_FORK_SAFE", "1")][..], Status::Pass, "consistent"),
            (&[("FI_PROVIDER", "^efa")][..], Status::Fail, "excludes the efa provider"),
            (&[("FI_PROVIDER", "EFA")][..], Status::Pass, "consistent"),
        ] {
            let o = env_outcome(vars, &f);
            assert_eq!(o.status, status, "{vars:?}: {}", o.summary);
            assert!(o.summary.contains(text), "{vars:?}: {}", o.summary);
        }
        // Out-of-tree driver on x86_64 whose P2P provider shows: harmless, a note.
        f.rdma.devices.as_mut().unwrap()[0].p2p = Some("NVIDIA".into());
        let o = env_outcome(&[("FI_HMEM_CUDA_USE_DMABUF", "0")], &f);
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        assert!(
            o.summary.contains("harmless here") && o.summary.contains("device/p2p"),
            "{}",
            o.summary
        );
        let o = env_outcome(&[("OFI_NCCL_DISABLE_DMABUF", "1")], &f);
        assert_eq!(o.status, Status::Pass, "{}", o.summary);
        // On arm64 (GB200) dma-buf is the GPU memory path whatever else is there.
        f.kernel.arch = Some("aarch64".into());
        let o = env_outcome(&[("FI_HMEM_CUDA_USE_DMABUF", "0")], &f);
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(o.summary.contains("arm64") && o.remediation.is_some(), "{}", o.summary);
        f.kernel.arch = None;
        f.rdma.devices.as_mut().unwrap()[0].p2p = None;
        // The in-tree EFA driver has only dma-buf: turning it off is a failure there.
        f.modules.loaded =
            Some(crate::parse::proc::modules("efa 143360 0 - Live 0x0000000000000000\n"));
        assert_eq!(env_outcome(&[("FI_HMEM_CUDA_USE_DMABUF", "0")], &f).status, Status::Fail);
        // A pod without hugepages-2Mi has a hugetlb limit of 0: FI_EFA_USE_HUGE_PAGE=1 faults.
        let p = ProcessFacts {
            pid: 9,
            env: [("FI_EFA_USE_HUGE_PAGE".to_string(), "1".to_string())].into(),
            hugetlb_2m_limit: Some(crate::facts::process::HugetlbLimit {
                bytes: Some(0),
                source: "sys/fs/cgroup/kubepods/pod1/hugetlb.2MB.max".into(),
            }),
            ..ProcessFacts::default()
        };
        let o = environment(&f, &p).unwrap();
        assert_eq!(o.status, Status::Fail, "{}", o.summary);
        assert!(o.summary.contains("SIGBUS"), "{}", o.summary);
        // NCCL_PROTO=simple is judged against the node's aws-ofi-nccl.
        f.efa_stack.aws_ofi_nccl.push(crate::facts::stack::FabricConsumer {
            version: Some("1.17.2".into()),
            ..Default::default()
        });
        assert_eq!(env_outcome(&[("NCCL_PROTO", "simple")], &f).status, Status::Warn);
        f.efa_stack.aws_ofi_nccl[0].version = Some("1.5.0".into());
        assert_eq!(env_outcome(&[("NCCL_PROTO", "simple")], &f).status, Status::Pass);
    }

    /// Issue 15: host-only registrations are a finding, unless the configuration asks for
    /// host KV buffers (vLLM `"kv_buffer_device":"cpu"`): then they are information.
    #[test]
    fn host_buffers_on_purpose_are_information() {
        let vma = "7f40597ff000-7f405b7ff000 rw-s 00000000 00:01 1470 /dev/zero (deleted)";
        let p = |cfg: &str| ProcessFacts {
            pid: 5,
            framework: Some("vllm".into()),
            cmdline: ["vllm", "serve", "m", "--kv-transfer-config", cfg].map(String::from).to_vec(),
            regions: vec![Region {
                address: "0x7f40597ff000".into(),
                size: Some(32 << 20),
                class: RegionClass::Host,
                vma: Some(vma.into()),
                source: "log:1".into(),
                origin: RegOrigin::Workload,
            }],
            ..ProcessFacts::default()
        };
        let o = registered_memory(&p(
            r#"{"kv_connector":"NixlConnector","kv_role":"kv_both","kv_buffer_device":"cpu"}"#,
        ))
        .unwrap();
        assert_eq!((o.status, o.value.as_deref()), (Status::Skip, Some("host-configured")));
        assert!(
            o.summary.contains("kv_buffer_device") && o.summary.contains("1 host"),
            "{}",
            o.summary
        );
        assert!(o.evidence[0].observed.as_deref().unwrap_or("").contains("/dev/zero"));
        let o = registered_memory(&p(r#"{"kv_connector":"NixlConnector","kv_role":"kv_both"}"#))
            .unwrap();
        assert_eq!((o.status, o.value.as_deref()), (Status::Fail, Some("host-only")));
        assert!(o.remediation.as_deref().unwrap().contains("kv_buffer_device"));
    }

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
            nixl_backend(&f, None, &p),
            registered_memory(&p),
            libfabric_copies(&p),
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
