#!/usr/bin/env bash
# Judge one node from a debug pod. `kubectl debug node/...` mounts the node's root at /host;
# efa-doctor reads the node's /proc, /sys and EFA stack there, not the container's.
# The sysadmin profile makes the pod privileged, which the uverbs openability check and the
# memory-registration probe need.
set -euo pipefail
NODE=${1:?usage: run.sh NODE [IMAGE]}
IMAGE=${2:-ghcr.io/efa-doctor/efa-doctor:latest}

# One-off human report.
kubectl debug "node/$NODE" -it --profile=sysadmin --image="$IMAGE" -- \
  efa-doctor --root /host

# Machine-readable report kept locally, with the workers' logs analysed too.
kubectl logs -n inference prefill-0 > prefill.log
kubectl debug "node/$NODE" -i --profile=sysadmin --image="$IMAGE" -- \
  efa-doctor --root /host --format json --no-probe > "efa-doctor-$NODE.json" || true
efa-doctor logs prefill.log

# A support bundle: copy it out and judge it anywhere with the same rules.
kubectl debug "node/$NODE" -i --profile=sysadmin --image="$IMAGE" -- \
  sh -c 'efa-doctor snapshot --root /host --no-probe -o /tmp/node.tar.gz >&2 && cat /tmp/node.tar.gz' > "node-$NODE.tar.gz"
efa-doctor --snapshot "node-$NODE.tar.gz"
