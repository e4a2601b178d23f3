#!/usr/bin/env bash
# Runs on the GPU device machine (as root) from the repository root, with .carry/ holding
# efa-doctor (release build), nixl.tar.xz (the nixl-cu13 1.5.1 wheel's UCX/LIBFABRIC/telemetry
# closure) and libhwloc15's .deb. Captures the node with `efa-doctor snapshot`, runs the NIXL
# two-agent transfer with each backend while efa-doctor inspects the live process, and puts
# everything under $OUT.
set -u
C=$PWD/.carry
E=$C/efa-doctor
W=/tmp/capture
R=$W/res
rm -rf "$W"; mkdir -p "$R"
chmod +x "$E"
exec > >(tee "$OUT/capture.log") 2>&1

echo "== machine"; uname -a; id; date -u
nvidia-smi; nvidia-smi topo -m > "$R/topo.txt" 2>&1; nvidia-smi -q -x > "$R/nvidia-smi-q.xml"
PY=$(command -v python3)
SP=$($PY -c 'import site; print(site.getsitepackages()[0])')
$PY -c 'import sys, torch; print(sys.prefix, torch.__version__, torch.version.cuda)'
echo "site-packages: $SP"
ldconfig -p | grep -E 'libfabric|libhwloc|libcuda.so|libnvidia-ml' ; command -v fi_info && fi_info -l
dpkg -l 2>/dev/null | grep -E 'libfabric|ibverbs|rdma-core|hwloc' | awk '{print $2, $3}'

if [ -z "${SKIP_NODE:-}" ]; then
echo "== node: live check, snapshot, replay"
$E --version
$E check -f json -o "$R/live.json"; echo "check rc=$?"
$E check --color never > "$R/live.txt"; echo "check rc=$?"
$E snapshot -o "$OUT/h100-node.tar.gz" --description "H100 device machine, no EFA (scripts/device/capture.sh)"; echo "snapshot rc=$?"
$E check --snapshot "$OUT/h100-node.tar.gz" -f json -o "$R/replay.json"; echo "replay rc=$?"
$PY - "$R/live.json" "$R/replay.json" <<'PYEOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
ra = {(r["id"], r["summary"]): r["status"] for r in a["results"]}
rb = {(r["id"], r["summary"]): r["status"] for r in b["results"]}
print("live-vs-replay identical results:", ra == rb, len(ra), len(rb))
for k in sorted(set(ra) ^ set(rb)):
    print("  differs:", k, ra.get(k), rb.get(k))
PYEOF

echo "== CUDA dma-buf and libfabric HMEM, as the probe will see them"
timeout -k 5 60 $PY scripts/device/cuda_dmabuf.py
command -v fi_info && { fi_info --version; FI_LOG_LEVEL=warn fi_info -p tcp -c FI_HMEM 2>&1 | head -20; fi_info -p tcp -v 2>&1 | grep -iE 'hmem|mr_mode' | sort -u | head; }

fi

echo "== NIXL"
tar -xJf "$C/nixl.tar.xz" -C "$SP"
if ! ldconfig -p | grep -q 'libhwloc.so.15 '; then
  dpkg -x "$C"/libhwloc15_*.deb /tmp/hwloc && export LD_LIBRARY_PATH=/tmp/hwloc/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
fi
for d in "$SP"/nvidia/cu13/lib "$SP"/nvidia/cuda_runtime/lib; do [ -d "$d" ] && export LD_LIBRARY_PATH=$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}; done
export NIXL_TELEMETRY_ENABLE=y NIXL_TELEMETRY_EXPORTER=prometheus NIXL_TELEMETRY_PROMETHEUS_PORT=19090 NIXL_TELEMETRY_PROMETHEUS_LOCAL=1
for BK in ${BACKENDS:-UCX LIBFABRIC}; do
  echo "== NIXL backend $BK"
  rm -f "$W/$BK.ready" "$W/$BK.release"
  # HF_TOKEN is a planted secret: it must not appear in any efa-doctor output.
  HF_TOKEN=hf_plantedSECRETvalue0123 NIXL_LOG_LEVEL=DEBUG FI_LOG_LEVEL=info UCX_LOG_LEVEL=info PYTHONUNBUFFERED=1 \
    timeout -k 5 150 $PY scripts/device/nixl_transfer.py "$BK" "$W/$BK.ready" "$W/$BK.release" > "$R/nixl-$BK.log" 2>&1 &
  NIXL_PID=$!
  for _ in $(seq 300); do [ -f "$W/$BK.ready" ] && break; sleep 0.2; done
  if ! cat "$W/$BK.ready" > "$R/ready-$BK.json" 2>/dev/null; then
    echo "no ready file after 60 s"; tail -40 "$R/nixl-$BK.log"; kill "$NIXL_PID" 2>/dev/null; wait "$NIXL_PID"; continue
  fi
  cat "$R/ready-$BK.json"
  PID=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$R/ready-$BK.json")
  ADDRS=$($PY -c 'import json,sys; print(" ".join("--addr %s:%d" % (b["address"], b["size"]) for b in json.load(open(sys.argv[1]))["buffers"]))' "$R/ready-$BK.json")
  cp "/proc/$PID/maps" "$R/maps-$BK.txt"; tr '\0' ' ' < "/proc/$PID/cmdline" > "$R/cmdline-$BK.txt"
  curl -s --max-time 5 http://127.0.0.1:19090/metrics > "$R/metrics-$BK.prom"; echo "curl rc=$?"
  $E check --pid "$PID" $ADDRS --log "$R/nixl-$BK.log" --metrics http://127.0.0.1:19090/metrics -f json -o "$R/check-$BK.json"; echo "check rc=$?"
  $E check --pid "$PID" $ADDRS --log "$R/nixl-$BK.log" --metrics http://127.0.0.1:19090/metrics --color never > "$R/check-$BK.txt"; echo "check rc=$?"
  $E check --only process.nixl-backend,process.registered-memory -f json -o "$R/discover-$BK.json"; echo "discover rc=$?"
  $E snapshot --pid "$PID" --log "$R/nixl-$BK.log" -o "$OUT/nixl-$BK.tar.gz" --description "NIXL $BK two-agent transfer (scripts/device/nixl_transfer.py)"; echo "snapshot rc=$?"
  $E check --snapshot "$OUT/nixl-$BK.tar.gz" --pid "$PID" $ADDRS -f json -o "$R/replay-$BK.json"; echo "replay rc=$?"
  touch "$W/$BK.release"; wait "$NIXL_PID"  # a bare `wait` would also wait for the tee above
done
echo "== planted secret in outputs?"
grep -rl hf_plantedSECRETvalue0123 "$R"/*.json "$R"/*.txt "$OUT" && echo "SECRET LEAK" || echo "no leak"
for f in "$OUT"/*.tar.gz; do tar -xzOf "$f" | grep -c hf_plantedSECRETvalue0123; done
tar -czf "$OUT/results.tar.gz" -C "$W" res
ls -la "$OUT"
