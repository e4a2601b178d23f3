//! Parsers for sysfs attribute values (PCI, InfiniBand class, DMI).

/// PCI vendor of Amazon's devices. Here, below every reader, because both the RDMA facts and
/// the pair probe's own counter reading tell EFA devices apart by it.
pub const VENDOR_AMAZON: u32 = 0x1d0f;

/// An EFA function: Amazon's vendor id with a `0xefaN` device id. Generations so far are
/// `0xefa0`-`0xefa3` and a patch adding `0xefa4` was posted to linux-rdma in 2026, so the
/// prefix is matched, not a fixed list (shared/research/real-efa/README.md, "PCI ids").
pub fn is_efa_id(vendor: u32, device: u32) -> bool {
    vendor == VENDOR_AMAZON && device >> 4 == 0xefa
}

/// `0x1d0f` -> 0x1d0f. sysfs writes PCI ids and classes in this form.
pub fn hex_u32(s: &str) -> Option<u32> {
    let s = s.trim();
    let s = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")).unwrap_or(s);
    if s.is_empty() || s.len() > 8 {
        return None;
    }
    u32::from_str_radix(s, 16).ok()
}

/// A counter file: a decimal u64.
pub fn counter(s: &str) -> Option<u64> {
    counter_value(s).ok()
}

/// A counter file: a decimal u64, or why the text is not one. A hardware counter is never
/// negative, so `-1` is garbage, not a count.
pub fn counter_value(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let shown: String = t.chars().take(40).collect();
    if t.is_empty() {
        return Err("unparsable: empty".into());
    }
    if t.starts_with('-') {
        return Err(format!("unparsable: negative value {shown:?}"));
    }
    if !t.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("unparsable: not a decimal counter {shown:?}"));
    }
    t.parse().map_err(|_| format!("unparsable: over the 64-bit counter range {shown:?}"))
}

/// `numa_node`: `-1` means no NUMA affinity.
pub fn numa_node(s: &str) -> Option<i32> {
    s.trim().parse().ok()
}

/// PCIe link speed in GT/s from `current_link_speed`/`max_link_speed`: `16.0 GT/s PCIe`
/// (kernel >= 5.x), `8 GT/s` (older), `2.5 GT/s`; `Unknown`/`Unknown speed` gives `None`.
pub fn link_speed_gts(s: &str) -> Option<f64> {
    let first = s.split_whitespace().next()?;
    let v: f64 = first.parse().ok()?;
    (v.is_finite() && v > 0.0 && v < 1000.0).then_some(v)
}

/// PCIe generation for a per-lane rate.
pub fn pcie_gen(gts: f64) -> Option<u32> {
    const GENS: [(f64, u32); 6] = [(2.5, 1), (5.0, 2), (8.0, 3), (16.0, 4), (32.0, 5), (64.0, 6)];
    GENS.iter().find(|(r, _)| (gts - r).abs() < 0.01).map(|(_, g)| *g)
}

/// Link width from `current_link_width`: a decimal lane count; `0` or garbage gives `None`.
pub fn link_width(s: &str) -> Option<u32> {
    s.trim().parse().ok().filter(|w| *w > 0 && *w <= 32)
}

/// `ports/N/rate` = `100 Gb/sec (4X EDR)`: the leading integer, in Gb/s (REFERENCE §1.5).
pub fn ib_rate_gbps(s: &str) -> Option<u32> {
    let first = s.split_whitespace().next()?;
    first.split('.').next()?.parse().ok()
}

/// `ports/N/state` = `4: ACTIVE` -> (4, "ACTIVE").
pub fn ib_state(s: &str) -> Option<(u32, String)> {
    let (n, name) = s.trim().split_once(':')?;
    Some((n.trim().parse().ok()?, name.trim().to_string()))
}

/// A PCI bus/device/function address `dddd:bb:dd.f`.
pub fn is_bdf(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 12
        && b[4] == b':'
        && b[7] == b':'
        && b[10] == b'.'
        && b.iter().enumerate().all(|(i, c)| matches!(i, 4 | 7 | 10) || c.is_ascii_hexdigit())
}

/// Bus and device numbers of a BDF, used to order EFA functions like NIXL does.
pub fn bdf_bus_dev(bdf: &str) -> Option<(u32, u32, u32)> {
    if !is_bdf(bdf) {
        return None;
    }
    Some((
        u32::from_str_radix(&bdf[5..7], 16).ok()?,
        u32::from_str_radix(&bdf[8..10], 16).ok()?,
        u32::from_str_radix(&bdf[11..12], 16).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values() {
        assert_eq!(hex_u32("0x1d0f\n"), Some(0x1d0f));
        assert_eq!(hex_u32("0x030200"), Some(0x030200));
        assert_eq!(link_speed_gts("32.0 GT/s PCIe"), Some(32.0));
        assert_eq!(link_speed_gts("8 GT/s"), Some(8.0));
        assert_eq!(link_speed_gts("Unknown"), None);
        assert_eq!(pcie_gen(16.0), Some(4));
        assert_eq!(ib_rate_gbps("100 Gb/sec (4X EDR)"), Some(100));
        assert_eq!(ib_rate_gbps("2.5 Gb/sec (1X SDR)"), Some(2));
        assert_eq!(ib_state("4: ACTIVE"), Some((4, "ACTIVE".into())));
        assert!(is_bdf("0000:10:1b.0"));
        assert!(!is_bdf("pci0000:00"));
        assert_eq!(bdf_bus_dev("0000:10:1b.0"), Some((0x10, 0x1b, 0)));
    }

    #[test]
    fn counter_values_say_why_they_are_not_counts() {
        assert_eq!(counter_value("42\n"), Ok(42));
        assert_eq!(counter_value("0"), Ok(0));
        assert!(counter_value("-5").unwrap_err().contains("negative"));
        assert!(counter_value("").unwrap_err().contains("empty"));
        assert!(counter_value("0x10").unwrap_err().contains("not a decimal"));
        assert!(counter_value("+7").unwrap_err().contains("not a decimal"));
        assert!(counter_value("99999999999999999999999").unwrap_err().contains("64-bit"));
        assert!(counter_value("garbage").unwrap_err().starts_with("unparsable"));
        assert_eq!(counter("-1"), None);
    }
}
