//! The command-line interface. Completions and the man page are generated from these
//! definitions (`efa-doctor completions SHELL`, `efa-doctor man`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::report::prometheus::CounterSeries;
use crate::report::{FailOn, Format};

mod check_ids;
use check_ids::{CheckIds, Offer};

const ABOUT: &str = "Diagnoses AWS EFA / GPUDirect RDMA health on GPU nodes";

const LONG_ABOUT: &str = "Diagnoses AWS EFA / GPUDirect RDMA health on GPU nodes.

Reads the kernel, modules, EFA devices and counters, PCIe topology, GPUs, libfabric and EFA \
stack of a node, its running NIXL/NCCL workers and their logs, and reports pass/warn/fail per \
check with the evidence and the fix. `probe mr` registers real GPU memory through the node's \
libfabric; `probe pair` proves the EFA path between two nodes. With no command it runs \
`check` on this node (or on the node's root at /host when run in a `kubectl debug node/...` \
container).

Exit codes: 0 no check failed; 1 a check failed (or warned, with --fail-on warn); 2 the tool \
could not do its job (bad usage, unreadable root, a check errored). These are \
node-problem-detector's custom-plugin codes (OK, NonOK, Unknown).";

#[derive(Debug, Parser)]
#[command(name = "efa-doctor", version, about = ABOUT, long_about = LONG_ABOUT)]
#[command(args_conflicts_with_subcommands = true, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub check: CheckArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run all applicable checks on this node (the default command)
    Check(CheckArgs),
    /// Analyse NIXL, NCCL/aws-ofi-nccl, libfabric, UCX and vLLM logs (`-` reads stdin)
    Logs(LogsArgs),
    /// Capture what the checks read into a support bundle (.tar.gz), secrets redacted
    Snapshot(SnapshotArgs),
    /// Live probes of the node's data path
    #[command(subcommand)]
    Probe(ProbeCommand),
    /// Re-render a saved JSON report in another format, or print the JSON Schema of reports
    #[command(subcommand)]
    Report(ReportCommand),
    /// List every check with its id, title and the failure modes it covers
    List(ListArgs),
    /// Print a check's documentation: what it checks, why, evidence and remediation
    Explain(ExplainArgs),
    /// Print the completion script for SHELL (check ids included), e.g. `efa-doctor
    /// completions bash > /usr/share/bash-completion/completions/efa-doctor`
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) of efa-doctor, or of one of its commands (`efa-doctor man
    /// probe mr`), e.g. `efa-doctor man check | man -l -`
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// The command whose page to print (default: efa-doctor's own)
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ColorChoice {
    /// Colour when writing to a terminal, NO_COLOR is unset and TERM is not `dumb`
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Args, Clone, Default)]
pub struct OutputArgs {
    /// Output format
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Write the report to FILE instead of standard output (`-`): atomically (a reader never
    /// sees half a report), keeping FILE's mode (0600 when new); a FIFO or character device
    /// named directly is written in place
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// When to use colour in the human format
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,

    /// Also write the JSON report (`efa-doctor/1`) to FILE, beside the --format output; as
    /// --output writes, and even when the run fails
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,

    /// Also write the JUnit XML report to FILE, beside the --format output
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Also write the Prometheus text exposition to FILE, beside the --format output
    #[arg(long, value_name = "FILE")]
    pub prometheus: Option<PathBuf>,

    /// Which EFA hardware counters the Prometheus output carries: every one, only those
    /// above zero, or none (about 45 series per EFA device with `all`)
    #[arg(long, value_enum, value_name = "WHICH", default_value_t = CounterSeries::All)]
    pub prometheus_counters: CounterSeries,
}

#[derive(Debug, Args, Clone, Default)]
pub struct CheckArgs {
    /// Judge the node root at DIR instead of this system (e.g. /host in `kubectl debug
    /// node/...`, or an extracted snapshot)
    #[arg(long, value_name = "DIR", conflicts_with = "snapshot")]
    pub root: Option<PathBuf>,

    /// Judge a snapshot made by `efa-doctor snapshot`, `-` for standard input (no native
    /// library is needed)
    #[arg(long, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,

    /// Run only these checks: ids (`host.shm`) or families (`host`); repeatable or
    /// comma-separated
    #[arg(long, value_name = "IDS", value_delimiter = ',',
          value_parser = CheckIds(Offer::Selectors), hide_possible_values = true)]
    pub only: Vec<String>,

    /// Do not run these checks: ids or families; repeatable or comma-separated
    #[arg(long, value_name = "IDS", value_delimiter = ',',
          value_parser = CheckIds(Offer::Selectors), hide_possible_values = true)]
    pub skip: Vec<String>,

    /// Exit 1 on `fail` only (default), or on `warn` too
    #[arg(long, value_enum, default_value_t = FailOn::Fail)]
    pub fail_on: FailOn,

    /// Also analyse these logs (plain or gzip; read as given, not under --root)
    #[arg(long = "log", value_name = "FILE")]
    pub logs: Vec<PathBuf>,

    /// Inspect these workload processes (default: discover vllm, sglang, trtllm, dynamo and
    /// processes with libnixl, libnccl or libfabric mapped)
    #[arg(long = "pid", value_name = "PID", value_delimiter = ',')]
    pub pids: Vec<u32>,

    /// Classify this registered address against the inspected processes' memory maps
    /// (hex address, optional size: 0x7f9d46000000:67108864)
    #[arg(long = "addr", value_name = "ADDR[:SIZE]", value_parser = parse_addr)]
    pub addrs: Vec<(u64, Option<u64>)>,

    /// Scrape KV-transfer metrics from this Prometheus endpoint (vLLM's /metrics, or NIXL's
    /// exporter), or read a saved exposition file
    #[arg(long = "metrics", value_name = "URL|FILE")]
    pub metrics: Vec<String>,

    /// Add the log rules in DIR/*.toml (same format as checks/rules/)
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,

    /// Accepted for compatibility and ignored: logs are always read with read(2), never
    /// memory-mapped (a mapped log truncated while it is read aborts the process)
    #[arg(long, hide = true)]
    pub no_mmap: bool,

    /// Do not run the live memory-registration probe (it runs by itself on live nodes with
    /// an efa provider and GPUs; see `efa-doctor probe mr`)
    #[arg(long)]
    pub no_probe: bool,

    /// Read the EFA hardware counters (and --metrics) twice, SECS apart, and judge their
    /// deltas (silent drops, rising error counters, idle transfers)
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub sample: Option<std::time::Duration>,

    /// What is being judged: a running node (default), or an AMI build instance launched
    /// without EFA interfaces (`bake`: attachment checks skip, the image's content is judged)
    #[arg(long, value_enum, default_value_t = Profile::Node)]
    pub profile: Profile,

    #[command(flatten)]
    pub output: OutputArgs,
}

/// The vantage point a run judges from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Profile {
    /// A node that runs (or will run) EFA workloads: every check applies
    #[default]
    Node,
    /// An AMI or image build instance without EFA interfaces: devices, links, counters,
    /// topology and processes are not judged; kernel modules on disk, the NVIDIA driver,
    /// libfabric and its efa provider, aws-ofi-nccl, NIXL and hugepage settings are
    Bake,
}

fn parse_addr(s: &str) -> Result<(u64, Option<u64>), String> {
    crate::facts::process::parse_addr(s)
}

fn parse_secs(s: &str) -> Result<std::time::Duration, String> {
    let v: f64 = s.parse().map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !(0.0..=3600.0).contains(&v) || !v.is_finite() {
        return Err("must be between 0 and 3600 seconds".into());
    }
    Ok(std::time::Duration::from_secs_f64(v))
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Log files (plain or gzip); `-` for standard input
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<PathBuf>,

    /// Add the log rules in DIR/*.toml (same format as checks/rules/)
    #[arg(long, value_name = "DIR")]
    pub rules: Option<PathBuf>,

    /// Accepted for compatibility and ignored: logs are always read with read(2), never
    /// memory-mapped (a mapped log truncated while it is read aborts the process)
    #[arg(long, hide = true)]
    pub no_mmap: bool,

    /// Exit 1 on `fail` only (default), or on `warn` too
    #[arg(long, value_enum, default_value_t = FailOn::Fail)]
    pub fail_on: FailOn,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Capture the node root at DIR instead of this system
    #[arg(long, value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Also take a second EFA counter reading SECS later
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub sample: Option<std::time::Duration>,

    /// Include these logs in the snapshot (judged again on replay)
    #[arg(long = "log", value_name = "FILE")]
    pub logs: Vec<PathBuf>,

    /// Capture these workload processes (default: discover workers)
    #[arg(long = "pid", value_name = "PID", value_delimiter = ',')]
    pub pids: Vec<u32>,

    /// Where to write the snapshot (.tar.gz; `-` for standard output), as `check -o` writes
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,

    /// Refuse to write more than this much file content (e.g. 128M, 1G)
    #[arg(long, value_name = "SIZE", value_parser = parse_size, default_value = "128M")]
    pub max_size: u64,

    /// A note stored in the snapshot's manifest (ticket, node name)
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,

    /// Do not run the live memory-registration probe while capturing
    #[arg(long)]
    pub no_probe: bool,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Render a JSON report saved with `--format json` or `--json FILE` in other formats
    /// (exit code: the report's own, recounted under --fail-on when given)
    Render(RenderArgs),
    /// Print the JSON Schema of the `efa-doctor/1` report
    Schema,
}

#[derive(Debug, Args)]
pub struct RenderArgs {
    /// The saved JSON report; `-` reads standard input
    #[arg(value_name = "REPORT.json")]
    pub file: PathBuf,

    /// Count the exit code (and JUnit's failures) as if the run had used this --fail-on
    #[arg(long, value_enum)]
    pub fail_on: Option<FailOn>,

    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum ProbeCommand {
    /// Register real CUDA memory through the node's libfabric, as NIXL does, and say why it
    /// fails (libfabric #12019 on GB200, no dma-buf import, no CUDA support, memlock, ...)
    Mr(ProbeMrArgs),
    /// Prove the EFA path between two nodes: run `--listen` on one and `--connect HOST` on
    /// the other; ping-pong latency and bandwidth, and why packets do not arrive
    Pair(ProbePairArgs),
}

#[derive(Debug, Args)]
pub struct ProbePairArgs {
    /// Wait for the other node on --bind and --port
    #[arg(long, conflicts_with = "connect", required_unless_present = "connect")]
    pub listen: bool,

    /// Connect to the node running `--listen` (HOST, HOST:PORT or [IPv6]:PORT)
    #[arg(long, value_name = "HOST[:PORT]")]
    pub connect: Option<String>,

    /// Side-channel TCP port (it carries only addresses, counters and results)
    #[arg(long, value_name = "PORT", default_value_t = crate::native::pair::DEFAULT_PORT)]
    pub port: u16,

    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0")]
    pub bind: String,

    /// libfabric provider to move messages over (`tcp` exercises the probe without EFA)
    #[arg(long, value_name = "NAME", default_value = "efa")]
    pub provider: String,

    /// Domain to use (an EFA device `rdmap79s0-rdm`, or an interface for tcp); default: the
    /// first that can reach the peer
    #[arg(long, value_name = "NAME")]
    pub domain: Option<String>,

    /// Message sizes (the connecting node's list is used); K/M/G suffixes
    #[arg(long, value_name = "SIZES", value_delimiter = ',', value_parser = parse_size,
          default_value = "1,64,4K,64K,1M")]
    pub sizes: Vec<u64>,

    /// Ping-pong round trips per size (fewer for large sizes)
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub iters: usize,

    /// Longest wait for one completion before the path is declared blocked
    #[arg(long, value_name = "SECS", value_parser = parse_secs, default_value = "5")]
    pub stall: std::time::Duration,

    /// Longest wait for the other node's side channel
    #[arg(long, value_name = "SECS", value_parser = parse_secs, default_value = "60")]
    pub wait: std::time::Duration,

    /// Exit 1 on `fail` only (default), or on `warn` too
    #[arg(long, value_enum, default_value_t = FailOn::Fail)]
    pub fail_on: FailOn,

    #[command(flatten)]
    pub output: OutputArgs,
}

impl ProbePairArgs {
    /// `--bind` and `--port` as a socket address (IPv6 in brackets), when listening.
    pub fn listen_address(&self) -> Option<String> {
        let host =
            if self.bind.contains(':') { format!("[{}]", self.bind) } else { self.bind.clone() };
        self.listen.then(|| format!("{host}:{}", self.port))
    }

    /// `--connect` with the port added when it has none.
    pub fn connect_target(&self) -> Option<String> {
        let c = self.connect.as_deref()?;
        if c.parse::<std::net::SocketAddr>().is_ok() {
            return Some(c.to_string());
        }
        if c.parse::<std::net::Ipv6Addr>().is_ok() {
            return Some(format!("[{c}]:{}", self.port));
        }
        match c.rsplit_once(':') {
            Some((_, p)) if p.parse::<u16>().is_ok() => Some(c.to_string()),
            _ => Some(format!("{c}:{}", self.port)),
        }
    }
}

#[derive(Debug, Args)]
pub struct ProbeMrArgs {
    /// GPUs to probe (NVML / PCI order); repeatable or comma-separated; default all
    #[arg(long = "gpu", value_name = "N", value_delimiter = ',')]
    pub gpus: Vec<u32>,

    /// libfabric provider to register through (`tcp` exercises the path without EFA)
    #[arg(long, value_name = "NAME", default_value = "efa")]
    pub provider: String,

    /// Give up after SECS (default 30 s plus 10 s per GPU)
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub timeout: Option<std::time::Duration>,

    /// Exit 1 on `fail` only (default), or on `warn` too
    #[arg(long, value_enum, default_value_t = FailOn::Fail)]
    pub fail_on: FailOn,

    #[command(flatten)]
    pub output: OutputArgs,
}

fn parse_size(s: &str) -> Result<u64, String> {
    crate::parse::size_bytes(s).ok_or_else(|| format!("'{s}' is not a size like 128M"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ListFormat {
    #[default]
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Output format
    #[arg(long, short = 'f', value_enum, default_value_t = ListFormat::Human)]
    pub format: ListFormat,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Check id, e.g. kernel.gpudirect-path
    #[arg(value_name = "ID", value_parser = CheckIds(Offer::Ids), hide_possible_values = true)]
    pub id: String,

    /// Output format
    #[arg(long, short = 'f', value_enum, default_value_t = ListFormat::Human)]
    pub format: ListFormat,
}

/// The clap command: what [`parse_from`] parses, and the source of completions and the man
/// page.
pub fn command() -> clap::Command {
    values_may_look_negative(<Cli as clap::CommandFactory>::command())
}

/// Lets every option that takes a value take one that starts like a negative number, on every
/// subcommand: `--sample -1` then reaches the option's value parser, whose error names the
/// option and the value, instead of clap reading `-1` as an unknown flag. Applied to the whole
/// tree so an option added later is covered too.
fn values_may_look_negative(cmd: clap::Command) -> clap::Command {
    cmd.mut_args(|a| if a.get_action().takes_values() { a.allow_negative_numbers(true) } else { a })
        .mut_subcommands(values_may_look_negative)
}

/// Parses the command line from `args` (the program name first), exiting as clap does on a
/// usage error (code 2) or `--help`/`--version` (code 0).
pub fn parse_from<I, T>(args: I) -> Cli
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let matches = match command().try_get_matches_from(&args) {
        Ok(m) => m,
        // clap says only that some argument was not UTF-8: say which, and after what.
        Err(e) if e.kind() == clap::error::ErrorKind::InvalidUtf8 => {
            eprintln!("error: {}\n\nFor more information, try '--help'.", non_utf8_argument(&args));
            std::process::exit(e.exit_code());
        }
        Err(e) => e.exit(),
    };
    <Cli as clap::FromArgMatches>::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// Names the first argument that is not UTF-8 (escaped, so the terminal shows its bytes)
/// and the one before it, which is usually the option it is the value of.
pub fn non_utf8_argument(args: &[std::ffi::OsString]) -> String {
    let escaped = |a: &std::ffi::OsString| a.as_encoded_bytes().escape_ascii().to_string();
    match args.iter().skip(1).position(|a| a.to_str().is_none()).map(|i| i + 1) {
        Some(i) if i > 1 => format!(
            "argument '{}' (after '{}') is not valid UTF-8; only paths may be arbitrary bytes",
            escaped(&args[i]),
            escaped(&args[i - 1])
        ),
        Some(i) => format!(
            "argument '{}' is not valid UTF-8; only paths may be arbitrary bytes",
            escaped(&args[i])
        ),
        None => "invalid UTF-8 was detected in one or more arguments".into(),
    }
}
