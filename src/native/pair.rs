//! `__native probe-pair`: one end of the two-node path probe. The ends exchange their
//! libfabric endpoint addresses, node identity and EFA counters over a TCP side channel,
//! then move RDM messages over the chosen provider: ping-pong latency and streaming
//! bandwidth per size, as `fi_pingpong -e rdm` measures them. Counters are read again after
//! the run and exchanged over the side channel, which keeps working when the data path does
//! not, so the parent can tell why no message arrived. Every wait has a deadline.

use std::collections::BTreeMap;
use std::ffi::c_void;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::fabric::{self, Fabric, fi_mr_attr, iovec};
use super::rdm::{Endpoint, FI_EAGAIN, OpContext};
use super::step;

/// Default side-channel port (`fi_pingpong` uses 47592; this stays clear of it).
pub const DEFAULT_PORT: u16 = 18515;
const PROTOCOL: u32 = 1;
/// Messages in flight in the bandwidth test.
const WINDOW: usize = 64;
/// Largest buffer set for the bandwidth test.
const MAX_WINDOW_BYTES: usize = 64 << 20;
/// Bounds on a test plan (the listening end takes the peer's).
const MAX_SIZES: usize = 32;
const MAX_MESSAGE: usize = 64 << 20;
const MAX_ITERS: usize = 1_000_000;
/// Untimed iterations before each measurement.
const WARMUP: usize = 10;

/// The port counters the diagnosis needs, per EFA device.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PortCounters {
    pub tx_pkts: Option<u64>,
    pub rx_pkts: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub rx_bytes: Option<u64>,
}

/// Who an end is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NodeId {
    pub hostname: Option<String>,
    /// `/proc/sys/kernel/random/boot_id`: equal on both ends means one kernel, one node.
    pub boot_id: Option<String>,
    /// DMI `board_asset_tag` on Nitro instances.
    pub instance_id: Option<String>,
    pub instance_type: Option<String>,
    /// From IMDS, when the node is an EC2 instance.
    pub availability_zone: Option<String>,
    pub placement_group: Option<String>,
    /// Subnets of this node's interfaces that lie in a secondary VPC CIDR.
    #[serde(default)]
    pub secondary_cidr_subnets: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
struct Hello {
    protocol: u32,
    provider: String,
    fabric_addr: String,
    node: NodeId,
    counters: BTreeMap<String, PortCounters>,
    /// The test plan; the connecting end's is used.
    sizes: Vec<usize>,
    iters: usize,
    /// Set when this end could not open its endpoint (`fabric_addr` is then empty).
    #[serde(default)]
    error: Option<StageError>,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
struct Done {
    error: Option<StageError>,
    counters: BTreeMap<String, PortCounters>,
}

/// Where the run stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StageError {
    /// `fabric` (opening), `side-channel`, `pingpong`, `stream`.
    pub stage: String,
    pub size: Option<usize>,
    pub message: String,
    /// No completion within the stall deadline (as opposed to an error completion).
    pub timed_out: bool,
}

/// One measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SizeResult {
    /// `pingpong` or `stream`.
    pub test: String,
    pub size: usize,
    pub iterations: usize,
    pub seconds: f64,
    /// One-way latency: elapsed / (2 x iterations) for ping-pong, as `fi_pingpong`'s usec/xfer.
    pub usec_per_xfer: f64,
    /// Bytes moved per second, in MB (10^6), as `fi_pingpong`'s MB/sec.
    pub mb_per_sec: f64,
}

impl SizeResult {
    /// `transfers` messages of `size` bytes in `secs`, as fi_pingpong counts them.
    fn measured(
        test: &str,
        size: usize,
        iterations: usize,
        transfers: usize,
        secs: f64,
    ) -> SizeResult {
        SizeResult {
            test: test.into(),
            size,
            iterations,
            seconds: secs,
            usec_per_xfer: secs * 1e6 / transfers as f64,
            mb_per_sec: (transfers * size) as f64 / secs / 1e6,
        }
    }
}

/// What this end reports.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PairResult {
    pub role: String,
    pub lib: String,
    pub libfabric_version: Option<String>,
    pub provider: String,
    pub fabric: Option<String>,
    pub domain: Option<String>,
    pub side_channel: String,
    pub node: NodeId,
    pub peer: Option<NodeId>,
    pub counters_before: BTreeMap<String, PortCounters>,
    pub counters_after: BTreeMap<String, PortCounters>,
    pub peer_counters_before: Option<BTreeMap<String, PortCounters>>,
    pub peer_counters_after: Option<BTreeMap<String, PortCounters>>,
    pub results: Vec<SizeResult>,
    /// The first echoed message matched what was sent.
    pub data_ok: Option<bool>,
    pub error: Option<StageError>,
    pub peer_error: Option<StageError>,
}

struct Args {
    lib: String,
    provider: String,
    listen: Option<String>,
    connect: Option<String>,
    /// A domain (interface, or EFA device `-rdm`) to use instead of the first suitable one.
    domain: Option<String>,
    /// This node's identity, as the parent gathered it.
    node: NodeId,
    sizes: Vec<usize>,
    iters: usize,
    stall: Duration,
    wait: Duration,
}

fn parse_args(args: &[String]) -> Args {
    let mut a = Args {
        lib: String::new(),
        provider: "efa".into(),
        listen: None,
        connect: None,
        domain: None,
        node: NodeId::default(),
        sizes: vec![1, 64, 4096, 65536, 1 << 20],
        iters: 1000,
        stall: Duration::from_secs(5),
        wait: Duration::from_secs(60),
    };
    for (k, v) in super::options(args) {
        match k {
            "--lib" => a.lib = v,
            "--provider" => a.provider = v,
            "--listen" => a.listen = Some(v),
            "--connect" => a.connect = Some(v),
            "--domain" => a.domain = Some(v),
            "--node" => a.node = serde_json::from_str(&v).unwrap_or_default(),
            "--sizes" => a.sizes = v.split(',').filter_map(|s| s.parse().ok()).collect(),
            "--iters" => a.iters = v.parse().unwrap_or(a.iters),
            "--stall" => a.stall = Duration::from_secs_f64(v.parse().unwrap_or(5.0)),
            "--wait" => a.wait = Duration::from_secs_f64(v.parse().unwrap_or(60.0)),
            _ => {}
        }
    }
    a
}

/// Each EFA device's first-port packet and byte counters, read through the Root as
/// `facts::rdma` reads them. The pair helper reads its own: native sits below facts.
fn counters(root: &crate::root::Root) -> BTreeMap<String, PortCounters> {
    use crate::parse::sysfs;
    let class = "sys/class/infiniband";
    let value = |rel: String| root.read_value(&rel).ok();
    let id = |rel: String| value(rel).as_deref().and_then(sysfs::hex_u32);
    root.list(class)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|name| {
            let base = format!("{class}/{name}");
            let vendor = id(format!("{base}/device/vendor"));
            let device = id(format!("{base}/device/device"));
            let is_efa = vendor.zip(device).is_some_and(|(v, d)| sysfs::is_efa_id(v, d));
            if !is_efa {
                return None;
            }
            let ports = root.list(&format!("{base}/ports")).ok()?;
            let port = ports.into_iter().find(|p| p.parse::<u32>().is_ok())?;
            let counter = |n: &str| {
                value(format!("{base}/ports/{port}/hw_counters/{n}"))
                    .and_then(|v| sysfs::counter_value(&v).ok())
            };
            let counters = PortCounters {
                tx_pkts: counter("tx_pkts"),
                rx_pkts: counter("rx_pkts"),
                tx_bytes: counter("tx_bytes"),
                rx_bytes: counter("rx_bytes"),
            };
            Some((name, counters))
        })
        .collect()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 || s.len() > 8192 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
}

fn stage(
    stage: &str,
    size: Option<usize>,
    message: impl Into<String>,
    timed_out: bool,
) -> StageError {
    StageError { stage: stage.into(), size, message: message.into(), timed_out }
}

/// The side channel: one JSON document per line, each read under a deadline.
struct Channel {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Channel {
    fn send<T: Serialize>(&mut self, v: &T) -> Result<(), String> {
        let mut line = serde_json::to_string(v).map_err(|e| e.to_string())?;
        line.push('\n');
        self.writer.write_all(line.as_bytes()).map_err(|e| format!("side channel write: {e}"))
    }

    fn recv<T: for<'de> Deserialize<'de>>(&mut self, deadline: Duration) -> Result<T, String> {
        self.reader
            .get_ref()
            .set_read_timeout(Some(deadline.max(Duration::from_millis(10))))
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        // A peer may send at most this much per message (addresses and counters).
        let n = std::io::Read::take(&mut self.reader, 1 << 20)
            .read_line(&mut line)
            .map_err(|e| format!("side channel read: {e}"))?;
        if n == 0 {
            return Err("the peer closed the side channel".into());
        }
        serde_json::from_str(&line).map_err(|e| format!("side channel: unreadable message: {e}"))
    }
}

fn open_channel(a: &Args) -> Result<(Channel, SocketAddr), String> {
    let deadline = Instant::now() + a.wait;
    let stream = if let Some(addr) = &a.listen {
        let listener =
            TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        // The parent and the user learn the port here (port 0 picks a free one).
        eprintln!("listening: {local}");
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    return Err(format!(
                        "no peer connected to {local} within {} s",
                        a.wait.as_secs()
                    ));
                }
                Err(e) => return Err(format!("accept on {local}: {e}")),
            }
        }
    } else {
        let target = a.connect.clone().unwrap_or_default();
        let addrs: Vec<SocketAddr> = target
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {target}: {e}"))?
            .collect();
        loop {
            let attempt = addrs
                .iter()
                .find_map(|s| TcpStream::connect_timeout(s, Duration::from_millis(500)).ok());
            match attempt {
                Some(s) => break s,
                None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(100)),
                None => {
                    return Err(format!(
                        "cannot reach the peer's side channel at {target} within {} s",
                        a.wait.as_secs()
                    ));
                }
            }
        }
    };
    stream.set_nonblocking(false).map_err(|e| e.to_string())?;
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().map_err(|e| e.to_string())?;
    let writer = stream.try_clone().map_err(|e| e.to_string())?;
    Ok((Channel { reader: BufReader::new(stream), writer }, peer))
}

/// `__native probe-pair --lib PATH --provider P (--listen ADDR | --connect HOST:PORT)
/// [--sizes 1,64,...] [--iters N] [--stall SECS] [--wait SECS]`.
pub fn serve(args: &[String]) -> String {
    let a = parse_args(args);
    let mut r = PairResult {
        role: if a.listen.is_some() { "listen".into() } else { "connect".into() },
        lib: a.lib.clone(),
        provider: a.provider.clone(),
        ..PairResult::default()
    };
    run(&a, &mut r);
    serde_json::to_string(&r).unwrap_or_default()
}

fn run(a: &Args, r: &mut PairResult) {
    r.node = a.node.clone();
    r.counters_before = counters(&crate::root::Root::live());
    // The side channel first: then a failure to open the fabric reaches the peer too, and
    // the peer's address tells whether a loopback interface may carry the data.
    step("side channel");
    let (mut ch, peer_addr) = match open_channel(a) {
        Ok(c) => c,
        Err(e) => {
            r.error = Some(stage("side-channel", None, e, true));
            return;
        }
    };
    r.side_channel = peer_addr.to_string();
    // A fabric step that fails ends this end's run; the peer hears why over the channel.
    macro_rules! fabric_step {
        ($e:expr) => {
            match $e {
                Ok(v) => v,
                Err(why) => {
                    r.error = Some(stage("fabric", None, why, false));
                    exchange_failure(&mut ch, a, r);
                    return;
                }
            }
        };
    }
    let fab = fabric_step!(Fabric::load(&a.lib).map_err(|e| format!("cannot load {}: {e}", a.lib)));
    r.libfabric_version = fab.release();
    step(&format!("fi_getinfo provider={}", a.provider));
    let list = fabric_step!(fab.hints().and_then(|mut h| {
        h.rdm_messages(Some(&a.provider));
        fab.getinfo(fab.api_version(), Some(&h)).map_err(|rc| {
            format!(
                "fi_getinfo for an RDM endpoint of provider {} returned {rc} ({})",
                a.provider,
                fab.strerror(rc)
            )
        })
    }));
    let rdm = list.rdm();
    let on_loopback = |d: &fabric::ProviderInfo| {
        d.domain == "lo" || d.fabric.starts_with("127.") || d.fabric == "::1/128"
    };
    // The domain asked for; else one that can reach a remote peer (a loopback interface
    // cannot).
    let chosen = match &a.domain {
        Some(want) => rdm.iter().find(|(_, d)| &d.domain == want),
        None => rdm.iter().find(|(_, d)| peer_addr.ip().is_loopback() || !on_loopback(d)),
    };
    let (info, d) = fabric_step!(chosen.ok_or_else(|| {
        let what = match &a.domain {
            Some(d) => format!("no RDM endpoint with domain {d}"),
            None if !rdm.is_empty() => {
                format!("RDM endpoints on loopback interfaces only, which cannot reach {peer_addr}")
            }
            None => "no RDM endpoint".into(),
        };
        format!("provider {} offers {what}", a.provider)
    }));
    r.fabric = Some(d.fabric.clone());
    r.domain = Some(d.domain.clone());
    step("fi_fabric/fi_domain");
    let dom = fabric_step!(
        fab.open_domain(*info)
            .map_err(|(call, rc)| format!("{call} returned {rc} ({})", fab.strerror(rc)))
    );
    step("fi_endpoint");
    let ep = fabric_step!(
        Endpoint::open(&dom, *info, WINDOW + 2)
            .map_err(|e| format!("{e} ({})", fab.strerror(e.code)))
    );
    let name = fabric_step!(ep.name().map_err(|e| e.to_string()));
    let peer = match exchange_hello(&mut ch, a, r, hex(&name)) {
        Some(p) => p,
        None => {
            finish(&mut ch, a, r);
            return;
        }
    };
    // The listening end follows the connecting end's plan, within bounds: the peer is not
    // trusted to size this end's buffers.
    let (sizes, iters) =
        if a.listen.is_some() { (&peer.sizes, peer.iters) } else { (&a.sizes, a.iters) };
    let sizes: Vec<usize> =
        sizes.iter().take(MAX_SIZES).map(|s| (*s).clamp(1, MAX_MESSAGE)).collect();
    let plan = (&sizes, iters.clamp(1, MAX_ITERS));
    match unhex(&peer.fabric_addr)
        .ok_or_else(|| "unreadable peer address".to_string())
        .and_then(|b| ep.insert(&b).map_err(|e| e.to_string()))
    {
        Ok(dest) => {
            let mut t =
                Transfers::new(&dom, &ep, dest, a.stall, plan.0.iter().copied().max().unwrap_or(1));
            r.error =
                t.run(a.listen.is_none(), plan.0, plan.1, &mut r.results, &mut r.data_ok).err();
        }
        Err(e) => {
            r.error = Some(stage(
                "fabric",
                None,
                format!("fi_av_insert of the peer's address: {e}"),
                false,
            ))
        }
    }
    finish(&mut ch, a, r);
}

/// Sends this end's hello and reads the peer's; `None` when either end cannot go on (the
/// reason is in `r.error` or `r.peer_error`).
fn exchange_hello(
    ch: &mut Channel,
    a: &Args,
    r: &mut PairResult,
    fabric_addr: String,
) -> Option<Hello> {
    let hello = Hello {
        protocol: PROTOCOL,
        provider: a.provider.clone(),
        fabric_addr,
        node: r.node.clone(),
        counters: r.counters_before.clone(),
        sizes: a.sizes.clone(),
        iters: a.iters,
        error: r.error.clone(),
    };
    let peer: Hello = match ch.send(&hello).and_then(|()| ch.recv(a.wait)) {
        Ok(h) => h,
        Err(e) => {
            r.error.get_or_insert(stage("side-channel", None, e, true));
            return None;
        }
    };
    r.peer = Some(peer.node.clone());
    r.peer_counters_before = Some(peer.counters.clone());
    if peer.error.is_some() {
        r.peer_error = peer.error.clone();
        return None;
    }
    if r.error.is_some() {
        return None;
    }
    if peer.protocol != PROTOCOL || peer.provider != a.provider {
        r.error = Some(stage(
            "side-channel",
            None,
            format!(
                "the peer runs protocol {} with provider {}; this end {PROTOCOL} with {}",
                peer.protocol, peer.provider, a.provider
            ),
            false,
        ));
        return None;
    }
    Some(peer)
}

/// This end could not open its endpoint: tell the peer, then wrap up.
fn exchange_failure(ch: &mut Channel, a: &Args, r: &mut PairResult) {
    let _ = exchange_hello(ch, a, r, String::new());
    finish(ch, a, r);
}

/// Reads the counters again and exchanges them (and any error) with the peer.
fn finish(ch: &mut Channel, a: &Args, r: &mut PairResult) {
    step("counters after");
    r.counters_after = counters(&crate::root::Root::live());
    let done = Done { error: r.error.clone(), counters: r.counters_after.clone() };
    match ch.send(&done).and_then(|()| ch.recv::<Done>(a.stall * 2 + Duration::from_secs(5))) {
        Ok(p) => {
            r.peer_error = r.peer_error.take().or(p.error);
            r.peer_counters_after = Some(p.counters);
        }
        Err(e) => {
            if r.error.is_none() && r.peer_error.is_none() {
                r.error = Some(stage("side-channel", None, format!("final exchange: {e}"), true));
            }
        }
    }
}

/// Buffers (registered when the domain needs FI_MR_LOCAL), contexts and the waits.
struct Transfers<'a, 'd> {
    ep: &'a Endpoint<'d>,
    dest: u64,
    stall: Duration,
    tx: Vec<u8>,
    rx: Vec<u8>,
    window: usize,
    tx_desc: *mut c_void,
    rx_desc: *mut c_void,
    _mrs: Vec<fabric::MemoryRegion<'a>>,
    send_ctx: Box<[OpContext]>,
    recv_ctx: Box<[OpContext]>,
    /// Completions seen but not yet claimed by a wait.
    done: Vec<*mut c_void>,
}

impl<'a, 'd> Transfers<'a, 'd> {
    fn new(
        dom: &'a fabric::Domain<'_>,
        ep: &'a Endpoint<'d>,
        dest: u64,
        stall: Duration,
        max_size: usize,
    ) -> Transfers<'a, 'd> {
        let window = (MAX_WINDOW_BYTES / max_size.max(1)).clamp(1, WINDOW);
        let mut t = Transfers {
            ep,
            dest,
            stall,
            tx: (0..max_size.max(1)).map(|i| (i % 251) as u8).collect(),
            rx: vec![0u8; max_size.max(1) * window],
            window,
            tx_desc: std::ptr::null_mut(),
            rx_desc: std::ptr::null_mut(),
            _mrs: Vec::new(),
            send_ctx: (0..WINDOW).map(|_| OpContext::default()).collect(),
            recv_ctx: (0..WINDOW).map(|_| OpContext::default()).collect(),
            done: Vec::new(),
        };
        if ep.needs_mr {
            for (buf, desc) in [(&mut t.tx, &mut t.tx_desc), (&mut t.rx, &mut t.rx_desc)] {
                let iov = iovec { iov_base: buf.as_mut_ptr() as *mut c_void, iov_len: buf.len() };
                if let Ok(mr) =
                    dom.register_kept(&fi_mr_attr::for_iov(&iov, fabric::FI_HMEM_SYSTEM, 0), 0)
                {
                    *desc = mr.desc();
                    t._mrs.push(mr);
                }
            }
        }
        t
    }

    fn post_recv(&mut self, slot: usize, size: usize) -> Result<(), StageError> {
        self.post("fi_recv", size, |t| {
            // SAFETY: rx and recv_ctx live in self until the endpoint is closed.
            unsafe {
                let buf = t.rx.as_mut_ptr().add(slot * t.tx.len());
                t.ep.post_recv(buf, size, t.rx_desc, &mut t.recv_ctx[slot])
            }
        })
    }

    fn post_send(&mut self, slot: usize, size: usize) -> Result<(), StageError> {
        self.post("fi_send", size, |t| {
            // SAFETY: tx and send_ctx live in self until the endpoint is closed.
            unsafe { t.ep.post_send(t.tx.as_ptr(), size, t.tx_desc, t.dest, &mut t.send_ctx[slot]) }
        })
    }

    /// Posts with `op`, driving progress while the queue is full (`-FI_EAGAIN`), until the
    /// stall deadline.
    fn post(
        &mut self,
        call: &str,
        size: usize,
        op: impl Fn(&mut Self) -> isize,
    ) -> Result<(), StageError> {
        let start = Instant::now();
        loop {
            match op(self) {
                0 => return Ok(()),
                rc if rc == -FI_EAGAIN && start.elapsed() < self.stall => self.progress()?,
                rc => {
                    return Err(stage(
                        "post",
                        Some(size),
                        format!("{call} returned {rc}"),
                        rc == -FI_EAGAIN,
                    ));
                }
            }
        }
    }

    /// Reads whatever completions are ready.
    fn progress(&mut self) -> Result<(), StageError> {
        let mut out = [std::ptr::null_mut(); 16];
        match self.ep.poll(&mut out) {
            Ok(n) => {
                self.done.extend_from_slice(&out[..n]);
                Ok(())
            }
            Err(e) => Err(stage(
                "completion",
                None,
                format!("error completion: err {} prov_errno {} ({})", e.err, e.prov_errno, e.text),
                false,
            )),
        }
    }

    /// Waits for the completion of `ctx`, busy-polling like fi_pingpong, until the stall
    /// deadline.
    fn wait(&mut self, ctx: *mut c_void, what: &str, size: usize) -> Result<(), StageError> {
        let start = Instant::now();
        let mut spins = 0u32;
        loop {
            if let Some(i) = self.done.iter().position(|c| *c == ctx) {
                self.done.swap_remove(i);
                return Ok(());
            }
            self.progress().map_err(|mut e| {
                e.size = Some(size);
                e
            })?;
            spins = spins.wrapping_add(1);
            // Reading the clock on every spin would cost as much as the poll itself.
            if spins % 1024 == 0 && start.elapsed() > self.stall {
                return Err(stage(
                    what,
                    Some(size),
                    format!("no completion of the {what} within {} s", self.stall.as_secs_f64()),
                    true,
                ));
            }
        }
    }

    fn send_ctx(&mut self, slot: usize) -> *mut c_void {
        &mut self.send_ctx[slot] as *mut OpContext as *mut c_void
    }

    fn recv_ctx(&mut self, slot: usize) -> *mut c_void {
        &mut self.recv_ctx[slot] as *mut OpContext as *mut c_void
    }

    fn run(
        &mut self,
        initiator: bool,
        sizes: &[usize],
        iters: usize,
        out: &mut Vec<SizeResult>,
        data_ok: &mut Option<bool>,
    ) -> Result<(), StageError> {
        for &size in sizes {
            let size = size.min(self.tx.len());
            // Big messages take longer: fewer round trips, as fi_pingpong's defaults do.
            let n = iters.min((256 << 20) / size.max(1)).max(10);
            let res = self.pingpong(initiator, size, n, data_ok).map_err(|mut e| {
                e.stage = format!("pingpong/{}", e.stage);
                e
            })?;
            out.extend(res);
            if size >= 65536 {
                let rounds = (n / self.window).clamp(4, 64);
                let res = self.stream(initiator, size, rounds).map_err(|mut e| {
                    e.stage = format!("stream/{}", e.stage);
                    e
                })?;
                out.extend(res);
            }
        }
        Ok(())
    }

    fn pingpong(
        &mut self,
        initiator: bool,
        size: usize,
        iters: usize,
        data_ok: &mut Option<bool>,
    ) -> Result<Option<SizeResult>, StageError> {
        self.post_recv(0, size)?;
        let mut start = Instant::now();
        for i in 0..WARMUP + iters {
            if i == WARMUP {
                start = Instant::now();
            }
            let (rc, sc) = (self.recv_ctx(0), self.send_ctx(0));
            if initiator {
                self.post_send(0, size)?;
                self.wait(sc, "send", size)?;
                self.wait(rc, "receive", size)?;
                if i == 0 {
                    let ok = self.rx[..size] == self.tx[..size];
                    *data_ok = Some(data_ok.unwrap_or(true) && ok);
                }
                self.post_recv(0, size)?;
            } else {
                self.wait(rc, "receive", size)?;
                self.post_recv(0, size)?;
                self.post_send(0, size)?;
                self.wait(sc, "send", size)?;
            }
        }
        // The last receive posted stays unmatched: both ends post one more message below.
        let secs = start.elapsed().as_secs_f64();
        // Each round trip is two transfers.
        let result =
            initiator.then(|| SizeResult::measured("pingpong", size, iters, 2 * iters, secs));
        // Match the receive each end still has posted, so the next test starts clean.
        let (rc, sc) = (self.recv_ctx(0), self.send_ctx(0));
        self.post_send(0, size)?;
        self.wait(sc, "send", size)?;
        self.wait(rc, "receive", size)?;
        Ok(result)
    }

    fn stream(
        &mut self,
        initiator: bool,
        size: usize,
        rounds: usize,
    ) -> Result<Option<SizeResult>, StageError> {
        let w = self.window;
        let mut start = Instant::now();
        // The receiver keeps w receives posted; the sender sends w, then waits for a 1-byte ack.
        if initiator {
            self.post_recv(0, 1)?;
        } else {
            for s in 0..w {
                self.post_recv(s, size)?;
            }
        }
        for round in 0..rounds + 1 {
            if round == 1 {
                start = Instant::now();
            }
            if initiator {
                for s in 0..w {
                    self.post_send(s, size)?;
                }
                for s in 0..w {
                    let c = self.send_ctx(s);
                    self.wait(c, "send", size)?;
                }
                let c = self.recv_ctx(0);
                self.wait(c, "ack", size)?;
                if round < rounds {
                    self.post_recv(0, 1)?;
                }
            } else {
                for s in 0..w {
                    let c = self.recv_ctx(s);
                    self.wait(c, "receive", size)?;
                }
                if round < rounds {
                    for s in 0..w {
                        self.post_recv(s, size)?;
                    }
                }
                self.post_send(0, 1)?;
                let c = self.send_ctx(0);
                self.wait(c, "ack", size)?;
            }
        }
        let secs = start.elapsed().as_secs_f64();
        Ok(initiator.then(|| SizeResult::measured("stream", size, rounds * w, rounds * w, secs)))
    }
}
