//! Parsers are pure functions of text and survive arbitrary input.

use efa_doctor::parse::{Version, proc, sysfs};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn proc_parsers_never_panic(s in ".{0,2000}", b in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = proc::modules(&s);
        let _ = proc::meminfo(&s);
        let _ = proc::limits_memlock(&s);
        let _ = proc::status(&s);
        let m = proc::mounts(&s);
        for x in &m { let _ = proc::tmpfs_size(&x.options); }
        let _ = proc::nvidia_version(&s);
        let _ = proc::cpuinfo_arch(&s);
        let _ = proc::maps(&s);
        let _ = proc::environ(&b);
        let _ = proc::cmdline(&b);
        let _ = proc::capability_names((b.len() as u64).wrapping_mul(0x9e3779b97f4a7c15));
    }

    #[test]
    fn sysfs_and_version_parsers_never_panic(s in ".{0,200}") {
        let _ = sysfs::hex_u32(&s);
        let _ = sysfs::counter(&s);
        let _ = sysfs::link_speed_gts(&s);
        let _ = sysfs::link_width(&s);
        let _ = sysfs::ib_rate_gbps(&s);
        let _ = sysfs::ib_state(&s);
        let _ = sysfs::bdf_bus_dev(&s);
        if let Some(v) = Version::parse(&s) { let _ = v.to_string(); let _ = v.at_least(&[2, 5]); }
    }

    #[test]
    fn elf_reader_never_panics(b in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = efa_doctor::parse::elf::parse(&b);
        let _ = efa_doctor::parse::elf::libfabric_release_in(&b);
        let _ = efa_doctor::parse::elf::strings_containing(&b, b"aws", 4);
    }

    #[test]
    fn elf_reader_survives_corrupted_real_headers(flips in proptest::collection::vec((0usize..4096, any::<u8>()), 1..32)) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/p5-healthy/opt/amazon/efa/lib/libfabric.so.1.32.0");
        let mut data = std::fs::read(path).unwrap();
        for (i, v) in flips {
            if i < data.len() { data[i] = v; }
        }
        let _ = efa_doctor::parse::elf::parse(&data);
    }

    #[test]
    fn workload_and_network_parsers_never_panic(s in ".{0,2000}", b in proptest::collection::vec(any::<u8>(), 0..2000)) {
        // Prometheus expositions, --addr arguments and IMDS CIDRs come from outside.
        let text = String::from_utf8_lossy(&b);
        let _ = efa_doctor::facts::metrics::parse(&s);
        let _ = efa_doctor::facts::metrics::parse(&text);
        let _ = efa_doctor::facts::process::parse_addr(&s);
        let _ = efa_doctor::facts::imds::parse_cidr(&s);
        let _ = efa_doctor::facts::imds::cidr_within(&s, &text);
        let vmas = proc::maps(&text);
        let _ = efa_doctor::facts::process::classify(&vmas, b.len() as u64 * 4096);
    }
}

#[test]
fn versions_compare_numerically() {
    assert!(Version::parse("2.10.0").unwrap().at_least(&[2, 9]));
    assert!(Version::parse("1.9.1").unwrap().below(&[1, 10]));
}
