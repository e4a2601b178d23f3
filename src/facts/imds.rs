//! Instance identity and network placement from IMDSv2 (REFERENCE §9.2): instance type,
//! availability zone, placement group and, per network interface, the subnet and VPC CIDR
//! blocks. Never required: one second in all, then the checks go on without it.
//!
//! The endpoint and the opt-out follow the AWS SDKs: `AWS_EC2_METADATA_SERVICE_ENDPOINT`
//! and `AWS_EC2_METADATA_DISABLED=true`.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::instance::InstanceFacts;
use crate::native::NativeState;

pub const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
/// The whole query, token included.
pub const IMDS_DEADLINE: Duration = Duration::from_secs(1);
/// Network interfaces looked at (p5 has 32 EFA interfaces; p5en 16).
const MAX_INTERFACES: usize = 64;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Interface {
    pub mac: String,
    pub device_number: Option<u32>,
    pub network_card_index: Option<u32>,
    pub interface_id: Option<String>,
    pub subnet_id: Option<String>,
    pub subnet_cidr: Option<String>,
    pub vpc_id: Option<String>,
    /// The VPC's primary CIDR.
    pub vpc_cidr: Option<String>,
    /// Every IPv4 CIDR of the VPC.
    pub vpc_cidrs: Vec<String>,
    /// The subnet lies in a secondary VPC CIDR (not in the primary one, in another).
    pub secondary_cidr: Option<bool>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImdsFacts {
    pub state: NativeState,
    /// Who asked IMDS: `this process` on the live node, or this process's network namespace
    /// judging a mounted node root (a pod: answers with hostNetwork or an IMDS hop limit of
    /// 2). Absent when IMDS was not asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vantage: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub endpoint: Option<String>,
    pub instance_type: Option<String>,
    pub instance_id: Option<String>,
    pub availability_zone: Option<String>,
    pub availability_zone_id: Option<String>,
    pub region: Option<String>,
    /// `None` when the instance is in no placement group (IMDS answers 404).
    pub placement_group: Option<String>,
    pub partition_number: Option<String>,
    pub interfaces: Vec<Interface>,
}

impl ImdsFacts {
    fn not_run(why: impl Into<String>) -> ImdsFacts {
        ImdsFacts { state: NativeState::NotRun, error: Some(why.into()), ..ImdsFacts::default() }
    }
}

/// A CIDR (`a.b.c.d/n`, or IPv6) as the network it names; host bits may be set.
pub fn parse_cidr(s: &str) -> Option<ipnet::IpNet> {
    s.trim().parse().ok()
}

/// Whether CIDR `inner` lies inside CIDR `outer` (an IPv4 network never lies in an IPv6 one).
pub fn cidr_within(inner: &str, outer: &str) -> Option<bool> {
    Some(parse_cidr(outer)?.contains(&parse_cidr(inner)?))
}

/// Secondary iff not inside the primary CIDR but inside another of the VPC's CIDRs.
fn secondary(i: &Interface) -> Option<bool> {
    let subnet = i.subnet_cidr.as_deref()?;
    let in_primary = cidr_within(subnet, i.vpc_cidr.as_deref()?)?;
    Some(!in_primary && i.vpc_cidrs.iter().any(|c| cidr_within(subnet, c) == Some(true)))
}

struct Client {
    agent: ureq::Agent,
    base: String,
    token: String,
    deadline: Instant,
}

impl Client {
    fn remaining(&self) -> Result<Duration, String> {
        self.deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
            .ok_or_else(|| format!("no answer within {} s", IMDS_DEADLINE.as_secs_f64()))
    }

    /// A metadata path; `Ok(None)` for 404 (the item does not apply to this instance).
    fn get(&self, path: &str) -> Result<Option<String>, String> {
        let url = format!("{}/latest/meta-data/{path}", self.base);
        let mut resp = self
            .agent
            .get(&url)
            .header("X-aws-ec2-metadata-token", &self.token)
            .config()
            .timeout_global(Some(self.remaining()?))
            .build()
            .call()
            .map_err(|e| format!("GET {path}: {e}"))?;
        match resp.status().as_u16() {
            200 => resp
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .map(Some)
                .map_err(|e| format!("GET {path}: {e}")),
            404 => Ok(None),
            code => Err(format!("GET {path}: HTTP {code}")),
        }
    }
}

/// Queries `endpoint` within [`IMDS_DEADLINE`].
pub fn query(endpoint: &str) -> ImdsFacts {
    let deadline = Instant::now() + IMDS_DEADLINE;
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let mut f = ImdsFacts { endpoint: Some(endpoint.to_string()), ..ImdsFacts::default() };
    let token = agent
        .put(&format!("{endpoint}/latest/api/token"))
        .header("X-aws-ec2-metadata-token-ttl-seconds", "21600")
        .config()
        .timeout_global(Some(IMDS_DEADLINE))
        .build()
        .send_empty()
        .map_err(|e| e.to_string())
        .and_then(|mut r| match r.status().as_u16() {
            200 => {
                r.body_mut().with_config().limit(4096).read_to_string().map_err(|e| e.to_string())
            }
            code => Err(format!("HTTP {code}")),
        });
    let token = match token {
        Ok(t) => t,
        Err(e) => {
            f.state = NativeState::Failed;
            f.error = Some(format!(
                "no IMDSv2 token from {endpoint}: {e} (off EC2, IMDS disabled, or a container beyond the hop limit)"
            ));
            return f;
        }
    };
    let c = Client { agent, base: endpoint.to_string(), token: token.trim().to_string(), deadline };
    if let Err(e) = fill(&c, &mut f) {
        f.state = NativeState::Failed;
        f.error = Some(e);
        return f;
    }
    f.state = NativeState::Ok;
    f
}

fn fill(c: &Client, f: &mut ImdsFacts) -> Result<(), String> {
    let one = |p: &str| c.get(p).map(|v| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
    f.instance_type = one("instance-type")?;
    f.instance_id = one("instance-id")?;
    f.availability_zone = one("placement/availability-zone")?;
    f.availability_zone_id = one("placement/availability-zone-id")?;
    f.region = one("placement/region")?;
    f.placement_group = one("placement/group-name")?;
    f.partition_number = one("placement/partition-number")?;
    let macs = one("network/interfaces/macs/")?.unwrap_or_default();
    for mac in macs
        .lines()
        .map(|m| m.trim().trim_end_matches('/'))
        .filter(|m| !m.is_empty())
        .take(MAX_INTERFACES)
    {
        // MACs come from the endpoint: keep them to the shape of a MAC address.
        if !mac.chars().all(|ch| ch.is_ascii_hexdigit() || ch == ':') {
            continue;
        }
        let item = |name: &str| one(&format!("network/interfaces/macs/{mac}/{name}"));
        let mut i = Interface {
            mac: mac.to_string(),
            device_number: item("device-number")?.and_then(|v| v.parse().ok()),
            network_card_index: item("network-card-index")?.and_then(|v| v.parse().ok()),
            interface_id: item("interface-id")?,
            subnet_id: item("subnet-id")?,
            subnet_cidr: item("subnet-ipv4-cidr-block")?,
            vpc_id: item("vpc-id")?,
            vpc_cidr: item("vpc-ipv4-cidr-block")?,
            vpc_cidrs: item("vpc-ipv4-cidr-blocks")?
                .map(|v| {
                    v.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect()
                })
                .unwrap_or_default(),
            secondary_cidr: None,
        };
        i.secondary_cidr = secondary(&i);
        f.interfaces.push(i);
    }
    f.interfaces.sort_by_key(|i| (i.network_card_index, i.device_number));
    Ok(())
}

/// Whether the machine looks like an EC2 instance (DMI identity or an EFA device): IMDS is
/// not asked otherwise, so a laptop or a CI runner never waits for it.
fn looks_like_ec2(root: &crate::root::Root, instance: &InstanceFacts, efa_devices: bool) -> bool {
    efa_devices
        || instance.is_ec2() == Some(true)
        || root
            .read_value("sys/devices/virtual/dmi/id/bios_version")
            .is_ok_and(|v| v.ends_with("amazon"))
}

/// IMDS facts for the live node (an explicit endpoint is always asked).
pub fn gather(root: &crate::root::Root, instance: &InstanceFacts, efa_devices: bool) -> ImdsFacts {
    use crate::root::RootKind;
    // A mounted node root is the instance this process runs on: a pod on that node.
    let vantage = match root.kind() {
        RootKind::Live => "this process",
        RootKind::HostMount => "this process's network namespace (a pod on the node)",
        _ => {
            return ImdsFacts::not_run(
                "IMDS describes the live instance only; this root is neither live nor a mounted node root",
            );
        }
    };
    if std::env::var("AWS_EC2_METADATA_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true")) {
        return ImdsFacts::not_run("disabled by AWS_EC2_METADATA_DISABLED=true");
    }
    let mut f = match std::env::var("AWS_EC2_METADATA_SERVICE_ENDPOINT") {
        Ok(e) if !e.is_empty() => query(e.trim_end_matches('/')),
        _ if looks_like_ec2(root, instance, efa_devices) => query(DEFAULT_ENDPOINT),
        _ => {
            return ImdsFacts::not_run(
                "not an EC2 instance (no DMI identity and no EFA device): IMDS not asked",
            );
        }
    };
    f.vantage = Some(vantage.into());
    if root.kind() == RootKind::HostMount && f.state != NativeState::Ok {
        if let Some(e) = &mut f.error {
            e.push_str(
                " (asked from this pod's network: IMDS answers a pod with hostNetwork, or with an \
                 IMDS hop limit of 2)",
            );
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs() {
        assert_eq!(cidr_within("10.0.1.0/24", "10.0.0.0/16"), Some(true));
        assert_eq!(cidr_within("100.64.1.0/24", "10.0.0.0/16"), Some(false));
        assert_eq!(cidr_within("10.0.0.0/8", "10.0.0.0/16"), Some(false));
        assert_eq!(cidr_within("0.0.0.0/0", "0.0.0.0/0"), Some(true));
        assert_eq!(cidr_within("garbage", "10.0.0.0/16"), None);
        assert_eq!(cidr_within("10.0.0.0/33", "10.0.0.0/16"), None);
        assert_eq!(cidr_within(" 10.0.1.7/24 ", "10.0.0.0/16"), Some(true));
        assert_eq!(cidr_within("2600:1f14:a:b::/64", "2600:1f14::/32"), Some(true));
        assert_eq!(cidr_within("2600:1f15::/64", "2600:1f14::/32"), Some(false));
        assert_eq!(cidr_within("10.0.1.0/24", "::/0"), Some(false));
        let i = Interface {
            subnet_cidr: Some("100.64.8.0/22".into()),
            vpc_cidr: Some("10.0.0.0/16".into()),
            vpc_cidrs: vec!["10.0.0.0/16".into(), "100.64.0.0/16".into()],
            ..Interface::default()
        };
        assert_eq!(secondary(&i), Some(true));
    }
}
