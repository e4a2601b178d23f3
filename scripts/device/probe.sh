#!/usr/bin/env bash
# Runs on the GPU device machine from the repository root, with .carry/efa-doctor (release
# build): the live registration probe on real CUDA memory through the system libfabric.
set -u
E=$PWD/.carry/efa-doctor
chmod +x "$E"
exec > >(tee "$OUT/probe.log") 2>&1
uname -r; nvidia-smi --query-gpu=name,driver_version,memory.used --format=csv
echo "== probe mr --provider tcp"
time "$E" probe mr --provider tcp --color never; echo "rc=$?"
"$E" probe mr --provider tcp -f json -o "$OUT/probe-tcp.json"; echo "rc=$?"
echo "== probe mr --provider efa (no EFA device here)"
"$E" probe mr --provider efa --color never; echo "rc=$?"
echo "== check: the probe runs by itself only with an efa provider"
"$E" check --only probe.mr,libfabric.efa-provider --color never; echo "rc=$?"
nvidia-smi --query-gpu=memory.used --format=csv
