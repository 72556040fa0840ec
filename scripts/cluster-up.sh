#!/usr/bin/env bash
# `make cluster-up` (or `make cluster up`): the whole platform on a local kind or k3d cluster.
#
#   1. checks docker, kind|k3d, kubectl, helm (and their versions)
#   2. starts the local image registry (localhost:5001) both cluster tools pull from
#   3. creates the cluster from k8s/ (ingress on http://*.localhost:8080) and connects the
#      registry to its network
#   4. installs cert-manager, Traefik (kind; k3d bundles it) and KServe v0.20 (Standard mode)
#   5. builds the four images tagged IMAGE_TAG (the commit, plus a dirty suffix) and pushes them
#   6. installs charts/bukva-platform (MinIO, PostgreSQL, MLflow, buckets, Prometheus)
#   7. runs training as Jobs (bukva-data, bukva-train) with the same tag
#   8. installs charts/bukva serving the champion's registry version, with the same tag, and
#      waits until the InferenceService is Ready
# Every step is idempotent: a re-run skips what exists and upgrades the rest (new images roll,
# as their tag changed). SKIP_TRAIN=1 skips step 7 and serves MODEL_VERSION, or the version
# the installed app already declares.
# shellcheck source=scripts/cluster-lib.sh
source "$(dirname "$0")/cluster-lib.sh"

check_prereqs() {
  local missing=()
  command -v docker >/dev/null || missing+=("docker (https://docs.docker.com/get-docker/)")
  command -v "$TOOL" >/dev/null || missing+=("$TOOL (https://kind.sigs.k8s.io or https://k3d.io)")
  command -v kubectl >/dev/null || missing+=("kubectl >= $MIN_KUBECTL (https://kubernetes.io/docs/tasks/tools/)")
  { [ -n "$HELM" ] && command -v "$HELM" >/dev/null; } || missing+=("helm >= $MIN_HELM (https://helm.sh/docs/intro/install/)")
  if [ ${#missing[@]} -gt 0 ]; then
    printf '  missing: %s\n' "${missing[@]}" >&2
    die "install the missing tools and run 'make cluster-up' again"
  fi
  docker info >/dev/null 2>&1 || die "docker is installed but its daemon is not running"
  local v
  v=$(kubectl version --client -o json | sed -n 's/.*"gitVersion": *"v\([0-9.]*\).*/\1/p' | head -1)
  version_ge "$v" "$MIN_KUBECTL" || die "kubectl $v is older than $MIN_KUBECTL"
  v=$(helm version --template '{{.Version}}' | tr -d v)
  version_ge "$v" "$MIN_HELM" || die "helm $v is older than $MIN_HELM"
  if [ "$TOOL" = kind ]; then
    v=$(kind version | sed -n 's/^kind v\([0-9.]*\).*/\1/p')
    version_ge "$v" "$MIN_KIND" || die "kind $v is older than $MIN_KIND"
  else
    v=$(k3d version | sed -n 's/^k3d version v\([0-9.]*\).*/\1/p')
    version_ge "$v" "$MIN_K3D" || die "k3d $v is older than $MIN_K3D"
  fi
  log "prerequisites ok ($TOOL, kubectl, helm $(helm version --template '{{.Version}}'), docker)"
}

start_registry() {
  local running
  running=$(docker inspect -f '{{.State.Running}}' "$REGISTRY_NAME" 2>/dev/null) || running=absent
  case "$running" in
    true) log "registry $REGISTRY_NAME running on $REGISTRY" ;;
    false) log "starting registry $REGISTRY_NAME"; docker start "$REGISTRY_NAME" >/dev/null ;;
    *)
      log "creating registry $REGISTRY_NAME ($REGISTRY_IMAGE) on $REGISTRY"
      docker run -d --restart=always --name "$REGISTRY_NAME" \
        -p "127.0.0.1:$REGISTRY_PORT:5000" "$REGISTRY_IMAGE" >/dev/null
      ;;
  esac
}

create_cluster() {
  if [ "$TOOL" = kind ]; then
    if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
      log "kind cluster $CLUSTER_NAME exists"
    else
      log "creating kind cluster $CLUSTER_NAME ($KIND_NODE_IMAGE)"
      kind create cluster --name "$CLUSTER_NAME" --image "$KIND_NODE_IMAGE" \
        --config k8s/kind-config.yaml --wait 120s
    fi
    # kind's local-registry recipe: each node maps localhost:<port> to the registry container.
    local node dir="/etc/containerd/certs.d/localhost:$REGISTRY_PORT"
    for node in $(kind get nodes --name "$CLUSTER_NAME"); do
      docker exec "$node" mkdir -p "$dir"
      printf '[host."http://%s:5000"]\n' "$REGISTRY_NAME" | docker exec -i "$node" cp /dev/stdin "$dir/hosts.toml"
    done
    connect_registry kind
  else
    if k3d cluster list "$CLUSTER_NAME" >/dev/null 2>&1; then
      log "k3d cluster $CLUSTER_NAME exists"
      k3d cluster start "$CLUSTER_NAME" >/dev/null
    else
      log "creating k3d cluster $CLUSTER_NAME ($K3S_IMAGE)"
      k3d cluster create "$CLUSTER_NAME" --config k8s/k3d-config.yaml --image "$K3S_IMAGE" --wait
    fi
    connect_registry "k3d-$CLUSTER_NAME"
  fi
  mkdir -p "$(dirname "$TOOL_RECORD")"
  echo "$TOOL" >"$TOOL_RECORD"   # which tool made it: cluster-down deletes it with the same
}

# The registry container joins the cluster's Docker network, where the nodes resolve its name.
connect_registry() {
  if docker inspect -f '{{json .NetworkSettings.Networks}}' "$REGISTRY_NAME" | grep -q "\"$1\""; then
    return 0
  fi
  log "connecting $REGISTRY_NAME to network $1"
  docker network connect "$1" "$REGISTRY_NAME"
}

install_addons() {
  log "cert-manager $CERT_MANAGER_VERSION"
  helm upgrade --install cert-manager "$CERT_MANAGER_CHART" --version "$CERT_MANAGER_VERSION" \
    --kube-context "$CONTEXT" -n cert-manager --create-namespace \
    -f k8s/cert-manager-values.yaml --wait --timeout 5m
  if [ "$TOOL" = kind ]; then
    log "Traefik chart $TRAEFIK_VERSION"
    helm upgrade --install traefik "$TRAEFIK_CHART" --version "$TRAEFIK_VERSION" \
      --kube-context "$CONTEXT" -n traefik --create-namespace \
      -f k8s/traefik-values.yaml --wait --timeout 5m
  else
    log "Traefik: bundled with k3s (its Deployment appears once k3s's helm job has run)"
    wait_created kube-system deployment/traefik 300
    kc -n kube-system rollout status deployment/traefik --timeout=300s
  fi
  log "KServe $KSERVE_VERSION (Standard mode)"
  # Retried like KServe's own installer: its webhook's certificate can lag behind the install.
  retry 3 "$RETRY_S" helm upgrade --install kserve-crd "$KSERVE_CRD_CHART" --version "$KSERVE_VERSION" \
    --kube-context "$CONTEXT" -n kserve --create-namespace --wait --timeout 5m ||
    die "the KServe CRDs did not install (3 attempts)"
  retry 3 "$RETRY_S" helm upgrade --install kserve "$KSERVE_CHART" --version "$KSERVE_VERSION" \
    --kube-context "$CONTEXT" -n kserve -f k8s/kserve-values.yaml --wait --timeout 5m ||
    die "KServe did not install (3 attempts)"
}

install_platform() {
  log "charts/bukva-platform -> namespace $NAMESPACE"
  helm upgrade --install "$PLATFORM_RELEASE" charts/bukva-platform --kube-context "$CONTEXT" \
    -n "$NAMESPACE" --create-namespace -f charts/bukva-platform/values-kind.yaml \
    "$(image_values platform)" --wait --timeout 10m
}

print_urls() {
  cat <<MSG

bukva is up ($TOOL cluster "$CLUSTER_NAME", namespace $NAMESPACE, images $IMAGE_TAG, model version $1):
  Drawing app     http://bukva.localhost:8080
  v2 API          http://api.bukva.localhost:8080/v2/models/bukva
  MLflow          http://mlflow.localhost:8080
  MinIO console   http://minio.localhost:8080   (keys: kubectl -n $NAMESPACE get secret $PLATFORM_RELEASE-s3 -o yaml)
  Prometheus      http://prometheus.localhost:8080

A v2 request through the ingress (a vertical stroke, as PNG, base64):
  curl -s http://api.bukva.localhost:8080/v2/models/bukva/infer -H 'Content-Type: application/json' \\
    -d "{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"\$(python3 -c 'import base64,io;from PIL import Image,ImageDraw;i=Image.new("L",(64,64));ImageDraw.Draw(i).line([(32,10),(32,54)],fill=255,width=6);b=io.BytesIO();i.save(b,"PNG");print(base64.b64encode(b.getvalue()).decode())')\"]}]}"

Retrain: make train-job      Tear down: make cluster-down
MSG
}

check_prereqs
resolve_tag
start_registry
create_cluster
install_addons
push_images "${IMAGES[@]}"
install_platform
if [ "${SKIP_TRAIN:-0}" = 1 ]; then
  CHAMPION=${MODEL_VERSION:-$(deployed_version)}
  [ -n "$CHAMPION" ] || die "SKIP_TRAIN=1 but no model version to serve: set MODEL_VERSION"
else
  run_training
fi
deploy_app "$CHAMPION"
print_urls "$CHAMPION"
