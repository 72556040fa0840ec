#!/usr/bin/env bash
# `make cluster-down` (or `make cluster down`): delete the local cluster made by
# `make cluster-up` (everything in it, volumes included) and the local image registry
# (KEEP_REGISTRY=1 keeps it, with its images, for the next cluster). Idempotent: what is
# already gone is reported, not an error.
# shellcheck source=scripts/cluster-lib.sh
source "$(dirname "$0")/cluster-lib.sh"
# The tool that made the cluster (CLUSTER_TOOL, or cluster-up's record); with neither (the
# record went with `make clean`), each installed tool's cluster of this name.
if [ -n "${CLUSTER_TOOL:-}" ] || [ -s "$TOOL_RECORD" ]; then tools=("$TOOL"); else tools=(k3d kind); fi
for tool in "${tools[@]}"; do
  if ! command -v "$tool" >/dev/null; then
    [ ${#tools[@]} = 1 ] && die "$tool is not installed; nothing to delete"
    continue
  fi
  if [ "$tool" = kind ]; then
    if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
      kind delete cluster --name "$CLUSTER_NAME"
    else
      log "no kind cluster $CLUSTER_NAME"
    fi
  else
    if k3d cluster list "$CLUSTER_NAME" >/dev/null 2>&1; then
      k3d cluster delete "$CLUSTER_NAME"
    else
      log "no k3d cluster $CLUSTER_NAME"
    fi
  fi
done
rm -f "$TOOL_RECORD"
if [ "${KEEP_REGISTRY:-0}" != 1 ] && command -v docker >/dev/null; then
  if docker inspect "$REGISTRY_NAME" >/dev/null 2>&1; then
    docker rm -f "$REGISTRY_NAME" >/dev/null
    log "registry $REGISTRY_NAME removed"
  fi
fi
log "cluster $CLUSTER_NAME removed"
