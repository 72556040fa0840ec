#!/usr/bin/env bash
# `make cluster-down` (or `make cluster down`): delete the local cluster made by
# `make cluster-up` (everything in it, volumes included) and the local image registry
# (KEEP_REGISTRY=1 keeps it, with its images, for the next cluster). Idempotent: what is
# already gone is reported, not an error.
# shellcheck source=scripts/cluster-lib.sh
source "$(dirname "$0")/cluster-lib.sh"
command -v "$TOOL" >/dev/null || die "$TOOL is not installed; nothing to delete"
if [ "$TOOL" = kind ]; then
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
if [ "${KEEP_REGISTRY:-0}" != 1 ] && command -v docker >/dev/null; then
  if docker inspect "$REGISTRY_NAME" >/dev/null 2>&1; then
    docker rm -f "$REGISTRY_NAME" >/dev/null
    log "registry $REGISTRY_NAME removed"
  fi
fi
log "cluster $CLUSTER_NAME removed"
