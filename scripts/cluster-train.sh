#!/usr/bin/env bash
# `make train-job`: run training in the cluster as Kubernetes Jobs (kustomize/overlays/$OVERLAY)
# with the trainer image of IMAGE_TAG (default: this checkout's tag; built and pushed first):
# bukva-data (ingest from the public data sets or INGEST_SOURCE, prepare, split, draw), then
# bukva-train (pretrain, train, evaluate, register behind the promotion gate).
#
# When the train Job's verdict names a champion the app does not serve, the app is upgraded:
# `helm upgrade --reuse-values --set-string predictor.modelVersion=N`, reported only once the
# predictor's new pods serve N (wait_served in cluster-lib.sh). The InferenceService changes,
# so KServe rolls the predictor out itself (a `kubectl rollout restart` of its Deployment would
# be undone by KServe's reconciler). When the gate keeps the champion, nothing is rolled.
# shellcheck source=scripts/cluster-lib.sh
source "$(dirname "$0")/cluster-lib.sh"
resolve_tag

for tool in docker kubectl; do
  command -v "$tool" >/dev/null || die "$tool is not installed (make cluster-up lists what it needs)"
done
{ [ -n "$HELM" ] && command -v "$HELM" >/dev/null; } || die "helm is not installed"
kc get namespace "$NAMESPACE" >/dev/null 2>&1 ||
  die "no namespace $NAMESPACE in context $CONTEXT: run 'make cluster-up' first"
# The Jobs run this tree's trainer image: make sure the registry has it (a tag it lacks would
# leave the pods in ImagePullBackOff).
push_images trainer
run_training

deployed=$(deployed_version)
if [ -z "$deployed" ]; then
  log "training done; the app is not installed (make cluster-up installs it with version $CHAMPION)"
elif [ "$deployed" = "$CHAMPION" ]; then
  log "training done; the app already serves version $CHAMPION: nothing to roll"
else
  log "promoting: the app serves version $deployed, the champion is $CHAMPION"
  helm upgrade "$APP_RELEASE" charts/bukva --kube-context "$CONTEXT" -n "$NAMESPACE" \
    --reuse-values --set-string predictor.modelVersion="$CHAMPION"
  # Reported only once the new pods serve it (wait_served fails when they never load it).
  wait_served "$CHAMPION"
  log "promoted: the app serves version $CHAMPION"
fi
