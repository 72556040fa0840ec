#!/bin/sh
# The script of every training Job (mounted from ConfigMap bukva-training-scripts). Only the
# environment differs between the Jobs: DVC_STAGES (what to run), DVC_FORCE (stages to re-run
# even when DVC sees no change: the data Job's ingest, so new feedback is always read).
#
#   1. the DVC remote from the platform's endpoints ConfigMap (DVC_REMOTE_URL, AWS_ENDPOINT_URL)
#   2. job_state.py start: the data source in params.yaml (INGEST_SOURCE, BUKVA_FEEDBACK_URI),
#      and the dvc.lock the previous Job left in the remote (the data Job's hashes reach the
#      train Job this way, not through the lock baked into the image)
#   3. dvc repro --pull (inputs from the remote), dvc push (outputs for the next Job)
#   4. job_state.py redo: when `register` is one of DVC_STAGES but DVC skipped it (nothing
#      changed) and no earlier Job kept a verdict for the same inputs, the stages that decide
#      again (evaluate, register), forced
#   5. job_state.py finish: dvc.lock back to the remote; the verdict (what `register` decided,
#      here or, for the same inputs, in an earlier Job) as the container's termination
#      message, which scripts/cluster-lib.sh reads
set -eu
dvc remote add --local --force --default cluster "$DVC_REMOTE_URL"
dvc remote modify --local cluster endpointurl "$AWS_ENDPOINT_URL"
python "$(dirname "$0")/job_state.py" start
if [ -n "${DVC_FORCE:-}" ]; then
  # shellcheck disable=SC2086  # stage names are words
  dvc repro --pull --single-item --force $DVC_FORCE
fi
# shellcheck disable=SC2086
dvc repro --pull --single-item $DVC_STAGES
redo=$(python "$(dirname "$0")/job_state.py" redo)
if [ -n "$redo" ]; then
  # shellcheck disable=SC2086
  dvc repro --pull --single-item --force $redo
fi
# shellcheck disable=SC2086
dvc push $DVC_STAGES
python "$(dirname "$0")/job_state.py" finish
