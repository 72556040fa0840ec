# Shared helpers for scripts/cluster-*.sh (sourced, not run).
# shellcheck shell=bash disable=SC2034  # its variables are used by the scripts sourcing it
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=k8s/versions.env
source k8s/versions.env
# DVC stage commands call `python`: make it the project environment's (as the Makefile does).
export PATH="$PWD/.venv/bin:$PATH"

CLUSTER_NAME=${CLUSTER_NAME:-bukva}
NAMESPACE=${NAMESPACE:-bukva}
IMAGE_TAG=${IMAGE_TAG:-0.1.0}
HTTP_PORT=${HTTP_PORT:-8080}   # host port of the ingress (k8s/*-config.yaml)
PLATFORM_RELEASE=bukva-platform
APP_RELEASE=bukva
IMAGES=(predictor transformer frontend trainer)

log() { printf '\033[1m[cluster]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[cluster] %s\033[0m\n' "$*" >&2; exit 1; }

# The cluster tool: CLUSTER_TOOL=kind|k3d, else k3d when installed (it bundles Traefik), else kind.
cluster_tool() {
  if [ -n "${CLUSTER_TOOL:-}" ]; then echo "$CLUSTER_TOOL"
  elif command -v k3d >/dev/null 2>&1; then echo k3d
  else echo kind; fi
}

HELM=$(scripts/get-helm.sh 2>/dev/null || true)
helm() { "$HELM" "$@"; }

# "1.34.2" >= "1.32"?
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

kube_context() { if [ "$(cluster_tool)" = k3d ]; then echo "k3d-$CLUSTER_NAME"; else echo "kind-$CLUSTER_NAME"; fi; }
kc() { kubectl --context "$(kube_context)" "$@"; }
