#!/usr/bin/env bash
# `make train-job`: seed the DVC remote in MinIO with the raw data, then run training as
# Kubernetes Jobs (kustomize/overlays/$OVERLAY): bukva-data (prepare, split), then bukva-train
# (pretrain, train, evaluate, register -> MLflow alias "champion"). Re-running replaces the Jobs;
# DVC skips every stage whose inputs did not change. RESTART_PREDICTOR=1 (default when the app
# is installed) rolls the predictor so it loads the new champion.
# shellcheck source=scripts/cluster-lib.sh
source "$(dirname "$0")/cluster-lib.sh"
OVERLAY=${OVERLAY:-kind}
DVC_REMOTE_URL=s3://dvc/bukva          # kustomize/base/kustomization.yaml
SEED_PORT=${SEED_PORT:-19000}

seed_remote() {
  log "seeding the DVC remote ($DVC_REMOTE_URL) with data/raw"
  .venv/bin/dvc repro ingest
  local secret=bukva-platform-s3
  AWS_ACCESS_KEY_ID=$(kc -n "$NAMESPACE" get secret "$secret" -o jsonpath='{.data.AWS_ACCESS_KEY_ID}' | base64 -d)
  AWS_SECRET_ACCESS_KEY=$(kc -n "$NAMESPACE" get secret "$secret" -o jsonpath='{.data.AWS_SECRET_ACCESS_KEY}' | base64 -d)
  export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
  kc -n "$NAMESPACE" port-forward svc/bukva-platform-minio "$SEED_PORT:9000" >/dev/null &
  local pf=$!
  # shellcheck disable=SC2064  # expand $pf now: it is local to this function
  trap "kill $pf 2>/dev/null || true" EXIT
  for _ in $(seq 30); do
    curl -fsS "http://127.0.0.1:$SEED_PORT/minio/health/ready" >/dev/null 2>&1 && break
    sleep 1
  done
  # A local-only remote (.dvc/config.local, gitignored): the project's config stays untouched.
  .venv/bin/dvc remote add --local --force bukva-cluster "$DVC_REMOTE_URL"
  .venv/bin/dvc remote modify --local bukva-cluster endpointurl "http://127.0.0.1:$SEED_PORT"
  .venv/bin/dvc push -r bukva-cluster ingest
  kill "$pf" 2>/dev/null || true
}

run_jobs() {
  log "training Jobs (kustomize/overlays/$OVERLAY)"
  kc -n "$NAMESPACE" delete job -l app.kubernetes.io/component=training --ignore-not-found --wait=true
  kc apply -k "kustomize/overlays/$OVERLAY"
  log "bukva-data: prepare, split"
  wait_job bukva-data 3600
  log "bukva-train: pretrain, train, evaluate, register"
  kc -n "$NAMESPACE" patch job bukva-train --type=merge -p '{"spec":{"suspend":false}}'
  wait_job bukva-train 7200
}

# Wait for a Job to complete; on failure show its logs and stop.
wait_job() {
  local job=$1 timeout=$2
  if ! kc -n "$NAMESPACE" wait --for=condition=complete "job/$job" --timeout="${timeout}s" 2>/dev/null; then
    kc -n "$NAMESPACE" logs "job/$job" --tail=50 || true
    die "Job $job did not complete (kubectl -n $NAMESPACE describe job $job)"
  fi
  kc -n "$NAMESPACE" logs "job/$job" --tail=5 || true
}

seed_remote
run_jobs
if kc -n "$NAMESPACE" get deployment "$APP_RELEASE-predictor" >/dev/null 2>&1 && [ "${RESTART_PREDICTOR:-1}" = 1 ]; then
  log "rolling the predictor onto the new champion"
  kc -n "$NAMESPACE" rollout restart "deployment/$APP_RELEASE-predictor"
  kc -n "$NAMESPACE" rollout status "deployment/$APP_RELEASE-predictor" --timeout=600s
fi
log "training done: champion registered in MLflow (bukva-cnn@champion)"
