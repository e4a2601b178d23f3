//! The EFA user-space stack on disk: libfabric copies, aws-ofi-nccl against its libfabric,
//! and NIXL's LIBFABRIC plugin and Python default backend.

use super::{Check, Context, Needs};
use crate::facts::Facts;
use crate::facts::stack::{FabricConsumer, LibfabricCopy};
use crate::parse::Version;
use crate::verdict::{Evidence, Outcome};

fn copy_line(c: &LibfabricCopy) -> String {
    let v =
        c.release.clone().or_else(|| c.floor.clone()).unwrap_or_else(|| "unknown version".into());
    let efa = if c.has_efa_provider { "efa provider" } else { "no efa provider" };
    format!("{} ({v}, {efa})", c.path)
}

/// Version nodes a consumer needs that the libfabric it resolves to does not define.
fn missing_nodes(c: &FabricConsumer, lib: &LibfabricCopy) -> Vec<String> {
    c.needs.iter().filter(|n| !lib.defines.contains(n)).cloned().collect()
}

fn node_release(node: &str) -> String {
    node.strip_prefix("FABRIC_1.")
        .and_then(|m| m.parse().ok())
        .and_then(crate::parse::elf::fabric_node_release)
        .map_or_else(|| "a release newer than 2.6".to_string(), |r| format!("libfabric >= {r}"))
}

/// The EFA installer's libfabric when another copy wins the loader's search: the root cause
/// `stack.libfabric-copies` reports; what follows from it (no efa provider, missing symbol
/// versions) points there instead of failing again.
pub(crate) fn shadowed_efa_copy(f: &Facts) -> Option<&LibfabricCopy> {
    let copies = &f.efa_stack.libfabric;
    let first = copies.iter().find(|c| c.on_loader_path)?;
    copies
        .iter()
        .find(|c| c.on_loader_path && c.path.starts_with("/opt/amazon/efa/"))
        .filter(|e| e.path != first.path)
}

pub struct LibfabricCopies;

impl Check for LibfabricCopies {
    fn id(&self) -> &'static str {
        "stack.libfabric-copies"
    }

    fn needs(&self) -> Needs {
        Needs::EFA_STACK | Needs::LIBFABRIC | Needs::RDMA
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![copies(cx.facts)]
    }
}

fn copies(f: &Facts) -> Outcome {
    let copies = &f.efa_stack.libfabric;
    let installer = f.efa_stack.installer.as_ref();
    let mut ev: Vec<Evidence> =
        copies.iter().map(|c| Evidence::new(c.path.clone()).observed(copy_line(c))).collect();
    if let Some(i) = installer {
        ev.push(
            Evidence::new(i.path.clone())
                .observed(format!("EFA installer {}", i.version.as_deref().unwrap_or("?"))),
        );
    }
    let Some(first) = copies.iter().find(|c| c.on_loader_path) else {
        return Outcome::skip("no libfabric.so.1 on disk").with_evidence(ev);
    };
    // The installer's copy, if any, and whether it wins the loader's search.
    let efa_copy =
        copies.iter().find(|c| c.on_loader_path && c.path.starts_with("/opt/amazon/efa/"));
    if let Some(e) = efa_copy {
        if e.path != first.path {
            return Outcome::fail(format!(
                "{} is found before the EFA installer's {}: workloads load the wrong libfabric",
                copy_line(first),
                e.path
            ))
            .with_evidence(ev)
            .remediation("Put /opt/amazon/efa/lib (or lib64) first: `LD_LIBRARY_PATH=/opt/amazon/efa/lib:/opt/amazon/efa/lib64:$LD_LIBRARY_PATH` in the image, or remove the distribution's libfabric package (`apt-get remove libfabric1`). Then rebuild aws-ofi-nccl against the one you keep.")
            .value(first.path.clone());
        }
    } else if !first.has_efa_provider && f.rdma.has_efa() {
        return Outcome::fail(format!("the only libfabric on the loader path, {}, has no efa provider", copy_line(first)))
            .with_evidence(ev)
            .remediation("Install the EFA installer's libfabric (`aws-efa-installer --minimal` in images) and put /opt/amazon/efa/lib first on LD_LIBRARY_PATH.")
            .value(first.path.clone());
    }
    if let Some(note) = f.libfabric.notes.get("path") {
        ev.push(Evidence::new("loader").observed(note.clone()));
    }
    let mut distinct: Vec<String> =
        copies.iter().filter_map(|c| c.version().map(|v| v.to_string())).collect();
    distinct.sort();
    distinct.dedup();
    if distinct.len() > 1 {
        return Outcome::warn(format!(
            "{} libfabric copies of different versions ({}); the loader picks {}",
            copies.len(),
            distinct.join(", "),
            first.path
        ))
        .with_evidence(ev)
        .remediation("Keep one libfabric per image: a process that maps two copies (e.g. one through aws-ofi-nccl, one through NIXL) mixes ABIs. Remove the extra copies or make every consumer resolve the same file (`process.libfabric-copies` checks running workloads).")
        .value(first.path.clone());
    }
    Outcome::pass(format!(
        "{} libfabric cop{} on disk; the loader picks {}",
        copies.len(),
        if copies.len() == 1 { "y" } else { "ies" },
        copy_line(first)
    ))
    .with_evidence(ev)
    .value(first.path.clone())
}

pub struct AwsOfiNccl;

impl Check for AwsOfiNccl {
    fn id(&self) -> &'static str {
        "stack.aws-ofi-nccl"
    }

    fn needs(&self) -> Needs {
        Needs::EFA_STACK
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![aws_ofi_nccl(cx.facts)]
    }
}

fn aws_ofi_nccl(f: &Facts) -> Outcome {
    let plugins = &f.efa_stack.aws_ofi_nccl;
    let mut ev = Vec::new();
    if let Some(p) = f.efa_stack.nccl_conf.get("NCCL_NET_PLUGIN") {
        ev.push(Evidence::new("/etc/nccl.conf").observed(format!("NCCL_NET_PLUGIN={p}")));
    }
    if plugins.is_empty() {
        return Outcome::skip("aws-ofi-nccl is not installed in this root (containers usually bring their own; `process.*` and `logs` checks judge those)").with_evidence(ev);
    }
    let mut fails = Vec::new();
    let mut deferred = Vec::new();
    let shadowed = shadowed_efa_copy(f);
    for p in plugins {
        let v = p.version.clone().unwrap_or_else(|| "unknown version".into());
        let lib = p.resolves_to.as_deref().and_then(|r| f.efa_stack.copy(r));
        ev.push(Evidence::new(p.path.clone()).observed(format!(
            "aws-ofi-nccl {v}; needs {}; runpath {}; resolves libfabric.so.1 to {}",
            if p.needs.is_empty() { "no versioned symbols".into() } else { p.needs.join(" ") },
            if p.runpath.is_empty() { "none".into() } else { p.runpath.join(":") },
            p.resolves_to.as_deref().unwrap_or("nothing")
        )));
        let Some(resolved) = &p.resolves_to else {
            fails.push(format!(
                "{} links libfabric.so.1 but none resolves from its RUNPATH or the loader path",
                p.path
            ));
            continue;
        };
        if let Some(lib) = lib {
            let missing = missing_nodes(p, lib);
            // It would resolve the EFA installer's copy, which has every node, if that copy
            // came first: one root cause, reported by stack.libfabric-copies.
            if !missing.is_empty() && shadowed.is_some_and(|e| missing_nodes(p, e).is_empty()) {
                deferred.push(format!(
                    "{} (aws-ofi-nccl {v}) resolves {resolved}, which lacks {}; the EFA installer's {} has them",
                    p.path,
                    missing.join(" "),
                    shadowed.map_or("", |e| e.path.as_str())
                ));
                continue;
            }
            if !missing.is_empty() {
                fails.push(format!(
                    "{} (aws-ofi-nccl {v}) needs {} from libfabric ({}), but {} defines up to {}: NCCL's dlopen fails and it falls back to sockets",
                    p.path,
                    missing.join(" "),
                    node_release(&missing[0]),
                    resolved,
                    lib.defines.last().cloned().unwrap_or_default()
                ));
                continue;
            }
            let ofi = p.version.as_deref().and_then(Version::parse);
            let fab = lib.version();
            if let (Some(o), Some(fv)) = (&ofi, &fab) {
                if o.at_least(&[1, 13]) && fv.below(&[1, 22]) {
                    fails.push(format!(
                        "aws-ofi-nccl {o} refuses the efa provider with libfabric {fv} (needs >= 1.22.0: 'EFA provider requires at least libfabric version 1.22.0')"
                    ));
                }
            }
        }
    }
    if !fails.is_empty() {
        return Outcome::fail(fails.join("; "))
            .with_evidence(ev)
            .remediation("Rebuild aws-ofi-nccl from source against the libfabric shipped in the same image (`./configure --with-libfabric=/opt/amazon/efa`), or install matching versions from one EFA installer; aws-ofi-nccl >= 1.13 needs libfabric >= 1.22.")
            .value("mismatch");
    }
    if !deferred.is_empty() {
        return Outcome::skip(format!(
            "skipped: the wrong libfabric comes first on the loader path (see stack.libfabric-copies): {}",
            deferred.join("; ")
        ))
        .with_evidence(ev);
    }
    Outcome::pass(format!(
        "{} aws-ofi-nccl plugin(s); each resolves a libfabric that defines every version it needs",
        plugins.len()
    ))
    .with_evidence(ev)
}

pub struct Nixl;

impl Check for Nixl {
    fn id(&self) -> &'static str {
        "stack.nixl"
    }

    fn needs(&self) -> Needs {
        Needs::EFA_STACK | Needs::RDMA
    }

    fn run(&self, cx: &Context<'_>) -> Vec<Outcome> {
        vec![nixl(cx.facts)]
    }
}

fn nixl(f: &Facts) -> Outcome {
    let s = &f.efa_stack;
    if s.nixl_plugins.is_empty() && s.nixl_packages.is_empty() {
        return Outcome::skip("NIXL is not installed in this root");
    }
    let mut ev = Vec::new();
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    for p in &s.nixl_plugins {
        let resolved = p.resolves_to.as_deref();
        let lib = resolved.and_then(|r| f.efa_stack.copy(r));
        ev.push(Evidence::new(p.path.clone()).observed(format!(
            "needs {}; resolves libfabric.so.1 to {}",
            p.needs.join(" "),
            resolved.unwrap_or("nothing")
        )));
        match (resolved, lib) {
            (None, _) => fails.push(format!(
                "{} finds no libfabric.so.1: the LIBFABRIC backend cannot load",
                p.path
            )),
            (Some(r), Some(lib)) => {
                let missing = missing_nodes(p, lib);
                if !missing.is_empty() {
                    fails.push(format!(
                        "NIXL's LIBFABRIC plugin needs {} ({}) but {r} ({}) defines up to {}: the plugin fails to load ('version {} not found') and NIXL keeps UCX",
                        missing.join(" "),
                        node_release(&missing[0]),
                        lib.release.as_deref().unwrap_or("?"),
                        lib.defines.last().cloned().unwrap_or_default(),
                        missing[0]
                    ));
                }
            }
            (Some(_), None) => {}
        }
    }
    for pkg in &s.nixl_packages {
        match &pkg.default_backends {
            Some(b) => {
                ev.push(
                    Evidence::new(pkg.path.clone()).observed(format!("default backends {b:?}")),
                );
                if !b.iter().any(|x| x.eq_ignore_ascii_case("LIBFABRIC")) && f.rdma.has_efa() {
                    warns.push(format!(
                        "{} defaults to {b:?}: unless the framework selects LIBFABRIC (vLLM kv_connector_extra_config.backends, SGLANG_DISAGGREGATION_NIXL_BACKEND, TRTLLM_NIXL_KVCACHE_BACKEND, DYN_KVBM_NIXL_BACKEND_LIBFABRIC), KV transfers use UCX on this EFA node",
                        pkg.path
                    ));
                }
            }
            None => ev.push(Evidence::new(pkg.path.clone()).observed("default backends not found")),
        }
    }
    if !fails.is_empty() {
        return Outcome::fail(fails.join("; "))
            .with_evidence(ev)
            .remediation("Ship a libfabric new enough for the NIXL build (or a NIXL built against the EFA installer's libfabric) and make it the first libfabric.so.1 the plugin resolves (`LD_LIBRARY_PATH=/opt/amazon/efa/lib:...`).")
            .value("plugin-unloadable");
    }
    if !warns.is_empty() {
        return Outcome::warn(warns.join("; "))
            .with_evidence(ev)
            .remediation("Select LIBFABRIC in the framework's configuration (see `efa-doctor explain process.nixl-backend`), or patch the image's default as SGLang's EFA guide does (`backends: list[str] = [\"LIBFABRIC\"]` in nixl's _api.py).")
            .value("default-ucx");
    }
    Outcome::pass(format!(
        "{} LIBFABRIC plugin(s) loadable, {} NIXL package(s)",
        s.nixl_plugins.len(),
        s.nixl_packages.len()
    ))
    .with_evidence(ev)
}
