//! Turns log events into verdicts. Each verdict reads several events together, never one
//! line alone:
//!
//! - EFAULT on a registration, with CUDA dma-buf lines from the same process, is the
//!   libfabric #12019 signature; the same EFAULT right after `gdr_pin_buffer failed` is a
//!   GDRCopy problem instead.
//! - ENOMEM beside EFA error 4112 is a memlock suspect; ENOMEM from the device's MR limits
//!   (kernel `REG_MR ... err -12`) is not.
//! - `fi_getinfo: provider efa output empty list` followed by a selected efa provider is not
//!   "no NICs" (libfabric probes with several hints).
//! - NET/IB is InfiniBand verbs, not EFA.
//! - A verdict may rest on any sufficient evidence, named in its summary: the backend from
//!   NIXL's plugin source files in glog lines or UCX's transport errors under a NIXL worker,
//!   NCCL's network from its socket, IB or channel lines when `Using network` is missing.
//! - Zero successful transfers is "no transfers seen", never success.
//! - When ranks or processes disagree, each outcome names the streams it holds.

use std::collections::BTreeMap;

use crate::facts::Facts;
use crate::facts::logs::{Analysis, Event};
use crate::verdict::{Evidence, Outcome, Status};

/// The result ids this module produces (the JSON contract of `efa-doctor logs`).
pub const IDS: [&str; 10] = [
    "nixl.backend",
    "nixl.backend-init",
    "nccl.net-plugin",
    "nccl.provider",
    "nccl.network",
    "nccl.gdrdma",
    "mr.registration",
    "mr.memlock",
    "kv.transfer",
    "transport.tcp-fallback",
];

/// Lines of evidence kept per result.
const EVIDENCE_LINES: usize = 4;
/// How far (in lines of the same stream) an EFAULT may follow `gdr_pin_buffer failed`.
const GDRCOPY_WINDOW: u64 = 40;

pub(crate) fn ev(a: &Analysis, e: &Event) -> Evidence {
    Evidence::new(a.source_of(e)).line(e.line).observed(e.text.clone())
}

/// At most [`EVIDENCE_LINES`] evidence lines, each line once: the first line of every rule
/// that fired comes first (a verdict resting on two kinds of evidence shows both), in the
/// order the lines arrived.
fn evs<'a>(a: &Analysis, events: impl IntoIterator<Item = &'a Event>) -> Vec<Evidence> {
    let mut all: Vec<&Event> = Vec::new();
    for e in events {
        if !all.iter().any(|x| x.file == e.file && x.line == e.line) {
            all.push(e);
        }
    }
    let mut chosen: Vec<&Event> = Vec::new();
    for e in &all {
        if chosen.len() < EVIDENCE_LINES && !chosen.iter().any(|c| c.rule == e.rule) {
            chosen.push(e);
        }
    }
    for e in &all {
        if chosen.len() >= EVIDENCE_LINES {
            break;
        }
        if !chosen.iter().any(|c| std::ptr::eq(*c, *e)) {
            chosen.push(e);
        }
    }
    chosen.sort_by_key(|e| (e.seq, e.line));
    chosen.into_iter().map(|e| ev(a, e)).collect()
}

/// Why efa-doctor believes the logs come from an EFA node, if it does.
fn efa_context(a: &Analysis, f: &Facts) -> Option<String> {
    let n = f.rdma.efa().count();
    if n > 0 {
        return Some(format!("this node has {n} EFA device(s)"));
    }
    if a.has("nixl.efa-ucx-warning") {
        return Some("NIXL reported Amazon EFA devices".into());
    }
    if a.of("ofi.provider").any(|e| e.cap("provider").is_some_and(|p| p.starts_with("efa"))) {
        return Some("aws-ofi-nccl selected the efa provider".into());
    }
    if a.of("ucx.transport").any(|e| e.cap("file").is_some_and(|f| f.starts_with("srd"))) {
        return Some("UCX's srd transport (EFA) logged".into());
    }
    if a.has("mooncake.efa") {
        return Some("Mooncake's EFA transport logged".into());
    }
    if a.events.iter().any(|e| e.text.contains(":efa:") && e.text.starts_with("libfabric"))
        || a.has("fabric.mr-failed")
    {
        return Some("libfabric's efa provider logged".into());
    }
    if let Some(t) = &f.instance.spec {
        if t.efa_devices > 0 {
            return Some(format!("{} is an EFA instance type", t.instance_type));
        }
    }
    None
}

/// Groups events by a captured value, keeping arrival order.
fn by_value<'a>(
    events: impl Iterator<Item = &'a Event>,
    value: impl Fn(&Event) -> String,
) -> BTreeMap<String, Vec<&'a Event>> {
    let mut m: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for e in events {
        m.entry(value(e)).or_default().push(e);
    }
    m
}

/// The streams (ranks, processes) these events came from, for a summary: ` (rank 1, rank 3)`.
fn streams_of(events: &[&Event]) -> String {
    let mut seen: Vec<&str> = Vec::new();
    for e in events {
        if !e.stream.is_empty() && !seen.contains(&e.stream.as_str()) {
            seen.push(&e.stream);
        }
    }
    match seen.len() {
        0 => String::new(),
        n if n <= 6 => format!(" (on {})", seen.join(", ")),
        n => format!(" (on {n} streams: {}, ...)", seen[..4].join(", ")),
    }
}

/// Adds the streams each outcome rests on when a check's outcomes disagree (mixed results
/// across ranks are reported per rank), and to every finding (which ranks are affected).
fn per_stream(mut out: Vec<(Outcome, Vec<&Event>)>) -> Vec<Outcome> {
    let mixed = out.len() > 1;
    for (o, events) in &mut out {
        if mixed || o.status != Status::Pass {
            o.summary.push_str(&streams_of(events));
        }
    }
    out.into_iter().map(|(o, _)| o).collect()
}

/// Whether the logs come from a NIXL worker (UCX lines alone may be ucx_info or Open MPI).
fn nixl_in_logs(a: &Analysis) -> bool {
    a.events.iter().any(|e| {
        e.kind.starts_with("nixl.") || e.rule.starts_with("nixl.") || e.text.contains("NIXL")
    })
}

/// The NIXL backend a plugin source file belongs to.
pub(crate) fn backend_of_source(file: &str) -> &'static str {
    match file.split('_').next().unwrap_or("") {
        "libfabric" => "LIBFABRIC",
        "ucx" => "UCX",
        "uccl" => "UCCL",
        "gpunetio" => "GPUNETIO",
        "mooncake" => "MOONCAKE",
        _ => "?",
    }
}

/// Backends the logs show in use without a `Backend X was instantiated` line, with why.
fn inferred_backends(a: &Analysis) -> BTreeMap<String, (Vec<&Event>, &'static str)> {
    let mut m: BTreeMap<String, (Vec<&Event>, &'static str)> = BTreeMap::new();
    for e in a.of("nixl.backend-source") {
        let b = backend_of_source(e.cap("file").unwrap_or(""));
        m.entry(b.into())
            .or_insert((Vec::new(), "NIXL's log lines come from that plugin's source files"))
            .0
            .push(e);
    }
    for e in a.of("nixl.rails") {
        m.entry("LIBFABRIC".into())
            .or_insert((Vec::new(), "the LIBFABRIC rail manager created rails"))
            .0
            .push(e);
    }
    if nixl_in_logs(a) {
        for e in a.of("ucx.transport") {
            m.entry("UCX".into())
                .or_insert((Vec::new(), "UCX transport errors under a NIXL worker"))
                .0
                .push(e);
        }
    }
    for e in a.of("mooncake.efa") {
        m.entry("MOONCAKE-EFA".into())
            .or_insert((Vec::new(), "Mooncake's transfer engine logged its EFA transport"))
            .0
            .push(e);
    }
    m
}

const BACKEND_FIX: &str = "Select the LIBFABRIC backend in the framework: vLLM `--kv-transfer-config '{\"kv_connector\":\"NixlConnector\",\"kv_role\":\"kv_both\",\"kv_connector_extra_config\":{\"backends\":[\"LIBFABRIC\"]}}'`; SGLang `SGLANG_DISAGGREGATION_NIXL_BACKEND=LIBFABRIC`; TRT-LLM `TRTLLM_NIXL_KVCACHE_BACKEND=LIBFABRIC`; Dynamo KVBM `DYN_KVBM_NIXL_BACKEND_LIBFABRIC=true`. Then check for `Backend LIBFABRIC was instantiated` at start-up.";

fn nixl_backend(a: &Analysis, efa: Option<&str>, claims: &[Claim]) -> Vec<Outcome> {
    let mut out: Vec<(Outcome, Vec<&Event>)> = Vec::new();
    let mut deferred: Vec<Outcome> = Vec::new();
    let groups =
        by_value(a.of("nixl.backend"), |e| e.cap("backend").unwrap_or("?").to_ascii_uppercase());
    let warned: Vec<&Event> = a.of("nixl.efa-ucx-warning").collect();
    // UCX's srd transport is UCX's own EFA path (UCX >= 1.19): on EFA, but not the backend
    // AWS supports for NIXL there.
    let srd: Vec<&Event> = a
        .of("ucx.transport")
        .filter(|e| e.cap("file").is_some_and(|f| f.starts_with("srd")))
        .collect();
    let judge = |backend: &str, how: &str| {
        match (backend, efa) {
        // UCX's srd transport (src/uct/ib/efa/srd/, openucx/ucx, UCX >= 1.19) drives EFA's
        // SRD queue pairs through efadv: the traffic is on EFA, not TCP, so it is not a
        // fallback. The lines that show it are UCX's errors, no proof the path works:
        // information, not a pass.
        ("UCX", Some(_)) if !srd.is_empty() => Outcome::skip(format!(
            "NIXL {how} the UCX backend over UCX's own SRD transport: its traffic is on EFA, not TCP (AWS supports NIXL's LIBFABRIC backend there; UCX SRD loses the peer on transient errors, nixl #1983)"
        )),
        ("LIBFABRIC", _) => Outcome::pass(format!("NIXL {how} the LIBFABRIC backend (EFA-capable)")),
        ("UCX", Some(why)) => Outcome::fail(format!(
            "NIXL {how} the UCX backend while {why}: KV-cache transfers run over UCX (host-staged or TCP, ~10-100× slower) instead of EFA"
        ))
        .remediation(BACKEND_FIX),
        ("UCX", None) => Outcome::warn(format!("NIXL {how} the UCX backend: on an EFA node this means KV-cache transfers bypass EFA"))
            .remediation(BACKEND_FIX),
        ("MOONCAKE-EFA", _) => Outcome::pass("KV transfers run on Mooncake's own EFA transport (libfabric efa provider), not on NIXL"),
        ("UCCL", _) => Outcome::pass(format!("NIXL {how} the UCCL backend (UCCL's own transport, not LIBFABRIC or UCX)")),
        ("GPUNETIO", _) => Outcome::pass(format!("NIXL {how} the GPUNETIO backend (DOCA GPUNetIO over verbs NICs, not EFA)")),
        (other, _) => Outcome::pass(format!("NIXL {how} the {other} backend")),
    }
    };
    for (backend, events) in &groups {
        let (events, skips) = split_claimed(
            a,
            claims,
            events.clone(),
            &format!("NIXL instantiated the {backend} backend"),
            backend,
        );
        deferred.extend(skips);
        if events.is_empty() {
            continue;
        }
        // TensorRT-LLM names its backend before creating it: a failure to create that same
        // backend after the last such line means it never ran. nixl.backend-init fails on
        // it; this check points there instead of passing on the intent.
        let last = events.iter().map(|e| e.seq).max().unwrap_or(0);
        let failed_after = BACKEND_FAILURE_KINDS
            .iter()
            .flat_map(|k| a.of(k))
            .any(|e| e.seq > last && failed_backend(e) == *backend);
        if failed_after {
            out.push((
                Outcome::skip(format!(
                    "skipped: the logs name the {backend} backend, then its creation failed (see nixl.backend-init)"
                ))
                .with_evidence(evs(a, events.iter().copied()))
                .value(backend.clone()),
                events.clone(),
            ));
            continue;
        }
        let mut o = judge(backend, "instantiated")
            .with_evidence(evs(a, events.iter().copied()))
            .value(backend.clone());
        if backend == "UCX" {
            o = o.with_evidence(evs(a, warned.iter().copied().take(1)));
        }
        out.push((o, events.clone()));
    }
    for (backend, (events, why)) in inferred_backends(a) {
        if groups.contains_key(&backend) || backend == "?" {
            continue;
        }
        let (events, skips) = split_claimed(
            a,
            claims,
            events,
            &format!("NIXL runs the {backend} backend (from its plugin's log lines)"),
            &backend,
        );
        deferred.extend(skips);
        if events.is_empty() {
            continue;
        }
        let mut o = judge(&backend, "runs");
        if backend != "MOONCAKE-EFA" {
            o.summary.push_str(&format!(
                " (inferred: {why}; no `Backend {backend} was instantiated` line)"
            ));
        }
        let o = o.with_evidence(evs(a, events.iter().copied())).value(backend.clone());
        out.push((o, events));
    }
    if out.is_empty() && deferred.is_empty() && !warned.is_empty() {
        out.push((
            Outcome::fail(
                "NIXL warned that EFA devices were detected but the UCX backend was configured",
            )
            .with_evidence(evs(a, warned.iter().copied()))
            .remediation(BACKEND_FIX)
            .value("UCX"),
            warned.clone(),
        ));
    }
    let mut out = per_stream(out);
    out.extend(deferred);
    out
}

fn plugin_name(e: &Event) -> Option<String> {
    if let Some(b) = e.cap("backend").or(e.cap("name")) {
        return Some(b.to_ascii_uppercase());
    }
    let p = e.cap("path")?;
    let file = p.rsplit('/').next()?;
    file.strip_prefix("libplugin_").and_then(|f| f.strip_suffix(".so")).map(String::from)
}

fn nixl_backend_init(a: &Analysis, claims: &[Claim]) -> Vec<Outcome> {
    let out = nixl_backend_failures(a, claims);
    if out.is_empty() && a.has("nixl.backend") {
        let ok: Vec<&Event> = a.of("nixl.backend").collect();
        return vec![
            Outcome::pass("every NIXL backend the logs mention was created")
                .with_evidence(evs(a, ok)),
        ];
    }
    out
}

/// The backend a failure line is about: the plugin or backend it names, else LIBFABRIC
/// for the LIBFABRIC backend's own lines ("Failed to initialize libfabric backend").
pub(crate) fn failed_backend(e: &Event) -> String {
    plugin_name(e).unwrap_or_else(|| {
        if e.rule.starts_with("nixl.libfabric") { "LIBFABRIC".into() } else { "?".into() }
    })
}

/// Why a backend failed, from its lines: the loader's or NIXL's own message.
pub(crate) fn failure_reason(events: &[&Event]) -> String {
    events
        .iter()
        .find_map(|e| e.cap("error").map(String::from))
        .or_else(|| events.iter().find_map(|e| e.cap("reason").map(String::from)))
        .unwrap_or_else(|| "see the evidence lines".into())
}

pub(crate) fn backend_failure_fix(backend: &str, why: &str) -> &'static str {
    if why.contains("FABRIC_1.") || why.contains("version") {
        "The plugin needs a newer libfabric than the one it resolves: put the EFA installer's libfabric first (`LD_LIBRARY_PATH=/opt/amazon/efa/lib:...`) or use a NIXL built against it (`efa-doctor --only stack.nixl`)."
    } else if why.contains("cannot open shared object file") {
        "A library the plugin needs is missing from the worker's image or loader path (the error names it): install it (for NIXL's CUDA wheels, the matching CUDA runtime) or add its directory to LD_LIBRARY_PATH, then restart the worker."
    } else if backend == "LIBFABRIC" {
        "Check that the pod has the EFA devices (`vpc.amazonaws.com/efa`), that libfabric finds the efa provider (`fi_info -p efa`), and that NIXL_PLUGIN_DIR points at the directory holding libplugin_LIBFABRIC.so."
    } else {
        "Check that the backend's plugin exists in NIXL_PLUGIN_DIR (or beside libnixl) and that its libraries resolve (`ldd libplugin_<NAME>.so`)."
    }
}

/// The kinds of NIXL's lines about creating backends.
pub(crate) const BACKEND_FAILURE_KINDS: [&str; 3] =
    ["nixl.backend-failed", "nixl.backend-missing", "nixl.plugin-load-failed"];

fn nixl_backend_failures(a: &Analysis, claims: &[Claim]) -> Vec<Outcome> {
    let mut deferred: Vec<Outcome> = Vec::new();
    let mut failures: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for e in a.of("mooncake.rdma-failed") {
        failures.entry("MOONCAKE-RDMA".into()).or_default().push(e);
    }
    for e in BACKEND_FAILURE_KINDS.iter().flat_map(|k| a.of(k)) {
        failures.entry(failed_backend(e)).or_default().push(e);
    }
    let mut out: Vec<Outcome> = failures
        .into_iter()
        .filter_map(|(backend, mut events)| {
            events.sort_by_key(|e| e.seq);
            let why = failure_reason(&events);
            let what = format!("NIXL could not load or initialise the {backend} backend: {why}");
            let (events, skips) = split_claimed(a, claims, events, &what, &backend);
            deferred.extend(skips);
            if events.is_empty() {
                return None;
            }
            let why = failure_reason(&events);
            if backend == "MOONCAKE-RDMA" {
                return Some(Outcome::fail(format!("Mooncake's verbs RDMA transport could not create a queue pair: {why}"))
                    .with_evidence(evs(a, events))
                    .remediation("EFA has no RC queue pairs: run Mooncake's EFA transport (MOONCAKE_PROTOCOL=efa, a Mooncake wheel built with USE_EFA=ON, e.g. mooncake-transfer-engine-efa-cuda13), or NIXL's LIBFABRIC backend.")
                    .value(backend));
            }
            let fix = backend_failure_fix(&backend, &why);
            Some(Outcome::fail(format!("NIXL could not load or initialise the {backend} backend: {why}"))
                .with_evidence(evs(a, events))
                .remediation(fix)
                .value(backend))
        })
        .collect();
    out.extend(deferred);
    out
}

/// Splits a verdict's events into those it still judges and skips for the lines a process
/// check already reports with its own finding (one root cause, one failure).
fn split_claimed<'a>(
    a: &Analysis,
    claims: &[Claim],
    events: Vec<&'a Event>,
    what: &str,
    value: &str,
) -> (Vec<&'a Event>, Vec<Outcome>) {
    let claim_of = |e: &Event| claims.iter().position(|c| c.lines.contains(&(e.file, e.line)));
    let mut kept = Vec::new();
    let mut by_claim: BTreeMap<usize, Vec<&Event>> = BTreeMap::new();
    for e in events {
        match claim_of(e) {
            Some(i) => by_claim.entry(i).or_default().push(e),
            None => kept.push(e),
        }
    }
    let skips = by_claim
        .into_iter()
        .map(|(i, events)| {
            let c = &claims[i];
            Outcome::skip(format!(
                "skipped: {what}; {} reports it for {} as part of one finding (see {})",
                c.check, c.who, c.check
            ))
            .with_evidence(evs(a, events))
            .value(value)
        })
        .collect();
    (kept, skips)
}

/// Whether a plugin dlopen error says the plugin itself is absent (rather than present but
/// unloadable: a missing dependency, an undefined symbol, an unsupported API version).
fn plugin_absent(e: &Event) -> bool {
    let lib = e.cap("lib").unwrap_or("");
    let err = e.cap("err").unwrap_or("");
    let own_enoent = err.starts_with("cannot open shared object file: No such file");
    // 2.21: `Plugin load returned 2 : <dlerror> : when loading <plugin>`; the dlerror names
    // the library that is missing, which may be a dependency of the plugin.
    let loading = err.rsplit_once("when loading ").map(|(_, l)| l.trim());
    own_enoent && loading.is_none_or(|l| l == lib)
}

fn nccl_net_plugin(a: &Analysis, efa: Option<&str>) -> Vec<Outcome> {
    let loaded: Vec<&Event> = a.of("nccl.plugin-loaded").chain(a.of("ofi.init")).collect();
    let (absent, unloadable): (Vec<&Event>, Vec<&Event>) =
        a.of("nccl.plugin-dlerror").partition(|e| plugin_absent(e));
    let missing: Vec<&Event> = a.of("nccl.plugin-missing").chain(absent).collect();
    let failed: Vec<&Event> =
        a.of("ofi.init-failed").chain(a.of("nccl.plugin-init-failed")).collect();
    let mut out: Vec<(Outcome, Vec<&Event>)> = Vec::new();
    if !failed.is_empty() {
        out.push((
            Outcome::fail("the NCCL net plugin (aws-ofi-nccl) loaded but failed to initialise: NCCL moves on to its internal IB or Socket transport")
                .with_evidence(evs(a, failed.clone()))
                .remediation("Read the NET/OFI lines before the failure: no usable provider (EFA devices not allocated to the pod, libfabric without efa), libfabric too old (aws-ofi-nccl >= 1.13 needs >= 1.22), or GDR unavailable on a GDR-required instance (kernel.gpudirect-path).")
                .value("init-failed"),
            failed.clone(),
        ));
    }
    let unloadable_only: Vec<&Event> = unloadable
        .iter()
        .copied()
        .filter(|m| !loaded.iter().any(|l| l.stream == m.stream))
        .collect();
    if !unloadable_only.is_empty() {
        let status = if efa.is_some() { Status::Fail } else { Status::Warn };
        let e = unloadable_only[0];
        out.push((
            Outcome::new(status, format!(
                "NCCL found the net plugin {} but could not load it ({}): it uses its internal transports, not EFA",
                e.cap("lib").unwrap_or("libnccl-net.so"),
                e.cap("err").unwrap_or("dlopen failed")
            ))
            .with_evidence(evs(a, unloadable_only.iter().copied()))
            .remediation("The plugin is there but cannot be used: a library it needs is not on the loader path (put /opt/amazon/efa/lib and the plugin's directory on LD_LIBRARY_PATH; `ldd` the plugin), or it was built for another NCCL plugin API (use the aws-ofi-nccl release that matches this NCCL).")
            .value("load-failed"),
            unloadable_only.clone(),
        ));
    }
    // A stream that reports the plugin missing and never loads it.
    let missing_only: Vec<&Event> = missing
        .iter()
        .copied()
        .filter(|m| !loaded.iter().chain(unloadable.iter()).any(|l| l.stream == m.stream))
        .collect();
    if !missing_only.is_empty() {
        let status = if efa.is_some() { Status::Fail } else { Status::Warn };
        let ctx = efa.map(|w| format!(" while {w}")).unwrap_or_default();
        out.push((
            Outcome::new(status, format!("NCCL found no net plugin (libnccl-net.so){ctx}: it uses its internal transports, not EFA"))
                .with_evidence(evs(a, missing_only.iter().copied()))
                .remediation("Install aws-ofi-nccl in the image and make NCCL find it: put its lib directory (/opt/amazon/ofi-nccl/lib or /opt/aws-ofi-nccl/lib) on LD_LIBRARY_PATH, or set NCCL_NET_PLUGIN=ofi (loads libnccl-net-ofi.so).")
                .value("missing"),
            missing_only.clone(),
        ));
    }
    if !loaded.is_empty() && failed.is_empty() {
        let v = loaded
            .iter()
            .find_map(|e| e.cap("version").or(e.cap("name")).map(String::from))
            .unwrap_or_default();
        out.push((
            Outcome::pass(format!("NCCL loaded its net plugin {v}"))
                .with_evidence(evs(a, loaded.iter().copied()))
                .value("loaded"),
            loaded.clone(),
        ));
    }
    per_stream(out)
}

fn nccl_provider(a: &Analysis, efa: Option<&str>) -> Vec<Outcome> {
    let mut out = Vec::new();
    let groups = by_value(a.of("ofi.provider"), |e| {
        let p = e.cap("provider").unwrap_or("?").to_ascii_lowercase();
        let core = p.split(';').next().unwrap_or(&p).to_string();
        match core.as_str() {
            "efa" | "tcp" | "sockets" => core,
            _ => p,
        }
    });
    for (prov, events) in &groups {
        let nics = events
            .iter()
            .find_map(|e| e.cap("nics"))
            .map(|n| format!(", {n} NICs"))
            .unwrap_or_default();
        let fabric = events
            .iter()
            .find_map(|e| e.cap("fabric"))
            .map(|f| format!(", fabric {f}"))
            .unwrap_or_default();
        let o = if prov == "efa" {
            Outcome::pass(format!("aws-ofi-nccl selected the efa provider{fabric}{nics}"))
        } else if prov != "tcp" && prov != "sockets" && efa.is_none() {
            Outcome::pass(format!(
                "aws-ofi-nccl selected the {prov} provider{fabric}{nics} (not an EFA fabric)"
            ))
        } else {
            Outcome::fail(format!("aws-ofi-nccl selected the {prov} provider: NCCL traffic does not use EFA"))
                .remediation("libfabric offered no efa provider to aws-ofi-nccl: check that the pod has the EFA devices (`vpc.amazonaws.com/efa`) and that the EFA installer's libfabric comes first on LD_LIBRARY_PATH (`efa-doctor --only libfabric,stack`). Do not set FI_PROVIDER to tcp or sockets.")
        };
        out.push(o.with_evidence(evs(a, events.iter().copied())).value(prov.clone()));
    }
    let none: Vec<&Event> = a.of("ofi.no-provider").collect();
    if !none.is_empty() && !groups.contains_key("efa") {
        // libfabric's "fi_getinfo: provider efa output empty list" is shown as context only.
        let empty: Vec<&Event> = a.of("fabric.getinfo-empty").collect();
        out.push(
            Outcome::fail("aws-ofi-nccl found no eligible libfabric provider (no usable EFA NIC)")
                .with_evidence(evs(a, none))
                .with_evidence(evs(a, empty.into_iter().take(1)))
                .remediation("The efa provider saw no usable device: request `vpc.amazonaws.com/efa` for the pod (or run it privileged), check /dev/infiniband inside the container, and run `efa-doctor` there (efa.devices, host.privileges, libfabric.efa-provider).")
                .value("none"),
        );
    }
    out
}

fn normalise_network(n: &str) -> String {
    let l = n.trim().to_ascii_lowercase();
    if l.contains("libfabric") || l.contains("ofi") {
        "Libfabric".into()
    } else if l.starts_with("socket") {
        "Socket".into()
    } else if l == "ib" || l.starts_with("ib") {
        "IB".into()
    } else {
        n.trim().to_string()
    }
}

/// Each stream's NCCL network: its `Using network` line, or else what its channel lines
/// (`via NET/Socket/0`), or its socket or IB transport lines say, when the stream shows no
/// plugin at work. The flag says the network was inferred.
fn nccl_networks(a: &Analysis) -> Vec<(String, &Event, bool)> {
    let mut out: Vec<(String, &Event, bool)> = a
        .of("nccl.network")
        .map(|e| (normalise_network(e.cap("network").unwrap_or("?")), e, false))
        .collect();
    let stated: Vec<&str> = out.iter().map(|(_, e, _)| e.stream.as_str()).collect();
    let plugin_streams: Vec<&str> = a
        .of("ofi.provider")
        .chain(a.of("ofi.init"))
        .chain(a.of("nccl.plugin-loaded"))
        .map(|e| e.stream.as_str())
        .collect();
    let mut inferred: Vec<(String, &Event, bool)> = Vec::new();
    for e in a.of("nccl.channel") {
        if !stated.contains(&e.stream.as_str()) {
            inferred.push((normalise_network(e.cap("net").unwrap_or("?")), e, true));
        }
    }
    let channel_streams: Vec<String> = inferred.iter().map(|(_, e, _)| e.stream.clone()).collect();
    for (kind, net) in [("nccl.socket", "Socket"), ("nccl.ib", "IB")] {
        for e in a.of(kind) {
            let s = e.stream.as_str();
            // Sockets on loopback only: a single-node run, no inter-node network at all.
            let loopback =
                e.cap("ifs").is_some_and(|i| i.starts_with("[0]lo:") && !i.contains("[1]"));
            if !loopback
                && !stated.contains(&s)
                && !plugin_streams.contains(&s)
                && !channel_streams.iter().any(|c| c == s)
            {
                inferred.push((net.to_string(), e, true));
            }
        }
    }
    out.extend(inferred);
    out
}

fn nccl_network(a: &Analysis, efa: Option<&str>) -> Vec<Outcome> {
    let nets = nccl_networks(a);
    let mut groups: BTreeMap<String, Vec<(&Event, bool)>> = BTreeMap::new();
    for (net, e, inferred) in nets {
        groups.entry(net).or_default().push((e, inferred));
    }
    let out = groups
        .into_iter()
        .map(|(net, events)| {
            let o = match net.as_str() {
                "Libfabric" => Outcome::pass("NCCL uses the Libfabric network (aws-ofi-nccl)"),
                "Socket" => Outcome::fail("NCCL uses its Socket network: inter-node traffic goes over TCP, not EFA")
                    .remediation("Make NCCL load aws-ofi-nccl (see nccl.net-plugin) and check that it selects the efa provider (nccl.provider)."),
                "IB" if efa.is_some() => Outcome::fail(format!(
                    "NCCL uses NET/IB (InfiniBand verbs) while {}: NET/IB is not EFA, aws-ofi-nccl was not used",
                    efa.unwrap_or("")
                ))
                .remediation("On EFA, NCCL must use aws-ofi-nccl's Libfabric network: install the plugin and put it on LD_LIBRARY_PATH (or NCCL_NET_PLUGIN=ofi)."),
                "IB" => Outcome::pass("NCCL uses NET/IB (InfiniBand verbs on an InfiniBand/RoCE host; not an EFA path, not a failure)"),
                other => Outcome::pass(format!("NCCL uses the {other} network")),
            };
            let mut o = o;
            if events.iter().all(|(_, inferred)| *inferred) {
                let from = if events.iter().any(|(e, _)| e.kind == "nccl.channel") {
                    "its channel lines"
                } else if net == "IB" {
                    "`NET/IB : Using`"
                } else {
                    "`NET/Socket : Using`"
                };
                o.summary.push_str(&format!(" (inferred from {from}; no `Using network` line)"));
            }
            let list: Vec<&Event> = events.iter().map(|(e, _)| *e).collect();
            (o.with_evidence(evs(a, list.iter().copied())).value(net), list)
        })
        .collect();
    per_stream(out)
}

fn is_libfabric_net(n: &str) -> bool {
    normalise_network(n) == "Libfabric"
}

fn nccl_gdrdma(a: &Analysis, f: &Facts) -> Vec<Outcome> {
    let mut enabled: Vec<&Event> = Vec::new();
    let mut disabled: Vec<&Event> = Vec::new();
    for e in a.of("nccl.channel") {
        if !e.cap("net").is_some_and(is_libfabric_net) {
            continue; // NET/IB, NET/Socket channels say nothing about EFA GPUDirect
        }
        if e.cap("suffix").is_some_and(|s| s.contains("GDRDMA")) {
            enabled.push(e);
        } else {
            disabled.push(e);
        }
    }
    for e in a.of("nccl.gdr") {
        if !e.cap("net").is_some_and(is_libfabric_net) {
            continue;
        }
        if e.cap("state") == Some("Enabled") { enabled.push(e) } else { disabled.push(e) }
    }
    let gdr_off: Vec<&Event> = a.of("ofi.gdr-disabled").collect();
    let mut out = Vec::new();
    if !disabled.is_empty() || !gdr_off.is_empty() {
        let expected = f.instance.spec.as_ref().map(|s| s.gpudirect);
        let required = gdr_off.iter().any(|e| e.text.contains("GDR-supported instance"))
            || expected == Some(true);
        let summary = "NCCL's network transfers run without GPUDirect RDMA (no /GDRDMA on Libfabric channels): data is staged through host memory";
        let o = if required {
            Outcome::fail(summary)
        } else if expected == Some(false) {
            Outcome::pass("NCCL runs without GPUDirect RDMA, as expected on this instance type")
        } else {
            Outcome::warn(summary)
        };
        let o = if o.status == Status::Pass {
            o
        } else {
            o.remediation("Give EFA a GPU memory path (kernel.gpudirect-path: dma-buf on kernel >= 5.12 with the open NVIDIA module, or efa_nv_peermem), and check aws-ofi-nccl's 'GDR' lines; NCCL_NET_GDR_LEVEL must not forbid it.")
        };
        let mut ev_lines: Vec<&Event> = gdr_off.clone();
        ev_lines.extend(disabled.iter().copied());
        out.push(o.with_evidence(evs(a, ev_lines)).value("disabled"));
    }
    if !enabled.is_empty() {
        out.push(
            Outcome::pass("NCCL uses GPUDirect RDMA on its Libfabric channels (/GDRDMA)")
                .with_evidence(evs(a, enabled))
                .value("enabled"),
        );
    }
    out
}

/// Classifies a registration error text.
fn errno_class(text: &str) -> &'static str {
    let t = text.to_ascii_lowercase();
    if t.contains("protocol not supported") || t.contains("-93") {
        "other"
    } else if t.contains("bad address") || t.contains("-14") {
        "efault"
    } else if t.contains("cannot allocate memory") || t.contains("-12") {
        "enomem"
    } else if t.contains("not supported") || t.contains("-95") {
        "enotsup"
    } else if t.contains("invalid argument") || t.contains("-22") {
        "einval"
    } else {
        "other"
    }
}

/// What an EFAULT from the efa provider is, and the lines that tell.
struct EfaultCause<'a> {
    /// `libfabric-12019`, `no-peer-memory`, `no-gpu-import`, `host-memory`.
    name: &'static str,
    summary: String,
    fix: &'static str,
    evidence: Vec<&'a Event>,
}

/// libfabric #12019 (CUDA memory registered with plain ibv_reg_mr, failing on GB200) needs
/// a libfabric older than the dma-buf try/fallback rewrite (2.5.0) and a CUDA buffer; on
/// x86_64 that old path works wherever the EFA driver has its NVIDIA peer-memory provider
/// (REFERENCE §4.1). Otherwise the EFAULT is something else.
fn efault_cause<'a>(a: &'a Analysis, f: &Facts, failed: &[&'a Event]) -> EfaultCause<'a> {
    let same = |e: &&Event| failed.iter().any(|x| x.stream == e.stream);
    // The process set up CUDA dma-buf (libfabric's CUDA hmem lines, dma-buf exports):
    // its registrations include CUDA memory.
    let cuda: Vec<&Event> = a.of("fabric.dmabuf").filter(same).collect();
    // The libfabric the process ran: what aws-ofi-nccl logged, else the node's.
    let logged = a.of("ofi.init").filter(same).find_map(|e| e.cap("libfabric")).map(String::from);
    // Else the node's: the loaded library's answer, or the first copy on the loader path.
    let node = f.libfabric.version.clone().or_else(|| {
        f.efa_stack.libfabric.iter().filter(|c| c.on_loader_path).find_map(|c| c.release.clone())
    });
    let version = logged.or(node);
    let fixed = version
        .as_deref()
        .and_then(crate::parse::Version::parse)
        .is_some_and(|v| !v.below(&[2, 5]));
    let lf =
        version.as_deref().map(|v| format!("libfabric {v}")).unwrap_or_else(|| "libfabric".into());
    let x86 = f.kernel.arch.as_deref() == Some("x86_64");
    const PATH_FIX: &str = "Give the EFA device a way to reach GPU memory: dma-buf (kernel >= 5.12 and the NVIDIA open kernel module; kernel.gpudirect-path) or the out-of-tree EFA driver's NVIDIA P2P provider (`device/p2p` reads NVIDIA, efa_nv_peermem); `efa-doctor probe mr` tells which path works.";
    if cuda.is_empty() {
        return EfaultCause {
            name: "host-memory",
            summary: "memory registration failed with EFAULT (Bad address), and nothing in this process's log shows CUDA memory: for host memory the kernel could not pin the range (not mapped, freed, or a PROT_NONE reservation), for GPU memory there is no import path".into(),
            fix: "Check which buffer failed (NIXL logs `fi_mr_reg failed on rail N: Bad address (buffer=0x...)`; `efa-doctor --pid PID --addr ADDR` says whether it is GPU memory). For GPU memory: kernel.gpudirect-path and `efa-doctor probe mr`; for host memory, the application registered memory it does not own.",
            evidence: Vec::new(),
        };
    }
    if fixed {
        return EfaultCause {
            name: "no-gpu-import",
            summary: format!(
                "memory registration failed with EFAULT (Bad address) on {lf}, which registers CUDA memory through dma-buf and falls back to ibv_reg_mr: neither import worked, so the device has no path to this GPU memory (not libfabric #12019, fixed in 2.5.0)"
            ),
            fix: PATH_FIX,
            evidence: cuda,
        };
    }
    if x86 {
        return EfaultCause {
            name: "no-peer-memory",
            summary: format!(
                "memory registration failed with EFAULT (Bad address): {lf} registers CUDA memory with plain ibv_reg_mr, which on x86_64 works only through the EFA driver's NVIDIA peer-memory provider, and this node has none (not the GB200 bug: the same old path succeeds on x86 with the out-of-tree driver)"
            ),
            fix: "Use the out-of-tree EFA driver with its NVIDIA P2P provider (`device/p2p` reads NVIDIA; efa_nv_peermem with the open NVIDIA module), or libfabric >= 2.5.0, which registers CUDA memory through dma-buf (kernel >= 5.12, NVIDIA open module). Confirm with `efa-doctor probe mr`.",
            evidence: cuda,
        };
    }
    let arm64 = f.kernel.arch.as_deref() == Some("aarch64");
    EfaultCause {
        name: "libfabric-12019",
        summary: format!(
            "memory registration failed with EFAULT (Bad address) although CUDA exports dma-buf in the same process: {lf} registered CUDA memory with plain ibv_reg_mr, the libfabric #12019 signature{}",
            if arm64 { " on this arm64 node" } else { " (GB200 / arm64 64K pages)" }
        ),
        fix: "Use libfabric >= 2.5.0 (ofiwg/libfabric v2.5.1+), or rebuild the EFA installer's libfabric with `efa_mr_is_cuda(efa_mr)` added to the dma-buf condition in prov/efa/src/efa_mr.c; rebuild aws-ofi-nccl against it. Confirm with `efa-doctor probe mr`.",
        evidence: cuda,
    }
}

fn mr_registration(a: &Analysis, f: &Facts) -> Vec<Outcome> {
    let failures: Vec<&Event> = a
        .of("fabric.mr-failed")
        .chain(a.of("nixl.mr-failed"))
        .chain(a.of("ofi.mr-failed"))
        .collect();
    let mut groups: BTreeMap<&'static str, Vec<&Event>> = BTreeMap::new();
    let memlock_streams: Vec<&str> = a
        .of("fabric.abort")
        .filter(|e| e.cap("efa") == Some("4112"))
        .map(|e| e.stream.as_str())
        .collect();
    for e in &failures {
        let text =
            e.cap("error").or(e.cap("error2")).or(e.cap("rc")).or(e.cap("rc2")).unwrap_or(&e.text);
        let mut class = errno_class(text);
        if class == "efault" {
            // EFAULT right after GDRCopy failed to pin the same process's buffer.
            let gdr = a.of("fabric.gdrcopy-failed").any(|g| {
                g.stream == e.stream
                    && g.seq < e.seq
                    && e.line.saturating_sub(g.line) <= GDRCOPY_WINDOW
            });
            if gdr {
                class = "gdrcopy";
            }
        }
        if class == "enomem" && memlock_streams.contains(&e.stream.as_str()) {
            continue; // reported by mr.memlock
        }
        groups.entry(class).or_default().push(e);
    }
    if a.has("ucx.no-cuda") {
        groups.insert("ucx-no-cuda", a.of("ucx.no-cuda").collect());
    }
    for e in a.of("ucx.mr-failed") {
        let class = if errno_class(e.cap("error").unwrap_or("")) == "efault" {
            "ucx-efault"
        } else {
            "other"
        };
        groups.entry(class).or_default().push(e);
    }
    let device_limit_only: Vec<&Event> = a.of("kernel.reg-mr-failed").collect();
    if groups.is_empty() && !device_limit_only.is_empty() {
        groups.insert("enomem", device_limit_only);
    }
    if groups.is_empty() {
        let p2p: Vec<&Event> =
            a.of("fabric.p2p-unavailable").chain(a.of("nixl.registermem-failed")).collect();
        if !p2p.is_empty() {
            groups.insert("other", p2p);
        }
    }
    if groups.is_empty() {
        let ok: Vec<&Event> = a.of("fabric.mr-registered").collect();
        if !ok.is_empty() {
            return vec![
                Outcome::pass(format!(
                    "{} memory registration(s) succeeded, none failed",
                    a.counts.get("fabric.mr-registered").copied().unwrap_or(0)
                ))
                .with_evidence(evs(a, ok)),
            ];
        }
        return Vec::new();
    }
    let device_limit: Vec<&Event> = a
        .of("kernel.reg-mr-failed")
        .filter(|e| e.cap("err").or(e.cap("err2")) == Some("-12"))
        .collect();
    groups
        .into_iter()
        .map(|(class, events)| {
            let mut extra: Vec<&Event> = Vec::new();
            let mut cause_detail: Option<&'static str> = None;
            let (summary, fix) = match class {
                "efault" => {
                    let cause = efault_cause(a, f, &events);
                    extra.extend(cause.evidence.iter().copied().take(2));
                    cause_detail = Some(cause.name);
                    (cause.summary, cause.fix)
                }
                "gdrcopy" => (
                    "memory registration failed with EFAULT right after GDRCopy failed to pin the GPU buffer (gdr_pin_buffer failed): a GDRCopy problem, not libfabric #12019".to_string(),
                    "GDRCopy cannot pin this buffer (often memory owned by another process or a gdrdrv/driver mismatch): check `lsmod | grep gdrdrv` and its version against the NVIDIA driver, or disable GDRCopy for libfabric with FI_HMEM_CUDA_USE_GDRCOPY=0.",
                ),
                "enomem" if !device_limit.is_empty() => {
                    extra.extend(device_limit.iter().copied().take(1));
                    (
                        "memory registration failed with ENOMEM from the EFA device's MR limits (kernel REG_MR err -12), not the memlock limit".to_string(),
                        "The device ran out of MR resources: register fewer, larger regions (FI_EFA_MR_MAX_CACHED_COUNT, fewer NIXL registrations) or smaller totals per device.",
                    )
                }
                "enomem" => (
                    "memory registration failed with ENOMEM (Cannot allocate memory)".to_string(),
                    "Check the workload's memlock limit (process.memlock, host.memlock: unlimited or CAP_IPC_LOCK) and the total size registered per device.",
                ),
                "enotsup" => (
                    "memory registration failed with EOPNOTSUPP: the dma-buf export failed and there was no fallback, typically no current CUDA context on the registering thread".to_string(),
                    "Make a CUDA context current before fi_mr_reg (cuCtxSetCurrent on the device's primary context); with NIXL, update to a release that manages the context per rail.",
                ),
                "einval" => (
                    "memory registration failed with EINVAL: the registration attributes were refused".to_string(),
                    "Check FI_MR_DMABUF use against the libfabric API version (>= 1.20) and the access flags against the device's RDMA read/write support.",
                ),
                "ucx-efault" => (
                    "UCX's ibv_reg_mr of the buffer failed with EFAULT: UCX registers GPU memory through verbs peer memory, which EFA does not provide".to_string(),
                    "On EFA, use NIXL's LIBFABRIC backend (UCX's verbs transports do not reach EFA's GPU memory path).",
                ),
                "ucx-no-cuda" => (
                    "UCX has no CUDA transport: VRAM is seen as host memory and cannot be registered".to_string(),
                    "Use a UCX built with CUDA (cuda_copy, cuda_ipc), or on EFA switch NIXL to the LIBFABRIC backend.",
                ),
                _ if events.iter().any(|e| e.kind == "fabric.p2p-unavailable") => (
                    "libfabric's EFA provider could not register a CUDA buffer at start-up: transfers that need GPU peer-to-peer access will fail".to_string(),
                    "Give EFA a GPU memory path (kernel.gpudirect-path): dma-buf (kernel >= 5.12, open NVIDIA module) or the out-of-tree EFA driver's P2P provider.",
                ),
                _ if events.iter().any(|e| e.kind == "nixl.registermem-failed") => (
                    "NIXL could not register memory with any backend".to_string(),
                    "No backend supports this memory type: LIBFABRIC without CUDA (no FI_HMEM) or UCX without CUDA. Check the backend lines above and `efa-doctor --only stack,libfabric`.",
                ),
                _ => (
                    "memory registration failed".to_string(),
                    "Read the libfabric warning lines around the failure (FI_LOG_LEVEL=warn) and run `efa-doctor probe mr`.",
                ),
            };
            let mut all: Vec<&Event> = events.clone();
            all.extend(extra);
            all.sort_by_key(|e| e.seq);
            let o = Outcome::fail(summary).with_evidence(evs(a, all)).remediation(fix).value(class);
            match cause_detail {
                Some(c) => o.details(serde_json::json!({ "cause": c })),
                None => o,
            }
        })
        .collect()
}

fn mr_memlock(a: &Analysis) -> Vec<Outcome> {
    let aborts: Vec<&Event> =
        a.of("fabric.abort").filter(|e| e.cap("efa") == Some("4112")).collect();
    if aborts.is_empty() {
        return Vec::new();
    }
    let enomem: Vec<&Event> = a
        .of("fabric.abort")
        .filter(|e| e.cap("code") == Some("-12") && aborts.iter().any(|x| x.stream == e.stream))
        .collect();
    let mut all: Vec<&Event> = enomem.clone();
    all.extend(aborts.iter().copied());
    all.sort_by_key(|e| e.seq);
    let summary = if enomem.is_empty() {
        "libfabric's EFA provider aborted with EFA error 4112 (failure to post internal receive buffers): the memlock limit is the usual cause"
    } else {
        "libfabric's EFA provider aborted with ENOMEM and EFA error 4112 (failure to post internal receive buffers): the process hit its memlock limit"
    };
    vec![Outcome::fail(summary)
        .with_evidence(evs(a, all))
        .remediation("Run the workload with an unlimited memlock limit: `ulimit -l unlimited`, `--ulimit memlock=-1:-1` (Docker), LimitMEMLOCK=infinity (systemd); or grant CAP_IPC_LOCK. Check it with `efa-doctor --pid <PID>` (process.memlock).")
        .value("4112")]
}

/// The successful-transfer count a metrics line reports: `Num successful transfers=N`, or
/// `num_successful_transfers=N` inside the early `KVTransferAggregatedStats(...)` form.
fn successful_transfers(e: &Event) -> Option<u64> {
    if let Some(n) = e.cap("ok") {
        return n.parse().ok();
    }
    let raw = e.cap("raw")?;
    let (_, rest) = raw.split_once("num_successful_transfers=")?;
    rest.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
}

fn kv_transfer(a: &Analysis) -> Vec<Outcome> {
    let mut out = Vec::new();
    let nixl = nixl_in_logs(a);
    let failed: Vec<&Event> = a
        .of("kv.transfer-failed")
        .chain(a.of("fabric.abort").filter(|e| e.cap("efa").is_some_and(|c| c != "4112")))
        .chain(a.of("ucx.error").filter(|e| {
            e.cap("msg").is_some_and(|m| {
                ["timeout", "Connection reset", "Destination is unreachable"]
                    .iter()
                    .any(|k| m.contains(k))
            })
        }))
        // A UCX transport error under a NIXL worker is a transfer that failed on the wire.
        .chain(a.of("ucx.transport").filter(|e| nixl && e.cap("level") == Some("ERROR")))
        .collect();
    if !failed.is_empty() {
        out.push((
            Outcome::fail("KV-cache transfers failed")
                .with_evidence(evs(a, failed.clone()))
                .remediation("Look at the lines before the failure: a peer on another backend (`no common backend`), a disconnected prefill/decode peer (NIXL_ERR_REMOTE_DISCONNECT; NIXL drops the peer's metadata, so later transfers fail with `metadata for remote agent ... not found` until it reconnects), or transport completion errors (check the security group and `efa-doctor probe pair`; on EFA use the LIBFABRIC backend).")
                .value("failed"),
            failed.clone(),
        ));
    }
    let ok_metrics: Vec<&Event> =
        a.of("kv.metrics").filter(|e| successful_transfers(e).is_some_and(|n| n > 0)).collect();
    let zero_metrics: Vec<&Event> =
        a.of("kv.metrics").filter(|e| successful_transfers(e) == Some(0)).collect();
    let hits: Vec<&Event> = a
        .of("kv.external-hit")
        .filter(|e| e.cap("rate").and_then(|r| r.parse::<f64>().ok()).is_some_and(|r| r > 0.0))
        .collect();
    if !ok_metrics.is_empty() || !hits.is_empty() {
        let mbps = ok_metrics
            .iter()
            .filter_map(|e| e.cap("mbps"))
            .next_back()
            .map(|m| format!(" at {m} MB/s"))
            .unwrap_or_default();
        let what = if !ok_metrics.is_empty() {
            format!("KV-cache transfers succeed{mbps}")
        } else {
            "the decode worker receives KV cache from the connector (external prefix cache hits)"
                .into()
        };
        let mut ev_lines = ok_metrics.clone();
        ev_lines.extend(hits.iter().copied());
        out.push((
            Outcome::pass(what).with_evidence(evs(a, ev_lines.iter().copied())).value("ok"),
            ev_lines,
        ));
    } else if !zero_metrics.is_empty() && failed.is_empty() {
        out.push((
            Outcome::warn("no transfers seen: the KV transfer metrics count zero successful transfers, which is not success")
                .with_evidence(evs(a, zero_metrics.iter().copied()))
                .remediation("Check that requests reach the decode worker and that prefill and decode run the same NIXL backend; a line with a non-zero `Num successful transfers` shows transfers working.")
                .value("none"),
            zero_metrics.clone(),
        ));
    }
    per_stream(out)
}

fn tcp_fallback(a: &Analysis, efa: Option<&str>) -> Vec<Outcome> {
    let mut out = Vec::new();
    let nccl: Vec<&Event> = nccl_networks(a)
        .into_iter()
        .filter(|(net, _, _)| net == "Socket")
        .map(|(_, e, _)| e)
        .chain(a.of("ofi.provider").filter(|e| {
            e.cap("provider").is_some_and(|p| p.starts_with("tcp") || p.starts_with("sockets"))
        }))
        .collect();
    if !nccl.is_empty() {
        out.push(
            Outcome::fail(format!("NCCL's inter-node traffic runs over TCP{}", streams_of(&nccl)))
                .with_evidence(evs(a, nccl.clone()))
                .remediation("Make NCCL use aws-ofi-nccl with the efa provider (nccl.net-plugin, nccl.provider).")
                .value("nccl"),
        );
    }
    // aws-ofi-nccl failed to start on an EFA node: NCCL moves on to its Socket transport.
    let init_failed: Vec<&Event> = a.of("ofi.init-failed").collect();
    if nccl.is_empty() && !init_failed.is_empty() && efa.is_some() {
        out.push(
            Outcome::fail("aws-ofi-nccl failed to initialise on an EFA node: NCCL falls back to its Socket transport (TCP)")
                .with_evidence(evs(a, init_failed))
                .remediation("Fix the plugin's initialisation first (see nccl.net-plugin); then NCCL reports `Using network Libfabric`.")
                .value("nccl"),
        );
    }
    let nixl: Vec<&Event> = a
        .of("nixl.rails")
        .filter(|e| {
            e.cap("provider").is_some_and(|p| p.starts_with("tcp") || p.starts_with("sockets"))
        })
        .collect();
    if !nixl.is_empty() {
        out.push(
            Outcome::fail("NIXL's LIBFABRIC backend built its rails on the tcp/sockets provider: KV transfers run over TCP")
                .with_evidence(evs(a, nixl))
                .remediation("libfabric offered no efa provider to NIXL: give the pod the EFA devices and the EFA installer's libfabric; do not set FI_PROVIDER=tcp.")
                .value("nixl"),
        );
    }
    // UCX on TCP: its lane selection, or its tcp transport's errors under a NIXL worker.
    let nixl = nixl_in_logs(a);
    // `tcp/lo` is loopback: both agents on one host, no network involved.
    let ucx: Vec<&Event> = a
        .of("ucx.tcp")
        .filter(|e| e.cap("dev").is_some_and(|d| d != "tcp/lo"))
        .chain(
            a.of("ucx.transport")
                .filter(|e| nixl && e.cap("file").is_some_and(|f| f.starts_with("tcp"))),
        )
        .collect();
    if efa.is_none() && !ucx.is_empty() {
        out.push(
            Outcome::warn("UCX moves data over TCP sockets (tcp lanes): on an EFA or RDMA node this is a fallback, ~10-100× slower")
                .with_evidence(evs(a, ucx.iter().copied()))
                .remediation("If this node has EFA, use NIXL's LIBFABRIC backend; with UCX on an RDMA NIC, check UCX_TLS and that UCX was built with the verbs and CUDA transports (`ucx_info -d`).")
                .value("ucx"),
        );
    }
    if efa.is_some() {
        if ucx.is_empty() && out.is_empty() {
            // Positive evidence that traffic is on EFA.
            let on_efa: Vec<&Event> = a
                .of("ofi.provider")
                .filter(|e| e.cap("provider").is_some_and(|p| p.starts_with("efa")))
                .chain(
                    a.of("nixl.rails")
                        .filter(|e| e.cap("provider").is_some_and(|p| p.starts_with("efa"))),
                )
                .chain(a.of("nccl.network").filter(|e| {
                    e.cap("network").is_some_and(|n| normalise_network(n) == "Libfabric")
                }))
                .collect();
            if !on_efa.is_empty() {
                out.push(
                    Outcome::pass("the logs show traffic on EFA and none on TCP")
                        .with_evidence(evs(a, on_efa)),
                );
            }
            return out;
        }
        if !ucx.is_empty() {
            out.push(
                Outcome::fail(
                    "UCX chose TCP lanes for data on an EFA node: NIXL/UCX transfers run over TCP",
                )
                .with_evidence(evs(a, ucx))
                .remediation(BACKEND_FIX)
                .value("ucx"),
            );
        }
    }
    out
}

/// Log lines a process check reports with its own finding: the log verdicts skip them and
/// point there (one root cause, one failure). Made by `process::log_claims`.
pub struct Claim {
    pub who: String,
    pub check: &'static str,
    /// (file index, line) of each line.
    pub lines: Vec<(usize, u64)>,
}

/// Every verdict the logs support, keyed by result id; `claims` are the lines process
/// checks already report.
pub fn interpret(
    a: &Analysis,
    f: &Facts,
    claims: &[Claim],
) -> BTreeMap<&'static str, Vec<Outcome>> {
    let efa = efa_context(a, f);
    let efa = efa.as_deref();
    let mut m = BTreeMap::new();
    m.insert("nixl.backend", nixl_backend(a, efa, claims));
    m.insert("nixl.backend-init", nixl_backend_init(a, claims));
    m.insert("nccl.net-plugin", nccl_net_plugin(a, efa));
    m.insert("nccl.provider", nccl_provider(a, efa));
    m.insert("nccl.network", nccl_network(a, efa));
    m.insert("nccl.gdrdma", nccl_gdrdma(a, f));
    m.insert("mr.registration", mr_registration(a, f));
    m.insert("mr.memlock", mr_memlock(a));
    m.insert("kv.transfer", kv_transfer(a));
    m.insert("transport.tcp-fallback", tcp_fallback(a, efa));
    for outcomes in m.values_mut() {
        for o in outcomes.iter_mut() {
            explain_evidence(a, o);
        }
    }
    m
}

/// Names, in `details.why`, the rule behind each evidence line: what it proves and which
/// statements of which component versions it recognises (the evidence table, checks/rules/).
fn explain_evidence(a: &Analysis, o: &mut Outcome) {
    let mut why: Vec<serde_json::Value> = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for ev in &o.evidence {
        let Some(line) = ev.line else { continue };
        let Some(e) = a.events.iter().find(|e| e.line == line && a.source_of(e) == ev.source)
        else {
            continue;
        };
        if seen.contains(&e.rule.as_str()) {
            continue;
        }
        seen.push(&e.rule);
        let info = a.rule_info.get(&e.rule).cloned().unwrap_or_default();
        why.push(serde_json::json!({
            "rule": e.rule,
            "line": line,
            "proves": info.proves,
            "statements": info.statements,
        }));
    }
    if !why.is_empty() && o.details.is_none() {
        o.details = Some(serde_json::json!({ "why": why }));
    }
}

/// What a log check says when the logs hold nothing for it.
pub fn nothing_for(id: &str) -> &'static str {
    match id {
        "nixl.backend" => "the logs hold no NIXL backend line (`Backend X was instantiated`)",
        "nixl.backend-init" => "no NIXL backend failed to load or initialise in these logs",
        "nccl.net-plugin" => "the logs hold no NCCL net-plugin line (NCCL_DEBUG=INFO prints them)",
        "nccl.provider" => "the logs hold no aws-ofi-nccl provider selection",
        "nccl.network" => "the logs hold no NCCL `Using network` line",
        "nccl.gdrdma" => {
            "the logs hold no NCCL channel or GPU Direct RDMA line for the Libfabric network"
        }
        "mr.registration" => "no memory registration failed in these logs",
        "mr.memlock" => "no memlock signature (EFA error 4112) in these logs",
        "kv.transfer" => "the logs hold no KV transfer metrics or failures",
        "transport.tcp-fallback" => "no sign of traffic on TCP in these logs",
        _ => "nothing in these logs",
    }
}
