#!/usr/bin/env python3
"""Writes a large log for benchmarks: NCCL/NIXL/vLLM-style noise with the real lines of
tests/fixtures/logs sprinkled in (about 1 in 2,000 lines matches a rule)."""
import glob
import os
import random
import sys

out, mib = sys.argv[1], int(sys.argv[2])
random.seed(7)
real = []
for f in sorted(glob.glob(os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "logs", "*.log"))):
    real += [l for l in open(f, encoding="utf-8", errors="replace").read().splitlines() if l.strip()]
noise = [
    "ip-10-1-2-3:4242:4300 [3] NCCL INFO Channel 07/0 : 3[3] -> 4[4] via P2P/CUMEM/read",
    "(EngineCore_DP0 pid=594) INFO 11-25 02:39:49 [core.py:253] init engine (profile, create kv cache, warmup model) took 21.55 seconds",
    "(APIServer pid=205253) INFO 09-22 13:28:53 [loggers.py:271] Engine 000: Avg prompt throughput: 1520.3 tokens/s, Running: 12 reqs",
    "[1765333150.098983] [node-7:1570878:2]      ucp_worker.c:1912 UCX  DEBUG ucp_context_0 lane 3 cfg#2",
    "I0214 02:57:25.924036      25 nixl_agent.cpp:121] NIXL ETCD is excluded",
    "2026-05-02T12:00:00.123456Z stdout F INFO:     10.0.3.14:49374 - \"POST /v1/chat/completions HTTP/1.1\" 200 OK",
]
target = mib * 1024 * 1024
written = 0
with open(out, "w") as f:
    buf = []
    while written < target:
        line = random.choice(real) if random.random() < 0.0005 else random.choice(noise)
        buf.append(line)
        written += len(line) + 1
        if len(buf) >= 10000:
            f.write("\n".join(buf) + "\n")
            buf = []
    if buf:
        f.write("\n".join(buf) + "\n")
