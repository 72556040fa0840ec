# Shared settings and helpers for scripts/cluster-*.sh (sourced, not run).
#
# Overrides (environment): CLUSTER_TOOL=k3d|kind, CLUSTER_NAME (default bukva), NAMESPACE
# (default bukva), IMAGE_TAG (default: scripts/cluster-tag.sh, the commit + a dirty suffix),
# OVERLAY (training, default kind), POLL_S and RETRY_S (seconds between status polls and
# between install attempts), CLUSTER_STATE_DIR (where cluster-up records the tool it used,
# default run/cluster). Every name below is derived from these, nowhere else: the kube
# context is <tool>-<CLUSTER_NAME>, the releases and Jobs go to NAMESPACE.
# shellcheck shell=bash disable=SC2034  # its variables are used by the scripts sourcing it
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=k8s/versions.env
source k8s/versions.env

CLUSTER_NAME=${CLUSTER_NAME:-bukva}
NAMESPACE=${NAMESPACE:-bukva}
POLL_S=${POLL_S:-5}      # seconds between status polls
RETRY_S=${RETRY_S:-20}   # seconds between install attempts
PLATFORM_RELEASE=bukva-platform
APP_RELEASE=bukva
MODEL_NAME=bukva   # charts/bukva's modelName: the v2 model both servers expose
IMAGES=(predictor transformer frontend trainer)
# What the host pushes to and what the nodes pull: the same name (k8s/*-config.yaml mirror it).
REGISTRY=localhost:$REGISTRY_PORT

log() { printf '\033[1m[cluster]\033[0m %s\n' "$*"; }
die() { printf '\033[31m[cluster] %s\033[0m\n' "$*" >&2; exit 1; }

# The cluster tool: CLUSTER_TOOL=kind|k3d; else the tool that made cluster CLUSTER_NAME
# (cluster-up records it in TOOL_RECORD), so a later run, `make cluster train` and `make
# cluster down` act on that cluster; else k3d when installed (it bundles Traefik), else kind.
TOOL_RECORD=${CLUSTER_STATE_DIR:-run/cluster}/$CLUSTER_NAME.tool
cluster_tool() {
  if [ -n "${CLUSTER_TOOL:-}" ]; then echo "$CLUSTER_TOOL"
  elif [ -s "$TOOL_RECORD" ]; then cat "$TOOL_RECORD"
  elif command -v k3d >/dev/null 2>&1; then echo k3d
  else echo kind; fi
}
TOOL=$(cluster_tool)
case "$TOOL" in kind | k3d) ;; *) die "CLUSTER_TOOL must be kind or k3d, not '$TOOL'" ;; esac
CONTEXT=$TOOL-$CLUSTER_NAME   # the kubeconfig context both tools name this way

# IMAGE_TAG: given, or the checkout's (scripts/cluster-tag.sh). Called by the scripts that
# build or deploy; the same value goes to every image, chart and Job of the run.
resolve_tag() {
  if [ -z "${IMAGE_TAG:-}" ]; then
    IMAGE_TAG=$(scripts/cluster-tag.sh) || die "no image tag: set IMAGE_TAG"
  fi
  export IMAGE_TAG
}
# registry/bukva/<name>:<tag> of one of IMAGES.
image_ref() { echo "$REGISTRY/bukva/$1:$IMAGE_TAG"; }

HELM=$(scripts/get-helm.sh 2>/dev/null || true)
helm() { "$HELM" "$@"; }
kc() { kubectl --context "$CONTEXT" "$@"; }

# "1.34.2" >= "1.32"?
version_ge() { [ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -1)" = "$2" ]; }

# retry N DELAY_S CMD...: run CMD until it succeeds, at most N times.
retry() {
  local n=$1 delay=$2 i
  shift 2
  for ((i = 1; ; i++)); do
    "$@" && return 0
    [ "$i" -ge "$n" ] && return 1
    log "attempt $i/$n failed: retrying in ${delay}s"
    sleep "$delay"
  done
}

# wait_created NS KIND/NAME TIMEOUT_S: wait until an object exists (rollout status and
# kubectl wait fail with NotFound on an object a controller has not created yet).
wait_created() {
  local ns=$1 obj=$2 deadline=$((SECONDS + $3))
  until kc -n "$ns" get "$obj" >/dev/null 2>&1; do
    [ "$SECONDS" -ge "$deadline" ] && die "$obj in namespace $ns was not created in $3 s"
    sleep "$POLL_S"
  done
}

# wait_job NAME TIMEOUT_S: wait until a Job completes. A Failed Job (its retries spent, or its
# deadline passed), or a pod that cannot start (an image the registry lacks, a missing
# ConfigMap or Secret: states a Job never turns into Failed), stops the wait at once, prints
# the pods' logs and events, and fails.
wait_job() {
  local job=$1 deadline=$((SECONDS + $2)) state waiting
  while :; do
    state=$(kc -n "$NAMESPACE" get job "$job" \
      -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type} {end}' 2>/dev/null) || true
    case " $state " in
      *" Complete "*) log "Job $job complete"; return 0 ;;
      *" Failed "*) job_failed "$job" "failed" ;;
    esac
    waiting=$(kc -n "$NAMESPACE" get pods -l "batch.kubernetes.io/job-name=$job" \
      -o jsonpath='{.items[*].status.containerStatuses[*].state.waiting.reason}' 2>/dev/null) || true
    case " $waiting " in
      *" ImagePullBackOff "* | *" InvalidImageName "* | *" CreateContainerConfigError "*)
        job_failed "$job" "cannot start its pod ($waiting)" ;;
    esac
    [ "$SECONDS" -ge "$deadline" ] && job_failed "$job" "did not finish in $2 s"
    sleep "$POLL_S"
  done
}

job_failed() {
  local job=$1 why=$2
  printf '\n----- logs of Job %s -----\n' "$job" >&2
  kc -n "$NAMESPACE" logs "job/$job" --all-containers --tail=200 >&2 || true
  printf '\n----- events of Job %s -----\n' "$job" >&2
  kc -n "$NAMESPACE" describe job "$job" >&2 || true
  die "Job $job $why (logs above; kubectl --context $CONTEXT -n $NAMESPACE logs job/$job)"
}

# push_images NAME...: build the named images (of IMAGES) with this run's tag and push them to
# the registry; docker's build cache makes an unchanged image quick.
push_images() {
  log "building $* as $REGISTRY/bukva/<name>:$IMAGE_TAG"
  make --no-print-directory images IMAGE_REPO="$REGISTRY/bukva" IMAGE_TAG="$IMAGE_TAG" ONLY="$*"
  local name
  for name in "$@"; do
    docker push -q "$(image_ref "$name")" >/dev/null
  done
  log "pushed $* to $REGISTRY"
}

# helm --set-string arguments pointing a chart's bukva images at the registry and the tag.
# --set-string, not --set: with --set, a tag of digits only (a commit such as 123456789012)
# becomes an integer, which the charts render as "%!s(int64=123456789012)": no image name.
image_values() {
  local sets=()
  case "$1" in
    platform) sets+=("trainerImage.repository=$REGISTRY/bukva/trainer" "trainerImage.tag=$IMAGE_TAG") ;;
    app) for c in predictor transformer frontend; do
        sets+=("$c.image.repository=$REGISTRY/bukva/$c" "$c.image.tag=$IMAGE_TAG")
      done ;;
  esac
  local IFS=,
  echo "--set-string=${sets[*]}"
}

# deploy_app VERSION: install or upgrade charts/bukva serving registry version VERSION of the
# model, with this run's images, and wait until the app serves it. A new version or new images
# change the InferenceService, so KServe rolls the predictor out itself.
deploy_app() {
  log "charts/bukva -> namespace $NAMESPACE (model version $1, images $IMAGE_TAG)"
  helm upgrade --install "$APP_RELEASE" charts/bukva --kube-context "$CONTEXT" \
    -n "$NAMESPACE" -f charts/bukva/values-kind.yaml "$(image_values app)" \
    --set-string predictor.modelVersion="$1"
  wait_served "$1"
}

# wait_served VERSION: return only once the app serves registry version VERSION. The
# InferenceService's Ready condition is not enough: in Standard mode KServe derives it from the
# predictor Deployment's Available condition, which stays true while the old pods keep serving
# during a rolling update, also when the new version never loads. So: KServe has written
# VERSION into the predictor Deployment, that Deployment's rollout has finished (the new pods
# passed readiness, which needs the model loaded, and the old ones are gone), and the
# predictor's own v2 metadata, asked through its Service, names VERSION.
wait_served() {
  local version=$1 uri predictor=$APP_RELEASE-predictor deadline served d
  log "waiting for the app to serve model version $version"
  wait_created "$NAMESPACE" "inferenceservice/$APP_RELEASE" 120
  wait_created "$NAMESPACE" "deployment/$predictor" 300
  deadline=$((SECONDS + 300))
  while :; do
    uri=$(kc -n "$NAMESPACE" get deployment "$predictor" -o jsonpath='{.spec.template.spec.containers[?(@.name=="kserve-container")].env[?(@.name=="BUKVA_MODEL_URI")].value}' \
      2>/dev/null) || true
    [ "${uri##*/}" = "$version" ] && break
    [ "$SECONDS" -ge "$deadline" ] &&
      rollout_failed "$predictor" "was not given model version $version by KServe in 300 s (it names '$uri')"
    sleep "$POLL_S"
  done
  for d in "$predictor" "$APP_RELEASE-transformer"; do
    kc -n "$NAMESPACE" rollout status "deployment/$d" --timeout=600s ||
      rollout_failed "$d" "did not roll out: its new pods never became ready"
  done
  kc -n "$NAMESPACE" wait --for=condition=Ready "inferenceservice/$APP_RELEASE" --timeout=300s
  served=$(kc get --raw "/api/v1/namespaces/$NAMESPACE/services/$predictor:80/proxy/v2/models/$MODEL_NAME" |
    sed -n 's/.*"versions": *\[ *"\([^"]*\)".*/\1/p') || true
  [ "$served" = "$version" ] ||
    rollout_failed "$predictor" "reports model version '$served' in its v2 metadata, not $version"
  kc -n "$NAMESPACE" rollout status "deployment/$APP_RELEASE-frontend" --timeout=300s ||
    rollout_failed "$APP_RELEASE-frontend" "did not roll out"
  log "the app serves model version $version"
}

# rollout_failed DEPLOYMENT WHY: print the logs of the Deployment's pods (the new ones that do
# not start and the old ones, each line prefixed with its pod), its events, and fail.
rollout_failed() {
  local d=$1
  printf '\n----- pods of Deployment %s -----\n' "$d" >&2
  kc -n "$NAMESPACE" get pods -o wide >&2 || true
  kc -n "$NAMESPACE" logs -l "app.kubernetes.io/component=${d#"$APP_RELEASE"-}" \
    --all-containers --prefix --tail=100 >&2 || true
  kc -n "$NAMESPACE" describe deployment "$d" >&2 || true
  kc -n "$NAMESPACE" get events --sort-by=.lastTimestamp >&2 || true
  die "Deployment $d $2 (the previous pods, if any, still serve)"
}

# The model version the installed app declares (empty when the app is not installed).
deployed_version() {
  local uri
  uri=$(kc -n "$NAMESPACE" get inferenceservice "$APP_RELEASE" -o \
    jsonpath='{.spec.predictor.containers[0].env[?(@.name=="BUKVA_MODEL_URI")].value}' 2>/dev/null) || true
  [ -n "$uri" ] && echo "${uri##*/}"
  return 0
}

# run_training: the training Jobs of kustomize/overlays/$OVERLAY (default kind) in NAMESPACE,
# with this run's trainer image: bukva-data, then bukva-train. Re-running replaces the Jobs; DVC
# skips what did not change. Sets CHAMPION (the version the Jobs' promotion gate made champion,
# never read from the registry's alias) and PROMOTED (true|false: by this run), from
# bukva-train's termination message (kustomize/base/job/job_state.py: also when DVC skipped
# `register`, from the verdict an earlier run kept for the same model).
run_training() {
  local overlay=${OVERLAY:-kind} dir msg
  [ -f "kustomize/overlays/$overlay/kustomization.yaml" ] || die "no overlay kustomize/overlays/$overlay"
  # Inside the checkout (kustomize takes only relative paths), one folder per run (gitignored).
  mkdir -p run/cluster
  dir=$(mktemp -d run/cluster/kustomize.XXXXXX)
  cat >"$dir/kustomization.yaml" <<EOF
# Written by scripts/cluster-lib.sh for one run: the overlay, in NAMESPACE, with the pushed image.
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: $NAMESPACE
resources:
  - ../../../kustomize/overlays/$overlay
images:
  - name: bukva/trainer
    newName: $REGISTRY/bukva/trainer
    newTag: "$IMAGE_TAG"
EOF
  log "training Jobs (kustomize/overlays/$overlay, $(image_ref trainer))"
  kc -n "$NAMESPACE" delete job -l app.kubernetes.io/component=training --ignore-not-found --wait=true
  kc kustomize "$dir" | kc apply -f -
  rm -rf "$dir"
  log "bukva-data: ingest, prepare, split, draw"
  wait_job bukva-data 3600
  log "bukva-train: pretrain, train, evaluate, register"
  kc -n "$NAMESPACE" patch job bukva-train --type=merge -p '{"spec":{"suspend":false}}'
  wait_job bukva-train 7200
  msg=$(kc -n "$NAMESPACE" get pods -l batch.kubernetes.io/job-name=bukva-train -o \
    jsonpath='{range .items[*]}{.status.containerStatuses[0].state.terminated.message}{"\n"}{end}' |
    grep 'champion=' | tail -1) || true
  CHAMPION=$(sed -n 's/.*champion=\([0-9][0-9]*\).*/\1/p' <<<"$msg")
  PROMOTED=$(sed -n 's/.*promoted=\([a-z]*\).*/\1/p' <<<"$msg")
  [ -n "$CHAMPION" ] || die "bukva-train reported no champion (termination message: '$msg')"
  case "$msg" in
    *register=skipped*) log "champion: version $CHAMPION (register unchanged: the verdict of an earlier run)" ;;
    *) log "champion: version $CHAMPION (promoted by this run: $PROMOTED)" ;;
  esac
}
