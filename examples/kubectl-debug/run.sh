#!/usr/bin/env bash
# Judge one node from debug pods. `kubectl debug node/...` mounts the node's root at /host;
# efa-doctor reads the node's /proc, /sys and EFA stack there, not the container's.
# The sysadmin profile makes the pod privileged, which the uverbs openability check and the
# memory-registration probe need.
#
# efa-doctor exits 1 when a check fails: that is a finding, reported, and the script goes on
# to the next step. It exits with the worst result: 0 nothing failed, 1 a check failed,
# 2 a step could not run. The debug pods it creates are deleted on exit, however it ends.
set -uo pipefail
NODE=${1:?usage: run.sh NODE [IMAGE] [WORKER_POD]}
IMAGE=${2:-ghcr.io/efa-doctor/efa-doctor:0.1.0}
WORKER=${3:-}
NS=${NAMESPACE:-default}
WORKER_NS=${WORKER_NAMESPACE:-inference}

work=$(mktemp -d)
pods=()
worst=0

cleanup() {
  # kubectl leaves a node debug pod behind when its command ends.
  if [ ${#pods[@]} -gt 0 ]; then
    kubectl delete pod -n "$NS" --ignore-not-found --wait=false "${pods[@]}" >/dev/null ||
      echo "run.sh: could not delete the debug pods ${pods[*]}" >&2
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Notes a step's exit code: 1 is a finding, anything above it a step that could not run.
record() {
  local rc=$1 what=$2
  case $rc in
    0) ;;
    1) echo "run.sh: $what: a check failed (see its report)" >&2 ;;
    *) echo "run.sh: $what: could not run (exit $rc)" >&2 ;;
  esac
  if [ "$rc" -gt "$worst" ]; then worst=$rc; fi
}

# debug KUBECTL-FLAGS... -- COMMAND...: runs COMMAND in a debug pod on the node, and keeps
# the pod's name (from kubectl's "Creating debugging pod NAME ..." line) for the cleanup.
debug() {
  local flags=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do flags+=("$1"); shift; done
  shift
  local rc=0
  kubectl debug "node/$NODE" -n "$NS" "${flags[@]}" --profile=sysadmin --image="$IMAGE" \
    -- "$@" 2>"$work/stderr" || rc=$?
  cat "$work/stderr" >&2
  local pod
  pod=$(sed -n 's/^Creating debugging pod \([^ ]*\) .*/\1/p' "$work/stderr" | head -1)
  if [ -n "$pod" ]; then pods+=("$pod"); fi
  return "$rc"
}

# One-off human report.
debug -it -- efa-doctor --root /host
record $? "human report"

# Machine-readable report kept locally.
debug -i -- efa-doctor --root /host --format json --no-probe > "efa-doctor-$NODE.json"
record $? "JSON report"

# The workers' logs analysed too.
if [ -n "$WORKER" ]; then
  if kubectl logs -n "$WORKER_NS" "$WORKER" > "$WORKER.log"; then
    efa-doctor logs "$WORKER.log"
    record $? "logs of $WORKER"
  else
    record 2 "kubectl logs $WORKER"
  fi
fi

# A support bundle: copy it out and judge it anywhere with the same rules.
debug -i -- sh -c 'efa-doctor snapshot --root /host --no-probe -o /tmp/node.tar.gz >&2 && cat /tmp/node.tar.gz' > "node-$NODE.tar.gz"
record $? "snapshot"
if [ -s "node-$NODE.tar.gz" ]; then
  efa-doctor --snapshot "node-$NODE.tar.gz"
  record $? "snapshot report"
fi

exit $((worst > 2 ? 2 : worst))
