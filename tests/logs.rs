//! The log analyser against real log excerpts (tests/fixtures/logs, sources in SOURCES.md):
//! every fixture gets exactly the verdicts below and no others (skips aside), including the
//! confusable negatives (a GDRCopy EFAULT is not libfabric #12019, `fi_getinfo ... empty
//! list` before a selected efa provider is not "no NICs", NET/IB is not EFA).

mod common;

use common::*;
use efa_doctor::report::Status::{self, *};

type Verdict = (&'static str, Status, Option<&'static str>);

const EXPECTED: &[(&str, &[Verdict])] = &[
    ("dmesg-efa-reg-mr-failed__nccl-issue-563.log", &[("mr.registration", Fail, Some("enomem"))]),
    (
        "efa-cuda-p2p-unavailable__libfabric-issue-11256.log",
        &[("mr.registration", Fail, Some("other"))],
    ),
    (
        "efa-dmabuf-mr-bad-address__nixl-issue-1609.log",
        &[("mr.registration", Fail, Some("efault"))],
    ),
    (
        "efa-fi-mr-regattr-eprotonosupport-p5en__pplx-garden-issue-1.log",
        &[("mr.registration", Fail, Some("other"))],
    ),
    ("efa-gdr-pin-failed__pplx-garden-issue-4.log", &[("mr.registration", Fail, Some("gdrcopy"))]),
    (
        "efa-hmem-init-dmabuf-status-gdrcopy-missing__libfabric-issue-11256.log",
        &[("mr.registration", Pass, None)],
    ),
    ("efa-internal-error-4111-banner__nixl-pr-2278.log", &[("kv.transfer", Fail, Some("failed"))]),
    (
        "efa-internal-error-4112-banner__awsome-distributed-ai-issue-647.log",
        &[("mr.memlock", Fail, Some("4112"))],
    ),
    ("efa-mr-bad-address__libfabric-issue-12019.log", &[("mr.registration", Fail, Some("efault"))]),
    ("efa-mr-enomem__libfabric-issue-9739.log", &[("mr.registration", Fail, Some("enomem"))]),
    ("fi-getinfo-efa-output-empty-list-cloudwatch__aws-ofi-nccl-issue-889.log", &[]),
    ("fi-getinfo-returned-61__aws-libfabric-issue-3.log", &[]),
    (
        "nixl-libfabric-needs-fabric-1-10-h200__efa-doctor-device-run.log",
        &[("nixl.backend-init", Fail, Some("LIBFABRIC"))],
    ),
    (
        "nixl-ucx-two-agents-h200__efa-doctor-device-run.log",
        &[
            ("nixl.backend", Warn, Some("UCX")),
            ("nixl.backend-init", Pass, None),
            ("mr.registration", Pass, None),
        ],
    ),
    (
        "nixl-ucx-srd-remote-disconnect-sglang__nixl-issue-1983.log",
        // UCX over its own EFA SRD transport is on EFA: information (skip), not a warning.
        &[("kv.transfer", Fail, Some("failed"))],
    ),
    (
        "mooncake-rdma-qp-eopnotsupp-efa__sglang-pr-24846.log",
        &[("nixl.backend-init", Fail, Some("MOONCAKE-RDMA"))],
    ),
    ("nccl-ray-worker-socket-gdr-disabled-virbr0__ray-issue-40850.log", &[]),
    ("ray-vllm-repeated-suffix-look-alike__vllm-issue-12773.log", &[]),
    (
        "nccl-ray-vllm-ib-roce-rxe__nccl-issue-1297.log",
        &[("nccl.net-plugin", Warn, Some("missing")), ("nccl.network", Pass, Some("IB"))],
    ),
    (
        "nccl-ib-roce-h200-using-network-ib__deepep-issue-143.log",
        &[("nccl.net-plugin", Warn, Some("missing")), ("nccl.network", Pass, Some("IB"))],
    ),
    (
        "nccl-2.21.5-plugin-load-returned-socket-wsl__nccl-issue-1653.log",
        &[
            ("nccl.net-plugin", Warn, Some("missing")),
            ("nccl.network", Fail, Some("Socket")),
            ("transport.tcp-fallback", Fail, Some("nccl")),
        ],
    ),
    (
        "nccl-2.18.3-socket-ens4-no-plugin__nccl-tests-issue-166.log",
        &[
            ("nccl.net-plugin", Warn, Some("missing")),
            ("nccl.network", Fail, Some("Socket")),
            ("transport.tcp-fallback", Fail, Some("nccl")),
        ],
    ),
    (
        "composed-nccl-2.28-plugin-present-dependency-missing.log",
        &[
            ("nccl.net-plugin", Warn, Some("load-failed")),
            ("nccl.network", Fail, Some("Socket")),
            ("transport.tcp-fallback", Fail, Some("nccl")),
        ],
    ),
    (
        "composed-nccl-2.28-external-plugin-unsupported.log",
        &[
            ("nccl.net-plugin", Warn, Some("load-failed")),
            ("nccl.network", Fail, Some("Socket")),
            ("transport.tcp-fallback", Fail, Some("nccl")),
        ],
    ),
    (
        "composed-ofi-1.16-force-simple-gdr-not-supported.log",
        &[
            ("nccl.net-plugin", Pass, Some("loaded")),
            ("nccl.provider", Pass, Some("efa")),
            ("nccl.gdrdma", Warn, Some("disabled")),
            ("transport.tcp-fallback", Pass, None),
        ],
    ),
    // KV connectors over NIXL (checks/rules/connectors.toml), composed from their format
    // strings: TensorRT-LLM names its backend, KVBM and LMCache report failures; storage
    // backends (GDS_MT, POSIX) and look-alike phrases give no verdict.
    (
        "composed-trtllm-nixl-libfabric-backend.log",
        &[("nixl.backend", Pass, Some("LIBFABRIC")), ("nixl.backend-init", Pass, None)],
    ),
    (
        "composed-trtllm-unsupported-backend-fallback-ucx.log",
        &[("nixl.backend", Warn, Some("UCX")), ("nixl.backend-init", Pass, None)],
    ),
    (
        "composed-kvbm-0.8-libfabric-backend-failed.log",
        &[("nixl.backend-init", Fail, Some("LIBFABRIC"))],
    ),
    ("composed-lmcache-nixl-send-failed.log", &[("kv.transfer", Fail, Some("failed"))]),
    ("composed-connectors-look-alike-no-verdict.log", &[]),
    (
        "composed-ofi-1.14-no-eligible-providers.log",
        &[("nccl.net-plugin", Fail, Some("init-failed")), ("nccl.provider", Fail, Some("none"))],
    ),
    (
        "synthetic-fluentbit-json-ofi-init-failed.log",
        &[
            ("nccl.net-plugin", Fail, Some("init-failed")),
            ("nccl.provider", Pass, Some("efa")),
            ("nccl.gdrdma", Fail, Some("disabled")),
            ("transport.tcp-fallback", Fail, Some("nccl")),
        ],
    ),
    (
        "synthetic-ray-prefix-repeated-ofi-socket-fallback.log",
        &[
            ("nccl.net-plugin", Fail, Some("init-failed")),
            ("nccl.network", Fail, Some("Socket")),
            ("transport.tcp-fallback", Fail, Some("nccl")),
        ],
    ),
    ("synthetic-cloudwatch-time-after-nixl-srd.log", &[("kv.transfer", Fail, Some("failed"))]),
    (
        "synthetic-ansi-colour-vllm-ucx.log",
        &[("nixl.backend", Warn, Some("UCX")), ("nixl.backend-init", Pass, None)],
    ),
    (
        "synthetic-srun-label-kubectl-timestamps-p5en.log",
        &[
            ("nccl.provider", Pass, Some("efa")),
            ("nccl.network", Pass, Some("Libfabric")),
            ("transport.tcp-fallback", Pass, None),
        ],
    ),
    ("libfabric-cuda-dmabuf-status-cloudwatch__aws-ofi-nccl-issue-889.log", &[]),
    (
        "nccl-aws-libfabric-no-nic-info__nccl-issue-229.log",
        &[("nccl.network", Pass, Some("Libfabric")), ("nccl.gdrdma", Warn, Some("disabled"))],
    ),
    (
        "nccl-gdrdma-shared-sagemaker-timestamps__aws-ofi-nccl-issue-715.log",
        &[("nccl.network", Pass, Some("Libfabric")), ("nccl.gdrdma", Pass, Some("enabled"))],
    ),
    ("nccl-ib-gdr-disabled-for-hca__nccl-issue-1537.log", &[("nccl.network", Pass, Some("IB"))]),
    (
        "nccl-net-socket-ec2-no-efa__nccl-issue-226.log",
        &[
            ("nccl.net-plugin", Warn, Some("missing")),
            ("nccl.network", Fail, Some("Socket")),
            ("transport.tcp-fallback", Fail, Some("nccl")),
        ],
    ),
    (
        "nccl-no-plugin-found-efa-sockets__nccl-issue-959.log",
        &[("nccl.net-plugin", Warn, Some("missing"))],
    ),
    (
        "nccl-no-plugin-socket-2.4.8__nccl-issue-352.log",
        &[("nccl.net-plugin", Warn, Some("missing"))],
    ),
    (
        "nccl-no-plugin-using-network-socket-2.10.3__nccl-issue-1126.log",
        &[
            ("nccl.net-plugin", Warn, Some("missing")),
            ("nccl.network", Fail, Some("Socket")),
            ("transport.tcp-fallback", Fail, Some("nccl")),
        ],
    ),
    (
        "nccl-ofi-selected-efa-16nics-p5en__nccl-issue-1597.log",
        &[
            ("nccl.provider", Pass, Some("efa")),
            ("nccl.network", Pass, Some("Libfabric")),
            ("transport.tcp-fallback", Pass, None),
        ],
    ),
    (
        "nccl-openmpi-prefix-aws-libfabric-av-error__aws-ofi-nccl-issue-24.log",
        &[("nccl.network", Pass, Some("Libfabric")), ("nccl.gdrdma", Warn, Some("disabled"))],
    ),
    ("nccl-pdsh-prefix-p4d-bootstrap__aws-ofi-nccl-issue-67.log", &[]),
    (
        "nccl-plugin-dlerror-2.19.3__nccl-issue-1231.log",
        &[("nccl.net-plugin", Warn, Some("missing"))],
    ),
    (
        "nccl-plugin-load-returned-2-rank-prefix__nccl-issue-1232.log",
        &[("nccl.net-plugin", Warn, Some("missing"))],
    ),
    (
        "nccl-plugin-load-returned-2__nccl-tests-issue-188.log",
        &[("nccl.net-plugin", Warn, Some("missing"))],
    ),
    (
        "nccl-plugin-miss-internal-network-plugin-2.21.5__nccl-issue-1504.log",
        &[("nccl.net-plugin", Warn, Some("missing"))],
    ),
    (
        "nccl-plugin-miss-pdsh-host-prefix__nccl-issue-1059.log",
        &[("nccl.net-plugin", Warn, Some("missing"))],
    ),
    (
        "nccl-via-aws-libfabric-gdrdma-multirail__aws-ofi-nccl-issue-65.log",
        &[("nccl.network", Pass, Some("Libfabric")), ("nccl.gdrdma", Pass, Some("enabled"))],
    ),
    (
        "nccl-via-aws-libfabric-gdrdma__nccl-issue-527.log",
        &[("nccl.network", Pass, Some("Libfabric")), ("nccl.gdrdma", Pass, Some("enabled"))],
    ),
    (
        "nixl-backend-ucx-instantiated-ucp-incompatible__sglang-issue-5709.log",
        &[("nixl.backend", Warn, Some("UCX")), ("nixl.backend-init", Pass, None)],
    ),
    (
        "nixl-backend-ucx-instantiated-vllm__vllm-issue-29369.log",
        &[("nixl.backend", Warn, Some("UCX")), ("nixl.backend-init", Pass, None)],
    ),
    (
        "nixl-createbackend-unsupported-ucx__nixl-issue-1561.log",
        &[("nixl.backend-init", Fail, Some("UCX"))],
    ),
    (
        "nixl-libfabric-plugin-discovery-rail-manager__llm-d-pr-391.log",
        &[("nixl.backend", Pass, Some("LIBFABRIC"))],
    ),
    ("nixl-loaded-plugin-old-wording__nixl-issue-96.log", &[]),
    ("nixl-plugin-discovery-libfabric__llm-d-pr-741.log", &[]),
    ("nixl-registermem-no-backends__nixl-pr-1627.log", &[("mr.registration", Fail, Some("other"))]),
    (
        "ofi-1.3.0-hmem-requires-rdma-sagemaker__aws-ofi-nccl-issue-161.log",
        &[
            ("nccl.net-plugin", Pass, Some("loaded")),
            ("nccl.provider", Pass, Some("efa")),
            ("nccl.network", Pass, Some("Libfabric")),
            ("transport.tcp-fallback", Pass, None),
        ],
    ),
    (
        "ofi-1.4.0-selected-efa-using-network-aws-libfabric__nccl-issue-527.log",
        &[
            ("nccl.net-plugin", Pass, Some("loaded")),
            ("nccl.provider", Pass, Some("efa")),
            ("nccl.network", Pass, Some("Libfabric")),
            ("transport.tcp-fallback", Pass, None),
        ],
    ),
    (
        "ofi-could-not-disable-cuda-api-gdr-off-a10g__nccl-tests-issue-245.log",
        &[("nccl.gdrdma", Warn, Some("disabled"))],
    ),
    (
        "ofi-gdr-disabled-init-failed-efa-fabric__aws-ofi-nccl-issue-889.log",
        &[
            ("nccl.net-plugin", Fail, Some("init-failed")),
            ("nccl.provider", Pass, Some("efa")),
            ("nccl.gdrdma", Fail, Some("disabled")),
            ("transport.tcp-fallback", Fail, Some("nccl")),
        ],
    ),
    (
        "ofi-gdr-unsupported-efa-and-tcp-fabric__aws-ofi-nccl-pr-850.log",
        &[
            ("nccl.provider", Pass, Some("efa")),
            ("nccl.provider", Fail, Some("tcp")),
            ("nccl.gdrdma", Warn, Some("disabled")),
            ("transport.tcp-fallback", Fail, Some("nccl")),
        ],
    ),
    (
        "ofi-init-1.11.0-sagemaker-cloudwatch__aws-ofi-nccl-issue-715.log",
        &[("nccl.net-plugin", Pass, Some("loaded"))],
    ),
    (
        "ofi-init-failed-neuron-ccom__nrt-efa-comms-repro-readme.log",
        &[("nccl.net-plugin", Fail, Some("init-failed"))],
    ),
    (
        "ofi-init-failed-socket-fallback-sagemaker__aws-ofi-nccl-issue-715.log",
        &[
            ("nccl.net-plugin", Fail, Some("init-failed")),
            ("nccl.network", Fail, Some("Socket")),
            ("transport.tcp-fallback", Fail, Some("nccl")),
        ],
    ),
    (
        "ofi-init-libfabric-2.1-p4d-cloudwatch__aws-ofi-nccl-issue-889.log",
        &[("nccl.net-plugin", Pass, Some("loaded"))],
    ),
    (
        "ofi-init-openmpi-prefix-1.9.1__aws-k8s-tester-pr-454.log",
        &[("nccl.net-plugin", Pass, Some("loaded"))],
    ),
    (
        "ofi-init-sagemaker-p4d-cloudwatch__aws-ofi-nccl-issue-715.log",
        &[("nccl.net-plugin", Pass, Some("loaded"))],
    ),
    (
        "ofi-no-optimal-provider-container__aws-efa-nccl-baseami-issue-2.log",
        &[("nccl.provider", Fail, Some("none"))],
    ),
    (
        "ofi-no-optimal-provider-pdsh-prefix__aws-ofi-nccl-issue-67.log",
        &[("nccl.net-plugin", Fail, Some("init-failed")), ("nccl.provider", Fail, Some("none"))],
    ),
    (
        "ofi-old-format-selected-efa-alloc-pd__aws-ofi-nccl-issue-22.log",
        &[("nccl.provider", Pass, Some("efa")), ("transport.tcp-fallback", Pass, None)],
    ),
    (
        "ofi-selected-cxi-using-network-aws-libfabric__aws-ofi-nccl-issue-801.log",
        &[
            ("nccl.net-plugin", Pass, Some("loaded")),
            ("nccl.provider", Pass, Some("cxi")),
            ("nccl.network", Pass, Some("Libfabric")),
        ],
    ),
    (
        "ofi-selected-efa-fabric-efa-4nics-platform-set__aws-ofi-nccl-issue-889.log",
        &[("nccl.provider", Pass, Some("efa")), ("transport.tcp-fallback", Pass, None)],
    ),
    (
        "ofi-selected-efa-found-4-nics-sagemaker__aws-ofi-nccl-issue-715.log",
        &[
            ("nccl.provider", Pass, Some("efa")),
            ("nccl.network", Pass, Some("Libfabric")),
            ("transport.tcp-fallback", Pass, None),
        ],
    ),
    (
        "ofi-selected-tcp-provider-container__aws-ofi-nccl-issue-803.log",
        &[
            ("nccl.net-plugin", Pass, Some("loaded")),
            ("nccl.provider", Fail, Some("tcp")),
            ("transport.tcp-fallback", Fail, Some("nccl")),
        ],
    ),
    (
        "synthetic-getinfo-empty-then-efa-selected.log",
        &[("nccl.provider", Pass, Some("efa")), ("transport.tcp-fallback", Pass, None)],
    ),
    ("synthetic-journal-and-dmesg-efa.log", &[("mr.registration", Fail, Some("enomem"))]),
    (
        "synthetic-kubectl-prefix-p5en.log",
        &[
            ("nccl.provider", Pass, Some("efa")),
            ("nccl.network", Pass, Some("Libfabric")),
            ("transport.tcp-fallback", Pass, None),
        ],
    ),
    ("synthetic-markdown-quote-gdrcopy.log", &[("mr.registration", Fail, Some("gdrcopy"))]),
    (
        "synthetic-nixl-efa-but-ucx.log",
        &[("nixl.backend", Fail, Some("UCX")), ("nixl.backend-init", Pass, None)],
    ),
    (
        "synthetic-nixl-libfabric-tcp-rails.log",
        &[
            ("nixl.backend", Pass, Some("LIBFABRIC")),
            ("nixl.backend-init", Pass, None),
            ("transport.tcp-fallback", Fail, Some("nixl")),
        ],
    ),
    (
        "synthetic-nixl-plugin-needs-newer-libfabric.log",
        &[("nixl.backend", Warn, Some("UCX")), ("nixl.backend-init", Fail, Some("LIBFABRIC"))],
    ),
    ("synthetic-openmpi-4112-memlock.log", &[("mr.memlock", Fail, Some("4112"))]),
    (
        "synthetic-two-ranks-gdrcopy-and-dmabuf.log",
        &[("mr.registration", Fail, Some("efault")), ("mr.registration", Fail, Some("gdrcopy"))],
    ),
    ("ucx-debug-efa-gpudirect-detection__ucx-issue-10966.log", &[]),
    ("ucx-error-ibv-create-cq-efa-ud__arrow-pr-12442.log", &[]),
    (
        "ucx-error-ibv-reg-mr-bad-address__ucx-issue-8049.log",
        &[("mr.registration", Fail, Some("ucx-efault"))],
    ),
    ("ucx-error-invalid-memh__nixl-pr-2264.log", &[("nixl.backend", Warn, Some("UCX"))]),
    ("ucx-error-no-am-transport-efa-ud__ucx-pr-10069.log", &[]),
    ("ucx-error-rc-verbs-create-srq-efa__ucx-issue-6882.log", &[]),
    (
        "ucx-error-tcp-ep-nixl-endpoint-timeout__lmcache-issue-725.log",
        &[
            ("nixl.backend", Warn, Some("UCX")),
            ("kv.transfer", Fail, Some("failed")),
            ("transport.tcp-fallback", Warn, Some("ucx")),
        ],
    ),
    ("ucx-info-rc-mlx5-lanes__nixl-issue-149.log", &[]),
    (
        "ucx-info-tcp-lanes-cuda-ipc__nixl-issue-1097.log",
        &[("transport.tcp-fallback", Warn, Some("ucx"))],
    ),
    (
        "vllm-external-prefix-cache-hit-rate__vllm-ascend-pr-11876.log",
        &[("kv.transfer", Pass, Some("ok"))],
    ),
    (
        "vllm-kv-transfer-metrics-early-variant__vllm-pr-20443.log",
        &[("kv.transfer", Warn, Some("none"))],
    ),
    ("vllm-kv-transfer-metrics__vllm-pr-25388.log", &[("kv.transfer", Pass, Some("ok"))]),
    (
        "vllm-nixl-transfer-failure-context__vllm-pr-32031.log",
        &[("kv.transfer", Fail, Some("failed"))],
    ),
];

fn verdicts(file: &str) -> Vec<(String, Status, Option<String>)> {
    let path = fixture("logs").join(file);
    let o = run(&["logs", path.to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{file}: {e}"));
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] != "skip")
        .map(|r| {
            let st: Status = serde_json::from_value(r["status"].clone()).unwrap();
            (r["id"].as_str().unwrap().to_string(), st, r["value"].as_str().map(String::from))
        })
        .collect()
}

#[test]
fn every_log_fixture_gets_its_verdicts() {
    let mut failures = Vec::new();
    for (file, expected) in EXPECTED {
        let got = verdicts(file);
        let want: Vec<(String, Status, Option<String>)> =
            expected.iter().map(|(i, s, v)| (i.to_string(), *s, v.map(String::from))).collect();
        if got != want {
            failures.push(format!("{file}:\n  want {want:?}\n  got  {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_fixture_is_in_the_table_and_documented() {
    let sources = std::fs::read_to_string(fixture("logs").join("SOURCES.md")).unwrap();
    for e in std::fs::read_dir(fixture("logs")).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with(".log") {
            continue;
        }
        assert!(EXPECTED.iter().any(|(f, _)| *f == name), "{name} has no expected verdicts");
        assert!(sources.contains(&format!("`{name}`")), "{name} is not in SOURCES.md");
    }
}

#[test]
fn evidence_carries_file_and_line() {
    let path = fixture("logs").join("efa-dmabuf-mr-bad-address__nixl-issue-1609.log");
    let o = run(&["logs", path.to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = v["results"].as_array().unwrap().iter().find(|r| r["id"] == "mr.registration").unwrap();
    let lines: Vec<u64> =
        r["evidence"].as_array().unwrap().iter().map(|e| e["line"].as_u64().unwrap()).collect();
    assert!(lines.contains(&6), "the Unable to register MR line is line 6: {lines:?}");
    assert!(r["evidence"][0]["source"].as_str().unwrap().ends_with("nixl-issue-1609.log"));
    assert!(r["summary"].as_str().unwrap().contains("#12019"));
    assert!(r["remediation"].as_str().unwrap().contains("2.5"));
}

#[test]
fn prefixes_do_not_change_verdicts() {
    // The same real lines, bare and behind kubectl / markdown prefixes.
    assert_eq!(
        verdicts("nccl-ofi-selected-efa-16nics-p5en__nccl-issue-1597.log"),
        verdicts("synthetic-kubectl-prefix-p5en.log")
    );
    assert_eq!(
        verdicts("efa-gdr-pin-failed__pplx-garden-issue-4.log"),
        verdicts("synthetic-markdown-quote-gdrcopy.log")
    );
    // Shippers: Fluent Bit JSON, Ray's prefix and dedup suffix, CloudWatch's timestamp after
    // the message, ANSI colours, srun labels with kubectl timestamps.
    for (bare, wrapped) in [
        (
            "ofi-gdr-disabled-init-failed-efa-fabric__aws-ofi-nccl-issue-889.log",
            "synthetic-fluentbit-json-ofi-init-failed.log",
        ),
        (
            "ofi-init-failed-socket-fallback-sagemaker__aws-ofi-nccl-issue-715.log",
            "synthetic-ray-prefix-repeated-ofi-socket-fallback.log",
        ),
        (
            "nixl-ucx-srd-remote-disconnect-sglang__nixl-issue-1983.log",
            "synthetic-cloudwatch-time-after-nixl-srd.log",
        ),
        (
            "nixl-backend-ucx-instantiated-vllm__vllm-issue-29369.log",
            "synthetic-ansi-colour-vllm-ucx.log",
        ),
        (
            "nccl-ofi-selected-efa-16nics-p5en__nccl-issue-1597.log",
            "synthetic-srun-label-kubectl-timestamps-p5en.log",
        ),
    ] {
        assert_eq!(verdicts(bare), verdicts(wrapped), "{wrapped}");
    }
}

fn report_of(file: &str) -> serde_json::Value {
    let path = fixture("logs").join(file);
    serde_json::from_slice(&run(&["logs", path.to_str().unwrap(), "--format", "json"]).stdout)
        .unwrap()
}

fn result<'a>(v: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    v["results"].as_array().unwrap().iter().find(|r| r["id"] == id).unwrap()
}

#[test]
fn ray_repeats_are_counted() {
    // Every third line carries `[repeated 7x across cluster]`: it stands for seven lines.
    let bare = report_of("ofi-init-failed-socket-fallback-sagemaker__aws-ofi-nccl-issue-715.log");
    let ray = report_of("synthetic-ray-prefix-repeated-ofi-socket-fallback.log");
    let n =
        |v: &serde_json::Value| v["facts"]["logs"]["events"]["ofi.init-failed"].as_u64().unwrap();
    assert!(n(&ray) > n(&bare), "{} vs {}", n(&ray), n(&bare));
    // The JSON wrapper names the pod, which becomes part of the stream.
    let json = report_of("synthetic-fluentbit-json-ofi-init-failed.log");
    let plugin = result(&json, "nccl.net-plugin");
    assert!(plugin["summary"].as_str().unwrap().contains("pod trainer-0"), "{plugin}");
}

#[test]
fn zero_successful_transfers_is_not_success() {
    let v = report_of("vllm-kv-transfer-metrics-early-variant__vllm-pr-20443.log");
    let r = result(&v, "kv.transfer");
    assert_eq!(r["status"], "warn");
    assert_eq!(r["value"], "none");
    assert!(r["summary"].as_str().unwrap().contains("no transfers seen"), "{r}");
    assert_eq!(
        verdicts_of_text(
            "x KV Transfer metrics: Num successful transfers=0, Avg xfer time (ms)=0\n"
        ),
        [("kv.transfer".to_string(), Warn, Some("none".to_string()))]
    );
}

#[test]
fn inferred_verdicts_name_their_evidence_and_ranks() {
    let v = report_of("nixl-ucx-srd-remote-disconnect-sglang__nixl-issue-1983.log");
    let backend = result(&v, "nixl.backend");
    assert!(backend["summary"].as_str().unwrap().contains("inferred"), "{backend}");
    assert!(backend["summary"].as_str().unwrap().contains("SRD"), "{backend}");
    assert_eq!(backend["status"], "skip", "UCX over SRD is on EFA: {backend}");
    assert_eq!(backend["value"], "UCX", "{backend}");
    assert!(!backend["evidence"].as_array().unwrap().is_empty(), "{backend}");
    // UCX over TCP lanes stays a finding.
    assert_eq!(
        verdicts_of_text(
            // The UCX lane line checks/rules/ucx.toml cites (real).
            "[1765333150.098983] [g340-cd51-4900-11aa-cea2-3aba-b2e8:1570878:2]      ucp_worker.c:1912 UCX  INFO    ucp_context_0 intra-node cfg#2 rma_am(tcp/eth1)  amo_am(tcp/eth1)  am(tcp/eth1 tcp/eth6 tcp/eth8 tcp/eth5 tcp/eth7 cuda_ipc/cuda)  ka(tcp/eth1)\n"
        )
        .iter()
        .filter(|(id, _, _)| id == "transport.tcp-fallback")
        .map(|(_, st, _)| *st)
        .collect::<Vec<_>>(),
        [Warn]
    );
    let kv = result(&v, "kv.transfer");
    // The failure names the ranks it came from and the rule behind each line.
    let ev: Vec<&str> = kv["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["observed"].as_str().unwrap())
        .collect();
    assert!(ev.iter().any(|l| l.contains("srd_iface.c")), "{ev:?}");
    let why = kv["details"]["why"].as_array().unwrap();
    assert!(why.iter().any(|w| w["rule"] == "ucx.transport-error"), "{why:?}");
    assert!(why[0]["statements"][0].as_str().unwrap().contains("ucx"), "{why:?}");
    let v = report_of("ofi-init-failed-socket-fallback-sagemaker__aws-ofi-nccl-issue-715.log");
    assert!(result(&v, "nccl.network")["summary"].as_str().unwrap().contains("(on "));
    // NCCL on InfiniBand without node context: IB, not EFA, not a failure.
    let v = report_of("nccl-ib-roce-h200-using-network-ib__deepep-issue-143.log");
    assert_eq!(result(&v, "nccl.network")["status"], "pass");
}

#[test]
fn other_backends_are_named_as_what_they_are() {
    for (text, value, word) in [
        ("NIXL INFO    _api.py:405 Backend UCCL was instantiated\n", "UCCL", "UCCL"),
        ("NIXL INFO    _api.py:405 Backend GPUNETIO was instantiated\n", "GPUNETIO", "GPUNetIO"),
        (
            "I0512 10:00:00.000000 100 efa_transport.cpp:89] [EFA] AWS Elastic Fabric Adapter transport initialized\n",
            "MOONCAKE-EFA",
            "Mooncake",
        ),
    ] {
        let d = tempfile::tempdir().unwrap();
        let log = d.path().join("t.log");
        std::fs::write(&log, text).unwrap();
        let v: serde_json::Value = serde_json::from_slice(
            &run(&["logs", log.to_str().unwrap(), "--format", "json"]).stdout,
        )
        .unwrap();
        let r = result(&v, "nixl.backend");
        assert_eq!((r["status"].as_str(), r["value"].as_str()), (Some("pass"), Some(value)));
        assert!(r["summary"].as_str().unwrap().contains(word), "{r}");
    }
}

/// Every statement of the evidence table (checks/rules/*.toml) has a line its rule must
/// match; a line said to come from the corpus must be in that fixture verbatim.
#[test]
fn every_statement_has_a_test_line() {
    use efa_doctor::facts::logs::{Analyser, rules::RuleSet};
    let rules = RuleSet::builtin().unwrap();
    let set = RuleSet::new(rules.clone()).unwrap();
    let ids = efa_doctor::checks::logs::interpret::IDS;
    let mut failures = Vec::new();
    let mut statements = 0;
    for r in &rules {
        if r.statements.is_empty() {
            failures.push(format!("{}: no statement", r.id));
        }
        for c in &r.checks {
            if !ids.contains(&c.as_str()) {
                failures.push(format!("{}: unknown check {c}", r.id));
            }
        }
        for st in &r.statements {
            statements += 1;
            let mut a = Analyser::new(&set);
            a.add_bytes("example", st.example.as_bytes());
            let hit = a.analysis.events.iter().any(|e| e.rule == r.id)
                || a.analysis.user_results.iter().any(|_| false);
            if !hit {
                failures.push(format!("{}: example does not match: {}", r.id, st.example));
            }
            if st.example_from != "format string" {
                let text = std::fs::read_to_string(fixture("logs").join(&st.example_from))
                    .unwrap_or_else(|e| panic!("{}: {}: {e}", r.id, st.example_from));
                if !text.lines().any(|l| l.contains(st.example.as_str())) {
                    failures.push(format!("{}: example not in {}", r.id, st.example_from));
                }
            }
        }
    }
    assert!(statements >= 60, "{statements} statements");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn stdin_and_gzip() {
    use std::io::Write;
    let text = std::fs::read(
        fixture("logs").join("ofi-selected-tcp-provider-container__aws-ofi-nccl-issue-803.log"),
    )
    .unwrap();
    let mut child = bin()
        .args(["logs", "-", "--format", "json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&text).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "nccl.provider" && r["value"] == "tcp")
    );
    let d = tempfile::tempdir().unwrap();
    let gz = d.path().join("x.log.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&text).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let v: serde_json::Value =
        serde_json::from_slice(&run(&["logs", gz.to_str().unwrap(), "--format", "json"]).stdout)
            .unwrap();
    assert_eq!(v["facts"]["logs"]["files"][0]["gzip"], true);
    assert!(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "nccl.provider" && r["value"] == "tcp")
    );
}

#[test]
fn unreadable_and_binary_input() {
    let o = run(&["logs", "/nonexistent.log"]);
    assert_eq!(o.status.code(), Some(2));
    let d = tempfile::tempdir().unwrap();
    let bin_file = d.path().join("core");
    let mut data = vec![0u8; 200_000];
    for (i, b) in data.iter_mut().enumerate() {
        *b = (i * 7919 % 251) as u8;
    }
    data.extend_from_slice(b"\nNET/OFI Selected provider is efa, fabric is efa (found 4 nics)\n");
    std::fs::write(&bin_file, &data).unwrap();
    let o = run(&["logs", bin_file.to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "nccl.provider" && r["value"] == "efa")
    );
}

#[test]
fn node_context_turns_nccl_over_ib_into_a_failure() {
    // On an EFA node (the p5 fixture), `Using network IB` means aws-ofi-nccl was not used.
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("nccl.log");
    std::fs::write(&log, "ip-10-0-0-1:42:42 [0] NCCL INFO Using network IB\n").unwrap();
    let root = fixture("p5-healthy");
    let o = run(&[
        "--root",
        root.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "--only",
        "nccl",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r = v["results"].as_array().unwrap().iter().find(|r| r["id"] == "nccl.network").unwrap();
    assert_eq!(r["status"], "fail");
    assert!(r["summary"].as_str().unwrap().contains("NET/IB is not EFA"));
    // Without node context the same line is not judged as EFA.
    assert_eq!(verdicts_of_text("ip-10-0-0-1:42:42 [0] NCCL INFO Using network IB\n")[0].1, Pass);
}

fn verdicts_of_text(text: &str) -> Vec<(String, Status, Option<String>)> {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("t.log");
    std::fs::write(&log, text).unwrap();
    let o = run(&["logs", log.to_str().unwrap(), "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] != "skip")
        .map(|r| {
            (
                r["id"].as_str().unwrap().into(),
                serde_json::from_value(r["status"].clone()).unwrap(),
                r["value"].as_str().map(String::from),
            )
        })
        .collect()
}

#[test]
fn user_rules_add_results_without_recompiling() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("site.toml"),
        r#"
[[rule]]
id = "site.nccl-timeout"
literals = ["NCCL timeout"]
regex = 'NCCL timeout after (?P<secs>\d+) s'
[rule.result]
id = "site.nccl-timeout"
status = "warn"
summary = "NCCL timed out after {secs} s"
remediation = "Check the network."
value = "{secs}"
"#,
    )
    .unwrap();
    let log = d.path().join("x.log");
    std::fs::write(&log, "a\nrank 3: NCCL timeout after 1800 s\nNCCL timeout after 1800 s\n")
        .unwrap();
    let o = run(&[
        "logs",
        log.to_str().unwrap(),
        "--rules",
        d.path().to_str().unwrap(),
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let r: Vec<_> = v["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["id"] == "site.nccl-timeout")
        .collect();
    assert_eq!(r.len(), 1, "one result per distinct value");
    assert_eq!(r[0]["status"], "warn");
    assert_eq!(r[0]["summary"], "NCCL timed out after 1800 s");
    assert_eq!(r[0]["evidence"][0]["line"], 2);
    // A broken rule file is a usage error naming the file.
    std::fs::write(
        d.path().join("bad.toml"),
        "[[rule]]\nid='x'\nliterals=['abc']\nregex='('\nevent='e'\n",
    )
    .unwrap();
    let o = run(&["logs", log.to_str().unwrap(), "--rules", d.path().to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("bad.toml"));
}

#[test]
fn memory_stays_bounded_on_repetitive_logs() {
    let rules = efa_doctor::facts::logs::rules::RuleSet::new(
        efa_doctor::facts::logs::rules::RuleSet::builtin().unwrap(),
    )
    .unwrap();
    let line =
        "ip-1:7:7 [0] NCCL INFO Channel 00/0 : 0[0] -> 1[1] [send] via NET/Libfabric/0/GDRDMA\n";
    let text = line.repeat(100_000);
    let mut a = efa_doctor::facts::logs::Analyser::new(&rules);
    a.add_bytes("big", text.as_bytes());
    assert_eq!(a.analysis.counts["nccl.channel"], 100_000);
    assert!(a.analysis.events.len() <= efa_doctor::facts::logs::MAX_EVENTS_PER_KIND);
    assert_eq!(a.analysis.files[0].lines, 100_000);
}

#[test]
fn snapshot_carries_the_logs() {
    let d = tempfile::tempdir().unwrap();
    let snap = d.path().join("s.tar.gz");
    let log =
        fixture("logs").join("ofi-selected-tcp-provider-container__aws-ofi-nccl-issue-803.log");
    let root = fixture("p5-healthy");
    let o = run(&[
        "snapshot",
        "--root",
        root.to_str().unwrap(),
        "--log",
        log.to_str().unwrap(),
        "-o",
        snap.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(
        &run(&["--snapshot", snap.to_str().unwrap(), "--format", "json"]).stdout,
    )
    .unwrap();
    assert!(
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == "nccl.provider" && r["value"] == "tcp")
    );
}

#[test]
fn explain_lists_the_log_statements_behind_a_verdict() {
    let o = run(&["explain", "nccl.network"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("Log statements behind this verdict"), "{text}");
    assert!(text.contains("src/init.cc `Using network %s` (2.6.4-2.30.7)"), "{text}");
    let v: serde_json::Value =
        serde_json::from_slice(&run(&["explain", "kv.transfer", "--format", "json"]).stdout)
            .unwrap();
    let rules: Vec<&str> = v["log_statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"sglang.transfer-failed"), "{rules:?}");
    // A check that reads no logs lists none.
    let v: serde_json::Value =
        serde_json::from_slice(&run(&["explain", "efa.devices", "--format", "json"]).stdout)
            .unwrap();
    assert!(v.get("log_statements").is_none());
}

/// TensorRT-LLM names its NIXL backend before it creates it (transferAgent.cpp): when the
/// creation of that backend then fails, the failure is the one finding and nixl.backend does
/// not pass on the intent. Once created, the same line passes.
#[test]
fn a_backend_named_then_failing_to_create_is_one_failure_not_a_pass() {
    let named =
        "[TensorRT-LLM][INFO] NixlTransferAgent::NixlTransferAgent using NIXL backend: LIBFABRIC\n";
    let failed = "[TensorRT-LLM][ERROR] Failed to create NIXL backend: LIBFABRIC\n";
    let v = verdicts_of_text(&format!("{named}{failed}"));
    assert_eq!(
        v,
        [("nixl.backend-init".to_string(), Fail, Some("LIBFABRIC".to_string()))],
        "{v:?}"
    );
    let v = verdicts_of_text(named);
    assert!(v.contains(&("nixl.backend".into(), Pass, Some("LIBFABRIC".into()))), "{v:?}");
    assert!(v.iter().all(|(_, s, _)| *s == Pass), "{v:?}");
}
