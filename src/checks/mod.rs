//! Checks: pure functions from facts to results, and the registry that lists them.
//!
//! Each check is a unit struct implementing [`Check`], listed once in [`CHECKS`]. Its title,
//! severity and explanation live in its catalogue document (`checks/<id>.md`); tests fail
//! when the registry and the catalogue disagree.

pub mod catalogue;
pub mod efa;
pub mod gpu;
pub mod host;
pub mod kernel;
pub mod libfabric;
pub mod logs;
pub mod network;
pub mod pci;
pub mod probe;
pub mod process;
pub mod stack;

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::facts::Facts;
pub use crate::facts::Needs;
use crate::verdict::{CheckResult, Outcome, Status};

/// Log verdicts by result id (see `logs::interpret`).
pub type LogVerdicts = std::collections::BTreeMap<&'static str, Vec<Outcome>>;

/// What a check may look at.
pub struct Context<'a> {
    pub facts: &'a Facts,
    /// Verdicts drawn from the logs given, if any.
    pub logs: Option<&'a LogVerdicts>,
    /// The log lines behind them, for checks that attribute lines to a process.
    pub analysis: Option<&'a crate::facts::logs::Analysis>,
    /// `--profile bake`: an image build instance without EFA interfaces.
    pub bake: bool,
}

/// What the bake profile does not judge: what exists only once EFA interfaces are attached
/// and workloads run (devices, links, counters, topology, device access, processes, the
/// instance's network and GPUs' live state).
const ATTACHMENT: &[&str] = &[
    "efa.devices",
    "efa.link",
    "efa.traffic",
    "efa.errors",
    "efa.topology",
    "pci.link",
    "host.instance",
    "host.privileges",
    "host.network",
    "host.memlock",
    "host.shm",
    "gpu.inventory",
    "gpu.memory-health",
    "gpu.fabric",
    "probe.mr",
    "probe.pair",
    "kv.metrics",
];

fn attachment_check(id: &str) -> bool {
    ATTACHMENT.contains(&id) || id.starts_with("process.")
}

/// One check of the catalogue.
pub trait Check: Sync {
    /// Permanent id, `family.name`.
    fn id(&self) -> &'static str;
    /// The fact groups `run` reads: a run gathers only the union over the selected checks.
    fn needs(&self) -> Needs;
    /// Judges the facts. Most checks give one outcome; some give one per device or finding.
    fn run(&self, cx: &Context<'_>) -> Vec<Outcome>;
}

/// Every check, in report order.
pub static CHECKS: &[&dyn Check] = &[
    &kernel::GpudirectPath,
    &kernel::Modules,
    &host::Instance,
    &host::Hugepages,
    &host::Memlock,
    &host::Privileges,
    &host::Shm,
    &network::HostNetwork,
    &efa::Devices,
    &efa::Link,
    &efa::Traffic,
    &efa::Errors,
    &efa::Topology,
    &pci::Link,
    &gpu::Inventory,
    &gpu::MemoryHealth,
    &gpu::Fabric,
    &libfabric::EfaProvider,
    &libfabric::Gb200Registration,
    &probe::MrProbeCheck,
    &network::PairProbe,
    &stack::LibfabricCopies,
    &stack::AwsOfiNccl,
    &stack::Nixl,
    &process::NixlBackend,
    &process::RegisteredMemory,
    &process::LibfabricCopies,
    &process::Environment,
    &process::Memlock,
    &process::Metrics,
    &logs::NIXL_BACKEND,
    &logs::NIXL_BACKEND_INIT,
    &logs::NCCL_NET_PLUGIN,
    &logs::NCCL_PROVIDER,
    &logs::NCCL_NETWORK,
    &logs::NCCL_GDRDMA,
    &logs::MR_REGISTRATION,
    &logs::MR_MEMLOCK,
    &logs::KV_TRANSFER,
    &logs::TCP_FALLBACK,
];

pub fn find(id: &str) -> Option<&'static dyn Check> {
    CHECKS.iter().copied().find(|c| c.id() == id)
}

/// The facts `checks` read, plus what every report shows: what a run gathers.
pub fn needs(checks: &[&'static dyn Check]) -> Needs {
    checks.iter().fold(Needs::REPORT, |n, c| n | c.needs())
}

/// A selector the user named that matches no check: a usage error, with the id or family
/// the user probably meant.
#[derive(Debug, thiserror::Error)]
#[error("unknown check id or family '{0}'{hint} (see `efa-doctor list`)", hint = did_you_mean(.0))]
pub struct UnknownSelector(pub String);

/// `; did you mean 'efa.traffic'?` when [`suggest`] has a candidate, else nothing.
pub fn did_you_mean(word: &str) -> String {
    suggest(word).map(|s| format!("; did you mean '{s}'?")).unwrap_or_default()
}

/// Every family (`kernel`, `efa`, ...), in report order.
pub fn families() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for c in CHECKS {
        let family = c.id().split_once('.').map_or(c.id(), |(f, _)| f);
        if !out.contains(&family) {
            out.push(family);
        }
    }
    out
}

/// The check id or family a mistyped selector most likely meant: the check whose name it is
/// without its family (`traffic`), else the closest id or family by Jaro-Winkler similarity
/// (what clap uses for its own suggestions), if close enough to be a typo.
pub fn suggest(word: &str) -> Option<&'static str> {
    // Below this, two ids share little more than their family prefix.
    const MIN_SIMILARITY: f64 = 0.8;
    let word = word.trim().trim_end_matches('.').to_ascii_lowercase();
    if word.is_empty() {
        return None;
    }
    let ids = || CHECKS.iter().map(|c| c.id());
    if let Some(id) = ids().find(|id| id.split_once('.').is_some_and(|(_, name)| name == word)) {
        return Some(id);
    }
    ids()
        .chain(families())
        .map(|c| (strsim::jaro_winkler(&word, c), c))
        .filter(|(score, _)| *score >= MIN_SIMILARITY)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// Whether `selector` (an id, or a family prefix such as `host`) names `id`.
pub fn matches(selector: &str, id: &str) -> bool {
    let s = selector.trim_end_matches('.');
    id == s || id.strip_prefix(s).is_some_and(|rest| rest.starts_with('.'))
}

/// The checks to run: all, narrowed by `only` (ids or family prefixes), minus `skip`.
pub fn select(
    only: &[String],
    skip: &[String],
) -> Result<Vec<&'static dyn Check>, UnknownSelector> {
    for s in only.iter().chain(skip) {
        if !CHECKS.iter().any(|c| matches(s, c.id())) {
            return Err(UnknownSelector(s.clone()));
        }
    }
    Ok(CHECKS
        .iter()
        .copied()
        .filter(|c| only.is_empty() || only.iter().any(|s| matches(s, c.id())))
        .filter(|c| !skip.iter().any(|s| matches(s, c.id())))
        .collect())
}

/// Runs checks. A check that panics gives an `error` result naming the bug; the run goes on.
pub fn run(checks: &[&'static dyn Check], cx: &Context<'_>) -> Vec<CheckResult> {
    let mut results = Vec::new();
    for c in checks {
        if cx.bake && attachment_check(c.id()) {
            results.push(
                Outcome::skip("skipped: bake profile (an image build instance has no EFA interfaces attached and runs no workload)")
                    .into_result(c.id()),
            );
            continue;
        }
        let outcomes = catch_unwind(AssertUnwindSafe(|| c.run(cx))).unwrap_or_else(|p| {
            let msg = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            vec![Outcome::error(format!("internal error in this check: {msg} (please report it)"))]
        });
        for mut o in outcomes {
            if matches!(o.status, Status::Fail | Status::Warn) && o.remediation.is_none() {
                o.remediation = catalogue::doc(c.id())
                    .and_then(|d| d.section("## Remediation"))
                    .map(|s| s.to_string());
            }
            results.push(o.into_result(c.id()));
        }
    }
    results
}

/// Formats a byte count for summaries (`8 MiB`, `64 KiB`).
pub fn human_bytes(b: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if (v - v.round()).abs() < 0.05 {
        format!("{v:.0} {}", UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Test facts: one EFA device, `rdmap79s0`, behind `/dev/infiniband/uverbs0`, whose open
/// test gave `openable` (with `open_error` when it failed).
#[cfg(test)]
pub(crate) fn efa_node_with_uverbs0(openable: Option<bool>, open_error: Option<&str>) -> Facts {
    use crate::facts::host::UverbsNode;
    use crate::facts::rdma::{RdmaDevice, RdmaFacts};
    let mut f = Facts {
        rdma: RdmaFacts {
            devices: Some(vec![RdmaDevice {
                name: "rdmap79s0".into(),
                is_efa: true,
                ..RdmaDevice::default()
            }]),
            ..RdmaFacts::default()
        },
        ..Facts::default()
    };
    f.host.dev_visible = true;
    f.host.uverbs = Some(vec![UverbsNode {
        name: "uverbs0".into(),
        ibdev: Some("rdmap79s0".into()),
        openable,
        open_error: open_error.map(String::from),
    }]);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for c in CHECKS {
            let id = c.id();
            assert!(seen.insert(id), "duplicate check id {id}");
            let (family, name) = id.split_once('.').expect("id must be family.name");
            let ok = |s: &str| {
                !s.is_empty()
                    && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            };
            assert!(ok(family) && ok(name), "malformed id {id}");
        }
    }

    #[test]
    fn selectors() {
        assert!(matches("kernel", "kernel.modules"));
        assert!(matches("kernel.", "kernel.modules"));
        assert!(matches("kernel.modules", "kernel.modules"));
        assert!(!matches("kern", "kernel.modules"));
        assert!(select(&["nope".into()], &[]).is_err());
        let s = select(&["host".into()], &["host.shm".into()]).unwrap();
        assert!(s.iter().all(|c| c.id().starts_with("host.") && c.id() != "host.shm"));
    }

    #[test]
    fn suggestions_for_mistyped_selectors() {
        assert_eq!(suggest("efa.trafic"), Some("efa.traffic"));
        assert_eq!(suggest("EFA.Traffic"), Some("efa.traffic"));
        assert_eq!(suggest("traffic"), Some("efa.traffic"), "the name without its family");
        assert_eq!(suggest("kernal"), Some("kernel"));
        assert_eq!(suggest("gpu.memory-heath"), Some("gpu.memory-health"));
        assert_eq!(suggest("libfabric.efa-provder"), Some("libfabric.efa-provider"));
        assert_eq!(suggest("zzzz"), None);
        assert_eq!(suggest(""), None);
        let e = select(&["host.shmm".into()], &[]).err().unwrap().to_string();
        assert_eq!(
            e,
            "unknown check id or family 'host.shmm'; did you mean 'host.shm'? (see `efa-doctor list`)"
        );
        let e = select(&[], &["qqqq".into()]).err().unwrap().to_string();
        assert_eq!(e, "unknown check id or family 'qqqq' (see `efa-doctor list`)");
    }

    #[test]
    fn families_in_report_order() {
        let f = families();
        assert_eq!(&f[..3], ["kernel", "host", "efa"]);
        assert!(f.contains(&"nccl") && f.contains(&"process"));
        assert_eq!(f.len(), f.iter().collect::<std::collections::HashSet<_>>().len());
    }

    #[test]
    fn bytes() {
        assert_eq!(human_bytes(8 << 20), "8 MiB");
        assert_eq!(human_bytes(65536), "64 KiB");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
