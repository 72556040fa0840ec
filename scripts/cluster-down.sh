#!/usr/bin/env bash
# `make cluster-down`: delete the local cluster made by `make cluster-up` (everything in it,
# volumes included). Images stay in the local docker; `docker image rm bukva/...` removes them.
# shellcheck source=scripts/cluster-lib.sh
source "$(dirname "$0")/cluster-lib.sh"
TOOL=$(cluster_tool)
command -v "$TOOL" >/dev/null || die "$TOOL is not installed; nothing to delete"
if [ "$TOOL" = kind ]; then
  if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
    kind delete cluster --name "$CLUSTER_NAME"
  else
    log "no kind cluster $CLUSTER_NAME"
  fi
else
  if k3d cluster list -o json 2>/dev/null | grep -q "\"name\": *\"$CLUSTER_NAME\""; then
    k3d cluster delete "$CLUSTER_NAME"
  else
    log "no k3d cluster $CLUSTER_NAME"
  fi
fi
.venv/bin/dvc remote remove --local bukva-cluster >/dev/null 2>&1 || true
log "cluster $CLUSTER_NAME removed"
