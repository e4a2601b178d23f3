#!/usr/bin/env bash
# Runs on the GPU device machine: the glibc-2.17 release binary (scripts/release) against the
# real node. Live check and its snapshot replay must agree; the probe runs on real CUDA
# memory; NVML answers through the helper.
set -u
E=$PWD/.carry/efa-doctor-2.17
chmod +x "$E"
exec > >(tee "$OUT/release-check.log") 2>&1
"$E" --version; ldd --version | head -1
"$E" check --no-probe -f json -o /tmp/live.json; echo "check rc=$?"
"$E" snapshot --no-probe -o /tmp/node.tar.gz; echo "snapshot rc=$?"
"$E" check --snapshot /tmp/node.tar.gz -f json -o /tmp/replay.json; echo "replay rc=$?"
python3 - <<'PY'
import json
a, b = (json.load(open(p)) for p in ("/tmp/live.json", "/tmp/replay.json"))
ra = [(r["id"], r["status"], r["summary"]) for r in a["results"]]
rb = [(r["id"], r["status"], r["summary"]) for r in b["results"]]
print("live-vs-replay identical:", ra == rb, len(ra))
for x, y in zip(ra, rb):
    if x != y:
        print("  live  ", x); print("  replay", y)
print("gpu:", a["facts"]["gpu"]["state"], [g["name"] for g in a["facts"]["gpu"]["gpus"]])
print("imds:", a["facts"]["imds"]["state"], a["facts"]["imds"].get("error"))
PY
"$E" probe mr --provider tcp -f npd; echo " probe rc=$?"
"$E" probe pair --listen --bind 127.0.0.1 --port 18999 --provider tcp -f npd &
PAIR=$!
"$E" probe pair --connect 127.0.0.1:18999 --provider tcp --color never | tail -12
wait "$PAIR"  # a bare `wait` would also wait for the tee above
