#!/usr/bin/env bash
# `make cluster-up`: the whole platform on a local kind or k3d cluster, idempotently.
#
#   1. checks docker, kind|k3d, kubectl, helm (and their versions)
#   2. creates the cluster from k8s/ (ingress on http://*.localhost:8080)
#   3. installs cert-manager, KServe v0.20 (Standard mode) and Traefik (kind; k3d bundles it)
#   4. builds the four images and loads them into the cluster
#   5. installs charts/bukva-platform (MinIO, PostgreSQL, MLflow, buckets, Prometheus)
#   6. seeds the DVC remote and runs training as Jobs (scripts/cluster-train.sh)
#   7. installs charts/bukva (InferenceService + Streamlit + Ingress), waits until Ready
#   8. prints the URLs and a curl line for a v2 request
# Re-running skips what exists and upgrades the rest. SKIP_TRAIN=1 skips step 6.
# shellcheck source=scripts/cluster-lib.sh
source "$(dirname "$0")/cluster-lib.sh"
TOOL=$(cluster_tool)

check_prereqs() {
  local missing=()
  command -v docker >/dev/null || missing+=("docker (https://docs.docker.com/get-docker/)")
  command -v "$TOOL" >/dev/null || missing+=("$TOOL (https://kind.sigs.k8s.io or https://k3d.io)")
  command -v kubectl >/dev/null || missing+=("kubectl >= $MIN_KUBECTL (https://kubernetes.io/docs/tasks/tools/)")
  [ -n "$HELM" ] || missing+=("helm >= $MIN_HELM (https://helm.sh/docs/intro/install/)")
  [ -x .venv/bin/dvc ] || missing+=("the Python environment: run 'make env'")
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

create_cluster() {
  if [ "$TOOL" = kind ]; then
    if kind get clusters 2>/dev/null | grep -qx "$CLUSTER_NAME"; then
      log "kind cluster $CLUSTER_NAME exists"
    else
      log "creating kind cluster $CLUSTER_NAME ($KIND_NODE_IMAGE)"
      kind create cluster --name "$CLUSTER_NAME" --image "$KIND_NODE_IMAGE" --config k8s/kind-config.yaml --wait 120s
    fi
  else
    if k3d cluster list -o json 2>/dev/null | grep -q "\"name\": *\"$CLUSTER_NAME\""; then
      log "k3d cluster $CLUSTER_NAME exists"
      k3d cluster start "$CLUSTER_NAME" >/dev/null 2>&1 || true
    else
      log "creating k3d cluster $CLUSTER_NAME ($K3S_IMAGE)"
      k3d cluster create --config k8s/k3d-config.yaml --image "$K3S_IMAGE" --wait
    fi
  fi
}

install_addons() {
  log "cert-manager $CERT_MANAGER_VERSION"
  helm upgrade --install cert-manager "$CERT_MANAGER_CHART" --version "$CERT_MANAGER_VERSION" \
    --kube-context "$(kube_context)" -n cert-manager --create-namespace \
    -f k8s/cert-manager-values.yaml --wait --timeout 5m
  if [ "$TOOL" = kind ]; then
    log "Traefik chart $TRAEFIK_VERSION"
    helm upgrade --install traefik "$TRAEFIK_CHART" --version "$TRAEFIK_VERSION" \
      --kube-context "$(kube_context)" -n traefik --create-namespace \
      -f k8s/traefik-values.yaml --wait --timeout 5m
  else
    log "Traefik: bundled with k3s"
    kc -n kube-system rollout status deployment/traefik --timeout=300s
  fi
  log "KServe $KSERVE_VERSION (Standard mode)"
  helm upgrade --install kserve-crd "$KSERVE_CRD_CHART" --version "$KSERVE_VERSION" \
    --kube-context "$(kube_context)" -n kserve --create-namespace --wait --timeout 5m
  helm upgrade --install kserve "$KSERVE_CHART" --version "$KSERVE_VERSION" \
    --kube-context "$(kube_context)" -n kserve -f k8s/kserve-values.yaml --wait --timeout 5m
}

load_images() {
  log "building images (tag $IMAGE_TAG)"
  make --no-print-directory images IMAGE_TAG="$IMAGE_TAG"
  local refs=()
  for name in "${IMAGES[@]}"; do refs+=("bukva/$name:$IMAGE_TAG"); done
  log "loading ${refs[*]} into $TOOL"
  if [ "$TOOL" = kind ]; then
    kind load docker-image --name "$CLUSTER_NAME" "${refs[@]}"
  else
    k3d image import --cluster "$CLUSTER_NAME" "${refs[@]}"
  fi
}

install_platform() {
  log "charts/bukva-platform -> namespace $NAMESPACE"
  helm upgrade --install "$PLATFORM_RELEASE" charts/bukva-platform --kube-context "$(kube_context)" \
    -n "$NAMESPACE" --create-namespace -f charts/bukva-platform/values-kind.yaml \
    --set trainerImage.tag="$IMAGE_TAG" --wait --timeout 10m
}

install_app() {
  log "charts/bukva -> namespace $NAMESPACE"
  helm upgrade --install "$APP_RELEASE" charts/bukva --kube-context "$(kube_context)" \
    -n "$NAMESPACE" -f charts/bukva/values-kind.yaml \
    --set predictor.image.tag="$IMAGE_TAG",transformer.image.tag="$IMAGE_TAG",frontend.image.tag="$IMAGE_TAG"
  log "waiting for InferenceService $APP_RELEASE to be Ready"
  kc -n "$NAMESPACE" wait --for=condition=Ready "inferenceservice/$APP_RELEASE" --timeout=600s
  kc -n "$NAMESPACE" rollout status "deployment/$APP_RELEASE-frontend" --timeout=300s
}

print_urls() {
  local port=$HTTP_PORT
  cat <<MSG

bukva is up ($TOOL cluster "$CLUSTER_NAME", namespace $NAMESPACE):
  Drawing app     http://bukva.localhost:$port
  v2 API          http://api.bukva.localhost:$port/v2/models/bukva
  MLflow          http://mlflow.localhost:$port
  MinIO console   http://minio.localhost:$port   (keys: kubectl -n $NAMESPACE get secret bukva-platform-s3 -o yaml)
  Prometheus      http://prometheus.localhost:$port

A v2 request through the ingress (a vertical stroke, as PNG, base64):
  curl -s http://api.bukva.localhost:$port/v2/models/bukva/infer -H 'Content-Type: application/json' \\
    -d "{\"inputs\":[{\"name\":\"image\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"\$(python3 -c 'import base64,io;from PIL import Image,ImageDraw;i=Image.new("L",(64,64));ImageDraw.Draw(i).line([(32,10),(32,54)],fill=255,width=6);b=io.BytesIO();i.save(b,"PNG");print(base64.b64encode(b.getvalue()).decode())')\"]}]}"

Retrain: make train-job      Tear down: make cluster-down
MSG
}

check_prereqs
create_cluster
install_addons
load_images
install_platform
if [ "${SKIP_TRAIN:-0}" != 1 ]; then scripts/cluster-train.sh; fi
install_app
print_urls
